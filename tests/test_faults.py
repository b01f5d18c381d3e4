"""Faults a user causes every day: signals and kills during training, full disks, torn files, absurd settings,
replaced pictures and damaged JPEGs. Nothing the user made may be lost, and every failure is one line."""
from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import core.checkpoint as checkpoint_module
import core.cli as cli_module
import core.trainer as trainer_module
from conftest import synthetic_face
from core.checkpoint import CheckpointError, load_checkpoint, load_checkpoint_meta, save_checkpoint
from core.cli import main
from core.data import ImageLoadError, load_image_folder, open_image, prune_cache
from core.trainer import CHECKPOINT_NAME, METRICS_NAME, Trainer, TrainerCallbacks
from test_cli import REPO, TINY_NETWORK, cli_command, cli_environment
from test_training import one_thread, tiny_config, tiny_dataset, train_config  # noqa: F401 - autouse fixture


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


class Recorder(TrainerCallbacks):
    def __init__(self) -> None:
        self.messages: list[str] = []
        self.checkpoint_steps: list[int] = []
        self.trainer: Trainer | None = None

    def on_message(self, text: str) -> None:
        self.messages.append(text)

    def on_checkpoint(self, path: Path) -> None:
        self.checkpoint_steps.append(load_checkpoint_meta(path)["training_state"]["step"])


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


# ----------------------------------------------------------------------------------- training: checkpoints


def test_a_fresh_run_saves_a_checkpoint_after_its_first_step(tmp_path):
    """So that a run killed early can always be resumed, whatever the interval."""
    recorder = Recorder()
    Trainer(tiny_dataset(), tmp_path, tiny_config(), train_config(max_steps=3), recorder).run()
    assert recorder.checkpoint_steps == [1, 3]


def test_a_resumed_run_does_not_save_at_once(tmp_path):
    Trainer(tiny_dataset(), tmp_path, tiny_config(), train_config(max_steps=2)).run()
    recorder = Recorder()
    Trainer.from_run(tmp_path, tiny_dataset(), recorder, max_steps=4).run()
    assert recorder.checkpoint_steps == [4]


def test_saving_is_stretched_to_cost_at_most_two_percent(tmp_path, monkeypatch):
    clock = trainer_module._CheckpointClock(60.0, first_soon=False)
    clock.saved(took_s=3.0)
    assert clock.next_at - time.monotonic() == pytest.approx(150.0, abs=1.0)
    clock.saved(took_s=0.1)
    assert clock.next_at - time.monotonic() == pytest.approx(60.0, abs=1.0)


def test_a_full_disk_at_a_periodic_checkpoint_keeps_the_old_one_and_tries_once_more(tmp_path, monkeypatch):
    Trainer(tiny_dataset(), tmp_path, tiny_config(), train_config(max_steps=1)).run()
    before = (tmp_path / CHECKPOINT_NAME).read_bytes()
    monkeypatch.setattr(checkpoint_module, "save_file", no_space)
    recorder = Recorder()
    trainer = Trainer.from_run(tmp_path, tiny_dataset(), recorder, max_steps=4, checkpoint_interval_s=1e-6)
    with pytest.raises(trainer_module.TrainingError) as excinfo:
        trainer.run()  # the final save cannot succeed either, and says what is kept
    assert str(excinfo.value) == f"stopped: the disk is full; the last checkpoint kept is step 1 in " \
                                 f"{tmp_path / CHECKPOINT_NAME}"
    assert any("could not write checkpoint (No space left on device); training goes on and tries once more" in m
               for m in recorder.messages)
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_checkpoint_errors_name_the_file_not_the_temporary_one(tmp_path, monkeypatch):
    def safetensors_disk_full(tensors, filename, metadata=None):
        raise checkpoint_module.SafetensorError("Error while serializing: IoError(Os { code: 28, kind: "
                                                "StorageFull, message: \"No space left on device\" })")

    monkeypatch.setattr(checkpoint_module, "save_file", safetensors_disk_full)
    path = tmp_path / "model.safetensors"
    with pytest.raises(CheckpointError) as excinfo:
        save_checkpoint(path, checkpoint_module.Checkpoint({"x": torch.zeros(1)}))
    assert str(excinfo.value) == f"{path}: could not write checkpoint (No space left on device)"


def test_temporary_files_of_a_killed_save_are_removed_at_the_next_start(tmp_path):
    Trainer(tiny_dataset(), tmp_path, tiny_config(), train_config(max_steps=1)).run()
    leftovers = [tmp_path / f".{CHECKPOINT_NAME}.x1y2z3.tmp", tmp_path / f".{CHECKPOINT_NAME}.abc.tmp"]
    leftovers[0].write_bytes(b"")
    leftovers[1].write_bytes(b"\0" * 1000)
    Trainer.from_run(tmp_path, tiny_dataset(), max_steps=2).run()
    assert not any(p.exists() for p in leftovers)


# ----------------------------------------------------------------------------------- training: metrics


def metrics_steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / METRICS_NAME).read_text().splitlines()]


def test_steps_in_metrics_never_run_backwards_after_a_kill(tmp_path):
    """A killed run recorded steps past its last checkpoint; the resumed run trains them again."""
    Trainer(tiny_dataset(), tmp_path, tiny_config(), train_config(max_steps=2)).run()
    with open(tmp_path / METRICS_NAME, "a") as f:
        f.write(json.dumps({"step": 3}) + "\n" + json.dumps({"step": 4}) + "\n" + '{"step": 5, "kl": 0.')
    Trainer.from_run(tmp_path, tiny_dataset(), max_steps=4).run()
    assert metrics_steps(tmp_path) == [1, 2, 3, 4]


def test_a_fresh_run_into_a_folder_with_old_metrics_starts_them_again(tmp_path):
    (tmp_path / METRICS_NAME).write_text(json.dumps({"step": 40}) + "\n")
    Trainer(tiny_dataset(), tmp_path, tiny_config(), train_config(max_steps=2)).run()
    assert metrics_steps(tmp_path) == [1, 2]


def test_a_full_disk_during_a_metrics_append_leaves_no_torn_line(tmp_path, monkeypatch):
    real_write = os.write
    calls = []

    def write_half_then_fail(fd, data):
        calls.append(1)
        if len(calls) == 2:
            real_write(fd, bytes(data[:10]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(trainer_module.os, "write", write_half_then_fail)
    recorder = Recorder()
    Trainer(tiny_dataset(), tmp_path, tiny_config(), train_config(max_steps=3), recorder).run()
    assert metrics_steps(tmp_path) == [1, 3]
    assert any(m == f"{tmp_path / METRICS_NAME}: could not record metrics (No space left on device); training goes "
                    f"on and tries once more" for m in recorder.messages)


def test_info_reads_past_a_torn_last_metrics_line(tmp_path, capsys):
    Trainer(tiny_dataset(), tmp_path, tiny_config(), train_config(max_steps=2)).run()
    with open(tmp_path / METRICS_NAME, "a") as f:
        f.write('{"step": 3, "kl": 0.')
    assert main(["info", str(tmp_path)]) == 0
    assert "step: 2" in capsys.readouterr().out


# ----------------------------------------------------------------------------------- signals (subprocesses)


def start_training(folder: Path, run: Path, tmp_path: Path, *options: object) -> subprocess.Popen:
    return subprocess.Popen(cli_command("train", folder, "--out", run, *options, *TINY_NETWORK), cwd=REPO,
                            env=cli_environment(tmp_path), stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_save_the_current_step_and_exit_cleanly(signum, face_folder, tmp_path):
    run = tmp_path / "run"
    process = start_training(face_folder, run, tmp_path, "--max-steps", 10**6)
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("training on"):
            break
    while not (run / METRICS_NAME).is_file() or not (run / METRICS_NAME).read_text().strip():
        time.sleep(0.1)
    process.send_signal(signum)
    _, rest = process.communicate(timeout=300)
    assert process.returncode == 0 and "Traceback" not in rest, rest
    state = load_checkpoint(run / CHECKPOINT_NAME).meta["training_state"]
    assert state["step"] >= metrics_steps(run)[-1]  # nothing recorded was lost
    if signum == signal.SIGTERM:
        assert f"training stopped at step {state['step']}" in rest


def test_ctrl_c_while_starting_is_a_quiet_exit(face_folder, tmp_path):
    process = start_training(face_folder, tmp_path / "run", tmp_path, "--max-steps", 5)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "vaegan: interrupted"


def test_an_interrupted_attribute_save_is_finished_by_resume(face_folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(face_folder), "--out", str(run), "--max-steps", "2", *TINY_NETWORK]) == 0
    checkpoint = load_checkpoint(run / CHECKPOINT_NAME)
    del checkpoint.meta["attributes"]
    checkpoint.tensors.pop("attr.vectors")
    save_checkpoint(run / CHECKPOINT_NAME, checkpoint)  # as a kill before the vectors were written leaves it
    assert main(["resume", str(run), "--threads", "1"]) == 0
    assert load_checkpoint_meta(run / CHECKPOINT_NAME)["attributes"] == ["neutral", "smiling"]
    assert "was not made explorer-ready" in capsys.readouterr().err


# ----------------------------------------------------------------------------------- CLI settings and outputs


def run_cli(*args: object) -> tuple[int, str]:
    """Exit code and stderr of one in-process `vaegan` call."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, err.getvalue()


LIMITS = {
    "grid of a million faces": (["--rows", "1000", "--cols", "1000"], "--rows: must be from 1 to 64"),
    "100000 threads": (["--threads", "100000"], "--threads: must be from 1"),
    "seed 2**70": (["--seed", str(2**70)], "--seed: must be from 0 to"),
    "a word for a seed": (["--seed", "many"], "expected a whole number, got 'many'"),
    "temperature nan": (["--temperature", "nan"], "--temperature: must be a number from 0"),
    "temperature inf": (["--temperature", "inf"], "--temperature"),
}


@pytest.mark.parametrize("case", LIMITS)
def test_settings_that_drive_memory_or_time_have_limits(case, tiny_model_path, tmp_path):
    options, expected = LIMITS[case]
    code, err = run_cli("sample", tiny_model_path, "--out", tmp_path / "s.png", *options)
    assert code == 2 and err.count("\n") == 1 and expected in err, err


def test_attribute_strengths_must_be_finite(tiny_model_path, face_image_file, tmp_path):
    for strength in ("inf", "nan", "1e9"):
        code, err = run_cli("edit", tiny_model_path, face_image_file, "--attribute", f"Smiling={strength}",
                            "--out", tmp_path / "e.png")
        assert code == 2 and "strength of Smiling must be a number from -1000 to 1000" in err, err


@pytest.mark.parametrize("steps", ["100000", "1"])
def test_interpolation_steps_have_limits(steps, tiny_model_path, face_image_file, tmp_path):
    code, err = run_cli("interpolate", tiny_model_path, face_image_file, face_image_file, "--steps", steps,
                        "--out", tmp_path / "p.png")
    assert code == 2 and "--steps: must be from 2 to 1,000" in err


def test_training_steps_and_interval_have_limits(face_folder, tmp_path):
    for options, expected in ((["--max-steps", str(10**12)], "--max-steps"),
                              (["--checkpoint-interval", "0"], "--checkpoint-interval"),
                              (["--checkpoint-interval", "nan"], "--checkpoint-interval")):
        code, err = run_cli("train", face_folder, "--out", tmp_path / "run", *options)
        assert code == 2 and expected in err, err


def test_train_refuses_an_empty_out_and_a_run_folder_inside_the_data(face_folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = run_cli("train", face_folder, "--out", "")
    assert code == 2 and "--out is empty" in err
    for out in (face_folder, face_folder / "run"):
        code, err = run_cli("train", face_folder, "--out", out)
        assert code == 2 and "inside the data folder" in err
    assert not (face_folder / "run").exists() and not (tmp_path / METRICS_NAME).exists()


def test_an_out_folder_below_a_file_is_named(tiny_model_path, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, err = run_cli("sample", tiny_model_path, "--out", blocker / "sub" / "s.png")
    assert code == 2 and f"cannot create the folder {blocker / 'sub'}: {blocker} is a file" in err


def test_a_read_only_folder_is_named_not_a_temporary_file(tiny_model_path, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        code, err = run_cli("sample", tiny_model_path, "--out", folder / "s.png")
        assert code == 2 and f"cannot write into {folder} (permission denied)" in err
    finally:
        folder.chmod(0o755)


def test_project_refuses_a_dangling_link(tiny_model_path, face_folder, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "map.csv"
    link.symlink_to(elsewhere / "target.csv")
    code, err = run_cli("project", tiny_model_path, face_folder, "--out", link)
    assert code == 2 and "link to a missing file" in err
    assert list(elsewhere.iterdir()) == []


def test_project_overwrite_on_a_full_disk_keeps_the_old_csv(tiny_model_path, face_folder, tmp_path, monkeypatch):
    target = tmp_path / "map.csv"
    target.write_text("name,x,y\nmine,1,2\n")
    monkeypatch.setattr(checkpoint_module.os, "fsync", no_space)
    code, err = run_cli("project", tiny_model_path, face_folder, "--out", target, "--overwrite")
    assert code == 2 and f"{target}: could not write (No space left on device)" in err
    assert target.read_text() == "name,x,y\nmine,1,2\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_project_overwrite_writes_the_new_csv(tiny_model_path, face_folder, tmp_path):
    target = tmp_path / "map.csv"
    target.write_text("old\n")
    assert run_cli("project", tiny_model_path, face_folder, "--out", target, "--overwrite")[0] == 0
    assert target.read_text().splitlines()[0] == "name,x,y" and len(target.read_text().splitlines()) == 41


# ----------------------------------------------------------------------------------- decoded-image cache


def test_a_replaced_picture_with_its_size_and_time_kept_is_not_served_from_the_cache(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(4):  # BMP: pictures of one size make files of one size
        Image.fromarray(synthetic_face(i)).save(folder / f"{i}.bmp")
    first = load_image_folder(folder, crop="none", min_images=1, cache_dir=tmp_path / "cache")
    target, replacement = folder / "0.bmp", tmp_path / "replacement.bmp"
    Image.fromarray(synthetic_face(9)).save(replacement)
    kept = target.stat()
    shutil.copyfile(replacement, target)  # then the time kept, as cp -p, rsync -t and tar do
    os.utime(target, ns=(kept.st_atime_ns, kept.st_mtime_ns))
    assert target.stat().st_size == kept.st_size and target.stat().st_mtime_ns == kept.st_mtime_ns
    second = load_image_folder(folder, crop="none", min_images=1, cache_dir=tmp_path / "cache")
    assert second.summary["cache"] == "built"
    assert not torch.equal(first.images[0], second.images[0])


def test_old_cache_entries_are_pruned(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    now = time.time()
    ages = {"recent": 0, "old": 40 * 24 * 3600, "older": 400 * 24 * 3600}
    for name, age in ages.items():
        entry = cache / f"{name}.safetensors"
        entry.write_bytes(b"\0" * 1000)
        os.utime(entry, (now - age, now - age))
    leftover = cache / ".x.safetensors.123.tmp"
    leftover.write_bytes(b"\0")
    os.utime(leftover, (now - 7200, now - 7200))
    prune_cache(cache)
    assert sorted(p.name for p in cache.iterdir()) == ["recent.safetensors"]
    (cache / "recent.safetensors").unlink()
    for i in range(5):
        (cache / f"{i}.safetensors").write_bytes(b"\0" * 1000)
        os.utime(cache / f"{i}.safetensors", (now - i, now - i))
    prune_cache(cache, max_bytes=2500)
    assert sorted(p.name for p in cache.iterdir()) == ["0.safetensors", "1.safetensors"]


# ----------------------------------------------------------------------------------- JPEGs


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(synthetic_face(5)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_a_jpeg_missing_only_its_end_marker_is_read(tmp_path):
    data = jpeg_bytes()
    whole, cut = tmp_path / "whole.jpg", tmp_path / "no_end.jpg"
    whole.write_bytes(data)
    cut.write_bytes(data[:-2])
    assert np.array_equal(np.asarray(open_image(cut)), np.asarray(open_image(whole)))


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_a_jpeg_cut_inside_its_picture_data_is_still_refused(keep, tmp_path):
    data = jpeg_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(ImageLoadError, match="truncated"):
        open_image(cut)


def test_the_message_for_a_bad_picture_names_it(tmp_path, tiny_model_path):
    bad = tmp_path / "face.png"
    bad.write_bytes(b"not a picture at all")
    code, err = run_cli("reconstruct", tiny_model_path, bad, "--out", tmp_path / "r.png")
    assert code == 2 and str(bad) in err and "BytesIO" not in err
    assert re.search(r"not an image|cannot", err)


def test_a_full_disk_names_the_picture_it_could_not_write(tiny_model_path, tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint_module.os, "fsync", no_space)
    target = tmp_path / "out" / "s.png"
    code, err = run_cli("sample", tiny_model_path, "--out", target)
    assert code == 2 and err == f"vaegan: error: {target}: No space left on device\n"
    assert list(target.parent.iterdir()) == []


def test_a_preview_that_cannot_be_written_does_not_end_training(face_folder, tmp_path, monkeypatch):
    monkeypatch.setattr(cli_module, "save_image", no_space)
    code, err = run_cli("train", face_folder, "--out", tmp_path / "run", "--max-steps", "2", *TINY_NETWORK)
    assert code == 0 and "could not write a preview" in err
    assert load_checkpoint_meta(tmp_path / "run" / CHECKPOINT_NAME)["training_state"]["step"] == 2
