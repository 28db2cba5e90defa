"""The item -> semantic ID table and the prefix trie, as files to download."""

import io

import numpy as np

from .._validation import check_choice, check_int
from ..csvfile import csv_bytes, safe_cell
from ..exceptions import VQLensError
from ..metrics import sorted_rows
from ._common import check_labels, check_rows, prefix_runs, validate_codes


def csv_safe(cell):
    """A text cell that a spreadsheet shows as text: a leading ``'`` when it starts like a formula
    (:func:`vqcore.csvfile.safe_cell` of the cell as text).

    Examples
    --------
    >>> csv_safe("=HYPERLINK(\\"http://x\\")"), csv_safe("plain"), csv_safe("-3 dB")
    ('\\'=HYPERLINK("http://x")', 'plain', "'-3 dB")
    """
    return safe_cell(str(cell))


def semantic_id_strings(codes, sep="_"):
    """Each row's code tuple as one string, level 0 first (``"12_3_7"``).

    ``_`` is the default separator because spreadsheets read ``12-3-7`` or
    ``12/3/7`` as dates.
    """
    codes, _ = validate_codes(codes)
    cols = [codes[:, m].astype(str) for m in range(codes.shape[1])]
    out = cols[0].astype(object)
    for c in cols[1:]:
        out = out + sep + c
    return out.tolist()


def id_table(codes, fmt="parquet", *, rows=None, ids=None, texts=None, level_names=None, sep="_"):
    """The item -> semantic ID table, as the bytes of a ``.parquet`` or ``.csv`` file.

    One row per item, in item order, with the columns ``row`` (the item's row
    number in the data: ``rows`` when given, else 0..n-1), ``id`` (the data's id column, when given), one column
    per level (``level_0``, ``level_1``, ...: the codes unpacked, one integer
    column each, unlike faiss's bit-packed codes), ``semantic_id`` (the tuple
    joined by ``sep``) and ``text`` (the item's text, when given). In the CSV,
    text and id cells that a spreadsheet would run as a formula are prefixed
    with ``'`` (:func:`csv_safe`); the parquet file keeps them as they are.

    Parameters
    ----------
    codes : array-like of shape (n_items, n_levels)
    fmt : {"parquet", "csv"}, default="parquet"
    rows : sequence of int of length n_items, optional
        The items' row numbers in the data file, when rows were dropped on
        loading (or the items are a sample of a catalogue); default 0..n-1.
    ids, texts : sequence of length n_items, optional
    level_names : sequence of str, optional
    sep : str, default="_"

    Returns
    -------
    data : bytes

    Examples
    --------
    >>> print(id_table([[1, 0], [1, 2]], "csv", texts=["a", "=cmd()"]).decode())
    row,level_0,level_1,semantic_id,text
    0,1,0,1_0,a
    1,1,2,1_2,'=cmd()
    <BLANKLINE>
    """
    import pandas as pd

    codes, _ = validate_codes(codes)
    n, n_levels = codes.shape
    fmt = check_choice("fmt", fmt, {"parquet", "csv"})
    ids = check_labels(ids, n)
    texts = check_labels(texts, n)
    if level_names is None:
        level_names = [f"level_{m}" for m in range(n_levels)]
    level_names = [str(v) for v in level_names]
    if len(level_names) != n_levels:
        raise VQLensError(f"level_names has {len(level_names)} names but the codes have {n_levels} levels.")
    if fmt == "csv":  # a spreadsheet must not run an id or a text as a formula
        ids = None if ids is None else [v if v is None or not isinstance(v, str) else csv_safe(v) for v in ids]
        texts = None if texts is None else [None if v is None else csv_safe(v) for v in texts]
    rows = check_rows(rows, n)
    cols = {"row": np.arange(n, dtype=np.int64) if rows is None else rows}
    if ids is not None:
        cols["id"] = ids
    for m, name in enumerate(level_names):
        cols[name] = codes[:, m].astype(np.int64)
    cols["semantic_id"] = semantic_id_strings(codes, sep)
    if texts is not None:
        cols["text"] = [None if t is None else str(t) for t in texts]
    df = pd.DataFrame(cols)
    if fmt == "parquet":
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        return buf.getvalue()
    return csv_bytes(df.itertuples(index=False, name=None), header=list(df.columns))


def prefix_trie(codes, *, max_depth=None):
    """The trie of the code tuples: for each prefix, its children and the number of items under it.

    This is the structure constrained decoding of semantic IDs walks: after
    generating a prefix, only its children are valid next codes.

    Parameters
    ----------
    codes : array-like of shape (n_items, n_levels)
    max_depth : int, optional
        Deepest level kept (default: all levels).

    Returns
    -------
    trie : dict
        ``{"count": n_items, "children": {"<code>": {"count": ..., "children": {...}}, ...}}``;
        nodes at the last kept level have no ``children``. Keys are the codes
        as strings (JSON object keys), in increasing code order.
        ``json.dumps(trie)`` gives the JSON file.

    Examples
    --------
    >>> prefix_trie([[0, 1], [0, 1], [2, 0]])  # doctest: +NORMALIZE_WHITESPACE
    {'count': 3, 'children': {'0': {'count': 2, 'children': {'1': {'count': 2}}},
                              '2': {'count': 1, 'children': {'0': {'count': 1}}}}}
    """
    codes, _ = validate_codes(codes)
    n, n_levels = codes.shape
    depth = n_levels if max_depth is None else min(check_int("max_depth", max_depth, low=1), n_levels)
    _, _, _, perm = sorted_rows(codes[:, :depth], order=True)
    sorted_codes = codes[perm, :depth]
    run_starts = prefix_runs(sorted_codes, depth)
    root = {"count": int(n)}
    parents, parent_starts = [root], np.zeros(1, dtype=np.int64)
    for d in range(depth):
        starts = run_starts[d]
        sizes = np.diff(np.append(starts, n))
        owner = np.searchsorted(parent_starts, starts, side="right") - 1
        nodes = []
        for s, size, p in zip(starts.tolist(), sizes.tolist(), owner.tolist()):
            node = {"count": int(size)}
            parents[p].setdefault("children", {})[str(int(sorted_codes[s, d]))] = node
            nodes.append(node)
        parents, parent_starts = nodes, starts
    return root


def prefix_trie_json(codes, *, max_depth=None):
    """:func:`prefix_trie` as compact JSON bytes, for a download."""
    import json

    return json.dumps(prefix_trie(codes, max_depth=max_depth), separators=(",", ":")).encode("utf-8")
