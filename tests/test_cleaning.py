"""Tests for custseg.cleaning: the cleaning rules, with every row accounted for in the ledger."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from custseg.cleaning import prepare_customers, prepare_transactions, restrict_to_customers
from custseg.config import TableConfig
from custseg.errors import ConfigError, InputError
from custseg.ledger import Ledger

ONLINE_RETAIL = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
                 "CustomerID", "Country"]


# ------------------------------------------------------------------------------------ transactions

TX_ROWS = [
    # InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country
    ["536365", "A", "x", "6", "2011-12-01 08:26:00", "2.55", "17850", "UK"],       # 1 kept
    ["536365", "B", "y", "6", "2011-12-01 08:26:00", "3.39", "17850", "UK"],       # 2 kept
    ["536366", "A", "x", "2", "2011-12-01 09:00:00", "2.55", None, "UK"],          # 3 no id
    ["536365", "A", "x", "6", "2011-12-01 08:26:00", "2.55", "17850", "UK"],       # 4 dup of 1
    ["C536367", "A", "x", "-1", "2011-12-02 10:00:00", "2.55", "17850", "UK"],     # 5 cancel
    ["536368", "A", "x", "-3", "2011-12-03 10:00:00", "2.55", "13047", "UK"],      # 6 return
    ["536369", "A", "x", "1", "2011-12-03 11:00:00", "0", "13047", "UK"],          # 7 price 0
    ["A536370", "B", "x", "1", "2011-12-03 12:00:00", "-11062.06", "13047", "UK"],  # 8 price < 0
    ["536371", "A", "x", "1", "2011-12-15 10:00:00", "5.0", "13047", "UK"],        # 9 late
    ["536372", "A", "x", "4", "2011-12-05 10:00:00", "1.25", "17850.0", "UK"],     # 10 kept
    ["536373", "A", "x", "4", None, "1.25", "12583", "FR"],                        # 11 no date
    ["536374", "A", "x", "10", "2011-12-06 10:00:00", "2.00", "13047", "UK"],      # 12 kept
]
AS_OF = date(2011, 12, 9)


def _tx_raw() -> pd.DataFrame:
    return pd.DataFrame(TX_ROWS, columns=ONLINE_RETAIL)


def _prepare_tx(raw: pd.DataFrame | None = None, **kw):
    ledger = Ledger()
    tx = prepare_transactions(_tx_raw() if raw is None else raw, TableConfig(), file="tx.csv",
                              ledger=ledger, as_of=kw.pop("as_of", AS_OF), **kw)
    return tx, ledger


def test_prepare_transactions_ledger_accounts_for_every_row() -> None:
    tx, ledger = _prepare_tx()
    src = ledger.sources["transactions"]
    assert src.rows_read == 12
    assert dict(src.excluded) == {
        "missing customer_id": 1,
        "duplicate row": 1,
        "missing date": 1,
        "dated after the as-of date": 1,
        "zero or negative unit price": 2,
    }
    assert src.rows_used == 6 == len(tx.frame)
    assert src.rows_read == src.rows_used + sum(src.excluded.values())
    assert src.returns == 2
    assert src.to_dict()["returns_and_cancellations"] == 2
    excluded = ledger.excluded_frame()
    by_reason = excluded.groupby("reason")["row"].apply(lambda s: sorted(s.tolist())).to_dict()
    assert by_reason == {
        "missing customer_id": [3],
        "duplicate row": [4],
        "missing date": [11],
        "dated after the as-of date": [9],
        "zero or negative unit price": [7, 8],
    }
    # kept and excluded rows together are exactly the input rows, once each
    assert sorted([*tx.frame["row"].tolist(), *excluded["row"].tolist()]) == list(range(1, 13))


def test_prepare_transactions_returns_and_amounts() -> None:
    tx, _ = _prepare_tx()
    f = tx.frame.set_index("row")
    assert f.loc[[1, 2, 5, 6, 10, 12], "amount"].tolist() == pytest.approx(
        [15.30, 20.34, -2.55, -7.65, 5.00, 20.00])
    assert f["is_return"].to_dict() == {1: False, 2: False, 5: True, 6: True, 10: False, 12: False}
    assert f.loc[[5, 6], "quantity"].tolist() == [1.0, 3.0]
    assert f.loc[10, "customer_id"] == "17850"  # "17850.0" cleaned
    assert f.loc[5, "order_id"] == "C536367"
    assert f.loc[1, "ts"] == pd.Timestamp("2011-12-01 08:26")
    assert tx.as_of == AS_OF
    assert set(tx.seen_ids) == {"17850", "13047", "12583"}


def test_prepare_transactions_as_of_defaults_to_last_date() -> None:
    tx, ledger = _prepare_tx(as_of=None)
    assert tx.as_of == date(2011, 12, 15)
    assert "dated after the as-of date" not in ledger.sources["transactions"].excluded
    assert 9 in tx.frame["row"].tolist()


def test_prepare_transactions_as_of_includes_the_whole_day() -> None:
    raw = _tx_raw()
    raw.loc[9, "InvoiceDate"] = "2011-12-07 00:00:00"  # row 10: midnight after the as-of day
    raw.loc[11, "InvoiceDate"] = "2011-12-06 23:59:59"  # row 12: last second of the as-of day
    tx, ledger = _prepare_tx(raw, as_of=date(2011, 12, 6))
    rows = tx.frame["row"].tolist()
    assert 12 in rows
    assert 10 not in rows
    assert ledger.sources["transactions"].excluded["dated after the as-of date"] == 2  # rows 9, 10


def test_prepare_transactions_cancellation_with_positive_quantity() -> None:
    raw = _tx_raw()
    raw.loc[4, "Quantity"] = "1"  # row 5: "C536367" with a positive quantity is still a return
    tx, ledger = _prepare_tx(raw)
    row5 = tx.frame.set_index("row").loc[5]
    assert bool(row5["is_return"]) is True
    assert row5["amount"] == pytest.approx(-2.55)
    assert ledger.sources["transactions"].returns == 2


def test_prepare_transactions_amount_column_and_return_flag() -> None:
    raw = pd.DataFrame({
        "customer_id": ["a", "a", "b", "b"],
        "order_date": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"],
        "amount": ["10", "4", "0", "7"],
        "returned": ["no", "yes", "no", "no"],
    })
    ledger = Ledger()
    tx = prepare_transactions(raw, TableConfig(), file="t.csv", ledger=ledger, as_of=None)
    assert tx.frame["amount"].tolist() == [10.0, -4.0, 7.0]
    assert tx.frame["is_return"].tolist() == [False, True, False]
    assert dict(ledger.sources["transactions"].excluded) == {"zero or missing amount": 1}


def test_prepare_transactions_unparseable_quantity_error_and_exclude() -> None:
    raw = _tx_raw()
    raw.loc[11, "Quantity"] = "ten"
    with pytest.raises(InputError) as info:
        _prepare_tx(raw)
    assert (info.value.column, info.value.row, info.value.value) == ("Quantity", 12, "ten")
    tx, ledger = _prepare_tx(raw, on_invalid="exclude")
    src = ledger.sources["transactions"]
    assert src.excluded["unparseable quantity"] == 1
    assert 12 not in tx.frame["row"].tolist()
    assert src.rows_read == src.rows_used + sum(src.excluded.values())


def test_prepare_transactions_missing_roles() -> None:
    raw = pd.DataFrame({"CustomerID": ["1"], "Quantity": ["2"], "UnitPrice": ["1"]})
    with pytest.raises(InputError, match="no order date/time column found") as info:
        prepare_transactions(raw, TableConfig(), file="t.csv", ledger=Ledger(), as_of=AS_OF)
    assert "Columns seen: CustomerID, Quantity, UnitPrice" in str(info.value)


def test_prepare_transactions_without_amount_counts_lines() -> None:
    """A log of ids and dates (the classic purchase-history shape) is cleaned: each line
    counts once and the table says it has no money; the ledger warns."""
    raw = pd.DataFrame({"CustomerID": ["1", "1", "2"],
                        "InvoiceDate": ["2011-01-01", "2011-01-05", "2011-01-02"]})
    ledger = Ledger()
    t = prepare_transactions(raw, TableConfig(), file="t.csv", ledger=ledger, as_of=AS_OF)
    assert not t.has_money and len(t.frame) == 3
    assert any("no amount column" in w["message"] for w in ledger.warnings)


def test_restrict_to_customers() -> None:
    tx, ledger = _prepare_tx()
    restrict_to_customers(tx, pd.Index(["17850"]), ledger)
    src = ledger.sources["transactions"]
    assert set(tx.frame["customer_id"]) == {"17850"}
    assert tx.frame.index.tolist() == list(range(len(tx.frame)))
    assert src.excluded["customer not in the customers table"] == 2  # rows 6 and 12
    assert src.returns == 1  # row 6 was a return of 13047
    assert src.rows_used == len(tx.frame) == 4
    assert src.rows_read == src.rows_used + sum(src.excluded.values())


def test_restrict_to_customers_noop_when_all_known() -> None:
    tx, ledger = _prepare_tx()
    before = tx.frame.copy()
    restrict_to_customers(tx, pd.Index(["17850", "13047"]), ledger)
    pd.testing.assert_frame_equal(tx.frame, before)
    assert "customer not in the customers table" not in ledger.sources["transactions"].excluded


# ------------------------------------------------------------------------------------ customers

EDU = ["Graduation", "PhD", "Master", "Basic", "2n Cycle"]
MARITAL = ["Single", "Married", "Together", "Divorced"]


def _marketing(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "ID": [str(1000 + i) for i in range(n)],
        "Year_Birth": [str(1950 + i) for i in range(n)],
        "Education": [EDU[i % 5] for i in range(n)],
        "Marital_Status": [MARITAL[i % 4] for i in range(n)],
        "Income": [str(int(v)) for v in rng.normal(52000, 15000, n).round()],
        "Kidhome": [str(i % 2) for i in range(n)],
        "Teenhome": [str((i // 2) % 3) for i in range(n)],
        "Dt_Customer": [f"{i % 28 + 1:02d}-{i % 12 + 1:02d}-2013" for i in range(n)],
        "Recency": [str(i) for i in range(n)],
        "MntWines": [str(10 * i) for i in range(n)],
        "MntFruits": [str(i) for i in range(n)],
        "MntMeatProducts": [str(5 * i) for i in range(n)],
        "MntGoldProds": [str(2 * i) for i in range(n)],
        "NumDealsPurchases": [str(i % 3) for i in range(n)],
        "NumWebPurchases": [str(i % 5 + 1) for i in range(n)],
        "NumCatalogPurchases": [str(i % 2) for i in range(n)],
        "NumStorePurchases": [str(i % 7 + 1) for i in range(n)],
        "NumWebVisitsMonth": [str(i % 9) for i in range(n)],
        "AcceptedCmp1": [str(i % 2) for i in range(n)],
        "Complain": ["1" if i == 3 else "0" for i in range(n)],
        "Z_CostContact": ["3"] * n,
        "Response": [str((i // 3) % 2) for i in range(n)],
    })


def _prepare_cu(raw: pd.DataFrame, cfg: TableConfig | None = None, as_of=date(2014, 12, 31)):
    ledger = Ledger()
    table = prepare_customers(raw, cfg or TableConfig(), file="mk.csv", ledger=ledger, as_of=as_of)
    return table, ledger


def test_prepare_customers_marketing_roles_and_kinds() -> None:
    table, ledger = _prepare_cu(_marketing())
    assert table.frame.index.name == "customer_id"
    assert table.frame.index[:2].tolist() == ["1000", "1001"]
    assert table.numeric == ["age", "income", "recency_days", "children", "education_level",
                             "NumWebVisitsMonth"]
    # campaign responses and complaints are outcomes: profiled beside the segments, not traits
    assert table.binary == []
    assert table.outcomes == ["AcceptedCmp1", "Complain", "Response"]
    assert table.categorical == ["marital_status"]
    assert table.dates == ["signup_date"]
    assert table.category_spend == {"wines": "MntWines", "fruits": "MntFruits",
                                    "meat": "MntMeatProducts", "gold": "MntGoldProds"}
    assert table.channel_purchases == {"web": "NumWebPurchases", "catalog": "NumCatalogPurchases",
                                       "store": "NumStorePurchases"}
    assert table.deal_purchases == "NumDealsPurchases"
    assert table.roles["children"] == "Kidhome+Teenhome"
    assert ledger.sources["customers"].rows_used == 40


def test_outcomes_inferred_configured_and_coded() -> None:
    raw = pd.DataFrame({"id": [str(i) for i in range(8)],
                        "age": [str(20 + 5 * i) for i in range(8)],
                        "Churn": ["Yes", "No", "no", "YES", "No", "", "No", "No"],
                        "plan": ["a", "b"] * 4,
                        "satisfaction": [str(i % 3) for i in range(8)]})
    table, _ = _prepare_cu(raw, as_of=None)
    assert table.outcomes == ["Churn"]
    assert table.frame["Churn"].tolist()[:5] == [1.0, 0.0, 0.0, 1.0, 0.0]
    assert np.isnan(table.frame["Churn"].iloc[5])
    assert "Churn" not in table.numeric + table.binary + table.categorical
    # the config names outcomes (a numeric one stays a number), or none at all
    table, _ = _prepare_cu(raw, TableConfig(outcomes=["satisfaction"]), as_of=None)
    assert table.outcomes == ["satisfaction"] and "Churn" in table.categorical
    table, _ = _prepare_cu(raw, TableConfig(outcomes=[]), as_of=None)
    assert table.outcomes == []
    with pytest.raises(InputError, match="yes/no-like or numeric"):
        _prepare_cu(raw, TableConfig(outcomes=["plan"]), as_of=None)


def test_value_column_named_or_summed() -> None:
    raw = pd.DataFrame({"id": [str(i) for i in range(6)],
                        "TotalCharges": ["10", "20", " ", "40", "50", "60"],
                        "Fresh": [str(i) for i in range(6)], "Milk": [str(2 * i) for i in range(6)]})
    table, _ = _prepare_cu(raw, as_of=None)
    assert table.value_column == "TotalCharges"
    table, _ = _prepare_cu(raw, TableConfig(value=["Fresh", "Milk"]), as_of=None)
    assert table.value_column == "total_value"
    assert table.frame["total_value"].tolist() == [0.0, 3.0, 6.0, 9.0, 12.0, 15.0]


def test_prepare_customers_values() -> None:
    table, _ = _prepare_cu(_marketing())
    f = table.frame
    assert f.loc["1000", "age"] == 64.0  # 2014 - 1950
    # Dt_Customer is dd-mm-yyyy: row i=13 is "14-02-2013"
    assert f.loc["1013", "signup_date"] == pd.Timestamp("2013-02-14")
    # children = Kidhome + Teenhome: i=3 -> 1 + 1, i=4 -> 0 + 2
    assert f.loc["1003", "children"] == 2.0
    assert f.loc["1004", "children"] == 2.0
    assert f.loc["1000", "children"] == 0.0
    # Education is an ordered level
    assert f.loc[["1000", "1001", "1002", "1003", "1004"], "education_level"].tolist() == [
        3.0, 5.0, 4.0, 0.0, 2.0]
    assert f["AcceptedCmp1"].tolist()[:3] == [0.0, 1.0, 0.0]
    assert "Z_CostContact" not in f.columns


def test_prepare_customers_constant_column_ignored_with_warning() -> None:
    table, ledger = _prepare_cu(_marketing())
    assert table.ignored == {"Z_CostContact": "constant column"}
    assert ledger.warnings == [{"category": "schema",
                                "message": "mk.csv: column 'Z_CostContact' is constant; not used"}]


def test_prepare_customers_absurd_age_and_income_set_missing() -> None:
    raw = _marketing()
    raw.loc[5, "Year_Birth"] = "1893"
    raw.loc[7, "Income"] = "666666"
    table, ledger = _prepare_cu(raw)
    f = table.frame
    assert np.isnan(f.loc["1005", "age"])
    assert np.isnan(f.loc["1007", "income"])
    assert f["age"].isna().sum() == 1
    assert f["income"].isna().sum() == 1
    assert ledger.cleaned == {"age outside 16-100 set to missing": 1,
                              "income negative or above Q3 + 10 x IQR set to missing": 1}
    assert len(f) == 40  # values are cleaned, rows are kept


def test_prepare_customers_age_bounds_are_inclusive() -> None:
    """derive.AGE: 16 and 100 are ages; just outside them is a data-entry error."""
    raw = pd.DataFrame({"id": [str(i) for i in range(7)],
                        "age": ["15.9", "16", "40", "100", "100.5", "", "-3"],
                        "income": ["10", "20", "30", "40", "50", "60", "70"]})
    table, ledger = _prepare_cu(raw)
    np.testing.assert_array_equal(table.frame["age"].to_numpy(),
                                  [np.nan, 16.0, 40.0, 100.0, np.nan, np.nan, np.nan])
    assert ledger.cleaned["age outside 16-100 set to missing"] == 3


def test_prepare_customers_income_fence_learned_then_given_when_scoring() -> None:
    """The income fence is learned from the kept rows (Q3 + 10 x IQR) and kept in
    ``table.fences``; a scoring batch uses the fence it is given, not its own."""
    raw = _marketing()
    inc = raw["Income"].astype("float64")
    q1, q3 = inc.quantile([0.25, 0.75])
    table, _ = _prepare_cu(raw)
    assert table.fences == {"income_max": pytest.approx(q3 + 10 * (q3 - q1), rel=1e-12)}
    ledger = Ledger()
    scored = prepare_customers(raw, TableConfig(), file="mk.csv", ledger=ledger,
                               as_of=date(2014, 12, 31), scoring=True,
                               fences={"income_max": 50_000.0})
    assert scored.fences == {"income_max": 50_000.0}
    above = (inc > 50_000).to_numpy()
    assert 0 < above.sum() < len(raw)
    np.testing.assert_array_equal(scored.frame["income"].to_numpy(),
                                  np.where(above, np.nan, inc.to_numpy()))
    assert ledger.cleaned["income negative or above Q3 + 10 x IQR set to missing"] == above.sum()


def test_prepare_customers_birth_year_needs_as_of_when_no_signup() -> None:
    raw = _marketing().drop(columns="Dt_Customer")
    with pytest.raises(ConfigError, match="Year_Birth"):
        _prepare_cu(raw, as_of=None)


def test_prepare_customers_signup_after_as_of_excluded() -> None:
    raw = _marketing()
    raw.loc[0, "Dt_Customer"] = "01-06-2015"
    table, ledger = _prepare_cu(raw)
    src = ledger.sources["customers"]
    assert dict(src.excluded) == {"signed up after the as-of date": 1}
    assert "1000" not in table.frame.index
    assert src.rows_used == len(table.frame) == 39


def test_prepare_customers_exact_duplicate_rows_excluded() -> None:
    raw = _marketing()
    raw = pd.concat([raw, raw.iloc[[2]]], ignore_index=True)
    table, ledger = _prepare_cu(raw)
    assert dict(ledger.sources["customers"].excluded) == {"duplicate row": 1}
    assert len(table.frame) == 40
    assert table.frame.index.is_unique


def test_prepare_customers_conflicting_duplicate_ids() -> None:
    raw = _marketing()
    extra = raw.iloc[[2]].copy()
    extra["Income"] = "1"
    raw = pd.concat([raw, extra], ignore_index=True)
    with pytest.raises(InputError, match="duplicate customer id '1002' in rows 3 and 41") as info:
        _prepare_cu(raw)
    assert info.value.column == "ID"
    assert info.value.file == "mk.csv"


def test_prepare_customers_missing_ids_excluded() -> None:
    raw = _marketing()
    raw.loc[4, "ID"] = None
    table, ledger = _prepare_cu(raw)
    assert dict(ledger.sources["customers"].excluded) == {"missing customer_id": 1}
    assert len(table.frame) == 39
    exc = ledger.excluded_frame()
    assert exc["row"].tolist() == [5]


def test_prepare_customers_all_empty_column() -> None:
    raw = _marketing()
    raw["Notes"] = None
    with pytest.raises(InputError, match="no values at all") as info:
        _prepare_cu(raw)
    assert info.value.column == "Notes"
    assert info.value.file == "mk.csv"


def test_prepare_customers_all_empty_role_column() -> None:
    raw = _marketing()
    raw["Income"] = ""
    with pytest.raises(InputError, match="no values at all") as info:
        _prepare_cu(raw)
    assert info.value.column == "Income"


def test_prepare_customers_no_id_column() -> None:
    """Without an id column the rows are numbered (as with row_ids = true), and said so."""
    raw = _marketing().drop(columns="ID")
    table, ledger = _prepare_cu(raw)
    assert table.frame.index[:3].tolist() == ["1", "2", "3"]
    assert table.inference is not None and table.inference.implicit_row_ids
    assert any("no customer id column" in w["message"] for w in ledger.warnings)
    table, _ = _prepare_cu(raw, TableConfig(row_ids=True))
    assert table.frame.index[:3].tolist() == ["1", "2", "3"]


def test_prepare_customers_config_column_not_in_file() -> None:
    with pytest.raises(ConfigError, match="column 'Channel' named in the config"):
        _prepare_cu(_marketing(), TableConfig(categorical=["Channel"]))


def test_prepare_customers_config_ignore_and_categorical() -> None:
    cfg = TableConfig(ignore=["NumWebVisitsMonth"], categorical=["Complain"])
    table, _ = _prepare_cu(_marketing(), cfg)
    assert "NumWebVisitsMonth" not in table.frame.columns
    assert table.ignored["NumWebVisitsMonth"] == "ignored in config"
    assert "Complain" in table.categorical
    assert "Complain" not in table.binary


def test_prepare_customers_unrecognised_education_becomes_categorical() -> None:
    raw = _marketing()
    raw["Education"] = ["Art school" if i % 2 else "Graduation" for i in range(len(raw))]
    table, ledger = _prepare_cu(raw)
    assert "education" in table.categorical
    assert "education_level" not in table.frame.columns
    assert any("Art school" in w["message"] for w in ledger.warnings)


def test_prepare_customers_free_text_column_ignored() -> None:
    raw = _marketing(n=60)
    raw["Comment"] = [f"note number {i}" for i in range(60)]
    table, _ = _prepare_cu(raw)
    assert table.ignored["Comment"].startswith("free text or identifier (60 distinct")
    assert "Comment" not in table.frame.columns


def test_units_from_column_names_are_kept() -> None:
    from custseg.cleaning import column_unit

    assert column_unit("Annual Income (k$)") == "k$"
    assert column_unit("Spend [EUR]") == "EUR"
    assert column_unit("Spending Score (1-100)") is None  # a scale, not a unit
    assert column_unit("income") is None
    raw = pd.DataFrame({"CustomerID": ["1", "2", "3"], "Annual Income (k$)": ["15", "40", "70"]})
    table, _ = _prepare_cu(raw, as_of=None)
    assert table.units == {"income": "k$"}

def test_implausible_future_signup_does_not_move_the_as_of_date() -> None:
    """Without an as-of date, the last signup sets it: a signup dated 2200 is excluded as
    implausible (with its reason) instead of moving it to 2200 (needs 100+ customers, so
    that one is under 1% of them)."""
    raw = _marketing(n=150)
    raw.loc[0, "Dt_Customer"] = "01-01-2200"
    table, ledger = _prepare_cu(raw, as_of=None)
    assert dict(ledger.sources["customers"].excluded) == {
        "implausible future date (over 366 days after 99% of the dates)": 1}
    assert table.frame["signup_date"].max() < pd.Timestamp("2014-01-01")


def test_implausible_future_transactions_excluded_and_as_of_clear_error() -> None:
    rows = [["1", "A", "x", "1", f"2011-{1 + i % 12:02d}-10 10:00:00", "2.0", f"{i % 9}", "UK"]
            for i in range(300)]
    rows += [["2", "A", "x", "1", "2200-01-01 10:00:00", "2.0", "5", "UK"]] * 2
    raw = pd.DataFrame(rows, columns=ONLINE_RETAIL)
    raw["InvoiceNo"] = [str(i) for i in range(len(raw))]
    tx, ledger = _prepare_tx(raw, as_of=None)
    assert tx.as_of == date(2011, 12, 10)
    assert ledger.sources["transactions"].excluded[
        "implausible future date (over 366 days after 99% of the dates)"] == 2
    with pytest.raises(InputError, match="no transactions on or before the as-of date "
                                         "1900-01-01 .the first is dated 2011-01-10"):
        _prepare_tx(raw, as_of=date(1900, 1, 1))


@pytest.mark.parametrize(("with_order", "mode", "dropped"), [
    (True, "auto", 1), (False, "auto", 0), (False, "drop", 1), (True, "keep", 0)])
def test_identical_lines_dropped_only_when_an_order_id_proves_them_the_same(
        with_order: bool, mode: str, dropped: int) -> None:
    """Two identical lines without an order id are two purchases (a repeat purchase, or one
    order of two units written line by line): kept, and the choice is stated; with an order id
    they are the same line exported twice: dropped. ``duplicates`` in the config decides."""
    raw = _tx_raw()
    if not with_order:
        raw = raw.drop(columns="InvoiceNo")
    cfg = TableConfig(duplicates=mode)
    ledger = Ledger()
    tx = prepare_transactions(raw, cfg, file="tx.csv", ledger=ledger, as_of=AS_OF)
    src = ledger.sources["transactions"]
    assert src.excluded.get("duplicate row", 0) == dropped
    assert ("dropped as duplicates" if dropped else "kept as repeat purchases") in src.duplicates
    assert src.to_dict()["duplicates"] == src.duplicates
    notes = [w["message"] for w in ledger.warnings if w["category"] == "duplicates"]
    if dropped:
        assert notes == []
    else:
        assert len(notes) == 1 and "1 transaction lines identical" in notes[0], notes
        assert ((tx.frame["customer_id"] == "17850") & (tx.frame["amount"] == 6 * 2.55)).sum() == 2


def test_long_category_values_are_capped_and_stay_distinct() -> None:
    """One huge category value was copied into every output (a 50 MB cell made a 367 MB
    profiles.json): labels are capped at 80 characters, and two long values that start alike
    stay two levels."""
    from custseg.derive import MAX_LABEL_CHARS

    raw = _marketing(n=60)
    long_a, long_b = "Ä" * 5000 + "a", "Ä" * 5000 + "b"
    raw["Segment_Label"] = [long_a if i % 3 == 0 else long_b if i % 3 == 1 else "short"
                            for i in range(len(raw))]
    table, _ = _prepare_cu(raw)
    levels = table.frame["Segment_Label"].unique().tolist()
    assert len(levels) == 3 and "short" in levels
    assert max(len(v) for v in levels) <= MAX_LABEL_CHARS
    capped = sorted(v for v in levels if v != "short")
    assert all(v.startswith("Ä" * 70 + "\u2026") for v in capped) and capped[0] != capped[1]
