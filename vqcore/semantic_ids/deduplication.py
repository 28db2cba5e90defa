"""TIGER's extra token that makes every code tuple unique, and codes written back to files."""

import io

import numpy as np

from .._validation import check_choice
from ..csvfile import csv_bytes
from ..exceptions import VQLensError
from ..metrics import sorted_rows
from ._common import check_labels, check_rows, validate_codes


def deduplicate(codes):
    """Append one level that makes every code tuple unique, as TIGER does.

    Items sharing a whole tuple get 0, 1, 2, ... in the new last level, in the
    order they appear; items with a tuple of their own get 0. The new level
    needs as many codes as the largest collision group, the least any extra
    level can do; the original levels are unchanged.

    Parameters
    ----------
    codes : array-like of shape (n_items, n_levels)

    Returns
    -------
    new_codes : ndarray of shape (n_items, n_levels + 1)
        Unsigned integers; every row distinct.
    extra_size : int
        Size K of the added level: the size of the largest collision group
        (1 when no two items collide, and the new level is all zeros).

    References
    ----------
    S. Rajput et al., "Recommender Systems with Generative Retrieval",
    NeurIPS 2023, sec. 3.1: "we append an extra token at the end of the
    ordered semantic codes to make them unique".

    Examples
    --------
    >>> new, k = deduplicate([[5, 1], [2, 0], [5, 1], [5, 1]])
    >>> new.tolist(), k
    ([[5, 1, 0], [2, 0, 0], [5, 1, 1], [5, 1, 2]], 3)
    """
    codes, _ = validate_codes(codes)
    n, n_levels = codes.shape
    _, _, new_run, perm = sorted_rows(codes, order=True)  # stable: runs keep item order
    run_start = np.flatnonzero(new_run)[np.cumsum(new_run) - 1]
    extra = np.empty(n, dtype=np.int64)
    extra[perm] = np.arange(n) - run_start
    extra_size = int(extra.max()) + 1
    dtype = np.result_type(codes.dtype, np.min_scalar_type(extra_size - 1))
    new_codes = np.empty((n, n_levels + 1), dtype=dtype)
    new_codes[:, :n_levels] = codes
    new_codes[:, n_levels] = extra
    return new_codes, extra_size


def export_codes(codes, fmt="csv", *, labels=None, level_names=None, label_name="label", rows=None,
                 row_name="row", ids=None):
    """Codes (e.g. from :func:`deduplicate`) as the bytes of a ``.csv`` or ``.npy`` file.

    :func:`vqcore.io.load_codes` reads them back exactly (for a CSV with
    labels, pass ``text_column=label_name``, since labels that look like
    numbers would otherwise be read as a level).

    Parameters
    ----------
    codes : array-like of shape (n_items, n_levels)
    fmt : {"csv", "npy"}, default="csv"
    labels : sequence of str, optional
        CSV only: one label per item, written as the last column.
    level_names : sequence of str, optional
        CSV header of the code columns; default ``level_0, level_1, ...``.
    label_name : str, default="label"
        CSV header of the label column.
    rows : sequence of int, optional
        CSV only: each item's row number in the user's data (increasing),
        written as the first column (``row_name``); :func:`vqcore.io.load_codes`
        drops a first column named ``row`` of increasing numbers.
    row_name : str, default="row"
        CSV header of the row column.
    ids : sequence of int or str, optional
        CSV only: each item's id (the data's id column), written after the
        row column as ``id``; :func:`vqcore.io.load_codes` sets it aside.

    Returns
    -------
    data : bytes

    Labels that a spreadsheet would run as a formula (starting with ``= + - @``) are written
    with a leading ``'`` (:mod:`vqcore.csvfile`); the codes are numbers and stay as they are.

    Examples
    --------
    >>> export_codes([[1, 0], [1, 1]], labels=["a", "b, c"]).decode()
    'level_0,level_1,label\\n1,0,a\\n1,1,"b, c"\\n'
    >>> export_codes([[1, 0], [1, 1]], rows=[3, 7]).decode()
    'row,level_0,level_1\\n3,1,0\\n7,1,1\\n'
    >>> export_codes([[1, 0], [1, 1]], rows=[3, 7], ids=["a", "=b"]).decode()
    "row,id,level_0,level_1\\n3,a,1,0\\n7,'=b,1,1\\n"
    >>> export_codes([[2]], labels=["=HYPERLINK(0)"]).decode()
    "level_0,label\\n2,'=HYPERLINK(0)\\n"
    """
    codes, _ = validate_codes(codes)
    n, n_levels = codes.shape
    fmt = check_choice("fmt", fmt, {"csv", "npy"})
    labels = check_labels(labels, n)
    ids = None if ids is None else check_labels(np.asarray(ids).tolist(), n)
    rows = check_rows(rows, n)
    if fmt == "npy":
        if labels is not None or rows is not None or ids is not None:
            raise VQLensError("labels, rows and ids cannot be stored in a .npy file; use fmt='csv' to keep them.")
        buf = io.BytesIO()
        np.save(buf, codes, allow_pickle=False)
        return buf.getvalue()
    if level_names is None:
        level_names = [f"level_{m}" for m in range(n_levels)]
    level_names = [str(v) for v in level_names]
    if len(level_names) != n_levels:
        raise VQLensError(f"level_names has {len(level_names)} names but the codes have {n_levels} levels.")
    head = ([str(row_name)] if rows is not None else []) + (["id"] if ids is not None else [])
    header = head + level_names + ([str(label_name)] if labels is not None else [])
    lines = codes.tolist()
    if ids is not None:
        lines = [[i] + line for i, line in zip(ids, lines, strict=True)]
    if rows is not None:
        lines = [[r] + line for r, line in zip(rows.tolist(), lines, strict=True)]
    if labels is not None:
        lines = (line + [str(lab)] for line, lab in zip(lines, labels, strict=True))
    return csv_bytes(lines, header=header)
