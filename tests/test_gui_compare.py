"""View ▸ Compare with, driven as a user would: the comparison model's reconstruction, edit and strip appear beside
the open model's, and go away when comparing is turned off."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox

from core.bundle import save_inference_model
from explorer import main_window
from explorer.settings import COMPARE_SETTING, app_settings
from test_compare import tiny_vae
from test_gui_app import drop_files, isolated_settings, open_window  # noqa: F401 - autouse fixture
from test_panel_attribute import one_torch_thread  # noqa: F401 - autouse fixture


@pytest.fixture
def bundled_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for checkpoints/: the bundled model's path points here (nothing is read from the real one)."""
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    monkeypatch.setattr(main_window, "BUNDLED_MODEL", folder / "faces64.safetensors")
    return folder


@pytest.fixture
def twin(bundled_folder: Path) -> Path:
    return save_inference_model(tiny_vae(), bundled_folder / "faces64_vae.safetensors", half_precision=False)


def compare_with_twin(qtbot, window) -> None:
    window.menuBar()  # the action lives in View ▸ Compare with
    assert window.compare_twin_action.isEnabled()
    window.compare_twin_action.trigger()
    qtbot.waitUntil(lambda: window.selection.compare_model is not None, timeout=10_000)


def shown(widget) -> bool:
    return not widget.isHidden()


def test_reconstruct_shows_both_models_with_their_figures_until_turned_off(qtbot, tiny_model_path, twin,
                                                                           face_image_file):
    window = open_window(qtbot, tiny_model_path)
    panel = window.panels["reconstruct"]
    window.show_panel("reconstruct")
    compare_with_twin(qtbot, window)
    drop_files(panel, face_image_file)
    item = panel.items[0]
    qtbot.waitUntil(lambda: item.result is not None, timeout=10_000)
    main, other = item.tiles[2].image_array(), item.tiles[3].image_array()
    assert shown(item.tile_boxes[3]) and other is not None and not np.array_equal(main, other)
    assert [c.text().split("\n")[0] for c in item.captions[2:]] == ["VAE-GAN", "VAE (pixel loss)"]
    assert all("MSE 0." in c.text() and "sharp " in c.text() for c in item.captions[2:])
    assert "VAE (pixel loss): MSE" in item.captions[3].toolTip()
    assert app_settings().value(COMPARE_SETTING) == str(twin)

    window.compare_off_action.trigger()
    qtbot.waitUntil(lambda: panel.items[0].result is not None, timeout=10_000)
    assert not shown(panel.items[0].tile_boxes[3]) and panel.items[0].captions[2].text() == "reconstruction"
    assert "sharpness" not in panel.items[0].status.text() and "PSNR" in panel.items[0].status.text()
    assert app_settings().value(COMPARE_SETTING) == ""


def test_attribute_edit_and_interpolation_strip_by_the_comparison_model(qtbot, tiny_model_path, twin):
    window = open_window(qtbot, tiny_model_path)
    attributes, interpolate = window.panels["attributes"], window.panels["interpolate"]
    assert not shown(attributes.compare_view) and not shown(interpolate.compare_grid)
    compare_with_twin(qtbot, window)
    attributes.rows["Smiling"].set_strength(2.0)
    attributes.flush()
    edited = attributes.compare_view.image_array()
    assert shown(attributes.compare_view) and edited is not None
    assert not np.array_equal(edited, attributes.after_view.image_array())
    attributes.rows["Smiling"].set_strength(0.0)
    attributes.flush()
    assert not np.array_equal(edited, attributes.compare_view.image_array())  # the twin's own Smiling vector
    interpolate.frames()
    assert shown(interpolate.compare_grid) and interpolate.compare_label.text() == "VAE (pixel loss)"
    assert len(interpolate.compare_grid._pixmaps) == len(interpolate.frames())
    assert interpolate.compare_grid._pixmaps[0].toImage() != interpolate.frame_grid._pixmaps[0].toImage()

    window.compare_off_action.trigger()
    interpolate.frames()
    assert not shown(attributes.compare_view) and attributes.after_view._caption == "After"
    assert not shown(interpolate.compare_grid) and not shown(interpolate.main_label)


def test_choice_is_remembered_and_a_missing_twin_is_greyed_out(qtbot, tiny_model_path, bundled_folder, tmp_path):
    window = open_window(qtbot, tiny_model_path)
    assert not window.compare_twin_action.isEnabled() and "not found" in window.compare_twin_action.toolTip()
    assert window.compare_off_action.isChecked()
    other = save_inference_model(tiny_vae(seed=7), tmp_path / "mine.safetensors", half_precision=False)
    app_settings().setValue(COMPARE_SETTING, str(other))
    again = open_window(qtbot, tiny_model_path)
    qtbot.waitUntil(lambda: again.selection.compare_model is not None, timeout=10_000)
    assert again.compare_file_action.isChecked() and again.selection.compare_model.path == other


def test_another_file_from_the_dialog_and_a_broken_one_explained(qtbot, tiny_model_path, bundled_folder, tmp_path,
                                                                  monkeypatch):
    window = open_window(qtbot, tiny_model_path)
    other = save_inference_model(tiny_vae(seed=7), tmp_path / "mine.safetensors", half_precision=False)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a model")
    chosen = iter([str(other), "", str(broken)])
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (next(chosen), ""))
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, title, text: warnings.append(text))
    window.compare_file_action.trigger()
    qtbot.waitUntil(lambda: window.selection.compare_model is not None, timeout=10_000)
    assert window.selection.compare_model.path == other and window.compare_file_action.isChecked()
    window.compare_off_action.trigger()
    window.compare_file_action.trigger()  # cancelled: still off
    assert window.compare_off_action.isChecked() and window.selection.compare_model is None
    window.compare_file_action.trigger()
    qtbot.waitUntil(lambda: bool(warnings), timeout=10_000)
    assert "broken.safetensors" in warnings[0] and window.compare_off_action.isChecked()
    assert app_settings().value(COMPARE_SETTING) == ""
