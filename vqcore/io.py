"""Safe loaders for uploaded embedding files.

An uploaded file is untrusted: it may be truncated, mislabelled, hand-crafted to
exhaust memory (a zip bomb, an ``.npy`` header claiming a terabyte) or to run
code (a pickled object array). Every loader here checks sizes and types from
the file's *headers* before it reads or decompresses any data, never unpickles
anything, and turns every failure into a :class:`~vqcore.exceptions.DataError`
whose message says what was wrong and what to do about it.

Supported formats, chosen by the file name's extension (case-insensitive):

============ ==============================================================
``.npy``     one 2-D numeric array (bool/int/uint/float, C or Fortran order)
``.npz``     several arrays; pick one with ``array_key``
``.csv``     numeric columns, optionally one text column used as labels
``.tsv``     the same, tab-separated
``.parquet`` numeric columns, or one list / fixed-size-list column of numbers
``.fvecs``   texmex format: per record an int32 dimension, then float32 values
``.bvecs``   the same with uint8 values
``.ivecs``   the same with int32 values
============ ==============================================================

:func:`load_embeddings` returns a :class:`LoadedData`; rows holding NaN or
infinity are kept and counted, and :func:`finalize` then either refuses them
(the default) or drops them, so nothing is removed without the person knowing.

:func:`load_codes` reads integer codes made elsewhere (semantic IDs, PQ/RQ
codes) from ``.npy``, ``.csv``, ``.tsv`` or ``.parquet`` through the same
parsers and header checks, keeps them exact (never float32) and refuses
anything that is not a whole number >= 0, so rows stay aligned with the items.

Examples
--------
>>> import io, numpy as np
>>> buf = io.BytesIO(); np.save(buf, np.arange(6, dtype=np.float32).reshape(3, 2))
>>> loaded = load_embeddings(buf.getvalue(), "x.npy")
>>> loaded.X.shape, loaded.X.dtype
((3, 2), dtype('float32'))
>>> finalize(loaded).flags["C_CONTIGUOUS"]
True
"""

from __future__ import annotations

import ast
import io
import os
import re
import zipfile
from dataclasses import dataclass, field

import numpy as np

from ._validation import check_choice, check_data, check_int
from .exceptions import DataError, VQLensError
from .inspect import count_duplicate_rows

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_ELEMENTS",
    "LOAD_MEMORY_FACTOR",
    "MAX_CSV_COLUMNS",
    "MAX_CSV_ROW_BYTES",
    "load_memory",
    "SUPPORTED_EXTENSIONS",
    "LoadedData",
    "load_embeddings",
    "CODES_EXTENSIONS",
    "MAX_CODE_LEVELS",
    "LoadedCodes",
    "load_codes",
    "list_npz_arrays",
    "finalize",
    "read_fvecs",
    "read_bvecs",
    "read_ivecs",
]

#: Largest file (and largest decompressed array) accepted: 200 MiB, which is
#: also Streamlit's default upload limit.
DEFAULT_MAX_BYTES = 200 * 2**20
#: Largest number of values (n * d) accepted: a float32 array of 200 MiB.
DEFAULT_MAX_ELEMENTS = DEFAULT_MAX_BYTES // 4

SUPPORTED_EXTENSIONS = (".npy", ".npz", ".csv", ".tsv", ".parquet", ".fvecs", ".bvecs", ".ivecs")

_NPY_MAGIC = b"\x93NUMPY"
_MAX_NPY_HEADER = 100_000  # numpy's own reader refuses headers above 10_000 bytes
_MAX_NPZ_MEMBERS = 1_000
_MAX_ZIP_DIRECTORY = 2**20  # bytes of zip central directory
_MAX_PARQUET_ROW_GROUPS = 100_000
_MAX_VECS_DIM = 1_000_000
_CSV_SAMPLE_ROWS = 64
_MAX_LISTED = 5  # how many offending rows / names a message lists
# Cell texts read as "missing" (NaN) in CSV numeric columns; pandas' defaults.
_NA_TOKENS = frozenset({
    "", "nan", "-nan", "+nan", "na", "n/a", "null", "none", "#n/a", "#n/a n/a",
    "#na", "<na>", "-1.#ind", "1.#ind", "-1.#qnan", "1.#qnan",
})
_ALLOWED_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


@dataclass
class LoadedData:
    """An uploaded embedding file, read and checked but not yet finalized.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features), float32, C-contiguous
        The vectors. Rows with NaN or infinity are kept (see ``nonfinite_rows``).
    labels : list of str or None
        One label per row of ``X`` (the text column of a CSV / parquet file).
    source : str
        Where ``X`` came from, e.g. ``"emb.npz['train']"``.
    notes : list of str
        What was done or noticed on the way (conversions, dropped rows,
        duplicates, ...), each a sentence for a person.
    nonfinite_rows : int
        Number of rows of ``X`` holding NaN or infinity. They are not dropped
        here; :func:`finalize` refuses or drops them.
    array_keys : list of str
        For ``.npz``: the names of the numeric 2-D members; for ``.parquet``:
        the names of the list columns. Lets the UI offer a choice (``array_key``).
    """

    X: np.ndarray
    labels: list | None = None
    source: str = ""
    notes: list = field(default_factory=list)
    nonfinite_rows: int = 0
    array_keys: list = field(default_factory=list)

    @property
    def shape(self):
        return self.X.shape


# ---------------------------------------------------------------------------
# public entry points
# ---------------------------------------------------------------------------


def load_embeddings(
    data,
    filename,
    *,
    max_bytes=DEFAULT_MAX_BYTES,
    max_elements=DEFAULT_MAX_ELEMENTS,
    array_key=None,
    text_column=None,
):
    """Read an uploaded embedding file into a float32 (n, d) array.

    Parameters
    ----------
    data : bytes
        The file's content.
    filename : str
        The uploaded file's name; its extension chooses the format.
    max_bytes : int, default=DEFAULT_MAX_BYTES
        Largest file, and largest decompressed array or member, accepted.
    max_elements : int, default=DEFAULT_MAX_ELEMENTS
        Largest number of values ``n * d`` accepted.
    array_key : str, optional
        ``.npz``: which member to load (with or without ``.npy``).
        ``.parquet``: which list column to load.
    text_column : str or int, optional
        CSV / parquet: the column to use as labels (for a CSV without a header
        row, the 0-based column position).

    Returns
    -------
    LoadedData

    Raises
    ------
    DataError
        For anything that cannot be loaded; the message says what and why.
    """
    return _read_upload(
        data, filename, max_bytes=max_bytes, max_elements=max_elements, array_key=array_key,
        text_column=text_column, extensions=SUPPORTED_EXTENSIONS, noun="embeddings",
        example="numpy.save(path, X)",
    )


def _read_upload(data, filename, *, max_bytes, max_elements, array_key, text_column, extensions, noun,
                 example, codes=False):
    """Checks shared by :func:`load_embeddings` and :func:`load_codes`, then the format's loader."""
    max_bytes = check_int("max_bytes", max_bytes, low=1)
    max_elements = check_int("max_elements", max_elements, low=1)
    if array_key is not None and not isinstance(array_key, str):
        raise VQLensError(f"array_key={array_key!r} should be a string or None.")
    if text_column is not None and (
        isinstance(text_column, bool) or not isinstance(text_column, (str, int, np.integer))
    ):
        raise VQLensError(f"text_column={text_column!r} should be a column name, a position or None.")
    filename = str(filename or "")
    data = _as_bytes(data, filename)
    ext = os.path.splitext(filename)[1].lower()
    if ext not in extensions:
        shown = ext or "no extension"
        raise DataError(
            f"{filename!r} has {shown}, which VQ Lens cannot read as {noun}. Save the {noun} as one of "
            f"{', '.join(extensions)} (for example {example} for a .npy file)."
        )
    if len(data) == 0:
        raise DataError(f"{filename!r} is empty (0 bytes). Upload the file again or check that it was saved.")
    if len(data) > max_bytes:
        raise DataError(
            f"{filename!r} is {_mb(len(data))}, above the limit of {_mb(max_bytes)} (max_bytes={max_bytes}). "
            "Upload a sample of the rows, or raise max_bytes."
        )
    loader, fmt = _LOADERS[ext]
    caps = _Caps(max_bytes, max_elements, codes=codes)
    try:
        with np.errstate(all="ignore"):
            return loader(data, filename, caps, array_key=array_key, text_column=text_column)
    except VQLensError:
        raise
    except MemoryError:
        raise DataError(
            f"{filename!r}: not enough memory to load it. Upload a sample of the rows."
        ) from None
    except Exception as exc:  # parser errors of numpy / zipfile / pandas / pyarrow
        raise DataError(
            f"{filename!r} could not be read as {fmt}: {_short(exc)}. "
            f"Check that it really is a {fmt} file (re-export it from the tool that made it)."
        ) from exc


def list_npz_arrays(data, *, max_bytes=DEFAULT_MAX_BYTES):
    """List the arrays of an ``.npz`` file from their headers, without decompressing them.

    Returns
    -------
    list of (name, shape, dtype)
        One entry per ``.npy`` member whose header can be read, in archive order;
        ``name`` has no ``.npy`` suffix (as :func:`numpy.load` names them).
        Object arrays and arrays of any shape are listed (so a UI can say why
        one cannot be used); members whose header is corrupt or describes a
        structured dtype are left out.
    """
    data = _as_bytes(data, "npz")
    max_bytes = check_int("max_bytes", max_bytes, low=1)
    if len(data) > max_bytes:
        raise DataError(f"The .npz file is {_mb(len(data))}, above the limit of {_mb(max_bytes)}.")
    try:
        members = _scan_npz(data, "the .npz file")
    except VQLensError:
        raise
    except Exception as exc:
        raise DataError(f"The .npz file could not be read: {_short(exc)}.") from exc
    return [(m.name, m.shape, m.dtype) for m in members if m.dtype is not None]


def finalize(loaded, *, nonfinite="error"):
    """Return the loaded array, refusing or dropping rows with NaN / infinity.

    Parameters
    ----------
    loaded : LoadedData
    nonfinite : {"error", "drop"}, default="error"
        ``"error"`` raises :class:`DataError` if any row holds NaN or infinity,
        giving the count; ``"drop"`` removes those rows, updates ``loaded``
        in place (``X``, ``labels``, ``nonfinite_rows``) and adds a note.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float32, C-contiguous, finite
    """
    check_choice("nonfinite", nonfinite, {"error", "drop"})
    X = loaded.X
    bad = _nonfinite_mask(X)
    n_bad = int(bad.sum())
    where = loaded.source or "the data"
    if n_bad:
        if nonfinite == "error":
            raise DataError(
                f"{where}: {n_bad} of {X.shape[0]} row(s) contain NaN or infinite values. "
                "You can choose to drop those rows (nonfinite='drop', or the drop option in the app), "
                "or repair the file and load it again."
            )
        keep = ~bad
        if not keep.any():
            raise DataError(f"{where}: all {X.shape[0]} rows contain NaN or infinite values; nothing is left to use.")
        X = np.ascontiguousarray(X[keep])
        if loaded.labels is not None:
            loaded.labels = [lab for lab, k in zip(loaded.labels, keep) if k]
        loaded.X = X
        loaded.nonfinite_rows = 0
        loaded.notes.append(f"Dropped {n_bad} row(s) with NaN or infinite values; {X.shape[0]} remain.")
    return check_data(X, name=where)


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
# shared helpers
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Caps:
    max_bytes: int
    max_elements: int
    codes: bool = False  # load_codes: keep exact integers, refuse instead of dropping rows


def _as_bytes(data, filename):
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if hasattr(data, "getvalue"):  # BytesIO, Streamlit's UploadedFile
        return bytes(data.getvalue())
    raise VQLensError(f"data for {filename!r} should be the file's bytes, got {type(data).__name__}.")


def _mb(n):
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"


def _short(exc, limit=300):
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[:limit] + "..."


def _listing(items, limit=_MAX_LISTED):
    items = list(items)
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")


def _check_caps(shape, itemsize, caps, what):
    """Refuse an array of this shape before anything is allocated.

    Three budgets: its values (``max_elements``), its bytes (``max_bytes``), and the memory
    that loading it takes, which :func:`load_memory` estimates: within
    ``LOAD_MEMORY_FACTOR * max_bytes``. The last one stops files of many short rows
    (a 190 KB .npz of 52 million one-byte rows) that fit the first two but need gigabytes.
    """
    elements = 1
    for s in shape:
        elements *= int(s)
    if elements > caps.max_elements:
        raise DataError(
            f"{what} has shape {tuple(shape)} = {elements:,} values, above the limit of "
            f"{caps.max_elements:,} (max_elements). Upload a sample of the rows, or raise max_elements."
        )
    if elements * itemsize > caps.max_bytes:
        raise DataError(
            f"{what} has shape {tuple(shape)} and needs {_mb(elements * itemsize)}, above the limit of "
            f"{_mb(caps.max_bytes)} (max_bytes). Upload a sample of the rows, or raise max_bytes."
        )
    if len(shape) == 2:
        need = load_memory(shape, itemsize)
        if need > LOAD_MEMORY_FACTOR * caps.max_bytes:
            raise DataError(
                f"{what} has shape {tuple(shape)}: {int(shape[0]):,} rows of {int(shape[1])} value(s), which take "
                f"about {_mb(need)} to load and check (row by row work: duplicates, non-finite rows), above the "
                f"limit of {_mb(LOAD_MEMORY_FACTOR * caps.max_bytes)} ({LOAD_MEMORY_FACTOR} x max_bytes). "
                "Upload fewer rows; embeddings have more than a few values per row."
            )
    return elements


#: Loading may use this many times ``max_bytes`` of memory (see :func:`load_memory`).
LOAD_MEMORY_FACTOR = 3
_ROW_WORK_BYTES = 32  # per row: the duplicate count's hash, order and run flags


def load_memory(shape, itemsize):
    """Bytes a load of an (n, d) array with values of ``itemsize`` bytes takes at its peak:
    the decoded values, their float32 copy and the per-row work of the checks."""
    n, d = (int(s) for s in shape)
    return n * d * (int(itemsize) + 4) + n * _ROW_WORK_BYTES


def _check_numeric_dtype(dtype, what):
    if dtype.hasobject:
        raise DataError(
            f"{what} holds Python objects (dtype {dtype}), stored with pickle, which VQ Lens never loads "
            "because unpickling can run code. Save a numeric array instead: np.save(path, X.astype(np.float32))."
        )
    if dtype.fields is not None or dtype.subdtype is not None:
        raise DataError(
            f"{what} has a structured dtype ({dtype}); VQ Lens needs a plain numeric 2-D array. "
            "Stack the fields into one float array first."
        )
    if dtype.kind == "c":
        raise DataError(
            f"{what} has complex dtype {dtype}; VQ Lens needs real numbers. "
            "Store real and imaginary parts as separate columns (np.hstack([X.real, X.imag]))."
        )
    if dtype.kind not in "biuf":
        raise DataError(
            f"{what} has dtype {dtype} (not numeric); VQ Lens needs a float or integer array."
        )


def _check_2d(shape, what):
    if len(shape) == 2:
        n, d = shape
        if d == 0:
            raise DataError(f"{what} has shape {tuple(shape)}: no feature columns. It needs at least one.")
        if n == 0:
            raise DataError(f"{what} has shape {tuple(shape)}: 0 rows. It needs at least one vector.")
        return
    if len(shape) == 1:
        raise DataError(
            f"{what} is 1-D with shape {tuple(shape)}; VQ Lens needs a 2-D array (n_samples, n_features). "
            "Reshape it before saving: X.reshape(1, -1) for one vector, X.reshape(-1, d) for vectors of length d."
        )
    if len(shape) == 0:
        raise DataError(f"{what} is a single number (0-D); VQ Lens needs a 2-D array (n_samples, n_features).")
    raise DataError(
        f"{what} is {len(shape)}-D with shape {tuple(shape)}; VQ Lens needs a 2-D array (n_samples, n_features). "
        f"Flatten it before saving, e.g. X.reshape(-1, {shape[-1]})."
    )


def _nonfinite_mask(X):
    return ~np.isfinite(X).all(axis=1)


def _finish(arr, *, source, notes, labels=None, array_keys=None, caps=None, from_text=False):
    """Turn a checked numeric 2-D array into LoadedData (float32, notes about degenerate data)."""
    if caps is not None and caps.codes:  # load_codes: integer codes, not float32 vectors
        return _finish_codes(arr, source=source, notes=notes, labels=labels, array_keys=array_keys, caps=caps)
    what = source
    _check_numeric_dtype(arr.dtype, what)
    _check_2d(arr.shape, what)
    if caps is not None:
        _check_caps(arr.shape, 4, caps, what)
    n, d = arr.shape
    notes = list(notes)
    kind = arr.dtype.kind
    if not from_text:
        if kind in "iu":
            notes.append(f"Converted from {arr.dtype.name} to float32.")
            if arr.size and (int(arr.max()) > 2**24 or int(arr.min()) < -(2**24)):
                notes.append("Some integers are larger than 2**24 in magnitude and were rounded in float32.")
        elif kind == "b":
            notes.append("Converted from bool to float32 (False -> 0, True -> 1).")
        elif arr.dtype.itemsize != 4:
            notes.append(f"Converted from {arr.dtype.name} to float32.")
    X = np.ascontiguousarray(arr, dtype=np.float32)
    if not X.flags.writeable or X.base is not None:  # a view of the upload's bytes: own the data
        X = X.copy()
    if kind == "f" and arr.dtype.itemsize > 4:
        overflow = int((np.isfinite(arr) & ~np.isfinite(X)).sum())
        if overflow:
            notes.append(
                f"{overflow} value(s) are too large for float32 (|x| > 3.4e38) and became infinite."
            )
    bad = _nonfinite_mask(X)
    n_bad = int(bad.sum())
    if n_bad:
        notes.append(
            f"{n_bad} of {n} row(s) contain NaN or infinite values; they are kept for now. "
            "Choose to drop them, or repair the file."
        )
    if n == 1:
        notes.append("Only one row: a quantizer needs many more vectors than codes to learn anything.")
    if d == 1:
        notes.append("Only one feature column (d=1): this is legal but unusual for embeddings; check the file.")
    bits = X.view(np.uint32)
    if n > 1:
        dup = count_duplicate_rows(X)
        if dup == n - 1:
            notes.append(f"All {n} rows are identical (constant data): every quantizer will give one code.")
        elif dup:
            notes.append(
                f"{dup} row(s) duplicate an earlier row; they will share codes and count as collisions."
            )
        if dup < n - 1 and d > 1:
            constant_cols = int((bits.min(axis=0) == bits.max(axis=0)).sum())
            if constant_cols:
                notes.append(f"{constant_cols} of {d} column(s) hold one constant value.")
    if labels is not None and len(labels) != n:  # pragma: no cover - loaders keep them aligned
        raise DataError(f"{what}: {len(labels)} labels for {n} rows.")
    return LoadedData(
        X=X, labels=labels, source=source, notes=notes, nonfinite_rows=n_bad,
        array_keys=list(array_keys or []),
    )


# ---------------------------------------------------------------------------
# .npy
# ---------------------------------------------------------------------------


def _read_up_to(read, n):
    """Read n bytes from a stream (fewer only at the end)."""
    parts, got = [], 0
    while got < n:
        chunk = read(n - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


@dataclass
class _NpyHeader:
    dtype: np.dtype
    shape: tuple
    fortran_order: bool
    header_len: int  # bytes before the array data


def _parse_npy_header(read, what):
    """Parse an .npy header from a ``read(n)`` callable; reads only the header bytes.

    The header is a Python dict literal; it is parsed with :func:`ast.literal_eval`
    (as numpy does), never ``eval`` and never pickle.
    """
    pre = _read_up_to(read, 8)
    if not pre:
        raise DataError(f"{what} is empty.")
    if not pre.startswith(_NPY_MAGIC[: len(pre)]) or (len(pre) >= 6 and not pre.startswith(_NPY_MAGIC)):
        raise DataError(
            f"{what} is not a NumPy .npy file (it does not start with the \\x93NUMPY magic bytes). "
            "Save the array with numpy.save(path, X)."
        )
    if len(pre) < 8:
        raise DataError(f"{what} is truncated inside the .npy header. Upload the complete file.")
    major, minor = pre[6], pre[7]
    if major == 1:
        size_len = 2
    elif major in (2, 3):
        size_len = 4
    else:
        raise DataError(
            f"{what} uses .npy format version {major}.{minor}, which is not supported (1.0, 2.0, 3.0 are). "
            "Re-save it with numpy.save."
        )
    raw_len = _read_up_to(read, size_len)
    if len(raw_len) < size_len:
        raise DataError(f"{what} is truncated inside the .npy header. Upload the complete file.")
    hlen = int.from_bytes(raw_len, "little")
    if hlen > _MAX_NPY_HEADER:
        raise DataError(
            f"{what} declares an .npy header of {hlen:,} bytes (limit {_MAX_NPY_HEADER:,}); the file is "
            "corrupt or not made by numpy.save."
        )
    raw = _read_up_to(read, hlen)
    if len(raw) < hlen:
        raise DataError(f"{what} is truncated inside the .npy header. Upload the complete file.")
    try:
        text = raw.decode("utf8" if major >= 3 else "latin1")
        # a numeric array's header is plain ASCII without escapes; refusing anything else
        # also keeps literal_eval from warning about escape sequences
        if not text.isascii() or "\\" in text:
            raise ValueError("unexpected characters")
        header = ast.literal_eval(text.strip())
    except Exception:
        raise DataError(
            f"{what} has an unreadable .npy header; the file is corrupt. Re-save it with numpy.save."
        ) from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise DataError(
            f"{what} has an invalid .npy header (it should hold exactly 'descr', 'fortran_order' and 'shape'). "
            "Re-save it with numpy.save."
        )
    descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
    if not isinstance(descr, str):
        raise DataError(
            f"{what} has a structured dtype ({_short_repr(descr)}); VQ Lens needs a plain numeric 2-D array. "
            "Stack the fields into one float array first."
        )
    try:
        dtype = np.dtype(descr)
    except Exception:
        raise DataError(f"{what} declares an unknown dtype {_short_repr(descr)}. Re-save it with numpy.save.") from None
    if not isinstance(fortran, bool):
        raise DataError(f"{what} has an invalid .npy header (fortran_order={_short_repr(fortran)}).")
    if (
        not isinstance(shape, tuple)
        or len(shape) > 32
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
    ):
        raise DataError(f"{what} has an invalid .npy header (shape={_short_repr(shape)}).")
    return _NpyHeader(dtype, shape, fortran, 8 + size_len + hlen)


def _short_repr(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _check_npy_header(h, caps, what):
    """All checks that can be made from the header alone, in the order a person needs them."""
    _check_numeric_dtype(h.dtype, what)
    _check_caps(h.shape, max(h.dtype.itemsize, 4), caps, what)
    _check_2d(h.shape, what)


def _array_from_buffer(buf, h, offset, what):
    n_values = int(np.prod(h.shape, dtype=object))
    need = n_values * h.dtype.itemsize
    have = len(buf) - offset
    if have < need:
        raise DataError(
            f"{what} is truncated: its header declares shape {h.shape} of {h.dtype} ({need:,} bytes of data) "
            f"but only {have:,} bytes follow. Upload the complete file."
        )
    if have > need:
        raise DataError(
            f"{what} has {have - need:,} unexpected bytes after the array data declared by its header "
            f"(shape {h.shape}, {h.dtype}); the file is corrupt. Re-save it with numpy.save."
        )
    arr = np.frombuffer(buf, dtype=h.dtype, count=n_values, offset=offset)
    return arr.reshape(h.shape, order="F" if h.fortran_order else "C")


def _load_npy(data, filename, caps, **_):
    what = repr(filename)
    stream = io.BytesIO(data)
    h = _parse_npy_header(stream.read, what)
    _check_npy_header(h, caps, what)
    arr = _array_from_buffer(data, h, h.header_len, what)
    notes = ["Read from Fortran (column-major) order."] if h.fortran_order and h.shape[1] > 1 else []
    return _finish(arr, source=filename, notes=notes, caps=caps)


# ---------------------------------------------------------------------------
# .npz
# ---------------------------------------------------------------------------


@dataclass
class _NpzMember:
    info: zipfile.ZipInfo
    name: str
    shape: tuple | None = None
    dtype: np.dtype | None = None
    header_len: int = 0
    fortran_order: bool = False
    problem: str | None = None  # why it cannot be loaded, or None


def _zip_directory_size(data):
    """(number of entries, central-directory bytes) from the end record, or None if not found.

    Read before :class:`zipfile.ZipFile` parses the whole directory into memory,
    so an archive of millions of tiny entries is refused cheaply.
    """
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if end < 0 or end + 22 > len(data):
        return None
    entries = int.from_bytes(data[end + 10:end + 12], "little")
    size = int.from_bytes(data[end + 12:end + 16], "little")
    loc = end - 20
    if (entries == 0xFFFF or size == 0xFFFFFFFF) and loc >= 0 and data[loc:loc + 4] == b"PK\x06\x07":
        rec = int.from_bytes(data[loc + 8:loc + 16], "little")
        if 0 <= rec <= len(data) - 56 and data[rec:rec + 4] == b"PK\x06\x06":
            entries = int.from_bytes(data[rec + 32:rec + 40], "little")
            size = int.from_bytes(data[rec + 40:rec + 48], "little")
    return entries, size


def _scan_npz(data, what):
    """Open the archive and read each member's .npy header only (nothing else is decompressed)."""
    directory = _zip_directory_size(data)
    if directory is not None and (directory[0] > _MAX_NPZ_MEMBERS or directory[1] > _MAX_ZIP_DIRECTORY):
        raise DataError(
            f"{what} declares {directory[0]:,} files in a directory of {_mb(directory[1])} (limits: "
            f"{_MAX_NPZ_MEMBERS:,} files, {_mb(_MAX_ZIP_DIRECTORY)}); upload only the array you need."
        )
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise DataError(
            f"{what} is not a valid .npz (zip) archive. Save the arrays with numpy.savez(path, X=X) "
            "or upload a .npy file instead."
        ) from None
    with zf:
        return _scan_npz_members(zf, what)


def _scan_npz_members(zf, what):
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > _MAX_NPZ_MEMBERS:
        raise DataError(
            f"{what} holds {len(infos):,} files (limit {_MAX_NPZ_MEMBERS:,}); upload only the array you need."
        )
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        raise DataError(f"{what} holds several members with the same name; the archive is corrupt.")
    members = []
    for info in infos:
        if not info.filename.endswith(".npy"):
            members.append(_NpzMember(info, info.filename, problem="not an .npy member"))
            continue
        m = _NpzMember(info, info.filename[: -len(".npy")])
        members.append(m)
        if info.flag_bits & 0x1:
            m.problem = f"member {m.name!r} is encrypted; upload an unencrypted archive."
            continue
        if info.compress_type not in _ALLOWED_ZIP_METHODS:
            m.problem = (
                f"member {m.name!r} uses zip compression method {info.compress_type}; only stored and "
                "deflate (numpy.savez / numpy.savez_compressed) are accepted."
            )
            continue
        try:
            with zf.open(info) as stream:
                h = _parse_npy_header(stream.read, f"member {m.name!r}")
        except DataError as exc:
            m.problem = str(exc)
            continue
        except Exception as exc:  # bad zip data, CRC, unsupported features
            m.problem = f"member {m.name!r} could not be read ({_short(exc)}); the archive is corrupt."
            continue
        m.shape, m.dtype, m.header_len = h.shape, h.dtype, h.header_len
        m.fortran_order = h.fortran_order
    return members


def _member_problem(m, caps):
    """Why member m cannot be loaded, checked from its headers only; None if it can."""
    if m.problem is not None:
        return m.problem
    what = f"member {m.name!r}"
    try:
        if m.info.file_size > caps.max_bytes:
            raise DataError(
                f"{what} declares {_mb(m.info.file_size)} uncompressed, above the limit of "
                f"{_mb(caps.max_bytes)} (max_bytes); it was not decompressed."
            )
        _check_numeric_dtype(m.dtype, what)
        _check_caps(m.shape, max(m.dtype.itemsize, 4), caps, what)
        need = int(np.prod(m.shape, dtype=object)) * m.dtype.itemsize
        if m.info.file_size != m.header_len + need:
            raise DataError(
                f"{what} declares {m.info.file_size:,} bytes uncompressed but its header needs "
                f"{m.header_len + need:,} (shape {m.shape}, {m.dtype}); the archive is corrupt."
            )
        _check_2d(m.shape, what)
    except DataError as exc:
        return str(exc)
    return None


def _load_npz(data, filename, caps, *, array_key=None, **_):
    members = _scan_npz(data, repr(filename))
    npy_members = [m for m in members if m.info.filename.endswith(".npy")]
    if not npy_members:
        raise DataError(
            f"{filename!r} holds no arrays (no .npy members). Save the embeddings with numpy.savez(path, X=X)."
        )
    problems = {m.name: _member_problem(m, caps) for m in npy_members}
    usable = [m for m in npy_members if problems[m.name] is None]
    keys = [m.name for m in usable]
    notes = []
    skipped = [m.info.filename for m in members if m not in npy_members]
    if skipped:
        notes.append(f"Ignored non-array files in the archive: {_listing(skipped)}.")
    if array_key is not None:
        key = array_key[:-4] if array_key.endswith(".npy") and array_key not in problems else array_key
        if key not in problems:
            raise DataError(
                f"array_key={array_key!r} is not in {filename!r}; its arrays are "
                f"{_listing(repr(m.name) for m in npy_members)}."
            )
        chosen = next(m for m in npy_members if m.name == key)
        if problems[key] is not None:
            raise DataError(f"{filename!r}: {problems[key]}")
    elif len(usable) == 1:
        chosen = usable[0]
    elif usable:
        chosen = max(usable, key=lambda m: int(np.prod(m.shape, dtype=object)))
        others = [repr(m.name) for m in usable if m is not chosen]
        notes.append(
            f"The archive holds {len(usable)} 2-D arrays; loaded the largest, {chosen.name!r} "
            f"{chosen.shape}. Choose another with array_key ({_listing(others)})."
        )
    else:
        reasons = " ".join(problems[m.name] for m in npy_members[:_MAX_LISTED])
        more = f" ({len(npy_members) - _MAX_LISTED} more not shown.)" if len(npy_members) > _MAX_LISTED else ""
        raise DataError(f"{filename!r} holds no usable 2-D numeric array. {reasons}{more}")
    refused = [m.name for m in npy_members if problems[m.name] is not None and m is not chosen]
    if refused:
        notes.append(f"Not usable and ignored: {_listing(repr(r) for r in refused)}.")
    what = f"{filename!r}[{chosen.name!r}]"
    need = int(np.prod(chosen.shape, dtype=object)) * chosen.dtype.itemsize
    with zipfile.ZipFile(io.BytesIO(data)) as zf, zf.open(chosen.info) as stream:
        # reads exactly the declared (capped) size; zipfile checks the CRC at the end
        raw = _read_up_to(stream.read, chosen.header_len + need)
    h = _NpyHeader(chosen.dtype, chosen.shape, chosen.fortran_order, chosen.header_len)
    arr = _array_from_buffer(raw, h, chosen.header_len, what)
    if chosen.fortran_order and chosen.shape[1] > 1:
        notes.append("Read from Fortran (column-major) order.")
    return _finish(arr, source=f"{filename}[{chosen.name!r}]", notes=notes, array_keys=keys, caps=caps)


# ---------------------------------------------------------------------------
# .csv / .tsv
# ---------------------------------------------------------------------------

#: Widest CSV / TSV accepted (columns of the first row); checked before pandas reads the file.
MAX_CSV_COLUMNS = 16_384
#: Longest CSV / TSV row accepted, in bytes (a quoted cell may hold line breaks).
MAX_CSV_ROW_BYTES = 4 * 2**20
_CSV_SCAN_CHUNK = 1 << 22
_QUOTE = 34
# a number written with a decimal comma (European spreadsheets), and with a decimal point
_DECIMAL_COMMA = re.compile(r"^[-+]?\d*,\d+(?:[eE][-+]?\d+)?$")
_DECIMAL_POINT = re.compile(r"^[-+]?\d*\.\d+(?:[eE][-+]?\d+)?$")


@dataclass
class _CsvLayout:
    """What one pass over a CSV's bytes found (see :func:`_scan_csv`)."""

    n_fields: int  # fields per row
    first: tuple  # (start, stop) bytes of the first non-blank row, without its line break
    n_rows: int  # non-blank rows


def _scan_csv(data, sep, what):
    """Rows, fields and row lengths of CSV bytes in one vectorised pass, quotes respected.

    A row ends at a line break outside double quotes; a separator inside quotes does not
    split a field. Refused here, before pandas sees the file: a first row wider than
    MAX_CSV_COLUMNS, a row longer than MAX_CSV_ROW_BYTES (both found within the first
    chunk that shows them, not after reading the whole file) and ragged rows, which pandas
    would pad silently. Works on 4 MiB at a time.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    size, sep_code = len(buf), ord(sep)
    parity = 0  # quotes seen before the chunk, mod 2
    start = 0  # where the current row starts
    carried = 0  # separators of the current row before the chunk
    expected = first = None
    line = 0  # rows ended so far (blank ones included), for messages
    n_rows = 0

    def check_row(fields, begin, stop, number, ended=True):
        nonlocal expected, first
        if stop - begin > MAX_CSV_ROW_BYTES:
            raise DataError(
                f"{what}: row {number} is {'' if ended else 'more than '}{_mb(stop - begin)} long, above the limit of "
                f"{_mb(MAX_CSV_ROW_BYTES)} for one row. An embedding file has one vector per line; check "
                "for a missing line break or an unclosed quote."
            )
        if expected is None:
            if fields > MAX_CSV_COLUMNS:
                _raise_too_wide(what, fields)
            expected, first = fields, (begin, stop, number)
        elif fields != expected:
            _raise_ragged(what, number, fields, first[2], expected)

    for pos in range(0, size, _CSV_SCAN_CHUNK):
        seg = buf[pos:pos + _CSV_SCAN_CHUNK]
        quoted = seg == _QUOTE
        n_quotes = int(np.count_nonzero(quoted))
        is_sep, is_end = seg == sep_code, seg == 10
        if n_quotes or parity:
            outside = ((np.cumsum(quoted, dtype=np.int32) + parity) & 1) == 0
            is_sep &= outside
            is_end &= outside
        seps = np.cumsum(is_sep, dtype=np.int32)
        ends = np.flatnonzero(is_end)
        if ends.size:
            seps_at = seps[ends]
            fields = np.diff(seps_at, prepend=0) + 1
            fields[0] += carried
            stops = pos + ends
            starts = np.concatenate(([start], stops[:-1] + 1))
            cr = np.zeros(ends.size, dtype=bool)
            some = stops > starts
            cr[some] = buf[stops[some] - 1] == 13
            stops = stops - cr
            rows = np.flatnonzero(stops > starts)  # the rows that are not blank
            if rows.size:
                if expected is None:
                    k = int(rows[0])
                    check_row(int(fields[k]), int(starts[k]), int(stops[k]), line + k + 1)
                wrong = rows[((stops[rows] - starts[rows]) > MAX_CSV_ROW_BYTES) | (fields[rows] != expected)]
                if wrong.size:  # the first problem in file order
                    k = int(wrong[0])
                    check_row(int(fields[k]), int(starts[k]), int(stops[k]), line + k + 1)
                n_rows += rows.size
            line += ends.size
            start = int(pos + ends[-1] + 1)
            carried = int(seps[-1] - seps_at[-1])
        else:
            carried += int(seps[-1])
        parity = (parity + n_quotes) & 1
        # a row that has not ended yet may already be too long or too wide
        if pos + len(seg) - start > MAX_CSV_ROW_BYTES:
            check_row(carried + 1, start, pos + len(seg), line + 1, ended=False)
        if expected is None and carried + 1 > MAX_CSV_COLUMNS:
            _raise_too_wide(what, f"more than {carried + 1:,}")
    if start < size:  # the last row has no line break
        stop = size - int(buf[size - 1] == 13)
        if stop > start:
            check_row(carried + 1, start, stop, line + 1)
            n_rows += 1
    if expected is None:
        raise DataError(f"{what} holds no data (it is empty or only blank lines).")
    return _CsvLayout(expected, first[:2], n_rows)


def _raise_too_wide(what, fields):
    shown = f"{fields:,}" if isinstance(fields, int) else fields
    raise DataError(
        f"{what} has {shown} columns, above the limit of {MAX_CSV_COLUMNS:,} columns for a CSV / TSV file. "
        "An embedding file has one column per dimension; save wider data as .npy (numpy.save(path, X))."
    )


def _raise_ragged(what, row, got, first, expected):
    raise DataError(
        f"{what} has ragged rows: row {row} has {got} field(s) but row {first} has {expected}. "
        "Every row needs the same number of values; fix or remove the short/long rows."
    )


def _split_row(raw, sep):
    """The cells of one CSV row (bytes), as pandas reads them: quotes removed, ``""`` -> ``"``."""
    text = raw.decode("utf-8", errors="replace").lstrip("\ufeff")
    cells, cell, quoted = [], [], False
    for piece in re.split("(\"|" + re.escape(sep) + ")", text):
        if piece == '"':
            quoted = not quoted
            cell.append(piece)
        elif piece == sep and not quoted:
            cells.append("".join(cell))
            cell = []
        else:
            cell.append(piece)
    cells.append("".join(cell))
    out = []
    for c in cells:
        c = c.strip(" ")
        if len(c) >= 2 and c[0] == '"' and c[-1] == '"':
            c = c[1:-1].replace('""', '"')
        out.append(c)
    return out


def _sniff_dialect(data, sep, what):
    """The separator and decimal mark of a CSV, from its first lines.

    A ``.csv`` whose every sampled line holds the same number of ``;`` (at least one),
    and no ``,`` except between digits, is ``;``-separated (Excel and LibreOffice write
    these in locales whose decimal mark is a comma). A ``;``- or tab-separated file whose
    number cells use a decimal comma (``-0,1234``) is read with ``decimal=','``; one that
    mixes decimal commas and decimal points is refused, since either reading would give
    wrong numbers for some cells.
    """
    head = data[:1 << 16].decode("utf-8", errors="ignore").lstrip("\ufeff")
    lines = [ln for ln in head.splitlines()[:_CSV_SAMPLE_ROWS + 1] if ln.strip()]
    if len(lines) > 1 and not head.endswith(("\n", "\r")) and len(data) > len(head):
        lines = lines[:-1]  # the last sampled line may be cut
    unquoted = [re.sub(r'"[^"]*"', "", ln) for ln in lines]
    if sep == "," and unquoted:
        semis = {ln.count(";") for ln in unquoted}
        commas_between_digits = all(re.fullmatch(r"(?:[^,]|(?<=\d),(?=\d))*", ln) for ln in unquoted)
        if len(semis) == 1 and semis != {0} and commas_between_digits:
            sep = ";"
    if sep == ",":
        return sep, "."
    cells = [c.strip() for ln in unquoted for c in ln.split(sep)]
    comma = sum(bool(_DECIMAL_COMMA.match(c)) for c in cells)
    point = sum(bool(_DECIMAL_POINT.match(c)) for c in cells)
    if comma and point:
        with_comma = next(c for c in cells if _DECIMAL_COMMA.match(c))
        with_point = next(c for c in cells if _DECIMAL_POINT.match(c))
        raise DataError(
            f"{what} mixes numbers with a decimal comma (such as {with_comma!r}) and with a decimal point "
            f"(such as {with_point!r}), so either reading gives wrong numbers. Export it again with one "
            "decimal mark."
        )
    return sep, ("," if comma else ".")


def _numbers(values, decimal="."):
    """Cell strings (any shape) -> (float64 values, NaN where missing or not a number; missing mask).

    One vectorised pass over every cell (never a pandas object per column).
    Missing markers ('', 'NA', 'nan', ...) are missing, not text.
    """
    import pandas as pd

    values = np.asarray(values, dtype=object)
    s = pd.Series(values.ravel(), dtype=object)
    na = s.isna().to_numpy()
    s = s.astype(str).str.strip()
    missing = s.str.lower().isin(_NA_TOKENS).to_numpy() | na
    if decimal == ",":
        s = s.str.replace(",", ".", regex=False)
    parsed = pd.to_numeric(s.where(~missing, "nan"), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return parsed.reshape(values.shape), missing.reshape(values.shape)


def _is_consecutive_ints(cells):
    try:
        vals = [int(c) for c in cells]
    except ValueError:
        return False
    return bool(vals) and (vals == list(range(len(vals))) or vals == list(range(1, len(vals) + 1)))


def _decide_header(row0, body, decimal, notes):
    """Does the first row (its cells as strings) name the columns? ``body``: the next rows, read by pandas.

    A column is numeric when most of its cells in the body are numbers; the first row is a header
    when it holds a word where a numeric column has numbers, or when it numbers the columns
    (0, 1, 2, ... over data that are not all integers). One vectorised pass, whatever the width.
    """
    row0 = [c.strip() for c in row0]
    parsed0, missing0 = _numbers(row0, decimal)
    ok0 = ~np.isnan(parsed0) | missing0
    if len(body) == 0:
        return not ok0.all()
    sample = body.iloc[:_CSV_SAMPLE_ROWS]
    numeric, _, _, _, values = _classify_frame(sample, decimal)
    numeric_cols = sorted(numeric)
    if any(not ok0[j] for j in numeric_cols):
        return True
    cells = [row0[j] for j in numeric_cols]
    index_like = row0[0] == "" and _is_consecutive_ints(row0[1:])
    if numeric_cols and (_is_consecutive_ints(cells) or index_like):
        if index_like:
            return True
        body_vals = np.concatenate([values[j] for j in numeric_cols])
        body_vals = body_vals[np.isfinite(body_vals)]
        if np.any(body_vals != np.round(body_vals)):
            return True
        notes.append(
            f"The first row ({', '.join(cells[:4])}{', ...' if len(cells) > 4 else ''}) looks like column "
            "numbers, but the data are integers too, so it was read as a data row."
        )
    return False


def _classify_frame(df, decimal="."):
    """Split the columns of a frame read by pandas into numeric, partly numeric (> half numbers),
    text and empty, in one vectorised pass over the cells of every non-numeric column.

    Returns ``numeric`` {col: float64 values, NaN for missing or unparsable},
    ``partial`` {col: mask of cells that are not numbers}, ``text`` and ``empty``
    lists, and ``values`` {col: float64 values} for every column that has numbers.
    """
    kinds = np.array([dt.kind for dt in df.dtypes])
    positions = np.arange(df.shape[1])
    labels = list(df.columns)  # results are keyed by column label (columns dropped before keep theirs)
    numeric, partial, text, empty, values = {}, {}, [], [], {}
    num_pos = positions[np.isin(kinds, list("biuf"))]
    if num_pos.size == df.shape[1]:  # all numeric: one block
        block = df.to_numpy(dtype=np.float64, na_value=np.nan)
        for j in num_pos.tolist():
            numeric[labels[j]] = values[labels[j]] = block[:, j]
    else:
        for j in num_pos.tolist():
            numeric[labels[j]] = values[labels[j]] = df.iloc[:, j].to_numpy(dtype=np.float64, na_value=np.nan)
    obj_pos = positions[~np.isin(kinds, list("biuf"))]
    if obj_pos.size:
        cells = np.empty((df.shape[0], obj_pos.size), dtype=object)
        for k, j in enumerate(obj_pos.tolist()):
            cells[:, k] = df.iloc[:, j].to_numpy(dtype=object)
        parsed, missing = _numbers(cells, decimal)
        failed = np.isnan(parsed) & ~missing
        present = (~missing).sum(axis=0)
        n_failed = failed.sum(axis=0)
        for k, j in enumerate(labels[p] for p in obj_pos.tolist()):
            if present[k] == 0:
                empty.append(j)
            elif n_failed[k] == 0:
                numeric[j] = values[j] = parsed[:, k]
            elif (present[k] - n_failed[k]) / present[k] > 0.5:
                numeric[j] = values[j] = parsed[:, k]
                partial[j] = failed[:, k]
            else:
                text.append(j)
    return numeric, partial, text, empty, values


def _read_body(data, what, **kwargs):
    """pandas.read_csv of CSV bytes; no bytes (or only blank lines) give an empty frame."""
    import pandas as pd

    try:
        return pd.read_csv(io.BytesIO(data), **kwargs)
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=kwargs["names"])
    except UnicodeDecodeError:
        raise DataError(f"{what} is not UTF-8 text. Save it as UTF-8.") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{what} could not be parsed: {_short(exc)}. Check for ragged rows or stray quotes.") from None


def _load_csv(data, filename, caps, *, text_column=None, sep=",", **_):
    what = repr(filename)
    if b"\x00" in data:
        raise DataError(
            f"{what} contains NUL bytes: it looks like a binary file, not {'CSV' if sep == ',' else 'TSV'} text. "
            "If it is a NumPy array, upload it with its .npy extension."
        )
    try:
        data[: 1 << 20].decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < (1 << 20) - 4:
            raise DataError(f"{what} is not UTF-8 text (bad byte at offset {exc.start}). Save it as UTF-8.") from None
    notes = []
    sep, decimal = _sniff_dialect(data, sep, what)
    if sep == ";":
        notes.append("Read as separated by ';'" + (" with decimal commas (0,5 = one half)." if decimal == "," else "."))
    elif decimal == ",":
        notes.append("Read numbers with decimal commas (0,5 = one half).")
    layout = _scan_csv(data, sep, what)
    ncols = layout.n_fields
    row_cap = max(1, caps.max_elements // ncols)
    if layout.n_rows - 1 > row_cap:  # a header row, then more rows than the cap
        raise DataError(
            f"{what} has more than {row_cap:,} rows of {ncols} columns, above the limit of "
            f"{caps.max_elements:,} values (max_elements). Upload a sample of the rows, or raise max_elements."
        )
    start, stop = layout.first
    row0 = _split_row(data[start:stop], sep)
    after = data.find(b"\n", stop)  # the first row's line break (outside quotes: the row ends there)
    body = b"" if after < 0 else data[after + 1:]
    read_kw = dict(
        sep=sep, decimal=decimal, encoding="utf-8", keep_default_na=False, skipinitialspace=True, quotechar='"',
        skip_blank_lines=True, engine="c", header=None, names=range(ncols),
    )
    # pandas infers the types of the rows below the first, which tells whether the first row
    # names the columns (words above numbers); columns are numbered, since naming them after
    # the first row's cells costs pandas quadratic time when those repeat
    sample = _read_body(body, what, nrows=_CSV_SAMPLE_ROWS, **read_kw)
    has_header = _decide_header(row0, sample, decimal, notes)
    if has_header and len(sample) < _CSV_SAMPLE_ROWS:
        df = sample  # the whole body was read
    else:
        df = _read_body(body if has_header else data[start:], what, nrows=row_cap + 1, **read_kw)
    if len(df) > row_cap:
        raise DataError(
            f"{what} has more than {row_cap:,} rows of {ncols} columns, above the limit of "
            f"{caps.max_elements:,} values (max_elements). Upload a sample of the rows, or raise max_elements."
        )
    if len(df) == 0:
        raise DataError(f"{what} has a header row but no data rows.")
    names = [c.strip() for c in row0] if has_header else [str(j) for j in range(df.shape[1])]
    label_of = (lambda j: f"column {names[j]!r}") if has_header else (lambda j: f"column {j}")

    # an unnamed first column holding 0..n-1 is the row index pandas writes by default; a first
    # column named "row" holding increasing row numbers is the one VQ Lens's codes downloads carry
    if has_header and names[0] == "" and df.shape[1] > 1:
        col0, _ = _numbers(df[0].to_numpy(dtype=object))
        if np.array_equal(col0, np.arange(len(df))):
            df = df.drop(columns=[0])
            notes.append("Dropped the unnamed first column (a row index written by pandas).")
    elif has_header and names[0] == "row" and df.shape[1] > 1:
        col0, _ = _numbers(df[0].to_numpy(dtype=object))
        if np.isfinite(col0).all() and (col0 >= 0).all() and (col0 == np.round(col0)).all() \
                and (np.diff(col0) > 0).all():
            df = df.drop(columns=[0])
            notes.append("Dropped the first column, 'row' (the row numbers of the data, not a value).")

    numeric, partial, text, empty, _ = _classify_frame(df, decimal)
    if empty:
        notes.append(f"Dropped empty {_listing(label_of(j) for j in empty)} (no values).")

    label_col = None
    if text_column is not None:
        key = str(text_column)
        matches = [j for j in df.columns if names[j] == key]
        if not matches:
            raise DataError(
                f"text_column={text_column!r} is not a column of {what}; it has "
                f"{_listing(label_of(j) for j in df.columns)}."
            )
        label_col = matches[0]
        notes.append(f"Using the text in {label_of(label_col)} as labels.")
        numeric.pop(label_col, None)
        partial.pop(label_col, None)
        text = [j for j in text if j != label_col]
        if text:
            notes.append(f"Ignored text {_listing(label_of(j) for j in text)}.")
    elif len(text) == 1:
        label_col = text[0]
        notes.append(f"Using the text in {label_of(label_col)} as labels.")
    elif text:
        notes.append(
            f"Ignored {len(text)} text columns ({_listing(label_of(j) for j in text)}); "
            "choose one with text_column to use it as labels."
        )
    if not numeric and not text and (label_col is None or label_col in empty):
        raise DataError(f"{what} has no values: every cell is empty. Check that the right file was uploaded.")
    if not numeric:
        hint = ""
        if sep == "," and any(";" in c or "\t" in c for c in row0):
            hint = " The values seem separated by ';' or tabs: save with commas (or as .tsv for tabs)."
        raise DataError(
            f"{what} has no numeric columns (found only text).{hint} "
            "VQ Lens needs one column per embedding dimension holding numbers."
        )

    cols = sorted(numeric)
    keep = np.ones(len(df), dtype=bool)
    for j in cols:
        if j in partial:
            failed = partial[j]
            example = str(df[j].to_numpy()[np.flatnonzero(failed)[0]])
            if caps.codes:  # dropping rows would shift every later item against its embedding
                raise DataError(
                    f"{what}: {label_of(j)} holds {int(failed.sum())} non-integer value(s) such as "
                    f"{_short_repr(example, 30)} (first in data row {int(np.flatnonzero(failed)[0])}, "
                    "counting from 0); codes "
                    "should be integers >= 0. Fix those cells, or name the column with text_column if it "
                    "holds labels."
                )
            notes.append(
                f"Dropped {int(failed.sum())} row(s) with non-numeric values in {label_of(j)} "
                f"(e.g. {_short_repr(example, 30)})."
            )
            keep &= ~failed
    if not keep.any():
        raise DataError(f"{what}: every row has a non-numeric value in a numeric column; nothing is left.")
    _check_caps((int(keep.sum()), len(cols)), 4, caps, what)
    arr = np.empty((int(keep.sum()), len(cols)), dtype=np.float64 if caps.codes else np.float32)
    for k, j in enumerate(cols):
        arr[:, k] = numeric[j][keep]
    labels = None
    if label_col is not None:
        raw = df[label_col].astype(object).to_numpy()[keep]
        labels = ["" if (v is None or (isinstance(v, float) and np.isnan(v))) else str(v) for v in raw]
    overflow = sum(int((np.isfinite(numeric[j][keep]) & ~np.isfinite(arr[:, k])).sum()) for k, j in enumerate(cols))
    if overflow:
        notes.append(f"{overflow} value(s) are too large for float32 (|x| > 3.4e38) and became infinite.")
    return _finish(arr, source=filename, notes=notes, labels=labels, caps=caps, from_text=True)


def _load_tsv(data, filename, caps, **kw):
    return _load_csv(data, filename, caps, sep="\t", **kw)


# ---------------------------------------------------------------------------
# .parquet
# ---------------------------------------------------------------------------


def _parquet_column_kinds(schema):
    """Top-level column names by kind: scalar numbers, lists of numbers, text, other."""
    import pyarrow as pa

    t = pa.types

    def is_num(typ):
        return t.is_integer(typ) or t.is_floating(typ) or t.is_boolean(typ)

    def is_str(typ):
        return t.is_string(typ) or t.is_large_string(typ)

    def is_text(typ):
        return is_str(typ) or (t.is_dictionary(typ) and is_str(typ.value_type))

    def is_numlist(typ):
        return (t.is_list(typ) or t.is_large_list(typ) or t.is_fixed_size_list(typ)) and is_num(typ.value_type)

    kinds = {"scalar": [], "list": [], "text": [], "other": []}
    for f in schema:
        kind = "scalar" if is_num(f.type) else "list" if is_numlist(f.type) else "text" if is_text(f.type) else "other"
        kinds[kind].append(f.name)
    return kinds


# bytes per value once decoded, by parquet physical type (BYTE_ARRAY: its own length)
_PARQUET_WIDTH = {"BOOLEAN": 1, "INT32": 4, "INT64": 8, "INT96": 12, "FLOAT": 4, "DOUBLE": 8}


def _parquet_check_metadata(meta, wanted, value_cols, caps, what, file_size):
    """Caps from the footer metadata, before any data page is read or decompressed.

    The budget is on the *decoded* size: a column chunk's values times the width of its
    type. The stored (uncompressed) size says little about it: a dictionary-encoded column
    of one repeated value stores a few bytes for millions of values.
    """
    n_values = n_bytes = 0
    for i in range(meta.num_row_groups):
        rg = meta.row_group(i)
        for j in range(rg.num_columns):
            c = rg.column(j)
            path = c.path_in_schema
            top = next((w for w in wanted if path == w or path.startswith(w + ".")), None)
            if top is not None:
                width = _PARQUET_WIDTH.get(c.physical_type)
                decoded = c.num_values * width if width else c.total_uncompressed_size
                n_bytes += max(decoded, c.total_uncompressed_size)
                if top in value_cols:
                    n_values += c.num_values
    if n_values > caps.max_elements:
        raise DataError(
            f"{what} holds {n_values:,} values in the vector column(s), above the limit of "
            f"{caps.max_elements:,} (max_elements). Upload a sample of the rows."
        )
    if n_bytes > caps.max_bytes:
        raise DataError(
            f"{what} decodes to {_mb(n_bytes)} (its values at their stored width), above the limit of "
            f"{_mb(caps.max_bytes)} (max_bytes), though the file is only {_mb(file_size)}. Upload a sample "
            "of the rows, or store the vectors as float32."
        )


def _parquet_numbers(values, caps):
    """numpy values of an Arrow numeric array, converted once: float32 for embeddings; for codes,
    exact integers (int64 / uint64; float64 only for float columns or nulls)."""
    import pyarrow as pa

    t = values.type
    if not caps.codes:
        target = pa.float32()
    elif pa.types.is_boolean(t):
        target = t
    elif pa.types.is_integer(t) and values.null_count == 0:
        target = pa.uint64() if pa.types.is_unsigned_integer(t) else pa.int64()
    else:
        target = pa.float64()
    # safe=False: an int64 above 2**24 (2**53 for codes' float64) is rounded, as numpy would
    return values.cast(target, safe=False).to_numpy(zero_copy_only=False)


def _load_parquet(data, filename, caps, *, array_key=None, text_column=None, **_):
    import pyarrow as pa
    import pyarrow.parquet as pq

    what = repr(filename)
    if not (data[:4] == b"PAR1" and data[-4:] == b"PAR1"):
        raise DataError(
            f"{what} is not a parquet file (it lacks the PAR1 markers at its start and end). "
            "Write it with pandas.DataFrame.to_parquet or pyarrow.parquet.write_table."
        )
    try:
        pf = pq.ParquetFile(io.BytesIO(data))
        schema = pf.schema_arrow
        meta = pf.metadata
    except Exception as exc:
        raise DataError(f"{what} is not a readable parquet file: {_short(exc)}. Re-export it.") from None
    kinds = _parquet_column_kinds(schema)
    notes = []
    shared = sorted({n for n in schema.names if schema.names.count(n) > 1})
    if shared:  # a name that several columns share cannot be read by name
        kinds = {k: [c for c in v if c not in shared] for k, v in kinds.items()}
        notes.append(
            f"Ignored the columns named {_listing(map(repr, shared))}: several columns share each name, so "
            "they cannot be told apart. Rename them to use them."
        )
    scalar, lists, texts = kinds["scalar"], kinds["list"], kinds["text"]
    n_rows = meta.num_rows
    if n_rows > caps.max_elements:
        raise DataError(
            f"{what} has {n_rows:,} rows, above the limit of {caps.max_elements:,} values (max_elements). "
            "Upload a sample of the rows."
        )
    if n_rows == 0:
        raise DataError(f"{what} has 0 rows. It needs at least one vector.")
    if meta.num_row_groups > _MAX_PARQUET_ROW_GROUPS:
        raise DataError(
            f"{what} has {meta.num_row_groups:,} row groups (limit {_MAX_PARQUET_ROW_GROUPS:,}); "
            "rewrite it with larger row groups."
        )

    # which column gives the labels
    label_col = None
    if text_column is not None:
        label_col = str(text_column)
        if label_col in shared:
            raise DataError(
                f"text_column={text_column!r}: {schema.names.count(label_col)} columns of {what} are named "
                f"{label_col!r}, so it cannot be told which one to use. Rename them."
            )
        if label_col not in schema.names:
            raise DataError(
                f"text_column={text_column!r} is not a column of {what}; "
                f"its columns are {_listing(map(repr, schema.names))}."
            )
        if label_col not in texts and label_col not in scalar:
            raise DataError(
                f"text_column={text_column!r} in {what} holds neither text nor numbers "
                f"(type {schema.field(label_col).type})."
            )
        notes.append(f"Using the text in column {label_col!r} as labels.")
    elif len(texts) == 1:
        label_col = texts[0]
        notes.append(f"Using the text in column {label_col!r} as labels.")
    elif texts:
        notes.append(
            f"Ignored text columns {_listing(map(repr, texts))}; choose one with text_column to use it as labels."
        )

    # which column(s) give the vectors: a list column if there is one, else the scalar columns
    if array_key is not None:
        if array_key not in lists:
            raise DataError(
                f"array_key={array_key!r} is not a list column of numbers in {what}"
                + (f"; the list columns are {_listing(map(repr, lists))}." if lists else "; it has none.")
            )
        vec_col = array_key
    elif lists:
        vec_col = lists[0]
        if len(lists) > 1:
            notes.append(
                f"Loaded list column {vec_col!r}; choose another with array_key ({_listing(map(repr, lists[1:]))})."
            )
    else:
        vec_col = None
    if vec_col is not None:
        value_cols = [vec_col]
        ignored = [c for c in scalar if c != label_col]
        if ignored:
            notes.append(f"Ignored scalar column(s) {_listing(map(repr, ignored))}; the vectors come from {vec_col!r}.")
    else:
        value_cols = [c for c in scalar if c != label_col]
        if not value_cols:
            found = ", ".join(f"{f.name!r} ({f.type})" for f in list(schema)[:_MAX_LISTED]) or "no columns"
            dup = f" Several columns share the names {_listing(map(repr, shared))}; rename them." if shared else ""
            raise DataError(
                f"{what} has no usable numeric columns and no list column of numbers (found {found}).{dup} "
                "Store one column per dimension, or one column holding each vector as a list of floats."
            )
    if kinds["other"]:
        notes.append(f"Ignored column(s) of other types: {_listing(map(repr, kinds['other']))}.")

    wanted = set(value_cols) | ({label_col} if label_col else set())
    _parquet_check_metadata(meta, wanted, value_cols, caps, what, len(data))
    try:
        # labels are read dictionary-encoded, so a repeated long string is not copied per row
        pf = pq.ParquetFile(io.BytesIO(data), read_dictionary=[label_col] if label_col in texts else None)
        table = pf.read(columns=sorted(wanted, key=schema.names.index))
    except Exception as exc:
        raise DataError(f"{what} could not be read: {_short(exc)}. The file is corrupt; re-export it.") from None
    if table.num_rows != n_rows:
        raise DataError(f"{what} declares {n_rows} rows but holds {table.num_rows}; the file is corrupt.")

    if vec_col is not None:
        arr = _stack_list_column(table.column(vec_col).combine_chunks(), vec_col, caps, what, notes)
        source = f"{filename}[{vec_col!r}]"
        value_type = str(schema.field(vec_col).type.value_type)
        if value_type != "float":
            notes.append(f"Converted values of type {value_type} to float32.")
    else:
        _check_caps((n_rows, len(value_cols)), 4, caps, what)
        columns = [_parquet_numbers(table.column(c).combine_chunks(), caps) for c in value_cols]
        arr = np.empty((n_rows, len(value_cols)), dtype=np.result_type(*columns))
        for k, col in enumerate(columns):
            arr[:, k] = col
        del columns
        big = [c for c in value_cols if pa.types.is_integer(schema.field(c).type)]
        if big and not caps.codes:
            import pyarrow.compute as pc

            spans = [pc.min_max(table.column(c)).as_py() for c in big]
            if any(v is not None and abs(v) > 2**24 for span in spans for v in span.values()):
                notes.append("Some integers are larger than 2**24 in magnitude and were rounded in float32.")
        types = sorted({str(schema.field(c).type) for c in value_cols})
        if types != ["float"]:
            notes.append(f"Converted columns of type {', '.join(types)} to float32.")
        source = filename
    labels = None
    if label_col is not None:
        labels = _column_to_strings(table.column(label_col).combine_chunks())
    return _finish(arr, source=source, notes=notes, labels=labels, array_keys=lists, caps=caps, from_text=True)


def _column_to_strings(col):
    import pyarrow as pa

    if pa.types.is_dictionary(col.type):
        vocab = ["" if v is None else str(v) for v in col.dictionary.to_pylist()]
        idx = col.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        return ["" if i < 0 else vocab[i] for i in idx.tolist()]
    return ["" if v is None else str(v) for v in col.to_pylist()]


def _stack_list_column(col, name, caps, what, notes):
    """(n, d) array from a list or fixed-size-list column, converted once (:func:`_parquet_numbers`);
    null rows become NaN."""
    import pyarrow as pa

    n = len(col)
    null = col.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_fixed_size_list(col.type):
        d = col.type.list_size
        _check_caps((n, d), 4, caps, what)
        arr = _parquet_numbers(col.values.slice(col.offset * d, n * d), caps).reshape(n, d)
    else:
        lengths = col.value_lengths().fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        valid = lengths >= 0
        if not valid.any():
            raise DataError(f"Column {name!r} of {what} holds only nulls.")
        vals, counts = np.unique(lengths[valid], return_counts=True)
        d = int(vals[np.argmax(counts)])
        differ = np.flatnonzero(valid & (lengths != d))
        if differ.size:
            shown = ", ".join(f"row {i} has {lengths[i]}" for i in differ[:_MAX_LISTED])
            more = f" (and {differ.size - _MAX_LISTED} more)" if differ.size > _MAX_LISTED else ""
            raise DataError(
                f"Column {name!r} of {what} holds lists of different lengths: most rows have {d} values, "
                f"but {shown}{more}. Every vector must have the same length."
            )
        if d == 0:
            raise DataError(f"Column {name!r} of {what} holds only empty lists.")
        _check_caps((n, d), 4, caps, what)
        flat = _parquet_numbers(col.flatten(), caps)
        if flat.size != int(valid.sum()) * d:
            raise DataError(f"Column {name!r} of {what} is inconsistent; the file is corrupt.")
        if valid.all():
            arr = flat.reshape(n, d)
        else:
            arr = np.full((n, d), np.nan, dtype=np.float32 if flat.dtype == np.float32 else np.float64)
            arr[valid] = flat.reshape(-1, d)
        del flat
    if null.any():
        if arr.dtype.kind != "f":
            arr = arr.astype(np.float64)
        elif not arr.flags.writeable:
            arr = arr.copy()
        arr[null] = np.nan
        notes.append(f"{int(null.sum())} row(s) have no vector (null) in {name!r}; they count as non-finite rows.")
    return arr


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
    if d > _MAX_VECS_DIM:
        raise DataError(
            f"{what} starts with dimension {d:,}, above {_MAX_VECS_DIM:,}; the file is corrupt or not "
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
        _check_caps((n_full, d), max(item.itemsize, 4), caps, what)
    return np.array(view["v"], order="C", copy=True)


def _read_vecs_public(path_or_bytes, item, ext, max_bytes, max_elements):
    caps = None
    if max_bytes is not None or max_elements is not None:
        caps = _Caps(
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
                raise DataError(f"{what} is {_mb(size)}, above the limit of {_mb(caps.max_bytes)} (max_bytes).")
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise DataError(f"{what} could not be opened: {exc.strerror or exc}.") from None
    if caps is not None and len(data) > caps.max_bytes:
        raise DataError(f"{what} is {_mb(len(data))}, above the limit of {_mb(caps.max_bytes)} (max_bytes).")
    return _parse_vecs(data, item, what, caps)


def _make_vecs_loader(item, label):
    def _load(data, filename, caps, **_):
        arr = _parse_vecs(data, item, repr(filename), caps)
        notes = []
        if label == "ivecs":
            notes.append("Note: .ivecs files usually hold neighbour ids (ground truth), not embeddings.")
        return _finish(arr, source=filename, notes=notes, caps=caps)

    return _load


_LOADERS = {
    ".npy": (_load_npy, ".npy"),
    ".npz": (_load_npz, ".npz"),
    ".csv": (_load_csv, "CSV"),
    ".tsv": (_load_tsv, "TSV"),
    ".parquet": (_load_parquet, "parquet"),
    ".fvecs": (_make_vecs_loader(np.dtype("<f4"), "fvecs"), ".fvecs"),
    ".bvecs": (_make_vecs_loader(np.dtype("u1"), "bvecs"), ".bvecs"),
    ".ivecs": (_make_vecs_loader(np.dtype("<i4"), "ivecs"), ".ivecs"),
}


# ---------------------------------------------------------------------------
# integer codes (semantic IDs, PQ / RQ codes made elsewhere)
# ---------------------------------------------------------------------------

#: Formats :func:`load_codes` reads.
CODES_EXTENSIONS = (".npy", ".csv", ".tsv", ".parquet")
#: Most code levels (columns) accepted; more is almost surely an embedding file.
MAX_CODE_LEVELS = 64
# Above this a "codebook" is an id space (metrics cannot count it code by code).
_LARGE_CODEBOOK = 2**26
_MAX_EXACT_FLOAT_INT = 2**53


@dataclass
class LoadedCodes:
    """An uploaded file of integer codes, read and checked.

    Attributes
    ----------
    codes : ndarray of shape (n_items, n_levels)
        Row i is the code tuple of item i, level 0 first; the smallest unsigned
        integer dtype that holds the largest code (uint8 for K <= 256).
    codebook_sizes : list of int or None
        Inferred as ``max + 1`` of each column: a lower bound of the true K
        (codes at the top of a codebook that no item uses are invisible).
        Pass the real sizes to the metrics when they are known.
    labels : list of str or None
        One label (item text, title, id) per row, from a text column.
    source : str
        Where the codes came from, e.g. ``"codes.parquet['sid']"``.
    notes : list of str
        What was done or noticed on the way, each a sentence for a person.
    array_keys : list of str
        ``.parquet``: the list columns of numbers (choose one with ``array_key``).
    """

    codes: np.ndarray
    codebook_sizes: list | None = None
    labels: list | None = None
    source: str = ""
    notes: list = field(default_factory=list)
    array_keys: list = field(default_factory=list)

    @property
    def shape(self):
        return self.codes.shape


def load_codes(
    data,
    filename,
    *,
    max_bytes=DEFAULT_MAX_BYTES,
    max_elements=DEFAULT_MAX_ELEMENTS,
    array_key=None,
    text_column=None,
):
    """Read an uploaded file of integer codes, one row per item, one column per level.

    The file goes through the same parsers and header checks as
    :func:`load_embeddings` (size caps, no pickles, ragged rows), but values
    are kept exact and must be whole numbers >= 0: a cell that is not is an
    error, never a dropped row, so that row i stays item i.

    Parameters
    ----------
    data : bytes
        The file's content.
    filename : str
        Its name; the extension chooses the format (``.npy``, ``.csv``,
        ``.tsv``, ``.parquet``).
    max_bytes, max_elements : int
        Caps, as in :func:`load_embeddings`.
    array_key : str, optional
        ``.parquet``: the list column holding the code tuples (default the
        first); without list columns the numeric columns are the levels.
    text_column : str or int, optional
        CSV / parquet: the column to keep as item labels (texts, titles); a
        single text column is used without being named.

    Returns
    -------
    LoadedCodes

    Raises
    ------
    DataError
        Non-integer, negative, NaN or missing values; 1-D arrays (reshape with
        ``codes.reshape(-1, 1)``); more than ``MAX_CODE_LEVELS`` columns; empty
        or unreadable files. The message names the row, column and value.

    Examples
    --------
    >>> import io, numpy as np
    >>> buf = io.BytesIO(); np.save(buf, np.array([[3, 0], [3, 1], [0, 1]]))
    >>> loaded = load_codes(buf.getvalue(), "codes.npy")
    >>> loaded.codes.dtype.name, loaded.codebook_sizes
    ('uint8', [4, 2])
    >>> load_codes(b"c0,c1,title\\n1,2,a\\n0,2,b\\n", "codes.csv").labels
    ['a', 'b']
    """
    filename = str(filename or "")
    data = _as_bytes(data, filename)
    if os.path.splitext(filename)[1].lower() == ".npy":
        # a 1-D array needs the codes' advice (one level per column), not the embeddings'
        try:
            header = _parse_npy_header(io.BytesIO(data[:_MAX_NPY_HEADER + 16]).read, repr(filename))
        except DataError:
            header = None  # the loader below says what is wrong with the file
        if header is not None and len(header.shape) == 1:
            raise DataError(
                f"{filename!r} holds a 1-D array of shape {header.shape}; codes need a 2-D array "
                "(n_items, n_levels). For codes of a single codebook save codes.reshape(-1, 1); "
                "for tuples of M levels save codes.reshape(-1, M)."
            )
        if header is not None and len(header.shape) == 2 and 0 in header.shape:
            raise DataError(
                f"{filename!r} holds an empty array of shape {header.shape}; codes need at least one "
                "item (row) and one level (column)."
            )
    return _read_upload(
        data, filename, max_bytes=max_bytes, max_elements=max_elements, array_key=array_key,
        text_column=text_column, extensions=CODES_EXTENSIONS, noun="codes",
        example="numpy.save(path, codes)", codes=True,
    )


def _first_bad(mask):
    """(row, column) of the first True of a 2-D mask, in row order."""
    i, m = np.argwhere(mask)[0]
    return int(i), int(m)


def _finish_codes(arr, *, source, notes, labels=None, array_keys=None, caps=None):
    """Turn a checked numeric 2-D array into LoadedCodes: exact non-negative integers."""
    what = source
    _check_numeric_dtype(arr.dtype, what)
    if arr.ndim == 1:
        raise DataError(
            f"{what} is 1-D with shape {arr.shape}; codes need a 2-D array (n_items, n_levels). "
            "For a single codebook use codes.reshape(-1, 1)."
        )
    _check_2d(arr.shape, what)
    n, n_levels = arr.shape
    if n_levels > MAX_CODE_LEVELS:
        raise DataError(
            f"{what} has {n_levels} columns, more than the {MAX_CODE_LEVELS} code levels VQ Lens accepts. "
            "Codes have one column per codebook (a semantic ID has 3 or 4); if this file holds "
            "embeddings, load it as embeddings instead."
        )
    if caps is not None:
        _check_caps(arr.shape, arr.dtype.itemsize, caps, what)
    # the embedding loaders note their float32 conversion; codes are not converted to float
    notes = [s for s in notes if not s.startswith("Converted ")]
    kind = arr.dtype.kind
    if kind == "b":
        raise DataError(
            f"{what} holds booleans (True/False), not code indices; codes should be integers >= 0. "
            "Save them with an integer dtype, e.g. codes.astype(np.int64)."
        )
    if kind == "f":
        missing = np.isnan(arr)
        if missing.any():
            i, m = _first_bad(missing)
            raise DataError(
                f"{what} has {int(missing.sum())} missing (NaN or empty) value(s), the first in row {i}, "
                f"level {m} (counting from 0); every item needs a code at every level. Fill or remove those rows."
            )
        bad = ~np.isfinite(arr) | (arr != np.round(arr)) | (np.abs(arr) >= _MAX_EXACT_FLOAT_INT)
        if bad.any():
            i, m = _first_bad(bad)
            raise DataError(
                f"{what} holds non-integer values: row {i}, level {m} (counting from 0) is {arr[i, m].item()!r} "
                f"({int(bad.sum())} such value(s)). Codes should be whole numbers >= 0 (code indices); "
                "if this file holds embeddings, load it as embeddings instead."
            )
        if source.lower().endswith(".npy"):  # text and parquet columns are always read as float64
            notes.append(f"Converted whole numbers stored as {arr.dtype.name} to integers.")
    negative = arr < 0
    if negative.any():
        i, m = _first_bad(negative)
        raise DataError(
            f"{what} holds negative codes: row {i}, level {m} (counting from 0) is {arr[i, m].item()} "
            f"({int(negative.sum())} negative value(s)). Codes should be integers >= 0; if a negative "
            "value marks a missing code, drop those items or give them a real code."
        )
    highs = arr.max(axis=0)
    top = int(highs.max())
    dtype = np.min_scalar_type(top)
    codes = arr.astype(dtype, order="C", copy=True)
    sizes = [int(h) + 1 for h in highs]
    notes.append(
        f"Read {n} item(s) with {n_levels} code level(s); codebook sizes inferred as max + 1 per level: "
        f"{_listing(sizes, limit=8)}. A level's real size may be larger if its top codes are unused."
    )
    large = [m for m, k in enumerate(sizes) if k > _LARGE_CODEBOOK]
    if large:
        notes.append(
            f"Level(s) {_listing(large)} hold values up to {top:,}: these look like item ids, not code "
            "indices; drop such columns from the file."
        )
    constant = [m for m in range(n_levels) if n > 1 and int(arr[:, m].min()) == int(highs[m])]
    if constant:
        notes.append(f"Level(s) {_listing(constant)} use a single code for every item.")
    if labels is not None and len(labels) != n:  # pragma: no cover - loaders keep them aligned
        raise DataError(f"{what}: {len(labels)} labels for {n} rows.")
    return LoadedCodes(
        codes=codes, codebook_sizes=sizes, labels=labels, source=source, notes=notes,
        array_keys=list(array_keys or []),
    )
