"""The 2D latent map: every known face as a point; hover to see it, click or drag to select faces."""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import QBuffer, QPointF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainter, QPalette
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QFileDialog, QGridLayout, QHBoxLayout, QLabel, QMenu,
                               QProgressBar, QPushButton, QSizePolicy, QToolButton, QVBoxLayout, QWidget)

from core.api import Model, ReferenceMap
from core.checkpoint import atomic_file
from core.data import Cancel, Progress
from core.directions import model_directions, vector_axis_projection
from core.errors import one_line
from core.latent import PROJECTION_METHODS, fit_projection
from core.map_export import face_image_paths, save_csv, save_face_images, selection_table
from core.pipeline import encode_folder
from explorer.map_export import LegendEntries, with_axes_and_legend
from explorer.selection import FaceItem, Selection
from explorer.theme import ThemedPlotWidget
from explorer.widgets import (ImageView, Panel, ask_export_folder, ask_save_path, confirm_replace, push_button,
                              start_worker)

METHOD_TITLES = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}
MAX_ENDPOINTS = 16
POINT_SIZE = 7
PLAIN_BRUSH = QBrush(QColor(70, 140, 225, 180))  # stands out on the white map of the light theme and the dark one
HAS_LABEL_BRUSH = QBrush(QColor(255, 170, 60, 220))
LACKS_LABEL_BRUSH = QBrush(QColor(110, 140, 190, 110))
UNKNOWN_LABEL_BRUSH = QBrush(QColor(128, 128, 128, 90))
SCORE_COLOURS = 32
SCORE_COLOUR_MAP = pg.colormap.get("viridis")
SCORE_BRUSHES = [QBrush(SCORE_COLOUR_MAP.map(i / (SCORE_COLOURS - 1), mode="qcolor")) for i in range(SCORE_COLOURS)]
SCORE_PREFIX = "Vector: "
OWN_AXES = "Map's own axes"
ARROW_PEN = pg.mkPen((255, 60, 110), width=4)
PATH_PEN = pg.mkPen((255, 150, 0), width=2.5)
"""The Interpolate panel's path: orange, apart from the arrow's pink and the selection's outline."""
ARROW_SHARE = 0.45
"""A vector's arrow is this share of the spread of the faces on the map long (its direction is what it shows)."""
FRAMED_SHARE = 0.9
FRAME_MARGIN = 0.08
OUTLIER_SQUEEZE = 3.0
"""Frame the central 90% of the points when the full extent is over 3x theirs on an axis (a Gaussian
cloud of 10,000 points spans about 2.4x; a few faces encoded far off the prior span far more)."""
NOTHING_SELECTED = ("No faces selected: click a point, Shift+drag a rectangle or Ctrl+drag a lasso to choose the "
                    "faces to export.")
MAP_FORMATS = {".png": "PNG image (*.png)", ".svg": "SVG drawing (*.svg)"}
HINT = ("Hover a point to see its face · click to select it (Ctrl+click adds) · "
        "Shift+drag selects a rectangle, Ctrl+drag a lasso · wheel zooms")


@dataclass
class MapData:
    """The faces on the map and how to place new latents on it (the projection is never refitted)."""

    latents: torch.Tensor                        # N x D
    coords: np.ndarray                           # N x 2 float64
    thumbnails: torch.Tensor                     # N x 3 x t x t uint8
    names: list[str]
    project: Callable[[torch.Tensor], torch.Tensor]
    method: str = "pca"
    title: str = ""
    is_reference: bool = False
    labels: torch.Tensor | None = None           # N x A int8: 1 has, -1 lacks, 0 unknown
    label_names: tuple[str, ...] = field(default_factory=tuple)
    axis: str | None = None
    """The vector (attribute or principal direction) whose projection is x (then y is the first principal axis of
    the rest)."""

    @classmethod
    def from_reference(cls, ref: ReferenceMap) -> MapData:
        count = ref.latents.shape[0]
        return cls(ref.latents.float(), ref.coords.double().numpy(), ref.thumbnails,
                   [f"Reference face {i + 1}" for i in range(count)], ref.project, "pca",
                   f"Reference map · {count:,} faces", True, ref.labels, tuple(ref.label_names))

    def face(self, index: int) -> FaceItem:
        return FaceItem(self.names[index], self.latents[index].clone(), self.thumbnails[index].float() / 255,
                        source="map")


def framing_range(coords: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """(x range, y range) that leaves out far outliers which would squeeze the other points into a corner:
    on an axis where the full extent is over OUTLIER_SQUEEZE times that of the central FRAMED_SHARE of
    the points, frame those. None when every point fits comfortably (then show them all)."""
    if len(coords) < 20:
        return None
    tail = (1 - FRAMED_SHARE) / 2
    low, high = np.quantile(coords, [tail, 1 - tail], axis=0)
    full_low, full_high = coords.min(0), coords.max(0)
    squeezed = (full_high - full_low) > OUTLIER_SQUEEZE * (high - low)
    if not squeezed.any():
        return None
    low, high = np.where(squeezed, low, full_low), np.where(squeezed, high, full_high)
    margin = FRAME_MARGIN * (high - low)
    return (float(low[0] - margin[0]), float(high[0] + margin[0])), (float(low[1] - margin[1]),
                                                                     float(high[1] + margin[1]))


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Boolean mask of the N x 2 points inside the K x 2 polygon (even-odd rule, vectorised)."""
    x, y = points[:, 0], points[:, 1]
    inside = np.zeros(len(points), dtype=bool)
    for (x1, y1), (x2, y2) in zip(polygon, np.roll(polygon, -1, axis=0)):
        if y1 == y2:
            continue
        crosses = (y1 > y) != (y2 > y)
        inside ^= crosses & (x < (x2 - x1) * (y - y1) / (y2 - y1) + x1)
    return inside


def score_brushes(scores: np.ndarray) -> tuple[list[QBrush], float, float]:
    """Shared brushes (a few dozen QBrush objects, not one per point) for scores, robust 2-98% range."""
    low, high = np.percentile(scores, [2, 98]) if len(scores) else (0.0, 1.0)
    scaled = np.clip((scores - low) / max(high - low, 1e-9), 0, 1)
    bins = np.round(scaled * (SCORE_COLOURS - 1)).astype(int)
    return [SCORE_BRUSHES[b] for b in bins], float(low), float(high)


def find_data(combo: QComboBox, value: Any) -> int:
    """The index of the item whose data equals `value`, or -1 (QComboBox.findData matches a tuple only with
    itself)."""
    return next((i for i in range(combo.count()) if combo.itemData(i) == value), -1)


def label_brushes(column: np.ndarray) -> list[QBrush]:
    palette = {1: HAS_LABEL_BRUSH, -1: LACKS_LABEL_BRUSH}
    return [palette.get(int(v), UNKNOWN_LABEL_BRUSH) for v in column]


def label_entries(title: str, column: np.ndarray) -> LegendEntries:
    """A saved map's legend of a label: who has it, who lacks it, and whose is unknown (when any)."""
    counts = [int((column > 0).sum()), int((column < 0).sum()), int((column == 0).sum())]
    entries = [(HAS_LABEL_BRUSH, f"{title} ({counts[0]:,})"), (LACKS_LABEL_BRUSH, f"not {title} ({counts[1]:,})"),
               (UNKNOWN_LABEL_BRUSH, f"{title} unknown ({counts[2]:,})")]
    return entries if counts[2] else entries[:2]


def score_entries(name: str, low: float, high: float) -> LegendEntries:
    """A saved map's legend of the positions along a vector: the colours of its low, middle and high end."""
    title = f"Along {name.replace('_', ' ')}:"
    return [(SCORE_BRUSHES[-1], f"{title} {high:.2f} and above"),
            (SCORE_BRUSHES[SCORE_COLOURS // 2], f"{title} {(low + high) / 2:.2f}"),
            (SCORE_BRUSHES[0], f"{title} {low:.2f} and below")]


def map_folder(model: Model, folder: Path, method: str, progress: Progress, stage: Callable[[str], None],
               cancel: Cancel) -> MapData:
    """Worker: encode every picture under `folder` (core.pipeline.encode_folder), then fit the 2D map."""
    data, latents = encode_folder(model, folder, progress=progress, cancel=cancel)
    stage(f"Fitting a {METHOD_TITLES[method]} map...")
    projection, coords = fit_projection(latents, method)
    skipped = len(data.summary.get("skipped", []))
    title = f"{folder.name} · {len(data):,} faces" + (f" ({skipped:,} unusable files skipped)" if skipped else "")
    return MapData(latents, coords.double().numpy(), data.images, data.names, projection.transform, method,
                   title, False, data.labels, tuple(data.label_names))


def save_pictures(model: Model, data: MapData, indices: list[int], folder: Path, overwrite: bool,
                  progress: Progress, cancel: Cancel) -> list[Path]:
    """Worker: a PNG per face (core.map_export.save_face_images) at the model's size: a folder's own aligned crop,
    or for the reference map (which stores no training photographs) the model's decoding of the face."""
    pictures = model.decode(data.latents[indices]) if data.is_reference else data.thumbnails[indices]
    return save_face_images(pictures, [data.names[i] for i in indices], folder, overwrite, progress, cancel)


def along_vector(data: MapData, name: str, vector: torch.Tensor) -> MapData:
    """The same faces with x their position along `vector` and y the largest spread of what remains."""
    projection = vector_axis_projection(data.latents, vector)
    return replace(data, coords=projection.transform(data.latents).double().numpy(), project=projection.transform,
                   axis=name)


def arrow_ends(data: MapData, vector: torch.Tensor) -> tuple[np.ndarray, float] | None:
    """(2 x 2 map coordinates of an arrow from the average face along `vector`, ARROW_SHARE of the faces' spread
    long; the share of the unit vector's length that lies in the map's plane). None on a map that is not
    linear (UMAP, t-SNE) or when the vector is flat on this map."""
    if data.method != "pca" or data.axis is not None:
        return None
    unit = vector.float() / vector.float().norm().clamp_min(1e-12)
    mean = data.latents.mean(0)
    tail, head = data.project(torch.stack([mean, mean + unit])).double().numpy()
    in_plane = float(np.linalg.norm(head - tail))
    if in_plane < 1e-9:
        return None
    spread = float(np.mean(np.percentile(data.coords, 95, axis=0) - np.percentile(data.coords, 5, axis=0)))
    return np.stack([tail, tail + (head - tail) / in_plane * ARROW_SHARE * spread]), in_plane


def refit(data: MapData, method: str) -> MapData:
    """Worker: the same faces on a newly fitted map."""
    projection, coords = fit_projection(data.latents, method)
    return replace(data, coords=coords.double().numpy(), project=projection.transform, method=method)


class SelectingViewBox(pg.ViewBox):
    """A ViewBox whose left drag pans, or (by mode or modifier) draws a selection rectangle or lasso.

    Shift+drag always draws a rectangle and Ctrl+drag a lasso. Emits the outline in data coordinates."""

    regionSelected = Signal(object)  # K x 2 np.ndarray polygon in data coordinates

    def __init__(self) -> None:
        super().__init__()
        self.drag_mode = "pan"
        self._outline_points: list[QPointF] = []
        self._outline = pg.PlotCurveItem()
        self._outline.setZValue(100)
        self.addItem(self._outline, ignoreBounds=True)

    def _mode_for(self, modifiers: Qt.KeyboardModifier) -> str:
        if modifiers & Qt.KeyboardModifier.ShiftModifier:
            return "rectangle"
        if modifiers & Qt.KeyboardModifier.ControlModifier:
            return "lasso"
        return self.drag_mode

    def mouseDragEvent(self, ev: Any, axis: int | None = None) -> None:
        mode = self._mode_for(ev.modifiers())
        if ev.button() != Qt.MouseButton.LeftButton or mode == "pan":
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        start = self.mapSceneToView(ev.buttonDownScenePos())
        here = self.mapSceneToView(ev.scenePos())
        if ev.isStart():  # in the theme's text colour, which stands out from the plot's background
            self._outline.setPen(pg.mkPen(self.palette().color(QPalette.ColorRole.Text), width=1.5,
                                          style=Qt.PenStyle.DashLine))
        if mode == "rectangle":
            self._outline_points = [start, QPointF(here.x(), start.y()), here, QPointF(start.x(), here.y())]
        else:
            self._outline_points = (self._outline_points if not ev.isStart() else [start]) + [here]
        polygon = np.array([(p.x(), p.y()) for p in self._outline_points])
        if ev.isFinish():
            self._outline.setData([], [])
            self._outline_points = []
            self.regionSelected.emit(polygon)
        else:
            closed = np.vstack([polygon, polygon[:1]])
            self._outline.setData(closed[:, 0], closed[:, 1])


class MapPanel(Panel):
    """The model's faces on a 2D map of its latent space.

    Shows model.reference at once; "Encode folder..." maps a folder of pictures instead. Hover shows a
    face, click selects it (Selection.select_face), Shift/Ctrl+drag select groups; the buttons send the
    selection as interpolation endpoints or as 'with'/'without' groups for a new attribute vector.
    Faces added elsewhere (Selection.facesAdded) appear as stars placed with the fitted projection. "X axis"
    lays the faces out along an attribute vector (along_vector); colouring by a vector draws its arrow.

    For the main window: export_current(path) saves the map view as a PNG or SVG; export_selection_csv(path)
    and export_selection_images(folder) save the selected faces; current_image() returns the face in the side view; encode_folder_dialog() and show_reference_map() switch what is mapped;
    selected_indices() / select_indices() read or set the selection.
    """

    _folderProgress = Signal(int, int)  # (done, total) from the encoding worker's thread
    _folderStage = Signal(str)

    def __init__(self, selection: Selection, parent: QWidget | None = None) -> None:
        super().__init__(selection, parent)
        self.model: Model | None = None
        self.data: MapData | None = None
        self._arrow_note = ""
        self._legend: LegendEntries = []
        """What the colours mean, for a saved map's legend."""
        self._own_data: MapData | None = None
        self._axis_vectors: dict[str, torch.Tensor] = {}
        """What the X axis choices lay faces along: attribute vectors and principal directions, by name."""
        """The faces on the map's own axes (data may show them along a vector instead)."""
        self._selected: list[int] = []
        self._shown_index: int | None = None
        self._with_group: torch.Tensor | None = None
        self._without_group: torch.Tensor | None = None
        self._added: list[FaceItem] = []
        self._path: torch.Tensor | None = None
        """The Interpolate panel's path (frame latents), drawn as a line."""
        self._worker: Any = None
        self._cancelled = threading.Event()
        self._folderProgress.connect(self._show_folder_progress)
        self._folderStage.connect(self._show_stage)
        self._build()
        self.show_behind_empty_state(self._content, "Load a model to see the faces it knows on a 2D map.")
        selection.facesAdded.connect(self.add_faces)
        selection.pathChanged.connect(self.show_path)
        selection.attributesChanged.connect(self._fill_colour_combo)
        selection.attributesChanged.connect(self._fill_axis_combo)
        self.set_model(selection.model)

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        self._content = QWidget()
        layout = QVBoxLayout(self._content)
        layout.addLayout(self._build_toolbar())
        layout.addLayout(self._build_progress_row())
        body = QHBoxLayout()
        body.addWidget(self._build_plot(), 1)
        body.addWidget(self._build_side(), 0)
        layout.addLayout(body, 1)
        self.hint_label = QLabel(HINT, wordWrap=True)
        self.hint_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        layout.addWidget(self.hint_label)

    def _build_toolbar(self) -> QVBoxLayout:
        """What is mapped, how, and what a drag does; below it, how points are coloured and placed."""
        bar = QHBoxLayout()
        self.source_label = QLabel()
        font = self.source_label.font()
        font.setBold(True)
        self.source_label.setFont(font)
        self.source_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        bar.addWidget(self.source_label, 1)
        looks = QHBoxLayout()
        looks.addWidget(QLabel("Colour by"))
        self.colour_combo = QComboBox(minimumContentsLength=14)
        self.colour_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.colour_combo.currentIndexChanged.connect(self._apply_colouring)
        looks.addWidget(self.colour_combo)
        looks.addWidget(QLabel("Map"))
        self.method_combo = QComboBox()
        for method in PROJECTION_METHODS:
            self.method_combo.addItem(METHOD_TITLES.get(method, method), method)
        self.method_combo.setToolTip("How latents are laid out in 2D. Changing it refits the map of the current "
                                     "faces (UMAP and t-SNE take a while).")
        self.method_combo.activated.connect(self._refit_current)
        looks.addWidget(self.method_combo)
        looks.addWidget(QLabel("X axis"))
        self.axis_combo = QComboBox(minimumContentsLength=12)
        self.axis_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.axis_combo.setToolTip("Project on a vector: x is each face's position along the chosen attribute "
                                   "vector or principal direction, y the largest spread of what remains (Latent "
                                   "Space Cartography)")
        self.axis_combo.currentIndexChanged.connect(self._apply_axis)
        looks.addWidget(self.axis_combo)
        looks.addStretch(1)
        bar.addWidget(QLabel("Drag"))
        self.drag_buttons = QButtonGroup(self)
        for mode, title, tip in (("pan", "Pan", "Drag moves the map"),
                                 ("rectangle", "Rectangle", "Drag selects a rectangle (or Shift+drag)"),
                                 ("lasso", "Lasso", "Drag draws a free-form selection (or Ctrl+drag)")):
            button = QToolButton(text=title, checkable=True, toolTip=tip, autoRaise=False)
            button.setProperty("mode", mode)
            button.setChecked(mode == "pan")
            self.drag_buttons.addButton(button)
            bar.addWidget(button)
        self.drag_buttons.buttonClicked.connect(lambda b: setattr(self.view_box, "drag_mode", b.property("mode")))
        self.encode_button = QPushButton("Encode folder...")
        self.encode_button.setToolTip("Encode every picture in a folder and map those faces instead")
        self.encode_button.clicked.connect(self.encode_folder_dialog)
        bar.addWidget(self.encode_button)
        self.reference_button = QPushButton("Reference map")
        self.reference_button.setToolTip("Go back to the faces shipped with the model")
        self.reference_button.clicked.connect(self.show_reference_map)
        bar.addWidget(self.reference_button)
        bar.addWidget(self._build_export_button())
        rows = QVBoxLayout()
        rows.addLayout(bar)
        rows.addLayout(looks)
        return rows

    def _build_export_button(self) -> QToolButton:
        self.export_button = QToolButton(text="Export", popupMode=QToolButton.ToolButtonPopupMode.InstantPopup,
                                         toolTip="Save the selected faces (a CSV table or their pictures) or the "
                                                 "map as shown (PNG or SVG)")
        menu = QMenu(self.export_button)
        self.export_csv_action = menu.addAction("Selected faces as CSV…", self.export_selection_csv_dialog)
        self.export_images_action = menu.addAction("Selected faces as pictures…", self.export_selection_images_dialog)
        menu.addSeparator()
        self.export_png_action = menu.addAction("Map as PNG…", lambda: self.export_map_dialog(".png"))
        self.export_svg_action = menu.addAction("Map as SVG…", lambda: self.export_map_dialog(".svg"))
        self.export_button.setMenu(menu)
        return self.export_button

    def _build_progress_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.progress = QProgressBar()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_work)
        self.status_label = QLabel(wordWrap=True)
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        row.addWidget(self.status_label, 1)
        self._show_progress(False)
        self._set_status("")
        return row

    def _build_plot(self) -> pg.PlotWidget:
        self.view_box = SelectingViewBox()
        self.view_box.regionSelected.connect(self.select_in_polygon)
        self.plot_widget = ThemedPlotWidget(viewBox=self.view_box)
        self.plot_widget.setMinimumSize(360, 300)
        self.plot_widget.setAspectLocked(True)
        self.plot_widget.hideAxis("left")
        self.plot_widget.hideAxis("bottom")
        self.scatter = pg.ScatterPlotItem(pxMode=True, useCache=True, size=POINT_SIZE, pen=None, brush=PLAIN_BRUSH,
                                          hoverable=True, tip=None)
        self.scatter.sigHovered.connect(self._on_hover)
        self.scatter.sigClicked.connect(self._on_click)
        self.selected_marks = pg.ScatterPlotItem(pxMode=True, size=POINT_SIZE + 2, brush=pg.mkBrush(255, 255, 255),
                                                 pen=pg.mkPen((20, 20, 20), width=1))
        self.added_marks = pg.ScatterPlotItem(pxMode=True, symbol="star", size=20,
                                              brush=pg.mkBrush(255, 80, 120), pen=pg.mkPen((255, 255, 255), width=1.5))
        self.added_marks.setZValue(10)
        self.arrow_line = pg.PlotCurveItem(pen=ARROW_PEN)
        self.arrow_head = pg.ArrowItem(pen=pg.mkPen((255, 255, 255), width=1.5), brush=ARROW_PEN.color(), headLen=22,
                                       tipAngle=40)
        for item in (self.arrow_line, self.arrow_head):
            item.setZValue(5)
            item.setVisible(False)
        self.path_curve = pg.PlotDataItem(pen=PATH_PEN, symbol="o", symbolSize=5, symbolPen=None,
                                          symbolBrush=PATH_PEN.color())
        self.path_curve.setZValue(8)
        for item in (self.scatter, self.selected_marks, self.added_marks, self.arrow_line, self.arrow_head,
                     self.path_curve):
            self.plot_widget.addItem(item)
        return self.plot_widget

    def _build_side(self) -> QWidget:
        side = QWidget()
        side.setFixedWidth(250)
        grid = QGridLayout(side)
        grid.setContentsMargins(0, 0, 0, 0)
        self.face_view = ImageView("Hover over a point to see its face", min_side=180)
        self.face_caption = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.count_label = QLabel("No faces selected", alignment=Qt.AlignmentFlag.AlignCenter)
        self.endpoints_button = push_button(
            "Send as endpoints", f"Interpolate through 2 to {MAX_ENDPOINTS} selected faces, in the order you "
                                 "picked them (Ctrl+click adds)", self.send_endpoints)
        self.with_button = push_button("Use as 'with' group", "Faces that have the attribute",
                                             lambda: self.use_as_group(True))
        self.without_button = push_button("Use as 'without' group", "Faces that lack the attribute",
                                                lambda: self.use_as_group(False))
        self.groups_label = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.groups_button = push_button("Send groups to attributes",
                                               "Make a new attribute vector: mean of 'with' minus mean of 'without'",
                                               self.send_groups)
        self.clear_button = push_button("Clear selection", "", lambda: self.select_indices([]))
        self.legend_label = QLabel(wordWrap=True, alignment=Qt.AlignmentFlag.AlignCenter)
        self.legend_label.setTextFormat(Qt.TextFormat.RichText)
        widgets: list[QWidget] = [self.face_view, self.face_caption, self.count_label, self.endpoints_button,
                                  self.with_button, self.without_button, self.groups_label, self.groups_button,
                                  self.clear_button, self.legend_label]
        for row, widget in enumerate(widgets):
            grid.addWidget(widget, row, 0)
        grid.setRowStretch(len(widgets), 1)
        self.face_view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.face_view.setFixedHeight(216)
        return side

    # ------------------------------------------------------------------ model and data

    def set_model(self, model: Model | None) -> None:
        self.cancel_work()
        self.model = model
        self._with_group = self._without_group = None
        self._added = []
        if model is None:
            self.stack.show_message()
            self.set_data(None)
            return
        self.stack.show_content()
        self._fill_axis_combo()
        self.show_reference_map()

    def show_reference_map(self) -> None:
        reference = self.model.reference if self.model else None
        self.set_data(MapData.from_reference(reference) if reference is not None else None)
        if reference is None and self.model is not None:
            self.source_label.setText("This model has no reference map")
            self._set_status("Use “Encode folder...” to map a folder of face pictures.")

    def set_data(self, data: MapData | None) -> None:
        """Show these faces (None clears the map) on the chosen axes; the selection stays when they are the faces
        shown (laid out anew), else it is cleared; added faces are re-placed."""
        self._own_data = data
        name = self.axis_combo.currentData()
        problem = ""
        if data is not None and name in self._axis_vectors:
            try:
                data = along_vector(data, name, self._axis_vectors[name])
            except ValueError as error:   # a zero vector has no direction to lay faces along
                problem = f"Cannot use {name} as an axis: {one_line(error)}"
        self._show_data(data)
        if problem:
            self._set_status(problem)

    def _apply_axis(self) -> None:
        if self._own_data is not None:
            self.set_data(self._own_data)

    def _show_data(self, data: MapData | None) -> None:
        same_faces = data is not None and self.data is not None and data.latents is self.data.latents
        self.data = data
        self._selected = self._selected if same_faces else []
        self.scatter.clear()
        self.reference_button.setEnabled(self.model is not None and self.model.reference is not None)
        if data is not None:
            self.scatter.setData(pos=data.coords, data=np.arange(len(data.coords)), brush=PLAIN_BRUSH)
            layout = (f"x: along {data.axis.replace('_', ' ')}, y: PCA of the rest" if data.axis
                      else METHOD_TITLES[data.method])
            self.source_label.setText(f"{data.title} · {layout}")
            self.source_label.setToolTip(self.source_label.text())
        self._select_method(data.method if data is not None else "pca")   # what a new map would use
        self.plot_widget.showAxis("bottom", data is not None and data.axis is not None)
        if data is not None and data.axis is not None:
            self.plot_widget.setLabel("bottom", f"Position along the {data.axis.replace('_', ' ')} vector")
            self._set_status("")
        self._fill_colour_combo()
        self._place_added_faces()
        self._place_path()
        self._refresh_selection()
        self._shown_index = None
        self.face_view.set_image(None)
        self.face_caption.clear()
        if data is not None and len(data.names):
            self.show_face(0)
        self.frame_points()

    def frame_points(self) -> None:
        """Fit the view to the points, leaving far outliers out (pyqtgraph's 'A' button shows them all)."""
        framing = framing_range(self.data.coords) if self.data is not None else None
        if framing is None:
            self.view_box.autoRange(items=[self.scatter])
        else:
            self.view_box.setRange(xRange=framing[0], yRange=framing[1], padding=0)

    def _select_method(self, method: str) -> None:
        index = self.method_combo.findData(method)
        if index >= 0:
            self.method_combo.setCurrentIndex(index)

    def _fill_colour_combo(self) -> None:
        """List the labels and attribute vectors to colour by, keeping the current choice if it is still there."""
        previous = self.colour_combo.currentData()
        self.colour_combo.blockSignals(True)
        self.colour_combo.clear()
        self.colour_combo.addItem("None", None)
        if self.data is not None:
            for column, name in enumerate(self.data.label_names if self.data.labels is not None else ()):
                self.colour_combo.addItem(name.replace("_", " "), ("label", column))
            for name in sorted(self.model.attributes if self.model else ()):
                self.colour_combo.addItem(SCORE_PREFIX + name.replace("_", " "), ("vector", name))
        self.colour_combo.setCurrentIndex(max(0, find_data(self.colour_combo, previous)))
        self.colour_combo.blockSignals(False)
        self._apply_colouring()

    def _fill_axis_combo(self) -> None:
        """The model's attribute vectors, then its principal directions, to use as the x axis, keeping the
        current choice if it is still there."""
        previous = self.axis_combo.currentData()
        self.axis_combo.blockSignals(True)
        self.axis_combo.clear()
        self.axis_combo.addItem(OWN_AXES, None)
        attributes = self.model.attributes if self.model else {}
        directions = model_directions(self.model) if self.model else None
        titles = {name: name.replace("_", " ") for name in sorted(attributes, key=str.lower)}
        self._axis_vectors = {name: attributes[name].float() for name in titles}
        if directions is not None:
            for name, title, component in zip(directions.names(), directions.labels(), directions.components):
                if name not in titles:
                    titles[name], self._axis_vectors[name] = title, component
        for name, title in titles.items():
            self.axis_combo.addItem(f"Along {title}", name)
        index = self.axis_combo.findData(previous)
        self.axis_combo.setCurrentIndex(max(0, index))
        self.axis_combo.blockSignals(False)
        if previous is not None and index < 0:
            self._apply_axis()

    # ------------------------------------------------------------------ colouring

    def _apply_colouring(self) -> None:
        choice = self.colour_combo.currentData()
        self._draw_arrow(choice[1] if choice is not None and choice[0] == "vector" else None)
        self._legend = []
        if self.data is None or choice is None:
            self.scatter.setBrush(PLAIN_BRUSH)
            self.legend_label.clear()
            return
        kind, key = choice
        if kind == "label":
            column = self.data.labels[:, key].numpy()
            self.scatter.setBrush(label_brushes(column))
            self.legend_label.setText(self._label_legend(self.colour_combo.currentText(), column))
            self._legend = label_entries(self.colour_combo.currentText(), column)
        else:
            vector = self.model.attributes[key].float()
            scores = (self.data.latents @ (vector / vector.norm().clamp_min(1e-12))).numpy()
            brushes, low, high = score_brushes(scores)
            self.scatter.setBrush(brushes)
            self.legend_label.setText(self._score_legend(key, low, high) + self._arrow_note)
            self._legend = score_entries(key, low, high)

    def _draw_arrow(self, name: str | None) -> None:
        """An arrow from the average face along the vector coloured by, where the map is linear (PCA)."""
        arrow = arrow_ends(self.data, self.model.attributes[name]) if name is not None and self.data else None
        for item in (self.arrow_line, self.arrow_head):
            item.setVisible(arrow is not None)
        self._arrow_note = ""
        if arrow is None:
            return
        ends, in_plane = arrow
        self._arrow_note = (f"<br><span style='color:{ARROW_PEN.color().name()}'>➜</span> its direction on this map "
                            f"({100 * in_plane:.0f}% of it lies in the map's plane)")
        self.arrow_line.setData(ends[:, 0], ends[:, 1])
        dx, dy = ends[1] - ends[0]
        self.arrow_head.setStyle(angle=math.degrees(math.atan2(dy, -dx)))  # 0 points left; screen y runs down
        self.arrow_head.setPos(*ends[1])

    def arrow_tip(self) -> tuple[float, float] | None:
        """Where the vector's arrow points to on the map, or None when none is drawn."""
        return (self.arrow_head.pos().x(), self.arrow_head.pos().y()) if self.arrow_head.isVisible() else None

    @staticmethod
    def _swatch(brush: QBrush) -> str:
        return f"<span style='color:{brush.color().name()}; font-size:16px'>●</span>"

    def _label_legend(self, title: str, column: np.ndarray) -> str:
        has, lacks = int((column > 0).sum()), int((column < 0).sum())
        return (f"{self._swatch(HAS_LABEL_BRUSH)} {title} ({has:,})<br>"
                f"{self._swatch(LACKS_LABEL_BRUSH)} not {title} ({lacks:,})")

    def _score_legend(self, name: str, low: float, high: float) -> str:
        stops = "".join(f"<span style='color:{SCORE_BRUSHES[i].color().name()}'>█</span>"
                        for i in range(0, SCORE_COLOURS, 2))
        return (f"Position along the {name.replace('_', ' ')} vector<br>"
                f"{low:.2f} <span style='font-size:14px'>{stops}</span> {high:.2f}")

    # ------------------------------------------------------------------ hover, click and region selection

    def _on_hover(self, _item: Any, points: Any, _event: Any) -> None:
        if len(points):
            self.show_face(int(points[0].index()))

    def show_face(self, index: int) -> None:
        """Show face `index` in the side view (what hovering over its point does)."""
        if index == self._shown_index:  # hover fires on every mouse move over the same point
            return
        self._shown_index = index
        self.face_view.set_image(self.data.thumbnails[index])
        self.face_caption.setText(self.data.names[index])

    def current_image(self) -> torch.Tensor | None:
        """The face in the side view (3 x t x t in [0, 1]), or None."""
        if self.data is None or self._shown_index is None:
            return None
        return self.data.thumbnails[self._shown_index].float() / 255

    def _on_click(self, _item: Any, points: Any, event: Any) -> None:
        if len(points):
            self.click_face(int(points[0].index()), bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier))

    def click_face(self, index: int, toggle: bool = False) -> None:
        """What a click on face `index` does (with Ctrl: `toggle`, adding or removing it): select it and make it
        the current face, one step to undo."""
        with self.selection.undo_stack.macro(f"Select {self.data.names[index]} on the map"):
            if toggle:
                toggled = [i for i in self._selected if i != index]
                self.select_indices(toggled if len(toggled) < len(self._selected) else self._selected + [index])
            else:
                self.select_indices([index])
            self.show_face(index)
            self.selection.select_face(self.data.face(index))

    def select_in_polygon(self, polygon: np.ndarray) -> None:
        """Select the faces inside a polygon given in map coordinates (what a rectangle or lasso drag does)."""
        if self.data is None or len(polygon) < 3:
            return
        self.select_indices(np.flatnonzero(points_in_polygon(self.data.coords, polygon)).tolist())

    def select_indices(self, indices: list[int]) -> None:
        """Select these faces, an undoable step."""
        selected, before = list(dict.fromkeys(indices)), self._selected
        latents = self.data.latents if self.data is not None else None
        count = len(selected)
        text = f"Select {count:,} face{'s' if count != 1 else ''} on the map" if count else "Clear the map selection"
        self.selection.undo_stack.record(text, lambda: self._show_selection(latents, selected),
                                         lambda: self._show_selection(latents, before))

    def _show_selection(self, latents: torch.Tensor | None, indices: list[int]) -> None:
        """Select faces `indices` of `latents` if those are still the faces on the map."""
        if self.data is not None and self.data.latents is latents:
            self._selected = indices
            self._refresh_selection()

    def selected_indices(self) -> list[int]:
        return list(self._selected)

    def selected_faces(self) -> list[FaceItem]:
        return [self.data.face(i) for i in self._selected] if self.data else []

    def session_state(self) -> tuple[dict[str, Any], list[FaceItem]]:
        """The selection on the reference map (a folder's map is not kept: its faces would need encoding again)
        and the faces marked from other panels."""
        showing_reference = self.data is not None and self.data.is_reference
        return {"selected": self.selected_indices() if showing_reference else []}, list(self._added)

    def restore_session_state(self, state: dict[str, Any], faces: list[FaceItem]) -> None:
        self._added = []
        self.add_faces(faces)
        if self.data is None or not self.data.is_reference:
            return
        selected = state.get("selected")
        count = len(self.data.latents)
        self.select_indices([i for i in (selected if isinstance(selected, list) else [])
                             if isinstance(i, int) and not isinstance(i, bool) and 0 <= i < count])

    def _refresh_selection(self) -> None:
        count = len(self._selected)
        coords = self.data.coords[self._selected] if self.data is not None and count else np.empty((0, 2))
        self.selected_marks.setData(pos=coords)
        self.count_label.setText(f"{count:,} face{'s' if count != 1 else ''} selected" if count
                                 else "No faces selected")
        self.endpoints_button.setEnabled(2 <= count <= MAX_ENDPOINTS)
        self.with_button.setEnabled(count >= 1)
        self.without_button.setEnabled(count >= 1)
        self.clear_button.setEnabled(count >= 1)
        self._refresh_groups()

    # ------------------------------------------------------------------ sending to other panels

    def send_endpoints(self) -> None:
        self.selection.send_endpoints(self.selected_faces())

    def use_as_group(self, with_attribute: bool) -> None:
        latents = self.data.latents[self._selected].clone()
        if with_attribute:
            self._with_group = latents
        else:
            self._without_group = latents
        self._refresh_groups()

    def _refresh_groups(self) -> None:
        sizes = [0 if g is None else len(g) for g in (self._with_group, self._without_group)]
        self.groups_label.setText(f"with: {sizes[0]:,} faces · without: {sizes[1]:,} faces")
        self.groups_button.setEnabled(all(sizes))

    def send_groups(self) -> None:
        self.selection.send_groups(self._with_group, self._without_group)

    # ------------------------------------------------------------------ faces added elsewhere

    def add_faces(self, faces: list[FaceItem]) -> None:
        """Mark faces from other panels on this map, placed with its fitted projection."""
        self._added += faces
        self._place_added_faces()

    def _place_added_faces(self) -> None:
        usable = [f for f in self._added if self.model is not None and f.latent.numel() == self.model.latent_dim]
        if self.data is None or not usable:
            self.added_marks.setData(pos=np.empty((0, 2)))
            return
        coords = self.data.project(torch.stack([f.latent.float().reshape(-1) for f in usable]))
        self.added_marks.setData(pos=coords.double().numpy(), data=[f.name for f in usable])

    def show_path(self, latents: torch.Tensor | None) -> None:
        """Draw the Interpolate panel's path (its frames' latents) through the map's projection."""
        self._path = latents
        self._place_path()

    def _place_path(self) -> None:
        usable = self._path is not None and self.data is not None and self.model is not None \
            and self._path.shape[-1] == self.model.latent_dim
        coords = self.data.project(self._path.float()).double().numpy() if usable else np.empty((0, 2))
        self.path_curve.setData(coords[:, 0], coords[:, 1])

    # ------------------------------------------------------------------ background work

    def encode_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Encode the faces in a folder")
        if folder:
            self.encode_folder(Path(folder))

    def encode_folder(self, folder: Path) -> None:
        """Encode every picture under `folder` in the background, then map them with the chosen projection."""
        self._start(map_folder, self.model, Path(folder), self.method_combo.currentData(), self._folderProgress.emit,
                    self._folderStage.emit, busy_text="Reading and encoding %v of %m pictures", cancellable=True)

    def _refit_current(self) -> None:
        method = self.method_combo.currentData()
        if self.data is None or method == self.data.method:
            return
        if method == "pca" and self.data.is_reference:
            self.show_reference_map()
            return
        self._start(refit, self._own_data, method, busy_text=f"Fitting a {METHOD_TITLES[method]} map...")

    def _start(self, job: Callable[..., Any], *args: Any, busy_text: str, cancellable: bool = False,
               on_result: Callable[[Any], None] | None = None, failure: str = "Could not build the map") -> None:
        """Run job(*args) in the background (with cancel= when cancellable); its result goes to on_result (by
        default: a MapData to show), an error to the status line after `failure`. What a cancelled job returns or
        raises is never shown."""
        self.cancel_work()
        self._set_status("")
        cancelled = self._cancelled = threading.Event()
        self._show_stage(busy_text)
        self._show_progress(True)
        kwargs = {"cancel": cancelled.is_set} if cancellable else {}
        self._worker = start_worker(job, *args, **kwargs,
                                    on_result=lambda result: cancelled.is_set() or self._work_done(
                                        (on_result or self.set_data), result),
                                    on_error=lambda error: cancelled.is_set() or self._work_failed(failure, error))

    def _show_stage(self, text: str) -> None:
        self.progress.setRange(0, 0)
        self.progress.setFormat(text)

    def _show_folder_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def _work_done(self, show: Callable[[Any], None], result: Any) -> None:
        self._worker = None
        self._show_progress(False)
        show(result)

    def _work_failed(self, failure: str, error: Exception) -> None:
        self._worker = None
        self._show_progress(False)
        self._set_status(f"{failure}: {one_line(error)}")
        self._select_method(self.data.method if self.data else "pca")

    def cancel_work(self) -> None:
        if self._worker is not None:
            self._cancelled.set()
            self._worker.quit()
            self._worker = None
            self._set_status("Cancelled")
            if self.data is not None:
                self._select_method(self.data.method)
        self._show_progress(False)

    def _set_status(self, text: str) -> None:
        self.status_label.setText(text)
        self.status_label.setVisible(bool(text))

    def is_busy(self) -> bool:
        return self._worker is not None

    def _show_progress(self, visible: bool) -> None:
        self.progress.setVisible(visible)
        self.cancel_button.setVisible(visible)
        self.encode_button.setEnabled(not visible)
        self.export_button.setEnabled(not visible)

    # ------------------------------------------------------------------ export

    def export_current(self, path: str | Path) -> Path:
        """Save the map as it is shown now (points, colours, selection) with its axes and, when coloured, a legend:
        .svg as an SVG drawing, else a PNG."""
        path = Path(path)
        with atomic_file(path) as temporary, with_axes_and_legend(self.plot_widget, self._axis_titles(),
                                                                  self._legend):
            if path.suffix.lower() == ".svg":
                Path(temporary).write_bytes(self._map_svg())
            elif not self.plot_widget.grab().save(temporary, "PNG"):
                raise OSError(f"{path}: could not write the image")
        return path

    def _axis_titles(self) -> tuple[str, str]:
        """What the map's x and y are, for a saved map."""
        if self.data is None:
            return "", ""
        if self.data.axis is not None:
            return self.plot_widget.getPlotItem().getAxis("bottom").labelText, "PCA of the rest"
        method = METHOD_TITLES[self.data.method]
        return f"{method} 1", f"{method} 2"

    def _map_svg(self) -> bytes:
        """The plot as drawn now, as an SVG drawing with every point a vector shape. pyqtgraph's SVGExporter
        cannot read back the closing 'Z' that Qt 6.10+ writes into paths (pyqtgraph issue #3485), so Qt's own
        generator draws the view, with the items in pyqtgraph's export mode (points as shapes, not pixmaps)."""
        buffer = QBuffer()
        buffer.open(QBuffer.OpenModeFlag.WriteOnly)
        generator = QSvgGenerator()
        generator.setOutputDevice(buffer)
        generator.setSize(self.plot_widget.size())
        generator.setViewBox(self.plot_widget.rect())
        generator.setResolution(self.plot_widget.logicalDpiX())   # else the axes and the points scale apart
        generator.setTitle(self.source_label.text())
        items = [item for item in self.plot_widget.scene().items() if hasattr(item, "setExportMode")]
        painter = QPainter(generator)
        try:
            for item in items:
                item.setExportMode(True, {"antialias": True, "painter": painter})
            self.plot_widget.render(painter)
        finally:
            for item in items:
                item.setExportMode(False)
            painter.end()
        return bytes(buffer.data())

    def export_selection_csv(self, path: str | Path, overwrite: bool = False) -> Path:
        """The selected faces as CSV (core.map_export.selection_table): source, map x and y, latent, labels."""
        data, chosen = self.data, self._selected
        labels = data.labels[chosen] if data.labels is not None else None
        table = selection_table([data.names[i] for i in chosen], data.coords[chosen], data.latents[chosen], labels,
                                data.label_names)
        return save_csv(table, path, overwrite)

    def export_selection_images(self, folder: str | Path, overwrite: bool = False) -> None:
        """Write a PNG per selected face into `folder` in the background (save_pictures), with progress and
        Cancel; the status line says when they are saved."""
        folder = Path(folder)
        self._start(save_pictures, self.model, self.data, list(self._selected), folder, overwrite,
                    self._folderProgress.emit, busy_text="Saving %v of %m pictures", cancellable=True,
                    on_result=lambda written: self._set_status(f"Saved {len(written):,} faces' pictures into {folder}"),
                    failure="Could not save the pictures")

    def export_selection_csv_dialog(self) -> None:
        if not self._selection_ready():
            return
        path = ask_save_path(self, "Save the selected faces as a table", "selected_faces.csv",
                                   {".csv": "CSV table (*.csv)"})
        if path:
            self._save(lambda: self.export_selection_csv(path, overwrite=True),
                       f"Saved {len(self._selected):,} faces to {path}")

    def export_selection_images_dialog(self) -> None:
        if not self._selection_ready():
            return
        folder = ask_export_folder(self, "Save the selected faces' pictures into a folder")
        if folder is None:
            return
        names = [self.data.names[i] for i in self._selected]
        taken = [p for p in face_image_paths(names, folder) if p.exists()]
        if taken and not confirm_replace(self, f"{len(taken):,} of the {len(names):,} pictures (e.g. {taken[0].name}) "
                                               f"are already in {folder}. Replace them?"):
            return
        self.export_selection_images(folder, overwrite=bool(taken))

    def export_map_dialog(self, suffix: str) -> None:
        path = ask_save_path(self, "Save the map", f"latent_map{suffix}", {suffix: MAP_FORMATS[suffix]})
        if path:
            self._save(lambda: self.export_current(path), f"Saved the map to {path}")

    def _selection_ready(self) -> bool:
        if self.data is None or not self._selected:
            self._set_status(NOTHING_SELECTED)
            return False
        return True

    def _save(self, write: Callable[[], object], done: str) -> None:
        try:
            write()
        except (OSError, ValueError) as error:
            self._set_status(f"Could not save: {one_line(error)}")
            return
        self._set_status(done)
