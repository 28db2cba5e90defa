"""AppTest for the Semantic IDs page (pages/6_Semantic_IDs.py).

What must hold:
- the one-click demo (RQ 3x8 on the shipped sample) draws every titled chart, with
  the sample's texts in the tree's hover, and no exception;
- an uploaded codes file shows the collision numbers worked out by hand;
- a bad codes file (negative codes, a 1-D array, non-integer floats, the wrong number
  of rows for the items) is an st.error that names the problem, and the codes loaded
  before stay on the page;
- de-duplication gives every item a unique ID with as many extra codes as the
  largest collision group, and offers both exports;
- the codes of the Quantize page's result are picked up with their texts.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from apptest_helpers import npy_bytes, ok
from streamlit.testing.v1 import AppTest

from ui import cache, charts
from ui import data as D
from ui import state as S
from vqcore import metrics
from vqcore.datasets import Dataset, make_gaussian
from vqcore.io import load_codes
from vqcore.semantic_ids import prefix_collision_table

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
PAGE = str(ROOT / "pages" / "6_Semantic_IDs.py")
TIMEOUT = 120
CODES = S.SID_CODES

# Eight items over two levels (the hand-worked example of tests/test_semantic_ids.py):
#   tuples (0,0) -> items 0,1,4   (0,1) -> 2   (0,2) -> 7   (1,2) -> 3,5   (1,3) -> 6
#   5 distinct IDs of 8 items: collision rate 3/8; at depth 1, 2 distinct: 6/8.
#   largest group 3; TIGER's extra token, in item order: 0 1 0 0 2 1 0 0.
HAND = np.array([[0, 0], [0, 0], [0, 1], [1, 2], [0, 0], [1, 2], [1, 3], [0, 2]])
TEXTS = ["apple", "apples", "pear", "car", "apple pie", "cars", "truck", "plum"]


def chart_specs(at):
    return {json.loads(el.proto.spec)["layout"]["title"]["text"]: json.loads(el.proto.spec)
            for el in at.get("plotly_chart")}


def metric_values(at):
    return {m.label: m.value for m in at.metric}


def hand_items():
    """Eight 2-D items whose rows go with HAND: items 0, 1, 4 close together, 3 and 5 far apart."""
    X = np.array([[0, 0], [0.1, 0], [5, 5], [10, 0], [0, 0.1], [-10, 0], [3, -3], [4, 4]], dtype=np.float32)
    return Dataset(X=X, labels=list(TEXTS), name="eight fruits and cars", description="hand-made")


def page(dataset=None):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    S.seed(at.session_state, dataset if dataset is not None else hand_items())
    return at


def upload(at, name, payload, *, use_items=False):
    ok(at.run())
    at.radio(key="sid_source").set_value("upload")
    ok(at.run())
    if use_items:
        at.checkbox(key="sid_use_data").check()
    at.file_uploader(key="sid_upload").upload(name, payload)
    return ok(at.run())


# ---------------------------------------------------------------- demo


@pytest.mark.slow
def test_demo_draws_every_titled_chart_with_the_sample_texts():
    at = ok(page().run())
    assert not at.get("plotly_chart") and at.info  # nothing loaded yet: says what to do
    at.button(key="sid_demo").click()
    ok(at.run())
    specs = chart_specs(at)
    assert sorted(specs) == sorted(charts.SEMANTIC_TITLES)
    assert not at.error
    assert metric_values(at)["items"] == "6,000"
    cs = at.session_state[CODES]
    assert cs["codes"].shape == (6000, 3) and cs["codebook_size"] == 256 and len(cs["labels"]) == 6000
    tree = specs[charts.TITLES["sid_tree"]]["data"][0]
    # level 0 holds every item (under the root, "all items"), and the hover shows example texts
    assert tree["ids"][0] == "all items" and tree["values"][0] == 6000
    top = [v for v, p in zip(tree["values"], tree["parents"]) if p == "all items"]
    assert sum(top) == 6000
    first_examples = tree["customdata"][1][2]
    assert first_examples.startswith("• ")
    assert any(text[:30] in first_examples for text in cs["labels"])
    # the usage charts are the Quantize page's, fed by the same metrics
    usage = specs[charts.TITLES["usage"]]
    assert "over 6,000 items" in usage["layout"]["title"]["subtitle"]["text"]


# ---------------------------------------------------------------- upload


def test_uploaded_codes_show_the_collision_rate_worked_out_by_hand():
    at = upload(page(), "hand.npy", npy_bytes(HAND))
    assert not at.error and at.success
    m = metric_values(at)
    assert m["items"] == "8" and m["distinct IDs"] == "5"
    assert m["collision rate"] == "37.50%"  # 1 - 5/8
    assert m["largest group"] == "3"
    table = at.dataframe[0].value
    np.testing.assert_allclose(table["collision rate"], [6 / 8, 3 / 8])
    assert table["distinct prefixes"].tolist() == [2, 5]
    prefix = chart_specs(at)[charts.TITLES["sid_prefix"]]
    assert prefix["layout"]["yaxis"]["type"] == "log"
    assert prefix["layout"]["xaxis"]["title"]["text"] and prefix["data"][0]["hovertemplate"]


def test_uploaded_codes_with_the_home_data_show_texts_and_distances():
    at = upload(page(), "hand.npy", npy_bytes(HAND), use_items=True)
    assert not at.error
    groups = at.dataframe[1].value
    first = groups[groups["group"] == 1]
    assert first["ID"].tolist() == ["0/0"] * 3 and first["text"].tolist() == ["apple", "apples", "apple pie"]
    # items 0, 1, 4 sit within 0.15 of each other; items 3 and 5 are 20 apart
    assert first["pair distance"].max() < 0.15
    assert groups[groups["ID"] == "1/2"]["pair distance"].iloc[0] == pytest.approx(20.0)


def test_typed_prefix_lists_its_items_and_a_bad_prefix_is_an_error():
    at = upload(page(), "hand.npy", npy_bytes(HAND), use_items=True)
    at.radio(key="sid_pick_how").set_value("type")
    ok(at.run())
    at.text_input(key="sid_prefix_text").set_value("1")
    ok(at.run())
    assert metric_values(at)["items under it"] == "3"
    items = at.dataframe[-1].value
    assert items["item"].tolist() == [3, 5, 6] and items["text"].tolist() == ["car", "cars", "truck"]
    at.text_input(key="sid_prefix_text").set_value("1/x")
    ok(at.run())
    assert at.error and "'1/x'" in at.error[0].value


def test_largest_prefixes_are_offered_largest_first():
    at = upload(page(), "hand.npy", npy_bytes(HAND))
    at.number_input(key="sid_pick_depth").set_value(1)
    ok(at.run())
    pick = at.selectbox(key="sid_prefix_pick")
    assert [o.split()[0] for o in pick.options] == ["0", "1"]  # 5 items, then 3
    assert metric_values(at)["items under it"] == "5"


BAD = [
    ("negative.npy", lambda: npy_bytes(np.array([[0, 1], [-1, 2]])), "negative"),
    ("flat.npy", lambda: npy_bytes(np.arange(6)), "1-D"),
    ("floats.npy", lambda: npy_bytes(np.array([[0.5, 1.0], [2.0, 3.0]])), "not a whole number"),
]


@pytest.mark.parametrize("name, payload, fragment", BAD, ids=["negative", "one-dimensional", "floats"])
def test_bad_codes_file_is_an_error_and_keeps_the_earlier_codes(name, payload, fragment):
    at = upload(page(), "hand.npy", npy_bytes(HAND))
    before = at.session_state[CODES]["key"]
    at.file_uploader(key="sid_upload").upload(name, payload())
    ok(at.run())
    assert at.error and fragment in at.error[0].value and name in at.error[0].value
    assert at.session_state[CODES]["key"] == before
    assert metric_values(at)["collision rate"] == "37.50%"  # still the hand-built codes
    assert any("loaded before" in c.value for c in at.caption)


@pytest.mark.parametrize("name, payload, fragment", BAD + [
    ("rows.npy", lambda: npy_bytes(HAND[:5]), "n_items=8"),  # 5 rows of codes for 8 items
], ids=["negative", "one-dimensional", "floats", "rows-vs-items"])
def test_accept_codes_upload_returns_the_message_and_keeps_the_codes(name, payload, fragment):
    state = {}
    assert D.accept_codes_upload(state, npy_bytes(HAND), "hand.npy") is None
    before = state[CODES]["key"]
    msg = D.accept_codes_upload(state, payload(), name, items=S.seed({}, hand_items()))
    assert msg and fragment in msg
    assert state[CODES]["key"] == before


def test_codebook_size_is_checked_and_keyed_on_content():
    state = {}
    msg = D.accept_codes_upload(state, npy_bytes(HAND), "hand.npy", codebook_size=3)
    assert msg and "codebook_size" in msg and CODES not in state  # level 1 uses code 3
    assert D.accept_codes_upload(state, npy_bytes(HAND), "a.npy", codebook_size=4) is None
    key = state[CODES]["key"]
    assert D.accept_codes_upload(state, npy_bytes(HAND), "b.npy", codebook_size=4) is None
    assert state[CODES]["key"] == key  # another name, same content: same cache key
    assert D.accept_codes_upload(state, npy_bytes(HAND), "b.npy", codebook_size=8) is None
    assert state[CODES]["key"] != key


# ---------------------------------------------------------------- de-duplication


def test_dedup_gives_unique_ids_and_offers_both_exports():
    at = upload(page(), "hand.npy", npy_bytes(HAND))
    at.button(key="sid_dedup_btn").click()
    ok(at.run())
    m = metric_values(at)
    assert m["size of the new level"] == "3" and m["collision rate after"] == "0.00%"
    dd = at.session_state["sid_dedup"]
    new = dd["codes"]
    assert new.shape == (8, 3)
    assert len({tuple(r) for r in new.tolist()}) == 8  # every item has its own ID
    np.testing.assert_array_equal(new[:, :2], HAND)
    assert new[:, 2].tolist() == [0, 1, 0, 0, 2, 1, 0, 0]
    assert [b.key for b in at.get("download_button") if b.key.startswith("sid_dl_")] == ["sid_dl_csv", "sid_dl_npy"]
    np.testing.assert_array_equal(load_codes(dd["npy"], "new.npy").codes, new)
    np.testing.assert_array_equal(load_codes(dd["csv"], "new.csv").codes, new)
    assert dd["csv"].decode().splitlines()[:2] == ["row,level_0,level_1,level_2", "0,0,0,0"]  # the item's row


# ---------------------------------------------------------------- codes of the Quantize page


def test_codes_of_the_quantize_page_with_their_texts():
    toy = make_gaussian(1000, 8, random_state=0)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    S.seed(at.session_state, toy)
    at.session_state[S.DATA].labels = [f"item {i}" for i in range(1000)]
    ok(at.run())
    at.switch_page("pages/1_Quantize.py")
    ok(at.run())
    at.number_input(key="q_RQ_M").set_value(3)
    at.number_input(key="q_RQ_nbits").set_value(3)
    at.button(key="q_run").click()
    ok(at.run())
    res = at.session_state[S.Q_RESULT]["result"]
    at.switch_page("pages/6_Semantic_IDs.py")
    ok(at.run())
    assert at.radio(key="sid_source").value == "quantize"
    cs = at.session_state[CODES]
    np.testing.assert_array_equal(cs["codes"], res["codes"])  # every row, the recall queries too
    assert cs["labels"] == [f"item {i}" for i in range(1000)]
    m = metric_values(at)
    assert m["items"] == "1,000"
    assert m["collision rate"] == f"{metrics.collision_rate(res['codes']):.2%}"
    assert sorted(chart_specs(at)) == sorted(charts.SEMANTIC_TITLES)
    groups = at.dataframe[1].value  # 512 tuples for 900 items: collisions are certain
    assert groups["text"].str.startswith("item ").all()
    assert "RQ3x3" in at.subheader[0].value


# ---------------------------------------------------------------- chart builders


def test_semantic_charts_have_axis_titles_and_hover():
    table = prefix_collision_table(HAND, 4)
    figs = [charts.prefix_collisions(table, n=8), charts.coverage_per_depth(table, n=8),
            charts.collision_groups_chart([], n=8)]
    for fig in figs:
        assert fig.layout.template.layout.font.family == charts.FONT
        assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text, charts.title_of(fig)
    assert all(t.hovertemplate for fig in figs[:2] for t in fig.data)
    assert "no two items" in figs[2].layout.title.subtitle.text


def test_tree_size_is_bounded():
    # 6,000 items in 256 / 5,585 / 5,958 prefixes: three full levels would need ~17,600 sectors
    table = {"distinct_prefixes": [256, 5585, 5958]}
    assert cache.sid_tree_depth(table, 2, 256)[:2] == (2, 256 + 1 + 5585 + 256)
    depth, _, wanted = cache.sid_tree_depth(table, 3, 256)
    assert depth == 2 and wanted > cache.SID_TREE_MAX_NODES
    assert cache.sid_tree_depth(table, 3, 8)[0] == 3  # 8 + 64 + 512 shown nodes fit
