"""Codebook usage: how often each code is used, dead codes, entropy, perplexity, utilisation."""

import numpy as np

from .._validation import check_codes
from ._shared import count_codes, entropy_of_counts


def code_counts(codes, codebook_size=None):
    """How often each code is used, per codebook position.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_codebooks)
        Integer codes, one column per codebook.
    codebook_size : int, sequence of int, or None, default=None
        K for every position, or one K per position. ``None`` uses
        ``max + 1`` of each column.

    Returns
    -------
    counts : list of n_codebooks ndarrays of int64
        ``counts[m][c]`` is the number of items whose code at position m is c;
        ``counts[m]`` has length K_m. A list because K may differ per position.

    Examples
    --------
    >>> [c.tolist() for c in code_counts([[0, 2], [0, 1], [1, 1]], codebook_size=3)]
    [[2, 1, 0], [0, 2, 1]]
    """
    codes, sizes = check_codes(codes, codebook_size, counted=True)
    return count_codes(codes, sizes)


def usage_stats(codes, codebook_size=None):
    """Dead codes, entropy, perplexity and utilisation of each codebook position.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_codebooks)
        Integer codes, one column per codebook.
    codebook_size : int, sequence of int, or None, default=None
        K for every position, or one K per position. ``None`` uses
        ``max + 1`` of each column (and so never sees dead codes above the
        largest code used).

    Returns
    -------
    stats : dict of ndarrays of shape (n_codebooks,)
        ``dead`` (int64): number of codes never used; ``dead_fraction``:
        dead / K; ``entropy_bits``: ``H_m = -sum_c p_c log2 p_c``;
        ``max_entropy_bits``: ``log2 K``; ``perplexity``: ``2^H_m``, the
        number of equally used codes that would give the same entropy;
        ``utilisation``: ``2^H_m / K`` in (0, 1], 1 when every code is used
        equally often.

    References
    ----------
    T. M. Cover and J. A. Thomas, *Elements of Information Theory*, 2nd ed.,
    Wiley, 2006, ch. 2.

    Examples
    --------
    >>> s = usage_stats([[0], [0], [1], [2]], codebook_size=4)
    >>> s["dead"].tolist(), s["entropy_bits"].tolist(), s["perplexity"].tolist()
    ([1], [1.5], [2.8284271247461903])
    """
    codes, sizes = check_codes(codes, codebook_size, counted=True)
    counts = count_codes(codes, sizes)
    size = np.asarray(sizes, dtype=np.float64)
    dead = np.array([int(np.count_nonzero(c == 0)) for c in counts], dtype=np.int64)
    entropy = np.array([entropy_of_counts(c) for c in counts])
    perplexity = np.exp2(entropy)
    return {
        "dead": dead,
        "dead_fraction": dead / size,
        "entropy_bits": entropy,
        "max_entropy_bits": np.log2(size),
        "perplexity": perplexity,
        "utilisation": perplexity / size,
    }
