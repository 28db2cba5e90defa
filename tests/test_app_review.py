"""Trust fixes of the session-6 review: the data's id column kept and exported beside the row
number, a data key that covers every input of a cached result, escaped error messages, npz
choices that apply without a re-upload, and the Compare row of a loaded model with its own beam."""

import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest
from apptest_helpers import ok, run_quantize
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


# ---------------------------------------------------------------- item 1: the id column


def id_csv():
    """300 rows with an item_id column (a formula, Markdown/HTML, a repeated id), 4 numbers and a title;
    row 3 holds a NaN (dropped on loading), rows 0 and 1 the same vector (a collision group)."""
    n = 300
    X = np.round(make_gaussian(n, 4, random_state=3).X, 5)
    X[1] = X[0]
    ids = [f"sku-{i:04d}" for i in range(n)]
    ids[5], ids[7], ids[9] = "=HYPERLINK(1)", HOSTILE.replace(",", ";"), ids[8]
    lines = ["item_id,x0,x1,x2,x3,title"]
    for i in range(n):
        vals = ["nan" if (i == 3 and j == 0) else f"{X[i, j]:.5f}" for j in range(4)]
        lines.append(",".join([ids[i]] + vals + [f"title {i}"]))
    return ("\n".join(lines) + "\n").encode(), ids


def csv_rows(raw):
    import csv
    import io

    return list(csv.DictReader(io.StringIO(raw.decode())))


def shown_id(value):
    """An id as a CSV download writes it: text a spreadsheet would run as a formula starts with '."""
    return "'" + value if value.startswith(("=", "+", "-", "@")) else value


def check_rows(table, ids, *, id_col="id", labels_col=None):
    """Every line of a per-row download: its id is the id of its row in the file."""
    assert table, "empty download"
    for line in table:
        r = int(line["row"])
        assert line[id_col] == shown_id(ids[r]), (r, line)
        if labels_col:
            assert line[labels_col] == f"title {r}"


def test_the_id_column_goes_with_every_per_row_download_and_listing():
    import io

    import pandas as pd
    from apptest_helpers import download_bytes

    raw, ids = id_csv()
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    ok(at.run())
    upload_home(at, "ids.csv", raw)
    data = at.session_state[S.DATA]
    kept = [i for i in range(300) if i != 3]
    assert data.ids.tolist() == [ids[i] for i in kept] and data.row_numbers().tolist() == kept
    notes = " ".join(m.value for m in at.markdown)
    assert "repeat an id" in notes  # a warning, and the file loaded
    assert md("'item_id'") in notes
    run_quantize(at, M=2, nbits=4)
    check_rows(csv_rows(download_bytes(at, "q_dl_codes_csv")), ids, labels_col="label")
    with np.load(io.BytesIO(download_bytes(at, "q_dl_codes")), allow_pickle=False) as z:
        assert [ids[r] for r in z["row"]] == z["id"].tolist()
    check_rows(csv_rows(download_bytes(at, "q_dl_ids_csv")), ids, labels_col="text")
    table = pd.read_parquet(io.BytesIO(download_bytes(at, "q_dl_ids_parquet")))
    assert table["id"].tolist() == [ids[r] for r in table["row"]] and table["row"].tolist() == kept

    # Semantic IDs: the collision groups list each item's id beside its row; the downloads carry both
    at.switch_page("pages/6_Semantic_IDs.py")
    ok(at.run())
    groups = next(df.value for df in at.dataframe if "group" in df.value.columns)
    assert groups["id"].tolist() == [ids[r] for r in groups["item"]]
    assert len(groups) >= 2 and groups["id"].str.startswith("sku-").any()
    check_rows(csv_rows(download_bytes(at, "sid_ids_csv")), ids, labels_col="text")
    at.button(key="sid_dedup_btn").click()
    ok(at.run())
    check_rows(csv_rows(download_bytes(at, "sid_dl_csv")), ids, labels_col="label")
    at.radio(key="sid_pick_how").set_value("type")
    ok(at.run())
    codes = at.session_state[S.SID_CODES]["codes"]
    at.text_input(key="sid_prefix_text").input(str(codes[0, 0]))
    ok(at.run())
    under = next(df.value for df in at.dataframe if "ID" in df.value.columns and "item" in df.value.columns
                 and "group" not in df.value.columns)
    assert under["id"].tolist() == [ids[r] for r in under["item"]]

    # Map: the points download and the hover carry the id of each row
    at.switch_page("pages/3_Map.py")
    ok(at.run())
    points = csv_rows(download_bytes(at, "map_dl_points"))
    assert len(points) == 299
    check_rows(points, ids, labels_col="label")
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    pts = fig["data"][0]
    assert "id %{customdata[3]}" in pts["hovertemplate"]
    assert all(c[3] == ids[int(c[2])].replace("<", "&lt;").replace(">", "&gt;") for c in pts["customdata"])


# ---------------------------------------------------------------- item 4: npz choices without a re-upload


def npz_upload_released(at, name, raw):
    """Upload ``raw`` on the home page; then the uploader gives no file, as on a real server once the
    page has released the upload it read (ui.widgets.release_upload; AppTest keeps its own copy)."""
    upload_home(at, name, raw)
    at.file_uploader(key=S.HOME_UPLOAD).set_value(None)
    return ok(at.run())


def test_another_npz_array_or_label_array_is_read_without_a_new_upload():
    import io

    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((50, 4)).astype(np.float32), rng.standard_normal((50, 3)).astype(np.float32)
    buf = io.BytesIO()
    np.savez(buf, A=A, B=B, titles=np.array([f"t{i}" for i in range(50)]),
             names=np.array([f"n{i}" for i in range(50)]), item_id=np.arange(100, 150))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    ok(at.run())
    npz_upload_released(at, "x.npz", buf.getvalue())
    data = at.session_state[S.DATA]
    np.testing.assert_array_equal(data.X, A)  # the largest
    assert data.labels is None and data.ids.tolist() == list(range(100, 150))  # two text arrays: none chosen
    at.text_input(key="home_npz_key").input("B")
    ok(at.run())
    np.testing.assert_array_equal(at.session_state[S.DATA].X, B)
    assert any("'B' (50 × 3 float32)" in c.value.replace("\\", "") for c in at.caption)  # the choices, named
    assert not at.error and at.success[0].value == "Loaded x.npz."
    at.text_input(key="home_text_col").input("names")
    ok(at.run())
    data = at.session_state[S.DATA]
    np.testing.assert_array_equal(data.X, B)
    assert data.labels == [f"n{i}" for i in range(50)] and data.ids.tolist() == list(range(100, 150))
    # a name the file does not hold: the message names its arrays, and the data stays
    at.text_input(key="home_npz_key").input("C")
    ok(at.run())
    assert "array_key='C' is not in" in at.error[0].value.replace("\\", "")
    np.testing.assert_array_equal(at.session_state[S.DATA].X, B)


def test_a_kept_npz_counts_in_the_servers_cap_and_is_not_kept_past_it(monkeypatch):
    import io

    from ui import data as D

    X = np.random.default_rng(1).standard_normal((2000, 64)).astype(np.float32)
    buf = io.BytesIO()
    np.savez(buf, X=X, small=X[:, :2])
    raw = buf.getvalue()
    state = {}
    assert D.accept_upload(state, raw, "x.npz") is None
    assert state[S.DATA].upload == ("x.npz", raw)
    assert S.held_bytes() >= X.nbytes + len(raw)  # the kept file is held data too
    # a cap that holds the array but not the file as well: the file is released as before
    monkeypatch.setattr(D, "MAX_HELD_MB", (S.held_bytes() + X.nbytes + len(raw) // 2) / 2**20)
    state2 = {}
    assert D.accept_upload(state2, raw, "x.npz") is None
    assert state2[S.DATA].upload is None
    assert "upload it again" in D.reread_upload(state2, array_key="small")
