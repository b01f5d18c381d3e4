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
