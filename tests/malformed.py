"""A corpus of malformed and well-formed embedding files, built in code.

``malformed_cases()`` returns files that the loaders must refuse with a
:class:`~vqcore.exceptions.DataError` (from ``load_embeddings`` or, for files
whose only fault is NaN / infinity, from ``finalize``). ``valid_cases()``
returns well-formed files of every format with the array they hold.

Nothing here is a binary fixture: every byte is generated, so the corpus is
reviewable and reproducible. Some cases are hostile on purpose:

* ``npy_pickle_trap`` / ``npz_pickle_trap`` hold a pickle whose ``__reduce__``
  would create ``marker_path`` if it were ever unpickled;
* ``npz_zip_bomb`` holds a member of 256 MiB of zeros that compresses to a few
  hundred KiB (above the default 200 MiB cap once decompressed).
"""

from __future__ import annotations

import functools
import io
import os
import pickle
import struct
import tempfile
import zipfile
import zlib
from typing import NamedTuple

import numpy as np

#: Uncompressed size of the zip-bomb member (above vqcore.io.DEFAULT_MAX_BYTES).
ZIP_BOMB_BYTES = 256 * 2**20
#: vqcore.io's defaults, restated (this module does not import vqcore).
DEFAULT_MAX_ELEMENTS = 200 * 2**20 // 4
MAX_CSV_COLUMNS = 16_384

DEFAULT_MARKER = os.path.join(tempfile.gettempdir(), "vqlens_pickle_marker_never_created")


class MalformedCase(NamedTuple):
    name: str
    data: bytes
    filename: str


class ValidCase(NamedTuple):
    name: str
    data: bytes
    filename: str
    expected: np.ndarray  # float32 (n, d)
    labels: list | None = None
    kwargs: dict = {}


class PickleTrap:
    """Unpickling this object calls ``open(path, "w")``, creating ``path``."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


# ---------------------------------------------------------------------------
# builders
# ---------------------------------------------------------------------------


def npy_bytes(arr, **kwargs):
    buf = io.BytesIO()
    np.save(buf, arr, **kwargs)
    return buf.getvalue()


def npy_raw(header: str, data: bytes = b"", version=(1, 0)) -> bytes:
    """An .npy file with a hand-written header dict (no validation at all)."""
    text = header.encode("latin1")
    size_len = 2 if version[0] == 1 else 4
    pre = len(b"\x93NUMPY") + 2 + size_len
    pad = (-(pre + len(text) + 1)) % 64
    text = text + b" " * pad + b"\n"
    return b"\x93NUMPY" + bytes(version) + len(text).to_bytes(size_len, "little") + text + data


def zip_bytes(members, compression=zipfile.ZIP_STORED):
    """A zip archive of (name, bytes) members."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, content in members:
            zf.writestr(name, content)
    return buf.getvalue()


def npz_bytes(compressed=False, **arrays):
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def parquet_bytes(table, **kwargs):
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, **kwargs)
    return buf.getvalue()


def vecs_bytes(arr, dims=None, item="<f4"):
    """texmex vecs bytes; ``dims`` overrides each record's declared dimension."""
    arr = np.asarray(arr)
    out = []
    for i, row in enumerate(arr):
        d = len(row) if dims is None else dims[i]
        out.append(struct.pack("<i", d) + np.asarray(row, dtype=item).tobytes())
    return b"".join(out)


@functools.lru_cache(maxsize=1)
def zip_bomb() -> bytes:
    """An .npz whose single member is a valid .npy of 256 MiB of zeros, deflated.

    Built by streaming through zlib, so building it never holds the 256 MiB.
    """
    rows = ZIP_BOMB_BYTES // (64 * 4)
    header = npy_raw(f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, 64), }}")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("X.npy", "w", force_zip64=True) as member:
            member.write(header)
            zeros = bytes(4 * 2**20)
            for _ in range(ZIP_BOMB_BYTES // len(zeros)):
                member.write(zeros)
    return buf.getvalue()


def lying_zip_member() -> bytes:
    """A member that declares a tiny uncompressed size but inflates to 8 MiB.

    The .npy header inside is consistent with the declared size, so only the
    zip's own bounds (read no more than declared) and CRC check catch it.
    """
    header = npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 4), }")
    content = header + bytes(8 * 2**20)
    data = bytearray(zip_bytes([("X.npy", content)], compression=zipfile.ZIP_DEFLATED))
    small = len(header) + 64
    # local header: uncompressed size at offset 22; central directory: at offset 24
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, small)
    struct.pack_into("<I", data, central + 24, small)
    return bytes(data)


@functools.lru_cache(maxsize=1)
def many_short_rows_npz() -> bytes:
    """An .npz of 52 million one-byte rows (issue 16): 51 KB compressed, ~2 GB of work to load."""
    return npz_bytes(compressed=True, X=np.zeros((DEFAULT_MAX_ELEMENTS, 1), np.uint8))


@functools.lru_cache(maxsize=2)
def dictionary_bomb_parquet(list_column=True) -> bytes:
    """A dictionary-encoded, zstd parquet file of ones that decodes to 381 MiB of float64 (issue 16).

    ``list_column``: 5,000 lists of 10,000 values (1.8 KB on disk); else one scalar column of
    50 million values. Written in row groups, so building it never holds the whole column.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows, d = (500, 10_000) if list_column else (5_000_000, 1)
    flat = pa.array(np.ones(rows * d))
    col = pa.ListArray.from_arrays(pa.array(np.arange(0, rows * d + 1, d, dtype=np.int32)), flat) if list_column else flat
    table = pa.table({"emb": col})
    buf = io.BytesIO()
    with pq.ParquetWriter(buf, table.schema, compression="zstd", use_dictionary=True) as writer:
        for _ in range(10):
            writer.write_table(table)
    return buf.getvalue()


def _bzip2_member() -> bytes:
    return zip_bytes([("X.npy", npy_bytes(np.ones((4, 3), np.float32)))], compression=zipfile.ZIP_BZIP2)


def _flip_in_stored_member(data: bytes) -> bytes:
    """Corrupt one data byte of a stored member (the CRC no longer matches)."""
    out = bytearray(data)
    out[len(out) // 3] ^= 0xFF
    return bytes(out)


# ---------------------------------------------------------------------------
# the corpus
# ---------------------------------------------------------------------------


def malformed_cases(marker_path: str = DEFAULT_MARKER) -> list[MalformedCase]:
    """Files every loader must refuse with DataError (load_embeddings, then finalize)."""
    return list(_malformed_cases(os.fspath(marker_path)))


@functools.lru_cache(maxsize=4)
def _malformed_cases(marker_path):
    import pyarrow as pa

    rng = np.random.default_rng(0)
    good = rng.standard_normal((6, 4)).astype(np.float32)
    good_npy = npy_bytes(good)
    hdr = "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}"
    trap_npy = npy_bytes(np.array([PickleTrap(marker_path)], dtype=object), allow_pickle=True)
    garbage = rng.integers(0, 256, 500, dtype=np.uint8).tobytes()
    good_pq = parquet_bytes(pa.table({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]}))

    cases = [
        # --- .npy -----------------------------------------------------------
        ("npy_empty_file", b"", "x.npy"),
        ("npy_truncated_data", good_npy[:-10], "x.npy"),
        ("npy_truncated_header", good_npy[:40], "x.npy"),
        ("npy_magic_only", b"\x93NUM", "x.npy"),
        ("npy_wrong_magic", b"\x93NUMPZ" + good_npy[6:], "x.npy"),
        ("npy_trailing_bytes", good_npy + b"\x00" * 16, "x.npy"),
        ("npy_unknown_version", good_npy[:6] + b"\x09\x00" + good_npy[8:], "x.npy"),
        ("npy_header_len_huge", b"\x93NUMPY\x02\x00" + (2**31).to_bytes(4, "little") + b"{", "x.npy"),
        ("npy_object_pickled", npy_bytes(np.array([{"a": 1}, [1, 2]], dtype=object), allow_pickle=True), "x.npy"),
        ("npy_pickle_trap", trap_npy, "x.npy"),
        ("npy_raw_pickle", pickle.dumps(PickleTrap(marker_path)), "x.npy"),
        ("npy_header_code", npy_raw("__import__('os').system('true')"), "x.npy"),
        ("npy_header_not_dict", npy_raw("[1, 2, 3]"), "x.npy"),
        ("npy_header_extra_key", npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1), 'x': 1}", b"\0" * 4), "x.npy"),
        ("npy_huge_shape", npy_raw(hdr.format("<f4", (10**12, 128)), b"\0" * 64), "x.npy"),
        ("npy_huge_shape_overflow", npy_raw(hdr.format("<f8", (2**62, 2**62)), b"\0" * 64), "x.npy"),
        ("npy_negative_shape", npy_raw(hdr.format("<f4", (-1, 4)), b"\0" * 64), "x.npy"),
        ("npy_shape_not_ints", npy_raw(hdr.format("<f4", "(2.5, 4)"), b"\0" * 40), "x.npy"),
        ("npy_unknown_dtype", npy_raw(hdr.format("<q9", (2, 2)), b"\0" * 64), "x.npy"),
        ("npy_structured", npy_bytes(np.zeros(4, dtype=[("a", "<f4"), ("b", "<i4")])), "x.npy"),
        ("npy_structured_2d", npy_bytes(np.zeros((3, 2), dtype=[("a", "<f4"), ("b", "<i4")])), "x.npy"),
        ("npy_subarray_dtype", npy_raw(hdr.format("('<f4', (3,))", (2, 2)).replace("'('<f4', (3,))'", "('<f4', (3,))"), b"\0" * 48), "x.npy"),
        ("npy_complex", npy_bytes(np.ones((3, 2), np.complex64)), "x.npy"),
        ("npy_unicode", npy_bytes(np.array([["a", "b"], ["c", "d"]])), "x.npy"),
        ("npy_bytes_dtype", npy_bytes(np.array([[b"a", b"b"]])), "x.npy"),
        ("npy_datetime", npy_bytes(np.zeros((2, 2), dtype="datetime64[s]")), "x.npy"),
        ("npy_void", npy_raw(hdr.format("|V8", (2, 2)), b"\0" * 32), "x.npy"),
        ("npy_3d", npy_bytes(np.zeros((2, 3, 4), np.float32)), "x.npy"),
        ("npy_1d", npy_bytes(np.arange(5, dtype=np.float32)), "x.npy"),
        ("npy_0d", npy_bytes(np.float32(3.0)), "x.npy"),
        ("npy_zero_rows", npy_bytes(np.zeros((0, 4), np.float32)), "x.npy"),
        ("npy_zero_cols", npy_bytes(np.zeros((4, 0), np.float32)), "x.npy"),
        ("npy_nan_rows", npy_bytes(np.array([[1, np.nan], [2, 3], [np.inf, 0]], np.float32)), "x.npy"),
        ("npy_float64_overflow", npy_bytes(np.array([[1e300, 1.0], [2.0, 3.0]])), "x.npy"),
        # --- .npz -----------------------------------------------------------
        ("npz_zip_bomb", zip_bomb(), "x.npz"),
        ("npz_lying_size", lying_zip_member(), "x.npz"),
        ("npz_member_huge_shape", zip_bytes([("X.npy", npy_raw(hdr.format("<f4", (10**9, 64)), b"\0" * 64))]), "x.npz"),
        ("npz_no_arrays", zip_bytes([("readme.txt", b"hello")]), "x.npz"),
        ("npz_empty_zip", zip_bytes([]), "x.npz"),
        ("npz_only_object", npz_bytes(a=np.array([{"x": 1}], dtype=object), b=np.array(["s", 1], dtype=object)), "x.npz"),
        ("npz_pickle_trap", zip_bytes([("X.npy", trap_npy)]), "x.npz"),
        ("npz_not_a_zip", garbage, "x.npz"),
        ("npz_truncated", npz_bytes(compressed=True, X=good)[:-30], "x.npz"),
        ("npz_only_1d", npz_bytes(a=np.arange(4.0), b=np.arange(3)), "x.npz"),
        ("npz_bzip2_member", _bzip2_member(), "x.npz"),
        ("npz_bad_crc", _flip_in_stored_member(npz_bytes(X=rng.standard_normal((64, 8)))), "x.npz"),
        ("npz_member_not_npy", zip_bytes([("X.npy", b"this is not an npy file")]), "x.npz"),
        ("npz_too_many_members", zip_bytes([(f"m{i}.npy", b"") for i in range(2000)]), "x.npz"),
        ("npz_zero_cols_member", npz_bytes(X=np.zeros((3, 0), np.float32)), "x.npz"),
        # issue 16: small files whose load would take gigabytes
        ("npz_many_short_rows", many_short_rows_npz(), "x.npz"),
        ("npy_many_short_rows", npy_raw(hdr.format("|u1", (50_000_000, 1)), b"\0" * 64), "x.npy"),
        ("npz_many_two_value_rows", zip_bytes([("X.npy", npy_raw(hdr.format("<f2", (25_000_000, 2)), b"\0" * 64))]), "x.npz"),
        # --- .csv / .tsv ----------------------------------------------------
        ("csv_empty", b"", "x.csv"),
        ("csv_blank_lines", b"\n\n\r\n\n", "x.csv"),
        ("csv_header_only", b"a,b,c\n", "x.csv"),
        ("csv_only_strings", b"name,colour\nann,red\nbob,blue\n", "x.csv"),
        ("csv_mostly_text", b"a\nx\ny\n1\n", "x.csv"),
        # issue 16: width and row length bounded before pandas sees the file
        ("csv_million_columns", (",".join(["1"] * 1_000_000) + "\n").encode() * 2, "x.csv"),
        ("csv_one_column_too_many", (",".join(["1"] * (MAX_CSV_COLUMNS + 1)) + "\n").encode() * 2, "x.csv"),
        ("tsv_million_columns", ("\t".join(["1"] * 1_000_000) + "\n").encode() * 2, "x.tsv"),
        ("csv_single_line_50mb", b"1" * (50 * 2**20), "x.csv"),
        ("csv_long_second_line", b"1,2\n" + b"3" * (5 * 2**20) + b",4\n", "x.csv"),
        ("csv_unclosed_quote_long", b'a,b\n"' + b"x" * (5 * 2**20) + b"\n1,2\n", "x.csv"),
        ("csv_semicolons_mixed_decimal_marks", b"1,5;2.5\n3,5;4.5\n", "x.csv"),
        ("tsv_mixed_decimal_marks", b"1,5\t2.5\n3,5\t4.5\n", "x.tsv"),
        ("csv_ragged_short", b"1,2,3\n4,5,6\n7,8\n", "x.csv"),
        ("csv_ragged_long", b"1,2,3\n4,5,6,7\n", "x.csv"),
        ("csv_ragged_quoted", b'"a,b",1\n"c",2,3\n', "x.csv"),
        ("csv_binary_garbage", garbage + b"\x00", "x.csv"),
        ("csv_not_utf8", b"a,b\n\xff\xfe,1\n\xe9,2\n", "x.csv"),
        ("csv_nan_inf", b"a,b\n1,2\nnan,3\n4,inf\n-inf,5\n", "x.csv"),
        ("csv_all_empty_cells", b"a,b\n,\n,\n", "x.csv"),
        ("csv_values_overflow", b"a,b\n1e300,1\n2,3\n", "x.csv"),
        ("csv_unclosed_quote", b'a,b\n1,"2\n3,4\n', "x.csv"),
        ("tsv_only_strings", b"a\tb\nx\ty\n", "x.tsv"),
        ("tsv_ragged", b"1\t2\n3\n", "x.tsv"),
        # --- .parquet -------------------------------------------------------
        ("parquet_garbage", b"PAR1" + garbage + b"PAR1", "x.parquet"),
        ("parquet_not_parquet", garbage, "x.parquet"),
        ("parquet_truncated", good_pq[: len(good_pq) // 2], "x.parquet"),
        ("parquet_footer_cut", good_pq[:-12] + b"PAR1", "x.parquet"),
        ("parquet_ragged_list", parquet_bytes(pa.table({"emb": [[1.0, 2.0], [3.0], [4.0, 5.0], [6.0, 7.0, 8.0]]})), "x.parquet"),
        ("parquet_no_numeric", parquet_bytes(pa.table({"text": ["a", "b"], "more": ["c", "d"]})), "x.parquet"),
        ("parquet_zero_rows", parquet_bytes(pa.table({"a": pa.array([], pa.float32())})), "x.parquet"),
        ("parquet_all_null_lists", parquet_bytes(pa.table({"emb": pa.array([None, None], pa.list_(pa.float32()))})), "x.parquet"),
        ("parquet_empty_lists", parquet_bytes(pa.table({"emb": pa.array([[], []], pa.list_(pa.float32()))})), "x.parquet"),
        ("parquet_struct_only", parquet_bytes(pa.table({"s": [{"x": 1.0}, {"x": 2.0}]})), "x.parquet"),
        ("parquet_null_values", parquet_bytes(pa.table({"a": [1.0, None], "b": [2.0, 3.0]})), "x.parquet"),
        # issue 16: decoded size budgeted, duplicate names said
        ("parquet_dictionary_list_bomb", dictionary_bomb_parquet(True), "x.parquet"),
        ("parquet_dictionary_scalar_bomb", dictionary_bomb_parquet(False), "x.parquet"),
        ("parquet_only_duplicate_names",
         parquet_bytes(pa.Table.from_arrays([pa.array([1.0, 2.0]), pa.array([3.0, 4.0])], names=["a", "a"])), "x.parquet"),
        # --- .fvecs / .bvecs / .ivecs ---------------------------------------
        ("fvecs_empty", b"", "x.fvecs"),
        ("fvecs_3_bytes", b"\x04\x00\x00", "x.fvecs"),
        ("fvecs_ragged", vecs_bytes(good[:2]) + vecs_bytes(good[2:3, :3]) + vecs_bytes(good[3:]), "x.fvecs"),
        ("fvecs_ragged_same_size", vecs_bytes(good[:3]) + struct.pack("<i", 5) + good[3].tobytes() + vecs_bytes(good[4:]), "x.fvecs"),
        ("fvecs_negative_dim", vecs_bytes(good, dims=[-4] * 6), "x.fvecs"),
        ("fvecs_zero_dim", struct.pack("<i", 0) * 8, "x.fvecs"),
        ("fvecs_huge_dim", struct.pack("<i", 2**30) + good.tobytes(), "x.fvecs"),
        ("fvecs_size_mismatch", vecs_bytes(good) + b"\x01\x02", "x.fvecs"),
        ("fvecs_nan", vecs_bytes(np.array([[np.nan, 1.0], [2.0, 3.0]], np.float32)), "x.fvecs"),
        ("bvecs_truncated", vecs_bytes(np.arange(24).reshape(3, 8), item="u1")[:-5], "x.bvecs"),
        ("bvecs_fvecs_mixup", vecs_bytes(good), "x.bvecs"),
        ("ivecs_empty", b"", "x.ivecs"),
        ("ivecs_truncated", vecs_bytes(np.arange(12).reshape(3, 4), item="<i4")[:-1], "x.ivecs"),
        # --- names ----------------------------------------------------------
        ("unknown_extension", good_npy, "x.txt"),
        ("no_extension", good_npy, "embeddings"),
        ("gzipped_npy", zlib.compress(good_npy), "x.npy.gz"),
        ("pickle_extension", pickle.dumps(good), "x.pkl"),
    ]
    return tuple(MalformedCase(*c) for c in cases)


def valid_cases() -> list[ValidCase]:
    """Well-formed files of every format, with the float32 array each must load as."""
    return list(_valid_cases())


@functools.lru_cache(maxsize=1)
def _valid_cases():
    import pyarrow as pa

    rng = np.random.default_rng(1)
    # multiples of 1/64: exact in float32, float64 and short decimal text
    A = (rng.integers(-512, 512, (7, 5)) / 64).astype(np.float32)
    ints = rng.integers(0, 256, (5, 3))
    texts = ["alpha", "beta gamma", "None", "NA", "delta, epsilon", "zeta", "eta"]
    f = np.float32

    def csv_text(arr, header=None, sep=",", labels=None, label_first=True, newline="\n"):
        lines = [] if header is None else [sep.join(header)]
        for i, row in enumerate(arr):
            cells = [repr(float(v)) for v in row]
            if labels is not None:
                lab = labels[i]
                lab = f'"{lab}"' if sep in lab else lab
                cells = [lab] + cells if label_first else cells + [lab]
            lines.append(sep.join(cells))
        return (newline.join(lines) + newline).encode()

    v2 = io.BytesIO()
    np.lib.format.write_array(v2, A, version=(2, 0))
    v3 = io.BytesIO()
    np.lib.format.write_array(v3, A, version=(3, 0))

    cases = [
        # --- .npy
        ValidCase("npy_float32", npy_bytes(A), "x.npy", A),
        ValidCase("npy_upper_ext", npy_bytes(A), "EMB.NPY", A),
        ValidCase("npy_float64", npy_bytes(A.astype(np.float64)), "x.npy", A),
        ValidCase("npy_float16", npy_bytes(A.astype(np.float16)), "x.npy", A.astype(np.float16).astype(f)),
        ValidCase("npy_big_endian", npy_bytes(A.astype(">f4")), "x.npy", A),
        ValidCase("npy_fortran", npy_bytes(np.asfortranarray(A)), "x.npy", A),
        ValidCase("npy_int32", npy_bytes(ints.astype(np.int32)), "x.npy", ints.astype(f)),
        ValidCase("npy_uint8", npy_bytes(ints.astype(np.uint8)), "x.npy", ints.astype(f)),
        ValidCase("npy_int64", npy_bytes(ints.astype(np.int64) - 100), "x.npy", (ints - 100).astype(f)),
        ValidCase("npy_bool", npy_bytes(ints > 128), "x.npy", (ints > 128).astype(f)),
        ValidCase("npy_version_2", v2.getvalue(), "x.npy", A),
        ValidCase("npy_version_3", v3.getvalue(), "x.npy", A),
        ValidCase("npy_one_row", npy_bytes(A[:1]), "x.npy", A[:1]),
        ValidCase("npy_d1", npy_bytes(A[:, :1]), "x.npy", A[:, :1]),
        ValidCase("npy_constant", npy_bytes(np.ones((4, 3), f)), "x.npy", np.ones((4, 3), f)),
        ValidCase("npy_duplicates", npy_bytes(A[[0, 1, 0, 2, 1]]), "x.npy", A[[0, 1, 0, 2, 1]]),
        # --- .npz
        ValidCase("npz_single", npz_bytes(emb=A), "x.npz", A),
        ValidCase("npz_compressed", npz_bytes(compressed=True, emb=A), "x.npz", A),
        ValidCase("npz_largest_default", npz_bytes(small=A[:2], big=A, ids=np.arange(7)), "x.npz", A),
        ValidCase("npz_array_key", npz_bytes(small=A[:2], big=A), "x.npz", A[:2], kwargs={"array_key": "small"}),
        ValidCase("npz_array_key_suffix", npz_bytes(small=A[:2], big=A), "x.npz", A[:2], kwargs={"array_key": "small.npy"}),
        ValidCase("npz_object_ignored", npz_bytes(meta=np.array([{"a": 1}], dtype=object), X=A), "x.npz", A),
        ValidCase("npz_ints", npz_bytes(compressed=True, codes=ints.astype(np.uint16)), "x.npz", ints.astype(f)),
        # --- .csv / .tsv
        ValidCase("csv_header", csv_text(A, header=list("abcde")), "x.csv", A),
        ValidCase("csv_no_header", csv_text(A), "x.csv", A),
        ValidCase("csv_ints_no_header", csv_text(ints.astype(float)).replace(b".0", b""), "x.csv", ints.astype(f)),
        ValidCase("csv_labels_first", csv_text(A, header=["text"] + list("abcde"), labels=texts), "x.csv", A, texts),
        ValidCase("csv_labels_last_no_header", csv_text(A, labels=texts, label_first=False), "x.csv", A, texts),
        ValidCase("csv_crlf_bom", b"\xef\xbb\xbf" + csv_text(A, header=list("abcde"), newline="\r\n"), "x.CSV", A),
        ValidCase("csv_pandas_index", _pandas_csv(A, index=True), "x.csv", A),
        ValidCase("csv_pandas_default", _pandas_csv(A, index=False), "x.csv", A),
        ValidCase("csv_pandas_index_labels", b",text,a,b\n0,x,1,2\n1,y,3,4\n", "x.csv", np.array([[1, 2], [3, 4]], f),
                  ["x", "y"]),
        ValidCase("csv_partly_numeric", b"a,b\n1,2\n3,oops\n5,6\n7,8\n", "x.csv", np.array([[1, 2], [5, 6], [7, 8]], f)),
        ValidCase("csv_text_column_choice", b"id,name,x,y\nu1,ann,1,2\nu2,bob,3,4\n", "x.csv",
                  np.array([[1, 2], [3, 4]], f), ["ann", "bob"], {"text_column": "name"}),
        ValidCase("csv_trailing_comma", b"1,2,\n3,4,\n", "x.csv", np.array([[1, 2], [3, 4]], f)),
        ValidCase("csv_one_column", b"x\n1.5\n2.5\n", "x.csv", np.array([[1.5], [2.5]], f)),
        ValidCase("csv_one_row", b"1,2,3\n", "x.csv", np.array([[1, 2, 3]], f)),
        # issue 16: ';' separators and decimal commas, long labels, the widest CSV accepted
        ValidCase("csv_semicolons", b"1;2;3\n4;5;6\n", "x.csv", np.array([[1, 2, 3], [4, 5, 6]], f)),
        ValidCase("csv_semicolon_decimal_comma", b"-0,1234;1,2345;0,5678;-1,0000\n0,5;-2,25;3;1e-1\n", "x.csv",
                  np.array([[-0.1234, 1.2345, 0.5678, -1.0], [0.5, -2.25, 3.0, 0.1]], f)),
        ValidCase("csv_semicolon_decimal_comma_header_labels",
                  'name;a;b\n"Müller, J.";0,5;1,25\nplain;-3,0;4\n'.encode(), "x.csv",
                  np.array([[0.5, 1.25], [-3.0, 4.0]], f), ["Müller, J.", "plain"]),
        ValidCase("tsv_decimal_comma", b"0,5\t-1,75\n2\t3,5\n", "x.tsv", np.array([[0.5, -1.75], [2, 3.5]], f)),
        ValidCase("csv_long_quoted_label", ('label,a,b\n"' + "x" * 200_000 + '",1,2\nshort,3,4\n').encode(), "x.csv",
                  np.array([[1, 2], [3, 4]], f), ["x" * 200_000, "short"]),
        ValidCase("csv_quoted_label_with_line_breaks", b'label,a\n"one\ntwo",1\n"a ""q"", b",2\n', "x.csv",
                  np.array([[1], [2]], f), ["one\ntwo", 'a "q", b']),
        ValidCase("csv_widest_accepted", (",".join(["0.5"] * MAX_CSV_COLUMNS) + "\n").encode() * 2, "x.csv",
                  np.full((2, MAX_CSV_COLUMNS), 0.5, f)),
        ValidCase("tsv_header_labels", csv_text(A, header=["w"] + list("abcde"), sep="\t", labels=texts), "x.tsv", A, texts),
        # --- .parquet
        ValidCase("parquet_columns", parquet_bytes(pa.table({k: A[:, i] for i, k in enumerate("abcde")})), "x.parquet", A),
        ValidCase("parquet_float64_int_columns",
                  parquet_bytes(pa.table({"a": A[:, 0].astype(np.float64), "b": ints[:, 0].tolist() + [0, 0]})),
                  "x.parquet", np.stack([A[:, 0], np.r_[ints[:, 0], 0, 0]], 1).astype(f)),
        ValidCase("parquet_list_labels",
                  parquet_bytes(pa.table({"id": range(7), "emb": [list(r) for r in A], "text": texts}), row_group_size=3),
                  "x.parquet", A, texts),
        ValidCase("parquet_fixed_size_list",
                  parquet_bytes(pa.table({"emb": pa.FixedSizeListArray.from_arrays(pa.array(A.ravel()), 5)})),
                  "x.parquet", A),
        ValidCase("parquet_two_lists_key",
                  parquet_bytes(pa.table({"a": [list(r) for r in A], "b": [list(r[:2]) for r in A]})),
                  "x.parquet", A[:, :2], kwargs={"array_key": "b"}),
        ValidCase("parquet_int64_above_2_53", parquet_bytes(pa.table({"a": pa.array([2**60, -(2**55), 3]), "b": [1.0, 2.0, 3.0]})),
                  "x.parquet", np.array([[2.0**60, 1], [-(2.0**55), 2], [3, 3]], f)),
        ValidCase("parquet_duplicate_names_ignored",
                  parquet_bytes(pa.Table.from_arrays([pa.array([1.0, 2.0]), pa.array([3.0, 4.0]), pa.array(["p", "q"]),
                                                      pa.array(["r", "s"])], names=["x", "y", "note", "note"])),
                  "x.parquet", np.array([[1, 3], [2, 4]], f)),
        ValidCase("parquet_dictionary_labels",
                  parquet_bytes(pa.table({"x": A[:, 0], "y": A[:, 1], "label": pa.array(texts).dictionary_encode()})),
                  "x.parquet", A[:, :2], texts),
        # --- vecs
        ValidCase("fvecs", vecs_bytes(A), "x.fvecs", A),
        ValidCase("bvecs", vecs_bytes(ints, item="u1"), "x.bvecs", ints.astype(f)),
        ValidCase("ivecs", vecs_bytes(ints - 7, item="<i4"), "x.ivecs", (ints - 7).astype(f)),
        ValidCase("fvecs_one_record_d1", vecs_bytes(A[:1, :1]), "x.FVECS", A[:1, :1]),
    ]
    return tuple(cases)


def _pandas_csv(arr, index):
    import pandas as pd

    return pd.DataFrame(arr.astype(np.float64)).to_csv(index=index).encode()


# ---------------------------------------------------------------------------
# trained-model files (vqcore.load_quantizer): torch.save zips written by hand
# ---------------------------------------------------------------------------


def write_marker(path):
    """A custom callable a hostile checkpoint names: it creates ``path`` if ever called."""
    with open(path, "w") as f:
        f.write("ran")
    return {}


class _Op:
    """Pickle opcodes (protocol 2), enough to write what torch.save writes, by hand."""

    @staticmethod
    def str(s):
        b = s.encode()
        return b"X" + struct.pack("<I", len(b)) + b

    @staticmethod
    def int(v):
        if 0 <= v < 2**31:
            return b"J" + struct.pack("<i", v)
        raw = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
        return b"\x8a" + bytes([len(raw)]) + raw

    @staticmethod
    def tuple(items):
        return b"(" + b"".join(items) + b"t"

    @staticmethod
    def glob(module, name):
        return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def torch_tensor_pickle(key, shape, stride=None, offset=0, numel=None, storage="FloatStorage"):
    """The pickle expression torch.save writes for one tensor (``_rebuild_tensor_v2``)."""
    if stride is None:
        stride, acc = [], 1
        for s in reversed(shape):
            stride.insert(0, acc)
            acc *= s
    if numel is None:
        numel = int(np.prod(shape, dtype=object)) if shape else 1
    pid = _Op.tuple([_Op.str("storage"), _Op.glob("torch", storage), _Op.str(key), _Op.str("cpu"), _Op.int(numel)])
    args = _Op.tuple([
        pid + b"Q",  # BINPERSID
        _Op.int(offset),
        _Op.tuple([_Op.int(s) for s in shape]),
        _Op.tuple([_Op.int(s) for s in stride]),
        b"\x89",  # False
        _Op.glob("collections", "OrderedDict") + b")R",  # OrderedDict()
    ])
    return _Op.glob("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def torch_zip(entries, storages, *, archive="archive", byteorder=b"little", extra=()):
    """A torch.save-style zip: ``entries`` (name, pickle expression) in a dict; ``storages`` key -> bytes."""
    body = b"".join(_Op.str(name) + expr for name, expr in entries)
    pkl = b"\x80\x02}(" + body + b"u."
    members = [(f"{archive}/data.pkl", pkl), (f"{archive}/byteorder", byteorder), (f"{archive}/version", b"3\n")]
    members += [(f"{archive}/data/{k}", v) for k, v in storages.items()]
    return zip_bytes(members + list(extra))


def torch_state_dict(tensors, **kwargs):
    """A torch.save zip of a flat state dict of float32 arrays."""
    entries, storages = [], {}
    for i, (name, arr) in enumerate(tensors.items()):
        arr = np.ascontiguousarray(arr, dtype="<f4")
        entries.append((name, torch_tensor_pickle(str(i), list(arr.shape))))
        storages[str(i)] = arr.tobytes()
    return torch_zip(entries, storages, **kwargs)


def _trap_pickle(module, name, arg):
    return _Op.glob(module, name) + _Op.tuple([_Op.str(arg)]) + b"R"


@functools.lru_cache(maxsize=4)
def _model_cases(marker_path):
    rng = np.random.default_rng(3)
    C = rng.standard_normal((2, 8, 4)).astype(np.float32)
    good = {f"layers.{m}._codebook.embed": C[m][None] for m in range(2)}
    good_pt = torch_state_dict(good)
    embed = torch_tensor_pickle("0", [1, 8, 4])
    store = {"0": C[0].tobytes()}
    touch = f"open({marker_path!r}, 'w').close()"
    nan = C.copy()
    nan[1, 3, 2] = np.nan
    # a BUILD right after the storage's persistent id, raising its element count
    build_on_storage = torch_tensor_pickle("0", [8, 4]).replace(
        b"Q", b"Q}" + _Op.str("numel") + _Op.int(10**6) + b"sb", 1)

    def st_bytes(arrays):
        from safetensors.numpy import save

        return save({k: np.ascontiguousarray(v) for k, v in arrays.items()})

    cases = [
        # hostile pickles: each would create marker_path if anything it names were called
        ("pt_os_system", torch_zip([("x", _trap_pickle("os", "system", f"touch {marker_path}"))], {}), "m.pt"),
        ("pt_posix_system", torch_zip([("x", _trap_pickle("posix", "system", f"touch {marker_path}"))], {}), "m.pt"),
        ("pt_builtins_exec", torch_zip([("x", _trap_pickle("builtins", "exec", touch))], {}), "m.pt"),
        ("pt_builtins_eval", torch_zip([("x", _trap_pickle("builtins", "eval", touch))], {}), "m.pth"),
        ("pt_custom_callable", torch_zip([("x", _trap_pickle("tests.malformed", "write_marker", marker_path))], {}),
         "m.pt"),
        ("pt_trap_beside_weights", torch_zip([("layers.0._codebook.embed", embed),
                                              ("hook", _trap_pickle("tests.malformed", "write_marker", marker_path))],
                                             store), "m.ckpt"),
        ("pt_trap_as_storage_type", torch_zip([("w", torch_tensor_pickle("0", [1, 8, 4], storage="system"))], store),
         "m.pt"),
        # BUILD on a checked tensor, to make it view memory past its storage
        ("pt_build_changes_tensor_shape", torch_zip([("codebook.weight", torch_tensor_pickle("0", [8, 4]) + b"}"
                                                      + _Op.str("shape") + _Op.tuple([_Op.int(10**5), _Op.int(4)])
                                                      + b"sb")], {"0": C[0].tobytes()}), "m.pt"),
        ("pt_build_on_storage", torch_zip([("codebook.weight", build_on_storage)], {"0": C[0].tobytes()}), "m.pt"),
        # BUILD with a slot state that would swap a record's class
        ("pt_build_swaps_class", torch_zip([("args", _Op.glob("argparse", "Namespace") + b")\x81" + b"N}"
                                             + _Op.str("__class__") + _Op.glob("collections", "OrderedDict")
                                             + b"s\x86b")], {}), "m.pt"),
        ("pt_plain_pickle_trap", pickle.dumps(PickleTrap(marker_path)), "m.pt"),
        # malformed archives and tensors
        ("pt_truncated", good_pt[: len(good_pt) // 2], "m.pt"),
        ("pt_empty", b"", "m.pt"),
        ("pt_garbage", rng.integers(0, 256, 300, dtype=np.uint8).tobytes(), "m.pt"),
        ("pt_legacy_format", b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little") + b".", "m.pt"),
        ("pt_no_data_pkl", zip_bytes([("archive/data/0", C.tobytes())]), "m.pt"),
        ("pt_torchscript", zip_bytes([("archive/constants.pkl", b"\x80\x02]."), ("archive/code/m.py", b"")]), "m.pt"),
        ("pt_shape_exceeds_storage", torch_zip([("layers.0._codebook.embed",
                                                 torch_tensor_pickle("0", [1, 8, 4], numel=16))],
                                               {"0": C[0].tobytes()[:64]}), "m.pt"),
        ("pt_stride_exceeds_storage", torch_zip([("layers.0._codebook.embed",
                                                  torch_tensor_pickle("0", [1, 8, 4], stride=[32, 8, 1]))], store),
         "m.pt"),
        ("pt_offset_past_storage", torch_zip([("layers.0._codebook.embed",
                                               torch_tensor_pickle("0", [1, 8, 4], offset=8))], store), "m.pt"),
        ("pt_huge_shape", torch_zip([("layers.0._codebook.embed", torch_tensor_pickle("0", [1, 10**12, 4], numel=32))],
                                    store), "m.pt"),
        ("pt_huge_storage", torch_zip([("layers.0._codebook.embed",
                                        torch_tensor_pickle("0", [10**6, 10**6], numel=10**12))], store), "m.pt"),
        ("pt_missing_storage", torch_zip([("layers.0._codebook.embed", embed)], {}), "m.pt"),
        ("pt_storage_wrong_size", torch_zip([("layers.0._codebook.embed", embed)], {"0": C[0].tobytes() + b"\0" * 8}),
         "m.pt"),
        ("pt_bad_byteorder", torch_state_dict(good, byteorder=b"middle"), "m.pt"),
        ("pt_nan_codebook", torch_state_dict({f"layers.{m}._codebook.embed": nan[m][None] for m in range(2)}), "m.pt"),
        ("pt_untrained_codebook", torch_state_dict({"_codebook.embed": np.zeros((1, 8, 4), np.float32)}), "m.pt"),
        ("pt_sizes_differ", torch_state_dict({"layers.0._codebook.embed": C[0][None],
                                              "layers.1._codebook.embed": C[1][None, :4]}), "m.pt"),
        ("pt_unknown_layout", torch_state_dict({"encoder.0.weight": C[0], "decoder.0.weight": C[1]}), "m.pt"),
        ("pt_no_tensors", torch_zip([("epoch", _Op.int(3))], {}), "m.pt"),
        # safetensors / numpy
        ("safetensors_truncated", st_bytes(good)[:-20], "m.safetensors"),
        ("safetensors_garbage", b"\xff" * 64, "m.safetensors"),
        ("safetensors_header_huge", (2**40).to_bytes(8, "little") + b"{}", "m.safetensors"),
        ("safetensors_nan", st_bytes({f"layers.{m}._codebook.embed": nan[m][None] for m in range(2)}), "m.safetensors"),
        ("npz_object_codebooks", npz_bytes(codebooks=np.array([PickleTrap(marker_path)], dtype=object)), "m.npz"),
        ("npz_nan_codebooks", npz_bytes(codebooks=nan), "m.npz"),
        ("npy_huge_codebook_shape",
         npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000, 4), }", b"\0" * 64), "m.npy"),
        ("npy_1d_codebook", npy_bytes(np.arange(8, dtype=np.float32)), "m.npy"),
        ("model_wrong_extension", good_pt, "m.onnx"),
    ]
    return tuple(MalformedCase(*c) for c in cases)


def malformed_model_cases(marker_path: str = DEFAULT_MARKER) -> list[MalformedCase]:
    """Model files ``vqcore.load_quantizer`` must refuse with DataError, never creating ``marker_path``."""
    return list(_model_cases(os.fspath(marker_path)))
