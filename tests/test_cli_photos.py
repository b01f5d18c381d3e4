"""`vaegan edit` and `vaegan reconstruct` on real photos: the whole photo comes back at its own size with
every face edited, faces are aligned and named per face, folders are edited in batch without overwriting."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cli import main


@pytest.fixture
def photos(tmp_path: Path, astronaut: np.ndarray, group_photo: Image.Image) -> Path:
    folder = tmp_path / "photos"
    (folder / "more").mkdir(parents=True)
    Image.fromarray(astronaut).save(folder / "portrait.jpg", quality=95)
    group_photo.save(folder / "more" / "group.png")
    Image.new("RGB", (400, 300), (70, 140, 200)).save(folder / "sky.png")
    return folder


def run(*args: object) -> int:
    return main([str(a) for a in args])


def test_edit_writes_the_whole_photo_at_its_size_with_only_the_face_changed(tiny_model_path, photos, tmp_path):
    out = tmp_path / "edited.png"
    assert run("edit", tiny_model_path, photos / "more" / "group.png", "--attribute", "Smiling=3", "--out", out) == 0
    original = np.asarray(Image.open(photos / "more" / "group.png").convert("RGB")).astype(int)
    edited = np.asarray(Image.open(out)).astype(int)
    assert edited.shape == original.shape
    changed = np.abs(edited - original).sum(-1) > 0
    assert changed[:, :300].any() and changed[:, 330:].any()  # both faces edited
    assert not changed[:, 250:300].all(axis=0).any() and not changed[:5].any()  # background untouched
    assert run("edit", tiny_model_path, photos / "portrait.jpg", "--attribute", "Smiling=1", "--face-only",
               "--out", tmp_path / "face.png") == 0
    assert Image.open(tmp_path / "face.png").size == (64, 64)


def test_edit_of_a_photo_without_a_face_is_one_line(tiny_model_path, photos, tmp_path, capsys):
    assert run("edit", tiny_model_path, photos / "sky.png", "--attribute", "Smiling=1", "--out", tmp_path / "x.png") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sky.png" in err[0] and "no face found" in err[0]


def test_reconstruct_writes_crop_and_reconstruction_per_face(tiny_model_path, photos, tmp_path):
    out = tmp_path / "recon"
    assert run("reconstruct", tiny_model_path, photos / "portrait.jpg", photos / "more" / "group.png", "--out", out) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "group_1_crop.png", "group_1_recon.png", "group_2_crop.png", "group_2_recon.png", "portrait_crop.png",
        "portrait_recon.png"]
    crop = np.asarray(Image.open(out / "portrait_crop.png")).astype(float)
    plain = np.asarray(Image.open(photos / "portrait.jpg").resize((64, 64))).astype(float)
    assert np.abs(crop - plain).mean() > 30  # aligned on the face, not the whole picture squashed


def test_a_folder_is_edited_into_another_with_a_report_and_never_overwritten(tiny_model_path, photos, tmp_path,
                                                                              capsys):
    out = tmp_path / "edited"
    assert run("edit", tiny_model_path, photos, "--attribute", "Smiling=1", "--out", out) == 0
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.*")) == ["more/group.png", "portrait.jpg"]
    assert Image.open(out / "portrait.jpg").size == (512, 512)
    assert "skipped sky.png: no face found" in capsys.readouterr().err
    before = (out / "portrait.jpg").read_bytes()
    assert run("edit", tiny_model_path, photos, "--attribute", "Smiling=2", "--out", out) == 2
    assert "already exist" in capsys.readouterr().err and (out / "portrait.jpg").read_bytes() == before
    assert run("edit", tiny_model_path, photos, "--attribute", "Smiling=1", "--out", photos / "inside") == 2
    assert "outside the photos' folder" in capsys.readouterr().err
