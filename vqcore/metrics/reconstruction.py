"""Reconstruction error: mse, relative error and SNR."""

import math
import warnings

import numpy as np

from .._distances import DEFAULT_CHUNK_BYTES, row_chunks
from ..exceptions import DataError, VQLensWarning
from ._shared import check_float_pair


def reconstruction_error(X, X_hat):
    """Mean squared reconstruction error, relative error and SNR.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Original vectors.
    X_hat : array-like of shape (n_samples, n_features)
        Their reconstructions (``quantizer.decode(quantizer.encode(X))``).

    Both are validated like all vqcore data (finite, taken as float32);
    sums are accumulated in float64, in row chunks.

    Returns
    -------
    error : dict
        ``mse`` (float): ``mean_i ||x_i - x_hat_i||^2``, summed over
        dimensions; ``relative`` (float): ``mse / mean_i ||x_i - mean(X)||^2``,
        so that reconstructing every vector by the mean gives 1;
        ``snr_db`` (float): ``-10 log10(relative)``, ``+inf`` for an exact
        reconstruction; ``per_dim`` (ndarray of shape (n_features,)): mean
        squared error of each dimension, summing to ``mse``. When X has zero
        variance ``relative`` and ``snr_db`` are NaN, with a VQLensWarning.

    Examples
    --------
    >>> e = reconstruction_error([[0, 0], [2, 2]], [[0, 1], [2, 2]])
    >>> e["mse"], e["relative"], e["per_dim"].tolist()
    (0.5, 0.25, [0.0, 0.5])
    """
    X, X_hat = check_float_pair(X, X_hat, name_a="X", name_b="X_hat")
    if X_hat.shape != X.shape:
        raise DataError(
            f"X_hat has shape {X_hat.shape} but X has shape {X.shape}; pass one "
            f"reconstruction per row of X."
        )
    n, d = X.shape
    mean = X.mean(axis=0, dtype=np.float64)
    sq_err = np.zeros(d)
    sq_dev = np.zeros(d)
    for a, b in row_chunks(n, d, 8, DEFAULT_CHUNK_BYTES):
        x = X[a:b].astype(np.float64)
        diff = x - X_hat[a:b]
        sq_err += np.einsum("ij,ij->j", diff, diff)
        x -= mean
        sq_dev += np.einsum("ij,ij->j", x, x)
    per_dim = sq_err / n
    mse = float(per_dim.sum())
    total_variance = float(sq_dev.sum() / n)
    if total_variance == 0.0:
        warnings.warn(
            "X has zero variance (all rows equal), so the relative error and the SNR "
            "are undefined; they are returned as NaN.",
            VQLensWarning,
            stacklevel=2,
        )
        relative = snr_db = float("nan")
    else:
        relative = mse / total_variance
        snr_db = float("inf") if relative == 0.0 else float(-10.0 * math.log10(relative))
    return {"mse": mse, "relative": relative, "snr_db": snr_db, "per_dim": per_dim}
