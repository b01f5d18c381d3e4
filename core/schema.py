"""The checkpoint format's names, in one place: the safetensors header, the format version, and the metadata's
top-level keys (core.checkpoint writes and checks them; the trainer, the bundle, the API and the CLI read them)."""
from __future__ import annotations

FORMAT_NAME = "vaegan-explorer"
FORMAT_VERSION = 1
"""Raised when a change makes older apps misread a file; an app refuses files of a newer version."""
HEADER_FORMAT, HEADER_VERSION, HEADER_META = "format", "format_version", "meta"
"""The safetensors header's entries: FORMAT_NAME, FORMAT_VERSION (as text) and the metadata as JSON."""

KIND = "kind"
"""KIND_TRAINING (a run's checkpoint, which can be resumed) or KIND_INFERENCE (Enc and Dec only)."""
KIND_TRAINING, KIND_INFERENCE = "training", "inference"
MODEL_CONFIG = "model_config"
"""The architecture (core.model.ModelConfig as a dict); every model file has it."""
TRAIN_CONFIG = "train_config"
"""core.trainer.TrainConfig as a dict."""
TRAINING_STATE = "training_state"
"""Where the run is: step, total_steps, images_seen, elapsed_s, rollbacks, started_from."""
OPTIMIZER = "optimizer"
"""Each optimiser's param groups and scalars (training checkpoints only)."""
DATA = "data"
"""The training data's summary: folder, crop, image size, counts."""
LABEL_NAMES = "label_names"
ATTRIBUTES = "attributes"
"""The attribute vectors' names, in the order of the attr.vectors rows; present once a run is finished."""
REFERENCE = "reference"
"""The reference map's sizes: count, thumbnail_size, columns, label_names, projection."""
RANDOM_FACES = "random_faces"
"""Where the fitted latent Gaussian came from, in words."""
PROVENANCE = "provenance"
"""How a bundled model was made (scripts/build_bundle.py)."""
META_KEYS = (KIND, MODEL_CONFIG, TRAIN_CONFIG, TRAINING_STATE, OPTIMIZER, DATA, LABEL_NAMES, ATTRIBUTES, REFERENCE,
             RANDOM_FACES, PROVENANCE)
"""Every top-level metadata key: what writes a checkpoint uses no other (tests check the run's and the bundle's)."""

# Tensor names: "<group>.<name>". The networks' weights are their state_dict entries under a part's group.
ENCODER, DECODER, DISCRIMINATOR = "enc", "dec", "dis"
NETWORK_PARTS = (ENCODER, DECODER, DISCRIMINATOR)
RAW_WEIGHTS = "train"
"""A run with a moving average keeps its raw Enc and Dec under train.enc / train.dec (enc / dec hold the average,
which inference loads; training continues from the raw ones)."""
OPTIMIZER_STATE = "optim"
"""optim.<part>.<parameter index>.<entry>: each optimiser's tensors (training checkpoints only)."""
ATTRIBUTE_VECTORS = "attr.vectors"
"""One row per name in the ATTRIBUTES metadata entry."""
SAMPLER_MEAN, SAMPLER_SCALE_TRIL = "sampler.mean", "sampler.scale_tril"
"""The latent Gaussian fitted to the training faces (random faces and the realism meter)."""
SAMPLER_MIXTURE_WEIGHTS, SAMPLER_MIXTURE_MEANS, SAMPLER_MIXTURE_SCALE_TRILS = (
    "sampler.mixture_weights", "sampler.mixture_means", "sampler.mixture_scale_trils")
"""Optional: the Gaussian mixture (K, K x D, K x D x D) random faces are drawn from when the faces are enough to
fit one (see core.latent.fit_latent_mixture); files without it draw from the single Gaussian."""
MAX_MIXTURE_COMPONENTS = 8
REF_LATENTS, REF_COORDS, REF_LABELS = "ref.latents", "ref.coords", "ref.labels"
REF_THUMBNAILS = "ref.thumbnails_jpeg"
"""The reference map's thumbnails as one JPEG atlas (its bytes)."""
REF_PROJECTION_MEAN, REF_PROJECTION_AXES = "ref.projection_mean", "ref.projection_axes"
EXPLORER_GROUPS = ("attr", "sampler", "ref")
"""What exploring needs besides the networks (rewritten whole when a model's explorer parts are saved)."""


def in_groups(name: str, groups: tuple[str, ...]) -> bool:
    """Whether the tensor name belongs to one of the groups."""
    return name.split(".", 1)[0] in groups
