"""Per-customer features: transactions aggregated in DuckDB SQL, joined with demographics.

One row per customer. Each feature has one definition (:data:`DEFINITIONS`), shown in the report.
Features in :attr:`FeatureTable.model_numeric` etc. go into the model; ``descriptive`` ones are
only profiled (they repeat model features in another form, e.g. purchase rate vs. frequency).

Money is summed as DECIMAL(38, 6), exactly: a floating-point sum split across DuckDB's threads
can differ in its last bits from run to run, and the same input must give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import duckdb
import numpy as np
import pandas as pd

from custseg.config import FeatureConfig
from custseg.errors import ConfigError, InputError
from custseg.schema import CustomerTable, Ledger, TransactionTable, slug

DEFINITIONS: dict[str, str] = {
    "recency_days": "days from the customer's last purchase to the as-of date",
    "frequency": "number of distinct orders (returns and cancellations not counted)",
    "monetary": "total spend net of returns and cancellations",
    "avg_order_value": "gross spend per order",
    "tenure_days": "days from the first purchase (or sign-up, if earlier) to the as-of date",
    "purchase_rate": "orders per 30 days of tenure (tenure counted as at least 30 days)",
    "mean_gap_days": "mean days between consecutive orders (customers with 2+ orders)",
    "return_rate": "share of gross spend returned or cancelled",
    "discount_share": "share of orders that used a discount",
    "items_per_order": "mean units per order",
    "online_share": "share of orders (or purchases) through web, app or other online channels",
    "age": "age in years at the as-of date",
    "income": "income as given (absurd values set to missing)",
    "education_level": "education as an ordered level: 0 basic … 3 bachelor … 5 doctorate",
    "children": "number of children in the household",
    "household_size": "people in the household",
}
DESCRIPTIVE_ONLY = {"purchase_rate", "mean_gap_days", "items_per_order", "online_share"}
ONLINE_CHANNELS = ("web", "app", "online", "internet", "mobile", "ecommerce", "website", "catalog")


@dataclass
class FeatureTable:
    """Engineered features, one row per customer (index ``customer_id``)."""

    frame: pd.DataFrame
    numeric: list[str]
    binary: list[str]
    categorical: list[str]
    descriptive: list[str]
    as_of: date | None
    value_column: str | None
    definitions: dict[str, str] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)  # e.g. category_share -> columns

    @property
    def model_columns(self) -> list[str]:
        return [*self.numeric, *self.binary, *self.categorical]


_TX_SQL = """
WITH lines AS (SELECT * EXCLUDE (amount), CAST(amount AS DECIMAL(38, 6)) AS amount FROM tx),
orders AS (
    SELECT customer_id, order_id,
           min(ts) AS ts,
           sum(amount) AS amount,
           {qty_agg} AS units,
           {disc_agg} AS discount
    FROM lines WHERE NOT is_return
    GROUP BY customer_id, order_id
),
returns AS (
    SELECT customer_id, -sum(amount) AS returned FROM lines WHERE is_return GROUP BY customer_id
),
base AS (
    SELECT customer_id,
           count(*) AS frequency,
           sum(amount) AS gross,
           min(ts) AS first_ts,
           max(ts) AS last_ts,
           avg(discount) AS discount_share,
           avg(units) AS items_per_order
    FROM orders GROUP BY customer_id
)
SELECT b.customer_id,
       CAST(date_diff('day', CAST(b.last_ts AS DATE), $as_of) AS DOUBLE) AS recency_days,
       CAST(b.frequency AS DOUBLE) AS frequency,
       CAST(b.gross - coalesce(r.returned, 0) AS DOUBLE) AS monetary,
       CAST(b.gross AS DOUBLE) / b.frequency AS avg_order_value,
       CAST(date_diff('day', CAST(b.first_ts AS DATE), $as_of) AS DOUBLE) AS first_purchase_days,
       CASE WHEN b.frequency > 1
            THEN date_diff('second', b.first_ts, b.last_ts) / 86400.0 / (b.frequency - 1) END
            AS mean_gap_days,
       least(CAST(coalesce(r.returned, 0) AS DOUBLE) / CAST(b.gross AS DOUBLE), 1.0) AS return_rate,
       b.discount_share,
       b.items_per_order
FROM base b LEFT JOIN returns r USING (customer_id)
ORDER BY b.customer_id
"""

_SHARE_SQL = """
SELECT customer_id, {key} AS level, CAST({measure} AS DOUBLE) AS v
FROM tx WHERE NOT is_return
GROUP BY customer_id, {key}
"""


def _levels(con: duckdb.DuckDBPyConnection, column: str, cfg: FeatureConfig) -> list[str]:
    """The most important levels of a category column (by spend), the rest become 'other'."""
    rows = con.execute(
        f"SELECT {column} AS level, CAST(sum(CAST(amount AS DECIMAL(38, 6))) AS DOUBLE) AS s "
        f"FROM tx WHERE NOT is_return "
        f"GROUP BY 1 ORDER BY s DESC, level"
    ).fetchall()
    total = sum(r[1] for r in rows) or 1.0
    keep = [r[0] for r in rows if r[1] / total >= cfg.min_category_share][: cfg.max_categories]
    return keep


def _shares(con: duckdb.DuckDBPyConnection, column: str, prefix: str, measure: str,
            cfg: FeatureConfig, fixed: list[str] | None = None) -> pd.DataFrame:
    """Share of each level per customer. ``fixed`` (scoring) gives the model's columns: levels
    are matched by their slug, others pooled as "other", and every model column is present."""
    if fixed is not None:
        long = con.execute(_SHARE_SQL.format(key=column, measure=measure)).df()
        known = {c.removeprefix(f"{prefix}_") for c in fixed}
        slugs = long["level"].map(slug)
        long["level"] = slugs.where(slugs.isin(known), "other")
        wide = long.pivot_table(index="customer_id", columns="level", values="v", aggfunc="sum",
                                fill_value=0.0)
        wide = wide.div(wide.sum(axis=1).replace(0, np.nan), axis=0).fillna(0.0)
        wide.columns = [f"{prefix}_{c}" for c in wide.columns]
        return wide.reindex(columns=fixed, fill_value=0.0)
    levels = _levels(con, column, cfg)
    if len(levels) < 2:
        return pd.DataFrame()
    long = con.execute(_SHARE_SQL.format(key=column, measure=measure)).df()
    long["level"] = long["level"].where(long["level"].isin(levels), "other")
    wide = long.pivot_table(index="customer_id", columns="level", values="v", aggfunc="sum",
                            fill_value=0.0)
    wide = wide.div(wide.sum(axis=1).replace(0, np.nan), axis=0).fillna(0.0)
    order = [lv for lv in levels if lv in wide.columns] + (["other"] if "other" in wide.columns else [])
    wide = wide[order]
    wide.columns = [f"{prefix}_{slug(c)}" for c in wide.columns]
    return wide


def transaction_features(tx: TransactionTable, cfg: FeatureConfig,
                         fixed_groups: dict[str, list[str]] | None = None,
                         ) -> tuple[pd.DataFrame, dict]:
    """Aggregate clean transaction lines into one row of behaviour per customer (DuckDB SQL).

    ``fixed_groups`` (scoring) names the model's category and channel share columns.
    """
    fixed_groups = fixed_groups or {}
    frame = tx.frame
    con = duckdb.connect()
    try:
        con.execute("SET threads TO 2")
        con.execute("SET enable_progress_bar = false")
        con.register("tx", frame)
        has_qty = "quantity" in frame.columns
        has_disc = "discount" in frame.columns
        sql = _TX_SQL.format(
            qty_agg="sum(quantity)" if has_qty else "NULL",
            disc_agg="max(discount)" if has_disc else "NULL",
        )
        base = con.execute(sql, {"as_of": tx.as_of}).df().set_index("customer_id")
        groups: dict[str, list[str]] = {}
        parts = [base]
        if "category" in frame.columns:
            cat = _shares(con, "category", "cat_share", "sum(CAST(amount AS DECIMAL(38, 6)))", cfg,
                          fixed_groups.get("category_share"))
            parts.append(cat)
            groups["category_share"] = list(cat.columns)
        if "channel" in frame.columns:
            ch = _shares(con, "channel", "chan_share", "count(DISTINCT order_id)", cfg,
                         fixed_groups.get("channel_share"))
            parts.append(ch)
            groups["channel_share"] = list(ch.columns)
    finally:
        con.close()
    out = parts[0].join(parts[1:], how="left") if len(parts) > 1 else parts[0]
    for cols in groups.values():
        out[cols] = out[cols].fillna(0.0)
    if not has_qty:
        out = out.drop(columns="items_per_order")
    if not has_disc:
        out = out.drop(columns="discount_share")
    out.index = out.index.astype(object)
    return out, groups


def _online_share(frame: pd.DataFrame, channel_cols: list[str], prefix: str) -> pd.Series | None:
    online = [c for c in channel_cols if c.removeprefix(prefix).strip("_") in ONLINE_CHANNELS]
    if not online or len(online) == len(channel_cols):
        return None
    return frame[online].sum(axis=1)


def build_features(customers: CustomerTable | None, transactions: TransactionTable | None,
                   cfg: FeatureConfig, ledger: Ledger,
                   fixed_groups: dict[str, list[str]] | None = None) -> FeatureTable:
    """Join demographics and behaviour into one feature table and decide which features to model.

    Customers present in one table but not the other, or with no purchases, are excluded here with
    a reason (recorded in the ledger), so every customer is accounted for.
    """
    numeric: list[str] = []
    binary: list[str] = []
    categorical: list[str] = []
    descriptive: list[str] = []
    groups: dict[str, list[str]] = {}
    definitions = dict(DEFINITIONS)
    value_column: str | None = None
    as_of = transactions.as_of if transactions is not None else None

    if transactions is not None:
        beh, groups = transaction_features(transactions, cfg, fixed_groups)
        seen = pd.Index(transactions.frame["customer_id"].unique())
        no_purchase = seen.difference(beh.index)
        ledger.exclude_customers(sorted(no_purchase), "no purchases (only returns or cancellations)")
        numeric += ["recency_days", "frequency", "monetary", "avg_order_value", "tenure_days",
                    "return_rate"]
        if "discount_share" in beh.columns:
            numeric.append("discount_share")
        for cols in groups.values():
            numeric += cols
        descriptive += ["purchase_rate", "mean_gap_days"]
        if "items_per_order" in beh.columns:
            descriptive.append("items_per_order")
        value_column = "monetary"
    if customers is not None:
        demo = customers.frame.copy()
        if transactions is not None:
            no_tx = demo.index.difference(beh.index)
            # customers excluded for "no purchases" above are already accounted for
            no_tx = no_tx.difference(pd.Index(transactions.frame["customer_id"].unique()))
            ledger.exclude_customers(sorted(no_tx), "no transactions")
            frame = beh.join(demo, how="inner")
        else:
            frame = demo
        numeric += [c for c in customers.numeric if c not in numeric]
        binary += customers.binary
        categorical += customers.categorical
        frame, pre = _pre_aggregated(frame, customers, groups)
        numeric += [c for c in pre if c not in numeric]
        if transactions is None and "monetary" in frame.columns:
            value_column = "monetary"
    else:
        frame = beh

    if transactions is not None:
        first = frame["first_purchase_days"]
        if "signup_date" in frame.columns and as_of is not None:
            since = (pd.Timestamp(as_of) - frame["signup_date"]).dt.days.astype("float64")
            frame["tenure_days"] = np.fmax(first, since)
        else:
            frame["tenure_days"] = first
        frame["purchase_rate"] = frame["frequency"] / np.maximum(frame["tenure_days"], 30) * 30
        frame = frame.drop(columns="first_purchase_days")
    elif customers is not None and "signup_date" in frame.columns:
        as_of = frame["signup_date"].max().date()
        frame["tenure_days"] = (pd.Timestamp(as_of) - frame["signup_date"]).dt.days.astype("float64")
        numeric.append("tenure_days")

    chan = groups.get("channel_share", [])
    online = _online_share(frame, chan, "chan_share")
    if online is not None:
        frame["online_share"] = online
        descriptive.append("online_share")

    if len(frame) == 0:
        raise InputError("no customer is left to segment after cleaning; see excluded.csv",
                         file=(customers or transactions).file)  # type: ignore[union-attr]

    # ---- selection from the config
    all_model = [*numeric, *binary, *categorical]
    requested = set(cfg.include) if cfg.include is not None else set(all_model)
    for name in [*requested, *cfg.exclude, *cfg.weights]:
        if name not in frame.columns:
            raise ConfigError(f"[features] names unknown feature '{name}'; available: "
                              f"{', '.join(all_model + descriptive)}")
    if cfg.include is not None:
        # an explicitly requested descriptive feature becomes a model feature
        for name in cfg.include:
            if name in descriptive:
                descriptive.remove(name)
                numeric.append(name)
    drop = set(cfg.exclude) | (set(all_model) - requested)
    numeric = [c for c in numeric if c not in drop]
    binary = [c for c in binary if c not in drop]
    categorical = [c for c in categorical if c not in drop]
    descriptive += [c for c in all_model if c in drop and c in frame.columns
                    and c not in categorical and pd.api.types.is_numeric_dtype(frame[c])]
    if not (numeric or binary or categorical):
        raise ConfigError("no features left to segment on after [features] include/exclude")
    frame = frame.sort_index()
    return FeatureTable(frame=frame, numeric=numeric, binary=binary, categorical=categorical,
                        descriptive=descriptive, as_of=as_of, value_column=value_column,
                        definitions=definitions, groups=groups)


def _pre_aggregated(frame: pd.DataFrame, customers: CustomerTable,
                    groups: dict[str, list[str]]) -> tuple[pd.DataFrame, list[str]]:
    """Turn per-category spend and per-channel purchase counts into the same features that
    transactions give (monetary, frequency, shares, discount share).

    Returns the frame without the raw columns, and the names of the new model columns.
    """
    frame = frame.copy()
    new: list[str] = []
    spend = {lv: f"__raw__{c}" for lv, c in customers.category_spend.items()}
    buys = {lv: f"__raw__{c}" for lv, c in customers.channel_purchases.items()}
    if spend and "monetary" not in frame.columns:
        total = frame[list(spend.values())].sum(axis=1)
        frame["monetary"] = total
        new.append("monetary")
        cols = []
        for lv, c in spend.items():
            name = f"cat_share_{lv}"
            frame[name] = (frame[c] / total.replace(0, np.nan)).fillna(0.0)
            cols.append(name)
        groups["category_share"] = cols
        new += cols
    if buys and "frequency" not in frame.columns:
        freq = frame[list(buys.values())].sum(axis=1)
        frame["frequency"] = freq
        new.append("frequency")
        cols = []
        for lv, c in buys.items():
            name = f"chan_share_{lv}"
            frame[name] = (frame[c] / freq.replace(0, np.nan)).fillna(0.0)
            cols.append(name)
        groups["channel_share"] = cols
        new += cols
        if "monetary" in frame.columns:
            frame["avg_order_value"] = frame["monetary"] / freq.replace(0, np.nan)
            new.append("avg_order_value")
        if customers.deal_purchases:
            deals = frame[f"__raw__{customers.deal_purchases}"]
            frame["discount_share"] = (deals / freq.replace(0, np.nan)).clip(upper=1.0)
            new.append("discount_share")
    raw_cols = [c for c in frame.columns if c.startswith("__raw__")]
    return frame.drop(columns=raw_cols), new
