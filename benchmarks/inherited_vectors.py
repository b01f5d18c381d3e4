"""How well a fine-tuned model's inherited attribute vectors separate held-out faces, next to the starting model's.

A run on unlabelled faces started from a model (--init-from) gets that model's attribute vectors in its own latent
space (core.pipeline.inherited_attribute_vectors). This scores the candidates on labelled faces neither model saw:
Cohen's d of the fine-tuned model's latents with vs without each attribute along each vector, divided by the
starting model's d for its stored vectors on its own latents of the same faces (core.vector_quality).

    vaegan train /tmp/own200 --init-from checkpoints/faces64.safetensors --max-steps 40 --batch-size 32 \
        --discriminator-warmup 8 --out /tmp/ft        # /tmp/own200: CelebA 008001-008200, no attribute file
    python benchmarks/inherited_vectors.py --start checkpoints/faces64.safetensors --model /tmp/ft \
        --faces ../shared/data/celeba/faces64 --attributes ../shared/data/celeba/list_attr_celeba.txt
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.api import load_model  # noqa: E402
from core.data import read_celeba_attributes  # noqa: E402
from core.pipeline import (carried_attribute_vectors, encode_images, latent_space_map,  # noqa: E402
                           recomputed_attribute_vectors)
from core.vector_quality import held_out_separation  # noqa: E402


def plain_ridge_vectors(model, start, ridge: float = 1e-3) -> dict[str, torch.Tensor]:
    """As carried_attribute_vectors but with the ridge pulling A towards 0 instead of the identity."""
    thumbs = start.reference.thumbnails
    old, new = encode_images(start, thumbs)[0].double(), encode_images(model, thumbs)[0].double()
    x, y = old - old.mean(0), new - new.mean(0)
    gram = x.T @ x
    a = torch.linalg.solve(gram + ridge * gram.trace() / len(gram) * torch.eye(len(gram), dtype=gram.dtype),
                           x.T @ y).T
    return {n: (a @ v.double()).float() for n, v in start.attributes.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--start", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--faces", required=True, help="folder of aligned CelebA faces at the model's size")
    p.add_argument("--attributes", required=True)
    p.add_argument("--first", type=int, default=8201)
    p.add_argument("--last", type=int, default=9000)
    args = p.parse_args()
    torch.manual_seed(0)
    start, model = load_model(args.start, device="cpu"), load_model(args.model, device="cpu")
    names, rows = read_celeba_attributes(args.attributes)
    files = [f"{i:06d}.jpg" for i in range(args.first, args.last + 1)]
    images = torch.from_numpy(np.stack([np.asarray(Image.open(Path(args.faces) / f).convert("RGB"))
                                        for f in files])).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor([rows[f] for f in files], dtype=torch.int8)
    start_latents, model_latents = encode_images(start, images)[0], encode_images(model, images)[0]
    baseline = held_out_separation(start.attributes, start_latents, labels, names)

    thumbs = start.reference.thumbnails
    old, new = encode_images(start, thumbs)[0], encode_images(model, thumbs)[0]
    a, b = latent_space_map(old, new)
    residual = (new.double() - old.double() @ a.T - b).pow(2).sum() / (new.double() - new.double().mean(0)).pow(2).sum()
    unchanged = (new.double() - old.double()).pow(2).sum() / (new.double() - new.double().mean(0)).pow(2).sum()
    print(f"{len(files)} held-out faces; map fitted on {len(thumbs)} thumbnails: residual {residual:.3f} of the new "
          f"latents' variance (identity map: {unchanged:.3f}); ||A - I||_F / ||I||_F = "
          f"{float((a - torch.eye(len(a), dtype=a.dtype)).norm() / len(a) ** 0.5):.3f}")
    candidates = {
        "stored, unchanged": start.attributes,
        "recomputed from labelled thumbnails": recomputed_attribute_vectors(model, start),
        "carried (ridge 1e-3 towards I)": carried_attribute_vectors(model, start),
        "carried (ridge 1e-3 towards 0)": plain_ridge_vectors(model, start),
    }
    candidates["A^-T v (a readout direction, not an edit)"] = {
        n: torch.linalg.solve(a.T, v.double()).float() for n, v in start.attributes.items()}
    for ridge in (1e-2, 1e-1):
        aa, _ = latent_space_map(old, new, ridge)
        candidates[f"carried (ridge {ridge:g} towards I)"] = {n: (aa @ v.double()).float()
                                                              for n, v in start.attributes.items()}
    base_d = {n: s.d for n, s in baseline.items()}
    print(f"starting model, stored vectors on its own latents: median d {np.median(list(base_d.values())):.3f}")
    for label, vectors in candidates.items():
        scores = held_out_separation(vectors, model_latents, labels, names)
        ratios = np.array([scores[n].d / base_d[n] for n in base_d if n in scores])
        cosine = np.median([float(torch.nn.functional.cosine_similarity(vectors[n].double(),
                                                                        start.attributes[n].double(), 0))
                            for n in base_d if n in vectors])
        print(f"{label:40s} median d {np.median([s.d for s in scores.values()]):.3f}, ratio median "
              f"{np.median(ratios):.3f} (>= 0.8: {int((ratios >= 0.8).sum())} of {len(ratios)}; min "
              f"{ratios.min():.3f}), median cosine to stored {cosine:.3f}")


if __name__ == "__main__":
    main()
