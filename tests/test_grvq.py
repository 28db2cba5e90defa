"""GRVQ (Liu, Shao & Lu 2015): what must hold of it, on small data."""

import copy

import numpy as np
import pytest

from vqcore import (
    GeneralizedResidualQuantizer,
    ResidualQuantizer,
    VQLensError,
    VQLensWarning,
    beam_search_encode,
    from_spec,
)
from vqcore.datasets import make_gaussian
from vqcore.grvq import codebook_variances, start_state
from vqcore.metrics import usage_stats


@pytest.fixture(scope="module")
def X():
    return make_gaussian(1200, 16, correlated=True, random_state=0).X


@pytest.fixture(scope="module")
def X_held():
    return make_gaussian(800, 16, correlated=True, random_state=1).X


def _mse(q, X):
    return float(((X - q.decode(q.encode(X)).astype(np.float64)) ** 2).sum(1).mean())


def _grvq(**kw):
    params = {"n_codebooks": 4, "codebook_size": 16, "beam_size": 4, "n_passes": 2, "random_state": 0}
    params.update(kw)
    return GeneralizedResidualQuantizer(**params)


# ------------------------------------------------------------- special case


@pytest.mark.parametrize("seed", [0, 7])
def test_one_pass_from_zeros_is_rq(seed, X):
    """One pass from zero codebooks, beam 1: RQ's codebooks and codes, bit for bit.

    Both run the same code path (training subsample, progressive k-means on
    the same residuals, the same rng draws, the same beam step), so equality
    is exact. GRVQ then sorts the codebooks by variance; RQ's stages already
    come out in that order, which the test checks first.
    """
    rq = ResidualQuantizer(4, 16, beam_size=1, clustering="progressive", random_state=seed).fit(X)
    assert np.all(np.diff(codebook_variances(rq.codebooks_)) <= 0)
    g = GeneralizedResidualQuantizer(4, 16, beam_size=1, n_passes=1, init="zeros", random_state=seed).fit(X)
    np.testing.assert_array_equal(g.codebooks_, rq.codebooks_)
    codes = g.encode(X)
    np.testing.assert_array_equal(codes, rq.encode(X))
    np.testing.assert_array_equal(g.stage_errors_, rq.stage_errors_)
    assert g.pass_errors_[0] == pytest.approx(rq.stage_errors_[-1], rel=1e-6)
    np.testing.assert_allclose(g.pass_entropies_[0], usage_stats(codes, 16)["entropy_bits"])


@pytest.mark.slow
def test_init_rq_starts_from_the_rq_error(X):
    rq = ResidualQuantizer(4, 16, beam_size=4, random_state=0).fit(X)
    g = _grvq(init="rq").fit(X)
    assert g.init_error_ == pytest.approx(rq.stage_errors_[-1], rel=1e-5)
    assert g.pass_errors_[-1] < g.init_error_


# ---------------------------------------------------------------- monotone


@pytest.mark.parametrize("refit", ["warm", "transition"])
@pytest.mark.parametrize("init", ["zeros", "rq"])
@pytest.mark.parametrize("beam", [1, 4], ids=["beam1", "beam4"])
def test_a_pass_never_raises_training_error(beam, init, refit, X):
    g = _grvq(beam_size=beam, init=init, refit=refit, n_passes=3).fit(X)
    errs = [g.init_error_] + g.pass_errors_
    assert len(g.pass_errors_) == 3
    assert np.all(np.diff(errs) <= 1e-9 * errs[0]), errs
    assert g.pass_errors_[-1] < g.init_error_
    # the record: one entropy per position per pass, within [0, log2 K]
    assert len(g.pass_entropies_) == 3
    for h in g.pass_entropies_:
        assert h.shape == (4,) and np.all(h >= 0) and np.all(h <= np.log2(16) + 1e-12)


def test_codebooks_come_out_in_descending_variance(X):
    g = _grvq(init="zeros").fit(X)
    v = codebook_variances(g.codebooks_)
    np.testing.assert_allclose(g.codebook_variances_, v)
    assert np.all(np.diff(v) <= 0)
    # the variance is that of the codewords, as written
    c = g.codebooks_[0].astype(np.float64)
    assert v[0] == pytest.approx(((c - c.mean(0)) ** 2).sum(1).mean())


def test_reencoding_from_the_saved_prefix_equals_a_full_beam_search(X):
    """The re-encoding that reuses stages 0..m-1 finds what a full beam search finds."""
    g = _grvq().fit(X)
    books = g.codebooks_
    Xc = g.centred(X)  # the codebooks' coordinates
    full = beam_search_encode(Xc, books, g.beam_size)
    state = start_state(Xc)
    for m in range(books.shape[0]):
        codes, R, _err, _ = g._encode_from(state, books, m)
        np.testing.assert_array_equal(codes, full)
        np.testing.assert_allclose(R, X - g.decode(codes), rtol=1e-4, atol=1e-4)
        state = g._step(state, books[m])


# ---------------------------------------------------------------- quality


@pytest.mark.slow
def test_grvq_beats_rq_at_equal_bits(X, X_held):
    rq1 = ResidualQuantizer(4, 16, beam_size=1, random_state=0).fit(X)
    rq4 = ResidualQuantizer(4, 16, beam_size=4, random_state=0).fit(X)
    g = _grvq(n_passes=3).fit(X)
    assert g.bits_per_vector == rq1.bits_per_vector == rq4.bits_per_vector == 16
    assert _mse(g, X) < 0.95 * min(_mse(rq1, X), _mse(rq4, X))
    # on held-out data from the same source it still beats greedy RQ clearly
    assert _mse(g, X_held) < 0.95 * _mse(rq1, X_held)


def test_small_training_sets_keep_the_rq_start():
    """Issue 20: at 20 rows per codeword the passes lower the training error but raise the
    held-out one (each refit sees only the best path's intermediate set), so the fit keeps the
    RQ start, says so, and holds out no worse than it; min_points_per_centroid=None runs them."""
    X = make_gaussian(16 * 20, 16, correlated=True, random_state=0).X
    held = make_gaussian(2000, 16, correlated=True, random_state=5).X
    with pytest.warns(VQLensWarning, match="ran 0 of its n_passes=3"):
        g = _grvq(n_passes=3).fit(X)
    assert g.n_passes_run_ == 0 and g.pass_errors_ == [] and g.n_rejected_ == 0
    rq = ResidualQuantizer(4, 16, beam_size=4, random_state=0).fit(X)
    assert g.init_error_ == pytest.approx(rq.stage_errors_[-1], rel=1e-5)
    assert _mse(g, held) <= _mse(rq, held) * (1 + 1e-6)
    forced = _grvq(n_passes=3, min_points_per_centroid=None).fit(X)
    assert forced.n_passes_run_ == 3
    assert _mse(forced, X) < 0.9 * _mse(g, X)  # the passes fit the training rows better...
    assert _mse(forced, held) > 1.02 * _mse(g, held)  # ...and the held-out rows worse


def test_the_passes_run_from_min_points_per_centroid_rows_per_codeword(X):
    g = _grvq(n_passes=2, min_points_per_centroid=75).fit(X)  # 1200 rows = 75 per codeword
    assert g.n_passes_run_ == 2 and len(g.pass_errors_) == 2
    with pytest.warns(VQLensWarning, match="at least 1,216 rows"):
        z = _grvq(n_passes=2, init="zeros", min_points_per_centroid=76).fit(X)
    assert z.n_passes_run_ == 1 and len(z.pass_errors_) == 1  # from zeros one pass makes the codebooks
    assert z.pass_errors_[0] < z.init_error_


# ------------------------------------------------------------- partial_fit


@pytest.mark.slow
def test_partial_fit_on_the_training_set_never_raises_its_error(X):
    g = _grvq(n_passes=1).fit(X)
    before = _mse(g, X)
    for _ in range(2):
        g.partial_fit(X)
        after = _mse(g, X)
        assert after <= before * (1 + 1e-6)
        before = after


def test_partial_fit_adapts_to_new_data(X):
    g = _grvq(n_passes=1).fit(X)
    X_new = (X[:, ::-1] * 1.5 + 0.5).astype(np.float32)  # a different source
    before = _mse(g, X_new)
    g.partial_fit(X_new)
    assert g.partial_fit_kept_
    assert _mse(g, X_new) < 0.9 * before
    assert g.init_error_ == pytest.approx(before, rel=1e-4)
    assert np.all(np.diff(codebook_variances(g.codebooks_)) <= 0)


def test_partial_fit_on_unfitted_is_fit(X):
    a = _grvq().partial_fit(X)
    b = _grvq().fit(X)
    np.testing.assert_array_equal(a.codebooks_, b.codebooks_)


# ------------------------------------------------------------------ norms


@pytest.fixture(scope="module")
def norm_models(X):
    return {norm: _grvq(norm=norm, norm_bits=6).fit(X) for norm in
            ("none", "float", "quantized", "regularized")}


@pytest.mark.slow
def test_norm_options_cost_what_they_say_in_bits(norm_models):
    assert {k: q.norm_bits_ for k, q in norm_models.items()} == {
        "none": 0, "float": 32, "quantized": 6, "regularized": 0}


@pytest.mark.slow
def test_norm_none_and_float_give_the_exact_search_distance(norm_models, X):
    q = norm_models["none"]
    codes = q.encode(X[:200])
    X_hat = q.decode(codes).astype(np.float64)
    queries = X[-5:].astype(np.float64)
    # fast Euclidean distance on the centred query and reconstruction (the codebooks' coordinates):
    # ||q - mean||^2 - 2 <q - mean, x_hat - mean> + ||x_hat - mean||^2
    qc, yc = q.centred(X[-5:]).astype(np.float64), q._decode(codes).astype(np.float64)
    adc = (qc ** 2).sum(1)[:, None] - 2 * qc @ yc.T + q.adc_norms(codes)[None, :]
    exact = ((queries[:, None, :] - X_hat[None]) ** 2).sum(-1)
    np.testing.assert_allclose(adc, exact, rtol=1e-5, atol=1e-5)
    assert q.norm_error_ == 0.0
    f = norm_models["float"]
    exact_f = (f._decode(codes).astype(np.float64) ** 2).sum(1)
    np.testing.assert_allclose(f.adc_norms(codes), exact_f, rtol=1e-7)
    assert f.norm_error_ < 1e-6 * exact_f.mean()


@pytest.mark.slow
def test_quantized_norm_error_is_at_most_half_a_step(norm_models, X):
    q = norm_models["quantized"]
    lo, hi = q.norm_range_
    codes = q.encode(X)
    exact = (q._decode(codes).astype(np.float64) ** 2).sum(1)  # centred, as the search uses it
    approx = q.adc_norms(codes)
    assert len(np.unique(approx)) <= 2 ** 6
    inside = (exact >= lo) & (exact <= hi)
    step = (hi - lo) / (2 ** 6 - 1)
    assert np.all(np.abs(approx - exact)[inside] <= step / 2 * (1 + 1e-9))
    assert 0 < q.norm_error_ <= step / 2
    # more bits, smaller error
    q10 = _grvq(norm="quantized", norm_bits=10).fit(X)
    assert q10.norm_error_ < q.norm_error_ / 8


@pytest.mark.slow
def test_regularized_norm_trades_reconstruction_for_norm_error(norm_models, X):
    plain, reg = norm_models["none"], norm_models["regularized"]
    # what the constant-cross-term approximation would cost without the penalty
    codes = plain.encode(X)
    exact = (plain._decode(codes).astype(np.float64) ** 2).sum(1)
    cross = exact - plain._codeword_norms(codes)
    unregularized = np.abs(cross - cross.mean()).mean()
    assert reg.norm_error_ < 0.8 * unregularized
    assert reg.norm_mse_cost_ > 0 and plain.norm_mse_cost_ == 0
    # what the search uses: per-codebook norms (lookup tables) plus one constant
    rcodes = reg.encode(X[:50])
    np.testing.assert_allclose(reg.adc_norms(rcodes), reg._codeword_norms(rcodes) + reg.norm_constant_)
    # a stronger penalty: less norm error, more reconstruction error
    strong = _grvq(norm="regularized", norm_reg=10.0).fit(X)
    assert strong.norm_error_ < reg.norm_error_ and strong.norm_mse_cost_ > reg.norm_mse_cost_


@pytest.mark.parametrize("norm", ["quantized", "regularized"])
@pytest.mark.slow
def test_fit_norm_on_a_trained_quantizer_equals_fitting_with_that_norm(norm, norm_models, X):
    q = copy.deepcopy(norm_models["none"]).set_params(norm=norm).fit_norm(X)
    ref = norm_models[norm]
    np.testing.assert_allclose(q.codebooks_, ref.codebooks_, rtol=1e-6, atol=1e-6)
    assert q.norm_bits_ == ref.norm_bits_
    assert q.norm_error_ == pytest.approx(ref.norm_error_, rel=1e-6)


# ------------------------------------------------------------ spec, params


def test_spec_and_faiss_string():
    q = from_spec("GRVQ8x8_b5", random_state=0)
    assert type(q) is GeneralizedResidualQuantizer
    assert (q.n_codebooks, q.codebook_size, q.beam_size) == (8, 256, 5)
    assert q.spec() == "GRVQ8x8_b5" and q.faiss_string() is None  # faiss has no GRVQ
    assert from_spec("grvq4x6_b1").spec() == "GRVQ4x6"


def test_explicit_dims_sequence_is_used(X):
    g = _grvq(dims=[2, 4], init="zeros", n_passes=1).fit(X)
    assert g.dims_ == [2, 4, 16]
    assert _grvq(init="zeros", n_passes=1).fit(X).dims_[-1] == 16


def _x(n=200, d=8):
    return np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)


BAD = [
    pytest.param({"n_passes": 0}, "n_passes=0", id="passes=0"),
    pytest.param({"beam_size": 0}, "beam_size=0", id="beam=0"),
    pytest.param({"init": "kmeans"}, "init='kmeans'", id="bad-init"),
    pytest.param({"refit": "cold"}, "refit='cold'", id="bad-refit"),
    pytest.param({"n_iter": 0}, "n_iter=0", id="n_iter=0"),
    pytest.param({"dims": [0, 4]}, "dims=[0, 4]", id="dims-zero"),
    pytest.param({"dims": [4, 2]}, "dims=[4, 2]", id="dims-decreasing"),
    pytest.param({"dims": [2, 9]}, "dims=[2, 9]", id="dims>d"),
    pytest.param({"dims": 3}, "dims=3", id="dims-not-sequence"),
    pytest.param({"dims": []}, "dims=[]", id="dims-empty"),
    pytest.param({"norm": "l2"}, "norm='l2'", id="bad-norm"),
    pytest.param({"norm_bits": 0}, "norm_bits=0", id="norm-bits=0"),
    pytest.param({"norm_bits": 17}, "norm_bits=17", id="norm-bits=17"),
    pytest.param({"norm_reg": -1.0}, "norm_reg=-1.0", id="norm-reg<0"),
    pytest.param({"codebook_size": 300}, "codebook_size=300", id="K>n"),
    pytest.param({"min_points_per_centroid": 0}, "min_points_per_centroid=0", id="min-points=0"),
]


@pytest.mark.parametrize("params, message", BAD)
def test_bad_parameters_raise_clear_errors(params, message):
    kw = {"n_codebooks": 2, "codebook_size": 8, "random_state": 0}
    kw.update(params)
    with pytest.raises(VQLensError) as info:
        GeneralizedResidualQuantizer(**kw).fit(_x())
    assert message in str(info.value)


# ---------------------------------------------------------------- the paper's figures, as the app shows them


def test_beam_sweep_beam_one_is_rq_encoding_and_exhaustive_is_best(X):
    """Figure 2 (right): beam 1 reproduces RQ's own codes; a beam of K^M is exhaustive, so nothing beats it."""
    from vqcore.report import beam_sweep

    rq = ResidualQuantizer(n_codebooks=3, codebook_size=8, random_state=0).fit(X)
    pts = beam_sweep(rq, X, beams=(1, 4, 8 ** 3))
    assert [p["beam"] for p in pts] == [1, 4, 512]
    assert pts[0]["mse"] == pytest.approx(_mse(rq, X), rel=1e-6)
    assert pts[-1]["mse"] <= min(p["mse"] for p in pts) + 1e-9
    assert pts[-1]["mse"] < 0.99 * pts[0]["mse"]
    total = ((X - X.mean(0)) ** 2).sum(1).mean()
    assert all(p["seconds"] > 0 and p["rows"] == len(X) for p in pts)
    assert pts[0]["relative"] == pytest.approx(pts[0]["mse"] / total, rel=1e-5)
    assert beam_sweep(rq, X, beams=(2,), max_rows=100)[0]["rows"] == 100


def test_beam_sweep_refuses_what_has_no_beam(X):
    from sklearn.exceptions import NotFittedError

    from vqcore.report import beam_sweep

    pq = from_spec("PQ4x4", random_state=0).fit(X)
    with pytest.raises(VQLensError, match="PQ4x4"):
        beam_sweep(pq, X)
    with pytest.raises(NotFittedError):
        beam_sweep(ResidualQuantizer(n_codebooks=2, codebook_size=4), X)
    rq = ResidualQuantizer(n_codebooks=2, codebook_size=4, random_state=0).fit(X)
    with pytest.raises(VQLensError, match="n_features"):
        beam_sweep(rq, X[:, :8])


def _item(method, H, bits=32, K=256):
    return {"method": method, "spec": f"{method}{len(H)}x8", "bits": bits, "codebook_size": K, "entropy_bits": H}


def test_entropy_profile_says_when_the_data_shows_figure_one():
    from vqcore.report import entropy_profile

    rq = _item("RQ", [7.9, 7.6, 6.8, 6.1])
    gr = _item("GRVQ", [7.9, 7.8, 7.8, 7.7])
    out = entropy_profile([rq, gr, _item("RQ", [7.0, 6.0], bits=16)])
    assert out["methods"]["RQ"]["fall"] == pytest.approx(7.75 - 6.45)  # the 32-bit run, not the 16-bit one
    assert out["methods"]["GRVQ"]["gap"] == pytest.approx(8 - 7.8)
    assert "As in GRVQ's Figure 1" in out["sentence"]
    flat = entropy_profile([_item("RQ", [7.5, 7.5, 7.5, 7.5]), _item("GRVQ", [7.0, 7.0, 7.0, 7.0])])
    assert "does not show GRVQ's Figure 1" in flat["sentence"]
    half = entropy_profile([_item("RQ", [7.5, 7.5, 7.5, 7.5]), gr])
    assert "only half" in half["sentence"]
    assert "Add GRVQ" in entropy_profile([rq])["sentence"]
    assert entropy_profile([_item("VQ", [7.9])]) == {"methods": {}, "sentence": ""}


# ------------------------------------------------------------ as the paper


def test_fit_norm_keeps_the_codebooks_of_the_options_that_say_so(norm_models, X):
    """Trying "regularized" and going back to "none" (or "float", "quantized") gives back the
    codebooks the passes ended with, not the regularized ones."""
    plain = norm_models["none"]
    q = copy.deepcopy(plain).set_params(norm="regularized").fit_norm(X)
    assert not np.array_equal(q.codebooks_, plain.codebooks_)
    for norm in ("none", "float", "quantized"):
        q.set_params(norm=norm).fit_norm(X)
        np.testing.assert_array_equal(q.codebooks_, plain.codebooks_)
        np.testing.assert_array_equal(q.encode(X), plain.encode(X))


def test_transition_refit_starts_from_the_projected_codebook(X):
    """Transition clustering of a trained codebook starts from its projection into the PCA
    space of the data: in all dimensions at once that is Lloyd from the codebook itself
    (distances do not change under the rotation), not a new k-means++ seeding."""
    from vqcore.kmeans import kmeans_rng, progressive_kmeans_rng

    rng = np.random.default_rng(0)
    C = X[rng.choice(X.shape[0], 16, replace=False)] + 0.1
    d = X.shape[1]
    warm = kmeans_rng(X, 16, 5, "k-means++", None, C, np.random.default_rng(1), warn=False).centroids
    projected = progressive_kmeans_rng(X, 16, [d], 5, None, np.random.default_rng(2), init_centroids=C).centroids
    np.testing.assert_allclose(projected, warm, atol=1e-3)
    scratch = progressive_kmeans_rng(X, 16, [d], 5, None, np.random.default_rng(2)).centroids
    assert np.abs(scratch - warm).max() > 0.1


def test_penalised_beam_search_minimises_the_penalised_objective():
    """The norm penalty is in the search: with a beam holding every path the search finds the
    tuple of least ``||x - x_hat||^2 + lam (cross - target)^2``; without penalty it is the
    plain beam search."""
    from itertools import product

    from vqcore.grvq import penalised_beam_search

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)).astype(np.float32)
    books = rng.normal(size=(3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(penalised_beam_search(X, books, 3, 0.0, 1.0), beam_search_encode(X, books, 3))
    lam, target = 0.5, 1.0
    tuples = np.array(list(product(range(4), repeat=3)))
    S = books[np.arange(3), tuples].astype(np.float64)  # (64, 3, 5)
    X_hat = S.sum(1)
    cross = (X_hat ** 2).sum(1) - (S ** 2).sum((1, 2))
    obj = ((X[:, None, :] - X_hat[None]) ** 2).sum(-1) + lam * (cross - target)[None] ** 2
    codes = penalised_beam_search(X, books, 64, lam, target)
    found = obj[np.arange(200), (codes * [16, 4, 1]).sum(1)]
    np.testing.assert_allclose(found, obj.min(1), rtol=1e-5)


def test_regularized_encoding_holds_the_cross_term_near_its_constant(norm_models, X, X_held):
    """encode of a "regularized" GRVQ searches with the penalty: on held-out rows the cross term
    strays less from the constant than with the plain beam search on the same codebooks."""
    reg = norm_models["regularized"]
    assert reg.norm_penalty_ > 0

    def stray(codes):
        exact = (reg._decode(codes).astype(np.float64) ** 2).sum(1)
        return np.abs(exact - reg._codeword_norms(codes) - reg.norm_constant_).mean()

    plain = beam_search_encode(reg.centred(X_held), reg.codebooks_, reg.beam_size)
    assert stray(reg.encode(X_held)) < 0.9 * stray(plain)


def test_bits_and_recall_count_the_stored_norm(norm_models, X):
    """bits_per_vector (and the report) count the norm's bits; recall ranks by the norm the
    search would use (here a 1-bit quantized norm), not by the exact one."""
    from vqcore import metrics
    from vqcore.report import evaluate

    base = 4 * 4
    assert [norm_models[k].bits_per_vector for k in ("none", "float", "quantized", "regularized")] == [
        base, base + 32, base + 6, base]
    q = _grvq(norm="quantized", norm_bits=1).fit(X)
    B, Q = X[:1000], X[1000:]
    truth = metrics.exact_neighbors(B, Q, 1)
    rep = evaluate(q, B, Q, ground_truth=truth, R=(1, 10))
    assert rep["bits_per_vector"] == base + 1
    codes = q.encode(B)
    Y, Qc = q._decode(codes).astype(np.float64), q.centred(Q).astype(np.float64)
    dist = -2 * Qc @ Y.T + q.adc_norms(codes)[None, :]
    rank = (dist < dist[np.arange(len(Q)), truth[:, 0]][:, None]).sum(1)
    assert rep["recall"]["at"]["10"] == pytest.approx(np.mean(rank < 10), abs=0.011)
    exact = metrics.recall_at(q.decode(codes), Q, truth, R=(10,))[10]
    assert rep["recall"]["at"]["10"] != exact


def test_norm_options_say_what_each_costs_and_buys(norm_models, X):
    """One row per norm option: none and float are exact (float at 32 bits more), quantized
    costs norm_bits and leaves at most half a step, regularized costs no bits but error."""
    rows = {r["norm"]: r for r in norm_models["none"].norm_options(X)}
    assert list(rows) == ["none", "float", "quantized", "regularized"]
    base = rows["none"]["bits_per_vector"]
    assert [rows[k]["bits_per_vector"] - base for k in rows] == [0, 32, 6, 0]
    assert rows["none"]["norm_error"] == 0 and rows["float"]["relative_norm_error"] < 1e-6
    assert rows["none"]["mse"] == rows["float"]["mse"] == rows["quantized"]["mse"]
    assert rows["regularized"]["mse"] > rows["none"]["mse"]
    assert rows["quantized"]["norm_error"] > 0
