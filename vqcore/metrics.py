"""Quality metrics of vector quantizers, as defined in DESIGN.md ("Metric definitions").

Every function here is plain numpy on arrays a quantizer produced (or a user
uploaded): ``codes`` of shape (n, M), one integer column per codebook, and
float arrays of shape (n, d). Nothing here draws or caches; pages call these
through ``ui/`` and plot what they return.

Definitions (one meaning everywhere):

- usage of codebook m: counts of each code over the evaluated set; dead codes
  have count 0; dead fraction = dead / K_m.
- entropy ``H_m = -sum p log2 p`` bits (max ``log2 K_m``); perplexity ``2^H_m``;
  utilisation ``2^H_m / K_m``.
- mutual information between positions a and b in bits, from their joint code
  histogram, with a shuffled baseline (the same estimate for independent
  positions with the same code frequencies at this n); effective bits =
  entropy of the whole code tuple (at most ``log2 n``), against allocated
  bits ``sum_m log2 K_m``.
- reconstruction error ``mse = mean_i ||x_i - x_hat_i||^2`` (summed over
  dimensions); relative error ``mse / mean_i ||x_i - mean(X)||^2``;
  SNR ``-10 log10(relative)`` dB.
- recall@R: fraction of queries whose exact nearest neighbour is among the R
  nearest reconstructions by asymmetric distance (queries are not quantized).
- collision rate ``1 - (#distinct code tuples / n)``; prefix collision rate
  uses the first m+1 positions only.

``codebook_size`` is either one int K for every position or a sequence of M
ints (uploaded codes may use a different K per position); ``None`` infers
``max + 1`` per column, which undercounts dead codes at the top of a codebook
that the evaluated set never used.
"""

import math
import warnings

import numpy as np

from ._distances import DEFAULT_CHUNK_BYTES, KNN_CHUNK_BYTES, knn_blocked, row_chunks
from ._validation import check_codes, check_data, check_int, check_random_state, check_sizes
from .exceptions import DataError, VQLensError, VQLensWarning

__all__ = [
    "allocated_bits",
    "birthday_collision_rate",
    "code_counts",
    "collision_groups",
    "collision_rate",
    "effective_bits",
    "exact_neighbors",
    "mutual_information",
    "prefix_collision_rates",
    "recall_at",
    "reconstruction_error",
    "usage_stats",
]

# validation: vqcore._validation.check_codes / check_sizes (shared with the quantizers and semantic_ids).


def _check_float_pair(A, B, *, name_a, name_b):
    A = check_data(A, name=name_a)
    B = check_data(B, name=name_b)
    if A.shape[1] != B.shape[1]:
        raise DataError(
            f"{name_b} has n_features={B.shape[1]} but {name_a} has n_features={A.shape[1]}; "
            f"both should have the same dimension."
        )
    return A, B


# --------------------------------------------------------------------------
# private computations


def entropy_of_counts(counts):
    """Entropy in bits of the distribution given by non-negative counts."""
    counts = np.asarray(counts)
    total = counts.sum()
    p = counts[counts > 0].astype(np.float64) / total
    h = float(-np.dot(p, np.log2(p)))
    return h if h > 0.0 else 0.0  # p == [1.0] gives -0.0


def _column(codes, m):
    """Column m as a contiguous int64 array (what np.bincount needs)."""
    return np.ascontiguousarray(codes[:, m], dtype=np.int64)


def _code_counts(codes, sizes):
    return [
        np.bincount(_column(codes, m), minlength=k).astype(np.int64) for m, k in enumerate(sizes)
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


def _run_lengths(new_run):
    starts = np.flatnonzero(new_run)
    return starts, np.diff(np.append(starts, new_run.size))


# --------------------------------------------------------------------------
# codebook usage and information


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
    return _code_counts(codes, sizes)


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
    counts = _code_counts(codes, sizes)
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
    return _mi_matrix([_column(codes, m) for m in range(codes.shape[1])], sizes)


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
    return mi_baseline_from_counts(_code_counts(codes, sizes), random_state)


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
    _, counts = _run_lengths(new_run)
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


# --------------------------------------------------------------------------
# reconstruction and search


def reconstruction_error(X, X_hat):
    """Mean squared reconstruction error, relative error and SNR.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Original vectors.
    X_hat : array-like of shape (n_samples, n_features)
        Their reconstructions (``quantizer.decode(quantizer.encode(X))``).

    Both are validated like all vqcore data (finite, taken as float32);
    sums are accumulated in float64, in row chunks.

    Returns
    -------
    error : dict
        ``mse`` (float): ``mean_i ||x_i - x_hat_i||^2``, summed over
        dimensions; ``relative`` (float): ``mse / mean_i ||x_i - mean(X)||^2``,
        so that reconstructing every vector by the mean gives 1;
        ``snr_db`` (float): ``-10 log10(relative)``, ``+inf`` for an exact
        reconstruction; ``per_dim`` (ndarray of shape (n_features,)): mean
        squared error of each dimension, summing to ``mse``. When X has zero
        variance ``relative`` and ``snr_db`` are NaN, with a VQLensWarning.

    Examples
    --------
    >>> e = reconstruction_error([[0, 0], [2, 2]], [[0, 1], [2, 2]])
    >>> e["mse"], e["relative"], e["per_dim"].tolist()
    (0.5, 0.25, [0.0, 0.5])
    """
    X, X_hat = _check_float_pair(X, X_hat, name_a="X", name_b="X_hat")
    if X_hat.shape != X.shape:
        raise DataError(
            f"X_hat has shape {X_hat.shape} but X has shape {X.shape}; pass one "
            f"reconstruction per row of X."
        )
    n, d = X.shape
    mean = X.mean(axis=0, dtype=np.float64)
    sq_err = np.zeros(d)
    sq_dev = np.zeros(d)
    for a, b in row_chunks(n, d, 8, DEFAULT_CHUNK_BYTES):
        x = X[a:b].astype(np.float64)
        diff = x - X_hat[a:b]
        sq_err += np.einsum("ij,ij->j", diff, diff)
        x -= mean
        sq_dev += np.einsum("ij,ij->j", x, x)
    per_dim = sq_err / n
    mse = float(per_dim.sum())
    total_variance = float(sq_dev.sum() / n)
    if total_variance == 0.0:
        warnings.warn(
            "X has zero variance (all rows equal), so the relative error and the SNR "
            "are undefined; they are returned as NaN.",
            VQLensWarning,
            stacklevel=2,
        )
        relative = snr_db = float("nan")
    else:
        relative = mse / total_variance
        snr_db = float("inf") if relative == 0.0 else float(-10.0 * math.log10(relative))
    return {"mse": mse, "relative": relative, "snr_db": snr_db, "per_dim": per_dim}


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
    base, queries = _check_float_pair(base, queries, name_a="base", name_b="queries")
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
    base_hat, queries = _check_float_pair(base_hat, queries, name_a="base_hat", name_b="queries")
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


# --------------------------------------------------------------------------
# collisions


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
    starts, sizes = _run_lengths(new_run)
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
