"""Reconstruct: drop, paste or open face pictures; see each one's crop and the model's reconstruction."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QGuiApplication, QImage, QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea,
                               QSizePolicy, QToolButton, QVBoxLayout, QWidget)

from core.api import Model
from core.data import IMAGE_EXTENSIONS, ImageLoadError, prepare_image
from explorer.selection import FaceItem, Selection
from explorer.settings import app_settings, folder_setting
from explorer.widgets import ImageView, start_worker

TILE_SIZE = 160

ImageSource = Path | Image.Image


@dataclass
class Reconstruction:
    original: Image.Image
    cropped: Image.Image
    pixels: torch.Tensor          # 3 x S x S uint8, what the encoder saw
    reconstruction: torch.Tensor  # 3 x S x S float in [0, 1]
    latent: torch.Tensor          # D

    @property
    def mse(self) -> float:
        return float(((self.pixels.float() / 255 - self.reconstruction) ** 2).mean())

    @property
    def psnr(self) -> float:
        return 10 * math.log10(1 / max(self.mse, 1e-10))


def model_crop(model: Model, detect_face: bool) -> str:
    """Crop pictures the way the model's training set was cropped (unless face detection is asked for)."""
    return "face" if detect_face else model.training_crop


def reconstruct(model: Model, source: ImageSource, crop: str) -> Reconstruction:
    prepared = prepare_image(source, model.image_size, crop)
    latent = model.encode(prepared.pixels.unsqueeze(0).float() / 255)
    return Reconstruction(prepared.original, prepared.cropped, prepared.pixels, model.decode(latent)[0], latent[0])


def describe_error(exc: Exception) -> str:
    if isinstance(exc, ImageLoadError):
        return f"Cannot use this picture: {exc.reason}."
    return f"Reconstruction failed: {exc}"


def captioned(view: ImageView, caption: str) -> QWidget:
    label = QLabel(caption, alignment=Qt.AlignmentFlag.AlignCenter)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(2)
    layout.addWidget(view)
    layout.addWidget(label)
    return box


def tile() -> ImageView:
    view = ImageView(min_side=TILE_SIZE)
    view.setFixedSize(TILE_SIZE, TILE_SIZE)
    return view


class ReconstructionItem(QFrame):
    """One picture: original, crop and reconstruction side by side, the error, and where to send it."""

    removed = Signal(object)
    sendToAttributes = Signal(object)     # FaceItem
    sendToInterpolation = Signal(object)  # FaceItem
    showOnMap = Signal(object)            # FaceItem

    def __init__(self, name: str, source: ImageSource, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name, self.source = name, source
        self.result: Reconstruction | None = None
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.tiles = [tile(), tile(), tile()]
        self.tiles[0].setToolTip("The picture as loaded")
        self.tiles[1].setToolTip("The crop the encoder sees, cropped the way the training faces were")
        self.tiles[2].setToolTip("Decoder output for the crop's latent vector (posterior mean)")
        self.title = QLabel(f"<b>{name}</b>")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status = QLabel("Reconstructing…")
        self.status.setWordWrap(True)
        self.actions = [self._action("Send to attributes", "Edit this face with attribute sliders",
                                     self.sendToAttributes),
                        self._action("Send to interpolation", "Use this face as an end of a morph",
                                     self.sendToInterpolation),
                        self._action("Show on map", "Place this face on the latent map", self.showOnMap)]
        close = QToolButton(text="✕", toolTip="Remove this picture", autoRaise=True)
        close.clicked.connect(lambda: self.removed.emit(self))
        self._build_layout(close)

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
        side.addStretch(1)
        for button in self.actions:
            side.addWidget(button)
        row = QHBoxLayout(self)
        self.tile_boxes = [captioned(view, caption) for view, caption
                           in zip(self.tiles, ("original", "crop (model input)", "reconstruction"))]
        for box in self.tile_boxes:
            row.addWidget(box, 0, Qt.AlignmentFlag.AlignTop)
        row.addSpacing(8)
        side_widget = QWidget()
        side_widget.setLayout(side)
        side_widget.setMinimumWidth(240)
        side_widget.setMaximumWidth(340)
        row.addWidget(side_widget, 1)
        row.addStretch(1)

    def face(self) -> FaceItem:
        assert self.result is not None
        return FaceItem(self.name, self.result.latent, self.result.pixels.float() / 255, "reconstruction")

    def set_result(self, result: Reconstruction) -> None:
        self.result = result
        self.tiles[0].set_image(result.original)
        self.tiles[1].set_image(result.cropped)
        self.tiles[2].set_image(result.reconstruction)
        self.status.setForegroundRole(QPalette.ColorRole.WindowText)
        self.status.setText(f"Pixel error (MSE): {result.mse:.4f}\nPSNR: {result.psnr:.1f} dB")
        self.status.setToolTip("Mean squared error over pixels in [0, 1] and peak signal-to-noise ratio; "
                               "the VAE-GAN trades pixel accuracy for sharpness, so expect moderate values")
        for button in self.actions:
            button.setEnabled(True)
        self._show_tiles(True)

    def _show_tiles(self, visible: bool) -> None:
        for box in self.tile_boxes:
            box.setVisible(visible)

    def set_error(self, message: str) -> None:
        self.result = None
        for view in self.tiles[1:]:
            view.set_image(None)
        self.status.setText(message)
        self.status.setStyleSheet("color: #d32f2f;")  # error red reads on light and dark palettes
        self._show_tiles(False)
        for button in self.actions:
            button.setEnabled(False)

    def set_pending(self) -> None:
        self.status.setStyleSheet("")
        self.status.setText("Reconstructing…")

    def set_crisp(self, crisp: bool) -> None:
        for view in self.tiles:
            view.set_smooth(not crisp)


class ReconstructionPanel(QWidget):
    navigate = Signal(str)        # the panel a face was sent to
    statusMessage = Signal(str)

    def __init__(self, selection: Selection, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.selection = selection
        self.items: list[ReconstructionItem] = []
        self._generation = 0
        self.setAcceptDrops(True)
        self._build_ui()
        selection.modelChanged.connect(self._on_model_changed)
        QShortcut(QKeySequence.StandardKey.Paste, self, activated=self.paste)
        self._on_model_changed(selection.model)

    # ----- UI -----
    def _build_ui(self) -> None:
        open_button = QPushButton("Open pictures…", toolTip="Choose one or more face pictures to reconstruct")
        open_button.clicked.connect(self.open_files)
        paste_button = QPushButton("Paste", toolTip="Reconstruct the picture on the clipboard (Ctrl+V)")
        paste_button.clicked.connect(self.paste)
        self.detect_face = QCheckBox("Detect face", toolTip="Find the face in a wild photo (OpenCV) and crop "
                                     "around it; off: crop the way the model's training pictures were cropped")
        self.detect_face.toggled.connect(self.rerun_all)
        self.crisp = QCheckBox("Crisp pixels", toolTip="Upscale with square pixels instead of smoothing")
        self.crisp.toggled.connect(self._apply_crisp)
        self.interpolate_all = QPushButton("Interpolate all", toolTip="Send every reconstructed face to the "
                                           "Interpolate panel as a chain of endpoints")
        self.interpolate_all.clicked.connect(self._send_all_to_interpolation)
        clear = QPushButton("Clear", toolTip="Remove all pictures")
        clear.clicked.connect(self.clear)
        bar = QHBoxLayout()
        for widget in (open_button, paste_button, self.detect_face, self.crisp):
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
                              f"Each is cropped to {model.image_size}×{model.image_size} the way the model's "
                              "training faces were, encoded to a latent vector and decoded again.")

    # ----- input -----
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self.add_from_mime(event.mimeData()):
            event.acceptProposedAction()

    def add_from_mime(self, mime: QMimeData) -> int:
        """Add every local file (folders are expanded) or the image in `mime`; returns how many."""
        paths = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
        files = [f for p in paths for f in (_images_in(p) if p.is_dir() else [p])]
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

    # ----- items -----
    def add_sources(self, sources: list[tuple[str, ImageSource]]) -> None:
        for name, source in sources:
            item = ReconstructionItem(name, source)
            item.set_crisp(self.crisp.isChecked())
            item.removed.connect(self._remove)
            item.sendToAttributes.connect(self._send_to_attributes)
            item.sendToInterpolation.connect(self._send_to_interpolation)
            item.showOnMap.connect(self._show_on_map)
            self.items.append(item)
            self.list_layout.insertWidget(self.list_layout.count() - 1, item)
            self._run(item)
        self._update_hint()
        if self.items:
            self.scroll.ensureWidgetVisible(self.items[-1])

    def _run(self, item: ReconstructionItem) -> None:
        model = self.selection.model
        if model is None:
            item.set_error("No model is open: open one with File ▸ Open model…")
            return
        item.set_pending()
        generation = self._generation
        crop = model_crop(model, self.detect_face.isChecked())
        start_worker(reconstruct, model, item.source, crop,
                     on_result=lambda result: self._finished(item, generation, result),
                     on_error=lambda exc: self._failed(item, generation, exc))

    def _finished(self, item: ReconstructionItem, generation: int, result: Reconstruction) -> None:
        if generation == self._generation and item in self.items:
            item.set_result(result)
            self._update_hint()

    def _failed(self, item: ReconstructionItem, generation: int, exc: Exception) -> None:
        if generation == self._generation and item in self.items:
            item.set_error(describe_error(exc))
            self._update_hint()

    def rerun_all(self) -> None:
        self._generation += 1
        for item in self.items:
            self._run(item)

    def _remove(self, item: ReconstructionItem) -> None:
        self.items.remove(item)
        item.deleteLater()
        self._update_hint()

    def clear(self) -> None:
        for item in list(self.items):
            self._remove(item)

    def _apply_crisp(self, crisp: bool) -> None:
        for item in self.items:
            item.set_crisp(crisp)

    def _on_model_changed(self, _model: Model | None) -> None:
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


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def _qimage_to_pil(image: QImage) -> Image.Image:
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height = rgb.width(), rgb.height()
    data = bytes(rgb.constBits())[: rgb.bytesPerLine() * height]
    return Image.frombuffer("RGB", (width, height), data, "raw", "RGB", rgb.bytesPerLine(), 1).copy()
