"""Fitting the face at hand (core.fit): latent optimisation, then pivotal tuning of the decoder, with the bundled
model on scikit-image's astronaut; and the detail-keeping blend of the photo paste-back (core.photo)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.api import Model, load_model
from core.data import prepare_faces
from core.dataset import to_unit
from core.fit import FAST, FitCancelled, FitSettings, fit_faces, fitting
from core.metrics import mean_squared_error, sharpness_ratio
from core.photo import edit_photo, face_crops, blended_changes, paste_edits, refitting_photo

BUNDLE = Path(__file__).resolve().parents[1] / "checkpoints" / "faces64.safetensors"
SHORT = FitSettings(latent_steps=20, decoder_steps=25)
"""Fewer steps than the app's, for speed: enough to tell a fit from the encoder."""


@pytest.fixture(scope="module")
def bundle() -> Model:
    return load_model(BUNDLE, device="cpu")


@pytest.fixture(scope="module")
def astronaut_crop(bundle: Model, astronaut: np.ndarray) -> torch.Tensor:
    face = prepare_faces(Image.fromarray(astronaut), bundle.image_size, "auto")[0]
    return to_unit(face.pixels).unsqueeze(0)


@pytest.fixture(scope="module")
def fitted(bundle: Model, astronaut_crop: torch.Tensor):
    return fit_faces(bundle, astronaut_crop)


def test_the_fitted_face_is_far_closer_and_sharper_than_the_encoders(bundle, astronaut_crop, fitted):
    encoded = bundle.reconstruct(astronaut_crop)
    drawn = bundle.decode(fitted.latents, tuning=fitted.tuning)
    assert mean_squared_error(drawn, astronaut_crop) < 0.25 * mean_squared_error(encoded, astronaut_crop)
    assert mean_squared_error(drawn, astronaut_crop) < 0.002
    assert abs(1 - sharpness_ratio(drawn, astronaut_crop)) < abs(1 - sharpness_ratio(encoded, astronaut_crop))
    assert torch.equal(fitted.encoder_latents, bundle.encode(astronaut_crop))


def test_the_model_itself_is_left_as_it_was(bundle, astronaut_crop):
    before = {name: value.clone() for name, value in bundle.net.state_dict().items()}
    fit_faces(bundle, astronaut_crop, SHORT)
    after = bundle.net.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert all(p.grad is None for p in bundle.net.parameters())


def test_the_tuned_decoder_draws_other_faces_as_before(bundle, fitted):
    """The locality regulariser: random faces away from the pivot barely move, the pivot's face moves a lot."""
    others = bundle.sample_latents(16, seed=3)
    moved_elsewhere = (bundle.decode(others, tuning=fitted.tuning) - bundle.decode(others)).abs().mean()
    moved_at_pivot = (bundle.decode(fitted.latents, tuning=fitted.tuning) - bundle.decode(fitted.latents)).abs().mean()
    assert moved_elsewhere < 0.03
    assert moved_elsewhere < 0.5 * moved_at_pivot


def test_attribute_vectors_move_the_fitted_face_as_they_move_the_untuned_one(bundle, fitted):
    """The edit regulariser: the change a vector makes at the pivot is kept (editability)."""
    for name in ("Smiling", "Eyeglasses", "Blond_Hair", "Male"):
        edited = fitted.latents + 1.5 * bundle.attributes[name]
        tuned = bundle.decode(edited, tuning=fitted.tuning) - bundle.decode(fitted.latents, tuning=fitted.tuning)
        untuned = bundle.decode(edited) - bundle.decode(fitted.latents)
        similarity = torch.nn.functional.cosine_similarity(tuned.flatten(), untuned.flatten(), dim=0)
        assert similarity > 0.93, name
        assert 0.9 < tuned.norm() / untuned.norm() < 1.1, name


def test_progress_counts_up_to_the_plan_and_cancel_stops_at_once(bundle, astronaut_crop):
    reports: list[tuple[int, int]] = []
    fit_faces(bundle, astronaut_crop, SHORT, progress=lambda done, total: reports.append((done, total)))
    assert reports[0] == (1, SHORT.total_steps)
    assert [done for done, _ in reports] == sorted(done for done, _ in reports)
    assert reports[-1][0] <= SHORT.total_steps
    calls: list[int] = []
    with pytest.raises(FitCancelled):
        fit_faces(bundle, astronaut_crop, SHORT, cancel=lambda: calls.append(1) or len(calls) > 3)
    assert len(calls) == 4


def test_fast_is_the_encoder_alone(bundle, astronaut_crop):
    fit = fit_faces(bundle, astronaut_crop, FAST)
    assert torch.equal(fit.latents, bundle.encode(astronaut_crop))
    assert not fit.tuning
    assert torch.equal(bundle.decode(fit.latents, tuning=fit.tuning), bundle.reconstruct(astronaut_crop))


def test_several_faces_are_fitted_together_around_given_pivots(bundle, astronaut_crop):
    crops = torch.cat([astronaut_crop, astronaut_crop.flip(-1)])
    pivots = bundle.encode(crops)
    steps = fitting(bundle, crops, SHORT, pivots=pivots)
    planned = next(steps)[1]
    fit = None
    while fit is None:
        try:
            next(steps)
        except StopIteration as end:
            fit = end.value
    assert planned == SHORT.decoder_steps
    assert torch.equal(fit.latents, pivots)
    assert mean_squared_error(bundle.decode(pivots, tuning=fit.tuning), crops) < \
        mean_squared_error(bundle.decode(pivots), crops)


def test_a_saved_fit_is_tuned_again_around_its_latents(bundle, astronaut, tmp_path, fitted):
    photo = tmp_path / "portrait.png"
    Image.fromarray(astronaut).save(photo)
    steps = refitting_photo(bundle, photo, {0: fitted.latents[0]}, settings=SHORT)
    while True:
        try:
            next(steps)
        except StopIteration as end:
            refit = end.value
            break
    assert len(refit.faces) == 1
    assert torch.equal(refit.fit.latents[0], fitted.latents[0])
    again = bundle.decode(refit.fit.latents, tuning=refit.fit.tuning)
    assert mean_squared_error(again, face_crops(refit.faces)) < 0.003


def test_faint_changes_leave_the_photo_alone_coarse_ones_are_pasted_whole_and_fine_texture_in_part():
    originals = torch.full((1, 3, 24, 24), 0.5)
    edited = originals.clone()
    edited[..., :8] += 1 / 255                                          # a faint ripple: left out
    edited[..., 8:16] += 30 / 255                                       # a colour change: pasted whole
    edited[..., 16:] += torch.tensor([20 / 255, -20 / 255]).repeat(4)   # fine texture: pasted in part
    changes = blended_changes(originals, edited)
    assert changes[..., :3].abs().max() == 0
    assert torch.allclose(changes[..., 11:13], torch.tensor(30.0), atol=0.5)
    texture = changes[..., 19:22] - changes[..., 19:22].mean()
    assert 0.2 < texture.abs().mean() / 20 < 0.8


def test_a_strong_edit_of_a_large_face_keeps_the_photos_detail_where_nothing_changes(bundle, astronaut):
    """The astronaut's face is about 200 px across: the edit's 64 px change upsampled onto it must not blur the
    photo where the edit has nothing to change (the background, the suit) and must change the face."""
    photo = Image.fromarray(astronaut)
    result = edit_photo(bundle, photo, {"Smiling": 2.0, "Eyeglasses": 2.0}, settings=SHORT)
    before, after = np.asarray(photo).astype(float), np.asarray(result.photo).astype(float)
    changed = np.abs(after - before).max(axis=2) > 2
    assert changed.mean() > 0.01
    ungated = paste_edits(photo, [face.to_crop for face in result.faces], result.originals + 1 / 255,
                          result.originals)
    assert np.array_equal(np.asarray(ungated), np.asarray(photo))
