"""One K-Means (Lloyd) iteration: ``lloyd.lloyd_iteration`` vs scikit-learn vs the bound.

Data: float32, 1,000,000 rows × 16 features (200,000 with ``--quick``), 5 planted Gaussian
clusters (seeded); the starting centres are 5 rows drawn at random (seeded), the same for both.

What is timed (wall clock, ``time.perf_counter``; the three are interleaved in every repeat so
that they share the machine's load, and the median over repeats is reported):

* **custseg**: one call of ``lloyd_iteration(X, centres)`` (labels, new centres and inertia).
* **scikit-learn**: one iteration of ``KMeans(algorithm="lloyd")``'s loop, measured through the
  public API only, by difference: the fit time with ``max_iter=11`` minus the fit time with
  ``max_iter=1`` (same ``init``, ``n_init=1``, ``tol=0``), divided by the difference in
  ``n_iter_`` (checked to be 10). The difference cancels the fit's fixed costs (validation, the
  copy and centring of X, the final assignment). Run under ``threadpool_limits(1)`` (what custseg
  uses) and, for reference, under ``threadpool_limits(2)``.
  When scikit-learn's private ``lloyd_iter_chunked_dense`` can be imported, one direct call of it
  is timed too, as a cross-check only.
* **bound**: bytes of X ÷ the read bandwidth measured on X itself: the best of N of two
  read-only passes (``X.sum()`` and ``X.max()``), whichever is faster. A Lloyd iteration has to
  read X at least once, so no implementation can beat this.

    python benchmarks/bench_kmeans.py [--quick] [--repeats R]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from lloyd import lloyd_iteration
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

N_FULL, N_QUICK, N_FEATURES, N_CLUSTERS, SEED = 1_000_000, 200_000, 16, 5, 0
EXTRA_ITERATIONS = 10


@dataclass
class KMeansResult:
    """Seconds per Lloyd iteration (medians over ``repeats``) and the bound."""

    n: int
    d: int
    k: int
    repeats: int
    bytes: int
    bandwidth_gbs: float  # best read bandwidth measured on X
    bandwidth_kernel: str  # the read pass that achieved it
    bound_s: float  # bytes / bandwidth
    read_s: dict[str, float]  # best seconds of each read pass (X.sum(), X.max())
    custseg_s: float
    sklearn_s: float  # threadpool_limits(1)
    sklearn_2t_s: float  # threadpool_limits(2)
    sklearn_internal_s: float | None  # private lloyd_iter_chunked_dense, cross-check only
    custseg_cpu_s: float  # thread CPU time of custseg (less sensitive to other load)
    max_center_diff: float  # |custseg new centres - scikit-learn's after one iteration|

    @property
    def speedup(self) -> float:
        """scikit-learn (1 thread) time ÷ custseg time: > 1 means custseg is faster."""
        return self.sklearn_s / self.custseg_s

    @property
    def to_bound(self) -> float:
        """custseg time ÷ bound: 1.0 would be reading X once at full bandwidth."""
        return self.custseg_s / self.bound_s


def make_data(
    n: int, d: int = N_FEATURES, k: int = N_CLUSTERS, seed: int = SEED
) -> tuple[np.ndarray, np.ndarray]:
    """float32 ``X`` with ``k`` planted clusters, and ``k`` random rows of it as start centres."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, 1.0, (k, d)).astype(np.float32)
    labels = rng.integers(0, k, n)
    X = means[labels] + rng.standard_normal((n, d), dtype=np.float32)
    centers = X[rng.choice(n, k, replace=False)].copy()
    return X, centers


def _wall(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _sklearn_fit(X: np.ndarray, centers: np.ndarray, max_iter: int) -> tuple[float, KMeans]:
    km = KMeans(
        n_clusters=len(centers),
        init=centers,
        n_init=1,
        max_iter=max_iter,
        algorithm="lloyd",
        tol=0.0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter reached, on purpose
        seconds = _wall(lambda: km.fit(X))
    return seconds, km


def _sklearn_iteration(X: np.ndarray, centers: np.ndarray) -> float:
    """One paired measurement of scikit-learn's seconds per Lloyd iteration."""
    short, km_short = _sklearn_fit(X, centers, 1)
    long, km_long = _sklearn_fit(X, centers, 1 + EXTRA_ITERATIONS)
    iterations = km_long.n_iter_ - km_short.n_iter_
    if iterations < 1:
        raise RuntimeError(
            "scikit-learn converged in one iteration; the difference measures "
            "nothing (use less separated clusters)"
        )
    return (long - short) / iterations


def _sklearn_internal(X: np.ndarray, centers: np.ndarray) -> Callable[[], object] | None:
    """A call of scikit-learn's private one-iteration kernel, when importable (cross-check)."""
    try:
        from sklearn.cluster._k_means_lloyd import lloyd_iter_chunked_dense
    except ImportError:
        return None
    n, k = len(X), len(centers)
    args = (
        X,
        np.ones(n, dtype=X.dtype),
        centers.astype(X.dtype),
        np.empty_like(centers),
        np.zeros(k, dtype=X.dtype),
        np.empty(n, dtype=np.int32),
        np.zeros(k, dtype=X.dtype),
    )

    def call() -> None:
        lloyd_iter_chunked_dense(*args, 1, True)

    try:
        call()
    except (TypeError, ValueError):
        return None
    return call


def measure_bandwidth(
    X: np.ndarray, repeats: int = 15, best: dict[str, float] | None = None
) -> dict[str, float]:
    """Best seconds of two read-only passes over X (``X.sum()``, ``X.max()``) over ``repeats``
    runs each, merged into ``best`` when given."""
    best = dict(best or {"X.sum()": np.inf, "X.max()": np.inf})
    for _ in range(repeats):
        best["X.sum()"] = min(best["X.sum()"], _wall(X.sum))
        best["X.max()"] = min(best["X.max()"], _wall(X.max))
    return best


def run(
    quick: bool = False, repeats: int | None = None, log: Callable[[str], None] = print
) -> KMeansResult:
    """Measure and return a :class:`KMeansResult`; ``log`` receives progress lines."""
    n = N_QUICK if quick else N_FULL
    repeats = repeats or (3 if quick else 7)
    X, centers = make_data(n)
    log(f"kmeans: X float32 {n:,} × {N_FEATURES}, k={N_CLUSTERS}, {repeats} repeats")

    custseg, custseg_cpu, sk1, sk2, internal = [], [], [], [], []
    internal_call = _sklearn_internal(X, centers)
    with threadpool_limits(1):
        lloyd_iteration(X, centers)  # warm-up
        _sklearn_fit(X, centers, 1)
        reads = measure_bandwidth(X)
        for _ in range(repeats):
            cpu0 = time.thread_time()
            custseg.append(_wall(lambda: lloyd_iteration(X, centers)))
            custseg_cpu.append(time.thread_time() - cpu0)
            sk1.append(_sklearn_iteration(X, centers))
            if internal_call is not None:
                internal.append(_wall(internal_call))
            reads = measure_bandwidth(X, 3, reads)  # the best over the whole run
        new_centers = lloyd_iteration(X, centers)[1]
        _, km = _sklearn_fit(X, centers, 1)
        center_diff = float(np.abs(new_centers - km.cluster_centers_).max())
    with threadpool_limits(2):
        _sklearn_fit(X, centers, 1)
        for _ in range(repeats):
            sk2.append(_sklearn_iteration(X, centers))
    kernel = min(reads, key=reads.__getitem__)
    bandwidth = X.nbytes / reads[kernel]
    return KMeansResult(
        n=n,
        d=N_FEATURES,
        k=N_CLUSTERS,
        repeats=repeats,
        bytes=X.nbytes,
        bandwidth_gbs=bandwidth / 1e9,
        bandwidth_kernel=kernel,
        bound_s=X.nbytes / bandwidth,
        read_s=reads,
        custseg_s=statistics.median(custseg),
        sklearn_s=statistics.median(sk1),
        sklearn_2t_s=statistics.median(sk2),
        sklearn_internal_s=statistics.median(internal) if internal else None,
        custseg_cpu_s=statistics.median(custseg_cpu),
        max_center_diff=center_diff,
    )


def report(r: KMeansResult) -> str:
    lines = [
        f"one Lloyd iteration, float32 {r.n:,} × {r.d}, k={r.k} (median of {r.repeats})",
        f"  read bandwidth       {r.bandwidth_gbs:8.1f} GB/s  (best {r.bandwidth_kernel}, "
        f"{r.bytes / 1e6:.0f} MB)",
        f"  bound                {r.bound_s * 1e3:8.2f} ms/iter  (read passes: "
        + ", ".join(f"{name} {sec * 1e3:.2f} ms" for name, sec in r.read_s.items())
        + ")",
        f"  custseg              {r.custseg_s * 1e3:8.2f} ms/iter  (thread CPU "
        f"{r.custseg_cpu_s * 1e3:.2f} ms)",
        f"  scikit-learn 1 thread {r.sklearn_s * 1e3:7.2f} ms/iter  (fit max_iter=11 minus "
        f"max_iter=1, ÷ 10)",
        f"  scikit-learn 2 threads{r.sklearn_2t_s * 1e3:7.2f} ms/iter",
    ]
    if r.sklearn_internal_s is not None:
        lines.append(
            f"  scikit-learn kernel  {r.sklearn_internal_s * 1e3:8.2f} ms/iter  "
            "(private lloyd_iter_chunked_dense, cross-check)"
        )
    lines += [
        f"  ratio scikit-learn / custseg   {r.speedup:6.2f}  (> 1: custseg faster)",
        f"  ratio custseg / bound          {r.to_bound:6.2f}  (target <= 2.0)",
        f"  ratio scikit-learn / bound     {r.sklearn_s / r.bound_s:6.2f}",
        f"  (with the X.sum() pass as the bound instead: custseg "
        f"{r.custseg_s / r.read_s['X.sum()']:.2f}, scikit-learn "
        f"{r.sklearn_s / r.read_s['X.sum()']:.2f})",
        f"  max |centre difference| vs scikit-learn after one iteration: {r.max_center_diff:.2e}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="200,000 rows, 3 repeats")
    p.add_argument("--repeats", type=int, default=None)
    args = p.parse_args(argv)
    print(report(run(args.quick, args.repeats)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
