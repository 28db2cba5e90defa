"""Collisions: items sharing their code tuple (whole or a prefix), the largest such groups, and the
birthday bound of uniform codes."""

import math

import numpy as np

from .._validation import check_codes, check_int, check_sizes
from ._shared import run_lengths, sorted_rows


def collision_rate(codes):
    """Fraction of items lost to shared code tuples: ``1 - #distinct / n``.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_codebooks)
        Integer codes, one column per codebook.

    Returns
    -------
    rate : float
        0 when every item has its own tuple, ``1 - 1/n`` when all share one.

    References
    ----------
    S. Rajput et al., "Recommender Systems with Generative Retrieval",
    NeurIPS 2023 (semantic IDs, where colliding items need an extra token).

    Examples
    --------
    >>> collision_rate([[0, 0], [0, 0], [0, 1], [1, 1]])
    0.25
    """
    codes, _ = check_codes(codes)
    _, _, new_run, _ = sorted_rows(codes)
    return 1.0 - int(new_run.sum()) / codes.shape[0]


def prefix_collision_rates(codes):
    """Collision rate using only the first m+1 positions, for each m.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_codebooks)
        Integer codes, one column per codebook (position 0 first, as in
        residual quantization and semantic IDs).

    Returns
    -------
    rates : ndarray of shape (n_codebooks,), float64
        Non-increasing; the last entry equals :func:`collision_rate`.

    Examples
    --------
    >>> prefix_collision_rates([[0, 0], [0, 0], [0, 1], [1, 1]]).tolist()
    [0.5, 0.25]
    """
    codes, _ = check_codes(codes)
    words, layout, _, _ = sorted_rows(codes)
    return 1.0 - distinct_prefixes(words, layout) / codes.shape[0]


def distinct_prefixes(words, layout):
    """Number of distinct prefixes of each length 1..M among rows of packed words sorted
    lexicographically (duplicates allowed), as an int64 array.

    Rows sorted by the whole tuple are sorted by every prefix too, so the
    distinct prefixes are the runs of their (masked) leading bits.
    """
    n = words.shape[0]
    earlier_words_differ = np.zeros(max(n - 1, 0), dtype=bool)
    current_word = 0
    distinct = np.empty(len(layout), dtype=np.int64)
    for m, (w, shift, _) in enumerate(layout):
        while current_word < w:
            col = words[:, current_word]
            earlier_words_differ |= col[1:] != col[:-1]
            current_word += 1
        lead = words[:, w] >> np.uint64(shift)
        differs = earlier_words_differ | (lead[1:] != lead[:-1])
        distinct[m] = 1 + int(differs.sum())
    return distinct


def collision_groups(codes, top=20):
    """The largest groups of items that share their full code tuple.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_codebooks)
        Integer codes, one column per codebook.
    top : int or None, default=20
        How many groups to return; ``None`` returns all of them.

    Returns
    -------
    groups : list of (tuple of int, ndarray of int64)
        ``(code tuple, item indices)`` for every tuple shared by two or more
        items, largest group first (equal sizes in lexicographic order of the
        tuple); indices are increasing.

    Examples
    --------
    >>> [(c, i.tolist()) for c, i in collision_groups([[0, 1], [1, 1], [0, 1], [1, 1], [0, 1]])]
    [((0, 1), [0, 2, 4]), ((1, 1), [1, 3])]
    """
    codes, _ = check_codes(codes)
    if top is not None:
        top = check_int("top", top, low=1)
    _, _, new_run, perm = sorted_rows(codes, order=True)
    starts, sizes = run_lengths(new_run)
    shared = np.flatnonzero(sizes >= 2)
    shared = shared[np.argsort(-sizes[shared], kind="stable")][:top]
    groups = []
    for g in shared:
        members = np.sort(perm[starts[g] : starts[g] + sizes[g]]).astype(np.int64)
        groups.append((tuple(int(c) for c in codes[members[0]]), members))
    return groups


def birthday_collision_rate(n, codebook_sizes):
    """Expected collision rate of n items with uniform, independent codes.

    With ``N = prod_m K_m`` possible tuples, each drawn uniformly,
    ``E[#distinct] = N (1 - (1 - 1/N)^n)`` and the rate is
    ``1 - E[#distinct] / n``: the baseline a learned code should beat (or
    explain) at the same budget.

    Parameters
    ----------
    n : int
        Number of items, >= 1.
    codebook_sizes : int or sequence of int
        K of each position (an int means a single codebook).

    Returns
    -------
    rate : float
        About ``(n - 1) / (2 N)`` when ``n << N``; tends to ``1 - N / n`` when
        ``n >> N``.

    Notes
    -----
    With ``q = 1/N`` the rate is ``1 - (1 - (1-q)^n) / (n q)``. When
    ``n q < 1e-2`` that difference would cancel to nothing in floating point,
    so its series ``sum_{j>=1} (-1)^(j+1) (n-1)(n-2)...(n-j) q^j / (j+1)!``
    is summed instead; otherwise the closed form is evaluated with
    ``log1p`` / ``expm1``. N itself is an exact integer, so huge N (e.g.
    ``256**16``) is fine.

    References
    ----------
    W. Feller, *An Introduction to Probability Theory and Its Applications*,
    vol. 1, 3rd ed., Wiley, 1968, ch. II (occupancy problems).

    Examples
    --------
    >>> round(birthday_collision_rate(3, [2]), 12)  # 1 - 1.75 / 3
    0.416666666667
    """
    n = check_int("n", n, low=1)
    single = 1 if np.ndim(codebook_sizes) == 0 else None
    sizes = check_sizes(codebook_sizes, single, name="codebook_sizes")
    n_possible = math.prod(sizes)  # exact Python int
    if n_possible.bit_length() > 1000:
        q = 0.0  # rate < n * 2**-1000: zero in float64
    else:
        q = 1.0 / n_possible
    x = n * q
    if x < 1e-2:
        # rate = sum_{j>=1} (-1)^(j+1) (n-1)(n-2)...(n-j) q^j / (j+1)!
        rate, term = 0.0, 1.0
        for j in range(1, 40):
            term *= -(n - j) * q / (j + 1)
            if term == 0.0:
                break
            rate -= term
            if abs(term) <= 1e-18 * abs(rate):
                break
        return float(rate)
    occupied = -math.expm1(n * math.log1p(-q)) if q < 1.0 else 1.0
    return float(1.0 - occupied / x)
