"""A training run on its own QThread; the trainer's callbacks arrive on the GUI thread as queued signals."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from PySide6.QtCore import QThread, Signal

from core.dataset import FaceDataset
from core.device import default_cpu_threads
from core.errors import one_line
from core.pipeline import finish_run
from core.trainer import Preview, Trainer, TrainerCallbacks

TrainerFactory = Callable[[TrainerCallbacks], Trainer]
PLANNED_STEPS = "planned_steps"
"""Added to every metrics record: the run's planned step count when the record was made (a run planned in minutes
re-plans it as it measures its speed)."""


class TrainingThread(QThread):
    """Builds the trainer (so checkpoint loading also stays off the GUI thread), runs it, and then makes
    the run's checkpoint explorer-ready (core.pipeline.finish_run)."""

    metrics = Signal(dict)
    message = Signal(str)
    preview = Signal(object)       # core.trainer.Preview
    checkpointSaved = Signal(str)
    completed = Signal(str)        # the run's checkpoint, to open in the explorer
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
            if self.finalize and checkpoint:
                finish_run(checkpoint, self.data, say=self.message.emit)
            self.completed.emit(str(checkpoint or ""))
        except Exception as exc:  # noqa: BLE001 - shown to the user, the app keeps running
            self.failed.emit(one_line(exc))


class _Relay(TrainerCallbacks):
    """Trainer callbacks (training thread) -> the thread object's signals (queued to the GUI)."""

    def __init__(self, thread: TrainingThread) -> None:
        self.thread = thread

    def on_metrics(self, record: dict[str, float]) -> None:
        self.thread.metrics.emit(record | {PLANNED_STEPS: self.thread.trainer.total_steps})

    def on_message(self, text: str) -> None:
        self.thread.message.emit(text)

    def on_preview(self, preview: Preview) -> None:
        self.thread.preview.emit(preview)

    def on_checkpoint(self, path: Path) -> None:
        self.thread.checkpointSaved.emit(str(path))
