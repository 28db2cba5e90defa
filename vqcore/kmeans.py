"""k-means (Lloyd) with k-means++ seeding, and the single-codebook quantizer.

References
----------
S. Lloyd, "Least squares quantization in PCM", IEEE Trans. Inf. Theory 28(2), 1982.
D. Arthur and S. Vassilvitskii, "k-means++: the advantages of careful seeding",
SODA 2007 (the greedy variant with several local trials, as in scikit-learn).
Empty clusters are repaired as faiss does (Johnson, Douze & Jegou, "Billion-scale
similarity search with GPUs", 2017): a busy centroid is split in two by a small
symmetric perturbation, and the repairs are counted.
"""

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from ._distances import NearestAssigner, cluster_sums, nearest, sq_norms
from ._parallel import single_blas_thread
from ._validation import (
    check_choice,
    check_data,
    check_int,
    check_random_state,
    check_tol,
)
from .base import BaseQuantizer
from .exceptions import VQLensError, VQLensWarning

_SPLIT_EPS = 1.0 / 1024.0
N_LOCAL_TRIALS = 3
DEFAULT_TOL = 1e-4


@dataclass
class KMeansResult:
    """What one k-means run produced and did.

    Attributes
    ----------
    centroids : ndarray of shape (K, d), float32
    inertia : list of float
        Mean squared distance of the training points to their centroid, per
        Lloyd iteration (the assignment step of that iteration).
    n_train : int
        Points the centroids were trained on (after subsampling).
    n_repairs : int
        Empty clusters repaired by splitting a busy centroid.
    subsampled_from : int or None
        Size of the data before subsampling, when it was subsampled.
    labels : ndarray of shape (n_train,) or None
        Nearest centroid of each training point, when the run ended on an
        assignment that changed nothing (so they are the labels of
        ``centroids``); None when the centroids moved after the last one.
    """

    centroids: np.ndarray
    inertia: list = field(default_factory=list)
    n_train: int = 0
    n_repairs: int = 0
    subsampled_from: int = None
    labels: np.ndarray = None


def kmeans_plusplus(X, n_clusters, *, random_state=None, n_local_trials=N_LOCAL_TRIALS):
    """Pick initial centroids by greedy k-means++ (Arthur & Vassilvitskii 2007).

    Each new centre is the best of ``n_local_trials`` candidates drawn with
    probability proportional to the squared distance to the nearest centre
    chosen so far ("greedy" k-means++).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_clusters : int
    random_state : int, Generator or None
    n_local_trials : int or None, default=3
        Candidates per centre; None means scikit-learn's ``2 + log(K)``.
        After Lloyd's iterations 3 trials end within 0.1% of ``2 + log(K)``
        in mse on SIFT and MiniLM, at half the seeding time.

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features), float32
    """
    X = check_data(X)
    n_clusters = check_int("n_clusters", n_clusters, low=1, high=X.shape[0])
    rng = check_random_state(random_state)
    if n_local_trials is not None:
        n_local_trials = check_int("n_local_trials", n_local_trials, low=1)
    return kmeans_plusplus_rng(X, n_clusters, rng, n_local_trials)


def warm_up():
    """Load vqcore's compiled loops now rather than in the first fit that needs them.

    They are numba functions cached on disk: loading them takes about 0.4 s in
    a fresh process, and the first run after install compiles them (a few
    seconds). A server can call this in a background thread when it starts.
    """
    from . import _kernels

    _kernels.warm_up()


_POOL_BYTES = 8 * 2**20  # distance rows of the candidate pool
# greedy k-means++ by the compiled loop up to this dimension: one thread, K=256, CPU s, compiled
# / pooled: d=32 0.013/0.028 (5k rows), 0.056/0.095 (20k); d=48 0.015/0.027, 0.067/0.089;
# d=64 0.021/0.028, 0.100/0.086; d=128 0.042/0.054, 0.265/0.145
_KERNEL_MAX_DIM = 48
# PQ's k-means++ seeds each subspace on at most this many training rows per centroid (kmeans_rng)
SEED_POINTS_PER_CENTROID = 32


def kmeans_plusplus_rng(X, K, rng, n_local_trials=N_LOCAL_TRIALS, pool_bytes=_POOL_BYTES):
    """Greedy k-means++: a compiled loop in low dimension, BLAS pools above."""
    if n_local_trials is None:
        n_local_trials = 2 + int(math.log(K))
    if X.shape[1] <= _KERNEL_MAX_DIM and X.dtype == np.float32:
        return _kmeans_plusplus_compiled(X, K, rng, n_local_trials)
    return _kmeans_plusplus_pooled(X, K, rng, n_local_trials, pool_bytes)


def _kmeans_plusplus_compiled(X, K, rng, n_local_trials):
    """Greedy k-means++ by :func:`vqcore._kernels.greedy_kmeans_pp`.

    Below about 32 dimensions a candidate's distances to all points cost
    less than numpy's per-call overhead around them, and the pooled version
    below holds the GIL for most of its time; the compiled loop is 2x faster
    on one thread at 16 dimensions and runs in parallel across PQ subspaces.
    """
    from . import _kernels

    n = X.shape[0]
    first = int(rng.integers(n))
    uniforms = rng.random((K - 1, n_local_trials))
    centers = np.empty((K, X.shape[1]), dtype=X.dtype)
    placed = _kernels.greedy_kmeans_pp(X, np.ascontiguousarray(X.T), first, uniforms, centers)
    if placed < K:  # every point sits on a centre: the rest are duplicates
        centers[placed:] = X[rng.integers(n, size=K - placed)]
    return centers


def _kmeans_plusplus_pooled(X, K, rng, n_local_trials, pool_bytes=_POOL_BYTES):
    """Greedy k-means++ with candidates drawn in pools and thinned by rejection.

    Drawing each step's candidates from the current D^2 distribution and
    measuring them against all n points reads the whole of X once per centre:
    a skinny matrix product, bound by memory bandwidth. Instead candidates are
    drawn ahead, a pool at a time, from the D^2 distribution of the moment the
    pool is drawn, and their distance rows are computed in one tall product.
    A pooled candidate x is then accepted at a later step with probability
    ``D_now(x)^2 / D_pool(x)^2`` (D only decreases), so accepted candidates
    are exact draws from the current D^2 distribution (rejection sampling);
    the algorithm is greedy k-means++ itself, only its random stream differs.
    The acceptance rate is the ratio of the potentials, close to 1 after the
    first few centres.
    """
    n, d = X.shape
    xn = sq_norms(X)
    centers = np.empty((K, d), dtype=X.dtype)
    first = rng.integers(n)
    centers[0] = X[first]
    # one product gives ||x||^2 - 2 x.c + ||c||^2: rows [x, ||x||^2, 1] against
    # candidate columns [-2c, 1, ||c||^2]
    XaT = np.empty((d + 2, n), dtype=X.dtype)
    XaT[:d] = X.T
    XaT[d] = xn
    XaT[d + 1] = 1.0

    def distance_rows(idx):
        rows = np.empty((len(idx), d + 2), dtype=X.dtype)
        rows[:, :d] = -2.0 * X[idx]
        rows[:, d] = 1.0
        rows[:, d + 1] = xn[idx]
        out = rows @ XaT
        np.maximum(out, 0.0, out=out)
        return out

    block = 128
    n_pad = -(-n // block) * block
    closest = np.zeros(n_pad, dtype=X.dtype)  # padded so that it reshapes to blocks
    closest[:n] = distance_rows([first])[0]
    # low d: the product is cheap per row and the pool's rows are what costs (memory),
    # so a smaller pool that stays in cache; high d: tall products run at BLAS speed
    pool_bytes = max(pool_bytes // 8, int(pool_bytes * min(1.0, d / 128)))
    pool_size = int(min(K * n_local_trials,
                        max(2 * n_local_trials, pool_bytes // (n * X.dtype.itemsize))))
    pool_idx = np.empty(0, dtype=np.int64)
    pool_w = pool_rows = None
    for c in range(1, K):
        taken = []  # distance rows of this step's accepted candidates
        chosen = []
        while len(chosen) < n_local_trials:
            if len(pool_idx) == 0:
                cand = _sample_proportional(closest.reshape(-1, block), rng, pool_size)
                if cand is None:  # every point sits on a centre: the rest are duplicates
                    break
                pool_idx = np.minimum(cand, n - 1)
                pool_w = closest[pool_idx]
                pool_rows = distance_rows(pool_idx)
                pool_pos = np.arange(len(pool_idx))
            need = n_local_trials - len(chosen)
            accept = rng.random(len(pool_idx)) * pool_w < closest[pool_idx]
            hit = np.flatnonzero(accept)[:need]
            chosen.extend(pool_idx[hit])
            taken.append(pool_rows[pool_pos[hit]])
            # the candidates looked at are spent, accepted or not
            used = hit[-1] + 1 if len(hit) == need else len(pool_idx)
            pool_idx, pool_w, pool_pos = pool_idx[used:], pool_w[used:], pool_pos[used:]
        if not chosen:
            centers[c:] = X[rng.integers(n, size=K - c)]
            break
        # squared distance of every point to its nearest centre if each
        # candidate were added, (trials, n)
        dc = np.concatenate(taken) if len(taken) > 1 else taken[0].copy()
        np.minimum(dc, closest[:n], out=dc)
        best = int(np.argmin(dc.sum(axis=1)))
        centers[c] = X[chosen[best]]
        closest[:n] = dc[best]
    return centers


def _sample_proportional(w_blocks, rng, size):
    """Indices drawn with probability proportional to the weights, or None if all are 0.

    Two-level inverse-CDF sampling: a cumulative sum over the block totals,
    then over the few chosen blocks only (cheaper than a cumsum of all n).
    """
    totals = w_blocks.sum(axis=1, dtype=np.float64)
    cum = np.cumsum(totals)
    pot = cum[-1]
    if not pot > 0:
        return None
    r = rng.random(size) * pot
    b = np.minimum(np.searchsorted(cum, r, side="right"), len(cum) - 1)
    within = r - (cum[b] - totals[b])
    local = np.cumsum(w_blocks[b], axis=1, dtype=np.float64)
    j = np.minimum((local <= within[:, None]).sum(axis=1), w_blocks.shape[1] - 1)
    return b * w_blocks.shape[1] + j


def _cluster_stats(X, labels, K):
    """Size (K,) and sum of the rows (K, d) of each cluster.

    float32 rows go through the compiled loop (:func:`vqcore._kernels.cluster_stats`,
    the same sums as :func:`vqcore._distances.cluster_sums` at a quarter of its time
    in a Lloyd iteration); other dtypes through the sparse product.
    """
    labels = np.asarray(labels)
    if X.dtype == np.float32 and X.flags.c_contiguous and labels.dtype == np.int64:
        from . import _kernels

        counts = np.empty(K, dtype=np.int64)
        sums = np.empty((K, X.shape[1]), dtype=X.dtype)
        _kernels.cluster_stats(X, labels, counts, sums)
        return counts, sums
    return np.bincount(labels, minlength=K), cluster_sums(labels, X, K)


def _inertia_from_stats(sq_total, mean, centroids, counts, sums):
    """Mean of ``||x - c_label||^2`` from the cluster statistics, without a pass over X.

    ``(sum ||x - m||^2 - 2 sum_k (c_k - m).(S_k - n_k m) + sum_k n_k ||c_k - m||^2) / n``
    in float64, with m the data mean and ``sq_total = sum ||x - m||^2``: taken about the
    mean, the terms do not cancel digits away when the data sit far from the origin.
    """
    C = centroids.astype(np.float64) - mean
    S = sums.astype(np.float64) - counts[:, None] * mean
    total = sq_total - 2.0 * np.einsum("kd,kd->", C, S) + float(counts @ np.einsum("kd,kd->k", C, C))
    return max(total, 0.0) / counts.sum()


def update_centroids(X, labels, K, centroids, rng, stats=None):
    """Mean of each cluster; empty clusters get half of a split busy centroid.

    ``stats`` are the labels' :func:`_cluster_stats`, when already computed.
    """
    counts, sums = _cluster_stats(X, labels, K) if stats is None else stats
    new = centroids.copy()
    nz = counts > 0
    new[nz] = sums[nz] / counts[nz, None]
    empty = np.flatnonzero(~nz)
    if empty.size:
        counts = counts.copy()  # the repairs below move counts between clusters
    repairs = 0
    for ci in empty:
        # faiss's rule: pick a cluster with probability ~ (size - 1), split it.
        w = np.maximum(counts - 1, 0).astype(np.float64)
        if w.sum() == 0:
            break
        cj = rng.choice(K, p=w / w.sum())
        sign = np.where(np.arange(X.shape[1]) % 2 == 0, 1.0, -1.0).astype(X.dtype)
        base = new[cj].copy()
        new[ci] = base * (1 + sign * _SPLIT_EPS)
        new[cj] = base * (1 - sign * _SPLIT_EPS)
        counts[ci] = counts[cj] // 2
        counts[cj] -= counts[ci]
        repairs += 1
    return new, repairs


def kmeans(
    X,
    n_clusters,
    *,
    n_iter=25,
    tol=DEFAULT_TOL,
    init="k-means++",
    max_points_per_centroid=256,
    init_centroids=None,
    random_state=None,
):
    """Cluster X with Lloyd's algorithm and return a :class:`KMeansResult`.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_clusters : int
        K, from 1 to n_samples.
    n_iter : int, default=25
        Maximum Lloyd iterations.
    tol : float, default=1e-4
        Stop once an iteration lowers the training mse by less than this
        fraction of it (or no assignment changes); 0 runs all ``n_iter``.
    init : {"k-means++", "random"}, default="k-means++"
        Seeding; "random" picks K distinct training points, as faiss does.
    max_points_per_centroid : int or None, default=256
        Train on a random subsample of at most ``K * max_points_per_centroid``
        points (faiss's default rule); None trains on everything.
    init_centroids : ndarray of shape (K, n_features), optional
        Warm start; overrides ``init``.
    random_state : int, Generator or None
    """
    X = check_data(X)
    K = check_int("n_clusters", n_clusters, low=1)
    if K > X.shape[0]:
        raise VQLensError(f"n_samples={X.shape[0]} should be >= n_clusters={K}.")
    n_iter = check_int("n_iter", n_iter, low=0)
    tol = check_tol(tol)
    check_choice("init", init, {"k-means++", "random"})
    rng = check_random_state(random_state)
    return kmeans_rng(X, K, n_iter, init, max_points_per_centroid, init_centroids, rng, tol=tol)


def _training_rows(X, K, max_points_per_centroid, rng):
    """X, or a random subsample of K * max_points_per_centroid rows (faiss's rule);
    and the size it was subsampled from (None when it was not)."""
    n = X.shape[0]
    if max_points_per_centroid is None or n <= K * max_points_per_centroid:
        return X, None
    return X[np.sort(rng.choice(n, size=K * max_points_per_centroid, replace=False))], n


def gain_below(errors, tol):
    """Whether the last step lowered the error by at most ``tol`` of it (never for tol=0)."""
    return tol > 0 and len(errors) > 1 and errors[-2] - errors[-1] <= tol * errors[-1]


def kmeans_rng(X, K, n_iter, init, max_points_per_centroid, init_centroids, rng, warn=True, tol=0.0,
               seed_points_per_centroid=None, *, assigner=None, moments=None):
    """:func:`kmeans` on validated arguments and a Generator.

    ``seed_points_per_centroid``: k-means++ picks the initial centroids among at most
    ``K * seed_points_per_centroid`` random training rows (None: all of them); Lloyd's
    iterations then run on all the training rows. Seeding reads its rows once per centre
    and local trial (3 K passes), so at 20,000 rows it cost more than a quarter of a PQ
    subspace's k-means; Lloyd moves the centroids far from their seeds anyway.

    ``assigner`` (a :class:`NearestAssigner` of X) and ``moments`` (X's mean in float64 and
    ``sum ||x - mean||^2``) may be given by a caller that has them already (progressive
    k-means); both only with ``max_points_per_centroid=None``.
    """
    X, subsampled_from = _training_rows(X, K, max_points_per_centroid, rng)
    if init_centroids is not None:
        C = np.array(init_centroids, dtype=X.dtype, copy=True)
    elif init == "random":
        C = X[rng.choice(X.shape[0], size=K, replace=False)].copy()
    else:
        C = kmeans_plusplus_rng(_training_rows(X, K, seed_points_per_centroid, rng)[0], K, rng)
    result = KMeansResult(C, n_train=X.shape[0], subsampled_from=subsampled_from)
    labels = None
    if n_iter:
        if assigner is None:
            assigner = NearestAssigner(X)
        if moments is None:
            mean = X.mean(axis=0, dtype=np.float64)
            Xc = X - mean.astype(X.dtype)
            sq_total = float(np.einsum("ij,ij->", Xc, Xc, dtype=np.float64))
            del Xc
        else:
            mean, sq_total = moments
    for _ in range(n_iter):
        new_labels = assigner.labels(C)
        stats = _cluster_stats(X, new_labels, K)
        result.inertia.append(_inertia_from_stats(sq_total, mean, C, *stats))
        if labels is not None and np.array_equal(new_labels, labels):
            result.labels = labels  # converged: C did not move since these were computed
            break
        labels = new_labels
        C, repairs = update_centroids(X, labels, K, C, rng, stats)
        result.n_repairs += repairs
        if not repairs and gain_below(result.inertia, tol):
            break
    result.centroids = C
    if result.n_repairs and warn:
        warnings.warn(
            f"k-means repaired {result.n_repairs} empty cluster(s) by splitting busy "
            f"centroids (K={K}, n_train={result.n_train}).",
            VQLensWarning,
            stacklevel=3,
        )
    return result


def progressive_dims(d, steps=10):
    """The increasing dimensions ``round(d ** ((i + 1) / steps))``, deduplicated, ending at d."""
    dims = sorted({max(1, int(round(d ** ((i + 1) / steps)))) for i in range(steps)} | {d})
    return [x for x in dims if x <= d]


def progressive_kmeans(
    X, n_clusters, *, dims=None, n_iter=10, max_points_per_centroid=256, random_state=None
):
    """k-means in PCA space on a growing number of leading dimensions.

    The data are rotated to their principal axes; k-means runs on the first
    ``dims[0]`` coordinates (seeded by k-means++), then each later run on more
    coordinates starts from the cluster means of the previous labels, up to
    all d; the centroids are rotated back. This is the transition clustering
    of GRVQ (Liu, Shao & Lu, ICME 2015) and faiss's ProgressiveDimClustering:
    in high dimension with nearly isotropic data (the residuals of later RQ
    stages), plain k-means falls into a hub where one centroid near the mean
    takes most points; starting in the few directions that carry the most
    variance avoids it.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_clusters : int
    dims : list of int, optional
        Increasing dimensions ending at n_features; default
        :func:`progressive_dims` with 10 steps.
    n_iter : int, default=10
        Lloyd iterations per step.
    """
    X = check_data(X)
    K = check_int("n_clusters", n_clusters, low=1, high=X.shape[0])
    rng = check_random_state(random_state)
    return progressive_kmeans_rng(X, K, dims, check_int("n_iter", n_iter, low=1), max_points_per_centroid, rng)


def progressive_kmeans_rng(X, K, dims, n_iter, max_points_per_centroid, rng, init_centroids=None):
    """:func:`progressive_kmeans`; with ``init_centroids`` (K, d) the first step starts from
    their projection on the first ``dims[0]`` principal axes of X instead of k-means++
    (GRVQ's transition clustering of a trained codebook)."""
    X, subsampled_from = _training_rows(X, K, max_points_per_centroid, rng)
    n, d = X.shape
    if dims is None:
        dims = progressive_dims(d)
    mu = X.mean(axis=0, dtype=np.float64)
    Xc = X - mu.astype(X.dtype)
    with single_blas_thread():
        evals, evecs = np.linalg.eigh((Xc.T @ Xc).astype(np.float64))
    P = np.ascontiguousarray(evecs[:, ::-1]).astype(X.dtype)
    Y = Xc @ P
    del Xc
    # Lloyd's bookkeeping for every step from one pass over Y: the mean and the sum of squares
    # of each principal coordinate (Y is centred, so sum ||y - mean||^2 loses no digits)
    y_mean = Y.mean(axis=0, dtype=np.float64)
    y_sq = np.einsum("ij,ij->j", Y, Y, dtype=np.float64)
    C = labels = None
    if init_centroids is not None:
        C = ((np.asarray(init_centroids, dtype=np.float64) - mu) @ P.astype(np.float64))[:, : dims[0]]
        C = C.astype(X.dtype)
    total = KMeansResult(None, n_train=n, subsampled_from=subsampled_from)
    for step, di in enumerate(dims):
        Yi = np.ascontiguousarray(Y[:, :di])
        assigner = NearestAssigner(Yi)
        if labels is not None:
            padded = np.zeros((K, di), dtype=X.dtype)
            padded[:, : C.shape[1]] = C
            C, _ = update_centroids(Yi, labels, K, padded, rng)
        m = y_mean[:di]
        moments = (m, max(float(y_sq[:di].sum() - n * (m @ m)), 0.0))
        res = kmeans_rng(Yi, K, n_iter, "k-means++", None, C, rng, warn=False,
                         assigner=assigner, moments=moments)
        C = res.centroids
        if step + 1 < len(dims):  # the labels the next step starts from (known when Lloyd converged)
            labels = res.labels if res.labels is not None else assigner.labels(C)
        total.inertia.extend(res.inertia)
        total.n_repairs += res.n_repairs
    if C.shape[1] < d:
        padded = np.zeros((K, d), dtype=X.dtype)
        padded[:, : C.shape[1]] = C
        C = padded
    total.centroids = (C @ P.T + mu).astype(np.float32)
    return total


class KMeansVQ(BaseQuantizer):
    """Plain vector quantization: one codebook of K centroids learned by k-means.

    Each vector is replaced by its nearest centroid. The codebook is trained by
    Lloyd's algorithm (Lloyd 1982) seeded by greedy k-means++ (Arthur &
    Vassilvitskii 2007), on a subsample of at most
    ``codebook_size * max_points_per_centroid`` points; empty clusters are
    repaired by splitting a busy centroid and counted in ``n_repairs_``.

    Parameters
    ----------
    codebook_size : int, default=256
        K, any integer from 2 to 65536.
    n_iter : int, default=25
        Maximum Lloyd iterations.
    tol : float, default=1e-4
        Stop once an iteration lowers the training mse by less than this
        fraction of it; 0 runs all ``n_iter``.
    init : {"k-means++", "random"}, default="k-means++"
    max_points_per_centroid : int or None, default=256
    random_state : int, Generator or None

    Attributes
    ----------
    codebooks_ : ndarray of shape (1, K, d), float32
        The centroids, centred: centroid k is ``mean_ + codebooks_[0, k]``.
    mean_ : ndarray of shape (d,), float32
        Mean of the training data; encode quantizes ``X - mean_`` and decode
        adds it back (:mod:`vqcore.base`).
    n_train_ : int
        Points the codebook was trained on.
    n_repairs_ : int
    inertia_ : list of float
        Training mse after each Lloyd assignment.
    stage_errors_ : ndarray of shape (1,)
        Training mse after the (only) stage.

    Examples
    --------
    >>> import numpy as np
    >>> from vqcore import KMeansVQ
    >>> X = np.random.default_rng(0).normal(size=(1000, 8)).astype("float32")
    >>> vq = KMeansVQ(codebook_size=16, random_state=0).fit(X)
    >>> vq.encode(X[:3]).shape
    (3, 1)
    >>> vq.spec()
    'VQ1x4'
    """

    method = "VQ"
    additive = True

    def __init__(
        self,
        codebook_size=256,
        *,
        n_iter=25,
        tol=DEFAULT_TOL,
        init="k-means++",
        max_points_per_centroid=256,
        random_state=None,
    ):
        self.codebook_size = codebook_size
        self.n_iter = n_iter
        self.tol = tol
        self.init = init
        self.max_points_per_centroid = max_points_per_centroid
        self.random_state = random_state

    @property
    def n_codebooks(self):
        return 1

    def fit(self, X, y=None):
        X = self._validate_fit(X)
        check_choice("init", self.init, {"k-means++", "random"})
        rng = check_random_state(self.random_state)
        res = kmeans_rng(
            X, self.codebook_size, check_int("n_iter", self.n_iter, low=0),
            self.init, self.max_points_per_centroid, None, rng, tol=check_tol(self.tol),
        )
        self.codebooks_ = res.centroids[None]
        self.n_train_ = res.n_train
        self.n_repairs_ = res.n_repairs
        self.inertia_ = res.inertia
        self.stage_errors_ = self._blocked_stage_errors(X)
        return self

    def _encode(self, X):
        labels, _ = nearest(X, self.codebooks_[0])
        return labels[:, None]

    def _decode(self, codes):
        return self.codebooks_[0][codes[:, 0]]

    def faiss_string(self):
        return self._faiss_nbits("PQ1x{nbits}")
