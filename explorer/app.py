"""Entry point of the `vaegan-explorer` GUI script, `python main.py` and main.pyw.

    vaegan-explorer [MODEL] [--images PICTURE ...] [--panel NAME]
    vaegan-explorer [MODEL] --screenshot FILE [--panel NAME] [--size WxH]
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import threading
import time
from pathlib import Path

from explorer.panels import PANELS

SCREENSHOT_TIMEOUT_S = 60.0
SETTLE_S = 0.5


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vaegan-explorer", description="Explore and train VAE-GAN face models.")
    parser.add_argument("model", nargs="?", help="model file (.safetensors) or run folder; default: the bundled model")
    parser.add_argument("--images", nargs="+", default=[], metavar="PICTURE",
                        help="pictures whose faces open in the --panel chosen (attributes, interpolate, map) or, "
                             "by default, in Reconstruct")
    parser.add_argument("--panel", choices=[p.key for p in PANELS], help="panel to show first")
    parser.add_argument("--screenshot", metavar="FILE", help="render the window offscreen to FILE (PNG) and exit")
    parser.add_argument("--size", default="1280x800", help="window size for --screenshot, e.g. 1280x800")
    return parser.parse_args(argv)


def window_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


def import_in_background(module: str) -> threading.Thread:
    """Start importing `module` on a side thread. Importing torch there while the main thread loads Qt
    overlaps the two slowest imports of start-up (about a second on a 2-core CPU)."""
    thread = threading.Thread(target=importlib.import_module, args=(module,), name=f"import {module}", daemon=True)
    thread.start()
    return thread


def launch(argv: list[str]):
    """Create the application and its window, showing it unless a screenshot is asked for off screen.
    Returns (app, window, args); `main` runs the event loop on them. The arguments are parsed first, so
    --help and usage errors need no display."""
    args = parse_args(argv)
    if args.screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    torch_import = import_in_background("torch")
    import pyqtgraph  # noqa: F401  (loads beside torch; the panels need it)
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0]])
    torch_import.join()
    import torch
    from core.device import default_cpu_threads
    from explorer.icon import app_icon
    from explorer.main_window import APP_NAME, MainWindow

    app.setStyle("Fusion")  # the light and dark palettes of explorer.theme are made for it, on every platform
    app.setApplicationName("vaegan-explorer")
    app.setApplicationDisplayName(APP_NAME)
    app.setWindowIcon(app_icon())
    torch.set_num_threads(default_cpu_threads())
    window = MainWindow(args.model, persist=not args.screenshot)
    if args.images:
        open_pictures_when_ready(window, [Path(p) for p in args.images], args.panel or "reconstruct")
    if args.panel:
        window.show_panel(args.panel)
    if args.screenshot:
        window.resize(*window_size(args.size))
    window.show()
    return app, window, args


def main(argv: list[str] | None = None) -> int:
    app, window, args = launch(sys.argv[1:] if argv is None else argv)
    if args.screenshot:
        return take_screenshot(app, window, Path(args.screenshot))
    close_on_signals(window)
    return app.exec()


def close_on_signals(window) -> None:
    """SIGTERM (shutdown), SIGHUP (logout) or Ctrl+C in the terminal: a running training saves a checkpoint at
    its current step, then the window closes as if the user closed it."""
    import signal

    from PySide6.QtCore import QTimer

    def handle(signum: int, frame: object) -> None:
        window.panels["train"].stop_and_wait()
        window.close()

    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), handle)
    # Python runs signal handlers only between its own bytecodes; this timer gives it the chance while Qt idles.
    QTimer(window, interval=200, timeout=lambda: None).start()


def open_pictures_when_ready(window, pictures: list[Path], panel: str) -> None:
    """Once the model is open: the pictures' faces go to `panel` as if dropped there (the Reconstruct panel
    for the panels that take no faces)."""

    def add_once(model) -> None:
        if model is not None:
            window.selection.modelChanged.disconnect(add_once)
            if panel in ("attributes", "interpolate", "map"):
                window.use_pictures(pictures, panel)
            else:
                window.panels["reconstruct"].add_sources([(p.name, p) for p in pictures])

    window.selection.modelChanged.connect(add_once)


def take_screenshot(app, window, target: Path) -> int:
    """Wait until the model is open and all background work (decodes, reconstructions) has settled."""
    from PySide6.QtCore import QThreadPool

    pool = QThreadPool.globalInstance()
    deadline = time.monotonic() + SCREENSHOT_TIMEOUT_S
    quiet_since = None
    while time.monotonic() < deadline:
        app.processEvents()
        busy = window.loading or pool.activeThreadCount() > 0
        quiet_since = None if busy else (quiet_since or time.monotonic())
        if quiet_since and time.monotonic() - quiet_since >= SETTLE_S:
            break
        time.sleep(0.01)
    app.processEvents()
    target.parent.mkdir(parents=True, exist_ok=True)
    saved = window.grab().save(str(target))
    window.close()
    if not saved:
        print(f"could not write {target}", file=sys.stderr)
    return 0 if saved else 1


if __name__ == "__main__":
    sys.exit(main())
