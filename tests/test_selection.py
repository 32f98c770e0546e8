"""The k rule (:mod:`custseg.selection`): planted k found, "weak" on data without clusters, k = 2
only on strong evidence, and the verdict carried to summary.json.

The planted cases come from ``benchmarks/bench_krule.py`` (the full grid is the benchmark); the
ones here are those that plain "highest silhouette among stable k" gets wrong (nested groups,
imbalance), a k = 2 that must still be found, and two kinds of data without clusters.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_krule  # noqa: E402

from custseg.results.segmentation import KScore  # noqa: E402
from custseg.selection import (  # noqa: E402
    MODERATE,
    STRUCTURE_MESSAGES,
    choose_k,
    decide,
    null_reference,
    structure_verdict,
    subsample_stability,
)

CASES = {c.name: c for c in bench_krule.cases()}

PLANTED = [
    "clear k=2 sep=6 d=2 1:5",          # k = 2 stays findable (imbalanced 1:5)
    "clear k=3 sep=6 d=2 1:5",
    "clear k=5 sep=6 d=8 1:5",
    "clear k=4 as 2 groups d=4 1:1",    # max silhouette: 3
    "clear k=6 as 2 groups d=4 1:5",    # max silhouette: 5
    "clear k=8 as 2 groups d=8 1:5",    # max silhouette: 7
]
NULL = ["null gaussian d=5", "null correlated d=6",  # max silhouette: 9 and 2
        "null uniform d=2"]  # silhouette 0.40: "weak" needs the gap, not a silhouette band


@pytest.mark.parametrize("name", PLANTED)
def test_planted_k_is_found(name: str) -> None:
    case = CASES[name]
    X, _ = bench_krule.planted(case)
    sel = choose_k(X, seed=0, n_init=4)
    assert sel.k == case.k, sel.reason
    assert sel.structure in {"strong", "moderate"}, sel.structure_evidence
    assert sel.no_strong_structure is False
    assert f"k={sel.k}" in sel.reason and sel.structure_message in sel.reason


@pytest.mark.parametrize("name", NULL)
def test_no_clusters_is_weak_and_not_two(name: str) -> None:
    X, _ = bench_krule.planted(CASES[name])
    sel = choose_k(X, seed=0, n_init=4)
    assert sel.structure == "weak" and sel.no_strong_structure, sel.structure_evidence
    assert 3 <= sel.k <= 8, sel.reason  # no "k = 2" finding on data that has no groups
    assert sel.structure_message == STRUCTURE_MESSAGES["weak"]
    assert "partition of a continuum" in sel.structure_message
    assert sel.structure_evidence["gap"] < MODERATE[1]


def _score(k: int, sil: float, null: float, stab: float, ch: float = 100.0) -> KScore:
    return KScore(k=k, inertia=1000.0 / k, silhouette=sil, stability=stab,
                  criteria={"calinski_harabasz": ch, "davies_bouldin": 1.0},
                  null_silhouette=null)


def _decide(scores: list[KScore]):
    return decide(scores, sample_size=1000, silhouette_sample=1000, n_customers=1000)


def test_falling_silhouette_does_not_pull_k_to_two() -> None:
    # silhouette falls with k (as on most real data), but so does the reference's: k=4 separates
    # best beyond what a partition of no-cluster data gets
    scores = [_score(2, 0.40, 0.30, 0.95), _score(3, 0.36, 0.22, 0.90),
              _score(4, 0.35, 0.15, 0.90), _score(5, 0.25, 0.14, 0.85)]
    sel = _decide(scores)
    assert sel.k == 4, sel.reason
    # k = 2 wins when it beats the best of 3-8 by >= 0.05 in both gap and silhouette
    scores[0] = _score(2, 0.47, 0.20, 0.95)
    assert _decide(scores).k == 2
    scores[0] = _score(2, 0.47, 0.24, 0.95)  # gap 0.23 vs 0.20: not by 0.05
    assert _decide(scores).k == 4


def test_inertia_gap_separates_near_ties() -> None:
    # equal silhouette gaps: the k whose K-Means also tightens the segments more than on the
    # reference (log-inertia gap) wins -- what splits a close pair of planted groups
    scores = [_score(3, 0.50, 0.20, 0.9), _score(4, 0.50, 0.20, 0.9)]
    scores[0].null_inertia, scores[0].mean_inertia = 1.0, 0.5
    scores[1].null_inertia, scores[1].mean_inertia = 0.8, 0.2
    sel = _decide(scores)
    assert sel.k == 4 and "log-inertia gap" in sel.reason, sel.reason
    assert scores[1].inertia_gap == pytest.approx(np.log(4.0))
    scores[1].mean_inertia = 0.8  # no tightening beyond the reference: k=3
    assert _decide(scores).k == 3


def test_only_two_stable_but_no_structure_takes_most_stable_in_range() -> None:
    scores = [_score(2, 0.30, 0.25, 0.98), _score(3, 0.26, 0.20, 0.66),
              _score(4, 0.20, 0.18, 0.70), _score(5, 0.19, 0.18, 0.50)]
    sel = _decide(scores)
    assert sel.k == 4 and sel.structure == "weak", sel.reason
    scores[0] = _score(2, 0.40, 0.20, 0.98)  # k = 2 with a real gap (0.20): it stands
    sel = _decide(scores)
    assert sel.k == 2 and sel.structure == "moderate", sel.reason


def test_verdict_bands() -> None:
    assert structure_verdict(_score(4, 0.60, 0.20, 0.9))[0] == "strong"
    assert structure_verdict(_score(4, 0.60, 0.20, 0.6))[0] == "weak"      # unstable
    assert structure_verdict(_score(4, 0.45, 0.30, 0.9))[0] == "moderate"
    assert structure_verdict(_score(4, 0.40, 0.35, 0.9))[0] == "weak"      # no gap
    assert structure_verdict(_score(4, 0.20, 0.00, 0.9))[0] == "weak"      # low silhouette
    verdict, ev = structure_verdict(_score(4, 0.45, 0.30, 0.9))
    assert ev["gap"] == pytest.approx(0.15) and ev["stable"] is True and ev["k"] == 4


def test_stability_separates_blobs_from_a_cloud() -> None:
    rng = np.random.default_rng(0)
    blobs = np.vstack([rng.normal(c, 0.5, (300, 3)) for c in (-5, 0, 5)])
    from sklearn.cluster import KMeans

    lab = KMeans(3, n_init=4, random_state=0).fit(blobs).labels_
    assert subsample_stability(blobs, lab, 3, seed=0, resamples=10) > 0.99
    cloud = rng.standard_normal((900, 5))
    lab = KMeans(6, n_init=4, random_state=0).fit(cloud).labels_
    assert subsample_stability(cloud, lab, 6, seed=0, resamples=10) < 0.75


def test_null_reference_spans_the_principal_box() -> None:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3000, 4)) @ rng.standard_normal((4, 4))
    assert null_reference(X, seed=0, size=2000).shape == (2000, 4)  # a sub-sample's box
    ref = null_reference(X, seed=0, size=5000)  # all rows: the box of X itself
    assert ref.shape == (3000, 4)
    Z = X - X.mean(axis=0)
    P = Z @ np.linalg.svd(Z, full_matrices=False)[2].T
    # uniform in the box: every coordinate's spread is that of a uniform on the data's range
    assert np.all(np.abs(ref.std(axis=0) / (np.ptp(P, axis=0) / np.sqrt(12)) - 1) < 0.1)
    assert np.array_equal(ref, null_reference(X, seed=0, size=5000))  # seeded
