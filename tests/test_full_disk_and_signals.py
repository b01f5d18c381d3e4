"""Issue 31, items 5 and 6: a run whose files cannot be written stops with one line saying what it kept (nothing is
trained that cannot be saved), and a quick double Ctrl+C still saves the checkpoint at the stop step."""
from __future__ import annotations

import errno
import json
import shutil
import signal
from collections import namedtuple
from pathlib import Path

import pytest

import core.checkpoint as checkpoint_module
import core.cli as cli_module
import core.trainer as trainer_module
from core.checkpoint import load_checkpoint_meta
from core.cli import ProgressCallbacks, main, stop_on_interrupt
from core.trainer import CHECKPOINT_NAME, METRICS_NAME, Preview, Trainer, TrainerCallbacks, TrainingError
from test_cli import TINY_NETWORK
from test_training import one_thread, tiny_config, tiny_dataset, train_config  # noqa: F401 - autouse fixture

DiskUsage = namedtuple("DiskUsage", "total used free")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def save_every_step(monkeypatch):
    """A checkpoint at every step, however long a save takes."""
    monkeypatch.setattr(trainer_module, "SAVE_COST_SHARE", 1e9)


class Recorder(TrainerCallbacks):
    def __init__(self) -> None:
        self.messages: list[str] = []

    def on_message(self, text: str) -> None:
        self.messages.append(text)


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def free_space(monkeypatch, free: int) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda path: DiskUsage(10**12, 10**12 - free, free))


def saved_step(run: Path) -> int:
    return load_checkpoint_meta(run / CHECKPOINT_NAME)["training_state"]["step"]


def kept(run: Path, step: int) -> str:
    return f"the last checkpoint kept is step {step} in {run / CHECKPOINT_NAME}"


def one_step_run(run: Path) -> None:
    Trainer(tiny_dataset(), run, tiny_config(), train_config(max_steps=1)).run()


# ----------------------------------------------------------------------------------- item 5: a full disk


def test_two_failed_checkpoint_saves_in_a_row_stop_the_run(tmp_path, monkeypatch, save_every_step):
    one_step_run(tmp_path)
    monkeypatch.setattr(checkpoint_module, "save_file", no_space)
    recorder = Recorder()
    trainer = Trainer.from_run(tmp_path, tiny_dataset(), recorder, max_steps=1000, checkpoint_interval_s=1e-6)
    with pytest.raises(TrainingError) as excinfo:
        trainer.run()
    assert str(excinfo.value) == f"stopped: the disk is full; {kept(tmp_path, 1)}"
    assert trainer.step == 3 and saved_step(tmp_path) == 1
    assert sum("training goes on" in m for m in recorder.messages) == 1


def test_a_failure_between_two_good_saves_does_not_stop_the_run(tmp_path, monkeypatch, save_every_step):
    real_save = checkpoint_module.save_file
    calls = []

    def fail_the_second_save(*args, **kwargs):
        calls.append(1)
        return no_space() if len(calls) == 2 else real_save(*args, **kwargs)

    monkeypatch.setattr(checkpoint_module, "save_file", fail_the_second_save)
    Trainer(tiny_dataset(), tmp_path, tiny_config(), train_config(max_steps=4, checkpoint_interval_s=1e-6)).run()
    assert saved_step(tmp_path) == 4


def test_resume_on_a_disk_without_room_for_a_checkpoint_trains_nothing(face_folder, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    assert main(["train", str(face_folder), "--out", str(run), "--max-steps", "1", *TINY_NETWORK]) == 0
    size = (run / CHECKPOINT_NAME).stat().st_size
    free_space(monkeypatch, size - 1)
    capsys.readouterr()
    assert main(["resume", str(run), "--max-steps", "1000", "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (f"vaegan: error: stopped: the disk has no room for another checkpoint "
                                    f"({(size - 1) / 2**20:,.1f} MB free, {size / 2**20:,.1f} MB needed); {kept(run, 1)}")
    assert saved_step(run) == 1
    assert "Traceback" not in err


def test_a_disk_with_room_for_one_checkpoint_stops_after_saving_it(tmp_path, monkeypatch):
    """A fresh run fits its first checkpoint, then has no room for a second: it stops at once, so that no step is
    trained that could not be saved."""
    run = tmp_path / "run"
    real_usage = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: DiskUsage(10**12, 10**12, 0)
                        if (run / CHECKPOINT_NAME).exists() else real_usage(path))
    trainer = Trainer(tiny_dataset(), run, tiny_config(), train_config(max_steps=1000))
    with pytest.raises(TrainingError, match=f"^stopped: the disk has no room for another checkpoint "
                                            f"\\(0.0 MB free, .* needed\\); {kept(run, 1)}$"):
        trainer.run()
    assert trainer.step == 1


def test_a_fresh_run_on_a_full_disk_trains_nothing_and_says_nothing_is_kept(tmp_path, monkeypatch):
    free_space(monkeypatch, 0)
    trainer = Trainer(tiny_dataset(), tmp_path, tiny_config(), train_config(max_steps=1000))
    with pytest.raises(TrainingError, match="^stopped: the disk has no room for another checkpoint .*; no "
                                            "checkpoint is kept$"):
        trainer.run()
    assert trainer.step == 0


def test_two_failed_metrics_appends_in_a_row_stop_the_run(tmp_path, monkeypatch):
    one_step_run(tmp_path)
    monkeypatch.setattr(trainer_module.os, "write", no_space)
    trainer = Trainer.from_run(tmp_path, tiny_dataset(), Recorder(), max_steps=1000)
    with pytest.raises(TrainingError) as excinfo:
        trainer.run()
    # the checkpoint still fits, so the run keeps its last step
    assert str(excinfo.value) == f"stopped: the disk is full; {kept(tmp_path, 3)}"
    assert trainer.step == 3 and saved_step(tmp_path) == 3
    assert [json.loads(line)["step"] for line in (tmp_path / METRICS_NAME).read_text().splitlines()] == [1]


class FailingPreviews(Recorder):
    def on_preview(self, preview: Preview) -> None:
        raise OSError(errno.EACCES, "Permission denied", "run/previews/step.png")


def test_two_failed_previews_in_a_row_stop_the_run(tmp_path):
    trainer = Trainer(tiny_dataset(), tmp_path, tiny_config(), train_config(max_steps=1000, preview_interval=1),
                      FailingPreviews())
    with pytest.raises(TrainingError) as excinfo:
        trainer.run()
    assert str(excinfo.value) == ("stopped: could not write a preview (run/previews/step.png: Permission denied), "
                                  f"2 times in a row; {kept(tmp_path, 2)}")
    assert trainer.step == 2


def test_the_command_stops_when_previews_cannot_be_written(face_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli_module, "save_image", no_space)
    run = tmp_path / "run"
    code = main(["train", str(face_folder), "--out", str(run), "--max-steps", "1000", "--preview-interval", "1",
                 *TINY_NETWORK])
    err = capsys.readouterr().err
    assert code == 2 and err.splitlines()[-1] == f"vaegan: error: stopped: the disk is full; {kept(run, 2)}", err


# ----------------------------------------------------------------------------------- item 6: a double Ctrl+C


class PressingCallbacks(ProgressCallbacks):
    """Ctrl+C once after step `at`, and `more` times more while the stop-save writes the checkpoint."""

    def __init__(self, at: int, more: int) -> None:
        super().__init__()
        self.at, self.more = at, more

    def on_metrics(self, record: dict[str, float]) -> None:
        super().on_metrics(record)
        if record["step"] == self.at:
            press()


def press() -> None:
    signal.getsignal(signal.SIGINT)(signal.SIGINT, None)


def train_with_presses(run: Path, monkeypatch, more: int) -> Trainer:
    callbacks = PressingCallbacks(at=3, more=more)
    real_save = trainer_module.save_checkpoint

    def save_while_pressed(path, ckpt):
        if callbacks.stop_requested:
            for _ in range(callbacks.more):
                press()
        return real_save(path, ckpt)

    monkeypatch.setattr(trainer_module, "save_checkpoint", save_while_pressed)
    trainer = Trainer(tiny_dataset(), run, tiny_config(), train_config(max_steps=50), callbacks)
    callbacks.attach(trainer)
    try:
        with stop_on_interrupt(callbacks):
            trainer.run()
    finally:
        callbacks.close()
    return trainer


def test_a_quick_double_ctrl_c_still_saves_at_the_stop_step(tmp_path, monkeypatch, capsys):
    try:
        trainer = train_with_presses(tmp_path, monkeypatch, more=1)
    except KeyboardInterrupt:   # not left to end the test session
        pytest.fail("the second Ctrl+C aborted the stop-save")
    assert trainer.step == 3 and saved_step(tmp_path) == 3
    assert "saving the checkpoint, one moment (Ctrl+C once more to abort without it)" in capsys.readouterr().err


def test_a_third_ctrl_c_aborts_the_stop_save(tmp_path, monkeypatch):
    with pytest.raises(KeyboardInterrupt):
        train_with_presses(tmp_path, monkeypatch, more=2)
    assert saved_step(tmp_path) == 1   # the checkpoint before the stop stays
