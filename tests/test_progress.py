"""vqcore.progress: what long fits report to a caller's callback."""

import numpy as np
import pytest

import vqcore
from vqcore import progress


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).normal(size=(600, 12)).astype(np.float32)


def _collect(fit):
    seen = []
    with progress.reporting(lambda f, msg: seen.append((f, msg))):
        fit()
    return seen


def _assert_monotone_in_unit_interval(seen):
    fractions = [f for f, _ in seen]
    assert fractions, "no progress was reported"
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert fractions == sorted(fractions)


def test_rq_reports_each_stage(X):
    seen = _collect(lambda: vqcore.ResidualQuantizer(4, 16, random_state=0).fit(X))
    _assert_monotone_in_unit_interval(seen)
    assert seen == [(m / 4, f"stage {m + 1} of 4") for m in range(4)]


def test_aq_reports_its_rq_start_then_its_alternations(X):
    aq = vqcore.AdditiveQuantizer(3, 16, n_iter_aq=4, n_ils=2, random_state=0)
    seen = _collect(lambda: aq.fit(X))
    _assert_monotone_in_unit_interval(seen)
    share = vqcore.rq.RQ_START_SHARE
    assert seen[:3] == [pytest.approx((share * m / 3, f"RQ start: stage {m + 1} of 3")) for m in range(3)]
    alternations = seen[3:]
    assert [m for _, m in alternations] == [f"alternation {t} of 4" for t in range(1, 5)]
    assert [f for f, _ in alternations] == pytest.approx([share + (1 - share) * t / 4 for t in range(4)])


@pytest.mark.parametrize("make", [
    lambda: vqcore.OPQ(3, 16, n_iter_opq=3, random_state=0),
    # 600 rows are 37.5 per codeword: min_points_per_centroid=None runs the passes anyway
    lambda: vqcore.GeneralizedResidualQuantizer(3, 16, n_passes=2, min_points_per_centroid=None, random_state=0),
])
def test_opq_and_grvq_report_their_outer_loops(make, X):
    seen = _collect(lambda: make().fit(X))
    _assert_monotone_in_unit_interval(seen)
    assert any(m.startswith(("rotation step", "pass")) for _, m in seen)


def test_reporting_does_not_change_the_fit(X):
    """Reporting observes, it does not change the fit."""
    a = vqcore.ResidualQuantizer(3, 16, random_state=1).fit(X)
    with progress.reporting(lambda f, m: None):
        b = vqcore.ResidualQuantizer(3, 16, random_state=1).fit(X)
    np.testing.assert_array_equal(a.codebooks_, b.codebooks_)


def test_an_exception_from_the_callback_ends_the_fit(X):
    class Stop(Exception):
        pass

    def stop_at_stage_two(f, msg):
        if msg.startswith("stage 2"):
            raise Stop

    with pytest.raises(Stop), progress.reporting(stop_at_stage_two):
        vqcore.ResidualQuantizer(4, 16, random_state=0).fit(X)
    # the callback is gone once the block is left
    vqcore.ResidualQuantizer(4, 16, random_state=0).fit(X)


def test_parts_nest_into_the_enclosing_share():
    seen = []
    with progress.reporting(lambda f, m: seen.append((f, m))):
        with progress.part(0.2, 0.6):
            progress.report(0.5, "a")
            with progress.part(0.5, 1.0, "inner: "):
                progress.report(0.0, "b")
                progress.report(2.0, "clipped")
        progress.report(1.0, "c")
    assert [f for f, _ in seen] == pytest.approx([0.4, 0.4, 0.6, 1.0])
    assert [m for _, m in seen] == ["a", "inner: b", "inner: clipped", "c"]


@pytest.mark.parametrize("make", [
    lambda: vqcore.ProductQuantizer(3, 16, random_state=0),
    lambda: vqcore.ResidualQuantizer(3, 16, beam_size=2, random_state=0),
])
def test_long_encodings_go_in_blocks_and_report_them(make, X, monkeypatch):
    """Above ENCODE_BLOCK_ROWS rows encode works block by block (bounded memory) and reports
    each block; the codes of these row-by-row encoders do not depend on the blocks."""
    q = make().fit(X)
    whole = q.encode(X)
    monkeypatch.setattr(vqcore.base, "ENCODE_BLOCK_ROWS", 250)
    seen = []
    with progress.reporting(lambda f, m: seen.append((f, m))):
        blocked = q.encode(X)
    np.testing.assert_array_equal(blocked, whole)
    assert blocked.dtype == whole.dtype
    assert seen == [(0.0, "encoding rows 1-250 of 600"), (250 / 600, "encoding rows 251-500 of 600"),
                    (500 / 600, "encoding rows 501-600 of 600")]
