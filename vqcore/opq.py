"""Optimized product quantization: PQ after a learned orthogonal rotation.

References
----------
T. Ge, K. He, Q. Ke and J. Sun, "Optimized product quantization for approximate
nearest neighbor search", CVPR 2013 (and "Optimized product quantization",
IEEE TPAMI 36(4), 2014). The rotation starts from the paper's parametric
solution (eigenvalue allocation) and is refined by its non-parametric method:
alternate a PQ fit of ``X R`` and the orthogonal Procrustes solution
``R = U V^T`` with ``U S V^T = svd(X^T Y_hat)``.
"""

import numpy as np

from . import progress
from ._parallel import single_blas_thread
from ._validation import check_choice, check_int, check_random_state, check_tol
from .kmeans import DEFAULT_TOL, gain_below
from .pq import ProductQuantizer, check_subspaces


def eigenvalue_allocation(X, n_subspaces):
    """Ge et al.'s parametric OPQ rotation (eigenvalue allocation).

    Principal directions are dealt, largest eigenvalue first, to the subspace
    whose product of eigenvalues is smallest among those not yet full, which
    balances the variance of the subspaces.

    Returns
    -------
    R : ndarray of shape (d, d), orthogonal; subspace m is columns m*d/M..(m+1)*d/M.
    """
    d = X.shape[1]
    ds = d // n_subspaces
    Xc = X - X.mean(axis=0, dtype=np.float64)
    cov = (Xc.T @ Xc) / max(1, X.shape[0] - 1)
    with single_blas_thread():
        evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1]
    evals = np.maximum(evals[order], 1e-12)
    evecs = evecs[:, order]
    logprod = np.zeros(n_subspaces)
    buckets = [[] for _ in range(n_subspaces)]
    for i in range(d):
        open_ = [m for m in range(n_subspaces) if len(buckets[m]) < ds]
        m = min(open_, key=lambda j: logprod[j])
        buckets[m].append(i)
        logprod[m] += np.log(evals[i])
    cols = [i for b in buckets for i in b]
    return evecs[:, cols]


def procrustes(X, Y):
    """Orthogonal R minimising ||X R - Y||_F (Schonemann 1966)."""
    with single_blas_thread():
        U, _, Vt = np.linalg.svd(X.T.astype(np.float64) @ Y.astype(np.float64))
    return U @ Vt


class OPQ(ProductQuantizer):
    """Product quantization of ``X @ rotation_`` with a learned rotation (Ge et al. 2013).

    Parameters
    ----------
    n_codebooks : int, default=8
    codebook_size : int, default=256
    n_iter : int, default=25
        Maximum Lloyd iterations of the final PQ fit.
    tol : float, default=1e-4
        Relative-improvement stop of each subspace's k-means, as in
        :class:`ProductQuantizer`.
    n_iter_opq : int, default=50
        Most alternations of PQ fit and Procrustes rotation update (faiss's
        OPQMatrix default).
    tol_opq : float, default=2e-4
        Stop the alternation once one lowers the training mse by less than
        this fraction of it (on SIFT after about 20, on MiniLM after about
        40); 0 runs all ``n_iter_opq``.
    n_iter_pq : int, default=4
        Lloyd iterations inside each alternation (warm-started).
    init_rotation : {"auto", "eigenvalue_allocation", "identity", "random"}, default="auto"
        Start of the alternation; "auto" fits a short PQ after the identity
        and after the eigenvalue allocation and starts from the better one.
    max_train_points : int, default=65536
        Points used to learn the rotation (a random subsample beyond that).
    init, max_points_per_centroid, random_state : as in ProductQuantizer

    Attributes
    ----------
    rotation_ : ndarray of shape (d, d), float32, orthogonal
    codebooks_ : ndarray of shape (M, K, d / M), in the rotated space
        Of the centred data: a reconstruction is ``mean_ + concat_m(codebooks_[m, k_m]) @ rotation_.T``.
    mean_ : ndarray of shape (d,), float32
        Mean of the training data, removed before the rotation.
    rotation_errors_ : list of float
        Training mse after each alternation.
    init_rotation_used_ : str
    """

    method = "OPQ"

    def __init__(
        self,
        n_codebooks=8,
        codebook_size=256,
        *,
        n_iter=25,
        tol=DEFAULT_TOL,
        n_iter_opq=50,
        tol_opq=2e-4,
        n_iter_pq=4,
        init_rotation="auto",
        max_train_points=65536,
        init="k-means++",
        max_points_per_centroid=256,
        random_state=None,
    ):
        super().__init__(
            n_codebooks, codebook_size, n_iter=n_iter, tol=tol, init=init,
            max_points_per_centroid=max_points_per_centroid, random_state=random_state,
        )
        self.n_iter_opq = n_iter_opq
        self.tol_opq = tol_opq
        self.n_iter_pq = n_iter_pq
        self.init_rotation = init_rotation
        self.max_train_points = max_train_points

    def fit(self, X, y=None):
        X = self._validate_fit(X)
        d = X.shape[1]
        check_subspaces(self.n_codebooks, d)
        check_choice("init", self.init, {"k-means++", "random"})
        check_choice("init_rotation", self.init_rotation, {"auto", "eigenvalue_allocation", "identity", "random"})
        n_iter = check_int("n_iter", self.n_iter, low=0)
        n_opq = check_int("n_iter_opq", self.n_iter_opq, low=0)
        n_pq = check_int("n_iter_pq", self.n_iter_pq, low=1)
        tol_opq = check_tol(self.tol_opq, "tol_opq")
        max_train = check_int("max_train_points", self.max_train_points, low=self.codebook_size)
        rng = check_random_state(self.random_state)

        Xt = X if X.shape[0] <= max_train else X[np.sort(rng.choice(X.shape[0], max_train, replace=False))]
        candidates = {
            "identity": lambda: np.eye(d),
            "eigenvalue_allocation": lambda: eigenvalue_allocation(Xt, self.n_codebooks),
            "random": lambda: np.linalg.qr(rng.standard_normal((d, d)))[0],
        }
        if self.init_rotation == "auto":
            # the parametric solution assumes Gaussian data; on data such as SIFT
            # the identity is the better start: try both with a short PQ fit
            trials = []
            for name in ("identity", "eigenvalue_allocation"):
                R0 = candidates[name]().astype(np.float32)
                err = self._fit_subspaces(Xt @ R0, n_pq, rng, errors=True).sum()
                trials.append((err, name, R0))
            _, self.init_rotation_used_, R = min(trials, key=lambda t: t[0])
        else:
            R = candidates[self.init_rotation]()
            self.init_rotation_used_ = self.init_rotation
        R = R.astype(np.float32)
        self.rotation_errors_ = []
        books = None
        for it in range(n_opq):
            progress.report(it / n_opq, f"rotation step {it + 1} of at most {n_opq}")
            Y = Xt @ R
            # the first PQ fit is a full one, later ones are warm-started refinements
            self._fit_subspaces(Y, n_iter if books is None else n_pq, rng, books)
            books = self.codebooks_
            Y_hat = ProductQuantizer._decode(self, ProductQuantizer._encode(self, Y))
            self.rotation_errors_.append(float(((Y - Y_hat) ** 2).sum(axis=1).mean()))
            if gain_below(self.rotation_errors_, tol_opq):
                break
            R = procrustes(Xt, Y_hat).astype(np.float32)
        self.rotation_ = R
        Y = X @ R
        self.stage_errors_ = self._fit_subspaces(Y, n_iter if books is None else max(n_pq, n_iter // 2), rng, books,
                                                 errors=True)
        return self

    def _encode(self, X):
        return super()._encode(X @ self.rotation_)

    def _encode_cost(self):
        # the rotation (d^2), then PQ's K d
        d = int(self.n_features_in_)
        return d * d + super()._encode_cost()

    def _decode(self, codes):
        return super()._decode(codes) @ self.rotation_.T

    def _stage_errors(self, X, codes):
        # per-subspace error in the rotated space (the rotation preserves the total)
        return self._subspace_errors(X @ self.rotation_ - ProductQuantizer._decode(self, codes))

    def faiss_string(self):
        return self._faiss_nbits("OPQ{M},PQ{M}x{nbits}")

