"""Small widgets shared by the explorer panels: an image view, an empty-state stack and a worker helper."""
from __future__ import annotations

import inspect
import weakref
from pathlib import Path
from typing import Any, Callable, Union

import numpy as np
import torch
from PIL import Image
from PySide6.QtCore import QCoreApplication, QEvent, QObject, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QAction, QGuiApplication, QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (QAbstractSpinBox, QComboBox, QFileDialog, QLabel, QMenu, QMessageBox, QPushButton,
                               QScrollArea, QSizePolicy, QStackedWidget, QVBoxLayout, QWidget)
from superqt.utils import WorkerBase, create_worker

from core.api import Model
from explorer.selection import FaceItem, Selection
from explorer.settings import app_settings, export_folder, remember_export_folder

ImageLike = Union[torch.Tensor, np.ndarray, Image.Image]
ERROR_STYLE = "color: palette(bright-text);"
"""The one red of error messages in every panel: the palette's BrightText, a red chosen for each theme
(explorer.theme), so it reads on light and dark."""


def to_rgb_array(image: ImageLike) -> np.ndarray:
    """Any image the app handles -> a contiguous H x W x 3 uint8 array.

    Accepts torch or numpy images as 3 x H x W or H x W x 3 (a leading batch of one is dropped),
    floats in [0, 1] or uint8, and PIL images."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB")).copy()
    array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3:
        raise ValueError(f"expected a 3 x H x W or H x W x 3 image, got shape {array.shape}")
    if array.shape[0] == 3 and array.shape[2] != 3:
        array = array.transpose(1, 2, 0)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)
    return np.ascontiguousarray(array)


def to_qimage(image: ImageLike) -> QImage:
    array = to_rgb_array(image)
    h, w, _ = array.shape
    return QImage(array.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class ImageView(QWidget):
    """One image scaled to fit its box with the aspect ratio kept.

    Smooth (bilinear) or crisp (nearest, whole-number factors when it fits) upscaling, toggled from
    the right-click menu, which also copies the image. Shows a placeholder text while empty and an
    optional caption right under the image."""

    def __init__(self, placeholder: str = "", min_side: int = 128, smooth: bool = True, caption: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._array: np.ndarray | None = None
        self._pixmap: QPixmap | None = None
        self._placeholder = placeholder
        self._caption = caption
        self._min_side = min_side
        self._smooth = smooth
        self.setMinimumSize(min_side, min_side)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._show_menu)

    def set_image(self, image: ImageLike | None) -> None:
        self._array = None if image is None else to_rgb_array(image)
        self._pixmap = None if self._array is None else QPixmap.fromImage(to_qimage(self._array))
        self.update()

    def image_array(self) -> np.ndarray | None:
        """The shown image's pixels (H x W x 3 uint8) at their own size, or None."""
        return self._array

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    def set_caption(self, caption: str) -> None:
        """Text under the picture (shortened in the middle when the view is narrower)."""
        self._caption = caption
        self.update()

    def set_smooth(self, smooth: bool) -> None:
        self._smooth = smooth
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(2 * self._min_side, 2 * self._min_side)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        if self._array is None:
            return width
        h, w, _ = self._array.shape
        return round(width * h / w)

    def _caption_height(self) -> int:
        return self.fontMetrics().height() + 4 if self._caption else 0

    def target_rect(self) -> QRectF:
        """Where the image is drawn: as large as fits above the caption, the pair centred. Crisp upscaling
        uses whole numbers of screen pixels per image pixel and starts on a screen pixel (on HiDPI screens a
        logical pixel is 1.5 or 2 of them)."""
        h, w, _ = self._array.shape if self._array is not None else (1, 1, 3)
        caption = self._caption_height()
        ratio = self.devicePixelRatioF()
        scale = min(self.width() / w, (self.height() - caption) / h)
        if not self._smooth and scale * ratio >= 1:
            scale = int(scale * ratio) / ratio
        dw, dh = w * scale, h * scale
        left, top = (self.width() - dw) / 2, (self.height() - dh - caption) / 2
        return QRectF(round(left * ratio) / ratio, round(top * ratio) / ratio, dw, dh)

    def paintEvent(self, event: Any) -> None:
        painter = QPainter(self)
        if self._pixmap is None:
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.rect().adjusted(8, 8, -8, -8),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._placeholder)
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._smooth)
        target = self.target_rect()
        painter.drawPixmap(target, self._pixmap, QRectF(self._pixmap.rect()))
        if self._caption:
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            below = QRectF(0, target.bottom() + 2, self.width(), self._caption_height())
            caption = self.fontMetrics().elidedText(self._caption, Qt.TextElideMode.ElideMiddle, self.width())
            painter.drawText(below, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, caption)

    def _show_menu(self, pos: Any) -> None:
        menu = QMenu(self)
        smooth = QAction("Smooth upscaling", menu, checkable=True, checked=self._smooth)
        smooth.toggled.connect(self.set_smooth)
        menu.addAction(smooth)
        copy = menu.addAction("Copy image")
        copy.setEnabled(self._array is not None)
        copy.triggered.connect(lambda: QGuiApplication.clipboard().setImage(to_qimage(self._array)))
        menu.exec(self.mapToGlobal(pos))


class WheelScrollsForm(QObject):
    """A wheel turn over a field without keyboard focus scrolls the form around it instead of changing the value
    under the pointer, so scrolling a long form never changes a setting on the way (click a field to turn it)."""

    def __init__(self, area: QScrollArea) -> None:
        super().__init__(area)
        self.area = area

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() != QEvent.Type.Wheel or not isinstance(watched, QWidget) or watched.hasFocus():
            return False
        QCoreApplication.sendEvent(self.area.verticalScrollBar(), event)
        return True


def wheel_scrolls_form(area: QScrollArea) -> None:
    """Give every spin box and combo box in `area` the behaviour of WheelScrollsForm."""
    guard = WheelScrollsForm(area)
    for kind in (QAbstractSpinBox, QComboBox):
        for field in area.widget().findChildren(kind):
            field.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            field.installEventFilter(guard)


class EmptyStateStack(QStackedWidget):
    """Either the panel's content or a centred, friendly message (e.g. while no model is loaded)."""

    def __init__(self, content: QWidget, message: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message_label = QLabel(message, alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.message_label.setMargin(24)
        font = self.message_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.2)
        self.message_label.setFont(font)
        self.message_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.content = content
        self.addWidget(self.message_label)
        self.addWidget(content)

    def show_message(self, message: str | None = None) -> None:
        if message is not None:
            self.message_label.setText(message)
        self.setCurrentWidget(self.message_label)

    def show_content(self) -> None:
        self.setCurrentWidget(self.content)

    def showing_content(self) -> bool:
        return self.currentWidget() is self.content



class Panel(QWidget):
    """What the main window needs of a panel: it follows the shared Selection's model (set_model), offers the
    image that File > Export > Current image saves (current_image), reports one-line status messages and asks
    for another panel to be shown (navigate). Panels talk to each other only through the Selection."""

    statusMessage = Signal(str)
    navigate = Signal(str)  # the key of the panel to show (explorer.panels.PANELS)

    def __init__(self, selection: Selection, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.selection = selection
        selection.modelChanged.connect(self.set_model)

    def set_model(self, model: Model | None) -> None:
        """Follow the open model (None: no model is open)."""

    def current_image(self) -> torch.Tensor | None:
        """The panel's image for export (3 x H x W in [0, 1]); None lets the window use the selected face."""
        return None

    def stop_background_work(self) -> None:
        """Stop what the panel runs in the background (the window is closing)."""

    def current_face(self) -> FaceItem | None:
        """The face on screen, for a bookmark (Ctrl+D); by default the selected face."""
        return self.selection.current

    def session_state(self) -> tuple[dict[str, Any], list[FaceItem]]:
        """What a session keeps of this panel: its settings as plain JSON values, and the faces it shows."""
        return {}, []

    def restore_session_state(self, state: dict[str, Any], faces: list[FaceItem]) -> None:
        """Take back what session_state gave (from a file: check every value before using it)."""

    def show_behind_empty_state(self, content: QWidget, message: str) -> EmptyStateStack:
        """Fill the panel with `content`, which `message` replaces while `self.stack.show_message()` is on."""
        self.stack = EmptyStateStack(content, message)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.stack)
        return self.stack


def start_worker(fn: Callable[..., Any], *args: Any, on_result: Callable[[Any], None] | None = None,
                 on_error: Callable[[Exception], None] | None = None,
                 on_progress: Callable[[Any], None] | None = None, **kwargs: Any) -> WorkerBase:
    """Run fn (a function, or a generator whose yields report progress) on a pool thread.

    Callbacks run on the GUI thread. Stop a generator early with `worker.quit()`: it stops at its
    next yield and `on_result` is not called; a plain function runs to its end after `quit()`, but its
    result is dropped. on_progress applies to generators only (a plain function's worker has no
    `yielded` signal), and stops with `quit()` too: a report already queued is dropped, so it never reaches a
    widget closed since. fn must not touch Qt widgets."""
    connect = {name: cb for name, cb in (("returned", on_result), ("errored", on_error)) if cb}
    worker = create_worker(fn, *args, _start_thread=False, _connect=connect, _ignore_errors=on_error is not None,
                           **kwargs)
    if on_progress is not None and inspect.isgeneratorfunction(fn):
        alive = weakref.ref(worker)   # not the worker itself: a worker named in its own callbacks makes a cycle
        worker.yielded.connect(lambda value: None if (w := alive()) is None or w.abort_requested else on_progress(value))
    worker.start()
    return worker


def confirm_replace(parent: QWidget, question: str) -> bool:
    """Ask before replacing what the user has; No is the default."""
    answer = QMessageBox.question(parent, "Replace?", question,
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


PICTURE_FORMATS = {".png": "PNG image (*.png)", ".jpg": "JPEG image (*.jpg)"}
"""ask_save_path's formats for a picture."""


def ask_save_path(parent: QWidget, title: str, start: str | Path, formats: dict[str, str]) -> Path | None:
    """A file name from the save dialog with one of `formats`' suffixes (suffix -> file-type filter; the filter
    chosen decides when the name has none); an existing file only if the user agrees to replace it. A bare file
    name `start` opens in the export folder, which then remembers the chosen file's folder; a path with a folder
    opens there, and the caller remembers it."""
    settings = app_settings()
    exporting = not Path(start).is_absolute()
    if exporting:
        start = export_folder(settings) / start
    text, chosen = QFileDialog.getSaveFileName(parent, title, str(start), ";;".join(formats.values()),
                                               options=QFileDialog.Option.DontConfirmOverwrite)
    if not text:
        return None
    path = Path(text)
    if path.suffix.lower() not in formats:
        path = path.with_name(path.name + next((s for s, f in formats.items() if f == chosen), next(iter(formats))))
    if path.exists() and not confirm_replace(parent, f"{path.name} already exists. Replace it?"):
        return None
    if exporting:
        remember_export_folder(settings, path.parent)
    return path


def ask_export_folder(parent: QWidget, title: str) -> Path | None:
    """A folder to save into, starting from (and remembered as) the export folder."""
    settings = app_settings()
    folder = QFileDialog.getExistingDirectory(parent, title, str(export_folder(settings)))
    if not folder:
        return None
    remember_export_folder(settings, folder)
    return Path(folder)


def push_button(title: str, tip: str, slot: Callable[[], None]) -> QPushButton:
    """A push button with a tooltip that calls `slot` when clicked."""
    button = QPushButton(title, toolTip=tip)
    button.clicked.connect(slot)
    return button
