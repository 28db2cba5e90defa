"""The ``.npy`` and ``.npz`` readers, from their headers, without pickle."""

from __future__ import annotations

import ast
import io
import zipfile
from dataclasses import dataclass

import numpy as np

from ..exceptions import DataError
from .limits import (
    ALLOWED_ZIP_METHODS,
    MAX_LISTED,
    MAX_NPY_HEADER,
    MAX_NPZ_MEMBERS,
    MAX_ZIP_DIRECTORY,
    NPY_MAGIC,
    check_2d,
    check_caps,
    check_numeric_dtype,
    finish,
    id_array,
    is_id_name,
    listing,
    mb,
    short,
    short_repr,
)

# ---------------------------------------------------------------------------
# .npy
# ---------------------------------------------------------------------------


def _read_up_to(read, n):
    """Read n bytes from a stream (fewer only at the end)."""
    parts, got = [], 0
    while got < n:
        chunk = read(n - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


@dataclass
class _NpyHeader:
    dtype: np.dtype
    shape: tuple
    fortran_order: bool
    header_len: int  # bytes before the array data


def parse_npy_header(read, what):
    """Parse an .npy header from a ``read(n)`` callable; reads only the header bytes.

    The header is a Python dict literal; it is parsed with :func:`ast.literal_eval`
    (as numpy does), never ``eval`` and never pickle.
    """
    pre = _read_up_to(read, 8)
    if not pre:
        raise DataError(f"{what} is empty.")
    if not pre.startswith(NPY_MAGIC[: len(pre)]) or (len(pre) >= 6 and not pre.startswith(NPY_MAGIC)):
        raise DataError(
            f"{what} is not a NumPy .npy file (it does not start with the \\x93NUMPY magic bytes). "
            "Save the array with numpy.save(path, X)."
        )
    if len(pre) < 8:
        raise DataError(f"{what} is truncated inside the .npy header. Upload the complete file.")
    major, minor = pre[6], pre[7]
    if major == 1:
        size_len = 2
    elif major in (2, 3):
        size_len = 4
    else:
        raise DataError(
            f"{what} uses .npy format version {major}.{minor}, which is not supported (1.0, 2.0, 3.0 are). "
            "Re-save it with numpy.save."
        )
    raw_len = _read_up_to(read, size_len)
    if len(raw_len) < size_len:
        raise DataError(f"{what} is truncated inside the .npy header. Upload the complete file.")
    hlen = int.from_bytes(raw_len, "little")
    if hlen > MAX_NPY_HEADER:
        raise DataError(
            f"{what} declares an .npy header of {hlen:,} bytes (limit {MAX_NPY_HEADER:,}); the file is "
            "corrupt or not made by numpy.save."
        )
    raw = _read_up_to(read, hlen)
    if len(raw) < hlen:
        raise DataError(f"{what} is truncated inside the .npy header. Upload the complete file.")
    try:
        text = raw.decode("utf8" if major >= 3 else "latin1")
        # a numeric array's header is plain ASCII without escapes; refusing anything else
        # also keeps literal_eval from warning about escape sequences
        if not text.isascii() or "\\" in text:
            raise ValueError("unexpected characters")
        header = ast.literal_eval(text.strip())
    except Exception:
        raise DataError(
            f"{what} has an unreadable .npy header; the file is corrupt. Re-save it with numpy.save."
        ) from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise DataError(
            f"{what} has an invalid .npy header (it should hold exactly 'descr', 'fortran_order' and 'shape'). "
            "Re-save it with numpy.save."
        )
    descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
    if not isinstance(descr, str):
        raise DataError(
            f"{what} has a structured dtype ({short_repr(descr)}); VQ Lens needs a plain numeric 2-D array. "
            "Stack the fields into one float array first."
        )
    try:
        dtype = np.dtype(descr)
    except Exception:
        raise DataError(f"{what} declares an unknown dtype {short_repr(descr)}. Re-save it with numpy.save.") from None
    if not isinstance(fortran, bool):
        raise DataError(f"{what} has an invalid .npy header (fortran_order={short_repr(fortran)}).")
    if (
        not isinstance(shape, tuple)
        or len(shape) > 32
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
    ):
        raise DataError(f"{what} has an invalid .npy header (shape={short_repr(shape)}).")
    return _NpyHeader(dtype, shape, fortran, 8 + size_len + hlen)


def _check_npy_header(h, caps, what):
    """All checks that can be made from the header alone, in the order a person needs them."""
    check_numeric_dtype(h.dtype, what)
    check_caps(h.shape, max(h.dtype.itemsize, 4), caps, what)
    check_2d(h.shape, what)


def _array_from_buffer(buf, h, offset, what):
    n_values = int(np.prod(h.shape, dtype=object))
    need = n_values * h.dtype.itemsize
    have = len(buf) - offset
    if have < need:
        raise DataError(
            f"{what} is truncated: its header declares shape {h.shape} of {h.dtype} ({need:,} bytes of data) "
            f"but only {have:,} bytes follow. Upload the complete file."
        )
    if have > need:
        raise DataError(
            f"{what} has {have - need:,} unexpected bytes after the array data declared by its header "
            f"(shape {h.shape}, {h.dtype}); the file is corrupt. Re-save it with numpy.save."
        )
    arr = np.frombuffer(buf, dtype=h.dtype, count=n_values, offset=offset)
    return arr.reshape(h.shape, order="F" if h.fortran_order else "C")


def load_npy(data, filename, caps, **_):
    what = repr(filename)
    stream = io.BytesIO(data)
    h = parse_npy_header(stream.read, what)
    _check_npy_header(h, caps, what)
    arr = _array_from_buffer(data, h, h.header_len, what)
    notes = ["Read from Fortran (column-major) order."] if h.fortran_order and h.shape[1] > 1 else []
    return finish(arr, source=filename, notes=notes, caps=caps)


# ---------------------------------------------------------------------------
# .npz
# ---------------------------------------------------------------------------


@dataclass
class _NpzMember:
    info: zipfile.ZipInfo
    name: str
    shape: tuple | None = None
    dtype: np.dtype | None = None
    header_len: int = 0
    fortran_order: bool = False
    problem: str | None = None  # why it cannot be loaded, or None


def _zip_directory_size(data):
    """(number of entries, central-directory bytes) from the end record, or None if not found.

    Read before :class:`zipfile.ZipFile` parses the whole directory into memory,
    so an archive of millions of tiny entries is refused cheaply.
    """
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if end < 0 or end + 22 > len(data):
        return None
    entries = int.from_bytes(data[end + 10:end + 12], "little")
    size = int.from_bytes(data[end + 12:end + 16], "little")
    loc = end - 20
    if (entries == 0xFFFF or size == 0xFFFFFFFF) and loc >= 0 and data[loc:loc + 4] == b"PK\x06\x07":
        rec = int.from_bytes(data[loc + 8:loc + 16], "little")
        if 0 <= rec <= len(data) - 56 and data[rec:rec + 4] == b"PK\x06\x06":
            entries = int.from_bytes(data[rec + 32:rec + 40], "little")
            size = int.from_bytes(data[rec + 40:rec + 48], "little")
    return entries, size


def scan_npz(data, what):
    """Open the archive and read each member's .npy header only (nothing else is decompressed)."""
    directory = _zip_directory_size(data)
    if directory is not None and (directory[0] > MAX_NPZ_MEMBERS or directory[1] > MAX_ZIP_DIRECTORY):
        raise DataError(
            f"{what} declares {directory[0]:,} files in a directory of {mb(directory[1])} (limits: "
            f"{MAX_NPZ_MEMBERS:,} files, {mb(MAX_ZIP_DIRECTORY)}); upload only the array you need."
        )
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise DataError(
            f"{what} is not a valid .npz (zip) archive. Save the arrays with numpy.savez(path, X=X) "
            "or upload a .npy file instead."
        ) from None
    with zf:
        return _scan_npz_members(zf, what)


def _scan_npz_members(zf, what):
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > MAX_NPZ_MEMBERS:
        raise DataError(
            f"{what} holds {len(infos):,} files (limit {MAX_NPZ_MEMBERS:,}); upload only the array you need."
        )
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        raise DataError(f"{what} holds several members with the same name; the archive is corrupt.")
    members = []
    for info in infos:
        if not info.filename.endswith(".npy"):
            members.append(_NpzMember(info, info.filename, problem="not an .npy member"))
            continue
        m = _NpzMember(info, info.filename[: -len(".npy")])
        members.append(m)
        if info.flag_bits & 0x1:
            m.problem = f"member {m.name!r} is encrypted; upload an unencrypted archive."
            continue
        if info.compress_type not in ALLOWED_ZIP_METHODS:
            m.problem = (
                f"member {m.name!r} uses zip compression method {info.compress_type}; only stored and "
                "deflate (numpy.savez / numpy.savez_compressed) are accepted."
            )
            continue
        try:
            with zf.open(info) as stream:
                h = parse_npy_header(stream.read, f"member {m.name!r}")
        except DataError as exc:
            m.problem = str(exc)
            continue
        except Exception as exc:  # bad zip data, CRC, unsupported features
            m.problem = f"member {m.name!r} could not be read ({short(exc)}); the archive is corrupt."
            continue
        m.shape, m.dtype, m.header_len = h.shape, h.dtype, h.header_len
        m.fortran_order = h.fortran_order
    return members


def _member_problem(m, caps):
    """Why member m cannot be loaded, checked from its headers only; None if it can."""
    if m.problem is not None:
        return m.problem
    what = f"member {m.name!r}"
    try:
        if m.info.file_size > caps.max_bytes:
            raise DataError(
                f"{what} declares {mb(m.info.file_size)} uncompressed, above the limit of "
                f"{mb(caps.max_bytes)} (max_bytes); it was not decompressed."
            )
        check_numeric_dtype(m.dtype, what)
        check_caps(m.shape, max(m.dtype.itemsize, 4), caps, what)
        need = int(np.prod(m.shape, dtype=object)) * m.dtype.itemsize
        if m.info.file_size != m.header_len + need:
            raise DataError(
                f"{what} declares {m.info.file_size:,} bytes uncompressed but its header needs "
                f"{m.header_len + need:,} (shape {m.shape}, {m.dtype}); the archive is corrupt."
            )
        check_2d(m.shape, what)
    except DataError as exc:
        return str(exc)
    return None


def load_npz(data, filename, caps, *, array_key=None, text_column=None, **_):
    members = scan_npz(data, repr(filename))
    npy_members = [m for m in members if m.info.filename.endswith(".npy")]
    if not npy_members:
        raise DataError(
            f"{filename!r} holds no arrays (no .npy members). Save the embeddings with numpy.savez(path, X=X)."
        )
    problems = {m.name: _member_problem(m, caps) for m in npy_members}
    usable = [m for m in npy_members if problems[m.name] is None]
    keys = [m.name for m in usable]
    notes = []
    skipped = [m.info.filename for m in members if m not in npy_members]
    if skipped:
        notes.append(f"Ignored non-array files in the archive: {listing(skipped)}.")
    if array_key is not None:
        key = array_key[:-4] if array_key.endswith(".npy") and array_key not in problems else array_key
        if key not in problems:
            raise DataError(
                f"array_key={array_key!r} is not in {filename!r}; its arrays are "
                f"{listing(repr(m.name) for m in npy_members)}."
            )
        chosen = next(m for m in npy_members if m.name == key)
        if problems[key] is not None:
            raise DataError(f"{filename!r}: {problems[key]}")
    elif len(usable) == 1:
        chosen = usable[0]
    elif usable:
        chosen = max(usable, key=lambda m: int(np.prod(m.shape, dtype=object)))
        others = [repr(m.name) for m in usable if m is not chosen]
        notes.append(
            f"The archive holds {len(usable)} 2-D arrays; loaded the largest, {chosen.name!r} "
            f"{chosen.shape}. Choose another with array_key ({listing(others)})."
        )
    else:
        reasons = " ".join(problems[m.name] for m in npy_members[:MAX_LISTED])
        more = f" ({len(npy_members) - MAX_LISTED} more not shown.)" if len(npy_members) > MAX_LISTED else ""
        raise DataError(f"{filename!r} holds no usable 2-D numeric array. {reasons}{more}")
    n = chosen.shape[0]
    label_m, id_m = _npz_row_members(npy_members, chosen, n, text_column, filename)
    unused = [m.name for m in npy_members if m not in (chosen, label_m, id_m) and _is_row_array(m, n)]
    refused = [m.name for m in npy_members if problems[m.name] is not None and m not in (chosen, label_m, id_m)
               and m.name not in unused]
    if refused:
        notes.append(f"Not usable and ignored: {listing(repr(r) for r in refused)}.")
    if unused:
        notes.append(f"Ignored the 1-D array(s) {listing(repr(r) for r in unused)} of one value per row; choose "
                     "one as the labels with text_column (the home page's Label column).")
    what = f"{filename!r}[{chosen.name!r}]"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        arr = _read_member(zf, chosen, what)
        labels = ids = None
        if label_m is not None:
            labels = [str(v) for v in _row_values(zf, label_m, n, caps, filename).tolist()]
            notes.append(f"Using the array {label_m.name!r} as labels.")
        if id_m is not None:
            ids = id_array(_row_values(zf, id_m, n, caps, filename).tolist())
    if chosen.fortran_order and chosen.shape[1] > 1:
        notes.append("Read from Fortran (column-major) order.")
    return finish(arr, source=f"{filename}[{chosen.name!r}]", notes=notes, array_keys=keys, caps=caps,
                  labels=labels, ids=ids, id_name=None if id_m is None else id_m.name)


def _read_member(zf, m, what):
    """The array of member ``m`` (its header already checked), reading exactly its declared size."""
    need = int(np.prod(m.shape, dtype=object)) * m.dtype.itemsize
    with zf.open(m.info) as stream:
        # reads exactly the declared (capped) size; zipfile checks the CRC at the end
        raw = _read_up_to(stream.read, m.header_len + need)
    h = _NpyHeader(m.dtype, m.shape, m.fortran_order, m.header_len)
    return _array_from_buffer(raw, h, m.header_len, what)


def _is_row_array(m, n):
    """A 1-D member of whole numbers or text with one value per row (n): ids or labels."""
    return (m.problem is None and m.dtype is not None and not m.dtype.hasobject and m.dtype.kind in "iuUS"
            and m.shape == (n,))


def _npz_row_members(members, chosen, n, text_column, filename):
    """The members giving the labels and the ids of the rows of ``chosen``: ``text_column`` names the
    labels' array (else the one 1-D text array, if only one); the ids are the first 1-D array of whole
    numbers or text named like ids (:func:`~vqcore.io.limits.is_id_name`)."""
    rows = [m for m in members if m is not chosen and _is_row_array(m, n)]
    label_m = None
    if text_column is not None:
        label_m = next((m for m in members if m.name == str(text_column)), None)
        if label_m is None or not _is_row_array(label_m, n):
            fit = [repr(m.name) for m in rows]
            raise DataError(
                f"text_column={text_column!r} is not a 1-D array of {n:,} texts or numbers in {filename!r} (one per "
                f"row of {chosen.name!r}); " + (f"its arrays of that kind are {listing(fit)}." if fit else
                                                "it has none.")
            )
    id_m = next((m for m in rows if is_id_name(m.name) and m is not label_m), None)
    if label_m is None:
        texts = [m for m in rows if m.dtype.kind in "US" and m is not id_m]
        label_m = texts[0] if len(texts) == 1 else None
    return label_m, id_m


def _row_values(zf, m, n, caps, filename):
    """The n values of a 1-D ids or labels member, checked from its header before it is read."""
    what = f"{filename!r}[{m.name!r}]"
    need = n * m.dtype.itemsize
    if need > caps.max_bytes or m.info.file_size != m.header_len + need:
        raise DataError(f"{what} declares {m.info.file_size:,} bytes for {n:,} values of {m.dtype} (limit "
                        f"{mb(caps.max_bytes)}); the archive is corrupt or too large.")
    arr = _read_member(zf, m, what)
    if arr.dtype.kind == "S":
        return np.asarray([v.decode("utf-8", errors="replace") for v in arr.tolist()], dtype=object)
    return arr
