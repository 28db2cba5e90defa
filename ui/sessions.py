"""Closed tabs give their memory back: sessions whose browser went away are shut down on time.

Streamlit keeps a disconnected session (its state: the data, the results; its uploaded files)
for ``server.disconnectedSessionTTL`` seconds so that a reconnect can resume it, in a TTL cache
that drops expired entries only when another session is stored, and then without shutting the
session down (its uploaded files stay in the upload store). A burst of uploads from tabs that
close was therefore held until later visitors happened to come and go. One thread per server
process (:func:`reaper`) watches the sessions that ran a page and shuts down each one that has
been disconnected for ``REAP_FRACTION`` of that lifetime, through Streamlit's thread-safe
``Runtime.clear_user_info_for_session`` (which closes a stored session on the event loop), then
collects the garbage they leave and hands the freed heap back to the system (glibc's
``malloc_trim``: without it, arrays of a few MB freed by the sessions' threads stay in
their malloc arenas, about 300 MB after four 60 MB uploads).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
import time

import streamlit as st
from streamlit import config
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

REAP_FRACTION = 0.8  # of server.disconnectedSessionTTL: before Streamlit's cache lets the entry expire
POLL_SECONDS = 2.0


class _Reaper:
    def __init__(self, ttl):
        self.after = max(1.0, REAP_FRACTION * float(ttl))
        self._gone_since = {}  # session id -> time it was first seen disconnected (None: connected)
        self._lock = threading.Lock()

    def note(self, session_id):
        with self._lock:
            self._gone_since[session_id] = None

    def sweep(self, runtime, now):
        """Shut down the sessions disconnected for ``after`` seconds; return how many."""
        with self._lock:
            ids = list(self._gone_since)
        closed = 0
        for sid in ids:
            if runtime.is_active_session(sid):
                with self._lock:
                    self._gone_since[sid] = None
                continue
            with self._lock:
                since = self._gone_since.get(sid)
                if since is None:
                    self._gone_since[sid] = now
                    continue
                if now - since < self.after:
                    continue
                del self._gone_since[sid]
            runtime.clear_user_info_for_session(sid)  # a stored session: closed on the event loop
            closed += 1
        return closed

    def run(self):
        while True:
            time.sleep(POLL_SECONDS)
            try:
                runtime = Runtime.instance()
            except RuntimeError:  # the runtime has stopped (or was a test's)
                return
            if self.sweep(runtime, time.monotonic()):
                time.sleep(POLL_SECONDS)  # the closes run on the event loop
                gc.collect()
                _trim_heap()


def _trim_heap():
    """Return freed heap memory to the system where the C library can (glibc); else nothing."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


@st.cache_resource(show_spinner=False)
def reaper():
    """The process's reaper, started once (None outside a Streamlit server)."""
    if not Runtime.exists():
        return None
    r = _Reaper(config.get_option("server.disconnectedSessionTTL"))
    threading.Thread(target=r.run, name="vqlens-session-reaper", daemon=True).start()
    return r


def watch_this_session():
    """Let the reaper know the session running this page (called by every page)."""
    r = reaper()
    ctx = get_script_run_ctx(suppress_warning=True)
    if r is not None and ctx is not None:
        r.note(ctx.session_id)
