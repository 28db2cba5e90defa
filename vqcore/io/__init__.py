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

:func:`load_embeddings` returns a :class:`LoadedData`, with the data's id column when it has one
(a CSV / parquet column or an npz array named like ids, :func:`is_id_name`); rows holding NaN or
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

from .codes import CODES_EXTENSIONS, MAX_CODE_LEVELS, LoadedCodes, load_codes
from .csv import MAX_CSV_COLUMNS, MAX_CSV_ROW_BYTES
from .limits import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ELEMENTS,
    LOAD_MEMORY_FACTOR,
    SUPPORTED_EXTENSIONS,
    LoadedData,
    is_id_name,
    load_memory,
)
from .loader import finalize, list_npz_arrays, load_embeddings
from .vecs import read_bvecs, read_fvecs, read_ivecs

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_ELEMENTS",
    "LOAD_MEMORY_FACTOR",
    "MAX_CSV_COLUMNS",
    "MAX_CSV_ROW_BYTES",
    "load_memory",
    "SUPPORTED_EXTENSIONS",
    "LoadedData",
    "is_id_name",
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

