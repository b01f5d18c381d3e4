"""The Attributes panel's principal-direction sliders and their traversal grid."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtWidgets import QFileDialog

from core.api import ReferenceMap
from core.latent import LatentGaussian
from explorer.attribute_panel import NO_DIRECTIONS
from explorer.selection import FaceItem
from tests.test_panel_attribute import (BOTTOM_RIGHT, SIZE, TOP_LEFT, e, linear_model,  # noqa: F401
                                       one_torch_thread, panel, region_mean)

STDS = torch.tensor([3.0, 1.0, 0.2, 0.2])


def spread_model():
    """The linear model whose training faces spread 3 along latent 0 (the top-left block), 1 along latent 1."""
    model = linear_model({"Up": e(0)})
    model.latent_gaussian = LatentGaussian(torch.zeros(4), torch.diag(STDS))
    latents = model.latent_gaussian.sample(2000, seed=0)
    thumbs = torch.zeros(len(latents), 3, 8, 8, dtype=torch.uint8)
    model.reference = ReferenceMap(latents, latents[:, :2], thumbs, torch.zeros(4), torch.eye(4)[:2])
    return model


def use_directions(widget) -> None:
    widget.source_combo.setCurrentIndex(widget.source_combo.findData("directions"))


def test_direction_sliders_are_labelled_with_their_variance_and_move_the_face(panel, qtbot):
    widget, selection = panel
    selection.set_model(spread_model())
    selection.select_face(FaceItem("average face", torch.zeros(4)))
    before = region_mean(widget.after_view, TOP_LEFT)
    untouched = region_mean(widget.after_view, BOTTOM_RIGHT)
    use_directions(widget)
    assert list(widget.rows) == ["PC1", "PC2", "PC3", "PC4"]
    share = float(re.fullmatch(r"PC1 \((\d+\.\d)% of variance\)", widget.rows["PC1"].label.text()).group(1))
    assert share == pytest.approx(100 * 9 / 10.08, abs=5)   # the fence on far-off faces trims the long axis a little
    assert not widget.quality_button.isEnabled()

    widget.rows["PC1"].slider.setValue(1.0)   # one standard deviation: 3 along latent 0
    qtbot.waitUntil(lambda: region_mean(widget.after_view, TOP_LEFT) > before + 100)
    assert region_mean(widget.after_view, BOTTOM_RIGHT) == pytest.approx(untouched, abs=2)
    assert widget.edits_label.text().startswith("Edits: PC1 +1.00")

    low, high = widget.rows["PC1"].safe_range()   # the region's radius, in standard deviations along PC1
    radius = widget.meter.threshold ** 0.5 * 3 / float(widget.directions.scales[0])
    assert (low, high) == pytest.approx((-radius, radius), abs=0.05)
    widget.rows["PC1"].slider.setValue(3.0)
    selection.select_face(FaceItem("unusual face", 3 * e(1)))   # the same edit of a face already far out
    qtbot.waitUntil(lambda: widget.realism_view.warning_label.isVisibleTo(widget))
    widget.rows["PC1"].slider.setValue(0.0)
    qtbot.waitUntil(lambda: not widget.realism_view.warning_label.isVisibleTo(widget))

    widget.source_combo.setCurrentIndex(widget.source_combo.findData("attributes"))
    assert list(widget.rows) == ["Up"] and widget.quality_button.isEnabled()
    qtbot.waitUntil(lambda: region_mean(widget.after_view, TOP_LEFT) == before)   # switching starts unedited


def test_traversal_grid_is_saved_from_the_save_menu(panel, qtbot, tmp_path, monkeypatch):
    widget, selection = panel
    selection.set_model(spread_model())
    selection.select_face(FaceItem("average face", torch.zeros(4)))
    target = tmp_path / "grid.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(target), ""))
    widget.save_traversal_action.trigger()
    assert "Saved" in widget.status_label.text()
    with Image.open(target) as grid:
        pixels = np.asarray(grid.convert("RGB"))
    tile = SIZE * 2 + 4   # saved at twice the size
    assert pixels.shape[:2] == (4 * tile + 4, 7 * tile + 4)
    first_row = [pixels[4:4 + SIZE, 4 + c * tile:4 + c * tile + SIZE].mean() for c in range(7)]
    assert first_row == sorted(first_row) and first_row[-1] > first_row[0] + 50   # PC1 brightens the corner


def test_a_model_without_reference_map_has_no_direction_sliders(panel):
    widget, selection = panel
    selection.set_model(linear_model({"Up": e(0)}))
    use_directions(widget)
    assert widget.rows == {}
    assert widget.no_vectors_label.isVisibleTo(widget) and widget.no_vectors_label.text() == NO_DIRECTIONS
    assert not widget.save_traversal_action.isEnabled()
