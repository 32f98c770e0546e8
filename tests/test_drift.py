"""Drift tests: exact figures on constructed inputs, calibration, edge cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from custseg.drift import (
    PSI_MATERIAL,
    TESTS,
    Bins,
    Sample,
    compare_features,
    js_from_counts,
    kl_from_counts,
    make_bins,
    psi_from_counts,
    smooth,
)


def test_jeffreys_smoothing_exact() -> None:
    assert np.allclose(smooth(np.array([3.0, 0.0, 1.0])), [3.5 / 5.5, 0.5 / 5.5, 1.5 / 5.5])


def test_psi_exact_on_constructed_counts() -> None:
    ref, cur = np.array([50.0, 50.0]), np.array([80.0, 20.0])
    p = np.array([50.5, 50.5]) / 101
    q = np.array([80.5, 20.5]) / 101
    expected = float(((q - p) * np.log(q / p)).sum())
    assert psi_from_counts(ref, cur) == pytest.approx(expected, rel=1e-12)
    assert psi_from_counts(ref, ref) == 0.0


def test_kl_and_js_exact() -> None:
    ref, cur = np.array([10.0, 30.0, 60.0]), np.array([30.0, 30.0, 40.0])
    p, q = smooth(ref), smooth(cur)
    assert kl_from_counts(ref, cur) == pytest.approx(float((q * np.log(q / p)).sum()))
    a, b = ref / 100, cur / 100
    m = (a + b) / 2
    js = 0.5 * (a * np.log2(a / m)).sum() + 0.5 * (b * np.log2(b / m)).sum()
    assert js_from_counts(ref, cur) == pytest.approx(js)


def test_empty_bins_stay_finite_and_bounded() -> None:
    # a category that vanished and one that is new: no infinities
    ref, cur = np.array([100.0, 0.0]), np.array([0.0, 100.0])
    assert np.isfinite(psi_from_counts(ref, cur)) and np.isfinite(kl_from_counts(ref, cur))
    assert js_from_counts(ref, cur) == pytest.approx(1.0)
    # an empty bin in both samples adds exactly nothing
    assert psi_from_counts(np.array([40.0, 60.0, 0.0]), np.array([60.0, 40.0, 0.0])) == \
        pytest.approx(psi_from_counts(np.array([40.0, 60.0]), np.array([60.0, 40.0])), abs=1e-3)


def test_numeric_bins_are_reference_deciles_plus_missing() -> None:
    ref = pd.Series(np.arange(1, 101, dtype=float))
    bins = make_bins(ref, ref, "numeric")
    assert bins.n_bins == len(bins.edges) + 2 == 13
    counts = bins.counts(pd.Series([1.0, 50.0, 1000.0, np.nan]))
    assert counts.sum() == 4 and counts[-1] == 1 and counts[-2] == 1 and counts[0] == 0


def test_categorical_new_and_vanished_levels() -> None:
    ref = pd.DataFrame({"c": ["a"] * 500 + ["b"] * 500})
    cur = pd.DataFrame({"c": ["a"] * 500 + ["z"] * 500})
    (fd,) = compare_features(ref, cur, [], ["c"])
    assert fd.new_levels == ["z"] and fd.vanished_levels == ["b"]
    assert fd.drifted and fd.severity == "major"
    chi2 = fd.tests["chi2"]
    exp = stats.chi2_contingency(np.array([[500, 500, 0], [500, 0, 500]]), correction=False)
    assert chi2["statistic"] == pytest.approx(exp[0]) and chi2["effect"] == pytest.approx(
        np.sqrt(exp[0] / 2000))


def test_constant_columns_no_nan() -> None:
    ref = pd.DataFrame({"x": np.ones(300), "c": ["k"] * 300})
    same = compare_features(ref, ref.copy(), ["x"], ["c"])
    assert all(not f.drifted and f.psi == 0.0 for f in same)
    moved = compare_features(ref, pd.DataFrame({"x": np.full(300, 2.0), "c": ["k"] * 300}),
                             ["x"], ["c"])
    x = next(f for f in moved if f.feature == "x")
    assert x.drifted
    for f in [*same, *moved]:
        for t in f.tests.values():
            assert np.isfinite(t["statistic"])
            assert t["p_value"] is None or np.isfinite(t["p_value"])


def test_registry_runs_every_test_of_the_kind() -> None:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(size=400), "c": rng.choice(["a", "b"], 400)})
    res = {f.feature: f for f in compare_features(ref, ref.sample(frac=1, random_state=1),
                                                  ["x"], ["c"])}
    assert set(res["x"].tests) == {n for n, t in TESTS.items() if "numeric" in t.kinds}
    assert set(res["c"].tests) == {n for n, t in TESTS.items() if "categorical" in t.kinds}


def test_wasserstein_normalised_by_reference_sd() -> None:
    ref = pd.Series(np.r_[np.zeros(50), np.ones(50)])  # sd 0.5
    s = Sample.of(ref, ref + 1.0, "numeric")
    assert TESTS["wasserstein"].compute(s).statistic == pytest.approx(2.0)


def _draw(n: int, rng: np.random.Generator, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({
        **{f"x{i}": rng.lognormal(0, 1, n) for i in range(8)},
        "shifted": rng.normal(shift, 1, n),
        "k": rng.poisson(3, n).astype(float),
        "c": rng.choice(list("abcde"), n, p=[0.4, 0.3, 0.15, 0.1, 0.05]),
    })


def _alarm_rate(n: int, seeds: range) -> float:
    numeric = [f"x{i}" for i in range(8)] + ["shifted", "k"]
    alarms = 0
    for seed in seeds:
        rng = np.random.default_rng(seed)
        res = compare_features(_draw(n, rng), _draw(n, rng), numeric, ["c"], seed=seed)
        alarms += any(f.drifted for f in res)
    return alarms / len(seeds)


@pytest.mark.parametrize("n", [1000, 20_000])
def test_false_alarm_rate_at_most_alpha(n: int) -> None:
    assert _alarm_rate(n, range(40)) <= 0.05


def test_false_alarm_rate_near_alpha_on_small_samples() -> None:
    # at 500 customers the calibrated threshold (not the material PSI) decides: the rate is
    # close to the nominal 5% (a binomial band over 100 seeds)
    assert _alarm_rate(500, range(100)) <= 0.09


def test_detection_grows_with_effect_and_names_the_feature() -> None:
    rng = np.random.default_rng(3)
    numeric = [f"x{i}" for i in range(8)] + ["shifted", "k"]
    res = compare_features(_draw(2000, rng), _draw(2000, rng, shift=0.8), numeric, ["c"])
    assert res[0].feature == "shifted" and res[0].drifted
    assert res[0].psi >= PSI_MATERIAL and res[0].p_value < 1e-6
    assert not any(f.drifted for f in res[1:])


def test_small_sample_raises_the_threshold() -> None:
    rng = np.random.default_rng(0)
    big = compare_features(_draw(5000, rng), _draw(5000, rng), ["x0"], [])[0]
    small = compare_features(_draw(5000, rng), _draw(60, rng), ["x0"], [])[0]
    assert small.threshold > big.threshold


def test_bins_counts_ignore_unknown_kind() -> None:
    b = Bins("categorical", levels=("a", "b"))
    assert b.counts(pd.Series(["a", "a", "b"])).tolist() == [2.0, 1.0]


def test_small_current_snapshot_says_why_features_are_missing(tmp_path, synth_files) -> None:
    """Drift on 8 customers stopped with "lacks features": the message says how many
    customers, which features, and why (too few rows: levels constant or absent)."""
    from custseg.drift import compare_snapshots
    from custseg.errors import InputError
    from custseg.snapshots import load_snapshot

    ref_dir, cur_dir = tmp_path / "ref", tmp_path / "cur"
    ref_dir.mkdir()
    cur_dir.mkdir()
    cust = pd.read_csv(synth_files["customers"], dtype=str)
    tx = pd.read_csv(synth_files["transactions"], dtype=str)
    cust.to_csv(ref_dir / "customers.csv", index=False)
    tx.to_csv(ref_dir / "transactions.csv", index=False)
    few = cust.iloc[:8]
    few.to_csv(cur_dir / "customers.csv", index=False)
    few_tx = tx[tx["customer_id"].isin(few["customer_id"])].copy()
    few_tx["channel"] = "web"
    few_tx.to_csv(cur_dir / "transactions.csv", index=False)
    with pytest.raises(InputError) as exc:
        compare_snapshots(load_snapshot(ref_dir), load_snapshot(cur_dir))
    msg = str(exc.value)
    assert "the current snapshot (8 customers) lacks" in msg
    assert "chan_share_store" in msg and "with only 8 customers" in msg
