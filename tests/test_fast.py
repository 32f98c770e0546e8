"""custseg.fast: the blocked silhouette equals scikit-learn's; one Lloyd step equals a naive one."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import silhouette_samples, silhouette_score

from custseg import selection
from custseg.fast import (
    lloyd_iteration,
    silhouette_samples_blocked,
    silhouette_score_blocked,
    stratified_sample,
)


def _blobs(
    seed: int, sizes: list[int], d: int, spread: float = 3.0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, spread, (len(sizes), d))
    labels = np.repeat(np.arange(len(sizes)), sizes)
    X = centres[labels] + rng.standard_normal((len(labels), d))
    perm = rng.permutation(len(labels))
    return X[perm], labels[perm]


# (seed, cluster sizes, features, block): unequal sizes, a singleton cluster, tiny blocks that
# split clusters, a block larger than the data, two clusters only
SILHOUETTE_CASES = [
    (0, [40, 25, 10, 1], 5, 7),
    (1, [300, 120, 30, 5, 1], 16, 64),
    (2, [200, 200], 3, 2048),
    (3, [150, 60, 1, 1, 33], 8, 50),
]


@pytest.mark.parametrize(("seed", "sizes", "d", "block"), SILHOUETTE_CASES)
def test_blocked_silhouette_equals_sklearn_float64(seed, sizes, d, block):
    X, labels = _blobs(seed, sizes, d)
    got = silhouette_samples_blocked(X, labels, block=block)
    np.testing.assert_allclose(got, silhouette_samples(X, labels), rtol=0, atol=1e-9)
    assert got.dtype == np.float64
    assert silhouette_score_blocked(X, labels, block=block) == pytest.approx(
        silhouette_score(X, labels), abs=1e-9
    )


@pytest.mark.parametrize(("seed", "sizes", "d", "block"), SILHOUETTE_CASES)
def test_blocked_silhouette_equals_sklearn_float32(seed, sizes, d, block):
    X, labels = _blobs(seed, sizes, d)
    X32 = X.astype(np.float32)
    got = silhouette_samples_blocked(X32, labels, block=block)
    np.testing.assert_allclose(got, silhouette_samples(X32, labels), rtol=0, atol=1e-4)


def test_blocked_silhouette_singleton_is_zero_and_labels_any_type():
    X, labels = _blobs(4, [30, 20, 1], 4)
    names = np.array(["big", "mid", "solo"])[labels]
    got = silhouette_samples_blocked(X, names, block=16)
    assert np.all(got[names == "solo"] == 0.0)
    np.testing.assert_allclose(got, silhouette_samples(X, names), atol=1e-9)


def test_blocked_silhouette_duplicate_points_and_integer_input():
    X = np.array([[0, 0], [0, 0], [5, 5], [5, 5], [5, 6]])
    labels = np.array([0, 0, 1, 1, 1])
    np.testing.assert_allclose(
        silhouette_samples_blocked(X, labels),
        silhouette_samples(X.astype(float), labels),
        atol=1e-9,
    )


def test_blocked_silhouette_far_from_origin_float32():
    # centring inside keeps the expanded form accurate for data far from the origin
    X, labels = _blobs(5, [80, 50, 20], 6)
    X32 = (X + 1e3).astype(np.float32)
    np.testing.assert_allclose(
        silhouette_samples_blocked(X32, labels),
        silhouette_samples(X32.astype(np.float64), labels),
        atol=1e-4,
    )


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.zeros(5, dtype=int), "Number of labels is 1"),
        (np.arange(5), "Number of labels is 5"),
        (np.zeros(4, dtype=int), "shape"),
    ],
)
def test_blocked_silhouette_rejects_bad_labels(labels, message):
    X = np.arange(10.0).reshape(5, 2)
    with pytest.raises(ValueError, match=message):
        silhouette_samples_blocked(X, labels)


def test_blocked_silhouette_rejects_non_finite():
    X = np.array([[0.0], [np.nan], [2.0], [3.0]])
    with pytest.raises(ValueError, match="NaN or infinity"):
        silhouette_samples_blocked(X, np.array([0, 0, 1, 1]))


def test_stratified_sample_is_the_selection_one():
    assert stratified_sample is selection.stratified_sample
    labels = np.repeat([0, 1, 2], [900, 90, 10])
    idx = stratified_sample(labels, 100, np.random.default_rng(0))
    assert set(np.unique(labels[idx])) == {0, 1, 2}


# ------------------------------------------------------------------------------------- Lloyd


def _naive_lloyd(
    X: np.ndarray, centers: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    X64 = X.astype(np.float64)
    C64 = centers.astype(np.float64)
    dist = ((X64[:, None, :] - C64[None, :, :]) ** 2).sum(axis=2)
    labels = dist.argmin(axis=1)
    new = C64.copy()
    for j in range(len(C64)):
        if np.any(labels == j):
            new[j] = X64[labels == j].mean(axis=0)
    return labels, new, float(dist[np.arange(len(X64)), labels].sum()), dist


@pytest.mark.parametrize("chunk_size", [1, 64, 4096])
def test_lloyd_iteration_equals_naive_float64(chunk_size):
    X, _ = _blobs(10, [300, 200, 50, 7], 6)
    rng = np.random.default_rng(11)
    centers = X[rng.choice(len(X), 4, replace=False)]
    labels, new, inertia = lloyd_iteration(X, centers, chunk_size=chunk_size)
    ref_labels, ref_new, ref_inertia, _ = _naive_lloyd(X, centers)
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(new, ref_new, rtol=1e-12, atol=1e-12)
    assert new.dtype == np.float64
    assert inertia == pytest.approx(ref_inertia, rel=1e-9)


def test_lloyd_iteration_equals_naive_float32():
    X, _ = _blobs(12, [500, 300, 120, 40], 16)
    X32 = X.astype(np.float32)
    rng = np.random.default_rng(13)
    centers = X32[rng.choice(len(X32), 4, replace=False)]
    labels, new, inertia = lloyd_iteration(X32, centers, chunk_size=100)
    ref_labels, ref_new, ref_inertia, dist = _naive_lloyd(X32, centers)
    assert new.dtype == np.float32
    # identical except, at most, rows whose two nearest centres are within float32 rounding
    two = np.sort(dist, axis=1)[:, :2]
    clear = (two[:, 1] - two[:, 0]) > 1e-4 * two[:, 1]
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(labels[clear], ref_labels[clear])
    np.testing.assert_allclose(new, ref_new, rtol=1e-5, atol=1e-5)
    assert inertia == pytest.approx(ref_inertia, rel=1e-4)


def test_lloyd_iteration_empty_cluster_keeps_its_centre():
    X, _ = _blobs(14, [100, 80], 3, spread=2.0)
    centers = np.vstack([X[:2], [[1e3, 1e3, 1e3]]])
    labels, new, inertia = lloyd_iteration(X, centers, chunk_size=32)
    ref_labels, ref_new, ref_inertia, _ = _naive_lloyd(X, centers)
    assert not np.any(labels == 2)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_array_equal(new[2], centers[2])
    np.testing.assert_allclose(new, ref_new, rtol=1e-12)
    assert inertia == pytest.approx(ref_inertia, rel=1e-9)


@pytest.mark.parametrize(("first", "again"), [(1, 2), (0, 4), (2, 3)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lloyd_iteration_tie_goes_to_lowest_index(first, again, dtype):
    X, _ = _blobs(15, [60, 40, 30], 16)
    X = X.astype(dtype)
    centers = X[[0, 1, 2, 3, 4]].copy()
    centers[again] = centers[first]  # two centres coincide exactly
    labels, new, _ = lloyd_iteration(X, centers, chunk_size=16)
    ref_labels, ref_new, _, _ = _naive_lloyd(X, centers)
    assert not np.any(labels == again)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(new, ref_new, rtol=1e-5)
    np.testing.assert_array_equal(new[again], centers[again])


def test_lloyd_iteration_rejects_mismatched_centres():
    with pytest.raises(ValueError, match="centers must have shape"):
        lloyd_iteration(np.zeros((5, 3)), np.zeros((2, 4)))
