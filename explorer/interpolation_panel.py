"""Interpolation strips: decoded faces along a linear or spherical path through two or more latents."""
from __future__ import annotations

import math
from pathlib import Path
from collections.abc import Generator
from typing import Any, Callable

import torch
from PySide6.QtCore import QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QIcon, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QFileDialog, QGridLayout,
                               QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                               QSizePolicy, QSpinBox, QVBoxLayout, QWidget)
from superqt import QLabeledSlider
from superqt.utils import qthrottled

from core.api import Model
from core.compare import comparison_labels
from core.data import IMAGE_EXTENSIONS
from core.export import make_grid, make_strip, save_gif, save_image
from core.fit import FaceFit, fitting, on_every_core
from core.latent import DEFAULT_SAMPLE_TEMPERATURE, interpolate_path
from core.metrics import to_grey
from core.model import DecoderTuning
from core.realism import RealismMeter
from explorer.selection import (FaceItem, PictureFaces, Selection, comparison_input, face_image, fitting_pictures,
                                reference_face)
from explorer.video_dialog import VideoDialog
from explorer.widgets import (PICTURE_FORMATS, ImageView, Panel, WorkerBase, ask_save_path, push_button, start_worker,
                              to_qimage)

MIN_STEPS, MAX_STEPS, DEFAULT_STEPS = 2, 32, 8
METHODS = (("Linear", "linear"), ("Slerp (spherical)", "slerp"))
MIN_FRAME_CELL, MAX_FRAME_CELL = 48, 384
PLAYER_SIDE = 256
ICON_SIZE = 48
DEFAULT_FRAME_MS = 120


def keyframe_indices(points: int, steps: int) -> list[int]:
    """Frame numbers where interpolate_path passes through each of its points (earlier segments get the
    extra moves)."""
    base, extra = divmod(steps - 1, points - 1)
    indices = [0]
    for segment in range(points - 1):
        indices.append(indices[-1] + base + (1 if segment < extra else 0))
    return indices


STARTING_CANDIDATES = 3
"""The faces nearest their group's mean among which the one drawn with the most contrast starts the first path."""


def starting_pair(model: Model) -> tuple[int, int]:
    """Two clean, different reference faces to start from: a woman and a man when the reference faces are labelled
    Male (else any two), each of the faces nearest the mean of its kind (whitened by the realism meter when the model
    has one) the one drawn with the most contrast (the very nearest are often washed out)."""
    reference = model.reference
    meter = RealismMeter.of_model(model)
    latents = reference.latents.double()
    spread = meter.whiten(latents) if meter is not None else latents / latents.std(0).clamp_min(1e-12)
    contrast = to_grey(reference.thumbnails.float() / 255).flatten(1).std(1)
    def ranked(group: torch.Tensor) -> list[int]:
        nearest = group[(spread[group] - spread[group].mean(0)).square().sum(1).argsort(stable=True)]
        candidates = nearest[:STARTING_CANDIDATES]
        return candidates[contrast[candidates].argsort(descending=True, stable=True)].tolist()

    everyone = torch.arange(len(latents))
    if reference.labels is not None and "Male" in reference.label_names:
        male = reference.labels[:, reference.label_names.index("Male")]
        women, men = everyone[male < 0], everyone[male > 0]
        if len(women) and len(men):
            return ranked(women)[0], ranked(men)[0]
    first, second = ranked(everyone)[:2]
    return first, second


class FrameGrid(QWidget):
    """All frames, left to right and wrapping, each as large as lets every frame fit (at most MAX_FRAME_CELL, six
    times a 64-pixel face), the block centred in the widget so a large window has no empty band on one side;
    endpoint frames get a highlighted border."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pixmaps: list[QPixmap] = []
        self._keyframes: set[int] = set()
        self.setMinimumSize(MIN_FRAME_CELL * 4, MIN_FRAME_CELL * 2)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_frames(self, frames: torch.Tensor, keyframes: list[int]) -> None:
        self._pixmaps = [QPixmap.fromImage(to_qimage(frame)) for frame in frames]
        self._keyframes = set(keyframes)
        self.update()

    def block_layout(self) -> tuple[float, int, float, float]:
        """(cell side, columns, left, top): the largest cells that fit all frames into the widget, and the
        top-left corner that centres their block."""
        count = max(1, len(self._pixmaps))
        best = max(((min(self.width() / columns, self.height() / math.ceil(count / columns)), columns)
                    for columns in range(1, count + 1)))
        cell, columns = min(best[0], MAX_FRAME_CELL), best[1]
        rows = math.ceil(count / columns)
        return cell, columns, max(0.0, (self.width() - columns * cell) / 2), max(0.0, (self.height() - rows * cell) / 2)

    def paintEvent(self, event: Any) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        cell, columns, left, top = self.block_layout()
        highlight = QPen(self.palette().color(QPalette.ColorRole.Highlight), 3)
        for index, pixmap in enumerate(self._pixmaps):
            row, column = divmod(index, columns)
            frame = QRectF(left + column * cell + 3, top + row * cell + 3, cell - 6, cell - 6)
            painter.drawPixmap(frame, pixmap, QRectF(pixmap.rect()))
            if index in self._keyframes:
                painter.setPen(highlight)
                painter.drawRect(frame.adjusted(-1.5, -1.5, 1.5, 1.5))
            painter.setPen(QColor(0, 0, 0))
            painter.drawText(frame.adjusted(5, 3, 0, 0), str(index + 1))
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(frame.adjusted(4, 2, 0, 0), str(index + 1))


def tuning_jointly(model: Model, crops: torch.Tensor, pivots: torch.Tensor) -> Generator[Any, None, FaceFit]:
    """One decoder tuned on several photos' fitted faces around their latents (a generator worker)."""
    return (yield from on_every_core(fitting(model, crops, pivots=pivots)))


class InterpolationPanel(Panel):
    """Decoded strips between two or more endpoints, linearly or along great circles (slerp).

    Endpoints come from Selection.endpointsSent, the current face, image files or random faces; the
    strip redraws as soon as a setting changes (all frames decoded in one batch). Every change to the endpoints is
    recorded on the shared undo stack as the new tuple of endpoints. When View ▸ Compare with is on,
    a second strip under it follows the same path between the endpoints as the comparison model encodes them.

    For the main window: export_current(path, ...) saves by suffix (.gif: animation, else the strip);
    export_strip(path, scale=1, mode="smooth"), export_grid(path, columns=None, scale=1, mode="smooth"),
    export_gif(path, frame_ms=None, pingpong=None, scale=1, mode="smooth") (None = the panel's
    settings); current_image() returns the strip as one 3 x H x W image; frames() the decoded frames.
    """

    def __init__(self, selection: Selection, parent: QWidget | None = None) -> None:
        super().__init__(selection, parent)
        self.model: Model | None = None
        self._frames: torch.Tensor | None = None
        self._play_position = 0
        self._notice = ""
        self._shown: tuple[FaceItem, ...] = ()
        """The endpoints as last set (what undo goes back to after a drag reorders the list)."""
        self._joint: tuple[tuple[int, ...], DecoderTuning] | None = None
        """One decoder tuned on the fitted endpoints of several photos, and which faces it was tuned on."""
        self._joint_worker: WorkerBase | None = None
        self._joint_key: tuple[int, ...] | None = None
        """The faces the joint tuning under way is for."""
        self._workers: dict[object, WorkerBase] = {}
        """Pictures being fitted before they are added, by a token of each request."""
        self._render = qthrottled(self.render_frames, timeout=0, leading=False, parent=self)
        self._player = QTimer(self, interval=DEFAULT_FRAME_MS)
        self._player.timeout.connect(self._next_player_frame)
        self._build()
        self.show_behind_empty_state(self._content, "Load a model to interpolate between faces.")
        selection.endpointsSent.connect(self.set_endpoints)
        selection.endpointsAdded.connect(self.add_faces)
        selection.faceSelected.connect(lambda _face: self._refresh_buttons())
        selection.compareModelChanged.connect(lambda _model: self._render())
        self.set_model(selection.model)

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        self._content = QWidget()
        layout = QHBoxLayout(self._content)
        layout.addLayout(self._build_endpoints(), 0)
        layout.addLayout(self._build_strip(), 1)

    def _build_endpoints(self) -> QVBoxLayout:
        column = QVBoxLayout()
        column.addWidget(QLabel("Endpoints, in path order (drag to reorder)"))
        self.endpoint_list = QListWidget()
        self.endpoint_list.setIconSize(QSize(ICON_SIZE, ICON_SIZE))
        self.endpoint_list.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.endpoint_list.setMinimumWidth(250)
        self.endpoint_list.model().rowsMoved.connect(self._reordered)
        self.endpoint_list.currentRowChanged.connect(lambda _row: self._refresh_buttons())
        column.addWidget(self.endpoint_list, 1)
        buttons = QGridLayout()
        self.add_current_button = push_button("Add current face", "Add the face selected on the map or elsewhere",
                                               self.add_current_face)
        self.add_image_button = push_button("Add image...", "Encode a picture and add it", self.add_image_dialog)
        self.random_button = push_button("Random", "Add a random face, drawn from where the training faces encode",
                                          lambda: self.add_random(seed=None))
        self.remove_button = push_button("Remove", "", self.remove_selected)
        self.up_button = push_button("Move up", "", lambda: self.move_selected(-1))
        self.down_button = push_button("Move down", "", lambda: self.move_selected(1))
        for index, button in enumerate((self.add_current_button, self.add_image_button, self.random_button,
                                        self.remove_button, self.up_button, self.down_button)):
            buttons.addWidget(button, index // 2, index % 2)
        column.addLayout(buttons)
        self.message_label = QLabel(wordWrap=True)
        self.message_label.setMaximumWidth(300)
        column.addWidget(self.message_label)
        return column

    def _build_strip(self) -> QVBoxLayout:
        column = QVBoxLayout()
        column.addLayout(self._build_settings())
        self.frame_grid = FrameGrid()
        self.main_label = QLabel(visible=False)
        self.compare_label = QLabel(visible=False)
        self.compare_grid = FrameGrid()
        self.compare_grid.hide()
        for widget, stretch in ((self.main_label, 0), (self.frame_grid, 1), (self.compare_label, 0),
                                (self.compare_grid, 1)):
            column.addWidget(widget, stretch)
        column.addLayout(self._build_player_and_export(), 0)
        return column

    def _build_settings(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.method_combo = QComboBox()
        for title, method in METHODS:
            self.method_combo.addItem(title, method)
        self.method_combo.setToolTip("Slerp follows great circles, keeping faces in the prior's dense shell; "
                                     "linear cuts through the middle, which can look washed out")
        self.method_combo.currentIndexChanged.connect(self._render)
        self.steps_slider = QLabeledSlider(Qt.Orientation.Horizontal)
        self.steps_slider.setRange(MIN_STEPS, MAX_STEPS)
        self.steps_slider.setValue(DEFAULT_STEPS)
        self.steps_slider.setToolTip("Frames in the whole strip, endpoints included")
        self.steps_slider.valueChanged.connect(self._render)
        row.addWidget(QLabel("Path"))
        row.addWidget(self.method_combo)
        row.addSpacing(12)
        row.addWidget(QLabel("Frames"))
        row.addWidget(self.steps_slider, 1)
        return row

    def _build_player_and_export(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.player_view = ImageView("The animation plays here", min_side=PLAYER_SIDE, caption="Animation preview")
        self.player_view.setFixedSize(PLAYER_SIDE, PLAYER_SIDE + self.fontMetrics().height() + 4)
        row.addWidget(self.player_view)
        controls = QVBoxLayout()
        self.play_button = push_button("Pause", "Play or pause the animation preview", self.toggle_playing)
        self.frame_ms_spin = QSpinBox(minimum=20, maximum=2000, singleStep=10, value=DEFAULT_FRAME_MS, suffix=" ms")
        self.frame_ms_spin.setToolTip("How long each frame shows, in the preview and the GIF")
        self.frame_ms_spin.valueChanged.connect(self._player.setInterval)
        self.pingpong_check = QCheckBox("Ping-pong", toolTip="Play forwards then backwards, looping smoothly")
        self.pingpong_check.toggled.connect(lambda _on: setattr(self, "_play_position", 0))
        self.scale_spin = QSpinBox(minimum=1, maximum=8, value=2, suffix="×", toolTip="Enlarge exports by this factor")
        self.crisp_check = QCheckBox("Crisp pixels", toolTip="Enlarge with hard pixel edges instead of smoothly")
        form = QGridLayout()
        for index, (label, widget) in enumerate((("Frame time", self.frame_ms_spin), ("", self.pingpong_check),
                                                 ("Export size", self.scale_spin), ("", self.crisp_check))):
            form.addWidget(QLabel(label), index, 0)
            form.addWidget(widget, index, 1)
        controls.addWidget(self.play_button)
        controls.addLayout(form)
        self.save_buttons = [push_button(title, "", lambda _=False, e=export, t=title: self._save_dialog(e, t))
                             for title, export in (("Save strip...", self.export_strip),
                                                   ("Save grid...", self.export_grid),
                                                   ("Save GIF...", self.export_gif))]
        for button in self.save_buttons:
            controls.addWidget(button)
        self.video_button = push_button("Save video...", "An MP4 or GIF through the endpoints as keyframes: time "
                                        "between them, frame rate, easing and size", self.video_dialog)
        controls.addWidget(self.video_button)
        controls.addStretch(1)
        row.addLayout(controls)
        row.addStretch(1)
        return row

    # ------------------------------------------------------------------ endpoints

    def set_model(self, model: Model | None) -> None:
        self.stop_background_work()
        self.model = model
        self._joint = None
        self._show_endpoints(())
        self._frames = None
        self.message_label.clear()
        if model is None:
            self._player.stop()
            self.stack.show_message()
            return
        self.stack.show_content()
        reference = model.reference
        if reference is not None and len(reference.latents) >= 2:
            self._show_endpoints(tuple(reference_face(reference, i) for i in starting_pair(model)))
        else:
            self._show_endpoints(tuple(self._random_item(seed, number) for number, seed in enumerate((0, 1), 1)))
        self._player.start()
        self.play_button.setText("Pause")

    def endpoints(self) -> list[FaceItem]:
        return [self.endpoint_list.item(row).data(Qt.ItemDataRole.UserRole)
                for row in range(self.endpoint_list.count())]

    def set_endpoints(self, faces: list[FaceItem]) -> None:
        """Replace the endpoints (at most MAX_STEPS: every endpoint needs a frame)."""
        usable = tuple(face for face in faces if self._usable(face))
        self._notice = (f" Kept the first {MAX_STEPS} of the {len(usable)} faces sent: each endpoint needs a frame."
                        if len(usable) > MAX_STEPS else "")
        self._change("Set endpoints", usable[:MAX_STEPS])

    def add_face(self, face: FaceItem) -> None:
        self.add_faces([face])

    def add_faces(self, faces: list[FaceItem]) -> None:
        """Add endpoints after the ones there are (as long as there is room)."""
        added = tuple(face for face in faces if self._usable(face))[:MAX_STEPS - len(self._shown)]
        if added:
            self._change(f"Add endpoint {added[0].name}" if len(added) == 1 else f"Add {len(added)} endpoints",
                         self._shown + added)

    def _usable(self, face: FaceItem) -> bool:
        return self.model is not None and face.latent.numel() == self.model.latent_dim

    def _change(self, text: str, faces: tuple[FaceItem, ...]) -> None:
        """Make `faces` the endpoints as an undoable step named `text`."""
        before = self._shown
        self.selection.undo_stack.record(text, lambda: self._show_endpoints(faces),
                                         lambda: self._show_endpoints(before))

    def _show_endpoints(self, faces: tuple[FaceItem, ...]) -> None:
        self._shown = faces
        self.endpoint_list.clear()
        for face in faces:
            image = face.image if face.image is not None else face_image(self.model, face)
            item = QListWidgetItem(QIcon(QPixmap.fromImage(to_qimage(image))), face.name)
            item.setData(Qt.ItemDataRole.UserRole, face)
            item.setToolTip(face.source or face.name)
            self.endpoint_list.addItem(item)
        self._render()

    def _reordered(self) -> None:
        """The user dragged an endpoint to another place in the list."""
        if not self.selection.undo_stack.replaying:
            self._change("Reorder endpoints", tuple(self.endpoints()))

    def add_current_face(self) -> None:
        if self.selection.current is not None:
            self.add_face(self.selection.current)

    def add_random(self, seed: int | None = None) -> None:
        self.add_face(self._random_item(seed, self.endpoint_list.count() + 1))

    def _random_item(self, seed: int | None, number: int) -> FaceItem:
        z = self.model.sample_latents(1, DEFAULT_SAMPLE_TEMPERATURE, seed=seed)[0]
        return FaceItem(f"Random face {number}", z, source="random sample")

    def add_image_dialog(self) -> None:
        patterns = " ".join(f"*{ext}" for ext in IMAGE_EXTENSIONS)
        paths, _ = QFileDialog.getOpenFileNames(self, "Add face pictures", "", f"Images ({patterns})")
        for path in paths:
            self.add_image(Path(path))

    def add_image(self, path: Path) -> None:
        """Find, align and fit every face of a picture in the background, then add them as endpoints."""
        model = self.model
        self.message_label.setText(f"Fitting the faces of {path.name}…")

        token = object()

        def added(result: PictureFaces) -> None:
            if self._workers.pop(token, None) is None:
                return   # stopped meanwhile (another model, the window closing)
            self.add_faces(result.faces)
            if result.problems:
                self.message_label.setText("; ".join(result.problems))

        self._workers[token] = start_worker(fitting_pictures, model, [path], on_result=added)

    def stop_background_work(self) -> None:
        for worker in [*self._workers.values(), self._joint_worker]:
            if worker is not None:
                worker.quit()
        self._workers, self._joint_worker, self._joint_key = {}, None, None

    def remove_selected(self) -> None:
        row = self.endpoint_list.currentRow()
        if row >= 0:
            self._change(f"Remove endpoint {self._shown[row].name}", self._shown[:row] + self._shown[row + 1:])

    def move_selected(self, offset: int) -> None:
        row = self.endpoint_list.currentRow()
        target = row + offset
        if row < 0 or not 0 <= target < self.endpoint_list.count():
            return
        faces = list(self._shown)
        faces.insert(target, faces.pop(row))
        self._change(f"Move endpoint {faces[target].name} {'up' if offset < 0 else 'down'}", tuple(faces))
        self.endpoint_list.setCurrentRow(target)

    def _refresh_buttons(self) -> None:
        row = self.endpoint_list.currentRow()
        self.add_current_button.setEnabled(self.selection.current is not None)
        self.remove_button.setEnabled(row >= 0)
        for button in (self.video_button, *self.save_buttons):
            button.setEnabled(self.model is not None and self.endpoint_list.count() >= 2)
        self.up_button.setEnabled(row > 0)
        self.down_button.setEnabled(0 <= row < self.endpoint_list.count() - 1)

    # ------------------------------------------------------------------ frames

    def settings(self) -> tuple[str, int]:
        return self.method_combo.currentData(), self.steps_slider.value()

    def session_state(self) -> tuple[dict[str, Any], list[FaceItem]]:
        method, frames = self.settings()
        return {"method": method, "frames": frames}, self.endpoints()

    def restore_session_state(self, state: dict[str, Any], faces: list[FaceItem]) -> None:
        index = self.method_combo.findData(state.get("method"))
        if index >= 0:
            self.method_combo.setCurrentIndex(index)
        frames = state.get("frames")
        if isinstance(frames, int) and not isinstance(frames, bool):
            self.steps_slider.setValue(min(max(frames, MIN_STEPS), MAX_STEPS))
        self.set_endpoints(faces)
        self._render.flush()

    def render_frames(self) -> None:
        """Decode the whole path in one batch and show it."""
        self._refresh_buttons()
        faces = self.endpoints()
        if self.model is None or len(faces) < 2:
            self._frames = None
            self._render_comparison([], path_of=None)
            self.frame_grid.set_frames(torch.empty(0, 3, 1, 1), [])
            self.player_view.set_image(None)
            self.player_view.set_placeholder("Add at least two endpoints")
            self.selection.show_path(None)
            self.message_label.setText(self._too_few_note(len(faces)) if self.model is not None else "")
            return
        method, steps = self.settings()
        steps = max(steps, len(faces))
        path = interpolate_path(torch.stack([f.latent.float().reshape(-1) for f in faces]), steps, method)
        self._frames = self.model.decode(path, tuning=self.path_tuning(faces))
        self.selection.show_path(path)
        self.frame_grid.set_frames(self._frames, keyframe_indices(len(faces), steps))
        self._render_comparison(faces, path_of=lambda points: interpolate_path(points, steps, method))
        note = f" (raised to {steps} so every endpoint gets a frame)" if steps > self.settings()[1] else ""
        self.message_label.setText(f"{len(faces)} endpoints, {steps} frames{note}.{self._notice}")

    @staticmethod
    def _too_few_note(count: int) -> str:
        have = "No endpoints" if count == 0 else "1 endpoint"
        return f"{have}: add at least two to draw a path."

    def path_tuning(self, faces: list[FaceItem]) -> DecoderTuning | None:
        """The decoder the path is drawn with: the one tuned on its fitted endpoints when they share one, else
        one tuned on all of them together (tuned in the background the first time; meanwhile the model's own)."""
        tunings = {id(face.tuning): face.tuning for face in faces if face.fitted}
        if len(tunings) <= 1:
            return next(iter(tunings.values()), None)
        fitted = tuple(face for face in faces if face.pivot and face.image is not None)
        if not fitted:
            return next(iter(tunings.values()))
        key = tuple(map(id, fitted))
        if self._joint is not None and self._joint[0] == key:
            return self._joint[1]
        if self._joint_key != key:
            self._tune_jointly(fitted)
        return None

    def _tune_jointly(self, fitted: tuple[FaceItem, ...]) -> None:
        """Tune one decoder on the fitted endpoints' own latents (several photos' faces), then draw the path again."""
        if self._joint_worker is not None:
            self._joint_worker.quit()
        self._joint_key = key = tuple(map(id, fitted))
        crops = torch.stack([face.image.float() for face in fitted])
        pivots = torch.stack([face.latent.float().reshape(-1) for face in fitted])

        def tuned(fit: FaceFit) -> None:
            if self._joint_key != key:
                return   # stopped meanwhile, or another set of faces is being tuned
            self._joint_worker, self._joint_key = None, None
            self._joint = (key, fit.tuning)
            self._render()

        self._joint_worker = start_worker(tuning_jointly, self.model, crops, pivots, on_result=tuned)

    def _render_comparison(self, faces: list[FaceItem],
                           path_of: Callable[[torch.Tensor], torch.Tensor] | None) -> None:
        """The comparison model's strip along `path_of` its own latents of the endpoints (their crops, else as
        the open model draws them); hidden without a comparison model or endpoints."""
        other = self.selection.comparison()
        shown = other is not None and path_of is not None
        for widget in (self.main_label, self.compare_label, self.compare_grid):
            widget.setVisible(shown)
        if not shown:
            return
        main_name, other_name = comparison_labels(self.model, other)
        self.main_label.setText(main_name)
        self.compare_label.setText(other_name)
        images = torch.stack([comparison_input(face, self.model, other.image_size) for face in faces])
        frames = other.decode(path_of(other.encode(images)))
        self.compare_grid.set_frames(frames, keyframe_indices(len(faces), len(frames)))

    def frames(self) -> torch.Tensor | None:
        """The decoded frames (N x 3 x H x W in [0, 1]) as currently shown."""
        self._render.flush()
        return self._frames

    def _play_order(self) -> list[int]:
        count = len(self._frames)
        forward = list(range(count))
        return forward + forward[-2:0:-1] if self.pingpong_check.isChecked() else forward

    def _next_player_frame(self) -> None:
        if self._frames is None or not self.isVisible():  # no work while another tab is shown
            return
        order = self._play_order()
        self._play_position = (self._play_position + 1) % len(order)
        self.player_view.set_image(self._frames[order[self._play_position]])

    def toggle_playing(self) -> None:
        if self._player.isActive():
            self._player.stop()
            self.play_button.setText("Play")
        else:
            self._player.start()
            self.play_button.setText("Pause")

    # ------------------------------------------------------------------ export

    def _export_mode(self, mode: str | None) -> str:
        return mode or ("crisp" if self.crisp_check.isChecked() else "smooth")

    def _checked_frames(self) -> torch.Tensor:
        frames = self.frames()
        if frames is None:
            raise ValueError("add at least two endpoints first")
        return frames

    def current_image(self) -> torch.Tensor | None:
        frames = self.frames()
        return None if frames is None else torch.cat(list(frames), dim=2)

    def export_strip(self, path: str | Path, scale: int | None = None, mode: str | None = None,
                     overwrite: bool = True) -> Path:
        """All frames in one row as a PNG (or JPEG)."""
        strip = make_strip(self._checked_frames())
        return save_image(strip, path, scale=scale or self.scale_spin.value(), mode=self._export_mode(mode),
                          overwrite=overwrite)

    def export_grid(self, path: str | Path, columns: int | None = None, scale: int | None = None,
                    mode: str | None = None, overwrite: bool = True) -> Path:
        """The frames in a near-square grid (or `columns` wide)."""
        frames = self._checked_frames()
        grid = make_grid(frames, columns or math.ceil(math.sqrt(len(frames))))
        return save_image(grid, path, scale=scale or self.scale_spin.value(), mode=self._export_mode(mode),
                          overwrite=overwrite)

    def export_gif(self, path: str | Path, frame_ms: int | None = None, pingpong: bool | None = None,
                   scale: int | None = None, mode: str | None = None, overwrite: bool = True) -> Path:
        """An animated GIF of the frames (ping-pong plays them back again)."""
        return save_gif(self._checked_frames(), path, frame_ms=frame_ms or self.frame_ms_spin.value(),
                        pingpong=self.pingpong_check.isChecked() if pingpong is None else pingpong,
                        scale=scale or self.scale_spin.value(), mode=self._export_mode(mode), overwrite=overwrite)

    def video_dialog(self) -> VideoDialog | None:
        """Open the Save video dialog for the endpoints (at least two); the caller may drive it (tests)."""
        faces = self.endpoints()
        if self.model is None or len(faces) < 2:
            self.statusMessage.emit("A video needs at least two endpoints")
            return None
        keyframes = torch.stack([face.latent.float().reshape(-1) for face in faces])
        dialog = VideoDialog(self.model, keyframes, self.method_combo.currentData(), self)
        dialog.saved.connect(lambda path: self.statusMessage.emit(f"Saved {path}"))
        dialog.open()
        return dialog

    def export_current(self, path: str | Path, **options: Any) -> Path:
        """Save by file type: .gif -> animation, anything else -> the strip."""
        export = self.export_gif if Path(path).suffix.lower() == ".gif" else self.export_strip
        return export(path, **options)

    def _save_dialog(self, export: Callable[..., Path], title: str) -> None:
        is_gif = export == self.export_gif
        name = "interpolation.gif" if is_gif else "interpolation.png"
        kinds = {".gif": "GIF animation (*.gif)"} if is_gif else PICTURE_FORMATS
        path = ask_save_path(self, title.rstrip("."), name, kinds)
        if path is None:
            return
        try:
            saved = export(path)
        except (OSError, ValueError) as error:
            self.message_label.setText(f"Could not save: {error}")
            return
        self.message_label.setText(f"Saved {saved}")
