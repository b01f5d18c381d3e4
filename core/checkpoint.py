"""Checkpoint files: one safetensors file holding tensors and a JSON metadata document.

Loading never unpickles. Saving writes a temporary file beside the target, fsyncs it and
renames it over the target, so a crash mid-save leaves the previous checkpoint intact.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

FORMAT_NAME = "vaegan-explorer"
FORMAT_VERSION = 1
CHECKPOINT_SUFFIX = ".safetensors"


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
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION), "meta": json.dumps(ckpt.meta)}
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in ckpt.tensors.items()}
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=header)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise CheckpointError(f"{path}: could not write checkpoint ({exc.strerror or exc})") from exc
        raise
    return path


def _read_header(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return f.metadata() or {}


def _checked_path_and_meta(path: str | Path) -> tuple[Path, dict]:
    """The checkpoint file (a run folder's, for a folder) and its metadata, read from the header alone."""
    path = Path(path)
    if path.is_dir():
        path = find_checkpoint_in(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        header = _read_header(path)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt: {_short(exc)})") from exc
    if header.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path}: not a VAE-GAN Explorer checkpoint (a safetensors file from another program)")
    try:
        version = int(header.get("format_version", "0"))
    except ValueError:
        version = -1
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: written by a newer version of the app (format {version}, this app reads up to "
                              f"{FORMAT_VERSION}); please update the app")
    if version < 1:
        raise CheckpointError(f"{path}: unknown checkpoint format version {header.get('format_version')!r}")
    try:
        return path, json.loads(header.get("meta", "{}"))
    except ValueError as exc:
        raise CheckpointError(f"{path}: checkpoint is damaged ({_short(exc)})") from exc


def load_checkpoint_meta(path: str | Path) -> dict:
    """A checkpoint's metadata without reading its tensors (same checks and errors as load_checkpoint)."""
    return _checked_path_and_meta(path)[1]


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    path, meta = _checked_path_and_meta(path)
    try:
        tensors = load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: checkpoint is damaged ({_short(exc)})") from exc
    return Checkpoint(tensors=tensors, meta=meta)


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
