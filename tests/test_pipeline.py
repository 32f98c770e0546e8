"""End to end on synthetic data with planted personas: the right k, the right customers together,
the right names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from custseg.outputs import write_outputs
from custseg.pipeline import run_segmentation
from custseg.synth import PERSONAS, generate
from trust import check_trust

# every planted persona must earn its own name from the naming rules (At-Risk / Lapsed included)
NAMED = list(PERSONAS)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_recovers_planted_personas(seed: int) -> None:
    data = generate(n_customers=2000, months=12, seed=seed)
    result = run_segmentation(data.customers, data.transactions)
    truth = data.truth.set_index("customer_id").loc[result.features.frame.index, "persona"]
    assert result.k == len(PERSONAS), result.selection.reason
    assert adjusted_rand_score(truth, result.labels) >= 0.9
    names = {s.segment_id: s.name for s in result.profiles.segments}
    rules = {s.segment_id: s.name_rule for s in result.profiles.segments}
    assert len(set(names.values())) == result.k
    for persona in NAMED:
        # the segment holding most of this persona carries the persona's name, from its rule
        ids, counts = np.unique(result.labels[(truth == persona).to_numpy()], return_counts=True)
        top = int(ids[np.argmax(counts)])
        assert names[top] == persona, (persona, names)
        assert rules[top] == persona, (persona, rules)
    for s in result.profiles.segments:
        assert s.evidence, s.name
        assert {r["theme"] for r in s.recommendations} == {
            "targeted_marketing", "personalisation", "retention", "product_development"}
    check_trust(result)  # names' checks hold, no generic slot, every action sized


def test_every_customer_and_row_accounted_for(tmp_path: Path) -> None:
    """Bad rows planted at known places; every count checked against the input itself."""
    data = generate(n_customers=600, months=12, seed=5)
    tx = data.transactions
    planted = tx.iloc[100:110].copy()
    planted["amount"] += 0.01                     # not copies of the rows they came from
    planted.iloc[0:3, planted.columns.get_loc("customer_id")] = None
    planted.iloc[3:5, planted.columns.get_loc("amount")] = np.nan
    planted.iloc[5, planted.columns.get_loc("customer_id")] = "GHOST"   # no customers row
    tx = pd.concat([tx, planted], ignore_index=True)
    first = len(data.transactions) + 1            # 1-based number of the first planted row
    duplicates = np.flatnonzero(tx.duplicated().to_numpy()) + 1
    assert len(duplicates) > 0
    expected_rows = {"duplicate row": list(duplicates),
                     "missing customer_id": [first, first + 1, first + 2],
                     "zero or missing amount": [first + 3, first + 4],
                     "customer not in the customers table": [first + 5]}

    result = run_segmentation(data.customers, tx)
    write_outputs(result, tmp_path)
    excluded = pd.read_csv(tmp_path / "excluded.csv", dtype={"customer_id": str, "row": "Int64"})
    segments = pd.read_csv(tmp_path / "segments.csv", dtype={"customer_id": str})
    summary = json.loads((tmp_path / "summary.json").read_text())

    listed = excluded[excluded["source"] == "transactions"]
    assert {r: sorted(g["row"]) for r, g in listed.groupby("reason")} == expected_rows
    n_excluded = sum(len(v) for v in expected_rows.values())
    assert summary["rows"]["transactions"] == {
        **summary["rows"]["transactions"], "read": len(tx), "used": len(tx) - n_excluded,
        "excluded": {r: len(v) for r, v in expected_rows.items()}}
    assert summary["rows"]["customers"] == {
        **summary["rows"]["customers"], "read": len(data.customers),
        "used": len(data.customers), "excluded": {}}
    assert set(excluded["source"]) == {"transactions", "customer"}

    ids = set(data.customers["customer_id"]) | set(tx["customer_id"].dropna())
    assert len(ids) == 601
    as_whole = excluded[excluded["source"] == "customer"]
    assert list(as_whole["customer_id"]) == ["GHOST"]
    assert set(segments["customer_id"]) == set(data.customers["customer_id"])
    assert len(segments) == len(data.customers)
    assert summary["customers"] == {
        "seen": len(ids), "segmented": len(data.customers),
        "excluded": {"all rows excluded (customer not in the customers table)": 1}}


def test_k_selection_records_evidence() -> None:
    data = generate(n_customers=800, months=12, seed=3)
    result = run_segmentation(data.customers, data.transactions)
    sel = result.selection
    assert [s.k for s in sel.scores] == list(range(2, 11))
    for s in sel.scores:
        assert -1 <= s.silhouette <= 1 and s.inertia > 0 and 0 <= (s.stability or 0) <= 1
        assert set(s.criteria) >= {"calinski_harabasz", "davies_bouldin"}
    assert str(sel.k) in sel.reason
