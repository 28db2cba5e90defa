"""The real app in a real browser: upload a .npy through the file input, run RQ,
find every chart by its title, save a screenshot.

Starts ``streamlit run app.py`` on a free local port and drives Debian's
chromium (``/usr/bin/chromium``, never a downloaded browser) with Playwright.
Skips when chromium or Playwright is missing, except when the environment
variable CI is set: then it fails.
"""

import os

import numpy as np
import pandas as pd
import pytest

from ui import charts, devserver
from vqcore.csvfile import safe_cell
from vqcore.datasets import load_sample, make_gaussian

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = devserver.CHROMIUM
TIMEOUT_MS = 120_000


def _unavailable(reason):
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this test may not be skipped)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def sync_playwright():
    if not os.path.exists(CHROMIUM):
        _unavailable(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright; no browser download needed)")
    return sync_playwright


@pytest.fixture(scope="module")
def server(tmp_path_factory, sync_playwright):
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    with open(log, "wb") as out:
        try:
            proc, url = devserver.start(log=out)
        except RuntimeError as exc:
            pytest.fail(f"{exc}:\n{log.read_text()[-3000:]}")
    try:
        yield url
    finally:
        devserver.stop(proc)


def _wait_until_idle(page):
    """Wait until Streamlit has finished running the script (``data-test-script-state``)."""
    devserver.wait_idle(page, TIMEOUT_MS, settle_ms=500)


def _open_home(browser, server, height=2400):
    """A new page on the app's home, once its first charts are drawn and the script has ended."""
    page = browser.new_page(viewport={"width": 1400, "height": height})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server)
    page.get_by_text(charts.TITLES["norms"], exact=True).wait_for()
    _wait_until_idle(page)
    return page


def _upload(page, path, *loaded):
    """Upload ``path`` through the home page's real file input and wait for each ``loaded`` text."""
    page.get_by_role("tab", name="Upload a file").click()
    page.locator("input[type=file]").set_input_files(str(path))
    for text in loaded:
        page.get_by_text(text).wait_for()
    _wait_until_idle(page)


def test_upload_npy_run_rq_and_find_the_charts(server, sync_playwright, tmp_path):
    X = make_gaussian(3000, 32, correlated=True, rho=0.8, random_state=1).X
    npy = tmp_path / "mine.npy"
    np.save(npy, X)
    shot = tmp_path / "quantize.png"

    with sync_playwright() as p:
        browser = devserver.launch_chromium(p)
        try:
            page = _open_home(browser, server, 2400)

            _upload(page, npy, "Loaded mine.npy.", "Loaded: mine.npy")

            # the Quantize page, through the sidebar (the session and its data carry over)
            page.get_by_role("link", name="Quantize").click()
            page.get_by_text("mine.npy", exact=False).first.wait_for()
            page.get_by_test_id("stSelectbox").first.click()
            page.get_by_role("option", name="Residual (RQ)").click()
            _wait_until_idle(page)
            page.get_by_role("button", name="Run", exact=True).click()
            # wait_idle waits for the script to end: then every chart is there, without waiting for it
            _wait_until_idle(page)
            for title in charts.QUANTIZE_TITLES:
                assert page.get_by_text(title, exact=True).count() >= 1, title
            assert page.get_by_text("RQ8x8 on 3,000 items").count() == 1  # every row, the queries too
            assert page.get_by_test_id("stException").count() == 0
            page.screenshot(path=str(shot), full_page=True)

            # the files are made on click: the codes download holds the (n, M) codes of every row
            with page.expect_download() as info:
                page.get_by_role("button", name="Codes (.npz)").click()
            with np.load(info.value.path(), allow_pickle=False) as z:
                codes, rows = z["codes"], z["row"]
            with page.expect_download() as info:
                page.get_by_role("button", name="Codebooks (.npz)").click()
            with np.load(info.value.path(), allow_pickle=False) as books:
                codebooks = books["codebooks"]
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    assert codes.shape == (3000, 8) and codes.dtype == np.uint8
    np.testing.assert_array_equal(rows, np.arange(3000))
    assert codebooks.shape == (8, 256, 32)


def test_collapse_lab_runs_a_short_training(server, sync_playwright, tmp_path):
    """The shipped sample, the default comparison (reset off / on) for 60 steps: the charts appear."""
    shot = tmp_path / "training.png"
    with sync_playwright() as p:
        browser = devserver.launch_chromium(p)
        try:
            page = _open_home(browser, server, 3400)

            page.get_by_role("link", name="Collapse lab").click()
            page.get_by_role("button", name="Run both").wait_for()
            _wait_until_idle(page)
            steps = page.get_by_label("Steps", exact=True)
            steps.fill("60")
            steps.press("Enter")
            _wait_until_idle(page)
            page.get_by_role("button", name="Run both").click()
            page.get_by_text(charts.TITLES["train_loss"], exact=True).first.wait_for(state="visible")
            for title in charts.TRAINING_TITLES:
                page.get_by_text(title, exact=True).first.wait_for(state="visible")
            _wait_until_idle(page)
            assert page.get_by_text("60 of 60", exact=True).count() == 2  # A and B ran to the end
            assert page.get_by_test_id("stException").count() == 0
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000


METHOD_NAMES = {"AQ": "Additive (AQ)", "RQ": "Residual (RQ)", "VQ": "k-means (VQ)", "PQ": "Product (PQ)"}
INPUTS = ("Codebooks M", "Bits per code", "Beam", "Iterations")


def _inputs(page):
    """The Quantize form's number inputs as shown, by label (None for one the method has not)."""
    out = {}
    for label in INPUTS:
        box = page.get_by_label(label, exact=True)
        out[label] = box.input_value() if box.count() else None
    return out


def _choose(page, method):
    page.get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name=METHOD_NAMES[method]).click()
    _wait_until_idle(page)


def _set(page, label, value):
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    _wait_until_idle(page)


def test_a_tour_of_the_methods_keeps_their_inputs_and_the_codes_cover_every_row(server, sync_playwright, tmp_path):
    """Issue 15: the tour AQ, RQ, VQ, AQ, PQ, RQ turned RQ's M=8, Iterations=10 into 1 and 1, and the
    codes download of the sample had 5,400 of its 6,000 rows, with no row numbers."""
    shot = tmp_path / "tour.png"
    with sync_playwright() as p:
        browser = devserver.launch_chromium(p)
        try:
            page = _open_home(browser, server, 2400)
            page.get_by_role("link", name="Quantize").click()
            page.get_by_role("button", name="Run", exact=True).wait_for()
            _wait_until_idle(page)

            # RQ with its own settings, then AQ with its own
            _set(page, "Codebooks M", 6)
            _set(page, "Iterations", 7)
            _choose(page, "AQ")
            _set(page, "Beam", 2)
            expected = {"RQ": {"Codebooks M": "6", "Bits per code": "8", "Beam": "1", "Iterations": "7"},
                        "AQ": {"Codebooks M": "8", "Bits per code": "8", "Beam": "2", "Iterations": "10"},
                        "VQ": {"Codebooks M": "1", "Bits per code": "8", "Beam": None, "Iterations": "25"},
                        "PQ": {"Codebooks M": "8", "Bits per code": "8", "Beam": None, "Iterations": "25"}}
            seen = []
            for method in ("AQ", "RQ", "VQ", "AQ", "PQ", "RQ"):
                _choose(page, method)
                seen.append((method, _inputs(page)))
                spec = page.get_by_text("Spec ", exact=False).first.inner_text()
                seen[-1][1]["spec"] = spec
            for method, shown in seen:
                spec = shown.pop("spec")
                assert shown == expected[method], (method, shown)
                M = expected[method]["Codebooks M"]
                assert f"{method}{M}x8" in spec and f"{expected[method]['Iterations']} iteration" in spec, spec

            # back to the default RQ8x8: Run on the sample, and the codes of all 6,000 rows with row numbers
            _set(page, "Codebooks M", 8)
            _set(page, "Iterations", 10)
            page.get_by_role("button", name="Run", exact=True).click()
            _wait_until_idle(page)
            assert page.get_by_text("RQ8x8 on 6,000 items").count() == 1
            page.screenshot(path=str(shot), full_page=True)
            with page.expect_download() as info:
                page.get_by_role("button", name="Codes (.csv)").click()
            table = pd.read_csv(info.value.path())
        finally:
            browser.close()
    sample = load_sample()
    assert len(table) == 6000 and list(table.columns[:2]) == ["row", "code_0"]
    np.testing.assert_array_equal(table["row"], np.arange(6000))
    # texts that a spreadsheet would run as a formula are quoted (one Debian fortune starts with '===')
    assert table["label"].tolist() == [safe_cell(t) for t in sample.labels]
    codes = table[[f"code_{m}" for m in range(8)]].to_numpy()
    assert codes.min() >= 0 and codes.max() < 256 and len({tuple(c) for c in codes}) > 5000


def test_the_id_column_of_an_uploaded_csv_is_in_the_codes_download(server, sync_playwright, tmp_path):
    """Review of session 6, item 1: a CSV with an item_id column (a formula among the ids, a repeated
    id, a row with NaN dropped on loading) gives a codes download whose every line has its file row
    number and that row's id, and the id is not read as a dimension."""
    n = 800
    X = make_gaussian(n, 6, random_state=2).X
    ids = [f"sku-{i:04d}" for i in range(n)]
    ids[4], ids[6] = "=HYPERLINK(1)", ids[5]
    frame = pd.DataFrame({"item_id": ids, **{f"x{j}": X[:, j] for j in range(6)},
                          "title": [f"title {i}" for i in range(n)]})
    frame.loc[2, "x0"] = np.nan
    path = tmp_path / "with_ids.csv"
    frame.to_csv(path, index=False)
    with sync_playwright() as p:
        browser = devserver.launch_chromium(p)
        try:
            page = _open_home(browser, server, 2400)
            _upload(page, path, "Loaded with_ids.csv.")
            assert page.get_by_text("repeat an id", exact=False).count() == 1  # a warning, not a refusal
            page.get_by_role("link", name="Quantize").click()
            page.get_by_text("with_ids.csv", exact=False).first.wait_for()
            _wait_until_idle(page)
            _set(page, "Codebooks M", 2)
            page.get_by_role("button", name="Run", exact=True).click()
            _wait_until_idle(page)
            page.get_by_text(f"on {n - 1:,} items", exact=False).first.wait_for()
            with page.expect_download() as info:
                page.get_by_role("button", name="Codes (.csv)").click()
            table = pd.read_csv(info.value.path(), dtype={"id": str, "label": str})
        finally:
            browser.close()
    kept = [i for i in range(n) if i != 2]
    assert list(table.columns) == ["row", "id", "code_0", "code_1", "label"]  # 6 dimensions, the id aside
    assert table["row"].tolist() == kept
    assert table["id"].tolist() == [safe_cell(ids[r]) for r in kept]
    assert table["label"].tolist() == [f"title {r}" for r in kept]


def test_bring_your_own_tokenizer_quantize_compare_and_downloads(server, sync_playwright, tmp_path):
    """Issue 18: upload embeddings, upload a trained model (vector-quantize-pytorch ResidualVQ, committed
    fixture), see the Quantize charts for it, then the Compare page with it beside RQ at the same bits,
    then download the faiss index and the prefix trie and open them."""
    import json
    from pathlib import Path

    fixtures = Path(__file__).resolve().parent / "fixtures" / "models"
    X = np.load(fixtures / "rvq_X.npy")
    npy = tmp_path / "inputs.npy"
    np.save(npy, X)
    shots = {name: tmp_path / f"{name}.png" for name in ("model_quantize", "model_compare")}

    with sync_playwright() as p:
        browser = devserver.launch_chromium(p)
        try:
            page = _open_home(browser, server, 2600)
            _upload(page, npy, "Loaded: inputs.npy")

            page.get_by_role("link", name="Quantize").click()
            page.get_by_text("inputs.npy", exact=False).first.wait_for()
            _wait_until_idle(page)
            page.get_by_text("Trained model (upload its file)").click()
            _wait_until_idle(page)
            page.locator("input[type=file]").first.set_input_files(str(fixtures / "rvq.safetensors"))
            page.get_by_text("vector-quantize-pytorch ResidualVQ", exact=False).first.wait_for()
            _wait_until_idle(page)
            page.get_by_role("button", name="Run", exact=True).click()
            _wait_until_idle(page)
            page.get_by_text("Your model RQ3x4 on 200 items").wait_for()
            for title in charts.QUANTIZE_TITLES:
                assert page.get_by_text(title, exact=True).count() >= 1, title
            assert page.get_by_test_id("stException").count() == 0
            page.screenshot(path=str(shots["model_quantize"]), full_page=True)

            with page.expect_download() as info:
                page.get_by_role("button", name="faiss index").click()
            faiss_bytes = Path(info.value.path()).read_bytes()
            with page.expect_download() as info:
                page.get_by_role("button", name="Prefix trie (JSON)").click()
            trie = json.loads(Path(info.value.path()).read_text())

            page.get_by_role("link", name="Compare").click()
            page.get_by_text("Include your model", exact=False).first.wait_for()
            _wait_until_idle(page)
            page.get_by_role("button", name="Fit RQ3x4 at the same bits as my model").click()
            _wait_until_idle(page)
            page.get_by_text(charts.TITLES["rd"], exact=True).wait_for()
            assert page.get_by_test_id("stException").count() == 0
            page.screenshot(path=str(shots["model_compare"]), full_page=True)
            with page.expect_download() as info:
                page.get_by_role("button", name="Table (CSV)").click()
            table = pd.read_csv(info.value.path())
        finally:
            browser.close()
    print("screenshots:", *shots.values())
    assert all(s.stat().st_size > 10_000 for s in shots.values())
    assert sorted(zip(table["method"], table["spec"])) == [("RQ", "RQ3x4"), ("Your model", "RQ3x4")]
    assert table["bits"].nunique() == 1
    assert trie["count"] == X.shape[0]
    assert sum(child["count"] for child in trie["children"].values()) == X.shape[0]
    faiss = pytest.importorskip("faiss")
    index = faiss.deserialize_index(np.frombuffer(faiss_bytes, dtype=np.uint8))
    assert index.ntotal == X.shape[0] and index.d == X.shape[1]


def test_cli_report_html_draws_its_charts_without_a_server(sync_playwright, tmp_path):
    """report.html of ``python -m vqcore report`` is one file: opened from disk (no server,
    plotly.js inlined), it draws every chart with its title."""
    import json
    import subprocess
    import sys

    X = make_gaussian(2000, 16, correlated=True, rho=0.8, random_state=2).X
    np.save(tmp_path / "x.npy", X)
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "vqcore", "report", str(tmp_path / "x.npy"), "--spec", "RQ3x4",
                          "--out", str(out), "--sample", "1000", "--quiet"],
                         cwd=devserver.ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads((out / "report.json").read_text())
    expected = charts.QUANTIZE_TITLES + [charts.TITLES["sid_prefix"], charts.TITLES["sid_groups"]]
    with sync_playwright() as p:
        browser = devserver.launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto((out / "report.html").as_uri())
        page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {len(expected)}",
                               timeout=TIMEOUT_MS)
        titles = page.eval_on_selector_all(".js-plotly-plot .gtitle", "els => els.map(e => e.textContent)")
        drawn = page.eval_on_selector_all(".js-plotly-plot",
                                          "els => els.map(e => e.querySelectorAll('g.trace, image').length)")
        text = page.inner_text("body")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert titles == expected
    assert len(drawn) == len(expected) and min(drawn) > 0  # every chart has marks, not only axes
    assert report["spec"] in text and f"{report['n']:,}" in text
    assert all(u.startswith("file://") for u in requests)  # nothing fetched from the network


def test_a_catalogue_of_the_data_folder_is_measured_on_every_row(sync_playwright, tmp_path):
    """Issue 19 item 5: started with --data-dir, the home page opens a catalogue of that folder; Run on the
    Quantize page fits on its sample and measures all 20,000 rows; the collision rate shown is the one
    vqcore.pipeline.report_dataset gives with the codebooks the page downloads, on the same file."""
    import pyarrow.parquet as pq

    from vqcore import load_quantizer, metrics
    from vqcore.catalog import open_dataset
    from vqcore.pipeline import report_dataset

    folder = tmp_path / "catalogues"
    folder.mkdir()
    n = 20_000
    np.save(folder / "catalogue.npy", make_gaussian(n, 16, correlated=True, rho=0.8, random_state=2).X)
    shot = tmp_path / "catalogue.png"
    log = tmp_path / "streamlit.log"
    with open(log, "wb") as out:
        try:
            proc, url = devserver.start(log=out, app_args=["--data-dir", str(folder)])
        except RuntimeError as exc:
            pytest.fail(f"{exc}:\n{log.read_text()[-3000:]}")
    try:
        with sync_playwright() as p:
            browser = devserver.launch_chromium(p)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 2600})
                page.set_default_timeout(TIMEOUT_MS)
                page.goto(url)
                page.get_by_text(charts.TITLES["norms"], exact=True).wait_for()
                _wait_until_idle(page)
                page.get_by_role("tab", name="Data folder").click()
                _set(page, "Sample for the per-point views (rows)", 5000)
                page.get_by_role("button", name="Open the dataset").click()
                page.get_by_text("Loaded: catalogue.npy").wait_for()
                _wait_until_idle(page)

                page.get_by_role("link", name="Quantize").click()
                page.get_by_role("button", name="Run", exact=True).wait_for()
                _wait_until_idle(page)
                _set(page, "Codebooks M", 3)
                _set(page, "Bits per code", 5)
                _set(page, "Training subsample (rows)", 2000)
                page.get_by_role("button", name="Run", exact=True).click()
                _wait_until_idle(page)  # the fit, then every row encoded and measured
                assert page.get_by_test_id("stException").count() == 0
                line = page.get_by_text("Collision rate over all 20,000 items").inner_text()
                page.get_by_text("RQ3x5 on the whole catalogue: 20,000 items").wait_for()
                page.screenshot(path=str(shot), full_page=True)
                with page.expect_download() as info:
                    page.get_by_role("button", name="Codebooks (.npz)").click()
                books = tmp_path / "books.npz"
                info.value.save_as(books)
                with page.expect_download() as info:
                    page.get_by_role("button", name=f"Codes of all {n:,} rows (.parquet)").click()
                table = pq.read_table(info.value.path())
            finally:
                browser.close()
    finally:
        devserver.stop(proc)
    q = load_quantizer(str(books))
    report, codes = report_dataset(q, open_dataset(folder / "catalogue.npy"))
    rate = report["collisions"]["rate"]
    assert rate == metrics.collision_rate(codes) > 0
    assert f"{rate:.4%}" in line and f"{round(n * rate):,} items repeat" in line, line
    assert table.num_rows == n
    np.testing.assert_array_equal(table.column("row").to_numpy(), np.arange(n))
    np.testing.assert_array_equal(np.column_stack([table.column(f"level_{m}").to_numpy() for m in range(3)]), codes)
    assert shot.stat().st_size > 10_000
