"""The real app in a real browser: upload a .npy through the file input, run RQ,
find every chart by its title, save a screenshot.

Starts ``streamlit run app.py`` on a free local port and drives Debian's
chromium (``/usr/bin/chromium``, never a downloaded browser) with Playwright.
Skips when chromium or Playwright is missing, except when the environment
variable CI is set: then it fails.
"""

import os

import numpy as np
import pytest

from ui import charts, devserver
from vqcore.datasets import make_gaussian

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
    """Wait until Streamlit has finished running the script (its status widget is gone)."""
    page.wait_for_timeout(500)
    devserver.wait_idle(page, TIMEOUT_MS)


def test_upload_npy_run_rq_and_find_the_charts(server, sync_playwright, tmp_path):
    X = make_gaussian(3000, 32, correlated=True, rho=0.8, random_state=1).X
    npy = tmp_path / "mine.npy"
    np.save(npy, X)
    shot = tmp_path / "quantize.png"

    with sync_playwright() as p:
        browser = devserver.launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2400})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(server)
            page.get_by_text(charts.TITLES["norms"], exact=True).wait_for()
            _wait_until_idle(page)

            # upload through the real file input
            page.get_by_role("tab", name="Upload a file").click()
            page.locator("input[type=file]").set_input_files(str(npy))
            page.get_by_text("Loaded mine.npy.").wait_for()
            page.get_by_text("Loaded: mine.npy").wait_for()
            _wait_until_idle(page)

            # the Quantize page, through the sidebar (the session and its data carry over)
            page.get_by_role("link", name="Quantize").click()
            page.get_by_text("mine.npy", exact=False).first.wait_for()
            page.get_by_test_id("stSelectbox").first.click()
            page.get_by_role("option", name="Residual (RQ)").click()
            _wait_until_idle(page)
            page.get_by_role("button", name="Run", exact=True).click()
            for title in charts.QUANTIZE_TITLES:
                page.get_by_text(title, exact=True).first.wait_for(state="visible")
            _wait_until_idle(page)
            assert page.get_by_text("RQ8x8 on 2,700 items").count() == 1
            assert page.get_by_test_id("stException").count() == 0
            page.screenshot(path=str(shot), full_page=True)

            # the files are made on click: the codes download is the (n, M) codes of the base rows
            with page.expect_download() as info:
                page.get_by_role("button", name="Codes (.npy)").click()
            codes = np.load(info.value.path(), allow_pickle=False)
            with page.expect_download() as info:
                page.get_by_role("button", name="Codebooks (.npz)").click()
            with np.load(info.value.path(), allow_pickle=False) as books:
                codebooks = books["codebooks"]
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    assert codes.shape == (2700, 8) and codes.dtype == np.uint8
    assert codebooks.shape == (8, 256, 32)


def test_collapse_lab_runs_a_short_training(server, sync_playwright, tmp_path):
    """The shipped sample, the default comparison (reset off / on) for 60 steps: the charts appear."""
    shot = tmp_path / "training.png"
    with sync_playwright() as p:
        browser = devserver.launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 3400})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(server)
            page.get_by_text(charts.TITLES["norms"], exact=True).wait_for()
            _wait_until_idle(page)

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
