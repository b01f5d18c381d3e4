"""Interpolation panel: exact endpoints for both methods, multi-point paths, exports."""
from __future__ import annotations

import pytest
import torch
from PIL import Image
from PySide6.QtGui import QColor

from conftest import make_tiny_model
from test_panel_attribute import one_torch_thread  # noqa: F401 - autouse fixture
from explorer.interpolation_panel import FrameGrid, InterpolationPanel
from explorer.selection import FaceItem, Selection


@pytest.fixture
def setup(qtbot):
    selection = Selection()
    panel = InterpolationPanel(selection)
    qtbot.addWidget(panel)
    model = make_tiny_model(with_reference=False)
    selection.set_model(model)
    return panel, selection, model


def faces(count: int, seed: int = 3) -> list[FaceItem]:
    g = torch.Generator().manual_seed(seed)
    return [FaceItem(f"face {i}", torch.randn(8, generator=g) * 2) for i in range(count)]


def set_method(panel: InterpolationPanel, method: str) -> None:
    panel.method_combo.setCurrentIndex(panel.method_combo.findData(method))


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_first_and_last_frames_are_the_endpoint_decodes(setup, method):
    panel, selection, model = setup
    a, b = faces(2)
    selection.send_endpoints([a, b])
    set_method(panel, method)
    panel.steps_slider.setValue(7)
    frames = panel.frames()
    assert frames.shape == (7, 3, 64, 64)
    torch.testing.assert_close(frames[0], model.decode(a.latent)[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(frames[-1], model.decode(b.latent)[0], atol=1e-5, rtol=0)


def test_slerp_and_linear_differ_between_the_ends(setup):
    panel, selection, _ = setup
    selection.send_endpoints(faces(2))
    set_method(panel, "linear")
    linear = panel.frames().clone()
    set_method(panel, "slerp")
    assert (panel.frames()[len(linear) // 2] - linear[len(linear) // 2]).abs().max() > 1e-3


def test_path_through_three_points_passes_each_point(setup):
    panel, selection, model = setup
    points = faces(3)
    selection.send_endpoints(points)
    panel.steps_slider.setValue(9)
    frames = panel.frames()
    for frame, face in zip(frames[[0, 4, 8]], points):
        torch.testing.assert_close(frame, model.decode(face.latent)[0], atol=1e-5, rtol=0)


def test_endpoints_can_be_added_reordered_and_removed(qtbot, setup, face_image_file):
    panel, selection, model = setup
    assert len(panel.endpoints()) == 2  # two random faces so a strip shows at once
    selection.select_face(FaceItem("picked", torch.ones(8)))
    panel.add_current_button.click()
    panel.add_image(face_image_file)            # found, aligned and fitted in the background
    qtbot.waitUntil(lambda: len(panel.endpoints()) == 4, timeout=60_000)
    assert panel.endpoints()[3].fitted
    names = [f.name for f in panel.endpoints()]
    assert names[2:] == ["picked", face_image_file.name]
    panel.endpoint_list.setCurrentRow(3)
    panel.up_button.click()
    assert [f.name for f in panel.endpoints()][2:] == [face_image_file.name, "picked"]
    panel.remove_button.click()
    assert len(panel.endpoints()) == 3
    torch.testing.assert_close(panel.frames()[-1], model.decode(torch.ones(8))[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("pingpong, expected", [(False, 6), (True, 10)])
def test_gif_has_one_frame_per_step(setup, tmp_path, pingpong, expected):
    panel, selection, _ = setup
    selection.send_endpoints(faces(2))
    panel.steps_slider.setValue(6)
    path = panel.export_gif(tmp_path / "walk.gif", frame_ms=60, pingpong=pingpong, scale=1)
    with Image.open(path) as gif:
        assert gif.n_frames == expected
        assert gif.info["duration"] == 60


def test_strip_and_grid_exports_have_the_frame_layout(setup, tmp_path):
    panel, selection, _ = setup
    selection.send_endpoints(faces(2))
    panel.steps_slider.setValue(4)
    with Image.open(panel.export_current(tmp_path / "strip.png", scale=2)) as strip:
        assert strip.size == ((4 * 64 + 5 * 2) * 2, (64 + 2 * 2) * 2)
    with Image.open(panel.export_grid(tmp_path / "grid.png", scale=1)) as grid:
        assert grid.size == (2 * 64 + 3 * 2, 2 * 64 + 3 * 2)


def test_frames_fill_a_large_window_centred(qtbot):
    """At 1920x1080 the strip area is about 1640 x 700: 8 frames are drawn larger than the old 256-pixel cap and
    the block sits in the middle, not in the top-left corner with an empty band beside and below it."""
    grid = FrameGrid()
    qtbot.addWidget(grid)
    red = torch.zeros(8, 3, 64, 64)
    red[:, 0] = 1
    grid.set_frames(red, [0, 7])
    grid.resize(1640, 760)
    image = grid.grab().toImage()

    def red(x: int, y: int) -> bool:
        colour = QColor(image.pixel(x, y))
        return colour.red() > 200 and colour.green() < 50

    columns = [x for x in range(image.width()) if red(x, image.height() // 4)]
    rows = [y for y in range(image.height()) if red(image.width() // 2 - 40, y)]
    left, right = columns[0], image.width() - 1 - columns[-1]
    top, bottom = rows[0], image.height() - 1 - rows[-1]
    assert columns[-1] - columns[0] > 4 * 300
    assert abs(left - right) <= 8 and abs(top - bottom) <= 8
