"""Residual quantization, with beam-search (multi-path) encoding.

References
----------
B.-H. Juang and A. H. Gray, "Multiple stage vector quantization for speech
coding", ICASSP 1982; Y. Chen, T. Guan and C. Wang, "Approximate nearest
neighbor search by residual vector quantization", Sensors 10(12), 2010.
Beam search over partial code tuples ("multi-path encoding"): S. Liu, H. Shao
and H. Lu, "Generalized residual vector quantization for large scale data",
ICME 2015; also faiss's ResidualQuantizer (Babenko & Lempitsky 2014 use the
same search for additive codes).
"""

import numpy as np

from . import progress
from ._distances import sq_norms
from ._parallel import n_threads, parallel_map, split_rows
from ._validation import check_choice, check_int, check_random_state
from .base import BaseQuantizer
from .kmeans import kmeans_rng, progressive_kmeans_rng

# memory for one chunk of the beam search: (rows, beam, K) distances
_BEAM_CHUNK_BYTES = 48 * 2**20
# share of a fit's progress given to its RQ start, in the quantizers that begin
# with one (AQ, GRVQ): with a beam the start is about 0.3-0.5 of their fit
RQ_START_SHARE = 0.4


def _beam_step(R, err, codes, C, Cn, beam_out, out=None):
    """Extend every partial path in the beam by one codeword of C.

    Parameters
    ----------
    R : (c, B, d) residuals of the current paths
    err : (c, B) their squared norms
    codes : (c, B, m) the codes so far
    C : (K, d) next codebook, Cn : (K,) its squared norms
    beam_out : paths to keep per row
    out : tuple of arrays (c, beam_out, d), (c, beam_out), (c, beam_out, m + 1), optional
        Where to write the result (a chunk of the whole's arrays, see
        :func:`beam_step_chunked`).

    Returns the new (R, err, codes), best path first.
    """
    from . import _kernels

    c, B, d = R.shape
    K = C.shape[0]
    # the scores err - 2 r.c + |c|^2 and their best beam_out, in one compiled pass per row
    # (without the GIL, so row blocks run in parallel); each block's products r.c too, with BLAS on
    # one thread in each (vqcore._parallel): BLAS's own threads on the whole product were 1.5x
    # slower, in wall and in CPU time, as soon as another process kept a core busy
    sel = np.empty((c, beam_out), dtype=np.int64)
    Cn = np.ascontiguousarray(Cn, dtype=np.float32)
    err = np.ascontiguousarray(err, dtype=np.float32)
    parts = n_threads() if c * B * K * (d + 8) > 4_000_000 else 1
    R = np.ascontiguousarray(R, dtype=np.float32)
    C = np.ascontiguousarray(C, dtype=np.float32)
    if out is None:
        m = codes.shape[2]
        out = (np.empty((c, beam_out, d), dtype=np.float32), np.empty((c, beam_out), dtype=np.float32),
               np.empty((c, beam_out, m + 1), dtype=np.int64))
    newR, newerr, newcodes = out

    def work(span):
        a, z = span
        RC = (R[a:z].reshape((z - a) * B, d) @ C.T).reshape(z - a, B, K)
        if beam_out == 1:  # near ties settled exactly: the same codes in any batch (see beam_argmin)
            _kernels.beam_argmin(RC, err[a:z], Cn, sel[a:z], R[a:z], C)
        else:
            _kernels.beam_select(RC, err[a:z], Cn, sel[a:z])
        _kernels.beam_extend(R[a:z], C, sel[a:z], newR[a:z], newerr[a:z])

    parallel_map(work, split_rows(c, parts))
    rows = np.arange(c)[:, None]
    b, k = np.divmod(sel, K)
    newcodes[:, :, :-1] = codes[rows, b]
    newcodes[:, :, -1] = k
    return newR, newerr, newcodes


def _beam_chunk_rows(B, K, d):
    per_row = max(1, B) * (K + 2 * d) * 4
    return max(1, _BEAM_CHUNK_BYTES // per_row)


def beam_step_chunked(R, err, codes, C, Cn, beam_out):
    """:func:`_beam_step` over row chunks, so the (rows, B, K) block stays bounded."""
    step = _beam_chunk_rows(R.shape[1], C.shape[0], C.shape[1])
    n, d = R.shape[0], C.shape[1]
    if n <= step:
        return _beam_step(R, err, codes, C, Cn, beam_out)
    # each chunk writes into its rows of the result: no concatenation, which copied the
    # (n, beam, d) residuals once more per stage (a tenth of a GRVQ fit at 20,000 rows)
    out = (np.empty((n, beam_out, d), dtype=np.float32), np.empty((n, beam_out), dtype=np.float32),
           np.empty((n, beam_out, codes.shape[2] + 1), dtype=np.int64))
    for a in range(0, n, step):
        _beam_step(R[a:a + step], err[a:a + step], codes[a:a + step], C, Cn, beam_out,
                   out=tuple(o[a:a + step] for o in out))
    return out


def beam_search_cost(M, K, d, beam_size):
    """Multiply-adds per vector of :func:`beam_search_encode`.

    Stage m extends ``P_m = min(beam, K^m)`` paths: the products ``P_m K d``,
    the scores ``2 P_m K`` (error plus codeword norm) and, for the
    ``P'_m = min(beam, P_m K)`` paths kept, their residuals and squared norms
    ``2 P'_m d``.
    """
    total, paths = 0, 1
    for _ in range(M):
        kept = min(beam_size, paths * K)
        total += paths * K * d + 2 * paths * K + 2 * kept * d
        paths = kept
    return total


def beam_search_encode(X, codebooks, beam_size=1, *, init_codes=None):
    """Encode X with additive codebooks by beam search, stage by stage.

    Parameters
    ----------
    X : ndarray of shape (n, d), float32
    codebooks : ndarray of shape (M, K, d)
        Full-dimensional codebooks; the reconstruction is the sum of one
        codeword from each, chosen in codebook order.
    beam_size : int
        Partial code tuples kept after each stage; 1 is greedy residual
        encoding.

    Returns
    -------
    codes : ndarray of shape (n, M), int64
        The best complete path found.
    """
    M, K, d = codebooks.shape
    n = X.shape[0]
    Cn = sq_norms(codebooks.reshape(M * K, d)).reshape(M, K)
    out = np.empty((n, M), dtype=np.int64)
    step = _beam_chunk_rows(beam_size, K, d)
    for a in range(0, n, step):
        R = X[a:a + step, None, :].copy()
        err = np.einsum("cbd,cbd->cb", R, R)
        codes = np.empty((R.shape[0], 1, 0), dtype=np.int64)
        for m in range(M):
            B_out = min(beam_size, R.shape[1] * K)
            R, err, codes = _beam_step(R, err, codes, codebooks[m], Cn[m], B_out)
        out[a:a + step] = codes[:, 0, :]
    return out


def train_stages(X, n_codebooks, codebook_size, *, n_iter, rng, beam_size=1, train_on="beam",
                 clustering="progressive", init="k-means++", max_points_per_centroid=256, return_codes=False,
                 return_best=False):
    """Learn the M codebooks of residual quantization, stage by stage, with beam search.

    Stage m clusters the residuals left by stages 0..m-1 (Juang & Gray 1982;
    Chen et al. 2010): those of every path kept in the beam
    (``train_on="beam"``, as faiss does) or of the best path only
    (``"best"``); the beam then moves on with the new codebook (Liu et al.
    2015). This is what :meth:`ResidualQuantizer.fit` trains, and the RQ start
    of :class:`~vqcore.AdditiveQuantizer` and
    :class:`~vqcore.GeneralizedResidualQuantizer`. Progress is reported per
    stage (:mod:`vqcore.progress`).

    Parameters
    ----------
    X : ndarray of shape (n, d), float32
        Training rows, centred and subsampled already.
    n_codebooks, codebook_size : int
        M and K.
    n_iter : int
        Lloyd iterations per stage (per dimension step when progressive).
    rng : numpy.random.Generator
    beam_size : int, default=1
    train_on : {"beam", "best"}, default="beam"
    clustering : {"progressive", "plain"}, default="progressive"
        :func:`vqcore.kmeans.progressive_kmeans` or k-means with ``init``.
    init : {"k-means++", "random"}, default="k-means++"
        Used by ``clustering="plain"`` only.
    max_points_per_centroid : int or None, default=256
    return_codes : bool, default=False
        Also return the codes of X's best path: those :func:`beam_search_encode` with the
        same beam finds with the final codebooks (the last stage's beam step found them).

    The parameters are taken as checked (:meth:`ResidualQuantizer.fit` checks
    them).

    return_best : bool, default=False
        Return, instead of the codes alone, X's best path as ``(codes, residuals (n, d),
        squared errors (n,))``: where :class:`~vqcore.GeneralizedResidualQuantizer` starts
        its passes, without a second beam search.

    Returns
    -------
    codebooks : ndarray of shape (M, K, d), float32
    n_repairs : int
        Empty clusters repaired over all stages.
    codes : ndarray of shape (n, M), int64
        Only with ``return_codes``; the tuple above with ``return_best``.
    """
    M, K, d = n_codebooks, codebook_size, X.shape[1]
    books = np.zeros((M, K, d), dtype=np.float32)
    R = X[:, None, :].copy()
    err = np.einsum("cbd,cbd->cb", R, R)
    codes = np.empty((X.shape[0], 1, 0), dtype=np.int64)
    n_repairs = 0
    for m in range(M):
        progress.report(m / M, f"stage {m + 1} of {M}")
        train = R.reshape(-1, d) if train_on == "beam" else R[:, 0, :]
        if clustering == "progressive":
            res = progressive_kmeans_rng(train, K, None, n_iter, max_points_per_centroid, rng)
        else:
            res = kmeans_rng(train, K, n_iter, init, max_points_per_centroid, None, rng)
        n_repairs += res.n_repairs
        books[m] = res.centroids
        B_out = min(beam_size, R.shape[1] * K)
        R, err, codes = beam_step_chunked(R, err, codes, books[m], sq_norms(books[m]), B_out)
    if return_best:
        return books, n_repairs, (codes[:, 0, :].copy(), R[:, 0, :], err[:, 0])
    return (books, n_repairs, codes[:, 0, :]) if return_codes else (books, n_repairs)


class ResidualQuantizer(BaseQuantizer):
    """Quantize the vector, then its residual, M times; the codewords add up.

    Stage m is a k-means codebook learned on the residuals left by stages
    0..m-1 (Juang & Gray 1982; Chen et al. 2010). With ``beam_size > 1`` codes
    are found by beam search over partial code tuples (multi-path encoding,
    Liu et al. 2015), both while training and when encoding.

    Parameters
    ----------
    n_codebooks : int, default=8
        M, the number of stages.
    codebook_size : int, default=256
        K, from 2 to 65536.
    beam_size : int, default=1
    train_on : {"beam", "best"}, default="beam"
        With ``beam_size > 1``, the residuals stage m is trained on: those of
        every path kept in the beam (as faiss does), or of the best path only.
        Which is better depends on the data: at 4x8 with beam 5, "best" gives
        0.96 of "beam"'s mse on SIFT10K (and trains 2.5x faster) and 1.04 of it
        on MiniLM.
    clustering : {"progressive", "plain"}, default="progressive"
        How each stage's codebook is clustered: "progressive" runs k-means on
        a growing number of principal dimensions of the residuals
        (:func:`vqcore.kmeans.progressive_kmeans`, as faiss and GRVQ do), which
        avoids the hub that plain k-means falls into on the nearly isotropic
        residuals of later stages; "plain" is k-means++ and Lloyd.
    n_iter : int, default=10
        Lloyd iterations per stage (per dimension step when progressive).
    init : {"k-means++", "random"}, default="k-means++"
    max_points_per_centroid : int or None, default=256
        k-means of each stage trains on at most K * this many residuals.
    max_train_points : int or None, default=None
        Rows used to learn the codebooks (a random subsample beyond that);
        None means ``codebook_size * max_points_per_centroid`` (65,536 for K=256).
    random_state : int, Generator or None

    Attributes
    ----------
    codebooks_ : ndarray of shape (M, K, d), float32
        In centred coordinates: a reconstruction is ``mean_ + sum_m codebooks_[m, k_m]``.
    mean_ : ndarray of shape (d,), float32
        Mean of the training data; encode quantizes ``X - mean_`` and decode
        adds it back (:mod:`vqcore.base`).
    stage_errors_ : ndarray of shape (M,)
        Training mse after each stage (from the final codes).
    n_train_ : int
    n_repairs_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from vqcore import ResidualQuantizer
    >>> X = np.random.default_rng(0).normal(size=(2000, 8)).astype("float32")
    >>> rq = ResidualQuantizer(n_codebooks=3, codebook_size=16, beam_size=4, random_state=0).fit(X)
    >>> bool(np.all(np.diff(rq.stage_errors_) <= 0))
    True
    >>> rq.spec()
    'RQ3x4_b4'
    """

    method = "RQ"
    additive = True

    def __init__(
        self,
        n_codebooks=8,
        codebook_size=256,
        *,
        beam_size=1,
        train_on="beam",
        clustering="progressive",
        n_iter=10,
        init="k-means++",
        max_points_per_centroid=256,
        max_train_points=None,
        random_state=None,
    ):
        self.n_codebooks = n_codebooks
        self.codebook_size = codebook_size
        self.beam_size = beam_size
        self.train_on = train_on
        self.clustering = clustering
        self.n_iter = n_iter
        self.init = init
        self.max_points_per_centroid = max_points_per_centroid
        self.max_train_points = max_train_points
        self.random_state = random_state

    def _check_rq_params(self):
        check_int("beam_size", self.beam_size, low=1, high=1024)
        check_choice("init", self.init, {"k-means++", "random"})
        check_choice("clustering", self.clustering, {"progressive", "plain"})
        check_choice("train_on", self.train_on, {"beam", "best"})
        return check_int("n_iter", self.n_iter, low=1)

    def _training_subsample(self, X, rng):
        cap = self.max_train_points
        if cap is None:
            cap = self.codebook_size * (self.max_points_per_centroid or X.shape[0])
        cap = check_int("max_train_points", cap, low=self.codebook_size)
        if X.shape[0] > cap:
            X = X[np.sort(rng.choice(X.shape[0], cap, replace=False))]
        return X

    def fit(self, X, y=None):
        X = self._validate_fit(X)
        n_iter = self._check_rq_params()
        rng = check_random_state(self.random_state)
        Xt = self._training_subsample(X, rng)
        self.n_train_ = Xt.shape[0]
        self.codebooks_, codes = self._train_stages(Xt, n_iter, rng, return_codes=True)
        # the training loop's last beam step already found the codes encode would give (the
        # best path of the same search with the final codebooks): no second encoding
        self.stage_errors_ = self._blocked_stage_errors(Xt, codes)
        return self

    def _train_stages(self, X, n_iter, rng, beam_size=None, *, return_codes=False):
        """:func:`train_stages` with this quantizer's settings: the codebooks (M, K, d); with
        ``return_codes``, also the codes (n, M) of X's best path through them."""
        books, self.n_repairs_, codes = train_stages(
            X, self.n_codebooks, self.codebook_size, n_iter=n_iter, rng=rng,
            beam_size=beam_size or self.beam_size, train_on=self.train_on, clustering=self.clustering,
            init=self.init, max_points_per_centroid=self.max_points_per_centroid, return_codes=True,
        )
        return (books, codes) if return_codes else books

    def _encode(self, X):
        return beam_search_encode(X, self.codebooks_, self.beam_size)

    def _encode_cost(self):
        return beam_search_cost(self.n_codebooks, self.codebook_size, int(self.n_features_in_), self.beam_size)

    def _decode(self, codes):
        out = self.codebooks_[0][codes[:, 0]].copy()
        for m in range(1, self.n_codebooks):
            out += self.codebooks_[m][codes[:, m]]
        return out

    def faiss_string(self):
        return self._faiss_nbits("RQ{M}x{nbits}")
