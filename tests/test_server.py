"""A real server (``streamlit run app.py``, ui/devserver) driven by Debian's chromium: what issue 16
asks of the server as a whole, measured on the running process.

- An upload is released once it is read: Streamlit's store of uploaded files (its own
  ``/_stcore/metrics``) holds nothing once the home page says "Loaded".
- A burst of uploads from sessions that then close gives the memory back: four tabs each upload a
  60 MB file and close; within the shipped ``server.disconnectedSessionTTL`` (30 s) plus a margin,
  the server's resident memory (RSS, from /proc) is back within 300 MB of its size before the burst
  (idle: after one tab loaded the shipped sample and closed). Streamlit's default (120 s) failed this.
- A Markdown image in a column name or a file name is shown as text: the browser never requests it
  (a local HTTP server counts the requests).

Slow (a minute or two); skipped without chromium, except under CI.
"""

import os
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from ui import devserver

pytestmark = pytest.mark.skipif(
    not os.path.exists(devserver.CHROMIUM) and not os.environ.get("CI"), reason="needs Debian's chromium"
)
TIMEOUT_MS = 120_000
BURST = 4  # tabs
UPLOAD_ROWS, UPLOAD_DIM = 60 * 2**20 // (4 * 256), 256  # 60 MiB of float32 each
SLACK = 300 * 2**20


def rss(pid):
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def uploads_held(url):
    """Bytes in Streamlit's store of uploaded files, from its metrics endpoint."""
    req = urllib.request.Request(url + "/_stcore/metrics?families=cache_memory_bytes",
                                 headers={"Accept": "text/plain"})
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read().decode()
    held = 0
    for line in text.splitlines():
        if line.startswith("cache_memory_bytes") and "UploadedFileManager" in line:
            held += int(float(line.rsplit(" ", 1)[1]))
    return held


@pytest.fixture(scope="module")
def server():
    proc, url = devserver.start()
    try:
        yield proc, url
    finally:
        devserver.stop(proc)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = devserver.launch_chromium(p)
        try:
            yield b
        finally:
            b.close()


def open_home(browser, url):
    context = browser.new_context(viewport={"width": 1300, "height": 1600})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.get_by_text("Loaded: ", exact=False).first.wait_for()
    devserver.wait_idle(page, TIMEOUT_MS)
    return context, page


def upload(page, path, loaded_text):
    page.get_by_role("tab", name="Upload a file").click()
    page.locator("input[type=file]").set_input_files(str(path))
    page.get_by_text(loaded_text, exact=True).wait_for()
    devserver.wait_idle(page, TIMEOUT_MS)


def test_an_upload_is_released_once_read(server, browser, tmp_path):
    proc, url = server
    path = tmp_path / "released.npy"
    np.save(path, np.random.default_rng(0).standard_normal((20_000, 128)).astype(np.float32))  # 9.8 MiB
    context, page = open_home(browser, url)
    try:
        upload(page, path, "Loaded released.npy.")
        page.get_by_text("Loaded: released.npy").wait_for()
        assert uploads_held(url) == 0  # the session is open; its data is held as an array, not the file
    finally:
        context.close()


def test_another_npz_array_is_read_without_a_new_upload(server, browser, tmp_path):
    """The uploader's copy is released once read; the page keeps the .npz itself (within the cap), so
    typing another array's name loads it (before: "Upload the file again")."""
    proc, url = server
    rng = np.random.default_rng(0)
    path = tmp_path / "two.npz"
    np.savez(path, A=rng.standard_normal((50, 4)).astype(np.float32),
             B=rng.standard_normal((50, 3)).astype(np.float32))
    context, page = open_home(browser, url)
    try:
        upload(page, path, "Loaded two.npz.")
        page.get_by_text("Loaded: two.npz['A']").wait_for()
        assert uploads_held(url) == 0
        box = page.get_by_role("textbox", name="Array of an .npz (optional)")
        box.fill("B")
        box.press("Enter")
        page.get_by_text("Loaded: two.npz['B']").wait_for()
        devserver.wait_idle(page, TIMEOUT_MS)
        assert page.get_by_text("Upload the file again", exact=False).count() == 0
    finally:
        context.close()


def test_markdown_in_names_is_never_fetched(server, browser, tmp_path):
    proc, url = server
    hits = []

    class Count(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    trap = ThreadingHTTPServer(("127.0.0.1", devserver.free_port()), Count)
    threading.Thread(target=trap.serve_forever, daemon=True).start()
    port = trap.server_address[1]
    image = f"![b](http://127.0.0.1:{port}/x.png)"
    path = tmp_path / f"b{port}.csv"
    # two text columns: the home page's notes name both ("Ignored 2 text columns (...)")
    path.write_text(f"{image},[c](http://127.0.0.1:{port}/c),a,b\nx,y,1,2\nz,w,3,4\n")
    context, page = open_home(browser, url)
    try:
        upload(page, path, f"Loaded {path.name}.")
        page.get_by_text(f"Loaded: {path.name}").wait_for()
        time.sleep(2)
        assert hits == []  # the code before issue 16: ['/x.png']
        assert page.get_by_text(f"http://127.0.0.1:{port}/x.png", exact=False).count() >= 1  # shown as text
    finally:
        context.close()
        trap.shutdown()


def test_a_burst_of_uploads_from_closed_tabs_gives_the_memory_back(server, browser, tmp_path):
    proc, url = server
    context, _ = open_home(browser, url)  # the shipped sample, loaded once: the server at work, idle
    context.close()
    time.sleep(5)
    idle = rss(proc.pid)
    paths = []
    for i in range(BURST):
        paths.append(tmp_path / f"burst{i}.npy")
        np.save(paths[-1], np.random.default_rng(i).standard_normal((UPLOAD_ROWS, UPLOAD_DIM)).astype(np.float32))
    contexts = []
    for path in paths:
        context, page = open_home(browser, url)
        upload(page, path, f"Loaded {path.name}.")
        contexts.append(context)
    peak = rss(proc.pid)
    for context in contexts:
        context.close()
    deadline = time.monotonic() + 30 + 30  # the shipped session lifetime, then a margin
    now = rss(proc.pid)
    while now > idle + SLACK and time.monotonic() < deadline:
        time.sleep(2)
        now = rss(proc.pid)
    print(f"RSS idle {idle / 2**20:.0f} MiB, with {BURST} uploads {peak / 2**20:.0f} MiB, "
          f"after the tabs closed {now / 2**20:.0f} MiB")
    assert peak > idle + BURST * 60 * 2**20 // 2  # the burst was really held
    assert now <= idle + SLACK, (idle, peak, now)


def test_foreign_origin_upload_is_refused(server):
    """XSRF protection holds (measured fine in issue 16; kept as a test): an upload from another
    site, without the page's XSRF token, is refused before it reaches any session."""
    proc, url = server
    body = (b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.npy\"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\nhello\r\n--x--\r\n")
    req = urllib.request.Request(url + "/_stcore/upload_file/some-session/some-file", data=body, method="PUT",
                                 headers={"Content-Type": "multipart/form-data; boundary=x",
                                          "Origin": "http://evil.example"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    assert info.value.code == 403
