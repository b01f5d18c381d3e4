"""Fitted faces in the window, with the bundled model and scikit-image's astronaut: the Reconstruct card shows the
encoder's guess at once and the fitted face when the fit is done (a progress bar meanwhile; closing the card stops
it), Attributes edits the fitted face and pastes it back, Interpolate tunes one decoder for two photos, a dropped
picture arrives fitted, and a saved session comes back fitted with its whole-photo edit."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtWidgets import QFileDialog

from core.metrics import mean_squared_error
from explorer.main_window import MainWindow
from test_gui_app import menu_action, open_window

BUNDLE = Path(__file__).resolve().parents[1] / "checkpoints" / "faces64.safetensors"
FIT_TIMEOUT_MS = 120_000
"""A fit takes seconds on a quiet machine; CI machines are shared."""


@pytest.fixture
def window(qtbot) -> MainWindow:
    return open_window(qtbot, BUNDLE, persist=False)


@pytest.fixture
def portrait(tmp_path: Path, astronaut: np.ndarray) -> Path:
    path = tmp_path / "portrait.png"
    Image.fromarray(astronaut).save(path)
    return path


@pytest.fixture
def mirrored(tmp_path: Path, astronaut: np.ndarray) -> Path:
    path = tmp_path / "mirrored.png"
    Image.fromarray(np.ascontiguousarray(astronaut[:, ::-1])).save(path)
    return path


def fitted_card(qtbot, window: MainWindow, picture: Path):
    panel = window.panels["reconstruct"]
    panel.add_sources([(picture.name, picture)])
    qtbot.waitUntil(lambda: panel.items and panel.items[-1].result is not None, timeout=FIT_TIMEOUT_MS)
    card = panel.items[-1]
    qtbot.waitUntil(lambda: card.fitted, timeout=FIT_TIMEOUT_MS)
    return card


def test_the_card_shows_the_encoders_guess_then_the_fitted_face(qtbot, window, portrait):
    panel = window.panels["reconstruct"]
    window.show_panel("reconstruct")
    panel.add_sources([(portrait.name, portrait)])
    qtbot.waitUntil(lambda: panel.items and panel.items[0].result is not None, timeout=FIT_TIMEOUT_MS)
    card = panel.items[0]
    guess = card.tiles[2].image_array().copy()
    assert not card.fitted and card.fit_progress.isVisible()
    qtbot.waitUntil(lambda: card.fitted, timeout=FIT_TIMEOUT_MS)
    assert not card.fit_progress.isVisible()
    assert card.captions[2].text() == "fitted reconstruction"
    crop = card.result.pixels.float() / 255
    assert mean_squared_error(card.result.reconstruction, crop) < 0.002
    assert card.result.encoder_mse > 4 * card.result.mse
    assert "The encoder alone" in card.status.text()
    assert np.abs(card.tiles[2].image_array().astype(int) - guess.astype(int)).mean() > 2  # the tile changed
    face = card.face()
    assert face.fitted and face.pivot and face.photo_path == str(portrait)


def test_closing_the_card_or_opening_another_model_stops_its_fit(qtbot, window, portrait):
    panel = window.panels["reconstruct"]
    panel.add_sources([(portrait.name, portrait)])
    qtbot.waitUntil(lambda: bool(panel.fits), timeout=FIT_TIMEOUT_MS)
    worker = next(iter(panel.fits.values()))
    panel._remove(panel.items[0])
    assert not panel.fits
    qtbot.waitUntil(lambda: not worker.is_running, timeout=10_000)
    window.selection.undo_stack.undo()                  # the card comes back, and is fitted again
    qtbot.waitUntil(lambda: bool(panel.fits), timeout=FIT_TIMEOUT_MS)
    worker = next(iter(panel.fits.values()))
    window.close()
    assert not panel.fits
    qtbot.waitUntil(lambda: not worker.is_running, timeout=10_000)


def test_attributes_edit_the_fitted_face_and_paste_it_back(qtbot, window, portrait):
    card = fitted_card(qtbot, window, portrait)
    card.actions[0].click()                                 # Send to attributes
    attributes = window.panels["attributes"]
    crop = card.result.pixels.float() / 255
    assert mean_squared_error(attributes.before_image, crop) < 0.002
    assert attributes.photo_view.isVisible()
    before = attributes.photo_view.image_array().copy()
    attributes.rows["Smiling"].set_strength(2.0)
    attributes.flush()
    assert mean_squared_error(attributes.after_image, attributes.before_image) > 0.0005
    after = attributes.photo_view.image_array()
    changed = np.abs(after.astype(int) - before.astype(int)).max(axis=2) > 2
    height, width = changed.shape
    assert changed.any() and not changed[:, : width // 8].any()    # the face changed, the photo's edge did not


def test_two_photos_share_one_tuned_decoder_on_the_interpolation_path(qtbot, window, portrait, mirrored):
    first, second = (fitted_card(qtbot, window, picture) for picture in (portrait, mirrored))
    interpolate = window.panels["interpolate"]
    interpolate.set_endpoints([first.face(), second.face()])
    qtbot.waitUntil(lambda: interpolate._joint is not None, timeout=FIT_TIMEOUT_MS)
    frames = interpolate.frames()
    crops = torch.stack([card.result.pixels.float() / 255 for card in (first, second)])
    assert mean_squared_error(frames[[0, -1]], crops) < 0.003
    assert mean_squared_error(frames[[0, -1]], crops) < 0.5 * mean_squared_error(
        window.selection.model.decode(torch.stack([first.result.latent, second.result.latent])), crops)


def test_a_picture_dropped_on_attributes_arrives_fitted(qtbot, window, portrait):
    window.show_panel("attributes")
    window.use_pictures([portrait], "attributes")
    attributes = window.panels["attributes"]
    qtbot.waitUntil(lambda: attributes.face is not None and attributes.face.fitted, timeout=FIT_TIMEOUT_MS)
    assert mean_squared_error(attributes.before_image, attributes.face.image) < 0.002
    assert window.fitting_pictures is None


def test_a_reopened_session_shows_the_fitted_face_and_its_whole_photo_edit(qtbot, window, portrait, tmp_path,
                                                                          monkeypatch):
    card = fitted_card(qtbot, window, portrait)
    card.actions[0].click()
    attributes = window.panels["attributes"]
    attributes.rows["Smiling"].set_strength(1.5)
    attributes.apply_button.click()
    attributes.flush()
    shown = attributes.after_image.clone()
    path = tmp_path / "fitted.vaegan-session"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), ""))
    menu_action(window, "File", "Save session…").trigger()
    window.close()

    reopened = open_window(qtbot, BUNDLE, persist=False)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    menu_action(reopened, "File", "Open session…").trigger()
    again = reopened.panels["attributes"]
    qtbot.waitUntil(lambda: again.face is not None and again.face.fitted, timeout=FIT_TIMEOUT_MS)
    again.flush()
    assert mean_squared_error(again.after_image, shown) < 0.001
    assert again.photo_view.isVisible() and again.save_photo_action.isEnabled()
    assert len(again.state.history) == 2
