"""The real datasets in ../shared/data (or $CUSTSEG_DATA) run end to end, name their segments and
account for every row and customer. On CI a missing data folder fails these tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from custseg.config import Config
from custseg.drift import PSI_MATERIAL
from custseg.outputs import write_outputs
from custseg.pipeline import run_segmentation

REPO = Path(__file__).resolve().parents[1]
RFM_NAMES = {"Champions", "Loyalists", "At-Risk / Lapsed", "New Customers", "Occasional Buyers",
             "High-Value Big Spenders", "Frequent Returners"}


def _check_accounting(result, out: Path) -> None:
    for src in result.ledger.sources.values():
        assert src.rows_read == src.rows_used + sum(src.excluded.values())
    excluded = pd.read_csv(out / "excluded.csv", dtype={"customer_id": str})
    row_level = excluded[excluded["source"] != "customer"]
    for name, src in result.ledger.sources.items():
        assert (row_level["source"] == name).sum() == sum(src.excluded.values())
    summary = result.customers_summary()
    assert summary["seen"] == summary["segmented"] + sum(summary["excluded"].values())
    segments = pd.read_csv(out / "segments.csv", dtype={"customer_id": str})
    assert len(segments) == summary["segmented"]
    assert segments["customer_id"].is_unique
    names = [s.name for s in result.profiles.segments]
    assert len(set(names)) == len(names) and all(names)


@pytest.mark.realdata
@pytest.mark.parametrize("file, id_column", [
    ("online_retail.csv.gz", "CustomerID"),
    ("online_retail_II_2009-2010.csv.gz", "Customer ID"),
])
def test_online_retail(real_data: Path, tmp_path: Path, file: str, id_column: str) -> None:
    result = run_segmentation(transactions=real_data / file)
    write_outputs(result, tmp_path)
    _check_accounting(result, tmp_path)
    tx = result.ledger.sources["transactions"]
    assert tx.returns > 5000  # cancellations ("C" invoices) are counted, not dropped
    assert tx.excluded["missing customer_id"] > 100_000
    raw_ids = pd.read_csv(real_data / file, usecols=[id_column], dtype=str)[id_column].dropna()
    raw_ids = set(raw_ids.str.replace(r"\.0$", "", regex=True))
    excluded = pd.read_csv(tmp_path / "excluded.csv", dtype={"customer_id": str})
    segmented = set(result.features.frame.index)
    customer_level = set(excluded.loc[excluded["source"] == "customer", "customer_id"])
    assert segmented | customer_level == raw_ids and not segmented & customer_level
    names = {s.name for s in result.profiles.segments}
    assert 3 <= result.k <= 8
    assert len(names & RFM_NAMES) >= 3, names
    champions = [s for s in result.profiles.segments if s.name == "Champions"]
    if champions:  # the most valuable segment has the top id and a big revenue share
        assert champions[0].segment_id == 1 and champions[0].revenue_share > 0.2


@pytest.mark.realdata
@pytest.mark.parametrize("file, config", [
    ("marketing_campaign.csv", None),
    ("Mall_Customers.csv", None),
    ("wholesale_customers_data.csv", "examples/wholesale.toml"),
    ("bank-full.csv.gz", "examples/bank.toml"),
])
def test_customer_tables(real_data: Path, tmp_path: Path, file: str, config: str | None) -> None:
    cfg = Config.from_toml(REPO / config) if config else Config()
    result = run_segmentation(customers=real_data / file, config=cfg)
    write_outputs(result, tmp_path)
    _check_accounting(result, tmp_path)
    n_rows = result.ledger.sources["customers"].rows_read
    assert result.customers_summary()["segmented"] == n_rows  # nothing lost on these tables
    assert 2 <= result.k <= 10


@pytest.mark.realdata
def test_marketing_campaign_cleaning(real_data: Path) -> None:
    result = run_segmentation(customers=real_data / "marketing_campaign.csv")
    cleaned = result.ledger.cleaned
    assert cleaned["age outside 16-100 set to missing"] == 3       # born 1893, 1899, 1900
    assert cleaned["income negative or above Q3 + 10 x IQR set to missing"] == 1  # 666666
    assert "Z_CostContact" in result.ignored_columns
    f = result.features
    assert {"monetary", "frequency", "discount_share", "children", "age"} <= set(f.frame.columns)
    assert "cat_share_wines" in f.groups["category_share"]
    assert result.as_of.isoformat() == "2014-06-29"


@pytest.mark.realdata
def test_online_retail_year_over_year_drift(real_data: Path, tmp_path: Path) -> None:
    """Online Retail II 2009-10 vs Online Retail 2010-11: the same retailer a year apart.

    Year-over-year the RFM features barely move (every PSI < 0.1): a stable business, so the
    verdict is "stable". Quarter against quarter of the same year, seasonality shows: the
    Christmas quarter's recency and tenure differ materially from the spring quarter's.
    """
    from custseg.drift import compare_snapshots
    from custseg.snapshots import load_snapshot

    folders = {}
    for name, file, as_of in (("y2010", "online_retail_II_2009-2010.csv.gz", None),
                              ("y2011", "online_retail.csv.gz", None),
                              ("q2_2011", "online_retail.csv.gz", "2011-05-31"),
                              ("q4_2011", "online_retail.csv.gz", "2011-11-30")):
        f = tmp_path / name
        f.mkdir()
        (f / "transactions.csv.gz").symlink_to(real_data / file)
        if as_of:
            (f / "snapshot.toml").write_text(f"as_of = {as_of}\nwindow_days = 91\n")
        folders[name] = f
    year = compare_snapshots(load_snapshot(folders["y2010"]), load_snapshot(folders["y2011"]))
    assert year.verdict == "stable" and year.score < PSI_MATERIAL
    quarter = compare_snapshots(load_snapshot(folders["q2_2011"]),
                                load_snapshot(folders["q4_2011"]))
    assert quarter.verdict != "stable"
    drifted = {f.feature for f in quarter.features if f.drifted}
    assert drifted & {"recency_days", "tenure_days", "frequency"}, drifted
    for f in quarter.features:
        assert np.isfinite(f.psi) and np.isfinite(f.threshold)
