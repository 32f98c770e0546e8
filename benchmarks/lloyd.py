"""One Lloyd (K-Means) iteration in chunks of rows: the kernel ``bench_kmeans.py`` times.

It lived in ``custseg.fast`` but no stage used it (the segmentation fits with scikit-learn's
K-Means, which is faster), so it is benchmark code now: a reference point for how close a plain
numpy Lloyd step gets to scikit-learn and to the memory-bandwidth bound.

It works in the dtype of the data (float32 stays float32 end to end; any other dtype is converted
to float64): one Lloyd step assigns every row to its nearest centre, then moves each centre to the
mean of its rows, in chunks of rows, with the centroid sums taken as a one-hot matrix product.
"""

from __future__ import annotations

import numpy as np

from custseg.fast import _as_float_matrix

__all__ = ["lloyd_iteration"]



class _LloydBuffers:
    """Scratch arrays for one chunk of ``m`` rows, reused across chunks (no per-chunk
    allocation: fresh pages for every chunk cost more than the arithmetic)."""

    def __init__(self, m: int, k: int, d: int, dtype: np.dtype) -> None:
        self.dist = np.empty((m, k), dtype=dtype)  # -2 x·c, one row per data row
        self.dist_t = np.empty((k, m), dtype=dtype)  # |c|² - 2 x·c, one row per centre
        self.onehot = np.empty((k, m), dtype=dtype)  # 1 where the centre is the nearest
        self.label_f = np.empty(m, dtype=dtype)
        self.ones = np.ones(m, dtype=dtype)
        self.count = np.empty(k, dtype=dtype)
        self.sums = np.empty((k, d), dtype=dtype)


def lloyd_iteration(
    X: np.ndarray, centers: np.ndarray, *, chunk_size: int = 4096
) -> tuple[np.ndarray, np.ndarray, float]:
    """One Lloyd (K-Means) iteration: assign each row to its nearest centre, then recentre.

    Rows are processed in chunks of ``chunk_size``. For each chunk, one matrix product gives
    ``-2 x·c``; adding ``|c|²`` (and transposing to one row per centre) gives the distance up to
    the per-row constant ``|x|²``; the minimum over centres and a comparison give a one-hot
    matrix, and a second product of that one-hot matrix with the chunk (still in cache) gives the
    per-centre sums. A tie goes to the lowest centre index, as ``argmin`` does (a centre that
    repeats an earlier one gets no rows).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The data; finite values. float32 is computed in float32, anything else in float64.
        The distances use the expanded form, as scikit-learn's do: when the data are far from
        the origin compared with their spread, centre them first.
    centers : ndarray of shape (n_clusters, n_features)
        The current centres.
    chunk_size : int, default 4096
        Rows per chunk (a chunk of 16 float32 features is 256 KiB, which stays in cache).

    Returns
    -------
    labels : ndarray of shape (n_samples,), int32
        Index of the nearest current centre of each row.
    new_centers : ndarray of shape (n_clusters, n_features)
        Mean of the rows assigned to each centre (sums accumulated in float64); a centre with no
        rows keeps its current position. Same dtype as the computation.
    inertia : float
        Sum of squared distances of the rows to their nearest *current* centre (the objective
        the assignment step minimises).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 0.0], [0.0, 2.0], [10.0, 0.0], [10.0, 2.0]], dtype=np.float32)
    >>> start = np.array([[1.0, 1.0], [9.0, 1.0], [50.0, 50.0]])  # the last one gets no rows
    >>> labels, centers, inertia = lloyd_iteration(X, start)
    >>> labels.tolist(), centers.tolist(), inertia
    ([0, 0, 1, 1], [[0.0, 1.0], [10.0, 1.0], [50.0, 50.0]], 8.0)
    """
    X = np.ascontiguousarray(_as_float_matrix(X))
    n, d = X.shape
    centers64 = np.asarray(centers, dtype=np.float64)
    if centers64.ndim != 2 or centers64.shape[1] != d or centers64.shape[0] < 1:
        raise ValueError(
            f"centers must have shape (n_clusters, {d}) to match X; got {centers64.shape}"
        )
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1; got {chunk_size}")
    k = centers64.shape[0]
    dt = X.dtype
    minus_2ct = np.ascontiguousarray((-2.0 * centers64).T.astype(dt))  # (d, k)
    c_sq = np.einsum("ij,ij->i", centers64, centers64).astype(dt)[:, None]  # (k, 1)
    # a repeated centre never wins (argmin's tie rule), whatever the rounding of its column
    _, first = np.unique(centers64, axis=0, return_index=True)
    repeated = np.setdiff1d(np.arange(k), first)
    c_sq[repeated] = np.inf
    centre_index = np.arange(k, dtype=dt)
    centre_index_int = np.arange(k)[:, None]

    labels = np.empty(n, dtype=np.int32)
    mins = np.empty(n, dtype=dt)  # |c|² - 2 x·c of the nearest centre, per row
    sums = np.zeros((k, d))
    counts = np.zeros(k)
    x_sq = 0.0
    buf = _LloydBuffers(min(chunk_size, max(n, 1)), k, d, dt)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        m = stop - start
        if m != buf.ones.shape[0]:
            buf = _LloydBuffers(m, k, d, dt)
        chunk = X[start:stop]
        mn = mins[start:stop]
        np.matmul(chunk, minus_2ct, out=buf.dist)
        np.add(buf.dist.T, c_sq, out=buf.dist_t)
        np.minimum.reduce(buf.dist_t, axis=0, out=mn)
        np.equal(buf.dist_t, mn, out=buf.onehot, casting="unsafe")
        np.matmul(buf.onehot, buf.ones, out=buf.count)
        if buf.count.sum() != m:
            # a tie (two centres at exactly the same distance) or a non-finite value:
            # fall back to argmin for this chunk, which keeps the lowest index
            nearest = buf.dist_t.argmin(axis=0)
            np.equal(nearest, centre_index_int, out=buf.onehot, casting="unsafe")
            np.matmul(buf.onehot, buf.ones, out=buf.count)
            mn[:] = buf.dist_t[nearest, np.arange(m)]
        np.matmul(centre_index, buf.onehot, out=buf.label_f)
        np.copyto(labels[start:stop], buf.label_f, casting="unsafe")
        np.matmul(buf.onehot, chunk, out=buf.sums)
        sums += buf.sums
        counts += buf.count
        flat = chunk.reshape(-1)
        x_sq += float(np.dot(flat, flat))
    inertia = max(x_sq + float(mins.sum(dtype=np.float64)), 0.0)

    new_centers = centers64.copy()
    filled = counts > 0
    new_centers[filled] = sums[filled] / counts[filled, None]
    return labels, new_centers.astype(dt), inertia
