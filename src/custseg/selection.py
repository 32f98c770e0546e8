"""Choose the number of segments k from evidence.

For every k in the range, K-Means is fitted on a seeded sample of the customers (all of them when
there are at most ``selection_sample``), and scored with a registry of criteria: inertia (for the
elbow), silhouette (exact, on a stratified sub-sample, computed with blocked matrix products —
:mod:`custseg.fast`, 6-20x faster than scikit-learn's at the same value), Calinski-Harabasz, Davies-Bouldin and
subsample stability (mean adjusted Rand index between the sample's labels and K-Means refitted
on ``bootstrap`` random 80% subsamples), and the silhouette the same K-Means gets on a
no-cluster reference (uniform in the sample's principal-axes bounding box, Tibshirani et al.'s
gap-statistic reference): silhouette falls with k on most data, and so does the reference's, so
their difference (the *gap*) compares k's fairly.

The decision rule (:data:`RULE`) is stated in words and recorded with its reason:

1. Candidates are the k whose stability is at least 0.75 (all k when none is).
2. Among candidates with 3-8 segments (what a marketer can act on), the largest *gap score*
   wins: the silhouette gap plus 0.25 x the log-inertia gap (Tibshirani's gap statistic, per
   customer), both against the same reference. The silhouette gap alone merges close pairs of
   groups; the inertia gap alone over-splits; together they found the planted k most often.
3. A k outside 3-8 (2, 9, 10) must show real structure (gap >= 0.1), and is chosen only when
   it beats that choice by 0.05 or more in both gap and silhouette, or when no k in 3-8 is a
   candidate. With no candidate in 3-8 and none outside with that gap, the most stable k in 3-8
   is used: on data without clusters k = 2 is merely the most reproducible cut, not a finding.
4. The structure verdict for the chosen k: strong (stable, silhouette >= 0.5, gap >= 0.2),
   moderate (stable, silhouette >= 0.25, gap >= 0.1) or weak; ``no_strong_structure`` is
   "weak". Weak means the segments partition a continuum: still useful, boundaries soft.

The thresholds were set on the planted grid of ``benchmarks/bench_krule.py`` (Gaussian blobs,
k = 2..8, imbalance, noise columns, nested groups, and five no-cluster shapes); as tie-breakers
the knee, Calinski-Harabasz and Davies-Bouldin found fewer planted k (Calinski-Harabasz lost
the synthetic personas), so they are reported, not voted.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, davies_bouldin_score
from threadpoolctl import threadpool_limits

from custseg.errors import InputError
from custseg.fast import silhouette_samples_blocked, silhouette_score_blocked
from custseg.results.segmentation import (
    STABILITY_MIN,
    KScore,
    KSelection,
    SilhouetteProfile,
    preferred_k,
)
from custseg.sampling import stratified_sample

Progress = Callable[[str, int, int], None]

PREFERRED = (3, 8)       # segment counts a marketer can act on
INERTIA_WEIGHT = 0.25    # weight of the log-inertia gap in the gap score
OUTSIDE_MARGIN = 0.05    # a k outside PREFERRED must beat the in-range choice by this much
STRONG = (0.50, 0.20)    # (silhouette, gap) a strong structure needs at least
MODERATE = (0.25, 0.10)  # (silhouette, gap) a moderate structure needs at least
RULE = (
    f"candidates are the k whose stability (mean adjusted Rand index of K-Means refitted on "
    f"80% subsamples) is at least {STABILITY_MIN} (all k when none is). Each k is compared with "
    f"the same K-Means on a no-cluster reference (uniform in the data's principal-axes box): "
    f"its gap score is the silhouette gap (silhouette minus the reference's) plus "
    f"{INERTIA_WEIGHT} x the log-inertia gap (log of the reference's within-segment dispersion "
    f"over the data's). Among candidates with {PREFERRED[0]}-{PREFERRED[1]} segments the "
    f"largest gap score wins. A k outside {PREFERRED[0]}-{PREFERRED[1]} needs a silhouette gap "
    f"of at least {MODERATE[1]} and is chosen only when it beats that choice by "
    f"{OUTSIDE_MARGIN} or more in both silhouette gap and silhouette, or when no k inside is a "
    f"candidate; when neither inside nor outside has one, the most stable k in "
    f"{PREFERRED[0]}-{PREFERRED[1]}. Structure: strong when the chosen k is stable with "
    f"silhouette >= {STRONG[0]} and silhouette gap >= {STRONG[1]}; moderate when stable with "
    f"silhouette >= {MODERATE[0]} and silhouette gap >= {MODERATE[1]}; weak otherwise. The "
    f"knee, Calinski-Harabasz and Davies-Bouldin are reported, not voted: as tie-breakers they "
    f"found fewer planted k"
)

STRUCTURE_MESSAGES = {
    "strong": "strong: the segments are well-separated, natural groups; most customers sit "
              "clearly inside one, and the split should hold on new data",
    "moderate": "moderate: there are real groups, but they overlap; read each segment's profile "
                "as a tendency, and expect customers near a boundary to fall either side",
    "weak": "weak: these segments are a useful partition of a continuum, not natural groups; "
            "treat boundaries as soft — another k or another sample would cut the customers "
            "differently",
}


@dataclass(frozen=True)
class Criterion:
    """A k-selection criterion: ``score(X, labels) -> float`` and which direction is better."""

    name: str
    score: Callable[[np.ndarray, np.ndarray], float]
    higher_is_better: bool
    description: str


CRITERIA: dict[str, Criterion] = {}


def register_criterion(criterion: Criterion) -> None:
    """Add a criterion to the registry (it is then computed and reported for every k)."""
    CRITERIA[criterion.name] = criterion


register_criterion(Criterion("calinski_harabasz", calinski_harabasz_score, True,
                             "between- to within-segment dispersion (higher is better)"))
register_criterion(Criterion("davies_bouldin", davies_bouldin_score, False,
                             "mean similarity of each segment to its closest (lower is better)"))


def _knee(ks: list[int], inertia: list[float]) -> int | None:
    if len(ks) < 3:
        return None
    from kneed import KneeLocator

    loc = KneeLocator(ks, inertia, curve="convex", direction="decreasing", S=1.0)
    return int(loc.knee) if loc.knee is not None else None


def selection_sample_of(X: np.ndarray, *, k_min: int, k_max: int, seed: int,
                        size: int) -> tuple[np.ndarray, list[int]]:
    """The seeded sample k is chosen on (all customers when at most ``size``), and the k's
    to try (fewer than the sample's distinct rows). Shared by every engine."""
    n = X.shape[0]
    if n < 3:
        raise InputError(f"only {n} customer(s) left after cleaning; at least 3 are needed "
                         "to form segments")
    k_max = min(k_max, n - 1)
    if k_max < k_min:
        raise InputError(f"{n} customers are too few to try k = {k_min}..; "
                         f"need at least {k_min + 1}")
    rng = np.random.default_rng(seed)
    sample_idx = np.sort(rng.choice(n, size=size, replace=False)) if n > size else np.arange(n)
    Xs = X[sample_idx]
    distinct = len(np.unique(Xs, axis=0))
    ks = [k for k in range(k_min, k_max + 1) if k < distinct]
    if not ks:
        raise InputError(f"the customers have only {distinct} distinct feature profile(s); "
                         "segments cannot be formed")
    return Xs, ks


SUBSAMPLE_FRACTION = 0.8


def null_reference(Xs: np.ndarray, *, seed: int, size: int) -> np.ndarray:
    """A no-cluster reference of the data's extent (Tibshirani et al.'s gap-statistic
    reference): ``size`` points (at most the sample's) drawn uniformly, seeded, in the bounding
    box of the sample along its principal axes. It is what data with no groups but the same
    spread and orientation look like; a Gaussian cloud separates *less* well than it does."""
    rng = np.random.default_rng(seed + 7919)
    rows = np.sort(rng.choice(len(Xs), size=size, replace=False)) if len(Xs) > size \
        else np.arange(len(Xs))
    Z = Xs[rows] - Xs[rows].mean(axis=0)
    _, _, vt = np.linalg.svd(Z, full_matrices=False)
    P = Z @ vt.T
    lo, hi = P.min(axis=0), P.max(axis=0)
    return rng.uniform(lo, hi, size=P.shape)


def null_scores(null: np.ndarray, k: int, *, seed: int) -> tuple[float | None, float | None]:
    """Silhouette and mean squared distance to the centroid (inertia per customer) of K-Means
    with ``k`` segments on the no-cluster reference: what a partition of data without clusters
    (but with the data's extent) scores."""
    if len(null) <= k:
        return None, None
    km = KMeans(n_clusters=k, n_init=2, random_state=seed).fit(null)
    sil = float(silhouette_score_blocked(null, km.labels_)) if len(np.unique(km.labels_)) > 1 \
        else -1.0
    return sil, float(km.inertia_) / len(null)


def subsample_stability(Xs: np.ndarray, labels: np.ndarray, k: int, *, seed: int,
                        resamples: int) -> float:
    """Mean adjusted Rand index between the sample's labels and K-Means (one seeded k-means++
    start) refitted on ``resamples`` random 80% subsamples, compared on the subsample's
    customers. Subsamples (without replacement) have no duplicated rows, so the refits see
    the data's shape, not bootstrap ties."""
    rng = np.random.default_rng(seed + 1000 + k)
    m = max(k + 1, int(round(SUBSAMPLE_FRACTION * len(Xs))))
    aris = []
    for _ in range(resamples):
        idx = rng.choice(len(Xs), size=m, replace=False)
        kb = KMeans(n_clusters=k, n_init=1, random_state=int(rng.integers(2**31))).fit(Xs[idx])
        aris.append(adjusted_rand_score(labels[idx], kb.labels_))
    return float(np.mean(aris))


def score_labels(Xs: np.ndarray, labels: np.ndarray, k: int, *, inertia: float, seed: int,
                 silhouette_sample: int, bootstrap: int,
                 null: np.ndarray | None = None) -> KScore:
    """The evidence for one k from the sample's labels (however they were fitted): exact
    silhouette of a stratified sub-sample, the registered criteria, subsample stability
    (``bootstrap`` refits on 80% subsamples, :func:`subsample_stability`) and the silhouette
    of the same K-Means on the no-cluster reference (:func:`null_reference`; built here from
    the seed when not given). Shared by every engine."""
    many = len(np.unique(labels)) > 1
    sil_idx = stratified_sample(labels, silhouette_sample, np.random.default_rng(seed + k))
    sil = silhouette_score_blocked(Xs[sil_idx], labels[sil_idx]) \
        if len(np.unique(labels[sil_idx])) > 1 else -1.0
    crit = {name: float(c.score(Xs, labels)) if many else float("nan")
            for name, c in CRITERIA.items()}
    stab = subsample_stability(Xs, labels, k, seed=seed, resamples=bootstrap) \
        if bootstrap > 0 else None
    if null is None:
        null = null_reference(Xs, seed=seed, size=silhouette_sample)
    null_sil, null_inertia = null_scores(null, k, seed=seed)
    return KScore(k=k, inertia=inertia, silhouette=float(sil), stability=stab, criteria=crit,
                  null_silhouette=null_sil, null_inertia=null_inertia,
                  mean_inertia=inertia / len(Xs))


def choose_k(X: np.ndarray, *, k_min: int = 2, k_max: int = 10, seed: int = 0,
             selection_sample: int = 20_000, silhouette_sample: int = 4_000, bootstrap: int = 10,
             n_init: int = 4, progress: Progress | None = None,
             workers: int = 2) -> KSelection:
    """Score k = k_min..k_max and pick one by :data:`RULE`.

    Parameters
    ----------
    X : ndarray of shape (n_customers, n_features)
        The preprocessed model matrix.
    selection_sample : int
        K-Means for each k is fitted on at most this many customers (seeded sample).
    silhouette_sample : int
        Silhouette is computed exactly on a stratified sub-sample of this size.
    bootstrap : int
        Refits on 80% subsamples per k for the stability score (0 to skip).
    workers : int
        k's scored at the same time (threads); the result does not depend on it.
    """
    n = X.shape[0]
    Xs, ks = selection_sample_of(X, k_min=k_min, k_max=k_max, seed=seed, size=selection_sample)

    null = null_reference(Xs, seed=seed, size=silhouette_sample)

    def score_k(k: int) -> tuple[KScore, np.ndarray]:
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(Xs)
        return (score_labels(Xs, km.labels_, k, inertia=float(km.inertia_), seed=seed,
                             silhouette_sample=silhouette_sample, bootstrap=bootstrap,
                             null=null),
                km.cluster_centers_)

    # every k is scored independently from its own seeds, so the k's can run side by side:
    # scikit-learn's Lloyd loop and the matrix products release the GIL (2 cores: ~1.8x)
    # (one BLAS/OpenMP thread each then, so that the arithmetic is the same as a serial run
    # under custseg's default of one thread)
    results: dict[int, tuple[KScore, np.ndarray]] = {}
    workers = max(1, min(workers, len(ks)))
    with (threadpool_limits(limits=1) if workers > 1 else nullcontext(),
          ThreadPoolExecutor(max_workers=workers) as pool):
        futures = {pool.submit(score_k, k): k for k in ks}
        for i, fut in enumerate(as_completed(futures)):
            results[futures[fut]] = fut.result()
            if progress:
                progress("choosing k", i + 1, len(ks))
    scores = [results[k][0] for k in ks]
    centers = {k: results[k][1] for k in ks}
    sel = decide(scores, sample_size=len(Xs), silhouette_sample=min(silhouette_sample, len(Xs)),
                 n_customers=n)
    sel.sample_centers = centers
    return sel


def _gap(s: KScore) -> float:
    g = s.silhouette_gap
    return s.silhouette if g is None else g


def usefulness(s: KScore) -> float:
    """What :data:`RULE` maximises: the silhouette gap plus ``INERTIA_WEIGHT`` x the log-inertia
    gap (both against the same no-cluster reference)."""
    w = s.inertia_gap
    return _gap(s) + (0.0 if w is None else INERTIA_WEIGHT * w)


def _pick(cands: list[KScore]) -> tuple[KScore, str]:
    best = max(cands, key=lambda s: (round(usefulness(s), 9), -s.k))
    w = best.inertia_gap
    return best, (f"the largest gap score {usefulness(best):.3f} (silhouette gap {_gap(best):.3f}"
                  + (f" + {INERTIA_WEIGHT} x log-inertia gap {w:.3f})" if w is not None else ")"))


def structure_verdict(score: KScore) -> tuple[str, dict]:
    """strong / moderate / weak for the chosen k, and the evidence (see :data:`RULE`)."""
    gap = score.silhouette_gap
    stable = score.stability is None or score.stability >= STABILITY_MIN
    sil = score.silhouette
    g = -np.inf if gap is None else gap
    if stable and sil >= STRONG[0] and g >= STRONG[1]:
        verdict = "strong"
    elif stable and sil >= MODERATE[0] and g >= MODERATE[1]:
        verdict = "moderate"
    else:
        verdict = "weak"
    evidence = {"k": score.k, "silhouette": round(sil, 4),
                "null_silhouette": None if score.null_silhouette is None
                else round(score.null_silhouette, 4),
                "gap": None if gap is None else round(gap, 4),
                "stability": None if score.stability is None else round(score.stability, 4),
                "stable": stable,
                "strong_needs": {"silhouette": STRONG[0], "gap": STRONG[1], "stable": True},
                "moderate_needs": {"silhouette": MODERATE[0], "gap": MODERATE[1],
                                   "stable": True}}
    return verdict, evidence


def decide(scores: list[KScore], *, sample_size: int, silhouette_sample: int,
           n_customers: int) -> KSelection:
    """Apply :data:`RULE` to per-k scores."""
    ks = [s.k for s in scores]
    knee = _knee(ks, [s.inertia for s in scores])
    warnings: list[str] = []
    if knee is None:
        warnings.append("no knee found in the inertia curve; decided without it")
    stable = [s for s in scores if s.stability is None or s.stability >= STABILITY_MIN]
    if not stable:
        warnings.append(f"no k reached stability {STABILITY_MIN}; all k considered")
        stable = scores
    inside = [s for s in stable if PREFERRED[0] <= s.k <= PREFERRED[1]]
    outside = [s for s in stable if not PREFERRED[0] <= s.k <= PREFERRED[1]]
    cand = "stable " if stable is not scores else ""
    real = [s for s in outside if _gap(s) >= MODERATE[1]]  # outside 3-8 needs real structure
    in_range = [s for s in scores if PREFERRED[0] <= s.k <= PREFERRED[1]]
    if inside:
        chosen, how = _pick(inside)
        why = (f"k={chosen.k} has {how} among {cand}k in {PREFERRED[0]}-{PREFERRED[1]} "
               f"(silhouette {chosen.silhouette:.3f}")
        why += (f" vs {chosen.null_silhouette:.3f} on the no-cluster reference)"
                if chosen.null_silhouette is not None else ")")
        beat = [s for s in real if _gap(s) >= _gap(chosen) + OUTSIDE_MARGIN
                and s.silhouette >= chosen.silhouette + OUTSIDE_MARGIN]
        if beat:
            alt = max(beat, key=lambda s: (_gap(s), -s.k))
            why = (f"k={alt.k} beats the best k in {PREFERRED[0]}-{PREFERRED[1]} (k={chosen.k}) "
                   f"by at least {OUTSIDE_MARGIN} in both silhouette gap ({_gap(alt):.3f} vs "
                   f"{_gap(chosen):.3f}) and silhouette ({alt.silhouette:.3f} vs "
                   f"{chosen.silhouette:.3f})")
            chosen = alt
    elif real or not in_range:
        chosen, how = _pick(real or stable)
        why = (f"no k in {PREFERRED[0]}-{PREFERRED[1]} is {'stable' if in_range else 'tried'}; "
               f"k={chosen.k} has {how} among {cand}k (silhouette "
               f"{chosen.silhouette:.3f})")
    else:
        chosen = max(in_range, key=lambda s: (round(s.stability or 0.0, 2), _gap(s), -s.k))
        why = (f"no k in {PREFERRED[0]}-{PREFERRED[1]} reaches stability {STABILITY_MIN}, and "
               f"no stable k outside it separates the customers better than a no-cluster "
               f"reference does by {MODERATE[1]} (the structure is weak); k={chosen.k} is the "
               f"most stable k in {PREFERRED[0]}-{PREFERRED[1]} (silhouette gap {_gap(chosen):.3f}, "
               f"silhouette {chosen.silhouette:.3f})")
    if chosen.stability is not None:
        why += f"; its stability is {chosen.stability:.2f}"
    if knee == chosen.k:
        why += "; it is the knee of the inertia curve"
    ch = preferred_k(scores, "calinski_harabasz")
    db = preferred_k(scores, "davies_bouldin")
    agree = [name for name, k in (("Calinski-Harabasz", ch), ("Davies-Bouldin", db))
             if k == chosen.k]
    why += (f"; over all k, {' and '.join(agree)} agree" if agree
            else f"; over all k, Calinski-Harabasz prefers k={ch}, Davies-Bouldin k={db}")
    structure, evidence = structure_verdict(chosen)
    why += f". Structure {STRUCTURE_MESSAGES[structure]}"
    return KSelection(k=chosen.k, scores=scores, rule=RULE, reason=why, knee=knee,
                      no_strong_structure=structure == "weak", sample_size=sample_size,
                      silhouette_sample=silhouette_sample, n_customers=n_customers,
                      warnings=warnings, structure=structure, structure_evidence=evidence,
                      structure_message=STRUCTURE_MESSAGES[structure],
                      criteria_descriptions={c.name: c.description for c in CRITERIA.values()})


def restate_structure(sel: KSelection) -> None:
    """Set the structure verdict for ``sel.k`` (after the user fixed k); a k that was not
    scored keeps the rule's verdict."""
    score = sel.score_for(sel.k)
    if score is None:
        return
    sel.structure, sel.structure_evidence = structure_verdict(score)
    sel.structure_message = STRUCTURE_MESSAGES[sel.structure]
    sel.no_strong_structure = sel.structure == "weak"


def silhouette_profile(X: np.ndarray, labels: np.ndarray, *, size: int = 4_000,
                       seed: int = 0) -> SilhouetteProfile:
    """Exact silhouette of a stratified sample of customers under the final labels."""
    idx = stratified_sample(labels, size, np.random.default_rng(seed))
    lab = labels[idx]
    values = silhouette_samples_blocked(X[idx], lab) if len(np.unique(lab)) > 1 \
        else np.zeros(len(idx))
    return SilhouetteProfile(values=values.astype("float64"), labels=lab.astype("int64"),
                             sample_size=len(idx), n_customers=len(labels))


__all__ = ["CRITERIA", "RULE", "STABILITY_MIN", "STRUCTURE_MESSAGES", "Criterion", "KScore",
           "KSelection", "SilhouetteProfile", "choose_k", "decide", "null_reference",
           "register_criterion", "restate_structure", "score_labels", "selection_sample_of",
           "silhouette_profile", "stratified_sample", "structure_verdict", "subsample_stability"]
