"""How well attribute vectors separate faces, how entangled they are, and editing one while holding others.

Separation is Cohen's d of the faces' projections onto a vector: the gap between the mean projection of
faces with the attribute and of faces without it, in pooled standard deviations. It is only honest on faces
the vector was not computed from, so two sources are offered:
- held_out_separation: the stored vectors scored on labelled faces outside the training set;
- cross_fitted_separation: from labelled faces alone (a model's reference map): each half of the faces
  makes a vector the same way training does (mean with minus mean without) and the other half is scored on
  it; the two halves' d are averaged. This scores the recipe at that sample size, not the stored vector.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from core.latent import orthogonalize_against, vector_from_groups

MIN_GROUP = 2
"""Faces needed on each side of an attribute for a standard deviation."""


@dataclass(frozen=True)
class Separation:
    """Cohen's d of the projections, with the counts behind it (d is NaN when a side has < MIN_GROUP faces)."""

    with_count: int
    without_count: int
    d: float


def cohens_d(with_values: Tensor, without_values: Tensor) -> float:
    """(mean with - mean without) / pooled standard deviation; NaN when a side is too small or nothing varies."""
    n1, n0 = len(with_values), len(without_values)
    if n1 < MIN_GROUP or n0 < MIN_GROUP:
        return float("nan")
    a, b = with_values.double(), without_values.double()
    pooled = ((n1 - 1) * a.var() + (n0 - 1) * b.var()) / (n1 + n0 - 2)
    if pooled <= 0:
        return float("nan")
    return float((a.mean() - b.mean()) / pooled.sqrt())


def separation(vector: Tensor, latents: Tensor, has: Tensor) -> Separation:
    """Separation of faces with (has True) and without the attribute along `vector` (any scale)."""
    projections = latents.double() @ (vector.double() / vector.double().norm().clamp_min(1e-12))
    return Separation(int(has.sum()), int((~has).sum()), cohens_d(projections[has], projections[~has]))


def _labelled(labels: Tensor, names: Sequence[str], name: str) -> tuple[Tensor, Tensor] | None:
    """(faces known either way, has) for one label column (1 has, -1 lacks, 0 unknown); None if absent."""
    if name not in names:
        return None
    column = torch.as_tensor(labels)[:, list(names).index(name)]
    known = column != 0
    return known, column[known] > 0


def held_out_separation(vectors: Mapping[str, Tensor], latents: Tensor, labels: Tensor,
                        names: Sequence[str]) -> dict[str, Separation]:
    """Each vector scored on labelled faces it was not computed from (attributes without a label are left out)."""
    scores = {}
    for attribute, vector in vectors.items():
        found = _labelled(labels, names, attribute)
        if found is not None:
            known, has = found
            scores[attribute] = separation(vector, latents[known], has)
    return scores


def _halves(count: int) -> tuple[Tensor, Tensor]:
    """Two halves drawn at random (a fixed seed, so scores repeat): no ordering of the faces can line up
    with an attribute."""
    index = torch.randperm(count, generator=torch.Generator().manual_seed(0))
    return index[: count // 2], index[count // 2:]


def cross_fitted_separation(latents: Tensor, has: Tensor) -> Separation:
    """Separation of a mean-difference vector on faces it was not computed from: made from one half of
    the faces, scored on the other, both ways; d is the mean of the two, counts are of all scored faces."""
    scores = []
    for made_from, scored in (_halves(len(latents)), _halves(len(latents))[::-1]):
        side = has[made_from]
        if side.sum() < 1 or (~side).sum() < 1:
            return Separation(int(has.sum()), int((~has).sum()), float("nan"))
        vector = vector_from_groups(latents[made_from], side, ~side)
        scores.append(separation(vector, latents[scored], has[scored]).d)
    return Separation(int(has.sum()), int((~has).sum()), float(np.mean(scores)))


def cross_fitted_separations(latents: Tensor, labels: Tensor, names: Sequence[str]) -> dict[str, Separation]:
    """cross_fitted_separation for every labelled attribute (e.g. of a model's reference map)."""
    scores = {}
    for name in names:
        known, has = _labelled(labels, names, name)
        scores[name] = cross_fitted_separation(latents[known], has)
    return scores


def cosine_matrix(vectors: Mapping[str, Tensor]) -> tuple[list[str], Tensor]:
    """(names, A x A cosine similarities between the vectors)."""
    names = list(vectors)
    stacked = torch.stack([vectors[n].double() for n in names])
    unit = stacked / stacked.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return names, unit @ unit.T


def entanglement_order(cosines: Tensor) -> list[int]:
    """An order of the vectors that puts related ones (large |cosine|, either sign) next to each other:
    average-linkage clustering on 1 - |cosine|, leaves in optimal order (scipy, installed with scikit-learn)."""
    count = cosines.shape[0]
    if count < 3:
        return list(range(count))
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    distance = (1 - cosines.abs()).clamp_min(0).numpy().copy()
    np.fill_diagonal(distance, 0)
    tree = linkage(squareform(distance, checks=False), method="average", optimal_ordering=True)
    return [int(i) for i in leaves_list(tree)]


def most_entangled(names: Sequence[str], cosines: Tensor, name: str, count: int = 3) -> list[tuple[str, float]]:
    """The `count` other vectors with the largest |cosine| to `name`, with their signed cosines."""
    row = list(names).index(name)
    others = [(names[i], float(cosines[row, i])) for i in range(len(names)) if i != row]
    return sorted(others, key=lambda pair: -abs(pair[1]))[:count]


def conditional_vector(vector: Tensor, held: Sequence[Tensor]) -> Tensor:
    """`vector` with the directions of the held attributes projected out (Shen et al. 2020, InterFaceGAN):
    moving along it leaves every face's projection onto each held vector unchanged. Keeps |vector|."""
    return orthogonalize_against(vector, list(held)) if held else vector


def conditional_vectors(vectors: Mapping[str, Tensor], held: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Every vector not held, conditioned on the held ones (held vectors themselves stay as they are)."""
    held_vectors = list(held.values())
    return {name: vector if name in held else conditional_vector(vector, held_vectors)
            for name, vector in vectors.items()}
