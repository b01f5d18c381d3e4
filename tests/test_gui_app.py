"""The explorer window driven as a user would: open models, drop pictures, export, persistence."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QMessageBox

from core.cli import main as vaegan
from explorer import app
from explorer.export_dialog import ExportDialog, ExportKind
from explorer.main_window import DEFAULT_SIZE, MainWindow
from explorer.settings import SETTINGS_ENV, app_settings
from explorer.widgets import ERROR_STYLE


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never touch the user's settings, image cache or menu entries."""
    path = tmp_path / "settings.ini"
    monkeypatch.setenv(SETTINGS_ENV, str(path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    return path


def open_window(qtbot, model_path: Path | None, persist: bool = True) -> MainWindow:
    window = MainWindow(model_path, persist=persist)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: not window.loading, timeout=10_000)
    return window


def menu_action(window: MainWindow, *path: str):
    """The action at a menu path of plain titles, e.g. ('View', 'Theme', 'Dark')."""
    actions = window.menuBar().actions()
    for title in path:
        action = next(a for a in actions if a.text().replace("&", "") == title)
        actions = action.menu().actions() if action.menu() else []
    return action


@pytest.fixture
def window(qtbot, tiny_model_path: Path) -> MainWindow:
    window = open_window(qtbot, tiny_model_path)
    assert window.selection.model is not None
    return window


def drop_files(widget, *paths: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    widget.dropEvent(event)


def test_dropped_picture_is_reconstructed_and_a_corrupt_one_explained(qtbot, window, face_image_file, tmp_path):
    panel = window.panels["reconstruct"]
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8 this is not really a jpeg")
    drop_files(panel, face_image_file, corrupt)
    good, bad = panel.items
    qtbot.waitUntil(lambda: good.result is not None and "Cannot use" in bad.status.text(), timeout=10_000)
    reconstruction = good.tiles[2].image_array()
    assert reconstruction.shape == (64, 64, 3) and reconstruction.std() > 1.0
    assert "PSNR" in good.status.text() and good.actions[0].isEnabled()
    assert bad.status.styleSheet() == ERROR_STYLE
    assert not any(b.isEnabled() for b in bad.actions)


def test_dropped_folder_brings_the_pictures_of_its_sub_folders(qtbot, window, face_folder):
    panel = window.panels["reconstruct"]
    (face_folder / "notes.txt").write_text("not a picture")
    drop_files(panel, face_folder)
    assert len(panel.items) == 40
    qtbot.waitUntil(lambda: all(item.result is not None for item in panel.items), timeout=30_000)


def test_sent_face_reaches_the_selection_and_switches_panel(qtbot, window, face_image_file):
    panel = window.panels["reconstruct"]
    drop_files(panel, face_image_file)
    qtbot.waitUntil(lambda: panel.items[0].result is not None, timeout=10_000)
    panel.items[0].actions[0].click()
    assert window.selection.current.name == face_image_file.name
    assert window.current_panel_key() == "attributes"


def test_samples_grid_export_has_the_expected_size_and_never_overwrites_silently(qtbot, window, tmp_path,
                                                                                  monkeypatch):
    dialog = ExportDialog(window.selection.model, ExportKind.SAMPLES, None, [], app_settings(), window)
    qtbot.addWidget(dialog)
    dialog.rows.setValue(2)
    dialog.columns.setValue(3)
    dialog.scale.setValue(2)
    dialog.refresh()
    qtbot.waitUntil(lambda: dialog.ready, timeout=10_000)
    target = tmp_path / "samples.png"
    assert dialog.save_to(target)
    assert Image.open(target).size == ((3 * 64 + 4 * 2) * 2, (2 * 64 + 3 * 2) * 2)
    before = target.read_bytes()

    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.No)
    dialog.scale.setValue(1)
    assert not dialog.save_to(target)
    assert asked and target.read_bytes() == before
    assert app_settings().value("export/folder") == str(tmp_path)


def test_window_size_and_panel_persist(qtbot, tiny_model_path):
    first = open_window(qtbot, tiny_model_path)
    # The offscreen screen is 800 px wide: restoring clamps to it, then to the window's minimum width.
    size = (first.minimumSizeHint().width(), 690)
    first.resize(*size)
    first.show_panel("reconstruct")
    first.close()
    second = open_window(qtbot, tiny_model_path)
    # the minimum can differ by a pixel or two with what the panels show (status texts, meter figures)
    assert (second.width(), second.height()) == (max(size[0], second.minimumSizeHint().width()), size[1])
    assert second.current_panel_key() == "reconstruct"
    assert Path(app_settings().value("recent")[0]) == tiny_model_path.resolve()


def test_open_recent_names_each_model_with_its_folder(qtbot, tiny_model_path, face_folder, tmp_path):
    run_dir = tmp_path / "run"
    assert vaegan(["train", str(face_folder), "--out", str(run_dir), "--max-steps", "1", "--batch-size", "4",
                   "--width", "0.125", "--latent-dim", "8", "--crop", "none", "--device", "cpu", "--threads", "1"]) == 0
    window = open_window(qtbot, tiny_model_path)
    window.open_model(run_dir)
    qtbot.waitUntil(lambda: not window.loading and window.selection.model.path.parent == run_dir, timeout=10_000)
    labels = [action.text() for action in window.recent_menu.actions()]
    assert labels == ["checkpoint — run", f"tiny — {tiny_model_path.parent.name}"]


def test_broken_model_file_shows_the_error_and_keeps_the_current_model(qtbot, window, tmp_path, monkeypatch):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, title, text, *a: shown.append(text))
    model = window.selection.model
    window.open_model(broken)
    qtbot.waitUntil(lambda: bool(shown), timeout=10_000)
    assert "broken.safetensors" in shown[0] and "\n" not in shown[0]
    assert window.selection.model is model and window.stack.currentWidget() is window.tabs


def test_empty_state_without_a_model(qtbot, tmp_path):
    window = open_window(qtbot, tmp_path / "missing.safetensors")
    assert window.stack.currentWidget() is window.empty_state
    assert window.empty_state.open_button.isVisibleTo(window)
    assert window.model_info.text() == "No model open"
    window.empty_state.train_button.click()
    assert window.current_panel_key() == "train"


def test_screenshot_mode_writes_a_non_blank_png(qtbot, tiny_model_path, face_image_file, tmp_path):
    target = tmp_path / "shot.png"
    assert app.main([str(tiny_model_path), "--panel", "reconstruct", "--images", str(face_image_file),
                     "--size", "1000x700", "--screenshot", str(target)]) == 0
    pixels = np.asarray(Image.open(target).convert("RGB"))
    assert pixels.shape[:2] == (700, 1000) and pixels.std() > 10


def test_help_needs_no_display():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["QT_QPA_PLATFORM"] = "xcb"  # with no display to connect to, creating the application would abort
    result = subprocess.run([sys.executable, "main.py", "--help"], cwd=Path(__file__).resolve().parents[1], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "usage: vaegan-explorer" in result.stdout, result.stderr[-2000:]


def test_first_start_fits_a_small_screen(qtbot, tiny_model_path):
    window = open_window(qtbot, tiny_model_path)  # no saved geometry: a first start
    available = window.screen().availableGeometry()
    assert available.width() < 1280  # the offscreen screen is narrower than the default size
    assert window.height() <= available.height()
    assert window.width() < DEFAULT_SIZE[0]  # the screen's width, or the least the panels need
