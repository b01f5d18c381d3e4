"""Principal directions of latents with a known covariance, traversal grids and vector-axis maps."""
from __future__ import annotations

import pytest
import torch

from core.directions import (model_directions, principal_directions, traversal_grid, traversal_latents,
                             vector_axis_projection)
from tests.conftest import make_tiny_model

STDS = torch.tensor([4.0, 3.0, 2.0, 1.0, 0.5, 0.5])


def known_latents(count: int = 20000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(latents N x 6 with standard deviations STDS along the rows of a random rotation, the rotation)."""
    generator = torch.Generator().manual_seed(seed)
    rotation, _ = torch.linalg.qr(torch.randn(6, 6, generator=generator, dtype=torch.float64))
    white = torch.randn(count, 6, generator=generator, dtype=torch.float64)
    return (white * STDS.double()) @ rotation.T + 2.0, rotation.T


def test_directions_recover_the_axes_their_scales_and_shares() -> None:
    latents, axes = known_latents()
    directions = principal_directions(latents.float(), count=3)
    assert len(directions) == 3
    for k in range(3):
        assert abs(float(directions.components[k] @ axes[k].float())) == pytest.approx(1.0, abs=0.01)
        assert float(directions.scales[k]) == pytest.approx(float(STDS[k]), rel=0.05)
    shares = STDS.square() / STDS.square().sum()
    assert directions.variance_shares.tolist() == pytest.approx(shares[:3].tolist(), abs=0.02)
    assert directions.mean.tolist() == pytest.approx([2.0] * 6, abs=0.1)
    assert directions.labels()[0] == f"PC1 ({100 * float(directions.variance_shares[0]):.1f}% of variance)"


def test_a_slider_unit_is_one_standard_deviation_and_signs_are_stable() -> None:
    latents, _ = known_latents()
    directions = principal_directions(latents.float(), count=2)
    vectors = directions.vectors()
    assert list(vectors) == ["PC1", "PC2"]
    assert float(vectors["PC1"].norm()) == pytest.approx(float(directions.scales[0]), rel=1e-5)
    flipped = principal_directions(latents.flip(0).float(), count=2)
    assert torch.allclose(flipped.components, directions.components, atol=1e-4)


def test_count_is_capped_and_bad_input_is_refused() -> None:
    latents, _ = known_latents(500)
    assert len(principal_directions(latents.float(), count=50)) == 6
    with pytest.raises(ValueError):
        principal_directions(latents[:1].float())
    with pytest.raises(ValueError):
        principal_directions(latents.float(), count=0)


def test_traversal_rows_walk_each_direction_from_minus_to_plus() -> None:
    latents, _ = known_latents(2000)
    directions = principal_directions(latents.float(), count=3)
    start = torch.zeros(6)
    walk = traversal_latents(start, directions, strength=2.0, columns=5).reshape(3, 5, 6)
    vectors = list(directions.vectors().values())
    for k in range(3):
        assert torch.allclose(walk[k, 0], -2 * vectors[k], atol=1e-6)
        assert torch.allclose(walk[k, 2], start, atol=1e-6)
        assert torch.allclose(walk[k, 4], 2 * vectors[k], atol=1e-6)
    with pytest.raises(ValueError):
        traversal_latents(start, directions, columns=1)


def test_traversal_grid_of_a_model() -> None:
    tiny_model = make_tiny_model()
    directions = model_directions(tiny_model, count=3)
    assert directions is not None
    grid = traversal_grid(tiny_model, directions, strength=3.0, columns=5)
    size = tiny_model.image_size
    assert grid.size == (5 * size + 6 * 2, 3 * size + 4 * 2)
    tiles = [grid.crop((2 + c * (size + 2), 2, 2 + c * (size + 2) + size, 2 + size)) for c in (0, 4)]
    assert tiles[0].tobytes() != tiles[1].tobytes()   # the ends of the PC1 row are different faces


def test_a_model_without_reference_map_has_no_directions() -> None:
    assert model_directions(make_tiny_model(with_reference=False)) is None


def test_vector_axis_projection_puts_the_vector_on_x() -> None:
    latents, axes = known_latents(3000)
    vector = axes[2] * 5   # any length: x is the position along the unit vector
    projection = vector_axis_projection(latents.float(), vector.float())
    coords = projection.transform(latents.float()).double()
    mean = latents.mean(0)
    assert torch.allclose(coords[:, 0], (latents - mean) @ axes[2], atol=1e-3)
    # y: the largest spread of what remains, i.e. the first axis (the third is gone)
    assert abs(float(torch.corrcoef(torch.stack([coords[:, 1], (latents - mean) @ axes[0]]))[0, 1])) > 0.99
    with pytest.raises(ValueError):
        vector_axis_projection(latents.float(), torch.zeros(6))
