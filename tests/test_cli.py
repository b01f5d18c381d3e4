"""The `vaegan` command line: a tiny end-to-end run, and one clear error line (exit 2) for every bad input."""
from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from core.api import load_model
from core.checkpoint import load_checkpoint
from core.cli import main
from core.schema import META_KEYS
from core.trainer import CHECKPOINT_NAME, METRICS_NAME

REPO = Path(__file__).resolve().parents[1]
TINY_NETWORK = ("--batch-size", "4", "--width", "0.125", "--latent-dim", "8", "--kernel-size", "4",
                "--device", "cpu", "--crop", "none", "--threads", "1")
TINY_TRAINING = ("--max-steps", "3", *TINY_NETWORK)
TILE, PAD = 64, 2


def vaegan(*args: object) -> int:
    return main([str(a) for a in args])


def grid_size(columns: int, rows: int) -> tuple[int, int]:
    return columns * TILE + (columns + 1) * PAD, rows * TILE + (rows + 1) * PAD


def test_train_then_use_the_model_end_to_end(face_folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert vaegan("train", face_folder, "--out", run, *TINY_TRAINING) == 0
    checkpoint = run / CHECKPOINT_NAME
    meta = load_checkpoint(checkpoint).meta
    assert set(meta) <= set(META_KEYS)   # one home for the checkpoint's names: core.schema
    assert meta["training_state"]["step"] == 3
    assert meta["attributes"] == ["neutral", "smiling"]  # from the sub-folders, stored after training
    finished = load_model(run, device="cpu")  # the run's one model file is explorer-ready
    assert finished.path == checkpoint and len(finished.reference.latents) == 40
    assert finished.latent_gaussian is not None and finished.reference.label_names == ("neutral", "smiling")
    assert meta["data"]["crop"] == "none" and meta["data"]["images"] == 40
    preview = Image.open(run / "previews" / "step_000003.png")  # written at the last step
    assert preview.size == (2 * grid_size(8, 4)[0], 2 * grid_size(8, 4)[1])

    capsys.readouterr()
    assert vaegan("info", run) == 0
    info = capsys.readouterr().out
    for expected in ("kind: training", "latent_dim: 8", "step: 3", "attributes: neutral, smiling", "label_source: folders"):
        assert expected in info

    faces = sorted(face_folder.rglob("*.jpg"))
    assert vaegan("reconstruct", run, faces[0], faces[1], "--out", tmp_path / "recon.png") == 0
    assert Image.open(tmp_path / "recon.png").size == grid_size(2, 2)
    assert vaegan("reconstruct", checkpoint, faces[0], faces[1], "--out", tmp_path / "recon_dir") == 0
    assert sorted(p.name for p in (tmp_path / "recon_dir").iterdir()) == [
        f"{faces[0].stem}_crop.png", f"{faces[0].stem}_recon.png", f"{faces[1].stem}_crop.png",
        f"{faces[1].stem}_recon.png"]

    assert vaegan("sample", run, "--rows", 2, "--cols", 3, "--out", tmp_path / "samples.png") == 0
    assert Image.open(tmp_path / "samples.png").size == grid_size(3, 2)

    assert vaegan("interpolate", run, *faces[:3], "--steps", 5, "--out", tmp_path / "path.png") == 0
    assert Image.open(tmp_path / "path.png").size == grid_size(5, 1)
    assert vaegan("interpolate", run, *faces[:2], "--steps", 5, "--method", "slerp", "--pingpong",
                  "--out", tmp_path / "path.gif") == 0
    assert Image.open(tmp_path / "path.gif").n_frames == 2 * 5 - 2

    assert vaegan("edit", run, faces[0], "--attribute", "smiling=1.5", "--attribute", "Neutral=-0.5",
                  "--out", tmp_path / "edit.png") == 0
    assert Image.open(tmp_path / "edit.png").size == (TILE, TILE)
    assert vaegan("edit", run, faces[0], "--attribute", "smiling=1.5", "--compare", "--out", tmp_path / "cmp.png") == 0
    assert Image.open(tmp_path / "cmp.png").size == grid_size(3, 1)

    assert vaegan("project", run, face_folder, "--out", tmp_path / "map.csv") == 0
    rows = list(csv.reader((tmp_path / "map.csv").open()))
    assert rows[0] == ["name", "x", "y"] and len(rows) == 41
    assert all(len(r) == 3 and math.isfinite(float(r[1])) and math.isfinite(float(r[2])) for r in rows[1:])

    assert vaegan("resume", run, "--max-steps", 4, "--anneal-steps", 2, "--lr", 1e-4, "--gamma", 0.02,
                  "--threads", 1) == 0
    resumed = load_checkpoint(checkpoint).meta
    assert resumed["training_state"]["step"] == 4 and resumed["attributes"] == ["neutral", "smiling"]
    assert resumed["reference"]["count"] == 40
    assert resumed["train_config"]["anneal_steps"] == 2 and resumed["train_config"]["gamma"] == 0.02
    assert resumed["train_config"]["lr"] == 1e-4
    steps = [json.loads(line)["step"] for line in (run / METRICS_NAME).read_text().splitlines()]
    assert steps == [3, 4]


def corrupt_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(bytes(range(256)) * 8)
    return path


def run_folder_holding(model_path: Path, tmp_path: Path) -> Path:
    run = tmp_path / "existing_run"
    run.mkdir()
    shutil.copy(model_path, run / CHECKPOINT_NAME)
    return run


def small_folder(face_image_file: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "two_faces"
    folder.mkdir()
    for i in range(2):
        shutil.copy(face_image_file, folder / f"{i}.png")
    return folder


BAD_INPUTS = {
    "missing data folder": (lambda t, m, f, i: ["train", t / "nowhere", "--out", t / "run"], "no such data folder"),
    "run exists": (lambda t, m, f, i: ["train", f, "--out", run_folder_holding(m, t)], "vaegan resume"),
    "bad width": (lambda t, m, f, i: ["train", f, "--out", t / "run", "--width", "100"], "width"),
    "bad batch": (lambda t, m, f, i: ["train", f, "--out", t / "run", "--batch-size", "1"], "--batch-size: must be from 2"),
    "bad annealing": (lambda t, m, f, i: ["train", f, "--out", t / "run", "--anneal-steps", "-5"], "annealing"),
    "bad gamma": (lambda t, m, f, i: ["train", f, "--out", t / "run", "--gamma", "nan"], "gamma"),
    "bad KL weight": (lambda t, m, f, i: ["train", f, "--out", t / "run", "--kl-weight", "0"], "KL weight"),
    "missing model to start from": (lambda t, m, f, i: ["train", f, "--out", t / "run", "--init-from",
                                                        t / "nope.safetensors"], "no such model file"),
    "corrupt model to start from": (lambda t, m, f, i: ["train", f, "--out", t / "run", "--init-from",
                                                        corrupt_file(t, "bad.safetensors")], "bad.safetensors"),
    "bad warm-up": (lambda t, m, f, i: ["train", f, "--out", t / "run", "--discriminator-warmup", "-1"], "warm-up"),
    "unknown device": (lambda t, m, f, i: ["train", f, "--out", t / "run", "--device", "tpu"], "unknown device"),
    "too few images": (lambda t, m, f, i: ["train", small_folder(i, t), "--out", t / "run", "--crop", "none"],
                       "only 2 usable images"),
    "corrupt checkpoint": (lambda t, m, f, i: ["info", corrupt_file(t, "bad.safetensors")], "bad.safetensors"),
    "corrupt model for sample": (lambda t, m, f, i: ["sample", corrupt_file(t, "bad.safetensors"), "--out",
                                                     t / "s.png"], "not a readable checkpoint"),
    "no checkpoint in run": (lambda t, m, f, i: ["resume", t], "no such checkpoint"),
    "inference model resumed": (lambda t, m, f, i: ["resume", run_folder_holding(m, t)], "inference-only"),
    "missing image": (lambda t, m, f, i: ["reconstruct", m, t / "nope.png", "--out", t / "r.png"],
                      "no such image file"),
    "corrupt image": (lambda t, m, f, i: ["reconstruct", m, corrupt_file(t, "x.png"), "--out", t / "r.png"],
                      "not an image"),
    "unknown attribute": (lambda t, m, f, i: ["edit", m, i, "--attribute", "Beard=1", "--out", t / "e.png"],
                          "has: Eyeglasses, Smiling"),
    "malformed edit": (lambda t, m, f, i: ["edit", m, i, "--attribute", "Smiling", "--out", t / "e.png"],
                       "NAME=STRENGTH"),
    "existing output": (lambda t, m, f, i: ["sample", m, "--out", i], "--overwrite"),
    "one image to interpolate": (lambda t, m, f, i: ["interpolate", m, i, "--out", t / "p.gif"], "at least two"),
    "wrong output type": (lambda t, m, f, i: ["project", m, f, "--out", t / "map.txt"], ".csv"),
    "unknown command": (lambda t, m, f, i: ["explode"], "invalid choice"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_exits_2_with_one_error_line(case, tmp_path, tiny_model_path, face_folder, face_image_file, capsys):
    make_args, expected = BAD_INPUTS[case]
    before = face_image_file.read_bytes()
    code = vaegan(*make_args(tmp_path, tiny_model_path, face_folder, face_image_file))
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("vaegan: error: ") and expected in err and "Traceback" not in err
    assert face_image_file.read_bytes() == before  # never overwritten


def test_overwrite_replaces_only_when_asked(tmp_path, tiny_model_path):
    target = tmp_path / "grid.png"
    target.write_bytes(b"my own file")
    assert vaegan("sample", tiny_model_path, "--out", target) == 2
    assert target.read_bytes() == b"my own file"
    assert vaegan("sample", tiny_model_path, "--rows", 1, "--cols", 2, "--out", target, "--overwrite") == 0
    assert Image.open(target).size == grid_size(2, 1)


def cli_command(*args: object) -> list[str]:
    return [sys.executable, "-m", "core.cli", *map(str, args)]


def cli_environment(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(tmp_path / "cache")}


def test_module_entry_point_reports_errors_without_traceback(tmp_path):
    bad = corrupt_file(tmp_path, "broken.safetensors")
    result = subprocess.run(cli_command("info", bad), cwd=REPO, env=cli_environment(tmp_path),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("vaegan: error: ") and str(bad) in result.stderr


def test_help_exits_0(capsys):
    assert vaegan("--help") == 0
    assert "reconstruct" in capsys.readouterr().out


def test_ctrl_c_stops_training_cleanly_and_saves(face_folder, tmp_path):
    run = tmp_path / "run"
    process = subprocess.Popen(cli_command("train", face_folder, "--out", run, "--max-steps", 10**6, *TINY_NETWORK),
                               cwd=REPO, env=cli_environment(tmp_path), stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("training on"):
            break
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=300)
    assert process.returncode == 0, rest
    assert "Traceback" not in rest and "training stopped at step" in rest
    stopped_at = int(re.search(r"training stopped at step (\d+)", rest).group(1))
    assert load_checkpoint(run / CHECKPOINT_NAME).meta["training_state"]["step"] == stopped_at
