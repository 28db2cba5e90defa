"""Loading data into the session (uploads and samples) and building downloads.

:func:`accept_upload` takes the file's bytes and name, so it is tested without
a browser; on any failure the previously loaded data stays and the message is
returned for ``st.error``.
"""

from __future__ import annotations

import io
import json
import os

import numpy as np

from vqcore import DataError, VQLensError
from vqcore.csvfile import csv_bytes
from vqcore.io import DEFAULT_MAX_BYTES, finalize, list_npz_arrays, load_embeddings
from vqcore.report import report_to_csv, report_to_json

from . import state as S

MAX_UPLOAD_MB = DEFAULT_MAX_BYTES // 2**20
#: Most data (uploaded arrays, as loaded and preprocessed) one server process holds for all its
#: sessions, in MiB; ``VQLENS_MAX_HELD_MB`` sets it. An upload that would pass it is refused.
MAX_HELD_MB = int(os.environ.get("VQLENS_MAX_HELD_MB", "2048"))


def over_cap(state, name, incoming):
    """The message when ``incoming`` more bytes would take the server past MAX_HELD_MB, else None."""
    held = S.held_bytes(exclude=state.get(S.DATA))
    if held + incoming <= MAX_HELD_MB * 2**20:
        return None
    return (f"{name!r} was not loaded: this server already holds {held / 2**20:,.0f} MiB of data for its open "
            f"sessions, and with this file ({incoming / 2**20:,.0f} MiB as loaded) it would pass its cap of "
            f"{MAX_HELD_MB:,.0f} MiB (VQLENS_MAX_HELD_MB). Try again in a few minutes (data of closed tabs is "
            "released), upload a sample of the rows, or use a shipped sample.")


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
    message is returned, and the data loaded before stays active. A file that would take the
    server past :data:`MAX_HELD_MB` is refused, before parsing when its size alone would.
    """
    too_much = over_cap(state, name, len(data))  # the file itself, while it is read
    if too_much:
        return too_much
    try:
        loaded = load_embeddings(data, name, array_key=array_key or None, text_column=text_column or None)
        found = int(loaded.nonfinite_rows)
        # the file's row number of every row kept, so that item numbers stay those of the file
        rows = np.flatnonzero(np.isfinite(loaded.X).all(axis=1)) if found else None
        X = finalize(loaded, nonfinite="drop" if drop_nonfinite else "error")
    except VQLensError as exc:
        return str(exc)
    except MemoryError:
        return f"{name!r}: not enough memory to load it. Upload a sample of the rows."
    too_much = over_cap(state, name, X.nbytes)
    if too_much:
        return too_much
    notes = list(loaded.notes)
    if found and not drop_nonfinite:  # pragma: no cover - finalize raised above
        notes.append(f"{found} row(s) hold NaN or infinity.")
    new = S.set_data(state, X, loaded.labels, name=loaded.source or name, description=f"uploaded file {name}",
                     notes=notes, nonfinite_found=found, rows=rows, ids=loaded.ids)
    # an .npz of several arrays is kept (within the cap) so that another array or label array can be
    # chosen without uploading it again (the uploader's own copy is released once read)
    if str(name).lower().endswith(".npz") and len(npz_arrays(data)) > 1 \
            and over_cap(state, name, X.nbytes + len(data)) is None:
        new.upload = (str(name), bytes(data))
    return None


def npz_arrays(data):
    """``name (shape dtype)`` of every array of an .npz, for a person choosing one."""
    return [f"{name!r} ({' × '.join(f'{s:,}' for s in shape)} {dtype})" for name, shape, dtype in
            list_npz_arrays(data)]


def reread_upload(state, *, array_key=None, text_column=None, drop_nonfinite=True):
    """Read the .npz the active data keeps (:attr:`ui.state.ActiveData.upload`) again with other choices;
    None, or the message (the data stays as it was). No upload kept: a message saying to upload it again."""
    data = state.get(S.DATA)
    if data is None or data.upload is None:
        return "The file is no longer held by the server: upload it again to read it with these choices."
    name, raw = data.upload
    return accept_upload(state, raw, name, array_key=array_key, text_column=text_column,
                         drop_nonfinite=drop_nonfinite)


def load_sample_into(state, dataset):
    """Make a vqcore Dataset the active data."""
    return S.set_data(state, dataset.X, dataset.labels, dataset.name, description=dataset.description,
                      notes=[], nonfinite_found=0)


# ---------------------------------------------------------------- downloads


def per_row_csv(codes, rows, *, ids=None, labels=None, level_names=None, label_name="label"):
    """One CSV line per item, in item order: ``row`` (the file's row number), ``id`` (the data's id
    column, when it has one), one column per code level, then the label (when the data has labels).

    Written by vqcore.semantic_ids.export_codes (vqcore.csvfile): an id or a label a spreadsheet
    would run as a formula starts with ``'``. vqcore.io.load_codes reads the file back as the codes:
    it drops the ``row`` column and sets the ``id`` column aside."""
    from vqcore.semantic_ids import export_codes

    return export_codes(codes, "csv", rows=np.asarray(rows, dtype=np.int64), ids=ids, labels=labels,
                        level_names=level_names, label_name=label_name)


def codes_csv(codes, rows, labels=None, ids=None):
    """The codes as CSV: the file's row number, its id (when the data has an id column), one column per
    code position (``code_0``, ...), then the label (when the data has labels). Every row of the data
    has its line."""
    return per_row_csv(codes, rows, ids=ids, labels=labels, level_names=[f"code_{m}" for m in range(codes.shape[1])])


def _id_array(ids):
    """Ids for an .npz: int64, or fixed-width unicode (never an object array, which needs pickle)."""
    ids = np.asarray(ids)
    return ids.astype(np.int64) if ids.dtype.kind in "iu" else ids.astype(str)


def codes_npz(codes, rows, ids=None):
    """The codes as .npz: ``codes`` (n, M), row i for ``row[i]``, the file's row number, and ``id[i]``,
    its id, when the data has an id column."""
    buf = io.BytesIO()
    extra = {} if ids is None else {"id": _id_array(ids)}
    np.savez_compressed(buf, codes=np.ascontiguousarray(codes), row=np.asarray(rows, dtype=np.int64), **extra)
    return buf.getvalue()


def map_points_csv(P, codes_m, rows, *, position, ids=None, labels=None):
    """The points of a map as CSV: each item's row number, id (when the data has an id column), its 2-D
    coordinates, its code at ``position`` and its label (when the data has labels)."""
    P = np.asarray(P, dtype=np.float64)
    header = ["row"] + (["id"] if ids is not None else []) + ["x", "y", f"code_{int(position)}"] \
        + (["label"] if labels is not None else [])
    cols = [np.asarray(rows, dtype=np.int64).tolist()] + ([np.asarray(ids).tolist()] if ids is not None else [])
    cols += [P[:, 0].tolist(), P[:, 1].tolist(), np.asarray(codes_m).astype(np.int64).tolist()]
    cols += [[str(v) for v in labels]] if labels is not None else []
    return csv_bytes(zip(*cols, strict=True), header=header)


def codebooks_npz(quantizer):
    """The codebooks (and OPQ's rotation) with the method's spec and settings, so that
    vqcore.load_quantizer reads the file back as the same quantizer, giving the same codes
    (vqcore.models.save_codebooks; a PQ's codebooks would otherwise read back as RQ)."""
    from vqcore.models import save_codebooks

    return save_codebooks(quantizer)


def faiss_index(quantizer, codes):
    """A faiss index with the quantizer's codebooks holding every row by its codes, as bytes
    (vqcore.export; faiss packs the codes into bits)."""
    from vqcore.export import serialize_faiss_index, to_faiss_index

    return serialize_faiss_index(to_faiss_index(quantizer, codes))


def id_table(codes, fmt, rows=None, labels=None, ids=None):
    """The item -> semantic ID table (vqcore.semantic_ids.id_table): ``row``, the file's row number of
    each item (``rows``, when rows were dropped on loading; else 0..n-1), ``id``, the data's id column
    (when it has one), the levels, ``semantic_id``, and the item's text when the data has labels."""
    from vqcore.semantic_ids import id_table as table

    id_list = None if ids is None else np.asarray(ids).tolist()
    return table(codes, fmt, rows=rows, ids=id_list, texts=labels)


def trie_json(codes):
    """The prefix trie of the IDs as JSON: each prefix, its children and the count of items under it."""
    from vqcore.semantic_ids import prefix_trie_json

    return prefix_trie_json(codes)


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


def table_csv(df):
    """A table (pandas DataFrame) as CSV bytes for a download, written by vqcore.csvfile: text cells
    a spreadsheet would run as a formula are neutralised, numbers stay numbers."""
    return csv_bytes(df.itertuples(index=False, name=None), header=[str(c) for c in df.columns])


# ---------------------------------------------------------------- semantic IDs page (pages/6_Semantic_IDs.py)


#: Largest codebook (codes per level) the Semantic IDs page draws: its usage charts have a bar per
#: code and its counts are M x K (the Quantize page's largest K as well).
SID_MAX_K = 2**16


def code_set(codes, codebook_size=None, *, X=None, labels=None, name="codes", source="", notes=(), sig=None,
             rows=None, ids=None):
    """Validate codes and their items into the dict the Semantic IDs page shows.

    ``codebook_size`` is one K for every level, or None to infer it as the
    largest code + 1 (a lower bound). ``X`` (embeddings) and ``labels`` (texts)
    are optional and must describe the same items, row i = item i. ``key``
    hashes the content of codes, K, X and labels (never a file name): every
    cached result of the page is keyed on it. ``rows``, optional, numbers the items
    as the rows of the user's file (item i is shown as ``rows[i]``; default i); ``ids``, optional, is
    the data's id column, item i's id at i, shown and exported beside it. K, inferred or given,
    is at most :data:`SID_MAX_K`.
    Raises :class:`vqcore.VQLensError`.
    """
    from vqcore.semantic_ids import validate_codes

    if codebook_size is not None and int(codebook_size) > SID_MAX_K:
        raise DataError(
            f"K = {int(codebook_size):,} is above the {SID_MAX_K:,} codes per level this page can draw (a bar "
            f"and a count per code). Enter the real K of your codebooks, at most {SID_MAX_K:,}."
        )

    if X is not None:
        X = np.asarray(X)
    n_items = X.shape[0] if X is not None else (len(labels) if labels is not None else None)
    codes, sizes = validate_codes(codes, codebook_size, n_items=n_items)
    if X is not None and labels is not None and len(labels) != X.shape[0]:
        raise VQLensError(f"labels has {len(labels)} entries but the embeddings have {X.shape[0]} rows; "
                          "row i of both must be item i.")
    notes = list(notes)
    if codebook_size is None:
        K = max(sizes)
        if K > SID_MAX_K:
            level = sizes.index(K)
            raise DataError(
                f"Level {level} holds the code {K - 1:,}, so K would be {K:,}: above the {SID_MAX_K:,} codes per "
                "level this page can draw (a bar and a count per code). Codes should be indices 0..K-1; "
                "if this level holds item ids, re-index it (np.unique(ids, return_inverse=True)) or drop it."
            )
        notes.append(f"K = {K} inferred as the largest code + 1; if the real codebooks are larger, enter K "
                     "(unused top codes are invisible in the file).")
    else:
        K = int(codebook_size)
    if rows is not None:
        rows = np.asarray(rows, dtype=np.int64)
        if rows.shape != (codes.shape[0],):
            raise VQLensError(f"rows has {rows.size} entries but the codes have {codes.shape[0]} rows.")
    if ids is not None:
        ids = np.asarray(ids)
        if ids.shape != (codes.shape[0],):
            raise VQLensError(f"ids has {ids.size} entries but the codes have {codes.shape[0]} rows.")
    parts = [S.content_hash(codes), str(K), S.content_hash(X) if X is not None else "-",
             S.labels_hash(labels) if labels is not None else "-", S.content_hash(rows) if rows is not None else "-",
             S.labels_hash(ids) if ids is not None else "-"]
    return {
        "codes": codes, "codebook_size": K, "X": X, "labels": None if labels is None else list(labels),
        "name": name, "source": source, "notes": notes, "sig": sig, "rows": rows, "ids": ids,
        "key": S.content_hash(np.frombuffer("|".join(parts).encode(), dtype=np.uint8)),
    }


def accept_codes_upload(state, data, name, *, items=None, codebook_size=None, text_column=None, array_key=None,
                        slot=S.SID_CODES):
    """Load an uploaded codes file into ``state[slot]``; return None, or the error message.

    ``items``, an :class:`ui.state.ActiveData`, supplies the embeddings (and the
    texts, when the file has none) of the same items: the codes must then have
    one row per data row. On any failure the codes loaded before stay.
    """
    from vqcore.io import load_codes

    try:
        loaded = load_codes(data, name, text_column=text_column or None, array_key=array_key or None)
        notes = list(loaded.notes)
        labels, X, ids = loaded.labels, None, None
        if items is not None:
            X, ids = items.X, items.ids
            if labels is None and items.labels is not None:
                labels = items.labels
                notes.append(f"Texts from the home page's data ({items.name}).")
            notes.append(f"Embeddings from the home page's data ({items.name}), row i = item i.")
        cs = code_set(loaded.codes, codebook_size or None, X=X, labels=labels, name=loaded.source or name,
                      source=f"uploaded file {name}", notes=notes, ids=ids)
    except VQLensError as exc:
        return str(exc)
    except MemoryError:
        return f"{name!r}: not enough memory to load it. Upload a sample of the rows."
    state[slot] = cs
    return None


def quantize_code_set(stored, data, note=None):
    """The code set of the Quantize page's result: the codes of every row, with their embeddings,
    texts and row numbers (item i is row i of the data). ``note``, optional, says what the rows
    are instead (e.g. a catalogue's sample, ui.catalogue.code_set_note)."""
    res, args = stored["result"], stored["args"]
    q = res["quantizer"]
    n = res["codes"].shape[0]
    notes = [note or (f"All {n:,} rows of {data.name}, with their embeddings" + (" and texts" if data.labels else "")
                      + "; an item's number is its row in the data" + (
                          " file (rows with NaN or infinity were dropped on loading)." if data.rows is not None
                          else "."))]
    return code_set(res["codes"], q.codebook_size, X=data.X, labels=data.labels,
                    name=f"{q.spec()} on {stored.get('data_name', data.name)}", source="the Quantize page",
                    notes=notes, sig=("quantize", data.key, repr(sorted(args.items()))),
                    rows=data.rows, ids=data.ids)


def item_numbers(cs, idx):
    """The numbers shown for the items ``idx`` of a code set: rows of the user's file."""
    idx = np.asarray(idx, dtype=np.int64)
    return idx if cs.get("rows") is None else cs["rows"][idx]


def item_ids(cs, idx):
    """The ids of the items ``idx`` of a code set (the data's id column), or None when it has none."""
    return None if cs.get("ids") is None else cs["ids"][np.asarray(idx, dtype=np.int64)]


def demo_code_set(demo):
    """The code set of the one-click demo (:func:`ui.cache.sid_demo`)."""
    return code_set(demo["codes"], demo["codebook_size"], X=demo["X"], labels=demo["labels"], name=demo["name"],
                    source="the demo", notes=demo["notes"], sig=("demo", demo["spec"]))


# ---------------------------------------------------------------- trained models (pages/1_Quantize.py)


def model_key(raw, name):
    """The cache key of an uploaded model file: a hash of its content (never its name), and the
    extension, which names the format."""
    import os

    ext = os.path.splitext(str(name))[1].lower()
    return S.content_hash(np.frombuffer(bytes(raw), dtype=np.uint8)), ext


def accept_model_upload(state, raw, name):
    """Load an uploaded trained model into ``state[Q_MODEL]``; return None, or the error message.

    Parsed by vqcore.load_quantizer (nothing is unpickled or run; the caps of the data uploads);
    on any failure the model loaded before stays.
    """
    from . import cache

    key, ext = model_key(raw, name)
    try:
        q = cache.load_model(key, ext, bytes(raw), str(name))
    except VQLensError as exc:
        return str(exc)
    except MemoryError:
        return f"{name!r}: not enough memory to load it. Save only the quantizer's weights."
    state[S.Q_MODEL] = {"key": key, "name": str(name), "quantizer": q}
    return None


def accept_pipeline_codes(state, raw, name, model, data):
    """Load the codes the user's own pipeline produced for the loaded data, checked against the
    loaded ``model`` (vqcore.check_model_data), into ``state[Q_PIPELINE]``; None, or the message."""
    from vqcore.io import load_codes
    from vqcore.models import check_model_data

    try:
        loaded = load_codes(raw, name)
        check_model_data(model, data.X, codes=loaded.codes)
    except VQLensError as exc:
        return str(exc)
    except MemoryError:
        return f"{name!r}: not enough memory to load it. Upload a sample of the rows."
    codes = np.ascontiguousarray(loaded.codes)
    state[S.Q_PIPELINE] = {"name": str(name), "codes": codes, "key": S.content_hash(codes)}
    return None


def model_args(data_key, model, beam, seed):
    """The ``args`` of a loaded model's result on the Quantize page (as a fit's, for the other pages)."""
    return {"key": data_key, "spec": f"model:{model['key'][:12]}", "params": (("beam_size", int(beam)),),
            "train_size": 0, "seed": int(seed)}
