"""custseg.fast: the blocked silhouette equals scikit-learn's (the Lloyd step benchmarks/lloyd.py
times is tested in test_bench_lloyd.py)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import silhouette_samples, silhouette_score

from custseg import sampling, selection
from custseg.fast import (
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
    assert stratified_sample is selection.stratified_sample is sampling.stratified_sample
    labels = np.repeat([0, 1, 2], [900, 90, 10])
    idx = stratified_sample(labels, 100, np.random.default_rng(0))
    assert set(np.unique(labels[idx])) == {0, 1, 2}
