"""Silhouette: blocked exact silhouette vs scikit-learn, and sampled estimates vs the full value.

Data: float32 customers with 16 features in 5 planted segments of unequal size (shares
50 / 25 / 15 / 7 / 3 %), seeded; the labels are the planted segments.

(a) **Speed and equality** at sample sizes 5,000 and 20,000 (2,000 and 5,000 with ``--quick``),
    float32 and float64: ``custseg.fast.silhouette_score_blocked`` vs
    ``sklearn.metrics.silhouette_score`` (no sampling) on the same rows, both under
    ``threadpool_limits(1)``; scikit-learn is also timed under ``threadpool_limits(2)``. Wall clock,
    median of the repeats (interleaved), and the absolute difference of the two values.
(b) **Sampling error** at 100,000 customers (20,000 with ``--quick``): the exact silhouette of all
    of them (computed once with the blocked code in float64; that is 5·10⁹ distinct pairs),
    against the silhouette computed on a sample of 4,000 and of 20,000 customers (1,000 / 4,000
    with ``--quick``), over 10 seeds (5), for a stratified sample
    (``custseg.sampling.stratified_sample``: every segment in proportion, at least 5 rows) and
    for a plain uniform random sample. Reported: mean ± sd of the error of the overall value and
    of each segment's mean silhouette.

    python benchmarks/bench_silhouette.py [--quick] [--repeats R]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

from custseg.fast import silhouette_samples_blocked, silhouette_score_blocked
from custseg.sampling import stratified_sample

SHARES = (0.50, 0.25, 0.15, 0.07, 0.03)
N_FEATURES, SEED = 16, 0


@dataclass
class TimingCase:
    """Blocked vs scikit-learn on the same ``n`` rows."""

    n: int
    dtype: str
    custseg_s: float
    sklearn_s: float  # threadpool_limits(1)
    sklearn_2t_s: float  # threadpool_limits(2)
    custseg_value: float
    sklearn_value: float

    @property
    def speedup(self) -> float:
        return self.sklearn_s / self.custseg_s

    @property
    def difference(self) -> float:
        return abs(self.custseg_value - self.sklearn_value)


@dataclass
class SamplingCase:
    """Errors of sampled silhouette estimates (one row per seed) against the full values."""

    size: int
    method: str  # "stratified" or "uniform"
    errors: list[float]  # overall mean silhouette, per seed
    segment_errors: list[list[float]]  # per seed, per segment
    segment_counts: list[list[int]]  # rows of each segment in the sample, per seed

    @property
    def mean(self) -> float:
        return statistics.fmean(self.errors)

    @property
    def sd(self) -> float:
        return statistics.stdev(self.errors) if len(self.errors) > 1 else 0.0

    @property
    def max_abs(self) -> float:
        return max(abs(e) for e in self.errors)

    def segment_sd(self, j: int) -> float:
        values = [row[j] for row in self.segment_errors]
        return statistics.stdev(values) if len(values) > 1 else 0.0

    def segment_max_abs(self, j: int) -> float:
        return max(abs(row[j]) for row in self.segment_errors)

    def count_mean_sd(self, j: int) -> tuple[float, float]:
        values = [row[j] for row in self.segment_counts]
        return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


@dataclass
class SilhouetteResult:
    timing: list[TimingCase]
    full_n: int
    full_value: float
    full_seconds: float
    segment_sizes: list[int]
    segment_values: list[float]
    sampling: list[SamplingCase] = field(default_factory=list)

    def sampling_case(self, size: int, method: str) -> SamplingCase:
        return next(c for c in self.sampling if c.size == size and c.method == method)


def make_segments(
    n: int, shares: tuple[float, ...] = SHARES, d: int = N_FEATURES, seed: int = SEED
) -> tuple[np.ndarray, np.ndarray]:
    """float32 customers in planted segments of the given shares (overlapping a little)."""
    rng = np.random.default_rng(seed)
    sizes = np.floor(np.asarray(shares) * n).astype(int)
    sizes[0] += n - sizes.sum()
    centres = rng.normal(0.0, 1.0, (len(shares), d))
    labels = np.repeat(np.arange(len(shares)), sizes)
    X = (centres[labels] + rng.standard_normal((n, d))).astype(np.float32)
    perm = rng.permutation(n)
    return X[perm], labels[perm]


def _wall(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def time_case(X: np.ndarray, labels: np.ndarray, repeats: int) -> TimingCase:
    """Interleaved repeats of blocked and scikit-learn silhouette on the same rows."""
    ours, ref, ref2 = [], [], []
    ours_value = ref_value = float("nan")
    for _ in range(repeats):
        with threadpool_limits(1):
            seconds, ours_value = _wall(lambda: silhouette_score_blocked(X, labels))
            ours.append(seconds)
            seconds, ref_value = _wall(lambda: silhouette_score(X, labels))
            ref.append(seconds)
        with threadpool_limits(2):
            ref2.append(_wall(lambda: silhouette_score(X, labels))[0])
    return TimingCase(
        n=len(X),
        dtype=str(X.dtype),
        custseg_s=statistics.median(ours),
        sklearn_s=statistics.median(ref),
        sklearn_2t_s=statistics.median(ref2),
        custseg_value=float(ours_value),
        sklearn_value=float(ref_value),
    )


def _segment_means(values: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    return np.array([values[labels == j].mean() for j in range(k)])


def run(
    quick: bool = False, repeats: int | None = None, log: Callable[[str], None] = print
) -> SilhouetteResult:
    """Measure (a) and (b); ``log`` receives progress lines."""
    repeats = repeats or (2 if quick else 3)
    sizes = (2_000, 5_000) if quick else (5_000, 20_000)
    full_n = 20_000 if quick else 100_000
    sample_sizes = (1_000, 4_000) if quick else (4_000, 20_000)
    seeds = 5 if quick else 10
    k = len(SHARES)

    X, labels = make_segments(full_n)
    timing = []
    for n in sizes:
        for dtype in (np.float32, np.float64):
            log(f"silhouette: timing n={n:,} {np.dtype(dtype).name}")
            timing.append(time_case(X[:n].astype(dtype), labels[:n], repeats))

    log(f"silhouette: exact full value at {full_n:,} customers (float64)")
    with threadpool_limits(1):
        full_seconds, full = _wall(lambda: silhouette_samples_blocked(X.astype(np.float64), labels))
    full_values = np.asarray(full)
    segment_full = _segment_means(full_values, labels, k)
    result = SilhouetteResult(
        timing=timing,
        full_n=full_n,
        full_value=float(full_values.mean()),
        full_seconds=full_seconds,
        segment_sizes=np.bincount(labels, minlength=k).tolist(),
        segment_values=segment_full.tolist(),
    )

    log(f"silhouette: sampled estimates, {seeds} seeds × {sample_sizes}")
    with threadpool_limits(1):
        for size in sample_sizes:
            for method in ("stratified", "uniform"):
                errors, seg_errors, seg_counts = [], [], []
                for seed in range(seeds):
                    rng = np.random.default_rng(seed)
                    if method == "stratified":
                        idx = stratified_sample(labels, size, rng)
                    else:
                        idx = np.sort(rng.choice(full_n, size=size, replace=False))
                    values = silhouette_samples_blocked(X[idx], labels[idx])
                    errors.append(float(values.mean()) - result.full_value)
                    seg_errors.append(
                        (_segment_means(values, labels[idx], k) - segment_full).tolist()
                    )
                    seg_counts.append(np.bincount(labels[idx], minlength=k).tolist())
                result.sampling.append(SamplingCase(size, method, errors, seg_errors, seg_counts))
    return result


def report(r: SilhouetteResult) -> str:
    lines = [
        "(a) exact silhouette score: custseg blocked vs scikit-learn silhouette_score "
        "(median wall clock)",
        f"  {'n':>7} {'dtype':>8} {'custseg s':>10} {'sklearn 1t s':>13} "
        f"{'sklearn 2t s':>13} {'speed-up':>9} {'|Δ value|':>10}",
    ]
    for c in r.timing:
        lines.append(
            f"  {c.n:>7,} {c.dtype:>8} {c.custseg_s:>10.3f} {c.sklearn_s:>13.3f} "
            f"{c.sklearn_2t_s:>13.3f} {c.speedup:>8.1f}× {c.difference:>10.1e}"
        )
    shares = " / ".join(f"{s:.0%}" for s in SHARES)
    lines += [
        f"(b) sampled silhouette vs exact at {r.full_n:,} customers (segments {shares})",
        f"  exact full silhouette {r.full_value:.4f} (computed in {r.full_seconds:.1f} s); "
        "per segment " + ", ".join(f"{v:.3f}" for v in r.segment_values),
        f"  {'sample':>7} {'method':>11} {'error mean ± sd':>20} {'max |error|':>12}   "
        "per-segment error sd (largest … smallest segment)   smallest segment's rows",
    ]
    last = len(r.segment_sizes) - 1
    for c in r.sampling:
        seg = " ".join(f"{c.segment_sd(j):.4f}" for j in range(len(r.segment_sizes)))
        rows_mean, rows_sd = c.count_mean_sd(last)
        lines.append(
            f"  {c.size:>7,} {c.method:>11} {c.mean:>+10.4f} ± {c.sd:<7.4f} "
            f"{c.max_abs:>12.4f}   {seg}   {rows_mean:.0f} ± {rows_sd:.0f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes, fewer seeds")
    p.add_argument("--repeats", type=int, default=None)
    args = p.parse_args(argv)
    print(report(run(args.quick, args.repeats)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
