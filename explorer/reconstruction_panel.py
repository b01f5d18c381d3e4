"""Reconstruct: drop, paste or open face pictures; see each one's crop and the model's reconstruction (and the
comparison model's, when View ▸ Compare with is on)."""
from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from PySide6.QtCore import QMimeData, Qt, Signal
from shiboken6 import isValid
from PySide6.QtGui import QGuiApplication, QImage, QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFrame, QHBoxLayout, QLabel, QProgressBar,
                               QPushButton, QScrollArea, QSizePolicy, QToolButton, QVBoxLayout, QWidget)

from core.api import Model
from core.compare import FaceFigures, comparison_labels, face_figures
from core.errors import one_line
from core.data import CROP_METHODS, IMAGE_EXTENSIONS, ImageLoadError, scan_folder
from core.fit import FaceFit, as_share, fitting, on_every_core
from core.metrics import psnr
from core.dataset import to_unit
from core.model import DecoderTuning
from core.photo import encode_picture
from explorer.selection import FaceItem, Selection
from explorer.settings import app_settings, folder_setting
from explorer.widgets import ERROR_STYLE, ImageView, Panel, WorkerBase, start_worker

TILE_SIZE = 160
CROP_SETTING = "reconstruct/crop"
CROP_CHOICES = (("Automatic", ""), ("Align faces", "face"), ("CelebA box", "celeba"), ("Centre square", "center"),
                ("Whole picture", "none"))
"""The crop combo: (label, crop mode); "" is the model's own rule (automatic face alignment for face models)."""

ImageSource = Path | Image.Image
COMPARE_LEGEND = ("Under each reconstruction: its pixel error (MSE) and sharpness against the crop (1 = as sharp, "
                  "below 1 blurred)")


@dataclass
class Reconstruction:
    original: Image.Image
    cropped: Image.Image
    pixels: torch.Tensor          # 3 x S x S uint8, what the encoder saw
    reconstruction: torch.Tensor  # 3 x S x S float in [0, 1]
    latent: torch.Tensor          # D
    method: str                   # how the crop was made (core.data.CROP_METHODS)
    to_crop: np.ndarray           # 2 x 3: original pixels -> crop pixels
    compared: torch.Tensor | None = None
    """The comparison model's reconstruction of the same crop (3 x S x S in [0, 1]), when comparing."""
    tuning: DecoderTuning | None = None
    """The decoder tuned on the picture's faces once they are fitted (core.fit); `latent` is then the fitted one."""
    encoder_mse: float | None = None
    """The encoder's pixel error, kept when the fitted reconstruction replaces it."""

    @property
    def mse(self) -> float:
        return float(((self.pixels.float() / 255 - self.reconstruction) ** 2).mean())

    @property
    def psnr(self) -> float:
        return psnr(self.mse)

    def figures(self, image: torch.Tensor) -> FaceFigures:
        """Pixel error and sharpness ratio of a reconstruction of this crop."""
        return face_figures(to_unit(self.pixels).unsqueeze(0), image.unsqueeze(0))[0]


@dataclass
class PictureResult:
    original: Image.Image
    faces: list[Reconstruction]
    """One per face; empty when the crop looked for a face and found none."""
    labels: tuple[str, str] | None = None
    """The names of the open model and the comparison model, when comparing."""


def reconstruct_faces(model: Model, source: ImageSource, crop: str,
                      comparison: Model | None = None) -> PictureResult:
    """Every face of a picture (one item for plain crops), encoded and decoded in one batch; the comparison
    model, if any, reconstructs the same crops."""
    original, prepared, latents = encode_picture(model, source, crop)
    decoded = model.decode(latents) if len(latents) else latents
    compared = [None] * len(prepared)
    if comparison is not None and prepared:
        compared = list(comparison.reconstruct(to_unit(torch.stack([p.pixels for p in prepared]))))
    return PictureResult(original, [
        Reconstruction(p.original, p.cropped, p.pixels, image, latent, p.method, p.to_crop, other)
        for p, image, latent, other in zip(prepared, decoded, latents, compared)],
        comparison_labels(model, comparison) if comparison is not None else None)


@dataclass
class PictureFit:
    fit: FaceFit
    images: torch.Tensor
    """The fitted reconstructions."""
    compared: torch.Tensor | None
    """The comparison model's fitted reconstructions, when comparing."""


def fit_picture(model: Model, crops: torch.Tensor, comparison: Model | None) -> Generator[float, None, PictureFit]:
    """Fit a picture's faces together, by the comparison model too when comparing (so both are judged alike); a
    generator worker: yields the share done."""
    share = 1.0 if comparison is None else 0.5
    fit = yield from as_share(on_every_core(fitting(model, crops)), 0.0, share)
    compared = None
    if comparison is not None:
        other = yield from as_share(on_every_core(fitting(comparison, crops)), share, share)
        compared = comparison.decode(other.latents, tuning=other.tuning)
    return PictureFit(fit, model.decode(fit.latents, tuning=fit.tuning), compared)


def describe_error(exc: Exception) -> str:
    if isinstance(exc, ImageLoadError):
        return f"Cannot use this picture: {exc.reason}."
    return f"Reconstruction failed: {exc}"


def captioned(view: ImageView, caption: str) -> tuple[QWidget, QLabel]:
    label = QLabel(caption, alignment=Qt.AlignmentFlag.AlignCenter)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(2)
    layout.addWidget(view)
    layout.addWidget(label)
    return box, label


def tile() -> ImageView:
    view = ImageView(min_side=TILE_SIZE)
    view.setFixedSize(TILE_SIZE, TILE_SIZE)
    return view


class ReconstructionItem(QFrame):
    """One picture: original, crop and reconstruction side by side (and the comparison model's reconstruction
    when comparing), the error, and where to send it."""

    removed = Signal(object)
    sendToAttributes = Signal(object)     # FaceItem
    sendToInterpolation = Signal(object)  # FaceItem
    showOnMap = Signal(object)            # FaceItem

    useCentreCrop = Signal(object)        # this item: no face was found, the user asks for the centre square

    def __init__(self, name: str, source: ImageSource, face_index: int = 0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name, self.source, self.face_index = name, source, face_index
        self.request: object = None
        """The reconstruction under way (a plain token): only its result is shown (an older one's may still
        arrive). Not the worker itself: a worker named in its own callbacks makes a cycle of Qt objects, which the
        garbage collector may then free on a worker thread, where PySide deadlocks."""
        self.crop_override: str | None = None
        self.result: Reconstruction | None = None
        self.extras: list[ReconstructionItem] = []
        """The cards of the picture's further faces, shown after this one (made from its result)."""
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.tiles = [tile(), tile(), tile(), tile()]
        self.tiles[0].setToolTip("The picture as loaded")
        self.tiles[1].setToolTip("The crop the encoder sees, cropped the way the training faces were")
        self.tiles[2].setToolTip("The model's drawing of this face: the encoder's guess at once, then the face fitted "
                                 "(its latent optimised and the decoder tuned around it)")
        self.tiles[3].setToolTip("The comparison model's reconstruction of the same crop (View ▸ Compare with)")
        self.title = QLabel(f"<b>{name}</b>")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status = QLabel("Reconstructing…")
        self.status.setWordWrap(True)
        self.fit_progress = QProgressBar(visible=False, maximum=100, textVisible=True, format="Fitting… %p%",
                                         toolTip="Fitting the model to this face: the reconstruction above is the "
                                                 "encoder's guess until the fit replaces it")
        self.fit_progress.setMaximumHeight(16)
        self.actions = [self._action("Send to attributes", "Edit this face with attribute sliders",
                                     self.sendToAttributes),
                        self._action("Send to interpolation", "Use this face as an end of a morph",
                                     self.sendToInterpolation),
                        self._action("Show on map", "Place this face on the latent map", self.showOnMap)]
        self.centre_button = QPushButton("Use the centre square", visible=False,
                                         toolTip="Encode the middle of the whole picture instead of a face")
        self.centre_button.clicked.connect(lambda: self.useCentreCrop.emit(self))
        close = QToolButton(text="✕", toolTip="Remove this picture", autoRaise=True)
        close.clicked.connect(lambda: self.removed.emit(self))
        self._build_layout(close)
        self._show_tiles(True)  # no empty comparison tile while it works: the card keeps its width

    def _action(self, text: str, tip: str, signal: Signal) -> QPushButton:
        button = QPushButton(text, toolTip=tip, enabled=False)
        button.clicked.connect(lambda: signal.emit(self.face()))
        return button

    def _build_layout(self, close: QToolButton) -> None:
        side = QVBoxLayout()
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(close)
        side.addLayout(head)
        side.addWidget(self.status)
        side.addWidget(self.fit_progress)
        side.addWidget(self.centre_button)
        side.addStretch(1)
        for button in self.actions:
            side.addWidget(button)
        row = QHBoxLayout(self)
        boxes = [captioned(view, caption) for view, caption
                 in zip(self.tiles, ("original", "crop (model input)", "reconstruction", "comparison"))]
        self.tile_boxes = [box for box, _ in boxes]
        self.captions = [label for _, label in boxes]
        for box in self.tile_boxes:
            row.addWidget(box, 0, Qt.AlignmentFlag.AlignTop)
        row.addSpacing(8)
        side_widget = QWidget()
        side_widget.setLayout(side)
        side_widget.setMinimumWidth(300)
        side_widget.setMaximumWidth(340)
        row.addWidget(side_widget, 1)
        row.addStretch(1)

    def face(self) -> FaceItem:
        assert self.result is not None
        path = str(self.source) if isinstance(self.source, Path) else ""
        return FaceItem(self.name, self.result.latent, self.result.pixels.float() / 255, path or "reconstruction",
                        self.result.original, self.result.to_crop, self.result.tuning, self.face_index, path,
                        self.fitted)

    @property
    def fitted(self) -> bool:
        return self.result is not None and bool(self.result.tuning)

    def set_fit_progress(self, share: float | None) -> None:
        """Show how far the fit is (0 to 1), or hide the bar (None)."""
        self.fit_progress.setVisible(share is not None)
        if share is not None:
            self.fit_progress.setValue(round(100 * share))

    def set_fitted(self, latent: torch.Tensor, image: torch.Tensor, tuning: DecoderTuning,
                   labels: tuple[str, str] | None, compared: torch.Tensor | None = None) -> None:
        """Replace the encoder's reconstruction (and the comparison model's, when comparing) with the fitted one."""
        assert self.result is not None
        encoder_mse = self.result.mse
        self.set_result(replace(self.result, latent=latent, reconstruction=image, tuning=tuning,
                                encoder_mse=encoder_mse, compared=compared), labels)

    def set_result(self, result: Reconstruction, labels: tuple[str, str] | None = None) -> None:
        """Show a reconstruction; with `labels` (the two models' names) also the comparison model's."""
        self.result = result
        self.tiles[0].set_image(result.original)
        self.tiles[1].set_image(result.cropped)
        self.tiles[2].set_image(result.reconstruction)
        self.tiles[3].set_image(result.compared)
        self.status.setForegroundRole(QPalette.ColorRole.WindowText)
        if result.compared is not None and labels is not None:
            for caption, label, image in zip(self.captions[2:], labels, (result.reconstruction, result.compared)):
                figures = result.figures(image)
                caption.setText(f"{label}\n{figures.short_text()}")
                caption.setToolTip(f"{label}: {figures.text()}")
            self.status.setText(f"Crop: {CROP_METHODS[result.method]}\n{COMPARE_LEGEND}")
        else:
            self.captions[2].setText("fitted reconstruction" if result.tuning else "reconstruction")
            self.captions[2].setToolTip("")
            before = f"\nThe encoder alone: {result.encoder_mse:.4f}" if result.encoder_mse is not None else ""
            self.status.setText(f"Crop: {CROP_METHODS[result.method]}\n"
                                f"Pixel error (MSE): {result.mse:.4f}{before}\nPSNR: {result.psnr:.1f} dB")
        self.centre_button.hide()
        self.status.setToolTip("Mean squared error over pixels in [0, 1] and peak signal-to-noise ratio; "
                               "the VAE-GAN trades pixel accuracy for sharpness, so expect moderate values. "
                               "Sharpness: the Laplacian variance of the reconstruction over the crop's (1 = as "
                               "sharp, below 1 blurred)")
        for button in self.actions:
            button.setEnabled(True)
        self._show_tiles(True)

    def _show_tiles(self, visible: bool) -> None:
        compared = self.result is not None and self.result.compared is not None
        for box in self.tile_boxes[:3]:
            box.setVisible(visible)
        self.tile_boxes[3].setVisible(visible and compared)

    def set_error(self, message: str) -> None:
        self.result = None
        for view in self.tiles[1:]:
            view.set_image(None)
        self.status.setText(message)
        self.status.setStyleSheet(ERROR_STYLE)
        self._show_tiles(False)
        self.centre_button.hide()
        for button in self.actions:
            button.setEnabled(False)

    def set_no_face(self, original: Image.Image) -> None:
        """No face found: say so, still show the picture, and offer its centre square."""
        self.set_error("No face found in this picture.")
        self.tiles[0].set_image(original)
        self.tile_boxes[0].show()
        self.centre_button.show()

    def set_pending(self) -> None:
        """Working on it: the old result (another crop or model) can no longer be sent anywhere."""
        self.result = None
        self.status.setStyleSheet("")
        self.status.setText("Reconstructing…")
        self.centre_button.hide()
        for button in self.actions:
            button.setEnabled(False)

    def set_crisp(self, crisp: bool) -> None:
        for view in self.tiles:
            view.set_smooth(not crisp)


class ReconstructionPanel(Panel):
    """A card per face of each picture added. Adding pictures, closing cards and Clear are undoable: undo shows the
    cards again with their results (nothing is encoded again)."""

    def __init__(self, selection: Selection, parent: QWidget | None = None) -> None:
        super().__init__(selection, parent)
        self.pictures: tuple[ReconstructionItem, ...] = ()
        """The first card of each picture, in the order added."""
        self.closed: frozenset[ReconstructionItem] = frozenset()
        """Cards the user closed (a picture's other faces stay)."""
        self.items: list[ReconstructionItem] = []
        """The cards shown: each picture's first card and its extras, less the closed ones."""
        self.fits: dict[ReconstructionItem, WorkerBase] = {}
        """The fits under way, by the picture's first card (a picture's faces are fitted together)."""
        self._scroll_target: ReconstructionItem | None = None
        """The first card just added, to scroll to once the list is laid out with it."""
        self.setAcceptDrops(True)
        self._build_ui()
        selection.compareModelChanged.connect(lambda _model: self.rerun_all())
        QShortcut(QKeySequence.StandardKey.Paste, self, activated=self.paste,
                  whatsThis="Paste a picture or a copied image file")
        self.set_model(selection.model)

    # ----- UI -----
    def _build_ui(self) -> None:
        open_button = QPushButton("Open…", toolTip="Choose one or more face pictures to reconstruct")
        open_button.clicked.connect(self.open_files)
        paste_button = QPushButton("Paste", toolTip="Reconstruct the picture on the clipboard (Ctrl+V)")
        paste_button.clicked.connect(self.paste)
        self.crop_combo = QComboBox(toolTip="How each picture becomes the model's square input. Automatic: "
                                    "faces are found and aligned like the training faces (one card per face); "
                                    "aligned CelebA pictures and model-sized squares keep their framing")
        for label, mode in CROP_CHOICES:
            self.crop_combo.addItem(label, mode)
        self.crop_combo.setCurrentIndex(max(0, self.crop_combo.findData(app_settings().value(CROP_SETTING, ""))))
        self.crop_combo.currentIndexChanged.connect(self._crop_changed)
        self.crisp = QCheckBox("Crisp pixels", toolTip="Upscale with square pixels instead of smoothing")
        self.crisp.toggled.connect(self._apply_crisp)
        self.interpolate_all = QPushButton("Interpolate all", toolTip="Send every reconstructed face to the "
                                           "Interpolate panel as a chain of endpoints")
        self.interpolate_all.clicked.connect(self._send_all_to_interpolation)
        clear = QPushButton("Clear", toolTip="Remove all pictures")
        clear.clicked.connect(self.clear)
        bar = QHBoxLayout()
        for widget in (open_button, paste_button, QLabel("Crop:"), self.crop_combo, self.crisp):
            bar.addWidget(widget)
        bar.addStretch(1)
        bar.addWidget(self.interpolate_all)
        bar.addWidget(clear)

        self.hint = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        font = self.hint.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        self.hint.setFont(font)
        self.list_widget = QWidget()
        self.list_layout = QVBoxLayout(self.list_widget)
        self.list_layout.addStretch(1)
        self.scroll = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        self.scroll.setWidget(self.list_widget)
        self.scroll.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.scroll.verticalScrollBar().rangeChanged.connect(self._scroll_to_target)

        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.hint, 1)
        layout.addWidget(self.scroll, 1)
        self._update_hint()

    def _update_hint(self) -> None:
        has_items = bool(self.items)
        self.hint.setVisible(not has_items)
        self.scroll.setVisible(has_items)
        self.interpolate_all.setEnabled(sum(i.result is not None for i in self.items) >= 2)
        model = self.selection.model
        if model is None:
            self.hint.setText("Open a model first (File ▸ Open model…), then drop face pictures here.")
        else:
            self.hint.setText("Drop face pictures here, paste one with Ctrl+V, or click “Open pictures…”.\n\n"
                              "Every face in a picture is found and aligned the way the model's training faces "
                              f"were ({model.image_size}×{model.image_size}), encoded to a latent vector and "
                              "decoded again.")

    # ----- input -----
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self.add_from_mime(event.mimeData()):
            event.acceptProposedAction()

    def add_from_mime(self, mime: QMimeData) -> int:
        """Add every local file (folders with their sub-folders, read like a training folder) or the image in
        `mime`; returns how many."""
        paths = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
        files = [f for p in paths for f in (scan_folder(p) if p.is_dir() else [p])]
        if files:
            self.add_sources([(f.name, f) for f in files])
        elif mime.hasImage():
            self.add_sources([("pasted picture", _qimage_to_pil(mime.imageData()))])
        return len(files) or int(mime.hasImage())

    def paste(self) -> None:
        if not self.add_from_mime(QGuiApplication.clipboard().mimeData()):
            self.statusMessage.emit("The clipboard holds no picture")

    def open_files(self) -> None:
        settings = app_settings()
        pattern = " ".join(f"*{ext}" for ext in IMAGE_EXTENSIONS)
        files, _ = QFileDialog.getOpenFileNames(self, "Open face pictures", folder_setting(settings, "pictures/folder"),
                                                f"Pictures ({pattern});;All files (*)")
        if files:
            settings.setValue("pictures/folder", str(Path(files[0]).parent))
            self.add_sources([(Path(f).name, Path(f)) for f in files])

    # ----- sessions -----
    def session_state(self) -> tuple[dict[str, Any], list[FaceItem]]:
        """The picture files (a pasted picture has no file and is not kept); each reconstructs again on restore."""
        pictures = list(dict.fromkeys(str(i.source) for i in self.items if isinstance(i.source, Path)))
        return {"pictures": pictures}, []

    def restore_session_state(self, state: dict[str, Any], faces: list[FaceItem]) -> None:
        pictures = state.get("pictures")
        paths = [Path(p) for p in (pictures if isinstance(pictures, list) else []) if isinstance(p, str)]
        self.clear()
        self.add_sources([(path.name, path) for path in paths if path.is_file()])
        missing = [path.name for path in paths if not path.is_file()]
        if missing:
            self.statusMessage.emit(f"Not found, left out of Reconstruct: {', '.join(missing)}")

    # ----- items -----
    def add_sources(self, sources: list[tuple[str, ImageSource]]) -> None:
        added = tuple(self._new_item(name, source) for name, source in sources)
        if not added:
            return
        self._change(f"Add {added[0].name}" if len(added) == 1 else f"Add {len(added)} pictures",
                     self.pictures + added, self.closed)
        for item in added:
            self._run(item)
        self._scroll_target = added[0]

    def _scroll_to_target(self) -> None:
        """Once the list has grown to hold the cards just added, scroll the first of them to the top of the view (as
        far as the list goes)."""
        card = self._scroll_target
        if card is None or self.list_widget.height() < self.list_layout.sizeHint().height():
            return
        self._scroll_target = None
        if card in self.items:
            self.scroll.verticalScrollBar().setValue(card.y())

    def _new_item(self, name: str, source: ImageSource, face_index: int = 0) -> ReconstructionItem:
        item = ReconstructionItem(name, source, face_index)
        item.removed.connect(self._remove)
        item.sendToAttributes.connect(self._send_to_attributes)
        item.sendToInterpolation.connect(self._send_to_interpolation)
        item.showOnMap.connect(self._show_on_map)
        item.useCentreCrop.connect(self._use_centre_crop)
        return item

    def _change(self, text: str, pictures: tuple[ReconstructionItem, ...],
                closed: frozenset[ReconstructionItem]) -> None:
        """Show these pictures, less the `closed` cards, as an undoable step named `text`."""
        before = self.pictures, self.closed
        self.selection.undo_stack.record(text, lambda: self._show_pictures(pictures, closed),
                                         lambda: self._show_pictures(*before))

    def _show_pictures(self, pictures: tuple[ReconstructionItem, ...], closed: frozenset[ReconstructionItem]) -> None:
        self.pictures, self.closed = pictures, closed
        self._lay_out()

    def _lay_out(self) -> None:
        """Show the cards of `pictures` in order; the others leave the panel (the undo stack may keep them)."""
        shown = [card for item in self.pictures for card in (item, *item.extras) if card not in self.closed]
        for card in self.items:
            self.list_layout.removeWidget(card)
            if card not in shown:
                card.setParent(None)
        for position, card in enumerate(shown):
            self.list_layout.insertWidget(position, card, 0, Qt.AlignmentFlag.AlignLeft)
            card.set_crisp(self.crisp.isChecked())
            card.show()
        self.items = shown
        self._update_fits()
        self._update_hint()

    # ----- fitting -----
    def _update_fits(self) -> None:
        """Fit every picture on show whose faces are not fitted yet; stop the fits of pictures no longer shown."""
        shown = set(self.items)
        for item in list(self.fits):
            if not shown & {item, *item.extras}:
                self._stop_fit(item)
        for item in self.pictures:
            cards = [card for card in (item, *item.extras) if card.result is not None]
            if cards and shown & set(cards) and item not in self.fits and not all(c.fitted for c in cards):
                self._start_fit(item, cards)

    def _start_fit(self, item: ReconstructionItem, cards: list[ReconstructionItem]) -> None:
        model = self.selection.model
        crops = to_unit(torch.stack([card.result.pixels for card in cards]))
        request = item.request

        def progress(share: float) -> None:
            for card in cards:
                if isValid(card):   # a panel closed without stopping its fits (no window around it) deletes them
                    card.set_fit_progress(share)

        comparison = self.selection.comparison() if any(card.result.compared is not None for card in cards) else None
        self.fits[item] = start_worker(fit_picture, model, crops, comparison, on_progress=progress,
                                       on_result=lambda fit: self._fitted(item, cards, request, fit),
                                       on_error=lambda exc: self._fit_failed(item, cards, exc))
        progress(0.0)

    def _fitted(self, item: ReconstructionItem, cards: list[ReconstructionItem], request: object,
                result: PictureFit) -> None:
        if self.fits.pop(item, None) is None or request is not item.request or not isValid(self):
            return   # stopped meanwhile (the card closed, another model, the window closing) or rerun
        comparison = self.selection.comparison()
        labels = comparison_labels(self.selection.model, comparison) if result.compared is not None else None
        compared = list(result.compared) if result.compared is not None else [None] * len(cards)
        for card, latent, image, other in zip(cards, result.fit.latents, result.images, compared):
            card.set_fit_progress(None)
            card.set_fitted(latent, image, result.fit.tuning, labels, other)

    def _fit_failed(self, item: ReconstructionItem, cards: list[ReconstructionItem], exc: Exception) -> None:
        if self.fits.pop(item, None) is None or not isValid(self):
            return
        for card in cards:
            card.set_fit_progress(None)
        self.statusMessage.emit(f"Could not fit {item.name}: {one_line(exc)}; it shows the encoder's guess")

    def _stop_fit(self, item: ReconstructionItem) -> None:
        worker = self.fits.pop(item, None)
        if worker is not None:
            worker.quit()
        for card in (item, *item.extras):
            if isValid(card):
                card.set_fit_progress(None)

    def stop_background_work(self) -> None:
        """Stop every fit under way."""
        for item in list(self.fits):
            self._stop_fit(item)

    def crop_mode(self, item: ReconstructionItem) -> str:
        assert self.selection.model is not None
        return item.crop_override or self.crop_combo.currentData() or self.selection.model.picture_crop

    def _run(self, item: ReconstructionItem) -> None:
        self._stop_fit(item)
        model = self.selection.model
        if model is None:
            item.set_error("No model is open: open one with File ▸ Open model…")
            return
        item.set_pending()
        request = item.request = object()
        start_worker(reconstruct_faces, model, item.source, self.crop_mode(item), self.selection.comparison(),
                     on_result=lambda result: self._finished(item, request, result),
                     on_error=lambda exc: self._failed(item, request, exc))

    def _finished(self, item: ReconstructionItem, request: object, result: PictureResult) -> None:
        """Show the result (also on a closed card, which undo may bring back), the picture's further faces as
        extra cards."""
        if request is not item.request:
            return
        if not result.faces:
            item.set_no_face(result.original)
        else:
            item.set_result(result.faces[0], result.labels)
            item.extras = [self._new_item(f"{item.name} · face {index}", item.source, index - 1)
                           for index in range(2, len(result.faces) + 1)]
            for extra, face in zip(item.extras, result.faces[1:]):
                extra.set_result(face, result.labels)
            if item.extras:
                item.title.setText(f"<b>{item.name} · face 1</b>")
        self._lay_out()

    def _use_centre_crop(self, item: ReconstructionItem) -> None:
        item.crop_override = "center"
        self._run(item)

    def _crop_changed(self) -> None:
        app_settings().setValue(CROP_SETTING, self.crop_combo.currentData())
        for item in self.items:
            item.crop_override = None
        self.rerun_all()

    def _failed(self, item: ReconstructionItem, request: object, exc: Exception) -> None:
        if request is item.request:
            item.set_error(describe_error(exc))
            self._update_hint()

    def rerun_all(self) -> None:
        """Reconstruct every picture again (a new crop or model); the extra faces of a picture come back
        with its result."""
        for item in self.pictures:
            item.extras = []
            item.title.setText(f"<b>{item.name}</b>")
            self._run(item)
        self._lay_out()

    def _remove(self, item: ReconstructionItem) -> None:
        self._change(f"Remove {item.name}", self.pictures, self.closed | {item})

    def clear(self) -> None:
        if self.items:
            self._change("Clear pictures", (), frozenset())

    def _apply_crisp(self, crisp: bool) -> None:
        for item in self.items:
            item.set_crisp(crisp)

    def set_model(self, _model: Model | None) -> None:
        self.rerun_all()
        self._update_hint()

    # ----- sending faces to the other panels -----
    def _send_to_attributes(self, face: FaceItem) -> None:
        self.selection.select_face(face)
        self.navigate.emit("attributes")

    def _send_to_interpolation(self, face: FaceItem) -> None:
        self.selection.send_endpoints([face])
        self.navigate.emit("interpolate")

    def _send_all_to_interpolation(self) -> None:
        self.selection.send_endpoints([i.face() for i in self.items if i.result is not None])
        self.navigate.emit("interpolate")

    def _show_on_map(self, face: FaceItem) -> None:
        self.selection.add_faces([face])
        self.navigate.emit("map")

    # ----- export -----
    def reconstruction_pairs(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(model input, reconstruction) of every successful item, both 3 x S x S in [0, 1]."""
        return [(i.result.pixels.float() / 255, i.result.reconstruction) for i in self.items if i.result]

    def current_image(self) -> torch.Tensor | None:
        """The newest reconstruction, for File ▸ Export ▸ Current image."""
        pairs = self.reconstruction_pairs()
        return pairs[-1][1] if pairs else None


def _qimage_to_pil(image: QImage) -> Image.Image:
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height = rgb.width(), rgb.height()
    data = bytes(rgb.constBits())[: rgb.bytesPerLine() * height]
    return Image.frombuffer("RGB", (width, height), data, "raw", "RGB", rgb.bytesPerLine(), 1).copy()
