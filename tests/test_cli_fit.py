"""`vaegan reconstruct` and `vaegan edit` fit each face by default (--fast: the encoder alone), skip the pictures
they cannot use, and edit a folder's face crops with --face-only."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cli import main

BUNDLE = Path(__file__).resolve().parents[1] / "checkpoints" / "faces64.safetensors"


@pytest.fixture
def portrait(tmp_path: Path, astronaut: np.ndarray) -> Path:
    path = tmp_path / "portrait.jpg"
    Image.fromarray(astronaut).save(path, quality=95)
    return path


def run(*args: object) -> int:
    return main([str(a) for a in args])


def pixel_error(folder: Path, name: str) -> float:
    crop = np.asarray(Image.open(folder / f"{name}_crop.png")).astype(float) / 255
    recon = np.asarray(Image.open(folder / f"{name}_recon.png")).astype(float) / 255
    return float(((crop - recon) ** 2).mean())


def test_reconstruct_fits_the_face_unless_asked_to_be_fast(portrait, tmp_path):
    assert run("reconstruct", BUNDLE, portrait, "--out", tmp_path / "fitted") == 0
    assert run("reconstruct", BUNDLE, portrait, "--fast", "--out", tmp_path / "fast") == 0
    fitted, fast = pixel_error(tmp_path / "fitted", "portrait"), pixel_error(tmp_path / "fast", "portrait")
    assert fitted < 0.002
    assert fitted < 0.25 * fast


def test_reconstruct_skips_what_it_cannot_use_and_fails_only_when_nothing_is_left(tiny_model_path, portrait,
                                                                                   tmp_path, capsys):
    bad = tmp_path / "notapicture.jpg"
    bad.write_text("not a picture")
    landscape = tmp_path / "landscape.png"
    Image.new("RGB", (300, 200), (80, 150, 220)).save(landscape)
    out = tmp_path / "out"
    assert run("reconstruct", tiny_model_path, bad, landscape, portrait, "--fast", "--out", out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["portrait_crop.png", "portrait_recon.png"]
    err = capsys.readouterr().err
    assert "skipped" in err and "notapicture.jpg" in err and "landscape.png" in err
    assert run("reconstruct", tiny_model_path, bad, landscape, "--fast", "--out", tmp_path / "none") == 2
    assert not (tmp_path / "none").exists()


def test_edit_writes_every_face_crop_of_a_folder_with_face_only(tiny_model_path, astronaut, group_photo, tmp_path,
                                                                capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    group_photo.save(folder / "group.png")
    Image.fromarray(astronaut).save(folder / "portrait.jpg")
    out = tmp_path / "faces"
    assert run("edit", tiny_model_path, folder, "--attribute", "Smiling=1", "--face-only", "--out", out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["group_1.png", "group_2.png", "portrait.png"]
    assert all(Image.open(path).size == (64, 64) for path in out.iterdir())
    assert "3 face crops edited" in capsys.readouterr().err
