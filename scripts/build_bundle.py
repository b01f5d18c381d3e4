"""Turn a training run into the bundled inference model `checkpoints/faces64.safetensors`.

Keeps Enc and Dec weights (half precision) and adds what every finished run gets (core.pipeline.complete_model):
attribute vectors for every label of the training set (mean latent with minus mean latent without,
unnormalised), a Gaussian fitted to where the training faces encode (random faces are drawn from it) and a
reference map of about 2,000 faces whose thumbnails the model renders itself. No training photo is stored.
From a run trained with `--ema-decay` it takes the moving-average Enc and Dec (what `core.load_model` reads).

    python scripts/build_bundle.py runs/bundled data/celeba64_train --out checkpoints/faces64.safetensors
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import core
from core.bundle import save_inference_model
from core.data import load_image_folder
from core.pipeline import REFERENCE_FACES, complete_model


def provenance(model: core.Model, data_folder: Path, command: str, hardware: str, data_note: str) -> dict:
    cfg = model.meta.get("train_config", {})
    started_from = model.meta.get("training_state", {}).get("started_from")
    trained_on = model.meta.get("data", {})
    return {
        "command": command,
        "data": f"{model.images_trained_on:,} image draws from {trained_on.get('images', '?'):,} faces of "
                f"{Path(trained_on.get('folder', '?')).name} (crop {trained_on.get('crop', '?')}){data_note}; "
                f"attribute vectors, random faces and the map from the labelled {data_folder.name}",
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
    parser.add_argument("--reference-count", type=int, default=REFERENCE_FACES,
                        help="faces on the reference map (0: no map, for a model only compared with)")
    parser.add_argument("--command", default="", help="the training command, recorded as provenance")
    parser.add_argument("--data-note", default="", help="appended to the training data's description")
    parser.add_argument("--hardware", default=f"{platform.machine()} CPU, {os.cpu_count()} cores",
                        help="what it was trained on, recorded as provenance")
    args = parser.parse_args()

    model = core.load_model(args.run, device="cpu")
    data = load_image_folder(args.data, image_size=model.image_size, crop=model.meta.get("data", {}).get("crop", "celeba"))
    if data.labels is None:
        raise SystemExit(f"{args.data}: no labels found; attribute vectors need list_attr_celeba.txt")
    complete_model(model, data, reference_faces=args.reference_count)
    about = provenance(model, args.data, args.command, args.hardware, args.data_note)
    model.meta["data"] = {k: v for k, v in data.summary.items() if k not in ("skipped", "folder")}
    path = save_inference_model(model, args.out, {"provenance": about})
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): {len(model.attributes)} attributes, "
          f"{len(model.reference.latents) if model.reference else 0} reference faces")


if __name__ == "__main__":
    main()
