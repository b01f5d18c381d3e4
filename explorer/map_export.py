"""What a saved map adds to the map on screen: its axes, and a legend when the points are coloured."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pyqtgraph as pg
from PySide6.QtGui import QBrush, QColor, QPalette

LegendEntries = list[tuple[QBrush, str]]
"""(the swatch's brush, its text) per line of a legend."""
AXES = ("bottom", "left")
LEGEND_SWATCH = 10


@contextmanager
def with_axes_and_legend(plot: pg.PlotWidget, titles: tuple[str, str], legend: LegendEntries) -> Iterator[None]:
    """Show the plot's axes titled `titles` (x, y) and, when there are `legend` entries, a legend in its corner;
    afterwards the plot is as it was."""
    item = plot.getPlotItem()
    before = {name: (item.getAxis(name).isVisible(), item.getAxis(name).labelText) for name in AXES}
    x_range, y_range = item.getViewBox().viewRange()
    for name, title in zip(AXES, titles):
        item.showAxis(name)
        item.setLabel(name, title)
    box = legend_box(plot, legend) if legend else None
    item.layout.activate()
    try:
        yield
    finally:
        if box is not None:
            box.scene().removeItem(box)
        for name, (visible, title) in before.items():
            item.setLabel(name, title)
            item.showAxis(name, visible)
        item.layout.activate()
        item.getViewBox().setRange(xRange=x_range, yRange=y_range, padding=0)


def legend_box(plot: pg.PlotWidget, entries: LegendEntries) -> pg.LegendItem:
    """A legend of round swatches in the top left corner of the plot's view, in the plot's palette."""
    palette = plot.palette()
    background = QColor(palette.color(QPalette.ColorRole.Base))
    background.setAlpha(220)
    box = pg.LegendItem(offset=(10, 10), pen=palette.color(QPalette.ColorRole.PlaceholderText), brush=background,
                        labelTextColor=palette.color(QPalette.ColorRole.Text))
    box.setParentItem(plot.getPlotItem().getViewBox())
    for brush, text in entries:
        box.addItem(pg.ScatterPlotItem(symbol="o", size=LEGEND_SWATCH, pen=None, brush=brush), text)
    return box
