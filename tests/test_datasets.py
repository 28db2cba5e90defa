"""Tests of vqcore.datasets: the shipped sample is real, the generators are what they say."""

import numpy as np
import pytest

from vqcore import datasets
from vqcore.datasets import (
    SAMPLES,
    Dataset,
    load_digits_dataset,
    load_sample,
    make_gaussian,
    make_mixture,
    make_rotated,
)
from vqcore.exceptions import DataError, VQLensError


@pytest.fixture(scope="module")
def sample():
    return load_sample()


# --------------------------------------------------------------------------
# the shipped MiniLM sample


def test_sample_file_loads_without_pickle():
    with np.load(datasets.SAMPLE_PATH, allow_pickle=False) as z:
        assert {"embeddings", "texts", "source"} <= set(z.files)
        for key in z.files:
            assert z[key].dtype != object, key
        assert z["embeddings"].dtype == np.float16
        assert set(np.unique(z["source"])) == {"kjv", "fortune"}
        assert len(z["source"]) == len(z["embeddings"])


def test_sample_shape_dtype_and_norms(sample):
    assert isinstance(sample, Dataset)
    assert sample.X.dtype == np.float32
    assert sample.X.flags.c_contiguous
    n, d = sample.X.shape
    assert n >= 5000 and d == 384
    norms = np.linalg.norm(sample.X, axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-2)


def test_sample_has_one_nonempty_text_per_row(sample):
    assert isinstance(sample.labels, list)
    assert len(sample.labels) == sample.X.shape[0]
    assert all(isinstance(t, str) and t.strip() for t in sample.labels)
    assert len(set(sample.labels)) == len(sample.labels), "texts were deduplicated"
    assert sample.name and sample.description


def test_sample_has_semantic_structure(sample):
    # Real embeddings: a text's nearest neighbour is far closer than a typical
    # other text. Noise in 384-d would put every pair at about the same distance.
    X = sample.X.astype(np.float64)
    rows = np.random.default_rng(0).choice(len(X), size=200, replace=False)
    D = np.sqrt(np.maximum(2.0 - 2.0 * X[rows] @ X.T, 0.0))  # unit vectors
    D[np.arange(len(rows)), rows] = np.inf  # not oneself
    nn = D.min(axis=1)
    median = np.median(D[np.isfinite(D)])
    assert np.all(nn < median)
    assert np.median(nn) < 0.8 * median


def test_sample_neighbours_share_their_source(sample):
    # Bible verses sit near Bible verses and fortunes near fortunes.
    with np.load(datasets.SAMPLE_PATH, allow_pickle=False) as z:
        source = z["source"]
    X = sample.X
    rows = np.arange(0, len(X), 20)
    G = X[rows] @ X.T
    G[np.arange(len(rows)), rows] = -np.inf
    agree = source[G.argmax(axis=1)] == source[rows]
    assert agree.mean() > 0.9


def test_missing_sample_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="make_sample.py"):
        datasets._read_sample(tmp_path / "nope.npz")


def test_sample_with_object_arrays_is_refused(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(
        path,
        embeddings=np.ones((2, 3), np.float16),
        texts=np.array(["a", None], dtype=object),
        source=np.array(["kjv", "kjv"]),
    )
    with pytest.raises(DataError, match="bad.npz"):
        datasets._read_sample(path)


# --------------------------------------------------------------------------
# digits


def test_digits():
    ds = load_digits_dataset()
    assert ds.X.shape == (1797, 64)
    assert ds.X.dtype == np.float32
    assert len(ds.labels) == 1797
    assert set(ds.labels) == {f"digit {k}" for k in range(10)}
    assert ds.X.min() == 0 and ds.X.max() == 16


# --------------------------------------------------------------------------
# Gaussian data


@pytest.mark.parametrize("rho", [0.9, 0.5, -0.6], ids=lambda r: f"rho={r}")
def test_correlated_gaussian_covariance_is_ar1(rho):
    d = 8
    ds = make_gaussian(40_000, d, correlated=True, rho=rho, random_state=0)
    assert ds.X.shape == (40_000, d) and ds.X.dtype == np.float32
    lag = np.abs(np.subtract.outer(np.arange(d), np.arange(d)))
    expected = rho**lag
    C = np.cov(ds.X.astype(np.float64), rowvar=False)
    np.testing.assert_allclose(C, expected, atol=0.04)
    np.testing.assert_allclose(ds.X.mean(axis=0), 0.0, atol=0.03)


def test_uncorrelated_gaussian_is_identity_covariance():
    ds = make_gaussian(40_000, 8, random_state=1)
    C = np.cov(ds.X.astype(np.float64), rowvar=False)
    np.testing.assert_allclose(C, np.eye(8), atol=0.04)
    assert ds.labels is None


def test_rho_is_ignored_when_uncorrelated():
    a = make_gaussian(100, 4, rho=0.1, random_state=3).X
    b = make_gaussian(100, 4, rho=0.7, random_state=3).X
    np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------
# mixture and rotated data


@pytest.mark.parametrize("n_components", [1, 3, 10])
def test_mixture_has_requested_components(n_components):
    ds = make_mixture(500, 5, n_components, random_state=0)
    assert ds.X.shape == (500, 5)
    assert len(ds.labels) == 500
    names, counts = np.unique(ds.labels, return_counts=True)
    assert set(names) == {f"component {k}" for k in range(n_components)}
    assert counts.max() - counts.min() <= 1  # balanced


def test_mixture_labels_match_clusters():
    # Well separated clusters: each point is nearer its own component's mean
    # than any other component's mean.
    ds = make_mixture(2000, 8, 5, spread=10.0, random_state=0)
    labels = np.array(ds.labels)
    names = sorted(set(ds.labels))
    means = np.stack([ds.X[labels == k].mean(axis=0) for k in names])
    nearest = ((ds.X[:, None, :] - means[None]) ** 2).sum(-1).argmin(axis=1)
    assert np.array_equal(np.array(names)[nearest], labels)


def test_n_equal_to_n_components_is_allowed():
    ds = make_mixture(4, 2, 4, random_state=0)
    assert sorted(ds.labels) == [f"component {k}" for k in range(4)]


def test_rotated_has_unequal_principal_variances_but_mixed_coordinates():
    ds = make_rotated(20_000, 16, random_state=0)
    X = ds.X.astype(np.float64)
    eig = np.linalg.eigvalsh(np.cov(X, rowvar=False))[::-1]
    # principal variances: 1 down to 1e-3, log-spaced
    np.testing.assert_allclose(eig, np.logspace(0, -3, 16), rtol=0.1)
    # the rotation spreads them: no coordinate holds the top variance alone
    coord_var = X.var(axis=0)
    assert coord_var.max() < 0.6 * eig[0]
    # and the coordinates are correlated, unlike the unrotated source
    corr = np.corrcoef(X, rowvar=False)
    assert np.abs(corr[np.triu_indices(16, 1)]).max() > 0.3


# --------------------------------------------------------------------------
# determinism and the picker


@pytest.mark.parametrize(
    "make",
    [
        lambda rs: make_gaussian(300, 6, random_state=rs),
        lambda rs: make_gaussian(300, 6, correlated=True, random_state=rs),
        lambda rs: make_mixture(300, 6, 4, random_state=rs),
        lambda rs: make_rotated(300, 6, random_state=rs),
    ],
    ids=["gaussian", "correlated", "mixture", "rotated"],
)
def test_random_state_makes_data_reproducible(make):
    a, b, c = make(7), make(7), make(8)
    np.testing.assert_array_equal(a.X, b.X)
    assert a.labels == b.labels
    assert not np.array_equal(a.X, c.X)
    g1, g2 = make(np.random.default_rng(5)), make(np.random.default_rng(5))
    np.testing.assert_array_equal(g1.X, g2.X)


@pytest.mark.parametrize("name", list(SAMPLES))
def test_every_sample_in_the_picker_loads(name):
    make, description = SAMPLES[name]
    assert description
    ds = make()
    assert isinstance(ds, Dataset)
    assert ds.X.dtype == np.float32 and ds.X.ndim == 2
    assert np.isfinite(ds.X).all()
    assert ds.labels is None or len(ds.labels) == ds.X.shape[0]
    np.testing.assert_array_equal(ds.X, make().X)  # same data every time


# --------------------------------------------------------------------------
# bad parameters


@pytest.mark.parametrize(
    "call, param",
    [
        (lambda: make_gaussian(0), "n"),
        (lambda: make_gaussian(10.5), "n"),
        (lambda: make_gaussian(10, 0), "d"),
        (lambda: make_gaussian(10, True), "d"),
        (lambda: make_gaussian(10, 3, correlated=True, rho=1.0), "rho"),
        (lambda: make_gaussian(10, 3, correlated=True, rho=-1.5), "rho"),
        (lambda: make_gaussian(10, 3, correlated=True, rho="0.9"), "rho"),
        (lambda: make_gaussian(10, 3, rho=float("nan")), "rho"),
        (lambda: make_gaussian(10, 3, correlated="yes"), "correlated"),
        (lambda: make_gaussian(10, 3, random_state="seed"), "random_state"),
        (lambda: make_mixture(10, 3, 0), "n_components"),
        (lambda: make_mixture(3, 3, 5), "n_components"),
        (lambda: make_mixture(10, 3, 2, spread=-1.0), "spread"),
        (lambda: make_mixture(10, -2, 2), "d"),
        (lambda: make_rotated(10, 1), "d"),
        (lambda: make_rotated(-1, 4), "n"),
        (lambda: make_rotated(10, 4, random_state=1.5), "random_state"),
    ],
    ids=[
        "n=0", "n-float", "d=0", "d-bool", "rho=1", "rho<-1", "rho-str", "rho-nan",
        "correlated-str", "random_state-str", "n_components=0", "n<n_components",
        "spread<0", "mixture-d<0", "rotated-d=1", "rotated-n<0", "random_state-float",
    ],
)
def test_bad_parameters_raise_naming_the_parameter(call, param):
    with pytest.raises(VQLensError, match=rf"\b{param}="):
        call()
