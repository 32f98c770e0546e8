"""Auto-k end to end: ``custseg segment`` vs the careful scikit-learn recipe, from the same CSV.

Data: 1,000,000 customers (200,000 with ``--quick``) x 16 numeric features in 5 planted
segments of unequal size (shares 35 / 25 / 20 / 12 / 8 %), written once (seeded) as a CSV with a
``customer_id`` column and 4 decimals, like an export from a warehouse.

* **reference** (a fresh Python process, as a user's script would run):
  ``pandas.read_csv`` -> ``StandardScaler`` -> ``KMeans(n_init=10, random_state=0)`` for
  k = 2..10 -> ``silhouette_score(sample_size=20000, random_state=0)`` for each -> the k with the
  best silhouette, and its labels.
* **custseg**: the CLI, ``custseg segment FILE --out DIR --quiet`` (a fresh process): reading,
  validation, features, k selection with evidence, the final fit, profiles, names, the HTML
  report, segments.csv, the saved model -- everything a run produces.

Both run under one BLAS/OpenMP thread (``OMP_NUM_THREADS=1`` etc.): on this 2-core machine two
threads were slower for K-Means (see README.md). Reported: wall time of each (one run each: the
reference takes minutes), the speed ratio, whether k agrees, and the adjusted Rand index of
custseg's segments against the reference's labels (matched by customer id).

    python benchmarks/bench_autok.py [--quick] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHARES = (0.35, 0.25, 0.20, 0.12, 0.08)
N_FEATURES, SEED = 16, 0
TARGET_SPEEDUP, TARGET_ARI = 10.0, 0.99

REFERENCE = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np, pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler
path, out = sys.argv[1], sys.argv[2]
df = pd.read_csv(path)
X = StandardScaler().fit_transform(df.drop(columns="customer_id").to_numpy())
best = None
for k in range(2, 11):
    km = KMeans(n_clusters=k, n_init=10, random_state=0).fit(X)
    s = silhouette_score(X, km.labels_, sample_size=20000, random_state=0)
    print(f"k={k} silhouette={s:.4f}", file=sys.stderr, flush=True)
    if best is None or s > best[1]:
        best = (k, s, km.labels_)
np.save(out + ".npy", best[2])
json.dump({"k": best[0], "silhouette": best[1], "seconds": time.perf_counter() - t0},
          open(out + ".json", "w"))
"""


@dataclass
class AutoKResult:
    n: int
    custseg_s: float
    reference_s: float
    custseg_k: int
    reference_k: int
    ari: float
    timings: dict[str, float]

    @property
    def speedup(self) -> float:
        return self.reference_s / self.custseg_s

    @property
    def passed(self) -> bool:
        return (self.speedup >= TARGET_SPEEDUP and self.custseg_k == self.reference_k
                and self.ari >= TARGET_ARI)


def generate(path: Path, n: int, seed: int = SEED) -> np.ndarray:
    """Write the planted-segments CSV; returns the planted labels."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    centres = rng.uniform(-4, 4, size=(len(SHARES), N_FEATURES))
    labels = rng.choice(len(SHARES), size=n, p=SHARES)
    X = centres[labels] + rng.normal(0.0, 1.6, size=(n, N_FEATURES))
    cols = {"customer_id": pa.array(np.arange(1, n + 1))}
    for j in range(N_FEATURES):
        cols[f"f{j}"] = pa.array(np.round(X[:, j], 4))
    pacsv.write_csv(pa.table(cols), path)
    return labels


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    return env


def run(quick: bool, log: Callable[[str], None], keep: Path | None = None) -> AutoKResult:
    n = 200_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="custseg-autok-") as tmp:
        work = keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        csv = work / f"customers_{n}.csv"
        log(f"autok: writing {n:,} x {N_FEATURES} planted customers to {csv}")
        generate(csv, n)
        custseg = Path(sys.executable).with_name("custseg")
        out = work / "custseg-out"
        log("autok: custseg segment ...")
        t0 = time.perf_counter()
        subprocess.run([str(custseg), "segment", str(csv), "--out", str(out), "--quiet"],
                       check=True, env=_env())
        custseg_s = time.perf_counter() - t0
        summary = json.loads((out / "summary.json").read_text())
        log(f"autok: custseg {custseg_s:.1f} s, k={summary['k']}; reference (several minutes) ...")
        ref = work / "reference"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", REFERENCE, str(csv), str(ref)], check=True,
                       env=_env())
        reference_s = time.perf_counter() - t0
        ref_info = json.loads(ref.with_suffix(".json").read_text())
        ref_labels = np.load(ref.with_suffix(".npy"))
        import pandas as pd
        from sklearn.metrics import adjusted_rand_score

        seg = pd.read_csv(out / "segments.csv", usecols=["customer_id", "segment_id"])
        seg = seg.set_index("customer_id")["segment_id"].reindex(np.arange(1, n + 1))
        ari = float(adjusted_rand_score(ref_labels, seg.to_numpy()))
        log(f"autok: reference {reference_s:.1f} s, k={ref_info['k']}; ARI {ari:.4f}")
        return AutoKResult(n=n, custseg_s=custseg_s, reference_s=reference_s,
                           custseg_k=int(summary["k"]), reference_k=int(ref_info["k"]), ari=ari,
                           timings=summary.get("timings", {}))


def report(r: AutoKResult) -> str:
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in r.timings.items())
    return (f"auto-k end to end, {r.n:,} customers x {N_FEATURES} features (same CSV):\n"
            f"  custseg segment   {r.custseg_s:7.1f} s  k={r.custseg_k}  ({stages})\n"
            f"  scikit-learn ref  {r.reference_s:7.1f} s  k={r.reference_k}\n"
            f"  speed-up {r.speedup:.1f}x (target >= {TARGET_SPEEDUP:g}x), same k: "
            f"{r.custseg_k == r.reference_k}, ARI vs reference labels {r.ari:.4f} "
            f"(target >= {TARGET_ARI})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--keep", type=Path, default=None, help="keep the CSV and outputs here")
    args = p.parse_args()
    r = run(args.quick, lambda m: print(m, file=sys.stderr, flush=True), args.keep)
    print(report(r))
    print("PASS" if r.passed else "FAIL")


if __name__ == "__main__":
    main()
