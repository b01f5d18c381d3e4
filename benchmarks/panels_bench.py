"""Timings of the explorer panels' interactive paths (figures to read, not pass/fail tests).

    python benchmarks/panels_bench.py [--threads N] [--repeats N] [--decoder-width M]

Uses checkpoints/faces64.safetensors when present, else (or with --decoder-width) a random model of the bundled
size (width 0.25, kernel 4, the decoder M times wider). Prints the median (and the process CPU time, which shows how much of
the wall time was spent waiting for a busy machine) of each figure next to its target.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QEvent, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from core.api import Model, ReferenceMap, load_model  # noqa: E402
from core.device import resolve_device  # noqa: E402
from core.latent import fit_projection  # noqa: E402
from core.model import VAEGAN, ModelConfig  # noqa: E402
from explorer.attribute_panel import AttributePanel  # noqa: E402
from explorer.interpolation_panel import InterpolationPanel  # noqa: E402
from explorer.map_panel import MapPanel  # noqa: E402
from explorer.selection import FaceItem, Selection  # noqa: E402

BUNDLED_MODEL = ROOT / "checkpoints" / "faces64.safetensors"
MAP_POINTS = 10_000


def measure(fn: Callable[[], None], repeats: int, warmup: int = 2,
            before: Callable[[], None] = lambda: None) -> tuple[float, float]:
    """(median wall ms, median process-CPU ms) of fn; `before` runs untimed ahead of each call."""
    for _ in range(warmup):
        before()
        fn()
    walls, cpus = [], []
    for _ in range(repeats):
        before()
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def report(name: str, target_ms: float, timing: tuple[float, float]) -> None:
    wall, cpu = timing
    verdict = "ok" if wall <= target_ms else "OVER"
    print(f"{name:<46} median {wall:8.1f} ms  (cpu {cpu:7.1f} ms)  target <= {target_ms:g} ms  {verdict}")


def bench_model(decoder_width: float | None) -> Model:
    if BUNDLED_MODEL.is_file() and decoder_width is None:
        model = load_model(BUNDLED_MODEL, device="cpu")
    else:
        torch.manual_seed(0)
        net = VAEGAN(ModelConfig(width=0.25, kernel_size=4, decoder_width=decoder_width or 1.0),
                     with_discriminator=False)
        model = Model(net.to(memory_format=torch.channels_last), resolve_device("cpu"))
    g = torch.Generator().manual_seed(0)
    model.attributes = {f"Attribute {i}": torch.randn(model.latent_dim, generator=g) for i in range(40)}
    return model


def synthetic_reference(model: Model, count: int) -> ReferenceMap:
    """count latents with cheap stand-in thumbnails: the map's speed does not depend on their pixels."""
    latents = torch.randn(count, model.latent_dim, generator=torch.Generator().manual_seed(1))
    projection, coords = fit_projection(latents, "pca")
    thumbs = torch.randint(0, 255, (count, 3, 64, 64), dtype=torch.uint8)
    labels = torch.where(torch.rand(count, 1) > 0.5, 1, -1).to(torch.int8)
    state = projection.state()
    return ReferenceMap(latents, coords, thumbs, state["mean"], state["axes"], labels, ("Smiling",))


def bench_pca(repeats: int) -> None:
    latents = torch.randn(MAP_POINTS, 128, generator=torch.Generator().manual_seed(2))
    report(f"PCA map of {MAP_POINTS:,} latents (D=128)", 500, measure(lambda: fit_projection(latents, "pca"),
                                                                     repeats, warmup=1))


def bench_slider(app: QApplication, selection: Selection, repeats: int) -> None:
    panel = AttributePanel(selection)
    panel.resize(1100, 700)
    panel.show()
    app.processEvents()
    row = panel.rows["Attribute 0"]
    values = iter(np.tile(np.linspace(-3, 3, 61), 100))

    def frame() -> None:
        row.set_strength(float(next(values)))
        panel.flush()
        panel.after_view.repaint()

    report("attribute slider frame (decode + meter + paint)", 15, measure(frame, repeats))

    def every_view() -> None:
        row.set_strength(float(next(values)))
        panel.flush()
        for view in (panel.after_view, panel.realism_view, panel.rows_widget):
            view.repaint()

    meter = "realism meter and safe ranges" if panel.meter else "no meter: the model has no Gaussian"
    report(f"  slider move -> every view ({meter})", 30, measure(every_view, repeats))
    selection.select_face(fitted_photo_face(selection.model))
    report("  same, a fitted face of a photo (tuned decoder)", 15, measure(frame, repeats))

    def photo_frame() -> None:
        frame()
        panel.photo_view.repaint()

    report("  same, with the whole photo pasted into", 30, measure(photo_frame, repeats))
    panel.source_combo.setCurrentIndex(panel.source_combo.findData("directions"))
    if "PC1" in panel.rows:
        row = panel.rows["PC1"]
        report("  principal-direction slider -> every view", 30, measure(every_view, repeats))
    panel.close()


def fitted_photo_face(model: Model) -> FaceItem:
    """scikit-image's astronaut (a test extra), its face found, aligned and fitted as a dropped photo's."""
    from skimage import data

    from core.data import prepare_faces
    from core.photo import fit_photo_faces

    face = prepare_faces(Image.fromarray(data.astronaut()), model.image_size, "auto")[0]
    fit = fit_photo_faces(model, [face])
    return FaceItem("astronaut", fit.latents[0], face.pixels.float() / 255, "astronaut", face.original, face.to_crop,
                    fit.tuning, pivot=True)


def bench_strip(app: QApplication, selection: Selection, repeats: int) -> None:
    panel = InterpolationPanel(selection)
    panel.resize(1100, 700)
    panel.show()
    panel.toggle_playing()
    g = torch.Generator().manual_seed(3)
    selection.send_endpoints([FaceItem(f"f{i}", torch.randn(selection.model.latent_dim, generator=g)) for i in (0, 1)])
    panel.steps_slider.setValue(16)
    methods = iter(["linear", "slerp"] * 1000)

    def frame() -> None:
        panel.method_combo.setCurrentIndex(panel.method_combo.findData(next(methods)))
        panel.frames()
        panel.frame_grid.repaint()

    report("16-frame strip at 64x64 (one batch + paint)", 60, measure(frame, repeats))
    panel.close()


def bench_map(app: QApplication, selection: Selection, repeats: int) -> None:
    panel = MapPanel(selection)
    panel.resize(1200, 800)
    panel.show()
    app.processEvents()
    view = panel.view_box
    step = iter(range(10**6))

    def pan_frame() -> None:
        direction = 1 if next(step) % 40 < 20 else -1
        view.translateBy(x=direction * 0.05, y=direction * 0.03)
        panel.plot_widget.grab()

    report(f"map of {MAP_POINTS:,} points, pan frame (render)", 16, measure(pan_frame, repeats))
    panel.colour_combo.setCurrentIndex(panel.colour_combo.findText("Vector: Attribute 0"))
    report("  same, coloured by a vector score", 16, measure(pan_frame, repeats))
    coords = iter(np.tile(selection.model.reference.coords.numpy()[:200], (100, 1)))

    def hover() -> None:
        x, y = next(coords)
        position = panel.plot_widget.mapFromScene(view.mapViewToScene(QPointF(x, y)))
        viewport = panel.plot_widget.viewport()
        QApplication.sendEvent(viewport, QMouseEvent(QEvent.Type.MouseMove, QPointF(position),
                                                     QPointF(viewport.mapToGlobal(position)), Qt.MouseButton.NoButton,
                                                     Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))
        panel.face_view.repaint()

    def pause() -> None:
        time.sleep(0.012)  # pyqtgraph drops mouse moves closer together than 10 ms

    report("  hover a point: find it + show its face", 16, measure(hover, repeats, before=pause))
    axes = iter(["Along Attribute 0", "Map's own axes"] * (repeats + 2))

    def switch_axis() -> None:
        panel.axis_combo.setCurrentIndex(panel.axis_combo.findText(next(axes)))
        panel.plot_widget.repaint()

    report("  x axis along a vector and back (refit + render)", 500, measure(switch_axis, max(3, repeats // 5)))
    panel.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--decoder-width", type=float, default=None,
                        help="time a random bundle-sized model with a decoder this many times wider")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    app = QApplication.instance() or QApplication([])
    model = bench_model(args.decoder_width)
    source = model.path.name if model.path else \
        f"random model, width 0.25, kernel 4, decoder width x{model.config.decoder_width:g}"
    print(f"model: {source}; torch threads: {args.threads}; load average: {os.getloadavg()[0]:.1f}")
    selection = Selection()
    selection.set_model(model)
    bench_pca(max(3, args.repeats // 5))
    bench_slider(app, selection, args.repeats)
    bench_strip(app, selection, args.repeats)
    model.reference = synthetic_reference(model, MAP_POINTS)
    selection.set_model(model)
    bench_map(app, selection, args.repeats)


if __name__ == "__main__":
    main()
