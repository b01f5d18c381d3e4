"""Keyframed videos from the Interpolate panel (Save video…) and the path drawn on the map, driven as a user would."""
from __future__ import annotations

from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QDialogButtonBox, QFileDialog

from conftest import make_tiny_model
from test_panel_attribute import one_torch_thread  # noqa: F401 - autouse fixture
from explorer.interpolation_panel import InterpolationPanel
from explorer.map_panel import MapPanel
from explorer.selection import Selection


@pytest.fixture
def panels(qtbot):
    selection = Selection()
    interpolate, map_panel = InterpolationPanel(selection), MapPanel(selection)
    for panel in (interpolate, map_panel):
        qtbot.addWidget(panel)
    selection.set_model(make_tiny_model())
    return interpolate, map_panel


def three_endpoints(panel: InterpolationPanel) -> None:
    panel.set_endpoints([])
    for seed in (1, 2, 3):
        panel.add_random(seed=seed)
    panel._render.flush()


def test_the_path_is_drawn_on_the_map_and_follows_the_endpoints(panels):
    interpolate, map_panel = panels
    three_endpoints(interpolate)
    xs, ys = map_panel.path_curve.getData()
    assert len(xs) == len(interpolate.frames())
    projected = map_panel.data.project(interpolate.endpoints()[0].latent.float().reshape(1, -1))[0]
    assert np.allclose([xs[0], ys[0]], projected.numpy(), atol=1e-4)
    for _ in range(2):
        interpolate.endpoint_list.setCurrentRow(0)
        interpolate.remove_selected()
    interpolate._render.flush()
    assert map_panel.path_curve.getData()[0] is None or len(map_panel.path_curve.getData()[0]) == 0


def save_video(qtbot, panel: InterpolationPanel, target: Path, monkeypatch) -> Path | None:
    dialog = panel.video_dialog()
    dialog.seconds.setValue(0.5)
    dialog.fps.setValue(10)
    dialog.size.setValue(64)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
    qtbot.waitUntil(lambda: not dialog.writing(), timeout=30_000)
    return dialog.saved_path


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_save_video_writes_one_frame_per_step_through_the_keyframes(qtbot, panels, tmp_path, monkeypatch, suffix):
    interpolate, _ = panels
    interpolate.set_endpoints([])
    interpolate._render.flush()
    assert not interpolate.video_button.isEnabled()
    three_endpoints(interpolate)
    assert interpolate.video_button.isEnabled()
    saved = save_video(qtbot, interpolate, tmp_path / f"walk{suffix}", monkeypatch)
    expected = 2 * 5 + 1    # two segments of 0.5 s at 10 fps, and the last keyframe
    assert saved == tmp_path / f"walk{suffix}"
    if suffix == ".mp4":
        assert imageio_ffmpeg.count_frames_and_secs(str(saved))[0] == expected
    else:
        assert Image.open(saved).n_frames == expected and Image.open(saved).size == (64, 64)


def test_cancel_while_writing_leaves_no_file_and_keeps_the_dialog(qtbot, panels, tmp_path, monkeypatch):
    interpolate, _ = panels
    three_endpoints(interpolate)
    dialog = interpolate.video_dialog()
    dialog.seconds.setValue(30)       # 1,801 frames: far longer than the cancel takes
    dialog.start(tmp_path / "long.mp4")
    assert dialog.writing()
    dialog.buttons.button(QDialogButtonBox.StandardButton.Cancel).click()
    qtbot.waitUntil(lambda: not dialog.writing(), timeout=30_000)
    assert dialog.isVisible() and dialog.saved_path is None and list(tmp_path.iterdir()) == []
    assert dialog.buttons.button(QDialogButtonBox.StandardButton.Save).isEnabled()


def test_a_video_needs_two_endpoints(qtbot, panels):
    interpolate, _ = panels
    said = []
    interpolate.statusMessage.connect(said.append)
    interpolate.set_endpoints([])
    interpolate.add_random(seed=1)
    assert interpolate.video_dialog() is None and said == ["A video needs at least two endpoints"]
