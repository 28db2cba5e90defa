"""AppTest for the home page and every page: load data, run, find the titled charts.

Small data (2,000 x 16 correlated Gaussians) and small codebooks (K=16) keep
the file fast; the real upload widget is driven through AppTest's file
uploader, and the browser test covers the real file input.
"""

import base64
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
from apptest_helpers import chart_titles, npy_bytes, ok
from streamlit.testing.v1 import AppTest

import vqcore
from ui import charts
from ui import data as D
from ui import state as S
from ui import widgets as W
from vqcore.datasets import make_gaussian

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
PAGE = {name: str(ROOT / "pages" / f"{name}.py") for name in ("1_Quantize", "2_Compare", "3_Map", "4_Learn")}
TIMEOUT = 120


def chart_layouts(at):
    return [json.loads(el.proto.spec)["layout"] for el in at.get("plotly_chart")]


def chart_figures(at):
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def values(v):
    """A plotly JSON array (a list, or plotly's base64 ``{"bdata", "dtype"}``) as a numpy array."""
    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
        return a.reshape(v["shape"]) if "shape" in v else a
    return np.asarray(v, dtype=object)


def page(name, dataset):
    at = AppTest.from_file(PAGE[name], default_timeout=TIMEOUT)
    S.seed(at.session_state, dataset)
    return at


# ---------------------------------------------------------------- home page


def test_home_starts_with_the_shipped_sample_and_summarises_it():
    at = ok(AppTest.from_file(APP, default_timeout=TIMEOUT).run())
    data = at.session_state[S.DATA]
    assert data.name == "MiniLM sentences" and data.shape == (6000, 384)
    assert len(data.labels) == 6000
    assert chart_titles(at) == [charts.TITLES["norms"], charts.TITLES["pca"]]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["rows n"] == "6,000" and metrics["dimension d"] == "384"
    assert not at.error


def test_home_loads_a_toy_sample_of_the_chosen_size():
    at = ok(AppTest.from_file(APP, default_timeout=TIMEOUT).run())
    at.selectbox(key=S.HOME_SAMPLE).set_value("Gaussian, correlated")
    ok(at.run())
    at.number_input(key="home_toy_n").set_value(1000)
    at.number_input(key="home_toy_d").set_value(8)
    at.button(key="home_load_sample").click()
    ok(at.run())
    data = at.session_state[S.DATA]
    assert data.shape == (1000, 8) and data.name.startswith("Gaussian, correlated")
    assert {m.label: m.value for m in at.metric}["rows n"] == "1,000"


def test_home_upload_npy_through_the_uploader(toy):
    at = ok(AppTest.from_file(APP, default_timeout=TIMEOUT).run())
    at.file_uploader(key=S.HOME_UPLOAD).upload("mine.npy", npy_bytes(toy.X[:500]))
    ok(at.run())
    data = at.session_state[S.DATA]
    assert data.shape == (500, 16)
    np.testing.assert_array_equal(data.X, toy.X[:500])
    assert not at.error and at.success


def test_bad_upload_shows_error_and_keeps_the_previous_data():
    at = ok(AppTest.from_file(APP, default_timeout=TIMEOUT).run())
    before = at.session_state[S.DATA].key
    at.file_uploader(key=S.HOME_UPLOAD).upload("broken.npy", b"this is not numpy")
    ok(at.run())
    assert at.error and "broken.npy" in at.error[0].value
    assert at.session_state[S.DATA].key == before
    assert chart_titles(at) == [charts.TITLES["norms"], charts.TITLES["pca"]]


@pytest.mark.parametrize(
    "name, payload, fragment",
    [
        ("obj.npy", lambda: npy_bytes(np.array([{"a": 1}], dtype=object)), "pickle"),
        ("x.txt", lambda: b"1,2,3", "cannot read"),
        ("empty.csv", lambda: b"", "empty"),
        ("nan.npy", lambda: npy_bytes(np.array([[1.0, np.nan], [2.0, 3.0]], dtype=np.float32)), "NaN"),
    ],
    ids=["pickled-object", "unknown-extension", "empty-file", "nan-refused"],
)
def test_accept_upload_returns_a_message_and_keeps_data(toy, name, payload, fragment):
    state = {}
    S.seed(state, toy)
    before = state[S.DATA].key
    msg = D.accept_upload(state, payload(), name, drop_nonfinite=False)
    assert msg and fragment.lower() in msg.lower()
    assert state[S.DATA].key == before


def test_accept_upload_csv_keeps_labels_and_drops_nonfinite_rows():
    state = {}
    csv = b"text,a,b\nhello,1,2\nworld,3,nan\nagain,5,6\n"
    assert D.accept_upload(state, csv, "t.csv", drop_nonfinite=True) is None
    data = state[S.DATA]
    assert data.shape == (2, 2) and data.labels == ["hello", "again"]
    assert data.nonfinite_found == 1


def test_home_options_centre_and_normalise(toy):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    S.seed(at.session_state, toy)
    ok(at.run())
    key0 = at.session_state[S.DATA].key
    at.checkbox(key=S.HOME_NORMALIZE).check()
    ok(at.run())
    data = at.session_state[S.DATA]
    assert data.normalize and data.key != key0
    np.testing.assert_allclose(np.linalg.norm(data.X, axis=1), 1.0, atol=1e-5)
    assert any("L2-normalised" in n for n in data.prep_notes)


def test_streamlit_config():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["maxUploadSize"] == 200 == D.MAX_UPLOAD_MB
    assert cfg["server"]["enableXsrfProtection"] is True
    assert cfg["server"]["headless"] is True
    assert cfg["browser"]["gatherUsageStats"] is False


# ---------------------------------------------------------------- quantize page


def run_quantize(at, method="RQ", M=4, nbits=4):
    ok(at.run())
    at.selectbox(key="q_method").set_value(method)
    ok(at.run())
    if method != "VQ":
        at.number_input(key=f"q_{method}_M").set_value(M)
    at.number_input(key=f"q_{method}_nbits").set_value(nbits)
    at.button(key="q_run").click()
    return ok(at.run())


@pytest.mark.parametrize("method", ["RQ", "PQ", "OPQ", "AQ", "VQ"])
def test_quantize_runs_and_draws_the_titled_charts(toy, method):
    at = run_quantize(page("1_Quantize", toy), method)
    assert chart_titles(at) == charts.QUANTIZE_TITLES
    report = at.session_state[S.Q_RESULT]["result"]["report"]
    M = 1 if method == "VQ" else 4
    assert report["spec"] == f"{method}{M}x4" + ("_b4" if method == "AQ" else "")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["bits / vector"] == str(4 * M)
    assert metrics["recall@10"].endswith("%")  # 200 queries held out of the search among 2,000 rows
    assert report["recall"]["n_queries"] == 200 and report["recall"]["n_searched"] == 1800
    assert report["n"] == 2000  # every row has its code and counts in the metrics
    residual = next(lay for lay in chart_layouts(at) if lay["title"]["text"] == charts.TITLES["residual"])
    expected_x = "subspace" if method in ("PQ", "OPQ") else "stage (0 = before any codeword)"
    assert residual["xaxis"]["title"]["text"] == expected_x
    # codes x2, codebooks, report x2, spec; faiss index (every method here has K = 2^4), ID table x2, trie
    assert len(at.get("download_button")) == 10
    assert not at.error


def test_quantize_default_is_rq_8x8_and_spec_strings_are_shown(toy):
    at = ok(page("1_Quantize", toy).run())
    assert at.selectbox(key="q_method").value == "RQ"
    assert at.number_input(key="q_RQ_M").value == 8 and at.number_input(key="q_RQ_nbits").value == 8
    text = " ".join(m.value for m in at.markdown)
    assert "`RQ8x8`" in text and "64 bits per vector" in text


def spec_line(at):
    return next(m.value for m in at.markdown if m.value.startswith("Spec "))


def test_each_method_keeps_its_own_settings(toy):
    """Issue 15: RQ -> AQ -> RQ set RQ's Iterations 10 -> 1, and after VQ, M stayed 1 for every method."""
    at = ok(page("1_Quantize", toy).run())
    at.number_input(key="q_RQ_M").set_value(4)
    at.number_input(key="q_RQ_iters").set_value(7)
    ok(at.run())
    for method in ("AQ", "VQ", "PQ", "OPQ", "GRVQ", "RQ"):
        at.selectbox(key="q_method").set_value(method)
        ok(at.run())
        if method == "PQ":  # PQ starts from its own defaults, not from RQ's M=4 or 7 iterations
            assert at.number_input(key="q_PQ_M").value == 8
            assert at.number_input(key="q_PQ_iters").value == W.DEFAULT_ITERS["PQ"]
            at.number_input(key="q_PQ_M").set_value(2)
            ok(at.run())
    assert at.number_input(key="q_RQ_M").value == 4 and at.number_input(key="q_RQ_iters").value == 7
    assert "`RQ4x8`" in spec_line(at) and "7 iterations per stage" in spec_line(at)
    at.selectbox(key="q_method").set_value("PQ")
    ok(at.run())
    assert at.number_input(key="q_PQ_M").value == 2 and "`PQ2x8`" in spec_line(at)


@pytest.mark.parametrize("method, expected", [
    ("RQ", ["10 iterations per stage", "initialisation progressive", "beam 1", "seed 0"]),
    ("AQ", ["10 iterations per stage", "initialisation progressive", "beam 4"]),
    ("OPQ", ["25 iterations", "initialisation auto"]),
    ("GRVQ", ["initialisation from RQ", "beam 4", "faiss none (faiss has no GRVQ)"]),
])
def test_the_spec_line_shows_every_setting_that_changes_the_fit(toy, method, expected):
    at = ok(page("1_Quantize", toy).run())
    at.selectbox(key="q_method").set_value(method)
    ok(at.run())
    line = spec_line(at)
    for part in expected + ["trained on 2,000 rows"]:
        assert part in line, line
    if method == "RQ":  # RQ's train_on only matters with a beam wider than 1, and is shown then
        at.number_input(key="q_RQ_beam").set_value(3)
        ok(at.run())
        at.selectbox(key="q_RQ_train_on").set_value("best")
        ok(at.run())
        assert "beam 3" in spec_line(at) and "stages trained on the best path" in spec_line(at)
        at.number_input(key="q_RQ_M").set_value(2)
        at.number_input(key="q_RQ_nbits").set_value(4)
        at.button(key="q_run").click()
        ok(at.run())
        # the result shown says the same settings as the line it was run with
        assert any(c.value.startswith("10 iterations per stage · initialisation progressive · beam 3 · stages "
                                      "trained on the best path · seed 0.") for c in at.caption)


def test_quantize_rq_can_train_its_stages_on_the_best_beam_path(toy):
    at = ok(page("1_Quantize", toy).run())
    assert at.selectbox(key="q_RQ_train_on").disabled  # beam 1: one path, nothing to choose
    at.number_input(key="q_RQ_beam").set_value(3)
    ok(at.run())
    assert not at.selectbox(key="q_RQ_train_on").disabled
    at.selectbox(key="q_RQ_train_on").set_value("best")
    at.number_input(key="q_RQ_M").set_value(3)
    at.number_input(key="q_RQ_nbits").set_value(4)
    at.button(key="q_run").click()
    ok(at.run())
    q = at.session_state[S.Q_RESULT]["result"]["quantizer"]
    assert (q.beam_size, q.train_on) == (3, "best")
    assert chart_titles(at) == charts.QUANTIZE_TITLES


def test_quantize_shows_grvq_norm_options_with_their_bits_and_errors(toy):
    at = run_quantize(page("1_Quantize", toy), "GRVQ", M=3, nbits=4)
    assert chart_titles(at) == charts.QUANTIZE_TITLES
    at.button(key="q_grvq_norms").click()
    ok(at.run())
    table = at.dataframe[-1].value
    assert list(table["norm"]) == ["none", "float", "quantized", "regularized"]
    assert list(table["bits / vector"]) == [12, 44, 20, 12]  # 3 x 4 bits, then the norm's 0 / 32 / 8 / 0
    assert table["norm error (relative)"].iloc[0] == 0


def test_quantize_says_when_grvq_kept_its_rq_start_on_too_few_training_rows(toy):
    """GRVQ runs its refinement passes only from 39 training rows per codeword (below, they over-fit):
    the page says so beside the numbers, instead of showing an RQ start under GRVQ's settings."""
    at = run_quantize(page("1_Quantize", toy), "GRVQ", M=2, nbits=8)  # K=256: under 39 rows per codeword
    q = at.session_state[S.Q_RESULT]["result"]["quantizer"]
    assert q.n_passes_run_ == 0 and q.n_train_ < 39 * 256
    notes = [i.value.replace("\\", "") for i in at.info if "refinement passes" in i.value]  # (markdown-escaped)
    assert len(notes) == 1 and "GRVQ ran 0 of its n_passes=1" in notes[0], [i.value for i in at.info]
    assert f"{q.n_train_:,} rows" in notes[0] and "9,984 rows" in notes[0]

    at = run_quantize(at, "GRVQ", M=2, nbits=4)  # K=16: enough rows, every pass runs, nothing to say
    assert at.session_state[S.Q_RESULT]["result"]["quantizer"].n_passes_run_ == 1
    assert not [i.value for i in at.info if "refinement passes" in i.value]


def test_quantize_bad_settings_are_an_error_not_an_exception(toy):
    at = ok(page("1_Quantize", toy).run())
    at.selectbox(key="q_method").set_value("PQ")
    ok(at.run())
    at.number_input(key="q_PQ_M").set_value(5)  # 5 does not divide d=16
    ok(at.run())
    assert at.error and "divide" in at.error[0].value
    assert at.button(key="q_run").disabled


def test_quantize_result_survives_a_page_switch(toy):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    S.seed(at.session_state, toy)
    ok(at.run())
    at.switch_page("pages/1_Quantize.py")
    run_quantize(at, "RQ", M=3, nbits=4)
    assert chart_titles(at) == charts.QUANTIZE_TITLES
    at.switch_page("app.py")
    ok(at.run())
    at.switch_page("pages/1_Quantize.py")
    ok(at.run())  # no Run pressed: the stored result is shown again, with the same settings
    assert chart_titles(at) == charts.QUANTIZE_TITLES
    assert at.number_input(key="q_RQ_M").value == 3
    assert at.session_state[S.Q_RESULT]["result"]["report"]["spec"] == "RQ3x4"


# ---------------------------------------------------------------- compare page


@pytest.mark.slow
def test_compare_runs_and_reuses_results(toy, monkeypatch):
    at = ok(page("2_Compare", toy).run())
    at.selectbox(key="cmp_nbits").set_value(4)
    ok(at.run())
    at.button(key="cmp_run").click()
    ok(at.run())
    assert chart_titles(at) == charts.COMPARE_TITLES
    store = at.session_state[S.CMP_RESULTS]
    assert sorted(r["spec"] for r in store.values()) == sorted(
        f"{m}{b // 4}x4" for m in ("PQ", "RQ") for b in (16, 32, 64))
    rd = next(r for r in store.values() if r["spec"] == "RQ4x4")
    rd16 = next(r for r in store.values() if r["spec"] == "RQ16x4")
    assert rd16["relative"] < rd["relative"]  # more bits, less error
    # GRVQ's Figure 2 (left): RQ's residual variance starts at 1 and falls with every stage
    stages = next(f for f in chart_figures(at) if f["layout"]["title"]["text"] == charts.TITLES["stages"])
    (line,) = stages["data"]  # PQ has no stages
    y = values(line["y"])
    assert line["name"] == "RQ16x4" and y[0] == 1.0
    assert np.all(np.diff(y) <= 1e-9)
    assert y[-1] == pytest.approx(rd16["relative"], rel=1e-6)

    # the entropy view says what it shows on this data
    assert any("RQ16x4 goes from" in c.value for c in at.caption)

    # complexity beside quality: at each budget RQ's encoding (M full-dimensional searches) costs
    # M times PQ's (one search over d in all), and the chart draws the reported costs
    cost = next(f for f in chart_figures(at) if f["layout"]["title"]["text"] == charts.TITLES["cost"])
    assert len(cost["data"]) == 3  # one line per budget
    for r in store.values():
        assert r["encode_madds"] > 0 and r["codebook_bytes"] > 0 and r["encode_us"] > 0
    for b in (16, 32, 64):
        pq, rq = (next(r for r in store.values() if r["spec"] == f"{m}{b // 4}x4") for m in ("PQ", "RQ"))
        assert rq["encode_madds"] > (b // 4) * pq["encode_madds"]

    # GRVQ's Figure 2 (right): RQ's codebooks re-encoded with beams 1..16; beam 1 is RQ's own
    # encoding, and the widest beam finds better tuples than it
    at.button(key="cmp_beams_run").click()
    ok(at.run())
    assert chart_titles(at) == charts.COMPARE_TITLES + [charts.TITLES["beams"]]
    fig = next(f for f in chart_figures(at) if f["layout"]["title"]["text"] == charts.TITLES["beams"])
    (line,) = fig["data"]
    assert line["name"] == "RQ16x4" and list(line["text"]) == ["1", "2", "4", "8", "16"]
    y = values(line["y"]).astype(float)
    assert y[0] == pytest.approx(rd16["relative"], rel=1e-5) and y[-1] < 0.9 * y[0]
    assert np.all(values(line["x"]).astype(float) > 0)

    def boom(*a, **k):
        raise AssertionError("refitted a result that was already computed")

    monkeypatch.setattr(vqcore, "from_spec", boom)
    at.segmented_control(key="cmp_R").set_value("100")
    ok(at.run())
    at.button(key="cmp_run").click()
    ok(at.run())
    assert chart_titles(at) == charts.COMPARE_TITLES + [charts.TITLES["beams"]]
    recall = next(lay for lay in chart_layouts(at) if lay["title"]["text"] == charts.TITLES["recall"])
    assert recall["yaxis"]["title"]["text"] == "recall@100"


# ---------------------------------------------------------------- map page


def test_map_runs_the_default_and_colours_by_position(toy):
    at = ok(page("3_Map", toy).run())
    assert not chart_titles(at)
    at.button(key="map_run_default").click()
    ok(at.run())
    assert chart_titles(at) == [charts.TITLES["map"]]
    at.number_input(key="map_pos").set_value(3)
    ok(at.run())
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert "code position 3" in fig["layout"]["title"]["subtitle"]["text"]
    items = fig["data"][0]
    assert len(values(items["x"])) == 2000  # every row, the recall queries too


def test_map_uses_the_quantize_result_and_shows_labels(toy):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    S.seed(at.session_state, make_gaussian(1000, 8, random_state=0))
    at.session_state[S.DATA].labels = [f"item {i}" for i in range(1000)]
    ok(at.run())
    at.switch_page("pages/1_Quantize.py")
    run_quantize(at, "PQ", M=2, nbits=3)
    at.switch_page("pages/3_Map.py")
    ok(at.run())
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert "PQ2x3" in fig["layout"]["title"]["subtitle"]["text"]
    assert str(fig["data"][0]["customdata"][0][1]).startswith("item ")
    n_cw = sum(len(values(t["x"])) for t in fig["data"][1:])
    assert n_cw == 8  # K = 2^3 codewords, live and dead


# ---------------------------------------------------------------- learn page


def test_learn_draws_the_three_toys_and_follows_the_sliders():
    at = ok(AppTest.from_file(PAGE["4_Learn"], default_timeout=TIMEOUT).run())
    titles = [charts.TITLES[k] for k in ("vq_cells", "pq_grid", "rq_stages")]
    assert chart_titles(at) == titles
    assert at.latex
    at.select_slider(key="learn_K").set_value(8)
    at.slider(key="learn_rho").set_value(0.0)
    ok(at.run())
    at.slider(key="learn_stage").set_value(1)
    ok(at.run())
    assert chart_titles(at) == titles
    rq = json.loads(at.get("plotly_chart")[2].proto.spec)
    assert "stage 1 of 3: 8 sums" in rq["layout"]["title"]["subtitle"]["text"]


# ---------------------------------------------------------------- chart builders


def test_every_quantize_chart_has_axis_titles(toy):
    q = vqcore.from_spec("RQ4x4", random_state=0).fit(toy.X)
    report = vqcore.report.evaluate(q, toy.X[:1800], toy.X[1800:])
    for fig in charts.quantize_figures(report):
        assert fig.layout.template.layout.font.family == charts.FONT
        assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text, charts.title_of(fig)
