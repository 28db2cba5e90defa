"""The server's data folder and whole catalogues in the app.

Started with a data folder (``streamlit run app.py -- --data-dir /path``, or
``vqlens app --data-dir /path``; the environment variable ``VQLENS_DATA_DIR``
as well), the home page lists the datasets of that folder (and nothing
outside it: :mod:`vqcore.datafolder`) and opens one lazily
(:func:`vqcore.open_dataset`). The active data is then a reproducible random
sample of its rows, numbered by their rows in the catalogue: every per-point
view (the map, the item tables) works on it and says so. The Quantize page
fits on the sample, then encodes every row of the catalogue and measures it
streamed, chunk by chunk (:func:`vqcore.pipeline.report_dataset`), with a
progress bar and a Stop button (a stopped pass keeps nothing); the codes of
every row are written to a parquet file as they come, for a download. Off by default: it reads the server's disk.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import StopException

from vqcore import progress
from vqcore.catalog import DEFAULT_CHUNK_ROWS
from vqcore.cli import CodesWriter
from vqcore.datafolder import check_data_dir, list_datasets, open_in_folder
from vqcore.exceptions import DataError, VQLensError
from vqcore.io.limits import id_array
from vqcore.pipeline import draw_queries, report_dataset
from vqcore.report import default_n_queries
from vqcore.semantic_ids import prefix_table

from . import state as S
from .data import over_cap
from .store import HoldBack, Miss, kept, unless_abandoned

FLAG = "--data-dir"
ENV = "VQLENS_DATA_DIR"
DEFAULT_SAMPLE_ROWS = 20_000
MIN_SAMPLE_ROWS = 100
MAX_SAMPLE_ROWS = 500_000
SAMPLE_SEED = 0
#: Longest label kept of a catalogue's text column (the texts of the sample are held in memory).
MAX_TEXT_CHARS = 1_000
#: Largest codes file offered as a download through the browser (it is read into the server's memory).
MAX_DOWNLOAD_MB = 256
#: Share of the progress bar the encoding pass takes; the metrics pass (codes only) the rest.
ENCODE_SHARE = 0.85
STOP_KEY = "q_whole_stop"  # the Stop button of a whole-catalogue pass
_KEEP_FILES = 8  # codes files kept on the server's disk (as many as results kept)


# ---------------------------------------------------------------- the data folder


def data_dir_arg(argv=None, environ=None):
    """The data folder asked for: ``--data-dir PATH`` or ``--data-dir=PATH`` in ``argv`` (default the
    script's arguments, ``sys.argv[1:]``; the last one wins), else ``VQLENS_DATA_DIR``; None when
    neither is given. Other arguments are ignored. ``--data-dir`` without a value gives ``""``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    environ = os.environ if environ is None else environ
    value = None
    for i, arg in enumerate(argv):
        if arg == FLAG:
            value = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else ""
        elif arg.startswith(FLAG + "="):
            value = arg[len(FLAG) + 1:]
    if value is None:
        value = environ.get(ENV) or None
    return value


def data_dir(argv=None, environ=None):
    """``(root, problem)``: the data folder's real path, or None and why it cannot be used (None
    for both when no folder was asked for)."""
    value = data_dir_arg(argv, environ)
    if value is None:
        return None, None
    try:
        return check_data_dir(value), None
    except DataError as exc:
        return None, str(exc)


@st.cache_data(ttl=20, max_entries=4, show_spinner=False)
def listing(root):
    """vqcore.datafolder.list_datasets of the folder, kept 20 s (new files show up after that)."""
    return list_datasets(root)


def human_bytes(nbytes):
    size = float(nbytes)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} TB"  # pragma: no cover


def listing_rows(lst):
    """The folder's datasets as table rows (plain text cells: a table shows names as they are)."""
    return [{"dataset": e.name, "kind": e.kind, "rows n": e.n, "d": e.d, "dtype": e.dtype or "",
             "size": human_bytes(e.nbytes), "files": e.files, "problem": e.error or ""} for e in lst.entries]


def entry_label(entry):
    """One line for a dataset in a picker (shown as plain text)."""
    return f"{entry.name}  ({entry.n:,} × {entry.d}, {entry.dtype}, {human_bytes(entry.nbytes)})"


# ---------------------------------------------------------------- an open catalogue


@dataclass
class Catalogue:
    """A dataset of the data folder, opened lazily, and the sample that is the active data."""

    name: str
    root: str
    dataset: object  # vqcore.catalog.LazyDataset
    sample_rows: int
    seed: int
    key: str  # the files (path, size, mtime) and the sample's content
    data: object  # the ActiveData of the sample (ui.state)

    @property
    def n(self):
        return self.dataset.n

    @property
    def d(self):
        return self.dataset.d


def _fingerprint(ds, sample_key):
    files = getattr(ds, "files", None) or [ds.path]
    h = hashlib.blake2b(digest_size=16)
    h.update(sample_key.encode())
    for f in files:
        st_ = os.stat(f)
        h.update(f"{os.path.realpath(f)}|{st_.st_size}|{st_.st_mtime_ns}\x1f".encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def open_into(state, root, name, sample_rows=DEFAULT_SAMPLE_ROWS, seed=SAMPLE_SEED):
    """Open ``name`` of the data folder and make a random sample of its rows the active data.

    Returns None, or the message saying why it could not be opened (the data loaded
    before then stays). The sample's rows keep their catalogue row numbers.
    """
    try:
        ds = open_in_folder(root, name)
        k = min(int(sample_rows), ds.n)
        too_much = over_cap(state, name, 2 * k * ds.d * 4)  # as loaded and as used
        if too_much:
            return too_much
        rows = ds.sample_rows(k, random_state=seed)
        X = ds.take(rows)
        texts = ds.take_texts(rows, max_chars=MAX_TEXT_CHARS)  # the sampled rows' texts only
        ids = ds.take_ids(rows)  # and their ids
    except VQLensError as exc:
        return str(exc)
    except OSError as exc:
        return f"{name!r} cannot be read: {exc.strerror or exc}."
    except MemoryError:
        return f"{name!r}: not enough memory for a sample of {int(sample_rows):,} rows; draw fewer."
    whole = k == ds.n
    notes = [f"The catalogue has {ds.n:,} rows of d = {ds.d} ({ds.dtype}), read lazily from the server's "
             "data folder." + (" All of them are loaded." if whole else
                               f" The pages' per-point views use a sample of {k:,} rows drawn at random "
                               f"(seed {seed}), numbered by their catalogue rows; the Quantize and "
                               "Semantic IDs pages measure every row."),
             "Vectors are used as stored (no centring or normalising)."]
    if texts is not None:
        notes.append(f"Labels: the text column {ds.text_column!r} of each row (up to {MAX_TEXT_CHARS:,} "
                     "characters each).")
    data = S.set_data(state, X, texts, name=name, description=(
        f"{'all' if whole else f'{k:,} random'} rows of {ds.n:,} of the catalogue {name} (seed {seed})"),
        notes=notes, rows=rows, ids=None if ids is None else id_array(ids), center=False, normalize=False)
    state[S.CATALOGUE] = Catalogue(name=name, root=root, dataset=ds, sample_rows=k, seed=seed,
                                   key=_fingerprint(ds, data.key), data=data)
    return None


def active(state):
    """The open catalogue whose sample is the active data now, or None."""
    cat = state.get(S.CATALOGUE)
    if cat is None or state.get(S.DATA) is not cat.data:
        return None
    return cat


def sample_caption(cat, shown, *, what="Map", seed=None):
    """Says that a per-point view shows ``shown`` random items of the catalogue, and how they were drawn."""
    if shown >= cat.n:
        return f"{what} of all {cat.n:,} items of the catalogue."
    how = f"drawn at random with seed {cat.seed}"
    if shown < cat.sample_rows:
        how = (f"drawn at random: the catalogue's sample of {cat.sample_rows:,} rows (seed {cat.seed}), then "
               f"{shown:,} of those (seed {seed if seed is not None else cat.seed})")
    return f"{what} of {shown:,} of {cat.n:,} items, {how}."


def code_set_note(state):
    """What the rows of a Quantize code set are when the data is a catalogue's sample, else None."""
    cat = active(state)
    if cat is None:
        return None
    if cat.sample_rows >= cat.n:
        return f"All {cat.n:,} rows of the catalogue {cat.name}, with their embeddings."
    return (f"The {cat.sample_rows:,} rows of the catalogue {cat.name}'s random sample (seed {cat.seed}) of its "
            f"{cat.n:,}, with their embeddings; an item's number is its row in the catalogue.")


# ---------------------------------------------------------------- every row of the catalogue


def run_key(stored):
    """The Quantize result a whole-catalogue run belongs to (its arguments and model)."""
    return repr((sorted(stored["args"].items()), (stored.get("model") or {}).get("key")))


@st.cache_data(max_entries=_KEEP_FILES, show_spinner=False)
def _finished_whole(cat_key, result_key, _result=None):
    """The finished :func:`whole_run` of these arguments; a store, as ui.cache's finished fits."""
    if _result is None:
        raise Miss
    return _result


def codes_folder():
    """Where the codes files of whole catalogues go (this server process's own temporary folder)."""
    folder = os.path.join(tempfile.gettempdir(), f"vqlens-catalogue-codes-{os.getpid()}")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    return folder


def _prune(folder, keep):
    files = sorted((os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".parquet")),
                   key=os.path.getmtime, reverse=True)
    for f in files[_KEEP_FILES:]:
        if f != keep:
            try:
                os.unlink(f)
            except OSError:
                pass


def _phases(on_progress):
    """Reports of report_dataset's two passes (``encode: ...``, then ``metrics: ...``) as one bar."""
    def report(fraction, message):
        if message.startswith("metrics"):
            on_progress(ENCODE_SHARE + (1.0 - ENCODE_SHARE) * fraction, message)
        else:
            on_progress(ENCODE_SHARE * fraction, message)
    return report


def _whole(cat, result, seed, on_progress, chunk_rows):
    on_progress.check()  # abandoned while it waited for the lock?
    ds, q = cat.dataset, result["quantizer"]
    qrows, queries, query_set = draw_queries(ds, default_n_queries(ds.n), seed)
    digest = hashlib.blake2b(f"{cat.key}|{q.spec()}|{seed}|{time.time_ns()}".encode(), digest_size=8).hexdigest()
    final = os.path.join(codes_folder(), f"codes-{digest}.parquet")
    tmp = f"{final}.tmp-{threading.get_ident()}"
    writer = CodesWriter(tmp, ds, q.n_codebooks)
    t0 = time.perf_counter()
    try:
        with progress.reporting(_phases(on_progress)):
            report, _ = report_dataset(q, ds, chunk_rows=chunk_rows, queries=queries, query_rows=qrows,
                                       query_set=query_set, fit_seconds=result["fit_seconds"], on_codes=writer,
                                       random_state=seed)
        writer.close()
        if writer.rows != ds.n:  # pragma: no cover - report_dataset hands every chunk over
            raise VQLensError(f"the codes file holds {writer.rows:,} rows, not the catalogue's {ds.n:,}.")
        os.replace(tmp, final)
    finally:
        writer.close()
        if os.path.exists(tmp):
            os.unlink(tmp)
    _prune(os.path.dirname(final), final)
    report["n_train"] = result["n_train"]
    return {"report": report, "codes_path": final, "codes_rows": int(writer.rows),
            "codes_bytes": os.path.getsize(final), "seconds": time.perf_counter() - t0, "chunk_rows": chunk_rows}


def whole_run(cat, stored, *, on_progress=None, chunk_rows=DEFAULT_CHUNK_ROWS):
    """Encode every row of the catalogue with the Quantize result's quantizer (fitted on the sample)
    and measure it streamed (:func:`vqcore.pipeline.report_dataset`); kept per catalogue and result.

    Returns ``{"report", "codes_path", "codes_rows", "codes_bytes", "seconds", "chunk_rows"}``:
    the report of the whole catalogue (recall on rows drawn as queries with the result's seed + 1, left
    out of the searched base, as ``python -m vqcore report`` does) and a parquet file of every row's
    codes (``row``, the id column when there is one, ``level_0`` ...). One computation of the same
    arguments at a time; one whose browser went away ends at its next progress report and leaves no
    file and no lock (:mod:`ui.store`).
    """
    args = (cat.key, run_key(stored))
    checked = unless_abandoned(args, on_progress)
    return kept(_finished_whole, args, lambda: _whole(cat, stored["result"], stored["args"]["seed"], checked,
                                                      chunk_rows))


class _StopPass(Exception):
    """The person pressed Stop during a whole-catalogue pass (raised from its progress report)."""


def asks_stop(request):
    """Whether a rerun request Streamlit raised during a pass is the click of its Stop button (without
    fast reruns, the click comes to the running script so, with every widget's state)."""
    from streamlit.runtime.state.common import user_key_from_element_id

    states = getattr(getattr(request, "rerun_data", None), "widget_states", None)
    return states is not None and any(w.trigger_value and user_key_from_element_id(w.id) == STOP_KEY
                                      for w in states.widgets)


def _ask_stop(state, sig, at):
    """Stop's callback. With fast reruns (Streamlit's default) a click stops the running script (a
    StopException that does not say which widget was clicked, held back while the pass runs) and
    starts the click's run at once, whose first act is this callback: it marks the pass (``at``,
    which the pass reads at each progress report) and says where it stopped, for the new run's page."""
    at["stop"] = True
    state[S.Q_WHOLE_STOPPED] = {"sig": sig, "fraction": at["fraction"], "message": at["message"]}


def whole_with_progress(state, cat, stored, *, chunk_rows=DEFAULT_CHUNK_ROWS):
    """:func:`whole_run` with a progress bar that follows the encoding, then the metrics pass, and a
    Stop button. A click elsewhere is held back until the run is kept; Stop ends the pass at its next
    progress report: nothing of it is kept (no codes file, no result, no lock), ``state[Q_WHOLE_STOPPED]``
    says where it stopped, and the click's run shows the page with the settings as they are. Returns the
    entry for ``state[Q_WHOLE]``."""
    sig = (cat.key, run_key(stored))
    at = {"fraction": 0.0, "message": "starting", "stop": False}  # this pass's, shared with Stop's callback
    bar, stop = st.empty(), st.empty()
    stop.button("Stop", key=STOP_KEY, on_click=_ask_stop, args=(state, sig, at),
                help="End the pass over every row: nothing of it is kept, the sample's numbers stay.")
    text = f"Whole catalogue, {cat.n:,} rows: "

    def on_hold():
        if asks_stop(hold.request):
            _ask_stop(state, sig, at)
            raise _StopPass()

    hold = HoldBack(on_hold)

    def report(fraction, message):
        if at["stop"]:
            raise _StopPass()
        at.update(fraction=fraction, message=message)
        hold(lambda: bar.progress(fraction, text=f"{text}{message}…"))

    state.pop(S.Q_WHOLE_STOPPED, None)
    try:
        report(0.0, "starting")
        w = whole_run(cat, stored, on_progress=report, chunk_rows=chunk_rows)
    except _StopPass:
        # end this run as Streamlit asked (the click's run shows the page), keeping nothing
        raise (hold.request or StopException()) from None
    finally:
        bar.empty()
        stop.empty()
    hold.release()
    return {"sig": sig, **w}


def _of_result(state, key, stored):
    """``state[key]`` when it belongs to the Quantize result ``stored`` on the open catalogue, else None."""
    cat, v = active(state), state.get(key)
    if cat is None or stored is None or v is None or v["sig"] != (cat.key, run_key(stored)):
        return None
    return v


def stopped_for(state, stored):
    """Where the whole-catalogue pass of the Quantize result ``stored`` was stopped, or None."""
    return _of_result(state, S.Q_WHOLE_STOPPED, stored)


def whole_status(w):
    """The end of the Quantize status line for a whole-catalogue pass: what it measured and its time."""
    return f"every one of the {w['codes_rows']:,} rows of the catalogue encoded and measured in {w['seconds']:.1f} s"


def whole_for(state, stored):
    """The whole-catalogue run of the Quantize result ``stored`` on the open catalogue, or None."""
    return _of_result(state, S.Q_WHOLE, stored)


def whole_overview(report):
    """The Semantic IDs page's numbers from a whole-catalogue report: per depth (vqcore.semantic_ids.
    prefix_table), distinct IDs, items that repeat an earlier item's ID, the largest group."""
    n, M, K = report["n"], report["n_codebooks"], report["codebook_size"]
    table = prefix_table(n, [K] * M, report["collisions"]["prefix_rates"])
    groups = report["collisions"]["groups"]
    distinct = table["distinct_prefixes"][-1]
    return {"table": table, "distinct": distinct, "colliding": n - distinct,
            "collision_rate": report["collisions"]["rate"], "largest_group": groups[0]["size"] if groups else 1,
            "groups": groups, "report": report}


def group_rows(groups, shown=10):
    """The largest collision groups as table rows: the ID, its size and its first catalogue rows."""
    return [{"group": i + 1, "ID": "/".join(map(str, g["codes"])), "size": g["size"],
             "first rows": ", ".join(f"{r:,}" for r in g["items"][:shown])
             + (" …" if g["size"] > shown else "")} for i, g in enumerate(groups)]


def codes_download_problem(w):
    """Why the whole catalogue's codes file cannot be downloaded through the browser, or None."""
    if not os.path.exists(w["codes_path"]):
        return "its file was removed from the server (newer runs replace older ones); press Run again."
    if w["codes_bytes"] > MAX_DOWNLOAD_MB * 2**20:
        return (f"the file is {human_bytes(w['codes_bytes'])}, above the {MAX_DOWNLOAD_MB} MB this app sends "
                "through the browser; write it on the server with the command line instead.")
    return None


def read_codes_file(path):
    """The bytes of a codes file, for a download button (read when the button is clicked)."""
    with open(path, "rb") as f:
        return f.read()


def command_line(cat, model_file="codebooks.npz"):
    """The command that writes the same codes and report on the server, with the codebooks downloaded
    from the Quantize page (the same quantizer, so the same codes)."""
    import shlex

    return (f"python -m vqcore report {shlex.quote(os.path.join(cat.root, cat.name))} --model {model_file} "
            "--out OUT_DIR")
