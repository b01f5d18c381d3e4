"""Inference-only model files: Enc + Dec weights, attribute vectors, a fitted latent Gaussian for random faces
and a reference latent map."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from core.api import Model, ReferenceMap, encode_thumbnail_atlas
from core.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from core.latent import fit_projection
from core.schema import (ATTRIBUTE_VECTORS, ATTRIBUTES, EXPLORER_GROUPS, KIND, KIND_INFERENCE, MODEL_CONFIG, OPTIMIZER,
                         RANDOM_FACES, REF_COORDS, REF_LABELS, REF_LATENTS, REF_PROJECTION_AXES, REF_PROJECTION_MEAN,
                         REF_THUMBNAILS, REFERENCE, in_groups)
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


def explorer_parts(model: Model, dtype: torch.dtype) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, metadata) of the model's attribute vectors, fitted latent Gaussian and reference map."""
    tensors: dict[str, torch.Tensor] = {}
    names = sorted(model.attributes)
    meta: dict[str, Any] = {ATTRIBUTES: names}
    if names:
        tensors[ATTRIBUTE_VECTORS] = torch.stack([model.attributes[n].float() for n in names])
    if model.latent_gaussian is not None:
        tensors.update(model.latent_gaussian.tensors())
    ref = model.reference
    if ref is not None:
        tensors.update({
            REF_LATENTS: ref.latents.to(dtype), REF_COORDS: ref.coords.float(),
            REF_THUMBNAILS: encode_thumbnail_atlas(ref.thumbnails, ATLAS_COLUMNS),
            REF_PROJECTION_MEAN: ref.projection_mean.float(), REF_PROJECTION_AXES: ref.projection_axes.float(),
        })
        if ref.labels is not None:
            tensors[REF_LABELS] = ref.labels.to(torch.int8)
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
    """Store the model's attribute vectors, latent Gaussian, reference map and inference batch-norm statistics
    (core.pipeline.measure_batch_norm) in an existing checkpoint (a training run's, which keeps its training
    state), replacing any it held."""
    ckpt = load_checkpoint(path)
    ckpt.tensors = {k: v for k, v in ckpt.tensors.items() if not in_groups(k, EXPLORER_GROUPS)}
    ckpt.tensors.update(model_tensors(model.net, inference_only=True))   # the weights it was loaded with, and the
    # batch-norm statistics measured since
    ckpt.meta.pop(REFERENCE, None)
    parts, parts_meta = explorer_parts(model, torch.float32)
    ckpt.tensors.update(parts)
    ckpt.meta.update(parts_meta)
    return save_checkpoint(path, ckpt)
