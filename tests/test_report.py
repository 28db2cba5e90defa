"""vqcore.report.evaluate: every row is encoded and measured; queries are only *also* used for recall."""

import numpy as np
import pytest

import vqcore
from vqcore import metrics
from vqcore.datasets import make_gaussian
from vqcore.report import evaluate, holdout_split


@pytest.fixture(scope="module")
def fitted():
    X = make_gaussian(1200, 8, correlated=True, rho=0.7, random_state=0).X
    q = vqcore.from_spec("RQ2x4", random_state=0).fit(X)
    return q, X


def test_query_rows_are_searched_for_among_the_other_rows(fitted):
    q, X = fitted
    base, queries = holdout_split(len(X), 120, random_state=3)
    report = evaluate(q, X, query_rows=queries)
    # every row counts in the metrics: the usage counts sum to n at every position
    assert report["n"] == 1200
    assert all(sum(c) == 1200 for c in report["usage"]["counts"])
    mse = float(((X - q.decode(q.encode(X))) ** 2).sum(1).mean())
    assert report["reconstruction"]["mse"] == pytest.approx(mse, rel=1e-5)
    # recall is what searching the queries among the other rows gives, by hand
    codes = q.encode(X)
    truth = metrics.exact_neighbors(X[base], X[queries], 1)[:, 0]
    expected = _recall_ties_by_row(q.decode(codes[base]), codes[base], X[queries], truth, R=(1, 10, 100))
    assert report["recall"]["n_queries"] == 120 and report["recall"]["n_searched"] == 1080
    assert report["recall"]["at"] == {str(r): pytest.approx(v) for r, v in expected.items()}
    # a query is not its own neighbour: searched among all rows, recall@1 would be near 1
    assert report["recall"]["at"]["1"] < evaluate(q, X, X[queries])["recall"]["at"]["1"]


def _recall_ties_by_row(base_hat, base_codes, queries, truth, R):
    """recall@R written out: the rank of each query's true neighbour t among the reconstructions,
    counting those nearer than t's and, among equal ones (the same code tuple), those of a lower row."""
    d = ((base_hat[None, :, :].astype(np.float64) - queries[:, None, :]) ** 2).sum(axis=2)
    dt = d[np.arange(len(queries)), truth][:, None]
    before = np.arange(len(base_hat))[None, :] < truth[:, None]
    same = (base_codes[None, :, :] == base_codes[truth][:, None, :]).all(axis=2)
    rank = np.where(same, before, (d < dt) | ((d == dt) & before)).sum(axis=1)
    return {r: float(np.mean(rank < r)) for r in R}


@pytest.mark.parametrize("rows, fragment", [
    ([0, 0], "distinct"), ([1200], "row indices"), ([[1, 2]], "1-D"), (np.arange(1200), "at least one"),
    ([0.5], "1-D"),
], ids=["repeated", "out-of-range", "2-D", "all-rows", "floats"])
def test_bad_query_rows_are_refused(fitted, rows, fragment):
    q, X = fitted
    with pytest.raises(vqcore.VQLensError, match=fragment):
        evaluate(q, X, query_rows=np.asarray(rows))


def test_queries_and_query_rows_together_are_refused(fitted):
    q, X = fitted
    with pytest.raises(vqcore.VQLensError, match="not both"):
        evaluate(q, X, X[:5], query_rows=np.arange(5))


def test_recall_truth_computed_once_gives_the_same_report(fitted):
    """recall_truth is each query's exact neighbour among the other rows (by hand, in float64, the
    lowest row on a tie), and a report given it is the report that searched for itself: the app
    computes it once per data and reuses it for every method. Rows 0 and 1 are copies, so a query
    near them has two neighbours at the same distance and must get the lower row."""
    q, X = fitted
    X = X.copy()
    X[1] = X[0]
    X[2] = X[0] + 1e-3  # the query: rows 0 and 1 are its nearest, tied
    queries = np.array([2, 7, 500, 1100])
    truth = vqcore.report.recall_truth(X, queries)
    searched = np.setdiff1d(np.arange(len(X)), queries)
    d = ((X[searched].astype(np.float64)[None] - X[queries].astype(np.float64)[:, None]) ** 2).sum(2)
    np.testing.assert_array_equal(truth, d.argmin(axis=1))
    assert searched[truth[0]] == 0
    a = evaluate(q, X, query_rows=queries)
    b = evaluate(q, X, query_rows=queries, ground_truth=truth)
    for r in (a, b):
        r["complexity"].pop("encode_us_per_vector")
    assert a == b
    with pytest.raises(vqcore.VQLensError, match="at least one query"):
        vqcore.report.recall_truth(X, np.arange(0))


def _float64_search(Q, X):
    """The exact search as it was before the float32 first pass: float64 distances by BLAS,
    ``||q||^2 - 2 q.x + ||x||^2``, the lowest row on a tie."""
    Q, B = np.asarray(Q, dtype=np.float64), X.astype(np.float64)
    D = Q @ B.T * -2.0 + np.einsum("ij,ij->i", B, B) + np.einsum("ij,ij->i", Q, Q)[:, None]
    return D.argmin(axis=1)


@pytest.mark.parametrize("offset", [0.0, 1e3, 1e4], ids=["centred", "offset-1e3", "offset-1e4"])
def test_float32_first_pass_finds_the_float64_neighbour(offset):
    """Recall's ground truth searches in float32 and keeps the rows within a proven error bound of
    the best for a float64 look: the neighbours are those of the float64 search, on copies of rows
    (the lowest row wins), on queries closer than float32 can tell apart, and far from the origin
    (where the bound is wide and the float64 search of the whole block takes over)."""
    from vqcore import partials
    from vqcore.catalog import as_dataset

    rng = np.random.default_rng(0)
    X = (rng.normal(size=(3000, 48)) + offset).astype(np.float32)
    X[1500] = X[10]  # a copy, later in the rows: the earlier one is the neighbour
    X[2999] = X[2998]
    Q = np.concatenate([X[[10, 2998, 77]].astype(np.float64) + 1e-9,  # nearer than float32 resolves
                        rng.normal(size=(40, 48)) + offset])
    _, rows = partials.exact_nearest(Q, as_dataset(X))
    np.testing.assert_array_equal(rows, _float64_search(Q, X))
    assert rows[0] == 10 and rows[1] == 2998


def test_rank_kernel_counts_as_the_masks():
    """The compiled rank count of recall is the numpy formula it replaced: rows with the neighbour's
    code tuple count by row number alone, others by distance with ties broken by row number."""
    from vqcore import _kernels

    rng = np.random.default_rng(1)
    nq, b = 30, 500
    G = rng.integers(-8, 8, size=(nq, b)).astype(np.float32) / 4  # many exactly equal distances
    xn = rng.integers(0, 8, size=b).astype(np.float32) / 4
    qn = rng.integers(0, 8, size=nq).astype(np.float32) / 4
    words = rng.integers(0, 4, size=(b, 1)).astype(np.uint64)
    truth = rng.integers(0, 1000, size=nq)
    keys = rng.integers(0, 4, size=(nq, 1)).astype(np.uint64)
    rows = np.sort(rng.choice(1000, size=b, replace=False))
    D = G * -2.0 + xn
    D += qn[:, None]
    dt = D[np.arange(nq), rng.integers(0, b, size=nq)].astype(np.float32)
    same = (words[None, :, :] == keys[:, None, :]).all(axis=2)
    before = rows[None, :] < truth[:, None]
    expected = np.where(same, before, (D < dt[:, None]) | ((D == dt[:, None]) & before)).sum(axis=1)
    counts = np.zeros(nq, dtype=np.int64)
    _kernels.adc_rank_counts(G, xn, qn, words, keys, rows, truth, dt, counts)
    np.testing.assert_array_equal(counts, expected)
    assert 0 < same.sum() and 0 < (D == dt[:, None]).sum() - nq  # ties and shared tuples were tested


@pytest.mark.parametrize("spec", ["RQ3x4", "VQ1x5"])
def test_stage_errors_in_row_blocks_are_the_whole_array_ones(spec):
    """Stage errors subtract each stage's codewords a few rows at a time: bit for bit the numbers
    of subtracting them from the whole array at once."""
    X = make_gaussian(2500, 16, random_state=2).X
    q = vqcore.from_spec(spec, random_state=0).fit(X)
    codes = q.encode(X)
    R = q.centred(X).astype(np.float32)
    expected = []
    for m in range(q.n_codebooks):
        R -= q.codebooks_[m][codes[:, m]]
        expected.append(np.einsum("ij,ij->", R, R, dtype=np.float64) / len(X))
    assert q.stage_errors(X, codes).tolist() == expected
