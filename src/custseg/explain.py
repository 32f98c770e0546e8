"""Why a customer is in its segment: the two or three features that place it there.

In the model's scaled space the base (all customers) sits near 0 on every feature and a segment's
centroid departs from it on the features that define the segment. A feature *places* a customer
in its segment when the customer departs from the base in the same direction as the centroid;
its weight is the part of the departure they share, ``min(|x|, |c|)`` (0 when the signs differ).
The strongest two (at least :data:`MIN_WEIGHT` SD each) are given in words with the customer's
own value, the segment's median and the base's median:
"Orders 12 (segment 8.00, all 2.00); Recency (days) 5.00 (segment 16.0, all 50.0)".

Only numeric and 0/1 model features are used (a category level is one of many one-hot columns).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from custseg.labels import feature_label
from custseg.labels import number as _fmt

MIN_WEIGHT = 0.25   # a shared departure of at least a quarter SD
TOP = 2
CHUNK = 200_000


def why_placed(X: np.ndarray, centroid_rows: np.ndarray, centroids: np.ndarray,
               columns: Sequence[str], features: Sequence[str], values: Mapping[str, np.ndarray],
               segment_medians: Sequence[Mapping[str, float]], base_medians: Mapping[str, float],
               units: Mapping[str, str] | None = None, top: int = TOP) -> list[str]:
    """Per customer (row of ``X``, the model matrix), the features that place it in its segment.

    ``centroid_rows``: each customer's row in ``centroids`` (and in ``segment_medians``);
    ``columns``: the names of ``X``'s columns; ``features``: the numeric / 0-1 features to
    consider (each one column of ``X``); ``values``: each feature's values in original units.
    """
    units = units or {}
    col_of = {c: i for i, c in enumerate(columns)}
    feats = [f for f in features if f in col_of and f in values]
    if not feats or len(X) == 0:
        return [""] * len(X)
    idx = np.array([col_of[f] for f in feats])
    labels = [feature_label(f) + (f" ({units[f]})" if f in units else "") for f in feats]
    out: list[str] = []
    for lo in range(0, len(X), CHUNK):
        hi = min(lo + CHUNK, len(X))
        x = X[lo:hi][:, idx]
        c = centroids[centroid_rows[lo:hi]][:, idx]
        weight = np.where(np.sign(x) == np.sign(c), np.minimum(np.abs(x), np.abs(c)), 0.0)
        weight = np.where(np.isfinite(weight), weight, 0.0)
        order = np.argsort(-weight, axis=1, kind="stable")[:, :top]
        for r in range(hi - lo):
            parts = []
            seg = segment_medians[centroid_rows[lo + r]]
            for j in order[r]:
                if weight[r, j] < MIN_WEIGHT:
                    break
                f = feats[j]
                v = values[f][lo + r]
                parts.append(f"{labels[j]} {_fmt(v)} (segment {_fmt(seg.get(f))}, "
                             f"all {_fmt(base_medians.get(f))})")
            out.append("; ".join(parts))
    return out


__all__ = ["MIN_WEIGHT", "why_placed"]
