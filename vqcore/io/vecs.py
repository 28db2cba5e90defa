"""The texmex ``.fvecs`` / ``.bvecs`` / ``.ivecs`` readers."""

from __future__ import annotations

import os

import numpy as np

from .._validation import check_int
from ..exceptions import DataError
from .limits import DEFAULT_MAX_BYTES, DEFAULT_MAX_ELEMENTS, MAX_VECS_DIM, Caps, check_caps, finish, mb


def read_fvecs(path_or_bytes, *, max_bytes=None, max_elements=None):
    """Read a texmex ``.fvecs`` file into a float32 array of shape (n, d).

    ``path_or_bytes`` is a path or the file's bytes. The caps are off by
    default (for local benchmark files); pass them for untrusted input.
    """
    return _read_vecs_public(path_or_bytes, np.dtype("<f4"), ".fvecs", max_bytes, max_elements)


def read_bvecs(path_or_bytes, *, max_bytes=None, max_elements=None):
    """Read a texmex ``.bvecs`` file into a uint8 array of shape (n, d)."""
    return _read_vecs_public(path_or_bytes, np.dtype("u1"), ".bvecs", max_bytes, max_elements)


def read_ivecs(path_or_bytes, *, max_bytes=None, max_elements=None):
    """Read a texmex ``.ivecs`` file (e.g. ground-truth neighbour ids) into an int32 array (n, d)."""
    return _read_vecs_public(path_or_bytes, np.dtype("<i4"), ".ivecs", max_bytes, max_elements)




# ---------------------------------------------------------------------------
# .fvecs / .bvecs / .ivecs
# ---------------------------------------------------------------------------


def _parse_vecs(data, item, what, caps):
    """(n, d) array of dtype ``item`` from texmex vecs bytes; checks every record's header."""
    size = len(data)
    if size == 0:
        raise DataError(f"{what} is empty (0 bytes).")
    if size < 4:
        raise DataError(f"{what} is truncated: {size} bytes, less than one record header (4 bytes).")
    d = int(np.frombuffer(data, dtype="<i4", count=1)[0])
    if d <= 0:
        raise DataError(
            f"{what} starts with dimension {d}; it must be > 0. The file is corrupt or not in the "
            "texmex vecs format (int32 dimension, then the values, per record)."
        )
    if d > MAX_VECS_DIM:
        raise DataError(
            f"{what} starts with dimension {d:,}, above {MAX_VECS_DIM:,}; the file is corrupt or not "
            "in the texmex vecs format."
        )
    record = 4 + d * item.itemsize
    n_full = size // record
    if n_full:
        rec = np.dtype([("d", "<i4"), ("v", item, (d,))])
        view = np.frombuffer(data, dtype=rec, count=n_full)
        wrong = np.flatnonzero(view["d"] != d)
        if wrong.size:
            i = int(wrong[0])
            raise DataError(
                f"{what} has records of different dimensions: record 0 has d={d} but record {i} has "
                f"d={int(view['d'][i])}. Every vector must have the same dimension."
            )
    if size != n_full * record:
        raise DataError(
            f"{what} has {size:,} bytes, not a whole number of records of {record} bytes "
            f"(4 + {d} x {item.itemsize}) for d={d}: it is truncated or corrupt. Upload the complete file."
        )
    if caps is not None:
        check_caps((n_full, d), max(item.itemsize, 4), caps, what)
    return np.array(view["v"], order="C", copy=True)


def _read_vecs_public(path_or_bytes, item, ext, max_bytes, max_elements):
    caps = None
    if max_bytes is not None or max_elements is not None:
        caps = Caps(
            DEFAULT_MAX_BYTES if max_bytes is None else check_int("max_bytes", max_bytes, low=1),
            DEFAULT_MAX_ELEMENTS if max_elements is None else check_int("max_elements", max_elements, low=1),
        )
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data, what = bytes(path_or_bytes), f"the {ext} data"
    else:
        path = os.fspath(path_or_bytes)
        what = repr(path)
        try:
            size = os.path.getsize(path)
            if caps is not None and size > caps.max_bytes:
                raise DataError(f"{what} is {mb(size)}, above the limit of {mb(caps.max_bytes)} (max_bytes).")
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise DataError(f"{what} could not be opened: {exc.strerror or exc}.") from None
    if caps is not None and len(data) > caps.max_bytes:
        raise DataError(f"{what} is {mb(len(data))}, above the limit of {mb(caps.max_bytes)} (max_bytes).")
    return _parse_vecs(data, item, what, caps)


def make_vecs_loader(item, label):
    def _load(data, filename, caps, **_):
        arr = _parse_vecs(data, item, repr(filename), caps)
        notes = []
        if label == "ivecs":
            notes.append("Note: .ivecs files usually hold neighbour ids (ground truth), not embeddings.")
        return finish(arr, source=filename, notes=notes, caps=caps)

    return _load
