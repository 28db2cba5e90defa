"""Product quantization.

References
----------
H. Jegou, M. Douze and C. Schmid, "Product quantization for nearest neighbor
search", IEEE TPAMI 33(1), 2011.
"""

import numpy as np

from ._distances import NearestAssigner, nearest
from ._parallel import parallel_map
from ._validation import check_choice, check_int, check_random_state, check_tol
from .base import BaseQuantizer
from .exceptions import VQLensError
from .kmeans import DEFAULT_TOL, SEED_POINTS_PER_CENTROID, kmeans_rng


def _divisors(d):
    return [m for m in range(1, d + 1) if d % m == 0]


def subspace_problem(n_codebooks, d):
    """Why ``n_codebooks`` equal subspaces cannot split ``d`` features, or None."""
    if d % n_codebooks:
        divs = ", ".join(str(m) for m in _divisors(d) if m <= 64)
        return (
            f"n_codebooks={n_codebooks} does not divide n_features={d}: product "
            f"quantization splits the vector into equal subspaces. Choose one of {divs}."
        )
    return None


def check_subspaces(n_codebooks, d):
    """Raise unless ``n_codebooks`` divides ``d``; return the subspace width."""
    problem = subspace_problem(n_codebooks, d)
    if problem:
        raise VQLensError(problem)
    return d // n_codebooks


class ProductQuantizer(BaseQuantizer):
    """Split the vector into M equal subspaces and quantize each by k-means.

    The reconstruction is the concatenation of one codeword per subspace, so
    M codebooks of K codes represent K^M points with M*K*d/M floats.
    (Jegou, Douze & Schmid, TPAMI 2011.)

    Parameters
    ----------
    n_codebooks : int, default=8
        M; must divide the dimension.
    codebook_size : int, default=256
        K, from 2 to 65536.
    n_iter : int, default=25
        Maximum Lloyd iterations per subspace.
    tol : float, default=1e-4
        A subspace's k-means stops once an iteration lowers its training mse
        by less than this fraction of it; 0 runs all ``n_iter``.
    init : {"k-means++", "random"}, default="k-means++"
        "k-means++" seeds each subspace by greedy k-means++ on at most
        ``32 K`` random training rows (8,192 for K=256; Lloyd's iterations then
        use all of them): over 3 seeds on SIFT10K (5k, 10k rows) and MiniLM (5k,
        10k, 20k) the encoding mse stayed within 0.05% of seeding on every row
        (0.03% over 8 seeds at MiniLM 20k, the only size where it bites much),
        at 0.993-1.000 of faiss's with its random seeding (bench/RESULTS.md,
        issue 20 item 4). "random" picks K distinct training rows, as faiss does.
    max_points_per_centroid : int or None, default=256
    random_state : int, Generator or None

    Attributes
    ----------
    codebooks_ : ndarray of shape (M, K, d / M), float32
        In centred coordinates: subspace m of a reconstruction is
        ``mean_[m*d/M:(m+1)*d/M] + codebooks_[m, k]``.
    mean_ : ndarray of shape (d,), float32
        Mean of the training data; encode quantizes ``X - mean_`` and decode
        adds it back (:mod:`vqcore.base`).
    n_repairs_ : int
        Empty clusters repaired, over all subspaces.
    n_train_ : int
    stage_errors_ : ndarray of shape (M,)
        Training mse contributed by each subspace.

    Examples
    --------
    >>> import numpy as np
    >>> from vqcore import ProductQuantizer
    >>> X = np.random.default_rng(0).normal(size=(2000, 16)).astype("float32")
    >>> pq = ProductQuantizer(n_codebooks=4, codebook_size=16, random_state=0).fit(X)
    >>> pq.codebooks_.shape
    (4, 16, 4)
    >>> pq.faiss_string()
    'PQ4x4'
    """

    method = "PQ"
    additive = False

    def __init__(
        self,
        n_codebooks=8,
        codebook_size=256,
        *,
        n_iter=25,
        tol=DEFAULT_TOL,
        init="k-means++",
        max_points_per_centroid=256,
        random_state=None,
    ):
        self.n_codebooks = n_codebooks
        self.codebook_size = codebook_size
        self.n_iter = n_iter
        self.tol = tol
        self.init = init
        self.max_points_per_centroid = max_points_per_centroid
        self.random_state = random_state

    def fit(self, X, y=None):
        X = self._validate_fit(X)
        check_subspaces(self.n_codebooks, X.shape[1])
        check_choice("init", self.init, {"k-means++", "random"})
        n_iter = check_int("n_iter", self.n_iter, low=0)
        rng = check_random_state(self.random_state)
        self.stage_errors_ = self._fit_subspaces(X, n_iter, rng, errors=True)
        return self

    def _fit_subspaces(self, X, n_iter, rng, init_codebooks=None, errors=False):
        """k-means in every subspace, in parallel; with ``errors``, also return each
        subspace's training mse with the final codebooks (its stage error), measured
        in the same worker instead of by a second pass over X."""
        M, K = self.n_codebooks, self.codebook_size
        ds = X.shape[1] // M
        tol = check_tol(self.tol)
        # one generator per subspace, so the result does not depend on threads
        rngs = rng.spawn(M)

        def fit_one(m):
            sub = np.ascontiguousarray(X[:, m * ds:(m + 1) * ds])
            warm = None if init_codebooks is None else init_codebooks[m]
            res = kmeans_rng(sub, K, n_iter, self.init, self.max_points_per_centroid, warm, rngs[m], tol=tol,
                             seed_points_per_centroid=SEED_POINTS_PER_CENTROID)
            err = float(nearest(sub, res.centroids)[1].mean(dtype=np.float64)) if errors else None
            return res, err

        out = parallel_map(fit_one, range(M))
        results = [r for r, _ in out]
        self.codebooks_ = np.stack([r.centroids for r in results]).astype(np.float32)
        self.n_repairs_ = sum(r.n_repairs for r in results)
        self.n_train_ = results[0].n_train
        return np.array([e for _, e in out]) if errors else None

    def _encode(self, X):
        ds = self.codebooks_.shape[2]

        def encode_one(m):
            # labels only (no distances), from the subspace's columns copied once into the assigner
            return NearestAssigner(X[:, m * ds:(m + 1) * ds]).labels(self.codebooks_[m])

        return np.stack(parallel_map(encode_one, range(self.n_codebooks)), axis=1)

    def _decode(self, codes):
        M = self.n_codebooks
        return np.concatenate([self.codebooks_[m][codes[:, m]] for m in range(M)], axis=1)

    def _stage_errors(self, X, codes):
        return self._subspace_errors(X - self._decode(codes))

    def _subspace_errors(self, diff):
        sq = np.einsum("ij,ij->j", diff, diff, dtype=np.float64) / diff.shape[0]
        return sq.reshape(self.n_codebooks, -1).sum(axis=1)

    def faiss_string(self):
        return self._faiss_nbits("PQ{M}x{nbits}")
