"""Unsupervised edit directions: the principal components of the training latents (GANSpace, Härkönen et
al. 2020), and axes that project latents on a chosen vector (Latent Space Cartography).

Each direction is scaled to one standard deviation of the training latents along it, so a slider strength
of 1 moves a face as far as a typical training face differs from the average along that direction. Like the
map, the components are those of the typical latents (core.latent._typical): the few faces a model encodes
far off would otherwise take the first components for themselves.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image
from torch import Tensor

from core.api import Model
from core.export import make_grid
from core.latent import Projection, principal_components

DEFAULT_COUNT = 8
DEFAULT_STRENGTH = 3.0
DEFAULT_COLUMNS = 7


@dataclass(frozen=True)
class PrincipalDirections:
    """The top principal components of a set of latents."""

    mean: Tensor
    """D: the average latent (the average face)."""
    components: Tensor
    """K x D unit vectors, largest variance first."""
    scales: Tensor
    """K standard deviations of the latents along each component."""
    variance_shares: Tensor
    """K shares (0-1) of the latents' total variance that each component explains."""

    def __len__(self) -> int:
        return len(self.components)

    def names(self) -> list[str]:
        return [f"PC{i + 1}" for i in range(len(self))]

    def labels(self) -> list[str]:
        """"PC1 (12.3% of variance)", ...: how sliders and grids name the directions."""
        return [f"{name} ({100 * float(share):.1f}% of variance)"
                for name, share in zip(self.names(), self.variance_shares)]

    def vectors(self) -> dict[str, Tensor]:
        """{"PC1": component x its standard deviation, ...}: one slider unit is one standard deviation."""
        return {name: (component * scale).float()
                for name, component, scale in zip(self.names(), self.components, self.scales)}


def principal_directions(latents: Tensor, count: int = DEFAULT_COUNT) -> PrincipalDirections:
    """The top `count` principal directions of N x D latents (count is capped at D)."""
    if latents.dim() != 2 or latents.shape[0] < 2:
        raise ValueError(f"need N >= 2 latents as an N x D matrix, got shape {tuple(latents.shape)}")
    if count < 1:
        raise ValueError(f"need at least 1 direction, got {count}")
    mean, axes, variances, total = principal_components(latents, min(count, latents.shape[1]))
    shares = variances / total if total > 0 else torch.zeros_like(variances)
    return PrincipalDirections(mean.float(), axes.float(), variances.sqrt().float(), shares.float())


def model_directions(model: Model, count: int = DEFAULT_COUNT) -> PrincipalDirections | None:
    """The principal directions of the model's reference (training) latents; None when it has no reference
    map to compute them from."""
    reference = model.reference
    if reference is None or len(reference.latents) < 2:
        return None
    return principal_directions(reference.latents.float(), count)


def traversal_latents(start: Tensor, directions: PrincipalDirections, strength: float = DEFAULT_STRENGTH,
                      columns: int = DEFAULT_COLUMNS) -> Tensor:
    """(K * columns) x D latents: row k walks `start` along direction k from -strength to +strength standard
    deviations (the middle column of an odd count is `start` itself)."""
    if columns < 2:
        raise ValueError(f"a traversal needs at least 2 columns, got {columns}")
    steps = torch.linspace(-strength, strength, columns)
    vectors = torch.stack(list(directions.vectors().values()))
    return (start.float().reshape(1, 1, -1) + steps.reshape(1, -1, 1) * vectors.unsqueeze(1)).reshape(
        -1, start.numel())


def traversal_grid(model: Model, directions: PrincipalDirections, start: Tensor | None = None,
                   strength: float = DEFAULT_STRENGTH, columns: int = DEFAULT_COLUMNS) -> Image.Image:
    """One row of decoded faces per direction, from -strength to +strength standard deviations, around
    `start` (default: the average face)."""
    start = directions.mean if start is None else start
    images = model.decode(traversal_latents(start, directions, strength, columns))
    return make_grid(images, columns)


def vector_axis_projection(latents: Tensor, vector: Tensor) -> Projection:
    """A 2D map whose x is each latent's position along `vector` (its projection on the unit vector) and whose y
    is the first principal axis of what remains once that component is removed ("project on a vector",
    Latent Space Cartography, Liu et al. 2019)."""
    direction = vector.double().reshape(-1)
    norm = direction.norm()
    if norm == 0 or not torch.isfinite(norm):
        raise ValueError("cannot use a zero vector as a map axis")
    direction = direction / norm
    latents = latents.double()
    mean = latents.mean(0)
    remaining = latents - torch.outer((latents - mean) @ direction, direction)
    _, axes, _, _ = principal_components(remaining, 1)
    across = axes[0] - (axes[0] @ direction) * direction
    axes = torch.stack([direction, across / across.norm().clamp_min(1e-12)])
    return Projection.from_state(mean.float(), axes.float())
