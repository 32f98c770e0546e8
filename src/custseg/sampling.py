"""Seeded samples shared by k selection, the silhouette kernels and the segment map."""

from __future__ import annotations

import numpy as np


def stratified_sample(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a sample of ``size`` rows with every label represented in proportion
    (at least a few rows of each, so small segments are not missed)."""
    n = len(labels)
    if n <= size:
        return np.arange(n)
    out = []
    uniq, counts = np.unique(labels, return_counts=True)
    for lab, cnt in zip(uniq, counts, strict=True):
        idx = np.flatnonzero(labels == lab)
        take = min(cnt, max(5, int(round(size * cnt / n))))
        out.append(rng.choice(idx, size=take, replace=False))
    return np.sort(np.concatenate(out))
