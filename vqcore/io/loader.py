"""The entry points: pick a format by extension, read, then finalize."""

from __future__ import annotations

import os

import numpy as np

from .._validation import check_choice, check_data, check_int
from ..exceptions import DataError, VQLensError
from .csv import load_csv, load_tsv
from .limits import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ELEMENTS,
    SUPPORTED_EXTENSIONS,
    Caps,
    as_bytes,
    mb,
    nonfinite_mask,
    short,
)
from .npy import load_npy, load_npz, scan_npz
from .parquet import load_parquet
from .vecs import make_vecs_loader

# ---------------------------------------------------------------------------
# public entry points
# ---------------------------------------------------------------------------


def load_embeddings(
    data,
    filename,
    *,
    max_bytes=DEFAULT_MAX_BYTES,
    max_elements=DEFAULT_MAX_ELEMENTS,
    array_key=None,
    text_column=None,
):
    """Read an uploaded embedding file into a float32 (n, d) array.

    Parameters
    ----------
    data : bytes
        The file's content.
    filename : str
        The uploaded file's name; its extension chooses the format.
    max_bytes : int, default=DEFAULT_MAX_BYTES
        Largest file, and largest decompressed array or member, accepted.
    max_elements : int, default=DEFAULT_MAX_ELEMENTS
        Largest number of values ``n * d`` accepted.
    array_key : str, optional
        ``.npz``: which member to load (with or without ``.npy``).
        ``.parquet``: which list column to load.
    text_column : str or int, optional
        CSV / parquet: the column to use as labels (for a CSV without a header
        row, the 0-based column position).

    Returns
    -------
    LoadedData

    Raises
    ------
    DataError
        For anything that cannot be loaded; the message says what and why.
    """
    return read_upload(
        data, filename, max_bytes=max_bytes, max_elements=max_elements, array_key=array_key,
        text_column=text_column, extensions=SUPPORTED_EXTENSIONS, noun="embeddings",
        example="numpy.save(path, X)",
    )


def read_upload(data, filename, *, max_bytes, max_elements, array_key, text_column, extensions, noun,
                 example, codes=False):
    """Checks shared by :func:`load_embeddings` and :func:`load_codes`, then the format's loader."""
    max_bytes = check_int("max_bytes", max_bytes, low=1)
    max_elements = check_int("max_elements", max_elements, low=1)
    if array_key is not None and not isinstance(array_key, str):
        raise VQLensError(f"array_key={array_key!r} should be a string or None.")
    if text_column is not None and (
        isinstance(text_column, bool) or not isinstance(text_column, (str, int, np.integer))
    ):
        raise VQLensError(f"text_column={text_column!r} should be a column name, a position or None.")
    filename = str(filename or "")
    data = as_bytes(data, filename)
    ext = os.path.splitext(filename)[1].lower()
    if ext not in extensions:
        shown = ext or "no extension"
        raise DataError(
            f"{filename!r} has {shown}, which VQ Lens cannot read as {noun}. Save the {noun} as one of "
            f"{', '.join(extensions)} (for example {example} for a .npy file)."
        )
    if len(data) == 0:
        raise DataError(f"{filename!r} is empty (0 bytes). Upload the file again or check that it was saved.")
    if len(data) > max_bytes:
        raise DataError(
            f"{filename!r} is {mb(len(data))}, above the limit of {mb(max_bytes)} (max_bytes={max_bytes}). "
            "Upload a sample of the rows, or raise max_bytes."
        )
    loader, fmt = _LOADERS[ext]
    caps = Caps(max_bytes, max_elements, codes=codes)
    try:
        with np.errstate(all="ignore"):
            return loader(data, filename, caps, array_key=array_key, text_column=text_column)
    except VQLensError:
        raise
    except MemoryError:
        raise DataError(
            f"{filename!r}: not enough memory to load it. Upload a sample of the rows."
        ) from None
    except Exception as exc:  # parser errors of numpy / zipfile / pandas / pyarrow
        raise DataError(
            f"{filename!r} could not be read as {fmt}: {short(exc)}. "
            f"Check that it really is a {fmt} file (re-export it from the tool that made it)."
        ) from exc


def list_npz_arrays(data, *, max_bytes=DEFAULT_MAX_BYTES):
    """List the arrays of an ``.npz`` file from their headers, without decompressing them.

    Returns
    -------
    list of (name, shape, dtype)
        One entry per ``.npy`` member whose header can be read, in archive order;
        ``name`` has no ``.npy`` suffix (as :func:`numpy.load` names them).
        Object arrays and arrays of any shape are listed (so a UI can say why
        one cannot be used); members whose header is corrupt or describes a
        structured dtype are left out.
    """
    data = as_bytes(data, "npz")
    max_bytes = check_int("max_bytes", max_bytes, low=1)
    if len(data) > max_bytes:
        raise DataError(f"The .npz file is {mb(len(data))}, above the limit of {mb(max_bytes)}.")
    try:
        members = scan_npz(data, "the .npz file")
    except VQLensError:
        raise
    except Exception as exc:
        raise DataError(f"The .npz file could not be read: {short(exc)}.") from exc
    return [(m.name, m.shape, m.dtype) for m in members if m.dtype is not None]


def finalize(loaded, *, nonfinite="error"):
    """Return the loaded array, refusing or dropping rows with NaN / infinity.

    Parameters
    ----------
    loaded : LoadedData
    nonfinite : {"error", "drop"}, default="error"
        ``"error"`` raises :class:`DataError` if any row holds NaN or infinity,
        giving the count; ``"drop"`` removes those rows, updates ``loaded``
        in place (``X``, ``labels``, ``ids``, ``nonfinite_rows``) and adds a note.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float32, C-contiguous, finite
    """
    check_choice("nonfinite", nonfinite, {"error", "drop"})
    X = loaded.X
    bad = nonfinite_mask(X)
    n_bad = int(bad.sum())
    where = loaded.source or "the data"
    if n_bad:
        if nonfinite == "error":
            raise DataError(
                f"{where}: {n_bad} of {X.shape[0]} row(s) contain NaN or infinite values. "
                "You can choose to drop those rows (nonfinite='drop', or the drop option in the app), "
                "or repair the file and load it again."
            )
        keep = ~bad
        if not keep.any():
            raise DataError(f"{where}: all {X.shape[0]} rows contain NaN or infinite values; nothing is left to use.")
        X = np.ascontiguousarray(X[keep])
        if loaded.labels is not None:
            loaded.labels = [lab for lab, k in zip(loaded.labels, keep) if k]
        if loaded.ids is not None:
            loaded.ids = loaded.ids[keep]
        loaded.X = X
        loaded.nonfinite_rows = 0
        loaded.notes.append(f"Dropped {n_bad} row(s) with NaN or infinite values; {X.shape[0]} remain.")
    return check_data(X, name=where)




_LOADERS = {
    ".npy": (load_npy, ".npy"),
    ".npz": (load_npz, ".npz"),
    ".csv": (load_csv, "CSV"),
    ".tsv": (load_tsv, "TSV"),
    ".parquet": (load_parquet, "parquet"),
    ".fvecs": (make_vecs_loader(np.dtype("<f4"), "fvecs"), ".fvecs"),
    ".bvecs": (make_vecs_loader(np.dtype("u1"), "bvecs"), ".bvecs"),
    ".ivecs": (make_vecs_loader(np.dtype("<i4"), "ivecs"), ".ivecs"),
}
