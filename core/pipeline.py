"""From a folder of pictures to an explorer-ready model, written once for the CLI, the app and the scripts.

`finish_run` gives a trained model what exploring needs: attribute vectors from the training labels (or, for
unlabelled data and a run started from another model, that model's vectors carried into the new latent space), a
Gaussian fitted to where the training faces encode (random faces are drawn from it) and a reference map whose
thumbnails the model renders itself. `encode_folder` reads any folder of pictures the way training
does (cached, recursive, cropped by core.data, labels kept, unlabelled pictures allowed) and encodes it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from core.api import Model, load_model
from core.bundle import add_explorer_parts, build_reference_map
from core.checkpoint import CheckpointError
from core.data import Cancel, DataError, Progress, load_image_folder
from core.dataset import FaceDataset, to_signed, to_unit
from core.latent import attribute_vectors_from_labels, fit_latent_gaussian
from core.model import batch_norms
from core.schema import RANDOM_FACES, TRAIN_CONFIG, TRAINING_STATE
from core.trainer import CHECKPOINT_NAME

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


def started_from(model: Model) -> str | None:
    """The model file a run started from (--init-from), as its checkpoint records it."""
    return ((model.meta.get(TRAINING_STATE) or {}).get("started_from") or {}).get("model")


def labelled_reference_count(model: Model) -> int:
    """How many attribute vectors `model`'s labelled reference faces give: label columns with faces on both sides."""
    ref = model.reference
    if ref is None or ref.labels is None:
        return 0
    return int(((ref.labels > 0).any(0) & (ref.labels < 0).any(0)).sum())


def carries_vectors(model: Model) -> bool:
    """Whether `model`'s stored attribute vectors can be carried into a model started from it: it has some, and
    reference thumbnails to relate the two latent spaces on."""
    return bool(model.attributes) and model.reference is not None and len(model.reference.thumbnails) > 1


def inheritable_vector_count(model: Model) -> int:
    """How many attribute vectors a run on unlabelled pictures started from `model` gets from it: its stored
    vectors, carried across (inherited_attribute_vectors), else those its labelled reference faces give."""
    return len(model.attributes) if carries_vectors(model) else labelled_reference_count(model)


def _ancestor(model: Model, device: str, wanted: Callable[[Model], bool], include_self: bool) -> Model | None:
    """The nearest model up the chain `model` was started from (itself first when include_self) that is
    `wanted`; None when a file in the chain is gone or unreadable before one is found, or none is."""
    if include_self and wanted(model):
        return model
    seen: set[Path] = set()
    path = started_from(model)
    while path and Path(path).resolve() not in seen:
        seen.add(Path(path).resolve())
        try:
            model = load_model(path, device=device)
        except CheckpointError:
            return None
        if wanted(model):
            return model
        path = started_from(model)
    return None


def vector_ancestor(model: Model, device: str = "cpu", include_self: bool = False) -> Model | None:
    """The nearest model up the chain `model` was started from (its --init-from model, that one's, …) that has
    attribute vectors to pass on (inheritable_vector_count); `model` itself first when include_self (the Train
    panel asks about the model a run will start from)."""
    return _ancestor(model, device, lambda m: inheritable_vector_count(m) > 0, include_self)


CARRY_RIDGE = 1e-3
"""Ridge weight of the latent-space map, relative to the old latents' mean variance per dimension."""


def latent_space_map(old: torch.Tensor, new: torch.Tensor,
                     ridge: float = CARRY_RIDGE) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, b) with new ≈ old @ A.T + b over paired latents (N x D each: the same pictures encoded by two models),
    by least squares with a ridge penalty ridge * (mean variance of `old`) * ||A - I||² pulling A towards the
    identity: a fine-tuned model starts from the old weights, so directions the pictures do not pin down stay
    as they were (a model identical to the old one gets exactly A = I, b = 0; pictures that all encode alike
    get A = I)."""
    old, new = old.double(), new.double()
    old_mean, new_mean = old.mean(0), new.mean(0)
    x, y = old - old_mean, new - new_mean
    gram = x.T @ x
    eye = torch.eye(gram.shape[0], dtype=gram.dtype)
    weight = ridge * gram.trace() / gram.shape[0]
    if gram.trace() == 0:   # the pictures encode alike: nothing to fit, the space is taken as unchanged
        a = eye
    else:
        a = torch.linalg.solve(gram + weight * eye, x.T @ y + weight * eye).T
    return a, new_mean - a @ old_mean


def carried_attribute_vectors(model: Model, start: Model) -> dict[str, torch.Tensor]:
    """`start`'s stored attribute vectors carried into `model`'s latent space: `start`'s reference thumbnails
    (its renderings, at the image size both share; labels not needed) encoded by both models' encoders give
    pairs for an affine map z_model ≈ A z_start + b (latent_space_map), and each vector v becomes A v (vectors
    are differences of latents, so b drops out: A v is the difference of the mapped class means, the vector an
    edit moves along; benchmarks/inherited_vectors.py measures it)."""
    thumbnails = start.reference.thumbnails
    a, _ = latent_space_map(encode_images(start, thumbnails)[0], encode_images(model, thumbnails)[0])
    return {name: (a @ vector.double().cpu()).float() for name, vector in start.attributes.items()}


def recomputed_attribute_vectors(model: Model, start: Model) -> dict[str, torch.Tensor]:
    """Attribute vectors in `model`'s latent space from `start`'s labelled reference faces, for a start with
    labels but no stored vectors: its thumbnails encoded by `model`, then mean differences as for training
    labels."""
    ref = start.reference
    if ref is None or ref.labels is None:
        return {}
    means, _ = encode_images(model, ref.thumbnails)
    return attribute_vectors_from_labels(means, ref.labels, ref.label_names)


def inherited_attribute_vectors(model: Model, start: Model) -> dict[str, torch.Tensor]:
    """Attribute vectors for `model` from a model it was started from: `start`'s stored vectors carried into
    `model`'s latent space when it has them (carried_attribute_vectors), else recomputed from its labelled
    reference faces (recomputed_attribute_vectors)."""
    if carries_vectors(start):
        return carried_attribute_vectors(model, start)
    return recomputed_attribute_vectors(model, start)


def model_label(model: Model) -> str:
    """A model's name in messages: its file's name, or its run folder's for a run's checkpoint."""
    path = Path(model.path)
    return path.parent.name if path.name == CHECKPOINT_NAME else path.stem


def vectors_source(data: FaceDataset, start: Model | None) -> str:
    """Where a finished run's attribute vectors come from, in words."""
    if data.labels is not None:
        return "attribute vectors from the training labels"
    if start is None:
        return "no labels, so no attribute vectors"
    count, name = inheritable_vector_count(start), model_label(start)
    if carries_vectors(start):
        return (f"no labels, so the {count} attribute vectors of {name}, which it was started from, carried into "
                f"its latent space")
    return (f"no labels, so the {count} attribute vectors of {name}, which it was started from, recomputed on its "
            f"{len(start.reference.latents):,} labelled reference faces")


def finish_run(checkpoint: str | Path, data: FaceDataset, device: str = "cpu", say: Say | None = None,
               progress: Progress | None = None) -> Path:
    """Make a run's checkpoint explorer-ready in place (it stays resumable): `vaegan train`/`resume`, the
    Train panel and scripts all end a run with this, so every run opens with the same map and vectors. A run
    on unlabelled pictures that started from another model keeps that model's attribute vectors, carried into
    its own latent space (inherited_attribute_vectors)."""
    say = say or (lambda text: None)
    model = load_model(checkpoint, device=device)
    start = None if data.labels is not None else vector_ancestor(model, device)
    say(f"preparing the model for the explorer (latent map, random faces; {vectors_source(data, start)})")
    complete_model(model, data, progress=progress)
    how = ""
    if start is not None:
        how = (f", carried from {model_label(start)}'s latent space" if carries_vectors(start)
               else f", recomputed from {model_label(start)}'s labelled reference faces")
        model.attributes = inherited_attribute_vectors(model, start)   # after complete_model measured Enc's BN
    path = add_explorer_parts(model, checkpoint)
    say(f"explorer-ready: {len(model.reference.latents):,} faces on the map, "
        f"{len(model.attributes)} attribute vectors" + (f" ({', '.join(sorted(model.attributes))})"
                                                        if 0 < len(model.attributes) <= 12 else "") + how)
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
