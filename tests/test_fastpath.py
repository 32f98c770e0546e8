"""The fast paths give the slow paths' answers.

* duplicate rows found by narrowing one column at a time == ``DataFrame.duplicated``;
* the final K-Means started from the selection sample's centroids (one run on all customers) ==
  ``n_init`` full runs from scratch: same k, same segments (ARI), same names, same inertia,
  on planted and on real data;
* per-segment statistics from sorted slices == the same statistics from boolean masks;
* the segment map's covariance PCA == the full SVD.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score

from custseg.cleaning import duplicate_rows
from custseg.config import Config
from custseg.pipeline import prepare_data, segment_prepared
from custseg.profile import profile_segments, segment_map

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------ duplicate rows


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["1", "2", "3", ""]), st.sampled_from(["a", "b"]),
                          st.sampled_from(["x", "y", None])), min_size=0, max_size=40),
       st.sampled_from([None, "id", "c"]))
def test_duplicate_rows_matches_pandas_small(rows, first) -> None:
    frame = pd.DataFrame(rows, columns=["id", "b", "c"], dtype="string")
    assert (duplicate_rows(frame, first) == frame.duplicated(keep="first").to_numpy()).all()


def test_duplicate_rows_matches_pandas_large() -> None:
    """Large enough for the column-by-column narrowing to run (it starts above 50,000 rows)."""
    rng = np.random.default_rng(3)
    n = 120_000
    frame = pd.DataFrame({
        "id": rng.integers(0, 90_000, n).astype(str),       # repeated ids, mostly different rows
        "a": rng.integers(0, 3, n).astype(str),
        "b": rng.choice(["x", "y", ""], n),
    }, dtype="string")
    copies = rng.choice(n, 400, replace=False)              # planted exact duplicates
    frame = pd.concat([frame, frame.iloc[copies]], ignore_index=True)
    frame = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
    expected = frame.duplicated(keep="first").to_numpy()
    assert expected.sum() >= 400
    for first in (None, "id", "b"):
        assert (duplicate_rows(frame, first) == expected).all()


# ---------------------------------------------------------------------- final fit from sample


def _both_fits(data, cfg: Config, selection_sample: int):
    out = {}
    for mode in ("from-sample", "full"):
        seg = cfg.segmentation.model_copy(update={"selection_sample": selection_sample,
                                                  "final_fit": mode})
        out[mode] = segment_prepared(data, config=cfg.model_copy(update={"segmentation": seg}))
    return out["from-sample"], out["full"]


def _assert_same_segments(fast, slow, min_ari: float) -> None:
    assert fast.model.init_ == "sample" and slow.model.init_ == "k-means++"
    assert fast.k == slow.k
    assert adjusted_rand_score(slow.labels, fast.labels) >= min_ari
    assert fast.model.inertia_ <= slow.model.inertia_ * 1.001
    assert [s.name for s in fast.profiles.segments] == [s.name for s in slow.profiles.segments]


def test_final_fit_from_sample_labels_are_what_predict_gives() -> None:
    """The one full-data Lloyd run is in float32; every customer's segment is then its nearest
    centroid in float64, so scoring the training rows again reproduces every label and
    distance exactly."""
    from custseg.model import SegmentModel

    rng = np.random.default_rng(5)
    centres = rng.uniform(-3, 3, size=(4, 6))
    X = centres[rng.choice(4, size=20_000)] + rng.normal(0, 1.5, size=(20_000, 6))
    m = SegmentModel(k=4, seed=0).fit(X, init=centres + 0.3)
    assert m.init_ == "sample" and m.cluster_centers_.dtype == np.float64
    np.testing.assert_array_equal(m.labels_, m.predict(X))
    d = m.transform(X)
    np.testing.assert_array_equal(m.distance_, d.min(axis=1))
    assert m.inertia_ == pytest.approx(float((d.min(axis=1) ** 2).sum()), rel=1e-12)
    full = SegmentModel(k=4, seed=0).fit(X)
    assert not hasattr(full, "distance_")
    assert adjusted_rand_score(full.labels_, m.labels_) >= 0.99


def test_final_fit_from_sample_equals_full_fit_on_planted_segments() -> None:
    rng = np.random.default_rng(0)
    shares = np.array([0.4, 0.3, 0.15, 0.1, 0.05])
    centres = rng.uniform(-4, 4, size=(5, 8))
    truth = rng.choice(5, size=30_000, p=shares)
    X = centres[truth] + rng.normal(0, 1.0, size=(30_000, 8))
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(8)])
    frame.insert(0, "customer_id", np.arange(30_000))
    data = prepare_data(customers=frame)
    fast, slow = _both_fits(data, Config(), selection_sample=3_000)
    _assert_same_segments(fast, slow, 0.99)
    assert fast.k == 5
    order = fast.features.frame.index.astype(int)  # customers come out sorted by id (as text)
    assert adjusted_rand_score(truth[order], fast.labels) >= 0.95


@pytest.mark.realdata
def test_final_fit_from_sample_equals_full_fit_on_bank(real_data: Path) -> None:
    """45,211 customers: the default 20,000-customer selection sample engages the fast path."""
    cfg = Config.from_toml(REPO / "examples" / "bank.toml")
    data = prepare_data(customers=real_data / "bank-full.csv.gz", config=cfg)
    fast, slow = _both_fits(data, cfg, selection_sample=cfg.segmentation.selection_sample)
    _assert_same_segments(fast, slow, 0.99)


@pytest.mark.realdata
def test_final_fit_from_sample_equals_full_fit_on_online_retail(real_data: Path) -> None:
    """4,338 customers, selection on 1,000 of them (a deliberately small sample): the final fit
    from its centroids lands on the full fit's solution up to a few boundary customers."""
    data = prepare_data(transactions=real_data / "online_retail.csv.gz")
    fast, slow = _both_fits(data, Config(), selection_sample=1_000)
    _assert_same_segments(fast, slow, 0.97)


# ------------------------------------------------------------------- profiles and segment map


@pytest.mark.parametrize("parallel", [False, True])
def test_profile_statistics_equal_boolean_mask_statistics(synth_files, monkeypatch,
                                                          parallel: bool) -> None:
    """(``parallel``: the features computed two at a time, as on big tables.)"""
    if parallel:
        monkeypatch.setattr("custseg.fast.PARALLEL_ROWS", 0)
    data = prepare_data(customers=synth_files["customers"],
                        transactions=synth_files["transactions"])
    feats = data.features
    rng = np.random.default_rng(1)
    labels = rng.choice([1, 2, 3, 4], size=len(feats.frame), p=[0.5, 0.3, 0.15, 0.05])
    prof = profile_segments(feats, labels)
    for seg in prof.segments:
        mask = labels == seg.segment_id
        assert seg.size == mask.sum()
        for c, mean in seg.means.items():
            x = feats.frame[c].to_numpy(dtype="float64")[mask]
            assert mean == pytest.approx(np.nanmean(x), rel=0, abs=0, nan_ok=True)
            assert seg.medians[c] == pytest.approx(np.nanmedian(x), rel=0, abs=0, nan_ok=True)


def test_segment_map_covariance_pca_equals_full_svd() -> None:
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(2)
    X = rng.normal(size=(20_000, 6)) @ rng.normal(size=(6, 6))
    labels = rng.integers(1, 4, size=len(X))
    centroids = np.vstack([X[labels == j].mean(axis=0) for j in (1, 2, 3)])
    smap = segment_map(X, labels, centroids, np.array([1, 2, 3]), size=2_000)
    full = PCA(n_components=2, svd_solver="full").fit(X)
    assert np.allclose(smap.explained_variance, full.explained_variance_ratio_, atol=1e-10)
    ref = full.transform(centroids)
    for j in range(2):  # equal up to the sign, which segment_map fixes
        assert np.allclose(np.abs(smap.centroids[:, j]), np.abs(ref[:, j]), atol=1e-8)


def test_choose_k_is_the_same_with_parallel_workers() -> None:
    from custseg.selection import choose_k

    rng = np.random.default_rng(4)
    X = np.vstack([rng.normal(c, 1.0, size=(600, 4)) for c in (-4, 0, 4)])
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # custseg's default for the serial run
        one = choose_k(X, k_min=2, k_max=6, seed=3, workers=1)
    two = choose_k(X, k_min=2, k_max=6, seed=3, workers=2)
    assert one.to_dict() == two.to_dict()
    for k in one.sample_centers:
        assert np.array_equal(one.sample_centers[k], two.sample_centers[k])


# -------------------------------------------------------------- work overlapping the final fit


def test_big_run_overlap_gives_the_same_result_and_report(monkeypatch, synth_files) -> None:
    """From OVERLAP_ROWS customers the final K-Means runs on a worker thread while the map's
    projection and the k-selection chart are computed: same segments, same map, and the
    pre-drawn chart is byte for byte the one the report would draw."""
    from custseg import pipeline
    from custseg.outputs import selection_charts
    from custseg.report.render import k_selection_png, render_report

    data = prepare_data(customers=synth_files["customers"],
                        transactions=synth_files["transactions"])
    plain = segment_prepared(data, selection_charts=selection_charts)
    assert plain.charts == {}
    monkeypatch.setattr(pipeline, "OVERLAP_ROWS", 0)
    over = segment_prepared(data, selection_charts=selection_charts)
    np.testing.assert_array_equal(over.labels, plain.labels)
    np.testing.assert_array_equal(over.segment_map.points, plain.segment_map.points)
    np.testing.assert_array_equal(over.segment_map.centroids, plain.segment_map.centroids)
    assert over.charts["k_selection"] == k_selection_png(plain.selection)
    assert render_report(over) == render_report(plain)
