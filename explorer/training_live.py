"""The live view of a training run: loss curves per network, discriminator outputs, sample and
reconstruction grids from the trainer's previews, speed and ETA, and the run's messages."""
from __future__ import annotations

import time
from functools import partial

import pyqtgraph as pg
import torch
from PySide6.QtCore import QTimer
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QListWidget, QVBoxLayout, QWidget

from core.export import make_grid
from core.trainer import Preview
from explorer.export_dialog import reconstruction_grid
from explorer.widgets import ImageView

PLOTS: dict[str, tuple[str, ...]] = {
    "Encoder loss": ("kl", "feature", "pixel"),
    "Decoder loss": ("feature", "gen", "pixel"),
    "Discriminator loss": ("dis_real", "dis_fake"),
    "Discriminator outputs": ("d_real", "d_rec", "d_prior"),
}
PLOT_TIPS = {
    "Encoder loss": "KL divergence to the prior and the learned feature-space reconstruction error (log scale)",
    "Decoder loss": "Feature-space reconstruction error and the GAN loss that fools the discriminator (log scale)",
    "Discriminator loss": "How well the discriminator tells real faces from reconstructions and samples (log scale)",
    "Discriminator outputs": "Mean probability of 'real' the discriminator gives real faces, reconstructions "
                             "and prior samples; near 0.5 means the generator is keeping up",
}
PLOTTED_METRICS = {"vaegan": ("kl", "feature", "gen", "dis_real", "dis_fake", "d_real", "d_rec", "d_prior"),
                   "vae": ("kl", "pixel")}
"""The curves each model type's training reports (core.steps), created before its first metrics arrive."""
CURVE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c")
PLOT_REFRESH_SPACING_MS = 30
"""New metrics redraw the plots one at a time, this far apart: the four log-scale plots repainted in one
pass held the GUI thread for over 100 ms while the training thread competes for the GIL."""


def format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m {rest % 60:02d}s"


class LiveView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.curves: dict[str, dict[str, pg.PlotDataItem]] = {title: {} for title in PLOTS}
        self.history: dict[str, tuple[list[float], list[float]]] = {}
        self.autoranged: set[str] = set()
        self.previews_shown = 0
        self.plots = {title: self._make_plot(title) for title in PLOTS}
        grid = QGridLayout()
        for i, plot in enumerate(self.plots.values()):
            grid.addWidget(plot, i // 2, i % 2)
        self.crops_view = ImageView("The first crops of your data appear here after the scan", min_side=150)
        self.samples_view = ImageView("Samples from fixed latent vectors appear once training starts", min_side=150)
        self.recon_view = ImageView("Training faces (odd rows) and their reconstructions (even rows)", min_side=150)
        self.crops_view.setToolTip("What the networks will see: the first 16 pictures, cropped and resized")
        self.samples_view.setToolTip("Decodes of 16 fixed random latent vectors, refreshed every preview")
        self.recon_view.setToolTip("Fixed training faces (odd rows) above their reconstructions (even rows)")
        images = QHBoxLayout()
        for title, view in (("Your crops", self.crops_view), ("Samples", self.samples_view),
                            ("Reconstructions", self.recon_view)):
            column = QVBoxLayout()
            column.addWidget(QLabel(f"<b>{title}</b>"))
            column.addWidget(view, 1)
            images.addLayout(column, 1)
        self.stats = QLabel("Not training", toolTip="Progress, speed and estimated time left")
        self.log = QListWidget(toolTip="Messages from the trainer, e.g. rollbacks after a non-finite loss")
        self.log.setMaximumHeight(90)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(grid, 3)
        layout.addLayout(images, 2)
        layout.addWidget(self.stats)
        layout.addWidget(self.log)

    def _make_plot(self, title: str) -> pg.PlotWidget:
        palette = self.palette()
        plot = pg.PlotWidget(background=palette.color(QPalette.ColorRole.Base))
        plot.setToolTip(PLOT_TIPS[title])
        text = palette.color(QPalette.ColorRole.Text)
        plot.setTitle(title, color=text)
        for axis in ("left", "bottom"):
            plot.getAxis(axis).setTextPen(text)
            plot.getAxis(axis).setPen(palette.color(QPalette.ColorRole.Mid))
        plot.setLabel("bottom", "step")
        plot.addLegend(offset=(-8, 8), labelTextColor=text, colCount=3)  # one row: never clipped
        plot.setLogMode(y=title != "Discriminator outputs")
        self._show_default_range(plot)
        plot.setMinimumHeight(120)
        plot.setClipToView(True)
        plot.setDownsampling(auto=True)
        return plot

    @staticmethod
    def _show_default_range(plot: pg.PlotWidget) -> None:
        """A sane fixed axis until a curve has two points (0.1 .. 10^4 on log plots): autoranging a single
        point gives a degenerate log range whose tick labels pile up on each other."""
        plot.disableAutoRange()
        plot.setXRange(0, 1, padding=0)
        plot.setYRange(*((-1, 4) if plot.getAxis("left").logMode else (0, 1)), padding=0)

    # ----- updates -----
    def reset(self, model_type: str | None = None) -> None:
        """Clear the view; with a model type, also lay out its empty curves and paint them now. Built on the
        first metrics instead, with the training thread already competing for the GIL, the curves and legends
        froze the window for a quarter of a second."""
        for title, plot in self.plots.items():
            for curve in self.curves[title].values():
                plot.removeItem(curve)
            self.curves[title].clear()
            plot.plotItem.legend.clear()
            self._show_default_range(plot)
            for key in (k for k in PLOTS[title] if k in PLOTTED_METRICS.get(model_type, ())):
                self._curve(title, key)
            plot.repaint()
        self.history.clear()
        self.autoranged.clear()
        self.log.clear()
        self.previews_shown = 0
        self.samples_view.set_image(None)
        self.recon_view.set_image(None)

    def add_metrics(self, record: dict[str, float]) -> None:
        step = record["step"]
        for key, value in record.items():
            steps, values = self.history.setdefault(key, ([], []))
            steps.append(step)
            values.append(value)
        for order, title in enumerate(PLOTS):
            QTimer.singleShot(order * PLOT_REFRESH_SPACING_MS, self, partial(self._refresh_plot, title))
        self.stats.setText(self._stats_text(record))

    def _refresh_plot(self, title: str) -> None:
        for key in (k for k in PLOTS[title] if k in self.history):
            self._curve(title, key).setData(*self.history[key])
        if title not in self.autoranged and len(self.history.get("step", ((),))[0]) >= 2:
            self.autoranged.add(title)  # once per run, so a user's zoom is not undone by the next refresh
            self.plots[title].enableAutoRange()

    def _curve(self, title: str, key: str) -> pg.PlotDataItem:
        curves = self.curves[title]
        if key not in curves:
            colour = CURVE_COLOURS[len(curves) % len(CURVE_COLOURS)]
            curves[key] = self.plots[title].plot(name=key, pen=pg.mkPen(colour, width=2))
        return curves[key]

    @staticmethod
    def _stats_text(record: dict[str, float]) -> str:
        return (f"Step {int(record['step']):,} · epoch {record['epoch']:.1f} · "
                f"{record['images_per_s']:.0f} images/s · elapsed {format_duration(record['elapsed_s'])} · "
                f"about {format_duration(record['eta_s'])} left")

    def show_preview(self, preview: Preview) -> None:
        self.samples_view.set_image(make_grid(preview.samples, 4))
        pairs = list(zip(preview.originals, preview.reconstructions))
        self.recon_view.set_image(reconstruction_grid(pairs, per_row=4))
        self.previews_shown += 1

    def show_crops(self, images: torch.Tensor | None) -> None:
        self.crops_view.set_image(None if images is None or not len(images) else make_grid(images[:16].float() / 255, 4))

    def add_message(self, text: str) -> None:
        self.log.addItem(f"{time.strftime('%H:%M:%S')}  {text}")
        self.log.scrollToBottom()
