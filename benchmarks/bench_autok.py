"""Auto-k end to end: ``custseg segment`` vs the careful scikit-learn recipe, from the same CSV.

Data: 1,000,000 customers (200,000 with ``--quick``, any size with ``--n``) x 16 numeric
features in 5 planted segments of unequal size (shares 35 / 25 / 20 / 12 / 8 %), written once
(seeded) as a CSV with a ``customer_id`` column and 4 decimals, like an export from a warehouse.

* **reference** (a fresh Python process, as a user's script would run):
  ``pandas.read_csv`` -> ``StandardScaler`` -> ``KMeans(n_init=10, random_state=0)`` on *all*
  customers for k = 2..10 -> ``silhouette_score(sample_size=20000, random_state=0)`` for each ->
  the k with the best silhouette, and its labels. One thread of its own: pinned to one CPU core,
  one BLAS/OpenMP thread.
* **custseg**: the CLI, ``custseg segment FILE --out DIR --quiet`` (a fresh process): reading,
  validation, features, k selection with evidence, the final fit, profiles, names, the HTML
  report, segments.csv, the saved model -- everything a run produces. It does *less K-Means
  work by design*: each k is fitted on a 20,000-customer sample (``selection_sample``, n_init=4)
  with silhouette on a 4,000 stratified sub-sample, and the final K-Means runs once on all
  customers from the sample's centroids. With its defaults it also uses *both cores*: two k's
  scored side by side (``k_workers = 2``), the CSV parsed on a background thread, segments.csv
  written on a second thread; each K-Means has one BLAS/OpenMP thread.
* **custseg, 1 core**: the same command pinned to one CPU core (``sched_setaffinity``) with
  ``k_workers = 1``, so that both sides have the same CPU: this row is the like-for-like one.

Every side runs with ``OMP_NUM_THREADS=1`` etc. (on the 2-core development machine two threads
were slower for K-Means, see README.md). Reported: wall time of each (one run each: the
reference takes minutes), the cores, threads and sample sizes each side used, the speed ratios,
whether k agrees, and the adjusted Rand index of custseg's segments against the reference's
labels (matched by customer id). The target (>= 10x) is judged on the default custseg run, as
before; the 1-core ratio is reported beside it.

    python benchmarks/bench_autok.py [--quick | --n N] [--keep DIR]
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
    custseg_cores: int = 0              # CPU cores the default custseg run could use
    k_sample: int = 0                   # customers each k was fitted on in custseg's selection
    silhouette_sample: int = 0          # custseg's silhouette sub-sample
    one_core_s: float | None = None     # custseg pinned to one core, k_workers = 1
    one_core_k: int | None = None
    one_core_ari: float | None = None

    @property
    def speedup(self) -> float:
        return self.reference_s / self.custseg_s

    @property
    def one_core_speedup(self) -> float | None:
        return None if self.one_core_s is None else self.reference_s / self.one_core_s

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


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _one_core() -> Callable[[], None] | None:
    """A ``preexec_fn`` pinning the child process to one CPU core (None where the OS has no
    ``sched_setaffinity``: the 1-core rows are then skipped)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    core = min(os.sched_getaffinity(0))
    return lambda: os.sched_setaffinity(0, {core})


def _custseg(csv: Path, out: Path, config: Path | None = None,
             pin: Callable[[], None] | None = None) -> tuple[float, dict]:
    """Run ``custseg segment`` in a fresh process: (wall seconds, its summary.json)."""
    cmd = [str(Path(sys.executable).with_name("custseg")), "segment", str(csv), "--out", str(out),
           "--quiet", *(["--config", str(config)] if config else [])]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=_env(), preexec_fn=pin)
    seconds = time.perf_counter() - t0
    return seconds, json.loads((out / "summary.json").read_text())


def _ari(ref_labels: np.ndarray, out: Path, n: int) -> float:
    import pandas as pd
    from sklearn.metrics import adjusted_rand_score

    seg = pd.read_csv(out / "segments.csv", usecols=["customer_id", "segment_id"])
    seg = seg.set_index("customer_id")["segment_id"].reindex(np.arange(1, n + 1))
    return float(adjusted_rand_score(ref_labels, seg.to_numpy()))


def run(quick: bool, log: Callable[[str], None], keep: Path | None = None,
        n: int | None = None, one_core: bool = True) -> AutoKResult:
    n = n or (200_000 if quick else 1_000_000)
    pin = _one_core()
    with tempfile.TemporaryDirectory(prefix="custseg-autok-") as tmp:
        work = keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        csv = work / f"customers_{n}.csv"
        log(f"autok: writing {n:,} x {N_FEATURES} planted customers to {csv}")
        generate(csv, n)
        log(f"autok: custseg segment ({_cores()} cores) ...")
        out = work / "custseg-out"
        custseg_s, summary = _custseg(csv, out)
        log(f"autok: custseg {custseg_s:.1f} s, k={summary['k']}")
        one = None
        if one_core and pin is not None:
            config = work / "one-core.toml"
            config.write_text("[segmentation]\nk_workers = 1\nthreads = 1\n")
            log("autok: custseg segment pinned to 1 core, k_workers = 1 ...")
            one = _custseg(csv, work / "custseg-1core-out", config, pin)
            log(f"autok: custseg on 1 core {one[0]:.1f} s, k={one[1]['k']}")
        log("autok: reference, pinned to 1 core (several minutes at 1M) ...")
        ref = work / "reference"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", REFERENCE, str(csv), str(ref)], check=True,
                       env=_env(), preexec_fn=pin)
        reference_s = time.perf_counter() - t0
        ref_info = json.loads(ref.with_suffix(".json").read_text())
        ref_labels = np.load(ref.with_suffix(".npy"))
        ari = _ari(ref_labels, out, n)
        log(f"autok: reference {reference_s:.1f} s, k={ref_info['k']}; ARI {ari:.4f}")
        sel = summary.get("k_selection", {})
        return AutoKResult(
            n=n, custseg_s=custseg_s, reference_s=reference_s, custseg_k=int(summary["k"]),
            reference_k=int(ref_info["k"]), ari=ari, timings=summary.get("timings", {}),
            custseg_cores=_cores(), k_sample=int(sel.get("sample_size", 0)),
            silhouette_sample=int(sel.get("silhouette_sample", 0)),
            one_core_s=one[0] if one else None, one_core_k=int(one[1]["k"]) if one else None,
            one_core_ari=_ari(ref_labels, work / "custseg-1core-out", n) if one else None)


def report(r: AutoKResult) -> str:
    """The comparison as a table that states what each side ran on and fitted."""
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in r.timings.items())
    full = f"all {r.n:,}"
    rows = [("scikit-learn reference", r.reference_s, r.reference_k, "1", "1",
             f"{full}, n_init=10", f"{min(20_000, r.n):,} sample", "-", "-"),
            ("custseg segment", r.custseg_s, r.custseg_k, str(r.custseg_cores),
             "1 each, k_workers=2", f"{r.k_sample:,} sample, n_init=4",
             f"{r.silhouette_sample:,} stratified", f"{r.speedup:.1f}x", f"{r.ari:.4f}")]
    if r.one_core_s is not None:
        rows.append(("custseg segment, 1 core", r.one_core_s, r.one_core_k, "1",
                     "1, k_workers=1", f"{r.k_sample:,} sample, n_init=4",
                     f"{r.silhouette_sample:,} stratified", f"{r.one_core_speedup:.1f}x",
                     f"{r.one_core_ari:.4f}"))
    head = ("side", "time", "k", "CPU cores allowed", "BLAS/OpenMP threads", "k's fitted on",
            "silhouette on", "speed-up", "ARI vs ref")
    cells = [head, *[(name, f"{t:.1f} s", str(k), *rest) for name, t, k, *rest in rows]]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    lines = ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]
    return (f"auto-k end to end, {r.n:,} customers x {N_FEATURES} features (same CSV):\n"
            + "\n".join(lines) + "\n"
            f"  custseg's final K-Means: once on {full} from the sample's centroids; "
            f"stages: {stages}\n"
            f"  target (default custseg run): speed-up >= {TARGET_SPEEDUP:g}x, same k "
            f"({r.custseg_k == r.reference_k}), ARI >= {TARGET_ARI}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="200,000 customers instead of 1M")
    p.add_argument("--n", type=int, default=None, help="customers (overrides --quick)")
    p.add_argument("--no-one-core", action="store_true",
                   help="skip the custseg run pinned to one core")
    p.add_argument("--keep", type=Path, default=None, help="keep the CSV and outputs here")
    args = p.parse_args()
    r = run(args.quick, lambda m: print(m, file=sys.stderr, flush=True), args.keep, n=args.n,
            one_core=not args.no_one_core)
    print(report(r))
    print("PASS" if r.passed else "FAIL")


if __name__ == "__main__":
    main()
