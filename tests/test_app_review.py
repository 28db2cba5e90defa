"""Trust fixes of the session-6 review: the data's id column kept and exported beside the row
number, a data key that covers every input of a cached result, escaped error messages, npz
choices that apply without a re-upload, and the Compare row of a loaded model with its own beam."""

import copy
import re
from pathlib import Path

import numpy as np
import pytest
from apptest_helpers import ok
from streamlit.testing.v1 import AppTest

from ui import state as S
from ui.text import md
from vqcore.datasets import make_gaussian

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 120
HOSTILE = "**x**<img src=x onerror=alert(1)>"


def assert_literal(body):
    """Every ``*``, ``<`` and ``>`` of a Markdown body is escaped: it renders as that character."""
    assert not re.search(r"(?<!\\)[*<>]", body), body


# ---------------------------------------------------------------- item 3: errors quoting user text


def test_map_error_quoting_typed_text_shows_it_literally():
    at = AppTest.from_file(str(ROOT / "pages" / "3_Map.py"), default_timeout=TIMEOUT)
    S.seed(at.session_state, make_gaussian(600, 6, random_state=0))
    ok(at.run())
    at.button(key="map_run_default").click()
    ok(at.run())
    at.text_input(key="map_highlight").input(HOSTILE)
    ok(at.run())
    body = at.error[0].value
    assert md(repr(HOSTILE)) in body  # the Markdown source shows every character as itself
    assert_literal(body)


# ---------------------------------------------------------------- item 2: the data key covers labels


def labelled_csv(X, labels, ids=None, id_name="item_id"):
    """CSV bytes: an optional id column, then one column per dimension, then a label column."""
    head = ([id_name] if ids is not None else []) + [f"x{j}" for j in range(X.shape[1])] + ["title"]
    lines = [",".join(head)]
    for i, (row, lab) in enumerate(zip(X, labels, strict=True)):
        lines.append(",".join(([str(ids[i])] if ids is not None else []) + [f"{v:.6f}" for v in row] + [lab]))
    return ("\n".join(lines) + "\n").encode()


def upload_home(at, name, raw):
    at.switch_page("app.py")
    ok(at.run())
    at.file_uploader(key=S.HOME_UPLOAD).set_value((name, raw, "application/octet-stream"))
    return ok(at.run())


def run_quantize(at, method="RQ", M=2, nbits=3):
    at.switch_page("pages/1_Quantize.py")
    ok(at.run())
    at.selectbox(key="q_method").set_value(method)
    ok(at.run())
    at.number_input(key=f"q_{method}_M").set_value(M)
    at.number_input(key=f"q_{method}_nbits").set_value(nbits)
    at.button(key="q_run").click()
    return ok(at.run())


def semantic_ids_texts(at):
    """The texts the Semantic IDs page shows for the Quantize codes (its code set, and the texts
    of its collision-group listing)."""
    at.switch_page("pages/6_Semantic_IDs.py")
    ok(at.run())
    cs = at.session_state[S.SID_CODES]
    shown = [df.value for df in at.dataframe if "text" in df.value.columns and "group" in df.value.columns]
    return cs, (shown[0] if shown else None)


def test_same_vectors_with_other_labels_never_share_a_result():
    X = make_gaussian(400, 4, random_state=1).X
    X = np.round(X, 6)
    X[1] = X[0]  # a collision group, so the page lists items with their texts
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    ok(at.run())
    upload_home(at, "a.csv", labelled_csv(X, [f"old {i}" for i in range(400)]))
    key_a = at.session_state[S.DATA].key
    run_quantize(at)
    cs, groups = semantic_ids_texts(at)
    assert cs["labels"][:3] == ["old 0", "old 1", "old 2"]
    upload_home(at, "b.csv", labelled_csv(X, [f"new {i}" for i in range(400)]))
    data = at.session_state[S.DATA]
    assert data.key != key_a  # same vectors, other texts: another data set
    at.switch_page("pages/6_Semantic_IDs.py")
    ok(at.run())
    assert any("other data" in i.value for i in at.info)  # the old result is not shown with the new texts
    run_quantize(at)
    cs, groups = semantic_ids_texts(at)
    assert cs["labels"] == [f"new {i}" for i in range(400)]
    first = groups[groups["item"] == 0]
    assert first["text"].tolist() == ["new 0"]


# ---------------------------------------------------------------- item 5: the model's beam on Compare


def test_compare_row_of_a_loaded_model_uses_the_beam_chosen_for_it_and_says_so():
    import streamlit as st
    from test_app_models import compare_page_with_model

    st.cache_data.clear()
    at, X = compare_page_with_model()
    q = at.session_state[S.Q_MODEL]["quantizer"]
    table = at.dataframe[0].value
    mine = table[table["method"] == "Your model"].iloc[0]
    assert mine["encoding"] == "greedy (beam 1)"  # the libraries' own setting, said in the row
    greedy = float(((X - q.decode(q.encode(X))) ** 2).sum(1).mean())
    assert mine["mse"] == pytest.approx(greedy, rel=1e-4)
    # a beam chosen for the model on the Quantize page is the one Compare starts from
    at2, _ = compare_page_with_model(keep={"keep_q_model_beam": 4})
    table = at2.dataframe[0].value
    mine = table[table["method"] == "Your model"].iloc[0]
    wide = copy.deepcopy(q).set_params(beam_size=4)
    beam4 = float(((X - wide.decode(wide.encode(X))) ** 2).sum(1).mean())
    assert mine["encoding"] == "beam 4" and mine["spec"].endswith("_b4")
    assert mine["mse"] == pytest.approx(beam4, rel=1e-4) and beam4 < greedy
    # and a beam typed on the Compare page is used
    at2.number_input(key="cmp_model_beam").set_value(2)
    ok(at2.run())
    mine = at2.dataframe[0].value.query("method == 'Your model'").iloc[0]
    assert mine["encoding"] == "beam 2"
