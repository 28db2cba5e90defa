"""Small helpers shared by the AppTest page tests (imported, not collected)."""

import io
import json

import numpy as np


def npy_bytes(X):
    """X as the bytes of a .npy file, as an upload would carry them."""
    buf = io.BytesIO()
    np.save(buf, X)
    return buf.getvalue()


def ok(at):
    """Assert no exception reached the page; return the AppTest for chaining."""
    assert not at.exception, [e.value for e in at.exception]
    return at


def chart_titles(at):
    """Titles of the plotly charts on the page, in order."""
    return [json.loads(el.proto.spec)["layout"]["title"]["text"] for el in at.get("plotly_chart")]


def download_bytes(at, key):
    """The bytes a download button of the last run gives when clicked. A file made on click (a callable)
    is made here by running the callable the page registered, as the browser's click does, through the
    media file manager of AppTest's runtime of that run; other files are read from its store."""
    import gc

    from streamlit.runtime.media_file_manager import MediaFileManager

    button = next(b for b in at.get("download_button") if b.key == key)
    managers = [o for o in gc.get_objects() if isinstance(o, MediaFileManager)]
    file_id, url = button.proto.deferred_file_id, button.proto.url
    if file_id:  # made on click
        managers = [m for m in managers if file_id in getattr(m, "_deferred_callables", {})]
        assert managers, f"no deferred file {file_id} for download {key!r}"
        url = managers[-1].execute_deferred(file_id)
    name = url.rsplit("/", 1)[1].split(".")[0]
    for m in reversed(managers):
        try:
            return m._storage.get_file(name).content
        except Exception:  # another run's store
            continue
    raise AssertionError(f"no file {url} for download {key!r}")


def run_quantize(at, method="RQ", M=2, nbits=3):
    """Open Quantize, choose ``method`` with M codebooks of 2**nbits codes, press Run; returns ``at``."""
    at.switch_page("pages/1_Quantize.py")
    ok(at.run())
    at.selectbox(key="q_method").set_value(method)
    ok(at.run())
    at.number_input(key=f"q_{method}_M").set_value(M)
    at.number_input(key=f"q_{method}_nbits").set_value(nbits)
    at.button(key="q_run").click()
    return ok(at.run())
