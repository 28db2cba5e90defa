"""The update rules' numeric pieces: gradients of the STE and NSVQ losses, SGD, Adam, the EMA codebook."""

import numpy as np

from .._distances import cluster_sums, sq_norms


def l2_normalize(A):
    norms = np.sqrt(np.einsum("...i,...i->...", A, A))
    return (A / np.maximum(norms, np.finfo(A.dtype).tiny)[..., None]).astype(A.dtype, copy=False)


def mean_sq(R):
    return float(np.einsum("ij,ij->", R, R, dtype=np.float64) / R.shape[0])


def _scatter(Z, labels, K, weights=None):
    """Per code k: the (weighted) count and sum of the rows of Z assigned to k.

    One sparse (K, B) one-hot product (:func:`vqcore._distances.cluster_sums`).
    """
    B = Z.shape[0]
    w = np.ones(B, dtype=Z.dtype) if weights is None else weights.astype(Z.dtype, copy=False)
    return np.bincount(labels, weights=w, minlength=K), cluster_sums(labels, Z, K, w)


def ste_grad(Z, C, labels):
    """Gradient of ``mean_i ||sg[z_i] - e_{k_i}||^2`` with respect to the codebook C."""
    B, K = Z.shape[0], C.shape[0]
    counts, sums = _scatter(Z, labels, K)
    return (2.0 / B) * (counts[:, None] * C - sums)


def _nsvq_forward(Z, C, labels, V):
    """NSVQ output ``z_hat = z + ||z - e_k|| v / ||v||``, the norms ``||z - e_k||`` and ``v / ||v||``."""
    U = V / np.sqrt(sq_norms(V))[:, None]
    dist = np.sqrt(np.maximum(sq_norms(Z - C[labels]), 0.0))
    return Z + dist[:, None] * U, dist, U


def nsvq_loss_grad(Z, C, labels, V):
    """NSVQ loss ``mean_i ||z_i - z_hat_i||^2`` and its gradient in C (labels and V fixed).

    Chain rule through the norm ``n_i = ||z_i - e_k||``:
    ``dL/de_k = sum_{i: k_i = k} (2/B) <z_hat_i - z_i, u_i> (e_k - z_i) / n_i``,
    with ``u_i = v_i / ||v_i||`` (0 where ``n_i = 0``, a subgradient).

    Returns
    -------
    loss : float
    grad : ndarray of shape (K, d)
    """
    B, K = Z.shape[0], C.shape[0]
    Z_hat, dist, U = _nsvq_forward(Z, C, labels, V)
    D = Z_hat - Z
    loss = float(np.einsum("ij,ij->", D, D, dtype=np.float64) / B)
    dL_dn = (2.0 / B) * np.einsum("ij,ij->i", D, U)
    coef = np.divide(dL_dn, dist, out=np.zeros_like(dist), where=dist > 0)
    wsum, wz = _scatter(Z, labels, K, coef)
    return loss, wsum[:, None] * C - wz


class AdamUpdate:
    """Adam (Kingma & Ba 2015) on one (K, d) codebook; moments of reset codes are zeroed."""

    def __init__(self, shape, lr, betas, eps):
        self.m = np.zeros(shape)
        self.v = np.zeros(shape)
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.t = 0

    def step(self, C, grad):
        self.t += 1
        self.m *= self.b1
        self.m += (1 - self.b1) * grad
        self.v *= self.b2
        self.v += (1 - self.b2) * grad * grad
        m_hat = self.m / (1 - self.b1**self.t)
        v_hat = self.v / (1 - self.b2**self.t)
        C -= (self.lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(C.dtype)

    def forget(self, codes):
        self.m[codes] = 0.0
        self.v[codes] = 0.0


class SGDUpdate:
    def __init__(self, lr):
        self.lr = lr

    def step(self, C, grad):
        C -= (self.lr * grad).astype(C.dtype)

    def forget(self, codes):
        pass


class EMAUpdate:
    """Moving averages of the counts N_k and sums m_k of one codebook (Razavi et al. 2019).

    Starts as if every code had had its fair share ``B / K`` of each batch at
    its initial position (so that ``e_k = m_k / N_k`` is the initial
    codeword); an unused code keeps its position while ``N_k`` dominates the
    smoothing epsilon, then shrinks towards the origin.
    """

    def __init__(self, C, batch_size, decay, eps):
        K = C.shape[0]
        self.fair = batch_size / K
        self.N = np.full(K, self.fair)
        self.M = self.fair * C.astype(np.float64)
        self.decay, self.eps = decay, eps

    def update(self, C, Z, labels):
        K = C.shape[0]
        counts, sums = _scatter(Z, labels, K)
        g = self.decay
        self.N *= g
        self.N += (1 - g) * counts
        self.M *= g
        self.M += (1 - g) * sums
        total = self.N.sum()
        smoothed = (self.N + self.eps) / (total + K * self.eps) * total
        C[:] = self.M / smoothed[:, None]

    def restart(self, C, codes):
        self.N[codes] = self.fair
        self.M[codes] = self.fair * C[codes]
