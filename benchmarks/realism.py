"""The realism meter and vector quality of a model on held-out aligned CelebA faces (figures to read).

    python benchmarks/realism.py [--model checkpoints/faces64.safetensors]
        [--faces /work/shared/data/celeba/faces64] [--attributes .../list_attr_celeba.txt] [--first 8001 --last 9000]

Prints: the share of the first 200 held-out faces inside the region of typical training faces (target >= 90%)
and outside it after Male +6 (target >= 80%), the same for all held-out faces, the meter's speed, and a
Markdown table of all attribute vectors' separations (Cohen's d): cross-fitted on the model's reference map,
as the app and `vaegan vectors` show it, and the stored vectors on the held-out faces (`--faces`).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from core.api import load_model  # noqa: E402
from core.data import read_celeba_attributes  # noqa: E402
from core.latent import apply_edits  # noqa: E402
from core.realism import RealismMeter  # noqa: E402
from core.vector_quality import cosine_matrix, cross_fitted_separations, held_out_separation, most_entangled  # noqa: E402

SHARED = Path("/work/shared/data/celeba")
TARGET_FACES = 200


def held_out_faces(folder: Path, first: int, last: int) -> tuple[list[str], torch.Tensor]:
    names = [f"{i:06d}.jpg" for i in range(first, last + 1)]
    images = np.stack([np.asarray(Image.open(folder / name).convert("RGB")) for name in names])
    return names, torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255


def share(flags: list[bool]) -> str:
    return f"{100 * sum(flags) / len(flags):.1f}% of {len(flags)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "checkpoints" / "faces64.safetensors"))
    parser.add_argument("--faces", default=str(SHARED / "faces64"))
    parser.add_argument("--attributes", default=str(SHARED / "list_attr_celeba.txt"))
    parser.add_argument("--first", type=int, default=8001)
    parser.add_argument("--last", type=int, default=9000)
    parser.add_argument("--strength", type=float, default=6.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.model, device="cpu")
    meter = RealismMeter.of_model(model)
    names, images = held_out_faces(Path(args.faces), args.first, args.last)
    latents = model.encode(images)
    print(f"model {args.model}; held-out faces {names[0]}..{names[-1]} ({len(names)})")
    print(f"region: squared Mahalanobis distance <= {meter.threshold:.1f} (99% of the typical reference faces, "
          f"{100 * meter.share_inside:.1f}% of all {len(meter.reference)})")
    pushed = apply_edits(latents, {"Male": args.strength}, model.attributes)
    for count in (TARGET_FACES, len(names)):
        inside = [r.inside for r in meter.measure_many(latents[:count])]
        outside = [not r.inside for r in meter.measure_many(pushed[:count])]
        print(f"first {count}: inside {share(inside)} (target >= 90%); after Male {args.strength:+g} outside "
              f"{share(outside)} (target >= 80%)")
    percentiles = [r.percentile for r in meter.measure_many(latents)]
    print(f"held-out percentiles: median {statistics.median(percentiles):.0f}, "
          f"10th {np.percentile(percentiles, 10):.0f}, 90th {np.percentile(percentiles, 90):.0f}")
    timing(meter, model, latents)
    separation_table(model, latents, names, Path(args.attributes))


def timing(meter: RealismMeter, model, latents: torch.Tensor) -> None:
    vectors = torch.stack([model.attributes[n] for n in sorted(model.attributes)])
    strengths = torch.zeros(len(vectors))
    walls = []
    for z in latents[:200]:
        start = time.perf_counter()
        meter.measure(z)
        meter.safe_ranges(meter.whiten(z), meter.whiten_vectors(vectors), strengths)
        walls.append((time.perf_counter() - start) * 1000)
    print(f"meter + {len(vectors)} safe ranges per frame: median {statistics.median(walls):.2f} ms")


def separation_table(model, latents: torch.Tensor, names: list[str], attributes_file: Path) -> None:
    label_names, rows = read_celeba_attributes(attributes_file)
    labels = torch.tensor([rows[name] for name in names])
    held_out = held_out_separation(model.attributes, latents, labels, label_names)
    reference = model.reference
    cross = cross_fitted_separations(reference.latents, reference.labels, reference.label_names)
    vector_names, cosines = cosine_matrix(model.attributes)
    print("\n| attribute | held-out with / without | held-out d | reference with / without | cross-fitted d "
          "| most entangled with (cosine) |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name in sorted(model.attributes, key=str.lower):
        h, c = held_out[name], cross[name]
        entangled = ", ".join(f"{other} {cosine:+.2f}" for other, cosine in most_entangled(vector_names, cosines, name))
        print(f"| {name} | {h.with_count} / {h.without_count} | {h.d:.2f} | {c.with_count} / {c.without_count} "
              f"| {c.d:.2f} | {entangled} |")


if __name__ == "__main__":
    main()
