"""Two models on the same faces: core.compare and `vaegan compare`."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_CONFIG, make_tiny_model, synthetic_face
from core.api import Model
from core.bundle import save_inference_model
from core.cli import main
from core.compare import (check_comparable, compare_models, comparison_grid, comparison_labels, face_figures,
                          twin_path)
from core.device import resolve_device
from core.model import VAEGAN

TILE, PAD = 64, 2


def tiny_vae(seed: int = 5, image_size: int = 64) -> Model:
    """A small random pixel-VAE (model_type 'vae') without a reference map, with a Smiling vector only."""
    torch.manual_seed(seed)
    config = replace(TINY_CONFIG, model_type="vae", image_size=image_size)
    return Model(VAEGAN(config, with_discriminator=False), resolve_device("cpu"),
                 attributes={"Smiling": 3 * torch.randn(config.latent_dim)})


def faces(count: int) -> torch.Tensor:
    return torch.from_numpy(np.stack([synthetic_face(i) for i in range(count)])).permute(0, 3, 1, 2).float() / 255


@pytest.fixture
def vae_path(tmp_path: Path) -> Path:
    return save_inference_model(tiny_vae(), tmp_path / "tiny_vae.safetensors", half_precision=False)


def test_each_model_reconstructs_every_face_with_its_own_figures():
    a, b = make_tiny_model(with_reference=False), tiny_vae()
    originals = faces(3)
    first, second = compare_models(a, b, originals)
    assert (first.label, second.label) == ("VAE-GAN", "VAE (pixel loss)")
    assert first.images.shape == second.images.shape == originals.shape
    assert not torch.equal(first.images, second.images)
    assert len(first.figures) == len(second.figures) == 3
    assert first.figures[0].mse == pytest.approx(float(((first.images[0] - originals[0]) ** 2).mean()), rel=1e-5)
    assert first.mean().mse == pytest.approx(sum(f.mse for f in first.figures) / 3)


def test_a_perfect_reconstruction_has_no_error_and_the_same_sharpness():
    originals = faces(2)
    figures = face_figures(originals, originals.clone())
    assert [f.mse for f in figures] == [0.0, 0.0]
    assert [f.sharpness for f in figures] == pytest.approx([1.0, 1.0])
    assert figures[0].psnr == pytest.approx(100.0)


def test_models_of_one_kind_are_told_apart_by_their_files(tmp_path):
    a, b = make_tiny_model(with_reference=False), make_tiny_model(with_reference=False, seed=1)
    a.path, b.path = tmp_path / "faces64.safetensors", tmp_path / "mine.safetensors"
    assert comparison_labels(a, b) == ("VAE-GAN (faces64)", "VAE-GAN (mine)")


def test_models_of_different_sizes_cannot_be_compared():
    with pytest.raises(ValueError, match="different sizes"):
        check_comparable(make_tiny_model(with_reference=False), tiny_vae(image_size=128))


def test_grid_has_a_row_of_original_a_and_b_per_face():
    a, b = make_tiny_model(with_reference=False), tiny_vae()
    originals = faces(2)
    grid = comparison_grid(originals, *compare_models(a, b, originals))
    assert grid.size == (3 * TILE + 4 * PAD, 2 * TILE + 3 * PAD)


def test_twin_is_found_beside_the_model_only_when_it_exists(tmp_path):
    model = tmp_path / "faces64.safetensors"
    assert twin_path(model) is None
    (tmp_path / "faces64_vae.safetensors").write_bytes(b"x")
    assert twin_path(model) == tmp_path / "faces64_vae.safetensors"


def test_cli_writes_the_grid_and_a_summary_line(tmp_path, tiny_model_path, vae_path, capsys):
    two_faces = np.concatenate([synthetic_face(1), synthetic_face(2)], axis=1)
    pictures = [tmp_path / "one.png", tmp_path / "two.png"]
    Image.fromarray(synthetic_face(3)).save(pictures[0])
    Image.fromarray(two_faces).save(pictures[1])
    target = tmp_path / "out" / "grid.png"
    code = main(["compare", str(tiny_model_path), str(vae_path), *map(str, pictures), "--out", str(target),
                 "--crop", "none", "--threads", "1", "--device", "cpu"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    assert out[0] == str(target)
    assert out[1].startswith("2 faces; VAE-GAN: MSE ") and "VAE (pixel loss): MSE " in out[1]
    assert Image.open(target).size == (3 * TILE + 4 * PAD, 2 * TILE + 3 * PAD)


def test_cli_gives_a_row_per_face_of_a_picture(tmp_path, tiny_model_path, vae_path, astronaut):
    picture = tmp_path / "astronaut.png"
    Image.fromarray(np.concatenate([astronaut, astronaut], axis=1)).save(picture)
    target = tmp_path / "grid.png"
    assert main(["compare", str(tiny_model_path), str(vae_path), str(picture), "--out", str(target),
                 "--threads", "1"]) == 0
    assert Image.open(target).size == (3 * TILE + 4 * PAD, 2 * TILE + 3 * PAD)


@pytest.mark.parametrize("case", ["sizes", "exists", "missing model"])
def test_cli_bad_input_is_one_line_and_exit_2(case, tmp_path, tiny_model_path, face_image_file, capsys):
    other = save_inference_model(tiny_vae(image_size=128 if case == "sizes" else 64), tmp_path / "b.safetensors",
                                 half_precision=False)
    target = tmp_path / "grid.png"
    if case == "exists":
        target.write_bytes(b"mine")
    second = tmp_path / "nowhere.safetensors" if case == "missing model" else other
    code = main(["compare", str(tiny_model_path), str(second), str(face_image_file), "--out", str(target),
                 "--crop", "none", "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("vaegan: error: ")
    assert {"sizes": "different sizes", "exists": "--overwrite", "missing model": "no such model"}[case] in err
    assert case != "exists" or target.read_bytes() == b"mine"
