"""Wall time of a keyframed video export (core/video.py): 10 s at 30 fps, 256 x 256, from the bundled model.

    python benchmarks/video_export.py [--repeats 3] [--threads N]

Six random faces as keyframes, 2 s a segment (301 frames), slerp with easing; prints the median of the repeats
for MP4 (target 10 s) and for GIF.
"""
from __future__ import annotations

import argparse
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


def median_export_s(model: Model, keyframes: torch.Tensor, suffix: str, repeats: int) -> float:
    times = []
    with tempfile.TemporaryDirectory() as folder:
        for i in range(repeats):
            start = time.perf_counter()
            write_video(model, keyframes, Path(folder) / f"walk_{i}{suffix}", SETTINGS)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(BUNDLED_MODEL, device="cpu")
    keyframes = model.sample_latents(KEYFRAMES, seed=0)
    frames = SETTINGS.frame_count(KEYFRAMES)
    print(f"{frames} frames ({frames / SETTINGS.fps:.0f} s at {SETTINGS.fps} fps), {SETTINGS.size}x{SETTINGS.size}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    mp4 = median_export_s(model, keyframes, ".mp4", args.repeats)
    print(f"MP4: {mp4:.2f} s (target {MP4_TARGET_S:g} s: {'ok' if mp4 <= MP4_TARGET_S else 'OVER'})")
    print(f"GIF: {median_export_s(model, keyframes, '.gif', args.repeats):.2f} s")


if __name__ == "__main__":
    main()
