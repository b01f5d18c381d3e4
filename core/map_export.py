"""Faces chosen on the latent map, out of the app: a CSV of where each lies, and a folder of their pictures.

Plain torch + csv; never imports Qt. Like core.export, nothing is replaced unless overwrite=True and every file
is written atomically (a temporary file beside it, then a rename).
"""
from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch import Tensor

from core.checkpoint import write_text_atomically
from core.data import Cancel, Progress
from core.export import _target, save_image

UNKNOWN_LABEL = ""
"""A label cell for a face whose label is not known (0 in the label matrix); 1 has it, -1 lacks it."""


def selection_table(sources: Sequence[str], coords: np.ndarray, latents: Tensor, labels: Tensor | None = None,
                    label_names: Sequence[str] = ()) -> list[list[str]]:
    """Header and one row per face: source (file name, or what the face is), x, y, z0..z{D-1}, then a column per
    label when the faces have labels (1 has, -1 lacks, empty unknown). Latents keep float32 precision (9 digits)."""
    if not len(sources) == len(coords) == len(latents) or (labels is not None and len(labels) != len(sources)):
        raise ValueError(f"need as many map positions, latents and labels as faces ({len(sources)})")
    names = list(label_names) if labels is not None else []
    header = ["source", "x", "y", *(f"z{i}" for i in range(latents.shape[1])), *names]
    rows = [header]
    for i, source in enumerate(sources):
        cells = [source, f"{coords[i, 0]:.6g}", f"{coords[i, 1]:.6g}", *(f"{v:.9g}" for v in latents[i].tolist())]
        if names:
            cells += [str(int(v)) if v else UNKNOWN_LABEL for v in labels[i].tolist()]
        rows.append(cells)
    return rows


def save_csv(rows: Sequence[Sequence[object]], path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Write rows (the first is the header) as a .csv file in one atomic step; returns the path written."""
    target, _ = _target(path, {".csv": "CSV"}, overwrite)
    table = io.StringIO()
    csv.writer(table).writerows(rows)
    return write_text_atomically(target, table.getvalue())


def face_image_paths(sources: Sequence[str], folder: str | os.PathLike[str]) -> list[Path]:
    """Where save_face_images puts each face: NNNN_<source>.png, numbered in selection order from 0001, the
    source's file stem with anything but letters, digits, '-' and '.' made '_'."""
    folder = Path(folder).expanduser()
    digits = max(4, len(str(len(sources))))
    return [folder / f"{i:0{digits}d}_{re.sub(r'[^0-9A-Za-z.-]+', '_', Path(s).stem).strip('_') or 'face'}.png"
            for i, s in enumerate(sources, start=1)]


def save_face_images(images: Tensor, sources: Sequence[str], folder: str | os.PathLike[str], overwrite: bool = False,
                     progress: Progress | None = None, cancel: Cancel | None = None) -> list[Path]:
    """One PNG per face (N x 3 x H x W in [0, 1] or uint8) into `folder` (made if missing), named by
    face_image_paths; returns the files written. Raises FileExistsError before writing anything when a name is
    taken (unless overwrite). progress(done, total) follows the pictures; a cancel() that turns True stops
    before the next one (those written stay)."""
    if not len(sources) or len(images) != len(sources):
        raise ValueError(f"need one image per face and at least one face, got {len(images)} images for "
                         f"{len(sources)} faces")
    targets = face_image_paths(sources, folder)
    taken = [p for p in targets if p.exists()]
    if taken and not overwrite:
        raise FileExistsError(f"{len(taken)} of the {len(targets)} files are already in {targets[0].parent} "
                              f"(e.g. {taken[0].name}); pass overwrite=True to replace them")
    targets[0].parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for image, target in zip(images, targets):
        if cancel is not None and cancel():
            break
        written.append(save_image(image, target, overwrite=overwrite))
        if progress is not None:
            progress(len(written), len(targets))
    return written
