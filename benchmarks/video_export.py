"""Wall time of a keyframed video export (core/video.py): 10 s at 30 fps, 256 x 256, from the bundled model.

    python benchmarks/video_export.py [--repeats 3] [--threads N] [--gui]

Six random faces as keyframes, 2 s a segment (301 frames), slerp with easing; prints the median of the repeats
for MP4 (target 10 s) and for GIF. With --gui the MP4 is written from the Interpolate panel's Save video dialog
instead, while a 5 ms timer on the GUI thread records how late each tick arrives (target: no stall over 100 ms).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from core.api import Model, load_model  # noqa: E402
from core.video import VideoSettings, write_video  # noqa: E402

BUNDLED_MODEL = ROOT / "checkpoints" / "faces64.safetensors"
SETTINGS = VideoSettings(fps=30, seconds_per_segment=2.0, easing="smooth", method="slerp", size=256)
KEYFRAMES = 6
MP4_TARGET_S = 10.0
PROBE_MS = 5
STALL_TARGET_MS = 100


def median_export_s(model: Model, keyframes: torch.Tensor, suffix: str, repeats: int) -> float:
    times = []
    with tempfile.TemporaryDirectory() as folder:
        for i in range(repeats):
            start = time.perf_counter()
            write_video(model, keyframes, Path(folder) / f"walk_{i}{suffix}", SETTINGS)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def gui_stalls_ms(model: Model, keyframes: torch.Tensor) -> tuple[float, list[float]]:
    """(export seconds, GUI-thread stalls in ms) of one MP4 written through the Save video dialog."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from explorer.video_dialog import VideoDialog

    app = QApplication.instance() or QApplication([])
    dialog = VideoDialog(model, keyframes, SETTINGS.method)
    dialog.seconds.setValue(SETTINGS.seconds_per_segment)
    dialog.fps.setValue(SETTINGS.fps)
    dialog.size.setValue(SETTINGS.size)
    dialog.ease.setChecked(True)
    dialog.show()
    clock, gaps = QElapsedTimer(), []
    clock.start()
    last = [clock.nsecsElapsed()]

    def tick() -> None:
        now = clock.nsecsElapsed()
        gaps.append((now - last[0]) / 1e6 - PROBE_MS)
        last[0] = now

    probe = QTimer(interval=PROBE_MS, timerType=Qt.TimerType.PreciseTimer, timeout=tick)
    done = QEventLoop()
    dialog.finished.connect(done.quit)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        probe.start()
        dialog.start(Path(folder) / "walk.mp4")
        done.exec()
        probe.stop()
        seconds = time.perf_counter() - start
    app.processEvents()
    return seconds, [max(gap, 0.0) for gap in gaps]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--gui", action="store_true", help="export through the Save video dialog and measure "
                        "how long the GUI thread stalls")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(BUNDLED_MODEL, device="cpu")
    keyframes = model.sample_latents(KEYFRAMES, seed=0)
    frames = SETTINGS.frame_count(KEYFRAMES)
    print(f"{frames} frames ({frames / SETTINGS.fps:.0f} s at {SETTINGS.fps} fps), {SETTINGS.size}x{SETTINGS.size}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    if args.gui:
        seconds, stalls = gui_stalls_ms(model, keyframes)
        stalls.sort()
        print(f"MP4 from the dialog: {seconds:.2f} s; GUI stall max {stalls[-1]:.1f} ms (target {STALL_TARGET_MS} ms), "
              f"p95 {stalls[int(0.95 * (len(stalls) - 1))]:.1f} ms over {len(stalls)} ticks")
        return
    mp4 = median_export_s(model, keyframes, ".mp4", args.repeats)
    print(f"MP4: {mp4:.2f} s (target {MP4_TARGET_S:g} s: {'ok' if mp4 <= MP4_TARGET_S else 'OVER'})")
    print(f"GIF: {median_export_s(model, keyframes, '.gif', args.repeats):.2f} s")


if __name__ == "__main__":
    main()
