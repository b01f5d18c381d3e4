"""How long the GUI thread stalls while a model trains in the background (figures, not a test).

A 5 ms timer on the GUI thread records how late each tick arrives while the Train panel trains a
tiny-ish VAE-GAN on the CPU. Targets: max stall <= 100 ms, 95th percentile <= 30 ms.

    python benchmarks/gui_stall.py [--seconds 60] [--folder FACES] [--screenshot FILE]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from qt_wait import wait_for  # noqa: E402

PROBE_MS = 5


def synthetic_folder(root: Path, count: int = 256) -> Path:
    from conftest import synthetic_face

    for i in range(count):
        Image.fromarray(synthetic_face(i)).save(root / f"face_{i:04d}.png")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--folder", type=Path, help="face pictures (default: 256 generated ones)")
    parser.add_argument("--model", type=Path, help="model to open in the window (default: none)")
    parser.add_argument("--screenshot", type=Path, help="also save the window mid-training to this PNG")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gui_stall_"))
    os.environ["VAEGAN_EXPLORER_SETTINGS"] = str(work / "settings.ini")
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")
    if args.folder:
        folder = args.folder
    else:
        (work / "faces").mkdir()
        folder = synthetic_folder(work / "faces")

    app = QApplication.instance() or QApplication([])
    from explorer.main_window import MainWindow

    window = MainWindow(args.model or work / "none.safetensors", persist=False)
    window.resize(1280, 800)
    window.show()
    window.show_panel("train")
    panel = window.panels["train"]
    panel.set_folder(folder)
    wait_for(app, lambda: panel.dataset is not None, 600)
    panel.width.setValue(0.25)
    panel.latent_size.setValue(64)
    panel.batch_size.setValue(32)
    panel.epochs.setValue(10_000)
    panel.preview_every.setValue(10)
    panel.device.setCurrentIndex(panel.device.findData("cpu"))
    panel.run_folder.setText(str(work / "run"))
    panel.start()
    wait_for(app, lambda: panel.thread.trainer is not None, 60)  # measure once the trainer runs

    gaps: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.nsecsElapsed()]

    def tick() -> None:
        now = clock.nsecsElapsed()
        gaps.append((now - last[0]) / 1e6)
        last[0] = now

    probe = QTimer(interval=PROBE_MS, timerType=Qt.TimerType.PreciseTimer)
    probe.timeout.connect(tick)
    probe.start()
    measuring = QEventLoop()  # not app.quit(): that closes the window, which asks before stopping training
    QTimer.singleShot(int(args.seconds * 1000), measuring.quit)
    measuring.exec()
    probe.stop()
    if args.screenshot:
        window.grab().save(str(args.screenshot))
    steps = panel.live.history["step"][1][-1] if panel.live.history.get("step") else 0
    panel.thread.stop(finalize=False)
    panel.thread.wait()
    stalls = np.maximum(np.array(gaps) - PROBE_MS, 0)
    print(f"trained {int(steps)} steps in the background; {len(gaps)} probe ticks over {args.seconds:.0f} s")
    print(f"GUI stall: max {stalls.max():.1f} ms (target <= 100), p95 {np.percentile(stalls, 95):.1f} ms "
          f"(target <= 30), median {np.median(stalls):.1f} ms")


if __name__ == "__main__":
    main()
