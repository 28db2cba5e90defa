"""Compiled loops for the few places where numpy's per-call cost dominates.

The kernels are compiled by numba (which umap-learn already brings) on first
use and cached on disk (see :func:`_compiled`). They release the GIL, so the
PQ subspaces that call them from the thread pool run truly in parallel.

Import this module lazily (``from . import _kernels`` inside a function):
importing numba costs about a quarter of a second.
"""

import numba
import numpy as np

# points per block of the sampling table: a draw scans the block totals, then one block
_BLOCK = 128


def _compiled(fastmath=False):
    """``numba.njit`` without the GIL, cached on disk where numba finds a writable place
    (beside this file, else the user's cache directory); where it finds none (a
    read-only install without a home directory) compiled in memory in each process."""
    def wrap(fn):
        try:
            return numba.njit(nogil=True, cache=True, fastmath=fastmath)(fn)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return numba.njit(nogil=True, fastmath=fastmath)(fn)
    return wrap


@_compiled(fastmath=True)
def _add_sq_dists(rows, XT, X, idx):
    """``rows[t, i] = ||x_i - X[idx[t]]||^2`` for the columns x_i of XT (d, n) and every t,
    four dimensions per pass.

    The candidates share each pass over XT (read once per centre rather than once per
    candidate: 2-14% of the seeding's time on SIFT and MiniLM subspaces, the rest is
    arithmetic). Each row gets the same float32 operations, in the same order, as when
    it is computed alone.
    """
    d, n = XT.shape
    T = idx.shape[0]
    for t in range(T):
        for i in range(n):
            rows[t, i] = 0.0
    j = 0
    while j + 4 <= d:
        x0, x1, x2, x3 = XT[j], XT[j + 1], XT[j + 2], XT[j + 3]
        for t in range(T):
            p = X[idx[t]]
            c0, c1, c2, c3 = p[j], p[j + 1], p[j + 2], p[j + 3]
            out = rows[t]
            for i in range(n):
                q0 = x0[i] - c0
                q1 = x1[i] - c1
                q2 = x2[i] - c2
                q3 = x3[i] - c3
                out[i] += (q0 * q0 + q1 * q1) + (q2 * q2 + q3 * q3)
        j += 4
    while j < d:
        xj = XT[j]
        for t in range(T):
            cj = X[idx[t], j]
            out = rows[t]
            for i in range(n):
                q = xj[i] - cj
                out[i] += q * q
        j += 1


@_compiled()
def _draw(closest, block_sums, u):
    """Index i drawn with probability closest[i] / sum(closest), by the uniform u."""
    n = closest.shape[0]
    n_blocks = block_sums.shape[0]
    total = 0.0
    for b in range(n_blocks):
        total += block_sums[b]
    r = u * total
    b = 0
    while b < n_blocks - 1 and r >= block_sums[b]:
        r -= block_sums[b]
        b += 1
    i = b * _BLOCK
    last = min(n, (b + 1) * _BLOCK) - 1
    while i < last and r >= closest[i]:
        r -= closest[i]
        i += 1
    return i


@_compiled(fastmath=True)
def _set_closest(closest, block_sums, row):
    """closest = row, and the per-block totals (float64) of the sampling table."""
    n = closest.shape[0]
    for b in range(block_sums.shape[0]):
        s = 0.0
        for i in range(b * _BLOCK, min(n, (b + 1) * _BLOCK)):
            closest[i] = row[i]
            s += row[i]
        block_sums[b] = s


@_compiled(fastmath=True)
def greedy_kmeans_pp(X, XT, first, uniforms, centers):
    """Greedy k-means++ (Arthur & Vassilvitskii 2007) with the uniforms given.

    ``centers[0] = X[first]``; for each next centre c, ``uniforms[c - 1]``
    (one per local trial) draw candidates with probability proportional to
    the squared distance to the nearest centre so far, and the candidate that
    most lowers the total of those distances becomes the centre. Distances are
    direct differences over the columns of XT, so the kernel is for low
    dimensions; higher ones go through BLAS in :func:`vqcore.kmeans.kmeans_plusplus_rng`.

    Parameters
    ----------
    X : ndarray of shape (n, d), float32
    XT : ndarray of shape (d, n), float32, C-contiguous
    first : int
    uniforms : ndarray of shape (K - 1, n_local_trials), float64 in [0, 1)
    centers : ndarray of shape (K, d), float32, filled in place

    Returns
    -------
    int
        Centres placed. Fewer than K when every point already sits on a
        centre (fewer than K distinct points); the caller fills the rest.
    """
    n = X.shape[0]
    K = centers.shape[0]
    trials = uniforms.shape[1]
    closest = np.empty(n, np.float32)
    block_sums = np.empty((n + _BLOCK - 1) // _BLOCK, np.float64)
    rows = np.empty((trials, n), np.float32)
    chosen = np.empty(trials, np.int64)
    potential = np.empty(trials, np.float64)
    centers[0] = X[first]
    chosen[:] = first
    _add_sq_dists(rows[:1], XT, X, chosen[:1])
    _set_closest(closest, block_sums, rows[0])
    for c in range(1, K):
        if not block_sums.sum() > 0.0:
            return c
        for t in range(trials):
            chosen[t] = _draw(closest, block_sums, uniforms[c - 1, t])
        _add_sq_dists(rows, XT, X, chosen)
        for t in range(trials):
            row = rows[t]
            s = 0.0
            for i in range(n):
                v = min(row[i], closest[i])
                row[i] = v
                s += v
            potential[t] = s
        best = np.argmin(potential)
        centers[c] = X[chosen[best]]
        _set_closest(closest, block_sums, rows[best])
    return K


@_compiled()
def cluster_stats(X, labels, counts, sums):
    """Size ``counts[k]`` and row sum ``sums[k]`` of each cluster k, in one pass over X.

    The rows are added in their order, in the dtype of ``sums``: the same additions as
    the sparse one-hot product of :func:`vqcore._distances.cluster_sums` (so the same
    sums), without building the one-hot matrix in every Lloyd iteration.
    """
    n, d = X.shape
    counts[:] = 0
    sums[:] = 0
    for i in range(n):
        k = labels[i]
        counts[k] += 1
        for j in range(d):
            sums[k, j] += X[i, j]


@_compiled()
def _keep_best(best, idx, filled, n_out, s, code):
    """Put score ``s`` of index ``code`` into the ascending buffer ``best[:n_out]`` (``idx`` beside it),
    which holds ``filled`` entries, after any equal score (so the earlier index stays first on a tie);
    when it is full the worst entry drops out. The caller offers only a score that beats the worst
    of a full buffer. Returns the new number of entries."""
    t = filled if filled < n_out else n_out - 1
    while t > 0 and best[t - 1] > s:
        best[t] = best[t - 1]
        idx[t] = idx[t - 1]
        t -= 1
    best[t] = s
    idx[t] = code
    return filled + 1 if filled < n_out else filled


@_compiled()
def beam_select(RC, err, Cn, sel):
    """The beam's selection: for each row i the ``B_out = sel.shape[1]`` smallest scores
    ``err[i, b] - 2 RC[i, b, k] + Cn[k]`` over its paths b and codewords k, best first;
    ``sel[i]`` gets their flat indices ``b * K + k``.

    One pass over the products with a sorted buffer of B_out entries (a score enters only
    when it beats the buffer's worst): no (rows, B, K) score array, no partition and no
    sort, which in numpy cost three passes more than the product itself. On equal scores
    the earlier index comes first (as a stable sort), so B_out = 1 is numpy's argmin.
    """
    c, B, K = RC.shape
    n_out = sel.shape[1]
    best = np.empty(n_out, dtype=np.float64)
    idx = np.empty(n_out, dtype=np.int64)
    for i in range(c):
        filled = 0
        worst = np.inf
        for b in range(B):
            e = np.float64(err[i, b])
            row = RC[i, b]
            for k in range(K):
                s = e - 2.0 * row[k] + Cn[k]
                if filled < n_out or s < worst:
                    filled = _keep_best(best, idx, filled, n_out, s, b * K + k)
                    worst = best[filled - 1] if filled == n_out else np.inf
        for j in range(n_out):
            sel[i, j] = idx[j]


@_compiled()
def beam_argmin(RC, err, Cn, sel, R, C):
    """:func:`beam_select` for a beam of one (``sel.shape[1] == 1``): the smallest score
    ``err[i, b] - 2 RC[i, b, k] + Cn[k]``, without the sorted buffer's bookkeeping, and the
    same for every batch of rows, every thread count and a row encoded alone.

    The products RC come from BLAS, whose float32 rounding depends on the shape of the
    product and on its threads (a row alone, or in another block, can get another
    last bit). So every codeword whose score is within the bound of that rounding
    (``8 d 2^-24 |r| max |c|``) of the best one is scored again as ``||r - c||^2`` in
    float64 from R and C, in a fixed order, and the smallest of these wins (the first on
    equal scores). A gap wider than the bound gives BLAS's choice, which is then the same
    in any run.
    """
    c, B, K = RC.shape
    d = R.shape[2]
    cmax = 0.0
    for k in range(K):
        cmax = max(cmax, np.float64(Cn[k]))
    unit = 8.0 * d * 2.0 ** -24 * np.sqrt(cmax)
    for i in range(c):
        best = np.inf
        arg = 0
        emax = 0.0
        for b in range(B):
            e = np.float64(err[i, b])
            emax = max(emax, e)
            row = RC[i, b]
            for k in range(K):
                s = e - 2.0 * row[k] + Cn[k]
                if s < best:
                    best = s
                    arg = b * K + k
        limit = best + unit * np.sqrt(emax)
        exact = np.inf
        pick = arg
        for b in range(B):
            e = np.float64(err[i, b])
            row = RC[i, b]
            for k in range(K):
                if e - 2.0 * row[k] + Cn[k] <= limit:
                    v = 0.0
                    for t in range(d):
                        q = np.float64(R[i, b, t]) - np.float64(C[k, t])
                        v += q * q
                    if v < exact:
                        exact = v
                        pick = b * K + k
        sel[i, 0] = pick


@_compiled(fastmath=True)
def beam_extend(R, C, sel, newR, newerr):
    """The kept paths' residuals and squared norms: ``newR[i, j] = R[i, b] - C[k]`` with
    ``b, k = divmod(sel[i, j], K)``, and ``newerr[i, j] = ||newR[i, j]||^2``, in one pass
    (numpy's fancy indexing gathers both operands into temporaries first)."""
    c, n_out = sel.shape
    K, d = C.shape
    for i in range(c):
        for j in range(n_out):
            b = sel[i, j] // K
            k = sel[i, j] - b * K
            s = 0.0
            for t in range(d):
                v = R[i, b, t] - C[k, t]
                newR[i, j, t] = v
                s += v * v
            newerr[i, j] = s


@_compiled()
def icm_sweeps(U, G2, codes, n_sweeps):
    """ICM with unary and pairwise tables, in place: ``n_sweeps`` times, for each position m,
    ``codes[i, m] = argmin_k U[i, m, k] + sum_{j != m} G2[j, m, codes[i, j], k]`` (first
    minimum on ties). The same float32 additions, in the same order, as the numpy
    version, without its (rows, K) temporaries per table gather."""
    c, M, K = U.shape
    cost = np.empty(K, dtype=np.float32)
    for i in range(c):
        for _ in range(n_sweeps):
            for m in range(M):
                for k in range(K):
                    cost[k] = U[i, m, k]
                for j in range(M):
                    if j != m:
                        g = G2[j, m, codes[i, j]]
                        for k in range(K):
                            cost[k] += g[k]
                best = 0
                for k in range(1, K):
                    if cost[k] < cost[best]:
                        best = k
                codes[i, m] = best


@_compiled()
def _icm_row(U, G2, code, n_sweeps, cost):
    """:func:`icm_sweeps` on one row (U of shape (M, K)), the same codes, faster.

    The cost of position m is ``U[m]`` plus the M - 1 table rows added two per pass (one
    pass of loads and stores instead of two, the same float32 additions in the same order),
    its minimum found by a branch-free pass and then its first index (a compare-and-branch
    argmin mispredicts on every new minimum). The sweeps stop early after one that changed
    no code: ICM is then at a fixed point, so the codes are those of ``n_sweeps`` sweeps.
    """
    M, K = U.shape
    for _ in range(n_sweeps):
        changed = False
        for m in range(M):
            first = True
            j = 0
            while j < M:
                if j == m:
                    j += 1
                    continue
                ga = G2[j, m, code[j]]
                j2 = j + 1 if j + 1 != m else j + 2
                if j2 < M:
                    gb = G2[j2, m, code[j2]]
                    if first:
                        for k in range(K):
                            cost[k] = U[m, k] + ga[k] + gb[k]
                    else:
                        for k in range(K):
                            cost[k] = cost[k] + ga[k] + gb[k]
                    j = j2 + 1
                else:
                    if first:
                        for k in range(K):
                            cost[k] = U[m, k] + ga[k]
                    else:
                        for k in range(K):
                            cost[k] = cost[k] + ga[k]
                    j = j2
                first = False
            if first:  # M == 1
                for k in range(K):
                    cost[k] = U[m, k]
            low = cost[0]
            for k in range(1, K):
                low = min(low, cost[k])
            best = 0
            while best < K - 1 and cost[best] != low:  # (a NaN cost ends on the last code)
                best += 1
            if best != code[m]:
                code[m] = best
                changed = True
        if not changed:
            return


@_compiled()
def _row_error(xn, U, G2, code):
    """``||x||^2 + sum_m U[m, c_m] + sum_{j > m} G2[j, m, c_j, c_m]`` in float32, in the order
    of :meth:`vqcore.aq._TableSearch.error`."""
    M = U.shape[0]
    err = xn
    for m in range(M):
        err += U[m, code[m]]
        for j in range(m + 1, M):
            err += G2[j, m, code[j], code[m]]
    return err


@_compiled()
def ils_rows(U, G2, xn, codes, pos, new, n_icm):
    """Iterated local search (LSQ, Martinez et al. 2016) on each row, in place.

    Per row: one ICM sweep, then for each round r the codes at positions ``pos[i, r]``
    set to ``new[i, r]``, ``n_icm`` ICM sweeps (early stop at a fixed point), and the
    result kept where the row's error (:func:`_row_error`) fell. The same float32
    arithmetic, in the same order, as :meth:`vqcore.aq._TableSearch.ils`; one row at a
    time, so no (rows, K) temporaries, and rows done as soon as they are done.
    """
    c, M, K = U.shape
    n_ils, n_perturb = pos.shape[1], pos.shape[2]
    cost = np.empty(K, dtype=np.float32)
    cand = np.empty(M, dtype=np.int64)
    for i in range(c):
        code = codes[i]
        Ui = U[i]
        _icm_row(Ui, G2, code, 1, cost)
        err = _row_error(xn[i], Ui, G2, code)
        for r in range(n_ils):
            for m in range(M):
                cand[m] = code[m]
            for t in range(n_perturb):
                cand[pos[i, r, t]] = new[i, r, t]
            _icm_row(Ui, G2, cand, n_icm, cost)
            e = _row_error(xn[i], Ui, G2, cand)
            if e < err:
                err = e
                for m in range(M):
                    code[m] = cand[m]


@_compiled()
def table_beam_rows(U, G2, beam_size, codes):
    """Beam search over the codebooks in order (multi-path encoding, Babenko & Lempitsky
    2014), read off the unary and pairwise tables, on each row; ``codes[i]`` gets the best path.

    A path of codes ``c_0..c_{m-1}`` extended by codeword k of codebook m scores its error
    plus ``U[i, m, k] + sum_{j < m} G2[j, m, c_j, k]`` (the row's squared error, less
    ``||x_i||^2``): the scores of :func:`vqcore.rq.beam_search_encode` without its (B, K, d)
    products, ``B K m`` table additions at stage m instead of ``B K d`` multiply-adds. The
    ``beam_size`` best paths are kept, best first, the earlier ``b * K + k`` first on equal
    scores (as :func:`beam_select`). One row at a time: its codes depend on that row alone.
    """
    c, M, K = U.shape
    B = beam_size
    pc = np.zeros((B, M), dtype=np.int64)
    nc = np.zeros((B, M), dtype=np.int64)
    pe = np.zeros(B, dtype=np.float64)
    ne = np.zeros(B, dtype=np.float64)
    best = np.empty(B, dtype=np.float64)
    idx = np.empty(B, dtype=np.int64)
    cost = np.empty(K, dtype=np.float32)
    for i in range(c):
        n_paths = 1
        pe[0] = 0.0
        for m in range(M):
            n_out = min(B, n_paths * K)
            filled = 0
            worst = np.inf
            for b in range(n_paths):
                for k in range(K):
                    cost[k] = U[i, m, k]
                for j in range(m):
                    g = G2[j, m, pc[b, j]]
                    for k in range(K):
                        cost[k] += g[k]
                e = pe[b]
                for k in range(K):
                    s = e + cost[k]
                    if filled < n_out or s < worst:
                        filled = _keep_best(best, idx, filled, n_out, s, b * K + k)
                        worst = best[filled - 1] if filled == n_out else np.inf
            for t in range(n_out):
                b = idx[t] // K
                for j in range(m):
                    nc[t, j] = pc[b, j]
                nc[t, m] = idx[t] - b * K
                ne[t] = best[t]
            pc, nc = nc, pc
            pe, ne = ne, pe
            n_paths = n_out
        for j in range(M):
            codes[i, j] = pc[0, j]


@_compiled()
def adc_rank_counts(G, xn, qn, words, truth_keys, rows, truth, dt, counts):
    """Recall's rank counts of one row block (:func:`vqcore.partials.chunk_codes_pass`) in one pass.

    For query i, ``counts[i]`` grows by the rows j ranked before its true neighbour: a row with
    the neighbour's code tuple (``words[j] == truth_keys[i]``) when it comes first
    (``rows[j] < truth[i]``), any other row when its asymmetric distance
    ``(G[i, j] * -2 + xn[j]) + qn[i]`` (float32, in numpy's order) is below ``dt[i]``, or equal
    to it and the row comes first. The same integers as numpy's masks, without a (nq, rows)
    array per test.
    """
    nq, b = G.shape
    W = words.shape[1]
    m2 = np.float32(-2.0)
    for i in range(nq):
        c = 0
        ti = truth[i]
        di = dt[i]
        qi = qn[i]
        for j in range(b):
            before = rows[j] < ti
            same = True
            for w in range(W):
                if words[j, w] != truth_keys[i, w]:
                    same = False
                    break
            if same:
                if before:
                    c += 1
            else:
                d = G[i, j] * m2 + xn[j] + qi
                if d < di or (d == di and before):
                    c += 1
        counts[i] += c


def warm_up():
    """Run each kernel once on a few points, so that numba loads their cached
    machine code (or compiles it, the first time after install) now."""
    X = np.arange(64, dtype=np.float32).reshape(16, 4)
    greedy_kmeans_pp(X, np.ascontiguousarray(X.T), 0, np.full((3, 2), 0.5), np.empty((4, 4), np.float32))
    cluster_stats(X, np.zeros(16, np.int64), np.empty(4, np.int64), np.empty((4, 4), np.float32))
    icm_sweeps(np.zeros((2, 2, 4), np.float32), np.zeros((2, 2, 4, 4), np.float32), np.zeros((2, 2), np.int64), 1)
    ils_rows(np.zeros((2, 2, 4), np.float32), np.zeros((2, 2, 4, 4), np.float32), np.zeros(2, np.float32),
             np.zeros((2, 2), np.int64), np.zeros((2, 1, 1), np.int64), np.zeros((2, 1, 1), np.int64), 1)
    table_beam_rows(np.zeros((2, 2, 4), np.float32), np.zeros((2, 2, 4, 4), np.float32), 2, np.zeros((2, 2), np.int64))
    sel = np.zeros((4, 2), np.int64)
    beam_select(X.reshape(4, 2, 8), np.zeros((4, 2), np.float32), np.zeros(8, np.float32), sel)
    beam_argmin(X.reshape(4, 2, 8), np.zeros((4, 2), np.float32), np.zeros(8, np.float32), np.zeros((4, 1), np.int64),
                np.zeros((4, 2, 4), np.float32), X[:8])
    beam_extend(X.reshape(4, 2, 8), X[:8], sel, np.empty((4, 2, 8), np.float32), np.empty((4, 2), np.float32))
    adc_rank_counts(np.zeros((2, 3), np.float32), np.zeros(3, np.float32), np.zeros(2, np.float32),
                    np.zeros((3, 1), np.uint64), np.zeros((2, 1), np.uint64), np.arange(3), np.arange(2),
                    np.zeros(2, np.float32), np.zeros(2, np.int64))
