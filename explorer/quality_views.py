"""Views of what the model learned: the realism meter, slider safe-range shading and the vector-quality dialog."""
from __future__ import annotations

import math
from typing import Any

import torch
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import (QDialog, QHBoxLayout, QHeaderView, QLabel, QSlider, QStyle, QStyleOptionSlider,
                               QTableWidget, QTableWidgetItem, QToolTip, QVBoxLayout, QWidget)

from core.api import Model
from core.realism import INSIDE_SHARE, Realism
from core.vector_quality import (Separation, cosine_matrix, cross_fitted_separations, entanglement_order,
                                 most_entangled)
from explorer.widgets import ERROR_STYLE, ImageView, start_worker

UNSAFE_COLOUR = QColor(214, 64, 64, 170)
WARNING_STYLE = f"{ERROR_STYLE} font-weight: bold;"
NEAREST_SIDE = 64


def display_name(name: str) -> str:
    return name.replace("_", " ")


class SafeRangeShade(QWidget):
    """Shades the strengths of a slider outside its safe range: drawn over the slider's groove, mouse events
    pass through to the slider."""

    def __init__(self, slider: QSlider) -> None:
        super().__init__(slider)
        self.slider = slider
        self.low, self.high = -math.inf, math.inf
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        slider.installEventFilter(self)
        self.setGeometry(slider.rect())

    def eventFilter(self, watched: Any, event: Any) -> bool:
        if event.type() == event.Type.Resize:
            self.setGeometry(self.slider.rect())
        return False

    def set_range(self, low: float, high: float) -> None:
        """Safe strengths low..high; NaN for none (every strength leaves the region)."""
        if (low, high) != (self.low, self.high) and not (math.isnan(low) and math.isnan(self.low)):
            self.low, self.high = low, high
            self.update()

    def unsafe_spans(self) -> list[tuple[float, float]]:
        """The (from, to) strengths shaded, within the slider's range."""
        lowest, highest = self.slider.minimum(), self.slider.maximum()
        if math.isnan(self.low):
            return [(lowest, highest)]
        spans = [(lowest, min(self.low, highest)), (max(self.high, lowest), highest)]
        return [(a, b) for a, b in spans if b > a]

    def _x(self, value: float, groove: QRectF, handle: float) -> float:
        lowest, highest = self.slider.minimum(), self.slider.maximum()
        share = (value - lowest) / (highest - lowest) if highest > lowest else 0.0
        return groove.left() + handle / 2 + share * (groove.width() - handle)

    def paintEvent(self, event: Any) -> None:
        spans = self.unsafe_spans()
        if not spans:
            return
        option = QStyleOptionSlider()
        self.slider.initStyleOption(option)
        style = self.slider.style()
        groove = QRectF(style.subControlRect(QStyle.ComplexControl.CC_Slider, option,
                                             QStyle.SubControl.SC_SliderGroove, self.slider))
        handle = style.subControlRect(QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderHandle,
                                      self.slider).width()
        painter = QPainter(self)
        band = QRectF(0, groove.center().y() - 4, 0, 8)
        for start, end in spans:
            left, right = self._x(start, groove, handle), self._x(end, groove, handle)
            painter.fillRect(QRectF(left, band.top(), right - left, band.height()), UNSAFE_COLOUR)


class RealismView(QWidget):
    """How typical the face on screen is among the training faces, a warning when it is not, and its five
    nearest reference faces (a memorisation check)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary_label = QLabel(wordWrap=True)
        self.warning_label = QLabel(wordWrap=True)
        self.warning_label.setStyleSheet(WARNING_STYLE)
        self.nearest_view = ImageView("", min_side=NEAREST_SIDE, caption="Nearest training faces")
        self.nearest_view.setToolTip("The reference faces (training faces, as the model renders them) whose latents "
                                     "are nearest: a face that copies one of them was memorised")
        self.nearest_view.setMinimumSize(5 * NEAREST_SIDE, NEAREST_SIDE + 20)
        self.nearest_view.setMaximumHeight(NEAREST_SIDE + 24)
        self._nearest: list[int] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.warning_label)
        layout.addWidget(self.nearest_view)

    def show_realism(self, realism: Realism, thumbnails: torch.Tensor) -> None:
        """Figures of the face; thumbnails: the reference map's N x 3 x t x t uint8 (the nearest are picked)."""
        self.summary_label.setText(f"Realism: more typical than {realism.percentile:.0f}% of the training faces "
                                   "(density of its latent under the Gaussian fitted to them)")
        self.warning_label.setText("" if realism.inside else
                                   f"Outside the region where {100 * INSIDE_SHARE:.0f}% of the typical training "
                                   "faces lie: the model has seen little like this face, expect artefacts.")
        self.warning_label.setVisible(not realism.inside)
        if realism.nearest != self._nearest:
            self._nearest = list(realism.nearest)
            strip = thumbnails[realism.nearest].permute(1, 2, 0, 3).flatten(2)
            self.nearest_view.set_image(strip)
        self.nearest_view.show()

    def show_unavailable(self) -> None:
        self.summary_label.setText("Realism: this model stores no fitted latent Gaussian or reference map to "
                                   "measure faces against.")
        self.warning_label.hide()
        self.nearest_view.hide()
        self._nearest = []


def heat_colour(value: float) -> QColor:
    """Blue for -1, white for 0, red for +1."""
    value = max(-1.0, min(1.0, value))
    fade = int(255 * (1 - abs(value)))
    return QColor(255, fade, fade) if value >= 0 else QColor(fade, fade, 255)


class HeatMapView(QWidget):
    """Cosine similarities between vectors as coloured cells, names down the left; hover for the value."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.names: list[str] = []
        self.values = torch.zeros(0, 0)
        self.setMouseTracking(True)
        self.setMinimumSize(360, 360)

    def set_matrix(self, names: list[str], values: torch.Tensor) -> None:
        self.names, self.values = names, values
        self.update()

    def _label_width(self) -> int:
        return max((self.fontMetrics().horizontalAdvance(display_name(n)) for n in self.names), default=0) + 8

    def cell_rect(self) -> tuple[float, float, float]:
        """(left, top, cell side) of the grid."""
        count = max(1, len(self.names))
        left = self._label_width()
        side = max(1.0, min((self.width() - left) / count, self.height() / count))
        return left, 0.0, side

    def cell_at(self, x: float, y: float) -> tuple[int, int] | None:
        left, top, side = self.cell_rect()
        row, column = int((y - top) // side), int((x - left) // side)
        count = len(self.names)
        return (row, column) if x >= left and 0 <= row < count and 0 <= column < count else None

    def paintEvent(self, event: Any) -> None:
        painter = QPainter(self)
        left, top, side = self.cell_rect()
        painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        font = painter.font()
        font.setPixelSize(max(8, min(12, int(side) - 1)))
        painter.setFont(font)
        for row, name in enumerate(self.names):
            painter.drawText(QRectF(0, top + row * side, left - 4, side),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, display_name(name))
            for column in range(len(self.names)):
                painter.fillRect(QRectF(left + column * side, top + row * side, side, side),
                                 heat_colour(float(self.values[row, column])))

    def mouseMoveEvent(self, event: Any) -> None:
        cell = self.cell_at(event.position().x(), event.position().y())
        if cell is not None:
            row, column = cell
            QToolTip.showText(event.globalPosition().toPoint(),
                              f"{display_name(self.names[row])} · {display_name(self.names[column])}: "
                              f"cosine {float(self.values[row, column]):+.2f}", self)


COLUMNS = ("Attribute", "With", "Without", "Separation (d)", "Most entangled with")


class VectorQualityDialog(QDialog):
    """Per vector: Cohen's d with the counts behind it and the three most entangled vectors; next to it the
    heat map of cosines, ordered so that related vectors sit together. Scores are computed off the GUI thread."""

    def __init__(self, model: Model, parent: QWidget | None = None) -> None:
        super().__init__(parent, windowTitle="Vector quality")
        self.model = model
        self.scores: dict[str, Separation] | None = None
        self.source_label = QLabel(wordWrap=True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.heat_map = HeatMapView()
        self.heat_map.setToolTip("Cosine similarity of each pair of vectors: red points the same way, blue the "
                                 "opposite way; related vectors are grouped together")
        body = QHBoxLayout()
        body.addWidget(self.table, 1)
        body.addWidget(self.heat_map, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.source_label)
        layout.addLayout(body, 1)
        available = (parent or self).screen().availableGeometry()
        self.resize(min(1280, available.width() * 9 // 10), min(760, available.height() * 9 // 10))
        names, cosines = cosine_matrix(model.attributes)
        order = entanglement_order(cosines)
        self.order = [names[i] for i in order]
        self.heat_map.set_matrix(self.order, cosines[order][:, order])
        self._fill_table(names, cosines)
        reference = model.reference
        if reference is None or reference.labels is None:
            self.source_label.setText("This model's reference map has no labels, so the vectors cannot be scored "
                                      "here; `vaegan vectors MODEL --faces FOLDER` scores them on labelled faces.")
            self.worker = None
            return
        self.source_label.setText("Scoring the vectors…")
        self.worker = start_worker(cross_fitted_separations, reference.latents, reference.labels,
                                   reference.label_names, on_result=self.show_scores)

    def _fill_table(self, names: list[str], cosines: torch.Tensor) -> None:
        self.table.setRowCount(len(self.order))
        for row, name in enumerate(self.order):
            entangled = ", ".join(f"{display_name(other)} {cosine:+.2f}"
                                  for other, cosine in most_entangled(names, cosines, name))
            for column, text in ((0, display_name(name)), (4, entangled)):
                self.table.setItem(row, column, QTableWidgetItem(text))

    def show_scores(self, scores: dict[str, Separation]) -> None:
        self.scores = scores
        reference = self.model.reference
        self.source_label.setText(
            f"Separation: Cohen's d of the projections of faces with and without each attribute, on faces the "
            f"vector was not made from (cross-fitted on the model's {len(reference.latents):,} reference faces: "
            "a vector made from one half, scored on the other). Above 1 separates well; near 0 not at all.")
        for row, name in enumerate(self.order):
            score = scores.get(name)
            cells = ("", "", "n/a") if score is None else (f"{score.with_count:,}", f"{score.without_count:,}",
                                                          f"{score.d:.2f}")
            for column, text in zip((1, 2, 3), cells):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)
