"""The value models against the published CDNOW results (Fader, Hardie & Lee 2005).

CDNOW comes from the lifetimes 0.11.3 wheel, which ``make test`` downloads (test-only) into
``.venv/test-data``; ``$CUSTSEG_CDNOW_WHEEL`` points elsewhere. Weeks are the unit, calibration is
1997-01-01..1997-09-30 and the holdout runs to 1998-06-30, as in the paper.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from custseg.errors import InputError
from custseg.value import (
    BetaGeoModel,
    GammaGammaModel,
    customer_value,
    holdout_check,
    summarise_purchases,
)

REPO = Path(__file__).resolve().parents[1]
CAL_END, HOLDOUT_END = "1997-09-30", "1998-06-30"


def _wheel() -> Path:
    if os.environ.get("CUSTSEG_CDNOW_WHEEL"):
        return Path(os.environ["CUSTSEG_CDNOW_WHEEL"])
    found = sorted((REPO / ".venv" / "test-data").glob("[Ll]ifetimes-0.11.3-*.whl"))
    if not found:
        pytest.fail("the lifetimes 0.11.3 wheel (CDNOW test data) is missing: `make test` downloads it "
                    "into .venv/test-data, or set CUSTSEG_CDNOW_WHEEL")
    return found[0]


def _cdnow(name: str) -> pd.DataFrame:
    with zipfile.ZipFile(_wheel()) as wheel:
        text = wheel.read(f"lifetimes/datasets/{name}").decode()
    if name == "CDNOW_sample.txt":      # no header: original id, new id, date, CDs, dollars
        frame = pd.read_csv(io.StringIO(text), sep=r"\s+", header=None, dtype=str,
                            names=["original_id", "customer_id", "date", "cds", "amount"])
    else:
        frame = pd.read_csv(io.StringIO(text), sep=r"\s+", dtype=str).rename(
            columns={"dollar_value": "amount"})
    frame["timestamp"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    frame["amount"] = frame["amount"].astype(float)
    return frame


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return _cdnow("CDNOW_sample.txt")


@pytest.fixture(scope="module")
def fitted(sample):
    summary = summarise_purchases(sample, end=CAL_END)
    bg = BetaGeoModel().fit(summary.frequency, summary.recency, summary.T)
    gg = GammaGammaModel().fit(summary.frequency, summary.monetary)
    return summary, bg, gg


def _within(value: float, target: float, tolerance: float) -> bool:
    return abs(value - target) <= tolerance * abs(target)


def test_cdnow_inputs_are_exact(sample, fitted):
    summary, _, _ = fitted
    assert len(summary.frame) == 2357
    assert int((summary.frequency > 0).sum()) == 946
    assert summary.frequency.sum() == 2457
    after = sample[(sample["timestamp"] > CAL_END) & (sample["timestamp"] <= HOLDOUT_END)]
    assert after.groupby(["customer_id", "timestamp"]).ngroups == 1882


def test_bgnbd_and_gamma_gamma_match_the_published_parameters(fitted):
    _, bg, gg = fitted
    for name, target in {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}.items():
        assert _within(bg.params_[name], target, 0.01), (name, bg.params_[name])
    assert bg.loglik_ >= -9582.5
    for name, target in {"p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        assert _within(gg.params_[name], target, 0.01), (name, gg.params_[name])


def test_holdout_predictions_track_the_actual_purchases(sample, fitted):
    summary, bg, _ = fitted
    check = holdout_check(sample, bg, summary, holdout_end=HOLDOUT_END)
    assert check.actual_total == 1882
    assert _within(check.predicted_total, 1653, 0.01)          # the model's known ~-12%
    assert check.correlation >= 0.62
    week78 = check.tracking.iloc[-1]
    assert week78["unit"] == 78
    assert week78["actual"] == 2457 + 1882
    assert _within(week78["expected"], week78["actual"], 0.05)
    # the curve rises: cumulative expected purchases never fall
    assert np.all(np.diff(check.tracking["expected"]) >= 0)


def test_new_customer_p_alive_and_clv_match_the_reference(fitted):
    summary, bg, gg = fitted
    assert _within(float(bg.expected_purchases_new(39)), 1.195, 0.001)
    value = customer_value(bg, gg, summary, horizon_months=12, monthly_discount=0.01)
    assert _within(value["p_alive"].mean(), 0.813, 0.005)
    assert _within(value["clv"].mean(), 30.34, 0.01)
    # one-time buyers are alive for sure under BG/NBD (no drop-out before a first repeat)
    assert np.all(value.loc[summary.frequency == 0, "p_alive"] == 1.0)
    # discounting matters: a higher rate gives a lower value
    cheaper = customer_value(bg, gg, summary, horizon_months=12, monthly_discount=0.05)
    assert cheaper["clv"].mean() < value["clv"].mean()


def test_full_cdnow_file_matches_the_published_parameters():
    master = _cdnow("CDNOW_master.txt")
    summary = summarise_purchases(master, end=CAL_END)
    assert len(summary.frame) == 23570
    bg = BetaGeoModel().fit(summary.frequency, summary.recency, summary.T)
    for name, target in {"r": 0.2516, "alpha": 4.789, "a": 0.723, "b": 2.161}.items():
        assert _within(bg.params_[name], target, 0.01), (name, bg.params_[name])


def test_the_analytic_gradient_is_the_likelihoods_slope(fitted):
    summary, _, _ = fitted
    x, t_x, big_t = summary.frequency, summary.recency, summary.T
    weight = np.ones_like(x)
    point = np.array([0.3, 5.0, 0.9, 2.0])
    grad = BetaGeoModel.loglik_gradient(point, x, t_x, big_t, weight)
    for i in range(4):
        step = np.zeros(4)
        step[i] = 1e-6
        up = BetaGeoModel.loglik_terms(point * np.exp(step), x, t_x, big_t).sum()
        down = BetaGeoModel.loglik_terms(point * np.exp(-step), x, t_x, big_t).sum()
        assert grad[i] == pytest.approx((up - down) / 2e-6, rel=1e-5)


def test_zero_spend_repeat_customers_are_left_out_of_gamma_gamma_with_a_reason(fitted):
    summary, _, gg = fitted
    frequency = np.append(summary.frequency, 3.0)
    monetary = np.append(summary.monetary, 0.0)
    model = GammaGammaModel().fit(frequency, monetary)
    assert model.excluded_ == {"no repeat purchase": 1411,
                               "repeat purchases with zero or negative mean spend": 1}
    assert model.params_ == pytest.approx(gg.params_, rel=1e-6)
    spend = model.expected_spend(np.array([0.0, 3.0]), np.array([0.0, 0.0]))
    assert np.all(np.isfinite(spend))


def test_same_day_lines_are_one_purchase_and_the_holdout_is_ignored():
    tx = pd.DataFrame({
        "customer_id": ["a", "a", "a", "b", "b"],
        "timestamp": pd.to_datetime(["2024-01-01 09:00", "2024-01-01 17:00", "2024-01-22 00:00",
                                     "2024-01-08 00:00", "2024-03-01 00:00"]),
        "amount": [10.0, 5.0, 30.0, 8.0, 99.0],
    })
    summary = summarise_purchases(tx, end="2024-01-29")
    frame = summary.frame
    assert frame.loc["a"].tolist() == [1.0, 3.0, 4.0, 30.0]
    assert frame.loc["b"].tolist() == [0.0, 0.0, 3.0, 0.0]


def test_returns_are_not_purchases():
    tx = pd.DataFrame({
        "customer_id": ["a", "a", "a"],
        "timestamp": pd.to_datetime(["2024-01-01", "2024-01-08", "2024-01-08"]),
        "amount": [10.0, -10.0, -2.0],          # a return-only day a week later
    })
    frame = summarise_purchases(tx, end="2024-01-29").frame
    assert frame.loc["a"].tolist() == [0.0, 0.0, 4.0, 0.0]


def test_a_log_without_amounts_still_gives_purchases_and_p_alive(sample):
    summary = summarise_purchases(sample.drop(columns="amount"), end=CAL_END, amount=None)
    bg = BetaGeoModel().fit(summary.frequency, summary.recency, summary.T)
    value = customer_value(bg, None, summary)
    assert value["clv"].isna().all()
    assert _within(value["p_alive"].mean(), 0.813, 0.005)


def test_bad_input_names_the_column_and_value():
    tx = pd.DataFrame({"customer_id": ["a"], "timestamp": ["not a date"], "amount": [1.0]})
    with pytest.raises(InputError, match="column 'timestamp', row 1: cannot parse as a date"):
        summarise_purchases(tx, end="2024-01-01", source="tx.csv")
    with pytest.raises(InputError, match="column 'when'"):
        summarise_purchases(tx, end="2024-01-01", timestamp="when")
    only_once = pd.DataFrame({"customer_id": ["a", "b"], "timestamp": ["2024-01-01", "2024-01-02"]})
    summary = summarise_purchases(only_once, end="2024-02-01", amount=None)
    with pytest.raises(InputError, match="repeat purchase"):
        BetaGeoModel().fit(summary.frequency, summary.recency, summary.T)


def test_the_gamma_gamma_gradient_is_the_likelihoods_slope(fitted):
    summary, _, _ = fitted
    keep = summary.frequency > 0
    x, m = summary.frequency[keep], summary.monetary[keep]
    point = np.array([5.0, 3.0, 12.0])
    grad = GammaGammaModel.loglik_gradient(point, x, m, np.ones_like(x))
    for i in range(3):
        step = np.zeros(3)
        step[i] = 1e-6
        up = GammaGammaModel.loglik_terms(point * np.exp(step), x, m).sum()
        down = GammaGammaModel.loglik_terms(point * np.exp(-step), x, m).sum()
        assert grad[i] == pytest.approx((up - down) / 2e-6, rel=1e-5)


# ------------------------------------------------------------------------------------ in a run


def test_holdout_check_in_a_segmentation_run(sample, tmp_path) -> None:
    """`custseg segment --calibration-end`: the CDNOW holdout figures come out of a whole run
    (read, cleaned, segmented), per segment too, with the tracking and conditional-expectation
    plot in the report; every segmented customer gets P(alive), expected purchases and CLV."""
    from custseg.config import Config
    from custseg.outputs import write_outputs
    from custseg.pipeline import run_segmentation

    log = sample[["customer_id", "date", "cds", "amount"]].rename(
        columns={"cds": "number_of_cds", "amount": "dollar_value"})
    log["date"] = pd.to_datetime(log["date"], format="%Y%m%d").dt.strftime("%Y-%m-%d")
    cfg = Config.from_dict({
        "transactions": {"columns": {"amount": "dollar_value", "quantity": "number_of_cds"}},
        "segmentation": {"as_of": HOLDOUT_END},
        "value": {"calibration_end": CAL_END}})
    result = run_segmentation(transactions=log, config=cfg)
    h = result.holdout
    assert _within(h["predicted_total"], 1653.0, 0.01)
    assert h["actual_total"] == 1882
    assert h["correlation"] >= 0.62
    assert sum(s["actual"] for s in h["segments"]) == h["actual_total"]
    assert np.isclose(sum(s["predicted"] for s in h["segments"]), h["predicted_total"], rtol=1e-6)
    assert [c["repeat_purchases"] for c in h["conditional"]] == [0, 1, 2, 3, 4, 5, 6, "7+"]
    track = h["tracking"]
    # cumulative repeat purchases at the end: calibration 2,457 + holdout 1,882
    assert track["actual"][-1] == 2457 + 1882
    assert _within(track["expected"][-1], track["actual"][-1], 0.05)   # week 78
    seg = result.assignments()
    for c in ("p_alive", "expected_purchases", "expected_spend", "clv"):
        assert seg[c].notna().all(), c
    assert result.value_model["bgnbd"]["r"] > 0
    for s in result.profiles.segments:
        assert 0 <= s.value["active_share"] <= 1 and s.value["clv_total"] > 0
    assert np.isclose(sum(s.value["clv_share"] for s in result.profiles.segments), 1.0)
    write_outputs(result, tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert "Holdout check" in page and "Conditional expectation" not in page.split("<img")[0]
    assert "calibration end (1997-09-30)" in page
