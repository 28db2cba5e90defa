"""GRVQ's encoders: the beam search with the regularized norm's penalty, the beam state before
stage 0, and the codeword variance that orders the codebooks for the beam search (Liu, Shao & Lu,
ICME 2015; Zhang, Du & Wang, ICML 2014 for the penalty). The plain beam search is
:func:`vqcore.beam_search_encode`."""

import numpy as np


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



def start_state(X):
    """Beam state before stage 0: one path per row, the row itself as residual."""
    R = X[:, None, :].copy()
    return R, np.einsum("cbd,cbd->cb", R, R), np.empty((X.shape[0], 1, 0), dtype=np.int64)

