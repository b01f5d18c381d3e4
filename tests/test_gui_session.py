"""Sessions, bookmarks and the crash guard, driven through the window's menus as a user would."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from explorer.main_window import MainWindow
from explorer.settings import SETTINGS_ENV
from test_gui_app import menu_action, open_window


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "settings" / "settings.ini"
    path.parent.mkdir()
    monkeypatch.setenv(SETTINGS_ENV, str(path))
    return path


def explore(qtbot, window: MainWindow, picture: Path) -> None:
    """Work a user would not want to lose: an edit, a path, a map selection, a picture and a bookmark."""
    attributes, interpolate = window.panels["attributes"], window.panels["interpolate"]
    window.show_panel("attributes")
    attributes.random_face(seed=5)
    attributes.rows["Smiling"].set_strength(1.5)
    attributes.apply_button.click()                 # a stacked edit: the next sliders start from it
    attributes.rows["Smiling"].set_strength(0.5)
    attributes.rows["Eyeglasses"].hold_button.setChecked(True)
    menu_action(window, "View", "Bookmark this face").trigger()
    interpolate.add_random(seed=1)
    interpolate.add_random(seed=2)
    interpolate.steps_slider.setValue(5)
    window.panels["map"].select_indices([3, 7, 11])
    window.panels["reconstruct"].add_sources([(picture.name, picture)])
    window.show_panel("reconstruct")


def pixels(window: MainWindow) -> dict[str, np.ndarray]:
    attributes, interpolate = window.panels["attributes"], window.panels["interpolate"]
    attributes.flush()
    interpolate.render_frames()
    return {"edit": attributes.after_image.numpy(), "strip": interpolate.frames().numpy(),
            "map": np.array(window.panels["map"].selected_indices()),
            "bookmark": window.bookmarks.faces()[0].latent.numpy()}


def save_through_menu(window: MainWindow, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), ""))
    menu_action(window, "File", "Save session…").trigger()


def open_through_menu(window: MainWindow, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    menu_action(window, "File", "Open session…").trigger()


def test_a_saved_session_opened_in_a_fresh_app_shows_the_same_pixels(qtbot, tiny_model_path, face_image_file,
                                                                     tmp_path, monkeypatch):
    first = open_window(qtbot, tiny_model_path, persist=False)
    explore(qtbot, first, face_image_file)
    before = pixels(first)
    session = tmp_path / "my work.vaegan-session"
    save_through_menu(first, session, monkeypatch)
    assert session.is_file() and str(face_image_file) in session.read_text()
    first.close()

    fresh = open_window(qtbot, tiny_model_path, persist=False)
    assert not np.array_equal(pixels_without_bookmark(fresh)["edit"], before["edit"])
    open_through_menu(fresh, session, monkeypatch)
    after = pixels(fresh)
    for key, value in before.items():
        np.testing.assert_allclose(after[key], value, atol=1e-6, err_msg=key)
    assert fresh.current_panel_key() == "reconstruct"
    assert [i.source for i in fresh.panels["reconstruct"].items] == [face_image_file]
    restored = fresh.panels["attributes"]
    assert restored.rows["Eyeglasses"].held() and restored.strengths() == {"Smiling": 0.5}
    assert restored.history_list.count() == 2 and restored.history_list.currentRow() == 1
    assert fresh.bookmarks.faces()[0].name.startswith("Random face") and fresh.bookmarks.isVisible()


def pixels_without_bookmark(window: MainWindow) -> dict[str, np.ndarray]:
    window.panels["attributes"].flush()
    return {"edit": window.panels["attributes"].after_image.numpy()}


def test_a_moved_model_is_asked_for_and_everything_else_restored(qtbot, tiny_model_path, face_image_file, tmp_path,
                                                                 monkeypatch):
    first = open_window(qtbot, tiny_model_path, persist=False)
    explore(qtbot, first, face_image_file)
    before = pixels(first)
    session = tmp_path / "sessions" / "work.vaegan-session"
    session.parent.mkdir()
    save_through_menu(first, session, monkeypatch)
    first.close()
    moved = tmp_path / "elsewhere" / "renamed.safetensors"
    moved.parent.mkdir()
    shutil.copy(tiny_model_path, moved)
    tiny_model_path.unlink()

    told = []
    monkeypatch.setattr(QMessageBox, "information", lambda _parent, _title, text, *a: told.append(text))
    answers = iter([str(session), str(moved)])   # first the session, then where its model went
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (next(answers), ""))
    fresh = MainWindow(None, persist=False)
    qtbot.addWidget(fresh)
    menu_action(fresh, "File", "Open session…").trigger()
    qtbot.waitUntil(lambda: fresh.selection.model is not None and bool(fresh.bookmarks.faces()), timeout=10_000)
    assert told and "tiny.safetensors" in told[0]
    assert fresh.selection.model.path.resolve() == moved.resolve()
    np.testing.assert_allclose(pixels(fresh)["strip"], before["strip"], atol=1e-6)


@pytest.mark.parametrize("content", ["{broken", '{"format": "vaegan-explorer-session", "version": 99}',
                                     '{"format": "something else"}'])
def test_a_bad_session_file_is_one_line_and_nothing_open_is_lost(qtbot, tiny_model_path, face_image_file, tmp_path,
                                                                  monkeypatch, content):
    window = open_window(qtbot, tiny_model_path, persist=False)
    explore(qtbot, window, face_image_file)
    before = pixels(window)
    bad = tmp_path / "bad.vaegan-session"
    bad.write_text(content)
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, _title, text, *a: shown.append(text))
    open_through_menu(window, bad, monkeypatch)
    assert len(shown) == 1 and str(bad) in shown[0] and "\n" not in shown[0]
    for key, value in pixels(window).items():
        np.testing.assert_array_equal(value, before[key])


def test_after_a_crash_the_next_start_offers_the_autosave(qtbot, tiny_model_path, face_image_file, monkeypatch):
    crashed = open_window(qtbot, tiny_model_path, persist=True)
    explore(qtbot, crashed, face_image_file)
    before = pixels(crashed)
    crashed.sessions.autosave()          # what the timer does every 30 s
    assert crashed.sessions.autosave_path.is_file()
    crashed.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)  # a kill: no close event, the file stays
    crashed.sessions.lock.unlock()       # and the lock of a process that is gone is stale (Qt's QLockFile)

    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.Yes)
    restarted = open_window(qtbot, tiny_model_path, persist=True)
    qtbot.waitUntil(lambda: len(restarted.bookmarks.faces()) == 1, timeout=10_000)
    assert len(asked) == 1
    np.testing.assert_allclose(pixels(restarted)["edit"], before["edit"], atol=1e-6)
    restarted.close()
    assert not restarted.sessions.autosave_path.exists()   # a clean exit leaves nothing to restore


def test_bookmarks_are_edited_and_sent_as_endpoints(qtbot, tiny_model_path):
    window = open_window(qtbot, tiny_model_path, persist=False)
    window.show_panel("attributes")
    window.panels["attributes"].random_face(seed=3)
    menu_action(window, "View", "Bookmark this face").trigger()
    window.panels["attributes"].random_face(seed=4)
    menu_action(window, "View", "Bookmark this face").trigger()
    dock = window.bookmarks
    dock.list.item(0).setText("first")
    dock.list.selectAll()
    dock.interpolate_button.click()
    assert window.current_panel_key() == "interpolate"
    assert [f.name for f in window.panels["interpolate"].endpoints()][-2:] == ["first", dock.faces()[1].name]
    dock.list.clearSelection()
    dock.list.item(1).setSelected(True)
    dock.edit_button.click()
    assert window.current_panel_key() == "attributes" and window.selection.current.name == dock.faces()[1].name
    dock.remove_button.click()
    assert [f.name for f in dock.faces()] == ["first"]

