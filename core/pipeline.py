"""From a folder of pictures to an explorer-ready model, written once for the CLI, the app and the scripts.

`finish_run` gives a trained model what exploring needs: attribute vectors from the training labels, a
Gaussian fitted to where the training faces encode (random faces are drawn from it) and a reference map
whose thumbnails the model renders itself. `encode_folder` reads any folder of pictures the way training
does (cached, recursive, cropped by core.data, labels kept, unlabelled pictures allowed) and encodes it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from core.api import Model, load_model
from core.bundle import add_explorer_parts, build_reference_map
from core.data import Cancel, DataError, Progress, load_image_folder
from core.dataset import FaceDataset, to_signed, to_unit
from core.latent import attribute_vectors_from_labels, fit_latent_gaussian
from core.model import batch_norms
from core.schema import RANDOM_FACES, TRAIN_CONFIG

FINISH_FACES = 20_000
"""Training faces encoded for the attribute vectors and the Gaussian, evenly spread over the set."""
REFERENCE_FACES = 2_000
BATCH_NORM_FACES = 4_096
"""Training faces the batch-norm statistics are measured on (precise BN needs thousands, not all)."""
ENCODE_CHUNK = 1024
"""Images converted to float at a time (keeps memory flat for large sets)."""

Say = Callable[[str], None]


def spread(count: int, total: int) -> torch.Tensor:
    """`count` indices evenly spread over range(total) (all of them when count >= total)."""
    return torch.linspace(0, total - 1, min(count, total)).round().long()


def encode_images(model: Model, images: torch.Tensor, progress: Progress | None = None,
                  cancel: Cancel | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(posterior means, variances) of N x 3 x S x S uint8 images, a chunk at a time."""
    means, variances = [], []
    for start in range(0, len(images), ENCODE_CHUNK):
        if cancel and cancel():
            raise DataError("cancelled")
        mean, variance = model.posterior(to_unit(images[start:start + ENCODE_CHUNK]))
        means.append(mean)
        variances.append(variance)
        if progress:
            progress(min(start + ENCODE_CHUNK, len(images)), len(images))
    return torch.cat(means), torch.cat(variances)


@torch.no_grad()
def measure_batch_norm(model: Model, images: torch.Tensor, seed: int = 0) -> None:
    """Set Enc's and Dec's batch-norm statistics to exact averages over uint8 training `images`, in batches of the
    run's size (SWA's update_bn, Izmailov et al. 2018), on the path the explorer runs: Enc on faces, Dec on their
    posterior means. Training leaves running averages over its last batches, which for Dec mix reconstruction and
    prior batches, and a moving average of the weights (EMA) keeps an average of statistics, not the statistics of
    the averaged weights; measured ones cut speckle (README, "The bundled model")."""
    encoder, decoder = model.net.encoder, model.net.decoder
    norms = batch_norms(encoder, decoder)
    if not norms:
        return
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None   # a cumulative average of the batches below
    size = model.meta.get(TRAIN_CONFIG, {}).get("batch_size", 64)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    batches = order.split(size)
    batches = batches[:-1] if len(batches) > 1 and len(batches[-1]) < size else batches   # equal weights
    try:
        encoder.train()
        for batch in batches:
            encoder(to_signed(images[batch]).to(model.device))
        encoder.eval()
        decoder.train()
        for batch in batches:
            decoder(encoder(to_signed(images[batch]).to(model.device))[0])
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        model.net.eval()


def complete_model(model: Model, data: FaceDataset, reference_faces: int = REFERENCE_FACES,
                   progress: Progress | None = None) -> None:
    """Measure the model's batch-norm statistics on the training faces, then set its attribute vectors (when the
    data has labels), latent Gaussian and reference map (none when reference_faces is 0: a model only compared
    with, kept small)."""
    if len(data) > 1:
        measure_batch_norm(model, data.images[spread(BATCH_NORM_FACES, len(data))])
    index = spread(FINISH_FACES, len(data))
    means, variances = encode_images(model, data.images[index], progress)
    try:
        model.latent_gaussian = fit_latent_gaussian(means, variances)
        model.meta[RANDOM_FACES] = model.latent_gaussian.description(len(index))
    except (ValueError, RuntimeError):  # a degenerate encoder: random faces fall back to N(0, I)
        model.latent_gaussian = None
        model.meta.pop(RANDOM_FACES, None)
    if data.labels is not None:
        model.attributes = attribute_vectors_from_labels(means, data.labels[index], data.label_names)
    if reference_faces == 0:
        model.reference = None
        return
    pick = spread(reference_faces, len(data))
    labels = None if data.labels is None else data.labels[pick]
    model.reference = build_reference_map(model, data.images[pick], labels, tuple(data.label_names))


def finish_run(checkpoint: str | Path, data: FaceDataset, device: str = "cpu", say: Say | None = None,
               progress: Progress | None = None) -> Path:
    """Make a run's checkpoint explorer-ready in place (it stays resumable): `vaegan train`/`resume`, the
    Train panel and scripts all end a run with this, so every run opens with the same map and vectors."""
    say = say or (lambda text: None)
    say("preparing the model for the explorer (latent map, random faces"
        + (", attribute vectors" if data.labels is not None else "; no labels, so no attribute vectors") + ")")
    model = load_model(checkpoint, device=device)
    complete_model(model, data, progress=progress)
    path = add_explorer_parts(model, checkpoint)
    say(f"explorer-ready: {len(model.reference.latents):,} faces on the map, "
        f"{len(model.attributes)} attribute vectors" + (f" ({', '.join(sorted(model.attributes))})"
                                                        if 0 < len(model.attributes) <= 12 else ""))
    return path


def encode_folder(model: Model, folder: str | Path, crop: str | None = None, min_images: int = 2,
                  progress: Progress | None = None, cancel: Cancel | None = None) -> tuple[FaceDataset, torch.Tensor]:
    """(the folder's pictures as the model sees them, their posterior means). Pictures are read recursively
    through the cache training uses and cropped as the model crops new pictures (Model.picture_crop) unless
    `crop` says otherwise; labels come from a CelebA attribute file (0 for pictures it has no row for) or
    sub-folder names."""
    data = load_image_folder(folder, model.image_size, crop or model.picture_crop, min_images=min_images,
                             progress=progress, cancel=cancel, keep_unlabelled=True)
    latents, _ = encode_images(model, data.images, progress, cancel)
    return data, latents
