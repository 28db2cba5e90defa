"""The norm term of fast Euclidean search for GRVQ: none, float, quantized or regularized.

Fast Euclidean search (asymmetric distance) needs
``||q - x_hat||^2 = ||q||^2 - 2 <q, x_hat> + ||x_hat||^2``; the inner product
comes from M lookup tables, but ``||x_hat||^2`` holds the cross terms between
codebooks. :class:`NormTermMixin` holds the four ways of providing it that
Liu, Shao & Lu (ICME 2015) compare, for
:class:`~vqcore.GeneralizedResidualQuantizer`: what it stores, the search's
norm (:meth:`~NormTermMixin.adc_norms`), the regularized norm's penalised
codebook updates (composite quantization's constraint, Zhang, Du & Wang,
ICML 2014), and what each option costs and buys
(:meth:`~NormTermMixin.norm_options`).
"""

import copy

import numpy as np

from .._distances import sq_norms
from .._validation import check_data, check_dim
from ..metrics import reconstruction_error
from ..rq import beam_search_encode

NORMS = ("none", "float", "quantized", "regularized")

# rounds of (penalised codebook update, beam re-encoding) for norm="regularized"
_NORM_ROUNDS = 4


class NormTermMixin:
    """The norm options of :class:`~vqcore.GeneralizedResidualQuantizer` (see its ``norm``).

    A mixin of the estimator: its methods read the fitted codebooks and
    parameters and call the estimator's beam search (``_search``), its
    stage errors and its ``_set_fitted``.
    """

    @property
    def bits_per_vector(self):
        """Bits of the codes plus those of the stored norm (32 for "float", ``norm_bits``
        for "quantized", 0 otherwise): what a vector costs in a search index."""
        extra = {"float": 32, "quantized": self.norm_bits}.get(self.norm, 0)
        return float(self.n_codebooks * np.log2(self.codebook_size) + extra)

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
        self.check_fitted()
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
        self.check_fitted()
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
        self.check_fitted()
        return self._adc_norms(self.validate_codes(codes))

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
