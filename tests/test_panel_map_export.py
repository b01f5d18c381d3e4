"""Latent map exports, driven through the panel's Export menu: the selection as CSV and as pictures, the map as
PNG and SVG, never replacing a file without asking, and one-line messages for an empty selection or a failure."""
from __future__ import annotations

import csv
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from test_panel_attribute import one_torch_thread  # noqa: F401 - autouse fixture
from test_panel_map import app_panels, drag, saved_tiny_model, tiny_model_path  # noqa: F401 - fixtures
from explorer.map_panel import NOTHING_SELECTED

YES, NO = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No


def save_dialog_returns(monkeypatch: pytest.MonkeyPatch, path: Path) -> list[str]:
    """Make the save dialog answer `path`; returns the list of filters it was opened with."""
    filters: list[str] = []

    def answer(parent, title, name, file_filter, *args, **kwargs):
        filters.append(file_filter)
        return str(path), file_filter

    monkeypatch.setattr(QFileDialog, "getSaveFileName", answer)
    return filters


def replace_answer(monkeypatch: pytest.MonkeyPatch, answer: QMessageBox.StandardButton) -> list[str]:
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda parent, title, text, *args: asked.append(text) or answer)
    return asked


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.reader(file))


def select_left_half(panel, model) -> np.ndarray:
    """Shift+drag a rectangle over the left half of the map; the indices it selects."""
    coords = model.reference.coords.numpy()
    (x0, y0), (_, y1) = coords.min(0) - 1e-3, coords.max(0) + 1e-3
    middle = float(np.median(coords[:, 0]))
    drag(panel, [(x0, y0), ((x0 + middle) / 2, y1), (middle, y1)], Qt.KeyboardModifier.ShiftModifier)
    left = np.flatnonzero(coords[:, 0] < middle)
    assert sorted(panel.selected_indices()) == left.tolist()
    return np.array(panel.selected_indices())


def test_selection_as_csv_has_source_position_latent_and_labels(app_panels, monkeypatch, tmp_path):
    panel, _, _, model = app_panels
    chosen = select_left_half(panel, model)
    save_dialog_returns(monkeypatch, tmp_path / "chosen")   # no suffix typed: .csv is added
    panel.export_csv_action.trigger()

    rows = read_csv(tmp_path / "chosen.csv")
    assert rows[0] == ["source", "x", "y", *(f"z{i}" for i in range(8)), "Smiling", "Eyeglasses"]
    assert len(rows) == len(chosen) + 1
    assert [row[0] for row in rows[1:]] == [f"Reference face {i + 1}" for i in chosen]
    table = np.array([[float(v) for v in row[1:11]] for row in rows[1:]])
    np.testing.assert_allclose(table[:, :2], model.reference.coords[chosen].numpy(), rtol=1e-5)
    np.testing.assert_array_equal(table[:, 2:].astype(np.float32), model.reference.latents[chosen].numpy())  # exact
    assert [row[11:] for row in rows[1:]] == [[str(int(v)) for v in model.reference.labels[i]] for i in chosen]
    assert panel.status_label.text() == f"Saved {len(chosen)} faces to {tmp_path / 'chosen.csv'}"


def test_an_existing_csv_is_replaced_only_when_the_user_agrees(app_panels, monkeypatch, tmp_path):
    panel, *_ = app_panels
    target = tmp_path / "faces.csv"
    target.write_text("keep")
    panel.select_indices([3, 1])
    save_dialog_returns(monkeypatch, target)
    asked = replace_answer(monkeypatch, NO)
    panel.export_csv_action.trigger()
    assert asked == ["faces.csv already exists. Replace it?"] and target.read_text() == "keep"
    replace_answer(monkeypatch, YES)
    panel.export_csv_action.trigger()
    assert [row[0] for row in read_csv(target)[1:]] == ["Reference face 4", "Reference face 2"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def save_pictures_and_wait(panel, qtbot) -> None:
    panel.export_images_action.trigger()
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=30_000)
    assert not panel.progress.isVisibleTo(panel) and panel.export_button.isEnabled()


def test_reference_faces_are_saved_as_the_models_decodings(app_panels, qtbot, monkeypatch, tmp_path):
    panel, _, _, model = app_panels
    panel.select_indices([7, 0, 12])
    folder = tmp_path / "faces"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(folder))
    save_pictures_and_wait(panel, qtbot)

    names = sorted(p.name for p in folder.iterdir())
    assert names == ["0001_Reference_face_8.png", "0002_Reference_face_1.png", "0003_Reference_face_13.png"]
    decoded = (model.decode(model.reference.latents[[7, 0, 12]]) * 255).round().to(torch.uint8)
    for name, expected in zip(names, decoded):
        picture = np.asarray(Image.open(folder / name))
        assert picture.shape == (64, 64, 3)
        np.testing.assert_array_equal(picture, expected.permute(1, 2, 0).numpy())
    assert panel.status_label.text() == f"Saved 3 faces' pictures into {folder}"

    asked = replace_answer(monkeypatch, NO)   # the same names again: asked first, nothing touched on No
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    save_pictures_and_wait(panel, qtbot)
    assert asked and asked[0].startswith("3 of the 3 pictures")
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_an_encoded_folders_faces_are_saved_as_their_own_crops(app_panels, qtbot, monkeypatch, tmp_path, face_folder):
    panel, *_ = app_panels
    panel.encode_folder(face_folder)
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=30_000)
    panel.select_indices([0, 5])
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(tmp_path / "crops"))
    save_pictures_and_wait(panel, qtbot)
    saved = sorted((tmp_path / "crops").iterdir())
    assert [p.name[:5] for p in saved] == ["0001_", "0002_"]
    for path, index in zip(saved, [0, 5]):
        assert Path(panel.data.names[index]).stem in path.name
        np.testing.assert_array_equal(np.asarray(Image.open(path)), panel.data.thumbnails[index].permute(1, 2, 0))
    save_dialog_returns(monkeypatch, tmp_path / "folder.csv")
    panel.export_csv_action.trigger()
    rows = read_csv(tmp_path / "folder.csv")
    assert rows[0][-2:] == ["neutral", "smiling"] and len(rows) == 3


def test_saving_pictures_shows_progress_and_can_be_cancelled(app_panels, qtbot, monkeypatch, tmp_path):
    panel, *_ = app_panels
    panel.select_indices(list(range(60)))
    folder = tmp_path / "all"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(folder))
    panel.export_images_action.trigger()
    assert panel.is_busy() and panel.progress.isVisibleTo(panel) and not panel.export_button.isEnabled()
    panel.cancel_button.click()
    assert not panel.is_busy() and panel.status_label.text() == "Cancelled"
    qtbot.wait(500)   # the worker stops before its next picture; what it wrote stays, whole
    assert panel.status_label.text() == "Cancelled"
    written = list(folder.iterdir()) if folder.exists() else []
    assert all(p.suffix == ".png" and not p.name.startswith(".") for p in written)  # no temporary file


def test_an_empty_selection_says_what_to_do_and_opens_no_dialog(app_panels, monkeypatch):
    panel, *_ = app_panels

    def no_dialog(*args, **kwargs):
        raise AssertionError("no file dialog for an empty selection")

    monkeypatch.setattr(QFileDialog, "getSaveFileName", no_dialog)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", no_dialog)
    for action in (panel.export_csv_action, panel.export_images_action):
        panel._set_status("")
        action.trigger()
        assert panel.status_label.text() == NOTHING_SELECTED and "\n" not in NOTHING_SELECTED
        assert panel.status_label.isVisibleTo(panel)


def test_the_map_is_saved_as_png_and_as_svg(app_panels, monkeypatch, tmp_path):
    panel, *_ = app_panels
    panel.select_indices([1, 2, 3])
    filters = save_dialog_returns(monkeypatch, tmp_path / "map.png")
    panel.export_png_action.trigger()
    with Image.open(tmp_path / "map.png") as picture:
        picture.verify()
    with Image.open(tmp_path / "map.png") as picture:
        assert picture.format == "PNG" and picture.width >= 300 and picture.height >= 200

    save_dialog_returns(monkeypatch, tmp_path / "map.svg")
    panel.export_svg_action.trigger()
    root = ElementTree.parse(tmp_path / "map.svg").getroot()
    assert root.tag.endswith("svg")
    assert len(list(root.iter())) > 60  # an element per point at least
    assert filters == ["PNG image (*.png)"] and panel.status_label.text() == f"Saved the map to {tmp_path / 'map.svg'}"


def test_a_failed_save_is_one_line_and_leaves_nothing(app_panels, monkeypatch, tmp_path):
    panel, *_ = app_panels
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    save_dialog_returns(monkeypatch, blocker / "map.png")
    panel.export_png_action.trigger()
    text = panel.status_label.text()
    assert text.startswith("Could not save: ") and "\n" not in text and "map.png" in text
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == ["a_file", "tiny.safetensors"]
