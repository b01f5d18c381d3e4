"""Shared by the GUI benchmarks: run the Qt event loop until a condition holds."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # no Qt import here: gui_latency times the app's own start-up, Qt loading included
    from PySide6.QtWidgets import QApplication


def wait_for(app: QApplication, condition: Callable[[], object], timeout_s: float = 60) -> None:
    """Process events until condition() is true; TimeoutError after timeout_s. The half-millisecond
    poll keeps the latencies measured around it exact."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:g} s")
        app.processEvents()
        time.sleep(0.0005)
