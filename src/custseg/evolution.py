"""Segment evolution across snapshots, and how often to retrain.

All snapshots are assigned with one model: the first snapshot's own model when it is a segment
run's output, else a model fitted on the first snapshot (the reference). From those assignments:

* **migration matrices** between consecutive snapshots for customers present in both, plus the
  segments of customers who are new in the later one and of those who are gone;
* **size trajectories**: each segment's share in every snapshot;
* **drift trajectories**: each feature's PSI against the reference, and the drift score (the
  largest PSI) with its verdict.

**Retraining advice.** Under a steady drift the PSI of a shifted feature grows with the *square*
of the shift (PSI ≈ δ²/σ² for a mean shift δ), so ``sqrt(score)`` grows about linearly in time.
A straight line is fitted to ``sqrt(score)`` against months since the reference (least squares
through the reference point's noise floor), and the month where it reaches ``sqrt(0.25)`` — the
"retrain" level of PSI — is the recommended interval, with a 90% range from the slope's standard
error. A single jump that explains the trajectory far better than a line (a shock) is reported as
such: retrain now, no schedule follows from it. With no measurable trend the advice is a routine
yearly refit with monthly drift checks.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from scipy import stats

from custseg.drift import (
    PSI_MAJOR,
    PSI_MATERIAL,
    compare_features,
    missing_features_message,
    verdict,
)
from custseg.errors import InputError
from custseg.results.evolution import EvolutionReport, Migration, RetrainAdvice
from custseg.snapshots import Snapshot


def _months_between(a: date | None, b: date | None, fallback: float) -> float:
    if a is None or b is None:
        return fallback
    return (pd.Timestamp(b) - pd.Timestamp(a)).days / 30.4375


def retrain_advice(months: list[float], scores: list[float], verdicts: list[str],
                   names: list[str], threshold: float = PSI_MAJOR) -> RetrainAdvice:
    """Fit sqrt(score) ~ a + b * months and find when it reaches sqrt(threshold)."""
    t = np.asarray(months, dtype="float64")
    y = np.sqrt(np.maximum(np.asarray(scores, dtype="float64"), 0.0))
    crossed = next((n for n, v in zip(names, verdicts, strict=True) if v == "retrain"), None)
    target = float(np.sqrt(threshold))
    if len(t) < 2 or np.ptp(t) <= 0:
        return RetrainAdvice(None, None, None, 0.0, threshold, crossed,
                             "fewer than two snapshots after the reference: no trend to measure")
    step = _step_change(t, y, target)
    if step is not None:
        i, before, after = step
        rationale = (f"a sudden shift at snapshot {names[i]} (√PSI {before:.2f} → {after:.2f}, "
                     "flat before and after): not a trend — retrain now on data from after the "
                     "shift, then refit yearly as routine and run `custseg drift` monthly")
        return RetrainAdvice(None, None, None, 0.0, threshold, crossed or names[i], rationale)
    if len(t) == 2:
        # two points: the reference (t=0, score 0 by definition) and one later snapshot
        slope, intercept, se = y[1] / t[1] if t[1] > 0 else 0.0, 0.0, None
    else:
        res = stats.linregress(t, y)
        slope, intercept, se = float(res.slope), float(res.intercept), float(res.stderr)
    if slope <= 0 or (se is not None and slope <= 1.645 * se):
        rationale = ("no significant upward drift trend across the snapshots "
                     f"(slope {slope:.4f}/month of √PSI); refit yearly as routine and run "
                     "`custseg drift` monthly")
        return RetrainAdvice(12.0 if crossed is None else None, None, None, slope, threshold,
                             crossed, rationale)
    when = (target - intercept) / slope
    low = high = None
    if se is not None:
        z = 1.645
        low = (target - intercept) / (slope + z * se)
        high = (target - intercept) / (slope - z * se) if slope - z * se > 0 else None
    interval = float(max(1.0, np.floor(when))) if when > 0 else 1.0
    rng = (f" (90% range {max(low, 0):.1f}–{high:.1f} months)" if low is not None and high
           else f" (at least {max(low, 0):.1f} months)" if low is not None else "")
    rationale = (f"the drift score grows steadily (√PSI +{slope:.3f}/month) and is projected to "
                 f"reach the retrain level PSI {threshold} after {when:.1f} months{rng}: "
                 f"retrain every {interval:.0f} month{'s' if interval != 1 else ''}")
    if crossed:
        rationale += f"; snapshot {crossed} already crossed it"
    return RetrainAdvice(interval, None if low is None else float(max(low, 0.0)),
                         None if high is None else float(high), slope, threshold, crossed,
                         rationale)


def _step_change(t: np.ndarray, y: np.ndarray, target: float) -> tuple[int, float, float] | None:
    """A single jump explains the trajectory far better than a line: (index, level before,
    level after), else None. Needs two points on each side and a jump past the retrain level."""
    if len(t) < 5:
        return None
    line = stats.linregress(t, y)
    sse_line = float(((y - (line.intercept + line.slope * t)) ** 2).sum())
    best = None
    for i in range(2, len(y) - 1):
        a, b = y[:i].mean(), y[i:].mean()
        sse = float(((y[:i] - a) ** 2).sum() + ((y[i:] - b) ** 2).sum())
        if best is None or sse < best[0]:
            best = (sse, i, float(a), float(b))
    sse_step, i, a, b = best
    if b >= target > a and sse_step < 0.25 * sse_line:
        return i, a, b
    return None


def evolve(snapshots: list[Snapshot], *, model=None, config=None, alpha: float = 0.05,
           seed: int = 0) -> EvolutionReport:
    """Migration, size and drift trajectories, and retraining advice over ordered snapshots."""
    from custseg.ledger import Ledger
    from custseg.pipeline import PreparedData, segment_prepared

    if len(snapshots) < 2:
        raise InputError("evolve needs at least two snapshots")
    # oldest first; snapshots with the same (or no) as-of date keep the order they were given
    snaps = sorted(snapshots, key=lambda s: s.as_of) \
        if all(s.as_of for s in snapshots) else list(snapshots)
    ref = snaps[0]
    notes: list[str] = []
    if model is None and ref.model is not None:
        model = ref.model
    if model is None:
        data = PreparedData(features=ref.features, ledger=Ledger(), as_of=ref.as_of, files={},
                            ignored_columns={})
        res = segment_prepared(data, config=config)
        manifest = {"segments": [{"segment_id": s.segment_id, "name": s.name}
                                 for s in res.profiles.segments]}
        model = (res.model, res.preprocessor, manifest)
        notes.append(f"segments fitted on the reference snapshot {ref.name} (k={res.k})")
    seg_model, pre, manifest = model
    names = {int(s["segment_id"]): s["name"] for s in manifest.get("segments", [])}
    seg_list = [{"segment_id": int(i), "name": names.get(int(i), f"Segment {i}")}
                for i in seg_model.segment_ids_]

    labels: list[pd.Series] = []
    for s in snaps:
        missing = [c for c in [*pre.numeric, *pre.binary, *pre.categorical]
                   if c not in s.features.frame.columns]
        if missing:
            raise InputError(missing_features_message(missing, s.n_customers,
                                                      int(manifest.get("training", {})
                                                          .get("n_customers", 0)), "model"),
                             file=str(s.path or s.name))
        lab = seg_model.predict(pre.transform(s.features.frame))
        labels.append(pd.Series(lab, index=s.features.frame.index))

    def name_of(i: int) -> str:
        return names.get(int(i), f"Segment {i}")

    sizes, counts = {}, {}
    for s, lab in zip(snaps, labels, strict=True):
        vc = lab.value_counts()
        counts[s.name] = {name_of(i): int(vc.get(i, 0)) for i in seg_model.segment_ids_}
        sizes[s.name] = {k: v / max(len(lab), 1) for k, v in counts[s.name].items()}

    migrations = []
    for (a, la), (b, lb) in zip(zip(snaps, labels, strict=True),
                                zip(snaps[1:], labels[1:], strict=True), strict=False):
        both = la.index.intersection(lb.index)
        seg_names = [name_of(i) for i in seg_model.segment_ids_]
        matrix = {f: dict.fromkeys([*seg_names, "gone"], 0) for f in [*seg_names, "new"]}
        ct = pd.crosstab(la.loc[both].to_numpy(), lb.loc[both].to_numpy())
        for i in ct.index:
            for j in ct.columns:
                matrix[name_of(i)][name_of(j)] = int(ct.loc[i, j])
        for j, n in lb.loc[lb.index.difference(la.index)].value_counts().items():
            matrix["new"][name_of(j)] = int(n)
        for i, n in la.loc[la.index.difference(lb.index)].value_counts().items():
            matrix[name_of(i)]["gone"] = int(n)
        stayed = float((la.loc[both].to_numpy() == lb.loc[both].to_numpy()).mean()) \
            if len(both) else 0.0
        migrations.append(Migration(source=a.name, target=b.name, matrix=matrix,
                                    stayed_share=stayed, customers_in_both=int(len(both))))

    numeric = [*pre.numeric, *pre.binary]
    drift_rows = [{"snapshot": ref.name, "as_of": ref.as_of.isoformat() if ref.as_of else None,
                   "months": 0.0, "score": 0.0, "verdict": "stable", "psi": {}}]
    for i, s in enumerate(snaps[1:], start=1):
        fd = compare_features(ref.features.frame, s.features.frame, numeric, pre.categorical,
                              alpha=alpha, seed=seed)
        v, reasons = verdict(fd, None, alpha)
        drift_rows.append({
            "snapshot": s.name, "as_of": s.as_of.isoformat() if s.as_of else None,
            "months": _months_between(ref.as_of, s.as_of, float(i)),
            "score": max((f.psi for f in fd), default=0.0), "verdict": v, "reasons": reasons,
            "psi": {f.feature: f.psi for f in sorted(fd, key=lambda f: f.feature)},
            "drifted": [f.feature for f in fd if f.drifted],
        })
    if any(s.as_of is None for s in snaps):
        notes.append("some snapshots have no as-of date: months are counted as snapshot steps")
    advice = retrain_advice([r["months"] for r in drift_rows], [r["score"] for r in drift_rows],
                            [r["verdict"] for r in drift_rows], [r["snapshot"] for r in drift_rows])
    meta = [{"name": s.name, "as_of": s.as_of.isoformat() if s.as_of else None,
             "customers": s.n_customers, "source": s.source} for s in snaps]
    return EvolutionReport(snapshots=meta, segments=seg_list, sizes=sizes, counts=counts,
                           migrations=migrations, drift=drift_rows, advice=advice, notes=notes)


__all__ = ["evolve", "retrain_advice", "EvolutionReport", "Migration", "RetrainAdvice",
           "PSI_MATERIAL"]
