"""The ``.parquet`` reader, checked from its metadata before decoding."""

from __future__ import annotations

import io

import numpy as np

from ..exceptions import DataError
from .limits import MAX_LISTED, MAX_PARQUET_ROW_GROUPS, check_caps, finish, id_array, listing, mb, row_columns, short

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
            f"{what} decodes to {mb(n_bytes)} (its values at their stored width), above the limit of "
            f"{mb(caps.max_bytes)} (max_bytes), though the file is only {mb(file_size)}. Upload a sample "
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


def load_parquet(data, filename, caps, *, array_key=None, text_column=None, **_):
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
        raise DataError(f"{what} is not a readable parquet file: {short(exc)}. Re-export it.") from None
    kinds = _parquet_column_kinds(schema)
    notes = []
    shared = sorted({n for n in schema.names if schema.names.count(n) > 1})
    if shared:  # a name that several columns share cannot be read by name
        kinds = {k: [c for c in v if c not in shared] for k, v in kinds.items()}
        notes.append(
            f"Ignored the columns named {listing(map(repr, shared))}: several columns share each name, so "
            "they cannot be told apart. Rename them to use them."
        )
    scalar, lists, texts = kinds["scalar"], kinds["list"], kinds["text"]
    # item ids: the first integer (then text) column named like ids, unless it is the label column
    rc = row_columns(scalar + texts, texts, text_column,
                     id_ok=lambda c: c in texts or pa.types.is_integer(schema.field(c).type))
    id_col = rc.ids
    if id_col is not None:
        scalar, texts = [c for c in scalar if c != id_col], [c for c in texts if c != id_col]
        if caps.codes:  # (for embeddings, finish says which column holds the ids)
            notes.append(f"Set aside column {id_col!r}: item ids, not a level of the codes.")
    n_rows = meta.num_rows
    if n_rows > caps.max_elements:
        raise DataError(
            f"{what} has {n_rows:,} rows, above the limit of {caps.max_elements:,} values (max_elements). "
            "Upload a sample of the rows."
        )
    if n_rows == 0:
        raise DataError(f"{what} has 0 rows. It needs at least one vector.")
    if meta.num_row_groups > MAX_PARQUET_ROW_GROUPS:
        raise DataError(
            f"{what} has {meta.num_row_groups:,} row groups (limit {MAX_PARQUET_ROW_GROUPS:,}); "
            "rewrite it with larger row groups."
        )

    # which column gives the labels
    label_col = rc.labels
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
                f"its columns are {listing(map(repr, schema.names))}."
            )
        if label_col not in texts and label_col not in scalar:
            raise DataError(
                f"text_column={text_column!r} in {what} holds neither text nor numbers "
                f"(type {schema.field(label_col).type})."
            )
        notes.append(f"Using the text in column {label_col!r} as labels.")
    elif label_col is not None:
        notes.append(f"Using the text in column {label_col!r} as labels.")
    elif rc.other_texts:
        notes.append(
            f"Ignored text columns {listing(map(repr, rc.other_texts))}; choose one with text_column to use it "
            "as labels."
        )

    # which column(s) give the vectors: a list column if there is one, else the scalar columns
    if array_key is not None:
        if array_key not in lists:
            raise DataError(
                f"array_key={array_key!r} is not a list column of numbers in {what}"
                + (f"; the list columns are {listing(map(repr, lists))}." if lists else "; it has none.")
            )
        vec_col = array_key
    elif lists:
        vec_col = lists[0]
        if len(lists) > 1:
            notes.append(
                f"Loaded list column {vec_col!r}; choose another with array_key ({listing(map(repr, lists[1:]))})."
            )
    else:
        vec_col = None
    if vec_col is not None:
        value_cols = [vec_col]
        ignored = [c for c in scalar if c != label_col]
        if ignored:
            notes.append(f"Ignored scalar column(s) {listing(map(repr, ignored))}; the vectors come from {vec_col!r}.")
    else:
        value_cols = [c for c in scalar if c != label_col]
        if not value_cols:
            found = ", ".join(f"{f.name!r} ({f.type})" for f in list(schema)[:MAX_LISTED]) or "no columns"
            dup = f" Several columns share the names {listing(map(repr, shared))}; rename them." if shared else ""
            raise DataError(
                f"{what} has no usable numeric columns and no list column of numbers (found {found}).{dup} "
                "Store one column per dimension, or one column holding each vector as a list of floats."
            )
    if kinds["other"]:
        notes.append(f"Ignored column(s) of other types: {listing(map(repr, kinds['other']))}.")

    keep_ids = id_col is not None and not caps.codes
    wanted = set(value_cols) | ({label_col} if label_col else set()) | ({id_col} if keep_ids else set())
    _parquet_check_metadata(meta, wanted, value_cols, caps, what, len(data))
    try:
        # labels are read dictionary-encoded, so a repeated long string is not copied per row
        pf = pq.ParquetFile(io.BytesIO(data), read_dictionary=[label_col] if label_col in texts else None)
        table = pf.read(columns=sorted(wanted, key=schema.names.index))
    except Exception as exc:
        raise DataError(f"{what} could not be read: {short(exc)}. The file is corrupt; re-export it.") from None
    if table.num_rows != n_rows:
        raise DataError(f"{what} declares {n_rows} rows but holds {table.num_rows}; the file is corrupt.")

    if vec_col is not None:
        arr = _stack_list_column(table.column(vec_col).combine_chunks(), vec_col, caps, what, notes)
        source = f"{filename}[{vec_col!r}]"
        value_type = str(schema.field(vec_col).type.value_type)
        if value_type != "float":
            notes.append(f"Converted values of type {value_type} to float32.")
    else:
        check_caps((n_rows, len(value_cols)), 4, caps, what)
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
    labels = ids = None
    if label_col is not None:
        labels = _column_to_strings(table.column(label_col).combine_chunks())
    if keep_ids:
        col = table.column(id_col).combine_chunks()
        if pa.types.is_integer(col.type) and col.null_count == 0:
            ids = col.cast(pa.int64(), safe=False).to_numpy(zero_copy_only=False)
        else:
            ids = id_array(_column_to_strings(col) if not pa.types.is_integer(col.type) else col.to_pylist())
    return finish(arr, source=source, notes=notes, labels=labels, array_keys=lists, caps=caps, from_text=True,
                  ids=ids, id_name=id_col if keep_ids else None)


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
        check_caps((n, d), 4, caps, what)
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
            shown = ", ".join(f"row {i} has {lengths[i]}" for i in differ[:MAX_LISTED])
            more = f" (and {differ.size - MAX_LISTED} more)" if differ.size > MAX_LISTED else ""
            raise DataError(
                f"Column {name!r} of {what} holds lists of different lengths: most rows have {d} values, "
                f"but {shown}{more}. Every vector must have the same length."
            )
        if d == 0:
            raise DataError(f"Column {name!r} of {what} holds only empty lists.")
        check_caps((n, d), 4, caps, what)
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
