"""Undo and redo across the panels (Edit ▸ Undo, Ctrl+Z / Ctrl+Shift+Z) and stackable edits in Attributes."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QModelIndex, QPoint, Qt
from PySide6.QtWidgets import QToolButton

from explorer.main_window import MainWindow
from test_gui_app import isolated_settings, open_window  # noqa: F401 - autouse fixture
from test_panel_attribute import one_torch_thread  # noqa: F401 - autouse fixture


@pytest.fixture
def window(qtbot, tiny_model_path: Path) -> MainWindow:
    window = open_window(qtbot, tiny_model_path)
    window.show_panel("attributes")
    window.activateWindow()
    qtbot.waitExposed(window)
    return window


def undo_key(qtbot, window: MainWindow) -> None:
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)


def redo_key(qtbot, window: MainWindow) -> None:
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)


def menu_text(action) -> str:
    return action.text().replace("&", "")   # without the mnemonic's marker


def drag_slider(qtbot, slider, fractions: list[float]) -> None:
    """Press the slider's handle, move it through `fractions` of its width and let go, as a mouse does."""
    inner = slider._slider
    y = inner.height() // 2
    handle = QPoint(inner.width() // 2, y)   # the handle sits in the middle at 0
    qtbot.mousePress(inner, Qt.MouseButton.LeftButton, pos=handle)
    for fraction in fractions:
        qtbot.mouseMove(inner, QPoint(int(fraction * inner.width()), y))
    qtbot.mouseRelease(inner, Qt.MouseButton.LeftButton, pos=QPoint(int(fractions[-1] * inner.width()), y))


def test_a_slider_drag_is_one_step_named_after_it(window, qtbot):
    panel, stack = window.panels["attributes"], window.undo_stack
    row = panel.rows["Smiling"]
    drag_slider(qtbot, row.slider, [0.55, 0.6, 0.7, 0.8])
    dragged = row.strength()
    assert dragged > 0.5
    assert stack.count() == 1
    assert menu_text(window.undo_action) == f"Undo Smiling {dragged:+.2f}"

    drag_slider(qtbot, row.slider, [0.4, 0.3])   # a second drag of the same slider is a step of its own
    assert stack.count() == 2
    undo_key(qtbot, window)
    assert row.strength() == dragged
    undo_key(qtbot, window)
    assert row.strength() == 0
    assert panel.strengths() == {}
    assert menu_text(window.redo_action) == f"Redo Smiling {dragged:+.2f}"
    redo_key(qtbot, window)
    assert row.strength() == dragged
    assert panel.strengths() == {"Smiling": dragged}


def test_a_new_model_clears_the_stack(window, qtbot, tiny_model_path):
    window.panels["attributes"].rows["Smiling"].slider.setValue(1.0)
    assert window.undo_stack.canUndo()
    window.open_model(tiny_model_path)
    qtbot.waitUntil(lambda: not window.loading, timeout=10_000)
    assert window.undo_stack.count() == 0
    assert not window.undo_action.isEnabled()


def base_latent(panel) -> torch.Tensor:
    return panel.face.latent.float().reshape(-1)


def test_apply_edit_stacks_edits_and_step_back_returns_to_earlier_faces(window, qtbot):
    panel = window.panels["attributes"]
    original = base_latent(panel).clone()
    panel.rows["Smiling"].slider.setValue(1.0)
    panel.flush()
    smiling = panel.edited_latent.clone()
    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    assert torch.equal(base_latent(panel), smiling)
    assert panel.rows["Smiling"].strength() == 0 and panel.strengths() == {}

    panel.rows["Eyeglasses"].slider.setValue(0.8)
    panel.flush()
    assert torch.allclose(panel.edited_latent, smiling + 0.8 * panel.vectors["Eyeglasses"])   # starts from the base
    both = panel.edited_latent.clone()
    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    entries = [panel.history_list.item(row).text() for row in range(panel.history_list.count())]
    assert entries[1:] == ["Smiling +1.00", "Eyeglasses +0.80"]
    assert panel.history_list.isVisibleTo(panel)

    qtbot.mouseClick(panel.step_back_button, Qt.MouseButton.LeftButton)
    assert torch.equal(base_latent(panel), smiling)
    assert menu_text(window.undo_action) == "Undo Go back to Smiling +1.00"
    undo_key(qtbot, window)   # stepping back is itself a step
    assert torch.equal(base_latent(panel), both)

    panel.history_list.setCurrentRow(0)   # picking an earlier entry goes back to it
    assert torch.equal(base_latent(panel), original)
    assert panel.history_list.count() == 3   # later entries stay until another edit is applied
    undo_key(qtbot, window)
    undo_key(qtbot, window)
    assert torch.equal(base_latent(panel), smiling)
    assert panel.rows["Eyeglasses"].strength() == pytest.approx(0.8)


def rendered(window: MainWindow) -> tuple[np.ndarray, np.ndarray]:
    """The Attributes panel's edited face and the interpolation strip, decoded now."""
    attributes, interpolation = window.panels["attributes"], window.panels["interpolate"]
    return attributes.current_image().numpy().copy(), interpolation.frames().numpy().copy()


def random_action(window: MainWindow, rng: random.Random) -> None:
    """One change a user could make, through the panels' widgets."""
    attributes, interpolation, map_panel = (window.panels[key] for key in ("attributes", "interpolate", "map"))
    kind = rng.choices(["slider", "reset", "apply", "back", "map", "region", "add", "remove", "move"],
                       weights=[30, 4, 6, 4, 12, 4, 10, 8, 4])[0]
    if kind == "slider":
        row = attributes.rows[rng.choice(sorted(attributes.rows))]
        row.slider.setSliderDown(True)   # a drag through a few values: one step
        for _ in range(rng.randint(1, 3)):
            row.slider.setValue(round(rng.uniform(-3, 3) / 0.05) * 0.05)
        row.slider.setSliderDown(False)
    elif kind == "reset":
        attributes.reset_button.click()
    elif kind == "apply":
        attributes.apply_button.click()
    elif kind == "back":
        attributes.step_back_button.click()
    elif kind == "map":
        map_panel.click_face(rng.randrange(len(map_panel.data.names)), toggle=rng.random() < 0.3)
    elif kind == "region":
        map_panel.select_indices(rng.sample(range(len(map_panel.data.names)), rng.randint(0, 5)))
    elif kind == "add":
        (interpolation.add_current_button if rng.random() < 0.6 else interpolation.random_button).click()
    elif interpolation.endpoint_list.count():
        interpolation.endpoint_list.setCurrentRow(rng.randrange(interpolation.endpoint_list.count()))
        button = interpolation.remove_button if kind == "remove" else rng.choice(
            [interpolation.up_button, interpolation.down_button])
        button.click()


def assert_same_pixels(expected: tuple[np.ndarray, ...], now: tuple[np.ndarray, ...]) -> None:
    for before, after in zip(expected, now):
        np.testing.assert_allclose(after, before, atol=1e-6)


def test_a_thousand_mixed_changes_undo_and_redo_to_the_same_pixels(window):
    """Every 50th state on the way is checked too: each step's undo and redo must restore exactly its state."""
    stack = window.undo_stack
    seen = {0: rendered(window)}   # the pixels after the step at each checked index of the stack
    rng = random.Random(19)
    for action in range(1, 1001):
        random_action(window, rng)
        if action % 50 == 0:
            seen[stack.index()] = rendered(window)
    steps = stack.index()
    assert steps > 500
    assert not any(np.allclose(now, before) for now, before in zip(seen[steps], seen[0]) if now.shape == before.shape)
    while stack.canUndo():
        window.undo_action.trigger()
        if stack.index() in seen:
            assert_same_pixels(seen[stack.index()], rendered(window))
    while stack.canRedo():
        window.redo_action.trigger()
        if stack.index() in seen:
            assert_same_pixels(seen[stack.index()], rendered(window))
    assert stack.index() == steps


def close_button(card):
    return next(button for button in card.findChildren(QToolButton) if button.text() == "✕")


def test_pictures_added_closed_and_cleared_in_reconstruct_come_back_without_encoding_again(window, qtbot,
                                                                                          face_image_file):
    panel, stack = window.panels["reconstruct"], window.undo_stack
    window.show_panel("reconstruct")
    panel.add_sources([("first", face_image_file), ("second", face_image_file)])
    qtbot.waitUntil(lambda: all(card.result is not None for card in panel.items), timeout=10_000)
    first, second = panel.items
    results = [first.result, second.result]
    assert menu_text(window.undo_action) == "Undo Add 2 pictures"

    close_button(first).click()
    assert panel.items == [second]
    panel.clear()
    assert panel.items == []
    undo_key(qtbot, window)
    assert panel.items == [second]
    undo_key(qtbot, window)
    assert panel.items == [first, second]
    assert [card.result for card in panel.items] == results   # the same reconstructions, none made again
    assert first.isVisibleTo(panel)
    undo_key(qtbot, window)
    assert panel.items == [] and panel.hint.isVisibleTo(panel)
    redo_key(qtbot, window)
    assert panel.items == [first, second]
    assert stack.count() == 3


def test_new_and_deleted_vectors_are_undone_in_the_model_and_its_file(window, qtbot, tiny_model_path):
    from core.api import load_model

    panel = window.panels["attributes"]
    model = window.selection.model
    panel.add_vector_from_groups("Bright", torch.ones(3, 8), torch.zeros(3, 8))
    assert "Bright" in panel.rows and "Bright" in load_model(tiny_model_path, device="cpu").attributes
    undo_key(qtbot, window)
    assert "Bright" not in model.attributes and "Bright" not in panel.rows
    assert "Bright" not in load_model(tiny_model_path, device="cpu").attributes
    redo_key(qtbot, window)
    assert torch.equal(model.attributes["Bright"], torch.ones(8))

    smiling = model.attributes["Smiling"].clone()
    panel.rows["Smiling"].slider.setValue(1.5)
    panel.delete_vector("Smiling")
    assert "Smiling" not in model.attributes and panel.strengths() == {}
    assert menu_text(window.undo_action) == "Undo Delete vector Smiling"
    undo_key(qtbot, window)
    assert torch.equal(model.attributes["Smiling"], smiling)
    assert panel.strengths() == {"Smiling": 1.5}
    assert "Smiling" in load_model(tiny_model_path, device="cpu").attributes


def test_a_click_on_the_map_is_one_step_with_the_face_it_picks(window, qtbot):
    map_panel, attributes = window.panels["map"], window.panels["attributes"]
    first_face = attributes.face
    map_panel.click_face(3)
    assert map_panel.selected_indices() == [3] and attributes.face.name == "Reference face 4"
    assert menu_text(window.undo_action) == "Undo Select Reference face 4 on the map"
    undo_key(qtbot, window)
    assert map_panel.selected_indices() == [] and attributes.face is first_face
    assert window.selection.current is None
    redo_key(qtbot, window)
    assert map_panel.selected_indices() == [3] and window.selection.current.name == "Reference face 4"


def test_endpoints_dragged_to_another_place_are_one_step(window, qtbot):
    panel = window.panels["interpolate"]
    panel.random_button.click()
    names = [face.name for face in panel.endpoints()]
    assert panel.endpoint_list.model().moveRow(QModelIndex(), 0, QModelIndex(), 3)   # what a drag in the list does
    moved = [face.name for face in panel.endpoints()]
    assert moved == names[1:] + names[:1]
    assert menu_text(window.undo_action) == "Undo Reorder endpoints"
    undo_key(qtbot, window)
    assert [face.name for face in panel.endpoints()] == names
    redo_key(qtbot, window)
    assert [face.name for face in panel.endpoints()] == moved
