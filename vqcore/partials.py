"""The report's metrics as partial results of row chunks that merge.

Every number of :func:`vqcore.report.evaluate` is a function of a few sums
and count tables over the rows, so it can be computed chunk by chunk (in this
process or on Dask workers) and the partial results merged in any grouping:

- reconstruction: per-dimension sums of squared errors, and per-dimension
  means and sums of squared deviations merged by Chan, Golub and LeVeque's
  pairwise update (for the total variance, without the cancellation of
  ``sum x^2 - n mean^2``);
- residual variance: sums of the stage errors;
- usage (dead codes, entropy, perplexity) and the shuffled MI baseline: code
  counts per position;
- mutual information: joint histograms of every pair of positions (dense, or
  sorted count tables when ``K_a K_b`` is large);
- collisions, prefix collisions and effective bits: counts of the code tuples
  packed into 64-bit words (exact: no hashing, no sketch), kept as sorted
  tables merged like a log-structured merge tree;
- recall@R: the exact nearest neighbour (float64) of each query, a running
  minimum; then, in a second pass over the codes, the rank of each query's
  neighbour among the reconstructions, as counts.

Integers merge exactly; float sums merge to rounding, and merging always goes
in row order, so the same chunks give the same numbers in any engine.
:func:`vqcore.report.evaluate` is this module over the chunks of one array.

References
----------
T. F. Chan, G. H. Golub and R. J. LeVeque, "Updating formulae and a pairwise
algorithm for computing sample variances", COMPSTAT 1982.
P. O'Neil, E. Cheng, D. Gawlick and E. O'Neil, "The log-structured
merge-tree (LSM-tree)", Acta Informatica 33(4), 1996.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import metrics
from ._distances import sq_norms
from ._parallel import parallel_map
from .exceptions import VQLensWarning

__all__ = ["KeyCounts", "Plan", "StatsPartial", "CodesPartial", "chunk_stats", "chunk_codes_pass",
           "merge_all", "finish_report", "exact_nearest", "DENSE_JOINT_CELLS", "MAX_GROUP_MEMBERS"]

#: A pair of positions gets a dense joint histogram up to this many cells (8 MiB of int64).
DENSE_JOINT_CELLS = 2**20
#: Member rows listed per collision group in the report (its size is always exact).
MAX_GROUP_MEMBERS = 1000
_BLOCK_BYTES = 32 * 2**20  # float64 work arrays of a chunk stay under this


# --------------------------------------------------------------------------
# exact count tables of packed keys


def _sorted_runs(words, counts=None):
    """Sort rows of uint64 words; return the distinct rows (sorted) and their counts."""
    if words.shape[0] == 0:
        return words, np.zeros(0, dtype=np.int64)
    if words.shape[1] == 1:
        order = np.argsort(words[:, 0], kind="stable")
    else:
        order = np.lexsort(words.T[::-1])
    w = words[order]
    new = np.empty(w.shape[0], dtype=bool)
    new[0] = True
    new[1:] = (w[1:] != w[:-1]).any(axis=1)
    starts = np.flatnonzero(new)
    if counts is None:
        c = np.diff(np.append(starts, w.shape[0])).astype(np.int64)
    else:
        c = np.add.reduceat(counts[order], starts).astype(np.int64)
    return w[starts], c


class KeyCounts:
    """Exact counts of keys made of W uint64 words, as sorted tables that merge.

    Tables are kept in a list whose sizes fall geometrically (a new table is
    merged into the previous one while that one is at most twice as large),
    so n rows cost O(n log n) work and memory for the distinct keys only.
    """

    def __init__(self, width):
        self.width = width
        self.tables = []  # [(keys (u, W) uint64 sorted, counts int64)]

    @classmethod
    def of(cls, words):
        kc = cls(words.shape[1])
        kc.tables.append(_sorted_runs(words))
        return kc

    def merge(self, other):
        for t in other.tables:
            self.tables.append(t)
            while len(self.tables) >= 2 and len(self.tables[-2][0]) <= 2 * len(self.tables[-1][0]):
                b, a = self.tables.pop(), self.tables.pop()
                self.tables.append(_merge_tables(a, b))
        return self

    def final(self):
        """(keys sorted, counts) over everything merged so far."""
        if not self.tables:
            return np.zeros((0, self.width), dtype=np.uint64), np.zeros(0, dtype=np.int64)
        while len(self.tables) > 1:  # the smallest last
            b, a = self.tables.pop(), self.tables.pop()
            self.tables.append(_merge_tables(a, b))
        return self.tables[0]


def _merge_tables(a, b):
    """Two tables of distinct sorted keys with their counts, merged into one.

    One-word keys (every code tuple of up to 64 bits) merge by binary search: the keys of
    ``b`` already in ``a`` add their counts, the others are inserted in place. This needs
    about a third of the memory of sorting the concatenation (no permutation and no gathered
    copies), which is what bounds a report's memory on tens of millions of rows.
    """
    if a[0].shape[1] != 1:
        return _sorted_runs(np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]))
    x, y = a[0][:, 0], b[0][:, 0]
    pos = np.searchsorted(x, y)
    found = pos < x.size
    found[found] = x[pos[found]] == y[found]
    counts = a[1].copy()
    counts[pos[found]] += b[1][found]  # keys are distinct within a table: no repeated index
    new = ~found
    del found
    keys = np.insert(x, pos[new], y[new])  # pos of a missing key is where it goes
    counts = np.insert(counts, pos[new], b[1][new])
    return keys[:, None], counts


# --------------------------------------------------------------------------
# what every chunk needs to know


@dataclass
class Plan:
    """Fixed settings shared by every chunk of one report (small, picklable).

    ``exclude``: sorted global rows left out of the base for recall (the query
    rows when queries are sampled from the data); ``truth``: given nearest
    neighbours (skips the exact search).
    """

    sizes: list
    queries: np.ndarray | None = None  # float64 (nq, d)
    exclude: np.ndarray | None = None
    find_truth: bool = False
    # filled in between the two passes
    truth: np.ndarray | None = None  # (nq,) int64
    truth_keys: np.ndarray | None = None  # (nq, W) uint64
    truth_dist: np.ndarray | None = None  # (nq,) float32, query to the truth's reconstruction
    group_keys: np.ndarray | None = None  # (g, W) uint64
    bits: list = field(default_factory=list)

    def __post_init__(self):
        self.bits = metrics.code_bits(self.sizes)


def _pack(codes, plan):
    return metrics.pack_rows(np.asarray(codes), plan.bits)[0]


def _kept_rows(offset, rows, exclude):
    """Local indices of the chunk's rows that are not excluded (None: all)."""
    if exclude is None or exclude.size == 0:
        return None
    a, b = np.searchsorted(exclude, [offset, offset + rows])
    if a == b:
        return None
    keep = np.ones(rows, dtype=bool)
    keep[exclude[a:b] - offset] = False
    return np.flatnonzero(keep)


# --------------------------------------------------------------------------
# pass 1: the data and its codes


@dataclass
class StatsPartial:
    """Sums and tables of pass 1 over rows ``offset .. offset + n - 1``."""

    offset: int
    n: int
    mean: np.ndarray
    m2: np.ndarray
    sq_err: np.ndarray
    stage: np.ndarray
    counts: list
    joints: dict
    tuples: KeyCounts
    nn_dist: np.ndarray | None = None
    nn_idx: np.ndarray | None = None
    encode_seconds: float = 0.0

    def merge(self, other):
        """Fold in the partial of the rows that come right after these."""
        if other.offset != self.offset + self.n:
            raise ValueError("partials merge in row order")
        na, nb = self.n, other.n
        n = na + nb
        delta = other.mean - self.mean
        self.mean = self.mean + delta * (nb / n)
        self.m2 = self.m2 + other.m2 + delta * delta * (na * nb / n)
        self.n = n
        self.sq_err = self.sq_err + other.sq_err
        self.stage = self.stage + other.stage
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        for key, t in other.joints.items():
            mine = self.joints[key]
            self.joints[key] = mine.merge(t) if isinstance(mine, KeyCounts) else mine + t
        self.tuples.merge(other.tuples)
        self.encode_seconds += other.encode_seconds
        if self.nn_dist is not None:
            later = other.nn_dist < self.nn_dist  # on a tie the earlier row stays
            self.nn_dist = np.where(later, other.nn_dist, self.nn_dist)
            self.nn_idx = np.where(later, other.nn_idx, self.nn_idx)
        return self


def chunk_stats(quantizer, X, codes, offset, plan):
    """Pass 1 over one chunk: X (rows, d) float32 and its codes (rows, M)."""
    rows, d = X.shape
    codes = np.asarray(codes)
    mean = X.mean(axis=0, dtype=np.float64)
    m2 = np.zeros(d)
    sq_err = np.zeros(d)
    step = max(1, _BLOCK_BYTES // (8 * d))
    for a in range(0, rows, step):
        x = X[a:a + step].astype(np.float64)
        diff = x - quantizer.decode(codes[a:a + step])  # decoded block by block: no (rows, d) copy at once
        sq_err += np.einsum("ij,ij->j", diff, diff)
        x -= mean
        m2 += np.einsum("ij,ij->j", x, x)
    stage = quantizer.stage_errors(X, codes) * rows
    sizes = plan.sizes
    cols = [np.ascontiguousarray(codes[:, m], dtype=np.int64) for m in range(codes.shape[1])]
    counts = [np.bincount(c, minlength=k).astype(np.int64) for c, k in zip(cols, sizes, strict=True)]
    joints = {}
    for a in range(len(cols)):
        for b in range(a + 1, len(cols)):
            key = cols[a] * sizes[b] + cols[b]
            cells = sizes[a] * sizes[b]
            if cells <= DENSE_JOINT_CELLS:
                joints[(a, b)] = np.bincount(key, minlength=cells).astype(np.int64)
            else:
                joints[(a, b)] = KeyCounts.of(key.astype(np.uint64)[:, None])
    part = StatsPartial(offset, rows, mean, m2, sq_err, stage, counts, joints, KeyCounts.of(_pack(codes, plan)))
    if plan.find_truth:
        part.nn_dist, part.nn_idx = _nearest(plan.queries, X, offset, _kept_rows(offset, rows, plan.exclude))
    return part


def _nearest(Q, X, offset, keep):
    """Exact nearest row of X (float64 distances) for each query; the first row on a tie.

    Each row block is searched in float32 first (sgemm, half the work of float64 and no float64
    copy of the block), keeping for each query only the rows whose float32 distance is within a
    proven bound of the block's best (:func:`_float32_slack`); those few candidates get their float64
    distance, ``||q||^2 - 2 q.x + ||x||^2``, and the nearest (the first on a tie) is the block's
    answer. A query whose candidates are too many (data far from the origin, where the bound is
    wide) gets its float64 distances to the whole block instead. The row blocks are measured in
    parallel threads (BLAS on one thread in each, :mod:`vqcore._parallel`) and merged in row
    order, so the result is the serial one.

    References
    ----------
    N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002, sec. 3.1
    (the error bound of a floating-point inner product, ``gamma_d = d u / (1 - d u)``).
    """
    nq = Q.shape[0]
    best = np.full(nq, np.inf)
    idx = np.full(nq, -1, dtype=np.int64)
    local = np.arange(X.shape[0]) if keep is None else keep
    qn = sq_norms(Q)
    Q32 = Q.astype(np.float32)
    q_len = np.sqrt(qn)
    step = max(1, _BLOCK_BYTES // (8 * max(nq, X.shape[1])))

    def block(a):
        li = local[a:a + step]
        B = X[li] if keep is not None else X[a:a + step]
        B32 = B if B.dtype == np.float32 else B.astype(np.float32)
        xn32 = sq_norms(B32)
        D = Q32 @ B32.T  # float32: -2 q.x + ||x||^2 ranks the rows as the distance does
        D *= -2.0
        D += xn32
        max_sq = float(xn32.max())
        slack = _float32_slack(X.shape[1], max_sq, q_len * math.sqrt(max_sq))  # (nq,)
        cut = D.min(axis=1) + 2.0 * slack
        qi, cj = np.divmod(np.flatnonzero(D <= cut[:, None]), D.shape[1])  # in (query, row) order
        many = (np.bincount(qi, minlength=nq) > _MAX_CANDIDATES) | ~np.isfinite(cut)
        if many.any():  # too wide a bound: these queries in float64 over the whole block
            keep_pair = ~many[qi]
            qi, cj = qi[keep_pair], cj[keep_pair]
        d64 = np.empty(qi.size)
        for p in range(0, qi.size, 4096):  # the pairs a few thousand at a time: bounded memory
            Bc = B[cj[p:p + 4096]].astype(np.float64)
            dp = np.einsum("ij,ij->i", Q[qi[p:p + 4096]], Bc)
            dp *= -2.0
            dp += sq_norms(Bc)
            dp += qn[qi[p:p + 4096]]
            d64[p:p + 4096] = dp
        # the nearest candidate of each query, the first row on a tie: sort by (query, distance, row)
        order = np.lexsort((cj, d64, qi))
        first = order[np.r_[True, qi[order][1:] != qi[order][:-1]]] if order.size else order
        dist = np.full(nq, np.inf)
        rows = np.full(nq, -1, dtype=np.int64)
        dist[qi[first]] = d64[first]
        rows[qi[first]] = offset + li[cj[first]]
        B64 = B.astype(np.float64) if many.any() else None
        xn = sq_norms(B64) if many.any() else None
        for i in np.flatnonzero(many):
            full = B64 @ Q[i]
            full *= -2.0
            full += xn
            full += qn[i]
            j = int(np.argmin(full))
            dist[i], rows[i] = full[j], offset + li[j]
        return dist, rows

    for dist, rows in parallel_map(block, range(0, local.size, step)):
        better = dist < best  # on a tie the earlier block's row stays
        best = np.where(better, dist, best)
        idx = np.where(better, rows, idx)
    return best, idx


#: Above this many float32 candidates in a row block a query is searched in float64 over the block.
_MAX_CANDIDATES = 64


def _float32_slack(d, max_sq_norm, q_times_x):
    """A bound on ``|D32 - D|`` for every row of a block, where D32 is ``-2 q.x + ||x||^2`` computed
    in float32 (queries rounded to float32) and D its exact value: an inner product of length ``d``
    is within ``gamma_d |q| |x|`` of the exact one (Higham, sec. 3.1; so is ``||x||^2`` within
    ``gamma_d ||x||^2``), rounding q adds ``u |q| |x|`` and the last sum ``u`` of its magnitude.
    ``max_sq_norm`` is the block's largest ``||x||^2`` and ``q_times_x`` is ``|q| max |x|`` per
    query; 1.25 covers the second-order terms."""
    u = 2.0 ** -24
    gamma = d * u / (1.0 - d * u)
    return 1.25 * (gamma + 3.0 * u) * (max_sq_norm + 2.0 * q_times_x)


def exact_nearest(queries, dataset, exclude=None):
    """Each query's exact nearest row of ``dataset`` (a :class:`vqcore.catalog.LazyDataset`) outside
    ``exclude`` (sorted unique row numbers): the search pass 1 makes for recall's ground truth, chunk
    by chunk in row order (float64 distances, the lowest row on a tie). Returns (squared distances,
    row numbers), one per query."""
    Q = np.asarray(queries, dtype=np.float64)
    best = idx = None
    for c in dataset.chunk_list():
        dist, rows = _nearest(Q, dataset.read(c), c.offset, _kept_rows(c.offset, c.rows, exclude))
        if best is None:
            best, idx = dist, rows
        else:
            later = dist < best  # on a tie the earlier row stays
            best, idx = np.where(later, dist, best), np.where(later, rows, idx)
    return best, idx


# --------------------------------------------------------------------------
# pass 2: codes only (collision group members, recall ranks)


@dataclass
class CodesPartial:
    offset: int
    n: int
    members: list  # per group: int64 array of global rows (at most MAX_GROUP_MEMBERS)
    rank: np.ndarray | None  # (nq,) int64: reconstructions ranked before each query's neighbour

    def merge(self, other):
        if other.offset != self.offset + self.n:
            raise ValueError("partials merge in row order")
        self.n += other.n
        self.members = [np.concatenate([a, b])[:MAX_GROUP_MEMBERS]
                        for a, b in zip(self.members, other.members, strict=True)]
        if self.rank is not None:
            self.rank = self.rank + other.rank
        return self


def chunk_codes_pass(quantizer, codes, offset, plan):
    """Pass 2 over the codes of one chunk: members of the largest groups, and recall ranks.

    The rank of a query's true neighbour t counts the reconstructions nearer to
    the query than t's, with ties broken by row number; reconstructions of the
    same code tuple as t's are tied by definition and counted by row number
    alone, so the count never depends on floating-point ties between copies.
    """
    codes = np.asarray(codes)
    rows = codes.shape[0]
    words = _pack(codes, plan)
    members = []
    for key in ([] if plan.group_keys is None else plan.group_keys):
        hit = np.flatnonzero((words == key).all(axis=1))
        members.append((offset + hit[:MAX_GROUP_MEMBERS]).astype(np.int64))
    rank = None
    if plan.truth is not None:
        nq = plan.queries.shape[0]
        keep = _kept_rows(offset, rows, plan.exclude)
        local = np.arange(rows) if keep is None else keep
        step = max(1, _BLOCK_BYTES // (4 * max(nq, codes.shape[1])))

        def block(a):  # the counts of one row block (in parallel threads; counts add in any order)
            li = local[a:a + step]
            Q, Xh, xn = _adc_terms(quantizer, plan.queries, codes[li])
            D = Q @ Xh.T
            qn = sq_norms(Q)
            if all(v.dtype == np.float32 for v in (D, xn, qn, plan.truth_dist)):
                from . import _kernels  # numba: imported when first needed

                counts = np.zeros(nq, dtype=np.int64)
                _kernels.adc_rank_counts(D, xn, qn, words[li], plan.truth_keys, offset + li, plan.truth,
                                         plan.truth_dist, counts)
                return counts
            D *= -2.0
            D += xn
            D += qn[:, None]
            w = words[li]
            same = (w[None, :, :] == plan.truth_keys[:, None, :]).all(axis=2)
            before = (offset + li)[None, :] < plan.truth[:, None]
            dt = plan.truth_dist[:, None]
            counted = np.where(same, before, (D < dt) | ((D == dt) & before))
            return counted.sum(axis=1)

        rank = np.zeros(nq, dtype=np.int64)
        for counts in parallel_map(block, range(0, local.size, step)):
            rank += counts
    return CodesPartial(offset, rows, members, rank)


def merge_all(parts):
    """Merge partials given in row order (``None`` for no parts)."""
    out = None
    for p in parts:
        out = p if out is None else out.merge(p)
    return out


# --------------------------------------------------------------------------
# between the passes, and the report


def prepare_codes_pass(quantizer, stats, plan, *, top=20):
    """Fill in ``plan`` for pass 2 from pass 1: the keys of the ``top`` largest collision
    groups (largest first, equal sizes in tuple order) and each query's neighbour."""
    keys, counts = stats.tuples.final()
    shared = np.flatnonzero(counts >= 2)
    shared = shared[np.argsort(-counts[shared], kind="stable")][:top]
    plan.group_keys = keys[shared]
    if plan.queries is not None and plan.truth is None:
        plan.truth = stats.nn_idx
    return plan


def _adc_terms(quantizer, queries, codes):
    """Queries, reconstructions and their squared norms for the asymmetric distance
    ``||q||^2 - 2 <q, x_hat> + ||x_hat||^2``; with the norm a quantizer stores for search
    (GRVQ's ``norm``), that norm, on centred queries and reconstructions (as ``recall_at``
    with ``base_sqnorms``)."""
    Q = np.asarray(queries, dtype=np.float32)
    Xh = quantizer.decode(codes)
    if getattr(quantizer, "norm", "none") != "none" and hasattr(quantizer, "adc_norms"):
        return (np.asarray(quantizer.centred(Q), dtype=np.float32), np.asarray(quantizer.centred(Xh), np.float32),
                np.asarray(quantizer.adc_norms(codes), dtype=np.float32))
    return Q, Xh, sq_norms(Xh)


def truth_codes(quantizer, plan, truth_codes):
    """Set the packed codes of each query's neighbour and the distance to its reconstruction."""
    plan.truth_keys = _pack(truth_codes, plan)
    Q, Xh, xn = _adc_terms(quantizer, plan.queries, truth_codes)
    plan.truth_dist = sq_norms(Q) - 2.0 * np.einsum("ij,ij->i", Q, Xh) + xn
    return plan


def finish_report(quantizer, stats, codes_part, plan, *, R=(1, 10, 100), query_set="", fit_seconds=None,
                  random_state=0, encode_seconds=None):
    """The report dict of :func:`vqcore.report.evaluate` from the merged partials."""
    from .report import complexity, to_plain  # one definition of each

    n, d = stats.n, stats.mean.size
    M, K = quantizer.n_codebooks, quantizer.codebook_size
    sizes = plan.sizes
    per_dim = stats.sq_err / n
    mse = float(per_dim.sum())
    total = float(stats.m2.sum() / n)
    if total == 0.0:
        warnings.warn("X has zero variance (all rows equal), so the relative error and the SNR are "
                      "undefined; they are returned as NaN.", VQLensWarning, stacklevel=3)
        relative = snr = float("nan")
    else:
        relative = mse / total
        snr = float("inf") if relative == 0.0 else float(-10.0 * math.log10(relative))
    counts = stats.counts
    size = np.asarray(sizes, dtype=np.float64)
    entropy = np.array([metrics.entropy_of_counts(c) for c in counts])
    dead = np.array([int(np.count_nonzero(c == 0)) for c in counts], dtype=np.int64)
    perplexity = np.exp2(entropy)
    usage = {"dead": dead, "dead_fraction": dead / size, "entropy_bits": entropy,
             "max_entropy_bits": np.log2(size), "perplexity": perplexity, "utilisation": perplexity / size}
    joint_h = {}
    for key, t in stats.joints.items():
        joint_h[key] = metrics.entropy_of_counts(t.final()[1] if isinstance(t, KeyCounts) else t)
    mi = metrics.mi_from_entropies(list(entropy), joint_h)
    baseline = metrics.mi_baseline_from_counts(counts, random_state)
    keys, tuple_counts = stats.tuples.final()
    layout = metrics.pack_rows(np.zeros((1, M), dtype=np.int64), plan.bits)[1]
    distinct = metrics.distinct_prefixes(keys, layout) if keys.shape[0] else np.zeros(M, dtype=np.int64)
    scale = 1.0 / total if total > 0 else float("nan")
    errs = stats.stage / n
    if quantizer.additive:
        rv = {"kind": "cumulative", "values": [1.0] + [float(e * scale) for e in errs]}
    else:
        rv = {"kind": "per_subspace", "values": [float(e * scale) for e in errs]}
    bits = float(quantizer.bits_per_vector)
    groups = []
    if codes_part is not None:
        shared = np.flatnonzero(tuple_counts >= 2)
        shared = shared[np.argsort(-tuple_counts[shared], kind="stable")]
        for g, items in zip(shared, codes_part.members):
            tup = [int(c) for c in metrics.unpack_key(keys[g], layout)]
            groups.append({"codes": tup, "size": int(tuple_counts[g]), "items": items.tolist()})
    report = {
        "spec": quantizer.spec(),
        "faiss": quantizer.faiss_string(),
        "method": quantizer.method,
        "params": {k: to_plain(v) for k, v in quantizer.get_params().items()},
        "n_codebooks": int(M),
        "codebook_size": int(K),
        "n": int(n),
        "d": int(d),
        "bits_per_vector": bits,
        "compression_ratio": float(32.0 * d / bits),
        "fit_seconds": None if fit_seconds is None else float(fit_seconds),
        "reconstruction": to_plain({"mse": mse, "relative": relative, "snr_db": snr, "per_dim": per_dim}),
        "usage": {**{k: to_plain(v) for k, v in usage.items()}, "counts": [c.tolist() for c in counts]},
        "mutual_information": to_plain(mi),
        "mutual_information_baseline": to_plain(baseline),
        "effective_bits": float(metrics.entropy_of_counts(tuple_counts)),
        "allocated_bits": float(metrics.allocated_bits(K, M)),
        "residual_variance": rv,
        "collisions": {
            "rate": float(1.0 - distinct[-1] / n),
            "prefix_rates": to_plain(1.0 - distinct / n),
            "uniform_prefix_rates": [
                float(metrics.birthday_collision_rate(n, [K] * (m + 1))) for m in range(M)
            ],
            "groups": groups,
        },
        "recall": None,
        "complexity": complexity(quantizer, n, encode_seconds),
    }
    if codes_part is not None and codes_part.rank is not None:
        nq = codes_part.rank.size
        cut = metrics.check_cutoffs(R)
        report["recall"] = {
            "query_set": query_set,
            "n_queries": int(nq),
            "n_searched": int(n - (0 if plan.exclude is None else plan.exclude.size)),
            "at": {str(r): float(np.mean(codes_part.rank < r)) for r in cut},
        }
    return report
