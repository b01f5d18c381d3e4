"""The Train panel's run figures and hints: a run from a model says its samples start as that model's faces, the
time left follows Max minutes, the opening log line follows the step, and at 1024x640 no plot legend, tick or
status-bar message is clipped."""
from __future__ import annotations

from pathlib import Path

from core.api import load_model
from explorer.training_live import PLOTS, LiveView
from explorer.training_panel import TrainingPanel
from test_gui_app import isolated_settings, open_window  # noqa: F401 - autouse fixture
from test_gui_training import drawn_labels, early_run_records, live_view, panel  # noqa: F401 - fixtures


def seconds(duration: str) -> int:
    """'2m 50s' or '1h 22m' in seconds."""
    first, second = duration.split()
    if first.endswith("h"):
        return 3600 * int(first[:-1]) + 60 * int(second[:-1])
    return 60 * int(first[:-1]) + int(second[:-1])


def time_left(stats: str) -> int:
    return seconds(stats.split("about ")[1].removesuffix(" left"))


def test_a_run_from_the_open_model_shows_its_faces_current_step_and_minutes(qtbot, panel: TrainingPanel,
                                                                           face_folder: Path, tmp_path: Path,
                                                                           tiny_model_path: Path):
    panel.selection.set_model(load_model(tiny_model_path, device="cpu"))
    panel.set_folder(face_folder)
    qtbot.waitUntil(lambda: panel.dataset is not None, timeout=20_000)
    panel.batch_size.setValue(4)
    panel.epochs.setValue(1000)   # a 10,000-step cap: far more than 3 minutes of this run
    panel.preview_every.setValue(2)
    panel.option_controls["max_minutes"][1].setValue(3)
    panel.device.setCurrentIndex(panel.device.findData("cpu"))
    panel.run_folder.setText(str(tmp_path / "run"))
    panel.start()
    live = panel.live
    assert "start as the faces of tiny" in live.hint.text() and "noise" not in live.hint.text()
    qtbot.waitUntil(lambda: live.stats.text().startswith("Step "), timeout=60_000)
    assert 0 < time_left(live.stats.text()) <= 3 * 60, live.stats.text()
    qtbot.waitUntil(lambda: panel.thread.trainer.step >= 6 and live.history["step"][0][-1] >= 6, timeout=60_000)
    step = int(live.history["step"][0][-1])
    opening = live.log.item(0).text()
    assert f"step {step:,} of " in opening and "step 0 of" not in opening, opening
    assert "start as the faces of tiny" in live.hint.text() and "20,000" not in live.hint.text()


def test_the_time_left_and_plan_follow_the_max_minutes(live_view: LiveView):
    live_view.reset("vaegan", batch_size=16, max_minutes=3)
    first = early_run_records(1)[0] | {"step": 20, "elapsed_s": 10.0, "images_per_s": 32.0, "eta_s": 2_980 * 16 / 32,
                                       "planned_steps": 3_000}   # before the trainer planned: its step cap
    live_view.add_metrics(first)
    assert live_view.stats.text().startswith(f"Step 20 of {20 + 170 * 2:,} ·")
    assert time_left(live_view.stats.text()) == 170
    live_view.add_metrics(first | {"step": 40, "elapsed_s": 20.0, "eta_s": 150.0, "planned_steps": 340})
    assert live_view.stats.text().startswith("Step 40 of 340 ·") and time_left(live_view.stats.text()) == 150


def test_a_new_model_keeps_the_noise_hint_and_the_opening_line_follows_the_step(live_view: LiveView):
    live_view.reset("vaegan", batch_size=16)
    assert "coloured noise" in live_view.hint.text()
    live_view.add_message("training on cpu (1 process(es)), 40 images, step 0 of 3,000")
    live_view.add_message("step 7: non-finite loss (kl); rolled back to the weights of step 0")
    for record in early_run_records(2):
        live_view.add_metrics(record)
    assert live_view.log.item(0).text().endswith("training on cpu (1 process(es)), 40 images, step 40 of 1,000")
    assert live_view.log.item(1).text().endswith("rolled back to the weights of step 0")
    assert "Faces usually appear after about 20,000 pictures" in live_view.hint.text()


def test_at_1024x640_no_legend_or_tick_of_the_plots_is_clipped(qtbot, tiny_model_path: Path):
    window = open_window(qtbot, tiny_model_path)
    window.resize(1024, 640)
    window.show_panel("train")
    live = window.panels["train"].live
    live.reset("vaegan", batch_size=16)
    for record in early_run_records(12):   # steps 20 .. 240
        live.add_metrics(record)
    qtbot.waitUntil(lambda: len(live.autoranged) == len(PLOTS), timeout=5_000)
    qtbot.wait(200)
    for title, plot in live.plots.items():
        width = plot.viewport().width()
        title_label = plot.plotItem.titleLabel
        legend = title_label.mapRectToScene(title_label.itemRect())
        assert 0 <= legend.left() and legend.right() <= width, (title, legend, width)
        assert plot.plotItem.vb.sceneBoundingRect().right() <= width, title
        labels = drawn_labels(plot, "bottom", in_scene=True)
        assert labels and all(0 <= rect.left() and rect.right() <= width for rect, _ in labels), (title, labels)


def test_a_narrow_plot_puts_its_curve_names_on_a_second_line(qtbot, live_view: LiveView):
    live_view.reset("vaegan", batch_size=16)
    plot = live_view.plots["Discriminator outputs"]
    assert "<br>" not in plot.plotItem.titleLabel.text
    live_view.resize(440, 420)
    qtbot.waitUntil(lambda: "<br>" in plot.plotItem.titleLabel.text)
    qtbot.wait(100)
    assert plot.plotItem.vb.sceneBoundingRect().right() <= plot.viewport().width()
    live_view.resize(640, 420)
    qtbot.waitUntil(lambda: "<br>" not in plot.plotItem.titleLabel.text)


def test_the_panel_status_messages_fit_beside_the_model_summary(qtbot, tiny_model_path: Path, tmp_path: Path):
    window = open_window(qtbot, tiny_model_path)
    window.resize(1024, 640)
    window.show_panel("train")
    panel, bar = window.panels["train"], window.statusBar()
    checkpoint = tmp_path / "vaegan-runs" / "holiday-photos-2025-06-01-2" / "checkpoint.safetensors"
    for say in (panel._checkpoint_saved, panel._completed):
        say(str(checkpoint))
        assert bar.fontMetrics().horizontalAdvance(bar.currentMessage()) < window.model_info.x() - 12, \
            bar.currentMessage()
    assert bar.currentMessage() == "Training ended; the model is ready: Open in explorer"
