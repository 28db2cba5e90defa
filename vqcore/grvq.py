"""Generalized residual vector quantization (GRVQ).

RQ learns codebook m once, on the residuals of stages 0..m-1, and never
revisits it. GRVQ keeps all M codebooks and improves them in turn: codebook m
is refitted on the *intermediate set* ``x - sum_{j != m} c_j(x)`` (what is left
once every other codebook's contribution is removed), the data are re-encoded
by beam search, and so on around the codebooks for several passes. One pass
from all-zero codebooks with a beam of 1 is plain RQ.

References
----------
S. Liu, J. Shao and H. Lu, "Generalized residual vector quantization for large
scale data", ICME 2015 (arXiv:1609.05345): the alternation, the transition
clustering (k-means in PCA space on a growing number of dimensions), the
multi-path (beam) encoding with the codebooks in descending order of variance,
and the three ways of handling the norm term of fast Euclidean search.
T. Zhang, C. Du and J. Wang, "Composite quantization for approximate nearest
neighbor search", ICML 2014: the constant inter-codebook term that
``norm="regularized"`` asks for.
"""

import itertools
import numbers

import numpy as np

from . import progress
from ._distances import sq_norms
from ._validation import check_choice, check_data, check_dim, check_int, check_random_state
from .exceptions import VQLensError
from .kmeans import kmeans_rng, progressive_dims, progressive_kmeans_rng
from .metrics import usage_stats
from .rq import RQ_START_SHARE, ResidualQuantizer, beam_search_encode, beam_step_chunked

NORMS = ("none", "float", "quantized", "regularized")

# rounds of (penalised codebook update, beam re-encoding) for norm="regularized"
_NORM_ROUNDS = 4


def codebook_variances(codebooks):
    """Variance of the codewords of each codebook, ``mean_k ||c_k - mean_k c_k||^2``.

    Parameters
    ----------
    codebooks : ndarray of shape (M, K, d)

    Returns
    -------
    variances : ndarray of shape (M,), float64
    """
    books = np.asarray(codebooks, dtype=np.float64)
    centred = books - books.mean(axis=1, keepdims=True)
    return np.einsum("mkd,mkd->m", centred, centred) / books.shape[1]


def penalised_beam_search(X, codebooks, beam_size, penalty, target):
    """Beam search for ``min ||x - sum_m c_m||^2 + penalty * (cross - target)^2``.

    ``cross = sum_{i != j} <c_i, c_j>`` is the cross term of the
    reconstruction's squared norm, the part of ``||x_hat||^2`` that the
    lookup tables of fast search cannot hold (composite quantization's
    constraint, Zhang et al. 2014; GRVQ's regularized norm, Liu et al. 2015).
    Paths are scored by the penalised objective at every stage, with the
    partial cross term compared to the share of ``target`` its pairs carry
    (``target * m (m + 1) / (M (M - 1))`` after stage m); at the last stage the
    score is the objective itself. ``penalty=0`` is :func:`vqcore.beam_search_encode`.

    Parameters
    ----------
    X : ndarray of shape (n, d), float32
    codebooks : ndarray of shape (M, K, d)
    beam_size : int
    penalty : float
        Weight of the squared deviation, in units of 1 / ||x||^2.
    target : float
        The constant the cross term is held to.

    Returns
    -------
    codes : ndarray of shape (n, M), int64
    """
    M, K, d = codebooks.shape
    n = X.shape[0]
    books = np.asarray(codebooks, dtype=np.float32)
    Cn = np.einsum("mkd,mkd->mk", books, books)
    pairs = max(1, M * (M - 1))
    out = np.empty((n, M), dtype=np.int64)
    step = max(1, (48 * 2**20) // (4 * max(1, beam_size) * (2 * K + 2 * d)))
    for a in range(0, n, step):
        x = X[a:a + step]
        c = x.shape[0]
        rows = np.arange(c)[:, None]
        R = x[:, None, :].copy()
        err = np.einsum("cbd,cbd->cb", R, R)
        cross = np.zeros((c, 1))
        codes = np.empty((c, 1, 0), dtype=np.int64)
        for m in range(M):
            B = R.shape[1]
            RC = (R.reshape(c * B, d) @ books[m].T).reshape(c, B, K)
            XC = x @ books[m].T
            new_err = err[:, :, None] - 2.0 * RC + Cn[m]
            # <S, c> with S = x - r the sum of the path's codewords so far
            new_cross = cross[:, :, None] + 2.0 * (XC[:, None, :] - RC)
            dev = new_cross - target * (m * (m + 1)) / pairs
            score = (new_err + penalty * dev * dev).reshape(c, B * K)
            B_out = min(beam_size, B * K)
            if B_out == 1:
                sel = np.argmin(score, axis=1)[:, None]
            else:
                part = np.argpartition(score, B_out - 1, axis=1)[:, :B_out]
                order = np.argsort(np.take_along_axis(score, part, axis=1), axis=1, kind="stable")
                sel = np.take_along_axis(part, order, axis=1)
            b, k = np.divmod(sel, K)
            R = R[rows, b] - books[m][k]
            err = np.einsum("cbd,cbd->cb", R, R)
            cross = new_cross.reshape(c, B * K)[rows, sel]
            codes = np.concatenate([codes[rows, b], k[:, :, None]], axis=2)
        out[a:a + step] = codes[:, 0, :]
    return out


def _start_state(X):
    """Beam state before stage 0: one path per row, the row itself as residual."""
    R = X[:, None, :].copy()
    return R, np.einsum("cbd,cbd->cb", R, R), np.empty((X.shape[0], 1, 0), dtype=np.int64)


class GeneralizedResidualQuantizer(ResidualQuantizer):
    """Generalized residual vector quantization (Liu, Shao & Lu, ICME 2015).

    An additive quantizer, like RQ: the reconstruction is the sum of one
    codeword from each of M full-dimensional codebooks, and codes are found by
    beam search over the codebooks in order. Training starts from all-zero
    codebooks (``init="zeros"``, as in the paper) or from a fitted RQ
    (``init="rq"``, the default), then makes ``n_passes`` passes; in each pass every
    codebook m in turn is

    1. refitted on the intermediate set ``e = x - sum_{j != m} c_j(x)``: an
       all-zero codebook by transition clustering
       (:func:`vqcore.kmeans.progressive_kmeans`: k-means++ and Lloyd in the
       PCA space of e on the first ``dims[0]`` dimensions, warm-started on
       more and more of them up to d, rotated back); a trained codebook by
       transition clustering started from its projection into the PCA space
       of e (``refit="transition"``, the paper's improved transition
       clustering), or by Lloyd iterations in all d dimensions started from
       itself (``refit="warm"``);
    2. kept only if it lowers the mean error with the other codes fixed;
    3. followed by a beam-search re-encoding that starts from the saved beam
       of stages 0..m-1 (they did not change, as the paper notes), and each
       row keeps the better of its old tuple (with code m re-picked) and the
       new one.

    So no pass raises the training error. After each pass the codebooks are
    put in descending order of codeword variance, the order in which beam
    search works best. One pass from zeros (``init="zeros", n_passes=1``)
    with ``beam_size=1`` is exactly :class:`~vqcore.ResidualQuantizer` with
    the same seed (progressive clustering), codebooks and codes alike.

    Fast Euclidean search (asymmetric distance) needs
    ``||q - x_hat||^2 = ||q||^2 - 2 <q, x_hat> + ||x_hat||^2``; the inner
    product comes from M lookup tables, but ``||x_hat||^2`` holds the cross
    terms between codebooks. The paper's three choices are offered by
    ``norm`` (any error in the norm is an error in the distance):

    - ``"none"``: nothing stored; the search computes the norm from the codes
      (M(M-1)/2 more lookups per vector in a table of codeword dot products).
      0 bits, no error.
    - ``"float"``: ``||x_hat||^2`` stored as a float32 per vector. 32 bits,
      error at float32 rounding.
    - ``"quantized"``: ``||x_hat||^2`` stored with ``norm_bits`` bits by a
      uniform scalar quantizer between the training minimum and maximum
      (faiss's ``_Nqint8``). ``norm_bits`` bits, error up to half a step.
    - ``"regularized"``: after the passes, a few rounds of penalised beam
      re-encoding and penalised codebook updates, with the penalty raised
      gradually, keep the cross term ``sum_{i != j} <c_i, c_j>`` near a
      constant (composite quantization, Zhang et al. 2014); :meth:`encode`
      searches with the same penalty (:func:`penalised_beam_search`), and
      the search uses ``sum_m ||c_m||^2`` (folded into the lookup tables)
      plus that constant. 0 bits; costs reconstruction error
      (``norm_mse_cost_``) and leaves a norm error.

    :attr:`bits_per_vector` counts the norm's bits with the codes'.

    Parameters
    ----------
    n_codebooks : int, default=8
        M.
    codebook_size : int, default=256
        K, from 2 to 65536.
    beam_size : int, default=4
        Beam of the multi-path encoding, in training and in :meth:`encode`.
    n_passes : int, default=3
        Passes over the M codebooks (each refits every codebook once).
    init : {"rq", "zeros"}, default="rq"
        Start from a :class:`~vqcore.ResidualQuantizer` trained with the same
        beam (progressive clustering, trained on every path of the beam), or
        from all-zero codebooks as in the paper (the first pass is then an RQ
        trained on the best path only). "rq" costs one RQ fit more and, on
        SIFT10K and MiniLM, ends lower, also on held-out data.
    refit : {"warm", "transition"}, default="warm"
        How a trained codebook is refitted. "transition" is the paper's:
        the codebook is projected into the PCA space of the intermediate
        set and transition clustering starts from it on the first
        ``dims[0]`` dimensions; "warm" continues Lloyd from the codebook in
        all d dimensions at once. On 8,000 learn rows at 4x6, beam 4, 3
        passes, held-out mse transition / warm: MiniLM 0.997, SIFT 1.001.
    dims : sequence of int or None, default=None
        The dimension-increasing sequence of the transition clustering, each
        in [1, d], strictly increasing; d is appended if missing. None is
        :func:`vqcore.kmeans.progressive_dims` (10 steps).
    n_iter : int, default=10
        Lloyd iterations per dimension step.
    norm : {"none", "float", "quantized", "regularized"}, default="none"
        How the norm term of fast Euclidean search is provided (see above).
    norm_bits : int, default=8
        Bits of the quantized norm (``norm="quantized"``), 1 to 16.
    norm_reg : float, default=1.0
        Final weight of the penalty for ``norm="regularized"``, relative to
        the mean squared norm of the centred data: the penalty per vector is
        ``norm_reg * (cross - constant)^2 / mean ||x - mean_||^2``.
    max_points_per_centroid : int or None, default=256
    max_train_points : int or None, default=None
        Rows used to learn the codebooks, as in ResidualQuantizer (None:
        ``codebook_size * max_points_per_centroid``).
    random_state : int, Generator or None

    Attributes
    ----------
    codebooks_ : ndarray of shape (M, K, d), float32
        In descending order of codeword variance, in centred coordinates: a
        reconstruction is ``mean_ + sum_m codebooks_[m, k_m]``.
    mean_ : ndarray of shape (d,), float32
        Mean of the training data (:mod:`vqcore.base`); a search centres the
        query, so the norm term is that of the centred reconstruction.
    codebook_variances_ : ndarray of shape (M,)
        ``mean_k ||c_k - mean_k c_k||^2`` of each codebook (descending).
    dims_ : list of int
        The dimension sequence used.
    init_error_ : float
        Training mse before the first pass (``mean ||x||^2`` from zeros).
    pass_errors_ : list of float
        Training mse of the kept codes after each pass (non-increasing).
    pass_entropies_ : list of ndarray of shape (M,)
        Entropy in bits of each code position after each pass (positions in
        the order after that pass's reordering).
    n_rejected_ : int
        Refits that would have raised the error and were not kept.
    stage_errors_ : ndarray of shape (M,)
        Training mse after each stage, from :meth:`encode`.
    norm_bits_ : int
        Extra bits per vector for the norm term (32, ``norm_bits`` or 0).
    norm_error_ : float
        Mean absolute error of :meth:`adc_norms` on the training set, in the
        units of ``||x||^2``.
    norm_mse_cost_ : float
        Training mse added by the norm option (only "regularized" adds any:
        its penalised codebook updates against the same updates without the
        penalty).
    norm_range_ : tuple of float or None
        (min, max) of the quantized norm, for ``norm="quantized"``.
    norm_constant_ : float or None
        The cross-term constant, for ``norm="regularized"``.
    norm_penalty_, norm_target_ : float
        The penalty weight (absolute) and cross-term target the encoding's
        beam search uses for ``norm="regularized"`` (0 and None otherwise).
    base_codebooks_ : ndarray of shape (M, K, d), float32
        The codebooks the passes ended with, before any norm regularisation
        (the same array as ``codebooks_`` for the other norms);
        :meth:`fit_norm` starts from them.
    partial_fit_kept_ : bool
        Set by :meth:`partial_fit`: whether its codebooks were kept.
    n_train_, n_repairs_ : int

    Notes
    -----
    faiss has no GRVQ, so :meth:`faiss_string` is None; the nearest faiss
    quantizer is its residual quantizer ``RQ{M}x{nbits}`` (same code layout
    and decoder, codebooks trained once, stage by stage), which would not
    reproduce these codebooks. :meth:`encode` runs a plain beam search;
    the codes kept during training (each row keeps its best tuple found so
    far) can be better, markedly so with ``beam_size=1``: greedy search
    suits jointly refined codebooks poorly, so use a beam.

    References
    ----------
    S. Liu, J. Shao and H. Lu, "Generalized residual vector quantization for
    large scale data", ICME 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from vqcore import GeneralizedResidualQuantizer
    >>> X = np.random.default_rng(0).normal(size=(1000, 8)).astype("float32")
    >>> q = GeneralizedResidualQuantizer(n_codebooks=3, codebook_size=16, n_passes=2,
    ...                                  random_state=0).fit(X)
    >>> bool(q.pass_errors_[-1] <= q.pass_errors_[0] < q.init_error_)
    True
    >>> q.spec(), q.faiss_string()
    ('GRVQ3x4_b4', None)
    """

    method = "GRVQ"
    additive = True

    def __init__(
        self,
        n_codebooks=8,
        codebook_size=256,
        *,
        beam_size=4,
        n_passes=3,
        init="rq",
        refit="warm",
        dims=None,
        n_iter=10,
        norm="none",
        norm_bits=8,
        norm_reg=1.0,
        max_points_per_centroid=256,
        max_train_points=None,
        random_state=None,
    ):
        self.n_codebooks = n_codebooks
        self.codebook_size = codebook_size
        self.beam_size = beam_size
        self.n_passes = n_passes
        self.init = init
        self.refit = refit
        self.dims = dims
        self.n_iter = n_iter
        self.norm = norm
        self.norm_bits = norm_bits
        self.norm_reg = norm_reg
        self.max_points_per_centroid = max_points_per_centroid
        self.max_train_points = max_train_points
        self.random_state = random_state

    @property
    def bits_per_vector(self):
        """Bits of the codes plus those of the stored norm (32 for "float", ``norm_bits``
        for "quantized", 0 otherwise): what a vector costs in a search index."""
        extra = {"float": 32, "quantized": self.norm_bits}.get(self.norm, 0)
        return float(self.n_codebooks * np.log2(self.codebook_size) + extra)

    # ------------------------------------------------------------ validation
    def _check_grvq_params(self, d):
        check_int("beam_size", self.beam_size, low=1, high=1024)
        check_int("n_passes", self.n_passes, low=1)
        check_choice("init", self.init, {"zeros", "rq"})
        check_choice("refit", self.refit, {"warm", "transition"})
        check_int("n_iter", self.n_iter, low=1)
        check_choice("norm", self.norm, set(NORMS))
        check_int("norm_bits", self.norm_bits, low=1, high=16)
        reg = self.norm_reg
        if isinstance(reg, bool) or not isinstance(reg, numbers.Real) or not np.isfinite(reg) or reg <= 0:
            raise VQLensError(f"norm_reg={reg!r} should be a positive number.")
        self.dims_ = self._check_dims(d)

    def _check_dims(self, d):
        if self.dims is None:
            return progressive_dims(d)
        try:
            dims = [check_int("dims", v, low=1, high=d) for v in self.dims]
        except TypeError:
            raise VQLensError(f"dims={self.dims!r} should be a sequence of integers or None.") from None
        except VQLensError:
            raise VQLensError(
                f"dims={self.dims!r} should hold integers between 1 and n_features={d}."
            ) from None
        if not dims or any(b <= a for a, b in itertools.pairwise(dims)):
            raise VQLensError(f"dims={self.dims!r} should be a non-empty, strictly increasing sequence.")
        return dims if dims[-1] == d else dims + [d]

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Learn the codebooks from X (n, d); returns self."""
        X = self._validate_fit(X)
        self._check_grvq_params(X.shape[1])
        rng = check_random_state(self.random_state)
        Xt = self._training_subsample(X, rng)
        self.n_train_ = Xt.shape[0]
        self.n_repairs_ = 0
        M, K, d = self.n_codebooks, self.codebook_size, X.shape[1]
        if self.init == "rq":
            rq = ResidualQuantizer(
                M, K, beam_size=self.beam_size, clustering="progressive", n_iter=self.n_iter,
                max_points_per_centroid=self.max_points_per_centroid,
            )
            with progress.part(0.0, RQ_START_SHARE, "RQ start: "):
                books = rq._train_stages(Xt, self.n_iter, rng)
            self.n_repairs_ += rq.n_repairs_
        else:
            books = np.zeros((M, K, d), dtype=np.float32)
        with progress.part(RQ_START_SHARE if self.init == "rq" else 0.0, 1.0):
            books = self._train(Xt, books, self.n_passes, rng)
        base = books
        books, cost = self._norm_books(Xt, base)
        self._set_fitted(Xt, books, cost, base)
        self._rng = rng
        return self

    def partial_fit(self, X, y=None):
        """Re-optimise the codebooks on new data X, starting from the current ones.

        Runs ``n_passes`` passes on X (subsampled as in :meth:`fit`), every
        refit warm-started from the current codebook, and keeps the result
        only if it lowers the mse of :meth:`encode` on the rows it trained on
        (otherwise the codebooks are left as they were; ``partial_fit_kept_``
        says which). With ``norm="regularized"`` the comparison is made after
        the regularisation. ``init_error_``,
        ``pass_errors_`` and ``pass_entropies_`` then describe this call. On
        an unfitted quantizer this is :meth:`fit`.

        Returns
        -------
        self
        """
        if not hasattr(self, "codebooks_"):
            return self.fit(X)
        X = check_data(X)
        check_dim(X, self.n_features_in_)
        X = self._validate_fit(X, mean="keep")
        self._check_grvq_params(X.shape[1])
        rng = self._rng
        Xt = self._training_subsample(X, rng)
        old, old_base = self.codebooks_.copy(), self._base_books().copy()
        old_search = self._fitted_search()
        old_err = self._mse_books(Xt, old, old_search)
        new_base = self._train(Xt, old_base.copy(), self.n_passes, rng)
        new, cost = self._norm_books(Xt, new_base)
        self.partial_fit_kept_ = bool(self._mse_books(Xt, new, self._norm_search) <= old_err)
        if self.partial_fit_kept_:
            self._set_fitted(Xt, new, cost, new_base)
        else:
            self._norm_search = old_search
            self._set_fitted(Xt, old, self.norm_mse_cost_, old_base)
        return self

    def fit_norm(self, X):
        """Refit only the norm term, for the current ``norm``, on rows X.

        Lets the options be compared on one trained quantizer: after
        ``set_params(norm=...)`` this sets the norm attributes; for
        "regularized" it also refits the codebooks with the penalty, starting
        from the codebooks the passes ended with (``base_codebooks_``), so
        codes and stage errors follow. The codebooks of "none", "float" and
        "quantized" are ``base_codebooks_``, those :meth:`fit` gives with the
        same seed, whatever norm was fitted before.

        Returns
        -------
        self
        """
        self._check_fitted()
        X = check_data(X)
        check_dim(X, self.n_features_in_)
        self._check_grvq_params(X.shape[1])
        X = self._centre(X)
        base = self._base_books()
        books, cost = self._norm_books(X, base.copy())
        self._set_fitted(X, books, cost, base)
        return self

    def norm_options(self, X):
        """What each way of providing the norm term costs in bits and buys in error, on rows X.

        Each option of ``norm`` is fitted on a copy of this quantizer with
        :meth:`fit_norm` (the same trained codebooks; "regularized" refits
        them with its penalty), then measured on X.

        Returns
        -------
        list of dict, one per option
            ``norm``, ``bits_per_vector`` (codes and norm), ``norm_bits``,
            ``mse`` and ``relative`` (reconstruction error of X),
            ``norm_error`` (mean absolute error of the search's norm term on
            X, in units of ``||x||^2``) and ``relative_norm_error`` (over
            the mean squared norm of the centred reconstructions).
        """
        import copy

        from .metrics import reconstruction_error

        self._check_fitted()
        X = check_data(X)
        check_dim(X, self.n_features_in_)
        out = []
        for norm in NORMS:
            q = copy.deepcopy(self).set_params(norm=norm).fit_norm(X)
            codes = q.encode(X)
            rec = reconstruction_error(X, q.decode(codes))
            exact = q._exact_norms(codes)
            err = float(np.mean(np.abs(q._adc_norms(codes) - exact)))
            out.append({"norm": norm, "bits_per_vector": q.bits_per_vector, "norm_bits": int(q.norm_bits_),
                        "mse": float(rec["mse"]), "relative": float(rec["relative"]), "norm_error": err,
                        "relative_norm_error": err / max(float(exact.mean()), 1e-30)})
        return out

    def _base_books(self):
        """The codebooks before any norm regularisation (``codebooks_`` for a quantizer
        built from codebooks, which has no ``base_codebooks_``)."""
        base = getattr(self, "base_codebooks_", None)
        return self.codebooks_ if base is None else base

    def _mse_books(self, X, books, search=None):
        codes = self._search(X, books, search)
        R = X.copy()
        for m in range(books.shape[0]):
            R -= books[m][codes[:, m]]
        return float(np.einsum("ij,ij->", R, R, dtype=np.float64) / X.shape[0])

    # ------------------------------------------------------------- training
    def _train(self, X, books, n_passes, rng):
        """The GRVQ passes from ``books``; sets the pass records, returns the books."""
        M, K = books.shape[:2]
        state0 = _start_state(X)
        codes, R, err, _ = self._encode_from(state0, books, 0)
        self.init_error_ = float(err.mean(dtype=np.float64))
        self.pass_errors_, self.pass_entropies_ = [], []
        self.n_rejected_ = 0
        for p in range(n_passes):
            progress.report(p / n_passes, f"pass {p + 1} of {n_passes}")
            prefix, at = state0, 0
            for m in range(M):
                while at < m:  # beam state before stage m (stages < m did not change)
                    prefix = self._step(prefix, books[at])
                    at += 1
                E = R + books[m][codes[:, m]]
                cand = self._refit(E, books[m], rng)
                E3 = E[:, None, :]
                RA, errA, kA = beam_step_chunked(
                    E3, np.einsum("cbd,cbd->cb", E3, E3), np.empty((X.shape[0], 1, 0), dtype=np.int64),
                    cand, sq_norms(cand), 1,
                )
                errA = errA[:, 0]
                if errA.mean(dtype=np.float64) > err.mean(dtype=np.float64):
                    self.n_rejected_ += 1
                    continue
                books[m] = cand
                codesB, RB, errB, prefix = self._encode_from(prefix, books, m)
                at = m + 1
                useA = errA < errB
                codesB[useA] = codes[useA]
                codesB[useA, m] = kA[useA, 0, 0]
                codes, err = codesB, np.where(useA, errA, errB)
                R = np.where(useA[:, None], RA[:, 0, :], RB)
            order = np.argsort(-codebook_variances(books), kind="stable")
            books, codes = books[order], codes[:, order]
            self.pass_errors_.append(float(err.mean(dtype=np.float64)))
            self.pass_entropies_.append(usage_stats(codes, K)["entropy_bits"])
        return books

    def _refit(self, E, C, rng):
        """A new codebook for the intermediate set E, given the current one C."""
        K, mppc = self.codebook_size, self.max_points_per_centroid
        trained = bool(C.any())
        if self.refit == "warm" and trained:
            res = kmeans_rng(E, K, self.n_iter, "k-means++", mppc, C, rng, warn=False)
        else:
            # transition clustering; a trained codebook is projected into E's PCA space and
            # the clustering starts there (the paper), an all-zero one from k-means++
            res = progressive_kmeans_rng(E, K, self.dims_, self.n_iter, mppc, rng,
                                      init_centroids=C if trained else None)
        self.n_repairs_ += res.n_repairs
        return res.centroids

    def _step(self, state, C):
        """One beam-search stage with codebook C; an all-zero C adds code 0 to every path."""
        R, err, codes = state
        if not C.any():
            return R, err, np.concatenate([codes, np.zeros(codes.shape[:2] + (1,), codes.dtype)], axis=2)
        B_out = min(self.beam_size, R.shape[1] * C.shape[0])
        return beam_step_chunked(R, err, codes, C, sq_norms(C), B_out)

    def _encode_from(self, state, books, m):
        """Beam search over stages m..M-1 from the beam state before stage m.

        Returns the best path's codes (n, M), residual (n, d) and squared
        error (n,), and the beam state after stage m (the next prefix).
        """
        after_m = None
        for j in range(m, books.shape[0]):
            state = self._step(state, books[j])
            if j == m:
                after_m = state
        R, err, codes = state
        return codes[:, 0, :].copy(), R[:, 0, :], err[:, 0], after_m

    # --------------------------------------------------------- finishing
    def _norm_books(self, X, books):
        """Apply norm="regularized" to trained books; returns (books, training mse added).

        The added mse is measured against the same rounds of updates without
        the penalty (which lower the error by themselves: they refit every
        codebook to the final codes), so that it is the price of the penalty.
        """
        self._norm_search = None
        if self.norm != "regularized":
            return books, 0.0
        reference = self._mse_books(X, self._regularize_norms(X, books, 0.0)[0])
        books, search = self._regularize_norms(X, books, float(self.norm_reg))
        self._norm_search = search
        return books, self._mse_books(X, books, search) - reference

    def _set_fitted(self, X, books, norm_mse_cost, base):
        """Final order and fitted attributes, from the (centred) training rows X."""
        def ordered(b):
            b = np.asarray(b, dtype=np.float32)
            return np.ascontiguousarray(b[np.argsort(-codebook_variances(b), kind="stable")])

        self.codebooks_ = ordered(books)
        self.base_codebooks_ = self.codebooks_ if base is books else ordered(base)
        self.codebook_variances_ = codebook_variances(self.codebooks_)
        search = getattr(self, "_norm_search", None) or (0.0, None)
        self.norm_penalty_, self.norm_target_ = float(search[0]), search[1]
        codes = self._encode(X)
        self.stage_errors_ = self._stage_errors(X, codes)
        self.norm_mse_cost_ = float(norm_mse_cost)
        self._fit_norm(codes)

    def _search(self, X, books, search):
        """Beam search, penalised (``search = (penalty, target)``) for the regularized norm."""
        if search is None or search[0] == 0:
            return beam_search_encode(X, books, self.beam_size)
        return penalised_beam_search(X, books, self.beam_size, *search)

    def _encode_cost(self):
        """The beam search as RQ's; with the regularized norm's penalty, each stage also
        multiplies x by the codebook (``K d``) and scores the cross term (``3 P_m K``).
        GRVQ's passes cost only training time."""
        M, K, d = self.n_codebooks, self.codebook_size, int(self.n_features_in_)
        cost = super()._encode_cost()
        if self._fitted_search() is not None:
            paths = 1
            for _ in range(M):
                cost += K * d + 3 * paths * K
                paths = min(self.beam_size, paths * K)
        return cost

    def _fitted_search(self):
        """(penalty, target) of the fitted regularized norm, or None."""
        if self.norm != "regularized" or not getattr(self, "norm_penalty_", 0.0):
            return None
        return self.norm_penalty_, self.norm_target_

    def _encode(self, X):
        return self._search(X, self.codebooks_, self._fitted_search())

    def _exact_norms(self, codes):
        X_hat = self._decode(codes).astype(np.float64)
        return np.einsum("ij,ij->i", X_hat, X_hat)

    def _codeword_norms(self, codes):
        cn = sq_norms(self.codebooks_.reshape(-1, self.codebooks_.shape[2])).astype(np.float64)
        cn = cn.reshape(self.n_codebooks, self.codebook_size)
        return sum(cn[m][codes[:, m]] for m in range(self.n_codebooks))

    def _fit_norm(self, codes):
        exact = self._exact_norms(codes)
        self.norm_range_ = self.norm_constant_ = None
        if self.norm == "quantized":
            self.norm_range_ = (float(exact.min()), float(exact.max()))
        elif self.norm == "regularized":
            self.norm_constant_ = float(np.mean(exact - self._codeword_norms(codes)))
        self.norm_bits_ = {"none": 0, "float": 32, "quantized": int(self.norm_bits), "regularized": 0}[self.norm]
        self.norm_error_ = float(np.mean(np.abs(self._adc_norms(codes) - exact)))

    def adc_norms(self, codes):
        """The ``||x_hat||^2`` term a fast Euclidean search would use, per vector.

        ``"none"`` and ``"float"``: the exact norm (float32 for "float");
        ``"quantized"``: the norm rounded to one of ``2**norm_bits`` evenly
        spaced levels between the training min and max (values outside are
        clipped); ``"regularized"``: ``sum_m ||c_m(x)||^2 + norm_constant_``.

        Parameters
        ----------
        codes : ndarray of shape (n_samples, n_codebooks)

        Returns
        -------
        norms : ndarray of shape (n_samples,), float64
        """
        self._check_fitted()
        return self._adc_norms(self._validate_codes(codes))

    def _adc_norms(self, codes):
        if self.norm == "regularized":
            return self._codeword_norms(codes) + self.norm_constant_
        exact = self._exact_norms(codes)
        if self.norm == "float":
            return exact.astype(np.float32).astype(np.float64)
        if self.norm == "quantized":
            lo, hi = self.norm_range_
            levels = 2 ** int(self.norm_bits) - 1
            step = (hi - lo) / levels if hi > lo else 1.0
            q = np.clip(np.rint((exact - lo) / step), 0, levels)
            return lo + q * step
        return exact

    def _regularize_norms(self, X, books, weight):
        """Penalised codebook updates so that the cross term stays near a constant.

        With the codes fixed, codeword k of codebook m minimises
        ``sum_i ||e_i - c||^2 + lam * (2 <c, s_i> + t_i - eps)^2`` over its
        rows, where s_i is the sum of the row's other codewords, t_i their
        cross term and eps the mean cross term: a ridge-like linear system,
        solved in closed form (by the Woodbury identity when the cluster has
        fewer rows than dimensions). Alternates with a re-encoding by the
        beam search with the same penalty in its scores
        (:func:`penalised_beam_search`), the weight raised by equal steps to
        ``weight`` over the rounds, so the codes move towards the constraint
        gradually rather than at once.

        Returns
        -------
        books : ndarray of shape (M, K, d), float32
        search : (float, float)
            The final penalty (in units of 1 / ||x||^2) and the cross-term
            target, which :meth:`encode` uses.
        """
        books = books.astype(np.float64)
        mean_sq = float(np.einsum("ij,ij->", X, X, dtype=np.float64)) / X.shape[0]
        lam_final = weight / max(mean_sq, 1e-30)
        M, K, d = books.shape
        eps = None
        for rnd in range(_NORM_ROUNDS):
            lam = lam_final * (rnd + 1) / _NORM_ROUNDS
            b32 = books.astype(np.float32)
            if eps is None:  # the target starts at the mean cross term of the plain codes
                codes = beam_search_encode(X, b32, self.beam_size)
                eps = self._mean_cross(books, codes)
            codes = self._search(X, b32, (lam, eps))
            X_hat = sum(books[m][codes[:, m]] for m in range(M))
            cn = np.stack([np.einsum("kd,kd->k", books[m], books[m])[codes[:, m]] for m in range(M)], 1)
            for m in range(M):
                cm = books[m][codes[:, m]]
                S = X_hat - cm
                t = np.einsum("ij,ij->i", S, S) - (cn.sum(axis=1) - cn[:, m])
                eps = float(np.mean(2.0 * np.einsum("ij,ij->i", cm, S) + t))
                new = books[m].copy()
                order = np.argsort(codes[:, m], kind="stable")
                bounds = np.concatenate([[0], np.cumsum(np.bincount(codes[:, m], minlength=K))])
                for k in range(K):
                    rows = order[bounds[k]:bounds[k + 1]]
                    if rows.size == 0:
                        continue
                    Sk = S[rows]
                    r = (X[rows] - Sk).sum(axis=0) - 2.0 * lam * (Sk.T @ (t[rows] - eps))
                    a, beta = float(rows.size), 4.0 * lam
                    if rows.size < d:
                        inner = a * np.eye(rows.size) + beta * (Sk @ Sk.T)
                        new[k] = (r - beta * (Sk.T @ np.linalg.solve(inner, Sk @ r))) / a
                    else:
                        new[k] = np.linalg.solve(a * np.eye(d) + beta * (Sk.T @ Sk), r)
                X_hat += new[codes[:, m]] - cm
                cn[:, m] = np.einsum("kd,kd->k", new, new)[codes[:, m]]
                books[m] = new
            eps = float(np.mean(np.einsum("ij,ij->i", X_hat, X_hat) - cn.sum(axis=1)))
        return books.astype(np.float32), (lam_final, eps)

    @staticmethod
    def _mean_cross(books, codes):
        """Mean over rows of the cross term ``||sum_m c_m||^2 - sum_m ||c_m||^2``."""
        X_hat = sum(books[m][codes[:, m]] for m in range(books.shape[0]))
        cn = sum(np.einsum("kd,kd->k", books[m], books[m])[codes[:, m]] for m in range(books.shape[0]))
        return float(np.mean(np.einsum("ij,ij->i", X_hat, X_hat) - cn))

    def faiss_string(self):
        """None: faiss has no GRVQ (its ``RQ{M}x{nbits}`` has the same code layout but trains
        each stage once, so it is not this quantizer; a string naming it would say it was)."""
        return None
