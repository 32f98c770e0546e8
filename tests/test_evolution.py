"""Snapshots, drift and evolve end to end; workspace; retraining advice."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from custseg.cli import app
from custseg.evolution import evolve, retrain_advice
from custseg.snapshots import load_snapshot
from custseg.store import Workspace
from custseg.synth import generate

runner = CliRunner()


def _snapshot(folder: Path, seed: int, amount_factor: float = 1.0, n: int = 1200,
              drop_first: int = 0) -> Path:
    data = generate(n_customers=n, months=12, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    tx = data.transactions.copy()
    tx["amount"] = (tx["amount"] * amount_factor).round(2)
    cust = data.customers.iloc[drop_first:]
    tx = tx[tx["customer_id"].isin(cust["customer_id"])]
    cust.to_csv(folder / "customers.csv", index=False)
    tx.to_csv(folder / "transactions.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def snaps(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("snaps")
    return {
        "a": _snapshot(root / "a", seed=0),
        "same": _snapshot(root / "same", seed=1),
        "pricier": _snapshot(root / "pricier", seed=2, amount_factor=2.5),
    }


def test_drift_cli_exit_codes(snaps, tmp_path: Path) -> None:
    r = runner.invoke(app, ["drift", "-r", str(snaps["a"]), "-c", str(snaps["same"]),
                            "--out", str(tmp_path / "d0"), "-q"])
    assert r.exit_code == 0, r.output
    d = json.loads((tmp_path / "d0" / "drift.json").read_text())
    assert d["verdict"] == "stable" and not d["drift_detected"]
    r = runner.invoke(app, ["drift", "-r", str(snaps["a"]), "-c", str(snaps["pricier"]),
                            "--out", str(tmp_path / "d1"), "-q"])
    assert r.exit_code == 3, r.output
    d = json.loads((tmp_path / "d1" / "drift.json").read_text())
    assert d["verdict"] == "retrain"
    top = [f["feature"] for f in d["features"][:2]]
    assert set(top) <= {"monetary", "avg_order_value"}, top
    html = (tmp_path / "d1" / "drift.html").read_text()
    assert "RETRAIN" in html and "monetary" in html
    for f in d["features"]:  # no NaN/inf anywhere (JSON would hold null)
        assert f["psi"] is not None and f["threshold"] is not None


def test_drift_with_model_reports_segments(snaps, tmp_path: Path) -> None:
    run = tmp_path / "run"
    r = runner.invoke(app, ["segment", str(snaps["a"] / "customers.csv"), "-t",
                            str(snaps["a"] / "transactions.csv"), "--out", str(run), "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["drift", "-r", str(run), "-c", str(snaps["same"]),
                            "--out", str(tmp_path / "d"), "-q"])
    assert r.exit_code == 0, r.output
    seg = json.loads((tmp_path / "d" / "drift.json").read_text())["segments"]
    assert seg["k"] == 5 and seg["refit_ari"] > 0.8 and seg["share_tvd"] < 0.05
    assert {c["status"] for c in seg["changes"]} <= {"stable", "grew", "shrank"}


def test_snapshot_toml_and_window(tmp_path: Path) -> None:
    folder = _snapshot(tmp_path / "s", seed=3, n=300)
    (folder / "snapshot.toml").write_text("as_of = 2025-10-31\nwindow_days = 120\n")
    snap = load_snapshot(folder)
    assert snap.as_of.isoformat() == "2025-10-31"
    excluded = snap.rows["transactions"]["excluded"]
    assert excluded["dated after the as-of date"] > 0
    assert excluded["dated before the 120-day feature window"] > 0
    assert snap.features.frame["tenure_days"].notna().all()


def test_snapshot_errors(tmp_path: Path) -> None:
    from custseg.errors import InputError

    with pytest.raises(InputError, match="no customers"):
        load_snapshot(tmp_path)
    with pytest.raises(InputError, match="not found"):
        load_snapshot(tmp_path / "missing")


def test_evolve_migration_accounts_for_everyone(snaps, tmp_path: Path) -> None:
    s1 = load_snapshot(snaps["a"], name="m1")
    # the same customers later: some gone (dropped), behaviour as before
    s2_path = _snapshot(tmp_path / "m2", seed=0, drop_first=100)
    s2 = load_snapshot(s2_path, name="m2")
    rep = evolve([s1, s2])
    m = rep.migrations[0]
    total_from = sum(sum(row.values()) for name, row in m.matrix.items() if name != "new")
    assert total_from == s1.n_customers
    assert sum(m.matrix[n]["gone"] for n in m.matrix if n != "new") == 100
    assert sum(m.matrix["new"].values()) == 0
    assert m.stayed_share == 1.0  # same customers, same features, same model
    assert rep.drift[1]["score"] < 0.02 and rep.drift[1]["verdict"] == "stable"


def test_evolve_migration_counts_known_movers(snaps, tmp_path: Path) -> None:
    """A later snapshot built from the first by hand: 3 customers of segment A take on the
    features of a segment-B customer, 1 of B those of an A customer, 2 of A are gone and 2 new
    customers look like segment C. The matrix must hold exactly those moves, from -> to."""
    run = tmp_path / "run"
    r = runner.invoke(app, ["segment", str(snaps["a"] / "customers.csv"), "-t",
                            str(snaps["a"] / "transactions.csv"), "--out", str(run), "-q"])
    assert r.exit_code == 0, r.output
    s1 = load_snapshot(run, name="m1")
    seg_model, pre, _ = s1.model
    frame = s1.features.frame
    before = pd.Series(seg_model.predict(pre.transform(frame)), index=frame.index)
    sizes = before.value_counts()
    a, b, c = (int(i) for i in sizes.index[:3])  # the three largest segments
    in_a, in_b, in_c = (before.index[before == i] for i in (a, b, c))

    # each later customer's features are copied from a "donor" of the first snapshot
    a_to_b, b_to_a, gone = in_a[:3], in_b[:1], in_a[3:5]
    donor = pd.Series(frame.index, index=frame.index)
    donor[a_to_b] = in_b[-1]
    donor[b_to_a] = in_a[-1]
    donor = pd.concat([donor.drop(index=gone),
                       pd.Series([in_c[-1], in_c[-2]], index=["new-1", "new-2"])])
    later = frame.loc[donor.to_numpy()].set_axis(
        pd.Index(donor.index, name=frame.index.name), axis=0)
    assert (later.dtypes == frame.dtypes).all()
    s2 = replace(s1, name="m2", path=None, source="frame", labels=None,
                 features=replace(s1.features, frame=later))

    rep = evolve([s1, s2], model=s1.model)
    (m,) = rep.migrations
    name = {s["segment_id"]: s["name"] for s in rep.segments}
    A, B, C = name[a], name[b], name[c]
    expected = {f: dict.fromkeys([*name.values(), "gone"], 0) for f in [*name.values(), "new"]}
    for i, n in sizes.items():
        expected[name[int(i)]][name[int(i)]] = int(n)
    expected[A][A] -= 3 + 2
    expected[A][B] = 3
    expected[B][B] -= 1
    expected[B][A] = 1
    expected[A]["gone"] = 2
    expected["new"][C] = 2
    assert m.matrix == expected
    assert (m.source, m.target) == ("m1", "m2")
    assert m.customers_in_both == len(frame) - 2
    assert m.stayed_share == pytest.approx((len(frame) - 2 - 4) / (len(frame) - 2))

    counts = {name[int(i)]: int(n) for i, n in sizes.items()}
    assert rep.counts["m1"] == {s: counts.get(s, 0) for s in name.values()}
    later_counts = dict(rep.counts["m1"])
    later_counts[A] += -3 + 1 - 2
    later_counts[B] += 3 - 1
    later_counts[C] += 2
    assert rep.counts["m2"] == later_counts
    for snap, n in (("m1", len(frame)), ("m2", len(frame))):  # 2 gone, 2 new
        assert rep.sizes[snap] == pytest.approx({s: v / n for s, v in rep.counts[snap].items()})
    assert rep.sizes["m2"][A] == pytest.approx((counts[A] - 4) / len(frame))
    assert rep.sizes["m2"][B] == pytest.approx((counts[B] + 2) / len(frame))


def test_retrain_advice_linear_in_sqrt_psi() -> None:
    months = [0, 1, 2, 3, 4]
    scores = [(0.1 * m) ** 2 for m in months]   # sqrt(PSI) grows 0.1 a month
    adv = retrain_advice(months, scores, ["stable"] * 5, [str(m) for m in months])
    assert adv.slope_per_month == pytest.approx(0.1)
    assert adv.interval_months == 5.0           # sqrt(0.25) = 0.5 reached after 5 months
    flat = retrain_advice(months, [0.004, 0.003, 0.005, 0.004, 0.003], ["stable"] * 5,
                          [str(m) for m in months])
    assert flat.interval_months == 12.0 and "no significant upward" in flat.rationale
    noisy = retrain_advice(months, [0.0, 0.012, 0.035, 0.095, 0.14], ["stable"] * 5,
                           [str(m) for m in months])
    assert noisy.low_months <= noisy.interval_months <= (noisy.high_months or np.inf)


def test_workspace_finds_runs_by_date(tmp_path: Path, snaps) -> None:
    ws_dir = tmp_path / "ws"
    out = tmp_path / "r1"
    r = runner.invoke(app, ["segment", str(snaps["a"] / "customers.csv"), "-t",
                            str(snaps["a"] / "transactions.csv"), "--out", str(out), "-q",
                            "--workspace", str(ws_dir)])
    assert r.exit_code == 0, r.output
    ws = Workspace(ws_dir)
    (run,) = ws.runs("segment")
    assert run.path == out.resolve() and run.k == 5
    assert ws.find(run.as_of.isoformat()) == out.resolve()
    from custseg.errors import InputError

    with pytest.raises(InputError, match="runs exist as of"):
        ws.find("1999-01-01")
    # recording the same folder again replaces the record
    Workspace(ws_dir).record("segment", out, as_of=run.as_of, k=5)
    assert len(Workspace(ws_dir).runs("segment")) == 1


def test_evolve_cli(snaps, tmp_path: Path) -> None:
    r = runner.invoke(app, ["evolve", str(snaps["a"]), str(snaps["same"]), str(snaps["pricier"]),
                            "--out", str(tmp_path / "e"), "-q"])
    assert r.exit_code == 0, r.output
    e = json.loads((tmp_path / "e" / "evolution.json").read_text())
    assert [d["verdict"] for d in e["drift"]] == ["stable", "stable", "retrain"]
    assert len(e["migrations"]) == 2
    html = (tmp_path / "e" / "evolution.html").read_text()
    assert "Retraining advice" in html and html.count("<img") >= 4
    assert pd.Series(e["sizes"]["a"]).sum() == pytest.approx(1.0)


def test_far_smaller_snapshot_no_nan_and_a_message(snaps, tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    cust = pd.read_csv(snaps["same"] / "customers.csv").head(25)
    tx = pd.read_csv(snaps["same"] / "transactions.csv")
    cust.to_csv(small / "customers.csv", index=False)
    tx[tx["customer_id"].isin(cust["customer_id"])].to_csv(small / "transactions.csv",
                                                          index=False)
    r = runner.invoke(app, ["drift", "-r", str(snaps["a"]), "-c", str(small),
                            "--out", str(tmp_path / "d"), "-q"])
    assert r.exit_code in (0, 3), r.output
    d = json.loads((tmp_path / "d" / "drift.json").read_text())
    assert any("far smaller" in reason for reason in d["reasons"])
    for f in d["features"]:
        for key in ("psi", "threshold", "p_value"):
            assert f[key] is not None and np.isfinite(f[key])
        for t in f["tests"].values():
            assert t["statistic"] is not None and np.isfinite(t["statistic"])
