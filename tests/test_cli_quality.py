"""`vaegan realism` and `vaegan vectors`: a CSV row per face, the vector table, one error line for bad input."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from PIL import Image

from core.bundle import save_inference_model
from core.cli import main
from core.latent import fit_latent_gaussian
from tests.conftest import make_tiny_model


def vaegan(*args: object) -> int:
    return main([str(a) for a in args])


@pytest.fixture
def measured_model_path(tmp_path: Path) -> Path:
    """The tiny model with a Gaussian fitted to its reference faces, and vectors named like face_folder's labels."""
    model = make_tiny_model()
    latents = model.reference.latents
    model.latent_gaussian = fit_latent_gaussian(latents, torch.full_like(latents, 1e-2))
    smiling = model.attributes["Smiling"]
    model.attributes = {"smiling": smiling, "neutral": -smiling, "Eyeglasses": model.attributes["Eyeglasses"]}
    return save_inference_model(model, tmp_path / "measured.safetensors", half_precision=False)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_realism_writes_a_row_per_face_and_a_far_edit_leaves_the_region(measured_model_path, face_image_file,
                                                                         tmp_path):
    out = tmp_path / "realism.csv"
    other = tmp_path / "other.png"
    other.write_bytes(face_image_file.read_bytes())
    assert vaegan("realism", measured_model_path, face_image_file, other, "--csv", out, "--device", "cpu") == 0
    rows = read_rows(out)
    assert [row["face"] for row in rows] == ["one_face", "other"]
    assert rows[0]["file"] == str(face_image_file)
    assert 0 <= float(rows[0]["percentile"]) <= 100 and rows[0]["inside"] in ("true", "false")
    assert len(rows[0]["nearest"].split()) == 5 and rows[0]["nearest"].startswith("ref")
    assert vaegan("realism", measured_model_path, face_image_file, "--attribute", "Eyeglasses=500", "--csv", out,
                  "--overwrite", "--device", "cpu") == 0
    (row,) = read_rows(out)
    assert row["inside"] == "false" and float(row["percentile"]) == 0.0


def test_realism_bad_input_is_one_line(measured_model_path, tiny_model_path, face_image_file, tmp_path, capsys):
    out = tmp_path / "realism.csv"
    out.write_text("keep me")
    capsys.readouterr()
    assert vaegan("realism", measured_model_path, face_image_file, "--csv", out) == 2
    assert "already exists" in capsys.readouterr().err and out.read_text() == "keep me"
    assert vaegan("realism", tiny_model_path, face_image_file, "--csv", tmp_path / "new.csv") == 2
    err = capsys.readouterr().err
    assert "no fitted latent Gaussian" in err and len(err.strip().splitlines()) == 1
    assert vaegan("realism", measured_model_path, face_image_file, "--attribute", "Bald=1",
                  "--csv", tmp_path / "new.csv") == 2
    assert "unknown attribute 'Bald'" in capsys.readouterr().err


def test_vectors_prints_the_table_cross_fitted_on_the_reference_map(tiny_model_path, tmp_path, capsys):
    out = tmp_path / "vectors.csv"
    assert vaegan("vectors", tiny_model_path, "--csv", out, "--device", "cpu") == 0
    captured = capsys.readouterr()
    assert "cross-fitted on the 60 reference faces" in captured.err
    lines = captured.out.splitlines()
    assert lines[0].split()[:4] == ["attribute", "with", "without", "separation"]
    assert lines[1].split()[:3] == ["Eyeglasses", "30", "30"] and "Smiling(" in lines[1]
    rows = read_rows(out)
    assert [row["attribute"] for row in rows] == ["Eyeglasses", "Smiling"]
    assert float(rows[1]["separation"]) == pytest.approx(float(lines[2].split()[3]))


def test_vectors_on_held_out_labelled_faces(measured_model_path, face_folder, capsys):
    assert vaegan("vectors", measured_model_path, "--faces", face_folder, "--device", "cpu") == 0
    captured = capsys.readouterr()
    assert "stored vectors on the 40 labelled faces" in captured.err
    table = {line.split()[0]: line.split() for line in captured.out.splitlines()[1:]}
    assert table["smiling"][1:3] == ["20", "20"] and table["neutral"][1:3] == ["20", "20"]
    assert float(table["smiling"][3]) == pytest.approx(float(table["neutral"][3]))  # the same split, both ways
    assert table["Eyeglasses"][1:4] == ["0", "0", "nan"]   # no label for it in that folder


def test_vectors_on_faces_labelled_for_nothing_the_model_has(tiny_model_path, face_folder, capsys):
    assert vaegan("vectors", tiny_model_path, "--faces", face_folder, "--device", "cpu") == 2
    assert "none of its labels (neutral, smiling) names one of the model's vectors" in capsys.readouterr().err


def test_vectors_of_a_model_without_vectors_is_one_line(tmp_path, capsys):
    model = make_tiny_model(with_reference=False)
    model.attributes = {}
    path = save_inference_model(model, tmp_path / "plain.safetensors", half_precision=False)
    assert vaegan("vectors", path) == 2
    assert "no attribute vectors" in capsys.readouterr().err


def test_directions_writes_the_traversal_grid(tiny_model_path, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert vaegan("directions", tiny_model_path, "--out", out, "--count", 3, "--strength", 2, "--columns", 5) == 0
    with Image.open(out) as grid:
        assert grid.size == (5 * 64 + 6 * 2, 3 * 64 + 4 * 2)
    assert "PC1 (" in capsys.readouterr().err
    assert vaegan("directions", tiny_model_path, "--out", out) == 2   # never replaced without --overwrite


def test_directions_of_a_model_without_reference_map_is_one_line(tmp_path, capsys):
    path = save_inference_model(make_tiny_model(with_reference=False), tmp_path / "bare.safetensors",
                                half_precision=False)
    assert vaegan("directions", path, "--out", tmp_path / "grid.png") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no reference map" in err[0]
    assert not (tmp_path / "grid.png").exists()
