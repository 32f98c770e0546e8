"""Transactions cleaned in DuckDB (custseg.duck) == transactions cleaned in pandas (cleaning.py).

Same ledger (rows read, exclusions by reason, returns), the same excluded rows one by one, the
same as-of date and the same features for every customer, on a synthetic log with every kind of
defect, on Parquet, with a customers table, and on the real Online Retail file; and the same
errors for bad input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from custseg.config import Config
from custseg.errors import InputError
from custseg.pipeline import prepare_data


def _cfg(engine: str, **seg) -> Config:
    return Config.model_validate({"segmentation": {"transactions_engine": engine, **seg}})


def _both(**kw):
    seg = kw.pop("seg", {})
    pandas = prepare_data(config=_cfg("pandas", **seg), **kw)
    duck = prepare_data(config=_cfg("duckdb", **seg), **kw)
    assert pandas.transactions_engine == "pandas"
    assert duck.transactions_engine == "duckdb"  # not a silent fallback to pandas
    return pandas, duck


def _assert_same(pandas, duck) -> None:
    assert duck.as_of == pandas.as_of
    assert {k: v.to_dict() for k, v in duck.ledger.sources.items()} == \
        {k: v.to_dict() for k, v in pandas.ledger.sources.items()}
    ep, ed = pandas.ledger.excluded_frame(), duck.ledger.excluded_frame()
    pd.testing.assert_frame_equal(ed.reset_index(drop=True), ep.reset_index(drop=True),
                                  check_dtype=False)
    fp, fd = pandas.features, duck.features
    assert fd.numeric == fp.numeric and fd.descriptive == fp.descriptive
    assert fd.groups == fp.groups
    assert list(fd.frame.index) == list(fp.frame.index)
    cols = [c for c in fp.frame.columns if pd.api.types.is_numeric_dtype(fp.frame[c])]
    assert list(fd.frame.columns) == list(fp.frame.columns)
    np.testing.assert_allclose(fd.frame[cols].to_numpy(dtype="float64"),
                               fp.frame[cols].to_numpy(dtype="float64"), rtol=1e-12, atol=1e-9)


@pytest.fixture()
def messy_log(tmp_path: Path, synth_files) -> Path:
    """The synthetic log with every defect the cleaning rules know, as text."""
    tx = pd.read_csv(synth_files["transactions"], dtype=str)
    rng = np.random.default_rng(7)
    n = len(tx)
    pick = lambda k: rng.choice(n, size=k, replace=False)  # noqa: E731
    tx.loc[pick(30), "customer_id"] = None                    # missing id
    tx.loc[pick(20), "timestamp"] = None                      # missing date
    tx.loc[pick(15), "timestamp"] = "not a date"              # unparseable date
    tx.loc[pick(10), "timestamp"] = "2099-01-05 10:00:00"     # after the as-of date
    tx.loc[pick(25), "amount"] = "0"                          # zero amount
    tx.loc[pick(12), "amount"] = "n/a?"                       # unparseable amount
    tx.loc[pick(10), "amount"] = "£1,234.50"                  # currency and thousands
    tx.loc[pick(40), "quantity"] = "-1"                       # a return
    tx.loc[pick(20), "order_id"] = "C" + tx["order_id"].iloc[0]   # a cancellation
    tx.loc[pick(20), "category"] = "  "                       # blank category
    tx.loc[pick(10), "channel"] = " web "                     # padded channel
    tx.loc[pick(30), "discount_used"] = "yes"                 # flags mixed into 0/1
    tx.loc[pick(8), "customer_id"] = " " + tx["customer_id"].iloc[3] + " "
    tx = pd.concat([tx, tx.iloc[pick(40)]], ignore_index=True)  # exact duplicate rows
    path = tmp_path / "messy.csv"
    tx.to_csv(path, index=False)
    return path


def test_duckdb_cleaning_equals_pandas_on_a_messy_log(messy_log: Path) -> None:
    pandas, duck = _both(transactions=messy_log, seg={"on_invalid": "exclude",
                                                      "as_of": "2026-01-01"})
    _assert_same(pandas, duck)
    excluded = duck.ledger.sources["transactions"].excluded
    for reason in ("missing customer_id", "duplicate row", "unparseable date", "missing date",
                   "dated after the as-of date", "unparseable amount", "zero or missing amount"):
        assert excluded[reason] > 0, reason


def test_duckdb_cleaning_equals_pandas_with_window_and_customers(synth_files) -> None:
    cust = pd.read_csv(synth_files["customers"], dtype=str)
    cust = cust.iloc[: len(cust) * 3 // 4]  # a quarter of the buyers are unknown customers
    pandas, duck = _both(customers=cust, transactions=synth_files["transactions"],
                         seg={"window_days": 200})
    _assert_same(pandas, duck)
    tx = duck.ledger.sources["transactions"].excluded
    assert tx["customer not in the customers table"] > 0
    assert tx["dated before the 200-day feature window"] > 0


def test_duckdb_cleaning_equals_pandas_on_parquet(tmp_path: Path, synth_files) -> None:
    frame = pd.read_csv(synth_files["transactions"])   # typed columns, as Parquet keeps them
    path = tmp_path / "tx.parquet"
    frame.to_parquet(path)
    pandas, duck = _both(transactions=path)
    _assert_same(pandas, duck)


def test_duckdb_path_gives_the_same_errors(messy_log: Path) -> None:
    from datetime import date

    from custseg.config import TableConfig
    from custseg.duck import prepare_transactions_sql
    from custseg.ledger import Ledger

    with pytest.raises(InputError) as exc:  # the DuckDB path itself, no fallback possible
        prepare_transactions_sql(messy_log, TableConfig(), ledger=Ledger(),
                                 as_of=date(2026, 1, 1))
    duck = str(exc.value)
    with pytest.raises(InputError) as exc:
        prepare_data(transactions=messy_log, config=_cfg("pandas", as_of="2026-01-01"))
    assert duck == str(exc.value)
    assert "timestamp" in duck and "not a date" in duck and "row" in duck


@pytest.mark.realdata
def test_duckdb_cleaning_equals_pandas_on_online_retail(real_data: Path) -> None:
    pandas, duck = _both(transactions=real_data / "online_retail.csv.gz")
    _assert_same(pandas, duck)
    assert duck.ledger.sources["transactions"].returns > 5000


def test_duckdb_cleaning_reports_progress_steps(synth_files) -> None:
    calls: list[tuple[str, int, int]] = []
    prepare_data(transactions=synth_files["transactions"], config=_cfg("duckdb"),
                 progress=lambda stage, done, total: calls.append((stage, done, total)))
    steps = [(d, t) for s, d, t in calls if s == "clean (DuckDB)"]
    assert steps == [(i, 7) for i in range(1, 8)]


@pytest.mark.parametrize("late_day", [13, None])
def test_duckdb_date_format_when_the_first_values_are_ambiguous(tmp_path: Path, monkeypatch,
                                                                late_day) -> None:
    """Day-first dates whose first few thousand values all have a day <= 12 parse month-first
    too: that format is tried first, and when a later value (day 13) fails it, the exact
    choice over the whole column (day-first) replaces it, as on the pandas path. With no such
    value, month-first stands -- again as on the pandas path."""
    rng = np.random.default_rng(7)
    n = 6000
    day = rng.integers(1, 13, n)
    if late_day is not None:
        day[-50:] = late_day
    month = rng.integers(1, 13, n)
    frame = pd.DataFrame({
        "customer_id": rng.integers(1, 400, n).astype(str),
        "order_id": [f"O{i}" for i in range(n)],
        "date": [f"{d:02d}/{m:02d}/2023" for d, m in zip(day, month, strict=True)],
        "amount": np.round(rng.uniform(1, 99, n), 2).astype(str),
    })
    path = tmp_path / "tx.csv"
    frame.to_csv(path, index=False)
    from custseg import duck as duck_module

    exact_calls = []
    choose = duck_module._choose_date_format

    def spy(*args, **kwargs):
        exact_calls.append(1)
        return choose(*args, **kwargs)

    monkeypatch.setattr(duck_module, "_choose_date_format", spy)
    pandas, duck = _both(transactions=path)
    _assert_same(pandas, duck)
    excluded = duck.ledger.excluded_frame()
    assert not (excluded["reason"] == "unparseable date").any()  # every date read, one format
    # the exact choice ran only when the first values' format failed later in the column
    assert exact_calls == ([1] if late_day is not None else [])


@pytest.mark.parametrize("values", [["2", "0.5", "0", ""], ["2", "0.5", "yes", "no", "", "0"]])
def test_duckdb_discount_numbers_or_flags_as_on_the_pandas_path(tmp_path: Path, values) -> None:
    """A discount column of numbers means "above 0"; once any cell is not a number the pandas
    path reads the whole column as yes/no flags (so "2" and "0.5" are then no discount), and
    DuckDB must do the same, line by line."""
    from custseg.cleaning import prepare_transactions
    from custseg.config import TableConfig
    from custseg.duck import prepare_transactions_sql
    from custseg.io.readers import read_table
    from custseg.ledger import Ledger

    n = 8 * len(values)
    frame = pd.DataFrame({
        "customer_id": [f"c{i % 8}" for i in range(n)],
        "order_id": [f"O{i}" for i in range(n)],
        "timestamp": [f"2024-01-{i % 28 + 1:02d} 10:00:00" for i in range(n)],
        "amount": "10",
        "discount_used": [values[(i // 8 + i) % len(values)] for i in range(n)],
    })
    path = tmp_path / "tx.csv"
    frame.to_csv(path, index=False)
    flags = "yes" in values
    expected = [np.nan if pd.isna(v) or v == "" else float(v == "yes") if flags
                else float(float(v) > 0) for v in frame["discount_used"]]
    tx = prepare_transactions(read_table(path), TableConfig(), file=str(path), ledger=Ledger(),
                              as_of=None)
    np.testing.assert_array_equal(tx.frame["discount"].to_numpy(), expected)
    sql = prepare_transactions_sql(path, TableConfig(), ledger=Ledger(), as_of=None)
    try:
        lines = sql.con.execute("SELECT discount FROM tx ORDER BY row").fetchall()
    finally:
        sql.close()
    np.testing.assert_array_equal([np.nan if v is None else v for (v,) in lines], expected)


def test_utc_timestamps_give_the_same_features_as_naive_ones(tmp_path: Path, synth_files) -> None:
    """A log whose timestamps end in "Z" (or carry an offset) is read as naive UTC on every
    path: the same as-of date and features as the same log written without the offset."""
    tx = pd.read_csv(synth_files["transactions"], dtype=str)
    ts = pd.to_datetime(tx["timestamp"])
    tx["timestamp"] = ts.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    shifted = (ts + pd.Timedelta(hours=2)).dt.strftime("%Y-%m-%dT%H:%M:%S+02:00")
    some = tx["customer_id"].str[-1].isin(list("02468"))  # (duplicate lines stay duplicates)
    tx.loc[some, "timestamp"] = shifted[some]
    path = tmp_path / "tx_z.csv"
    tx.to_csv(path, index=False)
    naive = prepare_data(transactions=synth_files["transactions"], config=_cfg("pandas"))
    for engine in ("pandas", "duckdb"):
        got = prepare_data(transactions=path, config=_cfg(engine))
        assert got.as_of == naive.as_of
        pd.testing.assert_frame_equal(got.features.frame, naive.features.frame)
    aware = pd.read_csv(synth_files["transactions"])
    aware["timestamp"] = pd.to_datetime(aware["timestamp"]).dt.tz_localize("UTC") \
        .dt.tz_convert("Asia/Tokyo")
    aware.to_parquet(tmp_path / "tx.parquet")
    pandas, duck = _both(transactions=tmp_path / "tx.parquet")
    _assert_same(pandas, duck)
    assert duck.as_of == naive.as_of


def test_implausible_dates_same_rule_and_messages(tmp_path: Path, synth_files) -> None:
    """20 lines dated 2200 would move the as-of date to 2200: both paths exclude them with the
    same reason and keep the as-of date of the data; a far-past date warns on both; an as-of
    date before every line, and a date the format reads but out of range, are clear errors."""
    tx = pd.read_csv(synth_files["transactions"], dtype=str)
    normal = prepare_data(transactions=synth_files["transactions"], config=_cfg("pandas"))
    tx.loc[:19, "timestamp"] = "2200-01-01 10:00:00"
    tx.loc[20, "timestamp"] = "1950-06-01 10:00:00"
    path = tmp_path / "tx.csv"
    tx.to_csv(path, index=False)
    pandas, duck = _both(transactions=path)
    _assert_same(pandas, duck)
    assert duck.as_of == normal.as_of
    excluded = duck.ledger.sources["transactions"].excluded
    assert excluded["implausible future date (over 366 days after 99% of the dates)"] == 20
    for got in (pandas, duck):
        warned = [w["message"] for w in got.ledger.warnings if w["category"] == "dates"]
        assert len(warned) == 1 and "1950-06-01" in warned[0], warned
    for as_of, needle in (("1900-01-01", "no transactions on or before the as-of date "
                                         "1900-01-01 (the first is dated 1950-06-01)"),):
        msgs = []
        for engine in ("pandas", "duckdb"):
            with pytest.raises(InputError) as exc:
                prepare_data(transactions=path, config=_cfg(engine, as_of=as_of))
            msgs.append(str(exc.value))
        assert msgs[0] == msgs[1] and needle in msgs[0], msgs
    tx.loc[:19, "timestamp"] = "2999-01-01 10:00:00"
    tx.to_csv(path, index=False)
    msgs = []
    for engine in ("pandas", "duckdb"):
        with pytest.raises(InputError) as exc:
            prepare_data(transactions=path, config=_cfg(engine))
        msgs.append(str(exc.value))
    assert msgs[0] == msgs[1], msgs
    assert "implausible date: it matches the format %Y-%m-%d %H:%M:%S" in msgs[0]
    assert "cannot parse" not in msgs[0]


@pytest.mark.parametrize("mode", ["auto", "drop"])
def test_identical_lines_without_order_id_same_rule_as_pandas(tmp_path: Path, synth_files,
                                                              mode: str) -> None:
    """Without an order id identical lines are repeat purchases (kept, with a note) unless the
    config says drop: DuckDB applies the same rule and states the same choice."""
    tx = pd.read_csv(synth_files["transactions"], dtype=str).drop(columns="order_id")
    tx = pd.concat([tx, tx.iloc[::97]], ignore_index=True)
    path = tmp_path / "tx.csv"
    tx.to_csv(path, index=False)
    cfg = lambda engine: Config.model_validate(  # noqa: E731
        {"segmentation": {"transactions_engine": engine},
         "transactions": {"duplicates": mode}})
    pandas = prepare_data(transactions=path, config=cfg("pandas"))
    duck = prepare_data(transactions=path, config=cfg("duckdb"))
    assert duck.transactions_engine == "duckdb"
    _assert_same(pandas, duck)
    src = duck.ledger.sources["transactions"]
    n_dup = len(tx.iloc[::97])
    if mode == "drop":  # (the synthetic log repeats some lines itself)
        assert src.excluded["duplicate row"] >= n_dup
    else:
        assert "duplicate row" not in src.excluded
    notes = [[w for w in p.ledger.warnings if w["category"] == "duplicates"]
             for p in (pandas, duck)]
    assert notes[0] == notes[1] and len(notes[0]) == (mode == "auto")


def test_long_category_labels_capped_alike(tmp_path: Path, synth_files) -> None:
    """Category values longer than 80 characters are capped the same way in SQL and pandas
    (same levels, same feature names), non-ASCII ones too."""
    tx = pd.read_csv(synth_files["transactions"], dtype=str)
    tx.loc[tx.index % 5 == 0, "category"] = "Épicerie fine " * 40
    tx.loc[tx.index % 7 == 0, "category"] = "Épicerie fine " * 40 + "🍷"
    path = tmp_path / "tx.csv"
    tx.to_csv(path, index=False)
    pandas, duck = _both(transactions=path)
    _assert_same(pandas, duck)
    names = [c for c in duck.features.frame.columns if "picerie" in c]
    assert len(names) >= 2 and max(len(c) for c in names) < 120, names
