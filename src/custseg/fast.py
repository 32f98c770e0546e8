"""Fast numerical kernels: the exact blocked silhouette, and per-column work on two threads.

The silhouette works in the dtype of the data (float32 stays float32 end to end; any other dtype
is converted to float64) and uses matrix products for the distance work, in blocks, so memory
stays bounded whatever the number of customers:

* :func:`silhouette_samples_blocked` / :func:`silhouette_score_blocked` compute the *exact*
  silhouette (the same definition as :func:`sklearn.metrics.silhouette_samples`) from squared
  distances ``||x||² + ||y||² - 2 x·y`` produced by one matrix product per tile, using each
  distance once for both of its ends (the matrix is symmetric). Memory is O(``block``²).

To draw the stratified sample on which silhouette is usually computed, use
:func:`custseg.sampling.stratified_sample` (re-exported here for convenience).

``benchmarks/`` compares these kernels with scikit-learn. (A chunked Lloyd iteration that used to
live here, slower than scikit-learn's and used by no stage, is ``benchmarks/lloyd.py`` now.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from custseg.sampling import stratified_sample

__all__ = [
    "map_columns",
    "silhouette_samples_blocked",
    "silhouette_score_blocked",
    "stratified_sample",
]

_T = TypeVar("_T")
_R = TypeVar("_R")

#: below this many rows a table's columns are processed one after the other
PARALLEL_ROWS = 200_000


def map_columns(fn: Callable[[_T], _R], items: Sequence[_T], n_rows: int) -> list[_R]:
    """``[fn(item) for item in items]``, on two threads for big tables.

    For per-column numpy work (sorts, partitions, gathers, ufuncs and reductions release the
    GIL): each item is computed alone and the results come back in order, so they are identical
    to the serial loop's.
    """
    if n_rows < PARALLEL_ROWS or len(items) < 2:
        return [fn(it) for it in items]
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(fn, items))


def _as_float_matrix(X: np.ndarray, name: str = "X") -> np.ndarray:
    """``X`` as a 2-D float32 or float64 array (other dtypes become float64)."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (rows × features); got {X.ndim} dimension(s)")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    return X


# --------------------------------------------------------------------------------- silhouette


def silhouette_samples_blocked(
    X: np.ndarray, labels: np.ndarray, *, block: int = 2048
) -> np.ndarray:
    """Exact silhouette coefficient of every row, computed with blocked matrix products.

    The definition is scikit-learn's: for row *i* in cluster *A*, ``a`` is the mean distance to
    the other members of *A*, ``b`` the smallest mean distance to the members of another
    cluster, and ``s = (b - a) / max(a, b)``; ``s = 0`` for a member of a single-row cluster
    (and where ``a = b = 0``). Distances are Euclidean.

    The rows are ordered by cluster and cut into blocks of at most ``block`` rows that never
    straddle two clusters. For every pair of blocks (each unordered pair once) one matrix
    product gives the squared distances (``||x||² + ||y||² - 2 x·y`` through augmented
    matrices), which are clipped at 0 and square-rooted in place; their row sums go to the
    first block's rows (for the second block's cluster) and their column sums to the second
    block's rows (for the first block's cluster). The self-distances are set to exactly 0.
    Memory is O(``block``²) beyond the O(n × k) per-cluster sums; time is O(n² × d) with
    half the pairs of a full distance matrix.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The rows. float32 is computed in float32, anything else in float64. The columns are
        centred first (distances do not change; rounding error in the expanded form does).
    labels : ndarray of shape (n_samples,)
        Cluster label of each row (any hashable values numpy can sort).
    block : int, default 2048
        Largest number of rows in a block; a tile of distances is at most ``block`` × ``block``.

    Returns
    -------
    ndarray of shape (n_samples,), float64
        Silhouette of each row, in the order of ``X``.

    Raises
    ------
    ValueError
        If the shapes disagree, ``X`` holds NaN or infinity, or the number of distinct labels
        is not between 2 and ``n_samples - 1`` (as scikit-learn requires).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [10.0], [11.0]])
    >>> silhouette_samples_blocked(X, np.array([0, 0, 1, 1])).round(3)
    array([0.905, 0.895, 0.895, 0.905])
    """
    X = _as_float_matrix(X)
    labels = np.asarray(labels)
    n, d = X.shape
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) to match X; got {labels.shape}")
    if block < 1:
        raise ValueError(f"block must be at least 1; got {block}")
    uniq, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    k = len(uniq)
    if not 2 <= k <= n - 1:
        raise ValueError(
            f"Number of labels is {k}. Valid values are 2 to n_samples - 1 "
            f"(inclusive); n_samples is {n}"
        )
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinity; silhouette needs finite values")
    codes = codes.reshape(-1)
    dt = X.dtype

    # Rows ordered by cluster, centred; augmented so one product gives squared distances:
    # [x, |x|², 1] · [-2y, 1, |y|²] = |x|² + |y|² - 2 x·y.
    order = np.argsort(codes, kind="stable")
    Xs = X[order] - X.mean(axis=0, dtype=np.float64).astype(dt)
    sq = np.einsum("ij,ij->i", Xs, Xs, dtype=np.float64).astype(dt)
    left = np.empty((n, d + 2), dtype=dt)
    left[:, :d] = Xs
    left[:, d] = sq
    left[:, d + 1] = 1
    right = np.empty((n, d + 2), dtype=dt)
    np.multiply(Xs, -2, out=right[:, :d])
    right[:, d] = 1
    right[:, d + 1] = sq
    del Xs

    bounds = np.concatenate([[0], np.cumsum(counts)])
    blocks = [
        (start, min(start + block, int(bounds[j + 1])), j)
        for j in range(k)
        for start in range(int(bounds[j]), int(bounds[j + 1]), block)
    ]
    sums = np.zeros((n, k))  # sums[i, j] = total distance from (sorted) row i to cluster j
    side = min(block, int(counts.max()))  # no block is longer than the largest cluster
    tile_buffer = np.empty(side * side, dtype=dt)
    for p, (s0, e0, c0) in enumerate(blocks):
        rows = left[s0:e0]
        for s1, e1, c1 in blocks[p:]:
            tile = tile_buffer[: (e0 - s0) * (e1 - s1)].reshape(e0 - s0, e1 - s1)
            np.matmul(rows, right[s1:e1].T, out=tile)
            if s1 == s0:  # a diagonal tile: zero self-distances
                tile.flat[:: e1 - s1 + 1] = 0
            np.maximum(tile, 0, out=tile)
            np.sqrt(tile, out=tile)
            sums[s0:e0, c1] += tile.sum(axis=1)
            if s1 != s0:
                sums[s1:e1, c0] += tile.sum(axis=0)

    own = codes[order]
    own_size = counts[own]
    rows_idx = np.arange(n)
    a = sums[rows_idx, own] / np.maximum(own_size - 1, 1)
    mean_to = sums / counts
    mean_to[rows_idx, own] = np.inf
    b = mean_to.min(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = (b - a) / np.maximum(a, b)
    s[(own_size == 1) | ~np.isfinite(s)] = 0.0
    out = np.empty(n)
    out[order] = s
    return out


def silhouette_score_blocked(X: np.ndarray, labels: np.ndarray, *, block: int = 2048) -> float:
    """Mean exact silhouette of all rows (see :func:`silhouette_samples_blocked`).

    Equal to :func:`sklearn.metrics.silhouette_score` with the Euclidean metric and no
    sampling. To score a large population, pass a stratified sample (rows and labels chosen
    with :func:`custseg.sampling.stratified_sample`).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [10.0], [11.0]])
    >>> round(silhouette_score_blocked(X, np.array([0, 0, 1, 1])), 4)
    0.8997
    """
    return float(silhouette_samples_blocked(X, labels, block=block).mean())
