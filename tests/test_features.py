"""Tests for custseg.features: exact per-customer features on constructed logs."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from custseg.cleaning import prepare_customers, prepare_transactions
from custseg.config import FeatureConfig, TableConfig
from custseg.errors import ConfigError, InputError
from custseg.features import build_features, transaction_features
from custseg.ledger import Ledger

AS_OF = date(2024, 1, 31)
TX_COLUMNS = ["customer_id", "order_id", "date", "amount", "quantity", "category", "channel",
              "discount"]
TX_ROWS = [
    # customer A: two orders (O1 has two lines), one cancellation
    ["A", "O1", "2024-01-01 10:00", "100", "2", "Books", "Web", "1"],
    ["A", "O1", "2024-01-01 10:00", "50", "1", "Toys", "Web", "0"],
    ["A", "O2", "2024-01-11 09:00", "50", "1", "Books", "Store", "0"],
    ["A", "C9", "2024-01-15 12:00", "-30", "-1", "Books", "Web", "0"],
    # customer B: one order
    ["B", "O3", "2024-01-21 18:00", "80", "4", "Toys", "Store", "0"],
    # customer C: only a cancellation
    ["C", "C10", "2024-01-05 08:00", "-20", "-1", "Books", "Web", "0"],
]


def _tx(rows=TX_ROWS, columns=TX_COLUMNS, as_of=AS_OF):
    ledger = Ledger()
    raw = pd.DataFrame(rows, columns=columns)
    tx = prepare_transactions(raw, TableConfig(), file="t.csv", ledger=ledger, as_of=as_of)
    return tx, ledger


def _features(cfg: FeatureConfig | None = None, rows=TX_ROWS):
    tx, ledger = _tx(rows)
    return build_features(None, tx, cfg or FeatureConfig(), ledger), ledger


def test_rfm_features_exact() -> None:
    ft, _ = _features()
    f = ft.frame
    assert f.index.tolist() == ["A", "B"]
    a, b = f.loc["A"], f.loc["B"]
    # A: last order 2024-01-11, first 2024-01-01; orders 150 + 50; 30 returned
    assert a["recency_days"] == 20.0
    assert a["frequency"] == 2.0
    assert a["monetary"] == 170.0
    assert a["avg_order_value"] == 100.0
    assert a["tenure_days"] == 30.0
    assert a["return_rate"] == pytest.approx(0.15)
    assert a["discount_share"] == 0.5  # O1 used a discount on one line, O2 none
    assert a["items_per_order"] == 2.0
    assert a["purchase_rate"] == 2.0
    assert a["mean_gap_days"] == pytest.approx(9 + 23 / 24)
    # B: one order of 80 on 2024-01-21
    assert (b["recency_days"], b["frequency"], b["monetary"], b["avg_order_value"]) == (
        10.0, 1.0, 80.0, 80.0)
    assert (b["tenure_days"], b["return_rate"], b["discount_share"]) == (10.0, 0.0, 0.0)
    assert b["purchase_rate"] == 1.0  # tenure counted as at least 30 days
    assert np.isnan(b["mean_gap_days"])
    assert ft.as_of == AS_OF
    assert ft.value_column == "monetary"


def test_category_and_channel_shares_exact() -> None:
    ft, _ = _features()
    f = ft.frame
    assert ft.groups == {"category_share": ["cat_share_books", "cat_share_toys"],
                         "channel_share": ["chan_share_web", "chan_share_store"]}
    # category shares by spend (returns not counted), channel shares by orders
    assert f.loc["A", ["cat_share_books", "cat_share_toys"]].tolist() == [0.75, 0.25]
    assert f.loc["B", ["cat_share_books", "cat_share_toys"]].tolist() == [0.0, 1.0]
    assert f.loc["A", ["chan_share_web", "chan_share_store"]].tolist() == [0.5, 0.5]
    assert f.loc["B", ["chan_share_web", "chan_share_store"]].tolist() == [0.0, 1.0]
    for cols in ft.groups.values():
        np.testing.assert_allclose(f[cols].sum(axis=1), 1.0)
    assert f["online_share"].tolist() == [0.5, 0.0]


def test_feature_kinds() -> None:
    ft, _ = _features()
    assert ft.numeric == ["recency_days", "frequency", "monetary", "avg_order_value",
                          "tenure_days", "return_rate", "discount_share", "cat_share_books",
                          "cat_share_toys", "chan_share_web", "chan_share_store"]
    assert ft.descriptive == ["purchase_rate", "mean_gap_days", "items_per_order", "online_share"]
    assert ft.binary == [] and ft.categorical == []
    assert ft.model_columns == ft.numeric


def test_returns_only_customer_excluded_with_reason() -> None:
    ft, ledger = _features()
    assert "C" not in ft.frame.index
    assert ledger.excluded_customers() == {"no purchases (only returns or cancellations)": 1}
    exc = ledger.excluded_frame()
    assert exc.loc[exc["source"] == "customer", "customer_id"].tolist() == ["C"]


def test_small_levels_become_other() -> None:
    rows = [*TX_ROWS, ["B", "O4", "2024-01-22 10:00", "10", "1", "Garden", "Store", "0"]]
    ft, _ = _features(FeatureConfig(min_category_share=0.05), rows=rows)
    f = ft.frame
    assert ft.groups["category_share"] == ["cat_share_books", "cat_share_toys", "cat_share_other"]
    assert f.loc["B", ft.groups["category_share"]].tolist() == pytest.approx([0.0, 80 / 90, 10 / 90])
    assert f.loc["A", "cat_share_other"] == 0.0


def test_single_level_gives_no_share_columns() -> None:
    ft, _ = _features(FeatureConfig(min_category_share=0.49))  # toys: 130 of 280
    assert ft.groups["category_share"] == []
    assert not any(c.startswith("cat_share_") for c in ft.frame.columns)


def test_transaction_features_without_optional_columns() -> None:
    rows = [r[:4] for r in TX_ROWS]
    tx, _ = _tx(rows=rows, columns=TX_COLUMNS[:4])
    out, groups = transaction_features(tx, FeatureConfig())
    assert groups == {}
    assert "discount_share" not in out.columns and "items_per_order" not in out.columns
    assert out.loc["A", "monetary"] == 170.0
    assert out.loc["A", "first_purchase_days"] == 30.0


# ------------------------------------------------------------------------------------ config


def test_config_include() -> None:
    ft, _ = _features(FeatureConfig(include=["monetary", "frequency", "purchase_rate"]))
    assert ft.numeric == ["frequency", "monetary", "purchase_rate"]
    assert "purchase_rate" not in ft.descriptive
    assert "recency_days" in ft.descriptive  # kept for profiling


def test_config_exclude() -> None:
    ft, _ = _features(FeatureConfig(exclude=["return_rate", "cat_share_toys"]))
    assert "return_rate" not in ft.numeric and "cat_share_toys" not in ft.numeric
    assert {"return_rate", "cat_share_toys"} <= set(ft.descriptive)
    assert "return_rate" in ft.frame.columns


@pytest.mark.parametrize(
    "cfg",
    [FeatureConfig(include=["monetary", "lifetime_value"]),
     FeatureConfig(exclude=["lifetime_value"]),
     FeatureConfig(weights={"lifetime_value": 2.0})],
)
def test_config_unknown_feature(cfg: FeatureConfig) -> None:
    with pytest.raises(ConfigError, match="unknown feature 'lifetime_value'") as info:
        _features(cfg)
    assert "available: recency_days, frequency, monetary" in str(info.value)


def test_config_excluding_everything() -> None:
    every = ["recency_days", "frequency", "monetary", "avg_order_value", "tenure_days",
             "return_rate", "discount_share", "cat_share_books", "cat_share_toys",
             "chan_share_web", "chan_share_store"]
    with pytest.raises(ConfigError, match="no features left"):
        _features(FeatureConfig(exclude=every))


# ------------------------------------------------------------------------------------ joins


def _customers(raw: pd.DataFrame, ledger: Ledger, as_of=AS_OF):
    return prepare_customers(raw, TableConfig(), file="c.csv", ledger=ledger, as_of=as_of)


def test_join_with_customers() -> None:
    tx, ledger = _tx()
    raw = pd.DataFrame({
        "customer_id": ["A", "B", "C", "D"],
        "signup_date": ["2023-12-01", "2024-01-25", "2024-01-01", "2024-01-02"],
        "gender": ["F", "M", "F", "M"],
        "income": ["50000", "60000", "55000", "52000"],
    })
    cust = _customers(raw, ledger)
    ft = build_features(cust, tx, FeatureConfig(), ledger)
    f = ft.frame
    assert f.index.tolist() == ["A", "B"]
    # tenure is from the first purchase or the sign-up, whichever is earlier
    assert f["tenure_days"].tolist() == [61.0, 10.0]
    assert f["income"].tolist() == [50000.0, 60000.0]
    assert ft.categorical == ["gender"]
    assert "income" in ft.numeric
    assert ledger.excluded_customers() == {"no purchases (only returns or cancellations)": 1,
                                          "no transactions": 1}
    exc = ledger.excluded_frame()
    assert exc.loc[exc["reason"] == "no transactions", "customer_id"].tolist() == ["D"]


def test_nothing_left_raises() -> None:
    rows = [TX_ROWS[5]]  # only C's cancellation
    tx, ledger = _tx(rows=rows)
    with pytest.raises(InputError, match="no customer is left"):
        build_features(None, tx, FeatureConfig(), ledger)


def test_pre_aggregated_marketing_columns() -> None:
    raw = pd.DataFrame({
        "ID": ["1", "2", "3"],
        "MntWines": ["30", "0", "0"],
        "MntMeatProducts": ["10", "50", "0"],
        "NumDealsPurchases": ["1", "3", "0"],
        "NumWebPurchases": ["2", "0", "1"],
        "NumStorePurchases": ["2", "2", "0"],
    })
    ledger = Ledger()
    cust = _customers(raw, ledger, as_of=None)
    ft = build_features(cust, None, FeatureConfig(), ledger)
    f = ft.frame
    assert f["monetary"].tolist() == [40.0, 50.0, 0.0]
    assert f["cat_share_wines"].tolist() == [0.75, 0.0, 0.0]
    assert f["cat_share_meat"].tolist() == [0.25, 1.0, 0.0]
    assert f["frequency"].tolist() == [4.0, 2.0, 1.0]  # deals are not a channel
    assert f["chan_share_web"].tolist() == [0.5, 0.0, 1.0]
    assert f["chan_share_store"].tolist() == [0.5, 1.0, 0.0]
    assert f["avg_order_value"].tolist() == [10.0, 25.0, 0.0]
    assert f["discount_share"].tolist() == [0.25, 1.0, 0.0]  # 3 deals / 2 purchases capped at 1
    assert f["online_share"].tolist() == [0.5, 0.0, 1.0]
    assert ft.groups == {"category_share": ["cat_share_wines", "cat_share_meat"],
                         "channel_share": ["chan_share_web", "chan_share_store"]}
    assert ft.numeric == ["monetary", "cat_share_wines", "cat_share_meat", "frequency",
                          "chan_share_web", "chan_share_store", "avg_order_value",
                          "discount_share"]
    assert ft.value_column == "monetary"
    assert not any(c.startswith("__raw__") for c in f.columns)


def _reference_shares(tx, pools: dict[str, list[str]], column: str) -> pd.DataFrame:
    """The definition, in plain pandas: per customer and level the spend (category) or the
    number of distinct orders (channel) of the purchase lines, summed over each pool's levels,
    over the customer's total."""
    lines = tx.frame[~tx.frame["is_return"]]
    if column == "category":
        per = lines.groupby(["customer_id", column])["amount"].sum()
    else:
        per = lines.groupby(["customer_id", column])["order_id"].nunique().astype("float64")
    wide = per.unstack(fill_value=0.0)
    out = pd.DataFrame({name: wide[[lv for lv in levels if lv in wide.columns]].sum(axis=1)
                        for name, levels in pools.items()})
    return out.div(out.sum(axis=1), axis=0).fillna(0.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shares_equal_the_plain_definition_with_pooling_and_multi_channel_orders(seed) -> None:
    """Shares come out of the one feature aggregation (per order, then per customer); they
    equal the per-level definition, with small levels pooled as "other" and orders whose
    lines span channels counted once in each of their channels."""
    rng = np.random.default_rng(seed)
    cats = ["Books", "Toys", "Home", "Garden", "Food", "Pets", "Art's", "Tech"]
    chans = ["Web", "Store", "App", "Phone", "Kiosk"]
    rows = []
    for _ in range(600):
        cust = f"K{rng.integers(0, 60):03d}"
        order = f"O{rng.integers(0, 250)}"  # orders repeat: several lines, several channels
        qty = int(rng.integers(1, 4)) * (-1 if rng.random() < 0.05 else 1)
        rows.append([cust, order, f"2024-01-{rng.integers(1, 29):02d} 10:00",
                     f"{qty * rng.uniform(1, 90):.2f}", str(qty),
                     rng.choice(cats, p=[.3, .25, .15, .1, .08, .06, .04, .02]),
                     rng.choice(chans, p=[.45, .3, .15, .07, .03]), "0"])
    # order ids are per customer in real logs (and one starting with "C" is a cancellation)
    rows = [[r[0], f"{r[0]}-{r[1]}", *r[2:]] for r in rows]
    tx, ledger = _tx(rows=rows)
    cfg = FeatureConfig(min_category_share=0.05, max_categories=4)
    out, groups = transaction_features(tx, cfg)
    for group, column, prefix in (("category_share", "category", "cat_share"),
                                  ("channel_share", "channel", "chan_share")):
        cols = groups[group]
        assert cols[-1] == f"{prefix}_other" and len(cols) == 5
        kept = {c.removeprefix(f"{prefix}_") for c in cols[:-1]}
        levels = cats if column == "category" else chans
        pools = {f"{prefix}_{lv.lower()}": [lv] for lv in levels if lv.lower() in kept}
        pools[f"{prefix}_other"] = [lv for lv in levels if lv.lower() not in kept]
        ref = _reference_shares(tx, pools, column)[cols]
        np.testing.assert_allclose(out.loc[ref.index, cols].to_numpy(), ref.to_numpy(),
                                   rtol=1e-12, atol=1e-15)
        assert np.allclose(out[cols].sum(axis=1), 1.0)
    # scoring: the model's columns, levels matched by slug, the rest (and unseen) pooled
    fixed = {"category_share": ["cat_share_books", "cat_share_toys", "cat_share_other",
                                "cat_share_gone"],
             "channel_share": ["chan_share_web", "chan_share_other"]}
    scored, sgroups = transaction_features(tx, cfg, fixed)
    assert sgroups == fixed
    assert list(scored.columns[-6:]) == [*fixed["category_share"], *fixed["channel_share"]]
    ref = _reference_shares(tx, {"cat_share_books": ["Books"], "cat_share_toys": ["Toys"],
                                 "cat_share_other": [c for c in cats if c not in ("Books", "Toys")]},
                            "category")
    np.testing.assert_allclose(scored.loc[ref.index, ref.columns].to_numpy(), ref.to_numpy(),
                               rtol=1e-12, atol=1e-15)
    assert (scored["cat_share_gone"] == 0.0).all()
    ref = _reference_shares(tx, {"chan_share_web": ["Web"],
                                 "chan_share_other": [c for c in chans if c != "Web"]}, "channel")
    np.testing.assert_allclose(scored.loc[ref.index, ref.columns].to_numpy(), ref.to_numpy(),
                               rtol=1e-12, atol=1e-15)
