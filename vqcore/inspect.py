"""Numbers the app shows that are not quantizer metrics: what the data looks like,
where points and codewords land in 2-D, and the cells of a 2-D toy quantizer.

Plain numpy (and scikit-learn's conventions); the UI only draws what these
functions return.

- Data summary: :func:`row_norms`, :func:`pca_spectrum`,
  :func:`count_duplicate_rows`, :func:`data_summary`, :func:`preprocess`,
  :func:`subsample_indices`.
- 2-D maps: :func:`pca_basis`, :func:`project`, :func:`codeword_points`,
  :func:`code_means`, :func:`umap_embed`.
- 2-D toys (the Learn page): :func:`grid_points`, :func:`cell_ids`,
  :func:`prefix_reconstruction`, :func:`reachable_points`.
"""

import itertools

import numpy as np

from ._parallel import single_blas_thread
from ._validation import check_data, check_int, check_random_state
from .exceptions import VQLensError

__all__ = [
    "cell_ids",
    "code_means",
    "codeword_points",
    "count_duplicate_rows",
    "data_summary",
    "grid_points",
    "pca_basis",
    "pca_spectrum",
    "plane_partitions",
    "prefix_reconstruction",
    "preprocess",
    "project",
    "reachable_points",
    "row_norms",
    "subsample_indices",
    "umap_embed",
]

_PCA_MAX_ROWS = 20_000


# --------------------------------------------------------------------------
# data summary


def row_norms(X):
    """Euclidean norm of every row, accumulated in float64.

    Examples
    --------
    >>> row_norms([[3, 4], [0, 0]]).tolist()
    [5.0, 0.0]
    """
    X = np.asarray(X)
    out = np.empty(X.shape[0])
    step = max(1, 2**22 // max(1, X.shape[1]))
    for a in range(0, X.shape[0], step):
        x = X[a:a + step].astype(np.float64)
        out[a:a + step] = np.sqrt(np.einsum("ij,ij->i", x, x))
    return out


def subsample_indices(n, size, *, random_state=None):
    """Sorted indices of ``size`` rows drawn without replacement (all rows if size >= n).

    Examples
    --------
    >>> subsample_indices(5, 10).tolist()
    [0, 1, 2, 3, 4]
    >>> len(subsample_indices(100, 7, random_state=0))
    7
    """
    n = check_int("n", n, low=0)
    size = check_int("size", size, low=1)
    if size >= n:
        return np.arange(n)
    rng = check_random_state(random_state)
    return np.sort(rng.choice(n, size, replace=False))


def _centered_sample(X, max_rows, random_state):
    X = check_data(X)
    idx = subsample_indices(X.shape[0], max_rows, random_state=random_state)
    S = X[idx].astype(np.float64)
    mean = X.mean(axis=0, dtype=np.float64)
    return S - mean, mean


def pca_spectrum(X, *, max_rows=_PCA_MAX_ROWS, random_state=0):
    """Fraction of the total variance along each principal direction, largest first.

    Eigenvalues of the covariance of X (of a random subsample of ``max_rows``
    rows when X is larger), divided by their sum, so the result sums to 1
    (all zeros when X has no variance). Equals scikit-learn's
    ``PCA().explained_variance_ratio_`` on the same rows.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    max_rows : int, default=20000
    random_state : int, Generator or None

    Returns
    -------
    ratio : ndarray of shape (min(n_rows, n_features),)

    Examples
    --------
    >>> r = pca_spectrum([[0, 0], [2, 0], [0, 1], [2, 1]])
    >>> r.round(3).tolist()
    [0.8, 0.2]
    """
    Xc, _ = _centered_sample(X, max_rows, random_state)
    n, d = Xc.shape
    if n <= d:  # the Gram matrix is the smaller one; same non-zero eigenvalues
        ev = np.linalg.eigvalsh(Xc @ Xc.T)
    else:
        ev = np.linalg.eigvalsh(Xc.T @ Xc)
    ev = np.clip(ev[::-1], 0.0, None)[: min(n, d)]
    total = ev.sum()
    return ev / total if total > 0 else np.zeros_like(ev)


def count_duplicate_rows(X):
    """Rows that repeat an earlier row exactly (n minus the number of distinct rows).

    ``-0.0`` and ``0.0`` count as equal. Linear time in the size of X, about 24 bytes of
    work memory per row: every row is hashed to 64 bits (one pass over the columns, with
    a key drawn once per process so that no file can be made to collide on purpose), the
    hashes are sorted, and the rows of each run of equal hashes are compared with the
    run's first row; the rare runs that mix different rows are counted exactly on their
    own. (``np.unique(axis=0)`` compares whole rows in its sort, about 45 us a row on a
    million identical rows of 50 values.)

    Examples
    --------
    >>> count_duplicate_rows([[1, 2], [1, 2], [3, 4], [1, 2]])
    2
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise VQLensError(f"X should be 2-D, got shape {X.shape}.")
    n, d = X.shape
    if n < 2:
        return 0
    if d == 0:
        return n - 1
    order = np.argsort(_row_hashes(X), kind="stable")
    h = _row_hashes(X)[order]
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(h[1:], h[:-1], out=new[1:])
    del h
    groups = int(np.count_nonzero(new))
    mixed = _mixed_runs(X, order, new)
    if not mixed.size:
        return n - groups
    # runs of equal hashes holding different rows: count their distinct rows exactly
    # (equal rows have equal hashes, so rows of different runs differ)
    members = order[np.isin(np.cumsum(new) - 1, mixed)]
    sub = _row_bits(X[members])
    distinct = np.unique(sub.view(np.dtype((np.void, sub.dtype.itemsize * d))).ravel()).shape[0]
    return n - (groups - mixed.size + distinct)


_HASH_KEY = np.random.SeedSequence().generate_state(2, dtype=np.uint64)  # per process
_HASH_BLOCK = 1 << 22  # values per block of the row comparisons


def _row_bits(X):
    """The rows as unsigned integers of the same width, equal exactly when the values are
    (``-0.0`` and ``0.0`` made equal)."""
    if X.dtype.kind == "f":
        X = X + X.dtype.type(0.0)  # -0.0 + 0.0 = 0.0
    elif X.dtype.kind == "b":
        X = X.astype(np.uint8)
    X = np.ascontiguousarray(X)
    return X.view(np.dtype(f"u{X.dtype.itemsize}"))


def _row_hashes(X):
    """A keyed 64-bit hash of every row (xor, multiply and shift per column, in blocks of rows)."""
    n, d = X.shape
    h = np.empty(n, dtype=np.uint64)
    prime, shift = np.uint64(0x100000001B3), np.uint64(29)
    step = max(1, (1 << 22) // max(1, d))
    with np.errstate(over="ignore"):
        for a in range(0, n, step):
            block = _row_bits(X[a:a + step])
            acc = np.full(block.shape[0], _HASH_KEY[0], dtype=np.uint64)
            for j in range(d):
                acc ^= block[:, j]
                acc *= prime
                acc ^= acc >> shift
            acc ^= _HASH_KEY[1]
            acc *= prime
            h[a:a + step] = acc
    return h


def _mixed_runs(X, order, new):
    """Indices of the runs of equal hashes (in sorted order) whose rows are not all equal."""
    n = len(order)
    step = max(1, _HASH_BLOCK // max(1, X.shape[1]))
    mixed = []
    run = -1
    start_row = order[0]
    for a in range(0, n, step):
        b = min(n, a + step)
        starts = np.where(new[a:b], np.arange(a, b), -1)
        np.maximum.accumulate(starts, out=starts)
        before = starts < 0  # rows of a run that began in an earlier block
        firsts = np.where(before, 0, starts)
        reps = order[firsts]
        reps[before] = start_row
        differ = np.flatnonzero((_row_bits(X[order[a:b]]) != _row_bits(X[reps])).any(axis=1))
        runs_here = run + np.cumsum(new[a:b])
        if differ.size:
            mixed.append(np.unique(runs_here[differ]))
        run = int(runs_here[-1])
        start_row = reps[-1]
    return np.unique(np.concatenate(mixed)) if mixed else np.array([], dtype=np.int64)


def data_summary(X, *, max_rows_pca=_PCA_MAX_ROWS, random_state=0):
    """What a person should know about a data set before quantizing it.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), finite

    Returns
    -------
    summary : dict
        ``n``, ``d``, ``dtype``; ``norms`` (ndarray (n,)), ``norm_min``,
        ``norm_mean``, ``norm_max``; ``unit_norm`` (all norms within 1e-3 of
        1); ``pca_ratio`` (see :func:`pca_spectrum`), ``pca_rows`` (rows it
        used), ``dims_for_90`` (principal directions holding 90% of the
        variance); ``duplicates`` (:func:`count_duplicate_rows`);
        ``total_variance`` (``mean_i ||x_i - mean||^2``); ``mean_norm`` (norm
        of the mean vector).
    """
    X = check_data(X)
    n, d = X.shape
    norms = row_norms(X)
    ratio = pca_spectrum(X, max_rows=max_rows_pca, random_state=random_state)
    cum = np.cumsum(ratio)
    mean = X.mean(axis=0, dtype=np.float64)
    total = float(np.mean(norms**2) - mean @ mean)
    return {
        "n": int(n),
        "d": int(d),
        "dtype": str(X.dtype),
        "norms": norms,
        "norm_min": float(norms.min()),
        "norm_mean": float(norms.mean()),
        "norm_max": float(norms.max()),
        "unit_norm": bool(np.all(np.abs(norms - 1.0) < 1e-3)),
        "pca_ratio": ratio,
        "pca_rows": int(min(n, max_rows_pca)),
        "dims_for_90": int(np.searchsorted(cum, 0.9 - 1e-12) + 1) if cum.size and cum[-1] > 0 else 0,
        "duplicates": count_duplicate_rows(X),
        "total_variance": max(total, 0.0),
        "mean_norm": float(np.sqrt(mean @ mean)),
    }


def preprocess(X, *, center=False, normalize=False):
    """Centre and / or L2-normalise rows; return the new array and what was done.

    Centring subtracts the mean row; normalising divides every row by its
    norm (after centring when both are asked). Rows of norm 0 are left as
    zeros and counted in the notes.

    Returns
    -------
    X_out : ndarray of shape (n, d), float32
    notes : list of str

    Examples
    --------
    >>> Y, notes = preprocess([[3, 4], [0, 0]], normalize=True)
    >>> Y.tolist(), notes  # doctest: +NORMALIZE_WHITESPACE
    ([[0.6000000238418579, 0.800000011920929], [0.0, 0.0]],
     ['L2-normalised every row; 1 row(s) of norm 0 left as zeros.'])
    """
    X = check_data(X)
    notes = []
    if center:
        X = X - X.mean(axis=0, dtype=np.float64).astype(np.float32)
        notes.append("Centred: subtracted the mean vector.")
    if normalize:
        norms = row_norms(X)
        zero = norms == 0
        scale = np.where(zero, 1.0, norms).astype(np.float32)
        X = X / scale[:, None]
        msg = "L2-normalised every row"
        msg += f"; {int(zero.sum())} row(s) of norm 0 left as zeros." if zero.any() else "."
        notes.append(msg)
    return np.ascontiguousarray(X, dtype=np.float32), notes


# --------------------------------------------------------------------------
# 2-D maps


def pca_basis(X, n_components=2, *, max_rows=_PCA_MAX_ROWS, random_state=0):
    """Mean and leading principal directions of X, for :func:`project`.

    Directions are unit vectors, orthogonal, ordered by variance, with the sign
    fixed so the largest-magnitude coordinate is positive (so the map does not
    flip between runs).

    Returns
    -------
    mean : ndarray of shape (d,)
    components : ndarray of shape (n_components, d)
    """
    n_components = check_int("n_components", n_components, low=1)
    Xc, mean = _centered_sample(X, max_rows, random_state)
    d = Xc.shape[1]
    if n_components > d:
        raise VQLensError(f"n_components={n_components} should be <= n_features={d}.")
    with single_blas_thread():
        _, _, Vt = np.linalg.svd(Xc, full_matrices=False)
    comps = np.zeros((n_components, d))
    k = min(n_components, Vt.shape[0])
    comps[:k] = Vt[:k]
    for i in range(k):
        j = np.argmax(np.abs(comps[i]))
        if comps[i, j] < 0:
            comps[i] *= -1
    return mean, comps


def project(X, mean, components):
    """Coordinates of the rows of X on ``components`` around ``mean``: ``(X - mean) @ components.T``.

    Examples
    --------
    >>> project([[1, 2], [3, 4]], [1, 2], [[1, 0], [0, 1]]).tolist()
    [[0.0, 0.0], [2.0, 2.0]]
    """
    X = np.asarray(X, dtype=np.float64)
    return (X - np.asarray(mean, dtype=np.float64)) @ np.asarray(components, dtype=np.float64).T


def code_means(X, codes_m, codebook_size):
    """Mean of the items that have each code (at one position); NaN rows for unused codes.

    Returns
    -------
    means : ndarray of shape (K, d), float64
    counts : ndarray of shape (K,), int64
    """
    X = np.asarray(X, dtype=np.float64)
    codes_m = np.asarray(codes_m).astype(np.intp).ravel()
    K = check_int("codebook_size", codebook_size, low=1)
    counts = np.bincount(codes_m, minlength=K)[:K]
    sums = np.zeros((K, X.shape[1]))
    np.add.at(sums, codes_m, X)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts[:, None]
    means[counts == 0] = np.nan
    return means, counts


def codeword_points(quantizer, codes, position):
    """Where each codeword of one position sits in the data space, for a map.

    Code c at position m is placed at ``mean_i decode(codes_i with position m
    set to c)``: the average reconstruction when every item is given code c
    there. Every vqcore quantizer decodes linearly in the one-hot codes, so
    this is ``mean(X_hat) - mean_i D[codes_im] + D[c]`` with ``D[c]`` the
    decode of any fixed tuple with code c at m. For k-means VQ this is the
    codeword itself; for RQ / AQ the codeword plus the average of the other
    stages; for PQ / OPQ the codeword in its subspace with the other
    subspaces at their average. Dead codes get a point too.

    Parameters
    ----------
    quantizer : fitted vqcore quantizer
    codes : ndarray of shape (n, M), the codes of the items shown
    position : int, the code position m

    Returns
    -------
    points : ndarray of shape (K, d), float64
    """
    codes = np.asarray(codes)
    M, K = quantizer.n_codebooks, quantizer.codebook_size
    m = check_int("position", position, low=0, high=M - 1)
    ref = np.repeat(codes[:1].astype(np.int64), K, axis=0)
    ref[:, m] = np.arange(K)
    D = quantizer.decode(ref).astype(np.float64)
    X_hat_mean = quantizer.decode(codes).mean(axis=0, dtype=np.float64)
    used = D[codes[:, m].astype(np.intp)].mean(axis=0)
    return X_hat_mean - used + D


def umap_embed(X, extra=None, *, n_neighbors=15, n_epochs=100, pca_dims=32, random_state=0):
    """2-D UMAP of X, and of ``extra`` points placed by the fitted map.

    X is first reduced to its ``pca_dims`` leading principal directions (the
    usual preprocessing for UMAP; it makes the neighbour search fast), and a
    short schedule (``n_epochs``) keeps it interactive on ~10k points. The
    first call in a process also pays numba's compilation (tens of seconds).
    Needs the optional package umap-learn (McInnes, Healy & Melville, 2018).

    Returns
    -------
    emb : ndarray of shape (n, 2)
    emb_extra : ndarray of shape (len(extra), 2) or None
    """
    import warnings

    try:
        import umap
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise VQLensError("UMAP needs the package umap-learn: pip install umap-learn.") from exc
    X = check_data(X)
    n, d = X.shape
    if n < 4:
        raise VQLensError(f"n_samples={n} should be >= 4 for UMAP.")
    k = min(check_int("pca_dims", pca_dims, low=2), d, n)
    mean, comps = pca_basis(X, k, random_state=random_state)
    P = project(X, mean, comps).astype(np.float32)
    n_neighbors = min(check_int("n_neighbors", n_neighbors, low=2), n - 1)
    reducer = umap.UMAP(
        n_components=2, n_neighbors=n_neighbors, n_epochs=check_int("n_epochs", n_epochs, low=1),
        random_state=random_state, low_memory=False, init="spectral" if n > 2 * n_neighbors else "random",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap's notes about n_jobs with a seed, and numba's
        emb = reducer.fit_transform(P)
        emb_extra = None
        if extra is not None and len(extra):
            E = project(check_data(extra, name="extra"), mean, comps).astype(np.float32)
            emb_extra = np.asarray(reducer.transform(E), dtype=np.float64)
    return np.asarray(emb, dtype=np.float64), emb_extra


# --------------------------------------------------------------------------
# 2-D toys


def grid_points(bounds, resolution):
    """A regular grid over ``bounds = (xmin, xmax, ymin, ymax)``.

    Returns
    -------
    xs : ndarray of shape (resolution,)
    ys : ndarray of shape (resolution,)
    P : ndarray of shape (resolution**2, 2), float32; row ``i * resolution + j`` is ``(xs[j], ys[i])``
    """
    resolution = check_int("resolution", resolution, low=2, high=2000)
    xmin, xmax, ymin, ymax = (float(b) for b in bounds)
    xs = np.linspace(xmin, xmax, resolution)
    ys = np.linspace(ymin, ymax, resolution)
    gx, gy = np.meshgrid(xs, ys)
    return xs, ys, np.column_stack([gx.ravel(), gy.ravel()]).astype(np.float32)


def cell_ids(codes, n_stages=None):
    """A dense id per distinct tuple of the first ``n_stages`` codes (all when None).

    Points with the same id lie in the same cell of the quantizer's partition
    (after that many stages).

    Examples
    --------
    >>> cell_ids([[0, 1], [0, 2], [1, 1], [0, 1]]).tolist()
    [0, 1, 2, 0]
    >>> cell_ids([[0, 1], [0, 2], [1, 1], [0, 1]], n_stages=1).tolist()
    [0, 0, 1, 0]
    """
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise VQLensError(f"codes should be 2-D, got shape {codes.shape}.")
    s = codes.shape[1] if n_stages is None else check_int("n_stages", n_stages, low=1, high=codes.shape[1])
    _, inv = np.unique(codes[:, :s], axis=0, return_inverse=True)
    return inv.ravel().astype(np.int64)


def _data_mean(quantizer, d):
    """The quantizer's ``mean_`` in float64 (zeros without one): codebooks are centred on it."""
    mean = getattr(quantizer, "mean_", None)
    return np.zeros(d) if mean is None else np.asarray(mean, dtype=np.float64)


def _additive_books(quantizer):
    if not getattr(quantizer, "additive", False):
        raise VQLensError(
            f"{type(quantizer).__name__} is not additive: its codewords live in subspaces, "
            "so it has no partial reconstruction by stages."
        )
    return quantizer.codebooks_


def prefix_reconstruction(quantizer, codes, n_stages):
    """Sum of the first ``n_stages`` codewords of each item (RQ / AQ / VQ).

    The codewords are added to the quantizer's ``mean_`` (the codebooks are
    centred on it), so 0 stages give the mean and all M give ``decode``.

    Returns
    -------
    X_hat : ndarray of shape (n, d), float64
    """
    books = _additive_books(quantizer)
    codes = np.asarray(codes).astype(np.intp)
    s = check_int("n_stages", n_stages, low=0, high=books.shape[0])
    out = np.tile(_data_mean(quantizer, books.shape[2]), (codes.shape[0], 1))
    for m in range(s):
        out += books[m][codes[:, m]]
    return out


def reachable_points(quantizer, n_stages=None, *, max_points=65536):
    """Every reconstruction the codes can express (after ``n_stages`` stages for additive ones).

    For additive quantizers: all sums of one codeword from each of the first
    ``n_stages`` codebooks; for product quantizers (PQ, OPQ): every
    concatenation of one codeword per subspace (rotated back for OPQ).

    Returns
    -------
    points : ndarray of shape (K**stages, d), float64
    """
    M, K = quantizer.n_codebooks, quantizer.codebook_size
    additive = getattr(quantizer, "additive", False)
    s = M if (n_stages is None or not additive) else check_int("n_stages", n_stages, low=1, high=M)
    total = K**s
    if total > max_points:
        raise VQLensError(f"K**n_stages={total} points exceed max_points={max_points}; "
                          "use fewer stages or a smaller K.")
    if additive:
        books = quantizer.codebooks_.astype(np.float64)
        pts = _data_mean(quantizer, books.shape[2])[None, :]
        for m in range(s):
            pts = (pts[:, None, :] + books[m][None, :, :]).reshape(-1, books.shape[2])
        return pts
    tuples = np.array(list(itertools.product(range(K), repeat=M)), dtype=np.int64)
    return quantizer.decode(tuples).astype(np.float64)


def plane_partitions(X, K, M, *, resolution=160, max_points=4096, random_state=0):
    """Fit VQ (K codes), PQ (2 subspaces x K) and RQ (M stages x K) on 2-D data and read off their cells.

    The Learn page's pictures: a grid of ``resolution`` x ``resolution`` points over the data (its
    0.2%-99.8% quantiles, padded by 15%), the cell of every grid point under each quantizer, the
    reconstruction points and the mean squared error of each. RQ gives one entry per stage; its
    reachable points are listed only while K^stage <= ``max_points`` (else None).

    Returns
    -------
    dict with ``X``, ``xs``, ``ys`` (the grid axes), ``vq`` and ``pq`` (dicts of ``cells``,
    ``points``, ``mse``), ``rq`` (a list of such dicts with ``n_points``) and ``variance``
    (the data's mean squared distance to its mean, the error of one codeword).
    """
    from .kmeans import KMeansVQ
    from .pq import ProductQuantizer
    from .rq import ResidualQuantizer

    X = check_data(X)
    if X.shape[1] != 2:
        raise VQLensError(f"X has n_features={X.shape[1]}; the plane partitions need 2-D data.")
    lo, hi = np.quantile(X, [0.002, 0.998], axis=0)
    pad = 0.15 * (hi - lo)
    bounds = (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])
    xs, ys, G = grid_points(bounds, resolution)

    def mse(q):
        return float(((X - q.decode(q.encode(X))) ** 2).sum(1).mean())

    vq = KMeansVQ(K, random_state=random_state).fit(X)
    pq = ProductQuantizer(2, K, random_state=random_state).fit(X)
    rq = ResidualQuantizer(M, K, random_state=random_state).fit(X)
    codes_grid, codes_X = rq.encode(G), rq.encode(X)
    stages = []
    for s in range(1, M + 1):
        pts = reachable_points(rq, s) if K**s <= max_points else None
        err = float(((X - prefix_reconstruction(rq, codes_X, s)) ** 2).sum(1).mean())
        stages.append({"cells": cell_ids(codes_grid, s), "points": pts, "mse": err, "n_points": K**s})
    return {
        "X": X, "xs": xs, "ys": ys,
        "vq": {"cells": cell_ids(vq.encode(G)), "points": vq.decode(np.arange(K)[:, None]).astype(float),
               "mse": mse(vq)},
        "pq": {"cells": cell_ids(pq.encode(G)), "points": reachable_points(pq), "mse": mse(pq)},
        "rq": stages,
        "variance": float(((X - X.mean(0)) ** 2).sum(1).mean()),
    }
