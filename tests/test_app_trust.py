"""Issue 15: what the app shows must be true. Every row of the loaded data gets its code (the recall
queries are only also searched for), downloads carry each row's number in the user's file, and the
item numbers the Semantic IDs page shows are those rows."""

import io
from pathlib import Path

import numpy as np
import pandas as pd
from apptest_helpers import ok
from streamlit.testing.v1 import AppTest

from ui import data as D
from ui import state as S
from vqcore.datasets import make_gaussian

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 120


def quantize_with_texts(n=1000, d=8, method="RQ", M=3, nbits=3):
    """An app session on n labelled rows ("text of row i") with one Quantize run."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    S.seed(at.session_state, make_gaussian(n, d, random_state=0))
    at.session_state[S.DATA].labels = [f"text of row {i}" for i in range(n)]
    ok(at.run())
    at.switch_page("pages/1_Quantize.py")
    ok(at.run())
    at.selectbox(key="q_method").set_value(method)
    ok(at.run())
    at.number_input(key=f"q_{method}_M").set_value(M)
    at.number_input(key=f"q_{method}_nbits").set_value(nbits)
    at.button(key="q_run").click()
    return ok(at.run())


def test_every_row_gets_its_code_and_the_download_says_which_row():
    at = quantize_with_texts()
    data = at.session_state[S.DATA]
    res = at.session_state[S.Q_RESULT]["result"]
    q = res["quantizer"]
    assert len(res["query_idx"]) == 100  # held out of the search for recall, not out of the codes
    np.testing.assert_array_equal(res["codes"], q.encode(data.X))
    assert at.subheader[0].value == "RQ3x3 on 1,000 items"
    table = pd.read_csv(io.BytesIO(D.codes_csv(res["codes"], data.row_numbers(), data.labels)))
    assert list(table.columns) == ["row", "code_0", "code_1", "code_2", "label"]
    assert len(table) == 1000 and (table["row"] == np.arange(1000)).all()
    np.testing.assert_array_equal(table[["code_0", "code_1", "code_2"]].to_numpy(), res["codes"])
    assert (table["label"] == [f"text of row {i}" for i in range(1000)]).all()
    with np.load(io.BytesIO(D.codes_npz(res["codes"], data.row_numbers())), allow_pickle=False) as z:
        np.testing.assert_array_equal(z["codes"], res["codes"])
        np.testing.assert_array_equal(z["row"], np.arange(1000))
    assert {b.label for b in at.get("download_button")} >= {"Codes (.csv)", "Codes (.npz)"}


def test_rows_dropped_on_loading_keep_the_file_row_numbers():
    state = {}
    csv = b"text,a,b\nr0,1,2\nr1,3,nan\nr2,5,6\nr3,inf,1\nr4,0,1\n"
    assert D.accept_upload(state, csv, "t.csv", drop_nonfinite=True) is None
    data = state[S.DATA]
    assert data.labels == ["r0", "r2", "r4"]
    np.testing.assert_array_equal(data.row_numbers(), [0, 2, 4])
    codes = np.array([[1], [0], [1]], dtype=np.uint8)
    table = pd.read_csv(io.BytesIO(D.codes_csv(codes, data.row_numbers(), data.labels)))
    assert table["row"].tolist() == [0, 2, 4] and table["label"].tolist() == ["r0", "r2", "r4"]
    # the Semantic IDs page numbers the items by the same rows
    cs = D.code_set(codes, 2, X=data.X, labels=data.labels, rows=data.rows)
    assert D.item_numbers(cs, [0, 1, 2]).tolist() == [0, 2, 4]


def test_semantic_ids_item_numbers_are_rows_of_the_data():
    """'item 30' showed the text of another row: the items were the base rows, numbered 0, 1, ..."""
    at = quantize_with_texts(n=600, M=2, nbits=3)  # 64 tuples for 600 items: many collisions
    at.switch_page("pages/6_Semantic_IDs.py")
    ok(at.run())
    assert at.radio(key="sid_source").value == "quantize"
    groups, under = at.dataframe[1].value, at.dataframe[2].value
    assert len(groups) > 0 and len(under) > 0
    for table in (groups, under):
        assert (table["text"] == [f"text of row {i}" for i in table["item"]]).all()
    codes = at.session_state[S.Q_RESULT]["result"]["codes"]
    for item, ident in zip(under["item"], under["ID"]):
        assert "/".join(map(str, codes[item])) == ident
