"""Limits, budgets and shared checks of the safe loaders: the caps on decoded size, the
result type and the helpers every format uses."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field

import numpy as np

from ..exceptions import DataError, VQLensError
from ..inspect import count_duplicate_rows

#: Largest file (and largest decompressed array) accepted: 200 MiB, which is
#: also Streamlit's default upload limit.
DEFAULT_MAX_BYTES = 200 * 2**20
#: Largest number of values (n * d) accepted: a float32 array of 200 MiB.
DEFAULT_MAX_ELEMENTS = DEFAULT_MAX_BYTES // 4

SUPPORTED_EXTENSIONS = (".npy", ".npz", ".csv", ".tsv", ".parquet", ".fvecs", ".bvecs", ".ivecs")

NPY_MAGIC = b"\x93NUMPY"
MAX_NPY_HEADER = 100_000  # numpy's own reader refuses headers above 10_000 bytes
MAX_NPZ_MEMBERS = 1_000
MAX_ZIP_DIRECTORY = 2**20  # bytes of zip central directory
MAX_PARQUET_ROW_GROUPS = 100_000
MAX_VECS_DIM = 1_000_000
CSV_SAMPLE_ROWS = 64
MAX_LISTED = 5  # how many offending rows / names a message lists
# Cell texts read as "missing" (NaN) in CSV numeric columns; pandas' defaults.
NA_TOKENS = frozenset({
    "", "nan", "-nan", "+nan", "na", "n/a", "null", "none", "#n/a", "#n/a n/a",
    "#na", "<na>", "-1.#ind", "1.#ind", "-1.#qnan", "1.#qnan",
})
ALLOWED_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


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
    ids : ndarray of shape (n_samples,) or None
        The data's id column, row i's id at i: int64 when every id is a whole number,
        else strings (object array). Found by :func:`is_id_name` (a CSV / parquet column
        such as ``id`` or ``item_id``; an npz array such as ``ids``); repeated ids are kept,
        with a note.
    id_name : str or None
        The name of that column (or npz array).
    """

    X: np.ndarray
    labels: list | None = None
    source: str = ""
    notes: list = field(default_factory=list)
    nonfinite_rows: int = 0
    array_keys: list = field(default_factory=list)
    ids: np.ndarray | None = None
    id_name: str | None = None

    @property
    def shape(self):
        return self.X.shape




# ---------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------

#: Column (or npz array) names that hold item ids, compared in lower case; any name ending in
#: ``_id`` too (:func:`is_id_name`). The catalogue reader (vqcore.catalog) follows the same rule.
ID_NAMES = ("id", "ids", "item_id", "row_id")


def is_id_name(name):
    """Whether a column or array called ``name`` holds item ids: ``id``, ``ids``, ``item_id``,
    ``row_id`` or any name ending in ``_id`` (case-insensitive).

    Examples
    --------
    >>> [is_id_name(n) for n in ("id", "Item_ID", "user_id", "idx", "width")]
    [True, True, True, False, False]
    """
    low = str(name).strip().lower()
    return low in ID_NAMES or low.endswith("_id")


@dataclass(frozen=True)
class RowColumns:
    """The columns of a table that describe its rows rather than hold values (:func:`row_columns`).

    Attributes
    ----------
    ids : column or None
        The column of item ids.
    labels : column or None
        The column of labels (texts shown beside each row).
    other_texts : list
        The text columns that are neither, in table order: ignored by the loaders.
    """

    ids: object = None
    labels: object = None
    other_texts: list = field(default_factory=list)


def row_columns(columns, texts, text_column=None, *, id_ok=None, name=str):
    """Choose the id column and the label column of a table, one rule for every tabular loader
    (CSV / TSV and parquet).

    - ids: the first of ``columns`` named like ids (:func:`is_id_name`), not named ``text_column``,
      whose values could be ids (``id_ok``: whole numbers or text);
    - labels: the first of ``columns`` named ``text_column`` when it is given (``None`` if no column
      has that name: the caller says so in its own words), else the only text column left once the
      ids are set aside; with several text columns left, none.

    Parameters
    ----------
    columns : sequence
        The columns of the table, in the order to try for the ids (names, or keys that ``name``
        turns into names).
    texts : sequence
        The columns holding text, in table order.
    text_column : str or int, optional
        The name of the label column asked for (compared with each column's name as a string).
    id_ok : callable, optional
        Whether a column's values could be ids; called only for columns named like ids. Default: any.
    name : callable, default str
        A column's name, for tables whose columns are keyed otherwise (a CSV's positions).

    Returns
    -------
    RowColumns

    Examples
    --------
    >>> row_columns(["id", "x", "title"], ["title"])
    RowColumns(ids='id', labels='title', other_texts=[])
    >>> row_columns(["doc_id", "a", "b"], ["doc_id", "a", "b"])
    RowColumns(ids='doc_id', labels=None, other_texts=['a', 'b'])
    >>> row_columns(["doc_id", "a", "b"], ["doc_id", "a", "b"], text_column="doc_id")
    RowColumns(ids=None, labels='doc_id', other_texts=['a', 'b'])
    """
    asked = None if text_column is None else str(text_column)
    ids = next((c for c in columns if is_id_name(name(c)) and name(c) != asked and (id_ok is None or id_ok(c))),
               None)
    texts = [c for c in texts if c != ids]
    if asked is not None:
        labels = next((c for c in columns if name(c) == asked), None)
    else:
        labels = texts[0] if len(texts) == 1 else None
    return RowColumns(ids, labels, [c for c in texts if c != labels])


def id_array(values):
    """Ids as an array: int64 when every value is a whole number (ints, or text such as ``"42"``),
    else the values as strings (object array; a missing value is ``""``)."""
    vals = list(values)
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vals):
        return np.asarray(vals, dtype=np.int64)
    text = ["" if v is None or (isinstance(v, float) and v != v) else str(v).strip() for v in vals]
    if text and all(t.lstrip("-").isdigit() and t.lstrip("-").isascii() and len(t) <= 18 for t in text):
        return np.asarray([int(t) for t in text], dtype=np.int64)
    return np.asarray(text, dtype=object)


def id_notes(ids, name):
    """Notes about an id column: which one, and how many ids repeat (kept: every row keeps its own)."""
    notes = [f"Kept {name!r} as the items' ids (shown and exported beside each row's number)."]
    _, first, counts = np.unique(ids.astype(str) if ids.dtype == object else ids, return_index=True,
                                 return_counts=True)
    repeated = counts > 1
    if repeated.any():
        example = ids[np.sort(first[repeated])[0]]
        example = example.item() if isinstance(example, np.generic) else example
        notes.append(
            f"Warning: {int((counts[repeated] - 1).sum()):,} row(s) repeat an id of an earlier row "
            f"({int(repeated.sum()):,} id(s) appear more than once, e.g. {short_repr(example, 40)}); every row "
            "keeps its own, so look items up by their row number."
        )
    return notes


@dataclass(frozen=True)
class Caps:
    max_bytes: int
    max_elements: int
    codes: bool = False  # load_codes: keep exact integers, refuse instead of dropping rows


def as_bytes(data, filename):
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if hasattr(data, "getvalue"):  # BytesIO, Streamlit's UploadedFile
        return bytes(data.getvalue())
    raise VQLensError(f"data for {filename!r} should be the file's bytes, got {type(data).__name__}.")


def mb(n):
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"


def short(exc, limit=300):
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[:limit] + "..."


def listing(items, limit=MAX_LISTED):
    items = list(items)
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")


def short_repr(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def check_caps(shape, itemsize, caps, what):
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
            f"{what} has shape {tuple(shape)} and needs {mb(elements * itemsize)}, above the limit of "
            f"{mb(caps.max_bytes)} (max_bytes). Upload a sample of the rows, or raise max_bytes."
        )
    if len(shape) == 2:
        need = load_memory(shape, itemsize)
        if need > LOAD_MEMORY_FACTOR * caps.max_bytes:
            raise DataError(
                f"{what} has shape {tuple(shape)}: {int(shape[0]):,} rows of {int(shape[1])} value(s), which take "
                f"about {mb(need)} to load and check (row by row work: duplicates, non-finite rows), above the "
                f"limit of {mb(LOAD_MEMORY_FACTOR * caps.max_bytes)} ({LOAD_MEMORY_FACTOR} x max_bytes). "
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


def check_numeric_dtype(dtype, what):
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


def check_2d(shape, what):
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


def nonfinite_mask(X):
    return ~np.isfinite(X).all(axis=1)


def finish(arr, *, source, notes, labels=None, array_keys=None, caps=None, from_text=False, ids=None,
           id_name=None):
    """Turn a checked numeric 2-D array into LoadedData (float32, notes about degenerate data);
    ``ids`` (from :func:`id_array`) and ``id_name``: the data's id column, if it has one."""
    if caps is not None and caps.codes:  # load_codes: integer codes, not float32 vectors
        from .codes import finish_codes  # codes builds on these helpers: imported here, not at the top

        return finish_codes(arr, source=source, notes=notes, labels=labels, array_keys=array_keys, caps=caps)
    what = source
    check_numeric_dtype(arr.dtype, what)
    check_2d(arr.shape, what)
    if caps is not None:
        check_caps(arr.shape, 4, caps, what)
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
    bad = nonfinite_mask(X)
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
    if ids is not None:
        if len(ids) != n:  # pragma: no cover - loaders keep them aligned
            raise DataError(f"{what}: {len(ids)} ids for {n} rows.")
        notes.extend(id_notes(ids, id_name))
    return LoadedData(
        X=X, labels=labels, source=source, notes=notes, nonfinite_rows=n_bad,
        array_keys=list(array_keys or []), ids=ids, id_name=id_name,
    )
