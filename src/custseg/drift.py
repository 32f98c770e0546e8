"""Drift between two snapshots: per feature, per segment, and a verdict.

Per feature, a registry of tests (:data:`TESTS`) is run: for numbers PSI, KL and Jensen-Shannon
divergence on bins cut at the reference's deciles (plus a bin for missing values), Wasserstein
distance normalised by the reference's standard deviation, and the Kolmogorov-Smirnov test; for
categories chi² (with Cramér's V), Jensen-Shannon and PSI over the union of levels, so new and
vanished levels count.

Empty bins: PSI and KL use Jeffreys smoothing, ``p_i = (c_i + 0.5) / (n + 0.5 B)`` — the
Bayesian estimate under a Dirichlet(½) prior — so they are always finite and an empty bin adds
a bounded amount that shrinks as the sample grows (no epsilon that inflates small samples).
Jensen-Shannon is finite without smoothing and uses the raw shares (base 2, in [0, 1]).

Deciding drift (sample-size aware): a feature has drifted when its PSI is both *material*
(≥ :data:`PSI_MATERIAL`, 0.1) and *significant*: above the ``1 - alpha / n_features`` quantile of
PSI between two samples of the reference's own distribution at the reference's and the current
snapshot's sizes. That null distribution is simulated by drawing multinomial bin counts from the
reference (equivalent to resampling customers, and cheap at any size) and fitted with a scaled
χ² by moments (and the empirical quantile of 2,000 draws, whichever is stricter). With 500 customers
chance differences are large and the threshold rises; with 500,000 it falls to the material
level, so the false-alarm rate stays near ``alpha`` at any size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from custseg.errors import InputError
from custseg.results.drift import (
    PSI_MAJOR,
    PSI_MATERIAL,
    DriftReport,
    FeatureDrift,
    SegmentChange,
    SegmentDrift,
)

TVD_MATERIAL = 0.05
TVD_MAJOR = 0.10
ARI_RETRAIN = 0.75
MISSING = "(missing)"


# ------------------------------------------------------------------------------- binning


@dataclass(frozen=True)
class Bins:
    """How a feature is binned: the reference's deciles, plus out-of-range and missing bins
    (numeric), or the union of levels (categorical)."""

    kind: str
    edges: np.ndarray | None = None
    levels: tuple[str, ...] | None = None

    @property
    def n_bins(self) -> int:
        if self.kind == "numeric":
            assert self.edges is not None
            return len(self.edges) + 2  # value bins + one for missing
        assert self.levels is not None
        return len(self.levels)

    def counts(self, values: pd.Series) -> np.ndarray:
        if self.kind == "numeric":
            assert self.edges is not None
            x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
            finite = np.isfinite(x)
            idx = np.full(len(x), len(self.edges) + 1)
            idx[finite] = np.searchsorted(self.edges, x[finite], side="right")
            return np.bincount(idx, minlength=self.n_bins).astype("float64")
        assert self.levels is not None
        v = values.astype("string").fillna(MISSING)
        codes = pd.Categorical(v, categories=list(self.levels)).codes
        return np.bincount(codes[codes >= 0], minlength=self.n_bins).astype("float64")


def make_bins(ref: pd.Series, cur: pd.Series, kind: str, n_bins: int = 10) -> Bins:
    if kind == "numeric":
        x = pd.to_numeric(ref, errors="coerce").to_numpy(dtype="float64")
        x = x[np.isfinite(x)]
        if x.size == 0:
            return Bins("numeric", edges=np.array([], dtype="float64"))
        qs = np.quantile(x, np.linspace(0, 1, n_bins + 1)[1:-1])
        # values below the reference's minimum and above its maximum get bins of their own, so
        # a shift out of the reference's range (or away from a constant) always shows
        edges = np.r_[x.min(), qs, np.nextafter(x.max(), np.inf)]
        return Bins("numeric", edges=np.unique(edges))
    levels = sorted(_levels(ref) | _levels(cur))
    return Bins("categorical", levels=tuple(str(lv) for lv in levels))


def _levels(values: pd.Series) -> set[str]:
    """The distinct levels of a categorical column (missing as its own level)."""
    return {str(v) for v in values.astype("string").fillna(MISSING).unique()}


def smooth(counts: np.ndarray) -> np.ndarray:
    """Jeffreys-smoothed proportions: (c + 1/2) / (n + B/2)."""
    counts = np.asarray(counts, dtype="float64")
    return (counts + 0.5) / (counts.sum(axis=-1, keepdims=True) + 0.5 * counts.shape[-1])


def psi_from_counts(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Population stability index from bin counts (vectorised over leading axes)."""
    p, q = smooth(ref), smooth(cur)
    return ((q - p) * np.log(q / p)).sum(axis=-1)


def kl_from_counts(ref: np.ndarray, cur: np.ndarray) -> float:
    """KL(current ‖ reference) in nats, Jeffreys-smoothed."""
    p, q = smooth(ref), smooth(cur)
    return float((q * np.log(q / p)).sum())


def js_from_counts(ref: np.ndarray, cur: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (0 = same, 1 = disjoint) from raw shares."""
    if ref.sum() == 0 or cur.sum() == 0:
        return 0.0
    d = jensenshannon(ref / ref.sum(), cur / cur.sum(), base=2)
    return float(d**2) if np.isfinite(d) else 0.0


# ------------------------------------------------------------------------------- test registry


@dataclass(frozen=True)
class Outcome:
    statistic: float
    p_value: float | None = None
    effect: float | None = None


@dataclass(frozen=True)
class Sample:
    """One feature in both snapshots, with its bins and bin counts computed once."""

    reference: pd.Series
    current: pd.Series
    bins: Bins
    ref_counts: np.ndarray
    cur_counts: np.ndarray

    @classmethod
    def of(cls, reference: pd.Series, current: pd.Series, kind: str) -> Sample:
        bins = make_bins(reference, current, kind)
        return cls(reference, current, bins, bins.counts(reference), bins.counts(current))


@dataclass(frozen=True)
class DriftTest:
    """A per-feature drift test. ``compute(sample) -> Outcome``."""

    name: str
    kinds: tuple[str, ...]
    compute: Callable[[Sample], Outcome]
    description: str


TESTS: dict[str, DriftTest] = {}


def register_test(test: DriftTest) -> None:
    """Add a drift test to the registry (it then runs on every feature of its kinds)."""
    TESTS[test.name] = test


EXACT_LIMIT = 50_000  # KS and Wasserstein use a seeded subsample of this size beyond it


def _finite(s: pd.Series) -> np.ndarray:
    """Finite values; above :data:`EXACT_LIMIT` a seeded subsample of that size (KS and
    Wasserstein are reported effect sizes, not the decision, and sorting millions of values per
    feature would dominate the run)."""
    x = pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64")
    x = x[np.isfinite(x)]
    if x.size > EXACT_LIMIT:
        x = np.random.default_rng(x.size).choice(x, EXACT_LIMIT, replace=False)
    return x


def _psi(s: Sample) -> Outcome:
    return Outcome(float(psi_from_counts(s.ref_counts, s.cur_counts)))


def _kl(s: Sample) -> Outcome:
    return Outcome(kl_from_counts(s.ref_counts, s.cur_counts))


def _js(s: Sample) -> Outcome:
    return Outcome(js_from_counts(s.ref_counts, s.cur_counts))


def _wasserstein(s: Sample) -> Outcome:
    a, b = _finite(s.reference), _finite(s.current)
    if a.size == 0 or b.size == 0:
        return Outcome(0.0)
    d = float(stats.wasserstein_distance(a, b))
    scale = float(np.std(a))
    if scale <= 0:
        scale = max(abs(float(np.mean(a))), 1.0)
    return Outcome(d / scale)


def _ks(s: Sample) -> Outcome:
    a, b = _finite(s.reference), _finite(s.current)
    if a.size == 0 or b.size == 0:
        return Outcome(0.0, 1.0)
    if np.ptp(np.r_[a, b]) == 0:
        return Outcome(0.0, 1.0)
    if a.size * b.size <= 10**6:
        res = stats.ks_2samp(a, b, method="auto")
        return Outcome(float(res.statistic), float(res.pvalue), float(res.statistic))
    # large samples: the statistic from the two empirical CDFs, the p-value from Kolmogorov's
    # limiting distribution (what "asymp" converges to, without its slow finite-n series)
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    d = float(np.abs(np.searchsorted(a, grid, side="right") / a.size
                     - np.searchsorted(b, grid, side="right") / b.size).max())
    en = np.sqrt(a.size * b.size / (a.size + b.size))
    return Outcome(d, float(stats.kstwobign.sf(d * en)), d)


def _chi2(s: Sample) -> Outcome:
    table = np.vstack([s.ref_counts, s.cur_counts])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return Outcome(0.0, 1.0, 0.0)
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    v = float(np.sqrt(chi2 / table.sum()))  # Cramér's V for a 2 x C table
    return Outcome(float(chi2), float(p), v)


register_test(DriftTest("psi", ("numeric", "categorical"), _psi,
                        "population stability index, Jeffreys-smoothed bins (decides drift)"))
register_test(DriftTest("kl", ("numeric", "categorical"), _kl,
                        "Kullback-Leibler divergence current ‖ reference, nats, smoothed"))
register_test(DriftTest("js", ("numeric", "categorical"), _js,
                        "Jensen-Shannon divergence, bits, in [0, 1]"))
register_test(DriftTest("wasserstein", ("numeric",), _wasserstein,
                        "Wasserstein distance / reference standard deviation (on at most "
                        "50,000 values per snapshot)"))
register_test(DriftTest("ks", ("numeric",), _ks,
                        "two-sample Kolmogorov-Smirnov statistic and p-value (on at most "
                        "50,000 values per snapshot)"))
register_test(DriftTest("chi2", ("categorical",), _chi2,
                        "chi² test of homogeneity; effect = Cramér's V"))


# ------------------------------------------------------------------------------- calibration


def psi_null(ref_counts: np.ndarray, n_ref: int, n_cur: int, *, n_resamples: int = 2000,
             seed: int = 0, outside: tuple[int, ...] = ()) -> np.ndarray:
    """PSI between two samples (sizes ``n_ref`` and ``n_cur``) of the reference's distribution.

    ``outside`` are the bins beyond the reference's range: the reference has none there by
    construction, but a new sample from the same distribution falls beyond the minimum (or the
    maximum) of ``n_ref`` draws with probability ``1 / (n_ref + 1)``, so the simulated current
    samples get that mass there.
    """
    rng = np.random.default_rng(seed)
    # the bin probabilities are themselves uncertain: draw them from their Jeffreys posterior
    p = rng.dirichlet(np.asarray(ref_counts, dtype="float64") + 0.5, size=n_resamples)
    q = p.copy()
    for b in outside:
        q[:, b] += 1.0 / (n_ref + 1)
    q /= q.sum(axis=1, keepdims=True)
    a = rng.multinomial(n_ref, p)
    b = rng.multinomial(n_cur, q)
    return psi_from_counts(a, b)


def scaled_chi2(null: np.ndarray) -> tuple[float, float]:
    """(scale, df) of the scaled χ² matching the null's mean and variance."""
    m, v = float(np.mean(null)), float(np.var(null))
    if m <= 0 or v <= 0:
        return 0.0, 1.0
    return v / (2 * m), 2 * m * m / v


# ------------------------------------------------------------------------------- per feature


def _describe(s: pd.Series, kind: str) -> dict[str, float | str | None]:
    if kind == "numeric":
        x = pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64")
        f = x[np.isfinite(x)]
        return {"mean": float(f.mean()) if f.size else None,
                "median": float(np.median(f)) if f.size else None,
                "sd": float(f.std()) if f.size else None,
                "missing_share": float(1 - f.size / len(x)) if len(x) else 0.0}
    vc = s.astype("string").fillna(MISSING).value_counts(normalize=True)
    vc = vc.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
    top = vc.index[0] if len(vc) else None
    return {"top": None if top is None else str(top),
            "top_share": float(vc.iloc[0]) if len(vc) else None, "levels": int(len(vc))}


def compare_features(reference: pd.DataFrame, current: pd.DataFrame, numeric: list[str],
                     categorical: list[str], *, alpha: float = 0.05, n_resamples: int = 2000,
                     seed: int = 0) -> list[FeatureDrift]:
    """Run every registered test on every feature present in both frames.

    Returns the features sorted by PSI (largest first).
    """
    features = [(c, "numeric") for c in numeric if c in reference and c in current]
    features += [(c, "categorical") for c in categorical if c in reference and c in current]
    n_ref, n_cur = len(reference), len(current)
    alpha_each = alpha / max(len(features), 1)
    out: list[FeatureDrift] = []
    for i, (col, kind) in enumerate(features):
        r, c = reference[col], current[col]
        sample = Sample.of(r, c, kind)
        results = {}
        for t in TESTS.values():
            if kind in t.kinds:
                o = t.compute(sample)
                results[t.name] = {"statistic": _finite_or_zero(o.statistic),
                                   "p_value": o.p_value, "effect": o.effect}
        rc, cc = sample.ref_counts, sample.cur_counts
        psi = float(psi_from_counts(rc, cc))
        outside = (0, len(sample.bins.edges)) if kind == "numeric" and sample.bins.edges.size \
            else ()
        null = psi_null(rc, n_ref, n_cur, n_resamples=n_resamples, seed=seed + i,
                        outside=outside)
        scale, df = scaled_chi2(null)
        if scale > 0:
            # the scaled-χ² fit gives a smooth tail; the empirical quantile guards against the
            # fit's tail being too light (small samples, few bins): the stricter of the two wins
            emp = float(np.quantile(null, 1 - alpha_each, method="higher"))
            thr = max(float(scale * stats.chi2.ppf(1 - alpha_each, df)), emp)
            p = max(float(stats.chi2.sf(psi / scale, df)),
                    float(((null >= psi).sum() + 1) / (len(null) + 1)) if psi <= null.max()
                    else 0.0)
        else:  # a constant feature in the reference: any change is certain
            thr, p = 0.0, 0.0 if psi > 1e-12 else 1.0
        significant = psi > thr
        material = psi >= PSI_MATERIAL
        drifted = significant and material
        severity = "major" if drifted and psi >= PSI_MAJOR else "minor" if drifted else "none"
        fd = FeatureDrift(feature=col, kind=kind, n_reference=n_ref, n_current=n_cur,
                          tests=results, psi=psi, threshold=max(thr, PSI_MATERIAL), p_value=p,
                          drifted=drifted, severity=severity, reference=_describe(r, kind),
                          current=_describe(c, kind))
        if kind == "categorical":
            ref_lv, cur_lv = _levels(r), _levels(c)
            fd.new_levels = sorted(str(v) for v in cur_lv - ref_lv)
            fd.vanished_levels = sorted(str(v) for v in ref_lv - cur_lv)
        if significant and not material:
            fd.note = "statistically detectable but below the material PSI of 0.1"
        elif material and not significant:
            fd.note = "PSI above 0.1 but within chance at these sample sizes"
        out.append(fd)
    out.sort(key=lambda f: (-f.psi, f.feature))
    return out


def _finite_or_zero(x: float) -> float:
    return float(x) if np.isfinite(x) else 0.0


# ------------------------------------------------------------------------------- segments


def _silhouette(X: np.ndarray, labels: np.ndarray, seed: int) -> float:
    from custseg.selection import silhouette_profile

    if len(np.unique(labels)) < 2:
        return 0.0
    return silhouette_profile(X, labels, size=3000, seed=seed).mean


def compare_segments(reference: pd.DataFrame, current: pd.DataFrame, model, preprocessor,
                     names: dict[int, str], *, seed: int = 0, alpha: float = 0.05,
                     choose_current_k: bool = True) -> SegmentDrift:
    """Segment-level drift of ``model`` (fitted on the reference) on the current customers."""
    from sklearn.metrics import adjusted_rand_score
    from threadpoolctl import threadpool_limits

    from custseg.model import SegmentModel
    from custseg.selection import choose_k

    with threadpool_limits(limits=1):
        Xr, Xc = preprocessor.transform(reference), preprocessor.transform(current)
        lr, lc = model.predict(Xr), model.predict(Xc)
        ids = [int(i) for i in model.segment_ids_]
        cr = np.array([(lr == i).sum() for i in ids], dtype="float64")
        cc = np.array([(lc == i).sum() for i in ids], dtype="float64")
        table = np.vstack([cr, cc])
        table_nz = table[:, table.sum(axis=0) > 0]
        if table_nz.shape[1] > 1:
            chi2, p, _, _ = stats.chi2_contingency(table_nz, correction=False)
        else:
            chi2, p = 0.0, 1.0
        sr, sc = cr / max(cr.sum(), 1), cc / max(cc.sum(), 1)
        tvd = float(0.5 * np.abs(sr - sc).sum())

        k = model.k
        refit = SegmentModel(k=k, seed=seed, n_init=4).fit(Xc, previous=model) \
            if len(Xc) > k else None
        ari = float(adjusted_rand_score(lc, refit.labels_)) if refit is not None else 1.0
        sil_r = _silhouette(Xr, lr, seed)
        sil_c = _silhouette(Xc, refit.labels_, seed) if refit is not None else 0.0
        best_k = None
        if choose_current_k and len(Xc) > 20:
            sel = choose_k(Xc, k_min=2, k_max=min(10, len(Xc) - 1), seed=seed,
                           selection_sample=5000, silhouette_sample=2000, bootstrap=2, n_init=2)
            best_k = sel.k

    changes: list[SegmentChange] = []
    numeric = [c for c in preprocessor.numeric if c in reference and c in current]
    for j, sid in enumerate(ids):
        status = "stable"
        if sc[j] < max(0.01, 0.25 * sr[j]):
            status = "faded"
        elif sc[j] - sr[j] >= 0.02 and sc[j] >= 1.1 * sr[j]:
            status = "grew"
        elif sr[j] - sc[j] >= 0.02 and sc[j] <= sr[j] / 1.1:
            status = "shrank"
        shift = None
        tops: list[dict] = []
        if refit is not None:
            pos = np.flatnonzero(refit.segment_ids_ == sid)
            if pos.size:
                shift = float(np.linalg.norm(refit.cluster_centers_[pos[0]]
                                             - model.cluster_centers_[j]))
                # centroid shift in original units: members under the reference model then,
                # members of the matched refit segment now
                for c in numeric:
                    a = pd.to_numeric(reference[c], errors="coerce").to_numpy()[lr == sid]
                    b = pd.to_numeric(current[c], errors="coerce").to_numpy()[refit.labels_ == sid]
                    if a.size and b.size and np.isfinite(a).any() and np.isfinite(b).any():
                        sd = float(np.nanstd(pd.to_numeric(reference[c], errors="coerce")))
                        ma, mb = float(np.nanmean(a)), float(np.nanmean(b))
                        tops.append({"feature": c, "reference_mean": ma, "current_mean": mb,
                                     "shift_sd": (mb - ma) / sd if sd > 0 else 0.0})
                tops.sort(key=lambda t: (-abs(t["shift_sd"]), t["feature"]))
                tops = tops[:5]
        changes.append(SegmentChange(segment_id=sid, name=names.get(sid, f"Segment {sid}"),
                                     reference_share=float(sr[j]), current_share=float(sc[j]),
                                     status=status, centroid_shift_sd=shift, top_changes=tops))
    notes = []
    if best_k is not None and best_k > k:
        notes.append(f"the current data's own evidence prefers k={best_k} (the model has {k}): "
                     "a new segment may be appearing")
    elif best_k is not None and best_k < k:
        notes.append(f"the current data's own evidence prefers k={best_k} (the model has {k}): "
                     "segments may be merging or fading")
    return SegmentDrift(k=k, share_chi2=float(chi2), share_p_value=float(p), share_tvd=tvd,
                        refit_ari=ari, silhouette_reference=sil_r, silhouette_current=sil_c,
                        current_best_k=best_k, changes=changes, notes=notes)


# ------------------------------------------------------------------------------- verdict


def verdict(features: list[FeatureDrift], segments: SegmentDrift | None,
            alpha: float) -> tuple[str, list[str]]:
    """stable / watch / retrain, with the reasons in words."""
    reasons: list[str] = []
    level = 0
    major = [f for f in features if f.severity == "major"]
    minor = [f for f in features if f.severity == "minor"]
    if major:
        level = 2
        reasons.append("major drift (PSI ≥ 0.25) in " + ", ".join(
            f"{f.feature} ({f.psi:.2f})" for f in major[:5]))
    if minor:
        level = max(level, 1)
        reasons.append("moderate drift (PSI ≥ 0.1) in " + ", ".join(
            f"{f.feature} ({f.psi:.2f})" for f in minor[:5]))
    if segments is not None:
        n_tests = len(features) + 1
        significant = segments.share_p_value < alpha / n_tests
        if significant and segments.share_tvd >= TVD_MAJOR:
            level = 2
            reasons.append(f"segment shares moved by {segments.share_tvd:.0%} (total variation)")
        elif significant and segments.share_tvd >= TVD_MATERIAL:
            level = max(level, 1)
            reasons.append(f"segment shares moved by {segments.share_tvd:.0%} (total variation)")
        if level >= 1 and segments.refit_ari < ARI_RETRAIN:
            level = 2
            reasons.append(f"a refit on current data agrees with the model on only "
                           f"ARI {segments.refit_ari:.2f} of assignments")
        moved = [c for c in segments.changes if c.status in ("grew", "shrank", "faded")]
        if level >= 1 and moved:
            reasons.append("; ".join(f"{c.name} {c.status} ({c.reference_share:.0%} → "
                                     f"{c.current_share:.0%})" for c in moved))
    if level == 0:
        reasons.append("no feature's PSI is both material (≥ 0.1) and beyond chance at these "
                       "sample sizes" + ("; segment shares are steady" if segments else ""))
    return ["stable", "watch", "retrain"][level], reasons


#: below this many customers a snapshot is "small": a column or a level can be constant or
#: absent in it by chance, and then no feature is built from it
SMALL_SNAPSHOT = 100


def missing_features_message(missing: list[str], n_current: int, n_reference: int,
                             what: str = "reference") -> str:
    """Why the current snapshot lacks features the reference (or the model) has, in words."""
    names = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
    text = (f"the current snapshot ({n_current} customers) lacks {len(missing)} feature"
            f"{'s' if len(missing) != 1 else ''} the {what} ({n_reference} customers) has: "
            f"{names}")
    if n_current < SMALL_SNAPSHOT:
        return (text + f"; with only {n_current} customers these columns or category levels "
                "are constant or absent, so no feature is built from them: compare a snapshot "
                f"of at least {SMALL_SNAPSHOT} customers")
    return text + "; the snapshots' columns differ: give both the same columns (and config)"


def compare_snapshots(reference, current, *, model=None, alpha: float = 0.05,
                      n_resamples: int = 2000, seed: int = 0,
                      choose_current_k: bool = True) -> DriftReport:
    """Compare two :class:`~custseg.snapshots.Snapshot` objects.

    ``model`` is ``(SegmentModel, Preprocessor, manifest)``; when omitted the reference's own model
    is used if it is a segment run's output. Features compared are the model's features when a
    model is known, else every numeric and categorical feature both snapshots share.
    """
    model = model if model is not None else reference.model
    rf, cf = reference.features, current.features
    if model is not None:
        pre = model[1]
        numeric = [*pre.numeric, *pre.binary]
        categorical = list(pre.categorical)
    else:
        numeric = [*rf.numeric, *rf.binary]
        categorical = list(rf.categorical)
    if rf.frame.empty or cf.frame.empty:
        empty = reference if rf.frame.empty else current
        raise InputError("the snapshot has no customers left to compare (every row was excluded "
                         "or the table is empty)", file=str(empty.path or empty.name))
    missing = [c for c in [*numeric, *categorical] if c not in cf.frame.columns]
    if missing:
        raise InputError(missing_features_message(missing, len(cf.frame), len(rf.frame)),
                         file=str(current.path or current.name))
    feats = compare_features(rf.frame, cf.frame, numeric, categorical, alpha=alpha,
                             n_resamples=n_resamples, seed=seed)
    seg = None
    if model is not None:
        names = {int(s["segment_id"]): s["name"] for s in model[2].get("segments", [])}
        seg = compare_segments(rf.frame, cf.frame, model[0], model[1], names, seed=seed,
                               alpha=alpha, choose_current_k=choose_current_k)
    v, reasons = verdict(feats, seg, alpha)
    score = max((f.psi for f in feats), default=0.0)
    small = min(reference.n_customers, current.n_customers)
    big = max(reference.n_customers, current.n_customers)
    settings = {"alpha": alpha, "n_resamples": n_resamples, "seed": seed,
                "psi_material": PSI_MATERIAL, "psi_major": PSI_MAJOR,
                "tvd_material": TVD_MATERIAL, "tvd_major": TVD_MAJOR, "ari_retrain": ARI_RETRAIN}
    if big > 20 * small:
        reasons.append(f"note: one snapshot is far smaller ({small:,} vs {big:,} customers); "
                       "thresholds were calibrated for these sizes, so only large changes show")
    meta = [{"name": s.name, "as_of": s.as_of.isoformat() if s.as_of else None,
             "customers": s.n_customers, "source": s.source,
             "path": str(s.path) if s.path else None} for s in (reference, current)]
    return DriftReport(reference=meta[0], current=meta[1], features=feats, segments=seg,
                       verdict=v, reasons=reasons, score=score, settings=settings,
                       test_descriptions={t.name: t.description for t in TESTS.values()})
