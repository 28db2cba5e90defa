"""Two people at once: each session sees only its own data and its own results.

Two AppTest sessions of the same app (each with its own session state, as two
browser tabs have on a real server) upload different files on the home page,
move to the Quantize page and run a quantizer. The cache of results
(``st.cache_data``) is shared by every session of the process, as on a real
server; it is keyed on the data's content hash, never on a file name, so:

- two files with the same name but different content are two data sets with
  two results;
- the same content under two names is one data set: the second session reuses
  the fitted result, and still shows its own name;
- a cached result reaches each session as its own copy.
"""

from pathlib import Path

import numpy as np
import pytest
from apptest_helpers import npy_bytes, ok
from streamlit.testing.v1 import AppTest

from ui import state as S
from vqcore import ProductQuantizer
from vqcore.report import default_n_queries

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
QUANTIZE = "pages/1_Quantize.py"
TIMEOUT = 120
MIME = "application/octet-stream"


@pytest.fixture
def fits(monkeypatch):
    """Counts ProductQuantizer fits, in every session of this process."""
    calls = []
    original = ProductQuantizer.fit

    def counting_fit(self, X, *args, **kwargs):
        calls.append(X.shape)
        return original(self, X, *args, **kwargs)

    monkeypatch.setattr(ProductQuantizer, "fit", counting_fit)
    return calls


def data(n, d, seed):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def session_with_upload(filename, X):
    """A new session: the home page, then ``filename`` uploaded through its file uploader."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    S.init(at.session_state)  # skip loading the shipped sample: each session starts from a tiny set
    S.set_data(at.session_state, np.eye(4, dtype=np.float32), name="start")
    ok(at.run())
    at.file_uploader(key=S.HOME_UPLOAD).set_value((filename, npy_bytes(X), MIME))
    ok(at.run())
    assert [s.value for s in at.success] == [f"Loaded {filename}."], [e.value for e in at.error]
    return at


def metrics(at):
    return {m.label: m.value for m in at.metric}


def quantize(at, M=2, nbits=4):
    """Go to the Quantize page and run PQ with M codebooks of 2**nbits codes."""
    at.switch_page(QUANTIZE)
    ok(at.run())
    at.selectbox(key="q_method").set_value("PQ")
    ok(at.run())
    at.number_input(key="q_PQ_M").set_value(M)
    at.number_input(key="q_PQ_nbits").set_value(nbits)
    ok(at.run())  # PQ8 (the default M) may not divide d: Run is enabled once M is set
    at.button(key="q_run").click()
    return ok(at.run())


def shown_result(at):
    """What the Quantize page shows: (subheader, data badge, report) of the session's stored result."""
    stored = at.session_state[S.Q_RESULT]
    badge = next(c.value for c in at.caption if c.value.startswith("Data: "))
    return at.subheader[0].value, badge, stored


def assert_shows_own(at, name, X, key):
    n = len(X)  # every row has its code; the queries are also searched for among the others
    subheader, badge, stored = shown_result(at)
    report = stored["result"]["report"]
    assert badge.startswith(f"Data: **{name}**, {len(X):,} × {X.shape[1]}.")
    assert subheader == f"{report['spec']} on {n:,} items"
    assert (report["n"], report["d"]) == (n, X.shape[1])
    assert report["recall"]["n_searched"] == n - default_n_queries(n)
    assert stored["args"]["key"] == key == at.session_state[S.DATA].key
    assert stored["data_name"] == name
    assert stored["result"]["codes"].shape == (n, report["params"]["n_codebooks"])
    n_codebooks = report["params"]["n_codebooks"]
    assert np.asarray(stored["result"]["quantizer"].codebooks_).shape[-1] * n_codebooks == X.shape[1]


def test_two_sessions_see_only_their_own_data_and_results():
    # the same file name on purpose: only the content tells the two apart
    XA, XB = data(600, 8, seed=1), data(500, 12, seed=2)
    a = session_with_upload("embeddings.npy", XA)
    b = session_with_upload("embeddings.npy", XB)
    key_a, key_b = a.session_state[S.DATA].key, b.session_state[S.DATA].key
    assert key_a != key_b
    np.testing.assert_array_equal(a.session_state[S.DATA].X, XA)
    np.testing.assert_array_equal(b.session_state[S.DATA].X, XB)
    assert (metrics(a)["rows n"], metrics(a)["dimension d"]) == ("600", "8")
    assert (metrics(b)["rows n"], metrics(b)["dimension d"]) == ("500", "12")

    quantize(a)
    assert_shows_own(a, "embeddings.npy", XA, key_a)

    # B has not pressed Run: A's result is nowhere in B
    b.switch_page(QUANTIZE)
    ok(b.run())
    assert S.Q_RESULT not in b.session_state
    assert not b.get("plotly_chart")
    assert any("press **Run**" in i.value for i in b.info)

    quantize(b, M=3)
    assert_shows_own(b, "embeddings.npy", XB, key_b)

    # A, rerun after B's work, still shows its own result; B likewise
    ok(a.run())
    assert_shows_own(a, "embeddings.npy", XA, key_a)
    ok(b.run())
    assert_shows_own(b, "embeddings.npy", XB, key_b)
    assert a.session_state[S.Q_RESULT]["result"]["report"]["spec"] == "PQ2x4"
    assert b.session_state[S.Q_RESULT]["result"]["report"]["spec"] == "PQ3x4"

    # back home, each session still has its own data
    for at, X in ((a, XA), (b, XB)):
        at.switch_page("app.py")
        ok(at.run())
        assert metrics(at)["rows n"] == f"{len(X):,}"
        np.testing.assert_array_equal(at.session_state[S.DATA].X, X)


def test_same_name_different_content_gives_different_data_and_results(fits):
    X1, X2 = data(600, 8, seed=3), data(600, 8, seed=4)  # same name, same shape, other content
    a = session_with_upload("embeddings.npy", X1)
    b = session_with_upload("embeddings.npy", X2)
    assert a.session_state[S.DATA].key != b.session_state[S.DATA].key
    quantize(a)
    quantize(b)
    assert len(fits) == 2  # B's result was computed for B's content, not looked up by name
    ra = a.session_state[S.Q_RESULT]["result"]
    rb = b.session_state[S.Q_RESULT]["result"]
    assert ra["report"]["reconstruction"]["mse"] != rb["report"]["reconstruction"]["mse"]
    assert not np.array_equal(ra["quantizer"].codebooks_, rb["quantizer"].codebooks_)
    assert_shows_own(a, "embeddings.npy", X1, a.session_state[S.DATA].key)
    assert_shows_own(b, "embeddings.npy", X2, b.session_state[S.DATA].key)


def test_same_content_under_another_name_reuses_the_cache(fits):
    X = data(600, 8, seed=5)
    a = session_with_upload("mine.npy", X)
    b = session_with_upload("a copy with another name.npy", X)
    assert a.session_state[S.DATA].key == b.session_state[S.DATA].key
    quantize(a)
    assert len(fits) == 1
    quantize(b)
    assert len(fits) == 1  # one data set, one fit: B got the cached result
    ra = a.session_state[S.Q_RESULT]["result"]
    rb = b.session_state[S.Q_RESULT]["result"]
    np.testing.assert_array_equal(ra["codes"], rb["codes"])
    assert ra["report"]["reconstruction"] == rb["report"]["reconstruction"]
    # each session shows its own file name with the shared result
    assert_shows_own(a, "mine.npy", X, a.session_state[S.DATA].key)
    assert_shows_own(b, "a copy with another name.npy", X, b.session_state[S.DATA].key)
    # and holds its own copy: changing one session's result leaves the other's alone
    assert ra["codes"] is not rb["codes"] and ra["quantizer"] is not rb["quantizer"]
    before = rb["codes"].copy()
    ra["codes"][:] = 0
    np.testing.assert_array_equal(rb["codes"], before)
