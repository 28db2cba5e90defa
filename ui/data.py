"""Loading data into the session (uploads and samples) and building downloads.

:func:`accept_upload` takes the file's bytes and name, so it is tested without
a browser; on any failure the previously loaded data stays and the message is
returned for ``st.error``.
"""

from __future__ import annotations

import io
import json

import numpy as np

from vqcore import VQLensError
from vqcore.io import DEFAULT_MAX_BYTES, SUPPORTED_EXTENSIONS, finalize, list_npz_arrays, load_embeddings
from vqcore.report import report_to_csv, report_to_json

from . import state as S

UPLOAD_TYPES = [e.lstrip(".") for e in SUPPORTED_EXTENSIONS]
MAX_UPLOAD_MB = DEFAULT_MAX_BYTES // 2**20


def npz_choices(data):
    """Names of the usable 2-D numeric arrays of an .npz, with their shapes, for a picker."""
    out = []
    for name, shape, dtype in list_npz_arrays(data):
        if len(shape) == 2 and dtype.kind in "biuf":
            out.append((name, f"{name}  {shape[0]:,} × {shape[1]:,} {dtype}"))
    return out


def accept_upload(state, data, name, *, array_key=None, text_column=None, drop_nonfinite=True):
    """Load an uploaded file into ``state[DATA]``; return None, or the error message.

    Parsing never unpickles; every failure is a :class:`vqcore.DataError` whose
    message is returned, and the data loaded before stays active.
    """
    try:
        loaded = load_embeddings(data, name, array_key=array_key or None, text_column=text_column or None)
        found = int(loaded.nonfinite_rows)
        X = finalize(loaded, nonfinite="drop" if drop_nonfinite else "error")
    except VQLensError as exc:
        return str(exc)
    except MemoryError:
        return f"{name!r}: not enough memory to load it. Upload a sample of the rows."
    notes = list(loaded.notes)
    if found and not drop_nonfinite:  # pragma: no cover - finalize raised above
        notes.append(f"{found} row(s) hold NaN or infinity.")
    S.set_data(state, X, loaded.labels, name=loaded.source or name, description=f"uploaded file {name}",
               notes=notes, nonfinite_found=found)
    return None


def load_sample_into(state, dataset):
    """Make a vqcore Dataset the active data."""
    return S.set_data(state, dataset.X, dataset.labels, dataset.name, description=dataset.description,
                      notes=[], nonfinite_found=0)


# ---------------------------------------------------------------- downloads


def codes_npy(codes):
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(codes), allow_pickle=False)
    return buf.getvalue()


def codebooks_npz(quantizer):
    arrays = {"codebooks": np.asarray(quantizer.codebooks_)}
    if hasattr(quantizer, "rotation_"):
        arrays["rotation"] = np.asarray(quantizer.rotation_)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def spec_json(quantizer, report, *, train_size, seed, data_name, data_key):
    return json.dumps({
        "spec": quantizer.spec(),
        "faiss_index_factory": quantizer.faiss_string(),
        "class": type(quantizer).__name__,
        "params": report["params"],
        "training_subsample": report.get("n_train", train_size),
        "seed": seed,
        "data": {"name": data_name, "content_hash": data_key, "n": report["n"], "d": report["d"]},
    }, indent=2)


def report_json(report):
    return report_to_json(report)


def report_csv(report):
    return report_to_csv(report)
