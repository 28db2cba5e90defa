"""The GRVQ estimator: its parameters, the fit (passes of codebook refits and beam re-encoding)
and partial_fit; the norm options are :mod:`vqcore.grvq.norms`, the encoders
:mod:`vqcore.grvq.encoders`."""

import itertools
import numbers
import warnings

import numpy as np

from .. import progress
from .._distances import sq_norms
from .._validation import check_choice, check_data, check_dim, check_int, check_random_state
from ..exceptions import VQLensError, VQLensWarning
from ..kmeans import kmeans_rng, progressive_dims, progressive_kmeans_rng
from ..metrics import usage_stats
from ..rq import RQ_START_SHARE, ResidualQuantizer, beam_search_encode, beam_step_chunked, train_stages
from .encoders import codebook_variances, penalised_beam_search, start_state
from .norms import NORMS, NormTermMixin


class GeneralizedResidualQuantizer(NormTermMixin, ResidualQuantizer):
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

    The passes run only on at least ``min_points_per_centroid`` training rows
    per codeword (39 by default, faiss's threshold for k-means): each refit
    clusters the intermediate set of the best path only, n rows for K
    codewords, whereas the RQ start clusters the residuals of every beam path.
    Below that the passes fit the training rows better and held-out rows
    worse, so the fit keeps the RQ start (one pass from zeros) and warns;
    ``n_passes_run_`` says how many ran. GRVQ4x8, beam 5, 3 passes, held-out
    mse relative to the RQ start (mean of seeds 0-2; MiniLM: learn rows,
    base set held out; SIFT: siftsmall base rows, BIGANN 10k held out):

    ==========  ==============  ==========  ==========  ==============
    set, rows   rows/codeword   1 pass      3 passes    training mse
    ==========  ==============  ==========  ==========  ==============
    MiniLM 5k   19.5            1.0086      1.0249      0.881
    SIFT 5k     19.5            1.0065      1.0110      0.791
    MiniLM 10k  39.1            0.9949      0.9987      0.924
    SIFT 10k    39.1            0.9939      0.9946      0.866
    MiniLM 20k  78.1            0.9834      0.9805      0.938
    ==========  ==============  ==========  ==========  ==============

    (training mse: after 3 passes, relative to the start.) Any threshold in
    (19.5, 39.1] separates these; 39 is the one faiss uses. The same table
    sets the default of one pass: on held-out rows it beats three at 39 rows
    per codeword on both sets, and gives up 0.3% at 78, for about a third of
    the passes' time (MiniLM, one seed, 2 threads: learn 10k 12.4 s against
    16.3 s, learn 20k 21.4 s against 29.6 s, fit + encoding the base set;
    bench/RESULTS.md, issue 20 item 4). More passes pay on larger training sets.

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
    n_passes : int, default=1
        Passes over the M codebooks (each refits every codebook once); see
        above for why one by default.
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
    min_points_per_centroid : int or None, default=39
        Fewest training rows per codeword (``n_train_ / codebook_size``) for
        the passes to run (see above); below it none run from the RQ start
        and one from zeros, with a :class:`~vqcore.VQLensWarning`. None runs
        ``n_passes`` on any training set.
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
    n_passes_run_ : int
        Passes run by :meth:`fit`: ``n_passes``, or 0 (1 from zeros) below
        ``min_points_per_centroid`` rows per codeword.
    fit_notes_ : list of str
        What the fit did otherwise than its settings say, in words (the warning
        it gave when it ran fewer passes than ``n_passes``); empty otherwise.
    init_error_ : float
        Training mse before the first pass (``mean ||x||^2`` from zeros).
    pass_errors_ : list of float
        Training mse of the kept codes after each pass run (non-increasing;
        empty when none ran).
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
        n_passes=1,
        init="rq",
        refit="warm",
        dims=None,
        n_iter=10,
        norm="none",
        norm_bits=8,
        norm_reg=1.0,
        max_points_per_centroid=256,
        min_points_per_centroid=39,
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
        self.min_points_per_centroid = min_points_per_centroid
        self.max_train_points = max_train_points
        self.random_state = random_state

    # ------------------------------------------------------------ validation
    def _check_grvq_params(self, d):
        check_int("beam_size", self.beam_size, low=1, high=1024)
        check_int("n_passes", self.n_passes, low=1)
        check_choice("init", self.init, {"zeros", "rq"})
        check_choice("refit", self.refit, {"warm", "transition"})
        check_int("n_iter", self.n_iter, low=1)
        if self.min_points_per_centroid is not None:
            check_int("min_points_per_centroid", self.min_points_per_centroid, low=1)
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
            with progress.part(0.0, RQ_START_SHARE, "RQ start: "):
                books, repairs, best = train_stages(
                    Xt, M, K, n_iter=self.n_iter, rng=rng, beam_size=self.beam_size, train_on="beam",
                    clustering="progressive", max_points_per_centroid=self.max_points_per_centroid,
                    return_best=True,
                )
            self.n_repairs_ += repairs
        else:
            books, best = np.zeros((M, K, d), dtype=np.float32), None
        self.fit_notes_ = []
        self.n_passes_run_ = self._passes_to_run(Xt.shape[0])
        with progress.part(RQ_START_SHARE if self.init == "rq" else 0.0, 1.0):
            books = self._train(Xt, books, self.n_passes_run_, rng, start=best)
        base = books
        books, cost = self._norm_books(Xt, base)
        self._set_fitted(Xt, books, cost, base)
        self._rng = rng
        return self

    def _passes_to_run(self, n_train):
        """``n_passes``, or none (one from zeros, which has no codebooks without it) when the
        training set has fewer than ``min_points_per_centroid`` rows per codeword; warns then."""
        K, low = self.codebook_size, self.min_points_per_centroid
        if low is None or n_train >= low * K:
            return self.n_passes
        run = 0 if self.init == "rq" else 1
        if run < self.n_passes:
            kept = "the RQ start" if run == 0 else "one pass (an RQ trained on the best path)"
            note = (
                f"GRVQ ran {run} of its n_passes={self.n_passes} refinement passes: the training set has "
                f"{n_train:,} rows, {n_train / K:.1f} per codeword, fewer than min_points_per_centroid={low}, "
                f"and refits on so few rows over-fit (the held-out error rises), so the fit keeps {kept}. "
                f"Train on at least {low * K:,} rows (or use smaller codebooks), or set "
                "min_points_per_centroid=None to run them anyway."
            )
            self.fit_notes_.append(note)
            warnings.warn(note, VQLensWarning, stacklevel=3)
        return run

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
    def _train(self, X, books, n_passes, rng, start=None):
        """The GRVQ passes from ``books``; sets the pass records, returns the books. ``start``
        is X's best path (codes, residuals, errors) through ``books`` when known already
        (the RQ start's last beam step found it): the beam search from scratch otherwise."""
        M, K = books.shape[:2]
        state0 = start_state(X)
        codes, R, err = start if start is not None else self._encode_from(state0, books, 0)[:3]
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

    def faiss_string(self):
        """None: faiss has no GRVQ (its ``RQ{M}x{nbits}`` has the same code layout but trains
        each stage once, so it is not this quantizer; a string naming it would say it was)."""
        return None
