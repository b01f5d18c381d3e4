"""Turn a training run into the bundled inference model `checkpoints/faces64.safetensors`.

Keeps Enc and Dec weights (half precision), adds attribute vectors for every label of the
training set (mean latent with minus mean latent without, unnormalised), a Gaussian fitted to where
the training faces encode (random faces are drawn from it) and a reference map of about 2,000 faces
whose thumbnails the model renders itself. No training photo is stored.

    python scripts/build_bundle.py runs/bundled data/celeba64_train --out checkpoints/faces64.safetensors
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

import core
from core.bundle import build_reference_map, save_inference_model
from core.data import load_image_folder
from core.latent import attribute_vectors_from_labels, fit_latent_gaussian


def provenance(model: core.Model, data_folder: Path, command: str, hardware: str) -> dict:
    cfg = model.meta.get("train_config", {})
    started_from = model.meta.get("training_state", {}).get("started_from")
    return {
        "command": command,
        "data": f"{model.images_trained_on:,} image draws from {model.meta.get('data', {}).get('images', '?')} "
                f"aligned CelebA faces ({data_folder.name}: ids 000001-008000 of ../shared/data/celeba/faces64, "
                f"64x64 CelebA box crop); ids 008001-009000 held out for evaluation",
        "steps": int(model.lifetime("step")),
        "batch_size": cfg.get("batch_size"),
        "hardware": hardware,
        "training_time_s": round(model.lifetime("elapsed_s"), 1),
        **({"last_run_started_from": started_from} if started_from else {}),
        "built": time.strftime("%Y-%m-%d"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="training run folder or checkpoint")
    parser.add_argument("data", type=Path, help="the labelled training folder")
    parser.add_argument("--out", type=Path, default=Path("checkpoints/faces64.safetensors"))
    parser.add_argument("--reference-count", type=int, default=2000)
    parser.add_argument("--command", default="", help="the training command, recorded as provenance")
    parser.add_argument("--hardware", default=f"{platform.machine()} CPU, {os.cpu_count()} cores",
                        help="what it was trained on, recorded as provenance")
    args = parser.parse_args()

    model = core.load_model(args.run, device="cpu")
    data = load_image_folder(args.data, image_size=model.image_size, crop=model.meta.get("data", {}).get("crop", "celeba"))
    if data.labels is None:
        raise SystemExit(f"{args.data}: no labels found; attribute vectors need list_attr_celeba.txt")
    latents, variances = model.posterior(data.images.float() / 255)
    model.latent_gaussian = fit_latent_gaussian(latents, variances)
    model.meta["random_faces"] = f"Gaussian fitted to the {len(data):,} training faces"
    model.attributes = attribute_vectors_from_labels(latents, data.labels, data.label_names)
    pick = torch.linspace(0, len(data) - 1, min(args.reference_count, len(data))).round().long()
    model.reference = build_reference_map(model, data.images[pick], data.labels[pick], tuple(data.label_names))
    model.meta["data"] = {k: v for k, v in data.summary.items() if k not in ("skipped", "folder")}
    path = save_inference_model(model, args.out, {"provenance": provenance(model, args.data, args.command, args.hardware)})
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): {len(model.attributes)} attributes, "
          f"{len(pick)} reference faces")


if __name__ == "__main__":
    main()
