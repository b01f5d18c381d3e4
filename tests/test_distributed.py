"""`torchrun -m core.cli train` with two CPU processes (gloo).

The two ranks train on different shards with different noise, so their weights stay identical only if
every gradient is averaged across them; the CLI compares a digest of each rank's parameters after
training and fails (exit 2) when they differ.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from core.checkpoint import load_checkpoint
from core.cli import PREVIEW_FOLDER
from core.trainer import CHECKPOINT_NAME, METRICS_NAME

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_training_keeps_replicas_identical(face_folder, tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
               "-m", "core.cli", "train", str(face_folder), "--out", str(run), "--max-steps", "3",
               "--batch-size", "4", "--width", "0.125", "--latent-dim", "8", "--kernel-size", "4",
               "--device", "cpu", "--crop", "none", "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "weights identical on all 2 processes" in result.stderr

    state = load_checkpoint(run / CHECKPOINT_NAME).meta["training_state"]
    assert state["step"] == 3 and state["images_seen"] == 3 * 4 * 2
    records = [json.loads(line) for line in (run / METRICS_NAME).read_text().splitlines()]
    assert records and records[-1]["step"] == 3  # written once, by rank 0
    assert sorted(p.name for p in run.iterdir()) == [CHECKPOINT_NAME, METRICS_NAME, PREVIEW_FOLDER]
    assert [p.name for p in (run / PREVIEW_FOLDER).iterdir()] == ["step_000003.png"]
