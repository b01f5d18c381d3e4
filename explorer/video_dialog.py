"""Save video: the Interpolate panel's endpoints as keyframes of an MP4 or GIF (core.video), written in the
background with a progress bar and Cancel."""
from __future__ import annotations

import threading
from pathlib import Path

import torch
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QLabel, QProgressBar,
                               QSpinBox, QVBoxLayout, QWidget)

from core.api import Model
from core.errors import one_line
from core.video import (MAX_FPS, MAX_SECONDS, MAX_SIZE, MIN_FPS, MIN_SECONDS, MIN_SIZE, Cancelled, VideoSettings,
                        write_video)
from explorer.widgets import ERROR_STYLE, ask_save_path, start_worker

VIDEO_FORMATS = {".mp4": "MP4 video (*.mp4)", ".gif": "Animated GIF (*.gif)"}


class VideoDialog(QDialog):
    """Seconds per keyframe, frame rate, easing and size; Save asks for the file and writes it with progress."""

    _progress = Signal(int, int)  # (frames done, frames in all) from the writing worker's thread
    saved = Signal(Path)

    def __init__(self, model: Model, keyframes: torch.Tensor, method: str, parent: QWidget | None = None) -> None:
        super().__init__(parent, windowTitle="Save video")
        self.model, self.keyframes, self.method = model, keyframes, method
        self.saved_path: Path | None = None
        self._cancel = threading.Event()
        self._worker = None
        self.seconds = QDoubleSpinBox(minimum=MIN_SECONDS, maximum=MAX_SECONDS, value=2.0, singleStep=0.5,
                                      suffix=" s", toolTip="Time from one keyframe (endpoint) to the next")
        self.fps = QSpinBox(minimum=MIN_FPS, maximum=MAX_FPS, value=30, suffix=" fps")
        self.size = QSpinBox(minimum=MIN_SIZE, maximum=MAX_SIZE, value=256, singleStep=2, suffix=" px",
                             toolTip="Width and height of the video (faces are enlarged smoothly)")
        self.ease = QCheckBox("Ease in and out", toolTip="Slow down near each keyframe instead of moving evenly")
        self.summary = QLabel()
        self.bar = QProgressBar(visible=False, textVisible=True)
        self.problem = QLabel(visible=False, wordWrap=True, styleSheet=ERROR_STYLE)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.choose_file)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        for label, widget in (("Keyframe to keyframe", self.seconds), ("Frame rate", self.fps),
                              ("Size", self.size), ("", self.ease)):
            form.addRow(label, widget)
        layout = QVBoxLayout(self)
        for part in (form, self.summary, self.bar, self.problem, self.buttons):
            layout.addLayout(part) if isinstance(part, QFormLayout) else layout.addWidget(part)
        for box in (self.seconds, self.fps, self.size):
            box.valueChanged.connect(self._describe)
        self._progress.connect(self._show_progress)
        self._describe()

    def settings(self) -> VideoSettings:
        return VideoSettings(fps=self.fps.value(), seconds_per_segment=self.seconds.value(),
                             easing="smooth" if self.ease.isChecked() else "none", method=self.method,
                             size=self.size.value())

    def _describe(self) -> None:
        frames = self.settings().frame_count(len(self.keyframes))   # arithmetic: the latents wait for Save
        self.summary.setText(f"{len(self.keyframes)} keyframes, {frames} frames, {frames / self.fps.value():.1f} s "
                             f"({'slerp' if self.method == 'slerp' else 'linear'} path)")

    def choose_file(self) -> None:
        target = ask_save_path(self, "Save video", "path.mp4", VIDEO_FORMATS)
        if target is not None:
            self.start(target)

    def start(self, target: Path) -> None:
        """Write in the background; the dialog stays responsive and Cancel stops at the next batch of frames."""
        self._cancel = threading.Event()
        self.problem.hide()
        self.bar.setVisible(True)
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(False)
        self._worker = start_worker(write_video, self.model, self.keyframes, target, self.settings(), overwrite=True,
                                    progress=self._progress.emit, cancelled=self._cancel.is_set,
                                    on_result=self._saved, on_error=self._failed)

    def writing(self) -> bool:
        return self._worker is not None

    def _show_progress(self, done: int, total: int) -> None:
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(done)
        self.bar.setFormat(f"Frame {done} of {total}")

    def _saved(self, path: Path) -> None:
        self._worker = None
        self.saved_path = path
        self.saved.emit(path)
        self.accept()

    def _failed(self, error: Exception) -> None:
        self._worker = None
        self.bar.hide()
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(True)
        if not isinstance(error, Cancelled):
            self.problem.setText(f"Could not save the video: {one_line(error)}")
            self.problem.show()

    def reject(self) -> None:
        """Cancel (or Esc, or closing the window) stops a video being written, leaving no file; with none being
        written it closes the dialog."""
        if self.writing():
            self._cancel.set()
        else:
            super().reject()
