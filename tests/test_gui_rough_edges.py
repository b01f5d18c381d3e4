"""Rough edges of the map, Interpolate, Reconstruct and the crash guard (issue 31, items 10, 11, 13 and 14), driven as
a user would."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QComboBox, QFileDialog, QMessageBox

from conftest import make_tiny_model, synthetic_face
from core.latent import fit_latent_gaussian
from core.realism import RealismMeter
from explorer.interpolation_panel import STARTING_CANDIDATES, InterpolationPanel
from explorer.map_panel import HAS_LABEL_BRUSH, LACKS_LABEL_BRUSH
from explorer.selection import Selection
from test_gui_app import open_window
from test_gui_session import isolated_settings  # noqa: F401 - autouse fixture
from test_panel_attribute import one_torch_thread  # noqa: F401 - autouse fixture
from test_panel_map import app_panels, drag, pick_method, saved_tiny_model, tiny_model_path  # noqa: F401

CTRL = Qt.KeyboardModifier.ControlModifier


def choose(combo: QComboBox, text: str) -> None:
    """Pick an item with the keyboard, as a user would."""
    combo.setFocus()
    step = Qt.Key.Key_Down if combo.findText(text) > combo.currentIndex() else Qt.Key.Key_Up
    while combo.currentText() != text:
        QTest.keyClick(combo, step)


def brush_colours(panel) -> set[str]:
    return {brush.color().name() for brush in panel.scatter.data["brush"]}


# ----- item 10: the latent map


def test_a_t_sne_map_keeps_the_colouring_and_the_lasso_selection(app_panels, qtbot):
    panel, *_ = app_panels
    choose(panel.colour_combo, "Smiling")
    coords = panel.data.coords
    centre, spread = coords.mean(0), coords.std(0)
    corners = [centre + spread * np.array(c) for c in ((-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1))]
    drag(panel, [tuple(c) for c in corners], CTRL)
    lassoed = panel.selected_indices()
    assert 3 <= len(lassoed) < 60
    pick_method(panel, "tsne")
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=60_000)
    assert panel.data.method == "tsne"
    assert panel.colour_combo.currentText() == "Smiling"
    assert brush_colours(panel) == {HAS_LABEL_BRUSH.color().name(), LACKS_LABEL_BRUSH.color().name()}
    assert panel.selected_indices() == lassoed
    marks = np.c_[panel.selected_marks.data["x"], panel.selected_marks.data["y"]]
    np.testing.assert_allclose(marks, panel.data.coords[lassoed])


def test_after_opening_another_model_the_map_box_says_what_the_header_says(app_panels, qtbot):
    panel, _, selection, _ = app_panels
    pick_method(panel, "tsne")
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=60_000)
    selection.set_model(make_tiny_model(seed=1))
    QApplication.processEvents()
    assert panel.source_label.text().endswith("PCA")
    assert panel.method_combo.currentText() == "PCA"


def text_pixels(image: np.ndarray, colour: QColor) -> int:
    """Pixels close to the theme's text colour (axis ticks and titles, legend text)."""
    target = np.array([colour.red(), colour.green(), colour.blue()])
    return int((np.abs(image[..., :3].astype(int) - target).sum(-1) < 60).sum())


def test_saved_maps_have_axes_and_a_legend_of_the_colours(app_panels, tmp_path):
    panel, *_ = app_panels
    choose(panel.colour_combo, "Smiling")
    svg = panel.export_current(tmp_path / "map.svg").read_text()
    texts = re.findall(r">([^<>]+)<", svg)
    assert {"Smiling (30)", "not Smiling (30)"} <= set(texts)
    assert any(t.startswith("PCA 1") for t in texts) and any(t.startswith("PCA 2") for t in texts)
    png = np.array(Image.open(panel.export_current(tmp_path / "map.png")))
    text = panel.plot_widget.palette().color(QPalette.ColorRole.Text)
    strip = png.shape[1] // 12            # the left axis: its tick labels and title
    assert text_pixels(png[:, :strip], text) > 100
    assert not panel.plot_widget.getPlotItem().getAxis("left").isVisible()   # the view on screen is as it was
    choose(panel.colour_combo, "None")
    plain = panel.export_current(tmp_path / "plain.svg").read_text()
    assert "Smiling (30)" not in plain and "PCA 1" in plain


# ----- item 11: Interpolate


@pytest.fixture
def interpolation(qtbot):
    selection = Selection()
    panel = InterpolationPanel(selection)
    qtbot.addWidget(panel)
    panel.show()
    return panel, selection


def test_with_fewer_than_two_endpoints_the_status_says_so_and_nothing_can_be_saved(interpolation, qtbot,
                                                                                   monkeypatch):
    panel, selection = interpolation
    selection.set_model(make_tiny_model())
    asked = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: asked.append(a) or ("", ""))
    qtbot.waitUntil(lambda: panel.message_label.text().startswith("2 endpoints"))
    for left in ("1 endpoint:", "No endpoints:"):
        panel.endpoint_list.setCurrentRow(0)
        QTest.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: panel.message_label.text().startswith(left))
    for button in panel.save_buttons:
        assert not button.isEnabled()
        QTest.mouseClick(button, Qt.MouseButton.LeftButton)
    assert asked == []
    QTest.mouseClick(panel.random_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.message_label.text().startswith("1 endpoint:"))
    QTest.mouseClick(panel.random_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.message_label.text().startswith("2 endpoints"))
    assert all(button.isEnabled() for button in panel.save_buttons)


def test_the_first_path_runs_between_a_woman_and_a_man_typical_of_their_kind(interpolation):
    panel, selection = interpolation
    model = make_tiny_model()
    reference = model.reference
    reference.label_names = ("Male", "Eyeglasses")
    model.latent_gaussian = fit_latent_gaussian(reference.latents, torch.full_like(reference.latents, 0.1))
    male = reference.labels[:, 0]
    meter = RealismMeter.of_model(model)
    assert meter is not None
    white = meter.whiten(reference.latents.double())

    def typical_of_kind(side: int) -> set[int]:
        kind = (male == side).nonzero().flatten()
        nearest = kind[(white[kind] - white[kind].mean(0)).square().sum(1).argsort()]
        return set(nearest[:STARTING_CANDIDATES].tolist())

    selection.set_model(model)
    names = [face.name for face in panel.endpoints()]
    first, second = (int(name.rsplit(" ", 1)[1]) - 1 for name in names)
    assert first in typical_of_kind(-1) and second in typical_of_kind(1)
    assert (first, second) != (0, 1)
    selection.set_model(None)
    selection.set_model(model)                  # the same model again: the same faces
    assert [face.name for face in panel.endpoints()] == names


# ----- item 13: the crash guard with two instances


def hold_lock(path: Path) -> subprocess.Popen:
    """Another process holding the autosave's lock, as a running first instance does."""
    script = ("import sys, time\nfrom PySide6.QtCore import QLockFile\nlock = QLockFile(sys.argv[1])\n"
              "print(lock.tryLock(0), flush=True)\ntime.sleep(120)\n")
    process = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "True"
    return process


def test_a_second_instance_leaves_the_first_ones_autosave_alone(qtbot, tiny_model_path, monkeypatch):
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.No)
    first = open_window(qtbot, tiny_model_path, persist=True)
    first.sessions.autosave()
    saved = first.sessions.autosave_path.read_bytes()
    second = open_window(qtbot, tiny_model_path, persist=True)
    assert asked == []                                  # the first instance has not crashed
    second.panels["interpolate"].add_random(seed=3)
    second.sessions.autosave()
    second.close()
    assert first.sessions.autosave_path.read_bytes() == saved
    first.close()
    assert not first.sessions.autosave_path.exists()


def test_the_autosave_of_an_instance_that_was_killed_is_offered(qtbot, tiny_model_path, monkeypatch):
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.No)
    window = open_window(qtbot, tiny_model_path, persist=True)
    window.sessions.autosave()
    autosave, saved = window.sessions.autosave_path, window.sessions.autosave_path.read_bytes()
    window.close()
    autosave.write_bytes(saved)
    running = hold_lock(autosave.with_suffix(".lock"))
    try:
        open_window(qtbot, tiny_model_path, persist=True).close()
        assert asked == [] and autosave.read_bytes() == saved
    finally:
        running.kill()
        running.wait()
    open_window(qtbot, tiny_model_path, persist=True)   # the lock of a dead process is stale
    assert len(asked) == 1


# ----- item 14: Reconstruct


@pytest.fixture
def pictures(tmp_path: Path) -> list[Path]:
    paths = [tmp_path / f"face_{i}.png" for i in range(6)]
    for i, path in enumerate(paths):
        Image.fromarray(synthetic_face(i, size=128)).save(path)
    return paths


def test_new_cards_are_scrolled_to_and_do_not_stretch_across_a_wide_window(qtbot, tiny_model_path, pictures):
    window = open_window(qtbot, tiny_model_path, persist=False)
    window.resize(1920, 700)
    window.show_panel("reconstruct")
    panel = window.panels["reconstruct"]
    choose(panel.crop_combo, "Centre square")
    panel.add_sources([(p.name, p) for p in pictures[:3]])
    qtbot.waitUntil(lambda: all(card.result is not None for card in panel.items), timeout=20_000)
    panel.add_sources([(p.name, p) for p in pictures[3:]])
    first_new, viewport = panel.items[3], panel.scroll.viewport()

    def first_new_card_on_top() -> bool:
        top = first_new.mapTo(viewport, first_new.rect().topLeft()).y()
        return 0 <= top < viewport.height() // 2

    qtbot.waitUntil(first_new_card_on_top, timeout=5_000)
    qtbot.waitUntil(lambda: all(card.result is not None for card in panel.items), timeout=20_000)
    for card in panel.items:
        assert card.x() < 40 and card.width() < viewport.width() * 0.6
        assert card.actions[0].geometry().right() < card.width()


# ----- item 9: the status bar at 1024x640


def test_a_long_status_message_is_elided_beside_the_model_summary(qtbot, tiny_model_path):
    window = open_window(qtbot, tiny_model_path, persist=False)
    window.resize(1024, 640)
    qtbot.waitUntil(lambda: window.width() <= 1024)
    long = "Checkpoint saved: " + "/home/someone/vaegan-runs/a-folder-with-a-long-name" * 4 + "/checkpoint.safetensors"
    window.show_status(long)
    bar = window.statusBar()
    shown = bar.currentMessage()
    assert "…" in shown and shown.startswith("Checkpoint saved") and shown.endswith("checkpoint.safetensors")
    width = bar.fontMetrics().horizontalAdvance(shown)
    assert width + window.model_info.sizeHint().width() < bar.width()
    assert bar.toolTip() == long
