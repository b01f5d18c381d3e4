"""Attribute panel: sliders move the face along their vectors; exports; empty state."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import Qt
from torch import nn

from core.api import Model
from core.latent import LatentGaussian
from core.model import ModelConfig
from explorer.attribute_panel import AttributePanel
from explorer.selection import FaceItem, Selection

SIZE = 64
TOP_LEFT = (slice(0, 16), slice(0, 16))
BOTTOM_RIGHT = (slice(48, 64), slice(48, 64))


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny decodes run fastest on one thread, above all on a busy machine; restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


class LinearDecoder(nn.Module):
    """z -> image in [-1, 1]: latent 0 brightens the top-left 16x16 block, latent 1 the bottom-right one."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        weight = torch.zeros(3, SIZE, SIZE, latent_dim)
        weight[:, TOP_LEFT[0], TOP_LEFT[1], 0] = 0.3
        weight[:, BOTTOM_RIGHT[0], BOTTOM_RIGHT[1], 1] = 0.3
        self.register_buffer("weight", weight.reshape(-1, latent_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.weight.T).reshape(-1, 3, SIZE, SIZE).clamp(-1, 1)


class LinearNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cfg = ModelConfig(image_size=SIZE, latent_dim=4, width=0.125, kernel_size=4)
        self.decoder = LinearDecoder(self.cfg.latent_dim)


def linear_model(attributes: dict[str, torch.Tensor]) -> Model:
    return Model(LinearNet(), torch.device("cpu"), attributes=attributes)


def e(i: int) -> torch.Tensor:
    return torch.eye(4)[i]


@pytest.fixture
def panel(qtbot) -> tuple[AttributePanel, Selection]:
    selection = Selection()
    widget = AttributePanel(selection)
    qtbot.addWidget(widget)
    widget.resize(1100, 700)
    widget.show()
    return widget, selection


def region_mean(view, region) -> float:
    return float(view.image_array()[region].mean())


def test_moving_a_slider_moves_the_shown_face_along_its_vector(panel, qtbot):
    widget, selection = panel
    selection.set_model(linear_model({"Bright corner": e(0)}))
    selection.select_face(FaceItem("grey face", torch.zeros(4)))
    before = region_mean(widget.after_view, TOP_LEFT)
    untouched = region_mean(widget.after_view, BOTTOM_RIGHT)

    widget.rows["Bright corner"].slider.setValue(1.5)
    qtbot.waitUntil(lambda: region_mean(widget.after_view, TOP_LEFT) > before + 40)
    assert region_mean(widget.after_view, BOTTOM_RIGHT) == untouched
    assert region_mean(widget.before_view, TOP_LEFT) == before

    widget.rows["Bright corner"].slider.setValue(-1.5)
    qtbot.waitUntil(lambda: region_mean(widget.after_view, TOP_LEFT) < before - 40)

    widget.reset_button.click()
    qtbot.waitUntil(lambda: region_mean(widget.after_view, TOP_LEFT) == before)


def test_sliders_combine_and_orthogonalise_removes_overlap(panel, qtbot):
    widget, selection = panel
    selection.set_model(linear_model({"A": e(0), "B": e(0) + e(1)}))
    selection.select_face(FaceItem("grey face", torch.zeros(4)))
    widget.set_strengths({"A": 1.0})
    widget.flush()
    only_a = region_mean(widget.after_view, TOP_LEFT)

    widget.set_strengths({"B": 1.0})
    widget.flush()
    assert region_mean(widget.after_view, TOP_LEFT) > only_a + 20  # B also pushes the top-left block
    assert region_mean(widget.after_view, BOTTOM_RIGHT) > 150

    widget.orthogonal_check.setChecked(True)
    widget.flush()
    assert region_mean(widget.after_view, TOP_LEFT) == pytest.approx(only_a, abs=1)
    assert region_mean(widget.after_view, BOTTOM_RIGHT) > 150


def test_random_face_is_drawn_where_the_models_faces_lie(panel, qtbot):
    widget, selection = panel
    model = linear_model({"Bright corner": e(0)})
    model.latent_gaussian = LatentGaussian(3 * e(0), 0.01 * torch.eye(4))  # faces lie at a bright top-left corner
    selection.set_model(model)
    qtbot.mouseClick(widget.random_button, Qt.MouseButton.LeftButton)
    assert widget.face.name.startswith("Random face")
    assert region_mean(widget.before_view, TOP_LEFT) > 235
    assert abs(region_mean(widget.before_view, BOTTOM_RIGHT) - 127.5) < 3


def test_filter_box_hides_other_sliders(panel):
    widget, selection = panel
    selection.set_model(linear_model({"Smiling": e(0), "Eyeglasses": e(1), "Heavy_Makeup": e(2)}))
    widget.filter_edit.setText("heavy m")
    assert [name for name, row in widget.rows.items() if not row.isHidden()] == ["Heavy_Makeup"]


def test_model_load_shows_the_first_reference_face_and_empty_state_without_model(panel, tiny_model_path):
    import core

    widget, selection = panel
    model = core.load_model(tiny_model_path, device="cpu")
    selection.set_model(model)
    expected = model.decode(model.reference.latents[:1])[0]
    shown = widget.before_view.image_array()
    assert np.abs(shown.astype(int) - (expected.permute(1, 2, 0).numpy() * 255).round()).max() <= 1
    assert widget.stack.showing_content()
    selection.set_model(None)
    assert not widget.stack.showing_content()


def test_export_edited_and_before_after(panel, tmp_path):
    widget, selection = panel
    selection.set_model(linear_model({"Bright corner": e(0)}))
    selection.select_face(FaceItem("grey face", torch.zeros(4)))
    widget.set_strengths({"Bright corner": 2.0})
    edited = widget.export_current(tmp_path / "edited.png", scale=2)
    pair = widget.export_before_after(tmp_path / "pair.png")
    with Image.open(edited) as image:
        assert image.size == (128, 128)
        assert np.asarray(image)[:32, :32].mean() > np.asarray(image)[64:, 64:].mean() + 40
    with Image.open(pair) as image:
        assert image.size == (2 * SIZE + 3 * 2, SIZE + 2 * 2)


def test_unsaved_vector_says_why(panel, monkeypatch):
    widget, selection = panel
    selection.set_model(linear_model({}))
    assert widget.no_vectors_label.isVisibleTo(widget)
    with_group, without_group = torch.ones(3, 4), torch.zeros(2, 4)
    assert widget.add_vector_from_groups("Ones", with_group, without_group) is False
    assert "no file" in widget.status_label.text()
    assert torch.equal(selection.model.attributes["Ones"], torch.ones(4))
    assert "Ones" in widget.rows
