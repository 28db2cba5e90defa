"""Progress of long fits and encodings, for a caller that shows it.

The quantizers report how far they are through their outer loops (RQ stages,
OPQ's rotation steps, AQ's alternations, GRVQ's passes; ``encode`` its blocks
of rows on large inputs) to the callback set for the current context, if any::

    from vqcore import progress

    with progress.reporting(lambda fraction, message: print(f"{fraction:.0%} {message}")):
        q.fit(X)

``fraction`` runs from 0 to 1 over the whole call; ``message`` says what is
being done ("stage 3 of 8"). Reports come from the thread that called
``fit`` or ``encode``, a few dozen per call at most; without a callback they
cost nothing. An exception raised by the callback ends the call.
"""

import contextvars
from contextlib import contextmanager

# (callback, start, stop, prefix): reports are mapped into [start, stop] of the caller's
# range, their message prefixed
_current = contextvars.ContextVar("vqcore_progress", default=None)


@contextmanager
def reporting(callback):
    """Send the reports of the calls inside the block to ``callback(fraction, message)``.

    ``callback=None`` turns reporting off inside the block.
    """
    token = _current.set(None if callback is None else (callback, 0.0, 1.0, ""))
    try:
        yield
    finally:
        _current.reset(token)


@contextmanager
def part(start, stop, label=""):
    """Reports made inside the block fill the share [start, stop] of the current one,
    their messages after ``label``.

    A quantizer that runs another as its first phase (AQ starts from RQ) wraps
    that phase in ``part(0.0, 0.4, "RQ start: ")`` and its own loop in
    ``part(0.4, 1.0)``.
    """
    cur = _current.get()
    if cur is None:
        yield
        return
    callback, a, b, prefix = cur
    token = _current.set((callback, a + start * (b - a), a + stop * (b - a), prefix + label))
    try:
        yield
    finally:
        _current.reset(token)


def report(fraction, message):
    """Report that ``fraction`` (0 to 1) of the current share is done, and what is being done."""
    cur = _current.get()
    if cur is None:
        return
    callback, a, b, prefix = cur
    f = min(max(float(fraction), 0.0), 1.0)
    callback(a + f * (b - a), prefix + message)
