"""What the semantic-ID modules share: the check of codes, labels and embeddings, the
distances inside a set of items, and the runs of code prefixes.

Public names of a private module; :func:`validate_codes` is re-exported by
:mod:`vqcore.semantic_ids`.
"""

import numpy as np

from .._distances import row_chunks
from .._validation import check_codes, check_data, check_int
from ..exceptions import DataError, VQLensError

# float64 row blocks of this size when a centroid and the distances to it are accumulated
SPREAD_CHUNK_BYTES = 8 * 2**20


# --------------------------------------------------------------------------
# validation


def validate_codes(codes, codebook_sizes=None, *, n_items=None):
    """Check codes and return them as a compact unsigned array with the size of each level.

    Parameters
    ----------
    codes : array-like of shape (n_items, n_levels)
        Integer codes, row i for item i, level 0 first. Floats holding whole
        numbers are accepted.
    codebook_sizes : int, sequence of int, or None, default=None
        K of every level, or one K per level; each code of level m must be in
        ``0..K_m - 1``. ``None`` infers ``max + 1`` per level (a lower bound).
    n_items : int, optional
        Number of items the codes must describe (rows of the embeddings, or
        number of labels), so that row i of the codes is item i.

    Returns
    -------
    codes : ndarray of shape (n_items, n_levels)
        C-contiguous, the smallest unsigned integer dtype holding the largest code.
    codebook_sizes : list of int
        One K per level.

    Raises
    ------
    DataError
        Not 2-D (a 1-D array gets the advice ``codes.reshape(-1, 1)``), not
        integers, negative, a code ``>= K`` of its level (the message names the
        level, ``codes[:, m]``, the value and K), or ``n_items`` not matching.

    Examples
    --------
    >>> codes, sizes = validate_codes([[3, 0], [3, 1]], [4, 2])
    >>> codes.dtype.name, sizes
    ('uint8', [4, 2])
    >>> validate_codes([[3, 0], [3, 2]], [4, 2])  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    vqcore.exceptions.DataError: codes[:, 1] contains the value 2 but codebook_size[1]=2;
    codes of a codebook of size K should be in 0..K-1.
    """
    arr, sizes = check_codes(codes, codebook_sizes)
    if n_items is not None:
        n_items = check_int("n_items", n_items, low=1)
        if arr.shape[0] != n_items:
            raise DataError(
                f"codes have {arr.shape[0]} rows but there are n_items={n_items} items (embeddings or "
                f"labels); row i of the codes must be item i. Load codes and items of the same set."
            )
    dtype = np.min_scalar_type(int(arr.max()))
    return np.ascontiguousarray(arr, dtype=dtype), sizes


def check_rows(rows, n):
    """The items' row numbers in the data file as int64 (None stays None): one whole number per item."""
    if rows is None:
        return None
    rows = np.asarray(rows)
    if rows.shape != (n,) or rows.dtype.kind not in "iu":
        raise VQLensError(f"rows must be {n} whole numbers, one per item; got an array of shape "
                          f"{rows.shape} and dtype {rows.dtype}.")
    return rows.astype(np.int64)


def check_labels(labels, n):
    if labels is None:
        return None
    if isinstance(labels, (str, bytes)):
        raise VQLensError("labels should be a sequence of one label per item, not a single string.")
    labels = list(labels)
    if len(labels) != n:
        raise DataError(
            f"labels has {len(labels)} entries but codes have {n} rows; pass one label per item, in "
            "the order of the codes."
        )
    return labels


def check_items(X, n):
    if X is None:
        return None
    X = check_data(X, name="X")
    if X.shape[0] != n:
        raise DataError(
            f"X has {X.shape[0]} rows but codes have {n}; pass the embeddings of the same items, "
            "row i for item i."
        )
    return X


def label_list(labels, items):
    """Labels of the given items, or ``"item i"`` when there are no labels."""
    if labels is None:
        return [f"item {int(i)}" for i in items]
    return [str(labels[int(i)]) for i in items]


# --------------------------------------------------------------------------
# distances inside a set of items


def chunks_of(n, d):
    """Row slices that keep a float64 block of d columns near SPREAD_CHUNK_BYTES."""
    return row_chunks(n, d, 8, SPREAD_CHUNK_BYTES)


def centroid_spread(X, idx=None):
    """Centroid and mean Euclidean distance to it of the rows ``idx`` of X (all rows if None).

    Two passes in row chunks of float64, so a prefix holding most of X is
    never copied whole.
    """
    d = X.shape[1]
    n = X.shape[0] if idx is None else len(idx)

    def block(a, b):
        rows = X[a:b] if idx is None else X[idx[a:b]]
        return rows.astype(np.float64)

    total = np.zeros(d)
    for a, b in chunks_of(n, d):
        total += block(a, b).sum(axis=0)
    centroid = total / n
    spread = 0.0
    for a, b in chunks_of(n, d):
        diff = block(a, b) - centroid
        spread += float(np.sqrt(np.einsum("ij,ij->i", diff, diff)).sum())
    return centroid, spread / n


def pairwise_stats(rows):
    """Mean and max Euclidean distance over all pairs of rows (k >= 2), by one Gram matrix."""
    rows = rows.astype(np.float64)
    rows = rows - rows.mean(axis=0)  # centring keeps the Gram trick accurate
    sq = np.einsum("ij,ij->i", rows, rows)
    dist2 = sq[:, None] + sq[None, :] - 2.0 * (rows @ rows.T)
    iu = np.triu_indices(rows.shape[0], k=1)
    dist = np.sqrt(np.maximum(dist2[iu], 0.0))
    return float(dist.mean()), float(dist.max())


# --------------------------------------------------------------------------
# runs of code prefixes (the tree and the trie)


def prefix_runs(sorted_codes, depth):
    """Run starts of the distinct prefixes of length 1..depth of lexicographically sorted codes."""
    n = sorted_codes.shape[0]
    new = np.zeros(n, dtype=bool)
    new[0] = True
    starts = []
    for m in range(depth):
        col = sorted_codes[:, m]
        new[1:] |= col[1:] != col[:-1]
        starts.append(np.flatnonzero(new))
    return starts
