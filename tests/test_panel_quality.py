"""The Attributes panel's realism meter, safe-range shading, Hold (conditional editing) and Quality dialog."""
from __future__ import annotations

import re

import pytest
import torch
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QInputDialog, QStyle, QStyleOptionSlider

from core.api import ReferenceMap
from core.latent import LatentGaussian
from core.realism import RealismMeter
from explorer.selection import FaceItem
from tests.test_panel_attribute import (BOTTOM_RIGHT, TOP_LEFT, e, linear_model, one_torch_thread,  # noqa: F401
                                       panel, region_mean)  # fixtures: one torch thread, a shown panel

REFERENCE_FACES = 200


def measured_model(attributes: dict[str, torch.Tensor]):
    """The linear model with faces ~ N(0, I) in 4 dimensions, a reference map of 200 of them whose thumbnails
    are flat colours (face i is grey level i), labelled "Up" where latent 0 is positive."""
    model = linear_model(attributes)
    model.latent_gaussian = LatentGaussian(torch.zeros(4), torch.eye(4))
    latents = model.latent_gaussian.sample(REFERENCE_FACES, seed=0)
    thumbs = torch.arange(REFERENCE_FACES, dtype=torch.uint8)[:, None, None, None].expand(-1, 3, 8, 8).contiguous()
    labels = torch.where(latents[:, :1] > 0, 1, -1).to(torch.int8)
    model.reference = ReferenceMap(latents, latents[:, :2], thumbs, torch.zeros(4), torch.eye(4)[:2], labels, ("Up",))
    return model


def test_the_meter_follows_the_slider_and_warns_outside(panel, qtbot):
    widget, selection = panel
    model = measured_model({"Up": 1.5 * e(0)})
    selection.set_model(model)
    selection.select_face(FaceItem("typical face", torch.zeros(4)))
    meter = widget.realism_view
    assert "more typical than 100%" in meter.summary_label.text()
    assert not meter.warning_label.isVisibleTo(widget)

    widget.rows["Up"].slider.setValue(3.0)   # 4.5 standard deviations along one axis of 4
    qtbot.waitUntil(lambda: meter.warning_label.isVisibleTo(widget))
    assert "Outside the region where 99%" in meter.warning_label.text()
    assert re.search(r"more typical than [0-2]%", meter.summary_label.text())
    nearest = torch.cdist(4.5 * e(0)[None], model.reference.latents)[0].argsort()[:5]
    shown = meter.nearest_view.image_array()
    strip = [int(shown[shown.shape[0] // 2, (2 * k + 1) * shown.shape[1] // 10, 0]) for k in range(5)]
    assert strip == nearest.tolist()   # each thumbnail's grey level is its reference index

    widget.reset_button.click()
    qtbot.waitUntil(lambda: not meter.warning_label.isVisibleTo(widget))


def shaded(row, value: float) -> bool:
    """Whether the slider's groove at `value` turns red with the shading shown (against it hidden)."""
    inner, shade = row.slider._slider, row.shade
    option = QStyleOptionSlider()
    inner.initStyleOption(option)
    style = inner.style()
    groove = style.subControlRect(QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderGroove, inner)
    handle = style.subControlRect(QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderHandle, inner)
    x, y = round(shade._x(value, QRectF(groove), handle.width())), groove.center().y()
    with_shade = inner.grab().toImage().pixelColor(x, y)
    shade.hide()
    without = inner.grab().toImage().pixelColor(x, y)
    shade.show()
    return with_shade.red() - with_shade.blue() > without.red() - without.blue() + 40


def test_each_slider_shades_where_the_face_would_leave_the_region(panel, qtbot):
    widget, selection = panel
    model = measured_model({"Up": 2 * e(0), "Across": 2 * e(1)})
    selection.set_model(model)
    selection.select_face(FaceItem("typical face", torch.zeros(4)))
    edge = RealismMeter.of_model(model).threshold ** 0.5   # in standard deviations; each vector is two
    low, high = widget.rows["Up"].safe_range()
    assert (low, high) == pytest.approx((-edge / 2, edge / 2))
    assert shaded(widget.rows["Up"], 2.9) and shaded(widget.rows["Up"], -2.9)
    assert not shaded(widget.rows["Up"], 0.5)

    widget.rows["Across"].slider.setValue(1.0)   # given this edit, "Up" has less room left
    widget.flush()
    assert widget.rows["Up"].safe_range()[1] == pytest.approx((edge ** 2 - 4) ** 0.5 / 2)
    assert widget.rows["Across"].safe_range() == pytest.approx((-edge / 2, edge / 2))
    assert not shaded(widget.rows["Up"], 0.5)


def test_hold_keeps_an_attribute_while_another_moves(panel, qtbot):
    widget, selection = panel
    selection.set_model(measured_model({"Both corners": e(0) + e(1), "Bottom right": e(1)}))
    selection.select_face(FaceItem("grey face", torch.zeros(4)))
    untouched = region_mean(widget.after_view, BOTTOM_RIGHT)
    widget.set_strengths({"Both corners": 1.5})
    widget.flush()
    assert region_mean(widget.after_view, BOTTOM_RIGHT) > untouched + 20

    qtbot.mouseClick(widget.rows["Bottom right"].hold_button, Qt.MouseButton.LeftButton)
    widget.flush()
    assert region_mean(widget.after_view, BOTTOM_RIGHT) == pytest.approx(untouched, abs=1)
    assert region_mean(widget.after_view, TOP_LEFT) > untouched + 20
    assert "holding Bottom right" in widget.edits_label.text()
    widget.add_vector_from_groups("New", torch.ones(2, 4), torch.zeros(2, 4))   # the sliders are rebuilt
    widget.flush()
    assert widget.rows["Bottom right"].held()
    assert region_mean(widget.after_view, BOTTOM_RIGHT) == pytest.approx(untouched, abs=1)


def test_quality_dialog_scores_the_vectors_and_maps_their_entanglement(panel, qtbot):
    widget, selection = panel
    selection.set_model(measured_model({"Up": e(0), "Up too": e(0) + 0.1 * e(2), "Across": e(1)}))
    qtbot.mouseClick(widget.quality_button, Qt.MouseButton.LeftButton)
    dialog = widget.quality_dialog
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.scores is not None, timeout=10_000)
    rows = {dialog.table.item(r, 0).text(): [dialog.table.item(r, c).text() for c in range(1, 5)]
            for r in range(dialog.table.rowCount())}
    with_count = int((selection.model.reference.labels[:, 0] > 0).sum())
    assert rows["Up"][:2] == [str(with_count), str(REFERENCE_FACES - with_count)]
    assert float(rows["Up"][2]) > 2.0            # the label is latent 0's sign: well separated
    assert rows["Across"][2] == "n/a"            # no label for it on the reference map
    assert rows["Up"][3].startswith("Up too +1.00")
    assert abs(dialog.order.index("Up") - dialog.order.index("Up too")) == 1
    image = dialog.heat_map.grab().toImage()
    left, top, side = dialog.heat_map.cell_rect()
    diagonal = image.pixelColor(int(left + side / 2), int(top + side / 2))
    assert (diagonal.red(), diagonal.green()) == (255, 0)   # a vector against itself: cosine +1, full red


def test_a_model_without_a_gaussian_says_so(panel):
    widget, selection = panel
    selection.set_model(linear_model({"Up": e(0)}))
    assert "no fitted latent Gaussian" in widget.realism_view.summary_label.text()
    assert widget.rows["Up"].safe_range() == (float("-inf"), float("inf"))


def test_a_new_vector_from_groups_shows_its_separation_before_it_is_saved(panel, monkeypatch):
    widget, selection = panel
    selection.set_model(measured_model({}))
    asked = []
    monkeypatch.setattr(QInputDialog, "getText", lambda *args, **kwargs: asked.append(args[2]) or ("", False))
    g = torch.Generator().manual_seed(1)
    widget.ask_for_vector_from_groups(torch.randn(30, 4, generator=g) + 3 * e(0), torch.randn(30, 4, generator=g))
    assert "Separation: Cohen's d" in asked[0]
    assert float(asked[0].split("Cohen's d ")[1].split()[0]) > 2
    widget.ask_for_vector_from_groups(torch.randn(1, 4), torch.randn(1, 4))
    assert "Too few faces" in asked[1]
