"""The ``.csv`` and ``.tsv`` readers: scan, sniff, decide the header, parse."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np

from ..exceptions import DataError
from .limits import (
    CSV_SAMPLE_ROWS,
    NA_TOKENS,
    check_caps,
    finish,
    id_array,
    listing,
    mb,
    row_columns,
    short,
    short_repr,
)

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
                f"{what}: row {number} is {'' if ended else 'more than '}{mb(stop - begin)} long, above the limit of "
                f"{mb(MAX_CSV_ROW_BYTES)} for one row. An embedding file has one vector per line; check "
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
    lines = [ln for ln in head.splitlines()[:CSV_SAMPLE_ROWS + 1] if ln.strip()]
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
    missing = s.str.lower().isin(NA_TOKENS).to_numpy() | na
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
    sample = body.iloc[:CSV_SAMPLE_ROWS]
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
        raise DataError(f"{what} could not be parsed: {short(exc)}. Check for ragged rows or stray quotes.") from None


def load_csv(data, filename, caps, *, text_column=None, sep=",", **_):
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
    sample = _read_body(body, what, nrows=CSV_SAMPLE_ROWS, **read_kw)
    has_header = _decide_header(row0, sample, decimal, notes)
    if has_header and len(sample) < CSV_SAMPLE_ROWS:
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
        notes.append(f"Dropped empty {listing(label_of(j) for j in empty)} (no values).")
    # item ids: a column named like ids holding whole numbers or text; never the label column
    def could_be_ids(j):  # (only a header names ids; fractions make a dimension that is called ..._id)
        if not has_header or j in empty:
            return False
        vals = numeric.get(j)
        return vals is None or j in partial or bool(np.isfinite(vals).all() and (vals == np.round(vals)).all())

    rc = row_columns(list(df.columns), text, text_column, id_ok=could_be_ids, name=names.__getitem__)
    id_col, label_col = rc.ids, rc.labels
    if id_col is not None:  # item ids, neither a dimension nor the labels
        numeric.pop(id_col, None)
        partial.pop(id_col, None)
        text = [j for j in text if j != id_col]
        if caps.codes:
            notes.append(f"Set aside {label_of(id_col)}: item ids, not a level of the codes.")

    if text_column is not None:
        if label_col is None:
            raise DataError(
                f"text_column={text_column!r} is not a column of {what}; it has "
                f"{listing(label_of(j) for j in df.columns)}."
            )
        notes.append(f"Using the text in {label_of(label_col)} as labels.")
        numeric.pop(label_col, None)
        partial.pop(label_col, None)
        text = rc.other_texts
        if text:
            notes.append(f"Ignored text {listing(label_of(j) for j in text)}.")
    elif label_col is not None:
        notes.append(f"Using the text in {label_of(label_col)} as labels.")
    elif text:
        notes.append(
            f"Ignored {len(text)} text columns ({listing(label_of(j) for j in text)}); "
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
                    f"{short_repr(example, 30)} (first in data row {int(np.flatnonzero(failed)[0])}, "
                    "counting from 0); codes "
                    "should be integers >= 0. Fix those cells, or name the column with text_column if it "
                    "holds labels."
                )
            notes.append(
                f"Dropped {int(failed.sum())} row(s) with non-numeric values in {label_of(j)} "
                f"(e.g. {short_repr(example, 30)})."
            )
            keep &= ~failed
    if not keep.any():
        raise DataError(f"{what}: every row has a non-numeric value in a numeric column; nothing is left.")
    check_caps((int(keep.sum()), len(cols)), 4, caps, what)
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
    ids = None
    if id_col is not None and not caps.codes:
        ids = id_array(df[id_col].astype(object).to_numpy()[keep])
    return finish(arr, source=filename, notes=notes, labels=labels, caps=caps, from_text=True, ids=ids,
                  id_name=None if ids is None else names[id_col])


def load_tsv(data, filename, caps, **kw):
    return load_csv(data, filename, caps, sep="\t", **kw)
