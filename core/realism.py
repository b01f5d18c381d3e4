"""How typical a latent is among the training faces, and how far each attribute slider can go before an edit
leaves the region where they lie.

Typicality is the log-density under the model's fitted latent Gaussian (core.latent.LatentGaussian), which
falls as the squared Mahalanobis distance |L^-1 (z - mean)|^2 grows. A face's percentile is the share of the
reference faces (2,000 training faces stored in the model) that are less typical than it. "Inside" means no
further out than 99% of the typical reference faces: those inside the Tukey fence the Gaussian itself was
fitted to (core.latent.fit_latent_gaussian), since the few faces a model encodes far off (about 5% for the
bundled model) would otherwise stretch the region until hardly any edit leaves it. Everything works in whitened coordinates w = L^-1 (z - mean): an edit
z + s v moves w along L^-1 v, so where an edit leaves the region is the root of a quadratic in s.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from core.api import Model
from core.latent import LatentGaussian, _typical_mask

INSIDE_SHARE = 0.99
"""The region of typical faces: where this share of the typical reference faces lie."""
NEAREST_COUNT = 5


@dataclass(frozen=True)
class Realism:
    """Where one latent sits among the training faces."""

    percentile: float
    """Share (0-100) of the reference faces whose log-density is lower: 50 is a middling face, 0 stranger
    than every training face."""
    inside: bool
    """Within the region where INSIDE_SHARE of the typical training faces lie."""
    nearest: list[int]
    """Indices of the nearest reference faces (latent distance), nearest first."""
    distances: list[float]


class RealismMeter:
    """The realism figures of a model's fitted Gaussian, calibrated on reference (training) latents.

    Whitening the vectors once (whiten_vectors) lets safe_ranges answer for every slider from a few dot
    products, so nothing is re-encoded or re-decoded while sliders move."""

    def __init__(self, gaussian: LatentGaussian, reference_latents: Tensor, inside_share: float = INSIDE_SHARE) -> None:
        if reference_latents.dim() != 2 or reference_latents.shape[0] < 2 \
                or reference_latents.shape[1] != gaussian.latent_dim:
            raise ValueError(f"need N >= 2 reference latents of size {gaussian.latent_dim}, "
                             f"got shape {tuple(reference_latents.shape)}")
        self.mean = gaussian.mean.double()
        self.scale_tril = gaussian.scale_tril.double()
        self.reference = reference_latents.double()
        self.reference_distances = self.squared_distance(self.reference).sort().values
        typical = self.squared_distance(self.reference[_typical_mask(self.reference)])
        self.threshold = float(torch.quantile(typical, inside_share))
        """The squared Mahalanobis distance that inside_share of the typical reference faces stay within."""
        self.share_inside = float((self.reference_distances <= self.threshold).double().mean())
        """The share of all reference faces inside (a little below inside_share: the outliers are out)."""

    @classmethod
    def of_model(cls, model: Model) -> "RealismMeter | None":
        """The model's meter, or None when it stores no fitted Gaussian or no reference map."""
        reference = model.reference
        if model.latent_gaussian is None or reference is None or len(reference.latents) < 2:
            return None
        return cls(model.latent_gaussian, reference.latents)

    def whiten(self, z: Tensor) -> Tensor:
        """L^-1 (z - mean) for one latent (D) or a batch (N x D)."""
        centred = (z.double() - self.mean).reshape(-1, self.mean.shape[0])
        white = torch.linalg.solve_triangular(self.scale_tril, centred.T, upper=False).T
        return white.reshape(z.shape)

    def whiten_vectors(self, vectors: Tensor) -> Tensor:
        """L^-1 v for A x D edit directions (no centring: directions move, they do not sit anywhere)."""
        return torch.linalg.solve_triangular(self.scale_tril, vectors.double().T, upper=False).T

    def squared_distance(self, z: Tensor) -> Tensor:
        return self.whiten(z).square().sum(-1)

    def log_density(self, z: Tensor) -> Tensor:
        """log N(z; mean, L L^T), one value per latent."""
        dim = self.mean.shape[0]
        log_det = self.scale_tril.diagonal().log().sum()
        return -0.5 * self.squared_distance(z) - log_det - 0.5 * dim * math.log(2 * math.pi)

    def percentile_of(self, squared_distance: float) -> float:
        """Share (0-100) of reference faces further out (so less dense) than this distance."""
        closer_or_equal = int(torch.searchsorted(self.reference_distances, torch.tensor(squared_distance,
                                                                                     dtype=torch.float64),
                                                 right=True))
        return 100.0 * (1 - closer_or_equal / len(self.reference_distances))

    def nearest(self, z: Tensor, count: int = NEAREST_COUNT) -> tuple[list[int], list[float]]:
        distances = torch.cdist(z.double().reshape(1, -1), self.reference)[0]
        values, indices = distances.topk(min(count, len(distances)), largest=False)
        return indices.tolist(), values.tolist()

    def measure(self, z: Tensor, count: int = NEAREST_COUNT) -> Realism:
        """The figures of one latent (D)."""
        distance = float(self.squared_distance(z.reshape(-1)))
        nearest, distances = self.nearest(z, count)
        return Realism(self.percentile_of(distance), distance <= self.threshold, nearest, distances)

    def measure_many(self, latents: Tensor, count: int = NEAREST_COUNT) -> list[Realism]:
        return [self.measure(z, count) for z in latents]

    def safe_ranges(self, white_z: Tensor, white_vectors: Tensor, strengths: Tensor) -> Tensor:
        """A x 2 (low, high): for each vector, the strengths at which the face stays inside, the other
        strengths held. white_z is the whitened edited latent (all current strengths applied); white_vectors
        the A whitened directions; strengths their A current strengths. NaN rows: no strength is inside.

        With the other edits fixed the face is a + s b (b = L^-1 v, a = white_z - s_now b), inside while
        |b|^2 s^2 + 2 (a.b) s + |a|^2 - threshold <= 0: its two roots bound the safe range."""
        strengths = strengths.double()
        bb = white_vectors.square().sum(1)
        wb = white_vectors @ white_z
        ab = wb - strengths * bb
        aa = white_z @ white_z - 2 * strengths * wb + strengths.square() * bb
        discriminant = ab.square() - bb * (aa - self.threshold)
        root = discriminant.clamp_min(0).sqrt()
        safe_bb = bb.clamp_min(1e-300)
        ranges = torch.stack([(-ab - root) / safe_bb, (-ab + root) / safe_bb], 1)
        ranges[discriminant < 0] = math.nan
        no_effect = bb <= 0   # a zero vector never moves the face: every strength or none is safe
        everywhere = torch.tensor([-math.inf, math.inf], dtype=torch.float64)
        ranges[no_effect & (aa <= self.threshold)] = everywhere
        ranges[no_effect & (aa > self.threshold)] = math.nan
        return ranges


def nearest_names(indices: Sequence[int]) -> str:
    """How a CSV names reference faces: their index in the model's reference map."""
    return " ".join(f"ref{index}" for index in indices)
