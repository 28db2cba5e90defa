"""Additive quantization: M full-dimensional codebooks learned jointly.

References
----------
A. Babenko and V. Lempitsky, "Additive quantization for extreme vector
compression", CVPR 2014: codes by beam search, codebooks by least squares
given the codes, alternating.
J. Martinez, J. Clement, H. H. Hoos and J. J. Little, "Revisiting additive
quantization", ECCV 2016 (LSQ): iterated conditional modes (ICM) refinement
of the codes, which we run after the beam search.
"""

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from ._distances import nearest
from ._validation import check_int, check_random_state
from .rq import ResidualQuantizer, beam_search_encode

# above this many codewords in total, the joint least-squares system
# (M*K x M*K) is replaced by exact block-coordinate updates, one codebook at a time
_JOINT_LS_MAX = 4096


def _row_sq_err(X, X_hat):
    diff = X - X_hat
    return np.einsum("ij,ij->i", diff, diff)


def _additive_decode(books, codes):
    out = books[0][codes[:, 0]].copy()
    for m in range(1, books.shape[0]):
        out += books[m][codes[:, m]]
    return out


def _onehot(codes_m, K, n):
    return sp.csr_matrix((np.ones(n, dtype=np.float64), (codes_m, np.arange(n))), shape=(K, n))


def least_squares_codebooks(X, codes, K, *, ridge=1e-6):
    """Codebooks C minimising ``sum_i ||x_i - sum_m C_m[codes_im]||^2`` given codes.

    Solves the normal equations ``(B^T B + ridge * tr/MK * I) C = B^T X`` where
    B is the (n, M*K) one-hot code matrix; B^T B is built from the pairwise
    code co-occurrence histograms. The tiny ridge fixes the directions that
    the codes leave free (a constant moved from one codebook to another).

    Returns
    -------
    books : ndarray of shape (M, K, d), float32
    """
    n, M = codes.shape
    d = X.shape[1]
    G = np.zeros((M * K, M * K))
    H = np.empty((M * K, d))
    X64 = X.astype(np.float64)
    for a in range(M):
        H[a * K:(a + 1) * K] = _onehot(codes[:, a], K, n) @ X64
        G[a * K:(a + 1) * K, a * K:(a + 1) * K] = np.diag(np.bincount(codes[:, a], minlength=K))
        for b in range(a + 1, M):
            joint = np.bincount(codes[:, a] * K + codes[:, b], minlength=K * K).reshape(K, K)
            G[a * K:(a + 1) * K, b * K:(b + 1) * K] = joint
            G[b * K:(b + 1) * K, a * K:(a + 1) * K] = joint.T
    lam = ridge * max(np.trace(G) / (M * K), 1.0)
    G[np.diag_indices_from(G)] += lam
    C = scipy.linalg.solve(G, H, assume_a="pos", check_finite=False)
    return C.reshape(M, K, d).astype(np.float32)


def block_update_codebooks(X, codes, books):
    """Exact update of one codebook at a time, the others fixed (in place)."""
    n, M = codes.shape
    K = books.shape[1]
    X_hat = _additive_decode(books, codes)
    for m in range(M):
        target = X - X_hat + books[m][codes[:, m]]
        counts = np.bincount(codes[:, m], minlength=K)
        sums = _onehot(codes[:, m], K, n) @ target.astype(np.float64)
        used = counts > 0
        new = books[m].copy()
        new[used] = (sums[used] / counts[used, None]).astype(np.float32)
        X_hat += new[codes[:, m]] - books[m][codes[:, m]]
        books[m] = new
    return books


def icm_refine(X, books, codes, n_sweeps=1):
    """Iterated conditional modes: re-pick each code with the others fixed.

    Each move picks the exact best codeword of codebook m for the residual
    left by the other M-1 codewords, so the error of every row never rises.
    """
    codes = codes.copy()
    X_hat = _additive_decode(books, codes)
    for _ in range(n_sweeps):
        for m in range(books.shape[0]):
            old = books[m][codes[:, m]]
            target = X - X_hat + old
            new_codes, _ = nearest(target, books[m])
            X_hat += books[m][new_codes] - old
            codes[:, m] = new_codes
    return codes


class AdditiveQuantizer(ResidualQuantizer):
    """Additive quantization (Babenko & Lempitsky 2014), initialised from RQ.

    The reconstruction is a sum of M full-dimensional codewords, as in RQ, but
    the codebooks are refitted jointly. Training alternates

    1. codebooks by least squares given the codes (all M*K codewords at once;
       exact block-coordinate updates when M*K > 4096);
    2. codes by beam search over the codebooks, then ``n_icm`` sweeps of ICM
       (Martinez et al. 2016); each row keeps the better of its old and new
       codes, so the training error never rises.

    Encoding uses the same beam search + ICM.

    Parameters
    ----------
    n_codebooks : int, default=8
    codebook_size : int, default=256
    beam_size : int, default=4
        Beam of the encoder (also used by the RQ initialisation).
    n_iter_aq : int, default=8
        Alternations of codebook and code updates.
    n_icm : int, default=2
        ICM sweeps after each beam search.
    clustering, n_iter, init, max_points_per_centroid, max_train_points, random_state :
        as in ResidualQuantizer (they shape the RQ initialisation).

    Attributes
    ----------
    codebooks_ : ndarray of shape (M, K, d), float32
    init_error_ : float
        Training mse of the RQ initialisation.
    train_errors_ : list of float
        Training mse after each alternation.
    stage_errors_ : ndarray of shape (M,)
    """

    method = "AQ"

    def __init__(
        self,
        n_codebooks=8,
        codebook_size=256,
        *,
        beam_size=4,
        n_iter_aq=8,
        n_icm=2,
        clustering="progressive",
        n_iter=10,
        init="k-means++",
        max_points_per_centroid=256,
        max_train_points=None,
        random_state=None,
    ):
        super().__init__(
            n_codebooks, codebook_size, beam_size=beam_size, clustering=clustering,
            n_iter=n_iter, init=init,
            max_points_per_centroid=max_points_per_centroid,
            max_train_points=max_train_points, random_state=random_state,
        )
        self.n_iter_aq = n_iter_aq
        self.n_icm = n_icm

    def fit(self, X, y=None):
        X = self._validate_fit(X)
        n_iter = self._check_rq_params()
        n_aq = check_int("n_iter_aq", self.n_iter_aq, low=0)
        check_int("n_icm", self.n_icm, low=0)
        rng = check_random_state(self.random_state)
        Xt = self._training_subsample(X, rng)
        self.n_train_ = Xt.shape[0]
        books = self._train_stages(Xt, n_iter, rng)
        codes = beam_search_encode(Xt, books, self.beam_size)
        err = _row_sq_err(Xt, _additive_decode(books, codes))
        self.init_error_ = float(err.mean())
        self.train_errors_ = []
        K, M = self.codebook_size, self.n_codebooks
        for _ in range(n_aq):
            if M * K <= _JOINT_LS_MAX:
                new_books = least_squares_codebooks(Xt, codes, K)
                new_err = _row_sq_err(Xt, _additive_decode(new_books, codes))
                if new_err.mean() <= err.mean():
                    books, err = new_books, new_err
            else:
                books = block_update_codebooks(Xt, codes, books)
                err = _row_sq_err(Xt, _additive_decode(books, codes))
            cand = self._encode_with(Xt, books)
            cand_err = _row_sq_err(Xt, _additive_decode(books, cand))
            better = cand_err < err
            codes[better] = cand[better]
            err = np.where(better, cand_err, err)
            self.train_errors_.append(float(err.mean()))
        self.codebooks_ = books
        self.stage_errors_ = self._stage_errors(Xt, codes)
        return self

    def _encode_with(self, X, books):
        codes = beam_search_encode(X, books, self.beam_size)
        if self.n_icm:
            codes = icm_refine(X, books, codes, self.n_icm)
        return codes

    def _encode(self, X):
        return self._encode_with(X, self.codebooks_)

    def faiss_string(self):
        return self._faiss_nbits("LSQ{M}x{nbits}")
