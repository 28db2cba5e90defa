"""Run the app on a local port and drive it with Debian's chromium.

Shared by the browser test and the browser benchmarks (bench/app_latency.py,
bench/load.py): one way to start and stop the server and to launch chromium,
never a downloaded browser.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
# as root and on a closed network: no sandbox, no background connections
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(port=None, *, log=None, timeout=90, env=None, app_args=()):
    """Start ``streamlit run app.py`` on 127.0.0.1; return (process, url) once /_stcore/health is ok.

    ``log`` is an open binary file for the server's output (default: discarded); ``env``,
    extra environment variables for the server (e.g. ``VQLENS_MAX_HELD_MB``); ``app_args``, the
    app's own arguments (``streamlit run app.py -- --data-dir PATH``).
    Raises RuntimeError if the server exits or is not healthy within ``timeout`` seconds.
    """
    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.headless", "true", "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
         *(["--", *app_args] if app_args else [])],
        cwd=ROOT, env={**os.environ, **(env or {})},
        stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200 and r.read().strip() == b"ok":
                    return proc, url
        except OSError:
            pass
        time.sleep(0.3)
    stop(proc)
    raise RuntimeError(f"streamlit did not become healthy in {timeout} s")


def stop(proc):
    """Stop the server by its pid: SIGTERM, then SIGKILL after 15 s."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def launch_chromium(playwright, **kw):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, **kw)


IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def wait_idle(page, timeout_ms, *, settle_ms=100):
    """Wait until Streamlit has finished running the script.

    The app's root element carries the script's state in ``data-test-script-state``
    (``running``, ``rerunRequested``, ``notRunning``, ...), as Streamlit's own
    end-to-end tests read it. A click's rerun starts a moment after the click, so
    callers that just clicked wait ``settle_ms`` (or more) first.
    """
    page.wait_for_timeout(settle_ms)
    page.wait_for_selector(IDLE, state="attached", timeout=timeout_ms)
