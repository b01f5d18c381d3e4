"""Look and feel: View ▸ Theme switches palettes and plots live and is remembered; Help ▸ Keyboard shortcuts;
crisp pixels on HiDPI screens."""
from __future__ import annotations


import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QLabel

from explorer.settings import app_settings, theme_choice
from explorer.shortcuts_dialog import ShortcutsDialog
from explorer import theme
from explorer.theme import DARK_COLOURS, LIGHT_COLOURS
from explorer.training_live import LiveView
from explorer.widgets import ERROR_STYLE, ImageView
from test_gui_app import isolated_settings, menu_action, open_window  # noqa: F401 - autouse fixture

Role = QPalette.ColorRole


@pytest.fixture(autouse=True)
def restore_palette():
    """The palette is the application's: give the next tests the one they started with."""
    palette = QPalette(QApplication.palette())
    yield
    QApplication.setPalette(palette)


def plot_background(plot) -> QColor:
    return plot.grab().toImage().pixelColor(5, 5)


def test_theme_menu_switches_window_and_plots_live_and_is_remembered(qtbot, tiny_model_path):
    window = open_window(qtbot, tiny_model_path)
    window.resize(1000, 700)
    window.show_panel("map")
    map_plot = window.panels["map"].plot_widget
    loss_plot = next(iter(window.panels["train"].findChild(LiveView).plots.values()))

    menu_action(window, "View", "Theme", "Dark").trigger()
    qtbot.wait(50)
    assert window.palette().color(Role.Window) == QColor(DARK_COLOURS[Role.Window])
    assert plot_background(map_plot) == QColor(DARK_COLOURS[Role.Base])
    assert plot_background(loss_plot) == QColor(DARK_COLOURS[Role.Base])
    assert theme_choice(app_settings()) == "dark"

    menu_action(window, "View", "Theme", "Light").trigger()
    qtbot.wait(50)
    assert window.palette().color(Role.Window) == QColor(LIGHT_COLOURS[Role.Window])
    assert plot_background(map_plot) == QColor(LIGHT_COLOURS[Role.Base])
    assert plot_background(loss_plot) == QColor(LIGHT_COLOURS[Role.Base])
    window.close()

    reopened = open_window(qtbot, tiny_model_path)
    assert menu_action(reopened, "View", "Theme", "Light").isChecked()
    assert reopened.palette().color(Role.Window) == QColor(LIGHT_COLOURS[Role.Window])


def test_system_theme_follows_the_system_live_unless_overridden(qtbot, tiny_model_path, monkeypatch):
    window = open_window(qtbot, tiny_model_path)
    assert menu_action(window, "View", "Theme", "System").isChecked()
    monkeypatch.setattr(theme, "system_is_dark", lambda: True)
    scheme_changed = QGuiApplication.styleHints().colorSchemeChanged
    scheme_changed.emit(Qt.ColorScheme.Dark)
    qtbot.wait(10)  # the window takes the application's new palette on the event loop
    assert window.palette().color(Role.Window) == QColor(DARK_COLOURS[Role.Window])

    menu_action(window, "View", "Theme", "Light").trigger()
    scheme_changed.emit(Qt.ColorScheme.Dark)
    qtbot.wait(10)
    assert window.palette().color(Role.Window) == QColor(LIGHT_COLOURS[Role.Window])


def test_error_text_takes_the_red_of_each_theme(qtbot, tiny_model_path):
    window = open_window(qtbot, tiny_model_path)
    error = QLabel("█", window.panels["reconstruct"])
    font = error.font()
    font.setPixelSize(40)
    error.setFont(font)
    error.setStyleSheet(ERROR_STYLE)
    error.show()

    def centre_colour() -> QColor:
        image = error.grab().toImage()
        return image.pixelColor(8, image.height() // 2)  # inside the block, drawn from the label's left edge

    for choice, colours in (("Dark", DARK_COLOURS), ("Light", LIGHT_COLOURS)):
        menu_action(window, "View", "Theme", choice).trigger()
        assert centre_colour() == QColor(colours[Role.BrightText])


def test_shortcuts_dialog_lists_menu_and_panel_shortcuts(qtbot, tiny_model_path):
    window = open_window(qtbot, tiny_model_path)
    menu_action(window, "Help", "Keyboard shortcuts").trigger()
    dialog = window.findChild(ShortcutsDialog)
    assert dialog is not None and dialog.isVisible()
    rows = dict(dialog.rows())
    assert rows["File ▸ Open model…"] == "Ctrl+O"
    assert rows["View ▸ Latent map"] == "Ctrl+1"
    assert rows["Help ▸ Keyboard shortcuts"]
    assert rows["Reconstruct: Paste a picture or a copied image file"] == "Ctrl+V"
    dialog.close()


@pytest.mark.parametrize("ratio", [1.0, 1.5, 2.0])
def test_crisp_upscaling_uses_whole_screen_pixels_on_hidpi_screens(qtbot, monkeypatch, ratio):
    view = ImageView(smooth=False)
    qtbot.addWidget(view)
    view.resize(200, 200)
    view.set_image(np.zeros((64, 64, 3), np.uint8))
    monkeypatch.setattr(view, "devicePixelRatioF", lambda: ratio)
    target = view.target_rect()
    screen_pixels_per_image_pixel = target.width() * ratio / 64
    assert screen_pixels_per_image_pixel == int(200 / 64 * ratio)
    assert (target.left() * ratio).is_integer() and (target.top() * ratio).is_integer()
