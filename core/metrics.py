"""Image-quality measures for judging reconstructions and samples against real faces.

Every function takes float image batches N x 3 x H x W in [0, 1] and is deterministic (random
choices come from explicit seeds). See docs/quality.md for how the benchmark uses them.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

LUMA_WEIGHTS = (0.299, 0.587, 0.114)
LAPLACIAN_3X3 = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))
BINOMIAL_5 = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)
"""The 5-tap filter of Burt & Adelson's pyramid (OpenCV's pyrDown/pyrUp, used by Karras et al. 2018)."""


def _check_images(images: Tensor) -> None:
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape N x 3 x H x W, got {tuple(images.shape)}")


def to_grey(images: Tensor) -> Tensor:
    """N x 3 x H x W -> N x 1 x H x W luma (ITU-R BT.601 weights)."""
    _check_images(images)
    weights = torch.tensor(LUMA_WEIGHTS, dtype=images.dtype).view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True)


def laplacian_variance(images: Tensor) -> Tensor:
    """Per-image variance of the 3x3 Laplacian of the grey image (valid pixels only, no padding): N values."""
    kernel = torch.tensor(LAPLACIAN_3X3, dtype=torch.float32).view(1, 1, 3, 3)
    response = F.conv2d(to_grey(images.float()), kernel)
    return response.flatten(1).var(dim=1)


def sharpness_ratio(images: Tensor, reference: Tensor) -> float:
    """Mean Laplacian variance of `images` over that of `reference`.

    Two-sided: blur pushes it below 1, high-frequency artifacts (checkerboards, noise) above 1."""
    return float(laplacian_variance(images).mean() / laplacian_variance(reference).mean())


def mean_squared_error(images: Tensor, reference: Tensor) -> float:
    """Mean squared pixel difference, images in [0, 1]."""
    if images.shape != reference.shape:
        raise ValueError(f"shapes differ: {tuple(images.shape)} vs {tuple(reference.shape)}")
    return float(F.mse_loss(images.float(), reference.float()))


def psnr(mse: float) -> float:
    """Peak signal-to-noise ratio in dB of a mean squared error of images in [0, 1]."""
    return 10 * math.log10(1 / max(mse, 1e-10))


def _separable_filter(images: Tensor, taps: Tensor) -> Tensor:
    """Depthwise 2D filtering with the outer product of a 1D kernel, reflect-padded (size preserved)."""
    channels, radius = images.shape[1], taps.numel() // 2
    horizontal = taps.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    vertical = taps.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    return F.conv2d(F.conv2d(padded, horizontal, groups=channels), vertical, groups=channels)


def gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    """Gaussian blur of standard deviation `sigma` pixels (kernel radius ceil(3 sigma), reflect padding)."""
    _check_images(images)
    if sigma <= 0:
        return images.clone()
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    taps = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return _separable_filter(images.float(), taps / taps.sum())


def _pyramid_down(images: Tensor) -> Tensor:
    return _separable_filter(images, torch.tensor(BINOMIAL_5))[..., ::2, ::2]


def _pyramid_up(images: Tensor) -> Tensor:
    """Zero-insertion upsampling by 2, then the binomial filter scaled by 4 (OpenCV's pyrUp)."""
    n, c, h, w = images.shape
    spread = images.new_zeros(n, c, 2 * h, 2 * w)
    spread[..., ::2, ::2] = images * 4
    return _separable_filter(spread, torch.tensor(BINOMIAL_5))


def laplacian_pyramid(images: Tensor, levels: int = 3) -> list[Tensor]:
    """Band-pass levels at full, 1/2, ... resolution; the last entry is the low-pass residual.

    The levels sum back to the image: x = L0 + up(L1 + up(L2 + ...))."""
    _check_images(images)
    bands, current = [], images.float()
    for _ in range(levels - 1):
        smaller = _pyramid_down(current)
        bands.append(current - _pyramid_up(smaller))
        current = smaller
    return bands + [current]


def sample_patches(level: Tensor, patches_per_image: int, patch_size: int, generator: torch.Generator) -> Tensor:
    """Random square patches (with replacement) from every image: (N * patches_per_image) x size x size x C."""
    n, _, height, width = level.shape
    if height < patch_size or width < patch_size:
        raise ValueError(f"a {patch_size}x{patch_size} patch does not fit a {height}x{width} level")
    tops = torch.randint(0, height - patch_size + 1, (n, patches_per_image), generator=generator)
    lefts = torch.randint(0, width - patch_size + 1, (n, patches_per_image), generator=generator)
    offsets = torch.arange(patch_size)
    rows = (tops[..., None] + offsets)[..., :, None]     # n x P x size x 1
    cols = (lefts[..., None] + offsets)[..., None, :]    # n x P x 1 x size
    batch = torch.arange(n).view(n, 1, 1, 1)
    patches = level.permute(0, 2, 3, 1)[batch, rows, cols]  # n x P x size x size x C
    return patches.reshape(-1, patch_size, patch_size, level.shape[1])


def random_directions(dimensions: int, count: int, generator: torch.Generator) -> Tensor:
    """dimensions x count random unit vectors (columns)."""
    directions = torch.randn(dimensions, count, generator=generator)
    return directions / directions.norm(dim=0, keepdim=True)


def sorted_projections(points: Tensor, directions: Tensor) -> Tensor:
    """The rows of `points` projected on each column of `directions`, sorted: directions x points.

    Sorted by NumPy, whose SIMD sort is about ten times faster than torch.sort on a CPU; this sort
    dominates the cost of the SWD."""
    projected = (directions.T @ points.T).contiguous()
    return torch.from_numpy(np.sort(projected.numpy(), axis=1))


def sliced_wasserstein(a: Tensor, b: Tensor, projections: int, repeats: int, generator: torch.Generator) -> float:
    """Sliced Wasserstein-1 distance between two equal-sized point sets (rows), averaged over
    `repeats` draws of projections // repeats random unit directions."""
    if a.shape != b.shape:
        raise ValueError(f"point sets must have equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    per_repeat = max(1, projections // repeats)
    distances = []
    for _ in range(repeats):
        directions = random_directions(a.shape[1], per_repeat, generator)
        gap = sorted_projections(a, directions) - sorted_projections(b, directions)
        distances.append(float(gap.abs().mean()))
    return sum(distances) / len(distances)


def patch_swd_many(candidates: Mapping[str, Tensor], reference: Tensor, levels: int = 3,
                   patches_per_image: int = 128, patch_size: int = 7, projections: int = 512, repeats: int = 4,
                   seed: int = 0) -> dict[str, dict[int, float]]:
    """Sliced Wasserstein distance between local patch distributions, per Laplacian-pyramid level
    (Karras et al. 2018), of each candidate set against one reference set; per candidate a dict keyed
    by level resolution (64, 32, 16 for 64 x 64 images).

    Patches are normalised per colour channel with the *reference* set's mean and standard deviation
    (Karras normalised each set by its own), so a blurred set, whose band-pass levels are weaker,
    is not rescaled into looking sharp. All candidates share the reference patches and the projection
    directions (fixed by `seed`), so their distances compare; the reference is projected only once."""
    _check_images(reference)
    for name, images in candidates.items():
        if images.shape != reference.shape:
            raise ValueError(f"compare sets of equal size: {name} is {tuple(images.shape)}, "
                             f"the reference {tuple(reference.shape)}")
    per_repeat = max(1, projections // repeats)
    reference_pyramid = laplacian_pyramid(reference, levels)
    candidate_pyramids = {name: laplacian_pyramid(images, levels) for name, images in candidates.items()}
    result: dict[str, dict[int, float]] = {name: {} for name in candidates}
    for level, reference_level in enumerate(reference_pyramid):
        resolution = int(reference_level.shape[-1])
        wanted = sample_patches(reference_level, patches_per_image, patch_size, torch.Generator().manual_seed(seed))
        channels = wanted.shape[-1]
        mean = wanted.reshape(-1, channels).mean(0)
        std = wanted.reshape(-1, channels).std(0).clamp_min(1e-8)
        wanted = ((wanted - mean) / std).flatten(1)
        directions = torch.Generator().manual_seed(seed + 1 + level)
        bases = [random_directions(wanted.shape[1], per_repeat, directions) for _ in range(repeats)]
        wanted_sorted = [sorted_projections(wanted, basis) for basis in bases]
        for name, pyramid in candidate_pyramids.items():
            found = sample_patches(pyramid[level], patches_per_image, patch_size,
                                   torch.Generator().manual_seed(seed + 1000 + level))
            found = ((found - mean) / std).flatten(1)
            distances = [float((sorted_projections(found, basis) - sorted_wanted).abs().mean())
                         for basis, sorted_wanted in zip(bases, wanted_sorted)]
            result[name][resolution] = sum(distances) / len(distances)
    return result


def patch_swd(images: Tensor, reference: Tensor, **options: int) -> dict[int, float]:
    """patch_swd_many for one candidate set: {level resolution: distance}."""
    return patch_swd_many({"images": images}, reference, **options)["images"]


def _nyquist_power(images: Tensor, radius: int) -> tuple[Tensor, Tensor]:
    """Per image: (spectral power within `radius` bins of the Nyquist frequencies, total power), DC removed."""
    _check_images(images)
    height, width = images.shape[-2:]
    if height % 2 or width % 2:
        raise ValueError("images need even height and width")
    centred = images.float() - images.float().mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(centred).abs().square().sum(dim=1)  # N x H x W, summed over channels
    fy = torch.fft.fftfreq(height) * height   # integer bin indices, negative above the middle
    fx = torch.fft.fftfreq(width) * width
    near_y_nyquist = (height // 2 - fy.abs()) <= radius
    near_x_nyquist = (width // 2 - fx.abs()) <= radius
    near_y_zero, near_x_zero = fy.abs() <= radius, fx.abs() <= radius
    mask = ((near_y_nyquist[:, None] & near_x_nyquist[None, :])
            | (near_y_nyquist[:, None] & near_x_zero[None, :])
            | (near_y_zero[:, None] & near_x_nyquist[None, :]))
    return power[:, mask].sum(1), power.sum(dim=(1, 2))


def nyquist_energy_fraction(images: Tensor, radius: int = 1) -> float:
    """Share of the images' spectral power (DC removed) within `radius` bins of the Nyquist
    frequencies (pi, pi), (pi, 0) and (0, pi): where stride-2 checkerboard patterns put their energy."""
    near, total = _nyquist_power(images, radius)
    return float(near.sum() / total.sum().clamp_min(1e-12))


def speckled_share(images: Tensor, reference: Tensor, quantile: float = 0.99) -> float:
    """Share of `images` whose own Nyquist energy share exceeds that of all but 1 - `quantile` of the real
    `reference` faces: how many images carry speckle or checkerboards, where checkerboard_score says how much
    such energy the whole set has (a few garbage images and many faint patterns can score alike)."""
    share = [near / total.clamp_min(1e-12) for near, total in (_nyquist_power(images, 1), _nyquist_power(reference, 1))]
    limit = torch.quantile(share[1], quantile)
    return float((share[0] > limit).float().mean())


def checkerboard_score(images: Tensor, reference: Tensor) -> float:
    """Nyquist energy share of `images` over that of real `reference` faces: about 1 for real-looking
    images, below 1 for blurry ones, well above 1 for checkerboard artifacts."""
    return nyquist_energy_fraction(images) / nyquist_energy_fraction(reference)
