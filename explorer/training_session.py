"""A training run on its own QThread; the trainer's callbacks arrive on the GUI thread as queued signals."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from PySide6.QtCore import QThread, Signal

from core.api import load_model
from core.bundle import build_reference_map, save_inference_model
from core.dataset import FaceDataset, to_unit
from core.device import default_cpu_threads
from core.latent import attribute_vectors_from_labels
from core.trainer import Preview, Trainer, TrainerCallbacks

EXPLORER_MODEL_NAME = "explorer.safetensors"
MAP_IMAGES = 2000
ATTRIBUTE_IMAGES = 20000

TrainerFactory = Callable[[TrainerCallbacks], Trainer]


class TrainingThread(QThread):
    """Builds the trainer (so checkpoint loading also stays off the GUI thread), runs it, and then
    writes an explorer-ready model (reference map, plus attribute vectors when the data has labels)."""

    metrics = Signal(dict)
    message = Signal(str)
    preview = Signal(object)       # core.trainer.Preview
    checkpointSaved = Signal(str)
    completed = Signal(str)        # path of the model to open in the explorer
    failed = Signal(str)

    def __init__(self, make_trainer: TrainerFactory, data: FaceDataset) -> None:
        super().__init__()
        self.make_trainer, self.data = make_trainer, data
        self.trainer: Trainer | None = None
        self.finalize = True
        self._paused = False

    # ----- control (GUI thread) -----
    def pause(self) -> None:
        self._paused = True
        if self.trainer:
            self.trainer.pause()

    def resume(self) -> None:
        self._paused = False
        if self.trainer:
            self.trainer.resume()

    def stop(self, finalize: bool = True) -> None:
        """Ask the run to end after the current step; it saves a checkpoint before the thread ends."""
        self.finalize = finalize
        self.requestInterruption()
        if self.trainer:
            self.trainer.stop()

    @property
    def paused(self) -> bool:
        return self._paused

    # ----- the thread -----
    def run(self) -> None:
        torch.set_num_threads(default_cpu_threads())
        try:
            self.trainer = self.make_trainer(_Relay(self))
            if self._paused:
                self.trainer.pause()
            if self.isInterruptionRequested():
                self.trainer.stop()
            checkpoint = self.trainer.run()
            result = self._explorer_model(checkpoint) if self.finalize and checkpoint else checkpoint
            self.completed.emit(str(result or ""))
        except Exception as exc:  # noqa: BLE001 - shown to the user, the app keeps running
            self.failed.emit(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

    def _explorer_model(self, checkpoint: Path) -> Path:
        self.message.emit("Preparing the model for the explorer (latent map"
                          + (", attribute vectors" if self.data.labels is not None else "") + ")…")
        model = load_model(checkpoint, device="cpu")
        generator = torch.Generator().manual_seed(0)
        if self.data.labels is not None:
            index = torch.randperm(len(self.data), generator=generator)[:ATTRIBUTE_IMAGES]
            latents = model.encode(to_unit(self.data.images[index]))
            model.attributes = attribute_vectors_from_labels(latents, self.data.labels[index], self.data.label_names)
            model.save_attributes()
        index = torch.randperm(len(self.data), generator=generator)[:MAP_IMAGES]
        labels = None if self.data.labels is None else self.data.labels[index]
        model.reference = build_reference_map(model, self.data.images[index], labels, tuple(self.data.label_names))
        path = save_inference_model(model, checkpoint.parent / EXPLORER_MODEL_NAME)
        self.message.emit(f"Explorer model written: {path}")
        return path


class _Relay(TrainerCallbacks):
    """Trainer callbacks (training thread) -> the thread object's signals (queued to the GUI)."""

    def __init__(self, thread: TrainingThread) -> None:
        self.thread = thread

    def on_metrics(self, record: dict[str, float]) -> None:
        self.thread.metrics.emit(record)

    def on_message(self, text: str) -> None:
        self.thread.message.emit(text)

    def on_preview(self, preview: Preview) -> None:
        self.thread.preview.emit(preview)

    def on_checkpoint(self, path: Path) -> None:
        self.thread.checkpointSaved.emit(str(path))
