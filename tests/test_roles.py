"""Tests for custseg.roles: which column plays which role (candidate names, config overrides)."""

from __future__ import annotations

import pandas as pd
import pytest

from custseg.config import TableConfig
from custseg.errors import ConfigError, InputError
from custseg.roles import (
    CUSTOMER_ROLES,
    TRANSACTION_ROLES,
    customer_inference,
    detect_roles,
    normalise,
    slug,
    transaction_inference,
)
from custseg.roles_infer import profile_column, tokens

ONLINE_RETAIL = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
                 "CustomerID", "Country"]
ONLINE_RETAIL_II = ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price",
                    "Customer ID", "Country"]
MARKETING = ["ID", "Year_Birth", "Education", "Marital_Status", "Income", "Kidhome", "Teenhome",
             "Dt_Customer", "Recency", "MntWines", "MntFruits", "MntMeatProducts",
             "MntFishProducts", "MntSweetProducts", "MntGoldProds", "NumDealsPurchases",
             "NumWebPurchases", "NumCatalogPurchases", "NumStorePurchases", "NumWebVisitsMonth",
             "AcceptedCmp3", "AcceptedCmp4", "AcceptedCmp5", "AcceptedCmp1", "AcceptedCmp2",
             "Complain", "Z_CostContact", "Z_Revenue", "Response"]


def test_normalise_and_slug() -> None:
    assert normalise("Customer ID") == "customerid"
    assert normalise("Annual Income (k$)") == "annualincomek"
    assert slug("Home & Garden") == "home_garden"
    assert slug("  ") == "blank"


# ------------------------------------------------------------------------------------ roles


def test_detect_roles_online_retail() -> None:
    roles = detect_roles(ONLINE_RETAIL, TRANSACTION_ROLES, TableConfig(), "online_retail.csv")
    assert roles == {"customer_id": "CustomerID", "order_id": "InvoiceNo",
                     "timestamp": "InvoiceDate", "quantity": "Quantity", "unit_price": "UnitPrice"}


def test_detect_roles_online_retail_ii() -> None:
    roles = detect_roles(ONLINE_RETAIL_II, TRANSACTION_ROLES, TableConfig(), "online_retail_II.csv")
    assert roles == {"customer_id": "Customer ID", "order_id": "Invoice",
                     "timestamp": "InvoiceDate", "quantity": "Quantity", "unit_price": "Price"}


def test_detect_roles_marketing_campaign() -> None:
    roles = detect_roles(MARKETING, CUSTOMER_ROLES, TableConfig(), "marketing_campaign.csv")
    assert roles == {"customer_id": "ID", "birth_year": "Year_Birth", "income": "Income",
                     "education": "Education", "marital_status": "Marital_Status",
                     "signup_date": "Dt_Customer", "recency_days": "Recency"}


def test_detect_roles_bare_id_is_not_a_transaction_customer_id() -> None:
    roles = detect_roles(["id", "client", "date", "total"], TRANSACTION_ROLES, TableConfig(), "t")
    assert roles["customer_id"] == "client"
    assert roles["amount"] == "total"
    assert "id" not in roles.values()


def test_detect_roles_substring_fallbacks() -> None:
    roles = detect_roles(["Shopper", "Household Income EUR", "Purchase_Date_Local"],
                         {**CUSTOMER_ROLES, "timestamp": []}, TableConfig(), "c")
    assert roles["income"] == "Household Income EUR"
    assert roles["timestamp"] == "Purchase_Date_Local"


def test_detect_roles_config_overrides() -> None:
    cfg = TableConfig(id="StockCode", columns={"amount": "UnitPrice"})
    roles = detect_roles(ONLINE_RETAIL, TRANSACTION_ROLES, cfg, "t.csv")
    assert roles["customer_id"] == "StockCode"
    assert roles["amount"] == "UnitPrice"
    # a column claimed by an override is not detected again for its usual role
    assert "unit_price" not in roles
    assert roles["order_id"] == "InvoiceNo"


def test_detect_roles_ignored_column_is_not_detected() -> None:
    cfg = TableConfig(ignore=["Income"])
    roles = detect_roles(MARKETING, CUSTOMER_ROLES, cfg, "m.csv")
    assert "income" not in roles


def test_detect_roles_unknown_role_lists_available() -> None:
    cfg = TableConfig(columns={"spend_total": "UnitPrice"})
    with pytest.raises(ConfigError, match="unknown column role 'spend_total'") as info:
        detect_roles(ONLINE_RETAIL, TRANSACTION_ROLES, cfg, "t.csv")
    assert "available roles:" in str(info.value)
    assert "unit_price" in str(info.value)
    assert str(info.value).startswith("t.csv:")


def test_detect_roles_missing_column_lists_columns_seen() -> None:
    cfg = TableConfig(columns={"amount": "Revenue"})
    with pytest.raises(ConfigError, match="'Revenue', which is not in the file") as info:
        detect_roles(ONLINE_RETAIL, TRANSACTION_ROLES, cfg, "t.csv")
    assert "columns seen: InvoiceNo, StockCode" in str(info.value)


# ------------------------------------------------------------------------------ inference


def test_tokens_split_snake_camel_space_digits() -> None:
    assert tokens("ClientKey") == ["client", "key"]
    assert tokens("txn_datetime") == ["txn", "datetime"]
    assert tokens("customerID") == ["customer", "id"]
    assert tokens("Annual Income (k$)") == ["annual", "income", "k"]
    assert tokens("AcceptedCmp3") == ["accepted", "cmp", "3"]
    assert tokens("Unnamed: 0") == ["unnamed", "0"]


def test_synonyms_by_tokens() -> None:
    cols = ["ClientKey", "txn_datetime", "net_sales", "sku_group", "promo_flag", "qty_units"]
    roles = detect_roles(cols, TRANSACTION_ROLES, TableConfig(), "t")
    assert roles == {"customer_id": "ClientKey", "timestamp": "txn_datetime",
                     "amount": "net_sales", "category": "sku_group", "discount": "promo_flag",
                     "quantity": "qty_units"}
    roles = detect_roles(["member_no", "age_in_years", "yearly_salary"], CUSTOMER_ROLES,
                         TableConfig(), "c")
    assert roles == {"customer_id": "member_no", "age": "age_in_years",
                     "income": "yearly_salary"}


def test_rate_or_percent_vetoes_income_and_amount() -> None:
    roles = detect_roles(["installment_rate_in_percentage_of_disposable_income", "share_income"],
                         CUSTOMER_ROLES, TableConfig(), "c")
    assert "income" not in roles


def test_content_vetoes_yes_no_dependents_as_children() -> None:
    raw = pd.DataFrame({"id": [f"C{i}" for i in range(40)],
                        "Dependents": ["Yes", "No"] * 20})
    inf = customer_inference(list(raw.columns), TableConfig(), "c", raw)
    assert "children" not in inf.roles
    raw["Dependents"] = [str(i % 4) for i in range(40)]  # a count: children
    assert customer_inference(list(raw.columns), TableConfig(), "c", raw).roles["children"] \
        == "Dependents"


def test_float_ids_are_integers_and_dates_are_recognised() -> None:
    p = profile_column("CustomerID", pd.Series([12346.0, 12347.0, None, 12348.0]))
    assert p.kind == "integer" and p.missing_share == 0.25
    p = profile_column("when", pd.Series(["2011-01-04 10:00", "2011-02-05 11:30"]))
    assert p.kind == "date"
    p = profile_column("d", pd.Series([19970101, 19970214, 19980301]))
    assert p.date_share == 1.0


def test_customer_id_needs_distinct_values_in_a_customers_table() -> None:
    raw = pd.DataFrame({"client": ["a", "a", "b", "b"] * 10, "age": list(range(20, 60))})
    inf = customer_inference(list(raw.columns), TableConfig(), "c", raw)
    assert "customer_id" not in inf.roles and inf.implicit_row_ids


def test_row_number_column_is_the_id_only_when_nothing_better_exists() -> None:
    n = 50
    raw = pd.DataFrame({"rownames": range(1, n + 1), "age": [30 + i % 40 for i in range(n)]})
    inf = customer_inference(list(raw.columns), TableConfig(), "c", raw)
    assert inf.roles["customer_id"] == "rownames" and inf.row_number_id == "rownames"
    raw["cust_id"] = [f"K{i}" for i in range(n)]
    inf = customer_inference(list(raw.columns), TableConfig(), "c", raw)
    assert inf.roles["customer_id"] == "cust_id" and inf.row_number_id is None
    assert inf.decisions["rownames"].hint == "row_number"


def test_close_candidates_for_a_required_role_stop_with_the_config_line() -> None:
    raw = pd.DataFrame({"client_key": ["a", "b"] * 5, "order_date": ["2024-01-01"] * 10,
                        "net_sales": ["1.5"] * 10, "gross_sales": ["2.0"] * 10})
    with pytest.raises(InputError) as info:
        transaction_inference(list(raw.columns), TableConfig(), "t.csv", raw)
    msg = str(info.value)
    assert "'net_sales'" in msg and "'gross_sales'" in msg and "confidence" in msg
    assert '[transactions.columns] amount = "net_sales"' in msg
    cfg = TableConfig(columns={"amount": "gross_sales"})  # the config settles it
    assert transaction_inference(list(raw.columns), cfg, "t.csv", raw).roles["amount"] \
        == "gross_sales"


def test_status_with_returned_values_is_the_returns_flag() -> None:
    raw = pd.DataFrame({"customer_id": ["a", "b"] * 5, "date": ["2024-01-01"] * 10,
                        "amount": ["3"] * 10, "status": ["completed"] * 8 + ["returned"] * 2})
    inf = transaction_inference(list(raw.columns), TableConfig(), "t", raw)
    assert inf.roles["is_return"] == "status"
    raw["status"] = ["shipped", "pending"] * 5  # no return values: not a returns flag
    assert "is_return" not in transaction_inference(list(raw.columns), TableConfig(), "t",
                                                    raw).roles


def test_profiling_mixed_timezones_and_odd_values_never_fails() -> None:
    p = profile_column("ts", pd.Series(["2024-01-01T10:00:00Z", "2024-01-02 11:00:00",
                                        "2024-01-03T09:00:00+02:00"]))
    assert p.kind == "date"
    p = profile_column("x", pd.Series(["1e400", "-inf", "nan", "", None]))
    assert p.kind in ("float", "text", "empty")
