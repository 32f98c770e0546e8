"""The value model (BG/NBD + Gamma-Gamma + CLV) at 1M customers, and the CDNOW fit time.

Data: customers simulated from BG/NBD with CDNOW's published parameters (r=0.25, alpha=4.8,
a=0.72, b=2.16; weeks), each observed for 27-39 weeks on whole days, spend per purchase from a
Gamma-Gamma with p=6.25, q=3.74, gamma=15.44; 1,000,000 customers (100,000 with ``--quick``).

What is timed (wall clock, one BLAS thread, median of ``--repeats``):

* **custseg**: ``summarise_purchases`` on the transaction lines, ``BetaGeoModel.fit``,
  ``GammaGammaModel.fit`` and ``customer_value`` (12 months) - the whole value stage.
* **reference**: the textbook fit the packages do - the same BG/NBD likelihood summed over every
  customer (no de-duplication) and maximised by Nelder-Mead without a gradient - on the same
  per-customer summary (its summarising time is not counted). Both must find the same maximum.
* **CDNOW**: the BG/NBD fit on the full 23,570-customer CDNOW file (from the lifetimes 0.11.3 wheel
  that ``make test`` downloads), target < 2 s.

    python benchmarks/bench_value.py [--quick] [--repeats R]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from custseg.value import BetaGeoModel, GammaGammaModel, customer_value, summarise_purchases

N_FULL, N_QUICK, SEED = 1_000_000, 100_000, 0
TRUE = {"r": 0.25, "alpha": 4.8, "a": 0.72, "b": 2.16}
CDNOW_TARGET_S = 2.0
REPO = Path(__file__).resolve().parents[1]


@dataclass
class ValueResult:
    n: int
    lines: int
    custseg_s: float
    fit_s: float
    reference_fit_s: float
    loglik_gap: float
    params: dict[str, float]
    cdnow_s: float | None

    @property
    def fit_speedup(self) -> float:
        return self.reference_fit_s / self.fit_s


def simulate(n: int, seed: int = SEED) -> pd.DataFrame:
    """Transaction lines of ``n`` BG/NBD customers (one line per purchase day)."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(TRUE["r"], 1 / TRUE["alpha"], n)            # purchases per week
    drop = rng.beta(TRUE["a"], TRUE["b"], n)
    horizon = rng.integers(27 * 7, 39 * 7 + 1, n) / 7.0
    spend_scale = rng.gamma(3.74, 1 / 15.44, n)                  # Gamma-Gamma's nu
    ids, times = [np.arange(n)], [np.zeros(n)]
    alive, clock = np.ones(n, bool), np.zeros(n)
    while alive.any():
        idx = np.flatnonzero(alive)
        clock[idx] += rng.exponential(1 / np.maximum(rate[idx], 1e-12))
        bought = idx[clock[idx] <= horizon[idx]]
        ids.append(bought)
        times.append(np.floor(clock[bought] * 7) / 7)
        dies = rng.random(len(bought)) < drop[bought]
        alive[:] = False
        alive[bought[~dies]] = True
    customer = np.concatenate(ids)
    weeks = np.concatenate(times)
    start = pd.Timestamp("2024-01-01") + pd.to_timedelta(39 * 7 - horizon * 7, unit="D")
    when = start.to_numpy()[customer] + pd.to_timedelta(np.round(weeks * 7), unit="D").to_numpy()
    amount = rng.gamma(6.25, 1 / spend_scale[customer])
    return pd.DataFrame({"customer_id": customer, "timestamp": when, "amount": amount})


def _reference_fit(x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> tuple[float, float]:
    def negloglik(log_params: np.ndarray) -> float:
        value = -BetaGeoModel.loglik_terms(np.exp(log_params), x, t_x, big_t).sum()
        return float(value) if np.isfinite(value) else 1e300

    start = time.perf_counter()
    best = minimize(negloglik, np.log([1.0, float(np.mean(big_t)), 1.0, 1.0]), method="Nelder-Mead",
                    options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-6})
    return time.perf_counter() - start, -float(best.fun)


def _cdnow_fit_seconds() -> float | None:
    wheels = sorted((REPO / ".venv" / "test-data").glob("[Ll]ifetimes-0.11.3-*.whl"))
    if not wheels:
        return None
    with zipfile.ZipFile(wheels[0]) as wheel:
        text = wheel.read("lifetimes/datasets/CDNOW_master.txt").decode()
    frame = pd.read_csv(io.StringIO(text), sep=r"\s+", dtype=str)
    frame["timestamp"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    summary = summarise_purchases(frame, end="1997-09-30", amount=None)
    start = time.perf_counter()
    BetaGeoModel().fit(summary.frequency, summary.recency, summary.T)
    return time.perf_counter() - start


def run(quick: bool = False, repeats: int = 3) -> ValueResult:
    n = N_QUICK if quick else N_FULL
    lines = simulate(n)
    end = lines["timestamp"].max()
    totals, fits = [], []
    with threadpool_limits(1):
        for _ in range(repeats):
            start = time.perf_counter()
            summary = summarise_purchases(lines, end=end)
            fit_start = time.perf_counter()
            bg = BetaGeoModel().fit(summary.frequency, summary.recency, summary.T)
            fits.append(time.perf_counter() - fit_start)
            gg = GammaGammaModel().fit(summary.frequency, summary.monetary)
            customer_value(bg, gg, summary)
            totals.append(time.perf_counter() - start)
        reference_s, reference_ll = _reference_fit(summary.frequency, summary.recency, summary.T)
        cdnow_s = _cdnow_fit_seconds()
    return ValueResult(n, len(lines), statistics.median(totals), statistics.median(fits), reference_s,
                       bg.loglik_ - reference_ll, bg.params_, cdnow_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    r = run(args.quick, args.repeats)
    print(f"value stage, {r.n:,} customers ({r.lines:,} lines): {r.custseg_s:.2f} s "
          f"(BG/NBD fit {r.fit_s:.3f} s)")
    print(f"BG/NBD fit vs every-row Nelder-Mead reference: {r.reference_fit_s:.2f} s, "
          f"{r.fit_speedup:.1f}x faster, log-likelihood gap {r.loglik_gap:+.3f} (>= 0: as good)")
    print("fitted " + ", ".join(f"{k}={v:.3f} (true {TRUE[k]})" for k, v in r.params.items()))
    if r.cdnow_s is None:
        print("CDNOW: wheel not found (run make test once)")
    else:
        print(f"CDNOW 23,570 customers BG/NBD fit: {r.cdnow_s:.3f} s (target < {CDNOW_TARGET_S:g} s) "
              f"{'PASS' if r.cdnow_s < CDNOW_TARGET_S else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
