"""The store of finished work and its locks: one computation of the same arguments at a time
(striped locks, counted waiters), a click's stop or rerun request held back until the work is
kept, and the end of a computation whose browser went away. The cached computations that use
it are in :mod:`ui.cache`.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.scriptrunner_utils.exceptions import StopException


class Miss(Exception):
    """A miss of a store of finished work (exceptions are never cached)."""


class HoldBack:
    """Runs the Streamlit calls made while long work runs (progress bars, reads of the session),
    holding back the stop or rerun request one of them raises.

    Streamlit stops a running script when the person clicks a widget by raising a control
    exception from the next ``st`` call. Raised inside a fit's progress callback it would end
    the fit and lose it; held back, the work goes on (or ends early where it can, the Collapse
    lab's training) and is kept, then :meth:`release` raises the request and Streamlit reruns.
    ``on_hold`` runs once when a request is held.
    """

    def __init__(self, on_hold=None):
        self.request = None
        self._on_hold = on_hold

    def __call__(self, st_call):
        """``st_call()``, or None once a request is held."""
        if self.request is not None:
            return None
        try:
            return st_call()
        except Exception:
            raise
        except BaseException as exc:  # Streamlit's StopException / RerunException
            self.request = exc
            if self._on_hold is not None:
                self._on_hold()
            return None

    def release(self):
        if self.request is not None:
            raise self.request


@contextmanager
def drawing_progress(draw):
    """An ``on_progress(fraction, message)`` for :func:`ui.cache.fit` that calls ``draw(fraction, message)``
    (a progress bar's update), holding back a click's stop or rerun request until the block
    ends, so that the fit inside it finishes and is kept first."""
    hold = HoldBack()
    yield lambda fraction, message: hold(lambda: draw(fraction, message))
    hold.release()


# striped by the arguments of a computation; reentrant, since run holds its stripe while it
# asks fit for the same arguments
_LOCKS = [threading.RLock() for _ in range(16)]
# how many runs wait for each computation's stripe, by the computation's arguments
_WAITING = {}
_WAITING_LOCK = threading.Lock()


class _Abandoned(StopException):
    """Ends a computation whose browser went away and that no other run waits for.

    A StopException, so that Streamlit ends the script quietly (there is nobody to show it to)
    and vqcore's ``except Exception`` clauses never swallow it; nothing is kept.
    """


def _browser_connected():
    """False once the browser of the session running this script has gone (its websocket closed).

    True outside a Streamlit server (AppTest, scripts).
    """
    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is None or not Runtime.exists():
        return True
    return Runtime.instance().is_active_session(ctx.session_id)


def _waiting_for(args):
    with _WAITING_LOCK:
        return _WAITING.get(args, 0)


def unless_abandoned(args, on_progress):
    """An ``on_progress`` that first ends the computation of ``args`` (raising :class:`_Abandoned`)
    when its browser went away and no other run waits for the same computation, then calls
    ``on_progress`` (if any). Checked at every progress report of the fit or the encoding, and
    as the computation starts (its ``check`` attribute), without a report of its own."""
    def check():
        if not _browser_connected() and not _waiting_for(args):
            raise _Abandoned()

    def report(fraction, message):
        check()
        if on_progress is not None:
            on_progress(fraction, message)

    report.check = check
    return report


def kept(store, args, compute):
    """``store(*args)`` when it holds a result, else ``compute()`` handed to ``store`` to keep.

    One computation of the same arguments at a time: a click during a fit reruns the page at
    once while the fit goes on in the old run (held back, see :func:`drawing_progress`); a Run
    of the same settings then waits for it here instead of computing it a second time. While
    it waits it counts in ``_WAITING``, so that the running computation is not abandoned when
    its own browser goes away (:func:`unless_abandoned`).
    """
    lock = _LOCKS[hash(args) % len(_LOCKS)]
    with _WAITING_LOCK:
        _WAITING[args] = _WAITING.get(args, 0) + 1
    try:
        lock.acquire()
    finally:
        with _WAITING_LOCK:
            _WAITING[args] -= 1
            if not _WAITING[args]:
                del _WAITING[args]
    try:
        try:
            return store(*args)
        except Miss:
            pass
        return store(*args, _result=compute())
    finally:
        lock.release()
