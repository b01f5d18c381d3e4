"""The live view of a training run: loss curves per network, discriminator outputs, sample and
reconstruction grids from the trainer's previews, speed and ETA, and the run's messages."""
from __future__ import annotations

import math
import re
import time
from functools import partial

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFontMetrics, QPalette
from PySide6.QtWidgets import (QGridLayout, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QSplitter,
                               QVBoxLayout, QWidget)

from core.export import make_grid
from core.steps import D_PRIOR, D_REAL, D_REC, DIS_FAKE, DIS_REAL, FEATURE, GAN, KL, PIXEL, STEP_METRICS
from core.trainer import ELAPSED_S, EPOCH, ETA_S, IMAGES_PER_S, STEP, Preview
from explorer.export_dialog import reconstruction_grid
from explorer.theme import ThemedPlotWidget
from explorer.training_session import PLANNED_STEPS
from explorer.widgets import ImageView

PLOTS: dict[str, tuple[str, ...]] = {
    "Encoder loss": (KL, FEATURE, PIXEL),
    "Decoder loss": (FEATURE, GAN, PIXEL),
    "Discriminator loss": (DIS_REAL, DIS_FAKE),
    "Discriminator outputs": (D_REAL, D_REC, D_PRIOR),
}
PLOT_TIPS = {
    "Encoder loss": "KL divergence to the prior and the learned feature-space reconstruction error (log scale)",
    "Decoder loss": "Feature-space reconstruction error and the GAN loss that fools the discriminator (log scale)",
    "Discriminator loss": "How well the discriminator tells real faces from reconstructions and samples (log scale)",
    "Discriminator outputs": "Mean probability of 'real' the discriminator gives real faces, reconstructions "
                             "and prior samples; near 0.5 means the generator is keeping up",
}
CURVE_NAMES = {KL: "KL", FEATURE: "feature", PIXEL: "pixel", GAN: "GAN", DIS_REAL: "real", DIS_FAKE: "fake",
               D_REAL: "real", D_REC: "recon", D_PRIOR: "sample"}
"""How each metric is named in its plot's title, which doubles as the legend (a legend inside a plot hides curves)."""
CURVE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c")
FACES_APPEAR_IMAGES = 20_000
"""Training pictures seen before the samples and reconstructions of a new model start to look like faces; until then
they are coloured noise, then blobs (measured: README, "The panels")."""
MANTISSAS = ((1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 5), (1,))
"""Log-axis label sets, densest first: the densest whose labels stay a text line apart is used."""
RUN_LINE = re.compile(r"step [\d,]+ of .+$")
"""The end of the trainer's opening message ("…, step 0 of 3,000"): that log line follows the run's current step
and plan."""
TITLE_SIZE = "9pt"
PLOT_REFRESH_SPACING_MS = 30
"""New metrics redraw the plots one at a time, this far apart: the four log-scale plots repainted in one
pass held the GUI thread for over 100 ms while the training thread competes for the GIL."""


def format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m {rest % 60:02d}s"


def format_tick(value: float) -> str:
    """A log-axis label: plain digits from 0.001 to 9,999 (0.09, 600), else 2·10⁻⁵ or 10⁴."""
    if 1e-3 <= value < 1e4:
        return f"{value:.4g}"
    mantissa, exponent = f"{value:.0e}".split("e")
    power = "10" + str(int(exponent)).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return power if mantissa == "1" else f"{mantissa}·{power}"


def log_tick_levels(low: float, high: float, pixels: float, gap: float) -> list[tuple[None, list[float]]]:
    """Tick positions (log10 units) for an axis showing 10**low .. 10**high over `pixels`: labelled ticks at
    least `gap` pixels apart, then unlabelled ones at the other 1..9 x 10^n."""
    per_decade = pixels / max(high - low, 1e-12)
    inside = lambda positions: [x for x in positions if low <= x <= high]  # noqa: E731
    decades = range(math.floor(low), math.ceil(high) + 1)
    labelled: list[float] = []
    for mantissas in MANTISSAS:
        closest = min(np.diff(np.log10([*mantissas, 10 * mantissas[0]])))
        if closest * per_decade >= gap:
            labelled = inside([n + math.log10(m) for n in decades for m in mantissas])
            break
    else:  # many decades on a short axis: every second (third…) power of ten
        labelled = inside(list(range(math.ceil(low), math.floor(high) + 1, math.ceil(gap / per_decade))))
    if len(labelled) < 2:  # less than a decade shown: round values instead, kept a text line apart
        labelled = spaced(inside([math.log10(v) for v in evenly_spaced(10 ** low, 10 ** high, pixels / gap)]),
                          gap / per_decade)
    minor = [x for x in inside([n + math.log10(m) for n in decades for m in MANTISSAS[0]])
             if all(abs(x - y) * per_decade > 2 for y in labelled)]
    return [(None, labelled), (None, minor)]


def spaced(positions: list[float], least: float) -> list[float]:
    """The positions, from the top down, leaving out any closer than `least` to the last one kept."""
    kept: list[float] = []
    for x in sorted(positions, reverse=True):
        if not kept or kept[-1] - x >= least:
            kept.append(x)
    return sorted(kept)


def evenly_spaced(low: float, high: float, most: float) -> list[float]:
    """Round values (1, 2 or 5 x 10^k apart) between low and high, at most `most` of them."""
    for exponent in range(math.floor(math.log10(max(high - low, 1e-300))) - 1, 400):
        for step in (10.0 ** exponent * m for m in (1, 2, 5)):
            values = [step * k for k in range(math.ceil(low / step), math.floor(high / step) + 1)]
            if len(values) <= max(most, 2):
                return [v for v in values if v > 0]
    return []


class ReadableLogAxis(pg.AxisItem):
    """pyqtgraph's log axis labels every 1..9 x 10^n it can and piles them onto each other at the start of a
    run; this one labels only ticks a text line apart, in plain digits where they are short."""

    def __init__(self, orientation: str = "left") -> None:
        super().__init__(orientation)
        self.setStyle(maxTextLevel=0)  # the in-between ticks of a decade are drawn without labels

    def logTickValues(self, minVal: float, maxVal: float, size: float, stdTicks: list) -> list:  # noqa: N802
        line = QFontMetrics(self.style.get("tickFont") or self.font()).height()
        return log_tick_levels(minVal, maxVal, size, 1.6 * line if self.orientation in ("left", "right") else 60)

    def logTickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
        return [format_tick(10 ** v * scale) for v in values]


class LivePlot(ThemedPlotWidget):
    """A plot whose title carries the legend. The title spans the axes too, and the curve names go on a second line
    when one line is wider than the plot: a title wider than its column pushed the legend's end and the last x tick
    out of the widget."""

    title, names = "", ""  # a resize can come before the first show_title

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        layout, label = self.plotItem.layout, self.plotItem.titleLabel
        layout.removeItem(label)
        layout.addItem(label, 0, 0, 1, 3)

    def show_title(self, title: str, names: str) -> None:
        self.title, self.names = title, names
        self._fit_title()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self.plotItem is not None:  # None: still being built
            self._fit_title()   # first: the title sets the least width the plot item takes
        super().resizeEvent(event)

    def _fit_title(self) -> None:
        label = self.plotItem.titleLabel
        self.setTitle(f"{self.title}&nbsp;&nbsp;&nbsp;{self.names}" if self.names else self.title, size=TITLE_SIZE)
        left, _, right, _ = self.plotItem.layout.getContentsMargins()
        if self.names and label.itemRect().width() > self.contentsRect().width() - left - right:
            self.setTitle(f"{self.title}<br>{self.names}", size=TITLE_SIZE)
        label.setMaximumHeight(label.itemRect().height())


class LiveView(QWidget):
    """Four plots above three picture grids (a splitter between them), a status line with a plain hint (a new
    model's first faces are noise; a run from a model starts with its faces), and the run's messages."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.curves: dict[str, dict[str, pg.PlotDataItem]] = {title: {} for title in PLOTS}
        self.history: dict[str, tuple[list[float], list[float]]] = {}
        self.autoranged: set[str] = set()
        self.previews_shown = 0
        self.batch_size = 0
        self.start_from: str | None = None
        self.max_minutes: float | None = None
        self.run_line: QListWidgetItem | None = None
        self.plots = {title: self._make_plot(title) for title in PLOTS}
        plots = QWidget()
        grid = QGridLayout(plots)
        grid.setContentsMargins(0, 0, 0, 0)
        for i, plot in enumerate(self.plots.values()):
            grid.addWidget(plot, i // 2, i % 2)
        self.crops_view = ImageView("The first crops of your data appear here after the scan", min_side=96)
        self.samples_view = ImageView("Samples from fixed latent vectors appear once training starts", min_side=96)
        self.recon_view = ImageView("Training faces (odd rows) and their reconstructions (even rows)", min_side=96)
        self.crops_view.setToolTip("What the networks will see: the first 16 pictures, cropped and resized")
        self.samples_view.setToolTip("Decodes of 16 fixed random latent vectors, refreshed every preview")
        self.recon_view.setToolTip("Fixed training faces (odd rows) above their reconstructions (even rows)")
        images = QWidget()
        row = QHBoxLayout(images)
        row.setContentsMargins(0, 0, 0, 0)
        for title, view in (("Your crops", self.crops_view), ("Samples", self.samples_view),
                            ("Reconstructions", self.recon_view)):
            column = QVBoxLayout()
            column.addWidget(QLabel(f"<b>{title}</b>"))
            column.addWidget(view, 1)
            row.addLayout(column, 1)
        splitter = QSplitter(Qt.Orientation.Vertical, childrenCollapsible=False)
        splitter.addWidget(plots)
        splitter.addWidget(images)
        splitter.setSizes([5, 4])  # in proportion: the plots a little taller than the pictures
        self.stats = QLabel("Not training", wordWrap=True, toolTip="Progress, speed and estimated time left")
        self.hint = QLabel(wordWrap=True, visible=False)
        self.hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.log = QListWidget(toolTip="Messages from the trainer, e.g. rollbacks after a non-finite loss")
        self.log.setMaximumHeight(3 * self.log.fontMetrics().height() + 8)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.stats)
        layout.addWidget(self.hint)
        layout.addWidget(self.log)

    def _make_plot(self, title: str) -> LivePlot:
        log_scale = title != "Discriminator outputs"
        plot = LivePlot(axisItems={"left": ReadableLogAxis()} if log_scale else None)
        plot.setToolTip(PLOT_TIPS[title] + "; the horizontal axis counts training steps")
        plot.setLogMode(y=log_scale)
        self._show_title(title, plot)
        self._show_default_range(plot)
        plot.setMinimumHeight(110)
        plot.setClipToView(True)
        plot.setDownsampling(auto=True)
        return plot

    def _show_title(self, title: str, plot: LivePlot) -> None:
        """The title, followed by each curve's name in its colour: the legend, outside the curves."""
        plot.show_title(title, "&nbsp;&nbsp;".join(f"<span style='color:{curve.opts['pen'].color().name()}'>━&nbsp;"
                                                   f"{CURVE_NAMES.get(key, key)}</span>"
                                                   for key, curve in self.curves[title].items()))

    @staticmethod
    def _show_default_range(plot: pg.PlotWidget) -> None:
        """A sane fixed axis until a curve has two points (0.1 .. 10^4 on log plots): autoranging a single
        point gives a degenerate range."""
        plot.disableAutoRange()
        plot.setXRange(0, 1, padding=0)
        plot.setYRange(*((-1, 4) if plot.getAxis("left").logMode else (0, 1)), padding=0)

    # ----- updates -----
    def reset(self, model_type: str | None = None, batch_size: int = 0, start_from: str | None = None,
              max_minutes: float | None = None) -> None:
        """Clear the view; with a model type, also lay out its empty curves and paint them now. Built on the
        first metrics instead, with the training thread already competing for the GIL, the curves and titles
        froze the window for a quarter of a second. `batch_size` turns steps into pictures seen for the hint;
        `start_from` names the model the run starts from (None: a new model); `max_minutes` bounds the time left."""
        for title, plot in self.plots.items():
            for curve in self.curves[title].values():
                plot.removeItem(curve)
            self.curves[title].clear()
            self._show_default_range(plot)
            for key in (k for k in PLOTS[title] if k in STEP_METRICS.get(model_type, ())):
                self._curve(title, key)
            self._show_title(title, plot)
            plot.repaint()
        self.history.clear()
        self.autoranged.clear()
        self.log.clear()
        self.previews_shown = 0
        self.batch_size, self.start_from, self.max_minutes = batch_size, start_from, max_minutes
        self.run_line = None
        self.samples_view.set_image(None)
        self.recon_view.set_image(None)
        self.stats.setText("Starting…" if model_type else "Not training")
        self.hint.setText(self._first_hint() if model_type else "")
        self.hint.setVisible(bool(model_type))

    def _first_hint(self) -> str:
        if self.start_from:
            return (f"Samples and reconstructions start as the faces of {self.start_from}, the model this run "
                    f"starts from, and move toward your pictures as it trains.")
        return "Early samples and reconstructions are coloured noise, then blobs: that is expected."

    def add_metrics(self, record: dict[str, float]) -> None:
        step = record[STEP]
        for key, value in record.items():
            steps, values = self.history.setdefault(key, ([], []))
            steps.append(step)
            values.append(value)
        for order, title in enumerate(PLOTS):
            QTimer.singleShot(order * PLOT_REFRESH_SPACING_MS, self, partial(self._refresh_plot, title))
        total, seconds_left = self._plan(record)
        self.stats.setText(self._stats_text(record, total, seconds_left))
        if self.run_line is not None:
            self.run_line.setText(RUN_LINE.sub(f"step {int(step):,} of {total:,}", self.run_line.text()))
        self._update_hint(record)

    def _plan(self, record: dict[str, float]) -> tuple[int, float]:
        """The planned step count and the seconds left. A run with max minutes ends by then: until it has measured
        its speed and planned its steps, the trainer counts its step cap, so both come from the minutes here."""
        total, seconds_left = int(record[PLANNED_STEPS]), record[ETA_S]
        if self.max_minutes is None:
            return total, seconds_left
        minutes_left = max(0.0, 60 * self.max_minutes - record[ELAPSED_S])
        if seconds_left <= minutes_left:
            return total, seconds_left
        fitting = round(minutes_left * record[IMAGES_PER_S] / max(self.batch_size, 1))
        return min(total, int(record[STEP]) + fitting), minutes_left

    def _update_hint(self, record: dict[str, float]) -> None:
        """Until about FACES_APPEAR_IMAGES pictures are seen, say when a new model's faces should show at this
        machine's speed (a run from a model keeps its first hint)."""
        if self.start_from:
            return
        seen = record[STEP] * self.batch_size
        if not self.batch_size or seen >= FACES_APPEAR_IMAGES:
            self.hint.setVisible(False)
            return
        wait = (FACES_APPEAR_IMAGES - seen) / max(record[IMAGES_PER_S], 1e-9)
        self.hint.setText(f"Early samples are coloured noise, then blobs: that is expected. Faces usually appear "
                          f"after about {FACES_APPEAR_IMAGES:,} pictures seen: in about {format_duration(wait)} at "
                          f"this machine's speed.")
        self.hint.setVisible(True)

    def show_final_state(self, text: str) -> None:
        """Replace the running figures (step, time left) with how the run ended."""
        self.stats.setText(text)
        self.hint.setVisible(False)

    def _refresh_plot(self, title: str) -> None:
        for key in (k for k in PLOTS[title] if k in self.history):
            self._curve(title, key).setData(*self.history[key])
        if title not in self.autoranged and len(self.history.get(STEP, ((),))[0]) >= 2:
            self.autoranged.add(title)  # once per run, so a user's zoom is not undone by the next refresh
            self.plots[title].enableAutoRange()

    def _curve(self, title: str, key: str) -> pg.PlotDataItem:
        curves = self.curves[title]
        if key not in curves:
            colour = CURVE_COLOURS[len(curves) % len(CURVE_COLOURS)]
            curves[key] = self.plots[title].plot(name=key, pen=pg.mkPen(colour, width=2))
        return curves[key]

    @staticmethod
    def _stats_text(record: dict[str, float], total: int, seconds_left: float) -> str:
        return (f"Step {int(record[STEP]):,} of {total:,} · epoch {record[EPOCH]:.1f} · {record[IMAGES_PER_S]:.0f} "
                f"images/s · elapsed {format_duration(record[ELAPSED_S])} · "
                f"about {format_duration(seconds_left)} left")

    def show_preview(self, preview: Preview) -> None:
        self.samples_view.set_image(make_grid(preview.samples, 4))
        pairs = list(zip(preview.originals, preview.reconstructions))
        self.recon_view.set_image(reconstruction_grid(pairs, per_row=4))
        self.previews_shown += 1

    def show_crops(self, images: torch.Tensor | None) -> None:
        self.crops_view.set_image(None if images is None or not len(images) else make_grid(images[:16].float() / 255, 4))

    def add_message(self, text: str) -> None:
        """A timestamped log line; the run's opening line ("…, step 0 of …") then follows its step and plan."""
        item = QListWidgetItem(f"{time.strftime('%H:%M:%S')}  {text}")
        self.log.addItem(item)
        if self.run_line is None and RUN_LINE.search(text):
            self.run_line = item
        self.log.scrollToBottom()
