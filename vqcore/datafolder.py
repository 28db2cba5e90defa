"""The datasets of one folder on disk, and nothing outside it.

A server that offers a folder of catalogues (``streamlit run app.py --
--data-dir /data``) must show the files of that folder only: a name that
walks out of it (``..``, an absolute path) or a symbolic link whose target
lies outside it is refused, and only what :func:`vqcore.open_dataset` opens is
listed: ``.npy``, ``.fvecs``, ``.bvecs`` and ``.parquet`` files, and folders
of ``.parquet`` shards. Each is opened lazily (headers and footers only), so
listing a folder of 100 GB reads a few kilobytes per dataset.

Examples
--------
>>> import tempfile, os
>>> root = tempfile.mkdtemp()
>>> np.save(os.path.join(root, "a.npy"), np.zeros((5, 3), dtype=np.float16))
>>> [(e.name, e.n, e.d, e.dtype) for e in list_datasets(root).entries]
[('a.npy', 5, 3, 'float16')]
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np  # noqa: F401  (the doctest's np)

from .catalog import DATASET_EXTENSIONS, open_dataset
from .exceptions import DataError, VQLensError

__all__ = ["DatasetEntry", "FolderListing", "check_data_dir", "list_datasets", "open_in_folder", "MAX_ENTRIES"]

#: Entries of a folder looked at, at most (a folder of a million files is listed in part).
MAX_ENTRIES = 1000


@dataclass(frozen=True)
class DatasetEntry:
    """One dataset of the folder: its name there, what it holds, or why it cannot be opened.

    ``error`` is None for a dataset that opens; then ``n``, ``d``, ``dtype`` are its shape and
    stored type, ``nbytes`` its size on disk and ``files`` how many files hold it.
    """

    name: str
    kind: str  # "npy", "fvecs", "bvecs", "parquet", "parquet shards"
    nbytes: int
    files: int = 1
    n: int | None = None
    d: int | None = None
    dtype: str | None = None
    error: str | None = None


@dataclass
class FolderListing:
    """What :func:`list_datasets` found: ``entries`` (datasets, openable or not, by name) and
    ``refused`` (name, reason) for names that lead out of the folder; ``truncated`` when the
    folder held more than :data:`MAX_ENTRIES` entries."""

    root: str
    entries: list = field(default_factory=list)
    refused: list = field(default_factory=list)
    truncated: bool = False


def check_data_dir(path):
    """The real path of a data folder, or :class:`DataError` saying what is wrong with ``path``."""
    if path is None or not str(path).strip():
        raise DataError("The data folder is empty: give a path, e.g. --data-dir /data/embeddings.")
    path = os.path.expanduser(os.fspath(path))
    if not os.path.exists(path):
        raise DataError(f"The data folder {path!r} does not exist. Give an existing folder with --data-dir.")
    if not os.path.isdir(path):
        raise DataError(f"The data folder {path!r} is not a folder. Give a folder holding .npy, .fvecs, "
                        ".bvecs or .parquet files (or folders of .parquet shards) with --data-dir.")
    if not os.access(path, os.R_OK | os.X_OK):
        raise DataError(f"The data folder {path!r} cannot be read by this server (permissions).")
    return os.path.realpath(path)


def _inside(root, path):
    """Whether ``path`` (resolved: every symbolic link followed) is ``root`` or below it."""
    real = os.path.realpath(path)
    return real != root and os.path.commonpath([root, real]) == root


def _kind(entry):
    """The dataset kind of a directory entry, or None when open_dataset would not take it."""
    if entry.is_dir():
        return "parquet shards"
    ext = os.path.splitext(entry.name)[1].lower()
    return ext[1:] if ext in DATASET_EXTENSIONS and entry.is_file() else None


def _shards(folder):
    with os.scandir(folder) as it:
        return sorted(x.path for x in it if x.name.lower().endswith(".parquet") and x.is_file())


def _describe(root, name, kind, path):
    """A :class:`DatasetEntry` for one candidate: opened lazily; any failure becomes its ``error``."""
    files = [path]
    try:
        if kind == "parquet shards":
            files = _shards(path)
            outside = [os.path.basename(f) for f in files if not _inside(root, f)]
            if outside:
                raise DataError(f"its shard {outside[0]!r} is a link to a file outside the data folder; "
                                "it is not opened.")
        nbytes = sum(os.path.getsize(f) for f in files)
        ds = open_dataset(path)
    except VQLensError as exc:
        return DatasetEntry(name, kind, _size(files), len(files), error=str(exc))
    except OSError as exc:
        return DatasetEntry(name, kind, _size(files), len(files),
                            error=f"{name!r} cannot be read: {exc.strerror or exc}.")
    except Exception as exc:  # a reader's own error on a corrupt file
        return DatasetEntry(name, kind, _size(files), len(files),
                            error=f"{name!r} is not readable as {kind}: {exc}.")
    return DatasetEntry(name, kind, nbytes, len(files), n=int(ds.n), d=int(ds.d), dtype=str(ds.dtype))


def _size(files):
    total = 0
    for f in files:
        try:
            total += os.path.getsize(f)
        except OSError:
            pass
    return total


def list_datasets(root, *, max_entries=MAX_ENTRIES):
    """The datasets directly in the folder ``root``, by name, each opened lazily.

    Hidden names (starting with ``.``) and files of other types are left out;
    a folder is a dataset when it holds ``.parquet`` shards. A symbolic link is
    followed only when its target lies inside ``root``; otherwise the name is
    listed in ``refused`` and never opened.

    Parameters
    ----------
    root : str
        The data folder (see :func:`check_data_dir`).
    max_entries : int
        Directory entries looked at, at most.

    Returns
    -------
    FolderListing
    """
    root = check_data_dir(root)
    out = FolderListing(root)
    with os.scandir(root) as it:
        names = []
        for e in it:
            if len(names) >= max_entries:
                out.truncated = True
                break
            if not e.name.startswith("."):
                names.append(e)
    for e in sorted(names, key=lambda x: x.name):
        try:
            kind = _kind(e)
        except OSError:
            kind = None
        if kind is None:
            continue
        if not _inside(root, e.path):
            out.refused.append((e.name, "a link to a place outside the data folder; not opened"))
            continue
        if kind == "parquet shards":
            try:
                if not _shards(e.path):
                    continue  # a folder without shards is not a dataset
            except OSError:
                continue
        out.entries.append(_describe(root, e.name, kind, e.path))
    return out


def open_in_folder(root, name):
    """Open the dataset ``name`` of the folder ``root`` lazily (:func:`vqcore.open_dataset`).

    ``name`` must be a dataset :func:`list_datasets` lists: one name, no path
    separator, not ``.`` or ``..``, whose real path (links followed) stays
    inside ``root``, and so do the shards of a folder. Raises :class:`DataError`.
    """
    root = check_data_dir(root)
    name = str(name)
    if not name or name in (".", "..") or os.sep in name or (os.altsep and os.altsep in name) or "\x00" in name:
        raise DataError(f"{name!r} is not a dataset of the data folder: give one name the folder lists.")
    path = os.path.join(root, name)
    if not os.path.exists(path):
        raise DataError(f"{name!r} is not in the data folder (it may have been removed).")
    if not _inside(root, path):
        raise DataError(f"{name!r} is a link to a place outside the data folder; it is not opened.")
    if os.path.isdir(path):
        outside = [os.path.basename(f) for f in _shards(path) if not _inside(root, f)]
        if outside:
            raise DataError(f"{name!r}: its shard {outside[0]!r} is a link to a file outside the data folder; "
                            "it is not opened.")
        return open_dataset(os.path.realpath(path))
    ext = os.path.splitext(name)[1].lower()
    if ext not in DATASET_EXTENSIONS:
        raise DataError(f"{name!r} is not a dataset file ({', '.join(DATASET_EXTENSIONS)}).")
    return open_dataset(os.path.realpath(path))
