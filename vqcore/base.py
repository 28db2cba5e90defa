"""The interface every quantizer shares (DESIGN.md, "vqcore contract").

A quantizer follows the scikit-learn estimator conventions: ``__init__`` only
stores parameters, ``fit`` validates and sets attributes ending in ``_``, and
``encode`` / ``decode`` check that it was fitted. Codes are (n, M) arrays in
the smallest unsigned dtype that holds K codes; reconstructions are float32.

Every quantizer centres the data: ``fit`` learns the mean ``mean_`` of X,
the codebooks are learned on ``X - mean_`` and kept in those centred
coordinates, ``encode`` quantizes ``X - mean_`` and ``decode`` adds
``mean_`` back. A constant shift of the data then changes nothing (float32
distances far from the origin would otherwise lose their digits). A
quantizer built from trained codebooks may leave ``mean_`` unset or None:
it then means zero (the codebooks are in the data's own coordinates).
"""

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from . import progress
from ._validation import check_codes, check_data, check_dim, check_int, code_dtype
from .exceptions import DataError, VQLensError

MAX_CODEBOOK_SIZE = 65536
# encode works through at most this many rows at a time: bounded memory, and a
# progress report (vqcore.progress) after each block of a long encoding
ENCODE_BLOCK_ROWS = 16384


class BaseQuantizer(BaseEstimator):
    """Shared validation, encode/decode plumbing, spec strings and stage errors.

    Subclasses set ``method`` (the spec prefix), ``additive`` (True when the
    reconstruction is a sum of M full-dimensional codewords, so that
    ``codebooks_`` has shape (M, K, d)), and implement ``fit``, ``_encode``
    (float32 X -> int codes) and ``_decode`` (validated codes -> X_hat).
    """

    method = "?"
    additive = True

    # ----------------------------------------------------------- validation
    def _validate_fit(self, X, *, mean="fit"):
        """Validate X for fitting; return it centred.

        ``mean="fit"`` learns ``mean_`` from X first; ``"keep"`` centres with
        the current ``mean_`` (refits that continue from fitted codebooks).
        """
        K = check_int("codebook_size", self.codebook_size, low=2, high=MAX_CODEBOOK_SIZE)
        check_int("n_codebooks", self.n_codebooks, low=1, high=256)
        X = check_data(X)
        from .spec import fit_problem  # spec.py imports the quantizers, which import this module

        problem = fit_problem(self.method, self.n_codebooks, K, n_samples=X.shape[0])
        if problem:
            raise VQLensError(problem)
        self.n_features_in_ = X.shape[1]
        if mean == "fit":
            self.mean_ = X.mean(axis=0, dtype=np.float64).astype(np.float32)
        return self._centre(X)

    def _mean(self):
        """``mean_`` as float32, or None where it is unset, None or all zero (no centring)."""
        mean = getattr(self, "mean_", None)
        if mean is None:
            return None
        mean = np.asarray(mean, dtype=np.float32)
        return mean if mean.any() else None

    def centred(self, X):
        """X in the coordinates of ``codebooks_``: ``X - mean_`` (X itself without a mean).

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)

        Returns
        -------
        Xc : ndarray of shape (n_samples, n_features), float32
        """
        self.check_fitted()
        X = check_data(X, min_rows=0)
        check_dim(X, self.n_features_in_)
        return self._centre(X)

    def _centre(self, X):
        """``X - mean_`` (a new float32 array), or X itself when there is no mean."""
        mean = self._mean()
        return X if mean is None else np.subtract(X, mean, dtype=np.float32)

    def check_fitted(self):
        """Raise unless the quantizer has been fitted (or built from trained codebooks).

        Every public method that needs ``codebooks_`` calls this first, and so
        do the functions of other modules that take a fitted quantizer
        (:func:`vqcore.report.beam_sweep`, :func:`vqcore.pipeline.report_dataset`,
        the exports of :mod:`vqcore.export` and :mod:`vqcore.models.native`).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            No ``codebooks_`` yet; the message says to call ``fit``.
        """
        if not hasattr(self, "codebooks_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' "
                "with appropriate arguments before using this quantizer."
            )

    def validate_codes(self, codes):
        """Codes checked against this quantizer's M and K, as indices ready for lookups.

        The shape must be (n, n_codebooks); the values go through the one
        check of code arrays (:func:`vqcore._validation.check_codes`) with
        ``codebook_size``. Zero rows are accepted.

        Parameters
        ----------
        codes : array-like of shape (n_samples, n_codebooks)
            Integer codes in ``0..codebook_size - 1``.

        Returns
        -------
        codes : ndarray of shape (n_samples, n_codebooks), intp

        Raises
        ------
        DataError
            Another number of columns, or values that are not codes of a
            codebook of size K (the message names the column and value).
        """
        codes = np.asarray(codes)
        M = self.n_codebooks
        if codes.ndim != 2 or codes.shape[1] != M:
            raise DataError(f"codes should have shape (n, {M}), got shape {codes.shape}.")
        codes, _ = check_codes(codes, self.codebook_size, min_rows=0)
        return codes.astype(np.intp, copy=False)

    # -------------------------------------------------------------- contract
    def encode(self, X):
        """Codes of X.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)

        Returns
        -------
        codes : ndarray of shape (n_samples, n_codebooks), unsigned int
        """
        self.check_fitted()
        X = check_data(X, min_rows=0)
        check_dim(X, self.n_features_in_)
        n = X.shape[0]
        dtype = code_dtype(self.codebook_size)
        if n <= ENCODE_BLOCK_ROWS:
            if not n:
                return np.empty((0, self.n_codebooks), dtype)
            return self._encode(self._centre(X)).astype(dtype, copy=False)
        codes = np.empty((n, self.n_codebooks), dtype=dtype)
        for a in range(0, n, ENCODE_BLOCK_ROWS):
            b = min(n, a + ENCODE_BLOCK_ROWS)
            progress.report(a / n, f"encoding rows {a + 1:,}-{b:,} of {n:,}")
            codes[a:b] = self._encode(self._centre(X[a:b]))
        return codes

    def decode(self, codes):
        """Reconstruction from codes.

        Parameters
        ----------
        codes : ndarray of shape (n_samples, n_codebooks), integers in [0, K)

        Returns
        -------
        X_hat : ndarray of shape (n_samples, n_features), float32
        """
        self.check_fitted()
        codes = self.validate_codes(codes)
        X_hat = np.ascontiguousarray(self._decode(codes), dtype=np.float32)
        mean = self._mean()
        if mean is not None:
            X_hat += mean
        return X_hat

    def fit_encode(self, X):
        return self.fit(X).encode(X)

    # ------------------------------------------------------------ reporting
    @property
    def bits_per_vector(self):
        return float(self.n_codebooks * np.log2(self.codebook_size))

    def codebook_bytes(self):
        """Bytes of what the decoder (and a search) must hold: the codebooks, the mean and,
        for OPQ, the rotation, as stored (float32)."""
        self.check_fitted()
        total = np.asarray(self.codebooks_).nbytes
        for name in ("mean_", "rotation_"):
            value = getattr(self, name, None)
            if value is not None:
                total += np.asarray(value, dtype=np.float32).nbytes
        return int(total)

    def encode_cost(self):
        """Multiply-adds to encode one vector, worked out from the method's structure.

        The distance products dominate (``K d`` per codebook searched over the
        whole dimension); beam bookkeeping, table look-ups and residual
        updates are counted as one multiply-add per value computed.
        Comparisons (argmin, the beam's selection) are not counted.

        Returns
        -------
        madds : int
        """
        self.check_fitted()
        return int(self._encode_cost())

    def _encode_cost(self):
        # one nearest-codeword search of K codewords per codebook over its d_m dimensions
        return int(self.codebook_size) * int(self.n_features_in_)

    def _nbits(self):
        K = int(self.codebook_size)
        return K.bit_length() - 1 if K & (K - 1) == 0 else None

    def spec(self):
        """Short spec in the faiss style: ``RQ8x8`` = 8 codebooks of 2^8 codes.

        K that is not a power of two is written ``K<size>`` (``VQ1xK300``); a
        beam wider than 1 is appended as ``_b<beam>`` (``RQ8x8_b5``).
        """
        from .spec import format_spec  # spec.py imports the quantizers, which import this module

        return format_spec(self.method, self.n_codebooks, self.codebook_size, getattr(self, "beam_size", 1))

    def _faiss_nbits(self, template):
        nbits = self._nbits()
        if nbits is None:
            return None
        return template.format(M=self.n_codebooks, nbits=nbits, d=getattr(self, "n_features_in_", "d"))

    def faiss_string(self):
        """The nearest faiss ``index_factory`` string, or None if faiss has none.

        faiss's quantizers do not centre the data: the same codebooks serve
        there once ``mean_`` is subtracted from the vectors (and added back
        to reconstructions), since vqcore's codebooks are centred on it."""
        raise NotImplementedError

    # --------------------------------------------------------- stage errors
    def stage_errors(self, X, codes=None):
        """Mean squared error after each stage.

        For additive quantizers (VQ, RQ, AQ) entry m is
        ``mean_i ||x_i - sum_{j<=m} c_j(x_i)||^2``; for product quantizers
        (PQ, OPQ) it is the error in subspace m alone (they sum to the mse).

        Returns
        -------
        errors : ndarray of shape (n_codebooks,), float64
        """
        self.check_fitted()
        X = check_data(X)
        check_dim(X, self.n_features_in_)
        if codes is not None:
            codes = self.validate_codes(codes)
            if codes.shape[0] != X.shape[0]:
                raise DataError(
                    f"codes has {codes.shape[0]} rows but X has {X.shape[0]}; pass the codes of X."
                )
        return self._blocked_stage_errors(X, codes, centre=True)

    def _blocked_stage_errors(self, X, codes=None, block=65536, *, centre=False):
        """Stage errors over row blocks (encoding them when codes is None), so
        that no reconstruction of the whole of X is held at once. X is
        centred already, unless ``centre``."""
        total = np.zeros(self.n_codebooks)
        for a in range(0, X.shape[0], block):
            Xb = self._centre(X[a:a + block]) if centre else X[a:a + block]
            cb = self._encode(Xb) if codes is None else codes[a:a + block]
            total += self._stage_errors(Xb, cb) * Xb.shape[0]
        return total / X.shape[0]

    def _stage_errors(self, X, codes, rows=1024):
        R = X.astype(np.float32, copy=True)
        out = np.empty(self.n_codebooks)
        for m in range(self.n_codebooks):
            book, col = self.codebooks_[m], codes[:, m]
            for a in range(0, R.shape[0], rows):  # gathered a few rows at a time: no (n, d) temporary
                r = R[a:a + rows]
                r -= book[col[a:a + rows]]
            out[m] = np.einsum("ij,ij->", R, R, dtype=np.float64) / X.shape[0]
        return out
