"""Lazy, chunked views of embedding catalogues too big to hold in memory.

:func:`open_dataset` opens a ``.npy`` file (memory-mapped), a ``.fvecs`` /
``.bvecs`` file (memory-mapped), one parquet file or a folder of parquet
shards, and reads nothing but headers and footers: the dataset knows ``n``
and ``d`` at once. The rows are then read in chunks of bounded size, each
with its global row offset, and converted to float32 one chunk at a time
(float16, uint8 and other numeric inputs are never converted as a whole)::

    ds = open_dataset("shards/")
    X_train = ds.sample(100_000, random_state=0)[1]
    for offset, X in ds.chunks(65_536):
        ...

A chunk is described by a small picklable :class:`Chunk` (offset, rows and
where they live), so the same chunks can be read in this process or by Dask
workers (:mod:`vqcore.pipeline`) and give the same numbers.

Parquet layouts: one column holding each vector (list, large list or
fixed-size list of numbers), or one numeric column per dimension. A column
named ``id`` (or ending in ``_id``) is kept as the item id, and a single text
column as the item text, when present.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._validation import check_data, check_int, check_random_state
from .exceptions import DataError
from .io import is_id_name

__all__ = ["Chunk", "LazyDataset", "open_dataset", "DEFAULT_CHUNK_ROWS", "DATASET_EXTENSIONS"]

#: Rows per chunk unless the caller says otherwise (32 MiB of float32 at d=128).
DEFAULT_CHUNK_ROWS = 65_536
_READ_BUFFER = 4 * 2**20  # bytes per buffered read of a parquet column chunk
DATASET_EXTENSIONS = (".npy", ".fvecs", ".bvecs", ".parquet")
_MAX_DIM = 1_000_000  # as vqcore.io's vecs reader: beyond this a "dimension" is a corrupt header
_MAX_CHUNK_VALUES = 2**28  # 1 GiB of float32 in one chunk at most
_MAX_SHARDS = 100_000


@dataclass(frozen=True)
class Chunk:
    """Rows ``offset .. offset + rows - 1`` of a dataset, and where they are stored.

    ``part`` is the index of the file (parquet shard) holding them, ``start``
    the first row within that file's row group ``group`` (``-1`` for
    array files, where ``start`` is the row within the file).
    """

    offset: int
    rows: int
    part: int = 0
    group: int = -1
    start: int = 0


class LazyDataset:
    """A dataset of ``n`` vectors of dimension ``d`` read in chunks; see :func:`open_dataset`.

    Attributes
    ----------
    path : str
    n, d : int
    dtype : numpy dtype of the stored values (converted to float32 per chunk)
    id_column, text_column : str or None
        The parquet columns kept as item ids and texts.
    source : str
        What was opened, for a person.
    """

    path = ""
    n = 0
    d = 0
    dtype = np.dtype(np.float32)
    id_column = None
    text_column = None
    source = ""

    # ------------------------------------------------------------- chunks
    def chunk_list(self, chunk_rows=DEFAULT_CHUNK_ROWS):
        """Every chunk of at most ``chunk_rows`` rows, in row order (a list of :class:`Chunk`)."""
        chunk_rows = _check_chunk_rows(chunk_rows, self.d)
        return [Chunk(a, min(self.n, a + chunk_rows) - a, 0, -1, a) for a in range(0, self.n, chunk_rows)]

    def read(self, chunk):
        """The rows of ``chunk`` as a C-contiguous float32 array, checked finite."""
        raise NotImplementedError

    def read_ids(self, chunk):
        """The item ids of ``chunk`` (an array), or None when the data has no id column."""
        return None

    def read_texts(self, chunk):
        """The item texts of ``chunk`` (a list of str), or None when the data has no text column."""
        return None

    def take_texts(self, rows, max_chars=None):
        """The item texts of the given rows (sorted, distinct global row numbers; a list of str, ``""``
        for a missing text), or None when the data has no text column. Each text is cut to its first
        ``max_chars`` characters when that is given."""
        return None

    def take_ids(self, rows):
        """The item ids of the given rows (sorted, distinct global row numbers; an array), or None when
        the data has no id column."""
        return None

    def chunks(self, chunk_rows=DEFAULT_CHUNK_ROWS):
        """Yield ``(offset, X)`` for consecutive row chunks; X float32 of at most chunk_rows rows."""
        for c in self.chunk_list(chunk_rows):
            yield c.offset, self.read(c)

    # ------------------------------------------------------------- samples
    def take(self, rows):
        """The given rows (sorted, distinct global row numbers) as float32."""
        raise NotImplementedError

    def sample(self, n_rows, random_state=None):
        """A uniform random sample of rows without replacement, reproducible by ``random_state``.

        Returns
        -------
        rows : ndarray of int64, sorted
        X : ndarray of shape (len(rows), d), float32
        """
        rows = self.sample_rows(n_rows, random_state)
        return rows, self.take(rows)

    def sample_rows(self, n_rows, random_state=None):
        """The row numbers :meth:`sample` draws (sorted int64): all rows when n_rows >= n."""
        n_rows = check_int("n_rows", n_rows, low=1)
        if n_rows >= self.n:
            return np.arange(self.n, dtype=np.int64)
        rng = check_random_state(random_state)
        return np.sort(rng.choice(self.n, n_rows, replace=False)).astype(np.int64)

    def _finish(self, arr, offset, rows=None):
        """float32, C-contiguous, finite; errors name the global row (``offset + i``, or
        ``rows[i]`` for a selection of rows)."""
        arr = np.asarray(arr)
        if arr.dtype.kind not in "biuf":
            raise DataError(f"{self.source} holds values of type {arr.dtype}; vectors must be numbers.")
        out = np.ascontiguousarray(arr, dtype=np.float32)
        bad = ~np.isfinite(out).all(axis=1)
        if bad.any():
            where = np.flatnonzero(bad)
            first = offset + int(where[0]) if rows is None else int(rows[where[0]])
            raise DataError(
                f"{self.source}: row {first:,} holds NaN, infinity or a null vector "
                f"({where.size} such row(s) among the {out.shape[0]:,} read with it). "
                "Drop or repair those rows first."
            )
        return out

    def __repr__(self):
        return f"<{type(self).__name__} {self.source}: n={self.n:,}, d={self.d}, {self.dtype}>"


def _check_chunk_rows(chunk_rows, d):
    chunk_rows = check_int("chunk_rows", chunk_rows, low=1)
    if chunk_rows * d > _MAX_CHUNK_VALUES:
        raise DataError(
            f"chunk_rows={chunk_rows:,} at d={d} would hold {chunk_rows * d:,} values in one chunk, "
            f"above {_MAX_CHUNK_VALUES:,}; use chunk_rows <= {_MAX_CHUNK_VALUES // d:,}."
        )
    return chunk_rows


# ---------------------------------------------------------------------------
# array files: .npy, .fvecs, .bvecs (memory-mapped)
# ---------------------------------------------------------------------------


class ArrayDataset(LazyDataset):
    """Rows of a 2-D numeric array (a memory map or an in-memory array)."""

    def __init__(self, array, *, source="array", path=""):
        if array.ndim != 2:
            raise DataError(f"{source} should be 2-D of shape (n, d), got shape {array.shape}.")
        if array.dtype.kind not in "biuf":
            raise DataError(f"{source} has dtype {array.dtype}; vectors must be numbers.")
        self._array = array
        self.n, self.d = (int(s) for s in array.shape)
        self.dtype = array.dtype
        self.source = source
        self.path = path
        if self.n < 1 or self.d < 1:
            raise DataError(f"{source} has shape {array.shape}; it needs at least one row and one column.")
        if self.d > _MAX_DIM:
            raise DataError(f"{source} has d={self.d:,} columns, above {_MAX_DIM:,}.")

    def _rows(self, a, b):
        return self._array[a:b]

    def read(self, chunk):
        return self._finish(self._rows(chunk.start, chunk.start + chunk.rows), chunk.offset)

    def take(self, rows):
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((rows.size, self.d), dtype=np.float32)
        step = max(1, DEFAULT_CHUNK_ROWS)
        for a in range(0, rows.size, step):
            out[a:a + step] = self._finish(self._array[rows[a:a + step]], 0, rows[a:a + step])
        return out

    def __getstate__(self):
        # a memory map travels as its path (Dask workers map the file themselves)
        state = dict(self.__dict__)
        if self.path:
            state["_array"] = None
            state.pop("_dims", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self._array is None:
            self._array = _reopen(self)


class _VecsDataset(ArrayDataset):
    """texmex .fvecs / .bvecs: per record an int32 dimension, then d values."""

    def __init__(self, path, item):
        self.path, self._item = path, np.dtype(item)
        self._array, self._dims = _map_vecs(path, self._item)
        super().__init__(self._array, source=repr(os.path.basename(path)), path=path)

    def read(self, chunk):
        a, b = chunk.start, chunk.start + chunk.rows
        dims = self._dims[a:b]
        wrong = np.flatnonzero(dims != self.d)
        if wrong.size:
            i = a + int(wrong[0])
            raise DataError(
                f"{self.source} has records of different dimensions: record 0 has d={self.d} but record "
                f"{i:,} has d={int(self._dims[i])}. Every vector must have the same dimension."
            )
        return super().read(chunk)


def _map_vecs(path, item):
    what = repr(os.path.basename(path))
    size = os.path.getsize(path)
    if size < 4:
        raise DataError(f"{what} is {size} bytes, less than one record header (4 bytes).")
    d = int(np.fromfile(path, dtype="<i4", count=1)[0])
    if not 0 < d <= _MAX_DIM:
        raise DataError(
            f"{what} starts with dimension {d}; it must be in 1..{_MAX_DIM:,}. The file is corrupt or "
            "not in the texmex vecs format (int32 dimension, then the values, per record)."
        )
    record = 4 + d * item.itemsize
    if size % record:
        raise DataError(
            f"{what} has {size:,} bytes, not a whole number of records of {record} bytes (4 + {d} x "
            f"{item.itemsize}) for d={d}: it is truncated or corrupt."
        )
    rec = np.memmap(path, dtype=np.dtype([("d", "<i4"), ("v", item, (d,))]), mode="r")
    return rec["v"], rec["d"]


def _open_npy(path):
    what = repr(os.path.basename(path))
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY":
        raise DataError(f"{what} is not a .npy file (it does not start with numpy's header); save the array "
                        "with numpy.save.")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:  # object arrays (pickles) are refused by allow_pickle=False
        raise DataError(f"{what} could not be memory-mapped: {exc}. Save a plain numeric array.") from None
    except Exception as exc:
        raise DataError(f"{what} is not a readable .npy file: {exc}.") from None
    if not isinstance(arr, np.memmap) and arr.size:
        raise DataError(f"{what} could not be memory-mapped; save it with numpy.save.")
    return ArrayDataset(arr, source=what, path=path)


def _reopen(ds):
    if isinstance(ds, _VecsDataset):
        array, ds._dims = _map_vecs(ds.path, ds._item)
        return array
    return np.load(ds.path, mmap_mode="r", allow_pickle=False)


# ---------------------------------------------------------------------------
# parquet: one file or a folder of shards
# ---------------------------------------------------------------------------


def _is_id_name(name):
    return is_id_name(name)  # one rule for the catalogue and the upload loaders (vqcore.io)


class ParquetDataset(LazyDataset):
    """One parquet file or the ``*.parquet`` files of a folder (shards, in name order).

    Parameters
    ----------
    path : str
    vector_column : str, optional
        The list column holding the vectors; default the only (or first) one.
        Without any list column, every numeric column but the id column is a dimension.
    id_column, text_column : str, optional
        Default: a column named ``id`` / ``*_id``, and the only text column.
    """

    def __init__(self, path, *, vector_column=None, id_column=None, text_column=None):
        import pyarrow.parquet as pq

        self.path = path
        p = Path(path)
        # shards by name, any case of the suffix (the data folder lists them so too)
        files = sorted(str(f) for f in p.iterdir() if f.suffix.lower() == ".parquet" and f.is_file()) \
            if p.is_dir() else [str(p)]
        if not files:
            raise DataError(f"{path!r} holds no .parquet files.")
        if len(files) > _MAX_SHARDS:
            raise DataError(f"{path!r} holds {len(files):,} parquet files, above {_MAX_SHARDS:,}.")
        self.files = files
        self.source = repr(os.path.basename(os.path.normpath(path))) + (
            f" ({len(files)} shards)" if len(files) > 1 else "")
        metas = []
        for f in files:
            try:
                metas.append(pq.ParquetFile(f).metadata)
            except Exception as exc:
                raise DataError(f"{os.path.basename(f)!r} is not a readable parquet file: {exc}.") from None
        schema = metas[0].schema.to_arrow_schema()
        self._layout(schema, vector_column, id_column, text_column)
        for f, m in zip(files[1:], metas[1:]):
            other = m.schema.to_arrow_schema()
            for c in self._columns(ids=True):
                if c not in other.names or other.field(c).type != schema.field(c).type:
                    raise DataError(
                        f"shard {os.path.basename(f)!r} differs from {os.path.basename(files[0])!r} in column "
                        f"{c!r}; every shard needs the same columns and types."
                    )
        # row groups of every shard, with their global offsets
        self._groups = []  # (part, group, offset, rows)
        offset = 0
        for part, m in enumerate(metas):
            for g in range(m.num_row_groups):
                rows = m.row_group(g).num_rows
                if rows:
                    self._groups.append((part, g, offset, rows))
                offset += rows
        self.n = offset
        self._group_rows = {(part, g): rows for part, g, _, rows in self._groups}
        if self.n == 0:
            raise DataError(f"{self.source} has 0 rows.")
        if self.vector_column is not None and self.d is None:
            self.d = self._list_dim(metas)
        if not 0 < self.d <= _MAX_DIM:
            raise DataError(f"{self.source} has vectors of dimension {self.d}; it must be in 1..{_MAX_DIM:,}.")

    def _layout(self, schema, vector_column, id_column, text_column):
        import pyarrow as pa

        t = pa.types
        num = lambda typ: t.is_integer(typ) or t.is_floating(typ)  # noqa: E731
        text = lambda typ: t.is_string(typ) or t.is_large_string(typ)  # noqa: E731
        lists = [f.name for f in schema
                 if (t.is_list(f.type) or t.is_large_list(f.type) or t.is_fixed_size_list(f.type))
                 and num(f.type.value_type)]
        for name, value in (("vector_column", vector_column), ("id_column", id_column),
                            ("text_column", text_column)):
            if value is not None and value not in schema.names:
                raise DataError(f"{name}={value!r} is not a column of {self.source}; "
                                f"its columns are {schema.names[:8]}.")
        if id_column is None:
            id_column = next((f.name for f in schema if _is_id_name(f.name)
                              and (t.is_integer(f.type) or text(f.type))), None)
        if text_column is None:
            texts = [f.name for f in schema if text(f.type) and f.name != id_column]
            text_column = texts[0] if len(texts) == 1 else None
        self.id_column, self.text_column = id_column, text_column
        if vector_column is not None:
            if vector_column not in lists:
                raise DataError(f"vector_column={vector_column!r} is not a list column of numbers.")
            lists = [vector_column]
        if lists:
            self.vector_column, self.dim_columns = lists[0], None
            typ = schema.field(lists[0]).type
            self.dtype = np.dtype(typ.value_type.to_pandas_dtype())
            self.d = typ.list_size if t.is_fixed_size_list(typ) else None
        else:
            self.vector_column = None
            self.dim_columns = [f.name for f in schema if num(f.type) and f.name != id_column]
            if not self.dim_columns:
                raise DataError(
                    f"{self.source} has no list column of numbers and no numeric columns; store one column "
                    "holding each vector as a list of floats, or one column per dimension."
                )
            self.d = len(self.dim_columns)
            self.dtype = np.result_type(*[schema.field(c).type.to_pandas_dtype() for c in self.dim_columns])

    def _list_dim(self, metas):
        """d of a variable-length list column from the footers: leaf values / rows of a row group."""
        for m in metas:
            names = [m.schema.column(j).path for j in range(m.num_columns)]
            j = next(j for j, p in enumerate(names) if p.split(".")[0] == self.vector_column)
            for g in range(m.num_row_groups):
                rg = m.row_group(g)
                if rg.num_rows:
                    vals = rg.column(j).num_values
                    if vals % rg.num_rows == 0 and vals:
                        return vals // rg.num_rows
                    raise DataError(
                        f"column {self.vector_column!r} of {self.source} holds {vals:,} values in "
                        f"{rg.num_rows:,} rows: the vectors do not all have the same length."
                    )
        raise DataError(f"{self.source} has 0 rows.")

    def _columns(self, ids=False):
        cols = [self.vector_column] if self.vector_column else list(self.dim_columns)
        if ids:
            cols += [c for c in (self.id_column, self.text_column) if c]
        return cols

    def chunk_list(self, chunk_rows=DEFAULT_CHUNK_ROWS):
        chunk_rows = _check_chunk_rows(chunk_rows, self.d)
        out = []
        for part, g, offset, rows in self._groups:
            for a in range(0, rows, chunk_rows):
                out.append(Chunk(offset + a, min(rows, a + chunk_rows) - a, part, g, a))
        return out

    def _table(self, chunk, columns):
        """The columns of the chunk's rows.

        A row group is decoded in batches of the chunk's size by a cursor that is
        kept between calls: chunks read in row order (as the pipeline reads them)
        decode each row group once; a chunk behind the cursor starts a new one.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        key = (chunk.part, chunk.group, tuple(columns))
        cursors = self.__dict__.setdefault("_cursors", {})
        st = cursors.get(key)
        if st is None or st["pos"] > chunk.start:
            # buffered reads of the column chunk instead of the whole chunk read (pre-buffered)
            # at once: a fourth less arrow memory held per row group, the same rows
            pf = pq.ParquetFile(self.files[chunk.part], buffer_size=_READ_BUFFER, pre_buffer=False)
            it = pf.iter_batches(batch_size=chunk.rows, row_groups=[chunk.group], columns=list(columns))
            st = {"it": it, "pos": 0, "buf": None}
            if len(cursors) >= 2:  # one for the vectors, one for the ids or texts
                cursors.pop(next(iter(cursors)))
            cursors[key] = st
        stop = chunk.start + chunk.rows
        pieces = []
        while st["pos"] < stop:
            if st["buf"] is None:
                st["buf"] = next(st["it"], None)
                if st["buf"] is None:
                    cursors.pop(key, None)
                    raise DataError(f"{os.path.basename(self.files[chunk.part])!r} is shorter than its footer "
                                    "says; the file is corrupt.")
            batch, a = st["buf"], st["pos"]
            b = a + batch.num_rows
            if b <= chunk.start:
                st["pos"], st["buf"] = b, None
                continue
            lo, hi = max(chunk.start, a) - a, min(stop, b) - a
            pieces.append(batch.slice(lo, hi - lo))
            st["pos"], st["buf"] = (a + hi, batch.slice(hi)) if b > stop else (b, None)
        if st["pos"] >= self._group_rows[chunk.part, chunk.group]:
            cursors.pop(key, None)  # the row group is done: free its reader's buffers
        return pa.Table.from_batches(pieces)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_cursors", None)  # open readers stay in their process
        return state

    def read(self, chunk):
        table = self._table(chunk, self._columns())
        return self._finish(self._vectors(table, chunk), chunk.offset)

    def _vectors(self, table, chunk):
        import pyarrow as pa

        if self.vector_column is None:
            return np.column_stack([table.column(c).to_numpy() for c in self.dim_columns])
        col = table.column(self.vector_column).combine_chunks()
        if col.null_count:
            i = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataError(f"{self.source}: row {chunk.offset + i:,} has no vector (null); drop it first.")
        if pa.types.is_fixed_size_list(col.type):
            values = col.values.slice(col.offset * self.d, len(col) * self.d)
        else:
            lengths = col.value_lengths().to_numpy()
            bad = np.flatnonzero(lengths != self.d)
            if bad.size:
                i = int(bad[0])
                raise DataError(
                    f"{self.source}: row {chunk.offset + i:,} has a vector of {int(lengths[i])} values, not "
                    f"d={self.d}. Every vector must have the same length."
                )
            values = col.flatten()
        if values.null_count:
            raise DataError(f"{self.source}: rows {chunk.offset:,}-{chunk.offset + chunk.rows - 1:,} hold null "
                            "values inside vectors; repair them first.")
        return values.to_numpy(zero_copy_only=False).reshape(len(col), self.d)

    def read_ids(self, chunk):
        if self.id_column is None:
            return None
        return self._table(chunk, [self.id_column]).column(self.id_column).to_numpy()

    def read_texts(self, chunk):
        if self.text_column is None:
            return None
        return ["" if v is None else str(v)
                for v in self._table(chunk, [self.text_column]).column(self.text_column).to_pylist()]

    def _take_column(self, rows, column):
        """The values of ``column`` at the given rows (sorted, distinct global row numbers), as pyarrow
        arrays, one per chunk that holds some of them: only that column is read, a chunk at a time, and
        the other rows' values are never kept."""
        import pyarrow as pa

        rows = np.asarray(rows, dtype=np.int64)
        for c in self.chunk_list(DEFAULT_CHUNK_ROWS):
            a, b = np.searchsorted(rows, [c.offset, c.offset + c.rows])
            if a < b:
                yield self._table(c, [column]).column(column).take(pa.array(rows[a:b] - c.offset))

    def take_texts(self, rows, max_chars=None):
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.text_column is None:
            return None
        out = []
        for col in self._take_column(rows, self.text_column):
            if max_chars is not None and (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
                col = pc.utf8_slice_codeunits(col, 0, int(max_chars))
            out += ["" if v is None else str(v) for v in col.to_pylist()]
        return out

    def take_ids(self, rows):
        if self.id_column is None:
            return None
        parts = [col.to_numpy(zero_copy_only=False) for col in self._take_column(rows, self.id_column)]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def take(self, rows):
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((rows.size, self.d), dtype=np.float32)
        for c in self.chunk_list(DEFAULT_CHUNK_ROWS):
            a, b = np.searchsorted(rows, [c.offset, c.offset + c.rows])
            if a < b:
                X = self._vectors(self._table(c, self._columns()), c)
                out[a:b] = self._finish(X[rows[a:b] - c.offset], c.offset, rows[a:b])
        return out


def open_dataset(path, *, vector_column=None, id_column=None, text_column=None):
    """Open a catalogue of embeddings lazily: nothing but headers and footers is read.

    Parameters
    ----------
    path : str or path-like
        A ``.npy`` file (memory-mapped; any numeric dtype), a ``.fvecs`` or
        ``.bvecs`` file (memory-mapped), a ``.parquet`` file, or a folder of
        ``.parquet`` shards (read in file-name order as one table).
    vector_column, id_column, text_column : str, optional
        Parquet only; see :class:`ParquetDataset`.

    Returns
    -------
    dataset : LazyDataset
        ``n`` and ``d`` known; ``chunks(chunk_rows)`` yields ``(offset, X)``;
        ``sample(n_rows, random_state)`` draws a reproducible training sample.

    Examples
    --------
    >>> import tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> np.save(f, np.arange(12, dtype=np.float16).reshape(6, 2))
    >>> ds = open_dataset(f)
    >>> ds.n, ds.d, [(o, X.dtype.name, len(X)) for o, X in ds.chunks(4)]
    (6, 2, [(0, 'float32', 4), (4, 'float32', 2)])
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"{path!r} does not exist.")
    if os.path.isdir(path):
        return ParquetDataset(path, vector_column=vector_column, id_column=id_column, text_column=text_column)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        return _open_npy(path)
    if ext in (".fvecs", ".bvecs"):
        return _VecsDataset(path, "<f4" if ext == ".fvecs" else "u1")
    if ext == ".parquet":
        return ParquetDataset(path, vector_column=vector_column, id_column=id_column, text_column=text_column)
    raise DataError(
        f"{os.path.basename(path)!r} has the extension {ext or '(none)'!r}; open_dataset reads "
        f"{', '.join(DATASET_EXTENSIONS)} files or a folder of .parquet shards."
    )


def as_dataset(X):
    """An in-memory array as a dataset (validated as vqcore data, not copied when float32)."""
    return ArrayDataset(check_data(X), source="X")
