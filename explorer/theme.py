"""Light and dark palettes: the system's scheme unless View ▸ Theme picks one, applied to the whole app and,
through ThemedPlotWidget, to the pyqtgraph plots (which do not read the Qt palette on their own)."""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget

SYSTEM_THEME, LIGHT_THEME, DARK_THEME = "system", "light", "dark"
THEMES = {SYSTEM_THEME: "&System", LIGHT_THEME: "&Light", DARK_THEME: "&Dark"}
"""The choices of View ▸ Theme (as remembered in the settings) with their menu titles."""

Role = QPalette.ColorRole
LIGHT_COLOURS = {
    Role.Window: "#efefef", Role.WindowText: "#000000", Role.Base: "#ffffff", Role.AlternateBase: "#f5f5f5",
    Role.Text: "#000000", Role.Button: "#efefef", Role.ButtonText: "#000000", Role.ToolTipBase: "#ffffdc",
    Role.ToolTipText: "#000000", Role.PlaceholderText: "#5f5f5f", Role.Highlight: "#308cc6",
    Role.HighlightedText: "#ffffff", Role.Link: "#0b57b4", Role.LinkVisited: "#6a3ab2", Role.BrightText: "#c62828",
}
DARK_COLOURS = {
    Role.Window: "#2d2d2d", Role.WindowText: "#e8e8e8", Role.Base: "#1e1e1e", Role.AlternateBase: "#282828",
    Role.Text: "#e8e8e8", Role.Button: "#383838", Role.ButtonText: "#e8e8e8", Role.ToolTipBase: "#404040",
    Role.ToolTipText: "#e8e8e8", Role.PlaceholderText: "#a8a8a8", Role.Highlight: "#2f7fbf",
    Role.HighlightedText: "#ffffff", Role.Link: "#7ab7ff", Role.LinkVisited: "#c39bff", Role.BrightText: "#ff7b72",
}
"""BrightText is the error red (widgets.ERROR_STYLE), at least 4.5:1 against Window and Base in its palette."""
DISABLED_TEXT = {False: "#9a9a9a", True: "#767676"}
DISABLED_ROLES = (Role.WindowText, Role.Text, Role.ButtonText, Role.PlaceholderText)


def system_is_dark() -> bool:
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def theme_palette(dark: bool) -> QPalette:
    """A Fusion palette: bevels (Light, Mid, Dark, Shadow) derived from the button and window colours."""
    colours = DARK_COLOURS if dark else LIGHT_COLOURS
    palette = QPalette(QColor(colours[Role.Button]), QColor(colours[Role.Window]))
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    for role in DISABLED_ROLES:
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(DISABLED_TEXT[dark]))
    return palette


class Theme(QObject):
    """The app's palette: light or dark as the system says (and live when it changes), or the user's choice."""

    def __init__(self, choice: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.choice = choice
        QGuiApplication.styleHints().colorSchemeChanged.connect(self.apply)  # is_dark() asks the system anew
        self.apply()

    def choose(self, choice: str) -> None:
        self.choice = choice
        self.apply()

    def is_dark(self) -> bool:
        return system_is_dark() if self.choice == SYSTEM_THEME else self.choice == DARK_THEME

    def apply(self) -> None:
        palette = theme_palette(self.is_dark())
        if palette == QApplication.palette():   # a new window in the same theme: nothing to redo
            return
        QApplication.setPalette(palette)
        restyle_style_sheets()


def restyle_style_sheets() -> None:
    """Style sheets resolve palette(...) colours once: set them again so they pick up the new palette.

    Walks each window's own children while holding the window, so no widget can be freed under the walk
    (QApplication.allWidgets() hands out widgets whose owners the garbage collector may free meanwhile)."""
    for window in QApplication.topLevelWidgets():
        for widget in [window, *window.findChildren(QWidget)]:
            if widget.styleSheet():
                widget.setStyleSheet(widget.styleSheet())


def style_plot(plot: pg.PlotWidget) -> None:
    """The plot's background, axes and title in the colours of its palette."""
    palette = plot.palette()
    text = palette.color(Role.Text)
    plot.setBackground(palette.color(Role.Base))
    for axis in plot.plotItem.axes.values():
        axis["item"].setPen(palette.color(Role.PlaceholderText))
        axis["item"].setTextPen(text)
    title = plot.plotItem.titleLabel
    title.setText(title.text, color=text)


class ThemedPlotWidget(pg.PlotWidget):
    """A PlotWidget that follows the Qt palette, live when the theme changes."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        style_plot(self)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self.plotItem is not None:  # None: still being built
            style_plot(self)
