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
