"""Tests of vqcore.io, the loaders for uploaded (untrusted) embedding files.

What must hold:
- every well-formed file loads to exactly the array it holds, as float32 (n, d);
- every malformed file ends in a DataError with a message (never another exception);
- pickles are never loaded (a booby-trapped pickle never fires);
- caps are checked from headers, before anything big is allocated (zip bombs);
- random bytes and random damage to valid files give a clean array or a DataError.
"""

import io
import os
import pickle
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vqcore.exceptions import DataError, VQLensError
from vqcore.io import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ELEMENTS,
    SUPPORTED_EXTENSIONS,
    LoadedData,
    finalize,
    list_npz_arrays,
    load_codes,
    load_embeddings,
    read_bvecs,
    read_fvecs,
    read_ivecs,
)
from vqcore.io.limits import row_columns

try:
    from malformed import (
        ZIP_BOMB_BYTES,
        PickleTrap,
        lying_zip_member,
        malformed_cases,
        npy_bytes,
        npy_raw,
        npz_bytes,
        parquet_bytes,
        valid_cases,
        vecs_bytes,
        zip_bomb,
    )
except ImportError:  # tests/ imported as a package
    from tests.malformed import (
        ZIP_BOMB_BYTES,
        PickleTrap,
        lying_zip_member,
        malformed_cases,
        npy_bytes,
        npy_raw,
        npz_bytes,
        parquet_bytes,
        valid_cases,
        vecs_bytes,
        zip_bomb,
    )

BENCH_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "bench", "data")
VALID = valid_cases()
MALFORMED_NAMES = [c.name for c in malformed_cases()]
PICKLE_CASES = [n for n in MALFORMED_NAMES if "pickle" in n]
# Fuzzing is moderate and deterministic by default; for a deep random run:
#   VQLENS_FUZZ_EXAMPLES=2000 python -m pytest tests/test_io.py -k fuzz
FUZZ_EXAMPLES = int(os.environ.get("VQLENS_FUZZ_EXAMPLES", "30"))
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
    derandomize="VQLENS_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@pytest.fixture(scope="module")
def marker(tmp_path_factory):
    """Where the pickle trap would write if it were ever unpickled."""
    return str(tmp_path_factory.mktemp("pickle") / "trap_fired")


@pytest.fixture(scope="module")
def corpus(marker):
    return {c.name: c for c in malformed_cases(marker)}


def load_and_finalize(case, **kwargs):
    return finalize(load_embeddings(case.data, case.filename, **kwargs))


def peak_allocation(fn):
    """Peak bytes allocated (as seen by tracemalloc: Python and numpy) while fn runs."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ---------------------------------------------------------------------------
# the corpus
# ---------------------------------------------------------------------------


def test_corpus_covers_every_format():
    assert len(MALFORMED_NAMES) >= 30
    assert len(set(MALFORMED_NAMES)) == len(MALFORMED_NAMES)
    valid_exts = {os.path.splitext(c.filename)[1].lower() for c in VALID}
    bad_exts = {os.path.splitext(c.filename)[1].lower() for c in malformed_cases()}
    assert valid_exts == set(SUPPORTED_EXTENSIONS)
    assert set(SUPPORTED_EXTENSIONS) <= bad_exts


@pytest.mark.parametrize("case", VALID, ids=[c.name for c in VALID])
def test_valid_file_round_trips_exactly(case):
    loaded = load_embeddings(case.data, case.filename, **case.kwargs)
    assert isinstance(loaded, LoadedData)
    assert loaded.X.dtype == np.float32 and loaded.X.flags["C_CONTIGUOUS"] and loaded.X.flags["WRITEABLE"]
    np.testing.assert_array_equal(loaded.X, case.expected, strict=True)
    assert loaded.labels == case.labels
    assert loaded.nonfinite_rows == 0
    assert all(isinstance(n, str) and n for n in loaded.notes)
    np.testing.assert_array_equal(finalize(loaded), case.expected)


@pytest.mark.parametrize("name", MALFORMED_NAMES)
def test_malformed_file_raises_data_error(name, corpus):
    case = corpus[name]
    with pytest.raises(DataError) as info:  # any other exception type fails the test
        load_and_finalize(case)
    message = str(info.value)
    assert message.strip()
    assert "Traceback" not in message


@pytest.mark.parametrize("name", PICKLE_CASES)
def test_pickle_trap_never_fires(name, corpus, marker):
    with pytest.raises(DataError):
        load_and_finalize(corpus[name])
    if name.startswith("npz"):
        list_npz_arrays(corpus[name].data)
    assert not os.path.exists(marker)


def test_pickle_trap_is_armed(tmp_path):
    """The trap is real: numpy's own loader, allowed to unpickle, does create the file."""
    control = tmp_path / "control"
    case = {c.name: c for c in malformed_cases(str(control))}["npy_pickle_trap"]
    fired = np.load(io.BytesIO(case.data), allow_pickle=True)  # the array holds the opened file
    fired[0].close()
    assert control.exists()
    control.unlink()
    pickle.loads(pickle.dumps(PickleTrap(str(control)))).close()
    assert control.exists()


def test_no_marker_after_whole_corpus(corpus, marker):
    for case in corpus.values():
        with pytest.raises(DataError):
            load_and_finalize(case)
    assert not os.path.exists(marker)


# ---------------------------------------------------------------------------
# caps: checked from headers, before allocating
# ---------------------------------------------------------------------------


def test_zip_bomb_refused_from_declared_size_without_decompressing():
    bomb = zip_bomb()
    assert len(bomb) < 2**20 < DEFAULT_MAX_BYTES < ZIP_BOMB_BYTES
    errors = []

    def attempt():
        try:
            load_embeddings(bomb, "bomb.npz")
        except DataError as exc:
            errors.append(str(exc))

    peak = peak_allocation(attempt)
    assert errors and "not decompressed" in errors[0] and "max_bytes" in errors[0]
    assert peak < 8 * 2**20  # the member is 256 MiB once inflated


def test_zip_bomb_listed_from_header_only():
    listing = []
    peak = peak_allocation(lambda: listing.extend(list_npz_arrays(zip_bomb())))
    assert listing == [("X", (ZIP_BOMB_BYTES // 256, 64), np.dtype("<f4"))]
    assert peak < 8 * 2**20


def test_member_lying_about_its_size_is_never_inflated():
    data = lying_zip_member()
    errors = []

    def attempt():
        try:
            load_embeddings(data, "liar.npz")
        except DataError as exc:
            errors.append(str(exc))

    peak = peak_allocation(attempt)
    assert errors and "CRC" in errors[0]
    assert peak < 4 * 2**20  # the member inflates to 8 MiB


def test_npy_header_claiming_huge_shape_refused_before_reading(corpus):
    peak = peak_allocation(lambda: pytest.raises(DataError, load_embeddings, corpus["npy_huge_shape"].data, "x.npy"))
    assert peak < 2**20
    with pytest.raises(DataError, match="max_elements"):
        load_embeddings(corpus["npy_huge_shape"].data, "x.npy")


def _wide(n=300, d=8):
    return np.arange(n * d, dtype=np.float32).reshape(n, d) / 8


@pytest.mark.parametrize(
    "filename, build",
    [
        ("x.npy", lambda A: npy_bytes(A)),
        ("x.npz", lambda A: npz_bytes(compressed=True, X=A)),
        ("x.csv", lambda A: "\n".join(",".join(repr(float(v)) for v in r) for r in A).encode()),
        ("x.tsv", lambda A: "\n".join("\t".join(repr(float(v)) for v in r) for r in A).encode()),
        ("x.parquet", lambda A: _parquet_columns(A)),
        ("x.parquet", lambda A: _parquet_list(A)),
        ("x.fvecs", lambda A: vecs_bytes(A)),
        ("x.bvecs", lambda A: vecs_bytes(A.astype(np.uint8), item="u1")),
        ("x.ivecs", lambda A: vecs_bytes(A.astype(np.int32), item="<i4")),
    ],
    ids=["npy", "npz", "csv", "tsv", "parquet-columns", "parquet-list", "fvecs", "bvecs", "ivecs"],
)
def test_element_and_byte_caps(filename, build):
    A = _wide()
    data = build(A)
    assert load_embeddings(data, filename).X.shape == A.shape
    assert load_embeddings(data, filename, max_elements=A.size).X.shape == A.shape
    with pytest.raises(DataError, match="max_elements"):
        load_embeddings(data, filename, max_elements=A.size // 2)
    with pytest.raises(DataError, match="max_bytes"):
        load_embeddings(data, filename, max_bytes=len(data) - 1)


def _parquet_columns(A):
    import pyarrow as pa

    return parquet_bytes(pa.table({f"c{j}": A[:, j] for j in range(A.shape[1])}))


def _parquet_list(A):
    import pyarrow as pa

    return parquet_bytes(pa.table({"emb": [list(r) for r in A]}))


def test_npz_member_uncompressed_cap():
    A = _wide(2000, 16)
    data = npz_bytes(compressed=True, X=A)
    assert len(data) < A.nbytes / 2
    with pytest.raises(DataError, match="not decompressed"):
        load_embeddings(data, "x.npz", max_bytes=A.nbytes // 2)


def test_default_caps_are_consistent():
    assert DEFAULT_MAX_BYTES == 200 * 2**20
    assert DEFAULT_MAX_ELEMENTS * 4 == DEFAULT_MAX_BYTES


# ---------------------------------------------------------------------------
# non-finite rows: kept, counted, refused or dropped by finalize
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, n_bad",
    [("npy_nan_rows", 2), ("npy_float64_overflow", 1), ("csv_nan_inf", 3), ("csv_values_overflow", 1),
     ("parquet_null_values", 1), ("fvecs_nan", 1)],
)
def test_nonfinite_rows_are_counted_not_dropped(name, n_bad, corpus):
    case = corpus[name]
    loaded = load_embeddings(case.data, case.filename)
    assert loaded.nonfinite_rows == n_bad
    assert int((~np.isfinite(loaded.X)).any(axis=1).sum()) == n_bad
    n = loaded.X.shape[0]
    with pytest.raises(DataError, match=rf"{n_bad} of {n} row\(s\).*drop"):
        finalize(loaded)
    X = finalize(loaded, nonfinite="drop")
    assert X.shape == (n - n_bad, loaded.X.shape[1]) and np.isfinite(X).all()
    assert any(f"Dropped {n_bad} row(s)" in note for note in loaded.notes)
    assert loaded.nonfinite_rows == 0


def test_drop_keeps_labels_aligned():
    data = b"name,a,b\nann,1,2\nbob,nan,3\ncid,4,5\ndan,inf,0\n"
    loaded = load_embeddings(data, "x.csv")
    assert loaded.labels == ["ann", "bob", "cid", "dan"] and loaded.nonfinite_rows == 2
    X = finalize(loaded, nonfinite="drop")
    np.testing.assert_array_equal(X, np.array([[1, 2], [4, 5]], np.float32))
    assert loaded.labels == ["ann", "cid"]


def test_drop_of_every_row_is_an_error():
    loaded = load_embeddings(npy_bytes(np.full((3, 2), np.nan)), "x.npy")
    with pytest.raises(DataError, match="all 3 rows"):
        finalize(loaded, nonfinite="drop")


def test_finalize_rejects_unknown_policy():
    loaded = load_embeddings(npy_bytes(np.ones((2, 2))), "x.npy")
    with pytest.raises(VQLensError, match="nonfinite"):
        finalize(loaded, nonfinite="ignore")


# ---------------------------------------------------------------------------
# notes on degenerate but usable data
# ---------------------------------------------------------------------------


def _notes(arr, filename="x.npy"):
    return " ".join(load_embeddings(npy_bytes(arr), filename).notes)


def test_notes_on_degenerate_data():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((6, 3)).astype(np.float32)
    assert _notes(A) == ""
    assert "d=1" in _notes(A[:, :1])
    assert "Only one row" in _notes(A[:1])
    assert "constant" in _notes(np.tile(A[:1], (5, 1)))
    assert "3 row(s) duplicate" in _notes(A[[0, 1, 0, 0, 1, 2]])
    B = A.copy()
    B[:, 1] = 7
    assert "1 of 3 column(s) hold one constant value" in _notes(B)
    assert "Converted from int16 to float32" in _notes(np.arange(6, dtype=np.int16).reshape(3, 2))
    assert "Converted from float64 to float32" in _notes(A.astype(np.float64))
    assert "2**24" in _notes(np.array([[2**25 + 1, 0]], dtype=np.int64))


def _duplicates_reference(X):
    seen, dup = set(), 0
    for row in X:
        key = row.tobytes()
        dup += key in seen
        seen.add(key)
    return dup


@settings(max_examples=40, deadline=None, database=None, derandomize=True)
@given(st.integers(1, 40), st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_duplicate_count_matches_slow_reference(n, d, levels, seed):
    from vqcore.inspect import count_duplicate_rows

    X = np.random.default_rng(seed).integers(0, levels, (n, d)).astype(np.float32)
    assert count_duplicate_rows(X) == _duplicates_reference(X)


# ---------------------------------------------------------------------------
# .npz choices, CSV / parquet columns
# ---------------------------------------------------------------------------


def test_list_npz_arrays_reads_headers():
    data = npz_bytes(
        compressed=True, big=np.zeros((5, 3), np.float32), ids=np.arange(4), obj=np.array([None], dtype=object),
    )
    assert list_npz_arrays(data) == [
        ("big", (5, 3), np.dtype("<f4")), ("ids", (4,), np.dtype("int64")), ("obj", (1,), np.dtype("O")),
    ]
    loaded = load_embeddings(data, "x.npz")
    assert loaded.array_keys == ["big"] and loaded.X.shape == (5, 3)
    with pytest.raises(DataError, match="not a valid .npz"):
        list_npz_arrays(b"not a zip")


def test_npz_array_key_errors():
    data = npz_bytes(a=np.ones((2, 2)), v=np.ones(3), o=np.array([1, "x"], dtype=object))
    with pytest.raises(DataError, match=r"array_key='zzz' is not in .*'a'"):
        load_embeddings(data, "x.npz", array_key="zzz")
    with pytest.raises(DataError, match="reshape"):
        load_embeddings(data, "x.npz", array_key="v")
    with pytest.raises(DataError, match="pickle"):
        load_embeddings(data, "x.npz", array_key="o")
    with pytest.raises(VQLensError, match="array_key"):
        load_embeddings(data, "x.npz", array_key=3)


def test_csv_text_column_errors_and_choice():
    data = b"id,name,x\nu1,ann,1\nu2,bob,2\n"
    with pytest.raises(DataError, match="text_column='nope'"):
        load_embeddings(data, "x.csv", text_column="nope")
    assert load_embeddings(data, "x.csv", text_column="id").labels == ["u1", "u2"]
    two_texts = b"key,name,x\nu1,ann,1\nu2,bob,2\n"
    loaded = load_embeddings(two_texts, "x.csv")
    assert loaded.labels is None and any("text_column" in n for n in loaded.notes)
    # a column named like ids is the id column, so the one text column left gives the labels
    loaded = load_embeddings(data, "x.csv")
    assert loaded.ids.tolist() == ["u1", "u2"] and loaded.labels == ["ann", "bob"]
    headerless = b"ann,1,2\nbob,3,4\n"
    assert load_embeddings(headerless, "x.csv", text_column=0).labels == ["ann", "bob"]


def test_csv_partly_numeric_column_reports_dropped_rows():
    data = b"a,b\n1,2\n3,n/a?\n5,6\n7,x\n9,10\n"
    loaded = load_embeddings(data, "x.csv")
    np.testing.assert_array_equal(loaded.X, np.array([[1, 2], [5, 6], [9, 10]], np.float32))
    assert any("Dropped 2 row(s) with non-numeric values in column 'b'" in n for n in loaded.notes)


def test_parquet_list_column_with_null_row_counts_as_nonfinite():
    import pyarrow as pa

    data = parquet_bytes(pa.table({"emb": pa.array([[1.0, 2.0], None, [3.0, 4.0]], pa.list_(pa.float32()))}))
    loaded = load_embeddings(data, "x.parquet")
    assert loaded.nonfinite_rows == 1
    np.testing.assert_array_equal(finalize(loaded, nonfinite="drop"), np.array([[1, 2], [3, 4]], np.float32))


def test_parquet_ragged_message_names_rows(corpus):
    with pytest.raises(DataError, match=r"row 1 has 1, row 3 has 3"):
        load_embeddings(corpus["parquet_ragged_list"].data, "x.parquet")


def test_bad_parameters_raise_vqlens_error():
    data = npy_bytes(np.ones((2, 2)))
    with pytest.raises(VQLensError, match="max_bytes=0"):
        load_embeddings(data, "x.npy", max_bytes=0)
    with pytest.raises(VQLensError, match="max_elements"):
        load_embeddings(data, "x.npy", max_elements=1.5)
    with pytest.raises(VQLensError, match="bytes"):
        load_embeddings("not bytes", "x.npy")


def test_accepts_file_like_uploads():
    A = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(load_embeddings(io.BytesIO(npy_bytes(A)), "x.npy").X, A)


# ---------------------------------------------------------------------------
# read_fvecs / read_bvecs / read_ivecs
# ---------------------------------------------------------------------------


def test_vecs_readers_on_bytes_keep_dtype():
    A = np.arange(12, dtype=np.float32).reshape(3, 4) - 5
    assert read_fvecs(vecs_bytes(A)).dtype == np.float32
    np.testing.assert_array_equal(read_fvecs(vecs_bytes(A)), A)
    np.testing.assert_array_equal(read_ivecs(vecs_bytes(A, item="<i4")), A.astype(np.int32))
    B = read_bvecs(vecs_bytes(A + 5, item="u1"))
    assert B.dtype == np.uint8 and B.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(B, (A + 5).astype(np.uint8))
    with pytest.raises(DataError, match="max_elements"):
        read_fvecs(vecs_bytes(A), max_elements=11)


def test_vecs_readers_on_paths(tmp_path):
    A = np.arange(6, dtype=np.float32).reshape(2, 3)
    path = tmp_path / "a.fvecs"
    path.write_bytes(vecs_bytes(A))
    np.testing.assert_array_equal(read_fvecs(path), A)
    np.testing.assert_array_equal(read_fvecs(str(path)), A)
    with pytest.raises(DataError, match="could not be opened"):
        read_fvecs(tmp_path / "missing.fvecs")
    with pytest.raises(DataError, match="max_bytes"):
        read_fvecs(path, max_bytes=10)


@pytest.mark.skipif(not os.path.isdir(BENCH_DATA), reason="shared bench data not present")
def test_vecs_readers_on_bench_files():
    query = read_fvecs(os.path.join(BENCH_DATA, "siftsmall_query.fvecs"))
    assert query.shape == (100, 128) and query.dtype == np.float32
    # SIFT components are integers in [0, 255]
    assert np.array_equal(query, np.round(query)) and query.min() >= 0 and query.max() <= 255
    truth = read_ivecs(os.path.join(BENCH_DATA, "siftsmall_groundtruth.ivecs"))
    assert truth.shape == (100, 100) and truth.dtype == np.int32
    assert truth.min() >= 0 and truth.max() < 10_000
    base = read_bvecs(os.path.join(BENCH_DATA, "bigann10k_base.bvecs"))
    assert base.shape == (10_000, 128) and base.dtype == np.uint8
    with open(os.path.join(BENCH_DATA, "siftsmall_query.fvecs"), "rb") as fh:
        np.testing.assert_array_equal(load_embeddings(fh.read(), "siftsmall_query.fvecs").X, query)


# ---------------------------------------------------------------------------
# fuzzing: the outcome is a clean array or a DataError, nothing else
# ---------------------------------------------------------------------------

FUZZ_CAPS = {"max_bytes": 2**20, "max_elements": 200_000}


def check_outcome(data, filename):
    try:
        loaded = load_embeddings(data, filename, **FUZZ_CAPS)
    except DataError as exc:
        assert str(exc).strip()
        return
    X = loaded.X
    assert isinstance(X, np.ndarray) and X.dtype == np.float32 and X.ndim == 2 and X.flags["C_CONTIGUOUS"]
    assert X.shape[0] >= 1 and X.shape[1] >= 1 and X.size <= FUZZ_CAPS["max_elements"]
    bad = int((~np.isfinite(X)).any(axis=1).sum())
    assert loaded.nonfinite_rows == bad
    assert loaded.labels is None or len(loaded.labels) == X.shape[0]
    assert all(isinstance(n, str) and n for n in loaded.notes)
    try:
        F = finalize(loaded, nonfinite="drop")
    except DataError:
        assert bad == X.shape[0]
    else:
        assert np.isfinite(F).all() and F.shape[0] == X.shape[0] - bad


SEEDS = {
    ext: [c.data for c in VALID if c.filename.lower().endswith(ext) and len(c.data) < 20_000]
    for ext in SUPPORTED_EXTENSIONS
}


@st.composite
def damaged(draw, seeds):
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "int32", "splice"]))
        pos = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            pos = min(pos, len(data) - 1)
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 64))]
        elif op == "int32":  # a plausible-looking size or dimension field
            value = draw(st.sampled_from([0, 1, -1, 2**31 - 1, -(2**31), 2**16, 255]))
            data[pos:pos + 4] = value.to_bytes(4, "little", signed=True)
        elif op == "splice":
            other = draw(st.sampled_from(seeds))
            start = draw(st.integers(0, len(other)))
            data[pos:pos + 32] = other[start:start + 32]
    return bytes(data)


MAGICS = [b"\x93NUMPY\x01\x00", b"\x93NUMPY\x03\x00", b"PK\x03\x04", b"PAR1", b"\x04\x00\x00\x00"]
RANDOM_FILES = st.binary(max_size=600) | st.builds(
    lambda head, tail: head + tail, st.sampled_from(MAGICS), st.binary(max_size=300)
)


@pytest.mark.parametrize("ext", SUPPORTED_EXTENSIONS)
def test_fuzz_random_bytes(ext):
    @FUZZ
    @given(RANDOM_FILES)
    def run(data):
        check_outcome(data, "fuzz" + ext)

    run()


@pytest.mark.parametrize("ext", SUPPORTED_EXTENSIONS)
def test_fuzz_damaged_valid_files(ext):
    assert SEEDS[ext], ext

    @settings(FUZZ, max_examples=2 * FUZZ_EXAMPLES)
    @given(damaged(SEEDS[ext]))
    def run(data):
        check_outcome(data, "fuzz" + ext)

    run()


@FUZZ
@given(st.lists(st.lists(st.sampled_from(["1", "-2.5", "nan", "inf", "", "x", "a b", '"q,r"', "1e400", "0"]),
                         min_size=1, max_size=4), min_size=1, max_size=8),
       st.sampled_from([",", "\t"]))
def test_fuzz_csv_cells(rows, sep):
    """Text files built from awkward cells (ragged, quoted, missing, huge, text)."""
    data = "\n".join(sep.join(r) for r in rows).encode()
    check_outcome(data, "fuzz.csv" if sep == "," else "fuzz.tsv")


@FUZZ
@given(st.sampled_from(["<f4", ">f8", "<i2", "|u1", "|b1", "<f2"]),
       st.lists(st.integers(0, 5), min_size=0, max_size=3), st.booleans(), st.integers(-3, 3))
def test_fuzz_npy_shapes_and_lengths(dtype, shape, fortran, extra):
    """Valid headers with every small shape, followed by too few / too many data bytes."""
    shape = tuple(shape)
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    header = f"{{'descr': '{dtype}', 'fortran_order': {fortran}, 'shape': {shape!r}, }}"
    check_outcome(npy_raw(header, bytes(max(0, size + extra))), "fuzz.npy")


def test_zip64_directory_with_too_many_members_is_refused_before_parsing():
    from vqcore.io.npy import _zip_directory_size

    try:
        from malformed import zip_bytes
    except ImportError:
        from tests.malformed import zip_bytes
    data = zip_bytes([(str(i), b"") for i in range(70_000)])  # > 65535 entries: zip64 end record
    assert _zip_directory_size(data)[0] == 70_000
    with pytest.raises(DataError, match="70,000 files"):
        load_embeddings(data, "x.npz")
    with pytest.raises(DataError, match="70,000 files"):
        list_npz_arrays(data)


def test_a_first_column_named_row_of_increasing_numbers_is_dropped_from_codes_and_embeddings():
    """VQ Lens's codes downloads start with the data's row numbers (gaps where rows were dropped)."""
    from vqcore.io import load_codes

    loaded = load_codes(b"row,code_0,code_1\n0,1,2\n2,3,0\n7,1,1\n", "c.csv")
    assert loaded.codes.tolist() == [[1, 2], [3, 0], [1, 1]]
    assert any("'row'" in note for note in loaded.notes)
    # not increasing: a level that happens to be called "row" stays a level
    assert load_codes(b"row,code_0\n3,1\n1,2\n", "c.csv").codes.tolist() == [[3, 1], [1, 2]]
    assert load_embeddings(b"row,a\n5,1.5\n6,2.5\n", "e.csv").X.tolist() == [[1.5], [2.5]]


# ---------------------------------------------------------------- the id column (review of session 6)


def _parquet(table):
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _npz(**arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_csv_id_column_is_kept_aside_not_read_as_a_dimension():
    data = b"item_id,x,y,title\n10,1,2,a\n20,3,nan,b\n10,5,6,c\n"
    loaded = load_embeddings(data, "x.csv")
    assert loaded.X.shape == (3, 2)  # before: item_id was a third dimension
    assert loaded.ids.dtype == np.int64 and loaded.ids.tolist() == [10, 20, 10] and loaded.id_name == "item_id"
    assert loaded.labels == ["a", "b", "c"]
    assert any(n.startswith("Warning: 1 row(s) repeat an id") for n in loaded.notes)  # warned, not refused
    finalize(loaded, nonfinite="drop")
    assert loaded.ids.tolist() == [10, 10] and loaded.labels == ["a", "c"]  # dropped with their rows
    # a column called ..._id holding fractions is a dimension; text ids stay text, exactly
    assert load_embeddings(b"w_id,y\n1.5,2\n2.5,3\n", "x.csv").ids is None
    assert load_embeddings(b"ID,y\n007,2\nA-1,3\n", "x.csv").ids.tolist() == ["007", "A-1"]


def test_parquet_id_column_int_or_text():
    import pyarrow as pa

    loaded = load_embeddings(_parquet(pa.table({"id": [5, 6, 7], "emb": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],
                                                "text": ["a", "b", "c"]})), "x.parquet")
    assert loaded.ids.tolist() == [5, 6, 7] and loaded.labels == ["a", "b", "c"] and loaded.X.shape == (3, 2)
    loaded = load_embeddings(_parquet(pa.table({"user_id": ["u", "v"], "x": [1.0, 2.0], "y": [3.0, 4.0]})),
                             "x.parquet")
    assert loaded.ids.tolist() == ["u", "v"] and loaded.X.shape == (2, 2) and loaded.labels is None


@pytest.mark.parametrize("columns, texts, text_column, expected", [
    (["id", "x", "title"], ["title"], None, ("id", "title", [])),
    (["x", "title", "body"], ["title", "body"], None, (None, None, ["title", "body"])),
    (["x", "title", "body"], ["title", "body"], "body", (None, "body", ["title"])),
    # the id column is set aside first, so one text column is left for the labels
    (["doc_id", "x", "title"], ["doc_id", "title"], None, ("doc_id", "title", [])),
    # the label column asked for is never the ids, even when named like ids
    (["doc_id", "x", "title"], ["doc_id", "title"], "doc_id", (None, "doc_id", ["title"])),
    (["x", "title"], ["title"], "missing", (None, None, ["title"])),  # the caller says it is missing
    (["x", "y"], [], 1, (None, None, [])),  # compared as text: no column is named "1"
    (["Item_ID", "user_id"], [], None, ("Item_ID", None, [])),  # the first one named like ids
], ids=["id-and-one-text", "two-texts", "chosen-text", "text-ids", "asked-ids-name", "missing", "int-name", "first-id"])
def test_row_columns_chooses_ids_and_labels(columns, texts, text_column, expected):
    rc = row_columns(columns, texts, text_column)
    assert (rc.ids, rc.labels, rc.other_texts) == expected


def test_row_columns_id_ok_and_positions():
    # a column named like ids whose values cannot be ids is passed over for the next one
    rc = row_columns(["w_id", "item_id", "t"], ["t"], id_ok=lambda c: c != "w_id")
    assert (rc.ids, rc.labels) == ("item_id", "t")
    # columns keyed by position (a CSV), named through `name`
    names = ["id", "a", "b", "note"]
    rc = row_columns(range(4), [3], "note", name=names.__getitem__)
    assert (rc.ids, rc.labels, rc.other_texts) == (0, 3, [])


@pytest.mark.parametrize("text_column", [None, "title", "user_id"])
def test_csv_and_parquet_choose_the_same_id_and_label_columns(text_column):
    import pyarrow as pa

    cols = {"user_id": ["u1", "u2", "u3"], "x": [1.0, 2.0, 3.0], "y": [0.5, 0.0, 1.0],
            "title": ["ann", "bob", "cy"], "body": ["p", "q", "r"]}
    csv = "\n".join([",".join(cols)] + [",".join(str(v[i]) for v in cols.values()) for i in range(3)]) + "\n"
    a = load_embeddings(csv.encode(), "x.csv", text_column=text_column)
    b = load_embeddings(_parquet(pa.table(cols)), "x.parquet", text_column=text_column)
    for loaded in (a, b):
        assert loaded.X.tolist() == [[1.0, 0.5], [2.0, 0.0], [3.0, 1.0]]
    assert a.labels == b.labels and a.id_name == b.id_name
    assert (a.ids is None) == (b.ids is None) and (a.ids is None or a.ids.tolist() == b.ids.tolist())
    if text_column is None:  # two text columns left: neither gives the labels
        assert a.labels is None and a.ids.tolist() == ["u1", "u2", "u3"]
    else:
        assert a.labels == cols[text_column]


def test_npz_ids_and_label_arrays():
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    data = _npz(X=X, Y=X[:, :2] * 2, ids=np.array([3, 1, 4, 1]), titles=np.array(["a", "b", "c", "d"]))
    loaded = load_embeddings(data, "x.npz")
    assert loaded.ids.tolist() == [3, 1, 4, 1] and loaded.labels == ["a", "b", "c", "d"]
    assert any("repeat an id" in n for n in loaded.notes)
    loaded = load_embeddings(data, "x.npz", array_key="Y", text_column="ids")
    assert loaded.X.shape == (4, 2) and loaded.labels == ["3", "1", "4", "1"] and loaded.ids is None
    with pytest.raises(DataError, match="text_column='nope'"):
        load_embeddings(data, "x.npz", text_column="nope")
    # ids of another length are not this array's ids
    assert load_embeddings(_npz(X=X, ids=np.arange(5)), "x.npz").ids is None
    # two text arrays: neither is guessed, and the notes name both as choices
    loaded = load_embeddings(_npz(X=X, titles=np.array(list("abcd")), names=np.array(list("efgh"))), "x.npz")
    assert loaded.labels is None and any("'titles', 'names'" in n and "text_column" in n for n in loaded.notes)


def test_codes_files_set_an_id_column_aside():
    loaded = load_codes(b"row,id,code_0,code_1\n0,77,1,2\n1,78,2,0\n", "c.csv")
    assert loaded.codes.tolist() == [[1, 2], [2, 0]]
    assert any("Set aside column 'id'" in n for n in loaded.notes)
