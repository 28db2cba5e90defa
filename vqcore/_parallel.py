"""A small thread pool for numpy work that releases the GIL.

numpy's matrix products, reductions and fancy indexing release the GIL, so
independent pieces of work (row chunks, PQ subspaces) run in parallel threads.
Inside a parallel region BLAS is limited to one thread, so that the threads do
not oversubscribe the cores; nested regions run serially. The number of
threads is ``VQCORE_NUM_THREADS`` (default: the number of cores).
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

_state = threading.local()
_lock = threading.Lock()
_pool = None
_controller = None


_CPU_COUNT = os.cpu_count() or 1  # read once: it is a system call, and n_threads runs in inner loops


def n_threads():
    try:
        return max(1, int(os.environ.get("VQCORE_NUM_THREADS", _CPU_COUNT)))
    except ValueError:
        return _CPU_COUNT


def _resources():
    global _pool, _controller
    if _pool is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
        _pool = ThreadPoolExecutor(max_workers=n_threads(), thread_name_prefix="vqcore")
    return _pool, _controller


def _run_marked(fn, item):
    _state.inside = True
    try:
        return fn(item)
    finally:
        _state.inside = False


def parallel_map(fn, items):
    """``[fn(x) for x in items]``, in threads when that can help.

    Runs serially with one thread configured, for a single item, inside
    another parallel region, or while another caller (another Streamlit
    session) holds the pool.
    """
    items = list(items)
    if n_threads() <= 1 or len(items) <= 1 or getattr(_state, "inside", False):
        return [fn(x) for x in items]
    if not _lock.acquire(blocking=False):
        return [fn(x) for x in items]
    try:
        pool, controller = _resources()
        with controller.limit(limits=1, user_api="blas"):
            return list(pool.map(lambda x: _run_marked(fn, x), items))
    finally:
        _lock.release()


def split_rows(n, parts, min_rows=1):
    """At most ``parts`` contiguous (start, stop) ranges covering range(n)."""
    parts = max(1, min(parts, n // max(1, min_rows)))
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


@contextmanager
def single_blas_thread():
    """Run small dense linear algebra (eigh, svd, solve on d x d) on one BLAS thread.

    Threaded LAPACK gains nothing at these sizes and, when the cores are
    busy (another session, another process), OpenBLAS's waiting threads can
    make a 384 x 384 eigh a hundred times slower.
    """
    if getattr(_state, "inside", False) or n_threads() <= 1 or not _lock.acquire(blocking=False):
        yield
        return
    try:
        _, controller = _resources()
        with controller.limit(limits=1, user_api="blas"):
            yield
    finally:
        _lock.release()
