"""Segment profiles and evidence-backed names.

:func:`profile_segments` computes, for every segment, its size and value, the mean and median of
each feature, the mix of every categorical column and of the category/channel shares, and the
*standardised difference* of each numeric feature from the population:
``(segment mean - population mean) / population SD``, on ``log1p`` for skewed non-negative
features so that a few extreme customers don't dominate.

Names come from a rules table (``rules/naming.toml`` by default; see :class:`NamingRule`). Rules
fire only when their columns exist; names are assigned by an optimal matching so no two segments
share one; segments no rule fits get a descriptive name from their top features.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import linear_sum_assignment

from custseg.errors import ConfigError
from custseg.fast import map_columns
from custseg.features import FeatureTable
from custseg.labels import feature_label, number
from custseg.results.profiles import Profiles, SegmentMap, SegmentProfile
from custseg.sampling import stratified_sample

_COND = re.compile(r"^\s*(?P<key>[^<>]+?)\s*(?P<op>[<>])\s*(?P<thr>[-+]?\d+(?:\.\d+)?)\s*$")


# ------------------------------------------------------------------------------------ profiles


def _robust_transform(x: np.ndarray) -> np.ndarray:
    finite = x[np.isfinite(x)]
    if finite.size > 2 and finite.min() >= 0 and np.ptp(finite) > 0 and stats.skew(finite) > 1.0:
        return np.log1p(np.maximum(x, 0))
    return x


def _mix(series: pd.Series) -> dict[str, float]:
    counts = series.astype("string").fillna("(missing)").value_counts(normalize=True)
    counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
    return {str(k): float(v) for k, v in counts.items()}


def profile_segments(features: FeatureTable, labels: np.ndarray) -> Profiles:
    """Per-segment statistics and standardised differences from the population."""
    frame = features.frame
    numeric = [c for c in [*features.numeric, *features.binary, *features.descriptive]
               if c in frame.columns]
    seg_ids = sorted(int(s) for s in np.unique(labels))
    n = len(frame)
    # customers grouped by segment once (a stable sort keeps their order, so every slice holds
    # exactly the values a boolean mask would, without k x features passes over all customers)
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    bounds = [tuple(np.searchsorted(sorted_labels, [sid, sid + 1], side="left"))
              for sid in seg_ids]

    def column(c: str) -> tuple[dict[str, float], list[tuple[float, float, float]]]:
        """Population statistics of one feature, and (mean, median, z) in each segment."""
        x = frame[c].to_numpy(dtype="float64")
        t = _robust_transform(x)
        p = {"mean": float(np.nanmean(x)), "median": float(np.nanmedian(x)),
             "sd": float(np.nanstd(x)), "t_mean": float(np.nanmean(t)),
             "t_sd": float(np.nanstd(t))}
        xs, ts = x[order], t[order]
        per_segment = []
        for lo, hi in bounds:
            xi, ti = xs[lo:hi], ts[lo:hi]
            finite = np.isfinite(xi).any()
            mean = float(np.nanmean(xi)) if finite else float("nan")
            median = float(np.nanmedian(xi)) if finite else float("nan")
            sd = p["t_sd"]
            z = float((np.nanmean(ti) - p["t_mean"]) / sd) if sd > 0 and np.isfinite(ti).any() \
                else 0.0
            per_segment.append((mean, median, z))
        return p, per_segment

    # features side by side on big tables (numpy's partitions and gathers release the GIL)
    by_column = dict(zip(numeric, map_columns(column, numeric, n), strict=True))
    pop: dict[str, dict[str, float]] = {c: by_column[c][0] for c in numeric}
    mix_cols = {c: frame[c] for c in features.categorical}
    pop_mixes = {c: _mix(s) for c, s in mix_cols.items()}
    for group, cols in features.groups.items():
        pop_mixes[group] = {feature_label(c).removesuffix(" share").removesuffix(" channel"):
                            float(frame[c].mean()) for c in cols}
    value = frame[features.value_column].to_numpy(dtype="float64") if features.value_column else None
    total_value = float(np.nansum(np.clip(value, 0, None))) if value is not None else None

    segments: list[SegmentProfile] = []
    for i, (sid, (lo, hi)) in enumerate(zip(seg_ids, bounds, strict=True)):
        mask = labels == sid
        size = int(hi - lo)
        means = {c: by_column[c][1][i][0] for c in numeric}
        medians = {c: by_column[c][1][i][1] for c in numeric}
        z = {c: by_column[c][1][i][2] for c in numeric}
        mixes: dict[str, dict[str, float]] = {}
        level_diff: dict[str, float] = {}
        for c, s in mix_cols.items():
            m = _mix(s[mask])
            mixes[c] = {lv: m.get(lv, 0.0) for lv in pop_mixes[c]}
            for lv, p in pop_mixes[c].items():
                level_diff[f"{c}={lv}"] = mixes[c][lv] - p
        for group, cols in features.groups.items():
            labels_ = list(pop_mixes[group])
            mixes[group] = {lab: float(frame[c].to_numpy()[mask].mean())
                            for lab, c in zip(labels_, cols, strict=True)}
        rev = float(np.nansum(np.clip(value[mask], 0, None))) if value is not None else None
        segments.append(SegmentProfile(
            segment_id=sid, size=size, share=size / n,
            revenue=rev,
            revenue_share=(rev / total_value if total_value else None) if rev is not None else None,
            value_per_customer=(rev / size) if rev is not None else None,
            means=means, medians=medians, z=z, mixes=mixes, level_diff=level_diff,
            distinguishing=_distinguishing(z, level_diff, means, pop, features),
        ))
    return Profiles(segments=segments, population=pop, population_mixes=pop_mixes,
                    value_column=features.value_column, features=numeric,
                    units=dict(features.units))


def unit_label(feature: str, units: dict[str, str]) -> str:
    """A feature's label with the unit its column's name gave: "Income (k$)"."""
    unit = units.get(feature)
    return f"{feature_label(feature)} ({unit})" if unit else feature_label(feature)


def _distinguishing(z: dict[str, float], level_diff: dict[str, float], means: dict[str, float],
                    pop: dict[str, dict[str, float]], features: FeatureTable,
                    top: int = 6) -> list[dict]:
    items = []
    model = set(features.numeric) | set(features.binary)
    binary = set(features.binary)
    for c, v in z.items():
        if c in model or c == "online_share":
            items.append({"feature": c, "label": unit_label(c, features.units), "score": v,
                          "segment": means[c], "population": pop[c]["mean"],
                          "kind": "numeric", "binary": c in binary})
    for key, d in level_diff.items():
        # a 20-point difference in a level's share reads about as strongly as 1 SD
        items.append({"feature": key, "label": feature_label(key), "score": d * 5,
                      "segment": None, "population": None, "difference": d, "kind": "level"})
    items.sort(key=lambda it: (-abs(it["score"]), it["feature"]))
    return items[:top]


def value_by_segment(profiles: Profiles, features: FeatureTable, labels: np.ndarray, *,
                     at_risk_below: float = 0.5) -> None:
    """Each segment's forward-looking value from the per-customer value columns (in place):
    active share (P(alive) >= ``at_risk_below``), expected purchases, CLV total and share of
    all customers' CLV, and value at risk: the CLV of its customers whose P(alive) is below
    ``at_risk_below``."""
    f = features.frame
    if "p_alive" not in f.columns:
        return
    p = f["p_alive"].to_numpy(float)
    # (expected purchases are absent when the fit gave none, e.g. on a tiny log)
    purchases = (f["expected_purchases"].to_numpy(float) if "expected_purchases" in f.columns
                 else None)
    clv = f["clv"].to_numpy(float) if "clv" in f.columns else None
    total_clv = float(np.nansum(clv)) if clv is not None else None
    for s in profiles.segments:
        m = labels == s.segment_id
        seg_clv = float(np.nansum(clv[m])) if clv is not None else None
        s.value = {
            "active_share": float(np.mean(p[m] >= at_risk_below)),
            "mean_p_alive": float(np.mean(p[m])),
            "expected_purchases": (float(np.nansum(purchases[m])) if purchases is not None
                                   else None),
            "clv_total": seg_clv,
            "clv_share": (seg_clv / total_clv) if seg_clv is not None and total_clv else None,
            "clv_per_customer": (seg_clv / int(m.sum())) if seg_clv is not None else None,
            "value_at_risk": (float(np.nansum(clv[m & (p < at_risk_below)]))
                              if clv is not None else None),
            "customers_at_risk": int((m & (p < at_risk_below)).sum()),
        }


# ------------------------------------------------------------------------------------ segment map


def fit_projection(X: np.ndarray):
    """The first two principal components of the customers (they need no segments, so this can
    run while the final K-Means does)."""
    from sklearn.decomposition import PCA

    n_comp = min(2, X.shape[1])
    # the covariance eigen-solver is exact and reads X once (1M x 16: 0.1 s instead of 1.2 s)
    solver = "covariance_eigh" if X.shape[0] > 10 * X.shape[1] else "full"
    return PCA(n_components=n_comp, svd_solver=solver).fit(X)


def segment_map(X: np.ndarray, labels: np.ndarray, centroids: np.ndarray,
                segment_ids: np.ndarray, *, size: int = 5_000, seed: int = 0,
                projection=None) -> SegmentMap:
    """Project customers and centroids on the first two principal components
    (``projection``: :func:`fit_projection` of the same ``X``, when already fitted)."""
    pca = projection if projection is not None else fit_projection(X)
    n_comp = pca.n_components_
    idx = stratified_sample(labels, size, np.random.default_rng(seed))
    pts = pca.transform(X[idx])
    cen = pca.transform(centroids)
    if n_comp < 2:  # a single feature: plot it against zero
        pts = np.column_stack([pts, np.zeros(len(pts))])
        cen = np.column_stack([cen, np.zeros(len(cen))])
    ev = [float(v) for v in pca.explained_variance_ratio_] + [0.0]
    # the sign of a principal component is arbitrary: fix it so plots are reproducible
    for j in range(2):
        if cen[:, j].sum() < 0 or (cen[:, j].sum() == 0 and pts[:, j].sum() < 0):
            pts[:, j], cen[:, j] = -pts[:, j], -cen[:, j]
    return SegmentMap(points=pts, labels=labels[idx], centroids=cen, segment_ids=segment_ids,
                      explained_variance=(ev[0], ev[1]), sample_size=len(idx),
                      n_customers=len(labels))


# ------------------------------------------------------------------------------------ naming


@dataclass(frozen=True)
class Condition:
    key: str
    op: str
    threshold: float

    @classmethod
    def parse(cls, text: str, rule: str) -> Condition:
        m = _COND.match(text)
        if not m:
            raise ConfigError(f"naming rule '{rule}': cannot read condition {text!r} "
                              "(expected '<feature> <|> <number>')")
        return cls(m["key"].strip(), m["op"], float(m["thr"]))

    def value(self, seg: SegmentProfile) -> float | None:
        if "=" in self.key:
            col, level = self.key.split("=", 1)
            for k, v in seg.level_diff.items():
                kc, kl = k.split("=", 1)
                if kc.lower() == col.lower() and kl.lower() == level.lower():
                    return v
            return None
        return seg.z.get(self.key)

    def margin(self, seg: SegmentProfile) -> float | None:
        v = self.value(seg)
        if v is None or not np.isfinite(v):
            return None
        return v - self.threshold if self.op == ">" else self.threshold - v


_STAT = r"(?:median|mean|p25|p75)\(\s*[\w=]+\s*\)|share\(\s*\w+\s*(?:<=|>=|<|>)\s*[-+]?\d+(?:\.\d+)?\s*\)"
_CHECK = re.compile(rf"^\s*(?P<lhs>{_STAT}|size_share)\s*(?P<op><=|>=|<|>)\s*(?P<rhs>.+?)\s*$")
_RHS = re.compile(rf"^(?:(?P<num>[-+]?\d+(?:\.\d+)?)\s*(?:\*\s*(?P<ref1>gap|base\.(?:{_STAT})))?"
                  rf"|(?P<ref2>gap|base\.(?:{_STAT})))$")
_FUNC = re.compile(r"^(?P<fn>median|mean|p25|p75|share)\(\s*(?P<feat>\w+)\s*"
                   r"(?:(?P<op><=|>=|<|>)\s*(?P<thr>[-+]?\d+(?:\.\d+)?)\s*)?\)$")
_OPS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}


class SegmentFacts:
    """Absolute statistics of the customers of each segment and of all customers, computed
    on demand from the feature table: ``median(recency_days)``, ``share(frequency <= 1)``,
    ``size_share`` and ``gap``, the data's typical number of days between a repeat customer's
    orders (the median of ``mean_gap_days``; without it, of tenure / (orders - 1))."""

    def __init__(self, features: FeatureTable, labels: np.ndarray):
        self.frame = features.frame
        self.labels = labels
        self._cache: dict[tuple, float | None] = {}
        self.n = len(labels)

    def _values(self, feature: str, segment: int | None) -> np.ndarray | None:
        if feature not in self.frame.columns or not pd.api.types.is_numeric_dtype(
                self.frame[feature]):
            return None
        x = self.frame[feature].to_numpy(dtype="float64")
        if segment is not None:
            x = x[self.labels == segment]
        return x[np.isfinite(x)]

    def stat(self, expr: str, segment: int | None) -> float | None:
        """The value of ``median(f)``, ``mean(f)``, ``p25(f)``, ``p75(f)``, ``share(f op v)``
        over the segment's customers (``segment=None``: all customers), or None when the
        feature is absent or has no values."""
        key = (expr, segment)
        if key in self._cache:
            return self._cache[key]
        m = _FUNC.match(expr.replace(" ", ""))
        out: float | None = None
        if m is not None:
            x = self._values(m["feat"], segment)
            if x is not None and x.size:
                fn = m["fn"]
                if fn == "share":
                    out = float(_OPS[m["op"]](x, float(m["thr"])).mean())
                elif fn == "mean":
                    out = float(x.mean())
                else:
                    out = float(np.quantile(x, {"median": 0.5, "p25": 0.25, "p75": 0.75}[fn]))
        self._cache[key] = out
        return out

    @property
    def gap(self) -> float | None:
        if ("gap", None) not in self._cache:
            out = None
            f = self.frame
            if "frequency" in f.columns:
                repeat = f["frequency"].to_numpy(dtype="float64") >= 2
                if "mean_gap_days" in f.columns:
                    g = f["mean_gap_days"].to_numpy(dtype="float64")[repeat]
                elif "tenure_days" in f.columns:
                    g = (f["tenure_days"].to_numpy(dtype="float64")[repeat]
                         / (f["frequency"].to_numpy(dtype="float64")[repeat] - 1))
                else:
                    g = np.array([])
                g = g[np.isfinite(g) & (g > 0)]
                out = float(np.median(g)) if g.size >= 10 else None
            self._cache[("gap", None)] = out
        return self._cache[("gap", None)]

    def size_share(self, segment: int) -> float:
        return float((self.labels == segment).sum() / self.n) if self.n else 0.0


@dataclass(frozen=True)
class Check:
    """An absolute precondition of a name on the segment's own customers, e.g.
    ``median(recency_days) <= 1.5 * gap`` or ``share(age >= 60) >= 0.5``."""

    text: str
    lhs: str
    op: str
    factor: float
    ref: str | None

    @classmethod
    def parse(cls, text: str, rule: str) -> Check:
        m = _CHECK.match(text)
        r = _RHS.match(m["rhs"].strip()) if m else None
        if not m or not r:
            raise ConfigError(
                f"naming rule '{rule}': cannot read check {text!r} (expected e.g. "
                "'median(recency_days) <= 1.5 * gap', 'share(age >= 60) >= 0.5', "
                "'size_share <= 0.4' or 'mean(monetary) >= 2 * base.median(monetary)')")
        ref = r["ref1"] or r["ref2"]
        factor = float(r["num"]) if r["num"] is not None else 1.0
        return cls(text=text.strip(), lhs=m["lhs"].replace(" ", ""), op=m["op"], factor=factor,
                   ref=ref.replace(" ", "") if ref else None)

    def evaluate(self, facts: SegmentFacts, segment: int) -> dict:
        """The check on one segment: its value, the threshold and the base value beside it,
        and whether it holds (a check that cannot be evaluated does not hold)."""
        if self.lhs == "size_share":
            value, base = facts.size_share(segment), None
        else:
            value, base = facts.stat(self.lhs, segment), facts.stat(self.lhs, None)
        if self.ref is None:
            ref_value = 1.0
        elif self.ref == "gap":
            ref_value = facts.gap
        else:
            ref_value = facts.stat(self.ref.removeprefix("base."), None)
        threshold = None if ref_value is None else self.factor * ref_value
        holds = (value is not None and threshold is not None
                 and bool(_OPS[self.op](value, threshold)))
        return {"check": self.text, "value": value, "threshold": threshold, "base": base,
                "reference": self.ref, "reference_value": ref_value, "holds": holds,
                "text": _describe_check(self, value, threshold, base, ref_value)}


_FN_WORDS = {"median": "median", "mean": "mean", "p25": "25th percentile of",
             "p75": "75th percentile of"}


_OP_WORDS = {"<": "<", ">": ">", "<=": "≤", ">=": "≥"}


def _plain(label: str) -> str:
    """A label inside a sentence: lower case but for acronyms ("Spending Score (1-100)" ->
    "spending score (1-100)", "RFM" stays)."""
    return " ".join(w if (w.isupper() and len(w) > 1) else w.lower() for w in label.split())


def _num(x: float) -> str:
    return f"{x:g}" if abs(x) < 1e6 else f"{x:,.0f}"


def _describe_check(check: Check, value: float | None, threshold: float | None,
                    base: float | None, ref_value: float | None) -> str:
    """A check in words with the segment's figure and the base beside it, e.g. "Median
    recency (days) 16.0 (all customers 50.0); needed ≤ 57.0 (1.5 × the typical gap between
    orders, 38.0 days)"."""
    if check.lhs == "size_share":
        what, fmt = "share of all customers", _pct
    else:
        m = _FUNC.match(check.lhs)
        assert m is not None
        label = _plain(feature_label(m["feat"]))
        if m["fn"] == "share":
            what = f"share with {label} {_OP_WORDS[m['op']]} {_num(float(m['thr']))}"
            fmt = _pct
        else:
            what, fmt = f"{_FN_WORDS[m['fn']]} {label}", _fmt
    text = f"{what} {fmt(value)}"
    if base is not None:
        text += f" (all customers {fmt(base)})"
    needed = f"{_OP_WORDS[check.op]} {fmt(threshold)}"
    times = "" if check.factor == 1 else f"{_num(check.factor)} × "
    if check.ref == "gap":
        needed += f" ({times}the typical gap between orders, {_fmt(ref_value)} days)"
    elif check.ref:
        fn = _FUNC.match(check.ref.removeprefix("base."))
        stat = _FN_WORDS.get(fn["fn"], fn["fn"]) if fn else check.ref
        needed += f" ({times}the {stat} of all customers)"
    return f"{text[:1].upper()}{text[1:]}; needed {needed}"


def _pct(x: float | None) -> str:
    """A share: one decimal (35.3%), so a figure and the threshold it misses never print the
    same."""
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.1%}"


@dataclass(frozen=True)
class NamingRule:
    name: str
    description: str
    require: tuple[Condition, ...]
    support: tuple[Condition, ...]
    actions: dict[str, str]
    checks: tuple[Check, ...] = ()

    def score(self, seg: SegmentProfile) -> float | None:
        """Score when the rule fires for ``seg``, else None."""
        total = 0.0
        for c in self.require:
            m = c.margin(seg)
            if m is None or m <= 0:
                return None
            total += m
        for c in self.support:
            m = c.margin(seg)
            if m is not None and m > 0:
                total += 0.5 * m
        return total


def load_rules(path: str | Path | None = None) -> list[NamingRule]:
    """The naming rules table: the built-in one, or a user's TOML file of the same shape."""
    if path is None:
        text = resources.files("custseg").joinpath("rules/naming.toml").read_text(encoding="utf-8")
        src = "built-in naming rules"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read naming rules ({exc.strerror})") from None
        src = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{src}: invalid TOML ({exc})") from None
    rules = []
    for r in data.get("rule", []):
        if "name" not in r or "require" not in r:
            raise ConfigError(f"{src}: every [[rule]] needs 'name' and 'require'")
        rules.append(NamingRule(
            name=r["name"], description=r.get("description", ""),
            require=tuple(Condition.parse(c, r["name"]) for c in r["require"]),
            support=tuple(Condition.parse(c, r["name"]) for c in r.get("support", [])),
            actions=dict(r.get("actions", {})),
            checks=tuple(Check.parse(c, r["name"]) for c in r.get("check", [])),
        ))
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ConfigError(f"{src}: rule names must be unique")
    return rules


def _evidence(cond: Condition, seg: SegmentProfile, pop: dict[str, dict[str, float]],
              units: dict[str, str] | None = None) -> str:
    v = cond.value(seg)
    if "=" in cond.key:
        col, level = cond.key.split("=", 1)
        seg_share = seg.mixes.get(col, {}).get(level)
        base = (seg_share - v) if seg_share is not None and v is not None else None
        if seg_share is None:
            return f"{feature_label(cond.key)} {v:+.0%} vs population"
        return (f"{feature_label(col)} '{level}': {seg_share:.0%} of the segment vs "
                f"{base:.0%} overall")
    mean = seg.means.get(cond.key)
    pmean = pop.get(cond.key, {}).get("mean")
    return (f"{unit_label(cond.key, units or {})} {_fmt(mean)} vs {_fmt(pmean)} overall "
            f"({v:+.1f} SD)")


def _notable(cond: Condition, seg: SegmentProfile) -> bool:
    """Supporting evidence worth showing: at least 0.2 SD, or 5 points for a level's share."""
    v = cond.value(seg)
    return v is not None and abs(v) >= (0.05 if "=" in cond.key else 0.2)


def _fmt(x: float | None) -> str:
    return number(x)


def name_segments(profiles: Profiles, rules: list[NamingRule],
                  facts: SegmentFacts | None = None) -> None:
    """Give every segment a unique name with evidence (in place).

    A rule is a candidate for a segment when its relative ``require`` conditions hold *and*
    every absolute ``check`` holds on the segment's own customers (``facts``; without them a
    rule with checks is never given). A rule whose conditions fire but whose checks fail is
    recorded in ``names_rejected`` with the failing figures, so the report can say why.
    """
    segs = profiles.segments
    evaluated: dict[tuple[int, int], list[dict]] = {}
    if rules:
        score = np.full((len(segs), len(rules)), -1.0)
        for i, s in enumerate(segs):
            s.names_rejected = []
            for j, r in enumerate(rules):
                v = r.score(s)
                if v is None:
                    continue
                checks = ([c.evaluate(facts, s.segment_id) for c in r.checks]
                          if facts is not None else [])
                if r.checks and (facts is None or not all(c["holds"] for c in checks)):
                    s.names_rejected.append({
                        "name": r.name,
                        "failed": [c["text"] for c in checks if not c["holds"]]
                        or ["its checks need the customers' own figures"]})
                    continue
                score[i, j] = v
                evaluated[(i, j)] = checks
        # maximise the total score; a rule that does not fire costs a lot
        cost = np.where(score >= 0, -score, 1e6)
        rows, cols = linear_sum_assignment(cost)
        for i, j in zip(rows, cols, strict=True):
            if score[i, j] < 0:
                continue
            s, r = segs[i], rules[j]
            s.name, s.name_rule, s.description = r.name, r.name, r.description
            s.checks = evaluated[(i, j)]
            # a requirement that only bounds a range (age between ...) and is near the average
            # is not evidence worth showing; each feature is shown once
            conds = [c for c in r.require if _notable(c, s)]
            conds += [c for c in r.support if (c.margin(s) or 0) > 0 and _notable(c, s)]
            seen: set[str] = set()
            s.evidence = _check_evidence(s.checks)
            for c in conds:
                if c.key not in seen:
                    seen.add(c.key)
                    s.evidence.append(_evidence(c, s, profiles.population, profiles.units))
    used = {s.name for s in segs if s.name}
    for s in segs:
        if s.name:
            continue
        s.name = _descriptive_name(s, used)
        used.add(s.name)
        s.description = "No archetype's checks hold; named after its most distinctive traits."
        s.evidence = [numeric_evidence(d) if d["kind"] == "numeric" else _level_evidence(d, s)
                      for d in s.distinguishing[:3]]


def numeric_evidence(d: dict) -> str:
    """A distinguishing feature with both figures: "Income (k$) 86.1 vs 60.6 overall (+1.0 SD)";
    a 0/1 feature as shares: "Dependents: 62% of the segment vs 30% overall"."""
    if d.get("binary"):
        return (f"{d['label']}: {_pct(d['segment'])} of the segment vs {_pct(d['population'])} "
                "overall")
    return (f"{d['label']} {_fmt(d['segment'])} vs {_fmt(d['population'])} overall "
            f"({d['score']:+.1f} SD)")


def _check_evidence(checks: list[dict]) -> list[str]:
    """One line per statistic: "Median recency (days) 3.00 (all customers 50.0); needed ≤ 53.5
    (the typical gap between orders, 53.5 days) and ≤ 25.0 (0.5 × the median of all customers)"."""
    merged: dict[str, list[str]] = {}
    for c in checks:
        head, _, needed = c["text"].partition("; needed ")
        merged.setdefault(head, []).append(needed)
    return [f"{head}; needed {' and '.join(n)}" for head, n in merged.items()]


def _level_evidence(d: dict, seg: SegmentProfile) -> str:
    col, level = d["feature"].split("=", 1)
    share = seg.mixes.get(col, {}).get(level)
    if share is None:
        return f"{d['label']}: {d['difference']:+.0%} points vs overall"
    return (f"{feature_label(col)} '{level}': {share:.0%} of the segment vs "
            f"{share - d['difference']:.0%} overall")


# plain words for a trait that is high / low in a segment: (low, high)
_TRAIT_WORDS = {
    "age": ("Younger", "Older"),
    "recency_days": ("Recent buyers", "Long inactive"),
    "frequency": ("Infrequent", "Frequent"),
    "monetary": ("Low spend", "High spend"),
    "avg_order_value": ("Small baskets", "Big baskets"),
    "tenure_days": ("Newer", "Long-standing"),
    "return_rate": ("Few returns", "Many returns"),
    "discount_share": ("Full price", "Deal-seeking"),
    "income": ("Lower income", "Higher income"),
    "education_level": ("Less formal education", "Higher education"),
    "children": ("Fewer children", "More children"),
    "household_size": ("Smaller households", "Larger households"),
    "purchase_rate": ("Rare buyers", "Regular buyers"),
    "items_per_order": ("Few items per order", "Many items per order"),
    "online_share": ("Offline", "Online"),
}
# a column label ending in one of these says nothing a level doesn't ("Marital status: married"
# is "Married")
_GENERIC_LABEL_WORDS = {"status", "type", "level", "group", "class", "category", "kind", "tier"}
_VAGUE_LEVELS = {"unknown", "unk", "other", "others", "missing", "na", "none", "notknown",
                 "blank", "nonexistent"}
_YES = {"yes", "y", "true"}  # (a level "1" is a code: "Channel 1")
_NO = {"no", "n", "false"}
MAX_NAME = 40


def trait_words(d: dict) -> str | None:
    """A distinguishing trait in plain words ("Older", "High spending score", "Month-to-month",
    "No dependents"); None for an under-represented level (its complement says nothing new)."""
    if d["kind"] == "numeric":
        f, high = d["feature"], d["score"] > 0
        if f in _TRAIT_WORDS:
            return _TRAIT_WORDS[f][high]
        label = feature_label(f)
        for prefix, word in (("cat_share_", "buyers"), ("chan_share_", "shoppers")):
            if f.startswith(prefix):
                what = f[len(prefix):].replace("_", " ")
                return f"{what.capitalize()} {word}" if high else f"Little {what}"
        label = re.sub(r"\s*\([^)]*\)", "", label).strip()  # units and scales go
        return f"{'High' if high else 'Low'} {_plain(label)}"
    col, level = d["feature"].split("=", 1)
    if d["score"] <= 0:
        return None
    label = re.sub(r"\s*\([^)]*\)", "", feature_label(col)).strip()
    label = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", label)  # "InternetService" -> "Internet Service"
    lv = level.strip()
    if lv.lower() in _YES:
        return label
    if lv.lower() in _NO:
        return f"No {_plain(label)}"
    if re.sub(r"[^a-z]", "", lv.lower()) in _VAGUE_LEVELS:
        return None  # "unknown", "other": not a trait to name a segment after
    if re.fullmatch(r"[-+]?\d+(?:\.\d+)?", lv) or len(lv) < 3:
        return f"{label} {lv}"
    words = re.findall(r"[a-z]+", label.lower())
    if (set(words) & set(re.findall(r"[a-z]+", lv.lower())) or label.lower() in ("gender", "sex")
            or (words and words[-1] in _GENERIC_LABEL_WORDS) or lv.lower().startswith("no ")):
        return lv[:1].upper() + lv[1:]  # "No internet service", "Female", "Married"
    return f"{lv[:1].upper()}{lv[1:]} {_plain(label)}"  # "Month-to-month contract"


def _join_traits(parts: list[str]) -> str:
    """"Older", "High income" -> "Older, high income" (a word in capitals keeps them)."""
    out = parts[:1]
    for p in parts[1:]:
        out.append(p if p[:2].isupper() else p[:1].lower() + p[1:])
    return ", ".join(out)


def _descriptive_name(seg: SegmentProfile, used: set[str]) -> str:
    """Two (or three) of the segment's most distinguishing traits in plain words, at most
    :data:`MAX_NAME` characters, unique among the segments."""
    parts: list[str] = []
    columns: set[str] = set()
    name = ""
    for d in seg.distinguishing:
        if abs(d["score"]) < 0.25:
            break
        col = d["feature"].split("=", 1)[0]
        words = trait_words(d)
        if words is None or col in columns or words in parts:
            continue
        candidate = _join_traits([*parts, words])
        if len(candidate) > MAX_NAME:
            if len(parts) >= 2:
                break
            continue
        columns.add(col)
        parts.append(words)
        name = candidate
        if len(parts) >= 2 and name not in used:
            return name
    if not name:
        name = "Typical customers"
    base, i = name, 2
    while name in used:
        name = f"{base} ({i})"
        i += 1
    return name
