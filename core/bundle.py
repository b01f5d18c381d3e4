"""Inference-only model files: Enc + Dec weights, attribute vectors, a fitted latent Gaussian for random faces
and a reference latent map."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from core.api import Model, ReferenceMap, encode_thumbnail_atlas
from core.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from core.latent import fit_projection
from core.schema import ATTRIBUTES, KIND, KIND_INFERENCE, MODEL_CONFIG, OPTIMIZER, RANDOM_FACES, REFERENCE
from core.trainer import model_tensors

ATLAS_COLUMNS = 45


def build_reference_map(model: Model, images: torch.Tensor, labels: torch.Tensor | None = None,
                        label_names: tuple[str, ...] = ()) -> ReferenceMap:
    """Encode uint8 images, fit the 2D PCA map, and render thumbnails with the model itself."""
    latents = model.encode(images.float() / 255)
    projection, coords = fit_projection(latents, "pca")
    state = projection.state()
    thumbs = (model.decode(latents) * 255).round().to(torch.uint8)
    return ReferenceMap(latents, coords, thumbs, state["mean"], state["axes"], labels, tuple(label_names))


EXPLORER_PREFIXES = ("attr.", "sampler.", "ref.")
"""Tensor keys of what exploring needs besides the networks (rewritten whole by add_explorer_parts)."""


def explorer_parts(model: Model, dtype: torch.dtype) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, metadata) of the model's attribute vectors, fitted latent Gaussian and reference map."""
    tensors: dict[str, torch.Tensor] = {}
    names = sorted(model.attributes)
    meta: dict[str, Any] = {ATTRIBUTES: names}
    if names:
        tensors["attr.vectors"] = torch.stack([model.attributes[n].float() for n in names])
    if model.latent_gaussian is not None:
        tensors.update(model.latent_gaussian.tensors())
    ref = model.reference
    if ref is not None:
        tensors.update({
            "ref.latents": ref.latents.to(dtype), "ref.coords": ref.coords.float(),
            "ref.thumbnails_jpeg": encode_thumbnail_atlas(ref.thumbnails, ATLAS_COLUMNS),
            "ref.projection_mean": ref.projection_mean.float(), "ref.projection_axes": ref.projection_axes.float(),
        })
        if ref.labels is not None:
            tensors["ref.labels"] = ref.labels.to(torch.int8)
        meta[REFERENCE] = {"count": int(ref.latents.shape[0]), "thumbnail_size": int(ref.thumbnails.shape[-1]),
                           "columns": ATLAS_COLUMNS, "label_names": list(ref.label_names), "projection": "pca"}
    if RANDOM_FACES in model.meta:
        meta[RANDOM_FACES] = model.meta[RANDOM_FACES]
    return tensors, meta


def save_inference_model(model: Model, path: str | Path, extra_meta: dict[str, Any] | None = None,
                         half_precision: bool = True) -> Path:
    """Write Enc/Dec weights (no Dis, no optimiser), attributes, the fitted latent Gaussian and the reference
    map to one file."""
    dtype = torch.float16 if half_precision else torch.float32
    tensors = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in model_tensors(model.net, True).items()}
    meta: dict[str, Any] = {k: v for k, v in model.meta.items() if k != OPTIMIZER}
    meta.update({KIND: KIND_INFERENCE, MODEL_CONFIG: model.config.to_dict()}, **(extra_meta or {}))
    parts, parts_meta = explorer_parts(model, dtype)
    tensors.update(parts)
    meta.update(parts_meta)
    return save_checkpoint(path, Checkpoint(tensors, meta))


def add_explorer_parts(model: Model, path: str | Path) -> Path:
    """Store the model's attribute vectors, latent Gaussian and reference map in an existing checkpoint (a
    training run's, which keeps its training state), replacing any it held."""
    ckpt = load_checkpoint(path)
    ckpt.tensors = {k: v for k, v in ckpt.tensors.items() if not k.startswith(EXPLORER_PREFIXES)}
    ckpt.meta.pop(REFERENCE, None)
    parts, parts_meta = explorer_parts(model, torch.float32)
    ckpt.tensors.update(parts)
    ckpt.meta.update(parts_meta)
    return save_checkpoint(path, ckpt)
