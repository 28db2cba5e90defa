"""Many people at once: 8 browser sessions upload, quantize and wait for the charts, concurrently.

Starts ``streamlit run app.py`` on a free local port and drives Debian's
chromium (``/usr/bin/chromium``, never a downloaded browser) with Playwright's
async API: one browser, one isolated context per person (own cookies, own
websocket, own Streamlit session), all started together with
``asyncio.gather``. Each session:

1. opens the home page and waits for its charts;
2. uploads its own .npy through the file input (rows 3,000 + 40 i, d = 64,
   seed i: every file differs in shape and content, so no session can be
   served another's cached result);
3. goes to Quantize, picks PQ 8x8 (64 bits) with a training subsample of
   1,024 rows, presses Run, and waits for the six chart titles;
4. checks that the page names its own file and its own row count
   ("PQ8x8 on <n> items": every row has its code) and shows no exception.

It prints each session's times (whole flow; Run -> charts), p50 / p95, the
errors (expected 0), the server's peak resident memory and the machine's core
count. Every wait has a timeout and the whole run is capped (--budget).

By default the server is cold (the sessions arrive together at a server that
has not yet run the app, so the first imports and the shipped sample's load
fall inside the "home" times); --warmup opens the home page once first.

Usage (from the repository root): python -m bench.load [--sessions 8] [--rows 3000] [--dim 64] [--budget 600] [--warmup]
This is a benchmark, not a test: it prints, it does not assert.
"""

import argparse
import asyncio
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

from ui import charts, devserver

SPEC_LABEL, SPEC, TRAIN_ROWS = "Product (PQ)", "PQ8x8", 1024
STEP_TIMEOUT_MS = 240_000


def peak_rss_mb(pid):
    """Peak resident set size of a process (VmHWM), in MiB; None if unknown."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid):
    """User + system CPU seconds a process has used so far (all its threads); None if unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def percentile(xs, q):
    """The q-th percentile (0..100) by linear interpolation between closest ranks."""
    xs = sorted(xs)
    if not xs:
        return float("nan")
    pos = (len(xs) - 1) * q / 100
    lo, hi = int(pos), min(int(pos) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


async def idle(page):
    """Wait until Streamlit has finished running the script (as ui.devserver.wait_idle)."""
    await page.wait_for_timeout(300)
    await page.wait_for_selector(devserver.IDLE, state="attached", timeout=STEP_TIMEOUT_MS)


async def session(browser, url, i, path, n, d):
    """One person's whole flow; returns a dict of times, or of the error."""
    out = {"session": i, "file": path.name, "n": n, "d": d}
    context = await browser.new_context(viewport={"width": 1400, "height": 2400})
    try:
        page = await context.new_page()
        page.set_default_timeout(STEP_TIMEOUT_MS)
        t0 = time.perf_counter()
        await page.goto(url)
        await page.get_by_text(charts.TITLES["norms"], exact=True).wait_for()
        await idle(page)
        out["home_s"] = time.perf_counter() - t0

        t1 = time.perf_counter()
        await page.get_by_role("tab", name="Upload a file").click()
        await page.locator("input[type=file]").set_input_files(str(path))
        await page.get_by_text(f"Loaded {path.name}.").wait_for()
        await page.get_by_text(f"Loaded: {path.name}").wait_for()
        await idle(page)
        out["upload_s"] = time.perf_counter() - t1

        await page.get_by_role("link", name="Quantize").click()
        await page.get_by_text(f"Data: {path.name}, {n:,} × {d}.").wait_for()
        await idle(page)
        await page.get_by_test_id("stSelectbox").first.click()
        await page.get_by_role("option", name=SPEC_LABEL).click()
        await idle(page)
        train = page.get_by_role("spinbutton", name="Training subsample (rows)", exact=True)
        await train.fill(str(TRAIN_ROWS))
        await train.press("Enter")
        await idle(page)
        await page.get_by_text(SPEC, exact=True).first.wait_for()  # the spec line: `PQ8x8`
        if await train.input_value() != str(TRAIN_ROWS):
            raise AssertionError(f"training subsample shows {await train.input_value()}, not {TRAIN_ROWS}")

        t2 = time.perf_counter()
        await page.get_by_role("button", name="Run", exact=True).click()
        for title in charts.QUANTIZE_TITLES:
            await page.get_by_text(title, exact=True).first.wait_for(state="visible")
        out["run_s"] = time.perf_counter() - t2
        await idle(page)
        out["total_s"] = time.perf_counter() - t0

        own = await page.get_by_text(f"{SPEC} on {n:,} items", exact=True).count()
        badge = await page.get_by_text(f"Data: {path.name}, {n:,} × {d}.").count()
        trained = await page.get_by_text(f"Trained on {TRAIN_ROWS:,} random rows", exact=False).count()
        exceptions = await page.get_by_test_id("stException").count()
        if own != 1 or badge != 1 or trained != 1 or exceptions:
            raise AssertionError(f"own result shown {own}x, own data badge {badge}x, training caption {trained}x, "
                                 f"{exceptions} exception(s)")
    except Exception as exc:  # noqa: BLE001 - recorded and counted; the other sessions go on
        out["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
        out["trace"] = traceback.format_exc(limit=3)
    finally:
        await context.close()
    return out


async def warm_up(browser, url):
    """One session opens the home page alone first (the server's first imports and sample load)."""
    context = await browser.new_context()
    try:
        page = await context.new_page()
        page.set_default_timeout(STEP_TIMEOUT_MS)
        t0 = time.perf_counter()
        await page.goto(url)
        await page.get_by_text(charts.TITLES["norms"], exact=True).wait_for()
        await idle(page)
        return time.perf_counter() - t0
    finally:
        await context.close()


async def run_all(url, files, budget, warmup):
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await devserver.launch_chromium(p)
        try:
            if warmup:
                print(f"warm-up: one session opened the home page alone in {await warm_up(browser, url):.2f} s",
                      flush=True)
            tasks = [session(browser, url, i, path, n, d) for i, (path, n, d) in enumerate(files)]
            return await asyncio.wait_for(asyncio.gather(*tasks), timeout=budget)
        finally:
            await browser.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--budget", type=float, default=600, help="seconds for the whole concurrent run")
    ap.add_argument("--warmup", action="store_true",
                    help="open the home page once, alone, before the sessions start (default: a cold server)")
    args = ap.parse_args()
    if not os.path.exists(devserver.CHROMIUM):
        raise SystemExit(f"needs Debian's chromium at {devserver.CHROMIUM}")

    load_before = os.getloadavg()
    tmp = tempfile.TemporaryDirectory()
    files = []
    for i in range(args.sessions):
        n = args.rows + 40 * i
        X = np.random.default_rng(i).standard_normal((n, args.dim)).astype(np.float32)
        X *= np.linspace(2.0, 0.2, args.dim, dtype=np.float32)  # a decaying spectrum, as real embeddings have
        path = Path(tmp.name) / f"session_{i}.npy"
        np.save(path, X)
        files.append((path, n, args.dim))

    log_path = Path(tmp.name) / "streamlit.log"
    proc = None
    t0 = time.perf_counter()
    try:
        with open(log_path, "wb") as log:
            proc, url = devserver.start(log=log)
            cpu0 = cpu_seconds(proc.pid)
            try:
                results = asyncio.run(run_all(url, files, args.budget, args.warmup))
            except TimeoutError:
                results = [{"session": i, "error": f"the whole run exceeded --budget {args.budget:.0f} s"}
                           for i in range(args.sessions)]
            wall = time.perf_counter() - t0
            peak = peak_rss_mb(proc.pid)
            cpu1 = cpu_seconds(proc.pid)
            server_cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    finally:
        if proc is not None:
            devserver.stop(proc)
        server_log = log_path.read_text(errors="replace") if log_path.exists() else ""
        tmp.cleanup()

    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    print(f"{args.sessions} concurrent browser sessions (one chromium, one context each) on {cores} cores "
          f"({usable} usable), {'warm' if args.warmup else 'cold'} server; "
          f"each: home page -> upload its own .npy ({args.rows:,}+40i x {args.dim}) -> "
          f"Quantize {SPEC}, training subsample {TRAIN_ROWS:,} rows -> six charts")
    print(f"{'session':>7s} {'file':>14s} {'rows':>6s} {'home':>7s} {'upload':>7s} {'Run->charts':>12s} "
          f"{'total':>7s}  error")
    for r in sorted(results, key=lambda r: r["session"]):
        def fmt(k, r=r):
            return f"{r[k]:6.2f}s" if k in r else "      -"
        print(f"{r['session']:7d} {r.get('file', '-'):>14s} {r.get('n', 0):6,d} {fmt('home_s')} {fmt('upload_s')} "
              f"{fmt('run_s'):>12s} {fmt('total_s')}  {r.get('error', '')}")
    errors = [r for r in results if "error" in r]
    for metric, label in (("total_s", "whole flow"), ("run_s", "Run -> charts")):
        xs = [r[metric] for r in results if metric in r and "error" not in r]
        if xs:
            print(f"{label:14s} p50 {percentile(xs, 50):6.2f} s   p95 {percentile(xs, 95):6.2f} s   "
                  f"max {max(xs):6.2f} s   (n={len(xs)})")
    print(f"errors: {len(errors)} of {len(results)}")
    print("load average (1, 5, 15 min) before the run: " + ", ".join(f"{x:.1f}" for x in load_before)
          + "; after: " + ", ".join(f"{x:.1f}" for x in os.getloadavg())
          + " (other work on the machine slows every session)")
    print(f"wall time {wall:.1f} s; streamlit server peak RSS "
          + (f"{peak:,.0f} MiB" if peak is not None else "unknown")
          + (f"; server CPU {server_cpu:.1f} s of the {cores * wall:.0f} core-seconds available (the rest went "
             "to the browsers, which here share the server's cores, and to other work)" if server_cpu else ""))
    if errors:
        print("\nfirst error's trace:\n" + errors[0].get("trace", ""))
        tracebacks = [ln for ln in server_log.splitlines() if "Traceback" in ln or "Error" in ln]
        if tracebacks:
            print("server log lines mentioning errors:\n" + "\n".join(tracebacks[:20]))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
