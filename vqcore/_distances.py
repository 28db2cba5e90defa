"""Squared Euclidean distances by BLAS, in row chunks of bounded memory.

``||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2``: the cross term is one matrix
product per chunk of rows, so no (n, K, d) tensor is ever formed. The chunk is
sized so that the (rows, K) distance block stays under ``chunk_bytes``.
"""

import numpy as np
import scipy.sparse as sp

from ._parallel import n_threads, parallel_map, split_rows

DEFAULT_CHUNK_BYTES = 2**20  # a (rows, K) block that stays in cache
# k-NN search: larger blocks, so that each product is tall enough to run at BLAS speed
KNN_CHUNK_BYTES = 32 * 2**20


def sq_norms(X):
    """Row-wise squared norms, in the dtype of X."""
    return np.einsum("ij,ij->i", X, X)


def row_chunks(n, n_cols, itemsize, chunk_bytes):
    rows = max(1, int(chunk_bytes // max(1, n_cols * itemsize)))
    for start in range(0, n, rows):
        yield start, min(n, start + rows)


class NearestAssigner:
    """Repeated nearest-centroid assignment of one fixed X (as in Lloyd's loop).

    X is augmented once with a column of ones, and each codebook C with a
    column of ``-||c||^2 / 2``, so that one matrix product gives
    ``x.c - ||c||^2/2``, whose argmax is the nearest centroid; the squared
    distance is ``||x||^2 - 2 max``.
    """

    def __init__(self, X, *, chunk_bytes=DEFAULT_CHUNK_BYTES):
        X = np.asarray(X)
        n, d = X.shape
        self.Xa = np.empty((n, d + 1), dtype=X.dtype)
        self.Xa[:, :d] = X
        self.Xa[:, d] = 1.0
        self.X = X
        self._xn = None
        self.chunk_bytes = chunk_bytes

    @property
    def xn(self):
        """``||x||^2`` of each row, computed on first use (:meth:`labels` needs none)."""
        if self._xn is None:
            self._xn = sq_norms(self.X)
        return self._xn

    def assign(self, C, C_sqnorms=None):
        """Labels (n,) int64 and squared distances (n,) to the nearest row of C."""
        labels, best = self._run(C, C_sqnorms, distances=True)
        sqdist = self.xn - 2.0 * best
        np.maximum(sqdist, 0, out=sqdist)
        return labels, sqdist

    def labels(self, C):
        """Labels only: skips gathering each row's best value (about a tenth of the time)."""
        return self._run(C, None, distances=False)[0]

    def _run(self, C, C_sqnorms, distances):
        n = self.Xa.shape[0]
        K, d = C.shape
        CaT = np.empty((d + 1, K), dtype=self.Xa.dtype)
        CaT[:d] = C.T
        CaT[d] = -0.5 * (sq_norms(C) if C_sqnorms is None else C_sqnorms)
        labels = np.empty(n, dtype=np.int64)
        best = np.empty(n, dtype=self.Xa.dtype) if distances else None

        def work(span):
            lo, hi = span
            for a, b in row_chunks(hi - lo, K, self.Xa.dtype.itemsize, self.chunk_bytes):
                a, b = a + lo, b + lo
                block = self.Xa[a:b] @ CaT
                idx = np.argmax(block, axis=1, out=labels[a:b])
                if distances:
                    best[a:b] = np.take_along_axis(block, idx[:, None], axis=1)[:, 0]

        # split only work big enough to pay for the threads
        parts = n_threads() if n * K * (d + 8) > 4_000_000 else 1
        parallel_map(work, split_rows(n, parts))
        return labels, best


def nearest(X, C, *, C_sqnorms=None, chunk_bytes=DEFAULT_CHUNK_BYTES):
    """Index of and squared distance to the nearest row of C, for each row of X.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    C : ndarray of shape (K, d)
    C_sqnorms : ndarray of shape (K,), optional
        Precomputed ``||c||^2``.

    Returns
    -------
    labels : ndarray of shape (n,), int64
    sqdist : ndarray of shape (n,), same float dtype as X, clipped at 0
    """
    return NearestAssigner(X, chunk_bytes=chunk_bytes).assign(C, C_sqnorms)


def knn(Q, X, k, *, X_sqnorms=None, chunk_bytes=KNN_CHUNK_BYTES):
    """The k nearest rows of X for each row of Q, nearest first.

    Returns
    -------
    idx : ndarray of shape (nq, k), int64
    sqdist : ndarray of shape (nq, k)
    """
    nq, n = Q.shape[0], X.shape[0]
    k = min(k, n)
    if X_sqnorms is None:
        X_sqnorms = sq_norms(X)
    XT = np.ascontiguousarray(X.T)
    idx = np.empty((nq, k), dtype=np.int64)
    dist = np.empty((nq, k), dtype=Q.dtype)
    for a, b in row_chunks(nq, n, Q.dtype.itemsize, chunk_bytes):
        block = -2.0 * (Q[a:b] @ XT)
        block += X_sqnorms
        block += sq_norms(Q[a:b])[:, None]
        if k < n:
            part = np.argpartition(block, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(n), (b - a, n)).copy()
        pd = np.take_along_axis(block, part, axis=1)
        order = np.argsort(pd, axis=1, kind="stable")
        idx[a:b] = np.take_along_axis(part, order, axis=1)
        dist[a:b] = np.maximum(np.take_along_axis(pd, order, axis=1), 0)
    return idx, dist


def knn_blocked(Q, X, k, *, dtype=None, chunk_bytes=KNN_CHUNK_BYTES, X_sqnorms=None):
    """:func:`knn` for a large X: stream X once in row blocks, keep the best k.

    ``knn`` reads the whole of X for every small chunk of queries, which is
    slow once X no longer fits in cache (skinny matrix products); this reads X
    block by block, runs ``knn`` of all queries against each block, and merges
    the running k best. Blocks are cast to ``dtype`` (e.g. float64 for exact
    ground truth) one at a time, so X is never copied whole.

    Parameters
    ----------
    Q : ndarray of shape (nq, d)
    X : ndarray of shape (n, d)
    k : int
    dtype : numpy dtype, optional
        Dtype of the computation; default Q's.
    X_sqnorms : ndarray of shape (n,), optional
        ``||x||^2`` terms to use instead of the exact ones (a search with
        stored, approximate norms).

    Returns
    -------
    idx : ndarray of shape (nq, min(k, n)), int64
        Nearest first; on equal distances an earlier block comes first.
    sqdist : ndarray of shape (nq, min(k, n)), in ``dtype``
    """
    dtype = np.dtype(Q.dtype if dtype is None else dtype)
    Q = np.ascontiguousarray(Q, dtype=dtype)
    nq, d = Q.shape
    n = X.shape[0]
    k = min(k, n)
    # The block of X (and its transpose inside knn) stays under chunk_bytes, and
    # is short enough that knn still multiplies a tall chunk of queries at once.
    rows = max(1, min(chunk_bytes // (d * dtype.itemsize),
                      chunk_bytes // (max(1, min(nq, 256)) * dtype.itemsize)))
    best_idx = np.empty((nq, 0), dtype=np.int64)
    best_dist = np.empty((nq, 0), dtype=dtype)
    for start in range(0, n, rows):
        block = np.ascontiguousarray(X[start:start + rows], dtype=dtype)
        norms = None if X_sqnorms is None else np.asarray(X_sqnorms[start:start + rows], dtype=dtype)
        idx, dist = knn(Q, block, k, X_sqnorms=norms, chunk_bytes=chunk_bytes)
        all_idx = np.concatenate([best_idx, idx + start], axis=1)
        all_dist = np.concatenate([best_dist, dist], axis=1)
        keep = np.argsort(all_dist, axis=1, kind="stable")[:, :k]
        best_idx = np.take_along_axis(all_idx, keep, axis=1)
        best_dist = np.take_along_axis(all_dist, keep, axis=1)
    return best_idx, best_dist


def cluster_sums(labels, X, K, weights=None):
    """``S[k] = sum of (weights_i *) X[i] over the rows i with labels[i] == k``, shape (K, d).

    One sparse one-hot product. The one-hot is built in compressed-column
    form (column i holds row ``labels[i]``), which needs no sort and streams
    the rows of X in order: 2-3x faster than the compressed-row form.
    """
    n = X.shape[0]
    w = np.ones(n, dtype=X.dtype) if weights is None else np.asarray(weights, dtype=X.dtype)
    onehot = sp.csc_matrix((w, np.asarray(labels, dtype=np.int64), np.arange(n + 1)), shape=(K, n))
    return np.asarray(onehot @ X)
