"""Issue 15: what the app shows must be true. Every row of the loaded data gets its code (the recall
queries are only also searched for), downloads carry each row's number in the user's file, and the
item numbers the Semantic IDs page shows are those rows."""

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from apptest_helpers import npy_bytes, ok, run_quantize
from streamlit.testing.v1 import AppTest

from ui import charts
from ui import data as D
from ui import state as S
from ui import widgets as W
from vqcore import metrics
from vqcore.datasets import Dataset, make_gaussian
from vqcore.io import load_codes
from vqcore.semantic_ids import prefix_tree

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 120


def quantize_with_texts(n=1000, d=8, method="RQ", M=3, nbits=3):
    """An app session on n labelled rows ("text of row i") with one Quantize run."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    S.seed(at.session_state, make_gaussian(n, d, random_state=0))
    at.session_state[S.DATA].labels = [f"text of row {i}" for i in range(n)]
    ok(at.run())
    return run_quantize(at, method, M, nbits)


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
    # the file loads back (Semantic IDs page) as the same codes and texts: the row column is not a level
    back = load_codes(D.codes_csv(res["codes"], data.row_numbers(), data.labels), "codes.csv")
    np.testing.assert_array_equal(back.codes, res["codes"])
    assert back.labels == data.labels
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


# ---------------------------------------------------------------- charts


def test_mi_heatmap_colours_only_what_stands_above_the_shuffled_baseline():
    """Independent positions with n < K²: the plug-in MI is large and pure bias; the colour is ~0.
    A dependent pair (position 3 copies position 0) stands out."""
    rng = np.random.default_rng(0)
    n, K = 1500, 64
    codes = rng.integers(0, K, size=(n, 4))
    codes[:, 3] = codes[:, 0]
    report = {"n": n, "codebook_size": K, "mutual_information": metrics.mutual_information(codes, K).tolist(),
              "mutual_information_baseline": metrics.mutual_information_baseline(codes, K).tolist()}
    fig = charts.mutual_information(report)
    z = np.asarray(fig.data[0].z, dtype=float)
    mi = np.asarray(report["mutual_information"])
    independent = [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]
    assert min(mi[a, b] for a, b in independent) > 1.0  # the estimator's bias at n < K²
    assert max(z[a, b] for a, b in independent) < 0.15
    assert z[0, 3] > 4.0  # log2 64 = 6 bits shared, minus the baseline
    assert "1 of 6 pairs" in fig.layout.title.subtitle.text
    custom = np.asarray(fig.data[0].customdata, dtype=float)
    assert custom[0, 1, 0] == pytest.approx(mi[0, 1])  # the raw MI stays in the hover


def test_code_tree_has_a_root_whose_hover_has_numbers():
    codes = np.array([[0, 0], [0, 1], [1, 1], [1, 1], [2, 0]])
    tree = prefix_tree(codes, max_depth=2, max_children=1)
    fig = charts.code_tree(tree, n=5, kind="treemap", max_children=1)
    t = fig.data[0]
    assert t.ids[0] == "all items" and t.parents[0] == "" and t.values[0] == 5
    assert t.customdata[0][0] == "all 5 items" and t.customdata[0][1] == "100.0%"
    assert set(t.parents[1:]) <= set(t.ids)  # every node hangs from a drawn node: no implicit root
    assert sum(v for v, p in zip(t.values, t.parents) if p == "all items") == 5


def test_norm_histogram_of_equal_norms_says_the_norm():
    X = make_gaussian(500, 8, random_state=0).X
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    norms = np.linalg.norm(X, axis=1)
    fig = charts.norm_histogram(norms, unit_norm=True)
    assert fig.layout.title.subtitle.text.startswith("all norms = 1.000")
    (bar,) = fig.data
    assert list(bar.y) == [500]  # one bar holds every row, instead of a histogram with no width
    assert charts.norm_histogram(np.linspace(0.5, 2, 100)).data[0].type == "histogram"


def test_compare_colours_follow_the_method_not_the_selection():
    def row(method, bits):
        return {"method": method, "bits": bits, "spec": f"{method}{bits // 8}x8", "relative": 0.5, "mse": 1.0,
                "recall": {"10": 0.5}, "fit_seconds": 1.0, "entropy_bits": [7.0], "codebook_size": 256,
                "residual_variance": {"kind": "cumulative", "values": [1.0, 0.5]}}

    def colours(rows):
        return {t.name: t.line.color for t in charts.rate_distortion(rows).data}

    alone = colours([row("RQ", 16)])
    together = colours([row("PQ", 16), row("RQ", 16), row("AQ", 16)])
    assert alone["RQ"] == together["RQ"]
    assert len(set(together.values())) == 3


def test_usage_legend_makes_room_for_the_dead_code_entry():
    def report(dead):
        counts = [[5, 5, 5, 5] for _ in range(4)]
        if dead:
            counts[2] = [10, 10, 0, 0]
        d = [sum(c == 0 for c in cs) for cs in counts]
        return {"n": 20, "codebook_size": 4, "usage": {"counts": counts, "dead": d}}

    without, with_dead = charts.codebook_usage(report(False)), charts.codebook_usage(report(True))
    assert "dead code" in [t.name for t in with_dead.data if t.showlegend is not False]
    assert with_dead.layout.margin.t > without.layout.margin.t


# ---------------------------------------------------------------- pages


def test_home_page_names_every_page_and_notes_duplicates_once():
    X = make_gaussian(300, 4, random_state=0).X
    X[10] = X[3]
    at = ok(AppTest.from_file(APP, default_timeout=TIMEOUT).run())
    intro = at.markdown[0].value
    for _, label, _ in W.PAGES[1:]:
        assert f"**{label}**" in intro
    at.file_uploader(key=S.HOME_UPLOAD).upload("dup.npy", npy_bytes(X))
    ok(at.run())
    notes = [line for m in at.markdown for line in m.value.splitlines() if line.startswith("- ")]
    assert sum("duplicate" in line or "repeat" in line for line in notes) == 1


def test_map_run_default_then_the_map_alone_and_a_highlighted_code():
    toy = make_gaussian(1000, 8, random_state=0)
    at = AppTest.from_file(str(ROOT / "pages" / "3_Map.py"), default_timeout=TIMEOUT)
    S.seed(at.session_state, toy)
    ok(at.run())
    at.button(key="map_run_default").click()
    ok(at.run())
    assert not at.info and not [b for b in at.button if b.key == "map_run_default"]
    codes = at.session_state[S.Q_RESULT]["result"]["codes"]
    at.text_input(key="map_highlight").input("3")
    ok(at.run())
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    picked = next(t for t in fig["data"] if t["name"] == "code 3 at position 0")
    assert len(picked["customdata"]) == int((codes[:, 0] == 3).sum()) > 0
    assert {int(r[2]) for r in picked["customdata"]} == set(np.flatnonzero(codes[:, 0] == 3).tolist())
    at.text_input(key="map_highlight").input(f"{codes[0, 0]}/{codes[0, 1]}")
    ok(at.run())
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    want = (codes[:, 0] == codes[0, 0]) & (codes[:, 1] == codes[0, 1])
    picked = next(t for t in fig["data"] if t["name"].startswith("prefix "))
    assert {int(r[2]) for r in picked["customdata"]} == set(np.flatnonzero(want).tolist())
    at.text_input(key="map_highlight").input("999")
    ok(at.run())
    assert "out of range" in at.error[0].value


def test_semantic_ids_prefix_out_of_range_single_items_and_dead_codes():
    codes = np.array([[0, 0], [0, 0], [0, 1], [5, 2]])
    X = np.array([[0, 0], [0.1, 0], [3, 3], [9, 9]], dtype=np.float32)
    at = AppTest.from_file(str(ROOT / "pages" / "6_Semantic_IDs.py"), default_timeout=TIMEOUT)
    S.seed(at.session_state, Dataset(X=X, labels=list("abcd"), name="four", description="hand-made"))
    ok(at.run())
    at.radio(key="sid_source").set_value("upload")
    ok(at.run())
    at.number_input(key="sid_K").set_value(256)
    at.checkbox(key="sid_use_data").check()
    at.file_uploader(key="sid_upload").upload("c.npy", npy_bytes(codes))
    ok(at.run())
    dead = next(m for m in at.metric if m.label == "dead codes")
    assert dead.value == f"{2 * 256 - 5:,}"  # the count alone: "507 of 512" was cut in its column
    at.radio(key="sid_pick_how").set_value("type")
    ok(at.run())
    at.text_input(key="sid_prefix_text").input("999")
    ok(at.run())
    assert at.error and "out of range" in at.error[0].value and not at.warning
    at.text_input(key="sid_prefix_text").input("5")
    ok(at.run())
    m = {x.label: x.value for x in at.metric}
    assert m["items under it"] == "1" and m["tightness"] == "—" and m["mean distance to their centre"] == "—"
    at.text_input(key="sid_prefix_text").input("0/0")
    ok(at.run())
    assert {x.label: x.value for x in at.metric}["tightness"] != "—"


def test_code_tree_starts_readable_one_level_at_a_time_largest_first():
    """At 2 levels x 256 branches drawn at once the tree was specks and a hairball: the treemap shows
    one level at a time under the root (a click opens a box), largest first."""
    codes = np.random.default_rng(0).integers(0, 256, size=(3000, 2))
    at = AppTest.from_file(str(ROOT / "pages" / "6_Semantic_IDs.py"), default_timeout=TIMEOUT)
    S.seed(at.session_state, make_gaussian(3000, 4, random_state=0))
    ok(at.run())
    at.radio(key="sid_source").set_value("upload")
    ok(at.run())
    at.number_input(key="sid_K").set_value(256)
    at.file_uploader(key="sid_upload").upload("c.npy", npy_bytes(codes))
    ok(at.run())
    fig = next(json.loads(el.proto.spec) for el in at.get("plotly_chart")
               if json.loads(el.proto.spec)["layout"]["title"]["text"] == charts.TITLES["sid_tree"])
    tree = fig["data"][0]
    assert tree["type"] == "treemap" and tree["ids"][0] == "all items"
    assert tree["maxdepth"] == 2  # the root and one level of boxes, each large enough to label
    level0 = [(v, i) for i, v, p in zip(tree["ids"], tree["values"], tree["parents"]) if p == "all items"]
    sizes = [v for v, i in level0 if i != "other"]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == np.bincount(codes[:, 0]).max()
    assert any(p not in ("", "all items") for p in tree["parents"])  # the next level is there, for a click
