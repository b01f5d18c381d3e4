"""Latent map panel, driven with real mouse events: hover, click, rectangle and lasso selection,
group vectors saved into the model file, dropped faces, folder encoding."""
from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QInputDialog

import core
from conftest import make_tiny_model
from test_panel_attribute import one_torch_thread  # noqa: F401 - autouse fixture
from core.bundle import save_inference_model
from core.directions import model_directions
from explorer.attribute_panel import AttributePanel
from core.latent import PROJECTION_METHODS
from explorer.map_panel import METHOD_TITLES, MapPanel, framing_range, points_in_polygon
from explorer.selection import FaceItem, Selection

NO_BUTTON = Qt.MouseButton.NoButton
LEFT = Qt.MouseButton.LeftButton
MOVE_INTERVAL_MS = 15


@pytest.fixture(scope="module")
def saved_tiny_model(tmp_path_factory) -> Path:
    """The tiny model with its 60-point map, built once per module (encoding is the slow part)."""
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return save_inference_model(make_tiny_model(), path, half_precision=False)


@pytest.fixture
def tiny_model_path(saved_tiny_model, tmp_path) -> Path:
    """A private copy per test, since some tests write vectors into it."""
    return Path(shutil.copy(saved_tiny_model, tmp_path / "tiny.safetensors"))


@pytest.fixture
def app_panels(qtbot, tiny_model_path):
    selection = Selection()
    map_panel = MapPanel(selection)
    attribute_panel = AttributePanel(selection)
    for widget in (map_panel, attribute_panel):
        qtbot.addWidget(widget)
    map_panel.resize(1000, 700)
    map_panel.show()
    qtbot.waitExposed(map_panel)
    model = core.load_model(tiny_model_path, device="cpu")
    # the random tiny decoder draws near-identical faces; give each point a distinguishable thumbnail
    count = len(model.reference.thumbnails)
    model.reference.thumbnails = (torch.arange(count, dtype=torch.uint8) * 4).view(-1, 1, 1, 1).expand(
        -1, 3, 64, 64).contiguous()
    selection.set_model(model)
    QApplication.processEvents()
    return map_panel, attribute_panel, selection, model


def viewport_pos(panel: MapPanel, x: float, y: float) -> QPoint:
    scene = panel.view_box.mapViewToScene(QPointF(x, y))
    return panel.plot_widget.mapFromScene(scene)


def send_mouse(panel: MapPanel, kind: QEvent.Type, pos: QPoint, button: Qt.MouseButton,
               buttons: Qt.MouseButton, modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    viewport = panel.plot_widget.viewport()
    event = QMouseEvent(kind, QPointF(pos), QPointF(viewport.mapToGlobal(pos)), button, buttons, modifiers)
    QApplication.sendEvent(viewport, event)


def drag(panel: MapPanel, path: list[tuple[float, float]], modifiers: Qt.KeyboardModifier) -> None:
    """Press at the first map point, move through the others, release at the last."""
    points = [viewport_pos(panel, x, y) for x, y in path]
    send_mouse(panel, QEvent.Type.MouseButtonPress, points[0], LEFT, LEFT, modifiers)
    for point in points[1:]:
        QTest.qWait(MOVE_INTERVAL_MS)  # pyqtgraph drops moves closer together than its mouse rate limit
        send_mouse(panel, QEvent.Type.MouseMove, point, NO_BUTTON, LEFT, modifiers)
    send_mouse(panel, QEvent.Type.MouseButtonRelease, points[-1], LEFT, NO_BUTTON, modifiers)


def isolated_point(coords: np.ndarray) -> int:
    distances = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    return int(distances.min(1).argmax())


def test_reference_map_shows_at_once(app_panels):
    panel, _, _, model = app_panels
    assert len(panel.scatter.data) == 60
    np.testing.assert_allclose(np.c_[panel.scatter.data["x"], panel.scatter.data["y"]],
                               model.reference.coords.numpy(), rtol=1e-6)


def test_hover_shows_that_points_face_and_click_selects_it(app_panels, qtbot):
    panel, _, selection, model = app_panels
    index = isolated_point(model.reference.coords.numpy())
    x, y = model.reference.coords[index].tolist()
    expected = model.reference.thumbnails[index].permute(1, 2, 0).numpy()
    assert not np.array_equal(panel.face_view.image_array(), expected)
    send_mouse(panel, QEvent.Type.MouseMove, viewport_pos(panel, x, y), NO_BUTTON, NO_BUTTON)
    qtbot.waitUntil(lambda: np.array_equal(panel.face_view.image_array(), expected))
    assert panel.face_caption.text() == f"Reference face {index + 1}"

    with qtbot.waitSignal(selection.faceSelected) as picked:
        qtbot.mouseClick(panel.plot_widget.viewport(), LEFT, pos=viewport_pos(panel, x, y))
    assert torch.equal(picked.args[0].latent, model.reference.latents[index])
    assert panel.selected_indices() == [index]


def test_rectangle_groups_become_a_saved_vector(app_panels, monkeypatch, tiny_model_path):
    panel, attributes, _, model = app_panels
    coords = model.reference.coords.numpy()
    (x0, y0), (x1, y1) = coords.min(0) - 1e-3, coords.max(0) + 1e-3
    middle = float(np.median(coords[:, 0]))
    left, right = coords[:, 0] < middle, coords[:, 0] > middle

    drag(panel, [(x0, y0), ((x0 + middle) / 2, y1), (middle, y1)], Qt.KeyboardModifier.ShiftModifier)
    assert sorted(panel.selected_indices()) == np.flatnonzero(left).tolist()
    assert panel.count_label.text() == f"{left.sum()} faces selected"
    panel.with_button.click()
    drag(panel, [(middle, y0), (x1, y1)], Qt.KeyboardModifier.ShiftModifier)
    assert sorted(panel.selected_indices()) == np.flatnonzero(right).tolist()
    panel.without_button.click()

    monkeypatch.setattr(QInputDialog, "getText", lambda *args, **kwargs: ("Left side", True))
    panel.groups_button.click()

    expected = model.reference.latents[left].mean(0) - model.reference.latents[right].mean(0)
    reloaded = core.load_model(tiny_model_path, device="cpu")
    assert set(reloaded.attributes) == {"Smiling", "Eyeglasses", "Left side"}
    torch.testing.assert_close(reloaded.attributes["Left side"], expected)
    assert "Left side" in attributes.rows and "saved" in attributes.status_label.text()
    assert panel.colour_combo.findText("Vector: Left side") >= 0


def test_lasso_selects_the_points_inside(app_panels):
    panel, _, _, model = app_panels
    coords = model.reference.coords.numpy()
    (x0, y0), (x1, y1) = np.percentile(coords, 20, axis=0), np.percentile(coords, 80, axis=0)
    lasso = [(x0, y0), ((x0 + x1) / 2, y0), (x1, y0), (x1, y1), (x0, y1), (x0, (y0 + y1) / 2)]
    drag(panel, lasso, Qt.KeyboardModifier.ControlModifier)
    (left, right), (bottom, top) = panel.view_box.viewRange()
    pixel = max((right - left) / panel.view_box.width(), (top - bottom) / panel.view_box.height())

    def inside(margin: float) -> set[int]:   # the drag lands on whole pixels: a point a pixel off the edge may go
        return set(np.flatnonzero((coords[:, 0] > x0 + margin) & (coords[:, 0] < x1 - margin)
                                  & (coords[:, 1] > y0 + margin) & (coords[:, 1] < y1 - margin)).tolist())

    assert len(inside(pixel)) > 5
    assert inside(pixel) <= set(panel.selected_indices()) <= inside(-pixel)


def visible_share(panel: MapPanel, coords: np.ndarray) -> float:
    (x0, x1), (y0, y1) = panel.view_box.viewRange()
    inside = (coords[:, 0] >= x0) & (coords[:, 0] <= x1) & (coords[:, 1] >= y0) & (coords[:, 1] <= y1)
    return float(inside.mean())


def test_far_outliers_do_not_squeeze_the_map_into_a_corner(app_panels):
    panel, _, _, model = app_panels
    data = panel.data
    assert visible_share(panel, data.coords) == 1.0  # the tiny map has no far outliers: all of it shows
    coords = np.random.default_rng(0).normal(size=(300, 2))
    coords[:4] = [[60, 2], [80, -3], [-70, 1], [0, 90]]
    panel.set_data(replace(data, coords=coords, latents=torch.zeros(300, 8), thumbnails=data.thumbnails[:1].expand(
        300, -1, -1, -1), names=[str(i) for i in range(300)], labels=None, label_names=()))
    (x0, x1), (y0, y1) = panel.view_box.viewRange()
    assert visible_share(panel, coords) >= 0.85
    assert visible_share(panel, coords[:4]) == 0.0
    assert min(x1 - x0, y1 - y0) < 15  # the cluster fills the view instead of a speck in it
    assert framing_range(np.random.default_rng(1).normal(size=(10_000, 2))) is None  # no outliers: show all


def test_points_in_polygon_handles_concave_shapes():
    points = np.array([[1, 1], [3, 1], [2, 3], [1, 3]], dtype=float)
    u_shape = np.array([[0, 0], [4, 0], [4, 4], [2.5, 4], [2.5, 2], [1.5, 2], [1.5, 4], [0, 4]], dtype=float)
    assert points_in_polygon(points, u_shape).tolist() == [True, True, False, True]


def test_send_as_endpoints_keeps_the_click_order(app_panels, qtbot):
    panel, _, selection, model = app_panels
    panel.select_indices([5, 2, 9])
    with qtbot.waitSignal(selection.endpointsSent) as sent:
        panel.endpoints_button.click()
    assert [torch.equal(f.latent, model.reference.latents[i]) for f, i in zip(sent.args[0], [5, 2, 9])] == [True] * 3


def test_dropped_face_appears_highlighted_at_its_projected_position(app_panels):
    panel, _, selection, model = app_panels
    z = torch.randn(model.latent_dim)
    selection.add_faces([FaceItem("dropped", z)])
    x, y = panel.added_marks.getData()
    expected = model.reference.project(z.unsqueeze(0))[0].numpy()
    np.testing.assert_allclose([x[0], y[0]], expected, rtol=1e-5)
    assert len(panel.scatter.data) == 60  # the map itself was not refitted


def test_colouring_by_label_uses_two_shared_brushes(app_panels):
    panel, *_ = app_panels
    panel.colour_combo.setCurrentIndex(panel.colour_combo.findText("Smiling"))
    brushes = {id(b) for b in panel.scatter.data["brush"]}
    assert len(brushes) == 2
    assert "Smiling (30)" in panel.legend_label.text()


def test_encode_folder_maps_its_faces_with_folder_labels(app_panels, qtbot, face_folder):
    panel, _, selection, model = app_panels
    panel.encode_folder(face_folder)
    assert panel.is_busy()
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=30_000)
    assert len(panel.scatter.data) == 40
    assert panel.data.label_names == ("neutral", "smiling")
    assert panel.colour_combo.findText("smiling") >= 0
    z = torch.randn(model.latent_dim)
    selection.add_faces([FaceItem("dropped", z)])
    x, y = panel.added_marks.getData()
    assert np.isfinite([x[0], y[0]]).all()


def test_cancelled_encoding_keeps_the_current_map(app_panels, qtbot, face_folder):
    panel, *_ = app_panels
    panel.encode_folder(face_folder)
    assert panel.progress.isVisibleTo(panel) and panel.cancel_button.isVisibleTo(panel)
    panel.cancel_button.click()
    assert not panel.is_busy() and not panel.progress.isVisibleTo(panel)
    qtbot.wait(300)
    assert len(panel.scatter.data) == 60 and panel.data.is_reference


def pick_method(panel: MapPanel, method: str) -> None:
    """Choose a map method from the combo with the keyboard, as a user would."""
    combo = panel.method_combo
    combo.setFocus()
    step = Qt.Key.Key_Down if combo.findData(method) > combo.currentIndex() else Qt.Key.Key_Up
    while combo.currentData() != method:
        QTest.keyClick(combo, step)


@pytest.mark.parametrize("method", [m for m in PROJECTION_METHODS if m != "pca"])
def test_each_map_method_lays_out_the_reference_faces(app_panels, qtbot, method):
    panel, _, _, model = app_panels
    pca_coords = panel.data.coords.copy()
    pick_method(panel, method)
    assert panel.is_busy() and panel.progress.isVisibleTo(panel)
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=60_000)
    assert panel.data.method == method and not panel.progress.isVisibleTo(panel)
    coords = np.c_[panel.scatter.data["x"], panel.scatter.data["y"]]
    assert coords.shape == (60, 2) and np.isfinite(coords).all() and not np.allclose(coords, pca_coords)
    assert panel.source_label.text().endswith(METHOD_TITLES[method])
    pick_method(panel, "pca")
    assert not panel.is_busy() and panel.data.is_reference
    np.testing.assert_allclose(np.c_[panel.scatter.data["x"], panel.scatter.data["y"]], pca_coords)


def test_cancelled_refit_restores_the_method_and_keeps_the_map(app_panels, qtbot):
    panel, *_ = app_panels
    pick_method(panel, "tsne")
    assert panel.is_busy()
    panel.cancel_button.click()
    assert panel.method_combo.currentData() == "pca" and not panel.progress.isVisibleTo(panel)
    qtbot.wait(3000)  # the fit cannot be interrupted: its late result must not replace the map
    assert panel.data.method == "pca" and panel.data.is_reference


def test_projecting_on_a_vector_puts_each_face_at_its_position_along_it(app_panels):
    panel, _, selection, model = app_panels
    panel.axis_combo.setCurrentIndex(panel.axis_combo.findText("Along Smiling"))
    latents = model.reference.latents.double()
    unit = model.attributes["Smiling"].double() / model.attributes["Smiling"].double().norm()
    coords = np.c_[panel.scatter.data["x"], panel.scatter.data["y"]]
    np.testing.assert_allclose(coords[:, 0], ((latents - latents.mean(0)) @ unit).numpy(), atol=1e-4)
    assert np.std(coords[:, 1]) > 0
    assert "x: along Smiling" in panel.source_label.text()
    z = torch.randn(model.latent_dim)
    selection.add_faces([FaceItem("dropped", z)])   # new faces are placed on the same axes
    x, _ = panel.added_marks.getData()
    assert x[0] == pytest.approx(float((z.double() - latents.mean(0)) @ unit), abs=1e-4)

    panel.axis_combo.setCurrentIndex(panel.axis_combo.findText("Map's own axes"))
    np.testing.assert_allclose(np.c_[panel.scatter.data["x"], panel.scatter.data["y"]],
                               model.reference.coords.numpy(), rtol=1e-6)


def test_colouring_by_a_vector_draws_its_arrow_on_the_map(app_panels):
    panel, _, _, model = app_panels
    assert panel.arrow_tip() is None
    panel.colour_combo.setCurrentIndex(panel.colour_combo.findText("Vector: Smiling"))
    tail_x, tail_y = model.reference.project(model.reference.latents.mean(0, keepdim=True))[0].tolist()
    head = model.reference.project(model.reference.latents.mean(0, keepdim=True) + model.attributes["Smiling"])[0]
    tip_x, tip_y = panel.arrow_tip()
    direction = np.array([tip_x - tail_x, tip_y - tail_y])
    expected = np.array([float(head[0]) - tail_x, float(head[1]) - tail_y])
    assert np.dot(direction, expected) / (np.linalg.norm(direction) * np.linalg.norm(expected)) > 0.999
    panel.axis_combo.setCurrentIndex(panel.axis_combo.findText("Along Smiling"))
    assert panel.arrow_tip() is None   # the vector is the x axis itself now


def test_a_zero_vector_as_axis_says_why_and_keeps_the_map(app_panels):
    panel, _, selection, model = app_panels
    model.attributes["Flat"] = torch.zeros(model.latent_dim)
    selection.notify_attributes_changed()
    panel.axis_combo.setCurrentIndex(panel.axis_combo.findText("Along Flat"))
    assert "Cannot use Flat as an axis" in panel.status_label.text()
    np.testing.assert_allclose(np.c_[panel.scatter.data["x"], panel.scatter.data["y"]],
                               model.reference.coords.numpy(), rtol=1e-6)


def test_a_principal_direction_can_be_the_x_axis(app_panels):
    panel, _, _, model = app_panels
    index = next(i for i in range(panel.axis_combo.count()) if panel.axis_combo.itemText(i).startswith("Along PC3 ("))
    panel.axis_combo.setCurrentIndex(index)
    component = model_directions(model).components[2].double()
    latents = model.reference.latents.double()
    np.testing.assert_allclose(panel.scatter.data["x"], ((latents - latents.mean(0)) @ component).numpy(), atol=1e-4)
    assert "x: along PC3" in panel.source_label.text()
