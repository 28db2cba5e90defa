"""vqcore.inspect: data summary, 2-D maps and toy partitions say true things."""

import itertools

import numpy as np
import pytest
from sklearn.decomposition import PCA

from vqcore import OPQ, KMeansVQ, ProductQuantizer, ResidualQuantizer
from vqcore.datasets import make_gaussian, make_mixture
from vqcore.exceptions import VQLensError
from vqcore.inspect import (
    cell_ids,
    code_means,
    codeword_points,
    count_duplicate_rows,
    data_summary,
    grid_points,
    pca_basis,
    pca_spectrum,
    prefix_reconstruction,
    preprocess,
    project,
    reachable_points,
    row_norms,
    subsample_indices,
    umap_embed,
)


@pytest.fixture(scope="module")
def corr():
    return make_gaussian(800, 12, correlated=True, rho=0.8, random_state=0).X


# ------------------------------------------------------------ data summary


@pytest.mark.parametrize("shape", [(500, 12), (9, 20)], ids=["tall", "wide"])
def test_pca_spectrum_sums_to_one_and_matches_sklearn(shape):
    X = np.random.default_rng(1).normal(size=shape).astype(np.float32) * np.arange(1, shape[1] + 1)
    ratio = pca_spectrum(X)
    ref = PCA().fit(X.astype(np.float64)).explained_variance_ratio_
    assert ratio.sum() == pytest.approx(1.0)
    assert np.all(np.diff(ratio) <= 1e-12)
    np.testing.assert_allclose(ratio[: len(ref)], ref, atol=1e-6)


def test_pca_spectrum_of_known_covariance():
    # variances 4 and 1 along the axes: 80% and 20% of the variance
    X = np.array([[x, y] for x in (-2, 2) for y in (-1, 1)], dtype=np.float32)
    np.testing.assert_allclose(pca_spectrum(X), [0.8, 0.2])


def test_pca_spectrum_of_constant_data_is_zero():
    assert np.all(pca_spectrum(np.ones((5, 3))) == 0)


def test_count_duplicate_rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 4)).astype(np.float32)
    X = np.vstack([X, X[:7], X[:3]])  # 7 + 3 copies of earlier rows
    assert count_duplicate_rows(X) == 10
    assert count_duplicate_rows(np.array([[0.0, 1.0], [-0.0, 1.0]])) == 1
    assert count_duplicate_rows(rng.normal(size=(1, 3))) == 0


def test_data_summary_facts(corr):
    s = data_summary(corr)
    assert (s["n"], s["d"], s["dtype"]) == (800, 12, "float32")
    np.testing.assert_allclose(s["norms"], np.linalg.norm(corr.astype(np.float64), axis=1), rtol=1e-6)
    var = ((corr - corr.mean(0)) ** 2).sum(1).mean()
    assert s["total_variance"] == pytest.approx(var, rel=1e-4)
    assert s["duplicates"] == 0
    assert not s["unit_norm"]
    # AR(1) with rho=0.8 concentrates variance: fewer than d directions hold 90%
    assert 1 <= s["dims_for_90"] < 12
    assert np.cumsum(s["pca_ratio"])[s["dims_for_90"] - 1] >= 0.9


def test_preprocess_centres_and_normalises(corr):
    Y, notes = preprocess(corr + 5.0, center=True, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(Y, axis=1), 1.0, atol=1e-5)
    assert len(notes) == 2
    Z, _ = preprocess(corr + 5.0, center=True)
    np.testing.assert_allclose(Z.mean(0), 0.0, atol=1e-4)
    assert data_summary(Y)["unit_norm"]


def test_row_norms_and_subsample():
    assert row_norms(np.array([[3.0, 4.0]])).tolist() == [5.0]
    idx = subsample_indices(1000, 100, random_state=0)
    assert len(np.unique(idx)) == 100 and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(idx, subsample_indices(1000, 100, random_state=0))


# ------------------------------------------------------------ 2-D maps


def test_pca_basis_is_orthonormal_and_matches_sklearn(corr):
    mean, comps = pca_basis(corr, 3)
    np.testing.assert_allclose(comps @ comps.T, np.eye(3), atol=1e-10)
    ref = PCA(3).fit(corr.astype(np.float64))
    # same directions up to sign
    np.testing.assert_allclose(np.abs(np.sum(comps * ref.components_, axis=1)), 1.0, atol=1e-6)
    P = project(corr, mean, comps)
    np.testing.assert_allclose(P.var(axis=0, ddof=1), ref.explained_variance_, rtol=1e-5)
    np.testing.assert_allclose(P.mean(axis=0), 0.0, atol=1e-5)


def test_vq_codewords_land_on_their_cluster_means():
    ds = make_mixture(1200, 6, 5, spread=8.0, random_state=0)
    q = KMeansVQ(codebook_size=5, random_state=0).fit(ds.X)
    codes = q.encode(ds.X)
    pts = codeword_points(q, codes, 0)
    np.testing.assert_allclose(pts, q.codebooks_[0] + q.mean_, atol=1e-5)  # codebooks are centred
    means, counts = code_means(ds.X, codes[:, 0], 5)
    assert counts.sum() == 1200
    mean, comps = pca_basis(ds.X)
    np.testing.assert_allclose(project(pts, mean, comps), project(means, mean, comps), atol=1e-3)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ResidualQuantizer(n_codebooks=3, codebook_size=8, random_state=0),
        lambda: ProductQuantizer(n_codebooks=3, codebook_size=8, random_state=0),
        lambda: OPQ(n_codebooks=3, codebook_size=8, n_iter_opq=3, random_state=0),
    ],
    ids=["RQ", "PQ", "OPQ"],
)
def test_codeword_points_equal_average_decode_with_that_code(make):
    X = make_gaussian(400, 6, correlated=True, random_state=0).X
    q = make().fit(X)
    codes = q.encode(X).astype(np.int64)
    for m in range(3):
        pts = codeword_points(q, codes, m)
        for c in (0, 5):
            forced = codes.copy()
            forced[:, m] = c
            np.testing.assert_allclose(pts[c], q.decode(forced).mean(0), atol=1e-4)


def test_code_means_marks_unused_codes():
    means, counts = code_means(np.array([[0.0, 0.0], [2.0, 2.0]]), np.array([0, 0]), 3)
    assert counts.tolist() == [2, 0, 0]
    assert means[0].tolist() == [1.0, 1.0] and np.isnan(means[1:]).all()


@pytest.mark.slow
def test_umap_embed_shapes_and_determinism():
    X = make_mixture(200, 8, 3, spread=6.0, random_state=0).X
    emb, extra = umap_embed(X, X[:4], n_epochs=30)
    assert emb.shape == (200, 2) and extra.shape == (4, 2)
    assert np.isfinite(emb).all() and np.isfinite(extra).all()
    emb2, _ = umap_embed(X, n_epochs=30)
    np.testing.assert_allclose(emb, emb2)


# ------------------------------------------------------------ 2-D toys


def test_vq_cells_on_a_grid_are_voronoi_cells():
    X = make_gaussian(600, 2, correlated=True, rho=0.7, random_state=0).X
    q = KMeansVQ(codebook_size=6, random_state=0).fit(X)
    xs, ys, P = grid_points((-3, 3, -2, 2), 25)
    assert P.shape == (625, 2) and P[1].tolist() == [xs[1], ys[0]]
    ids = cell_ids(q.encode(P))
    centroids = q.codebooks_[0] + q.mean_  # the codebooks are centred on the data mean
    nearest = np.argmin(((P[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    # same partition: one cell id per nearest codeword and vice versa
    pairs = set(zip(ids.tolist(), nearest.tolist()))
    assert len(pairs) == len(set(ids.tolist())) == len(set(nearest.tolist()))


def test_pq_in_2d_reaches_the_grid_of_its_1d_codebooks():
    X = make_gaussian(500, 2, random_state=0).X
    q = ProductQuantizer(n_codebooks=2, codebook_size=4, random_state=0).fit(X)
    pts = reachable_points(q)
    books = q.codebooks_[:, :, 0] + q.mean_[:, None]  # subspace m's codewords, centred on mean_[m]
    grid = np.array(list(itertools.product(books[0], books[1])))
    assert pts.shape == (16, 2)
    np.testing.assert_allclose(np.sort(pts, axis=0), np.sort(grid, axis=0), atol=1e-6)


def test_rq_stages_refine_cells_and_reconstructions():
    X = make_gaussian(800, 2, correlated=True, rho=0.8, random_state=0).X
    q = ResidualQuantizer(n_codebooks=3, codebook_size=4, random_state=0).fit(X)
    codes = q.encode(X)
    errs = []
    for s in range(4):
        rec = prefix_reconstruction(q, codes, s)
        errs.append(((X - rec) ** 2).sum(1).mean())
    assert all(a >= b - 1e-9 for a, b in zip(errs, errs[1:]))
    np.testing.assert_allclose(prefix_reconstruction(q, codes, 3), q.decode(codes), atol=1e-5)
    # each stage splits cells: the number of cells never falls
    n_cells = [len(np.unique(cell_ids(codes, s))) for s in (1, 2, 3)]
    assert n_cells == sorted(n_cells) and n_cells[0] <= 4
    assert reachable_points(q, 2).shape == (16, 2)
    # every decoded item is one of the reachable points
    reach = reachable_points(q)
    d = ((q.decode(codes)[:, None, :] - reach[None]) ** 2).sum(-1).min(1)
    assert d.max() < 1e-8


def test_partial_reconstruction_needs_an_additive_quantizer():
    q = ProductQuantizer(n_codebooks=2, codebook_size=4, random_state=0).fit(make_gaussian(100, 2, random_state=0).X)
    with pytest.raises(VQLensError, match="not additive"):
        prefix_reconstruction(q, np.zeros((1, 2), dtype=int), 1)
