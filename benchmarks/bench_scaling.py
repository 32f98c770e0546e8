"""Scaling: the whole ``custseg segment`` job at 10k, 100k, 1M and 10M customers, and a
transactions file bigger than the memory DuckDB is given.

Data: transaction logs of 4 lines per customer on average (2 lines per order), seeded, written
as Parquet (``bench_features.generate``, uniform customers): 40,000 lines for 10k customers up
to 40,000,000 lines for 10M. Each size runs the CLI end to end (``custseg segment -t FILE --out
DIR --quiet``: cleaning, features, k, fit, profiles, report, segments.csv) in a fresh process;
time and peak resident memory are recorded, and the cost per customer should stay about flat
(linear growth).

Spill: the 10M-line CSV of bench_features (~690 MB of text) is cleaned and aggregated with
``duckdb_memory_limit = "256MB"``: DuckDB must spill to ``duckdb_temp_directory`` and still
finish with the same customers.

    python benchmarks/bench_scaling.py [--quick] [--keep DIR]     (--quick: 10k..1M, no spill)
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_features  # noqa: E402

SIZES = (10_000, 100_000, 1_000_000, 10_000_000)
LINES_PER_CUSTOMER = 4
SPILL_LIMIT = "256MB"
# linear growth: the cost per customer at the largest size within this factor of the 100k one
LINEAR_TOLERANCE = 2.0


@dataclass
class ScaleCase:
    customers: int
    lines: int
    seconds: float
    peak_bytes: int
    segmented: int
    k: int


@dataclass
class SpillCase:
    lines: int
    file_bytes: int
    memory_limit: str
    seconds: float
    customers: int
    ok: bool


@dataclass
class ScalingResult:
    cases: list[ScaleCase]
    spill: SpillCase | None

    def per_customer_growth(self) -> float:
        """Cost per customer at the largest size ÷ cost per customer at 100k."""
        base = next(c for c in self.cases if c.customers == 100_000)
        top = self.cases[-1]
        return (top.seconds / top.customers) / (base.seconds / base.customers)

    @property
    def passed(self) -> bool:
        return (self.per_customer_growth() <= LINEAR_TOLERANCE
                and (self.spill is None or self.spill.ok))


def _child_segment(path: str, out: str) -> None:
    from custseg.cli import app

    t0 = time.perf_counter()
    try:
        app(["segment", "-t", path, "--out", out, "--quiet", "--as-of", bench_features.AS_OF])
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    seconds = time.perf_counter() - t0
    summary = json.loads((Path(out) / "summary.json").read_text())
    print(json.dumps({"seconds": seconds,
                      "peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                      "segmented": summary["customers"]["segmented"], "k": summary["k"]}))


def _child_spill(path: str, temp: str) -> None:
    from custseg.config import Config
    from custseg.pipeline import prepare_data

    cfg = Config.model_validate({"segmentation": {
        "as_of": bench_features.AS_OF, "on_invalid": "exclude", "transactions_engine": "duckdb",
        "duckdb_memory_limit": SPILL_LIMIT, "duckdb_temp_directory": temp}})
    t0 = time.perf_counter()
    data = prepare_data(transactions=path, config=cfg)
    print(json.dumps({"seconds": time.perf_counter() - t0,
                      "customers": len(data.features.frame)}))


def _run_child(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(quick: bool, log: Callable[[str], None], keep: Path | None = None) -> ScalingResult:
    sizes = SIZES[:3] if quick else SIZES
    cases: list[ScaleCase] = []
    spill = None
    with tempfile.TemporaryDirectory(prefix="custseg-scaling-") as tmp:
        work = keep or Path(tmp)
        for n in sizes:
            folder = work / f"n{n}"
            folder.mkdir(parents=True, exist_ok=True)
            lines = n * LINES_PER_CUSTOMER
            path = folder / "transactions.parquet"
            if not path.exists():
                log(f"scaling: writing {lines:,} lines of {n:,} customers")
                bench_features.generate(folder, lines, n, uniform=True, csv=False)
            log(f"scaling: custseg segment at {n:,} customers ...")
            r = _run_child(["--child-segment", str(path), str(folder / "out")])
            cases.append(ScaleCase(n, lines, r["seconds"], r["peak_bytes"], r["segmented"],
                                   r["k"]))
            log(f"  {r['seconds']:.1f} s, peak {r['peak_bytes'] / 2**30:.2f} GiB, "
                f"{r['segmented']:,} segmented, k={r['k']}")
        if not quick:
            folder = work / "spill"
            folder.mkdir(parents=True, exist_ok=True)
            csv = folder / "transactions.csv"
            if not csv.exists():
                log("spill: writing the 10M-line CSV")
                bench_features.generate(folder, 10_000_000, 1_000_000, parquet=False)
            log(f"spill: cleaning + features with DuckDB memory_limit={SPILL_LIMIT} ...")
            temp = folder / "duckdb-temp"
            try:
                r = _run_child(["--child-spill", str(csv), str(temp)])
                spill = SpillCase(10_000_000, csv.stat().st_size, SPILL_LIMIT, r["seconds"],
                                  r["customers"], True)
            except RuntimeError as exc:
                log(str(exc))
                spill = SpillCase(10_000_000, csv.stat().st_size, SPILL_LIMIT, float("nan"), 0,
                                  False)
    return ScalingResult(cases, spill)


def report(r: ScalingResult) -> str:
    lines = ["scaling, whole job (custseg segment -t transactions.parquet):",
             "  customers    lines        seconds  us/customer  peak GiB  k"]
    for c in r.cases:
        lines.append(f"  {c.customers:>10,} {c.lines:>12,} {c.seconds:9.1f} "
                     f"{c.seconds / c.customers * 1e6:11.1f} {c.peak_bytes / 2**30:9.2f}  {c.k}")
    lines.append(f"  cost per customer, largest vs 100k: {r.per_customer_growth():.2f}x "
                 f"(linear: <= {LINEAR_TOLERANCE}x)")
    if r.spill:
        s = r.spill
        lines.append(f"  spill: {s.lines:,}-line CSV ({s.file_bytes / 2**20:,.0f} MiB) with "
                     f"DuckDB memory_limit {s.memory_limit}: "
                     + (f"completed in {s.seconds:.1f} s, {s.customers:,} customers" if s.ok
                        else "FAILED"))
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--keep", type=Path, default=None)
    p.add_argument("--child-segment", nargs=2, help=argparse.SUPPRESS)
    p.add_argument("--child-spill", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child_segment:
        _child_segment(*args.child_segment)
        return
    if args.child_spill:
        _child_spill(*args.child_spill)
        return
    r = run(args.quick, lambda m: print(m, file=sys.stderr, flush=True), args.keep)
    print(report(r))
    print("PASS" if r.passed else "FAIL")


if __name__ == "__main__":
    main()
