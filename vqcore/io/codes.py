"""Integer codes made elsewhere (semantic IDs, PQ / RQ codes)."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field

import numpy as np

from .._validation import MAX_COUNTED_CODEBOOK_SIZE, check_codes
from ..exceptions import DataError
from .limits import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ELEMENTS,
    MAX_NPY_HEADER,
    as_bytes,
    check_2d,
    check_caps,
    check_numeric_dtype,
    listing,
)
from .loader import read_upload
from .npy import parse_npy_header

# ---------------------------------------------------------------------------
# integer codes (semantic IDs, PQ / RQ codes made elsewhere)
# ---------------------------------------------------------------------------

#: Formats :func:`load_codes` reads.
CODES_EXTENSIONS = (".npy", ".csv", ".tsv", ".parquet")
#: Most code levels (columns) accepted; more is almost surely an embedding file.
MAX_CODE_LEVELS = 64


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
    data = as_bytes(data, filename)
    if os.path.splitext(filename)[1].lower() == ".npy":
        # a 1-D array needs the codes' advice (one level per column), not the embeddings'
        try:
            header = parse_npy_header(io.BytesIO(data[:MAX_NPY_HEADER + 16]).read, repr(filename))
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
    return read_upload(
        data, filename, max_bytes=max_bytes, max_elements=max_elements, array_key=array_key,
        text_column=text_column, extensions=CODES_EXTENSIONS, noun="codes",
        example="numpy.save(path, codes)", codes=True,
    )


def _first_bad(mask):
    """(row, column) of the first True of a 2-D mask, in row order."""
    i, m = np.argwhere(mask)[0]
    return int(i), int(m)


# what to do, for the failures of the code check (vqcore._validation.check_codes) a file most often has
_ADVICE = {
    "not whole": "If this file holds embeddings, load it as embeddings instead.",
    "negative": "If a negative value marks a missing code, drop those items or give them a real code.",
}


def _in_file(error, dtype):
    """The file's context around a message of the code check: where the value it names is in the
    file, how many values fail alike, and what to do."""
    if dtype.kind == "b":
        return " Save them with an integer dtype, e.g. codes.astype(np.int64)."
    if getattr(error, "row", None) is None:
        return ""
    advice = _ADVICE.get(error.reason)
    return (f" In the file: row {error.row}, level {error.column} (counting from 0); {error.n_bad} such "
            f"value(s).{' ' + advice if advice else ''}")


def finish_codes(arr, *, source, notes, labels=None, array_keys=None, caps=None):
    """Turn a checked numeric 2-D array into LoadedCodes: exact non-negative integers."""
    what = source
    check_numeric_dtype(arr.dtype, what)
    if arr.ndim == 1:
        raise DataError(
            f"{what} is 1-D with shape {arr.shape}; codes need a 2-D array (n_items, n_levels). "
            "For a single codebook use codes.reshape(-1, 1)."
        )
    check_2d(arr.shape, what)
    n, n_levels = arr.shape
    if n_levels > MAX_CODE_LEVELS:
        raise DataError(
            f"{what} has {n_levels} columns, more than the {MAX_CODE_LEVELS} code levels VQ Lens accepts. "
            "Codes have one column per codebook (a semantic ID has 3 or 4); if this file holds "
            "embeddings, load it as embeddings instead."
        )
    if caps is not None:
        check_caps(arr.shape, arr.dtype.itemsize, caps, what)
    # the embedding loaders note their float32 conversion; codes are not converted to float
    notes = [s for s in notes if not s.startswith("Converted ")]
    stored = arr.dtype
    if stored.kind == "f":
        missing = np.isnan(arr)  # an empty CSV cell or a parquet null: no code, rather than a wrong one
        if missing.any():
            i, m = _first_bad(missing)
            raise DataError(
                f"{what} has {int(missing.sum())} missing (NaN or empty) value(s), the first in row {i}, "
                f"level {m} (counting from 0); every item needs a code at every level. Fill or remove those rows."
            )
    try:  # the one check of code arrays, with the file's context around its wording
        arr, sizes = check_codes(arr)
    except DataError as error:
        raise DataError(f"{what}: {error}{_in_file(error, stored)}") from None
    if stored.kind == "f" and source.lower().endswith(".npy"):  # text and parquet are always read as float64
        notes.append(f"Converted whole numbers stored as {stored.name} to integers.")
    highs = arr.max(axis=0)
    top = int(highs.max())
    dtype = np.min_scalar_type(top)
    codes = arr.astype(dtype, order="C", copy=True)
    notes.append(
        f"Read {n} item(s) with {n_levels} code level(s); codebook sizes inferred as max + 1 per level: "
        f"{listing(sizes, limit=8)}. A level's real size may be larger if its top codes are unused."
    )
    large = [m for m, k in enumerate(sizes) if k > MAX_COUNTED_CODEBOOK_SIZE]
    if large:
        notes.append(
            f"Level(s) {listing(large)} hold values up to {top:,}: these look like item ids, not code "
            "indices; drop such columns from the file."
        )
    constant = [m for m in range(n_levels) if n > 1 and int(arr[:, m].min()) == int(highs[m])]
    if constant:
        notes.append(f"Level(s) {listing(constant)} use a single code for every item.")
    if labels is not None and len(labels) != n:  # pragma: no cover - loaders keep them aligned
        raise DataError(f"{what}: {len(labels)} labels for {n} rows.")
    return LoadedCodes(
        codes=codes, codebook_sizes=sizes, labels=labels, source=source, notes=notes,
        array_keys=list(array_keys or []),
    )
