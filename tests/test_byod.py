"""Bring your own data: public customer and transaction tables custseg was not written against
(reproduced by ``tests/data/byod.py``; origins in ``tests/data/README.md``) and the shared real
tables segment with no config, with the roles a person would assign; ``custseg inspect`` writes
a config that reproduces them; renaming columns to synonyms does not change the segments."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from custseg.cli import app
from custseg.config import Config, TableConfig
from custseg.errors import InputError
from custseg.io.readers import read_table
from custseg.pipeline import run_segmentation
from custseg.roles import customer_inference, transaction_inference

HERE = Path(__file__).parent
_spec = importlib.util.spec_from_file_location("byod", HERE / "data" / "byod.py")
byod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(byod)

FAST = {"segmentation": {"k_max": 5, "bootstrap": 0, "n_init": 3}}

# the roles a person would assign (None: the column must play no role)
CUSTOMER_EXPECT = {
    "islr_credit": {"customer_id": "ID", "income": "Income", "age": "Age", "gender": "Gender",
                    "marital_status": "Married", "education": None},
    "islr_default": {"customer_id": "rownames", "income": "income"},
    "aer_creditcard": {"customer_id": "rownames", "income": "income", "age": "age",
                       "children": "dependents"},
    "telco_churn": {"customer_id": "customerID", "gender": "gender", "children": None},
    "german_credit": {"customer_id": None, "income": None, "age": "age_in_years",
                      "occupation": "job"},
    "mlc_churn": {"customer_id": "rownames"},
}
TRANSACTION_EXPECT = {
    "cdnow": {"customer_id": "customer_id", "timestamp": "date", "amount": "dollar_value",
              "quantity": "number_of_cds"},
    "cdnow_id_date": {"customer_id": "customer_id", "timestamp": "date", "amount": None},
    "sales_log": {"customer_id": "ClientKey", "timestamp": "txn_datetime",
                  "amount": "net_sales", "category": "sku_group", "discount": "promo_flag",
                  "is_return": "order_status"},
    "game_log": {"customer_id": "player_id", "timestamp": "event_time",
                 "amount": "revenue_usd", "channel": "platform", "quantity": "item_count"},
}


def _file(tmp_path: Path, name: str) -> Path:
    fn = byod.CUSTOMER_TABLES.get(name) or byod.TRANSACTION_LOGS[name]
    return byod.write(fn(), tmp_path / f"{name}.csv")


def _check_roles(roles: dict[str, str], expect: dict[str, str | None]) -> None:
    for role, col in expect.items():
        assert roles.get(role) == col, (role, roles)


@pytest.mark.parametrize("name", sorted(CUSTOMER_EXPECT))
def test_customer_tables_zero_config(tmp_path: Path, name: str) -> None:
    path = _file(tmp_path, name)
    raw = read_table(path)
    inf = customer_inference(list(raw.columns), TableConfig(), str(path), raw)
    _check_roles(inf.roles, CUSTOMER_EXPECT[name])
    result = run_segmentation(customers=path, config=Config.from_dict(FAST))
    summary = result.summary()
    cols = {c["column"]: c for c in summary["columns"]}
    # every input column is accounted for, each with a use and a reason
    assert set(raw.columns) <= set(cols)
    assert all(c["use"] in ("id", "feature", "derives", "profiled", "ignored") and c["reason"]
               for c in cols.values())
    model = set(result.features.model_columns)
    if "rownames" in raw.columns:  # row numbers are never clustered
        assert "rownames" not in model
        assert cols["rownames"]["use"] in ("id", "ignored")
    if inf.row_number_id:  # ... and a row-number id is said to be one
        assert "row numbers" in cols[inf.row_number_id]["reason"]
        assert any("holds row numbers" in w["message"] for w in summary["warnings"])


def test_row_numbers_are_not_features_when_an_id_exists(tmp_path: Path) -> None:
    result = run_segmentation(customers=_file(tmp_path, "islr_credit"),
                              config=Config.from_dict(FAST))
    assert result.features.frame.index[:3].tolist() == ["1", "10", "100"]  # from ID (text)
    assert "rownames" in result.ignored_columns
    assert "rownames" not in result.features.model_columns


def test_outcome_is_profiled_not_clustered(tmp_path: Path) -> None:
    result = run_segmentation(customers=_file(tmp_path, "telco_churn"),
                              config=Config.from_dict(FAST))
    f = result.features
    assert "Churn" in f.descriptive and "Churn" not in f.model_columns
    assert set(f.frame["Churn"].dropna().unique()) <= {0.0, 1.0}
    # Dependents is Yes/No: a category, not a count of children
    assert "children" not in f.frame.columns and "Dependents" in f.categorical


def test_german_credit_rate_is_not_income(tmp_path: Path) -> None:
    result = run_segmentation(customers=_file(tmp_path, "german_credit"),
                              config=Config.from_dict(FAST))
    assert "income" not in result.features.frame.columns
    cols = {c["column"]: c for c in result.summary()["columns"]}
    rate = cols["installment_rate_in_percentage_of_disposable_income"]
    assert rate["role"] != "income" and rate["use"] == "feature"
    assert cols["(row number)"]["use"] == "id"  # no id column: rows numbered, and said so


@pytest.mark.parametrize("name", sorted(TRANSACTION_EXPECT))
def test_transaction_logs_zero_config(tmp_path: Path, name: str) -> None:
    path = _file(tmp_path, name)
    raw = read_table(path)
    inf = transaction_inference(list(raw.columns), TableConfig(), str(path), raw)
    _check_roles(inf.roles, TRANSACTION_EXPECT[name])
    result = run_segmentation(transactions=path, config=Config.from_dict(FAST))
    assert {"recency_days", "frequency", "tenure_days"} <= set(result.features.model_columns)
    cols = {c["column"] for c in result.summary()["columns"]}
    assert set(raw.columns) <= cols


def test_log_without_amount_has_no_money_features(tmp_path: Path) -> None:
    result = run_segmentation(transactions=_file(tmp_path, "cdnow_id_date"),
                              config=Config.from_dict(FAST))
    f = result.features
    for money in ("monetary", "avg_order_value", "return_rate", "expected_spend", "clv"):
        assert money not in f.frame.columns  # absent, not zeros
    assert f.value_column is None
    assert any("no amount column" in w["message"] for w in result.summary()["warnings"])


def test_status_column_marks_returns(tmp_path: Path) -> None:
    path = _file(tmp_path, "sales_log")
    raw = read_table(path)
    result = run_segmentation(transactions=path, config=Config.from_dict(FAST))
    returned = raw["order_status"].isin(["returned", "cancelled"]).sum()
    assert returned > 0
    assert result.ledger.sources["transactions"].returns == returned
    assert result.features.frame["return_rate"].max() > 0


def test_close_candidates_stop_with_the_config_line(tmp_path: Path) -> None:
    raw = byod.sales_log()
    raw["gross_sales"] = (raw["net_sales"].astype(float) * 1.2).round(2).astype(str)
    path = byod.write(raw, tmp_path / "two_amounts.csv")
    with pytest.raises(InputError) as info:
        run_segmentation(transactions=path)
    msg = str(info.value)
    assert "'net_sales'" in msg and "'gross_sales'" in msg
    assert '[transactions.columns] amount = "net_sales"' in msg
    # the config line settles it
    cfg = Config.from_dict({"transactions": {"columns": {"amount": "gross_sales"}}, **FAST})
    result = run_segmentation(transactions=path, config=cfg)
    assert result.features.frame["monetary"].sum() > 0


def test_informative_column_left_unused_warns(tmp_path: Path) -> None:
    raw = byod.sales_log()
    raw["product_family"] = np.where(np.arange(len(raw)) % 3 == 0, "Fresh", "Dry")
    path = byod.write(raw, tmp_path / "two_categories.csv")
    result = run_segmentation(transactions=path, config=Config.from_dict(FAST))
    cols = {c["column"]: c for c in result.summary()["columns"]}
    assert cols["product_family"]["use"] == "ignored" and cols["product_family"]["reason"]
    warn = [w["message"] for w in result.ledger.warnings if w["category"] == "columns"]
    assert any("'product_family' looks informative" in w for w in warn), warn


# ------------------------------------------------------------------------- the shared tables

SHARED = {  # file -> (table, rows to read, roles a person would assign)
    "Mall_Customers.csv": ("customers", None, {"customer_id": "CustomerID", "age": "Age",
                                               "income": "Annual Income (k$)"}),
    "marketing_campaign.csv": ("customers", None, {"customer_id": "ID", "income": "Income",
                                                   "signup_date": "Dt_Customer"}),
    "wholesale_customers_data.csv": ("customers", None, {"customer_id": None}),
    "bank-full.csv.gz": ("customers", 3000, {"customer_id": None, "age": "age",
                                             "occupation": "job"}),
    "bank-additional-full.csv.gz": ("customers", 3000, {"customer_id": None, "age": "age"}),
    "online_retail.csv.gz": ("transactions", 20000, {
        "customer_id": "CustomerID", "order_id": "InvoiceNo", "timestamp": "InvoiceDate",
        "quantity": "Quantity", "unit_price": "UnitPrice", "amount": None}),
    "online_retail_II_2009-2010.csv.gz": ("transactions", 20000, {
        "customer_id": "Customer ID", "order_id": "Invoice", "timestamp": "InvoiceDate",
        "quantity": "Quantity", "unit_price": "Price"}),
}


def _shared(real_data: Path, file: str) -> pd.DataFrame:
    table, rows, _ = SHARED[file]
    frame = read_table(real_data / file)
    return frame.iloc[:rows] if rows else frame


@pytest.mark.realdata
@pytest.mark.parametrize("file", sorted(SHARED))
def test_shared_tables_zero_config(real_data: Path, file: str) -> None:
    table, _, expect = SHARED[file]
    frame = _shared(real_data, file)
    infer = customer_inference if table == "customers" else transaction_inference
    inf = infer(list(frame.columns), TableConfig(), file, frame)
    _check_roles(inf.roles, expect)
    result = run_segmentation(**{table: frame}, config=Config.from_dict(FAST))
    assert result.k >= 2
    assert {c["column"] for c in result.columns} >= set(frame.columns)
    if file.startswith("wholesale"):  # Channel / Region are codes: categories, zero-config
        assert {"Channel", "Region"} <= set(result.features.categorical)
    if file.startswith("bank"):  # the campaign outcome is profiled, never clustered
        assert "y" in result.features.descriptive
        assert "y" not in result.features.model_columns


# ------------------------------------------------------------------------- inspect round trip


@pytest.mark.parametrize("name, option", [("sales_log", "-t"), ("islr_default", None),
                                          ("german_credit", None), ("cdnow_id_date", "-t")])
def test_inspect_writes_a_config_that_reproduces_the_roles(tmp_path: Path, name: str,
                                                           option: str | None) -> None:
    path = _file(tmp_path, name)
    toml = tmp_path / "custseg.toml"
    args = ["inspect", *([option] if option else []), str(path), "--write-config", str(toml)]
    res = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "role" in res.output and "conf." in res.output
    tomllib.loads(toml.read_text())  # valid TOML
    cfg = Config.from_toml(toml)
    raw = read_table(path)
    table = "transactions" if option else "customers"
    infer = transaction_inference if option else customer_inference
    zero = infer(list(raw.columns), TableConfig(), str(path), raw)
    fixed = infer(list(raw.columns), getattr(cfg, table), str(path), raw)
    assert fixed.roles == zero.roles
    # segmenting with the written config gives the same segments as zero-config
    fast = Config.from_dict(FAST)
    a = run_segmentation(**{table: path}, config=fast)
    b = run_segmentation(config=cfg.model_copy(update={"segmentation": fast.segmentation}))
    assert a.assignments()[["customer_id", "segment_id"]].equals(
        b.assignments()[["customer_id", "segment_id"]])


def test_inspect_shows_the_table(tmp_path: Path) -> None:
    path = _file(tmp_path, "game_log")
    res = CliRunner().invoke(app, ["inspect", "-t", str(path)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    for needle in ("player_id", "customer_id", "0.85", "revenue_usd", "amount", "platform",
                   "channel", "missing", "distinct", "example"):
        assert needle in res.output, needle


def test_segment_prints_column_warnings(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["segment", "-t", str(_file(tmp_path, "cdnow_id_date")),
                                   "--out", str(tmp_path / "out"), "-q"])
    assert res.exit_code == 0, res.output
    assert "no amount column" in res.output


# ------------------------------------------------------------------------- renamed columns

SYNONYMS = {
    "CustomerID": ["CustomerID", "customer_id", "ClientKey", "client_id", "member_no", "CustID",
                   "Customer Number", "user id", "buyer_key"],
    "Gender": ["Gender", "sex", "SEX", "gender"],
    "Age": ["Age", "age", "age_years", "Age (years)"],
    "Annual Income (k$)": ["Annual Income (k$)", "income", "AnnualIncome", "salary",
                           "yearly_income_k"],
    "Spending Score (1-100)": ["Spending Score (1-100)", "score", "spending_score"],
    "InvoiceNo": ["InvoiceNo", "order_id", "invoice_number", "OrderNumber", "txn_id",
                  "receipt_no"],
    "StockCode": ["StockCode", "stock_code", "Stock Code"],
    "Description": ["Description", "description", "desc", "product_text"],
    "Quantity": ["Quantity", "qty", "units", "Qty", "n_units", "item_count"],
    "InvoiceDate": ["InvoiceDate", "order_date", "txn_datetime", "purchased_at", "timestamp",
                    "created"],
    "UnitPrice": ["UnitPrice", "unit_price", "price", "Price", "price_each"],
    "Country": ["Country", "country", "nation"],
}


def _rename(frame: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    # (never the original name: hypothesis would start from the first choice)
    names = {c: data.draw(st.sampled_from(SYNONYMS[c][1:]), label=c) for c in frame.columns}
    order = data.draw(st.permutations(list(frame.columns)), label="order")
    return frame[order].rename(columns=names)


def _segments(result) -> pd.Series:
    a = result.assignments()
    return a.set_index("customer_id")["segment_id"].sort_index()


@pytest.fixture(scope="module")
def renamed_sources(real_data: Path):
    mall = read_table(real_data / "Mall_Customers.csv")
    retail = pd.read_csv(real_data / "online_retail.csv.gz", nrows=6000, dtype=str)
    cfg = Config.from_dict({"segmentation": {"k": 4, "bootstrap": 0, "n_init": 3}})
    base = {"customers": (mall, _segments(run_segmentation(customers=mall, config=cfg))),
            "transactions": (retail, _segments(run_segmentation(transactions=retail,
                                                                config=cfg)))}
    return base, cfg


@pytest.mark.realdata
@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), table=st.sampled_from(["customers", "transactions"]))
def test_renamed_columns_give_the_same_segments(renamed_sources, data, table) -> None:
    base, cfg = renamed_sources
    frame, expected = base[table]
    renamed = _rename(frame, data)
    got = _segments(run_segmentation(**{table: renamed}, config=cfg))
    pd.testing.assert_series_equal(got, expected)


# ------------------------------------------------------------------------- the DuckDB path


def test_duckdb_path_infers_the_same_roles_and_features(tmp_path: Path) -> None:
    from custseg.pipeline import prepare_data

    path = _file(tmp_path, "sales_log")
    duck = prepare_data(transactions=path, config=Config.from_dict(
        {"segmentation": {"transactions_engine": "duckdb"}}))
    pandas = prepare_data(transactions=path, config=Config.from_dict(
        {"segmentation": {"transactions_engine": "pandas"}}))
    assert duck.transactions_engine == "duckdb" and pandas.transactions_engine == "pandas"
    assert duck.columns == pandas.columns
    pd.testing.assert_frame_equal(duck.features.frame, pandas.features.frame)


def test_duckdb_path_leaves_a_log_without_amounts_to_pandas(tmp_path: Path) -> None:
    from custseg.pipeline import prepare_data

    data = prepare_data(transactions=_file(tmp_path, "cdnow_id_date"), config=Config.from_dict(
        {"segmentation": {"transactions_engine": "duckdb"}}))
    assert data.transactions_engine == "pandas"
    assert "monetary" not in data.features.frame.columns


def test_feature_left_out_by_the_config_is_said_so(tmp_path: Path) -> None:
    cfg = Config.from_dict({"features": {"exclude": ["age"]}, **FAST})
    result = run_segmentation(customers=_file(tmp_path, "islr_credit"), config=cfg)
    age = next(c for c in result.summary()["columns"] if c["column"] == "Age")
    assert age["use"] == "profiled" and "[features]" in age["reason"]
