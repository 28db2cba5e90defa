"""Information carried by the codes: mutual information between positions (with its shuffled
baseline), effective bits of the whole code tuple, and allocated bits."""

import math

import numpy as np

from .._validation import check_codes, check_int, check_random_state, check_sizes
from ._shared import column, count_codes, entropy_of_counts, joint_counts, run_lengths, sorted_rows


def mutual_information(codes, codebook_size=None):
    """Mutual information between every pair of code positions, in bits.

    ``I(a; b) = H_a + H_b - H_ab``, with the entropies of the empirical
    (plug-in) distributions: H_ab from the joint histogram of the code pairs.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_codebooks)
        Integer codes, one column per codebook.
    codebook_size : int, sequence of int, or None, default=None
        K for every position, or one K per position; ``None`` uses ``max + 1``.

    Returns
    -------
    mi : ndarray of shape (n_codebooks, n_codebooks), float64
        Symmetric; ``mi[m, m] = H_m``; ``0 <= mi[a, b] <= min(H_a, H_b)``.

    Notes
    -----
    The plug-in estimate is biased upwards when n is not much larger than
    ``K_a * K_b``: independent positions then still show about
    ``(K_a - 1)(K_b - 1) / (2 n ln 2)`` bits (Miller-Madow), and with
    ``n < K_a * K_b`` much more, because ``H_ab <= log2 n``. Read small
    off-diagonal values against that floor.

    References
    ----------
    T. M. Cover and J. A. Thomas, *Elements of Information Theory*, 2nd ed.,
    Wiley, 2006, sec. 2.4.

    Examples
    --------
    >>> mutual_information([[0, 0], [0, 1], [1, 0], [1, 1]]).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    >>> mutual_information([[0, 0], [1, 1]]).tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """
    codes, sizes = check_codes(codes, codebook_size, counted=True)
    return _mi_matrix([column(codes, m) for m in range(codes.shape[1])], sizes)


def _mi_matrix(columns, sizes):
    """Plug-in MI of every pair of columns."""
    entropy = [
        entropy_of_counts(np.bincount(col, minlength=k)) for col, k in zip(columns, sizes, strict=True)
    ]
    joint = {
        (a, b): entropy_of_counts(joint_counts(columns[a], columns[b], sizes[a], sizes[b]))
        for a in range(len(columns))
        for b in range(a + 1, len(columns))
    }
    return mi_from_entropies(entropy, joint)


def mi_from_entropies(entropy, joint_entropy):
    """The MI matrix from the entropy of each position and of each pair ``(a, b)``, a < b:
    ``I = H_a + H_b - H_ab``, kept within ``[0, min(H_a, H_b)]`` against rounding."""
    mi = np.diag(np.asarray(entropy, dtype=np.float64))
    for (a, b), h_ab in joint_entropy.items():
        value = entropy[a] + entropy[b] - h_ab
        mi[a, b] = mi[b, a] = min(max(value, 0.0), entropy[a], entropy[b])
    return mi


def mutual_information_baseline(codes, codebook_size=None, *, random_state=0):
    """What :func:`mutual_information` shows for independent positions at this n.

    For each pair (a, b) the codes of position b are shuffled across rows
    before the plug-in estimate: the code frequencies of both positions stay
    exactly as they are and any dependence between them is destroyed, so the
    value is the estimator's own floor (its upward bias) for these
    frequencies and this n. A pair whose mutual information is not well above
    its baseline shows no dependence that this many rows can resolve. Unlike
    the Miller-Madow term ``(K_a - 1)(K_b - 1) / (2 n ln 2)`` it stays right
    when ``n < K_a K_b`` and when codes are unevenly used.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_codebooks)
    codebook_size : int, sequence of int, or None, default=None
    random_state : int, Generator or None, default=0

    Returns
    -------
    baseline : ndarray of shape (n_codebooks, n_codebooks), float64
        Symmetric, diagonal ``H_m`` (as in :func:`mutual_information`).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> codes = rng.integers(16, size=(200, 2))
    >>> bool(mutual_information_baseline(codes, 16)[0, 1] > 0.3)   # 200 rows, 256 cells
    True
    """
    codes, sizes = check_codes(codes, codebook_size, counted=True)
    return mi_baseline_from_counts(count_codes(codes, sizes), random_state)


def mi_baseline_from_counts(counts, random_state=0):
    """:func:`mutual_information_baseline` from the code counts of each position alone.

    Shuffling column b across the rows and counting the pairs draws the joint
    table from its exact distribution given the two margins: the codes of b
    paired with the rows of a-code u are a uniform draw without replacement
    (multivariate hypergeometric) from what the earlier a-codes left. That
    draw needs only the counts, so the baseline of a whole catalogue comes
    from mergeable counts (:mod:`vqcore.partials`).
    """
    rng = check_random_state(random_state)
    counts = [np.asarray(c, dtype=np.int64) for c in counts]
    joint = {
        (a, b): entropy_of_counts(independent_joint(counts[a], counts[b], rng))
        for a in range(len(counts))
        for b in range(a + 1, len(counts))
    }
    return mi_from_entropies([entropy_of_counts(c) for c in counts], joint)


def independent_joint(count_a, count_b, rng, method=None):
    """Counts of the code pairs after a uniform shuffle of b's codes (zero cells may be left out).

    ``method`` "draws" (one multivariate hypergeometric draw per used a-code; cells of the
    used a-codes, b-codes in order) or "shuffle"; default the cheaper: a draw costs about
    K_b + 2000 element operations (numpy's call overhead), the shuffle about n.
    """
    used = np.flatnonzero(count_a)
    if method is None:
        method = "draws" if used.size * (count_b.size + 2000) < int(count_a.sum()) else "shuffle"
    if method == "draws":
        remaining = count_b.copy()
        cells = []
        for u in used:
            draw = rng.multivariate_hypergeometric(remaining, int(count_a[u]))
            remaining -= draw
            cells.append(draw)
        return np.concatenate(cells)
    # many codes on both sides: the shuffle itself, on columns rebuilt from the counts
    col_a = np.repeat(np.arange(count_a.size, dtype=np.int64), count_a)
    col_b = rng.permutation(np.repeat(np.arange(count_b.size, dtype=np.int64), count_b))
    return joint_counts(col_a, col_b, count_a.size, count_b.size)


def effective_bits(codes):
    """Entropy in bits of the whole code tuple over the evaluated set.

    Each distinct row of ``codes`` is one symbol; the result is at most
    ``log2 n`` (every item has its own tuple) and at most the sum of the
    per-position entropies. Compare it with :func:`allocated_bits`.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_codebooks)
        Integer codes, one column per codebook.

    Returns
    -------
    bits : float

    Examples
    --------
    >>> effective_bits([[0, 0], [0, 0], [0, 1], [1, 1]])
    1.5
    """
    codes, _ = check_codes(codes)
    _, _, new_run, _ = sorted_rows(codes)
    _, counts = run_lengths(new_run)
    return entropy_of_counts(counts)


def allocated_bits(codebook_size, n_codebooks=None):
    """Bits the codes can carry: ``sum_m log2 K_m``.

    Parameters
    ----------
    codebook_size : int or sequence of int
        K for every position, or one K per position.
    n_codebooks : int, optional
        M; needed when ``codebook_size`` is a single int, and checked against
        its length when it is a sequence.

    Returns
    -------
    bits : float

    Examples
    --------
    >>> allocated_bits(256, 8)
    64.0
    >>> allocated_bits([256, 1024, 2])
    19.0
    """
    if n_codebooks is not None:
        n_codebooks = check_int("n_codebooks", n_codebooks, low=1)
    sizes = check_sizes(codebook_size, n_codebooks, name="codebook_size")
    return float(sum(math.log2(k) for k in sizes))
