"""Additive quantization: M full-dimensional codebooks learned jointly.

References
----------
A. Babenko and V. Lempitsky, "Additive quantization for extreme vector
compression", CVPR 2014: codes by beam search, codebooks by least squares
given the codes, alternating.
J. Martinez, J. Clement, H. H. Hoos and J. J. Little, "Revisiting additive
quantization", ECCV 2016 (LSQ): iterated conditional modes (ICM) refinement
of the codes, which we run after the beam search.
J. Martinez, S. Zakhmi, H. H. Hoos and J. J. Little, "LSQ++: lower running
time and higher recall in multi-codebook quantization", ECCV 2018:
stochastic relaxation, annealed noise in the codebook update.
A. E. Hoerl and R. W. Kennard, "Ridge regression: biased estimation for
nonorthogonal problems", Technometrics 12(1), 1970; D. J. C. MacKay,
"Bayesian interpolation", Neural Computation 4(3), 1992 (the prior's
strength re-estimated from the data): the regularised codebook update.
"""

import numpy as np
import scipy.linalg

from . import progress
from ._distances import cluster_sums, nearest
from ._parallel import n_threads, parallel_map, single_blas_thread, split_rows
from ._validation import check_int, check_random_state, check_real
from .rq import RQ_START_SHARE, ResidualQuantizer, beam_search_encode

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


def least_squares_codebooks(X, codes, K, *, ridge=0.0, center=None):
    """Codebooks C minimising ``sum_i ||x_i - sum_m C_m[codes_im]||^2 + sum_mk lam_m ||c_mk||^2``.

    Solves the normal equations ``(B^T B + Lambda) C = B^T (X - center)``
    where B is the (n, M*K) one-hot code matrix (built from the pairwise code
    co-occurrence histograms) and Lambda holds ``ridge[m]`` on the diagonal
    of codebook m's block: the MAP estimate under a Gaussian prior on the
    codewords (ridge regression). ``center`` (e.g. the data mean) is then
    added to codebook 0, so the prior pulls codewords towards it, not
    towards 0. A tiny ridge is always added to fix the directions the codes
    leave free (a constant moved from one codebook to another).

    Parameters
    ----------
    X : ndarray of shape (n, d)
    codes : ndarray of shape (n, M)
    K : int
    ridge : float or array of shape (M,), default=0.0
        lam_m, in rows (a codeword used by c rows is pulled as by lam_m rows at the centre).
    center : ndarray of shape (d,), optional

    Returns
    -------
    books : ndarray of shape (M, K, d), float32
    """
    n, M = codes.shape
    d = X.shape[1]
    G = np.zeros((M * K, M * K))
    H = np.empty((M * K, d))
    X64 = X.astype(np.float64)
    if center is not None:
        X64 -= center
    for a in range(M):
        H[a * K:(a + 1) * K] = cluster_sums(codes[:, a], X64, K)
        G[a * K:(a + 1) * K, a * K:(a + 1) * K] = np.diag(np.bincount(codes[:, a], minlength=K))
        for b in range(a + 1, M):
            joint = np.bincount(codes[:, a] * K + codes[:, b], minlength=K * K).reshape(K, K)
            G[a * K:(a + 1) * K, b * K:(b + 1) * K] = joint
            G[b * K:(b + 1) * K, a * K:(a + 1) * K] = joint.T
    lam = np.repeat(np.broadcast_to(np.asarray(ridge, dtype=np.float64), (M,)), K)
    G[np.diag_indices_from(G)] += lam + 1e-6 * max(np.trace(G) / (M * K), 1.0)
    with single_blas_thread():  # Cholesky (as faiss's LSQ): without solve's condition estimate, the same C
        C = scipy.linalg.cho_solve(scipy.linalg.cho_factor(G, check_finite=False), H, check_finite=False)
    C = C.reshape(M, K, d)
    if center is not None:
        C[0] += center
    return C.astype(np.float32)


def block_update_codebooks(X, codes, books, *, ridge=0.0, center=None):
    """Exact (MAP) update of one codebook at a time, the others fixed (in place).

    Codeword k of codebook m becomes ``(sum of its rows' targets + lam_m * c0) /
    (count + lam_m)`` with c0 = ``center`` for codebook 0 and 0 for the
    others: the ridge of :func:`least_squares_codebooks`, one block at a time.
    """
    n, M = codes.shape
    K = books.shape[1]
    lam = np.broadcast_to(np.asarray(ridge, dtype=np.float64), (M,))
    X_hat = _additive_decode(books, codes)
    for m in range(M):
        target = X - X_hat + books[m][codes[:, m]]
        counts = np.bincount(codes[:, m], minlength=K).astype(np.float64)
        sums = cluster_sums(codes[:, m], target.astype(np.float64), K)
        if m == 0 and center is not None and lam[m] > 0:
            sums += lam[m] * np.asarray(center, dtype=np.float64)
        used = counts > 0
        new = books[m].copy()
        new[used] = (sums[used] / (counts[used, None] + lam[m])).astype(np.float32)
        X_hat += new[codes[:, m]] - books[m][codes[:, m]]
        books[m] = new
    return books


def map_ridge(books, mse, center):
    """Empirical-Bayes ridge of each codebook: noise variance over prior variance.

    With reconstruction noise of variance ``mse / d`` per dimension and
    codewords of codebook m spread around their prior mean (``center`` for
    codebook 0, 0 for the others) with variance ``v_m / d`` per dimension,
    ``v_m = mean_k ||c_mk - prior||^2``, the MAP codewords are the ridge
    solution with ``lam_m = mse / v_m`` (in rows): a codeword used by few
    rows is pulled towards the prior, a busy one hardly moves.
    """
    books = np.asarray(books, dtype=np.float64)
    spread = books.copy()
    spread[0] -= center
    v = np.einsum("mkd,mkd->m", spread, spread) / books.shape[1]
    return np.where(v > 0, mse / np.maximum(v, 1e-300), 0.0)


def icm_refine(X, books, codes, n_sweeps=1, X_hat=None):
    """Iterated conditional modes: re-pick each code with the others fixed.

    Each move picks the exact best codeword of codebook m for the residual
    left by the other M-1 codewords, so the error of every row never rises.
    Returns the new codes and their reconstruction.
    """
    codes = codes.copy()
    X_hat = _additive_decode(books, codes) if X_hat is None else X_hat.copy()
    for _ in range(n_sweeps):
        for m in range(books.shape[0]):
            old = books[m][codes[:, m]]
            target = X - X_hat + old
            new_codes, _ = nearest(target, books[m])
            X_hat += books[m][new_codes] - old
            codes[:, m] = new_codes
    return codes, X_hat


# the pairwise codeword tables hold M*M*K*K floats; beyond this, local search
# falls back to explicit residuals (icm_refine)
_MAX_PAIR_TABLE = 2**25
# rows per block of the local search: 1/3 of this for the block's unary table U,
# the rest for its cost and candidate buffers; the blocks also fix the random streams
_LUT_CHUNK_BYTES = 48 * 2**20


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(z):
    """The finaliser of splitmix64 (Steele, Lea & Flood, OOPSLA 2014) on a uint64 array (wraps)."""
    z = z ^ (z >> np.uint64(30))
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def row_seeds(X, seed):
    """One 64-bit seed per row, a function of the row's float32 bytes and ``seed`` alone.

    A multilinear hash of the row's 32-bit words (random odd multipliers
    drawn from ``seed``; one integer matrix product) through splitmix64's
    finaliser. The local search draws a row's perturbations from its seed, so
    a row gets the same codes whatever it is encoded with.

    Returns
    -------
    seeds : ndarray of shape (n,), uint64
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    seed = int(seed) % 2**63
    mult = np.random.default_rng(seed).integers(0, 2**63, size=X.shape[1], dtype=np.uint64)
    mult = mult * np.uint64(2) + np.uint64(1)
    with np.errstate(over="ignore"):
        return _mix64(X.view(np.uint32).astype(np.uint64) @ mult + np.uint64(seed))


def _perturbation(seeds, rnd, M, K, n_perturb):
    """Round ``rnd``'s perturbation of each row: ``n_perturb`` distinct positions and new codes.

    The row's splitmix64 stream (Steele et al. 2014) from its seed, read at
    counters ``rnd * (M + n_perturb) + j``: M keys whose order picks the
    positions, then one draw per new code. Depends on the row's seed only.
    """
    ctr = np.arange(rnd * (M + n_perturb) + 1, (rnd + 1) * (M + n_perturb) + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = _mix64(seeds[:, None] + _GOLDEN * ctr[None, :])
    pos = np.argsort(z[:, :M], axis=1, kind="stable")[:, :n_perturb]
    new = (z[:, M:] % np.uint64(K)).astype(np.int64)
    return pos, new


def pair_tables(books):
    """Inner products between codewords of different codebooks.

    Returns G of shape (M, M, K, K) with ``G[j, m] = C_j C_m^T`` and
    ``G[m, m] = 0``, so that for codes c the cross terms of
    ``||sum_m C_m[c_m]||^2`` are ``sum_{j != m} G[j, m][c_j, c_m]``.
    """
    M, K, d = books.shape
    flat = books.reshape(M * K, d).astype(np.float32)
    G = (flat @ flat.T).reshape(M, K, M, K).transpose(0, 2, 1, 3).copy()
    G[np.arange(M), np.arange(M)] = 0.0
    return G


class _TableSearch:
    """Local search over the codes of a block of rows with precomputed tables.

    With unary terms ``U[i, m, k] = ||c_mk||^2 - 2 <x_i, c_mk>`` and the
    pairwise tables ``G[j, m] = C_j C_m^T``, the error of a row is
    ``||x_i||^2 + sum_m U[i, m, c_m] + 2 sum_{j < m} G[j, m][c_j, c_m]``, and
    the best code of position m given the others is the argmin over k of
    ``U[i, m, k] + 2 sum_{j != m} G[j, m][c_j, k]``: M - 1 table rows per row
    and position, O(M K) instead of the O(K d) of an explicit residual (the
    unary/binary decomposition of LSQ, Martinez et al. 2016). The cost is
    summed afresh for each position rather than kept up to date row by row:
    contiguous gathers and adds, no scatter (2.4x faster on MiniLM 8x8 on
    two threads, the same codes).
    """

    def __init__(self, X, books, G2, Cn):
        c = X.shape[0]
        M, K, d = books.shape
        self.M, self.K, self.G2 = M, K, G2
        self.U = (X @ books.reshape(M * K, d).T).reshape(c, M, K)
        self.U *= -2.0
        self.U += Cn
        self.xn = np.einsum("ij,ij->i", X, X)
        self.rows = np.arange(c)

    def error(self, codes):
        err = self.xn.copy()
        for m in range(self.M):
            err += self.U[self.rows, m, codes[:, m]]
            for j in range(m + 1, self.M):
                err += self.G2[j, m][codes[:, j], codes[:, m]]
        return err

    def beam(self, beam_size):
        """The codes of a beam search of ``beam_size`` paths over the codebooks in order,
        read off the tables (:func:`vqcore._kernels.table_beam_rows`)."""
        from . import _kernels

        codes = np.empty((self.U.shape[0], self.M), dtype=np.int64)
        _kernels.table_beam_rows(np.ascontiguousarray(self.U, dtype=np.float32),
                                 np.ascontiguousarray(self.G2, dtype=np.float32), int(beam_size), codes)
        return codes

    def icm(self, codes, n_sweeps):
        """Re-pick each position's code given the others (in place); no row's error rises.

        By the compiled loop (:func:`vqcore._kernels.icm_sweeps`) when the arrays are
        float32 and int64, else by the numpy loop it reproduces."""
        if self.U.dtype == np.float32 and self.G2.dtype == np.float32 and codes.dtype == np.int64:
            from . import _kernels

            _kernels.icm_sweeps(self.U, self.G2, codes, n_sweeps)
            return
        for _ in range(n_sweeps):
            for m in range(self.M):
                cost = self.U[:, m, :].copy()
                for j in range(self.M):
                    if j != m:
                        cost += self.G2[j, m][codes[:, j]]
                codes[:, m] = np.argmin(cost, axis=1)

    def ils(self, codes, seeds, n_ils, n_icm, n_perturb):
        """Iterated local search from ``codes``: by the compiled per-row loop
        (:func:`vqcore._kernels.ils_rows`) when the arrays are float32 and int64, else by
        the numpy loop, which gives the same codes (the same float32 operations in the same order)."""
        codes = np.array(codes, dtype=codes.dtype)
        if self.U.dtype == np.float32 and self.G2.dtype == np.float32 and codes.dtype == np.int64:
            from . import _kernels

            c = codes.shape[0]
            pos = np.empty((c, n_ils, n_perturb), dtype=np.int64)
            new = np.empty((c, n_ils, n_perturb), dtype=np.int64)
            for r in range(n_ils):
                pos[:, r], new[:, r] = _perturbation(seeds, r, self.M, self.K, n_perturb)
            _kernels.ils_rows(self.U, self.G2, self.xn.astype(np.float32), codes, pos, new, n_icm)
            return codes
        self.icm(codes, 1)
        err = self.error(codes)
        for r in range(n_ils):
            cand = codes.copy()
            pos, new = _perturbation(seeds, r, self.M, self.K, n_perturb)
            cand[self.rows[:, None], pos] = new
            self.icm(cand, n_icm)
            cand_err = self.error(cand)
            better = cand_err < err
            codes[better], err[better] = cand[better], cand_err[better]
        return codes


def ils_encode(X, books, codes, seed, *, n_ils=8, n_icm=4, n_perturb=4, beam_size=1):
    """Iterated local search over codes (Martinez et al. 2016/2018, LSQ/LSQ++).

    From the current codes, ``n_perturb`` randomly chosen positions of every
    row get random codes, ICM runs ``n_icm`` sweeps, and each row keeps the
    result only where its error fell; repeated ``n_ils`` times. The error of
    every row never rises. Each row draws its perturbations from its own
    stream, seeded by the row's bytes and the integer ``seed``
    (:func:`row_seeds`), so a row's codes depend on that row, its start codes
    and ``seed`` alone: not on the other rows, the blocks or the threads.

    ``codes=None`` starts from a beam search of ``beam_size`` paths over the
    codebooks in order (Babenko & Lempitsky 2014), the codes of
    :func:`vqcore.rq.beam_search_encode`, read off the same tables
    (:func:`vqcore._kernels.table_beam_rows`: no products beyond the unary table's).
    """
    M, K, d = books.shape
    n = X.shape[0]
    n_perturb = min(n_perturb, M)
    seeds = row_seeds(X, int(seed))
    if M * M * K * K > _MAX_PAIR_TABLE:
        if codes is None:
            codes = beam_search_encode(X, books, beam_size)
        return _ils_explicit(X, books, np.asarray(codes, dtype=np.int64), seeds, n_ils, n_icm, n_perturb)
    if codes is not None:
        codes = np.asarray(codes, dtype=np.int64)
    G2 = 2.0 * pair_tables(books)
    Cn = np.einsum("mkd,mkd->mk", books, books)
    step = max(1, _LUT_CHUNK_BYTES // (3 * M * K * 4))
    n_blocks = -(-n // step)
    if n >= 512:  # blocks of equal size, a multiple of the threads: the compiled search runs without the GIL
        n_blocks = -(-n_blocks // n_threads()) * n_threads()
    spans = split_rows(n, n_blocks)

    def work(i):
        a, b = spans[i]
        search = _TableSearch(X[a:b], books, G2, Cn)
        start = search.beam(beam_size) if codes is None else codes[a:b]
        return search.ils(start, seeds[a:b], n_ils, n_icm, n_perturb)

    return np.concatenate(parallel_map(work, range(len(spans))), axis=0)


def _ils_explicit(X, books, codes, seeds, n_ils, n_icm, n_perturb):
    """:func:`ils_encode` with explicit residuals, for codebooks too large for tables."""
    n, M = codes.shape
    K = books.shape[1]
    codes, X_hat = icm_refine(X, books, codes, 1)
    err = _row_sq_err(X, X_hat)
    rows = np.arange(n)[:, None]
    for r in range(n_ils):
        cand = codes.copy()
        pos, new = _perturbation(seeds, r, M, K, n_perturb)
        cand[rows, pos] = new
        cand, cand_hat = icm_refine(X, books, cand, n_icm)
        cand_err = _row_sq_err(X, cand_hat)
        better = cand_err < err
        codes[better] = cand[better]
        X_hat[better] = cand_hat[better]
        err = np.where(better, cand_err, err)
    return codes


class AdditiveQuantizer(ResidualQuantizer):
    """Additive quantization (Babenko & Lempitsky 2014), initialised from RQ.

    The reconstruction is a sum of M full-dimensional codewords, as in RQ, but
    the codebooks are refitted jointly and the codes searched jointly.
    Training starts from a residual quantizer (progressive k-means, beam
    search) and alternates

    1. codebooks by regularised least squares given the codes (the MAP
       estimate under a Gaussian prior whose strength is re-estimated from
       the data, empirical Bayes; all M*K codewords at once, exact
       block-coordinate updates when M*K > 4096);
       then, while the temperature is above 0, annealed noise on the
       codebooks (LSQ++'s stochastic relaxation, Martinez et al. 2018), which
       lets the alternation leave a poor local minimum;
    2. codes by iterated local search with ICM (Martinez et al. 2016, LSQ),
       which never raises any row's error.

    The codebooks and codes with the lowest training error are kept, so the
    result is never worse than the RQ start. Encoding new data: beam search
    over the codebooks (the codes of RQ's, read off the local search's unary
    and pairwise tables, so without products of its own), then the same local search.

    Parameters
    ----------
    n_codebooks : int, default=8
    codebook_size : int, default=256
    beam_size : int, default=4
        Beam of the RQ initialisation and of the first encoding pass.
    n_iter_aq : int, default=20
        Alternations of codebook and code updates (faiss's LSQ runs 25). On
        SIFT10K 4x8 (3 seeds) 10 left the mse 1.2% above faiss's LSQ, 20 is
        0.35% below it, for about a fifth more training time: the error still
        falls in the last, noise-free alternations.
    n_ils : int, default=8
        Local-search rounds per code update in training.
    n_ils_encode : int, default=32
        Local-search rounds when encoding (new data has no codes refined
        over the alternations, so it gets more; faiss's LSQ runs 16). On
        MiniLM 8x8, 32 rounds lower the mse of new data by 0.2% against 16.
    n_icm : int, default=3
        ICM sweeps per local-search round.
    n_perturb : int, default=4
        Codes of a row re-drawn at random at the start of a round.
    relax : float or None, default=1.0
        Stochastic relaxation of LSQ++ (Martinez et al. 2018), as faiss's
        LSQ applies it: after the codebook update of alternation t of T, every
        codeword is moved by Gaussian noise of standard deviation
        ``temp * s_j / M`` in dimension j (s_j the training data's standard
        deviation in that dimension), with temperature
        ``temp = (1 - (t + 1) / T) ** relax``, so the last alternation is
        noise-free. The state with the lowest training error is kept. None
        turns it off. Noise of the least-squares estimate's own spread
        (``s_j / sqrt(n_mk)`` for a codeword used by n_mk rows), used before,
        shrank as the learn set grew and left MiniLM 4x8 at 20k rows 0.9%
        above faiss's LSQ in mse; this noise with faiss's exponent 0.5 put it
        1.3% below but SIFT10K 0.1% above; with 1.0 (the noise cools faster)
        both are below (bench/RESULTS.md, branch s7-aq20k).
    ridge : "auto" or float, default="auto"
        Prior on the codewords in the codebook update (ridge regression, the
        MAP estimate; see :func:`least_squares_codebooks`): codewords used by
        few rows are pulled towards the data mean (codebook 0) or 0 (the
        others), which the plain least squares overfits with M*K*d free
        values. "auto" re-estimates ``lam_m = mse / v_m`` before every update
        (empirical Bayes, :func:`map_ridge`); a number is a fixed lam in rows;
        0 is plain least squares (with ``relax=None`` the training error then
        never rises).
    clustering, n_iter, init, max_points_per_centroid, max_train_points, random_state :
        as in ResidualQuantizer (they shape the RQ initialisation).

    Attributes
    ----------
    codebooks_ : ndarray of shape (M, K, d), float32
        In centred coordinates: a reconstruction is ``mean_ + sum_m codebooks_[m, k_m]``.
    mean_ : ndarray of shape (d,), float32
        Mean of the training data (:mod:`vqcore.base`).
    init_error_ : float
        Training mse of the RQ initialisation.
    train_errors_ : list of float
        Training mse after each alternation.
    ridge_ : list of list of float
        lam_m used in each alternation's codebook update.
    stage_errors_ : ndarray of shape (M,)
    """

    method = "AQ"

    def __init__(
        self,
        n_codebooks=8,
        codebook_size=256,
        *,
        beam_size=4,
        n_iter_aq=20,
        n_ils=8,
        n_ils_encode=32,
        n_icm=3,
        n_perturb=4,
        relax=1.0,
        ridge="auto",
        clustering="progressive",
        n_iter=10,
        init="k-means++",
        max_points_per_centroid=256,
        max_train_points=None,
        random_state=None,
    ):
        super().__init__(
            n_codebooks, codebook_size, beam_size=beam_size, clustering=clustering,
            n_iter=n_iter, init=init, max_points_per_centroid=max_points_per_centroid,
            max_train_points=max_train_points, random_state=random_state,
        )
        self.n_iter_aq = n_iter_aq
        self.n_ils = n_ils
        self.n_ils_encode = n_ils_encode
        self.n_icm = n_icm
        self.n_perturb = n_perturb
        self.relax = relax
        self.ridge = ridge

    def fit(self, X, y=None):
        X = self._validate_fit(X)
        n_iter = self._check_rq_params()
        n_aq = check_int("n_iter_aq", self.n_iter_aq, low=0)
        check_int("n_ils", self.n_ils, low=0)
        check_int("n_ils_encode", self.n_ils_encode, low=0)
        check_int("n_icm", self.n_icm, low=1)
        check_int("n_perturb", self.n_perturb, low=1)
        rng = check_random_state(self.random_state)
        Xt = self._training_subsample(X, rng)
        self.n_train_ = Xt.shape[0]
        with progress.part(0.0, RQ_START_SHARE, "RQ start: "):
            # the codes of the last stage's beam step: those beam_search_encode would find again
            books, codes = self._train_stages(Xt, n_iter, rng, return_codes=True)
        err = _row_sq_err(Xt, _additive_decode(books, codes))
        self.init_error_ = float(err.mean())
        self.train_errors_ = []
        K, M = self.codebook_size, self.n_codebooks
        relax = self._check_relax()
        center = Xt.mean(axis=0, dtype=np.float64)
        spread = Xt.std(axis=0, dtype=np.float64)
        best = (float(err.mean()), books, codes)
        self.ridge_ = []
        for t in range(n_aq):
            with progress.part(RQ_START_SHARE, 1.0):
                progress.report(t / n_aq, f"alternation {t + 1} of {n_aq}")
            lam = self._ridge_of(books, float(err.mean()), center)
            self.ridge_.append(lam.tolist())
            if M * K <= _JOINT_LS_MAX:
                books = least_squares_codebooks(Xt, codes, K, ridge=lam, center=center)
            else:
                books = block_update_codebooks(Xt, codes, books, ridge=lam, center=center)
            temp = 0.0 if relax is None else (1.0 - (t + 1) / n_aq) ** relax
            if temp > 0:
                # noise of the data's own spread per dimension, whatever the number of rows
                # (as faiss's LSQ): the spread of the estimate, s_j / sqrt(n_mk), vanished on
                # larger learn sets and the alternation stayed in the start's minimum
                books = books + (rng.standard_normal(books.shape) * (temp / M * spread)).astype(np.float32)
            codes = ils_encode(Xt, books, codes, int(rng.integers(2**63)), n_ils=self.n_ils, n_icm=self.n_icm,
                               n_perturb=self.n_perturb)
            err = _row_sq_err(Xt, _additive_decode(books, codes))
            self.train_errors_.append(float(err.mean()))
            if self.train_errors_[-1] < best[0]:
                best = (self.train_errors_[-1], books, codes)
        _, books, codes = best
        self.codebooks_ = books
        self._encode_seed_ = int(rng.integers(2**31))
        self.stage_errors_ = self._blocked_stage_errors(Xt, codes)
        return self

    def _encode_cost(self):
        """Unary tables ``M K d`` (``M K`` more for the norms); the beam search read off the
        tables, stage m extending ``P_m = min(beam, K^m)`` paths by ``K`` codewords at ``m + 1``
        additions each; then the local search: per ICM sweep ``M (M - 1) K`` table additions, one
        sweep to start and ``n_icm`` per round, the row's error (``M + M (M - 1) / 2`` look-ups)
        after each. When the tables would be too large: the beam search of RQ, and ICM on explicit
        residuals (``M (K d + 2 d)`` per sweep)."""
        M, K, d = self.n_codebooks, self.codebook_size, int(self.n_features_in_)
        sweeps = 1 + self.n_ils_encode * self.n_icm
        errors = (1 + self.n_ils_encode) * (M + M * (M - 1) // 2)
        if M * M * K * K > _MAX_PAIR_TABLE:
            local = sweeps * M * (K * d + 2 * d) + (1 + self.n_ils_encode) * 2 * d
            return super()._encode_cost() + local
        beam, paths = 0, 1
        for m in range(M):
            beam += paths * K * (m + 1)
            paths = min(self.beam_size, paths * K)
        return M * K * d + M * K + beam + sweeps * M * (M - 1) * K + errors

    def _row_seed(self):
        """The seed of the encoding's per-row streams: drawn at fit from ``random_state``;
        for a quantizer built from codebooks, ``random_state`` itself when it is an
        integer, else 0."""
        seed = getattr(self, "_encode_seed_", None)
        if seed is None:
            seed = self.random_state if isinstance(self.random_state, (int, np.integer)) else 0
        return int(seed)

    def _ridge_of(self, books, mse, center):
        if isinstance(self.ridge, str) and self.ridge == "auto":
            return map_ridge(books, mse, center)
        return np.full(books.shape[0], check_real("ridge", self.ridge, low=0.0))

    def _check_relax(self):
        if self.relax is None:
            return None
        return check_real("relax", self.relax, low=0.0, inclusive=False)

    def _encode(self, X):
        return ils_encode(X, self.codebooks_, None, self._row_seed(), n_ils=self.n_ils_encode, n_icm=self.n_icm,
                          n_perturb=self.n_perturb, beam_size=self.beam_size)

    def faiss_string(self):
        return self._faiss_nbits("LSQ{M}x{nbits}")
