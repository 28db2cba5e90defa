"""A trained model on the Quantize page (issue 18): upload, check against the data, run, downloads.

The models are the committed fixtures of tests/fixtures/models (made with the real
vector-quantize-pytorch, see VERSIONS.txt), each with its own input vectors (``*_X.npy``)
and the codes the library itself gave them (``*_codes.npy``): the app must give the same.
"""

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from apptest_helpers import chart_titles, npy_bytes, ok
from streamlit.testing.v1 import AppTest

import vqcore
from ui import data as D
from ui import state as S
from vqcore.semantic_ids import id_table

try:
    from malformed import malformed_model_cases
except ImportError:  # tests/ imported as a package
    from tests.malformed import malformed_model_cases

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "models"
PAGE = str(ROOT / "pages" / "1_Quantize.py")
TIMEOUT = 60
MIME = "application/octet-stream"


@pytest.fixture(autouse=True)
def _clear_caches():
    st.cache_data.clear()


def fixture(name):
    return (FIX / name).read_bytes()


def quantize_page(X, name="model inputs"):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    S.init(at.session_state)
    S.set_data(at.session_state, X, name=name)
    ok(at.run())
    at.radio(key="q_source").set_value("model")
    return ok(at.run())


def upload_model(at, filename, raw):
    at.file_uploader(key="q_model_upload").set_value((filename, raw, MIME))
    return ok(at.run())


def run(at):
    at.button(key="q_run").click()
    return ok(at.run())


def loaded_rvq():
    X = np.load(FIX / "rvq_X.npy")
    at = upload_model(quantize_page(X), "rvq.pt", fixture("rvq.pt"))
    return at, X


# ---------------------------------------------------------------- the model's own codes, every view


@pytest.mark.parametrize("stem", ["rvq", "vq_proj", "rqvae_lcrec"])
def test_a_loaded_model_gives_its_own_codes_and_every_quantize_view(stem):
    X = np.load(FIX / f"{stem}_X.npy")
    at = upload_model(quantize_page(X), f"{stem}.pt", fixture(f"{stem}.pt"))
    assert not at.error
    found = " ".join(m.value for m in at.markdown)
    assert "found" in found and str(X.shape[1]) in found  # the layout found, and the input d
    ok(run(at))
    stored = at.session_state[S.Q_RESULT]
    assert stored["model"]["name"] == f"{stem}.pt"
    np.testing.assert_array_equal(stored["result"]["codes"], np.load(FIX / f"{stem}_codes.npy"))
    assert at.subheader[0].value.startswith("Your model")
    titles = chart_titles(at)
    assert len(titles) >= 4  # the same figures as a fitted quantizer's
    assert {m.label for m in at.metric} >= {"mse", "dead codes", "collision rate"}


def test_the_model_is_cached_on_its_content_not_its_name():
    at, X = loaded_rvq()
    key = at.session_state[S.Q_MODEL]["key"]
    upload_model(at, "renamed.pt", fixture("rvq.pt"))
    assert at.session_state[S.Q_MODEL]["key"] == key
    assert D.model_key(fixture("rvq.pt"), "a.pt")[0] != D.model_key(fixture("vq.pt"), "a.pt")[0]


def test_a_wider_beam_never_raises_the_error_of_a_loaded_residual_model():
    at, X = loaded_rvq()
    run(at)
    greedy = at.session_state[S.Q_RESULT]["result"]["report"]["reconstruction"]["mse"]
    at.number_input(key="q_model_beam").set_value(8)
    run(at)
    res = at.session_state[S.Q_RESULT]["result"]
    assert res["quantizer"].beam_size == 8
    assert res["report"]["reconstruction"]["mse"] <= greedy + 1e-6


# ---------------------------------------------------------------- the user's pipeline codes


def test_pipeline_codes_that_match_are_counted_and_a_mismatch_is_explained():
    at, X = loaded_rvq()
    run(at)
    codes = np.load(FIX / "rvq_codes.npy")
    at.file_uploader(key="q_pipeline_upload").set_value(("mine.npy", npy_bytes(codes), MIME))
    ok(at.run())
    assert any("200 of 200 rows" in s.value for s in at.success)
    wrong = codes.copy()
    wrong[:50, 2] = (wrong[:50, 2] + 1) % 8  # 50 rows from another encoder at the last level
    at.file_uploader(key="q_pipeline_upload").set_value(("other.npy", npy_bytes(wrong), MIME))
    ok(at.run())
    assert any("150 of 200 rows" in w.value for w in at.warning)
    assert any("wrong embeddings" in c.value for c in at.caption)


def test_pipeline_codes_of_another_shape_get_a_message():
    at, X = loaded_rvq()
    run(at)
    at.file_uploader(key="q_pipeline_upload").set_value(("mine.npy", npy_bytes(np.zeros((200, 5), np.int64)), MIME))
    ok(at.run())
    assert any("codebooks" in e.value for e in at.error)


# ---------------------------------------------------------------- bad model files and mismatches


def test_a_d_mismatch_says_so_keeps_the_data_and_the_last_result():
    X16 = np.load(FIX / "rvq_proj_X.npy")  # 16-d inputs; rvq.pt encodes 8-d vectors
    at = quantize_page(X16)
    at = upload_model(at, "rvq_proj.pt", fixture("rvq_proj.pt"))
    run(at)
    before = at.session_state[S.Q_RESULT]
    upload_model(at, "rvq.pt", fixture("rvq.pt"))
    assert any("d=8" in e.value and "d=16" in e.value for e in at.error)
    assert at.button(key="q_run").disabled
    assert at.session_state[S.DATA].shape == (200, 16)
    assert at.session_state[S.Q_RESULT] is before
    assert chart_titles(at)  # the last result is still drawn


@pytest.fixture(scope="module")
def marker(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("model_pickle") / "trap_fired")
    yield path
    assert not os.path.exists(path), "a pickle in an uploaded model was unpickled"


def test_every_malformed_model_is_refused_with_a_message_and_keeps_the_model_before(marker):
    state = {}
    assert D.accept_model_upload(state, fixture("rvq.pt"), "rvq.pt") is None
    good = state[S.Q_MODEL]
    for case in malformed_model_cases(marker):
        msg = D.accept_model_upload(state, case.data, case.filename)
        assert msg and "Traceback" not in msg, case.name
        assert state[S.Q_MODEL] is good, case.name


@pytest.mark.parametrize("name", ["pt_os_system", "pt_nan_codebook", "pt_truncated", "pt_huge_shape",
                                  "safetensors_nan", "npz_nan_codebooks", "model_wrong_extension"])
def test_a_hostile_or_broken_model_upload_shows_a_message_on_the_page(name, marker):
    case = {c.name: c for c in malformed_model_cases(marker)}[name]
    at, X = loaded_rvq()
    run(at)
    before_model, before_result = at.session_state[S.Q_MODEL], at.session_state[S.Q_RESULT]
    upload_model(at, case.filename, case.data)
    assert at.error and "m." in at.error[0].value.replace("\\", "")  # names the file (markdown-escaped)
    assert any("Still using the model loaded before" in c.value for c in at.caption)
    assert at.session_state[S.Q_MODEL] is before_model
    assert at.session_state[S.Q_RESULT] is before_result
    assert at.session_state[S.DATA].shape == X.shape


# ---------------------------------------------------------------- downloads


def test_the_faiss_index_of_a_loaded_model_searches_as_vqcore_adc():
    faiss = pytest.importorskip("faiss")
    from vqcore.export import adc_search

    q = vqcore.load_quantizer(fixture("rvq.pt"), filename="rvq.pt")
    X = np.load(FIX / "rvq_X.npy")
    codes = q.encode(X)
    index = faiss.deserialize_index(np.frombuffer(D.faiss_index(q, codes), dtype=np.uint8))
    assert index.ntotal == X.shape[0]
    _, found = index.search(X[:20], 5)
    _, expected = adc_search(q, codes, X[:20], 5)
    np.testing.assert_array_equal(found[:, 0], expected[:, 0])


def test_the_faiss_button_becomes_an_install_note_without_faiss(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("no faiss")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    at, X = loaded_rvq()
    run(at)
    assert any("pip install faiss-cpu" in c.value for c in at.caption)


def test_the_trie_and_the_id_table_cover_every_row_with_its_text():
    codes = np.array([[0, 1], [0, 1], [2, 0]])
    trie = json.loads(D.trie_json(codes))
    assert trie["count"] == 3 and trie["children"]["0"]["count"] == 2
    assert trie["children"]["0"]["children"]["1"]["count"] == 2
    csv = D.id_table(codes, "csv", None, ["a", "=HYPERLINK(1)", "c"]).decode()
    assert "'=HYPERLINK(1)" in csv and csv.splitlines()[0] == "row,level_0,level_1,semantic_id,text"
    import pandas as pd

    df = pd.read_parquet(io.BytesIO(D.id_table(codes, "parquet", np.array([4, 7, 9]), None)))
    assert df["row"].tolist() == [4, 7, 9] and df["semantic_id"].tolist() == ["0_1", "0_1", "2_0"]
    df = pd.read_parquet(io.BytesIO(D.id_table(codes, "parquet", np.array([4, 7, 9]), None, np.array([40, 7, 40]))))
    assert df["row"].tolist() == [4, 7, 9] and df["id"].tolist() == [40, 7, 40]
    assert id_table(codes, "csv")  # the engine's own table, for reference


@pytest.mark.parametrize("spec", ["VQ1x4", "PQ4x4", "OPQ4x4", "RQ3x4", "RQ3x4_b4", "AQ2x4", "GRVQ3x4"])
def test_a_codebooks_download_reads_back_as_the_same_quantizer_with_the_same_codes(spec):
    X = np.random.default_rng(0).normal(size=(400, 16)).astype(np.float32)
    q = vqcore.from_spec(spec, random_state=0, n_iter=2).fit(X)
    back = vqcore.load_quantizer(D.codebooks_npz(q), filename=f"{spec}_codebooks.npz")
    assert type(back) is type(q) and back.spec() == q.spec()
    codes = q.encode(X)
    np.testing.assert_array_equal(back.encode(X), codes)
    np.testing.assert_allclose(back.decode(codes), q.decode(codes), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- Map and Semantic IDs on the model's result


def other_page(at, page):
    """``page`` with the session of ``at`` (its data and the Quantize page's result)."""
    other = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=TIMEOUT)
    S.init(other.session_state)
    for k in (S.DATA, S.Q_RESULT, S.Q_MODEL):
        other.session_state[k] = at.session_state[k]
    return ok(other.run())


def test_map_and_semantic_ids_pages_work_on_the_loaded_model():
    at, X = loaded_rvq()
    run(at)
    codes = np.load(FIX / "rvq_codes.npy")
    m = other_page(at, "3_Map.py")
    assert m.get("plotly_chart") and not m.error
    sid = other_page(at, "6_Semantic_IDs.py")
    assert sid.radio(key="sid_source").value == "quantize"  # the default when a Quantize result is there
    np.testing.assert_array_equal(sid.session_state[S.SID_CODES]["codes"], codes)
    assert sid.get("plotly_chart")
    assert {b.label for b in sid.get("download_button")} >= {"ID table (.parquet)", "ID table (.csv)",
                                                             "Prefix trie (JSON)"}


# ---------------------------------------------------------------- Compare: yours against a baseline at the same bits


def compare_page_with_model(stem="rvq", keep=None):
    """The Compare page with the model of fixture ``stem`` loaded; ``keep``: session entries to set
    first (a remembered widget value of another page)."""
    X = np.load(FIX / f"{stem}_X.npy")
    at = AppTest.from_file(str(ROOT / "pages" / "2_Compare.py"), default_timeout=TIMEOUT)
    S.init(at.session_state)
    S.set_data(at.session_state, X, name="model inputs")
    state = {}
    assert D.accept_model_upload(state, fixture(f"{stem}.pt"), f"{stem}.pt") is None
    at.session_state[S.Q_MODEL] = state[S.Q_MODEL]
    at.session_state["keep_cmp_methods"] = []  # only the model and its baselines
    for k, v in (keep or {}).items():
        at.session_state[k] = v
    return ok(at.run()), X


def test_compare_shows_the_model_beside_rq_and_pq_fitted_at_its_bits():
    at, X = compare_page_with_model()
    q = at.session_state[S.Q_MODEL]["quantizer"]
    at.button(key="cmp_fit_baselines").click()
    ok(at.run())
    table = at.dataframe[0].value
    # RQ3x4 at the model's 3 x 4 bits; no PQ: 3 codebooks do not divide d = 8
    assert sorted(zip(table["method"], table["spec"])) == [("RQ", "RQ3x4"), ("Your model", "RQ3x4")]
    assert set(table["bits"]) == {q.bits_per_vector}
    mine = table[table["method"] == "Your model"].iloc[0]
    # the model's row is its own codes measured on the same rows: the mse of decode(encode(X))
    mse = float(((X - q.decode(q.encode(X))) ** 2).sum(1).mean())
    assert mine["mse"] == pytest.approx(mse, rel=1e-4)
    traces = {t["name"] for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]}
    assert "Your model" in traces and "RQ" in traces


def test_compare_says_why_a_model_of_another_d_is_left_out():
    X = np.load(FIX / "rvq_proj_X.npy")
    at = AppTest.from_file(str(ROOT / "pages" / "2_Compare.py"), default_timeout=TIMEOUT)
    S.init(at.session_state)
    S.set_data(at.session_state, X, name="16-d")
    state = {}
    D.accept_model_upload(state, fixture("rvq.pt"), "rvq.pt")
    at.session_state[S.Q_MODEL] = state[S.Q_MODEL]
    ok(at.run())
    assert any("not compared" in c.value and "d=8" in c.value for c in at.caption)


# ---------------------------------------------------------------- Semantic IDs: two code sets


def test_semantic_ids_compares_a_second_code_set_of_the_same_items():
    at, X = loaded_rvq()
    run(at)
    sid = other_page(at, "6_Semantic_IDs.py")
    codes = np.load(FIX / "rvq_codes.npy")
    second = codes.copy()
    second[:40, 2] = (second[:40, 2] + 1) % 16  # 40 items change their last level only
    sid.file_uploader(key="sid_other_upload").set_value(("retrain.npy", npy_bytes(second), MIME))
    ok(sid.run())
    metrics = {m.label: m.value for m in sid.metric}
    assert metrics["IDs changed"] == "20.0%" and metrics["same level 0"] == "100.0%"
    assert "Agreement between two code sets" in chart_titles(sid)
    subtitle = json.dumps(json.loads(sid.get("plotly_chart")[-1].proto.spec)["layout"])
    assert "retrain.npy against the codes above" in subtitle and "20.0% changed" in subtitle
    sid.file_uploader(key="sid_other_upload").set_value(("short.npy", npy_bytes(second[:10]), MIME))
    ok(sid.run())
    assert any("same items" in e.value for e in sid.error)


def test_compare_counts_only_the_selected_runs_not_computed():
    at, X = compare_page_with_model()
    at.button(key="cmp_fit_baselines").click()
    ok(at.run())
    assert not any("not computed yet" in c.value for c in at.caption)  # nothing selected: nothing missing


def test_tensor_names_from_a_model_file_are_shown_as_text_not_markdown():
    at, X = loaded_rvq()
    buf = io.BytesIO()
    np.savez(buf, **{"![x](http://e.invalid/x.png)": np.ones((4, 3), "f4"), "other": np.ones((4, 3), "f4")})
    upload_model(at, "m.npz", buf.getvalue())
    shown = at.error[0].value
    assert "(http://e.invalid/x.png)" not in shown and "![x]" not in shown  # no image fetched from the file
    assert shown.replace("\\", "").count("![x](http://e.invalid/x.png)") == 1  # yet the name is listed
