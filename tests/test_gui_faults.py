"""The app under faults: damaged runs and models are explained in one line naming the file, the checkpoint
interval is a setting, and SIGTERM during training saves a checkpoint before the window closes."""
from __future__ import annotations

import os
import signal

import pytest
import torch
from PySide6.QtWidgets import QMessageBox

from core.checkpoint import load_checkpoint_meta
from core.trainer import CHECKPOINT_NAME
from explorer.app import close_on_signals
from test_crafted_checkpoints import copy_run, craft, huge_architecture, trained_run  # noqa: F401 - fixture
from test_gui_app import isolated_settings, open_window  # noqa: F401 - autouse fixture
from test_gui_training import panel, resume_until_step_3  # noqa: F401 - fixture

DAMAGES = {
    "model_config missing": (lambda m, t: m.pop("model_config"), "model_config is missing"),
    "training_state missing": (lambda m, t: m.pop("training_state"), "training_state is missing"),
    "tensors that do not fit": (lambda m, t: t.update({"enc.mu.weight": torch.zeros(2, 2)}), "enc.mu.weight"),
}


@pytest.mark.parametrize("case", DAMAGES)
def test_resuming_a_damaged_run_names_the_file_and_the_problem(case, qtbot, panel, trained_run, tmp_path,
                                                               capfd):
    change, expected = DAMAGES[case]
    run = copy_run(trained_run, tmp_path / "run")
    craft(trained_run / CHECKPOINT_NAME, run / CHECKPOINT_NAME, change=change)
    panel.resume_run(run)
    qtbot.waitUntil(lambda: panel.scan_status.text().startswith("Cannot resume"), timeout=20_000)
    text = panel.scan_status.text()
    assert str(run / CHECKPOINT_NAME) in text and expected in text and "\n" not in text
    assert not panel.is_training() and panel.resume_button.isEnabled()
    assert "Traceback" not in capfd.readouterr().err


def test_opening_a_model_with_a_huge_declared_architecture_is_refused_at_once(qtbot, tiny_model_path, tmp_path,
                                                                              monkeypatch):
    window = open_window(qtbot, tiny_model_path)
    bad = craft(tiny_model_path, tmp_path / "huge.safetensors", change=huge_architecture)
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, title, text, *a: shown.append(text))
    window.open_model(bad)
    qtbot.waitUntil(lambda: bool(shown), timeout=10_000)
    assert str(bad) in shown[0] and "declares" in shown[0]


def test_the_checkpoint_interval_is_a_setting(panel):
    panel.checkpoint_every.setValue(5)
    assert panel.train_config().checkpoint_interval_s == 300


def test_sigterm_saves_the_running_training_and_closes_the_window(qtbot, tiny_model_path, face_folder, tmp_path):
    window = open_window(qtbot, tiny_model_path)
    train = window.panels["train"]
    run_dir = tmp_path / "run"
    resume_until_step_3(qtbot, train, face_folder, run_dir)
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        close_on_signals(window)
        os.kill(os.getpid(), signal.SIGTERM)
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=60_000)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    assert not train.is_training()
    assert load_checkpoint_meta(run_dir / CHECKPOINT_NAME)["training_state"]["step"] >= 3
