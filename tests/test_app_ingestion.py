"""Every malformed file of tests/malformed.py, uploaded on the home page through AppTest.

What must hold for each file (issue 4, "Safe ingestion"):
- the page shows one ``st.error`` whose text is a sentence for a person (not a
  traceback) and names the file; no exception reaches the page;
- the data loaded before (here ``before.npy``, itself uploaded through the same
  widget) stays active: same name, shape and content hash, and the page still
  summarises it;
- nothing is ever unpickled (the pickle traps of the corpus never fire).

Uploads go through the real ``st.file_uploader`` of app.py: in this Streamlit
version AppTest can set a file on it (``at.file_uploader(key=...).set_value``),
and the page then calls ``ui.data.accept_upload`` with the bytes and name
exactly as it does in a browser.

The uploader declares no file types, so that every name, ``x.txt`` and
``x.pkl`` included, reaches the app's loader and gets its message (Streamlit's
own extension check would raise on the page instead).

Files whose only fault is NaN or infinity follow the person's choice on the
page: "drop" loads the other rows and says so, "stop" refuses the file.
"""

import os
import tomllib
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from apptest_helpers import chart_titles, npy_bytes, ok
from streamlit.testing.v1 import AppTest

from ui import charts
from ui import data as D
from ui import state as S
from ui.text import md
from vqcore.exceptions import DataError
from vqcore.io import DEFAULT_MAX_BYTES, load_embeddings

try:
    from malformed import malformed_cases
except ImportError:  # tests/ imported as a package
    from tests.malformed import malformed_cases

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 60
MIME = "application/octet-stream"
NAMES = [c.name for c in malformed_cases()]
# files whose only fault is rows with NaN / infinity, and how many such rows (as in tests/test_io.py)
NONFINITE = {"npy_nan_rows": 2, "npy_float64_overflow": 1, "csv_nan_inf": 3, "csv_values_overflow": 1,
             "parquet_null_values": 1, "fvecs_nan": 1}
BEFORE = np.random.default_rng(7).standard_normal((40, 6)).astype(np.float32)


@pytest.fixture(scope="module", autouse=True)
def _clear_cache():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


@pytest.fixture(scope="module")
def marker(tmp_path_factory):
    """Where a pickle trap of the corpus would write if it were ever unpickled."""
    return str(tmp_path_factory.mktemp("pickle") / "trap_fired")


@pytest.fixture(scope="module")
def corpus(marker):
    yield {c.name: c for c in malformed_cases(marker)}
    assert not os.path.exists(marker), "a pickle in an uploaded file was unpickled"


def snapshot(at):
    data = at.session_state[S.DATA]
    return data.name, data.shape, data.key


def uploader(at):
    return at.file_uploader(key=S.HOME_UPLOAD)


def home_with_data(drop_nonfinite):
    """The home page with ``before.npy`` uploaded through the uploader, and the NaN choice set."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    S.init(at.session_state)  # a tiny start instead of the shipped sample keeps each case fast
    S.set_data(at.session_state, BEFORE[:5], name="start")
    ok(at.run())
    uploader(at).set_value(("before.npy", npy_bytes(BEFORE), MIME))
    at.checkbox(key=S.HOME_DROP_NONFINITE).set_value(drop_nonfinite)
    ok(at.run())
    assert not at.error and [s.value for s in at.success] == ["Loaded before.npy."]
    assert snapshot(at)[:2] == ("before.npy", (40, 6))
    np.testing.assert_array_equal(at.session_state[S.DATA].X, BEFORE)
    return at


def assert_previous_data_kept(at, before):
    assert snapshot(at) == before
    np.testing.assert_array_equal(at.session_state[S.DATA].X, BEFORE)
    assert at.subheader[-1].value == "Loaded: before.npy"
    assert {m.label: m.value for m in at.metric}["rows n"] == "40"
    assert chart_titles(at) == [charts.TITLES["norms"], charts.TITLES["pca"]]


def assert_person_message(text, filename):
    assert text.strip()
    assert "Traceback" not in text and 'File "' not in text
    assert filename in text  # says which file


# ---------------------------------------------------------------- the corpus, through the uploader


def test_corpus_is_the_whole_malformed_set(corpus):
    assert len(NAMES) >= 30 and len(set(NAMES)) == len(NAMES)
    # the files the loader reads and only finalize refuses are exactly the NaN / infinity ones tested below
    readable = set()
    for case in corpus.values():
        try:
            load_embeddings(case.data, case.filename)
        except DataError:
            continue
        readable.add(case.name)
    assert readable == set(NONFINITE)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.slow
def test_malformed_upload_shows_an_error_and_keeps_the_previous_data(name, corpus):
    """With "stop" chosen for NaN / infinity, every file of the corpus is refused."""
    case = corpus[name]
    at = home_with_data(drop_nonfinite=False)
    before = snapshot(at)
    uploader(at).set_value((case.filename, case.data, MIME))
    at.run()

    ok(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    assert_person_message(errors[0], case.filename)
    assert not at.success
    assert md(at.session_state[S.HOME_UPLOAD_ERROR]) == errors[0]  # shown escaped (ui.text.md)
    assert any(c.value == "Still using the data loaded before: before.npy." for c in at.caption)
    assert_previous_data_kept(at, before)
    if name in NONFINITE:
        assert "NaN or infinite" in errors[0] and "drop" in errors[0]


def test_the_uploader_lets_every_file_reach_the_loader():
    at = home_with_data(drop_nonfinite=True)
    assert not uploader(at).allowed_type


def test_a_refused_upload_then_a_good_one_loads_the_good_one(corpus):
    """One session: a bad file, then a good file, then another bad file."""
    at = home_with_data(drop_nonfinite=False)
    before = snapshot(at)
    uploader(at).set_value(("bomb.npz", corpus["npz_zip_bomb"].data, MIME))
    ok(at.run())
    assert at.error and snapshot(at) == before
    other = BEFORE[:12, :3] * 2
    uploader(at).set_value(("other.npy", npy_bytes(other), MIME))
    ok(at.run())
    assert not at.error and snapshot(at)[:2] == ("other.npy", (12, 3))
    np.testing.assert_array_equal(at.session_state[S.DATA].X, other)
    after_good = snapshot(at)
    uploader(at).set_value(("trap.npy", corpus["npy_pickle_trap"].data, MIME))
    ok(at.run())
    assert at.error and "pickle" in at.error[0].value
    assert snapshot(at) == after_good


# ---------------------------------------------------------------- NaN / infinity: the person's choice


@pytest.mark.parametrize("name", sorted(NONFINITE))
def test_nonfinite_rows_dropped_when_the_person_chooses_drop(name, corpus):
    case = corpus[name]
    loaded = load_embeddings(case.data, case.filename)  # the file as it is, NaN rows included
    n_bad = NONFINITE[name]
    keep = np.isfinite(loaded.X).all(axis=1)
    assert int((~keep).sum()) == n_bad
    at = home_with_data(drop_nonfinite=True)
    uploader(at).set_value((case.filename, case.data, MIME))
    ok(at.run())
    assert not at.error
    assert [s.value for s in at.success] == [f"Loaded {case.filename}."]
    data = at.session_state[S.DATA]
    assert data.shape == (int(keep.sum()), loaded.X.shape[1])
    np.testing.assert_array_equal(data.X, loaded.X[keep])
    assert data.nonfinite_found == n_bad
    assert {m.label: m.value for m in at.metric}["non-finite rows"] == str(n_bad)
    notes = " ".join(m.value for m in at.markdown)
    assert md(f"Dropped {n_bad} row(s) with NaN or infinite values") in notes  # notes are shown escaped
    assert md(f"Found {n_bad} row(s) with NaN or infinity; they were dropped.") in notes


@pytest.mark.parametrize("name", ["npy_nan_rows", "csv_nan_inf"])
def test_switching_from_drop_to_stop_refuses_the_same_file(name, corpus):
    """Unticking "drop" re-reads the file under the new choice; the dropped version stays loaded."""
    case = corpus[name]
    at = home_with_data(drop_nonfinite=True)
    uploader(at).set_value((case.filename, case.data, MIME))
    ok(at.run())
    dropped = snapshot(at)
    assert dropped[0].startswith(case.filename) and not at.error
    at.checkbox(key=S.HOME_DROP_NONFINITE).uncheck()
    ok(at.run())
    assert len(at.error) == 1 and "NaN or infinite" in at.error[0].value
    assert snapshot(at) == dropped
    at.checkbox(key=S.HOME_DROP_NONFINITE).check()
    ok(at.run())
    assert not at.error and snapshot(at) == dropped


def test_a_file_of_only_nonfinite_rows_is_refused_even_with_drop():
    at = home_with_data(drop_nonfinite=True)
    before = snapshot(at)
    uploader(at).set_value(("allnan.npy", npy_bytes(np.full((3, 2), np.nan, np.float32)), MIME))
    ok(at.run())
    assert len(at.error) == 1 and "all 3 rows" in at.error[0].value
    assert_previous_data_kept(at, before)


# ---------------------------------------------------------------- configuration


def test_config_caps_uploads_and_turns_off_what_it_should():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["enableXsrfProtection"] is True
    assert cfg["browser"]["gatherUsageStats"] is False
    # Streamlit's maxUploadSize is in MiB (it multiplies by 1024 * 1024): the same cap as the loaders
    assert cfg["server"]["maxUploadSize"] * 2**20 == DEFAULT_MAX_BYTES
    assert D.MAX_UPLOAD_MB == cfg["server"]["maxUploadSize"]


def test_the_uploader_states_the_cap():
    at = home_with_data(drop_nonfinite=True)
    up = uploader(at)
    mb = DEFAULT_MAX_BYTES // 2**20
    assert f"Up to {mb} MB" in up.help
    assert up.proto.max_upload_size_mb == mb
    assert "nothing is unpickled" in up.help
    readme = (ROOT / "README.md").read_text()
    assert f"up to {mb} MB" in readme
