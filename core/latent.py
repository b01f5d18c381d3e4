"""Latent-space operations: interpolation, attribute vectors, edits, prior samples and 2D maps.

Plain torch (numpy only at the t-SNE/UMAP boundary); never imports Qt. Latents are float tensors,
one vector of size D or a batch N x D. Bad settings raise ValueError with a one-line message.
"""
from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import torch
from torch import Tensor

from core.schema import (MAX_MIXTURE_COMPONENTS, SAMPLER_MEAN, SAMPLER_MIXTURE_MEANS, SAMPLER_MIXTURE_SCALE_TRILS,
                         SAMPLER_MIXTURE_WEIGHTS, SAMPLER_SCALE_TRIL)

MAX_STEPS = 256
_PARALLEL_SIN = 1e-5     # slerp treats directions closer than this (in sin of the angle) as parallel
_TINY_NORM = 1e-12
_REDUNDANT = 1e-5        # a residual below this fraction of its vector's norm lies in the span of the others
_TSNE_NEIGHBOURS = 5
MIXTURE_SIZES = (1, 2, 4, 6, MAX_MIXTURE_COMPONENTS)
MIN_FACES_PER_COMPONENT = 800   # a full 128 x 128 covariance needs this many faces to be worth more than one Gaussian
_MIXTURE_CHECK_SHARE = 0.2      # the share of the faces that scores each mixture size


# ---------------------------------------------------------------- validation helpers

def _float(x: Tensor | Sequence[float]) -> Tensor:
    x = torch.as_tensor(x)
    return x if x.is_floating_point() else x.float()


def _vector(x: Tensor | Sequence[float], name: str) -> Tensor:
    x = _float(x)
    if x.dim() != 1:
        raise ValueError(f"{name} must be a single latent vector (D), got shape {tuple(x.shape)}")
    return x


def _matrix(x: Tensor | Sequence[Sequence[float]], name: str) -> Tensor:
    x = _float(x)
    if x.dim() != 2:
        raise ValueError(f"{name} must be a batch of latents (N x D), got shape {tuple(x.shape)}")
    return x


def _same_shape(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    a, b = _float(a), _float(b)
    if a.shape != b.shape or a.dim() not in (1, 2):
        raise ValueError(f"a and b must both be D or N x D of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    return a, b.to(a.dtype)


# ---------------------------------------------------------------- interpolation

def lerp(a: Tensor, b: Tensor, t: float | Tensor) -> Tensor:
    """Straight-line interpolation; t=0 gives a and t=1 gives b exactly (torch.lerp guarantees both ends)."""
    a, b = _same_shape(a, b)
    return torch.lerp(a, b, torch.as_tensor(t, dtype=a.dtype))


def slerp(a: Tensor, b: Tensor, t: float | Tensor) -> Tensor:
    """Spherical interpolation along the last dimension (D or N x D; t a float or broadcastable, e.g. N x 1).

    Keeps the norm when |a| == |b|, which keeps samples in the prior's high-density shell. Falls back to
    lerp where a and b are (anti)parallel or either is near zero, where the great circle is undefined."""
    a, b = _same_shape(a, b)
    t = torch.as_tensor(t, dtype=a.dtype)
    a_norm, b_norm = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    a_unit, b_unit = a / a_norm.clamp_min(_TINY_NORM), b / b_norm.clamp_min(_TINY_NORM)
    # 2 atan2(|a-b|, |a+b|) is accurate at every angle, unlike acos of the dot product near 0 and pi
    angle = 2 * torch.atan2((a_unit - b_unit).norm(dim=-1, keepdim=True), (a_unit + b_unit).norm(dim=-1, keepdim=True))
    sin_angle = torch.sin(angle)
    degenerate = (sin_angle < _PARALLEL_SIN) | (a_norm < _TINY_NORM) | (b_norm < _TINY_NORM)
    safe_sin = torch.where(degenerate, torch.ones_like(sin_angle), sin_angle)
    # weights are x / x == 1 and sin(0) == 0 at the ends, so the endpoints come out exactly
    spherical = torch.sin((1 - t) * angle) / safe_sin * a + torch.sin(t * angle) / safe_sin * b
    return torch.where(degenerate, torch.lerp(a, b, t), spherical)


Interpolator = Callable[[Tensor, Tensor, "float | Tensor"], Tensor]
_INTERPOLATORS: dict[str, Interpolator] = {"linear": lerp, "slerp": slerp}


def _interpolator(method: str) -> Interpolator:
    if method not in _INTERPOLATORS:
        raise ValueError(f"unknown interpolation method {method!r}; use one of: {', '.join(_INTERPOLATORS)}")
    return _INTERPOLATORS[method]


def _check_steps(steps: int, minimum: int) -> None:
    if not isinstance(steps, int) or not minimum <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be an integer between {minimum} and {MAX_STEPS}, got {steps!r}")


def smoothstep(t: Tensor) -> Tensor:
    """Ease in and out: 3t^2 - 2t^3 starts and stops with zero speed and maps 0 and 1 to themselves exactly."""
    return t * t * (3 - 2 * t)


Easing = Callable[[Tensor], Tensor]
EASINGS: dict[str, Easing | None] = {"none": None, "smooth": smoothstep}


def _segment(a: Tensor, b: Tensor, steps: int, interpolator: Interpolator, easing: Easing | None = None) -> Tensor:
    t = torch.linspace(0, 1, steps, dtype=a.dtype)[:, None]  # linspace hits 0 and 1 exactly
    return interpolator(a.expand(steps, -1), b.expand(steps, -1), t if easing is None else easing(t))


def _through(points: Tensor, moves: Sequence[int], interpolator: Interpolator, easing: Easing | None) -> Tensor:
    """points[0], then moves[i] latents along segment i ending exactly on points[i + 1]."""
    pieces = [points[:1]]
    for (start, end), count in zip(pairwise(points), moves):
        pieces.append(_segment(start, end, count + 1, interpolator, easing)[1:])
    return torch.cat(pieces)


def _path_points(points: Tensor | Sequence[Sequence[float]]) -> Tensor:
    points = _matrix(points, "points")
    if points.shape[0] < 2:
        raise ValueError(f"a path needs at least 2 points, got {points.shape[0]}")
    return points


def interpolate(a: Tensor, b: Tensor, steps: int, method: str = "linear") -> Tensor:
    """steps x D latents from a to b, both endpoints included exactly. method: "linear" or "slerp"."""
    interpolator = _interpolator(method)
    _check_steps(steps, 2)
    a, b = _same_shape(_vector(a, "a"), _vector(b, "b"))
    return _segment(a, b, steps, interpolator)


def interpolate_path(points: Tensor, steps: int, method: str = "linear") -> Tensor:
    """steps x D latents through all K >= 2 points in order, passing exactly through each.

    The steps - 1 moves are shared evenly between the K - 1 segments (earlier segments take the remainder)."""
    interpolator = _interpolator(method)
    points = _path_points(points)
    _check_steps(steps, points.shape[0])
    segments = points.shape[0] - 1
    base, extra = divmod(steps - 1, segments)
    return _through(points, [base + (1 if i < extra else 0) for i in range(segments)], interpolator, None)


def keyframe_path(points: Tensor, moves_per_segment: int, method: str = "linear", easing: str = "none") -> Tensor:
    """(K - 1) * moves_per_segment + 1 latents through all K >= 2 keyframes, passing exactly through each:
    the first keyframe, then each segment's moves, the last of which lands on the next keyframe.

    easing "smooth" spaces each segment's steps by smoothstep (slow near the keyframes, fast between them);
    "none" spaces them evenly. Unlike interpolate_path the length has no cap (a video can be long)."""
    interpolator = _interpolator(method)
    if easing not in EASINGS:
        raise ValueError(f"unknown easing {easing!r}; use one of: {', '.join(EASINGS)}")
    if not isinstance(moves_per_segment, int) or moves_per_segment < 1:
        raise ValueError(f"moves per segment must be a whole number of at least 1, got {moves_per_segment!r}")
    points = _path_points(points)
    return _through(points, [moves_per_segment] * (points.shape[0] - 1), interpolator, EASINGS[easing])


# ---------------------------------------------------------------- attribute vectors

def _group_mean(latents: Tensor, index: Tensor | Sequence[int] | Sequence[bool], side: str) -> Tensor:
    index = torch.as_tensor(index)
    n = latents.shape[0]
    if index.dtype == torch.bool:
        if index.shape != (n,):
            raise ValueError(f"the '{side}' mask must have one entry per latent ({n}), got shape {tuple(index.shape)}")
    else:
        index = index.long().reshape(-1)
        if index.numel() and (index.min() < -n or index.max() >= n):
            raise ValueError(f"the '{side}' indices must lie in 0..{n - 1}")
    group = latents[index]
    if group.shape[0] == 0:
        raise ValueError(f"the '{side}' group is empty: need at least one latent with and one without the attribute")
    return group.mean(0)


def vector_from_groups(latents: Tensor, with_index: Tensor | Sequence[int], without_index: Tensor | Sequence[int]) -> Tensor:
    """Mean latent of the 'with' group minus mean of the 'without' group (indices or boolean masks)."""
    latents = _matrix(latents, "latents")
    return _group_mean(latents, with_index, "with") - _group_mean(latents, without_index, "without")


def attribute_vector(latents: Tensor, has_attribute: Tensor) -> Tensor:
    """Unnormalised attribute direction: mean latent with the attribute minus mean latent without it."""
    has_attribute = torch.as_tensor(has_attribute, dtype=torch.bool)
    return vector_from_groups(latents, has_attribute, ~has_attribute)


def attribute_vectors_from_labels(latents: Tensor, labels: Tensor, names: Sequence[str]) -> dict[str, Tensor]:
    """One vector per label column (1 = has it, -1 = lacks it, 0 = unknown); columns with an empty side are skipped."""
    latents = _matrix(latents, "latents")
    labels = torch.as_tensor(labels)
    if labels.shape != (latents.shape[0], len(names)):
        raise ValueError(f"labels must be N x A = {latents.shape[0]} x {len(names)}, got shape {tuple(labels.shape)}")
    vectors = {}
    for name, column in zip(names, labels.T):
        has, lacks = column > 0, column < 0
        if has.any() and lacks.any():
            vectors[name] = vector_from_groups(latents, has, lacks)
    return vectors


# ---------------------------------------------------------------- orthogonalisation

def _remove_components(v: Tensor, orthonormal_basis: list[Tensor]) -> Tensor:
    residual = v.double()
    for unit in orthonormal_basis:  # modified Gram-Schmidt: project the running residual
        residual = residual - (residual @ unit) * unit
    return residual


def _is_redundant(residual: Tensor, original: Tensor) -> bool:
    return bool(residual.norm() <= _REDUNDANT * original.double().norm())


def _with_norm_of(residual: Tensor, original: Tensor) -> Tensor:
    """residual rescaled to |original|, or zeros when nothing independent is left of original."""
    if _is_redundant(residual, original):
        return torch.zeros_like(original)
    return (residual * (original.double().norm() / residual.norm())).to(original.dtype)


def _grow_basis(orthonormal_basis: list[Tensor], residual: Tensor, original: Tensor) -> None:
    if not _is_redundant(residual, original):
        orthonormal_basis.append(residual / residual.norm())


def _check_dims(vectors: Sequence[Tensor], what: str) -> None:
    sizes = {tuple(v.shape) for v in vectors}
    if len(sizes) > 1 or any(len(s) != 1 for s in sizes):
        raise ValueError(f"{what} must all be latent vectors of one size, got shapes {sorted(sizes)}")


def orthogonalize(vectors: Mapping[str, Tensor], order: Sequence[str] | None = None) -> dict[str, Tensor]:
    """Gram-Schmidt in order: each vector loses its components along all earlier ones.

    Names in `order` come first, the rest follow in the mapping's order. Each output keeps its input's norm,
    so a slider strength means the same step size before and after. A vector that lies in the span of the
    earlier ones has nothing independent left and comes back as zeros."""
    unknown = [name for name in order or () if name not in vectors]
    if unknown:
        raise ValueError(f"unknown vector name(s) in order: {', '.join(unknown)}; known: {', '.join(vectors)}")
    names = list(dict.fromkeys([*(order or ()), *vectors]))
    originals = [_float(vectors[name]) for name in names]
    _check_dims(originals, "vectors to orthogonalize")
    basis: list[Tensor] = []
    result = {}
    for name, original in zip(names, originals):
        residual = _remove_components(original, basis)
        result[name] = _with_norm_of(residual, original)
        _grow_basis(basis, residual, original)
    return result


def orthogonalize_against(v: Tensor, others: Sequence[Tensor]) -> Tensor:
    """v without its components in the span of `others` (which need not be orthogonal), rescaled to |v|."""
    v = _vector(v, "v")
    others = [_float(o) for o in others]
    _check_dims([v, *others], "v and the other vectors")
    basis: list[Tensor] = []
    for other in others:
        _grow_basis(basis, _remove_components(other, basis), other)
    return _with_norm_of(_remove_components(v, basis), v)


# ---------------------------------------------------------------- edits and prior samples

Edits = Mapping[str, float] | Sequence[tuple[Tensor, float]]


def _edit_pairs(edits: Edits, vectors: Mapping[str, Tensor] | None) -> list[tuple[Tensor, float]]:
    if not isinstance(edits, Mapping):
        return [(_float(vector), float(strength)) for vector, strength in edits]
    missing = [name for name in edits if vectors is None or name not in vectors]
    if missing:
        known = ", ".join(vectors or {}) or "none"
        raise ValueError(f"unknown attribute(s): {', '.join(missing)}; known: {known}")
    return [(_float(vectors[name]), float(strength)) for name, strength in edits.items()]


def apply_edits(z: Tensor, edits: Edits, vectors: Mapping[str, Tensor] | None = None) -> Tensor:
    """z + sum(strength * vector). edits: {name: strength} looked up in `vectors`, or [(vector, strength)].

    z may be one latent (D) or a batch (N x D); the same offset is added to every row. z is not modified."""
    z = _float(z)
    if z.dim() not in (1, 2):
        raise ValueError(f"z must be D or N x D, got shape {tuple(z.shape)}")
    offset = torch.zeros(z.shape[-1], dtype=torch.float64)
    for vector, strength in _edit_pairs(edits, vectors):
        if vector.shape != offset.shape:
            raise ValueError(f"edit vector of shape {tuple(vector.shape)} does not match latent size {z.shape[-1]}")
        offset += strength * vector.double()
    return z + offset.to(z.dtype)


DEFAULT_SAMPLE_TEMPERATURE = 1.0
"""The spread the app and `vaegan sample` draw random faces at. Models carry a Gaussian fitted to their
training faces (LatentGaussian); at 1 it matches them, and narrowing it (the truncation trick that helps
with N(0, I)) gave the bundled model more speckled faces, not fewer."""


def _check_temperature(temperature: float) -> None:
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")


def sample_prior(n: int, latent_dim: int, temperature: float = 1.0, seed: int | None = None) -> Tensor:
    """n x latent_dim samples of N(0, temperature^2 I); the same seed gives the same z as Model.sample."""
    if n < 1 or latent_dim < 1:
        raise ValueError(f"need n >= 1 and latent_dim >= 1, got n={n}, latent_dim={latent_dim}")
    _check_temperature(temperature)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return torch.randn(n, latent_dim, generator=generator) * temperature


@dataclass(frozen=True)
class LatentMixture:
    """A mixture of K Gaussians over the latent space, fitted to where the training faces encode."""

    weights: Tensor      # K
    means: Tensor        # K x D
    scale_trils: Tensor  # K x D x D, lower-triangular Cholesky factors of the covariances

    def draw(self, eps: Tensor, seed: int | None) -> Tensor:
        """One latent per row of eps (N x D, standard normal): a component picked by weight, its mean + L eps."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        component = torch.multinomial(self.weights.double(), eps.shape[0], replacement=True, generator=generator)
        spread = torch.einsum("nij,nj->ni", self.scale_trils.double()[component], eps.double())
        return self.means.double()[component] + spread

    def tensors(self) -> dict[str, Tensor]:
        return {SAMPLER_MIXTURE_WEIGHTS: self.weights.float(), SAMPLER_MIXTURE_MEANS: self.means.float(),
                SAMPLER_MIXTURE_SCALE_TRILS: self.scale_trils.float()}

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, Tensor], latent_dim: int) -> "LatentMixture | None":
        """The stored mixture, or None when the file has none of the right shapes."""
        weights, means = tensors.get(SAMPLER_MIXTURE_WEIGHTS), tensors.get(SAMPLER_MIXTURE_MEANS)
        scale_trils = tensors.get(SAMPLER_MIXTURE_SCALE_TRILS)
        if weights is None or means is None or scale_trils is None or weights.dim() != 1:
            return None
        k = weights.shape[0]
        if not 1 <= k <= MAX_MIXTURE_COMPONENTS or means.shape != (k, latent_dim) \
                or scale_trils.shape != (k, latent_dim, latent_dim) or not bool((weights > 0).all()):
            return None
        return cls(weights.float(), means.float(), scale_trils.float())


@dataclass(frozen=True)
class LatentGaussian:
    """N(mean, scale_tril scale_tril^T) fitted to the encoded training faces: where faces really lie.

    Drawing random faces from it instead of from N(0, I) keeps them out of the parts of the prior that no
    training face encodes to, which a small decoder renders as speckle ("ex-post density estimation",
    Ghosh et al. 2020, "From variational to deterministic autoencoders"). With enough faces a mixture fits them
    better still (see fit_latent_mixture); random faces then come from it, while the realism meter keeps
    measuring against the single Gaussian (its safe ranges are solved in closed form)."""

    mean: Tensor        # D
    scale_tril: Tensor  # D x D, lower-triangular Cholesky factor of the covariance
    mixture: LatentMixture | None = None

    @property
    def latent_dim(self) -> int:
        return int(self.mean.shape[0])

    def sample(self, n: int, temperature: float = 1.0, seed: int | None = None) -> Tensor:
        """n x D latents: mean + temperature * L eps, or with a mixture mean + temperature * (its draw - mean),
        so temperature scales the spread around the centre either way. The same seed draws the same eps as
        sample_prior."""
        if self.mixture is None:
            eps = sample_prior(n, self.latent_dim, temperature, seed)
            return (self.mean + eps.double() @ self.scale_tril.double().T).float()
        _check_temperature(temperature)
        draws = self.mixture.draw(sample_prior(n, self.latent_dim, 1.0, seed), seed)
        return (self.mean + temperature * (draws - self.mean.double())).float()

    def description(self, faces: int) -> str:
        """Where it came from, in words (the model file's RANDOM_FACES entry)."""
        if self.mixture is None:
            return f"Gaussian fitted to {faces:,} training faces"
        return f"mixture of {len(self.mixture.weights)} Gaussians fitted to {faces:,} training faces"

    def tensors(self) -> dict[str, Tensor]:
        """How model files store it (see from_tensors)."""
        stored = {SAMPLER_MEAN: self.mean.float(), SAMPLER_SCALE_TRIL: self.scale_tril.float()}
        return stored | (self.mixture.tensors() if self.mixture is not None else {})

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, Tensor], latent_dim: int) -> "LatentGaussian | None":
        """The stored Gaussian (with its mixture, if any), or None when the file has none of the right size."""
        mean, scale_tril = tensors.get(SAMPLER_MEAN), tensors.get(SAMPLER_SCALE_TRIL)
        if mean is None or scale_tril is None or mean.shape != (latent_dim,) or scale_tril.shape != (latent_dim,) * 2:
            return None
        return cls(mean.float(), scale_tril.float(), LatentMixture.from_tensors(tensors, latent_dim))


def fit_latent_gaussian(means: Tensor, variances: Tensor, jitter: float = 1e-4) -> LatentGaussian:
    """Moment-match the mixture of posteriors N(mu_i, diag(var_i)) of the typical faces (see _typical_mask):
    covariance of the means plus the mean posterior variance, which is what the decoder saw in training; and fit
    a Gaussian mixture to the same faces where one fits them better (fit_latent_mixture)."""
    means, variances = _matrix(means, "means").double(), _matrix(variances, "variances").double()
    if means.shape != variances.shape or means.shape[0] < 2:
        raise ValueError(f"need matching N x D means and variances with N >= 2, got {tuple(means.shape)} "
                         f"and {tuple(variances.shape)}")
    keep = _typical_mask(means)
    covariance = torch.cov(means[keep].T) + torch.diag(variances[keep].mean(0))
    covariance += jitter * torch.eye(means.shape[1], dtype=covariance.dtype)
    mixture = fit_latent_mixture(means[keep], float(variances[keep].mean()) + jitter)
    return LatentGaussian(means[keep].mean(0).float(), torch.linalg.cholesky(covariance).float(), mixture)


def fit_latent_mixture(means: Tensor, noise: float) -> LatentMixture | None:
    """A Gaussian mixture over the faces' posterior means, its size (MIXTURE_SIZES, at least
    MIN_FACES_PER_COMPONENT faces each) chosen by the log-likelihood of a held-back fifth of the faces, then refitted
    on all; None when one Gaussian scores best. `noise` (the mean posterior variance) is added to every component's
    covariance, as the posterior variances are to the single Gaussian's. Ghosh et al. 2020 drew from a 10-component
    mixture; on the bundled model one fitted this way scores 8 nats a face more than one Gaussian on held-out faces
    and its random faces come closer to real ones (README, "Random faces")."""
    from sklearn.mixture import GaussianMixture  # imported here: scikit-learn takes a second to import
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    faces = means.double().numpy()
    order = np.random.default_rng(0).permutation(len(faces))
    cut = len(faces) - int(len(faces) * _MIXTURE_CHECK_SHARE)
    sizes = [k for k in MIXTURE_SIZES if k * MIN_FACES_PER_COMPONENT <= cut]
    if len(sizes) < 2:
        return None

    def fitted(size: int, rows: np.ndarray) -> GaussianMixture:
        # one BLAS thread: faster than two on these small matrices (14 s against 23 s for 8,000 faces on the 2-core
        # CPU) and the app's window keeps the other core; an EM run that stops short is still a usable fit
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore")
            return GaussianMixture(size, reg_covar=noise, max_iter=300, random_state=0).fit(rows)

    best = max(sizes, key=lambda size: fitted(size, faces[order[:cut]]).score(faces[order[cut:]]))
    if best == 1:
        return None
    mixture = fitted(best, faces)
    covariances = torch.from_numpy(mixture.covariances_)
    return LatentMixture(torch.from_numpy(mixture.weights_).float(), torch.from_numpy(mixture.means_).float(),
                         torch.linalg.cholesky(covariances).float())


# ---------------------------------------------------------------- 2D projections

def _installed(module: str) -> bool:
    """Whether a module can be found, without importing it (umap pulls in numba and takes seconds)."""
    return importlib.util.find_spec(module) is not None


PROJECTION_METHODS: tuple[str, ...] = tuple(
    method for method, available in (("pca", True), ("umap", _installed("umap")),
                                      ("tsne", _installed("openTSNE") or _installed("sklearn")))
    if available)


def _typical_mask(latents: Tensor) -> Tensor:
    """Which latents lie inside a Tukey fence (Q3 + 1.5 IQR) on the distance from the coordinate-wise median.
    A few faces encoded far off the prior would otherwise take a principal axis (or a fitted covariance)
    for themselves."""
    distance = (latents - latents.median(0).values).norm(dim=1)
    q1, q3 = torch.quantile(distance, torch.tensor([0.25, 0.75], dtype=distance.dtype))
    mask = distance <= q3 + 1.5 * (q3 - q1)
    return mask if int(mask.sum()) >= 2 else torch.ones_like(mask)


def _typical(latents: Tensor) -> Tensor:
    """The latents inside the Tukey fence of _typical_mask: outliers would squeeze every other face into a line."""
    return latents[_typical_mask(latents)]


def principal_components(latents: Tensor, count: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(mean D, axes count x D, their variances, total variance) of the typical latents (see _typical), in
    float64, largest variance first; each axis's largest-magnitude entry is positive so maps and sliders never
    flip between runs.

    Eigenvectors of the D x D scatter matrix: as exact as an SVD of the N x D data for a few axes, and ~20x
    faster for N = 10,000 (one matmul plus a small eigh)."""
    latents = _typical(latents.double())
    mean = latents.mean(0)
    centred = latents - mean
    eigenvalues, eigenvectors = torch.linalg.eigh(centred.T @ centred / max(len(latents) - 1, 1))  # ascending
    order = torch.arange(latents.shape[1] - 1, latents.shape[1] - 1 - count, -1)
    axes = eigenvectors[:, order].T
    peaks = axes.gather(1, axes.abs().argmax(1, keepdim=True))
    return mean, (axes * peaks.sign()).contiguous(), eigenvalues[order].clamp_min(0), eigenvalues.clamp_min(0).sum()


def _principal_axes(latents: Tensor) -> tuple[Tensor, Tensor]:
    """(mean D, axes 2 x D) of principal_components, in float32."""
    mean, axes, _, _ = principal_components(latents, 2)
    return mean.float(), axes.float().contiguous()


def _place_by_neighbours(new: Tensor, fitted: Tensor, fitted_coords: Tensor, chunk: int = 1024) -> Tensor:
    """Inverse-distance-weighted mean of the 2D coords of each new latent's nearest fitted latents."""
    k = min(_TSNE_NEIGHBOURS, fitted.shape[0])
    placed = [torch.empty(0, 2)]
    for rows in new.double().split(chunk):
        distances, nearest = torch.cdist(rows, fitted.double()).topk(k, largest=False)
        weights = 1 / distances.clamp_min(1e-12)   # an exact match dominates, landing on its own spot
        weights = weights / weights.sum(1, keepdim=True)
        placed.append((weights[..., None] * fitted_coords.double()[nearest]).sum(1).float())
    return torch.cat(placed)


def _tsne_perplexity(options: dict[str, Any], n: int) -> float:
    """t-SNE needs perplexity < N; small sets get N/3 instead of the default 30."""
    return max(1.0, min(float(options.pop("perplexity", 30.0)), (n - 1) / 3))


class _PCA:
    def __init__(self, mean: Tensor | None = None, axes: Tensor | None = None) -> None:
        self.mean, self.axes = mean, axes

    def fit_transform(self, latents: Tensor) -> Tensor:
        self.mean, self.axes = _principal_axes(latents)
        return self.transform(latents)

    def transform(self, latents: Tensor) -> Tensor:
        return (latents - self.mean) @ self.axes.T


class _SklearnTSNE:
    """sklearn's t-SNE cannot place new points, so transform uses _place_by_neighbours on the fitted map."""

    def __init__(self, seed: int, options: dict[str, Any]) -> None:
        self.seed, self.options = seed, dict(options)

    def fit_transform(self, latents: Tensor) -> Tensor:
        from sklearn.manifold import TSNE

        options = dict(self.options)
        perplexity = _tsne_perplexity(options, latents.shape[0])
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                    random_state=self.seed, **options)
        self.fitted = latents.float()
        self.coords = torch.from_numpy(tsne.fit_transform(self.fitted.numpy())).float()
        return self.coords

    def transform(self, latents: Tensor) -> Tensor:
        return _place_by_neighbours(latents, self.fitted, self.coords)


class _OpenTSNE:
    """openTSNE optimises new points against the fixed fitted embedding."""

    def __init__(self, seed: int, options: dict[str, Any]) -> None:
        self.seed, self.options = seed, dict(options)

    def fit_transform(self, latents: Tensor) -> Tensor:
        import openTSNE

        options = dict(self.options)
        perplexity = _tsne_perplexity(options, latents.shape[0])
        self.embedding = openTSNE.TSNE(n_components=2, perplexity=perplexity, random_state=self.seed,
                                       **options).fit(latents.double().numpy())
        return torch.from_numpy(np.asarray(self.embedding)).float()

    def transform(self, latents: Tensor) -> Tensor:
        return torch.from_numpy(np.asarray(self.embedding.transform(latents.double().numpy()))).float()


class _UMAP:
    def __init__(self, seed: int, options: dict[str, Any]) -> None:
        import umap

        self.model = umap.UMAP(n_components=2, random_state=seed, **options)

    def fit_transform(self, latents: Tensor) -> Tensor:
        return torch.from_numpy(np.asarray(self.model.fit_transform(latents.float().numpy()))).float()

    def transform(self, latents: Tensor) -> Tensor:
        return torch.from_numpy(np.asarray(self.model.transform(latents.float().numpy()))).float()


def _backend(method: str, seed: int, options: dict[str, Any]) -> _PCA | _SklearnTSNE | _OpenTSNE | _UMAP:
    if method not in PROJECTION_METHODS:
        hint = " (install umap-learn)" if method == "umap" else ""
        raise ValueError(f"unknown or unavailable projection method {method!r}{hint}; "
                         f"available: {', '.join(PROJECTION_METHODS)}")
    if method == "pca":
        if options:
            raise ValueError(f"PCA takes no options, got: {', '.join(options)}")
        return _PCA()
    if method == "umap":
        return _UMAP(seed, options)
    return _OpenTSNE(seed, options) if _installed("openTSNE") else _SklearnTSNE(seed, options)


class Projection:
    """A 2D map of latents: fit once with fit_transform, then place new latents with transform (never refits).

    method is one of PROJECTION_METHODS; options go to the t-SNE/UMAP constructor (e.g. perplexity=10).
    Only PCA has a saveable state (mean + 2 x D axes), matching ReferenceMap.projection_mean/_axes."""

    def __init__(self, method: str = "pca", seed: int = 0, **options: Any) -> None:
        self._backend = _backend(method, seed, options)
        self.method = method
        self._dim: int | None = None

    def fit_transform(self, latents: Tensor) -> Tensor:
        """N x 2 coordinates of the latents (N >= 2, D >= 2), fitting the projection to them."""
        latents = _matrix(latents, "latents").float()
        if min(latents.shape) < 2:
            raise ValueError(f"a 2D map needs at least 2 latents of at least 2 dimensions, got {tuple(latents.shape)}")
        coords = self._backend.fit_transform(latents)
        self._dim = latents.shape[1]
        return coords

    def transform(self, new_latents: Tensor) -> Tensor:
        """M x 2 coordinates of new latents on the fitted map."""
        self._check_fitted()
        new_latents = _matrix(new_latents, "new_latents").float()
        if new_latents.shape[1] != self._dim:
            raise ValueError(f"latents of size {new_latents.shape[1]} do not match the fitted size {self._dim}")
        return self._backend.transform(new_latents)

    def _check_fitted(self) -> None:
        if self._dim is None:
            raise RuntimeError("the projection is not fitted yet; call fit_transform first")

    def state(self) -> dict[str, Tensor]:
        """{"mean": D, "axes": 2 x D} of a fitted PCA projection; Projection.from_state(**state) restores it."""
        self._check_fitted()
        if not isinstance(self._backend, _PCA):
            raise ValueError(f"only PCA projections have a saveable state; refit {self.method} maps instead")
        return {"mean": self._backend.mean.clone(), "axes": self._backend.axes.clone()}

    @classmethod
    def from_state(cls, mean: Tensor, axes: Tensor) -> Projection:
        """A fitted PCA projection from a saved mean (D) and axes (2 x D), e.g. a ReferenceMap's."""
        mean, axes = _vector(mean, "mean").float(), _matrix(axes, "axes").float()
        if axes.shape != (2, mean.shape[0]):
            raise ValueError(f"axes must be 2 x {mean.shape[0]} to match the mean, got {tuple(axes.shape)}")
        projection = cls("pca")
        projection._backend = _PCA(mean, axes)
        projection._dim = mean.shape[0]
        return projection


def fit_projection(latents: Tensor, method: str = "pca", seed: int = 0, **options: Any) -> tuple[Projection, Tensor]:
    """(fitted Projection, N x 2 coordinates of the latents)."""
    projection = Projection(method, seed, **options)
    return projection, projection.fit_transform(latents)
