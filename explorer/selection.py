"""The shared current-selection model that lets panels pass faces and models to each other."""
from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from PySide6.QtCore import QObject, Signal

from core.api import Model, ReferenceMap
from core.compare import check_comparable
from core.data import ImageLoadError, NoFaceError, PreparedImage, prepare_faces
from core.fit import FaceFit, FitSettings, as_share, fitting, on_every_core
from core.model import DecoderTuning
from core.photo import face_crops
from explorer.undo import UndoStack


@dataclass
class FaceItem:
    """A face known to the app: where it came from, its crop (3 x S x S in [0, 1]) and its latent."""

    name: str
    latent: torch.Tensor
    image: torch.Tensor | None = None
    source: str = ""
    photo: Image.Image | None = None
    """The whole picture the face was cut from, when it came from one (edits can be pasted back into it)."""
    to_crop: np.ndarray | None = None
    """2 x 3: photo pixels -> crop pixels."""
    tuning: DecoderTuning | None = None
    """The decoder tuned on this face when it was fitted (core.fit): its latent is then the fitted one."""
    face_index: int = 0
    """Which face of the photo it is (largest first)."""
    photo_path: str = ""
    """The photo's file, when it came from one."""
    pivot: bool = False
    """Its latent is the face as fitted (not an edit of it): the latent the decoder was tuned around."""

    @property
    def fitted(self) -> bool:
        return bool(self.tuning)


def face_image(model: Model, face: FaceItem, latent: torch.Tensor | None = None) -> torch.Tensor:
    """The face as the model draws it (3 x S x S in [0, 1]): its latent, or `latent` (an edit of it), through the
    decoder tuned on it when it was fitted."""
    z = face.latent if latent is None else latent
    return model.decode(z.float().reshape(1, -1), tuning=face.tuning)[0]


def reference_face(reference: ReferenceMap, index: int) -> FaceItem:
    """Face `index` of a model's reference map, with the thumbnail the model rendered of it."""
    return FaceItem(f"Reference face {index + 1}", reference.latents[index].float().clone(),
                    reference.thumbnails[index].float() / 255, "map")


def picture_face_items(path: Path, faces: list[PreparedImage], fit: FaceFit) -> list[FaceItem]:
    """The faces of one picture file as fitted together (or encoded, for a FAST fit)."""
    names = [path.name] if len(faces) == 1 else [f"{path.name} · face {k}" for k in range(1, len(faces) + 1)]
    return [FaceItem(name, latent, face.pixels.float() / 255, str(path), face.original, face.to_crop,
                     fit.tuning or None, index, str(path), bool(fit.tuning))
            for index, (name, face, latent) in enumerate(zip(names, faces, fit.latents))]


@dataclass
class PictureFaces:
    faces: list[FaceItem]
    problems: list[str]
    """A line for each picture that gave no face."""


def fitting_pictures(model: Model, paths: list[Path],
                     settings: FitSettings = FitSettings()) -> Generator[float, None, PictureFaces]:
    """Every face of each picture, aligned and fitted (the faces of a picture together), for a generator worker:
    yields the share done (0 to 1) and returns the faces and a line per picture that gave none."""
    faces: list[FaceItem] = []
    problems: list[str] = []
    for done, path in enumerate(paths):
        yield done / len(paths)
        try:
            found = prepare_faces(path, model.image_size, model.picture_crop)
        except NoFaceError:
            problems.append(f"no face found in {path.name} (the Reconstruct panel can use its centre square)")
            continue
        except ImageLoadError as error:
            problems.append(f"{path.name}: {error.reason}")
            continue
        steps = on_every_core(fitting(model, face_crops(found), settings))
        fit = yield from as_share(steps, done / len(paths), 1 / len(paths))
        faces += picture_face_items(path, found, fit)
    return PictureFaces(faces, problems)


def comparison_input(face: FaceItem, model: Model, image_size: int) -> torch.Tensor:
    """What a comparison model encodes for a face (3 x S x S in [0, 1]): its crop when it has one of that size, else
    the open `model`'s decode of its latent (a random or map face)."""
    if face.image is not None and face.image.shape[-1] == image_size:
        return face.image.float()
    return face_image(model, face)


class Selection(QObject):
    """One per window. Panels listen to its signals and call its methods; they never talk directly. They record
    their changes on its `undo_stack` (the window's, else one of its own); a new model clears it."""

    modelChanged = Signal(object)          # core.Model | None
    compareModelChanged = Signal(object)   # core.Model | None: a second model shown beside the open one
    faceSelected = Signal(object)          # FaceItem: the current face (attribute panel edits it)
    facesAdded = Signal(list)              # list[FaceItem]: new faces to highlight on the latent map
    endpointsSent = Signal(list)           # list[FaceItem]: endpoints for the interpolation panel
    endpointsAdded = Signal(list)          # list[FaceItem]: more endpoints, after the ones it has
    groupsSent = Signal(object, object)    # (latents with, latents without): N x D tensors for a new vector
    attributesChanged = Signal()           # the model's attribute vectors were added to or changed
    pathChanged = Signal(object)           # N x D latents of the Interpolate panel's frames, drawn on the map (or None)

    def __init__(self, parent: QObject | None = None, undo_stack: UndoStack | None = None) -> None:
        super().__init__(parent)
        self.undo_stack = undo_stack or UndoStack(self)
        self.model: Model | None = None
        self.compare_model: Model | None = None
        self.current: FaceItem | None = None

    def set_model(self, model: Model | None) -> None:
        self.model = model
        self.current = None
        with self.undo_stack.replay():  # what panels show first for a new model is no step to undo
            self.modelChanged.emit(model)
        self.undo_stack.clear()

    def set_compare_model(self, model: Model | None) -> None:
        self.compare_model = model
        self.compareModelChanged.emit(model)

    def comparison(self) -> Model | None:
        """The model to show beside the open one, when there is one that takes faces of the same size."""
        if self.model is None or self.compare_model is None:
            return None
        try:
            check_comparable(self.model, self.compare_model)
        except ValueError:
            return None
        return self.compare_model

    def select_face(self, face: FaceItem) -> None:
        """Make `face` the current face; with the changes panels make for it, one step to undo."""
        with self.undo_stack.macro(f"Select {face.name}"):
            previous = self.current
            self.undo_stack.record("Current face", lambda: setattr(self, "current", face),
                                   lambda: setattr(self, "current", previous))
            self.faceSelected.emit(face)

    def add_faces(self, faces: list[FaceItem]) -> None:
        self.facesAdded.emit(faces)

    def send_endpoints(self, faces: list[FaceItem]) -> None:
        self.endpointsSent.emit(faces)

    def add_endpoints(self, faces: list[FaceItem]) -> None:
        self.endpointsAdded.emit(faces)

    def send_groups(self, with_latents: torch.Tensor, without_latents: torch.Tensor) -> None:
        self.groupsSent.emit(with_latents, without_latents)

    def show_path(self, latents: torch.Tensor | None) -> None:
        self.pathChanged.emit(latents)

    def notify_attributes_changed(self) -> None:
        self.attributesChanged.emit()
