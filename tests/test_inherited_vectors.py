"""A run on unlabelled pictures started from a model keeps that model's attribute vectors, carried into its own
latent space by an affine map fitted on the starting model's reference thumbnails encoded by both models
(core.pipeline.finish_run), or recomputed from labelled reference faces when the starting model has labels but no
stored vectors; and the Train panel says so before training."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_CONFIG, make_tiny_model, synthetic_face
from core.api import load_model
from core.bundle import save_inference_model
from core.dataset import FaceDataset
from core.pipeline import (CARRY_RIDGE, carried_attribute_vectors, encode_images, finish_run,
                           inherited_attribute_vectors, latent_space_map, vector_ancestor)
from core.trainer import TrainConfig, Trainer


def unlabelled_faces(count: int = 16) -> FaceDataset:
    images = torch.from_numpy(np.stack([synthetic_face(100 + i) for i in range(count)])).permute(0, 3, 1, 2)
    return FaceDataset(images.contiguous(), [f"{i}.png" for i in range(count)])


def finished_run(run: Path, data: FaceDataset, init_from: Path | None, messages: list[str]) -> Path:
    """A two-step run on `data`, started from `init_from`, made explorer-ready."""
    config = TrainConfig(batch_size=4, max_steps=2, device="cpu", init_from=init_from and str(init_from))
    return finish_run(Trainer(data, run, TINY_CONFIG, config).run(), data, say=messages.append)


@pytest.fixture
def start_path(tmp_path: Path) -> Path:
    """The tiny model with stored vectors and a labelled map whose thumbnails vary: the faces themselves (the
    random tiny decoder renders them all alike, which pins no map down)."""
    model = make_tiny_model()
    model.reference.thumbnails = torch.from_numpy(np.stack([synthetic_face(i) for i in range(60)])).permute(0, 3, 1, 2)
    return save_inference_model(model, tmp_path / "tiny.safetensors", half_precision=False)


def carried_independently(new_model, start) -> dict[str, torch.Tensor]:
    """A v for each of `start`'s vectors, A from ridge least squares towards the identity written as one
    augmented least-squares problem: [X; sqrt(w) I] A^T = [Y; sqrt(w) I] over centred latents."""
    old = start.encode(start.reference.thumbnails.float() / 255).double()
    new = new_model.encode(start.reference.thumbnails.float() / 255).double()
    x, y = old - old.mean(0), new - new.mean(0)
    dim = x.shape[1]
    root = (CARRY_RIDGE * (x ** 2).sum() / dim).sqrt() * torch.eye(dim, dtype=torch.float64)
    a = torch.linalg.lstsq(torch.cat([x, root]), torch.cat([y, root])).solution.T
    return {name: (a @ vector.double()).float() for name, vector in start.attributes.items()}


def test_a_run_on_unlabelled_faces_carries_its_starting_models_vectors(tmp_path: Path, start_path: Path):
    messages: list[str] = []
    data = unlabelled_faces()
    finished = load_model(finished_run(tmp_path / "run", data, start_path, messages), device="cpu")
    assert sorted(finished.attributes) == ["Eyeglasses", "Smiling"]
    start = load_model(start_path, device="cpu")
    expected = carried_independently(finished, start)
    for name, vector in expected.items():
        torch.testing.assert_close(finished.attributes[name], vector, rtol=1e-4, atol=1e-5)
        assert not torch.allclose(vector, start.attributes[name])   # the latent space moved, and the vectors with it
    assert "2 attribute vectors of tiny, which it was started from, carried into its latent space" in messages[0]
    assert messages[-1].endswith("(Eyeglasses, Smiling), carried from tiny's latent space")
    assert finished.reference.labels is None and len(finished.reference.latents) == len(data)


def test_the_map_fits_the_paired_latents_and_is_the_identity_for_an_unchanged_model(start_path: Path):
    start = load_model(start_path, device="cpu")
    carried = inherited_attribute_vectors(start, start)   # a "fine-tune" that changed nothing
    for name, vector in start.attributes.items():
        torch.testing.assert_close(carried[name], vector, rtol=1e-5, atol=1e-5)
    other = make_tiny_model(seed=1)   # another encoder: the map is whatever least squares says, b included
    old, _ = encode_images(start, start.reference.thumbnails)
    new, _ = encode_images(other, start.reference.thumbnails)
    a, b = latent_space_map(old, new, ridge=0.0)
    fitted = torch.linalg.lstsq(torch.cat([old, torch.ones(len(old), 1)], 1).double(), new.double()).solution
    torch.testing.assert_close(a, fitted[:-1].T)
    torch.testing.assert_close(b, fitted[-1])
    for name, vector in carried_attribute_vectors(other, start).items():
        torch.testing.assert_close(vector, carried_independently(other, start)[name], rtol=1e-4, atol=1e-5)


def test_a_start_with_labels_but_no_stored_vectors_has_them_recomputed(tmp_path: Path):
    model = make_tiny_model()
    model.attributes = {}
    start_path = save_inference_model(model, tmp_path / "labelled.safetensors", half_precision=False)
    messages: list[str] = []
    finished = load_model(finished_run(tmp_path / "run", unlabelled_faces(), start_path, messages), device="cpu")
    start = load_model(start_path, device="cpu")
    expected = inherited_attribute_vectors(finished, start)   # the finished Enc on the start's labelled thumbnails
    assert sorted(expected) == sorted(finished.attributes) == ["Eyeglasses", "Smiling"]
    for name, vector in expected.items():
        torch.testing.assert_close(finished.attributes[name], vector)
    assert "2 attribute vectors of labelled, which it was started from, recomputed on its 60 labelled" in messages[0]
    assert messages[-1].endswith("(Eyeglasses, Smiling), recomputed from labelled's labelled reference faces")


def test_a_run_from_a_fine_tuned_model_carries_on_along_the_chain(tmp_path: Path, start_path: Path):
    data, messages = unlabelled_faces(), []
    first = finished_run(tmp_path / "first", data, start_path, [])
    second = load_model(finished_run(tmp_path / "second", data, first, messages), device="cpu")
    assert sorted(second.attributes) == ["Eyeglasses", "Smiling"] and "vectors of first, which" in messages[0]
    # a start with nothing to pass on (no stored vectors, no labels) is skipped for the model it was started from
    stripped = load_model(first, device="cpu")
    stripped.attributes = {}
    bare = save_inference_model(stripped, tmp_path / "bare.safetensors", half_precision=False)
    third = load_model(finished_run(tmp_path / "third", data, bare, messages), device="cpu")
    assert sorted(third.attributes) == ["Eyeglasses", "Smiling"]
    assert Path(vector_ancestor(third).path) == start_path


@pytest.mark.parametrize("start", ["none", "gone", "unlabelled"])
def test_without_labels_anywhere_a_run_has_no_vectors(tmp_path: Path, start: str):
    init_from = None
    if start != "none":
        model = make_tiny_model(with_reference=start == "gone")
        init_from = save_inference_model(model, tmp_path / "start.safetensors", half_precision=False)
    messages: list[str] = []
    run = tmp_path / "run"
    config = TrainConfig(batch_size=4, max_steps=2, device="cpu", init_from=init_from and str(init_from))
    checkpoint = Trainer(unlabelled_faces(), run, TINY_CONFIG, config).run()
    if start == "gone":
        init_from.unlink()
    finish_run(checkpoint, unlabelled_faces(), say=messages.append)
    assert load_model(run, device="cpu").attributes == {}
    assert "no labels, so no attribute vectors" in messages[0] and "0 attribute vectors" in messages[-1]


@pytest.fixture
def unlabelled_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mine"
    folder.mkdir()
    for i in range(20):
        Image.fromarray(synthetic_face(200 + i)).save(folder / f"me_{i:02d}.png")
    return folder


def test_the_train_panel_says_what_vectors_the_result_will_have(qtbot, unlabelled_folder: Path,
                                                                tiny_model_path: Path, tmp_path: Path):
    from explorer.selection import Selection
    from explorer.training_panel import TrainingPanel

    selection = Selection()
    panel = TrainingPanel(selection)
    qtbot.addWidget(panel)
    selection.set_model(load_model(tiny_model_path, device="cpu"))
    panel.set_folder(unlabelled_folder)
    qtbot.waitUntil(lambda: panel.dataset is not None, timeout=20_000)
    assert panel.scan_status.text().endswith("; no labels, so the result keeps the 2 attribute vectors of tiny, "
                                             "carried into its latent space")
    panel.start_from.setCurrentIndex(0)   # A new model
    assert panel.scan_status.text().endswith("; no labels, so the result will have no attribute vectors")
    plain = make_tiny_model(with_reference=False)
    selection.set_model(load_model(save_inference_model(plain, tmp_path / "plain.safetensors"), device="cpu"))
    panel.start_from.setCurrentIndex(1)
    assert panel.scan_status.text().endswith("no labels here or in plain, so the result will have no attribute vectors")
