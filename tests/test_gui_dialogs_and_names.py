"""Save dialogs start in one remembered export folder; bookmark and Open Recent names; README wording (issue 31)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QFileDialog

from explorer import settings as settings_module
from explorer.attribute_panel import AttributePanel
from explorer.export_dialog import ExportDialog, ExportKind
from explorer.interpolation_panel import InterpolationPanel
from explorer.main_window import MainWindow, recent_labels
from explorer.selection import FaceItem, Selection
from explorer.settings import EXPORT_FOLDER_SETTING, app_settings, export_folder
from explorer.video_dialog import VideoDialog
from explorer.widgets import PICTURE_FORMATS, ask_export_folder, ask_save_path
from tests.conftest import make_tiny_model
from tests.test_panel_attribute import e, linear_model

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def pictures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's Pictures folder, made to be tmp_path/Pictures."""
    folder = tmp_path / "Pictures"
    folder.mkdir()
    fake = SimpleNamespace(StandardLocation=QStandardPaths.StandardLocation, writableLocation=lambda _: str(folder))
    monkeypatch.setattr(settings_module, "QStandardPaths", fake)
    return folder


@pytest.fixture
def save_dialog(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Each save dialog's start path; the user picks tmp_path/chosen/<the proposed name>."""
    starts: list[str] = []
    (tmp_path / "chosen").mkdir()

    def answer(_parent, _title, start, filters="", *args, **kwargs):
        starts.append(start)
        return str(tmp_path / "chosen" / Path(start).name), filters.split(";;")[0]

    monkeypatch.setattr(QFileDialog, "getSaveFileName", answer)
    return starts


def test_export_folder_is_the_pictures_folder_at_first(pictures):
    assert export_folder(app_settings()) == pictures


def test_export_folder_falls_back_to_home_without_a_pictures_folder(pictures):
    pictures.rmdir()
    assert export_folder(app_settings()) == Path.home()


def test_a_named_save_starts_in_the_export_folder_and_remembers_the_chosen_one(qtbot, pictures, save_dialog,
                                                                               tmp_path):
    path = ask_save_path(None, "Save", "grid.png", PICTURE_FORMATS)
    assert save_dialog == [str(pictures / "grid.png")]
    assert path == tmp_path / "chosen" / "grid.png"
    assert export_folder(app_settings()) == tmp_path / "chosen"
    ask_save_path(None, "Save", "map.csv", {".csv": "CSV table (*.csv)"})
    assert save_dialog[-1] == str(tmp_path / "chosen" / "map.csv")


def test_a_save_with_its_own_folder_leaves_the_export_folder_alone(qtbot, pictures, save_dialog, tmp_path):
    ask_save_path(None, "Save session", tmp_path / "explorer.vaegan-session", {".vaegan-session": "Session (*)"})
    assert save_dialog == [str(tmp_path / "explorer.vaegan-session")]
    assert app_settings().value(EXPORT_FOLDER_SETTING) is None


def test_a_folder_to_save_into_starts_in_and_becomes_the_export_folder(qtbot, pictures, monkeypatch, tmp_path):
    starts = []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        lambda _parent, _title, start="": starts.append(start) or str(tmp_path))
    assert ask_export_folder(None, "Save into") == tmp_path
    assert starts == [str(pictures)] and export_folder(app_settings()) == tmp_path


def test_panel_save_dialogs_start_in_the_export_folder(qtbot, pictures, save_dialog):
    attributes = AttributePanel(Selection())
    interpolation = InterpolationPanel(Selection())
    for widget in (attributes, interpolation):
        qtbot.addWidget(widget)
    saved = []
    attributes._save_dialog(lambda path, **_: saved.append(path) or Path(path), "edited face")
    assert save_dialog[-1] == str(pictures / "edited_face.png")
    interpolation._save_dialog(lambda path, **_: saved.append(path) or Path(path), "Save strip…")
    assert Path(save_dialog[-1]).parent == Path(saved[0]).parent == Path(saved[1]).parent


def test_picture_and_video_export_dialogs_start_in_the_export_folder(qtbot, pictures, monkeypatch):
    starts = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda _p, _t, start, *a, **k: starts.append(start) or ("", ""))
    model = make_tiny_model(with_reference=False)
    export = ExportDialog(model, ExportKind.SAMPLES, None, [], app_settings())
    video = VideoDialog(model, torch.zeros(2, model.latent_dim), "slerp")
    for dialog in (export, video):
        qtbot.addWidget(dialog)
    export.choose_file_and_save()
    video.choose_file()
    assert [Path(start).parent for start in starts] == [pictures, pictures]


def test_bookmark_name_lists_the_applied_edits_then_the_sliders(qtbot):
    selection = Selection()
    panel = AttributePanel(selection)
    qtbot.addWidget(panel)
    selection.set_model(linear_model({"Smiling": e(0), "Eyeglasses": e(1)}))
    selection.select_face(FaceItem("face", torch.zeros(4)))
    panel.set_strengths({"Smiling": 1.0})
    panel.apply_edit()
    assert panel.current_face().name == "face, Smiling +1.00"
    panel.set_strengths({"Eyeglasses": 0.8})
    assert panel.current_face().name == "face, Smiling +1.00, Eyeglasses +0.80"


def test_recent_models_with_the_same_name_and_folder_show_more_of_their_paths():
    first, second = "/a/x/checkpoints/faces64.safetensors", "/b/x/checkpoints/faces64.safetensors"
    assert recent_labels([first, second, "/c/run/checkpoint.safetensors"]) == [
        "faces64 — a/x/checkpoints", "faces64 — b/x/checkpoints", "checkpoint — run"]
    assert recent_labels(["/x/checkpoints/faces64.safetensors", "/checkpoints/faces64.safetensors"]) == [
        "faces64 — x/checkpoints", "faces64 — /checkpoints"]


def test_open_recent_menu_entries_differ(qtbot, tmp_path):
    paths = [str(tmp_path / side / "checkpoints" / "faces64.safetensors") for side in ("one", "two")]
    app_settings().setValue("recent", paths)
    window = MainWindow(tmp_path / "missing.safetensors")
    qtbot.addWidget(window)
    actions = window.recent_menu.actions()
    assert [action.text() for action in actions] == ["faces64 — one/checkpoints", "faces64 — two/checkpoints"]
    assert [action.toolTip() for action in actions] == paths


def test_readme_names_the_reconstruct_button_and_where_previews_go():
    text = README.read_text(encoding="utf-8")
    assert "open pictures" not in text.lower() and "*Open…*" in text
    assert "the Train panel shows them live" in text
