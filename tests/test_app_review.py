"""Trust fixes of the session-6 review: the data's id column kept and exported beside the row
number, a data key that covers every input of a cached result, escaped error messages, npz
choices that apply without a re-upload, and the Compare row of a loaded model with its own beam."""

import re
from pathlib import Path

from apptest_helpers import ok
from streamlit.testing.v1 import AppTest

from ui import state as S
from ui.text import md
from vqcore.datasets import make_gaussian

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 120
HOSTILE = "**x**<img src=x onerror=alert(1)>"


def assert_literal(body):
    """Every ``*``, ``<`` and ``>`` of a Markdown body is escaped: it renders as that character."""
    assert not re.search(r"(?<!\\)[*<>]", body), body


# ---------------------------------------------------------------- item 3: errors quoting user text


def test_map_error_quoting_typed_text_shows_it_literally():
    at = AppTest.from_file(str(ROOT / "pages" / "3_Map.py"), default_timeout=TIMEOUT)
    S.seed(at.session_state, make_gaussian(600, 6, random_state=0))
    ok(at.run())
    at.button(key="map_run_default").click()
    ok(at.run())
    at.text_input(key="map_highlight").input(HOSTILE)
    ok(at.run())
    body = at.error[0].value
    assert md(repr(HOSTILE)) in body  # the Markdown source shows every character as itself
    assert_literal(body)
