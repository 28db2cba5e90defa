"""Latency of the Quantize page: time from pressing Run to every chart drawn.

Starts ``streamlit run app.py`` on a free local port, drives Debian's chromium
(``/usr/bin/chromium``) with Playwright, and for each case presses Run on the
Quantize page (default settings: RQ 8x8 = 64 bits, training subsample 4,096
rows) and waits until all six chart titles are visible and the script has
finished (ui.devserver.wait_idle: the app's ``data-test-script-state``). The
same work done by bare vqcore in this process (fit on the same training rows;
fit + the whole metric report of every row) is printed next to it.

Cases:
  sample   the shipped sample (6,000 x 384 MiniLM sentence embeddings); target < 3 s
  large    100,000 x 384 synthetic vectors (a unit-norm Gaussian mixture of 200
           clusters, made here; about 150 MB as .npy), uploaded through the file
           input; target < 15 s

Usage (from the repository root): python -m bench.app_latency [--cases sample,large] [--port 0]
This is a benchmark, not a test: it prints, it does not assert.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from ui import charts, devserver
from ui.state import DEFAULT_TRAIN_SIZE
from vqcore import from_spec
from vqcore.datasets import load_sample, make_mixture
from vqcore.inspect import preprocess, subsample_indices
from vqcore.report import default_n_queries, evaluate, holdout_split

SPEC, PARAMS, SEED = "RQ8x8", {"n_iter": 10, "clustering": "progressive"}, 0
TIMEOUT_MS = 300_000


def idle(page):
    devserver.wait_idle(page, TIMEOUT_MS)


def time_run(page):
    """Press Run; seconds until every chart title is visible and the script is idle."""
    t0 = time.perf_counter()
    page.get_by_role("button", name="Run", exact=True).click()
    for title in charts.QUANTIZE_TITLES:
        page.get_by_text(title, exact=True).first.wait_for(state="visible", timeout=TIMEOUT_MS)
    t_charts = time.perf_counter() - t0
    page.wait_for_timeout(100)
    idle(page)
    return t_charts, time.perf_counter() - t0


def bare(X):
    """The same fit and report with vqcore alone: (fit seconds, fit + evaluate seconds)."""
    base, queries = holdout_split(len(X), default_n_queries(len(X)), random_state=SEED)
    train = base[subsample_indices(len(base), DEFAULT_TRAIN_SIZE, random_state=SEED)]
    t0 = time.perf_counter()
    q = from_spec(SPEC, random_state=SEED, **PARAMS).fit(X[train])
    t_fit = time.perf_counter() - t0
    evaluate(q, X, query_rows=queries, fit_seconds=t_fit)  # as the app: every row, queries searched among the rest
    return t_fit, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default="sample,large")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    cases = args.cases.split(",")
    if not os.path.exists(devserver.CHROMIUM):
        raise SystemExit(f"needs Debian's chromium at {devserver.CHROMIUM}")
    from playwright.sync_api import sync_playwright

    proc, url = devserver.start(args.port)
    rows = []
    tmp = tempfile.TemporaryDirectory()
    try:
        with sync_playwright() as p:
            browser = devserver.launch_chromium(p)
            page = browser.new_page(viewport={"width": 1400, "height": 2400})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)
            page.get_by_text(charts.TITLES["norms"], exact=True).wait_for()
            idle(page)
            if "sample" in cases:
                page.get_by_role("link", name="Quantize").click()
                idle(page)
                t_charts, t_idle = time_run(page)
                t2_charts, _ = time_run(page)  # the same Run again: served from the cache
                X = load_sample().X
                rows.append(("shipped sample 6,000 x 384", X.shape, t_charts, t_idle, t2_charts, *bare(X), 3.0))
                page.get_by_role("link", name="Home: data").click()
                idle(page)
            if "large" in cases:
                X = make_mixture(100_000, 384, 200, spread=1.0, random_state=0).X
                X, _ = preprocess(X, normalize=True)
                path = Path(tmp.name) / "large_100k_x_384.npy"
                np.save(path, X)
                page.get_by_role("tab", name="Upload a file").click()
                t0 = time.perf_counter()
                page.locator("input[type=file]").set_input_files(str(path))
                page.get_by_text("Loaded: large_100k_x_384.npy").wait_for()
                idle(page)
                t_upload = time.perf_counter() - t0
                print(f"upload + parse + summary of {path.stat().st_size / 2**20:.0f} MB: {t_upload:.1f} s", flush=True)
                page.get_by_role("link", name="Quantize").click()
                idle(page)
                t_charts, t_idle = time_run(page)
                t2_charts, _ = time_run(page)
                rows.append(("100,000 x 384 (upload)", X.shape, t_charts, t_idle, t2_charts, *bare(X), 15.0))
            browser.close()
    finally:
        devserver.stop(proc)
        tmp.cleanup()

    print(f"\nQuantize page, {SPEC} (64 bits), training subsample {DEFAULT_TRAIN_SIZE:,} rows, seed {SEED}")
    print(f"{'case':30s} {'Run->charts':>12s} {'->idle':>8s} {'cached':>8s} {'vqcore fit':>11s} "
          f"{'fit+report':>11s} {'target':>7s}")
    for name, _shape, tc, ti, t2, bf, be, target in rows:
        flag = "ok" if tc < target else "SLOW"
        print(f"{name:30s} {tc:11.2f}s {ti:7.2f}s {t2:7.2f}s {bf:10.2f}s {be:10.2f}s {target:5.0f}s {flag}")


if __name__ == "__main__":
    main()
