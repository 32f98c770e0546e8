"""benchmarks/lloyd.py: one chunked Lloyd step (the kernel bench_kmeans.py times against
scikit-learn) equals a naive one, in float64 and float32, with empty clusters and ties."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from lloyd import lloyd_iteration  # noqa: E402

from test_fast import _blobs  # noqa: E402  (one planted-blob generator for both files)


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
