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

import numpy as np
import torch

from conftest import synthetic_face
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


RANK_STEPS = 240
STOP_AT = 220
NAN_STEP = 60


def train_rank(rank: int, port: int, run: str, out: str) -> None:
    """One of two gloo processes: rank 1 trains on all-dark pictures (so its Dis balance differs from
    rank 0's), reports a non-finite loss once, and rank 0 alone is asked to stop; both must agree on all."""
    from datetime import timedelta

    import torch.distributed as dist

    import core.trainer as trainer_module
    from core.dataset import FaceDataset
    from core.model import ModelConfig
    from core.trainer import Trainer, TrainConfig, TrainerCallbacks

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2, timeout=timedelta(seconds=20))
    images = torch.from_numpy(np.stack([synthetic_face(i) for i in range(16)])).permute(0, 3, 1, 2)
    data = FaceDataset(torch.zeros_like(images) if rank else images.contiguous(), [f"{i}" for i in range(16)])
    step_fn = trainer_module.vaegan_step

    def step_with_one_bad_loss(model, x, opt, settings, autocast, generator, **kwargs):
        metrics = step_fn(model, x, opt, settings, autocast, generator, **kwargs)
        if rank == 1 and trainer.step == NAN_STEP:
            metrics["gen"] = float("nan")
        return metrics

    class StopOnRankZero(TrainerCallbacks):
        def on_metrics(self, record: dict[str, float]) -> None:
            if rank == 0 and record["step"] >= STOP_AT:
                trainer.stop()

    trainer_module.vaegan_step = step_with_one_bad_loss
    config = ModelConfig(image_size=64, latent_dim=8, width=0.125, kernel_size=4)
    trainer = Trainer(data, run, config, TrainConfig(batch_size=4, max_steps=RANK_STEPS, device="cpu",
                                                    mixed_precision=False, log_interval=10, preview_interval=10_000,
                                                    checkpoint_interval_s=1e9), StopOnRankZero())
    trainer.run()
    weights = {name: p.detach().double().sum().item() for name, p in trainer.model.named_parameters()}
    Path(out).write_text(json.dumps({"step": trainer.step, "weights": weights,
                                     "rollbacks": trainer.history["rollbacks"]}))
    dist.barrier()  # as core.cli.process_group does: neither rank leaves while the other still talks to it
    dist.destroy_process_group()


def test_ranks_with_different_data_stay_in_step_and_identical(tmp_path):
    """Local decisions would differ (Dis balance on dark vs face pictures, one rank's non-finite loss, a stop
    asked of one rank); taken from all-reduced values they agree, so neither rank hangs or drifts."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")]), "OMP_NUM_THREADS": "1"}
    outs = [tmp_path / f"rank{rank}.json" for rank in range(2)]
    code = "import sys; from test_distributed import train_rank; train_rank(int(sys.argv[1]), *sys.argv[2:])"
    ranks = [subprocess.Popen([sys.executable, "-c", code, str(rank), str(port), str(tmp_path / "run"), str(out)],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for rank, out in enumerate(outs)]
    try:
        logs = [rank.communicate(timeout=120)[0] for rank in ranks]
    finally:
        for rank in ranks:
            rank.kill()
    assert [rank.returncode for rank in ranks] == [0, 0], "\n".join(log[-2000:] for log in logs)
    results = [json.loads(out.read_text()) for out in outs]
    assert results[0]["step"] == results[1]["step"] >= STOP_AT and results[0]["step"] < RANK_STEPS
    assert results[0]["rollbacks"] == results[1]["rollbacks"] == 1
    assert results[0]["weights"] == results[1]["weights"]
