"""Finite scalar quantization (Mentzer et al. 2023): the level grid, the fitted map, the scale fit.

F. Mentzer, D. Minnen, E. Agustsson and M. Tschannen, "Finite scalar
quantization: VQ-VAE made simple", arXiv 2309.15505, 2023 (ICLR 2024).
"""

import math
from dataclasses import dataclass

import numpy as np

from .._parallel import single_blas_thread
from ._bookkeeping import Batches
from ._updates import mean_sq

# FSQ scale candidates, in units of each principal component's standard deviation
_FSQ_SCALE_GRID = np.geomspace(1 / 8, 8, 49)



def _fsq_grid(L):
    """Centres of L equal cells of (-1, 1)."""
    return (2.0 * np.arange(L) + 1.0 - L) / L


def _fsq_level_indices(Y, scales, levels):
    """Cell of ``tanh(y_j / a_j)`` among ``levels[j]`` equal cells of (-1, 1), int64.

    Y and scales broadcast over leading axes; the last axis is the dimension.
    """
    U = np.tanh(Y / scales)
    L = np.asarray(levels)
    return np.clip(np.floor((U + 1.0) * L / 2.0), 0, L - 1).astype(np.int64)


def _fsq_values(idx, scales, levels):
    """Reconstructed coordinates ``a_j * atanh(centre of cell i_j)``, float64.

    idx and scales broadcast over leading axes; the last axis is the dimension.
    """
    table = np.zeros((len(levels), max(levels)))
    for j, L in enumerate(levels):  # a loop over the few dimensions, not over items
        table[j, :L] = np.arctanh(_fsq_grid(L))
    return table[np.arange(len(levels)), idx] * scales


def _fsq_basis(levels):
    return np.cumprod((1,) + tuple(levels[:-1])).astype(np.int64)


def _fsq_pack(idx, levels):
    """Mixed-radix code of the level indices (dimension 0 least significant, as Mentzer et al.)."""
    return idx @ _fsq_basis(levels)


def _fsq_unpack(codes, levels):
    codes = np.asarray(codes, dtype=np.int64).reshape(-1)
    return (codes[:, None] // _fsq_basis(levels)) % np.asarray(levels)



@dataclass
class FSQMap:
    """The fitted FSQ map: x -> y = (x - mean) @ components -> level indices -> x_hat."""

    mean: np.ndarray  # (d,)
    components: np.ndarray  # (d, L), orthonormal columns
    scales: np.ndarray  # (L,) a_j
    levels: tuple

    def codes(self, X):
        idx = _fsq_level_indices((X - self.mean) @ self.components, self.scales, self.levels)
        return _fsq_pack(idx, self.levels)

    def codebook(self):
        """All ``prod(levels)`` reconstructions, (K, d) float32 (K * d * 4 bytes)."""
        K = math.prod(self.levels)
        Y = _fsq_values(_fsq_unpack(np.arange(K), self.levels), self.scales, self.levels)
        return (Y @ self.components.T + self.mean).astype(np.float32)



def train_fsq(X, config, rng, rec, should_stop):
    """FSQ on the first principal components, fitting only the per-dimension scale.

    The error of a fixed grid on the principal coordinates separates over
    dimensions, so each scale ``a_j`` is fitted on its own: a stochastic grid
    search over ``_FSQ_SCALE_GRID`` times the component's standard deviation,
    keeping a moving average (decay ``config.decay``) of each candidate's
    batch error and using the best one. Returns ``(fsq_map, stopped)``.
    """
    levels = config.levels
    L = len(levels)
    mean = X.mean(axis=0, dtype=np.float64)
    Xc = X - mean.astype(X.dtype)
    with single_blas_thread():
        evals, evecs = np.linalg.eigh((Xc.T @ Xc).astype(np.float64) / X.shape[0])
    order = np.argsort(evals)[::-1][:L]
    P = evecs[:, order]
    std = np.sqrt(np.maximum(evals[order], 0.0)) + 1e-12
    candidates = _FSQ_SCALE_GRID[:, None] * std  # (n_candidates, L)
    fsq = FSQMap(mean, P, std.copy(), levels)
    avg_err = np.zeros(candidates.shape)
    g = config.decay
    batches = Batches(X.shape[0], config.batch_size, rng)
    for t in range(1, config.steps + 1):
        if should_stop is not None and should_stop():
            return fsq, True
        Z = X[batches.next()].astype(np.float64)
        Y = (Z - mean) @ P
        idx = _fsq_level_indices(Y, fsq.scales, levels)
        counts = rec.usage(t, 0, _fsq_pack(idx, levels))
        err = mean_sq(Z - (_fsq_values(idx, fsq.scales, levels) @ P.T + mean))
        # batch error of every candidate scale, per dimension: (n_candidates, L)
        A = candidates[:, None, :]
        cand_err = ((Y - _fsq_values(_fsq_level_indices(Y, A, levels), A, levels)) ** 2).sum(axis=1)
        avg_err = g * avg_err + (1 - g) * cand_err
        fsq.scales = candidates[np.argmin(avg_err, axis=0), np.arange(L)]
        rec.record(t, [err], [err], [counts], [0])
    return fsq, False
