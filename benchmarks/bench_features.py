"""Feature engineering from a transactions file: custseg vs a pandas groupby vs one hand-written
DuckDB GROUP BY, on the same file (CSV and Parquet).

Data: 10,000,000 transaction lines of 1,000,000 customers (1,000,000 / 100,000 with
``--quick``) over two years, seeded: order id, customer id, timestamp, amount, quantity,
category (8), channel (4), discount flag; 2 % of the lines are returns (negative quantity) and
0.5 % have no customer id, like a real log.

* **custseg**: ``custseg.pipeline.prepare_data(transactions=FILE)``: reading, validation and
  cleaning with the full ledger (every excluded row kept with its reason), then every feature
  (recency, frequency, monetary, order value, tenure, gaps, return rate, discount share, items
  per order, category and channel shares), as a pandas frame. Large files are cleaned inside
  DuckDB (custseg.duck).
* **hand-written DuckDB**: one GROUP BY over the file with DuckDB's own type detection that
  computes the same feature set (:func:`hand_sql`: FILTER aggregates for the category and
  channel shares, levels known in advance) -- no validation, no ledger, no exclusions file.
* **DuckDB, RFM only** (information): a one-GROUP-BY floor with five core features.
* **pandas**: ``pd.read_csv`` then a groupby computing the core RFM features (recency,
  frequency, monetary, order value, tenure, return rate, discount share; no shares).

Each case runs in a fresh process (so imports and peak memory are its own); peak memory is the
process's maximum resident set size. Target: custseg within 1.5x of the hand-written query.

    python benchmarks/bench_features.py [--quick] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TARGET = 1.5
AS_OF = "2025-12-31"

CATEGORIES = ("Books", "Home", "Toys", "Garden", "Food", "Beauty", "Sports", "Tech")
CHANNELS = ("web", "app", "store", "phone")


def hand_sql(source: str) -> str:
    """What a data scientist would write for custseg's feature set in one GROUP BY (DuckDB types
    the file itself; no validation): recency, frequency, monetary, order value, tenure, mean gap,
    return rate, discount share, items per order, and the spend share of every category and the
    order share of every channel (levels known in advance)."""
    buy = "quantity > 0"
    cat = ",\n       ".join(
        f"sum(amount) FILTER (WHERE {buy} AND category = '{c}') / sum(amount) FILTER (WHERE {buy})"
        f" AS cat_share_{c.lower()}" for c in CATEGORIES)
    chan = ",\n       ".join(
        f"count(DISTINCT order_id) FILTER (WHERE {buy} AND channel = '{c}') / "
        f"count(DISTINCT order_id) FILTER (WHERE {buy}) AS chan_share_{c}" for c in CHANNELS)
    return f"""
SELECT customer_id,
       date_diff('day', CAST(max(timestamp) FILTER (WHERE {buy}) AS DATE), DATE '{AS_OF}')
           AS recency_days,
       count(DISTINCT order_id) FILTER (WHERE {buy}) AS frequency,
       sum(amount) AS monetary,
       sum(amount) FILTER (WHERE {buy}) / count(DISTINCT order_id) FILTER (WHERE {buy})
           AS avg_order_value,
       date_diff('day', CAST(min(timestamp) FILTER (WHERE {buy}) AS DATE), DATE '{AS_OF}')
           AS tenure_days,
       date_diff('second', min(timestamp) FILTER (WHERE {buy}), max(timestamp) FILTER (WHERE {buy}))
           / 86400.0 / nullif(count(DISTINCT order_id) FILTER (WHERE {buy}) - 1, 0) AS mean_gap_days,
       -sum(amount) FILTER (WHERE quantity < 0) / sum(amount) FILTER (WHERE {buy}) AS return_rate,
       count(DISTINCT order_id) FILTER (WHERE {buy} AND discount_used = 1)
           / count(DISTINCT order_id) FILTER (WHERE {buy}) AS discount_share,
       sum(quantity) FILTER (WHERE {buy}) / count(DISTINCT order_id) FILTER (WHERE {buy})
           AS items_per_order,
       {cat},
       {chan}
FROM {source}
WHERE customer_id IS NOT NULL
GROUP BY customer_id
"""


def generate(folder: Path, n_lines: int, n_customers: int, seed: int = 0, *,
             uniform: bool = False, csv: bool = True, parquet: bool = True) -> dict[str, Path]:
    """Write the log as CSV and/or Parquet (streamed in chunks, so generation fits in memory).

    Customers of orders are skewed (a few very active ones), or ``uniform``.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    cats = np.array(CATEGORIES)
    chans = np.array(CHANNELS)
    start = np.datetime64("2024-01-01T00:00:00")
    span = 730 * 86400
    csv_path, pq_path = folder / "transactions.csv", folder / "transactions.parquet"
    chunk = 1_000_000
    lines_per_order = 2
    csv_writer = pq_writer = None
    order_base = 0
    for lo in range(0, n_lines, chunk):
        m = min(chunk, n_lines - lo)
        n_orders = m // lines_per_order
        order = order_base + np.repeat(np.arange(n_orders), lines_per_order)[:m]
        order = np.concatenate([order, np.full(m - len(order), order_base + n_orders)])
        order_base += n_orders + 1
        # customers: skewed activity, each order belongs to one customer
        if uniform:
            cust_of_order = rng.integers(0, n_customers, n_orders + 1)
        else:
            cust_of_order = (rng.pareto(1.2, n_orders + 1) * n_customers / 8).astype(np.int64) \
                % n_customers
        cust = cust_of_order[order - order[0]]
        ts_order = start + rng.integers(0, span, n_orders + 1).astype("timedelta64[s]")
        ts = ts_order[order - order[0]]
        qty = rng.integers(1, 6, m)
        ret = rng.random(m) < 0.02
        qty = np.where(ret, -qty, qty)
        price = np.round(rng.gamma(2.0, 12.0, m) + 0.5, 2)
        ids = np.char.add("C", np.char.zfill(cust.astype(str), 7)).astype(object)
        ids[rng.random(m) < 0.005] = None
        table = pa.table({
            "order_id": pa.array(np.char.add("O", np.char.zfill(order.astype(str), 9))),
            "customer_id": pa.array(ids, type=pa.string()),
            "timestamp": pa.array(ts.astype("datetime64[s]")),
            "amount": pa.array(np.round(qty * price, 2)),
            "quantity": pa.array(qty),
            "category": pa.array(cats[rng.integers(0, len(cats), m)]),
            "channel": pa.array(chans[rng.integers(0, len(chans), m)]),
            "discount_used": pa.array((rng.random(m) < 0.2).astype(np.int64)),
        })
        if csv_writer is None and pq_writer is None:
            csv_writer = pacsv.CSVWriter(csv_path, table.schema) if csv else None
            pq_writer = pq.ParquetWriter(pq_path, table.schema) if parquet else None
        if csv_writer is not None:
            csv_writer.write_table(table)
        if pq_writer is not None:
            pq_writer.write_table(table)
    out = {}
    if csv_writer is not None:
        csv_writer.close()
        out["csv"] = csv_path
    if pq_writer is not None:
        pq_writer.close()
        out["parquet"] = pq_path
    return out


# ------------------------------------------------------------------------- cases (child process)


def _case_custseg(path: str) -> int:
    from custseg.config import Config
    from custseg.pipeline import prepare_data

    cfg = Config.model_validate({"segmentation": {"as_of": AS_OF, "on_invalid": "exclude"}})
    data = prepare_data(transactions=path, config=cfg)
    return len(data.features.frame)


RFM_SQL = """
SELECT customer_id,
       date_diff('day', CAST(max(timestamp) AS DATE), DATE '{as_of}') AS recency_days,
       count(DISTINCT order_id) AS frequency,
       sum(amount) AS monetary,
       date_diff('day', CAST(min(timestamp) AS DATE), DATE '{as_of}') AS tenure_days,
       avg(discount_used) AS discount_share
FROM {source}
WHERE customer_id IS NOT NULL
GROUP BY customer_id
"""


def _source(path: str) -> str:
    return f"read_parquet('{path}')" if path.endswith(".parquet") else f"read_csv('{path}')"


def _case_duckdb(path: str) -> int:
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    return len(con.execute(hand_sql(_source(path))).df())


def _case_duckdb_rfm(path: str) -> int:
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    return len(con.execute(RFM_SQL.format(as_of=AS_OF, source=_source(path))).df())


def _case_pandas(path: str) -> int:
    import pandas as pd

    df = (pd.read_parquet(path) if path.endswith(".parquet")
          else pd.read_csv(path, parse_dates=["timestamp"]))
    df = df[df["customer_id"].notna()]
    as_of = pd.Timestamp(AS_OF)
    buy = df[df["quantity"] > 0]
    g = df.groupby("customer_id")
    gb = buy.groupby("customer_id")
    out = pd.DataFrame({
        "recency_days": (as_of - g["timestamp"].max().dt.normalize()).dt.days,
        "frequency": gb["order_id"].nunique(),
        "monetary": g["amount"].sum(),
        "tenure_days": (as_of - g["timestamp"].min().dt.normalize()).dt.days,
        "discount_share": g["discount_used"].mean(),
    })
    gross = gb["amount"].sum()
    out["avg_order_value"] = gross / out["frequency"]
    out["return_rate"] = -df[df["quantity"] < 0].groupby("customer_id")["amount"].sum() / gross
    return len(out)


CASES = {"custseg": _case_custseg, "duckdb": _case_duckdb, "duckdb_rfm": _case_duckdb_rfm,
         "pandas": _case_pandas}


def _child(case: str, path: str) -> None:
    t0 = time.perf_counter()
    n = CASES[case](path)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak_bytes": peak, "customers": n}))


# --------------------------------------------------------------------------------------- runner


@dataclass
class FeatureCase:
    fmt: str
    case: str
    seconds: float
    peak_bytes: int
    customers: int


@dataclass
class FeaturesResult:
    n_lines: int
    n_customers: int
    cases: list[FeatureCase]

    def get(self, fmt: str, case: str) -> FeatureCase:
        return next(c for c in self.cases if c.fmt == fmt and c.case == case)

    def ratio(self, fmt: str) -> float:
        return self.get(fmt, "custseg").seconds / self.get(fmt, "duckdb").seconds


def run(quick: bool, log: Callable[[str], None], keep: Path | None = None,
        skip_pandas_csv: bool = False) -> FeaturesResult:
    n_lines, n_customers = (1_000_000, 100_000) if quick else (10_000_000, 1_000_000)
    with tempfile.TemporaryDirectory(prefix="custseg-features-") as tmp:
        work = keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        files = {"csv": work / "transactions.csv", "parquet": work / "transactions.parquet"}
        if not all(p.exists() for p in files.values()):
            log(f"features: writing {n_lines:,} lines of {n_customers:,} customers to {work}")
            files = generate(work, n_lines, n_customers)
        cases = []
        for fmt, path in files.items():
            for case in ("custseg", "duckdb", "duckdb_rfm", "pandas"):
                if case == "pandas" and fmt == "csv" and skip_pandas_csv:
                    continue
                log(f"features: {case} on {fmt} ...")
                proc = subprocess.run([sys.executable, __file__, "--child", case, str(path)],
                                      capture_output=True, text=True, check=True)
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                cases.append(FeatureCase(fmt, case, r["seconds"], r["peak_bytes"],
                                         r["customers"]))
                log(f"  {r['seconds']:.1f} s, peak {r['peak_bytes'] / 2**30:.2f} GiB, "
                    f"{r['customers']:,} customers")
        return FeaturesResult(n_lines, n_customers, cases)


def report(r: FeaturesResult) -> str:
    lines = [f"feature engineering, {r.n_lines:,} transaction lines of {r.n_customers:,} "
             "customers (seconds, peak memory):"]
    for c in r.cases:
        lines.append(f"  {c.fmt:8s} {c.case:8s} {c.seconds:7.1f} s  "
                     f"{c.peak_bytes / 2**30:6.2f} GiB  {c.customers:,} customers")
    for fmt in ("csv", "parquet"):
        lines.append(f"  {fmt}: custseg / hand-written DuckDB (same features) = {r.ratio(fmt):.2f} "
                     f"(target <= {TARGET})")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--keep", type=Path, default=None)
    p.add_argument("--child", nargs=2, metavar=("CASE", "FILE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        _child(*args.child)
        return
    r = run(args.quick, lambda m: print(m, file=sys.stderr, flush=True), args.keep)
    print(report(r))
    ok = all(r.ratio(f) <= TARGET for f in ("csv", "parquet"))
    print("PASS" if ok else "FAIL")


if __name__ == "__main__":
    main()
