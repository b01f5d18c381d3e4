"""core.latent: interpolation, attribute vectors, edits, prior samples and 2D projections."""
from __future__ import annotations

import importlib.util
import math

import pytest
import torch
from threadpoolctl import threadpool_limits

from core.api import load_model
from core.bundle import save_inference_model
from core.latent import (PROJECTION_METHODS, LatentGaussian, Projection, apply_edits, attribute_vector,
                         attribute_vectors_from_labels, fit_latent_gaussian, fit_projection, interpolate,
                         interpolate_path, lerp, orthogonalize, orthogonalize_against, sample_prior, slerp,
                         vector_from_groups)
from tests.conftest import make_tiny_model


def equal_norm_pair(dim: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(dim, generator=g), torch.randn(dim, generator=g)
    return a, b * (a.norm() / b.norm())


# ---------------------------------------------------------------- interpolation

@pytest.mark.parametrize("interpolator", [lerp, slerp])
def test_interpolators_hit_both_endpoints_exactly(interpolator):
    a, b = torch.randn(5, 16), torch.randn(5, 16)
    assert torch.equal(interpolator(a, b, 0.0), a)
    assert torch.equal(interpolator(a, b, 1.0), b)
    assert torch.equal(interpolator(a[0], b[0], 1.0), b[0])


def test_slerp_keeps_norm_and_follows_the_great_circle():
    a, b = equal_norm_pair()
    path = torch.stack([slerp(a, b, t) for t in torch.linspace(0, 1, 11).tolist()])
    assert torch.allclose(path.norm(dim=1), a.norm().expand(11), rtol=1e-5)
    assert not torch.allclose(lerp(a, b, 0.5).norm(), a.norm(), rtol=1e-3)  # lerp cuts the corner
    e0, e1 = torch.eye(2)
    assert torch.allclose(slerp(e0, e1, 0.5), torch.tensor([1.0, 1.0]) / math.sqrt(2))


def test_slerp_of_parallel_antiparallel_and_zero_vectors_falls_back_to_lerp():
    a = torch.tensor([1.0, -2.0, 3.0])
    assert torch.allclose(slerp(a, 2 * a, 0.5), 1.5 * a)
    assert torch.allclose(slerp(a, -a, 0.25), lerp(a, -a, 0.25))
    assert torch.allclose(slerp(torch.zeros(3), a, 0.5), 0.5 * a)
    batch = slerp(torch.stack([a, a]), torch.stack([2 * a, torch.tensor([3.0, 1.0, 0.0])]), 0.5)
    assert torch.isfinite(batch).all() and torch.allclose(batch[0], 1.5 * a)


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_interpolate_includes_exact_endpoints(method):
    a, b = equal_norm_pair(8, seed=1)
    frames = interpolate(a, b, 7, method)
    assert frames.shape == (7, 8)
    assert torch.equal(frames[0], a) and torch.equal(frames[-1], b)
    assert torch.allclose(frames[3], lerp(a, b, 0.5) if method == "linear" else slerp(a, b, 0.5), atol=1e-6)


@pytest.mark.parametrize("steps", [1, 257, 2.5])
def test_interpolate_rejects_steps_out_of_range(steps):
    with pytest.raises(ValueError, match="steps"):
        interpolate(torch.zeros(4), torch.ones(4), steps)


def test_interpolate_rejects_unknown_method_and_mismatched_sizes():
    with pytest.raises(ValueError, match="unknown interpolation method"):
        interpolate(torch.zeros(4), torch.ones(4), 5, "cubic")
    with pytest.raises(ValueError, match="shape"):
        interpolate(torch.zeros(4), torch.ones(5), 5)


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_path_passes_through_every_point_with_requested_length(method):
    points = torch.randn(4, 8, generator=torch.Generator().manual_seed(2))
    path = interpolate_path(points, 12, method)
    assert path.shape == (12, 8)
    # 11 moves over 3 segments: 4, 4, 3 -> the points sit at rows 0, 4, 8, 11
    for row, point in zip([0, 4, 8, 11], points):
        assert torch.equal(path[row], point)


def test_path_with_one_step_per_point_is_the_points_themselves():
    points = torch.randn(5, 3)
    assert torch.equal(interpolate_path(points, 5), points)
    with pytest.raises(ValueError, match="steps"):
        interpolate_path(points, 4)
    with pytest.raises(ValueError, match="at least 2 points"):
        interpolate_path(points[:1], 4)


# ---------------------------------------------------------------- attribute vectors

def test_attribute_vector_is_the_difference_of_group_means():
    latents = torch.tensor([[1.0, 0.0], [3.0, 2.0], [0.0, 5.0], [2.0, 1.0], [4.0, 3.0]])
    has = torch.tensor([True, True, False, False, False])
    expected = torch.tensor([2.0, 1.0]) - torch.tensor([2.0, 3.0])
    assert torch.allclose(attribute_vector(latents, has), expected)
    assert torch.allclose(vector_from_groups(latents, [0, 1], [2, 3, 4]), expected)


def test_attribute_vector_with_an_empty_group_raises():
    latents = torch.randn(4, 3)
    with pytest.raises(ValueError, match="'without' group is empty"):
        attribute_vector(latents, torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="'with' group is empty"):
        vector_from_groups(latents, [], [0, 1])
    with pytest.raises(ValueError, match="one entry per latent"):
        attribute_vector(latents, torch.ones(3, dtype=torch.bool))


def test_vectors_from_labels_skip_one_sided_attributes():
    latents = torch.arange(8.0).reshape(4, 2)
    labels = torch.tensor([[1, 1], [1, 1], [-1, 1], [-1, 1]], dtype=torch.int8)
    vectors = attribute_vectors_from_labels(latents, labels, ["Smiling", "Young"])
    assert list(vectors) == ["Smiling"]
    assert torch.allclose(vectors["Smiling"], torch.tensor([-4.0, -4.0]))
    with pytest.raises(ValueError, match="labels must be"):
        attribute_vectors_from_labels(latents, labels, ["Smiling"])


# ---------------------------------------------------------------- orthogonalisation and edits

def test_orthogonalize_gives_pairwise_orthogonal_vectors_with_original_norms():
    g = torch.Generator().manual_seed(3)
    vectors = {name: torch.randn(16, generator=g) * scale for name, scale in [("a", 1.0), ("b", 3.0), ("c", 0.5)]}
    vectors["b"] = vectors["b"] + 2 * vectors["a"]  # strongly correlated with a
    result = orthogonalize(vectors, order=["b"])
    assert list(result) == ["b", "a", "c"]
    assert torch.equal(result["b"], vectors["b"])
    unit = torch.stack([v / v.norm() for v in result.values()])
    assert torch.allclose(unit @ unit.T, torch.eye(3), atol=1e-5)
    for name, vector in result.items():
        assert torch.allclose(vector.norm(), vectors[name].norm(), rtol=1e-5)


def test_orthogonalize_zeroes_a_vector_in_the_span_of_earlier_ones():
    a, b = torch.eye(4)[:2]
    result = orthogonalize({"a": a, "b": b, "a_plus_b": a + b})
    assert torch.equal(result["a_plus_b"], torch.zeros(4))
    with pytest.raises(ValueError, match="unknown vector name"):
        orthogonalize({"a": a}, order=["z"])


def test_orthogonalize_against_removes_the_span_of_non_orthogonal_others():
    others = [torch.tensor([1.0, 0.0, 0.0]), torch.tensor([1.0, 1.0, 0.0])]
    v = torch.tensor([2.0, 3.0, 4.0])
    result = orthogonalize_against(v, others)
    assert torch.allclose(result, torch.tensor([0.0, 0.0, v.norm().item()]), atol=1e-6)


def test_apply_edits_by_name_and_by_vector_on_single_and_batched_latents():
    vectors = {"Smiling": torch.tensor([1.0, 0.0]), "Young": torch.tensor([0.0, 2.0])}
    z = torch.tensor([0.5, 0.5])
    assert torch.allclose(apply_edits(z, {"Smiling": 2.0, "Young": -0.5}, vectors), torch.tensor([2.5, -0.5]))
    batch = torch.zeros(3, 2)
    edited = apply_edits(batch, [(torch.tensor([1.0, 1.0]), 0.5)])
    assert torch.allclose(edited, torch.full((3, 2), 0.5)) and torch.equal(batch, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="unknown attribute"):
        apply_edits(z, {"Bald": 1.0}, vectors)
    with pytest.raises(ValueError, match="does not match latent size"):
        apply_edits(z, [(torch.ones(3), 1.0)])


def test_sample_prior_temperature_scales_std_and_seed_reproduces():
    cold, hot = sample_prior(4000, 32, 0.5, seed=7), sample_prior(4000, 32, 2.0, seed=7)
    assert cold.shape == (4000, 32)
    assert abs(cold.std().item() - 0.5) < 0.02 and abs(hot.std().item() - 2.0) < 0.08
    assert torch.equal(sample_prior(3, 8, seed=1), sample_prior(3, 8, seed=1))
    assert not torch.equal(sample_prior(3, 8, seed=1), sample_prior(3, 8, seed=2))
    model = make_tiny_model(with_reference=False)
    assert torch.equal(sample_prior(2, 8, 0.7, seed=5), model.sample(2, 0.7, seed=5)[0])


def correlated_posteriors(n: int = 6000, dim: int = 24, variance: float = 0.3,
                          seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(means, variances, true centre, covariance of the means) of n posteriors with correlated means."""
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(dim, dim, generator=g) * 0.2
    centre = torch.randn(dim, generator=g)
    means = centre + torch.randn(n, dim, generator=g) @ mixing.T
    return means, torch.full((n, dim), variance), centre, mixing @ mixing.T


def test_fitted_latent_gaussian_matches_the_mixture_of_posteriors_and_ignores_outliers():
    means, variances, centre, covariance = correlated_posteriors()
    far = torch.full((30, means.shape[1]), 40.0)  # faces encoded far off: they must not pull the fit
    fit = fit_latent_gaussian(torch.cat([means, far]), torch.cat([variances, torch.ones(30, means.shape[1])]))
    assert torch.allclose(fit.mean, centre, atol=0.08)
    fitted_covariance = fit.scale_tril @ fit.scale_tril.T
    expected = covariance + 0.3 * torch.eye(means.shape[1])
    assert (fitted_covariance - expected).abs().max() < 0.15
    drawn = fit.sample(20000, seed=3)
    assert torch.allclose(drawn.mean(0), centre, atol=0.08)
    assert (torch.cov(drawn.T) - expected).abs().max() < 0.15
    assert (torch.cov(fit.sample(20000, 0.5, seed=3).T) - 0.25 * expected).abs().max() < 0.05
    with pytest.raises(ValueError, match="matching"):
        fit_latent_gaussian(means, variances[:, :3])


def two_kinds_of_faces(n: int = 4000, dim: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """(means, variances) of posteriors in two clusters at -3 and +3 along the first axis, nothing between."""
    g = torch.Generator().manual_seed(1)
    means = torch.randn(n, dim, generator=g) * 0.5
    means[:, 0] += torch.where(torch.arange(n) % 2 == 0, -3.0, 3.0)
    return means, torch.full((n, dim), 0.05)


def test_random_faces_come_from_a_mixture_where_the_faces_form_clusters_and_not_from_the_gap_between():
    fit = fit_latent_gaussian(*two_kinds_of_faces())
    assert fit.mixture is not None and len(fit.mixture.weights) >= 2
    assert "mixture of" in fit.description(4000)
    drawn = fit.sample(4000, seed=0)
    in_the_gap = (drawn[:, 0].abs() < 1.5).float().mean().item()
    one_gaussian = LatentGaussian(fit.mean, fit.scale_tril).sample(4000, seed=0)
    assert in_the_gap < 0.02 < (one_gaussian[:, 0].abs() < 1.5).float().mean().item()
    assert torch.equal(fit.sample(7, seed=2), fit.sample(7, seed=2))
    assert torch.allclose(fit.sample(5, 0.0, seed=1), fit.mean.expand(5, -1))   # temperature 0: the centre
    assert (fit.sample(4000, 0.5, seed=0)[:, 0].abs() - 1.5).abs().mean() < 0.3  # half the spread: clusters at 1.5
    with pytest.raises(ValueError, match="temperature"):
        fit.sample(3, -1.0)


def test_one_gaussian_is_kept_where_the_faces_form_one_cluster_or_are_too_few_for_a_mixture():
    means, variances, _, _ = correlated_posteriors()
    assert fit_latent_gaussian(means, variances).mixture is None
    assert fit_latent_gaussian(*(t[:1500] for t in two_kinds_of_faces())).mixture is None
    assert "Gaussian fitted to 1,500" in fit_latent_gaussian(means[:1500], variances[:1500]).description(1500)


def test_a_model_keeps_its_mixture_in_its_file_and_draws_the_same_faces_after_loading(tmp_path):
    model = make_tiny_model(with_reference=False)
    means, variances = two_kinds_of_faces(dim=model.latent_dim)
    model.latent_gaussian = fit_latent_gaussian(means, variances)
    loaded = load_model(save_inference_model(model, tmp_path / "m.safetensors", half_precision=False), device="cpu")
    assert loaded.latent_gaussian.mixture is not None
    assert torch.allclose(loaded.sample_latents(6, 0.8, seed=2), model.sample_latents(6, 0.8, seed=2), atol=1e-5)


def test_a_model_with_a_fitted_gaussian_draws_random_faces_from_it_and_keeps_it_in_its_file(tmp_path):
    model = make_tiny_model(with_reference=False)
    dim = model.latent_dim
    centre = torch.full((dim,), 3.0)
    model.latent_gaussian = LatentGaussian(centre, 0.1 * torch.eye(dim))
    z, faces = model.sample(500, seed=4)
    assert faces.shape == (500, 3, model.image_size, model.image_size)
    assert torch.allclose(z.mean(0), centre, atol=0.03) and abs(z.std(0).mean().item() - 0.1) < 0.01
    assert torch.equal(model.sample_latents(3, seed=1), model.sample_latents(3, seed=1))
    loaded = load_model(save_inference_model(model, tmp_path / "m.safetensors", half_precision=False), device="cpu")
    assert loaded.latent_gaussian is not None
    assert torch.equal(loaded.sample_latents(5, 0.8, seed=2), model.sample_latents(5, 0.8, seed=2))
    assert load_model(save_inference_model(make_tiny_model(with_reference=False), tmp_path / "plain.safetensors"),
                      device="cpu").latent_gaussian is None


# ---------------------------------------------------------------- projections

def plane_data(n: int = 500, dim: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents lying on a random 2-D plane plus tiny noise, and their coordinates within the plane."""
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(dim, 2, generator=g))
    plane_coords = torch.randn(n, 2, generator=g) * torch.tensor([3.0, 1.0])
    latents = plane_coords @ basis.T + 5 + 0.01 * torch.randn(n, dim, generator=g)
    return latents, plane_coords


def test_pca_recovers_a_known_plane():
    latents, plane_coords = plane_data()
    projection, coords = fit_projection(latents)
    # the map equals the plane coordinates up to a rotation/reflection and a shift
    design = torch.cat([coords, torch.ones(len(coords), 1)], 1)
    fit = torch.linalg.lstsq(design, plane_coords).solution
    assert (design @ fit - plane_coords).abs().max() < 0.05
    assert torch.allclose(fit[:2].T @ fit[:2], torch.eye(2), atol=1e-3)
    assert torch.equal(projection.transform(latents), coords)


def test_pca_axes_follow_the_bulk_not_a_few_far_outliers():
    latents, plane_coords = plane_data()
    far = torch.zeros(len(latents) // 20, latents.shape[1])
    far[:, -1] = torch.linspace(40, 80, len(far))  # 5% of faces encoded far off, along a third direction
    projection, _ = fit_projection(torch.cat([latents, far]))
    coords = projection.transform(latents)
    design = torch.cat([coords, torch.ones(len(coords), 1)], 1)
    fit = torch.linalg.lstsq(design, plane_coords).solution
    assert (design @ fit - plane_coords).abs().max() < 0.05


def test_pca_signs_are_deterministic_and_state_round_trips():
    latents, _ = plane_data(seed=1)
    projection, coords = fit_projection(latents)
    _, shuffled_coords = fit_projection(latents.flip(0))
    assert torch.allclose(shuffled_coords.flip(0), coords, atol=1e-4)
    restored = Projection.from_state(**projection.state())
    assert torch.allclose(restored.transform(latents[:10]), coords[:10], atol=1e-6)  # BLAS blocks by batch size


def test_projection_from_reference_map_state_reproduces_its_coords():
    reference = make_tiny_model().reference
    projection = Projection.from_state(reference.projection_mean, reference.projection_axes)
    assert torch.allclose(projection.transform(reference.latents), reference.coords, atol=1e-5)
    assert torch.allclose(projection.transform(reference.latents[:3]), reference.project(reference.latents[:3]))


def test_projection_rejects_bad_settings():
    with pytest.raises(ValueError, match="unknown or unavailable projection method"):
        Projection("mds")
    with pytest.raises(RuntimeError, match="not fitted"):
        Projection().transform(torch.zeros(1, 4))
    projection, _ = fit_projection(torch.randn(10, 4))
    with pytest.raises(ValueError, match="do not match the fitted size"):
        projection.transform(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="2 x 4"):
        Projection.from_state(torch.zeros(4), torch.zeros(3, 4))


def test_projection_methods_list_what_is_installed():
    assert PROJECTION_METHODS[0] == "pca" and "tsne" in PROJECTION_METHODS
    assert ("umap" in PROJECTION_METHODS) == (importlib.util.find_spec("umap") is not None)


def test_tsne_transform_places_a_fitted_point_at_its_own_coordinate():
    latents = torch.cat([torch.randn(30, 8), torch.randn(30, 8) + 6])  # two clusters
    with threadpool_limits(1):  # OpenMP threads on a busy 2-core machine slow t-SNE down ~10x
        projection, coords = fit_projection(latents, "tsne", perplexity=10, max_iter=250)
    assert coords.shape == (60, 2)
    placed = projection.transform(latents[[3, 40]])
    assert torch.allclose(placed, coords[[3, 40]], atol=1e-3)
    nearby = projection.transform(latents[[3]] + 0.01)
    assert (nearby - coords[3]).norm() < (coords[40] - coords[3]).norm() / 4
    with pytest.raises(ValueError, match="only PCA"):
        projection.state()
