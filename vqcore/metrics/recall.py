"""Nearest-neighbour search on reconstructions: exact neighbours (the ground truth) and recall@R."""

import numpy as np

from .._distances import KNN_CHUNK_BYTES, knn_blocked
from .._validation import check_int
from ..exceptions import DataError, VQLensError
from ._shared import check_float_pair


def exact_neighbors(base, queries, k):
    """Exact L2 nearest neighbours of each query in base: the ground truth.

    Distances are computed in float64 (base is cast block by block), so that
    near-ties between float32 vectors are ranked as exactly as the data allow;
    memory stays bounded for any n. Exact ties (duplicate vectors) come in no
    guaranteed order.

    Parameters
    ----------
    base : array-like of shape (n_samples, n_features)
        Original (unquantized) vectors.
    queries : array-like of shape (n_queries, n_features)
    k : int
        Number of neighbours, ``1 <= k <= n_samples``.

    Returns
    -------
    neighbors : ndarray of shape (n_queries, k), int64
        Row indices into ``base``, nearest first.

    Examples
    --------
    >>> exact_neighbors([[0.0], [10.0], [3.0]], [[2.0], [9.0]], k=2).tolist()
    [[2, 0], [1, 2]]
    """
    base, queries = check_float_pair(base, queries, name_a="base", name_b="queries")
    k = check_int("k", k, low=1, high=base.shape[0])
    idx, _ = knn_blocked(queries, base, k, dtype=np.float64, chunk_bytes=KNN_CHUNK_BYTES)
    return idx


def recall_at(base_hat, queries, ground_truth, R=(1, 10, 100), *, base_sqnorms=None):
    """Recall@R of nearest-neighbour search on reconstructions.

    For each query, the items are ranked by the distance from the (not
    quantized) query to their reconstruction, the asymmetric distance of
    product quantization; recall@R is the fraction of queries whose exact
    nearest neighbour ``ground_truth[:, 0]`` is among the R first.

    Parameters
    ----------
    base_hat : array-like of shape (n_samples, n_features)
        Reconstructions of the base vectors, row i for item i.
    queries : array-like of shape (n_queries, n_features)
        The query vectors; the caller should state which set was used (held
        out, or a sample of the base).
    ground_truth : array-like of int, shape (n_queries, k) or (n_queries,)
        Exact neighbours on the original vectors, nearest first, e.g. from
        :func:`exact_neighbors`; only the first column is used.
    R : int or sequence of int, default=(1, 10, 100)
        Cut-offs. An R larger than n_samples is evaluated over all items
        (recall 1).
    base_sqnorms : array-like of shape (n_samples,), optional
        The ``||x_hat||^2`` term the search uses, when it is stored
        approximately (e.g. GRVQ's quantized norm): items are then ranked by
        ``||q||^2 - 2 <q, x_hat> + base_sqnorms``. Default: the exact norms.

    Returns
    -------
    recall : dict {R: float}

    Notes
    -----
    Items with identical reconstructions (the same code tuple) are at the same
    distance from every query; their order among themselves is arbitrary, as
    in faiss, so recall at small R depends on that tie-breaking when many
    items collide.

    References
    ----------
    H. Jegou, M. Douze and C. Schmid, "Product quantization for nearest
    neighbor search", IEEE TPAMI 33(1), 2011, sec. V.

    Examples
    --------
    >>> recall_at([[1.0], [0.0], [5.0]], [[0.1], [4.0]], [[0], [2]], R=(1, 2))
    {1: 0.5, 2: 1.0}
    """
    base_hat, queries = check_float_pair(base_hat, queries, name_a="base_hat", name_b="queries")
    n, nq = base_hat.shape[0], queries.shape[0]
    cutoffs = check_cutoffs(R)
    truth = check_ground_truth(ground_truth, nq, n)
    if base_sqnorms is not None:
        base_sqnorms = np.asarray(base_sqnorms, dtype=base_hat.dtype).reshape(-1)
        if base_sqnorms.shape[0] != n:
            raise DataError(f"base_sqnorms has {base_sqnorms.shape[0]} values for n_samples={n}.")
    idx, _ = knn_blocked(queries, base_hat, min(max(cutoffs), n), chunk_bytes=KNN_CHUNK_BYTES,
                         X_sqnorms=base_sqnorms)
    hit = idx == truth[:, None]
    rank = np.where(hit.any(axis=1), hit.argmax(axis=1), n)
    return {r: float(np.mean(rank < r)) for r in cutoffs}


def check_cutoffs(R):
    if np.ndim(R) == 0:
        return [check_int("R", R, low=1)]
    values = list(R)
    if not values:
        raise VQLensError("R=() is empty; pass at least one cut-off, e.g. R=(1, 10, 100).")
    return [check_int(f"R[{i}]", r, low=1) for i, r in enumerate(values)]


def check_ground_truth(ground_truth, n_queries, n_samples):
    truth = np.asarray(ground_truth)
    if truth.dtype.kind not in "iu":
        raise DataError(
            f"ground_truth has dtype {truth.dtype}; pass integer row indices, e.g. the "
            f"output of exact_neighbors."
        )
    if truth.ndim not in (1, 2) or truth.shape[0] != n_queries or truth.size == 0:
        raise DataError(
            f"ground_truth has shape {truth.shape} but there are n_queries={n_queries}; "
            f"pass an array of shape (n_queries, k) or (n_queries,)."
        )
    first = truth[:, 0] if truth.ndim == 2 else truth
    bad = np.flatnonzero((first < 0) | (first >= n_samples))
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"ground_truth[{i}, 0]={int(first[i])} is not a row of base_hat, which has "
            f"n_samples={n_samples}."
        )
    return first.astype(np.int64)
