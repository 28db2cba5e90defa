"""Helpers shared by the metric modules: the check of two float arrays, entropy of counts, code
counts, and code tuples packed into 64-bit words (sorted to find equal rows and prefixes as runs).

Public names of a private module: :mod:`vqcore.metrics` re-exports those that other vqcore
modules use (:mod:`vqcore.partials`, :mod:`vqcore.semantic_ids`).
"""

import numpy as np

from .._validation import check_data
from ..exceptions import DataError


def check_float_pair(A, B, *, name_a, name_b):
    """Both arrays checked as data (:func:`vqcore._validation.check_data`), with the same dimension."""
    A = check_data(A, name=name_a)
    B = check_data(B, name=name_b)
    if A.shape[1] != B.shape[1]:
        raise DataError(
            f"{name_b} has n_features={B.shape[1]} but {name_a} has n_features={A.shape[1]}; "
            f"both should have the same dimension."
        )
    return A, B


def entropy_of_counts(counts):
    """Entropy in bits of the distribution given by non-negative counts."""
    counts = np.asarray(counts)
    total = counts.sum()
    p = counts[counts > 0].astype(np.float64) / total
    h = float(-np.dot(p, np.log2(p)))
    return h if h > 0.0 else 0.0  # p == [1.0] gives -0.0


def column(codes, m):
    """Column m as a contiguous int64 array (what np.bincount needs)."""
    return np.ascontiguousarray(codes[:, m], dtype=np.int64)


def count_codes(codes, sizes):
    """Counts of each code 0..K_m-1 of each column of validated codes, as int64 arrays."""
    return [
        np.bincount(column(codes, m), minlength=k).astype(np.int64) for m, k in enumerate(sizes)
    ]


def joint_counts(col_a, col_b, size_a, size_b):
    """Counts of the code pairs that occur (zero bins may be left out)."""
    key = col_a * size_b + col_b  # < size_a * size_b <= 2**52
    if size_a * size_b <= max(2**20, 4 * key.size):
        return np.bincount(key)
    return np.unique(key, return_counts=True)[1]


def code_bits(sizes):
    """Bits per column that hold codes 0..K_m-1 (at least one): a packing layout fixed by
    the codebook sizes, so that chunks of the same codes pack alike."""
    return [max(1, (int(k) - 1).bit_length()) for k in sizes]


def pack_rows(codes, bits=None):
    """Pack each row of codes into unsigned 64-bit words, exactly.

    Column m takes ``bits[m]`` bits, by default ``bit_length(max code of
    column m)`` (at least one);
    columns are laid out in order, column 0 in the most significant bits of
    word 0, so that comparing rows of words as unsigned integers, word by word,
    orders the code tuples lexicographically, and the first m+1 columns of a
    row are a prefix of its bits.

    Returns
    -------
    words : ndarray of shape (n, W), uint64
    layout : list of (word, shift, bits) per column
    """
    n, n_codebooks = codes.shape
    if bits is None:
        bits = [max(1, int(h).bit_length()) for h in codes.max(axis=0)]
    groups, current, used = [], [], 0
    for m, b in enumerate(bits):
        if current and used + b > 64:
            groups.append(current)
            current, used = [], 0
        current.append(m)
        used += b
    groups.append(current)
    words = np.zeros((n, len(groups)), dtype=np.uint64)
    layout = [None] * n_codebooks
    for w, group in enumerate(groups):
        free = sum(bits[m] for m in group)
        for m in group:
            free -= bits[m]
            layout[m] = (w, free, bits[m])
            col = codes[:, m].astype(np.uint64)
            if free:
                col <<= np.uint64(free)
            words[:, w] |= col
    return words, layout


def unpack_key(words, layout):
    """The code tuple of one row of packed words (inverse of :func:`pack_rows`)."""
    return [int((int(words[w]) >> shift) & ((1 << bits) - 1)) for w, shift, bits in layout]


def sorted_rows(codes, *, order=False):
    """Sort code tuples lexicographically, to find equal rows as runs.

    Packing into 64-bit words then sorting them is exact and much faster than
    ``np.unique(codes, axis=0)`` (measured on n=1e6: 12 ms against 0.9 s for
    M=8, K=256, one word; 0.3 s against 1.0 s for M=16, K=256, two words).

    Returns
    -------
    words_sorted : ndarray of shape (n, W), uint64
    layout : see :func:`pack_rows`
    new_run : ndarray of shape (n,), bool; True where a row differs from the previous one
    perm : ndarray of shape (n,), int64, or None
        Stable sorting permutation (rows of a run keep increasing item order),
        only computed when ``order`` is True.
    """
    words, layout = pack_rows(codes)
    perm = None
    if words.shape[1] == 1:
        key = words[:, 0]
        if order:
            perm = np.argsort(key, kind="stable")
            key = key[perm]
        else:
            key = np.sort(key)
        words = key[:, None]
        differs = key[1:] != key[:-1]
    else:
        perm = np.lexsort(words.T[::-1])  # the last key is the primary one
        words = words[perm]
        differs = (words[1:] != words[:-1]).any(axis=1)
    new_run = np.empty(words.shape[0], dtype=bool)
    new_run[0] = True
    new_run[1:] = differs
    return words, layout, new_run, perm


def run_lengths(new_run):
    """Starts and lengths of the runs marked by ``new_run`` (see :func:`sorted_rows`)."""
    starts = np.flatnonzero(new_run)
    return starts, np.diff(np.append(starts, new_run.size))
