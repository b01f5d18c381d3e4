"""Editing whole photos: each face's attribute edit pasted back into the photo at its own resolution,
one photo or a folder. Qt-free; the CLI's `edit` and the Attributes panel both use it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping

import numpy as np
import torch
from PIL import Image

from core.api import Model
from core.data import (IMAGE_EXTENSIONS, DataError, ImageLoadError, NoFaceError, PreparedImage, picture_of,
                       prepare_faces, scan_relative)
from core.dataset import to_unit
from core.export import save_image
from core.faces import paste_change
from core.latent import apply_edits

SAVED_SUFFIXES = (".png", ".jpg", ".jpeg")
"""Edited photos keep their own format when it is one of these; others are written as PNG."""


@dataclass
class PhotoEdit:
    photo: Image.Image
    """The whole photo, its own size, with every face's edit pasted in."""
    faces: list[PreparedImage]
    originals: torch.Tensor
    """Each face's decode of its own latent: N x 3 x S x S in [0, 1]."""
    edited: torch.Tensor
    """Each face's decode of its edited latent."""


def face_latents(model: Model, faces: list[PreparedImage]) -> torch.Tensor:
    return model.encode(to_unit(torch.stack([face.pixels for face in faces])))


def encode_picture(model: Model, source: Path | str | Image.Image,
                   crop: str | None = None) -> tuple[Image.Image, list[PreparedImage], torch.Tensor]:
    """The picture, its faces cropped for the model (none when it looked for a face and found none) and
    their latents (posterior means). Unreadable files raise ImageLoadError."""
    try:
        faces = prepare_faces(source, model.image_size, crop or model.picture_crop)
    except NoFaceError:
        return picture_of(source), [], torch.empty(0, model.latent_dim)
    return faces[0].original, faces, face_latents(model, faces)


def paste_edits(photo: Image.Image, transforms: list[np.ndarray], originals: torch.Tensor,
                edited: torch.Tensor) -> Image.Image:
    """The photo with each face's change (edited decode minus unedited decode, N x 3 x S x S in [0, 1])
    added where it came from; `transforms` map photo pixels to each face's crop pixels."""
    picture = np.asarray(photo.convert("RGB"))
    changes = ((edited - originals) * 255).permute(0, 2, 3, 1).float().numpy()
    for to_crop, change in zip(transforms, changes):
        picture = paste_change(picture, to_crop, change)
    return Image.fromarray(picture)


def photo_preview(photo: Image.Image, to_crop: np.ndarray, max_side: int) -> tuple[Image.Image, np.ndarray]:
    """A copy of the photo at most max_side pixels on its longer side, with the transform for it (cheap
    paste-back while a slider moves)."""
    scale = min(1.0, max_side / max(photo.size))
    if scale == 1.0:
        return photo, to_crop
    small = photo.resize((max(1, round(photo.width * scale)), max(1, round(photo.height * scale))),
                         Image.Resampling.LANCZOS, reducing_gap=2.0)
    return small, to_crop @ np.diag([photo.width / small.width, photo.height / small.height, 1.0])


def edit_faces(model: Model, faces: list[PreparedImage], edits: Mapping[str, float],
               vectors: Mapping[str, torch.Tensor] | None = None) -> PhotoEdit:
    """Encode, edit and paste back every face of one photo; `vectors` default to the model's attribute
    vectors. Both decodes come from one batch, so a face the edit leaves alone changes by exactly zero."""
    z = face_latents(model, faces)
    decoded = model.decode(torch.cat([z, apply_edits(z, dict(edits), vectors or model.attributes)]))
    originals, edited = decoded[:len(z)], decoded[len(z):]
    photo = paste_edits(faces[0].original, [face.to_crop for face in faces], originals, edited)
    return PhotoEdit(photo, faces, originals, edited)


def edit_photo(model: Model, source: Path | str | Image.Image, edits: Mapping[str, float],
               crop: str | None = None, vectors: Mapping[str, torch.Tensor] | None = None) -> PhotoEdit:
    """One photo, every face edited (NoFaceError when automatic cropping finds none)."""
    return edit_faces(model, prepare_faces(source, model.image_size, crop or model.picture_crop), edits, vectors)


@dataclass
class FolderEdit:
    """What editing a folder did."""

    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(relative path, reason): photos without a face, unreadable files."""


def edited_name(relative: str) -> str:
    path = Path(relative)
    return str(path if path.suffix.lower() in SAVED_SUFFIXES else path.with_suffix(".png"))


def folder_targets(folder: Path, out: Path, overwrite: bool) -> list[tuple[str, Path]]:
    """(relative input path, output path) for every picture under `folder`; refuses to write into the
    input folder, and (unless `overwrite`) into files that already exist."""
    folder, out = folder.expanduser().resolve(), out.expanduser().resolve()
    if out == folder or folder in out.parents:
        raise DataError(f"{out}: the output folder must be outside the photos' folder {folder}")
    relative = scan_relative(folder)
    if not relative:
        raise DataError(f"{folder}: no pictures found (looked for {', '.join(IMAGE_EXTENSIONS)} files)")
    targets = [(rel, out / edited_name(rel)) for rel in relative]
    existing = [target for _, target in targets if target.exists()]
    if existing and not overwrite:
        raise DataError(f"{out}: {len(existing)} of the edited files already exist (first: {existing[0].name}); "
                        "choose an empty folder or allow overwriting")
    return targets


def edit_folder(model: Model, folder: Path | str, out: Path | str, edits: Mapping[str, float],
                crop: str | None = None, overwrite: bool = False,
                vectors: Mapping[str, torch.Tensor] | None = None) -> Iterator[tuple[int, int, FolderEdit]]:
    """Edit every photo under `folder` into the same relative path under `out`, yielding (done, total,
    report so far) after each photo; photos without a face or unreadable are listed, never fatal."""
    targets = folder_targets(Path(folder), Path(out), overwrite)
    report = FolderEdit()
    root = Path(folder).expanduser().resolve()
    for done, (relative, target) in enumerate(targets, start=1):
        try:
            result = edit_photo(model, root / relative, edits, crop, vectors)
            target.parent.mkdir(parents=True, exist_ok=True)
            report.written.append(save_image(result.photo, target, overwrite=overwrite))
        except ImageLoadError as error:
            report.skipped.append((relative, error.reason))
        yield done, len(targets), report


def run_folder_edit(steps: Iterator[tuple[int, int, FolderEdit]],
                    progress: Callable[[int, int], None] | None = None) -> FolderEdit:
    """Drive edit_folder to the end, reporting progress; returns the final report."""
    report = FolderEdit()
    for done, total, report in steps:
        if progress:
            progress(done, total)
    return report
