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
