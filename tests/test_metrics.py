"""Quick checks of the image-quality measures on synthetic faces with fine texture."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.metrics import (checkerboard_score, gaussian_blur, laplacian_pyramid, laplacian_variance,
                          mean_squared_error, patch_swd, sharpness_ratio, sliced_wasserstein, speckled_share)
from tests.conftest import synthetic_face


def textured_faces(count: int, seed: int = 0) -> torch.Tensor:
    """Synthetic faces plus mild pixel noise, so they have real high-frequency content: N x 3 x 64 x 64 in [0, 1]."""
    faces = np.stack([synthetic_face(seed * 1000 + i) for i in range(count)]).astype(np.float32) / 255
    noise = np.random.default_rng(seed).normal(0, 0.04, faces.shape).astype(np.float32)
    return torch.from_numpy(np.clip(faces + noise, 0, 1)).permute(0, 3, 1, 2).contiguous()


def checkerboard(size: int = 64) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return ((yy + xx) % 2).float().mul(2).sub(1).expand(3, size, size)


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    return textured_faces(24)


def test_sharpness_ratio_is_one_for_itself_below_one_for_blur_above_one_for_checkerboard(faces):
    assert sharpness_ratio(faces, faces) == pytest.approx(1.0)
    assert sharpness_ratio(gaussian_blur(faces, 1.0), faces) < 0.5
    assert sharpness_ratio((faces + 0.05 * checkerboard()).clamp(0, 1), faces) > 1.5


def test_laplacian_variance_is_zero_for_flat_images():
    assert torch.allclose(laplacian_variance(torch.full((2, 3, 16, 16), 0.3)), torch.zeros(2), atol=1e-10)


def test_gaussian_blur_keeps_size_and_constant_images():
    flat = torch.full((1, 3, 20, 20), 0.6)
    blurred = gaussian_blur(flat, 1.5)
    assert blurred.shape == flat.shape and torch.allclose(blurred, flat, atol=1e-6)


def test_laplacian_pyramid_levels_sum_back_to_the_image(faces):
    from core.metrics import _pyramid_up

    levels = laplacian_pyramid(faces[:4], 3)
    assert [level.shape[-1] for level in levels] == [64, 32, 16]
    rebuilt = levels[-1]
    for band in reversed(levels[:-1]):
        rebuilt = band + _pyramid_up(rebuilt)
    assert torch.allclose(rebuilt, faces[:4], atol=1e-5)


def test_sliced_wasserstein_is_zero_for_identical_sets_and_sees_a_shift():
    points = torch.randn(500, 6, generator=torch.Generator().manual_seed(0))
    assert sliced_wasserstein(points, points, 64, 4, torch.Generator().manual_seed(1)) == pytest.approx(0.0)
    assert sliced_wasserstein(points + 1.0, points, 64, 4, torch.Generator().manual_seed(1)) > 0.2


def test_patch_swd_is_near_zero_for_the_same_faces_and_grows_with_blur(faces):
    def mean_swd(images: torch.Tensor) -> float:
        distances = patch_swd(images, faces, patches_per_image=128, projections=128)
        return sum(distances.values()) / len(distances)

    same = mean_swd(faces)
    slightly, strongly = mean_swd(gaussian_blur(faces, 0.7)), mean_swd(gaussian_blur(faces, 1.5))
    assert same < 0.4 * slightly and slightly < strongly


def test_patch_swd_is_keyed_by_level_resolution_and_reproducible(faces):
    first = patch_swd(faces[:8], faces[8:16], patches_per_image=16, projections=32, seed=3)
    assert list(first) == [64, 32, 16]
    assert first == patch_swd(faces[:8], faces[8:16], patches_per_image=16, projections=32, seed=3)


def test_patch_swd_rejects_sets_of_different_size(faces):
    with pytest.raises(ValueError):
        patch_swd(faces[:4], faces[:5])


def test_checkerboard_score_flags_checkerboards_and_blur(faces):
    assert checkerboard_score(faces, faces) == pytest.approx(1.0)
    assert checkerboard_score((faces + 0.05 * checkerboard()).clamp(0, 1), faces) > 2
    assert checkerboard_score(gaussian_blur(faces, 1.0), faces) < 0.5


def test_speckled_share_counts_the_images_that_carry_checkerboards(faces):
    reference = textured_faces(100, seed=1)
    spoiled = faces.clone()
    spoiled[:6] = (spoiled[:6] + 0.1 * checkerboard()).clamp(0, 1)
    assert speckled_share(spoiled, reference) == pytest.approx(6 / 24)
    assert speckled_share(faces, reference) <= 1 / 24
    assert speckled_share(gaussian_blur(spoiled, 1.0), reference) == 0.0


def test_mean_squared_error(faces):
    assert mean_squared_error(faces, faces) == 0.0
    assert mean_squared_error(torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5)) == pytest.approx(0.25)
