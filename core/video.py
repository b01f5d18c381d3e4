"""Keyframed videos: a path through keyframe latents, decoded and written as MP4 (H.264) or GIF.

Plain torch + PIL + the ffmpeg binary of the imageio-ffmpeg package; never imports Qt.

Frame count: K keyframes and m = round(seconds_per_segment * fps) (at least 1) make (K - 1) * m + 1 frames:
the first keyframe, then m frames per segment, the last of which is the segment's end keyframe. At 30 fps and
2 s a segment, 3 keyframes make 121 frames (4 s of moves plus the closing keyframe).

Writes follow core.export: nothing is replaced unless overwrite=True, and the file appears in one step (a
temporary file beside it, then a rename). A cancelled or failed export leaves neither file nor temporary file.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import Image
from torch import Tensor

from core.api import Model
from core.checkpoint import atomic_file
from core.data import Cancel, Progress
from core.export import MIN_FRAME_MS, _target, save_gif, tensor_to_pil, upscale
from core.latent import EASINGS, keyframe_path

VIDEO_FORMATS = {".mp4": "MP4", ".gif": "GIF"}
METHODS = ("slerp", "linear")
MIN_FPS, MAX_FPS = 1, 120
GIF_MAX_FPS = 1000 // MIN_FRAME_MS
MIN_SIZE, MAX_SIZE = 16, 1024
MIN_SECONDS, MAX_SECONDS = 0.05, 600.0
GIF_MAX_PIXELS = 400_000_000
"""Frames x width x height of a GIF: all its frames are held in memory before the write (about 4 bytes a pixel)."""
DECODE_BATCH = 32
H264_CRF = 20                # x264's constant quality: 0 is lossless, 23 its default, 51 the worst


class Cancelled(Exception):
    """The export was cancelled; nothing was written."""


@dataclass(frozen=True)
class VideoSettings:
    fps: int = 30
    seconds_per_segment: float = 2.0
    easing: str = "none"
    """"none" (even steps) or "smooth" (smoothstep: slow near each keyframe)."""
    method: str = "slerp"
    size: int = 256
    """Width and height of the frames in pixels (the decoded faces are upscaled with Lanczos)."""

    def __post_init__(self) -> None:
        if not (isinstance(self.fps, int) and MIN_FPS <= self.fps <= MAX_FPS):
            raise ValueError(f"fps must be a whole number from {MIN_FPS} to {MAX_FPS}, got {self.fps!r}")
        if not MIN_SECONDS <= self.seconds_per_segment <= MAX_SECONDS:
            raise ValueError(f"seconds per segment must be from {MIN_SECONDS:g} to {MAX_SECONDS:g}, "
                             f"got {self.seconds_per_segment!r}")
        if not (isinstance(self.size, int) and MIN_SIZE <= self.size <= MAX_SIZE):
            raise ValueError(f"size must be a whole number of pixels from {MIN_SIZE} to {MAX_SIZE}, got {self.size!r}")
        if self.easing not in EASINGS:
            raise ValueError(f"unknown easing {self.easing!r}; use one of: {', '.join(EASINGS)}")
        if self.method not in METHODS:
            raise ValueError(f"unknown interpolation method {self.method!r}; use one of: {', '.join(METHODS)}")

    @property
    def frames_per_segment(self) -> int:
        return max(1, round(self.seconds_per_segment * self.fps))

    def frame_count(self, keyframes: int) -> int:
        return (keyframes - 1) * self.frames_per_segment + 1


def frame_latents(keyframes: Tensor, settings: VideoSettings) -> Tensor:
    """The video's latents, frame_count(K) x D, passing exactly through each of the K >= 2 keyframes."""
    return keyframe_path(keyframes, settings.frames_per_segment, settings.method, settings.easing)


def write_video(model: Model, keyframes: Tensor, path: str | os.PathLike[str], settings: VideoSettings = VideoSettings(),
                overwrite: bool = False, progress: Progress | None = None,
                cancelled: Cancel | None = None) -> Path:
    """Decode the path through `keyframes` (K x D) and write it as .mp4 or .gif (by suffix); returns the path.

    progress(done, total) follows the frames decoded and written; cancelled() (e.g. threading.Event().is_set) is
    asked before each batch and a True ends the export with Cancelled. A GIF is written in one step once every frame is decoded (GIF delays
    are whole hundredths of a second, so 30 fps plays at 1 / 0.03 s = 33 fps)."""
    target, video_format = _target(path, VIDEO_FORMATS, overwrite)
    latents = frame_latents(keyframes, settings)
    _check_format_limits(video_format, settings, len(latents))
    batches = _frame_batches(model, latents, settings.size, progress or (lambda done, total: None),
                             cancelled or (lambda: False))
    if video_format == "MP4":
        return _write_mp4(batches, target, settings)
    frames = [frame for batch in batches for frame in batch]
    return save_gif(frames, target, frame_ms=round(1000 / settings.fps), overwrite=overwrite,
                    palette=Image.Quantize.FASTOCTREE)


def _check_format_limits(video_format: str, settings: VideoSettings, frames: int) -> None:
    if video_format == "MP4" and settings.size % 2:
        raise ValueError(f"an MP4 needs an even size (H.264 in yuv420p halves the colour resolution), "
                         f"got {settings.size}")
    if video_format == "GIF" and settings.fps > GIF_MAX_FPS:
        raise ValueError(f"a GIF plays at most {GIF_MAX_FPS} frames per second, got {settings.fps}; "
                         "write an MP4 for more")
    pixels = frames * settings.size ** 2
    if video_format == "GIF" and pixels > GIF_MAX_PIXELS:
        raise ValueError(f"a GIF of {frames:,} frames of {settings.size} px would hold {pixels / 1e6:,.0f} million "
                         f"pixels in memory (at most {GIF_MAX_PIXELS / 1e6:,.0f}); write an MP4, or use fewer "
                         "frames or a smaller size")


def _frame_batches(model: Model, latents: Tensor, size: int, progress: Progress,
                   cancelled: Cancel) -> Iterator[list[Image.Image]]:
    """The frames as size x size RGB pictures, DECODE_BATCH at a time; progress counts the batches taken."""
    done = 0
    for chunk in latents.split(DECODE_BATCH):
        if cancelled():
            raise Cancelled("export cancelled; nothing was written")
        yield [upscale(tensor_to_pil(image), size / image.shape[-1]) for image in model.decode(chunk)]
        done += len(chunk)
        progress(done, len(latents))


def _write_mp4(batches: Iterator[list[Image.Image]], target: Path, settings: VideoSettings) -> Path:
    """H.264 in yuv420p (plays everywhere) through imageio-ffmpeg's own ffmpeg binary."""
    with atomic_file(target) as temporary:
        writer = imageio_ffmpeg.write_frames(
            temporary, (settings.size, settings.size), fps=settings.fps, codec="libx264", pix_fmt_out="yuv420p",
            quality=None, macro_block_size=2, ffmpeg_log_level="error",
            output_params=["-crf", str(H264_CRF), "-movflags", "+faststart", "-f", "mp4"])
        writer.send(None)
        try:
            for batch in batches:
                for frame in batch:
                    writer.send(np.ascontiguousarray(frame))
        finally:
            writer.close()
    return target
