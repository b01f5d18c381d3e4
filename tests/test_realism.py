"""Realism meter: percentiles and the inside region under a fitted Gaussian of known shape, safe slider ranges."""
from __future__ import annotations

import math

import pytest
import torch

from core.latent import LatentGaussian, apply_edits
from core.realism import RealismMeter, nearest_names

DIM = 16


@pytest.fixture(scope="module")
def gaussian() -> LatentGaussian:
    """A correlated Gaussian: scales from 0.3 to 3 and a random rotation."""
    g = torch.Generator().manual_seed(0)
    rotation, _ = torch.linalg.qr(torch.randn(DIM, DIM, generator=g))
    covariance = rotation @ torch.diag(torch.linspace(0.3, 3.0, DIM) ** 2) @ rotation.T
    return LatentGaussian(torch.randn(DIM, generator=g), torch.linalg.cholesky(covariance))


@pytest.fixture(scope="module")
def meter(gaussian: LatentGaussian) -> RealismMeter:
    return RealismMeter(gaussian, gaussian.sample(2000, seed=1))


def test_held_out_faces_are_inside_and_a_strong_edit_takes_them_out(gaussian, meter):
    held_out = gaussian.sample(200, seed=2)
    assert sum(r.inside for r in meter.measure_many(held_out)) >= 0.9 * 200
    male = gaussian.scale_tril @ torch.nn.functional.normalize(torch.ones(DIM), dim=0)  # one standard deviation
    pushed = apply_edits(held_out, [(male, 6.0)])
    assert sum(not r.inside for r in meter.measure_many(pushed)) >= 0.8 * 200


def test_percentile_is_the_share_of_reference_faces_less_dense(gaussian, meter):
    assert meter.measure(gaussian.mean).percentile == 100.0
    assert meter.measure(gaussian.mean + 100).percentile == 0.0
    reference = gaussian.sample(2000, seed=1)
    percentiles = torch.tensor([meter.measure(z).percentile for z in reference[:400]])
    assert 40 < percentiles.median() < 60   # a reference face is a middling one
    assert 0.985 <= meter.share_inside <= 1.0


def test_log_density_is_the_gaussians(gaussian, meter):
    z = gaussian.sample(5, seed=3)
    scale_tril = gaussian.scale_tril.double()
    expected = torch.distributions.MultivariateNormal(gaussian.mean.double(), scale_tril=scale_tril).log_prob(z.double())
    assert torch.allclose(meter.log_density(z), expected)


def test_nearest_reference_faces_come_nearest_first(gaussian):
    reference = torch.zeros(4, DIM)
    reference[:, 0] = torch.tensor([0.0, 5.0, 1.0, 3.0])
    meter = RealismMeter(gaussian, reference)
    realism = meter.measure(torch.zeros(DIM) + torch.eye(DIM)[0] * 2.9, count=3)
    assert realism.nearest == [3, 2, 1]
    assert realism.distances[0] == pytest.approx(0.1)
    assert nearest_names(realism.nearest) == "ref3 ref2 ref1"


def test_safe_ranges_end_where_the_face_leaves_the_region(gaussian, meter):
    g = torch.Generator().manual_seed(4)
    vectors = torch.randn(3, DIM, generator=g)
    strengths = torch.tensor([0.5, -1.0, 0.0], dtype=torch.float64)
    face = gaussian.sample(1, seed=5)[0]
    edited = apply_edits(face, list(zip(vectors, strengths.tolist())))
    ranges = meter.safe_ranges(meter.whiten(edited), meter.whiten_vectors(vectors), strengths)
    for i, (low, high) in enumerate(ranges.tolist()):
        assert low < high
        for strength, inside in ((low, None), (high, None), ((low + high) / 2, True), (high + 0.5, False),
                                 (low - 0.5, False)):
            moved = strengths.clone()
            moved[i] = strength
            distance = float(meter.squared_distance(apply_edits(face, list(zip(vectors, moved.tolist())))))
            if inside is None:
                assert distance == pytest.approx(meter.threshold, rel=1e-4)
            else:
                assert (distance <= meter.threshold) == inside


def test_no_safe_strength_far_off_the_region_and_a_zero_vector_is_safe_inside(gaussian, meter):
    vectors = torch.stack([torch.eye(DIM)[0] * 1e-3, torch.zeros(DIM)])
    far = gaussian.mean + 50
    ranges = meter.safe_ranges(meter.whiten(far), meter.whiten_vectors(vectors), torch.zeros(2))
    assert torch.isnan(ranges).all()
    ranges = meter.safe_ranges(meter.whiten(gaussian.mean), meter.whiten_vectors(vectors), torch.zeros(2))
    assert ranges[1].tolist() == [-math.inf, math.inf]


def test_a_meter_needs_reference_latents_of_the_gaussians_size(gaussian):
    with pytest.raises(ValueError, match="reference latents of size 16"):
        RealismMeter(gaussian, torch.zeros(10, 8))
