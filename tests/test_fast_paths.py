"""The shortcuts of the RQ / GRVQ fit compute what the plain code computed: beam steps written
chunk by chunk, progressive k-means's shared bookkeeping, and GRVQ's start from the RQ start's
last beam step."""

import numpy as np
import pytest

from vqcore import _distances, beam_search_encode
from vqcore.kmeans import kmeans_rng, progressive_kmeans
from vqcore.rq import _beam_step, beam_step_chunked, train_stages


def test_beam_step_chunked_writes_what_one_step_computes(monkeypatch):
    """Chunks written into the result are the whole step (paths, errors, codes), row for row."""
    rng = np.random.default_rng(1)
    R = rng.normal(size=(900, 3, 16)).astype(np.float32)
    err = np.einsum("cbd,cbd->cb", R, R)
    codes = rng.integers(0, 8, size=(900, 3, 2))
    C = rng.normal(size=(8, 16)).astype(np.float32)
    Cn = np.einsum("kd,kd->k", C, C)
    whole = _beam_step(R, err, codes, C, Cn, 4)
    monkeypatch.setattr("vqcore.rq._BEAM_CHUNK_BYTES", 64 * 3 * (8 + 32) * 4)  # 64 rows a chunk
    chunked = beam_step_chunked(R, err, codes, C, Cn, 4)
    for a, b in zip(whole, chunked):
        np.testing.assert_array_equal(a, b)
    # the kept paths are the 4 best of the 24 extensions, best first
    scores = ((R[:, :, None, :] - C[None, None]) ** 2).sum(axis=3).reshape(900, -1)
    np.testing.assert_allclose(chunked[1], np.sort(scores, axis=1)[:, :4], rtol=1e-4, atol=1e-3)


def test_kmeans_with_the_callers_assigner_and_moments_is_plain_kmeans():
    """Progressive k-means hands each step its assigner and the mean / sum of squares it
    worked out once: the same centroids and labels, and the same inertia to rounding."""
    rng = np.random.default_rng(2)
    X = (rng.normal(size=(3000, 5)) @ rng.normal(size=(5, 5)) + 3).astype(np.float32)
    C0 = X[:20].copy()
    plain = kmeans_rng(X, 20, 6, "random", None, C0, np.random.default_rng(0), tol=0.0)
    mean = X.mean(axis=0, dtype=np.float64)
    sq = float(((X.astype(np.float64) - mean) ** 2).sum())
    given = kmeans_rng(X, 20, 6, "random", None, C0, np.random.default_rng(0), tol=0.0,
                       assigner=_distances.NearestAssigner(X),
                       moments=(mean, sq))
    np.testing.assert_array_equal(plain.centroids, given.centroids)
    np.testing.assert_allclose(plain.inertia, given.inertia, rtol=1e-6)


def test_progressive_kmeans_inertia_is_the_mse_of_each_assignment():
    """The moments of each step come from the PCA coordinates computed once; the inertia of the
    last assignment is still the training mse of those labels (the rotation keeps distances)."""
    rng = np.random.default_rng(3)
    X = (rng.normal(size=(2500, 12)) * np.linspace(3, 0.2, 12) + 50).astype(np.float32)
    res = progressive_kmeans(X, 16, dims=[2, 5, 12], n_iter=30, random_state=0)
    assert res.inertia[-1] >= 0 and np.all(np.isfinite(res.inertia))
    # run to convergence: the last assignment is that of the returned centroids
    X64, C64 = X.astype(np.float64), res.centroids.astype(np.float64)
    mse = ((X64[:, None, :] - C64[None]) ** 2).sum(axis=2).min(axis=1).mean()
    assert res.inertia[-1] == pytest.approx(mse, rel=1e-4)


@pytest.mark.parametrize("beam", [1, 4])
def test_train_stages_best_path_is_the_beam_search_of_its_codebooks(beam):
    """GRVQ starts its passes from the RQ start's last beam step instead of a new search:
    those codes are what beam search with the final codebooks finds, with their residuals."""
    rng = np.random.default_rng(4)
    X = (rng.normal(size=(1200, 10)) @ rng.normal(size=(10, 10))).astype(np.float32)
    X -= X.mean(axis=0)
    books, _, (codes, R, err) = train_stages(X, 3, 16, n_iter=5, rng=np.random.default_rng(0),
                                             beam_size=beam, return_best=True)
    np.testing.assert_array_equal(codes, beam_search_encode(X, books, beam))
    recon = sum(books[m][codes[:, m]] for m in range(3))
    np.testing.assert_allclose(R, X - recon, atol=1e-4)
    np.testing.assert_allclose(err, (R.astype(np.float64) ** 2).sum(axis=1), rtol=1e-4)
