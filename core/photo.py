"""Editing whole photos: each face's attribute edit pasted back into the photo at its own resolution,
one photo or a folder. Qt-free; the CLI's `edit` and the Attributes panel both use it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Generator, Iterator, Mapping

import numpy as np
import torch
from PIL import Image

from core.api import Model
from core.data import (IMAGE_EXTENSIONS, DataError, ImageLoadError, NoFaceError, PreparedImage, picture_of,
                       prepare_faces, scan_relative)
from core.dataset import to_unit
from core.export import save_image
from core.faces import paste_change
from core.fit import Cancel, FaceFit, FitSettings, Progress, fit_faces, fitting
from core.latent import apply_edits
from core.metrics import gaussian_blur

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
    fit: FaceFit
    """The faces' fitted latents and the decoder tuned on them."""


@dataclass
class PhotoFit:
    """The faces of one photo (largest first) and their fit."""

    faces: list[PreparedImage]
    fit: FaceFit


def face_crops(faces: list[PreparedImage]) -> torch.Tensor:
    """The faces' crops as the networks see them: N x 3 x S x S in [0, 1]."""
    return to_unit(torch.stack([face.pixels for face in faces]))


def face_latents(model: Model, faces: list[PreparedImage]) -> torch.Tensor:
    return model.encode(face_crops(faces))


def fit_photo_faces(model: Model, faces: list[PreparedImage], settings: FitSettings = FitSettings(),
                    progress: Progress | None = None, cancel: Cancel | None = None) -> FaceFit:
    """The faces of one photo fitted together (one batch, one tuned decoder)."""
    return fit_faces(model, face_crops(faces), settings, progress, cancel)


def encode_picture(model: Model, source: Path | str | Image.Image,
                   crop: str | None = None) -> tuple[Image.Image, list[PreparedImage], torch.Tensor]:
    """The picture, its faces cropped for the model (none when it looked for a face and found none) and
    their latents (posterior means). Unreadable files raise ImageLoadError."""
    try:
        faces = prepare_faces(source, model.image_size, crop or model.picture_crop)
    except NoFaceError:
        return picture_of(source), [], torch.empty(0, model.latent_dim)
    return faces[0].original, faces, face_latents(model, faces)


def refitting_photo(model: Model, photo: Path | str, pivots: Mapping[int, torch.Tensor], crop: str | None = None,
                    settings: FitSettings = FitSettings()) -> Generator[tuple[int, int], None, PhotoFit]:
    """A photo's faces found again and its decoder tuned again on latents fitted before (face number -> latent):
    a saved session gets its fitted faces back without storing the decoder. Faces with no pivot are fitted
    afresh. A generator for workers: yields (steps done, planned); returns the photo's faces and the fit."""
    faces = prepare_faces(photo, model.image_size, crop or model.picture_crop)
    kept = {index: latent for index, latent in pivots.items() if index < len(faces)}
    if len(kept) < len(faces):
        fit = yield from fitting(model, face_crops(faces), settings)
        latents = torch.stack([kept.get(index, latent) for index, latent in enumerate(fit.latents)])
    else:
        latents = torch.stack([kept[index] for index in range(len(faces))])
    fit = yield from fitting(model, face_crops(faces), settings, pivots=latents)
    return PhotoFit(faces, fit)


CHANGE_BANDS_SIGMA = 1.0
"""Model pixels: the edit's change is split into a coarse band (blurred with this Gaussian) and a fine band."""
COARSE_GATE = (1.0, 3.0)
FINE_GATE = (4.0, 12.0)
"""Grey levels: where a band changes a pixel by less than the first, the photo keeps its own pixel; by more than
the second, the band is pasted (a smooth step between)."""
FINE_SHARE = 0.5
"""How much of the fine band is pasted. The change is drawn at the model's size and upsampled three times or more
onto a large face: its fine band is mostly the decoder's own 64 px texture (strands, pores), which would smear over
the photo's finer texture, while the coarse band carries what the edit changes (colour, shading, shapes)."""


def band_gate(change: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """A smooth step from 0 where the change (N x 3 x S x S, grey levels) is below `low` to 1 above `high`."""
    magnitude = change.abs().amax(dim=1, keepdim=True)
    magnitude = torch.nn.functional.avg_pool2d(magnitude, 3, stride=1, padding=1, count_include_pad=False)
    ramp = ((magnitude - low) / (high - low)).clamp(0, 1)
    return ramp * ramp * (3 - 2 * ramp)


def blended_changes(originals: torch.Tensor, edited: torch.Tensor) -> torch.Tensor:
    """The edits' changes in grey levels (N x 3 x S x S) as pasted into a photo: the coarse band where it is more
    than a ripple, and part of the fine band where it is strong (see FINE_SHARE)."""
    change = (edited - originals).float() * 255
    coarse = gaussian_blur(change, CHANGE_BANDS_SIGMA)
    fine = change - coarse
    return coarse * band_gate(coarse, *COARSE_GATE) + FINE_SHARE * fine * band_gate(fine, *FINE_GATE)


def paste_edits(photo: Image.Image, transforms: list[np.ndarray], originals: torch.Tensor,
                edited: torch.Tensor) -> Image.Image:
    """The photo with each face's change (edited decode minus unedited decode, N x 3 x S x S in [0, 1], blended
    to keep the photo's own detail: blended_changes) added where it came from; `transforms` map photo pixels to
    each face's crop pixels."""
    picture = np.asarray(photo.convert("RGB"))
    changes = blended_changes(originals, edited).permute(0, 2, 3, 1).numpy()
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
               vectors: Mapping[str, torch.Tensor] | None = None, settings: FitSettings = FitSettings()) -> PhotoEdit:
    """Fit (core.fit; FAST: encode only), edit and paste back every face of one photo; `vectors` default to
    the model's attribute vectors. Both decodes come from one batch through the same tuned decoder, so a face
    the edit leaves alone changes by exactly zero."""
    fit = fit_photo_faces(model, faces, settings)
    z = fit.latents
    decoded = model.decode(torch.cat([z, apply_edits(z, dict(edits), vectors or model.attributes)]),
                           tuning=fit.tuning)
    originals, edited = decoded[:len(z)], decoded[len(z):]
    photo = paste_edits(faces[0].original, [face.to_crop for face in faces], originals, edited)
    return PhotoEdit(photo, faces, originals, edited, fit)


def edit_photo(model: Model, source: Path | str | Image.Image, edits: Mapping[str, float],
               crop: str | None = None, vectors: Mapping[str, torch.Tensor] | None = None,
               settings: FitSettings = FitSettings()) -> PhotoEdit:
    """One photo, every face fitted and edited (NoFaceError when automatic cropping finds none)."""
    faces = prepare_faces(source, model.image_size, crop or model.picture_crop)
    return edit_faces(model, faces, edits, vectors, settings)


@dataclass
class FolderEdit:
    """What editing a folder did."""

    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(relative path, reason): photos without a face, unreadable files."""


def edited_name(relative: str, face_only: bool = False) -> str:
    """The output name of an edited photo: its own name (PNG for formats not in SAVED_SUFFIXES); with
    `face_only`, a PNG of its (first) face crop."""
    path = Path(relative)
    return str(path if path.suffix.lower() in SAVED_SUFFIXES and not face_only else path.with_suffix(".png"))


def face_file_names(target: Path, count: int) -> list[Path]:
    """`target` for a photo's only face, `<stem>_1<suffix>`, `<stem>_2<suffix>`... when it holds several."""
    if count == 1:
        return [target]
    return [target.with_name(f"{target.stem}_{k}{target.suffix}") for k in range(1, count + 1)]


def folder_targets(folder: Path, out: Path, overwrite: bool, face_only: bool = False) -> list[tuple[str, Path]]:
    """(relative input path, output path) for every picture under `folder`; refuses to write into the
    input folder, and (unless `overwrite`) into files that already exist."""
    folder, out = folder.expanduser().resolve(), out.expanduser().resolve()
    if out == folder or folder in out.parents:
        raise DataError(f"{out}: the output folder must be outside the photos' folder {folder}")
    relative = scan_relative(folder)
    if not relative:
        raise DataError(f"{folder}: no pictures found (looked for {', '.join(IMAGE_EXTENSIONS)} files)")
    targets = [(rel, out / edited_name(rel, face_only)) for rel in relative]
    existing = [target for _, target in targets if target.exists()]
    if existing and not overwrite:
        raise DataError(f"{out}: {len(existing)} of the edited files already exist (first: {existing[0].name}); "
                        "choose an empty folder or allow overwriting")
    return targets


def edit_folder(model: Model, folder: Path | str, out: Path | str, edits: Mapping[str, float],
                crop: str | None = None, overwrite: bool = False, vectors: Mapping[str, torch.Tensor] | None = None,
                settings: FitSettings = FitSettings(),
                face_only: bool = False) -> Iterator[tuple[int, int, FolderEdit]]:
    """Edit every photo under `folder` into the same relative path under `out` (with `face_only`, each face's
    edited crop as a PNG: `<name>.png`, or `<name>_1.png`... for several faces), yielding (done, total, report so
    far) after each photo; photos without a face or unreadable are listed, never fatal."""
    targets = folder_targets(Path(folder), Path(out), overwrite, face_only)
    report = FolderEdit()
    root = Path(folder).expanduser().resolve()
    for done, (relative, target) in enumerate(targets, start=1):
        try:
            result = edit_photo(model, root / relative, edits, crop, vectors, settings)
            target.parent.mkdir(parents=True, exist_ok=True)
            pictures = list(result.edited) if face_only else [result.photo]
            names = face_file_names(target, len(pictures)) if face_only else [target]
            report.written += [save_image(picture, name, overwrite=overwrite) for picture, name in zip(pictures, names)]
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
