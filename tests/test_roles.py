"""Tests for custseg.roles: which column plays which role (candidate names, config overrides)."""

from __future__ import annotations

import pytest

from custseg.config import TableConfig
from custseg.errors import ConfigError
from custseg.roles import CUSTOMER_ROLES, TRANSACTION_ROLES, detect_roles, normalise, slug

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
