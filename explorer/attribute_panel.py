"""Attribute-vector sliders: edit a face by adding multiples of the model's attribute directions."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QHBoxLayout, QInputDialog, QLabel,
                               QLineEdit, QListWidget, QMenu, QProgressDialog, QPushButton, QScrollArea, QToolButton,
                               QVBoxLayout, QWidget)
from superqt import QLabeledDoubleSlider
from superqt.utils import qthrottled

from core.api import Model
from core.checkpoint import CheckpointError
from core.compare import comparison_labels
from core.directions import PrincipalDirections, model_directions, traversal_grid
from core.errors import one_line
from core.export import make_strip, save_image, tensor_to_pil
from core.latent import DEFAULT_SAMPLE_TEMPERATURE, apply_edits, orthogonalize, vector_from_groups
from core.photo import FolderEdit, edit_folder, paste_edits, photo_preview
from core.realism import RealismMeter
from core.vector_quality import conditional_vectors, cross_fitted_separation
from explorer.quality_views import RealismView, SafeRangeShade, VectorQualityDialog, display_name
from explorer.selection import FaceItem, Selection, comparison_input, face_image, reference_face
from explorer.settings import app_settings, folder_setting
from explorer.widgets import (ERROR_STYLE, PICTURE_FORMATS, ImageView, Panel, ask_export_folder, ask_save_path,
                              push_button, start_worker)

LABEL_MAX_WIDTH = 170
"""A slider's name keeps up to this many pixels ("PC1 (12.3% of variance)" whole) before the slider shrinks."""
SLIDER_RANGE = 3.0
SLIDER_STEP = 0.05
NO_VECTORS = ("This model has no attribute vectors yet. Select two groups of faces on the map and send them here "
              "to make one.")
NO_DIRECTIONS = "This model has no reference map to find the principal directions of its training faces in."
PHOTO_PREVIEW_SIDE = 768
"""The whole-photo view pastes the edit into a copy this large while sliders move; saving uses full size."""
FACE_MIN_SIDE = 112
"""Smallest face views: four in a row (before, after, the comparison model's after, the photo) beside the sliders
and the Bookmarks dock still fit a 1024-pixel screen."""
HISTORY_ROWS = 4
"""The list of applied edits shows this many entries before it scrolls."""


@dataclass(frozen=True, eq=False)
class AppliedEdit:
    """A face the sliders can start from: the face picked to edit, or the one an applied edit made of the face
    before it."""

    label: str
    face: FaceItem


@dataclass(frozen=True, eq=False)
class EditState:
    """What undo and redo restore in the Attributes panel."""

    source: str
    """What the sliders add: "attributes" or "directions"."""
    strengths: tuple[tuple[str, float], ...]
    """The moved sliders' values, in the order they were moved."""
    history: tuple[AppliedEdit, ...]
    """The face picked to edit, then the face after each applied edit."""
    position: int
    """The entry of `history` the sliders start from."""

    @property
    def base(self) -> FaceItem:
        return self.history[self.position].face


class AttributeRow(QWidget):
    """A named slider for one attribute vector: how many times the vector is added to the face. Its unsafe
    strengths (where the face would leave the training faces' region) are shaded; "Hold" keeps this
    attribute fixed while the others move."""

    strengthChanged = Signal(str, float)
    holdToggled = Signal(str, bool)
    deleteRequested = Signal(str)

    def __init__(self, name: str, title: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.title = title or display_name(name)
        self.label = QLabel(self.title)
        self.label.setMinimumWidth(min(max(120, self.label.sizeHint().width()), LABEL_MAX_WIDTH))
        self.slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(-SLIDER_RANGE, SLIDER_RANGE)
        self.slider.setSingleStep(SLIDER_STEP)
        self.slider.setDecimals(2)
        self.slider.setValue(0.0)
        self.slider.setToolTip(f"Add this many {display_name(name)} vectors to the face (double-click the value "
                               "to type one)")
        self.slider.valueChanged.connect(lambda value: self.strengthChanged.emit(self.name, float(value)))
        self.shade = SafeRangeShade(self.slider._slider)
        self.hold_button = QToolButton(text="Hold", checkable=True)
        self.hold_button.setToolTip(f"Keep {display_name(name)} as it is while other sliders move: their vectors "
                                    "lose their component along this one (conditional editing)")
        self.hold_button.toggled.connect(lambda held: self.holdToggled.emit(self.name, held))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label, 2)
        layout.addWidget(self.slider, 3)
        layout.addWidget(self.hold_button)

    def offer_delete(self) -> None:
        """A right-click menu on the name that deletes this vector (attribute vectors, not principal
        directions)."""
        self.label.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.label.setToolTip("Right-click to delete this vector")
        self.label.customContextMenuRequested.connect(self._show_menu)

    def _show_menu(self, pos: object) -> None:
        menu = QMenu(self)
        menu.addAction(f"Delete the “{self.title}” vector", lambda: self.deleteRequested.emit(self.name))
        menu.exec(self.label.mapToGlobal(pos))

    def strength(self) -> float:
        return float(self.slider.value())

    def set_strength(self, value: float) -> None:
        self.slider.setValue(value)

    def held(self) -> bool:
        return self.hold_button.isChecked()

    def set_safe_range(self, low: float, high: float) -> None:
        self.shade.set_range(low, high)

    def safe_range(self) -> tuple[float, float]:
        return self.shade.low, self.shade.high

    def matches(self, text: str) -> bool:
        return text.lower() in self.title.lower()


def groups_separation_text(with_latents: torch.Tensor, without_latents: torch.Tensor) -> str:
    """The separation a vector made from these groups would have (cross-fitted, as for the model's vectors)."""
    latents = torch.cat([with_latents.float(), without_latents.float()])
    has = torch.arange(len(latents)) < len(with_latents)
    d = cross_fitted_separation(latents, has).d
    if math.isnan(d):
        return "Too few faces to score its separation (a few on each side are needed)."
    return (f"Separation: Cohen's d {d:.2f} (made from half the faces, scored on the other half; above 1 "
            "separates the groups well).")


class AttributePanel(Panel):
    """Edit a face with attribute-vector sliders and see before and after side by side.

    The face is the Selection's current face (on model load: the first reference-map face) or a
    random face (Model.sample_latents). Several sliders combine (z + sum of strength x vector); "Orthogonalise"
    removes from each active vector its overlap with the ones moved before it, and held attributes ("Hold")
    are projected out of every other vector. Groups sent from the map (Selection.groupsSent) become a new
    named vector, saved into the model file. "Sliders: Principal directions" swaps the attribute vectors for the
    principal components of the training latents (core.directions), a slider unit being one standard
    deviation; everything else works the same with them. The realism meter (core.realism) shows how typical the edited
    face is and shades each slider's strengths that would take it out of the training faces' region. When View ▸
    Compare with is on, the comparison model's edit of the same face shows beside the main one: the face encoded by
    that model, moved by the same strengths along its own vectors of the same names (ones it lacks are skipped).
    "Apply edit" makes the edited face the one the sliders start from, so edits stack; the list of applied edits
    steps back to any earlier face. Every change is recorded on the shared undo stack as a new EditState.

    For the main window: export_current(path, scale=1, mode="smooth") saves the edited face,
    export_before_after(path, scale=1, mode="smooth") the pair side by side, current_image() returns
    the edited face (3 x H x W in [0, 1]); export_traversal(path) the principal directions' traversal grid
    around the edited face; add_vector_from_groups(name, with, without) adds a vector.
    """

    def __init__(self, selection: Selection, parent: QWidget | None = None) -> None:
        super().__init__(selection, parent)
        self.model: Model | None = None
        self.meter: RealismMeter | None = None
        self.directions: PrincipalDirections | None = None
        self.vectors: dict[str, torch.Tensor] = {}
        """What the sliders add: the model's attribute vectors or its principal directions."""
        self.quality_dialog: VectorQualityDialog | None = None
        self.face: FaceItem | None = None
        """The face the sliders start from (the base of `state`)."""
        self.state: EditState | None = None
        self.vectors_saved = False
        """Whether the last change to the model's vectors reached its file."""
        self._drag = 0
        """Counts slider releases: a slider's moves merge into one undo step until it is let go (a press can move
        it before it reports being pressed, so presses do not count)."""
        self.rows: dict[str, AttributeRow] = {}
        self._moved_order: list[str] = []
        self._rows_source: str | None = None
        """The slider source the rows were built for."""
        self.before_image: torch.Tensor | None = None
        self.original_image: torch.Tensor | None = None
        """The face picked to edit, before any applied edit (what the whole photo's paste starts from)."""
        self.after_image: torch.Tensor | None = None
        self.edited_latent: torch.Tensor | None = None
        self.compare_latent: torch.Tensor | None = None
        """The face as the comparison model encodes it, when comparing."""
        self.compare_image: torch.Tensor | None = None
        self._preview: tuple[Image.Image, np.ndarray] | None = None
        self._folder_worker = None
        self._render_edit = qthrottled(self.render_edit, timeout=0, leading=False, parent=self)
        self._build()
        self.show_behind_empty_state(self._content, "Load a model to edit faces with its attribute vectors.")
        selection.faceSelected.connect(self.set_face)
        selection.groupsSent.connect(self.ask_for_vector_from_groups)
        selection.attributesChanged.connect(self._rebuild_rows)
        selection.compareModelChanged.connect(lambda _model: self._compare_face())
        self.set_model(selection.model)

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        self._content = QWidget()
        layout = QHBoxLayout(self._content)
        layout.addLayout(self._build_faces(), 3)
        layout.addLayout(self._build_sliders(), 2)

    def _build_faces(self) -> QVBoxLayout:
        column = QVBoxLayout()
        self.face_label = QLabel(wordWrap=True)
        font = self.face_label.font()
        font.setBold(True)
        self.face_label.setFont(font)
        column.addWidget(self.face_label)
        self.edits_label = QLabel(wordWrap=True)
        column.addWidget(self.edits_label)
        pair = QHBoxLayout()
        self.before_view = ImageView("No face yet", min_side=FACE_MIN_SIDE, caption="Before")
        self.after_view = ImageView("", min_side=FACE_MIN_SIDE, caption="After")
        self.photo_view = ImageView("", min_side=FACE_MIN_SIDE, caption="Edited photo")
        self.photo_view.setToolTip("The edit pasted back into the photo the face came from: only what the edit "
                                   "changes moves, the photo keeps its own detail and size")
        self.compare_view = ImageView("", min_side=FACE_MIN_SIDE)
        self.compare_view.hide()
        pair.addWidget(self.before_view)
        pair.addWidget(self.after_view)
        pair.addWidget(self.compare_view)
        pair.addWidget(self.photo_view)
        column.addLayout(pair, 1)
        self.realism_view = RealismView()
        column.addWidget(self.realism_view)
        source_row = QHBoxLayout()
        self.random_button = QPushButton("Random face",
                                         toolTip="Edit a new random face, drawn from where the model's faces lie")
        self.random_button.clicked.connect(lambda: self.random_face())
        self.temperature_spin = QDoubleSpinBox(prefix="Temperature ", decimals=2, minimum=0.0, maximum=2.0,
                                               singleStep=0.1, value=DEFAULT_SAMPLE_TEMPERATURE)
        self.temperature_spin.setToolTip("Spread of random faces: lower is more typical, higher more unusual")
        self.map_button = QPushButton("Show on map", toolTip="Mark the edited face on the latent map")
        self.map_button.clicked.connect(self.show_on_map)
        self.save_button = QToolButton(text="Save", toolTip="Save the edited face, the before/after pair, the whole "
                                       "photo with the edit, or edit a whole folder of photos",
                                       popupMode=QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.save_button)
        menu.addAction("Edited face…", lambda: self._save_dialog(self.export_current, "edited face"))
        menu.addAction("Before and after…", lambda: self._save_dialog(self.export_before_after, "before and after"))
        self.save_photo_action = menu.addAction("Whole photo with the edit…",
                                                lambda: self._save_dialog(self.export_photo, "edited photo", scale=1))
        self.save_traversal_action = menu.addAction(
            "Principal directions' traversal grid…", lambda: self._save_dialog(self.export_traversal,
                                                                              "traversal grid", scale=2))
        menu.addSeparator()
        menu.addAction("Edit a folder of photos…", self.edit_folder_dialog)
        self.save_button.setMenu(menu)
        for widget in (self.random_button, self.temperature_spin):
            source_row.addWidget(widget)
        source_row.addStretch(1)
        for widget in (self.map_button, self.save_button):
            source_row.addWidget(widget)
        column.addLayout(source_row)
        self.status_label = QLabel(wordWrap=True)
        column.addWidget(self.status_label)
        return column

    def _build_sliders(self) -> QVBoxLayout:
        column = QVBoxLayout()
        self.source_combo = QComboBox()
        self.source_combo.addItem("Sliders: Attributes", "attributes")
        self.source_combo.addItem("Sliders: Principal directions", "directions")
        self.source_combo.setToolTip("Attribute vectors (learned from labelled faces) or the principal directions "
                                     "of the training faces' latents (unsupervised, largest variance first; a "
                                     "slider unit is one standard deviation)")
        self.source_combo.currentIndexChanged.connect(self._source_changed)
        column.addWidget(self.source_combo)
        tools = QHBoxLayout()
        self.filter_edit = QLineEdit(placeholderText="Filter attributes...", clearButtonEnabled=True)
        self.filter_edit.textChanged.connect(self._apply_filter)
        self.orthogonal_check = QCheckBox("Orthogonalise")
        self.orthogonal_check.setToolTip("With several sliders moved, remove from each vector its overlap with the "
                                         "ones moved before it, so one edit does not also push another attribute")
        self.orthogonal_check.toggled.connect(self._render_edit)
        self.reset_button = QPushButton("Reset", toolTip="Set every slider back to 0")
        self.reset_button.clicked.connect(self.reset)
        self.quality_button = QPushButton("Quality…", toolTip="How well each vector separates faces with and "
                                          "without its attribute, and which vectors are entangled")
        self.quality_button.clicked.connect(self.show_vector_quality)
        tools.addWidget(self.filter_edit, 1)
        tools.addWidget(self.orthogonal_check)
        tools.addWidget(self.reset_button)
        tools.addWidget(self.quality_button)
        column.addLayout(tools)
        self.rows_widget = QWidget()
        self.rows_layout = QVBoxLayout(self.rows_widget)
        self.rows_layout.setContentsMargins(4, 4, 12, 4)
        self.rows_layout.addStretch(1)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(self.rows_widget)
        scroll.setMinimumWidth(340)
        column.addWidget(scroll, 1)
        column.addLayout(self._build_history())
        self.no_vectors_label = QLabel(NO_VECTORS, wordWrap=True)
        column.addWidget(self.no_vectors_label)
        hint = QLabel("New vectors: select faces on the map, use them as 'with' and 'without' groups and send them "
                      "here.", wordWrap=True)
        hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        column.addWidget(hint)
        return column

    def _build_history(self) -> QVBoxLayout:
        """Apply edit, Step back and the list of applied edits (shown once there is one)."""
        self.apply_button = push_button("Apply edit", "Start further edits from the edited face: it becomes the "
                                        "face before the sliders, which go back to 0", self.apply_edit)
        self.step_back_button = push_button("Step back", "Go back to the face before the last applied edit",
                                            self.step_back)
        buttons = QHBoxLayout()
        buttons.addWidget(self.apply_button)
        buttons.addWidget(self.step_back_button)
        buttons.addStretch(1)
        self.history_list = QListWidget(toolTip="The face picked to edit and the edits applied to it: click one "
                                        "to start from that face again")
        self.history_list.setMaximumHeight(HISTORY_ROWS * self.fontMetrics().height() + 12)
        self.history_list.currentRowChanged.connect(self._history_row_picked)
        column = QVBoxLayout()
        column.addLayout(buttons)
        column.addWidget(self.history_list)
        return column

    # ------------------------------------------------------------------ model, face and sliders

    def set_model(self, model: Model | None) -> None:
        self.model = model
        self.meter = RealismMeter.of_model(model) if model is not None else None
        self.directions = model_directions(model) if model is not None else None
        self.save_traversal_action.setEnabled(self.directions is not None)
        self.face = None
        self.state = None
        self._moved_order = []
        self.status_label.clear()
        self._rebuild_rows()
        if model is None:
            self.stack.show_message()
            return
        self.stack.show_content()
        reference = model.reference
        face = reference_face(reference, 0) if reference is not None and len(reference.latents) else \
            self._random_item(seed=0)
        self._restore(EditState(self.source_combo.currentData(), (), (AppliedEdit(face.name, face),), 0))

    def set_face(self, face: FaceItem) -> None:
        """Edit this face; the sliders keep their values so the same edit applies to the new face."""
        if self.model is None or self.state is None or face.latent.numel() != self.model.latent_dim:
            return
        self._change(f"Edit {face.name}", replace(self.state, history=(AppliedEdit(face.name, face),), position=0))

    def _change(self, text: str, state: EditState, merge_key: str | None = None) -> None:
        """Go to `state` as an undoable step named `text`."""
        before = self.state
        self.selection.undo_stack.record(text, lambda: self._restore(state), lambda: self._restore(before),
                                         merge_key)

    def _restore(self, state: EditState) -> None:
        """Show `state`: its sliders, its base face and its applied edits (no widget signal records anything)."""
        if state.source != self._rows_source:
            with QSignalBlocker(self.source_combo):
                self.source_combo.setCurrentIndex(self.source_combo.findData(state.source))
            self._rebuild_rows()
        strengths = dict(state.strengths)
        with self.selection.undo_stack.replay():
            for name, row in self.rows.items():
                row.set_strength(strengths.get(name, 0.0))
        self._moved_order = [name for name in strengths if name in self.rows]
        previous, self.state = self.state, state
        self._show_history(state)
        if previous is None or state.history[0].face is not previous.history[0].face:
            self.original_image = face_image(self.model, state.history[0].face)
        if state.base is not self.face:
            self._show_face(state.base)
        else:
            self._render_edit()

    def _show_history(self, state: EditState) -> None:
        with QSignalBlocker(self.history_list):
            self.history_list.clear()
            self.history_list.addItems([entry.label for entry in state.history])
            self.history_list.setCurrentRow(state.position)
        dimmed = self.palette().color(QPalette.ColorRole.PlaceholderText)
        for row in range(state.position + 1, len(state.history)):
            self.history_list.item(row).setForeground(dimmed)
        self.history_list.setVisible(len(state.history) > 1)
        self.step_back_button.setEnabled(state.position > 0)
        self.apply_button.setEnabled(bool(state.strengths))

    def _show_face(self, face: FaceItem) -> None:
        self.face = face
        self.face_label.setText(f"Editing: {face.name}")
        has_photo = face.photo is not None and face.to_crop is not None
        self._preview = photo_preview(face.photo, face.to_crop, PHOTO_PREVIEW_SIDE) if has_photo else None
        self.photo_view.setVisible(has_photo)
        self.save_photo_action.setEnabled(has_photo)
        self.before_image = face_image(self.model, face)
        self.before_view.set_image(self.before_image)
        self._compare_face()

    def _compare_face(self) -> None:
        """Encode the face with the comparison model (its crop, else as the open model draws it) and label both
        edits; without a comparison model the panel is as before."""
        other = self.selection.comparison()
        labels = comparison_labels(self.model, other) if other is not None and self.model is not None else None
        self.after_view.set_caption(f"After · {labels[0]}" if labels else "After")
        self.compare_view.set_caption(f"After · {labels[1]}" if labels else "")
        self.compare_view.setVisible(labels is not None)
        self.compare_latent = None
        if labels is not None and self.face is not None:
            image = comparison_input(self.face, self.model, other.image_size)
            self.compare_latent = other.encode(image.unsqueeze(0))[0]
        self._render_edit()  # at once, and in place of any render still queued
        self._render_edit.flush()

    def random_face(self, seed: int | None = None) -> None:
        self.set_face(self._random_item(seed))

    def _random_item(self, seed: int | None) -> FaceItem:
        z = self.model.sample_latents(1, self.temperature_spin.value(), seed=seed)[0]
        return FaceItem(f"Random face (temperature {self.temperature_spin.value():.2f})", z, source="random sample")

    def showing_directions(self) -> bool:
        return self.source_combo.currentData() == "directions"

    def _source_changed(self) -> None:
        """Switch the sliders between attribute vectors and principal directions, starting from no edit."""
        if self.state is not None:
            self._change(self.source_combo.currentText(),
                         replace(self.state, source=self.source_combo.currentData(), strengths=()))

    def _remove_rows(self) -> None:
        for row in self.rows.values():
            row.hide()   # at once: deleteLater waits for the event loop
            row.deleteLater()
        self.rows = {}

    def _slider_titles(self) -> dict[str, str]:
        """{vector name: slider label} of the chosen source, in slider order; sets self.vectors."""
        if self.model is None:
            self.vectors = {}
            return {}
        if self.showing_directions():
            directions = self.directions
            self.vectors = directions.vectors() if directions is not None else {}
            return dict(zip(directions.names(), directions.labels())) if directions is not None else {}
        self.vectors = {name: vector.float() for name, vector in self.model.attributes.items()}
        return {name: display_name(name) for name in sorted(self.vectors, key=str.lower)}

    def _rebuild_rows(self) -> None:
        values = {name: row.strength() for name, row in self.rows.items()}
        held = {name for name, row in self.rows.items() if row.held()}
        self._remove_rows()
        titles = self._slider_titles()
        self._rows_source = self.source_combo.currentData()
        names = list(titles)
        for name in names:
            row = AttributeRow(name, titles[name])
            row.set_strength(values.get(name, 0.0))
            row.hold_button.setChecked(name in held)
            row.strengthChanged.connect(self._strength_changed)
            row.holdToggled.connect(self._render_edit)
            row.slider.sliderReleased.connect(self._next_drag)
            if not self.showing_directions():
                row.offer_delete()
                row.deleteRequested.connect(self.delete_vector)
            self.rows_layout.insertWidget(self.rows_layout.count() - 1, row)
            self.rows[name] = row
        self._moved_order = [n for n in self._moved_order if n in self.rows]
        self.no_vectors_label.setText(NO_DIRECTIONS if self.showing_directions() else NO_VECTORS)
        self.no_vectors_label.setVisible(self.model is not None and not names)
        self.quality_button.setEnabled(bool(names) and not self.showing_directions())
        self._apply_filter(self.filter_edit.text())
        self._render_edit()

    def _apply_filter(self, text: str) -> None:
        for row in self.rows.values():
            row.setVisible(row.matches(text))

    def _strength_changed(self, name: str, value: float) -> None:
        """A slider moved: one undo step per drag (its moves merge until the slider is let go)."""
        if self.selection.undo_stack.replaying or self.state is None:
            return
        order = [moved for moved in self._moved_order if moved != name] + ([name] if value != 0 else [])
        strengths = tuple((moved, self.rows[moved].strength()) for moved in order)
        self._change(f"{self.rows[name].title} {value:+.2f}", replace(self.state, strengths=strengths),
                     merge_key=f"{name} {self._drag}")

    def _next_drag(self) -> None:
        self._drag += 1

    def strengths(self) -> dict[str, float]:
        """The non-zero slider values, in the order the sliders were moved."""
        return {name: self.rows[name].strength() for name in self._moved_order}

    def set_strengths(self, strengths: dict[str, float]) -> None:
        for name, value in strengths.items():
            self.rows[name].set_strength(value)

    def reset(self) -> None:
        if self.state is not None and self.state.strengths:
            self._change("Reset sliders", replace(self.state, strengths=()))

    # ------------------------------------------------------------------ stacked edits

    def apply_edit(self) -> None:
        """Make the edited face the base: the sliders go back to 0 and further edits start from it."""
        if self.state is None or not self.state.strengths:
            return
        self.flush()
        label = self._strengths_text()
        face = replace(self.face, latent=self.edited_latent.clone(), image=None, source="attributes", pivot=False)
        history = self.state.history[:self.state.position + 1] + (AppliedEdit(label, face),)
        self._change(f"Apply {label}", replace(self.state, strengths=(), history=history,
                                               position=len(history) - 1))

    def step_back(self) -> None:
        """Go back to the face before the last applied edit."""
        if self.state is not None and self.state.position > 0:
            self.go_to_applied(self.state.position - 1)

    def go_to_applied(self, position: int) -> None:
        """Start again from entry `position` of the applied edits (later ones stay listed until an edit is
        applied), the sliders at 0."""
        way = "back" if position < self.state.position else "forward"
        self._change(f"Go {way} to {self.state.history[position].label}",
                     replace(self.state, strengths=(), position=position))

    def _history_row_picked(self, row: int) -> None:
        if row >= 0 and self.state is not None and row != self.state.position:
            self.go_to_applied(row)

    def held_vectors(self, vectors: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """The held sliders' vectors, from `vectors` (default: the sliders' own) where it has them."""
        vectors = self.vectors if vectors is None else vectors
        return {name: vectors[name] for name, row in self.rows.items() if row.held() and name in vectors}

    def edit_vectors(self, vectors: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """The vectors the sliders add, from `vectors` (default: the sliders' own; moved sliders it lacks are
        left out): orthogonalised in the order they were moved when asked to, and without their components along
        the held attributes."""
        vectors = self.vectors if vectors is None else vectors
        order = [name for name in self._moved_order if name in vectors]
        active = {name: vectors[name] for name in order}
        if self.orthogonal_check.isChecked():
            active = orthogonalize(active, order)
        return conditional_vectors(active, self.held_vectors(vectors))

    def slider_vectors(self) -> dict[str, torch.Tensor]:
        """What each slider adds per unit of strength: its edit vector once moved, else its own (held ones
        projected out)."""
        every = conditional_vectors({name: self.vectors[name] for name in self.rows},
                                    self.held_vectors())
        return {**every, **self.edit_vectors()}

    def render_edit(self) -> None:
        """Decode the edited face (runs on the GUI thread: one 64x64 decode takes a few ms)."""
        if self.model is None or self.face is None:
            return
        self.edited_latent = apply_edits(self.face.latent.float().reshape(-1), self.strengths(), self.edit_vectors())
        self.after_image = face_image(self.model, self.face, self.edited_latent)
        self.after_view.set_image(self.after_image)
        if self._preview is not None:
            self.photo_view.set_image(self.pasted(*self._preview))
        self.edits_label.setText(self._edits_summary())
        self._render_comparison()
        self._show_realism()

    def _render_comparison(self) -> None:
        """The comparison model's edit: the same strengths along its own vectors of the same names."""
        other = self.selection.comparison()
        if other is None or self.compare_latent is None:
            self.compare_image = None
            return
        vectors = self.edit_vectors({name: vector.float() for name, vector in other.attributes.items()})
        strengths = {name: value for name, value in self.strengths().items() if name in vectors}
        self.compare_image = other.decode(apply_edits(self.compare_latent, strengths, vectors).unsqueeze(0))[0]
        self.compare_view.set_image(self.compare_image)
        lacking = [display_name(name) for name in self.strengths() if name not in vectors]
        self.compare_view.setToolTip("The comparison model's edit of the same face" + (
            f"; it has no vector for {', '.join(lacking)}, so that edit is left out" if lacking else ""))

    def _show_realism(self) -> None:
        """The meter for the edited face and every slider's safe range: a few products with whitened vectors,
        nothing re-encoded."""
        if self.meter is None:
            self.realism_view.show_unavailable()
            for row in self.rows.values():
                row.set_safe_range(-math.inf, math.inf)
            return
        self.realism_view.show_realism(self.meter.measure(self.edited_latent), self.model.reference.thumbnails)
        if not self.rows:
            return
        vectors = self.slider_vectors()
        names = list(self.rows)
        strengths = torch.tensor([self.rows[name].strength() if name in self._moved_order else 0.0
                                  for name in names])
        ranges = self.meter.safe_ranges(self.meter.whiten(self.edited_latent),
                                        self.meter.whiten_vectors(torch.stack([vectors[n] for n in names])), strengths)
        for name, (low, high) in zip(names, ranges.tolist()):
            self.rows[name].set_safe_range(low, high)

    def pasted(self, photo: Image.Image, to_crop: np.ndarray) -> Image.Image:
        """`photo` with the change from the face picked to the edited face (applied edits included) pasted in."""
        return paste_edits(photo, [to_crop], self.original_image.unsqueeze(0), self.after_image.unsqueeze(0))

    def _strengths_text(self) -> str:
        return ", ".join(f"{display_name(name)} {value:+.2f}" for name, value in self.strengths().items())

    def _edits_summary(self) -> str:
        edits = self._strengths_text()
        orthogonal = " (orthogonalised)" if edits and self.orthogonal_check.isChecked() else ""
        held = ", ".join(display_name(name) for name in self.held_vectors())
        holding = f"; holding {held}" if edits and held else ""
        return f"Edits: {edits}{orthogonal}{holding}" if edits else "Move a slider to edit the face"

    def show_vector_quality(self) -> VectorQualityDialog:
        """Open the separation table and entanglement heat map of the model's vectors."""
        self.quality_dialog = VectorQualityDialog(self.model, self)
        self.quality_dialog.show()
        return self.quality_dialog

    def flush(self) -> None:
        """Render any pending slider change now."""
        self._render_edit.flush()

    # ------------------------------------------------------------------ new vectors from groups

    def ask_for_vector_from_groups(self, with_latents: torch.Tensor, without_latents: torch.Tensor) -> None:
        if self.model is None:
            return
        name, accepted = QInputDialog.getText(
            self, "New attribute vector",
            f"Name the difference between the {len(with_latents):,} 'with' faces and the "
            f"{len(without_latents):,} 'without' faces.\n{groups_separation_text(with_latents, without_latents)}",
            text=self._free_name("Custom"))
        if accepted and name.strip():
            self.add_vector_from_groups(name.strip(), with_latents, without_latents)

    def _free_name(self, base: str) -> str:
        number = 1
        while f"{base} {number}" in self.model.attributes:
            number += 1
        return f"{base} {number}"

    def add_vector_from_groups(self, name: str, with_latents: torch.Tensor, without_latents: torch.Tensor) -> bool:
        """Add (or replace) the vector mean(with) - mean(without) and save it into the model file.

        Returns whether it was saved; the status line says what happened either way."""
        latents = torch.cat([with_latents.float(), without_latents.float()])
        count = len(with_latents)
        vector = vector_from_groups(latents, range(count), range(count, len(latents)))
        self._change_vector(f"New vector {display_name(name)}", name, vector)
        return self.vectors_saved

    def delete_vector(self, name: str) -> None:
        """Delete an attribute vector from the model and its file (its slider's edit is undone with it)."""
        with self.selection.undo_stack.macro(f"Delete vector {display_name(name)}"):
            self.rows[name].set_strength(0.0)
            self._change_vector("", name, None)

    def _change_vector(self, text: str, name: str, vector: torch.Tensor | None) -> None:
        """Set (None: delete) vector `name` as an undoable step."""
        previous = self.model.attributes.get(name)
        self.selection.undo_stack.record(text, lambda: self._set_vector(name, vector),
                                         lambda: self._set_vector(name, previous))

    def _set_vector(self, name: str, vector: torch.Tensor | None) -> None:
        if vector is None:
            del self.model.attributes[name]
        else:
            self.model.attributes[name] = vector
        self.vectors_saved = self._save_attributes(name, "Added" if vector is not None else "Deleted")
        self.selection.notify_attributes_changed()

    def _save_attributes(self, name: str, done: str) -> bool:
        """Save the model's vectors after `done` ("Added", "Deleted") vector `name`; the status line says how it
        went."""
        if self.model.path is None:
            self._show_status(f"{done} “{name}” for this session only: this model has no file to save it into.",
                              True)
            return False
        try:
            self.model.save_attributes()
        except (CheckpointError, OSError) as error:
            self._show_status(f"{done} “{name}”, but could not save the model file: {one_line(error)}", True)
            return False
        self._show_status(f"{done} “{name}” and saved {Path(self.model.path).name}.", False)
        return True

    def _show_status(self, text: str, problem: bool) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet(ERROR_STYLE if problem else "")

    # ------------------------------------------------------------------ sending and exporting

    def show_on_map(self) -> None:
        if self.edited_latent is not None:
            self.selection.add_faces([replace(self.face, name=f"{self.face.name} (edited)", pivot=False,
                                              latent=self.edited_latent.clone(), image=self.after_image,
                                              source="attributes")])

    def current_image(self) -> torch.Tensor | None:
        self.flush()
        return self.after_image

    def current_face(self) -> FaceItem | None:
        """The edited face (the base face when no slider is moved), named after the picked face and every edit:
        the applied ones up to the entry in use, then the sliders'."""
        self.flush()
        if self.face is None or self.edited_latent is None or self.state is None:
            return None
        edits = self._strengths_text()
        name = ", ".join(self._edit_labels() + ([edits] if edits else []))
        if not edits:
            return replace(self.face, name=name) if self.state.position else self.face
        return replace(self.face, name=name, latent=self.edited_latent.clone(), image=self.after_image, pivot=False)

    def _edit_labels(self) -> list[str]:
        """The picked face's name, then each applied edit's label up to the entry in use."""
        history = self.state.history[:self.state.position + 1]
        return [history[0].face.name] + [entry.label for entry in history[1:]]

    def session_state(self) -> tuple[dict[str, Any], list[FaceItem]]:
        """Sliders, held attributes, and the applied-edit history (its faces, labels and the entry in use)."""
        if self.state is None:
            return {}, []
        state = {"sliders": self.state.source, "strengths": dict(self.state.strengths),
                 "held": [name for name, row in self.rows.items() if row.held()],
                 "orthogonalise": self.orthogonal_check.isChecked(),
                 "history": [entry.label for entry in self.state.history], "position": self.state.position}
        return state, [entry.face for entry in self.state.history]

    def restore_session_state(self, state: dict[str, Any], faces: list[FaceItem]) -> None:
        usable = [face for face in faces if self.model is not None and face.latent.numel() == self.model.latent_dim]
        if self.state is None or not usable:
            return
        self.orthogonal_check.setChecked(state.get("orthogonalise") is True)
        labels = state.get("history")
        labels = labels if isinstance(labels, list) and len(labels) == len(usable) and \
            all(isinstance(label, str) for label in labels) else [face.name for face in usable]
        position = state.get("position")
        position = position if isinstance(position, int) and 0 <= position < len(usable) else len(usable) - 1
        strengths = state.get("strengths")
        strengths = tuple((name, float(value)) for name, value in (strengths.items() if isinstance(strengths, dict)
                                                                    else ())
                          if isinstance(name, str) and isinstance(value, (int, float)) and math.isfinite(value))
        source = state.get("sliders") if state.get("sliders") in ("attributes", "directions") else "attributes"
        self._restore(EditState(source, strengths, tuple(map(AppliedEdit, labels, usable)), position))
        held = state.get("held")
        for name in held if isinstance(held, list) else []:
            if isinstance(name, str) and name in self.rows:
                self.rows[name].hold_button.setChecked(True)
        self.flush()

    def export_current(self, path: str | Path, scale: int = 1, mode: str = "smooth", overwrite: bool = True) -> Path:
        """Save the edited face as an image file."""
        self.flush()
        return save_image(tensor_to_pil(self.after_image), path, scale=scale, mode=mode, overwrite=overwrite)

    def export_before_after(self, path: str | Path, scale: int = 1, mode: str = "smooth",
                            overwrite: bool = True) -> Path:
        """Save the face before and after the edit side by side."""
        self.flush()
        pair = make_strip(torch.stack([self.before_image, self.after_image]))
        return save_image(pair, path, scale=scale, mode=mode, overwrite=overwrite)

    def export_photo(self, path: str | Path, scale: int = 1, mode: str = "smooth", overwrite: bool = True) -> Path:
        """Save the whole photo the face came from, at its own size, with the edit pasted in."""
        self.flush()
        return save_image(self.pasted(self.face.photo, self.face.to_crop), path, overwrite=overwrite)

    def export_traversal(self, path: str | Path, scale: int = 1, mode: str = "smooth", overwrite: bool = True) -> Path:
        """Save the traversal grid of the principal directions around the edited face: a row per direction,
        from -3 to +3 standard deviations."""
        self.flush()
        grid = traversal_grid(self.model, self.directions, start=self.edited_latent)
        return save_image(grid, path, scale=scale, mode=mode, overwrite=overwrite)

    def _save_dialog(self, export: object, what: str, scale: int = 4) -> None:
        path = ask_save_path(self, f"Save the {what}", f"{what.replace(' ', '_')}.png", PICTURE_FORMATS)
        if path is None:
            return
        try:
            saved = export(path, scale=scale)
        except (OSError, ValueError) as error:
            self._show_status(f"Could not save: {error}", True)
            return
        self._show_status(f"Saved {saved}", False)

    # ------------------------------------------------------------------ a folder of photos

    def edit_folder_dialog(self) -> None:
        settings = app_settings()
        source = QFileDialog.getExistingDirectory(self, "Photos to edit", folder_setting(settings, "pictures/folder"))
        if not source:
            return
        target = ask_export_folder(self, "Save the edited photos into (an empty folder)")
        if target is not None:
            self.start_folder_edit(Path(source), target)

    def start_folder_edit(self, source: Path, target: Path) -> None:
        """Edit every photo under `source` with the current sliders into `target`, with progress and Cancel."""
        progress = QProgressDialog("Editing photos…", "Cancel", 0, 0, self, windowTitle="Edit a folder")
        progress.setMinimumDuration(0)
        report = FolderEdit()

        def advance(state: tuple[int, int, FolderEdit]) -> None:
            nonlocal report
            done, total, report = state
            progress.setMaximum(total)
            progress.setValue(done)

        def finish(_result: object = None) -> None:
            if self._folder_worker is None:  # already reported (returned, then finished; or errored)
                return
            progress.close()
            self._folder_worker = None
            skipped = "; ".join(f"{name}: {why}" for name, why in report.skipped[:3])
            more = f" (and {len(report.skipped) - 3} more)" if len(report.skipped) > 3 else ""
            self._show_status(f"Edited {len(report.written)} photos into {target}"
                              + (f". Skipped {len(report.skipped)}: {skipped}{more}" if report.skipped else "."),
                              bool(report.skipped))

        def failed(error: Exception) -> None:
            progress.close()
            self._folder_worker = None
            self._show_status(f"Could not edit the folder: {error}", True)

        self._folder_worker = start_worker(edit_folder, self.model, source, target, self.strengths(),
                                           vectors=self.edit_vectors(), on_result=finish, on_error=failed,
                                           on_progress=advance)
        self._folder_worker.finished.connect(finish)
        progress.canceled.connect(self._folder_worker.quit)
