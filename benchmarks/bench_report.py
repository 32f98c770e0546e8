"""Report rendering time: the demo (2,000 customers) and the same result tiled to 200,000.

The unit tests check what the report says; how fast it renders is measured here, where a busy
machine's noise can be seen for what it is (median of ``--repeats``). Targets: < 10 s for the demo,
< 20 s at 200,000 customers (the map and distributions are sampled, so time must not grow with n).

    python benchmarks/bench_report.py [--repeats R]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from dataclasses import dataclass, replace

import numpy as np

from custseg.pipeline import run_segmentation
from custseg.report.render import render_report
from custseg.synth import generate

TARGETS_S = {"demo": 10.0, "tiled": 20.0}


@dataclass
class ReportResult:
    demo_s: float
    tiled_s: float
    tiled_n: int

    def passed(self, case: str) -> bool:
        return getattr(self, f"{case}_s") < TARGETS_S[case]


def _tiled(result, reps: int):
    big = copy.copy(result)
    frame = result.features.frame
    big.features = replace(result.features, frame=frame.iloc[np.tile(np.arange(len(frame)), reps)])
    big.labels = np.tile(result.labels, reps)
    big.segment_map = replace(result.segment_map, n_customers=len(frame) * reps)
    big.silhouette = replace(result.silhouette, n_customers=len(frame) * reps)
    return big


def _median_seconds(result, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        render_report(result)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(repeats: int = 3) -> ReportResult:
    data = generate(n_customers=2000, seed=0)
    demo = run_segmentation(data.customers, data.transactions)
    big = _tiled(demo, 100)
    return ReportResult(_median_seconds(demo, repeats), _median_seconds(big, repeats),
                        len(big.labels))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    r = run(parser.parse_args(argv).repeats)
    print(f"report, demo 2,000 customers: {r.demo_s:.2f} s (target < {TARGETS_S['demo']:g} s) "
          f"{'PASS' if r.passed('demo') else 'FAIL'}")
    print(f"report, {r.tiled_n:,} customers: {r.tiled_s:.2f} s (target < {TARGETS_S['tiled']:g} s) "
          f"{'PASS' if r.passed('tiled') else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
