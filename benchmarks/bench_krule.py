"""The k rule on planted data: does ``choose_k`` find the planted k, and does it say "weak"
when there are no clusters at all?

Every case is generated here (seeded), standardised column by column as custseg's preprocessing
does, and given to :func:`custseg.selection.choose_k` with the default settings (k = 2..10,
the default stability resamples). Cases:

* **clear**: Gaussian blobs (unit variance per dimension) with k = 2..8 planted, in 2, 4 or 8
  signal dimensions; every pair of centres at least ``sep`` = 6 or 8 within-segment standard
  deviations apart; sizes equal or imbalanced 1:5 (geometric from the smallest to the largest);
  in 4 and 8 dimensions no noise columns, or d/4 pure-noise columns (standard normal or
  uniform; standardised like every column, so as wide as a signal column); and four *nested*
  cases: k = 4..8 blobs in two far-apart groups (where silhouette prefers the groups).
  Target: the planted k in >= 90% of them.
* **hard**: the same with ``sep`` = 4 (neighbouring blobs overlap); reported, no target.
* **null**: no clusters at all: one spherical Gaussian, a uniform cube (2 and 5 dimensions), a
  strongly correlated Gaussian, a skewed continuum (log of log-normal columns, like spend).
  Target: verdict "weak" on every one (any k is acceptable then: the verdict is what tells the
  user; the rule's fallback makes it a k in 3-8, never a "k = 2 finding").

1,500 rows a case; the full grid (45 cases) takes about a minute on two cores, ``--quick``
(24 cases) half that.

Prints a table (case, planted k, chosen k, verdict, silhouette, gap to the no-cluster
reference, stability) and the share correct; the exit status is 0 even when a target fails.

    python benchmarks/bench_krule.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from custseg.selection import choose_k  # noqa: E402

TARGET_CLEAR = 0.90


@dataclass(frozen=True)
class Case:
    name: str
    kind: str            # "clear", "hard" or "null"
    k: int | None        # planted k (None: no clusters)
    seed: int
    sep: float = 0.0
    dims: int = 2
    imbalance: float = 1.0
    noise: str = ""      # "", "normal" or "uniform": as many noise columns as signal ones
    n: int = 1500
    groups: int = 1      # >1: the k blobs come in this many far-apart groups (nested structure)
    null: str = ""       # for null cases: gaussian, uniform, correlated, lognormal


def _centres(rng: np.random.Generator, k: int, dims: int, sep: float) -> np.ndarray:
    """k centres with every pair at least ``sep`` apart (rejection sampling in a box that grows
    until they fit)."""
    scale = sep * k ** (1 / dims)
    while True:
        for _ in range(200):
            c = np.empty((0, dims))
            for _ in range(2000):
                p = rng.uniform(-scale, scale, dims)
                if not len(c) or np.min(np.linalg.norm(c - p, axis=1)) >= sep:
                    c = np.vstack([c, p])
                    if len(c) == k:
                        break
            if len(c) == k:
                return c
        scale *= 1.25


def planted(case: Case) -> tuple[np.ndarray, np.ndarray | None]:
    """The case's matrix (standardised columns) and its planted labels (None for null data)."""
    rng = np.random.default_rng(case.seed)
    n, d = case.n, case.dims
    labels = None
    if case.kind == "null":
        if case.null == "gaussian":
            X = rng.standard_normal((n, d))
        elif case.null == "uniform":
            X = rng.uniform(0, 1, (n, d))
        elif case.null == "correlated":
            a = rng.standard_normal((d, d))
            cov = a @ a.T + np.diag(np.linspace(3, 0.1, d)) * d
            X = rng.multivariate_normal(np.zeros(d), cov, size=n)
        elif case.null == "lognormal":
            X = np.log1p(rng.lognormal(0.0, 1.0, (n, d)) * 100)
        else:
            raise ValueError(case.null)
    else:
        k = case.k
        assert k is not None
        w = case.imbalance ** (np.arange(k) / max(k - 1, 1))
        sizes = np.maximum(20, np.round(n * w / w.sum())).astype(int)
        labels = np.repeat(np.arange(k), sizes)
        if case.groups > 1:  # groups of blobs, the groups 4x further apart than the blobs
            per = np.array_split(np.arange(k), case.groups)
            far = _centres(rng, case.groups, d, 4 * case.sep * len(per[0]) ** (1 / d))
            centres = np.vstack([far[g] + _centres(rng, len(ix), d, case.sep)
                                 for g, ix in enumerate(per)])
        else:
            centres = _centres(rng, k, d, case.sep)
        X = centres[labels] + rng.standard_normal((len(labels), d))
        m = d // 4
        if case.noise == "normal":
            X = np.hstack([X, rng.standard_normal((len(X), m))])
        elif case.noise == "uniform":
            X = np.hstack([X, rng.uniform(-2, 2, (len(X), m))])
        perm = rng.permutation(len(X))
        X, labels = X[perm], labels[perm]
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X, labels


def cases(quick: bool = False) -> list[Case]:
    """The grid: every planted k 2..8 at each separation, with imbalance, dimension and noise
    rotating through the cases (seeded), so that every level of every factor meets every k."""
    out: list[Case] = []
    seed = 100
    for kind, seps in (("clear", (6.0, 8.0)), ("hard", (4.0,))):
        for sep in seps:
            for k in range(2, 9):
                for rep in range(2 if kind == "clear" else 1):
                    i = len(out)
                    dims = (2, 4, 8)[(k + rep) % 3]
                    imb = (1.0, 5.0)[(k + rep + int(sep)) % 2]
                    noise = ("", "normal", "uniform")[(i + rep) % 3] if dims > 2 else ""
                    seed += 1
                    if quick and (rep or kind == "hard"):
                        continue
                    out.append(Case(f"{kind} k={k} sep={sep:g} d={dims} 1:{imb:g}"
                                    f"{' +' + noise if noise else ''}", kind, k, seed, sep,
                                    dims, imb, noise))
    for k, dims, imb in ((4, 4, 1.0), (6, 4, 5.0), (6, 8, 1.0), (8, 8, 5.0)):
        seed += 1
        if quick and k == 8:
            continue
        out.append(Case(f"clear k={k} as 2 groups d={dims} 1:{imb:g}", "clear", k, seed, 6.0,
                        dims, imb, groups=2))
    for null, dims in (("gaussian", 5), ("uniform", 2), ("uniform", 5), ("correlated", 6),
                       ("lognormal", 4)):
        seed += 1
        out.append(Case(f"null {null} d={dims}", "null", None, seed, dims=dims, null=null))
    return out


@dataclass
class Outcome:
    case: Case
    k: int
    verdict: str
    silhouette: float
    gap: float | None
    stability: float | None
    seconds: float

    @property
    def correct(self) -> bool:
        if self.case.kind == "null":
            return self.verdict == "weak"
        return self.k == self.case.k


def run_case(case: Case) -> Outcome:
    X, _ = planted(case)
    t0 = time.perf_counter()
    sel = choose_k(X, seed=0, n_init=4)
    secs = time.perf_counter() - t0
    s = sel.score_for(sel.k)
    assert s is not None
    return Outcome(case, sel.k, sel.structure, s.silhouette, s.silhouette_gap, s.stability, secs)


def _f(x: float | None, fmt: str = ".3f") -> str:
    return "—" if x is None else format(x, fmt)


def table(outcomes: list[Outcome]) -> str:
    lines = [f"| {'case':<40} | planted k | chosen k | verdict  | silhouette | gap to null | "
             "stability | ok |",
             f"|{'-' * 42}|----------:|---------:|----------|-----------:|------------:|"
             "----------:|----|"]
    for o in outcomes:
        lines.append(f"| {o.case.name:<40} | {o.case.k or '—':>9} | {o.k:>8} | {o.verdict:<8} | "
                     f"{_f(o.silhouette):>10} | {_f(o.gap):>11} | {_f(o.stability, '.2f'):>9} | "
                     f"{'yes' if o.correct else 'NO':<2} |")
    return "\n".join(lines)


def shares(outcomes: list[Outcome]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for kind in ("clear", "hard", "null"):
        sub = [o for o in outcomes if o.case.kind == kind]
        out[kind] = (sum(o.correct for o in sub), len(sub))
    return out


@dataclass
class KRuleResult:
    outcomes: list[Outcome]

    def share(self, kind: str) -> tuple[int, int]:
        return shares(self.outcomes)[kind]

    @property
    def seconds(self) -> float:
        return sum(o.seconds for o in self.outcomes)

    @property
    def passed(self) -> bool:
        ok, n = self.share("clear")
        nok, nn = self.share("null")
        return ok / max(n, 1) >= TARGET_CLEAR and nok == nn


def run(quick: bool = False, log=lambda message: None) -> KRuleResult:
    outcomes = []
    for case in cases(quick):
        log(f"krule: {case.name} ...")
        outcomes.append(run_case(case))
    return KRuleResult(outcomes)


def report(result: KRuleResult) -> str:
    lines = [table(result.outcomes), ""]
    for kind, (ok, n) in shares(result.outcomes).items():
        what = "verdict weak" if kind == "null" else "planted k found"
        lines.append(f"{kind}: {what} in {ok}/{n} ({ok / max(n, 1):.0%})")
    lines.append(f"target: clear >= {TARGET_CLEAR:.0%} and null all weak: "
                 f"{'PASS' if result.passed else 'FAIL'} ({result.seconds:.1f} s choosing k)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one case per k and separation")
    args = ap.parse_args(argv)
    result = run(args.quick, lambda message: print(message, file=sys.stderr, flush=True))
    print(report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
