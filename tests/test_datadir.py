"""The server's data folder (issue 19 item 5): only the folder's datasets are listed and opened,
a whole catalogue's numbers in the app are report_dataset's on every row, per-point views say
they show a sample.

The folder is made in tmp_path: a 20,000 x 16 .npy, the same rows in 2 parquet shards, a
corrupt file, and links that lead out of it.
"""

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apptest_helpers import ok
from streamlit.runtime.scriptrunner_utils.exceptions import StopException
from streamlit.testing.v1 import AppTest

from ui import catalogue as C
from ui import state as S
from vqcore import metrics
from vqcore.catalog import open_dataset
from vqcore.datafolder import check_data_dir, list_datasets, open_in_folder
from vqcore.datasets import make_gaussian
from vqcore.exceptions import DataError
from vqcore.pipeline import draw_queries, report_dataset
from vqcore.report import default_n_queries
from vqlens.cli import split_app_args

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "app.py")
PAGE = {name: os.path.join(ROOT, "pages", f"{name}.py") for name in ("1_Quantize", "3_Map", "6_Semantic_IDs")}
TIMEOUT = 180
N, D, SAMPLE = 20_000, 16, 5000


@pytest.fixture(scope="module")
def X():
    return make_gaussian(N, D, correlated=True, rho=0.8, random_state=0).X


def _shards(folder, X, parts=2):
    folder.mkdir()
    per = X.shape[0] // parts
    for i in range(parts):
        x = X[i * per:(i + 1) * per]
        pq.write_table(pa.table({"item_id": np.arange(i * per, (i + 1) * per, dtype=np.int64) * 3 + 1,
                                 "emb": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), D)}),
                       folder / f"part-{i}.parquet", row_group_size=4000)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, X):
    base = tmp_path_factory.mktemp("datadir")
    root = base / "data"
    root.mkdir()
    np.save(root / "big.npy", X)
    _shards(root / "shards", X)
    (root / "broken.npy").write_bytes(b"\x93NUMPY not really")
    (root / "notes.txt").write_text("not a dataset")
    (root / ".hidden.npy").write_bytes(b"")
    (root / "empty_folder").mkdir()
    outside = base / "outside"
    outside.mkdir()
    np.save(outside / "secret.npy", np.ones((7, 3), dtype=np.float32))
    _shards(outside / "secret_shards", X[:200])
    os.symlink(outside / "secret.npy", root / "escape.npy")
    os.symlink(outside / "secret_shards", root / "escape_dir")
    os.symlink("../outside/secret.npy", root / "relative_escape.npy")
    os.symlink(root / "big.npy", root / "alias.npy")  # a link that stays inside is a dataset
    mixed = root / "mixed"  # a folder of shards, one a link to a shard outside
    mixed.mkdir()
    os.symlink(outside / "secret_shards" / "part-0.parquet", mixed / "part-0.parquet")
    return root


# ---------------------------------------------------------------- listing (vqcore.datafolder)


def test_the_listing_holds_the_folders_datasets_with_n_d_dtype_and_size(folder):
    listing = list_datasets(folder)
    by_name = {e.name: e for e in listing.entries}
    assert set(by_name) == {"alias.npy", "big.npy", "broken.npy", "mixed", "shards"}
    big, shards = by_name["big.npy"], by_name["shards"]
    assert (big.n, big.d, big.dtype, big.error) == (N, D, "float32", None)
    assert big.nbytes == os.path.getsize(folder / "big.npy") and big.kind == "npy"
    assert (shards.n, shards.d, shards.dtype, shards.files, shards.kind) == (N, D, "float32", 2, "parquet shards")
    assert shards.nbytes == sum(os.path.getsize(p) for p in (folder / "shards").glob("*.parquet"))
    assert by_name["alias.npy"].n == N  # the link's target is inside the folder


def test_the_listing_reads_no_row(folder, monkeypatch):
    """n, d and dtype come from headers and footers: every way of reading rows fails here, and the
    listing is the same."""
    from vqcore import catalog

    def no_rows(*args, **kwargs):
        raise AssertionError("a row was read")

    for cls in (catalog.ArrayDataset, catalog.ParquetDataset):
        for method in ("read", "take", "_table", "_vectors"):
            if hasattr(cls, method):
                monkeypatch.setattr(cls, method, no_rows)
    by_name = {e.name: e for e in list_datasets(folder).entries}
    assert (by_name["big.npy"].n, by_name["shards"].n, by_name["shards"].d) == (N, N, D)


def test_links_out_of_the_folder_are_refused_and_never_opened(folder):
    listing = list_datasets(folder)
    refused = dict(listing.refused)
    assert set(refused) == {"escape.npy", "escape_dir", "relative_escape.npy"}
    assert all("outside the data folder" in why for why in refused.values())
    mixed = next(e for e in listing.entries if e.name == "mixed")
    assert mixed.n is None and "outside the data folder" in mixed.error  # a shard that leads out
    for name in ("escape.npy", "escape_dir", "relative_escape.npy", "mixed", "../outside/secret.npy", "..",
                 str(folder.parent / "outside" / "secret.npy"), "shards/../../outside/secret.npy"):
        with pytest.raises(DataError):
            open_in_folder(folder, name)
    ds = open_in_folder(folder, "shards")
    assert (ds.n, ds.d, ds.id_column) == (N, D, "item_id")


def test_an_unreadable_file_is_listed_with_what_is_wrong(folder):
    broken = next(e for e in list_datasets(folder).entries if e.name == "broken.npy")
    assert broken.n is None and "broken.npy" in broken.error
    with pytest.raises(DataError, match="broken.npy"):
        open_in_folder(folder, "broken.npy")


def test_the_data_dir_argument_is_parsed_and_a_bad_one_is_said(folder, tmp_path):
    assert C.data_dir_arg(["--server.port", "1", "--data-dir", "/a", "--other"], {}) == "/a"
    assert C.data_dir_arg(["--data-dir=/b", "x"], {}) == "/b"
    assert C.data_dir_arg(["--unknown", "y"], {C.ENV: "/env"}) == "/env"
    assert C.data_dir_arg(["--data-dir=/c"], {C.ENV: "/env"}) == "/c"  # the flag wins
    assert C.data_dir_arg([], {}) is None and C.data_dir(argv=[], environ={}) == (None, None)
    assert C.data_dir(["--data-dir", str(folder)], {}) == (os.path.realpath(folder), None)
    for given, words in ((str(tmp_path / "nope"), "does not exist"), (str(folder / "big.npy"), "not a folder"),
                         ("", "empty")):
        root, problem = C.data_dir(["--data-dir", given], {})
        assert root is None and words in problem
    root, problem = C.data_dir(["--data-dir"], {})  # the flag without a value
    assert root is None and "empty" in problem
    with pytest.raises(DataError):
        check_data_dir(None)


def test_vqlens_app_hands_data_dir_to_the_app_and_the_rest_to_streamlit():
    assert split_app_args(["--server.port", "8502", "--data-dir", "/d"]) == (["--server.port", "8502"],
                                                                             ["--data-dir", "/d"])
    assert split_app_args(["--data-dir=/d", "--theme.base=dark"]) == (["--theme.base=dark"], ["--data-dir=/d"])
    assert split_app_args(["--server.port=1", "--", "--data-dir", "/e"]) == (["--server.port=1"],
                                                                           ["--data-dir", "/e"])
    assert split_app_args([]) == ([], [])


# ---------------------------------------------------------------- the home page


def _home(monkeypatch, root):
    monkeypatch.setenv(C.ENV, str(root))
    return ok(AppTest.from_file(APP, default_timeout=TIMEOUT).run())


def test_home_lists_the_folder_and_says_what_cannot_be_opened(monkeypatch, folder):
    at = _home(monkeypatch, folder)
    assert [t.label for t in at.tabs][-1] == "Data folder"
    table = at.dataframe[0].value
    assert sorted(table["dataset"]) == ["alias.npy", "big.npy", "broken.npy", "mixed", "shards"]
    assert dict(zip(table["dataset"], table["rows n"]))["big.npy"] == N
    warnings = " ".join(w.value for w in at.warning)
    assert "broken.npy cannot be opened" in warnings and "mixed cannot be opened" in warnings
    captions = " ".join(c.value for c in at.caption)
    assert "escape.npy: a link to a place outside the data folder" in captions
    options = at.selectbox(key=S.HOME_FOLDER_PICK).options  # only what opens can be chosen
    assert [o.split("  (")[0] for o in options] == ["alias.npy", "big.npy", "shards"]
    assert options[1] == f"big.npy  ({N:,} × {D}, float32, 1.2 MB)"


def test_home_without_a_folder_has_no_folder_tab(monkeypatch):
    monkeypatch.delenv(C.ENV, raising=False)
    at = ok(AppTest.from_file(APP, default_timeout=TIMEOUT).run())
    assert "Data folder" not in [t.label for t in at.tabs] and not at.error


def test_home_says_a_missing_folder_is_missing(monkeypatch, tmp_path):
    at = _home(monkeypatch, tmp_path / "not-there")
    assert len(at.error) == 1 and "does not exist" in at.error[0].value
    assert "Data folder" not in [t.label for t in at.tabs]


def test_names_from_the_folder_are_escaped(monkeypatch, tmp_path, X):
    root = tmp_path / "d"
    root.mkdir()
    name = "![x](http:__127.0.0.1:9_a.png)*b*.npy"
    np.save(root / name, np.full((4, 2), np.inf, dtype=np.float32))  # opens (lazily), fails when sampled
    at = _home(monkeypatch, root)
    at.selectbox(key=S.HOME_FOLDER_PICK).set_value(name)
    at.button(key="home_folder_open").click()
    ok(at.run())
    shown = [e.value for e in at.error]
    assert len(shown) == 1 and "NaN" in shown[0]
    assert "![x]" not in shown[0] and "\\!\\[x\\]" in shown[0]  # shown as characters, not an image
    assert at.session_state[S.DATA].name == "MiniLM sentences"  # the data loaded before stays


def _open(monkeypatch, root, name, sample=SAMPLE):
    at = _home(monkeypatch, root)
    at.selectbox(key=S.HOME_FOLDER_PICK).set_value(name)
    at.number_input(key=S.HOME_FOLDER_SAMPLE).set_value(sample)
    at.button(key="home_folder_open").click()
    ok(at.run())
    assert not at.error, [e.value for e in at.error]
    return at


def test_opening_a_dataset_makes_a_reproducible_sample_the_data(monkeypatch, folder, X):
    at = _open(monkeypatch, folder, "big.npy")
    data, cat = at.session_state[S.DATA], at.session_state[S.CATALOGUE]
    rows = open_dataset(folder / "big.npy").sample_rows(SAMPLE, random_state=0)
    np.testing.assert_array_equal(data.rows, rows)
    np.testing.assert_array_equal(data.X, X[rows])  # row i of the sample is catalogue row rows[i]
    assert (cat.n, cat.d, cat.sample_rows, cat.seed) == (N, D, SAMPLE, 0)
    assert {m.label: m.value for m in at.metric}["rows n"] == f"{SAMPLE:,}"
    assert any(f"{N:,} rows" in m.value for m in at.markdown)


# ---------------------------------------------------------------- whole-catalogue numbers


def _quantize(at, M=3, nbits=5, train=2000):
    at.switch_page(PAGE["1_Quantize"])
    ok(at.run())
    at.number_input(key="q_RQ_M").set_value(M)
    at.number_input(key="q_RQ_nbits").set_value(nbits)
    at.number_input(key="q_train").set_value(train)
    ok(at.run())
    at.button(key="q_run").click()
    return ok(at.run())


def _expected(at, path):
    """report_dataset on the same data with the app's fitted quantizer and queries drawn as the app says."""
    stored = at.session_state[S.Q_RESULT]
    q, seed = stored["result"]["quantizer"], stored["args"]["seed"]
    ds = open_dataset(path)
    qrows, queries, query_set = draw_queries(ds, default_n_queries(ds.n), seed)
    return report_dataset(q, ds, queries=queries, query_rows=qrows, query_set=query_set, random_state=seed)


@pytest.mark.parametrize("name", ["big.npy", "shards"])
def test_quantize_shows_the_whole_catalogue_numbers_of_report_dataset(monkeypatch, folder, name):
    at = _quantize(_open(monkeypatch, folder, name))
    whole = at.session_state[S.Q_WHOLE]
    got = whole["report"]
    want, codes = _expected(at, folder / name)
    assert got["n"] == want["n"] == N
    assert got["collisions"]["rate"] == want["collisions"]["rate"]
    assert got["collisions"]["rate"] == metrics.collision_rate(codes)  # and the in-memory definition
    assert got["collisions"]["prefix_rates"] == want["collisions"]["prefix_rates"]
    assert got["collisions"]["groups"] == want["collisions"]["groups"]
    assert got["usage"]["dead"] == want["usage"]["dead"] and got["usage"]["counts"] == want["usage"]["counts"]
    assert got["usage"]["entropy_bits"] == want["usage"]["entropy_bits"]
    assert got["reconstruction"]["mse"] == pytest.approx(want["reconstruction"]["mse"], rel=1e-12)
    assert got["recall"]["at"] == want["recall"]["at"]
    # the sample's own report is another thing: 5,000 items
    assert at.session_state[S.Q_RESULT]["result"]["report"]["n"] == SAMPLE
    # what the page says
    metric = {m.label: m.value for m in at.metric}
    assert metric["collision rate"] == f"{want['collisions']['rate']:.1%}"
    line = next(m.value for m in at.markdown if m.value.startswith("Collision rate over all"))
    assert f"**{want['collisions']['rate']:.4%}**" in line
    assert f"{round(N * want['collisions']['rate']):,} items repeat" in line
    assert any(s.value.startswith(f"{got['spec']} on the whole catalogue: {N:,} items") for s in at.subheader)
    # the codes file holds every row, numbered, with the catalogue's own codes
    table = pq.read_table(whole["codes_path"])
    assert table.num_rows == N == whole["codes_rows"]
    np.testing.assert_array_equal(table.column("row").to_numpy(), np.arange(N))
    got_codes = np.column_stack([table.column(f"level_{m}").to_numpy() for m in range(codes.shape[1])])
    np.testing.assert_array_equal(got_codes, codes)
    if name == "shards":
        np.testing.assert_array_equal(table.column("item_id").to_numpy(), np.arange(N) * 3 + 1)
    labels = [b.label for b in at.get("download_button")]
    assert f"Codes of all {N:,} rows (.parquet)" in labels
    assert "Codes (sample) (.npz)" in labels and "Codes (.npz)" not in labels  # no download claims rows it lacks


def test_semantic_ids_and_the_map_say_what_they_show(monkeypatch, folder):
    at = _quantize(_open(monkeypatch, folder, "big.npy"))
    want = at.session_state[S.Q_WHOLE]["report"]
    at.switch_page(PAGE["6_Semantic_IDs"])
    ok(at.run())
    metric = [(m.label, m.value) for m in at.metric]
    assert metric[0] == ("items", f"{N:,}")
    assert metric[2] == ("collision rate", f"{want['collisions']['rate']:.2%}")
    assert ("items", f"{SAMPLE:,}") in metric[6:]  # then the sample's
    captions = [c.value for c in at.caption]
    assert f"Every view below is of {SAMPLE:,} of {N:,} items, drawn at random with seed 0." in " ".join(captions)
    notes = " ".join(m.value for m in at.markdown)
    assert "random sample" in notes and "its row in the catalogue" in notes and "dropped" not in notes
    at.switch_page(PAGE["3_Map"])
    ok(at.run())
    assert f"Map of {SAMPLE:,} of {N:,} items, drawn at random with seed 0." in [c.value for c in at.caption]


def test_sample_caption_names_both_draws():
    class Cat:
        n, sample_rows, seed = 4_000_000, 20_000, 0

    assert C.sample_caption(Cat, 20_000) == "Map of 20,000 of 4,000,000 items, drawn at random with seed 0."
    assert C.sample_caption(Cat, 10_000, seed=3) == (
        "Map of 10,000 of 4,000,000 items, drawn at random: the catalogue's sample of 20,000 rows (seed 0), "
        "then 10,000 of those (seed 3).")


def test_a_run_ended_midway_leaves_no_lock_and_no_file(folder):
    """A stop raised from the progress callback (a browser gone) ends the pass: the next run of the
    same arguments is not blocked by a lock, and no half-written codes file is left."""
    import vqcore

    ds = open_in_folder(folder, "big.npy")
    data = S.set_data({}, ds.take(np.arange(2000)), rows=np.arange(2000))
    cat = C.Catalogue(name="big.npy", root=str(folder), dataset=ds, sample_rows=2000, seed=0, key="k-test",
                      data=data)
    q = vqcore.from_spec("RQ2x4", random_state=0).fit(data.X)
    stored = {"args": {"key": data.key, "spec": "RQ2x4", "params": (), "train_size": 2000, "seed": 0},
              "result": {"quantizer": q, "fit_seconds": 0.0, "n_train": 2000}}
    before = set(os.listdir(C.codes_folder()))
    calls = []

    def stop_midway(fraction, message):
        calls.append(message)
        if len(calls) == 3:
            raise StopException()

    with pytest.raises(StopException):
        C.whole_run(cat, stored, on_progress=stop_midway, chunk_rows=1000)
    assert set(os.listdir(C.codes_folder())) == before  # no temporary file left
    assert _locks_free()
    seen = []
    w = C.whole_run(cat, stored, chunk_rows=1000, on_progress=lambda f, m: seen.append((f, m)))  # at once
    assert w["codes_rows"] == N and w["report"]["n"] == N
    # the bar: the encoding pass up to ENCODE_SHARE, then the metrics pass up to 1, never backwards
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(f <= C.ENCODE_SHARE for f, m in seen if m.startswith("encode"))
    assert all(f >= C.ENCODE_SHARE for f, m in seen if m.startswith("metrics"))
    assert any(m.startswith("encode") for _, m in seen) and any(m.startswith("metrics") for _, m in seen)
    assert set(os.listdir(C.codes_folder())) - before == {os.path.basename(w["codes_path"])}


def _locks_free():
    """Whether another thread can take every lock of ui.store (they are reentrant: this thread could anyway)."""
    import threading

    from ui import store

    free = []

    def probe():
        for lock in store._LOCKS:
            got = lock.acquire(timeout=2)
            free.append(got)
            if got:
                lock.release()

    t = threading.Thread(target=probe)
    t.start()
    t.join()
    return all(free) and len(free) == len(store._LOCKS)


# ---------------------------------------------------------------- the sample's texts


def _texts(i):
    return f"<b>item {i}</b> & [x](y)"  # markup that must show as its characters


@pytest.fixture(scope="module")
def text_folder(tmp_path_factory):
    """2 parquet shards of 3,000 rows (d = 8) with an id column and one text column."""
    root = tmp_path_factory.mktemp("textdir") / "data"
    root.mkdir()
    shards = root / "titled"
    shards.mkdir()
    X = make_gaussian(6000, 8, random_state=1).X
    for i in range(2):
        rows = np.arange(i * 3000, (i + 1) * 3000)
        emb = pa.FixedSizeListArray.from_arrays(pa.array(X[rows].ravel()), 8)
        pq.write_table(pa.table({"item_id": rows, "emb": emb, "title": [_texts(r) for r in rows]}),
                       shards / f"part-{i}.parquet", row_group_size=700)
    return root


def test_take_texts_reads_the_sampled_rows_texts_one_chunk_at_a_time(text_folder, folder, monkeypatch):
    ds = open_in_folder(text_folder, "titled")
    rows = ds.sample_rows(500, random_state=3)
    calls = []
    real = type(ds)._table

    def spy(self, chunk, columns):
        calls.append((chunk.rows, tuple(columns)))
        return real(self, chunk, columns)

    monkeypatch.setattr(type(ds), "_table", spy)
    assert ds.take_texts(rows) == [_texts(r) for r in rows]
    assert {c for _, c in calls} == {("title",)}  # the text column only
    assert max(n for n, _ in calls) <= 700  # a row group's chunk at a time, never the whole column
    assert ds.take_texts(rows[:3], max_chars=6) == [_texts(r)[:6] for r in rows[:3]]
    assert open_in_folder(folder, "big.npy").take_texts(rows) is None  # no text column
    calls.clear()
    np.testing.assert_array_equal(ds.take_ids(rows), rows)  # item_id == row in this folder
    assert {c for _, c in calls} == {("item_id",)}  # the id column only, a chunk at a time
    assert open_in_folder(folder, "big.npy").take_ids(rows) is None  # no id column


def test_a_catalogue_sample_carries_its_texts_as_labels_escaped_where_shown(monkeypatch, text_folder):
    import json

    at = _open(monkeypatch, text_folder, "titled", sample=1000)
    data = at.session_state[S.DATA]
    assert data.labels == [_texts(r) for r in data.rows]
    np.testing.assert_array_equal(data.ids, data.rows)  # the sampled rows' item ids, beside their row numbers
    assert any("text column 'title'" in m.value for m in at.markdown)
    at = _quantize(at, M=2, nbits=4, train=1000)
    at.switch_page(PAGE["3_Map"])
    ok(at.run())
    points = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    hover = [c[1] for trace in points if "customdata" in trace and "row %{customdata[2]}" in trace.get(
        "hovertemplate", "") for c in trace["customdata"]]
    assert len(hover) > 0 and all(h.startswith("&lt;b&gt;item ") and "&amp;" in h for h in hover)
    at.switch_page(PAGE["6_Semantic_IDs"])
    ok(at.run())
    shown = [str(v) for df in at.dataframe for col in df.value.columns for v in df.value[col]]
    assert any(v.startswith("<b>item ") for v in shown)  # a table cell shows the text as it is


# ---------------------------------------------------------------- stopping a pass over every row


def _click(key):
    """The rerun request Streamlit raises in a running script when the browser reports a click on button ``key``."""
    from streamlit.proto.WidgetStates_pb2 import WidgetStates
    from streamlit.runtime.scriptrunner_utils.exceptions import RerunException
    from streamlit.runtime.scriptrunner_utils.script_requests import RerunData

    states = WidgetStates()
    w = states.widgets.add()
    w.id, w.trigger_value = f"$$ID-0123456789abcdef-{key}", True
    return RerunException(RerunData(widget_states=states))


def _catalogue_state(folder, key):
    import vqcore

    ds = open_in_folder(folder, "big.npy")
    state = {}
    data = S.set_data(state, ds.take(np.arange(2000)), rows=np.arange(2000))
    cat = state[S.CATALOGUE] = C.Catalogue(name="big.npy", root=str(folder), dataset=ds, sample_rows=2000, seed=0,
                                           key=key, data=data)
    q = vqcore.from_spec("RQ2x4", random_state=0).fit(data.X)
    stored = {"args": {"key": data.key, "spec": "RQ2x4", "params": (), "train_size": 2000, "seed": 0},
              "result": {"quantizer": q, "fit_seconds": 0.0, "n_train": 2000}}
    return state, cat, stored


@pytest.mark.parametrize("click", ["stop-fast-rerun", "stop-rerun", "other"])
def test_stop_ends_a_pass_keeping_nothing_and_another_click_waits_for_it(folder, monkeypatch, click):
    """Stop pressed while the pass runs ends it: no codes file, no kept result, no lock; the page's state
    says where it stopped. With fast reruns (Streamlit's default) the click stops the running script
    (a StopException from its next st call) and starts the click's run, which first runs Stop's
    callback; without, the click's rerun request reaches the running script with the widgets' states.
    A click on another widget is held back until the pass is done and kept, as before."""
    from streamlit.runtime.scriptrunner_utils.exceptions import StopException

    state, cat, stored = _catalogue_state(folder, f"k-stop-{click}")
    request = StopException() if click == "stop-fast-rerun" else _click(C.STOP_KEY if click == "stop-rerun"
                                                                        else "q_method")
    drawn, stop_button = [], {}

    class Placeholder:  # st.empty(): the click comes once the pass is a third done
        def progress(self, fraction, text=""):
            drawn.append(fraction)
            if fraction >= 0.3 and len(drawn) == len([f for f in drawn if f < 0.3]) + 1:
                if click == "stop-fast-rerun":  # the click's run starts at once, with Stop's callback
                    stop_button["on_click"](*stop_button["args"])
                raise request

        def button(self, label, *, key, on_click, args, **kw):
            assert label == "Stop" and key == C.STOP_KEY
            stop_button.update(on_click=on_click, args=args)
            return False

        def empty(self):
            pass

    monkeypatch.setattr(C.st, "empty", Placeholder)
    before = set(os.listdir(C.codes_folder()))
    with pytest.raises(type(request)) as raised:
        C.whole_with_progress(state, cat, stored, chunk_rows=1000)
    assert raised.value is request  # Streamlit goes on as it asked: the click's run, with the settings
    assert _locks_free()
    again = []
    w = C.whole_run(cat, stored, chunk_rows=1000, on_progress=lambda f, m: again.append(m))
    assert w["codes_rows"] == N
    if click.startswith("stop"):
        assert drawn[-1] >= 0.3 and drawn[-2] < 0.3  # nothing drawn after the click
        stopped = C.stopped_for(state, stored)
        assert stopped is not None and stopped["fraction"] == drawn[-1] < C.ENCODE_SHARE
        assert stopped["message"].startswith("encode")
        assert S.Q_WHOLE not in state
        assert set(os.listdir(C.codes_folder())) - before == {os.path.basename(w["codes_path"])}  # only the rerun's
        assert any(m.startswith("encode") for m in again)  # nothing of the stopped pass was kept: computed anew
    else:
        assert C.stopped_for(state, stored) is None
        assert again == []  # the pass went on to the end and was kept: this one is the kept result


def test_stop_on_the_quantize_page_says_stopped_and_keeps_the_settings(monkeypatch, folder):
    """The page's Run on a catalogue: Stop pressed during the pass (as the browser sends it: every widget's
    value, and the Stop button's trigger) ends it; the rerun shows the sample's numbers, says the pass was
    stopped, keeps no whole-catalogue number, and the settings are those chosen."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx
    from streamlit.runtime.scriptrunner_utils.exceptions import RerunException
    from streamlit.runtime.scriptrunner_utils.script_requests import RerunData

    from ui import store

    class ClickStopAtTheFourthUpdate(store.HoldBack):
        calls = 0

        def __call__(self, st_call):
            type(self).calls += 1
            if type(self).calls != 4:
                return super().__call__(st_call)

            def click():
                ctx = get_script_run_ctx()
                states = ctx.session_state.get_widget_states()
                for w in states:  # buttons: only Stop was clicked (Run's click was the last run's)
                    if w.WhichOneof("value") == "trigger_value":
                        w.trigger_value = w.id.endswith("-" + C.STOP_KEY)
                assert any(w.trigger_value for w in states)
                from streamlit.proto.WidgetStates_pb2 import WidgetStates

                raise RerunException(RerunData(widget_states=WidgetStates(widgets=states),
                                               page_script_hash=ctx.page_script_hash))
            return super().__call__(click)

    monkeypatch.setattr(C, "HoldBack", ClickStopAtTheFourthUpdate)
    at = _quantize(_open(monkeypatch, folder, "big.npy"))
    assert ClickStopAtTheFourthUpdate.calls == 4  # the pass ended at the click
    assert S.Q_WHOLE not in at.session_state and at.session_state[S.Q_RESULT]["result"]["report"]["n"] == SAMPLE
    warning = " ".join(w.value for w in at.warning)
    assert "The pass over every row was stopped at" in warning and "nothing of it was kept" in warning
    assert not any("whole catalogue" in s.value for s in at.subheader)
    assert any(s.value == f"RQ3x5 on {SAMPLE:,} items" for s in at.subheader)  # the sample's, said so
    assert (at.number_input(key="q_RQ_M").value, at.number_input(key="q_RQ_nbits").value,
            at.number_input(key="q_train").value) == (3, 5, 2000)
    assert at.button(key="q_whole_run")  # and it can be run again


def test_the_quantize_status_line_says_it_fitted_on_the_sample_and_timed_every_row(monkeypatch, folder):
    at = _quantize(_open(monkeypatch, folder, "big.npy"))
    whole = at.session_state[S.Q_WHOLE]
    res = at.session_state[S.Q_RESULT]["result"]
    status = [s.label for s in at.status if s.label.startswith("RQ3x5")]
    assert status == [f"RQ3x5: fit {res['fit_seconds']:.2f} s on 2,000 rows of the sample, its evaluation "
                      f"{res['eval_seconds']:.2f} s; every one of the {N:,} rows of the catalogue encoded and measured "
                      f"in {whole['seconds']:.1f} s"]
