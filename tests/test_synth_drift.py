"""Planted drift in synthetic snapshots: no false alarms when nothing changes, detection on time
when something does, the right features named, and retraining advice that fits the schedule."""

from __future__ import annotations

import numpy as np
import pytest

from custseg.drift import PSI_MAJOR, PSI_MATERIAL, compare_features, compare_snapshots
from custseg.evolution import evolve
from custseg.features import FeatureTable
from custseg.personas import CHANNELS, DRIFT_KINDS, SHOCK_AMOUNT, SPECS, drifted_specs
from custseg.pipeline import prepare_data
from custseg.snapshots import Snapshot
from custseg.synth import generate_snapshots


def _snapshots(n: int, months: int, seed: int, drift: str) -> list[Snapshot]:
    snaps = generate_snapshots(n, months=months, seed=seed, drift=drift)
    out = []
    for label, d in zip(snaps.labels, snaps.data, strict=True):
        prep = prepare_data(d.customers, d.transactions)
        out.append(Snapshot(name=label, path=None, as_of=prep.as_of, features=prep.features,
                            source="frame"))
    return out


def _model_features(f: FeatureTable) -> tuple[list[str], list[str]]:
    return [*f.numeric, *f.binary], list(f.categorical)


@pytest.mark.parametrize("kind", DRIFT_KINDS)
def test_drifted_specs_keep_the_population(kind: str) -> None:
    # only basket value and Young Professionals' channels move: shares, demographics and every
    # other persona's channel mix stay, so customers keep their persona across snapshots
    web, app = CHANNELS.index("web"), CHANNELS.index("app")
    for month in range(12):
        specs, factors = drifted_specs(kind, month, shock_month=6)
        assert [s.name for s in specs] == [s.name for s in SPECS]
        for new, old in zip(specs, SPECS, strict=True):
            assert (new.share, new.age, new.income, new.categories) == (
                old.share, old.age, old.income, old.categories)
            assert new.line_amount == pytest.approx(old.line_amount
                                                    * factors["line_amount_factor"])
            assert sum(new.channels) == pytest.approx(1.0)
            moved = old.channels[web] - new.channels[web]
            if old.name != "Young Professionals":
                assert new.channels == old.channels
            else:
                assert moved == pytest.approx(new.channels[app] - old.channels[app])
                assert moved == pytest.approx(min(factors["young_professionals_web_to_app"],
                                                  old.channels[web] - 0.02))
    expected = {"none": (1.0, 0.0), "gradual": (1.0 + 0.06 * 11, 0.33),
                "shock": (SHOCK_AMOUNT, 0.30)}[kind]
    assert tuple(factors.values()) == pytest.approx(expected)
    assert drifted_specs("shock", 5, shock_month=6)[1]["line_amount_factor"] == 1.0


def test_no_false_alarms_month_to_month_small() -> None:
    alarms = 0
    for seed in range(40):
        a, b = _snapshots(1000, 2, seed, "none")
        alarms += compare_snapshots(a, b, choose_current_k=False).drift_detected
    assert alarms <= 2  # <= 5% of 40 seeds


def test_no_false_alarms_large() -> None:
    # two stationary 40,000-customer snapshots, resampled to 200,000 customers per seed
    a, b = _snapshots(40_000, 2, 123, "none")  # generation ~20 s
    num, cat = _model_features(a.features)
    alarms = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        ra = a.features.frame.iloc[rng.integers(0, len(a.features.frame), 200_000)]
        rb = b.features.frame.iloc[rng.integers(0, len(b.features.frame), 200_000)]
        res = compare_features(ra, rb, num, cat, seed=seed)
        alarms += any(f.drifted for f in res)
    assert alarms <= 2


@pytest.fixture(scope="module")
def gradual() -> dict:
    small = _snapshots(1000, 12, 7, "gradual")
    big = _snapshots(10_000, 12, 8, "gradual")  # a near-population view of the planted effect
    num, cat = _model_features(big[0].features)
    true_psi = [compare_features(big[0].features.frame, s.features.frame, ["avg_order_value"],
                                 [])[0].psi for s in big]
    return {"small": small, "true_psi": true_psi}


def test_gradual_drift_detected_by_the_month_its_effect_crosses(gradual) -> None:
    true_psi = gradual["true_psi"]
    crossing = next(m for m, p in enumerate(true_psi) if p >= PSI_MATERIAL)
    small = gradual["small"]
    detected = next(m for m, s in enumerate(small[1:], start=1)
                    if compare_snapshots(small[0], s, choose_current_k=False).drift_detected)
    assert detected <= crossing, (detected, crossing, true_psi)
    report = compare_snapshots(small[0], small[detected], choose_current_k=False)
    named = [f.feature for f in report.features if f.drifted]
    assert named[:2] and set(named[:2]) <= {"avg_order_value", "monetary"}, named


def test_gradual_retraining_interval_matches_schedule(gradual) -> None:
    true_psi = gradual["true_psi"]
    crossing_major = next(m for m, p in enumerate(true_psi) if p >= PSI_MAJOR)
    rep = evolve(gradual["small"])
    assert rep.advice.interval_months is not None
    assert abs(rep.advice.interval_months - crossing_major) <= 1.5, (rep.advice, true_psi)
    assert rep.advice.low_months <= crossing_major + 1


def test_shock_detected_in_first_snapshot_after_it() -> None:
    snaps = _snapshots(1000, 8, 3, "shock")  # the shock hits at month 4
    verdicts = [compare_snapshots(snaps[0], s, choose_current_k=False).verdict
                for s in snaps[1:]]
    assert verdicts[:3] == ["stable"] * 3 and verdicts[3] == "retrain", verdicts
    rep = evolve(snaps)
    assert rep.advice.crossed_at == snaps[4].name and "sudden shift" in rep.advice.rationale
