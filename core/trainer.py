"""Training loop usable from a background thread: callbacks, pause/resume/stop, NaN rollback,
deterministic resume, metrics.jsonl, atomic checkpoints, optional torch.distributed data parallelism."""
from __future__ import annotations

import copy
import errno
import json
import math
import os
import shutil
import threading
import time
from collections import Counter
from contextlib import suppress
from dataclasses import asdict, dataclass, fields, replace
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import torch
import torch.distributed as dist

from core.api import load_model
from core.augment import parse_policy
from core.checkpoint import Checkpoint, CheckpointError, flatten_optimizer, load_checkpoint_meta, \
    load_model_checkpoint, remove_stale_temporaries, save_checkpoint, unflatten_optimizer, write_text_atomically
from core.dataset import BatchSampler, FaceDataset, device_batch, to_signed
from core.device import autocast_for, resolve_device, uses_channels_last
from core.errors import one_line
from core.ema import WeightAverage
from core.latent import LatentGaussian, fit_latent_gaussian
from core.model import VAEGAN, ModelConfig
from core.schema import (DATA, DECODER, DISCRIMINATOR, ENCODER, KIND, KIND_TRAINING, LABEL_NAMES, MODEL_CONFIG,
                         NETWORK_PARTS, OPTIMIZER, OPTIMIZER_STATE, RANDOM_FACES, RAW_WEIGHTS, TRAIN_CONFIG,
                         TRAINING_STATE, in_groups)
from core.steps import Optimizers, StepSettings, vae_step, vaegan_step

CHECKPOINT_NAME = "checkpoint.safetensors"
METRICS_NAME = "metrics.jsonl"
STEP, EPOCH, LR, TIME = "step", "epoch", "lr", "time"
IMAGES_PER_S, ETA_S, ELAPSED_S = "images_per_s", "eta_s", "elapsed_s"
"""What each metrics record adds to its steps' averaged metrics (core.steps): where the run is, its speed, its clock."""
MAX_ROLLBACKS_IN_A_ROW = 5
PAUSE_POLL_S = 0.5
"""While any data-parallel process is paused, all of them check this often whether to go on."""
SAMPLER_FIT_FACES = 2000
MAX_PLANNED_STEPS = 10**9
"""A run planned in minutes has this many steps until its speed is measured."""
SAVE_COST_SHARE = 0.02
"""Checkpoints come at most this often: every checkpoint_interval_s, or less often when a save takes longer
than this share of that time."""
WRITES_FAILED_IN_A_ROW = 2
"""A checkpoint, metrics record or preview that fails to be written this many times in a row stops the run."""
CHECKPOINT, METRICS, PREVIEW = "checkpoint", "metrics", "preview"
"""What a run writes, each with its own count of failures in a row."""


class TrainingError(RuntimeError):
    """Training cannot go on (bad settings, or it kept diverging)."""


@dataclass(frozen=True)
class TrainConfig:
    """How a run trains. The CLI flags of `vaegan train`/`resume` and the Train panel's settings are generated from
    these fields (core.options): a field's docstring is its help text."""

    batch_size: int = 64
    """pictures per training step (paper: 64)"""
    epochs: int | None = None
    """passes over the data (default 10)"""
    max_steps: int | None = None
    """optimisation steps in total"""
    max_minutes: float | None = None
    """train for about this many minutes: the step count is planned from the measured speed, and re-planned until
    the learning-rate anneal begins (--max-steps or --epochs, if given, caps it; in the Train panel, Epochs does)"""
    lr: float = 3e-4
    """learning rate of Adam (RMSprop in the paper)"""
    anneal_steps: int = 0
    """over the run's last N steps the learning rate falls linearly to a tenth (the authors anneal)"""
    anneal_share: float = 0.0
    """the same over this share of the run's steps, e.g. 0.2 (for runs planned in minutes); --anneal-steps wins"""
    beta1: float = 0.5
    """Adam's first-moment decay (0.5 is usual for GANs)"""
    gamma: float = StepSettings.gamma
    """weight of the feature loss against the GAN term in the decoder's loss"""
    kl_weight: float = StepSettings.kl_weight
    """weight of L_prior, the KL term that keeps latents near N(0, I)"""
    seed: int = 0
    """seed of the weights' initialisation and of the batch order"""
    device: str = "auto"
    """auto, cpu, cuda[:N] or mps"""
    mixed_precision: bool = True
    """bfloat16 autocast where it is fast (CUDA GPUs and CPUs with native bfloat16); off elsewhere"""
    log_interval: int = 20
    """record the losses every this many steps"""
    preview_interval: int = 200
    """refresh the preview samples and reconstructions every this many steps"""
    checkpoint_interval_s: float = 60.0
    """save a checkpoint this often; a run killed outright loses at most about this much training time (a stop,
    Ctrl+C, SIGTERM or SIGHUP always saves one)"""
    num_threads: int | None = None
    """CPU threads for torch (default: all cores, shared among torchrun processes)"""
    init_from: str | None = None
    """start Enc and Dec from a trained model, a run or an inference file (its architecture replaces --image-size
    etc.)"""
    discriminator_warmup_steps: int = 0
    """the first N steps train only Dis, so a fresh Dis catches up with a pretrained Enc/Dec (useful with
    --init-from)"""
    freeze_encoder: bool = False
    """train only Dec and Dis, Enc as loaded (needs --init-from): fine-tunes a model's decoder while its latent
    space, attribute vectors and map stay as they are"""
    ema_decay: float = 0.0
    """above 0, e.g. 0.999: keep a moving average of Enc and Dec weights for inference (core.ema); 0 is off"""
    augment: str = ""
    """DiffAugment what Dis sees: comma-separated color,translation,cutout (core.augment.POLICIES), or none"""
    r1_weight: float = StepSettings.r1_weight
    """GAMMA of the R1 penalty GAMMA/2 |grad D(x)|^2 on real images; 0 is off"""
    lowpass_sigma: float = StepSettings.lowpass_sigma
    """above 0, e.g. 0.2: the reconstruction loss also compares 4x4 block means of x and its reconstruction (a
    Gaussian with this noise, in [-1, 1] units), which holds colours and identity while Dis_l judges detail; 0 is off"""
    equilibrium_rule: bool = StepSettings.equilibrium_rule
    """the authors' rule that skips Dis or the GAN term when one side wins"""

    def __post_init__(self) -> None:
        if self.batch_size < 2:
            raise ValueError(f"batch size must be at least 2, got {self.batch_size}")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max steps must be at least 1, got {self.max_steps}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"learning rate must be a positive number, got {self.lr}")
        if not (self.gamma >= 0 and math.isfinite(self.gamma)):
            raise ValueError(f"gamma must be a number of at least 0, got {self.gamma}")
        if not (self.kl_weight > 0 and math.isfinite(self.kl_weight)):
            raise ValueError(f"the KL weight must be a positive number, got {self.kl_weight}")
        if self.anneal_steps < 0:
            raise ValueError(f"annealing steps must not be negative, got {self.anneal_steps}")
        if not 0 <= self.anneal_share < 1:
            raise ValueError(f"the annealed share must be at least 0 and below 1, got {self.anneal_share}")
        if self.max_minutes is not None and not (self.max_minutes > 0 and math.isfinite(self.max_minutes)):
            raise ValueError(f"max minutes must be a positive number, got {self.max_minutes}")
        if not (self.checkpoint_interval_s > 0 and math.isfinite(self.checkpoint_interval_s)):
            raise ValueError(f"the checkpoint interval must be a positive number of seconds, got "
                             f"{self.checkpoint_interval_s}")
        if self.discriminator_warmup_steps < 0:
            raise ValueError(f"discriminator warm-up steps must not be negative, got {self.discriminator_warmup_steps}")
        if self.freeze_encoder and not self.init_from:
            raise ValueError("freezing the encoder needs a model to start from (--init-from)")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"EMA decay must be at least 0 and below 1, got {self.ema_decay}")
        if not (self.r1_weight >= 0 and math.isfinite(self.r1_weight)):
            raise ValueError(f"the R1 weight must be a number of at least 0, got {self.r1_weight}")
        if not (self.lowpass_sigma >= 0 and math.isfinite(self.lowpass_sigma)):
            raise ValueError(f"the low-pass sigma must be a number of at least 0, got {self.lowpass_sigma}")
        object.__setattr__(self, "augment", ",".join(parse_policy(self.augment)))   # canonical, as recorded

    def step_settings(self) -> StepSettings:
        return StepSettings(gamma=self.gamma, kl_weight=self.kl_weight, equilibrium_rule=self.equilibrium_rule,
                            augment=parse_policy(self.augment), r1_weight=self.r1_weight,
                            lowpass_sigma=self.lowpass_sigma, encoder_frozen=self.freeze_encoder)

    def total_steps(self, steps_per_epoch: int) -> int:
        """The planned step count (for a run planned in minutes: its cap, until its speed is measured)."""
        if self.max_steps is not None:
            return self.max_steps
        if self.max_minutes is not None and self.epochs is None:
            return MAX_PLANNED_STEPS
        return (self.epochs or 10) * steps_per_epoch

    def annealed_steps(self, total_steps: int) -> int:
        return self.anneal_steps or round(self.anneal_share * total_steps)

    def lr_at(self, step: int, total_steps: int) -> float:
        """Learning rate for optimisation step `step` (0-based) of a run of `total_steps`."""
        annealed = self.annealed_steps(total_steps)
        start = total_steps - annealed
        if annealed == 0 or step < start:
            return self.lr
        done = min(1.0, (step - start + 1) / annealed)
        return self.lr * (1.0 - 0.9 * done)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Preview:
    step: int
    samples: torch.Tensor
    """Decodes of fixed prior vectors, N x 3 x H x W in [0, 1]."""
    originals: torch.Tensor
    reconstructions: torch.Tensor


class TrainerCallbacks:
    """Override what you need; every method is called on the training thread."""

    def on_metrics(self, record: dict[str, float]) -> None: ...
    def on_message(self, text: str) -> None: ...
    def on_preview(self, preview: Preview) -> None:
        """May write the preview to disk: an OSError it raises counts as a failed write of the run's files."""
    def on_checkpoint(self, path: Path) -> None: ...


def model_tensors(model: VAEGAN, inference_only: bool = False) -> dict[str, torch.Tensor]:
    parts = {ENCODER: model.encoder, DECODER: model.decoder}
    if model.discriminator is not None and not inference_only:
        parts[DISCRIMINATOR] = model.discriminator
    return {f"{p}.{k}": v for p, m in parts.items() for k, v in m.state_dict().items()}


def load_model_tensors(model: VAEGAN, ckpt: Checkpoint) -> None:
    """The weights training continues from: a run with EMA keeps its raw Enc and Dec as `train.enc`/`train.dec`
    (its `enc`/`dec` are the averages, which inference loads)."""
    raw = f"{RAW_WEIGHTS}." if ckpt.group(f"{RAW_WEIGHTS}.{ENCODER}") else ""
    model.encoder.load_state_dict(ckpt.group(raw + ENCODER))
    model.decoder.load_state_dict(ckpt.group(raw + DECODER))
    if model.discriminator is not None:
        model.discriminator.load_state_dict(ckpt.group(DISCRIMINATOR))


def load_pretrained_autoencoder(model: VAEGAN, path: str | Path) -> dict[str, Any]:
    """Copy Enc and Dec weights from a trained model of the same architecture (Dis stays fresh); returns
    what that model had been through (its lifetime steps, images and training time), for the record."""
    pretrained = load_model(path, device="cpu")
    ours, theirs = (replace(cfg, model_type="vaegan", spectral_norm=False)   # Dis is not copied
                    for cfg in (model.cfg, pretrained.config))
    if ours != theirs:
        raise TrainingError(f"{path}: its architecture ({theirs}) differs from this run's ({ours})")
    model.encoder.load_state_dict(pretrained.net.encoder.state_dict())
    model.decoder.load_state_dict(pretrained.net.decoder.state_dict())
    return {"model": str(path), **{key: pretrained.lifetime(key) for key in ("step", "images_seen", "elapsed_s")}}


class Trainer:
    def __init__(self, data: FaceDataset, run_dir: str | Path, model_cfg: ModelConfig | None = None,
                 train_cfg: TrainConfig | None = None, callbacks: TrainerCallbacks | None = None,
                 load_init_weights: bool = True) -> None:
        """`load_init_weights=False` skips `train_cfg.init_from` (a resumed run loads its own weights)."""
        self.model_cfg = model_cfg or ModelConfig(image_size=data.image_size)
        self.cfg = train_cfg or TrainConfig()
        if data.image_size != self.model_cfg.image_size:
            raise TrainingError(f"data is {data.image_size}px but the model expects {self.model_cfg.image_size}px")
        self.data = data
        self.run_dir = Path(run_dir)
        self.callbacks = callbacks or TrainerCallbacks()
        self.rank, self.world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        self.device = resolve_device(self.cfg.device)
        if self.device.type == "cuda" and self.world > 1:
            self.device = torch.device("cuda", self.rank % torch.cuda.device_count())
        self.channels_last = uses_channels_last(self.device)
        self.autocast = autocast_for(self.device, self.cfg.mixed_precision)
        self.sampler = BatchSampler(len(data), self.cfg.batch_size, self.cfg.seed, self.rank, self.world)
        self.total_steps = self.cfg.total_steps(self.sampler.steps_per_epoch)
        self._step_cap = self.total_steps
        torch.manual_seed(self.cfg.seed)
        self.model = VAEGAN(self.model_cfg)
        self.history: dict[str, Any] = {"rollbacks": 0}
        if self.cfg.init_from and load_init_weights:
            self.history["started_from"] = load_pretrained_autoencoder(self.model, self.cfg.init_from)
        self.model = self.model.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizers = self._make_optimizers()
        self.settings = self.cfg.step_settings()
        self.images = self._place_images(data.images)
        self.step = 0
        self.elapsed_s = 0.0
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._good_state: dict | None = None
        self._write_failures: Counter[str] = Counter()
        self._unwritable: str | None = None
        """Why the run's files cannot be written (the run stops), or None."""
        self._speed_origin: tuple[int, float] | None = None
        """(step, elapsed_s) from which a run planned in minutes measures its speed."""
        self.awaiting_speed = (self.cfg.max_minutes is not None and self.cfg.max_steps is None
                               and self.cfg.epochs is None)
        """A run planned in minutes that has no step count yet (total_steps is a placeholder until it has)."""
        self._sync_initial_weights()
        self.ema = WeightAverage(self.model, self.cfg.ema_decay) if self.cfg.ema_decay > 0 else None

    # ----- control, callable from any thread -----
    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        """Continue after pause(). (`Trainer.from_run` continues a saved run.)"""
        self._running.set()

    def stop(self) -> None:
        """Stop after the current step and save a checkpoint at it."""
        self._stop.set()
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / CHECKPOINT_NAME

    # ----- setup -----
    def _make_optimizers(self) -> Optimizers:
        def adam(module: torch.nn.Module | None) -> torch.optim.Optimizer | None:
            if module is None:
                return None
            return torch.optim.Adam(module.parameters(), lr=self.cfg.lr, betas=(self.cfg.beta1, 0.999))

        return Optimizers(adam(self.model.encoder), adam(self.model.decoder), adam(self.model.discriminator))

    def _place_images(self, images: torch.Tensor) -> torch.Tensor:
        """Keep the decoded set on the GPU when it takes under a quarter of free memory."""
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            if images.numel() < free // 4:
                return images.to(self.device)
        return images

    def _sync_initial_weights(self) -> None:
        if self.world > 1:
            for p in self.model.state_dict().values():
                dist.broadcast(p, src=0)

    # ----- the loop -----
    def run(self) -> Path | None:
        """Train until the planned step count or stop(); returns the last checkpoint written."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.rank == 0:
            remove_stale_temporaries(self.run_dir)
            self._forget_metrics_after(self.step)
        fixed_z, fixed_index = self._preview_inputs()
        step_fn = vaegan_step if self.model_cfg.model_type == "vaegan" else vae_step
        if self.world > 1 and step_fn is vaegan_step:
            step_fn = partial(step_fn, across_processes=self._mean_across_processes)
        generator = torch.Generator(device=self.device)
        window: list[dict[str, float]] = []
        window_start = time.perf_counter()
        saver = _CheckpointClock(self.cfg.checkpoint_interval_s, first_soon=not self.checkpoint_path.exists())
        rollbacks_in_a_row = 0
        self._snapshot()
        self.callbacks.on_message(f"training on {self.device.type} ({self.world} process(es)), "
                                  f"{len(self.data)} images, step {self.step} of {self.planned_steps_text()}")
        self._check_room()
        while self.step < self.total_steps:
            stop, paused, unwritable = self._agreed_control()
            if stop or unwritable:
                break
            if paused:
                self.elapsed_s += time.perf_counter() - window_start
                self._running.wait(PAUSE_POLL_S if self.world > 1 else None)
                window_start = time.perf_counter()
                continue
            generator.manual_seed(self.cfg.seed * 7_919 + self.step * self.world + self.rank)
            x = device_batch(self.images, self.sampler.indices(self.step), self.device, generator,
                             channels_last=self.channels_last)
            self.model.train()
            self._set_lr(self.cfg.lr_at(self.step, self.total_steps))
            metrics = step_fn(self.model, x, self._reducing(self.optimizers), self._settings_now(), self.autocast,
                              generator)
            metrics = self._agreed_metrics(metrics)
            if not all(math.isfinite(v) for v in metrics.values()):
                rollbacks_in_a_row += 1
                self._rollback(metrics)
                if rollbacks_in_a_row >= MAX_ROLLBACKS_IN_A_ROW:
                    raise TrainingError(f"training diverged {rollbacks_in_a_row} times in a row at step "
                                        f"{self.step}; try a lower learning rate (--lr) or gamma")
                continue
            rollbacks_in_a_row = 0
            self.step += 1
            if self.ema is not None:
                self.ema.update(self.model, self.step)
            window.append(metrics)
            if self.step % self.cfg.log_interval == 0 or self.step == self.total_steps:
                now = time.perf_counter()
                self.elapsed_s += now - window_start
                self._plan_by_minutes()
                self._emit_metrics(window, now - window_start)
                window, window_start = [], now
                self._snapshot()
            if self.step % self.cfg.preview_interval == 0 or self.step == self.total_steps:
                self._show_preview(fixed_z, fixed_index)
            if saver.due():
                self._save_on_schedule(saver)
        if window:
            self.elapsed_s += time.perf_counter() - window_start
        if self._agreed_control()[2]:
            self._stop_unwritable()
        saved = self._final_save()
        done = "finished" if self.step >= self.total_steps else "stopped"
        self.callbacks.on_message(f"training {done} at step {self.step}; checkpoint {saved}")
        return saved

    def planned_steps_text(self) -> str:
        """The planned step count, or what it waits for (a run planned in minutes before its speed is known)."""
        if self.awaiting_speed:
            minutes = self.cfg.max_minutes
            return f"those that fit in {minutes:g} minute{'' if minutes == 1 else 's'}"
        return f"{self.total_steps:,}"

    def restore_plan(self, state: dict[str, Any], saved_minutes: float | None) -> None:
        """A resumed run planned in the same minutes goes on with its saved step count (so a finished or annealing
        run stays so), re-planning only while its anneal has not begun."""
        saved = state.get("total_steps")
        if self.awaiting_speed and self.cfg.max_minutes == saved_minutes and isinstance(saved, int):
            self.total_steps = min(self._step_cap, saved)
            self.awaiting_speed = False

    def _plan_by_minutes(self) -> None:
        """For a run planned in minutes, set the step count from the speed measured in this run after its first
        logged window (which pays the warm-up); the plan holds once the learning-rate anneal has begun. Speed is
        measured afresh once a discriminator warm-up ends: its steps (Dis alone) are faster than the run's."""
        if self.cfg.max_minutes is None:
            return
        origin = self._speed_origin
        if origin is None or (self._warming_up(origin[0]) and not self._warming_up(self.step)):
            self._speed_origin = (self.step, self.elapsed_s)
            return
        if self.step >= self.total_steps - self.cfg.annealed_steps(self.total_steps):
            return
        first_step, first_elapsed = origin
        speed = (self.step - first_step) / max(self.elapsed_s - first_elapsed, 1e-9)
        planned = self.step + speed * max(0.0, self.cfg.max_minutes * 60 - self.elapsed_s)
        if self.world > 1:   # every process must plan the same steps
            planned = self._mean_across_processes(torch.tensor([planned], dtype=torch.float64))[0].item()
        self.total_steps = min(self._step_cap, max(self.step, round(planned)))
        self.awaiting_speed = False

    def _save_on_schedule(self, clock: "_CheckpointClock") -> None:
        """A periodic checkpoint. One that fails is reported and training goes on until the next; see
        _write_failed for when the run stops instead."""
        started = time.monotonic()
        try:
            self.save()
        except CheckpointError as exc:
            self._write_failed(CHECKPOINT, str(exc), _disk_full(exc))
        else:
            self._written(CHECKPOINT)
        clock.saved(time.monotonic() - started)

    def _final_save(self) -> Path:
        """The checkpoint at the run's last step; if it cannot be written, a one-line error saying what is kept."""
        try:
            return self.save()
        except CheckpointError as exc:
            reason = "the disk is full" if _disk_full(exc) else str(exc)
            raise TrainingError(f"stopped: {reason}; {self._what_is_kept()}") from exc

    # Nothing is trained that cannot be saved: a run whose files fail to be written twice in a row, or whose disk
    # has no room for one more checkpoint, stops with one line saying which checkpoint it keeps.
    def _written(self, what: str) -> None:
        self._write_failures[what] = 0
        if what == CHECKPOINT:
            self._check_room()

    def _write_failed(self, what: str, problem: str, disk_full: bool) -> None:
        """The first failure is reported and training goes on; a second in a row, or a disk without room for the
        next checkpoint, stops the run."""
        self._write_failures[what] += 1
        self._check_room()
        if self._unwritable is not None:
            return
        if self._write_failures[what] < WRITES_FAILED_IN_A_ROW:
            self.callbacks.on_message(f"{problem}; training goes on and tries once more")
        elif disk_full:
            self._unwritable = "the disk is full"
        else:
            self._unwritable = f"{problem}, {WRITES_FAILED_IN_A_ROW} times in a row"

    def _check_room(self) -> None:
        """Stop the run when its disk has no room for one more checkpoint."""
        if self.rank == 0 and self._unwritable is None:
            self._unwritable = self._room_problem()

    def _room_problem(self) -> str | None:
        """Why the run's disk cannot take one more checkpoint, or None (also when its free space is unknown)."""
        try:
            free = shutil.disk_usage(self.run_dir).free
        except OSError:
            return None
        needed = self._checkpoint_bytes()
        if free >= needed:
            return None
        return f"the disk has no room for another checkpoint ({_megabytes(free)} free, {_megabytes(needed)} needed)"

    def _checkpoint_bytes(self) -> int:
        """The size of the next checkpoint: the last one's, or for a run without one its weights and their
        two Adam moments."""
        with suppress(OSError):
            return self.checkpoint_path.stat().st_size
        weights = sum(t.nbytes for t in self.weight_tensors().values())
        return weights + 2 * sum(p.nbytes for p in self.model.parameters())

    def _stop_unwritable(self) -> NoReturn:
        """End a run whose files cannot be written: save the current step where a checkpoint still fits (the
        failures were elsewhere), then one line saying what is kept."""
        if self.rank == 0 and not self._write_failures[CHECKPOINT] and self._room_problem() is None:
            with suppress(CheckpointError):
                self.save()
        reason = self._unwritable or "process 0 cannot write the run's files"
        raise TrainingError(f"stopped: {reason}; {self._what_is_kept()}")

    def _what_is_kept(self) -> str:
        try:
            step = load_checkpoint_meta(self.checkpoint_path)[TRAINING_STATE]["step"]
        except (CheckpointError, KeyError, TypeError):
            return "no checkpoint is kept"
        return f"the last checkpoint kept is step {step} in {self.checkpoint_path}"

    def _forget_metrics_after(self, step: int) -> None:
        """Drop metrics records past `step` (steps a killed run did after its last checkpoint, which this run
        trains again), so that step numbers in metrics.jsonl never run backwards. A torn last line goes too."""
        path = self.run_dir / METRICS_NAME
        if not path.is_file():
            return
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
        kept = [line for line in lines if _record_step(line) is not None and _record_step(line) <= step]
        if len(kept) != len(lines):
            write_text_atomically(path, "".join(kept))

    # Data-parallel processes must call the same collectives in the same order, so every decision that
    # changes that order (balance, rollback, pause, stop) is taken from values all-reduced across them.
    def _mean_across_processes(self, values: torch.Tensor) -> torch.Tensor:
        values = values.float().to(self.device)
        dist.all_reduce(values)
        return values / self.world

    def _agreed_control(self) -> tuple[bool, bool, bool]:
        """(stop, pause, unwritable): true when any process was asked to, or cannot write the run's files."""
        flags = torch.tensor([self._stop.is_set(), not self._running.is_set(), self._unwritable is not None],
                             dtype=torch.float32)
        if self.world > 1:
            flags = flags.to(self.device)
            dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        stop, paused, unwritable = flags.tolist()
        return bool(stop), bool(paused), bool(unwritable)

    def _agreed_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """The step's metrics averaged over processes: non-finite on all of them if on any."""
        if self.world == 1:
            return metrics
        means = self._mean_across_processes(torch.tensor(list(metrics.values()), dtype=torch.float64))
        return dict(zip(metrics, means.tolist()))

    def _warming_up(self, step: int) -> bool:
        """Whether `step` is in the discriminator warm-up (Dis trains alone)."""
        return step < self.cfg.discriminator_warmup_steps

    def _settings_now(self) -> StepSettings:
        if self._warming_up(self.step):
            return replace(self.settings, autoencoder_frozen=True)
        return self.settings

    def _reducing(self, opt: Optimizers) -> Optimizers:
        if self.world == 1:
            return opt
        return Optimizers(*(None if o is None else _AllReduceOptimizer(o, self.world)
                            for o in (opt.encoder, opt.decoder, opt.discriminator)))

    def _emit_metrics(self, window: list[dict[str, float]], seconds: float) -> None:
        record = {k: sum(m[k] for m in window) / len(window) for k in window[0]}
        images_per_s = len(window) * self.cfg.batch_size * self.world / max(seconds, 1e-9)
        remaining = self.total_steps - self.step
        record.update({LR: self.cfg.lr_at(self.step - 1, self.total_steps), STEP: self.step,
                       EPOCH: self.step / self.sampler.steps_per_epoch, IMAGES_PER_S: images_per_s,
                       ETA_S: self._seconds_left(remaining, images_per_s),
                       ELAPSED_S: self.elapsed_s, TIME: time.time()})
        if self.rank == 0:
            self._append_metrics(record)
        self.callbacks.on_metrics(record)

    def _seconds_left(self, steps_left: int, images_per_s: float) -> float:
        if self.awaiting_speed:
            return max(0.0, self.cfg.max_minutes * 60 - self.elapsed_s)
        return steps_left * self.cfg.batch_size * self.world / max(images_per_s, 1e-9)

    def _append_metrics(self, record: dict[str, float]) -> None:
        """One line more in metrics.jsonl; an append that fails is cut back to the last whole line and counts as
        a failed write (_write_failed). The record still reaches the callbacks."""
        path = self.run_dir / METRICS_NAME
        try:
            _append_line(path, json.dumps(record) + "\n")
        except OSError as exc:
            self._write_failed(METRICS, f"{path}: could not record metrics ({exc.strerror or exc})", _disk_full(exc))
        else:
            self._written(METRICS)

    def _show_preview(self, z: torch.Tensor, index: torch.Tensor) -> None:
        """Hand a preview to the callbacks, which may write it (a failure counts as a failed write)."""
        try:
            self.callbacks.on_preview(self.preview(z, index))
        except OSError as exc:
            self._write_failed(PREVIEW, f"could not write a preview ({one_line(exc)})", _disk_full(exc))
        else:
            self._written(PREVIEW)

    def _snapshot(self) -> None:
        self._good_state = {
            "step": self.step,
            "model": copy.deepcopy(self.model.state_dict()),
            "optim": [copy.deepcopy(o.state_dict()) for o in self._all_optimizers()],
            "ema": {k: copy.deepcopy(m.state_dict()) for k, m in self.ema.modules().items()} if self.ema else {},
        }

    def _rollback(self, metrics: dict[str, float]) -> None:
        bad = ", ".join(f"{k}={v}" for k, v in metrics.items() if not math.isfinite(v))
        assert self._good_state is not None
        self.model.load_state_dict(self._good_state["model"])
        for o, sd in zip(self._all_optimizers(), self._good_state["optim"]):
            o.load_state_dict(sd)
        if self.ema is not None:
            for key, module in self.ema.modules().items():
                module.load_state_dict(self._good_state["ema"][key])
        self.history["rollbacks"] += 1
        # Skip the offending batch: continue from the step after it with the last good weights.
        self.step += 1
        self.callbacks.on_message(f"step {self.step}: non-finite loss ({bad}); rolled back to the weights of "
                                  f"step {self._good_state['step']} and skipped the batch")

    def _set_lr(self, lr: float) -> None:
        for o in self._all_optimizers():
            for group in o.param_groups:
                group["lr"] = lr

    def _all_optimizers(self) -> list[torch.optim.Optimizer]:
        o = self.optimizers
        return [x for x in (o.encoder, o.decoder, o.discriminator) if x is not None]

    def _preview_inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(self.cfg.seed + 12345)
        z = torch.randn(16, self.model_cfg.latent_dim, generator=g)
        index = torch.randperm(len(self.data), generator=g)[:8]
        return z, index

    def inference_networks(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        """(Enc, Dec) as inference uses them: the moving averages when the run keeps them."""
        if self.ema is not None:
            return self.ema.encoder, self.ema.decoder
        return self.model.encoder, self.model.decoder

    @torch.no_grad()
    def preview(self, z: torch.Tensor, index: torch.Tensor) -> Preview:
        self.model.eval()
        encoder, decoder = self.inference_networks()
        x = to_signed(self.data.images[index]).to(self.device)
        with self.autocast():
            samples = decoder(z.to(self.device))
            recon = decoder(encoder(x)[0])
        self.model.train()

        def unit(t: torch.Tensor) -> torch.Tensor:
            return ((t.float() + 1) / 2).clamp(0, 1).cpu()

        return Preview(self.step, unit(samples), unit(x), unit(recon))

    @torch.no_grad()
    def fit_latent_gaussian(self) -> LatentGaussian | None:
        """Where a fixed subset of the training faces encodes now, saved with each checkpoint so that random
        faces of a run come from where faces lie (see LatentGaussian); None if the fit fails."""
        count = min(SAMPLER_FIT_FACES, len(self.data))
        if count < 2:
            return None
        self.model.eval()
        encoder = self.inference_networks()[0]
        means, variances = [], []
        for part in torch.linspace(0, len(self.data) - 1, count).round().long().split(256):
            with self.autocast():
                mu, logvar = encoder(to_signed(self.data.images[part]).to(self.device))
            means.append(mu.float().cpu())
            variances.append(logvar.float().exp().cpu())
        self.model.train()
        try:
            return fit_latent_gaussian(torch.cat(means), torch.cat(variances))
        except (ValueError, RuntimeError):   # a non-finite or degenerate encoder: the app falls back to N(0, I)
            return None

    # ----- persistence -----
    def state_meta(self) -> dict[str, Any]:
        return {
            KIND: KIND_TRAINING,
            MODEL_CONFIG: self.model_cfg.to_dict(),
            TRAIN_CONFIG: asdict(self.cfg),
            TRAINING_STATE: {"step": self.step, "total_steps": self.total_steps,
                               "images_seen": self.step * self.cfg.batch_size * self.world,
                               "elapsed_s": round(self.elapsed_s, 1), **self.history},
            DATA: self.data.summary,
            LABEL_NAMES: self.data.label_names,
        }

    def save(self, path: Path | None = None) -> Path:
        path = Path(path or self.checkpoint_path)
        if self.rank != 0:
            return path
        tensors = self.weight_tensors()
        optim_info = {}
        for name, o in zip(NETWORK_PARTS, (self.optimizers.encoder, self.optimizers.decoder,
                                           self.optimizers.discriminator)):
            if o is None:
                continue
            t, info = flatten_optimizer(f"{OPTIMIZER_STATE}.{name}", o)
            tensors.update(t)
            optim_info[name] = info
        fitted = self.fit_latent_gaussian()
        meta = self.state_meta()
        meta[OPTIMIZER] = optim_info
        if fitted is not None:
            tensors.update(fitted.tensors())
            meta[RANDOM_FACES] = fitted.description(min(SAMPLER_FIT_FACES, len(self.data)))
        save_checkpoint(path, Checkpoint(tensors, meta))
        self.callbacks.on_checkpoint(path)
        return path

    def weight_tensors(self) -> dict[str, torch.Tensor]:
        """The networks' tensors for a checkpoint: with EMA, `enc`/`dec` hold the averages (what inference and
        build_bundle load) and `train.enc`/`train.dec` (RAW_WEIGHTS) the weights training continues from."""
        tensors = model_tensors(self.model)
        if self.ema is None:
            return tensors
        raw = {f"{RAW_WEIGHTS}.{k}": v for k, v in tensors.items() if not in_groups(k, (DISCRIMINATOR,))}
        averaged = {f"{p}.{k}": v for p, m in self.ema.modules().items() for k, v in m.state_dict().items()}
        return {**tensors, **raw, **averaged}

    def load_average(self, ckpt: Checkpoint) -> None:
        """Start the moving average from the checkpoint's (when it kept one) or from the loaded raw weights."""
        if self.ema is None:
            return
        self.ema = WeightAverage(self.model, self.cfg.ema_decay)
        if ckpt.group(f"{RAW_WEIGHTS}.{ENCODER}"):
            for key, module in self.ema.modules().items():
                module.load_state_dict(ckpt.group(key))

    @classmethod
    def from_run(cls, run_dir: str | Path, data: FaceDataset, callbacks: TrainerCallbacks | None = None,
               **overrides: Any) -> "Trainer":
        """Continue a run from its checkpoint; `overrides` may change e.g. max_steps, epochs or device."""
        run_dir = Path(run_dir)
        loaded = load_model_checkpoint(run_dir / CHECKPOINT_NAME, training=True)
        ckpt, path = loaded.checkpoint, loaded.path
        try:
            saved_cfg = TrainConfig.from_dict(ckpt.meta[TRAIN_CONFIG])
            cfg = replace(saved_cfg, **overrides)
        except (TypeError, ValueError) as exc:
            raise TrainingError(f"{path}: its train_config is unusable ({exc})") from exc
        trainer = cls(data, run_dir, loaded.config, cfg, callbacks, load_init_weights=False)
        try:
            load_model_tensors(trainer.model, ckpt)
            trainer.load_average(ckpt)
            for name, o in zip(NETWORK_PARTS, (trainer.optimizers.encoder, trainer.optimizers.decoder,
                                               trainer.optimizers.discriminator)):
                if o is not None:
                    o.load_state_dict(unflatten_optimizer(f"{OPTIMIZER_STATE}.{name}", ckpt,
                                                          ckpt.meta[OPTIMIZER][name]))
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise TrainingError(f"{path}: cannot continue from it ({str(exc).splitlines()[0][:160]})") from exc
        state = ckpt.meta[TRAINING_STATE]
        trainer.restore_plan(state, saved_cfg.max_minutes)
        trainer.step = int(state["step"])
        trainer.elapsed_s = float(state.get("elapsed_s", 0.0))
        trainer.history["rollbacks"] = int(state.get("rollbacks", 0))
        if "started_from" in state:
            trainer.history["started_from"] = state["started_from"]
        return trainer


class _CheckpointClock:
    """When the next periodic checkpoint is due: a fresh run saves after its first step (so that even a run
    killed early can be resumed), then every `interval_s`, stretched so saving costs at most SAVE_COST_SHARE."""

    def __init__(self, interval_s: float, first_soon: bool) -> None:
        self.interval_s = interval_s
        self.next_at = time.monotonic() + (0.0 if first_soon else interval_s)

    def due(self) -> bool:
        return time.monotonic() >= self.next_at

    def saved(self, took_s: float) -> None:
        self.next_at = time.monotonic() + max(self.interval_s, took_s / SAVE_COST_SHARE)


def _append_line(path: Path, line: str) -> None:
    """Append `line` whole or not at all: a failed write is cut back to the file's previous end."""
    data = memoryview(line.encode())
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    size = os.fstat(fd).st_size
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:
        os.ftruncate(fd, size)
        raise
    finally:
        os.close(fd)


def _disk_full(exc: BaseException) -> bool:
    """Whether a write failed for want of space (a CheckpointError says so in words)."""
    return getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(exc)


def _megabytes(size: int) -> str:
    return f"{size / 2**20:,.1f} MB"


def _record_step(line: str) -> int | None:
    """The step of one metrics.jsonl line, or None for a torn or foreign line."""
    try:
        step = json.loads(line).get(STEP)
    except (ValueError, AttributeError):
        return None
    return step if isinstance(step, int) else None


class _AllReduceOptimizer:
    """Averages gradients across processes before stepping (the step functions take gradients with
    torch.autograd.grad, which DistributedDataParallel's backward hooks do not see)."""

    def __init__(self, optimizer: torch.optim.Optimizer, world: int) -> None:
        self.optimizer, self.world = optimizer, world

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        grads = [p.grad for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        if grads:
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat)
            flat /= self.world
            offset = 0
            for g in grads:
                g.copy_(flat[offset:offset + g.numel()].view_as(g))
                offset += g.numel()
        self.optimizer.step()
