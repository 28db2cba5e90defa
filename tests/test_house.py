"""The house rules of issue 17: one feasibility rule and one spec format, shared by the library and the app."""

import io

import numpy as np
import pytest

import vqcore
from vqcore.spec import budget_specs, fit_problem, format_spec, parse_spec


@pytest.mark.parametrize("spec", ["RQ8x8_b5", "PQ4x4", "VQ1xK300", "AQ2x10_b4", "OPQ8x8", "GRVQ3xK5"])
def test_format_spec_is_parse_spec_inverse(spec):
    method, M, K, beam = parse_spec(spec)
    assert format_spec(method, M, K, beam or 1) == spec


def test_a_fitted_quantizer_writes_its_spec_with_format_spec():
    q = vqcore.from_spec("RQ2x3_b2", random_state=0).fit(np.random.default_rng(0).normal(size=(64, 4)))
    assert q.spec() == format_spec("RQ", 2, 8, 2) == "RQ2x3_b2"


def test_fit_problem_is_the_rule_fit_applies():
    X = np.random.default_rng(0).normal(size=(20, 6)).astype(np.float32)
    # more codes than rows: fit refuses with fit_problem's words
    problem = fit_problem("RQ", 1, 32, n_samples=20, n_features=6)
    assert problem and "k-means cannot place more centroids" in problem
    with pytest.raises(vqcore.VQLensError, match="n_samples=20 should be >= codebook_size=32"):
        vqcore.from_spec("RQ1xK32").fit(X)
    # 4 subspaces do not split 6 features
    problem = fit_problem("PQ", 4, 4, n_samples=20, n_features=6)
    assert problem and "does not divide n_features=6" in problem
    with pytest.raises(vqcore.VQLensError, match="does not divide n_features=6"):
        vqcore.from_spec("PQ4x2").fit(X)
    assert fit_problem("RQ", 4, 4, n_samples=20, n_features=6) is None  # additive: M need not divide d
    assert fit_problem("PQ", 3, 4, n_samples=20, n_features=6) is None
    assert fit_problem("VQ", 2, 4) is not None
    assert fit_problem("PQ", 4, 64) is None  # nothing known of the data: nothing to refuse


def test_budget_specs_spend_each_budget_or_say_why_not():
    plan, skipped = budget_specs(["VQ", "PQ", "RQ"], [16, 8, 10], 4, n_samples=16, n_features=6,
                                 beam_sizes={"RQ": 3})
    assert plan == [("PQ", 8, "PQ2x4"), ("RQ", 8, "RQ2x4_b3"), ("RQ", 16, "RQ4x4_b3")]
    for _, bits, spec in plan:  # M codebooks of 2^4 codes spend the budget exactly
        assert parse_spec(spec)[1] * 4 == bits
    assert "PQ at 16 bits: M=4 does not divide d=6" in skipped
    assert "VQ at 8 bits: one codebook of 2^8 codes is too many for k-means" in skipped
    assert "RQ at 10 bits: not a multiple of 4 bits per code" in skipped
    plan, skipped = budget_specs(["RQ"], [8], 4, n_samples=15, n_features=6)
    assert plan == [] and skipped == ["RQ at 8 bits: K=16 codes need at least that many training rows"]


def test_one_check_of_code_arrays_for_decode_the_metrics_and_uploaded_codes():
    from vqcore import metrics
    from vqcore.io import load_codes

    X = np.random.default_rng(1).normal(size=(64, 4)).astype(np.float32)
    q = vqcore.from_spec("RQ2x3").fit(X)
    for bad, words, in_a_file in [([[0, 8]], r"codes\[:, 1\] contains the value 8 but codebook_size=8", False),
                                  ([[0, -1]], r"codes\[:, 1\] contains the negative value -1", True),
                                  ([[0.5, 1]], r"codes\[0, 0\]=0.5 is not a whole number", True)]:
        with pytest.raises(vqcore.DataError, match=words):
            q.decode(bad)
        with pytest.raises(vqcore.DataError, match=words):
            metrics.usage_stats(np.asarray(bad), 8)
        if in_a_file:  # a file of codes has no K to exceed; its messages add the file's name and row
            buf = io.BytesIO()
            np.save(buf, np.asarray(bad))
            with pytest.raises(vqcore.DataError, match=r"c\.npy: " + words + r".* In the file: row 0, level \d"):
                load_codes(buf.getvalue(), "c.npy")
    # whole floats are codes; an empty array decodes to no rows
    assert np.array_equal(q.decode([[1.0, 2.0]]), q.decode([[1, 2]]))
    assert q.decode(np.zeros((0, 2), dtype=np.uint8)).shape == (0, 4)


def test_uniform_coverage_is_what_uniform_random_codes_cover():
    from vqcore.semantic_ids import prefix_collision_table

    rng = np.random.default_rng(0)
    n, sizes = 20, [4, 4]
    table = prefix_collision_table(rng.integers(0, 4, size=(n, 2)), sizes)
    simulated = np.mean([prefix_collision_table(rng.integers(0, 4, size=(n, 2)), sizes)["coverage"]
                         for _ in range(2000)], axis=0)
    # depth 2: E[#distinct] = 16 (1 - (15/16)^20) of min(16, 20) possible
    assert table["uniform_coverage"][1] == pytest.approx(1 - (15 / 16) ** 20, rel=1e-9)
    assert np.allclose(table["uniform_coverage"], simulated, atol=0.01)


def test_a_collision_groups_tightness_is_the_prefix_tightness_of_its_tuple():
    from vqcore.semantic_ids import collision_groups_detail, items_under_prefix

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    X[:10] = 0.01 * rng.normal(size=(10, 3))  # a tight cluster sharing one code tuple
    codes = np.c_[np.r_[np.zeros(10, int), 1 + np.arange(50) % 7], np.r_[np.zeros(10, int), np.arange(50) // 7]]
    groups = collision_groups_detail(codes, X=X, top=None)
    assert groups[0]["codes"] == (0, 0) and groups[0]["tightness"] < 0.1
    for g in groups:
        assert g["tightness"] == pytest.approx(items_under_prefix(codes, g["codes"], X=X)["tightness"])
    assert collision_groups_detail(codes, top=1)[0]["tightness"] is None  # no embeddings


def test_plane_partitions_cells_and_errors():
    from vqcore.datasets import make_plane
    from vqcore.inspect import plane_partitions

    X = make_plane(600, 0.8, random_state=0).X
    assert np.corrcoef(X.T)[0, 1] == pytest.approx(0.8, abs=0.05)
    toy = plane_partitions(X, 4, 3, resolution=40, random_state=0)
    assert len(np.unique(toy["vq"]["cells"])) <= 4 and toy["vq"]["points"].shape == (4, 2)
    assert toy["pq"]["points"].shape == (16, 2)  # K^2 grid points from 2 x K codewords
    errors = [s["mse"] for s in toy["rq"]]
    assert all(b <= a + 1e-6 for a, b in zip(errors, errors[1:]))  # each RQ stage lowers the error
    assert toy["vq"]["mse"] < toy["variance"] and toy["pq"]["mse"] < toy["variance"]
    assert toy["variance"] == pytest.approx(((X - X.mean(0)) ** 2).sum(1).mean())


def _check_declared(value, td, where):
    """``value`` has exactly the keys ``td`` declares (NotRequired ones may be missing), recursively."""
    import typing

    hints = typing.get_type_hints(td, include_extras=True)  # (__required_keys__ misses NotRequired
    optional = {k for k, h in hints.items() if typing.get_origin(h) is typing.NotRequired}  # as a string)
    assert set(value) <= set(hints), f"{where}: undeclared keys {set(value) - set(hints)}"
    assert set(hints) - optional <= set(value), f"{where}: missing keys {set(hints) - optional - set(value)}"
    for key, hint in hints.items():
        if typing.get_origin(hint) is typing.NotRequired:
            hint = typing.get_args(hint)[0]
        inner = [a for a in (typing.get_args(hint) or (hint,)) if typing.is_typeddict(a)]
        if inner and value.get(key) is not None:
            _check_declared(value[key], inner[0], f"{where}.{key}")


def test_the_report_and_the_comparison_row_are_what_their_typeddicts_declare():
    import json

    from vqcore.report import ComparisonRow, Report, comparison_row, evaluate

    X = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    q = vqcore.from_spec("RQ2x4", random_state=0).fit(X)
    for report in (evaluate(q, X, query_rows=np.arange(30), fit_seconds=0.1), evaluate(q, X)):
        _check_declared(report, Report, "report")
        json.dumps(report)  # plain types
        row = comparison_row(report, "RQ")
        _check_declared(row, ComparisonRow, "row")
        assert row["mse"] == report["reconstruction"]["mse"] and row["dead"] == sum(report["usage"]["dead"])


def test_the_quantize_pages_stored_result_is_a_quantize_result():
    from pathlib import Path

    from apptest_helpers import ok
    from streamlit.testing.v1 import AppTest

    from ui import state as S

    root = Path(__file__).resolve().parents[1]
    at = AppTest.from_file(str(root / "pages" / "1_Quantize.py"), default_timeout=60)
    S.init(at.session_state)
    S.set_data(at.session_state, np.random.default_rng(0).normal(size=(400, 8)).astype(np.float32), name="toy")
    ok(at.run())
    at.number_input(key="q_RQ_M").set_value(2)
    at.number_input(key="q_RQ_nbits").set_value(4)
    at.button(key="q_run").click()
    ok(at.run())
    stored = at.session_state[S.Q_RESULT]
    _check_declared(stored, S.QuantizeResult, "state[Q_RESULT]")
    assert stored["args"]["spec"] == stored["result"]["report"]["spec"] == "RQ2x4"
    assert stored["result"]["codes"].shape == (400, 2)
