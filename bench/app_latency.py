"""Latency of the Quantize page: time from pressing Run to every chart drawn.

Starts ``streamlit run app.py`` on a free local port, drives Debian's chromium
(``/usr/bin/chromium``) with Playwright, and for each case presses Run on the
Quantize page (default settings: RQ 8x8 = 64 bits, training subsample 4,096
rows) and waits until all six chart titles are visible and the script has
finished (ui.devserver.wait_idle: the app's ``data-test-script-state``). The
server's own fit and evaluation seconds are read from the run's status line,
so the rest (Streamlit, the charts, the browser) shows as their difference,
and the CPU seconds the server process and chromium spent on the Run are
read from the system (psutil): unlike wall time, they barely move with the
other work on a shared machine.
The same work done by bare vqcore in this process (fit on the same training
rows; fit + the whole metric report of every row) is printed next to it, with
the machine's load average: on a shared machine the ratio app / bare vqcore
is what one run can be judged by.

Cases (targets from issue 20, item 5):
  sample   the shipped sample (6,000 x 384 MiniLM sentence embeddings); target < 2 s
  large    100,000 x 384 synthetic vectors (a unit-norm Gaussian mixture of 200
           clusters, made here; about 150 MB as .npy), uploaded through the file
           input; target < 8 s

``--repeat N`` starts a new server N times (every first Run is then a cold one:
nothing cached, compiled loops loaded by the server's warm-up).

Usage (from the repository root): python -m bench.app_latency [--cases sample,large] [--repeat 1] [--port 0]
This is a benchmark, not a test: it prints, it does not assert.
"""

import argparse
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

from ui import charts, devserver
from ui.state import DEFAULT_TRAIN_SIZE
from vqcore import from_spec
from vqcore.datasets import load_sample, make_mixture
from vqcore.inspect import preprocess, subsample_indices
from vqcore.report import default_n_queries, evaluate, holdout_split

SPEC, PARAMS, SEED = "RQ8x8", {"n_iter": 10, "clustering": "progressive"}, 0
TIMEOUT_MS = 300_000
TARGETS = {"sample": 2.0, "large": 8.0}
STATUS = re.compile(r"fit ([0-9.]+) s, evaluation ([0-9.]+) s")


def idle(page):
    devserver.wait_idle(page, TIMEOUT_MS)


def load_average():
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def cpu_seconds(pids):
    """User + system CPU seconds of these processes so far (0 for one that has gone)."""
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def chromium_pids():
    return [c.pid for c in psutil.Process().children(recursive=True) if "chrom" in c.name().lower()]


def time_run(page, server_pid):
    """Press Run; (seconds until every chart title is visible, until the script is idle,
    the server's fit seconds, its evaluation seconds (these two from the status line),
    CPU seconds of the server process, CPU seconds of chromium, both from the click to idle)."""
    browser = chromium_pids()
    cpu0 = cpu_seconds([server_pid]), cpu_seconds(browser)
    t0 = time.perf_counter()
    page.get_by_role("button", name="Run", exact=True).click()
    for title in charts.QUANTIZE_TITLES:
        page.get_by_text(title, exact=True).first.wait_for(state="visible", timeout=TIMEOUT_MS)
    t_charts = time.perf_counter() - t0
    page.wait_for_timeout(100)
    idle(page)
    t_idle = time.perf_counter() - t0
    cpu = cpu_seconds([server_pid]) - cpu0[0], cpu_seconds(browser) - cpu0[1]
    found = STATUS.search(page.locator("body").inner_text())
    fit_s, eval_s = (float(found[1]), float(found[2])) if found else (float("nan"), float("nan"))
    return t_charts, t_idle, fit_s, eval_s, *cpu


def bare(X):
    """The same fit and report with vqcore alone: (fit seconds, fit + evaluate seconds, CPU seconds of both)."""
    base, queries = holdout_split(len(X), default_n_queries(len(X)), random_state=SEED)
    train = base[subsample_indices(len(base), DEFAULT_TRAIN_SIZE, random_state=SEED)]
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    q = from_spec(SPEC, random_state=SEED, **PARAMS).fit(X[train])
    t_fit = time.perf_counter() - t0
    evaluate(q, X, query_rows=queries, fit_seconds=t_fit)  # as the app: every row, queries searched among the rest
    return t_fit, time.perf_counter() - t0, time.process_time() - cpu0


def one_server(cases, port, large_path):
    """Start a server, time the cases on it, stop it; one row per case."""
    from playwright.sync_api import sync_playwright

    rows = []
    proc, url = devserver.start(port)
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
                load = load_average()
                first = time_run(page, proc.pid)
                cached = time_run(page, proc.pid)  # the same Run again: served from the cache
                X = load_sample().X
                rows.append(("shipped sample 6,000 x 384", load, first, cached[0], *bare(X), TARGETS["sample"]))
                page.get_by_role("link", name="Home: data").click()
                idle(page)
            if "large" in cases:
                page.get_by_role("tab", name="Upload a file").click()
                t0 = time.perf_counter()
                page.locator("input[type=file]").set_input_files(str(large_path))
                page.get_by_text(f"Loaded: {large_path.name}").wait_for()
                idle(page)
                t_upload = time.perf_counter() - t0
                print(f"upload + parse + summary of {large_path.stat().st_size / 2**20:.0f} MB: {t_upload:.1f} s",
                      flush=True)
                page.get_by_role("link", name="Quantize").click()
                idle(page)
                load = load_average()
                first = time_run(page, proc.pid)
                cached = time_run(page, proc.pid)
                X = np.load(large_path)
                rows.append(("100,000 x 384 (upload)", load, first, cached[0], *bare(X), TARGETS["large"]))
            browser.close()
    finally:
        devserver.stop(proc)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default="sample,large")
    ap.add_argument("--repeat", type=int, default=1, help="servers started, one after the other")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    cases = args.cases.split(",")
    if not os.path.exists(devserver.CHROMIUM):
        raise SystemExit(f"needs Debian's chromium at {devserver.CHROMIUM}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        large_path = Path(tmp) / "large_100k_x_384.npy"
        if "large" in cases:
            X = make_mixture(100_000, 384, 200, spread=1.0, random_state=0).X
            X, _ = preprocess(X, normalize=True)
            np.save(large_path, X)
            del X
        for _ in range(args.repeat):
            rows += one_server(cases, args.port, large_path)

    print(f"\nQuantize page, {SPEC} (64 bits), training subsample {DEFAULT_TRAIN_SIZE:,} rows, seed {SEED}; "
          "app fit / eval: the server's own seconds (status line); rest: Run->charts minus both; "
          "cpu: CPU seconds from the click to idle (server process, chromium; bare vqcore's fit + report)")
    print(f"{'case':28s} {'load':>5s} {'Run->charts':>11s} {'->idle':>7s} {'app fit':>8s} {'app eval':>8s} "
          f"{'rest':>6s} {'cached':>7s} {'cpu srv':>7s} {'cpu chr':>7s} {'vq fit':>7s} {'fit+rep':>8s} "
          f"{'cpu vq':>7s} {'app/vq':>6s} {'target':>6s}")
    for name, load, (tc, ti, af, ae, cs, cb), t2, bf, be, bc, target in rows:
        flag = "ok" if tc < target else "SLOW"
        print(f"{name:28s} {load:5.1f} {tc:10.2f}s {ti:6.2f}s {af:7.2f}s {ae:7.2f}s {tc - af - ae:5.2f}s "
              f"{t2:6.2f}s {cs:6.2f}s {cb:6.2f}s {bf:6.2f}s {be:7.2f}s {bc:6.2f}s {tc / be:6.2f} {target:5.0f}s {flag}")

if __name__ == "__main__":
    main()
