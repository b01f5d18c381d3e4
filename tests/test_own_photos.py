"""Own photos in the app, driven as a user would: faces found and aligned on drop, one card per face, a
clear message (and the centre square) when there is none, the crop choice remembered, the edit pasted
back into the whole photo, and a folder edited in batch. The real face is scikit-image's astronaut."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer.main_window import MainWindow
from explorer.reconstruction_panel import CROP_SETTING
from explorer.settings import SETTINGS_ENV, app_settings
from tests.test_gui_app import drop_files, open_window


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SETTINGS_ENV, str(tmp_path / "settings.ini"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def window(qtbot, tiny_model_path: Path) -> MainWindow:
    return open_window(qtbot, tiny_model_path)


@pytest.fixture
def photos(tmp_path: Path, astronaut: np.ndarray, group_photo: Image.Image) -> dict[str, Path]:
    """A portrait, a two-person picture and a picture without a face."""
    folder = tmp_path / "photos"
    folder.mkdir()
    pictures = {"portrait": Image.fromarray(astronaut), "group": group_photo,
                "landscape": Image.new("RGB", (400, 300), (70, 140, 200))}
    paths = {}
    for name, picture in pictures.items():
        paths[name] = folder / f"{name}.png"
        picture.save(paths[name])
    return paths


def status_texts(panel) -> list[str]:
    return [item.status.text() for item in panel.items]


def test_dropped_photos_give_one_aligned_card_per_face_and_explain_a_missing_face(qtbot, window, photos):
    panel = window.panels["reconstruct"]
    drop_files(panel, photos["portrait"], photos["group"], photos["landscape"])
    qtbot.waitUntil(lambda: len(panel.items) == 4 and all("…" not in t for t in status_texts(panel)), timeout=60_000)
    portrait, group_1, group_2, landscape = panel.items
    assert all("face found and aligned" in item.status.text() for item in (portrait, group_1, group_2))
    assert "face 2" in group_2.title.text()
    assert "No face found" in landscape.status.text() and landscape.centre_button.isVisibleTo(landscape)
    assert landscape.tiles[0].image_array() is not None  # the picture is still shown
    landscape.centre_button.click()
    qtbot.waitUntil(lambda: landscape.result is not None, timeout=30_000)
    assert "centre square" in landscape.status.text()


def test_crop_choice_is_used_and_remembered(qtbot, window, photos, tiny_model_path):
    panel = window.panels["reconstruct"]
    drop_files(panel, photos["group"])
    qtbot.waitUntil(lambda: len(panel.items) == 2, timeout=30_000)
    panel.crop_combo.setCurrentIndex(panel.crop_combo.findData("none"))
    qtbot.waitUntil(lambda: len(panel.items) == 1 and "whole picture" in panel.items[0].status.text(),
                    timeout=30_000)
    assert app_settings().value(CROP_SETTING) == "none"
    reopened = open_window(qtbot, tiny_model_path)
    assert reopened.panels["reconstruct"].crop_combo.currentData() == "none"


def test_edit_is_pasted_back_into_the_whole_photo(qtbot, window, photos, tmp_path):
    panel = window.panels["reconstruct"]
    drop_files(panel, photos["portrait"])
    qtbot.waitUntil(lambda: panel.items[0].result is not None, timeout=30_000)
    panel.items[0].actions[0].click()
    attributes = window.panels["attributes"]
    assert attributes.photo_view.isVisible() and attributes.save_photo_action.isEnabled()
    unchanged = attributes.export_photo(tmp_path / "unchanged.png")
    original = np.asarray(Image.open(photos["portrait"]).convert("RGB"))
    assert np.array_equal(np.asarray(Image.open(unchanged)), original)  # no slider moved: not one pixel moves
    attributes.rows["Smiling"].set_strength(3.0)
    attributes.flush()
    edited = np.asarray(Image.open(attributes.export_photo(tmp_path / "edited.png"))).astype(int)
    assert edited.shape == original.shape
    changed = np.abs(edited - original).sum(-1) > 0
    rows, cols = np.nonzero(changed)
    assert changed.any() and rows.max() < 300 and cols.min() > 100 and cols.max() < 350  # around the face only
    preview = attributes.photo_view.image_array()
    assert preview is not None and preview.shape[:2] == (512, 512)


def test_a_folder_is_edited_in_batch_and_faceless_photos_are_reported(qtbot, window, photos, tmp_path):
    attributes = window.panels["attributes"]
    attributes.rows["Smiling"].set_strength(2.0)
    out = tmp_path / "edited"
    attributes.start_folder_edit(photos["portrait"].parent, out)
    qtbot.waitUntil(lambda: attributes._folder_worker is None, timeout=60_000)
    assert sorted(p.name for p in out.iterdir()) == ["group.png", "portrait.png"]
    assert Image.open(out / "group.png").size == (700, 330)
    assert "Skipped 1" in attributes.status_label.text() and "landscape.png" in attributes.status_label.text()
    attributes.start_folder_edit(photos["portrait"].parent, out)  # never overwrites
    qtbot.waitUntil(lambda: attributes._folder_worker is None, timeout=30_000)
    assert "already exist" in attributes.status_label.text()


@pytest.mark.parametrize("panel", ["attributes", "interpolate", "map"])
def test_photos_dropped_on_any_panel_arrive_aligned(qtbot, window, photos, panel):
    window.show_panel(panel)
    received = []
    for signal in (window.selection.faceSelected, window.selection.endpointsAdded, window.selection.facesAdded):
        signal.connect(lambda faces: received.append(faces if isinstance(faces, list) else [faces]))
    drop_files(window, photos["group"], photos["landscape"])
    qtbot.waitUntil(lambda: bool(received), timeout=30_000)
    faces = received[0]
    assert len(faces) == (1 if panel == "attributes" else 2) and faces[0].photo is not None
    assert "face 1" in faces[0].name
    qtbot.waitUntil(lambda: "no face found in landscape.png" in window.statusBar().currentMessage(), timeout=5_000)
    if panel == "interpolate":
        assert len(window.panels["interpolate"].endpoints()) >= 2
