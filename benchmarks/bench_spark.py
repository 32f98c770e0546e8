"""The Spark engine (local mode) against the local engine on the same synthetic transactions.

    python benchmarks/bench_spark.py            # 1,000,000 customers (~4M transaction lines)
    python benchmarks/bench_spark.py --quick    # 100,000 customers

Prints one table: case, Spark local-mode seconds, local engine seconds, ratio (Spark / local;
above 1 means Spark is slower). Both engines run the whole `custseg segment` job on the same
CSV with the same config; the cases split it into "read + clean + features" (per transaction
line, what Spark distributes) and "k + fit + profile" (per customer).

On one machine Spark pays a fixed cost per job (JVM, scheduling, Python workers) and moves data
between the JVM and Python; it cannot beat the local engine there. It pays off when the
transactions no longer fit one machine's memory (the local engine holds every line in pandas),
or when a cluster reads them in parallel from object storage: see README, "Running on Apache
Spark".
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

CATEGORIES = np.array(["Electronics", "Home", "Books", "Clothing", "Beauty", "Sports"])
CHANNELS = np.array(["web", "app", "store", "phone"])


def make_transactions(n_customers: int, path: Path, seed: int = 0) -> int:
    """Write a transactions CSV with four planted behaviour groups; returns the line count."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 4, n_customers)
    orders = 1 + rng.poisson(np.array([1.0, 3.0, 6.0, 0.5])[group])
    n = int(orders.sum())
    cust = np.repeat(np.arange(n_customers), orders)
    g = group[cust]
    base = np.datetime64("2025-01-01T00:00:00")
    recency_scale = np.array([300, 120, 40, 200])[g]
    secs = (365 * 86400 - rng.exponential(recency_scale * 86400)).clip(0, 365 * 86400 - 1)
    ts = base + secs.astype("int64").astype("timedelta64[s]")
    amount = np.round(rng.lognormal(np.array([3.0, 3.8, 4.5, 3.2])[g], 0.6), 2)
    returns = rng.random(n) < np.array([0.02, 0.04, 0.03, 0.25])[g]
    order_id = np.char.add(np.where(returns, "C", "O"), np.arange(n).astype(str))
    table = pa.table({
        "order_id": order_id,
        "customer_id": np.char.add("C", cust.astype(str)),
        "timestamp": pd.Series(ts).dt.strftime("%Y-%m-%d %H:%M:%S").to_numpy(),
        "amount": np.where(returns, -amount, amount),
        "quantity": 1 + rng.poisson(np.array([0.5, 1.0, 2.0, 0.5])[g]),
        "category": CATEGORIES[(rng.integers(0, 3, n) + g) % len(CATEGORIES)],
        "channel": CHANNELS[(rng.integers(0, 2, n) + g) % len(CHANNELS)],
    })
    pacsv.write_csv(table, path)
    return n


def _split(timings: dict[str, float]) -> tuple[float, float]:
    prep = sum(timings.get(s, 0.0) for s in ("read", "clean", "features"))
    model = sum(timings.get(s, 0.0) for s in ("preprocess", "choose k", "fit", "profile"))
    return prep, model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100,000 customers instead of 1M")
    ap.add_argument("--customers", type=int, default=None)
    ap.add_argument("--master", default="local[*]")
    ap.add_argument("--driver-memory", default="8g")
    args = ap.parse_args()
    n = args.customers or (100_000 if args.quick else 1_000_000)

    from sklearn.metrics import adjusted_rand_score

    from custseg.config import Config
    from custseg.pipeline import run_segmentation
    from custseg.spark import get_session, run_segmentation_spark

    cfg = Config()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "transactions.csv"
        t0 = time.perf_counter()
        lines = make_transactions(n, path)
        print(f"{n:,} customers, {lines:,} transaction lines "
              f"({path.stat().st_size / 1e6:.0f} MB CSV, written in "
              f"{time.perf_counter() - t0:.1f} s); {os.cpu_count()} CPUs", flush=True)

        t0 = time.perf_counter()
        local = run_segmentation(transactions=path, config=cfg)
        local_total = time.perf_counter() - t0
        print(f"local engine: {local_total:.1f} s, k={local.k}", flush=True)

        t0 = time.perf_counter()
        spark = get_session(args.master, conf={
            "spark.driver.memory": args.driver_memory, "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": str(max(4, 2 * (os.cpu_count() or 2)))})
        start = time.perf_counter() - t0
        t0 = time.perf_counter()
        sp = run_segmentation_spark(transactions=path, config=cfg, spark=spark)
        spark_total = time.perf_counter() - t0
        print(f"spark engine: {spark_total:.1f} s (+{start:.1f} s to start Spark), k={sp.k}",
              flush=True)

    a = pd.Series(local.labels, index=local.features.frame.index)
    b = pd.Series(sp.labels, index=sp.features.frame.index).loc[a.index]
    ari = adjusted_rand_score(a, b)
    (lp, lm), (sp_p, sp_m) = _split(local.timings), _split(sp.timings)
    rows = [
        ("read + clean + features", sp_p, lp),
        ("k + fit + profile", sp_m, lm),
        ("whole job (without Spark start-up)", spark_total, local_total),
    ]
    print()
    print(f"| case ({n:,} customers, {lines:,} lines) | spark local-mode s | local engine s "
          f"| ratio |")
    print("|---|---|---|---|")
    for case, s, loc in rows:
        print(f"| {case} | {s:.1f} | {loc:.1f} | {s / loc:.1f}x |")
    print(f"\nsame k: {sp.k == local.k} (k={local.k}); adjusted Rand index {ari:.3f}; "
          f"Spark start-up {start:.1f} s")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
