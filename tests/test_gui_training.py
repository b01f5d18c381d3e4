"""Training from the Train panel: scan, live curves and previews, pause, stop, checkpoint, explorer model,
resume of a saved run, and the question asked when the window closes mid-training."""
from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QPainter, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox, QScrollArea, QWidget

from core.api import load_model
from core.checkpoint import load_checkpoint, load_checkpoint_meta
from core.cli import main as vaegan
from explorer import training_panel
from explorer.selection import Selection
from explorer.training_live import FACES_APPEAR_IMAGES, PLOTS, LiveView, format_duration
from explorer.training_panel import RUNS_ROOT, TrainingPanel, default_run_folder, free_folder
from explorer.widgets import ERROR_STYLE
from test_data import write_attributes
from test_gui_app import isolated_settings, open_window  # noqa: F401 - autouse fixture


@pytest.fixture
def panel(qtbot):
    panel = TrainingPanel(Selection())
    qtbot.addWidget(panel)
    yield panel
    if panel.is_training():
        panel.thread.stop(finalize=False)
        panel.thread.wait()


def test_training_a_tiny_model_live(qtbot, panel: TrainingPanel, face_folder: Path, tmp_path: Path):
    opened = []
    panel.openModelRequested.connect(opened.append)
    panel.set_folder(face_folder)
    qtbot.waitUntil(lambda: panel.dataset is not None, timeout=20_000)
    assert panel.scan_status.text().startswith("40 usable pictures")
    assert panel.live.crops_view.image_array() is not None

    panel.width.setValue(0.125)
    panel.latent_size.setValue(8)
    panel.batch_size.setValue(8)
    panel.epochs.setValue(1000)
    panel.preview_every.setValue(2)
    panel.device.setCurrentIndex(panel.device.findData("cpu"))
    run_dir = tmp_path / "run"
    panel.run_folder.setText(str(run_dir))
    panel.start()
    live = panel.live
    laid_out = {title: sorted(curves) for title, curves in live.curves.items()}
    assert laid_out["Discriminator outputs"] == ["d_prior", "d_real", "d_rec"]  # before any metrics arrive
    assert laid_out["Decoder loss"] == ["feature", "gen"]
    qtbot.waitUntil(lambda: live.previews_shown >= 1, timeout=30_000)
    first = live.samples_view.image_array().copy()
    qtbot.waitUntil(lambda: live.previews_shown >= 3, timeout=30_000)
    assert not np.array_equal(first, live.samples_view.image_array())
    assert len(live.curves["Encoder loss"]["kl"].getData()[0]) >= 1
    assert {title: sorted(curves) for title, curves in live.curves.items()} == laid_out
    assert "images/s" in live.stats.text()

    panel.toggle_pause()
    assert panel.thread.paused and panel.pause_button.text() == "Resume"

    def step_held_for_a_second() -> bool:  # the step under way when pausing may end late on a busy machine
        before = panel.thread.trainer.step
        qtbot.wait(1000)
        return panel.thread.trainer.step == before

    qtbot.waitUntil(step_held_for_a_second, timeout=20_000)
    step = panel.thread.trainer.step
    qtbot.wait(500)
    assert panel.thread.trainer.step == step
    panel.toggle_pause()
    qtbot.waitUntil(lambda: panel.thread.trainer.step > step, timeout=10_000)

    panel.stop()
    qtbot.waitUntil(lambda: not panel.is_training(), timeout=60_000)
    qtbot.waitUntil(lambda: panel.open_button.isEnabled(), timeout=10_000)
    step = panel.thread.trainer.step
    assert live.stats.text().startswith(f"Stopped at step {step:,} of ") and "left" not in live.stats.text()
    assert str(run_dir) in live.stats.text() and not live.hint.isVisible()
    assert sorted(p.name for p in run_dir.glob("*.safetensors")) == ["checkpoint.safetensors"]  # one model file
    assert panel.result_path == run_dir / "checkpoint.safetensors"
    assert len(load_model(run_dir, device="cpu").reference.latents) == 40
    panel.open_button.click()
    assert opened == [str(run_dir / "checkpoint.safetensors")]


def train_one_step(face_folder: Path, run_dir: Path, *options: str) -> None:
    assert vaegan(["train", str(face_folder), "--out", str(run_dir), "--max-steps", "1", "--batch-size", "4",
                   "--width", "0.125", "--latent-dim", "8", "--crop", "none", "--device", "cpu", "--threads", "1",
                   *options]) == 0


def test_a_run_trained_with_the_cli_opens_in_the_explorer_with_its_map(qtbot, face_folder: Path, tmp_path: Path):
    run_dir = tmp_path / "run"
    train_one_step(face_folder, run_dir)
    window = open_window(qtbot, run_dir)
    map_panel = window.panels["map"]
    assert len(map_panel.scatter.data) == 40 and map_panel.data.is_reference
    assert map_panel.colour_combo.findText("smiling") >= 0


def test_resuming_a_run_rereads_its_pictures_and_labels(qtbot, panel: TrainingPanel, face_folder: Path,
                                                        tmp_path: Path):
    table = tmp_path / "labels" / "attributes.txt"
    table.parent.mkdir()
    faces = sorted(face_folder.rglob("*.jpg"))
    write_attributes(table, ["Smiling"], {p.name: [1 if p.parent.name == "smiling" else -1] for p in faces})
    run_dir = tmp_path / "run"
    train_one_step(face_folder, run_dir, "--attributes", str(table))
    panel.device.setCurrentIndex(panel.device.findData("cpu"))
    panel.resume_run(run_dir)
    qtbot.waitUntil(panel.is_training, timeout=30_000)
    assert panel.dataset.label_names == ["Smiling"] and panel.folder_edit.text() == str(face_folder.resolve())
    assert "reloaded for run" in panel.scan_status.text()


def resume_until_step_3(qtbot, panel: TrainingPanel, face_folder: Path, run_dir: Path) -> None:
    """A one-step run resumed in the panel on the CPU, once its trainer has passed step 3."""
    train_one_step(face_folder, run_dir)
    panel.device.setCurrentIndex(panel.device.findData("cpu"))
    panel.resume_run(run_dir)
    qtbot.waitUntil(lambda: panel.is_training() and panel.thread.trainer is not None
                    and panel.thread.trainer.step >= 3, timeout=60_000)


def test_closing_while_training_asks_then_stops_with_a_checkpoint(qtbot, panel: TrainingPanel, face_folder: Path,
                                                                  tmp_path: Path, monkeypatch):
    run_dir = tmp_path / "run"
    resume_until_step_3(qtbot, panel, face_folder, run_dir)
    asked = []
    answer = QMessageBox.StandardButton.Cancel

    def question(*args) -> QMessageBox.StandardButton:
        asked.append(args[2])
        return answer

    monkeypatch.setattr(QMessageBox, "question", question)
    assert not panel.confirm_close() and panel.is_training()
    answer = QMessageBox.StandardButton.Yes
    assert panel.confirm_close() and not panel.is_training()
    assert len(asked) == 2 and "save a checkpoint" in asked[0]
    assert load_checkpoint_meta(run_dir / "checkpoint.safetensors")["training_state"]["step"] >= 3


def test_training_can_start_from_the_open_model(qtbot, panel: TrainingPanel, face_folder: Path, tmp_path: Path,
                                                tiny_model_path: Path):
    assert [panel.start_from.itemText(i) for i in range(panel.start_from.count())] == ["A new model"]
    model = load_model(tiny_model_path, device="cpu")
    panel.width.setValue(0.5)
    panel.selection.set_model(model)
    assert panel.start_from.itemText(1) == "The open model (tiny)"
    assert panel.start_from.currentIndex() == 1  # the faster path is the default
    assert panel.width.value() == model.config.width and panel.latent_size.value() == model.config.latent_dim
    assert not panel.width.isEnabled() and not panel.kernel.isEnabled()

    panel.set_folder(face_folder)
    qtbot.waitUntil(lambda: panel.dataset is not None, timeout=20_000)
    panel.batch_size.setValue(4)
    panel.epochs.setValue(2)
    assert panel.train_config().discriminator_warmup_steps == 4  # a fifth of the 20-step run
    panel.epochs.setValue(1000)
    assert panel.train_config().discriminator_warmup_steps == 200
    panel.device.setCurrentIndex(panel.device.findData("cpu"))
    panel.show()
    qtbot.waitExposed(panel)
    panel.more_button.click()
    freeze_encoder = panel.option_controls["freeze_encoder"][1]
    assert freeze_encoder.isVisible() and freeze_encoder.isEnabled()
    qtbot.mouseClick(freeze_encoder, Qt.MouseButton.LeftButton, pos=QPoint(8, freeze_encoder.height() // 2))
    run_dir = tmp_path / "run"
    panel.run_folder.setText(str(run_dir))
    panel.start()
    qtbot.waitUntil(lambda: panel.thread.trainer is not None and panel.thread.trainer.step >= 2, timeout=60_000)
    panel.thread.stop(finalize=False)
    qtbot.waitUntil(lambda: not panel.is_training(), timeout=60_000)

    run = load_checkpoint(run_dir / "checkpoint.safetensors")
    assert run.meta["train_config"]["init_from"] == str(tiny_model_path)
    source = model.net.encoder.state_dict()
    for name, tensor in run.group("enc").items():  # still in the Dis-only warm-up: Enc as it was
        if tensor.is_floating_point() and "running" not in name:
            assert torch.equal(tensor, source[name]), name

    assert run.meta["train_config"]["freeze_encoder"] is True

    QTest.keyClick(panel.start_from, Qt.Key.Key_Up)  # as a user would: "A new model"
    assert panel.width.isEnabled() and panel.train_config().init_from is None
    assert not freeze_encoder.isEnabled() and not panel.train_config().freeze_encoder  # nothing to freeze
    panel.selection.set_model(load_model(tiny_model_path, device="cpu"))
    assert panel.start_from.currentIndex() == 0  # a user's own choice of a new model stays


def early_run_records(count: int = 6) -> list[dict[str, float]]:
    """Metrics like those of a run's first minutes: feature loss falling from 600, KL from 20, Dis near 0.1."""
    return [{"step": 20 * (i + 1), "epoch": 0.1 * (i + 1), "images_per_s": 30.0, "elapsed_s": 10.0 * (i + 1),
             "eta_s": 600.0, "planned_steps": 1_000, "kl": 20 - 3 * i, "feature": 600 - 50 * i, "gen": 3 + 0.1 * i,
             "dis_real": 0.09 + 0.01 * (i % 3), "dis_fake": 0.1 + 0.005 * i, "d_real": 0.7, "d_rec": 0.3,
             "d_prior": 0.2} for i in range(count)]


@pytest.fixture
def live_view(qtbot):
    view = LiveView()
    qtbot.addWidget(view)
    view.resize(640, 420)  # what the live view gets in a 1024x640 window
    view.show()
    qtbot.waitExposed(view)
    return view


def drawn_labels(plot, side: str = "left", in_scene: bool = False) -> list:
    """The tick labels an axis draws now: (rectangle, text) pairs, the rectangles in the axis's own coordinates or
    (`in_scene`) in the plot's scene."""
    axis = plot.getAxis(side)
    image = QImage(10, 10, QImage.Format.Format_RGB32)
    painter = QPainter(image)
    try:
        _, _, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [(axis.mapRectToScene(rect) if in_scene else rect, text) for rect, _, text in texts]


def test_tick_labels_never_overlap_and_no_legend_covers_a_curve(qtbot, live_view: LiveView):
    live_view.reset("vaegan", batch_size=16)
    for record in early_run_records():
        live_view.add_metrics(record)
    qtbot.waitUntil(lambda: len(live_view.autoranged) == len(PLOTS), timeout=5_000)
    qtbot.wait(200)
    for title, plot in live_view.plots.items():
        labels = drawn_labels(plot)
        assert len(labels) >= 2, (title, labels)
        for (a, text_a), (b, text_b) in itertools.combinations(labels, 2):
            assert not a.intersects(b), (title, text_a, text_b)
        assert plot.plotItem.legend is None  # curve names are in the title, outside the curves
    assert "KL" in live_view.plots["Encoder loss"].plotItem.titleLabel.text


def test_a_plain_hint_says_when_faces_appear_until_they_do(live_view: LiveView):
    live_view.reset("vaegan", batch_size=64)
    assert live_view.hint.isVisibleTo(live_view) and "expected" in live_view.hint.text()
    record = early_run_records(1)[0] | {"step": 100, "images_per_s": 40.0}
    live_view.add_metrics(record)
    wait = format_duration((FACES_APPEAR_IMAGES - 100 * 64) / 40.0)
    assert f"Faces usually appear after about {FACES_APPEAR_IMAGES:,} pictures seen: in about {wait}" \
        in live_view.hint.text()
    live_view.add_metrics(record | {"step": FACES_APPEAR_IMAGES // 64 + 1})
    assert not live_view.hint.isVisibleTo(live_view)


def test_run_folders_have_one_date_and_no_space(tmp_path: Path):
    assert " " not in str(RUNS_ROOT)
    first = default_run_folder(Path("/photos/train200"), tmp_path)
    assert first.name == f"train200-{time.strftime('%Y-%m-%d')}"
    first.mkdir()
    assert default_run_folder(Path("/photos/train200"), tmp_path) == free_folder(first) == \
        first.with_name(first.name + "-2")


def test_an_error_without_a_message_still_reads_as_one_line_in_the_one_red(qtbot, panel: TrainingPanel, tmp_path,
                                                                           monkeypatch):
    def fail(*args):
        raise RuntimeError()

    monkeypatch.setattr(training_panel, "prepare_resume", fail)
    panel.resume_run(tmp_path / "run")
    qtbot.waitUntil(lambda: "Cannot resume" in panel.scan_status.text(), timeout=10_000)
    assert panel.scan_status.text() == "Cannot resume run: RuntimeError"
    assert panel.scan_status.styleSheet() == ERROR_STYLE and panel.resume_button.isEnabled()


def wheel_turn(widget: QWidget, notches: int) -> None:
    """A wheel turn over the middle of `widget`, as the mouse sends it (positive: away from the user)."""
    centre = QPointF(widget.width() / 2, widget.height() / 2)
    QApplication.sendEvent(widget, QWheelEvent(centre, widget.mapToGlobal(centre), QPoint(), QPoint(0, 120 * notches),
                                               Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                                               Qt.ScrollPhase.NoScrollPhase, False))


def test_the_wheel_scrolls_the_settings_and_changes_only_a_clicked_field(qtbot, panel: TrainingPanel):
    panel.resize(1024, 560)
    panel.show()
    qtbot.waitExposed(panel)
    panel.more_button.click()
    learning_rate = panel.option_controls["lr"][1]
    bar = panel.findChild(QScrollArea).verticalScrollBar()
    before = learning_rate.value()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    wheel_turn(learning_rate, -3)
    assert learning_rate.value() == before and bar.value() > 0   # the form scrolled, the setting stayed
    qtbot.mouseClick(learning_rate.lineEdit(), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(learning_rate.hasFocus)
    wheel_turn(learning_rate, 1)
    assert learning_rate.value() > before
