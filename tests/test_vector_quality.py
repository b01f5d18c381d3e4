"""Vector quality: Cohen's d on faces a vector was not made from, entanglement order, conditional editing."""
from __future__ import annotations

import math

import pytest
import torch

from core.latent import attribute_vector
from core.vector_quality import (cohens_d, conditional_vectors, cosine_matrix, cross_fitted_separation,
                                 cross_fitted_separations, entanglement_order, held_out_separation, most_entangled,
                                 separation)


def shifted_faces(count: int, dim: int, shift: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit-variance latents; faces with the attribute (every other one) are shifted by `shift` along axis 0."""
    g = torch.Generator().manual_seed(seed)
    latents = torch.randn(count, dim, generator=g)
    has = torch.arange(count) % 2 == 0
    latents[has, 0] += shift
    return latents, has


def test_cohens_d_of_known_groups():
    assert cohens_d(torch.tensor([2.0, 4.0]), torch.tensor([0.0, 2.0])) == pytest.approx(2 / math.sqrt(2))
    assert math.isnan(cohens_d(torch.tensor([1.0]), torch.tensor([0.0, 2.0])))


def test_separation_counts_both_sides_and_finds_the_shift():
    latents, has = shifted_faces(4000, 8, 2.0, seed=0)
    score = separation(torch.eye(8)[0] * 5, latents, has)
    assert (score.with_count, score.without_count) == (2000, 2000)
    assert score.d == pytest.approx(2.0, abs=0.1)


def test_cross_fitting_does_not_score_noise_as_separation():
    """Random labels in 64 dimensions: a vector scored on the faces it came from looks good, cross-fitted not."""
    latents, _ = shifted_faces(120, 64, 0.0, seed=1)
    has = torch.rand(120, generator=torch.Generator().manual_seed(2)) > 0.5
    in_sample = separation(attribute_vector(latents, has), latents, has).d
    assert in_sample > 1.0
    assert abs(cross_fitted_separation(latents, has).d) < 0.5


def test_cross_fitted_scores_per_label_skip_unknown_faces():
    latents, has = shifted_faces(400, 8, 3.0, seed=3)
    labels = torch.where(has, 1, -1).to(torch.int8)[:, None].repeat(1, 2)
    labels[:100, 1] = 0
    scores = cross_fitted_separations(latents, labels, ("Shift", "Partly known"))
    assert scores["Shift"].d > 2.5 and (scores["Shift"].with_count, scores["Shift"].without_count) == (200, 200)
    assert scores["Partly known"].with_count + scores["Partly known"].without_count == 300
    lone = torch.zeros(400, dtype=torch.bool)
    lone[0] = True
    assert math.isnan(cross_fitted_separation(latents, lone).d)


def test_held_out_scores_only_labelled_attributes():
    latents, has = shifted_faces(200, 4, 2.0, seed=4)
    labels = torch.where(has, 1, -1)[:, None]
    scores = held_out_separation({"Shift": torch.eye(4)[0], "Other": torch.eye(4)[1]}, latents, labels, ("Shift",))
    assert list(scores) == ["Shift"] and scores["Shift"].d > 1.5


def test_entanglement_order_puts_related_vectors_together():
    g = torch.Generator().manual_seed(5)
    a, b = torch.randn(32, generator=g), torch.randn(32, generator=g)
    vectors = {"A": a, "B": b, "minus A": -a + 0.1 * torch.randn(32, generator=g),
               "B too": b + 0.1 * torch.randn(32, generator=g), "C": torch.randn(32, generator=g)}
    names, cosines = cosine_matrix(vectors)
    order = [names[i] for i in entanglement_order(cosines)]
    assert abs(order.index("A") - order.index("minus A")) == 1
    assert abs(order.index("B") - order.index("B too")) == 1
    assert most_entangled(names, cosines, "A", 1)[0][0] == "minus A"
    assert most_entangled(names, cosines, "A", 1)[0][1] < -0.9


def test_conditional_editing_keeps_held_projections():
    g = torch.Generator().manual_seed(6)
    vectors = {name: torch.randn(16, generator=g) for name in ("Smiling", "Male", "Young")}
    conditioned = conditional_vectors(vectors, {name: vectors[name] for name in ("Male", "Young")})
    assert torch.equal(conditioned["Male"], vectors["Male"])
    smiling = conditioned["Smiling"]
    for held in ("Male", "Young"):
        assert abs(float(smiling @ vectors[held])) < 1e-4
    assert float(smiling.norm()) == pytest.approx(float(vectors["Smiling"].norm()), rel=1e-5)
    assert torch.equal(conditional_vectors(vectors, {})["Smiling"], vectors["Smiling"])
