"""Checkpoint files: one safetensors file holding tensors and a JSON metadata document.

Loading never unpickles. Saving writes a temporary file beside the target, fsyncs it and
renames it over the target, so a crash mid-save leaves the previous checkpoint intact.
"""
from __future__ import annotations

import json
import math
import os
import stat
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from core.model import VAEGAN, ModelConfig
from core.schema import (ATTRIBUTE_VECTORS, ATTRIBUTES, DATA, DECODER, DISCRIMINATOR, ENCODER, EXPLORER_GROUPS,
                         FORMAT_NAME, FORMAT_VERSION, HEADER_FORMAT, HEADER_META, HEADER_VERSION, KIND, KIND_TRAINING,
                         LABEL_NAMES, MODEL_CONFIG, NETWORK_PARTS, OPTIMIZER, OPTIMIZER_STATE, REF_COORDS, REF_LABELS,
                         REF_LATENTS, REF_PROJECTION_AXES, REF_PROJECTION_MEAN, REF_THUMBNAILS, REFERENCE,
                         MAX_MIXTURE_COMPONENTS, SAMPLER_MEAN, SAMPLER_MIXTURE_MEANS, SAMPLER_MIXTURE_SCALE_TRILS,
                         SAMPLER_MIXTURE_WEIGHTS, SAMPLER_SCALE_TRIL, TRAIN_CONFIG, TRAINING_STATE, in_groups)

CHECKPOINT_SUFFIX = ".safetensors"
TEMPORARY_SUFFIX = ".tmp"
MAX_ATTRIBUTES = 1000
MAX_REFERENCE_FACES = 100_000
MAX_THUMBNAIL_SIZE = 256
MAX_ATLAS_COLUMNS = 1000
MAX_ATLAS_BYTES = 512 * 2**20
MODEL_CONFIG_TYPES = {"image_size": (int,), "latent_dim": (int,), "width": (int, float), "kernel_size": (int,),
                      "model_type": (str,)}


class CheckpointError(Exception):
    """A checkpoint could not be read or written; the message names the file and the problem."""


@dataclass
class Checkpoint:
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)

    def group(self, prefix: str) -> dict[str, torch.Tensor]:
        """Tensors whose key starts with `prefix.`, with the prefix removed."""
        head = prefix + "."
        return {k[len(head):]: v for k, v in self.tensors.items() if k.startswith(head)}


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> Path:
    path = Path(path)
    header = {HEADER_FORMAT: FORMAT_NAME, HEADER_VERSION: str(FORMAT_VERSION), HEADER_META: json.dumps(ckpt.meta)}
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in ckpt.tensors.items()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as tmp:
            save_file(tensors, tmp, metadata=header)
    except (OSError, SafetensorError) as exc:
        raise CheckpointError(f"{path}: could not write checkpoint ({_write_failure(exc)})") from exc
    return path


@contextmanager
def atomic_file(path: Path) -> Iterator[str]:
    """A temporary file beside `path` for the caller to fill; then fsynced and renamed over `path` with the
    permissions `path` had (or the usual ones for a new file). On any failure, or a kill, `path` is untouched
    and the temporary file is removed (a kill -9 leaves it to remove_stale_temporaries). A disk error names
    `path`, not the temporary file."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
        os.close(fd)
        yield tmp
        os.chmod(tmp, _file_mode(path))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    _sync_folder(path.parent)


def write_text_atomically(path: Path, text: str) -> Path:
    """Replace `path` with `text` (UTF-8) so that a crash or a full disk leaves either the old file or the new."""
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return path


def remove_stale_temporaries(folder: Path) -> None:
    """Delete the temporary files a killed save left in `folder` (call where no other save is in progress)."""
    for leftover in folder.glob(f".*{TEMPORARY_SUFFIX}"):
        leftover.unlink(missing_ok=True)


def _file_mode(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); harmless where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_failure(exc: BaseException) -> str:
    """'No space left on device' rather than a library's wording or the temporary file's name."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc)
    return "No space left on device" if "No space left" in text else _short(exc)


def _read_header(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as f:
        return f.metadata() or {}


def _checked_path_and_meta(path: str | Path) -> tuple[Path, dict]:
    """The checkpoint file (a run folder's, for a folder) and its metadata, read from the header alone."""
    path = Path(path)
    if path.is_dir():
        path = find_checkpoint_in(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a regular file (a pipe, socket or device cannot be a checkpoint)")
    try:
        header = _read_header(path)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt: {_short(exc)})") from exc
    if header.get(HEADER_FORMAT) != FORMAT_NAME:
        raise CheckpointError(f"{path}: not a VAE-GAN Explorer checkpoint (a safetensors file from another program)")
    try:
        version = int(header.get(HEADER_VERSION, "0"))
    except ValueError:
        version = -1
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: written by a newer version of the app (format {version}, this app reads up to "
                              f"{FORMAT_VERSION}); please update the app")
    if version < 1:
        raise CheckpointError(f"{path}: unknown checkpoint format version {header.get(HEADER_VERSION)!r}")
    try:
        meta = json.loads(header.get(HEADER_META, "{}"))
    except RecursionError as exc:
        raise CheckpointError(f"{path}: checkpoint is damaged (its metadata is nested too deeply)") from exc
    except ValueError as exc:
        raise CheckpointError(f"{path}: checkpoint is damaged ({_short(exc)})") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: checkpoint is damaged (its metadata is {_kind(meta)}, not a JSON object)")
    return path, meta


def load_checkpoint_meta(path: str | Path) -> dict:
    """A checkpoint's metadata without reading its tensors (same checks and errors as load_checkpoint)."""
    return _checked_path_and_meta(path)[1]


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    path, meta = _checked_path_and_meta(path)
    return Checkpoint(tensors=_read_tensors(path, device), meta=meta)


def _read_tensors(path: Path, device: str | torch.device) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError, MemoryError) as exc:
        raise CheckpointError(f"{path}: checkpoint is damaged ({_short(exc)})") from exc


# ----------------------------------------------------------------------------------------- model checkpoints
# A model file is checked in full before anything is allocated: the metadata's schema, then every tensor's
# declared shape against the architecture (built on the "meta" device, which allocates nothing), then, once
# read, that every weight is finite.


@dataclass
class ModelCheckpoint:
    path: Path
    """The file read (a run folder's checkpoint, for a folder)."""
    checkpoint: Checkpoint
    config: ModelConfig


def load_model_checkpoint(path: str | Path, training: bool = False,
                          device: str | torch.device = "cpu") -> ModelCheckpoint:
    """A model or training checkpoint, validated; `training` also requires what resuming needs.
    Raises CheckpointError naming the file and the first problem found."""
    path, meta, config = validated_meta(path, training)
    tensors = _read_tensors(path, device)
    check_finite(path, tensors)
    return ModelCheckpoint(path, Checkpoint(tensors, meta), config)


def validated_meta(path: str | Path, training: bool = False) -> tuple[Path, dict, ModelConfig]:
    """load_model_checkpoint's checks without reading the weights: the file, its metadata and its architecture."""
    path, meta = _checked_path_and_meta(path)
    config = model_config_of(path, meta)
    check_model_meta(path, meta)
    if training:
        check_training_meta(path, meta, config)
    check_tensor_layout(path, config, _tensor_layout(path), with_discriminator=training)
    return path, meta, config


def model_config_of(path: Path, meta: dict) -> ModelConfig:
    """The architecture the metadata declares, with every field of the right type and in range."""
    raw = meta.get(MODEL_CONFIG)
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: checkpoint does not hold a usable model (model_config is "
                              f"{'missing' if raw is None else _kind(raw)})")
    for name, types in MODEL_CONFIG_TYPES.items():
        value = raw.get(name)
        if name in raw and (isinstance(value, bool) or not isinstance(value, types)):
            raise CheckpointError(f"{path}: checkpoint does not hold a usable model (model_config.{name} is "
                                  f"{_kind(value)})")
    try:
        return ModelConfig.from_dict(raw)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: checkpoint does not hold a usable model ({_short(exc)})") from exc


def check_model_meta(path: Path, meta: dict) -> None:
    """The optional parts every model file may carry have the types the app reads them as."""
    for key in (DATA, TRAINING_STATE, TRAIN_CONFIG, REFERENCE, OPTIMIZER):
        _require(path, meta, key, dict, optional=True)
    for key in (ATTRIBUTES, LABEL_NAMES):
        values = _require(path, meta, key, list, optional=True) or []
        if len(values) > MAX_ATTRIBUTES or not all(isinstance(v, str) for v in values):
            raise CheckpointError(f"{path}: checkpoint is damaged ({key} must be at most {MAX_ATTRIBUTES} names)")
    reference = meta.get(REFERENCE) or {}
    for key, limit in (("count", MAX_REFERENCE_FACES), ("thumbnail_size", MAX_THUMBNAIL_SIZE),
                       ("columns", MAX_ATLAS_COLUMNS)):
        _require_count(path, reference, key, f"reference.{key}", 1, limit, optional=True)


def check_training_meta(path: Path, meta: dict, config: ModelConfig) -> None:
    """What resuming a run reads: its training state, its settings and each optimiser's state."""
    if meta.get(KIND) != KIND_TRAINING:
        raise CheckpointError(f"{path}: holds an inference-only model, which cannot be trained further")
    state = _require(path, meta, TRAINING_STATE, dict)
    _require(path, meta, TRAIN_CONFIG, dict)
    _require_count(path, state, "step", "training_state.step", 0, 10**12)
    _require_count(path, state, "rollbacks", "training_state.rollbacks", 0, 10**12, optional=True)
    elapsed = state.get("elapsed_s", 0.0)
    if isinstance(elapsed, bool) or not isinstance(elapsed, (int, float)) or not math.isfinite(elapsed):
        raise CheckpointError(f"{path}: checkpoint is damaged (training_state.elapsed_s is {_kind(elapsed)})")
    optimizer = _require(path, meta, OPTIMIZER, dict)
    for part in (ENCODER, DECODER) + ((DISCRIMINATOR,) if config.model_type == "vaegan" else ()):
        entry = _require(path, optimizer, part, dict, where="optimizer.")
        groups = _require(path, entry, "param_groups", list, where=f"optimizer.{part}.")
        if not groups or not all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in groups):
            raise CheckpointError(f"{path}: checkpoint is damaged (optimizer.{part}.param_groups is malformed)")
        scalars = _require(path, entry, "scalars", dict, where=f"optimizer.{part}.", optional=True) or {}
        if not all(k.isdigit() and isinstance(v, dict) for k, v in scalars.items()):
            raise CheckpointError(f"{path}: checkpoint is damaged (optimizer.{part}.scalars is malformed)")


TensorLayout = dict[str, tuple[str, tuple[int, ...]]]
"""name -> (safetensors dtype, shape), as the file's header declares them."""


def _tensor_layout(path: Path) -> TensorLayout:
    try:
        with safe_open(str(path), framework="pt") as f:
            return {name: (f.get_slice(name).get_dtype(), tuple(f.get_slice(name).get_shape())) for name in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt: {_short(exc)})") from exc


@dataclass
class Architecture:
    """Shapes of an architecture's tensors, from a network built on the "meta" device (nothing allocated)."""

    shapes: dict[str, tuple[int, ...]]
    """Every enc./dec./dis. state-dict entry."""
    parameters: dict[str, list[tuple[int, ...]]]
    """Per part, its parameters in optimiser order."""

    @classmethod
    def of(cls, config: ModelConfig, with_discriminator: bool) -> "Architecture":
        with torch.device("meta"):
            net = VAEGAN(config, with_discriminator=with_discriminator)
        parts = dict(zip(NETWORK_PARTS, (net.encoder, net.decoder, net.discriminator)))
        parts = {p: m for p, m in parts.items() if m is not None}
        return cls({f"{p}.{k}": tuple(v.shape) for p, m in parts.items() for k, v in m.state_dict().items()},
                   {p: [tuple(v.shape) for v in m.parameters()] for p, m in parts.items()})

    @property
    def weight_count(self) -> int:
        return sum(math.prod(s) for shapes in self.parameters.values() for s in shapes)


def check_tensor_layout(path: Path, config: ModelConfig, layout: TensorLayout, with_discriminator: bool) -> None:
    """Every tensor the file declares fits the declared architecture, before any is read."""
    with_discriminator = with_discriminator or any(in_groups(name, (DISCRIMINATOR,)) for name in layout)
    arch = Architecture.of(config, with_discriminator and config.model_type == "vaegan")
    declared = sum(math.prod(s) for s in arch.shapes.values())
    present = sum(math.prod(layout[n][1]) for n in arch.shapes if n in layout)
    if present < declared // 2:
        raise CheckpointError(f"{path}: model_config declares {arch.weight_count:,} weights but the file holds "
                              f"{present:,} of them (the metadata does not match the tensors)")
    for name, shape in arch.shapes.items():
        if name not in layout:
            raise CheckpointError(f"{path}: checkpoint is damaged (tensor {name} is missing)")
        if layout[name][1] != shape:
            raise CheckpointError(f"{path}: tensor {name} has shape {list(layout[name][1])}, but the architecture "
                                  f"in model_config needs {list(shape)}")
    budget = declared
    for name, (_, shape) in layout.items():
        if name in arch.shapes:
            continue
        if in_groups(name, NETWORK_PARTS):
            raise CheckpointError(f"{path}: tensor {name} is not part of the architecture in model_config")
        problem = _extra_tensor_problem(name, shape, config.latent_dim, arch)
        if problem:
            raise CheckpointError(f"{path}: tensor {name} {problem}")
        if not in_groups(name, EXPLORER_GROUPS + (OPTIMIZER_STATE,)):
            budget -= math.prod(shape)
            if budget < 0:
                raise CheckpointError(f"{path}: holds more extra data than its model ({name} {list(shape)})")


def _extra_tensor_problem(name: str, shape: tuple[int, ...], d: int, arch: Architecture) -> str | None:
    """Why a tensor beside the networks' weights cannot be right, or None."""
    fixed = {SAMPLER_MEAN: (d,), SAMPLER_SCALE_TRIL: (d, d), REF_PROJECTION_MEAN: (d,), REF_PROJECTION_AXES: (2, d)}
    rows = {ATTRIBUTE_VECTORS: (MAX_ATTRIBUTES, d, d), REF_LATENTS: (MAX_REFERENCE_FACES, d, d),
            REF_COORDS: (MAX_REFERENCE_FACES, 2, 2), REF_LABELS: (MAX_REFERENCE_FACES, 0, MAX_ATTRIBUTES)}
    if name in fixed:
        return None if shape == fixed[name] else f"has shape {list(shape)}, expected {list(fixed[name])}"
    mixture = {SAMPLER_MIXTURE_WEIGHTS: (), SAMPLER_MIXTURE_MEANS: (d,), SAMPLER_MIXTURE_SCALE_TRILS: (d, d)}
    if name in mixture:
        fits = len(shape) >= 1 and 1 <= shape[0] <= MAX_MIXTURE_COMPONENTS and shape[1:] == mixture[name]
        return None if fits else f"has impossible shape {list(shape)}"
    if name in rows:
        most, low, high = rows[name]
        fits = len(shape) == 2 and shape[0] <= most and low <= shape[1] <= high
        return None if fits else f"has impossible shape {list(shape)}"
    if name == REF_THUMBNAILS:
        return None if len(shape) == 1 and shape[0] <= MAX_ATLAS_BYTES else f"has impossible shape {list(shape)}"
    if in_groups(name, (OPTIMIZER_STATE,)):
        return _optimizer_tensor_problem(name, shape, arch)
    return None


def _optimizer_tensor_problem(name: str, shape: tuple[int, ...], arch: Architecture) -> str | None:
    """optim.<part>.<index>.<entry>: the index names a parameter, and moments have that parameter's shape."""
    _, part, index = (name.split(".", 3) + ["", ""])[:3]
    parameters = arch.parameters.get(part, [])
    if not index.isdigit() or int(index) >= len(parameters):
        return "does not belong to any parameter of the architecture"
    if math.prod(shape) > 1 and shape != parameters[int(index)]:
        return f"has shape {list(shape)}, but its parameter has {list(parameters[int(index)])}"
    return None


def check_finite(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{path}: tensor {name} holds NaN or infinite values (the model is broken; "
                                  f"use an earlier checkpoint)")


def _require(path: Path, table: dict, key: str, kind: type, optional: bool = False, where: str = "") -> Any:
    value = table.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, kind):
        what = "missing" if key not in table else _kind(value)
        raise CheckpointError(f"{path}: checkpoint is damaged ({where}{key} is {what})")
    return value


def _require_count(path: Path, table: dict, key: str, label: str, low: int, high: int, optional: bool = False) -> None:
    value = table.get(key)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CheckpointError(f"{path}: checkpoint is damaged ({label} is {_kind(value) if key in table else 'missing'}"
                              f", expected a whole number from {low:,} to {high:,})")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (bool, int, float)):
        return repr(value)
    return {dict: "an object", list: "a list", str: "a string"}.get(type(value), type(value).__name__)


def find_checkpoint_in(run_dir: Path) -> Path:
    """The checkpoint of a run folder: `checkpoint.safetensors`, else the newest `*.safetensors`."""
    preferred = run_dir / ("checkpoint" + CHECKPOINT_SUFFIX)
    if preferred.exists():
        return preferred
    found = sorted(run_dir.glob("*" + CHECKPOINT_SUFFIX), key=lambda p: p.stat().st_mtime)
    if not found:
        raise CheckpointError(f"{run_dir}: folder holds no checkpoint (*{CHECKPOINT_SUFFIX})")
    return found[-1]


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__


def flatten_optimizer(prefix: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Optimizer state as tensors plus JSON-able rest (param_groups, scalar entries)."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, entry in sd["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{idx}.{key}"] = value
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def unflatten_optimizer(prefix: str, ckpt: Checkpoint, info: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, value in ckpt.group(prefix).items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    for idx, entries in info.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(entries)
    return {"state": state, "param_groups": info["param_groups"]}
