"""Session keys and the data set the person is looking at.

Every key lives here, prefixed by the page that owns it (``home_``, ``q_``,
``cmp_``, ``map_``, ``learn_``); ``data`` and ``train_size`` are shared.
State is initialised once with ``setdefault``. Streamlit forgets the value of
a widget whose page is not shown, so widget values that must survive a page
switch are mirrored in a ``keep_<key>`` entry (see :func:`kept` /
:func:`remember`).
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict

import numpy as np

from vqcore.inspect import preprocess
from vqcore.report import Report

# shared
DATA = "data"  # ActiveData
TRAIN_SIZE = "train_size"  # default training subsample for every fit
SEED = "seed"

# home page
HOME_SOURCE = "home_source"
HOME_SAMPLE = "home_sample"
HOME_UPLOAD = "home_upload"
HOME_UPLOAD_SIG = "home_upload_sig"
HOME_UPLOAD_ERROR = "home_upload_error"
HOME_UPLOADED = "home_uploaded"  # (name, (array_key, text_column, drop)) of the last file read successfully
HOME_CENTER = "home_center"
HOME_NORMALIZE = "home_normalize"
HOME_DROP_NONFINITE = "home_drop_nonfinite"
HOME_FOLDER_PICK = "home_folder_pick"  # the dataset of the data folder chosen (its name there)
HOME_FOLDER_SAMPLE = "home_folder_sample"  # rows of the sample drawn from it
HOME_FOLDER_ERROR = "home_folder_error"  # why the last dataset chosen could not be opened

# a whole catalogue opened from the server's data folder (ui.catalogue.Catalogue); the active data is
# then its sample
CATALOGUE = "catalogue"



class RunArgs(TypedDict):
    """The arguments a result was computed with (ui.cache.run; ui.data.model_args for a loaded model)."""

    key: str  # the data's content hash
    spec: str  # the quantizer's spec, or "model:<hash>" for a loaded model
    params: tuple  # sorted (name, value) pairs of from_spec's keyword arguments
    train_size: int  # 0 for a loaded model (nothing fitted)
    seed: int


class RunResult(TypedDict):
    """What ui.cache.run (and run_model, run_with_progress) returns: the fit, the codes and the report."""

    quantizer: Any  # the fitted vqcore quantizer
    fit_seconds: float | None  # None for a loaded model
    n_train: int
    base_idx: np.ndarray  # rows searched for recall
    query_idx: np.ndarray  # held-out query rows (they still have codes)
    codes: np.ndarray  # (n, M), one row per row of the data, in order
    report: Report  # vqcore.report.evaluate, with n_train
    eval_seconds: float


class ModelRef(TypedDict):
    key: str  # the model file's content hash
    name: str


class QuantizeResult(TypedDict):
    """The Quantize page's stored result (``state[Q_RESULT]``), read by the Map and Semantic IDs pages."""

    args: RunArgs
    result: RunResult
    data_name: str
    model: NotRequired[ModelRef]  # when the codes come from a loaded trained model


# quantize page
Q_RESULT = "q_result"  # QuantizeResult
Q_MODEL = "q_model"  # the trained model loaded: {"key": content hash, "name", "quantizer"}
Q_MODEL_SIG, Q_MODEL_ERROR = "q_model_sig", "q_model_error"
Q_PIPELINE = "q_pipeline"  # codes the user's own pipeline produced: {"name", "codes"}
Q_PIPELINE_SIG, Q_PIPELINE_ERROR = "q_pipeline_sig", "q_pipeline_error"
Q_WHOLE = "q_whole"  # the Quantize result on every row of the open catalogue (ui.catalogue.whole_run)
Q_WHOLE_STOPPED = "q_whole_stopped"  # {"sig", "fraction", "message"} of a whole-catalogue pass the user stopped

# compare page
CMP_RESULTS = "cmp_results"  # {(data key, spec, params...): result}
CMP_BEAMS = "cmp_beams"  # {(data key, spec, params...): beam sweep (list of dict)}
CMP_BASELINES = "cmp_baselines"  # {model key: [specs fitted beside the loaded model at its bits]}

# Semantic IDs page
SID_CODES = "sid_codes"  # the code set shown (ui.data.code_set)
SID_UPLOAD_SIG, SID_UPLOAD_ERROR = "sid_upload_sig", "sid_upload_error"
SID_DEDUP = "sid_dedup"  # the de-duplicated codes of the shown set, once asked for
SID_OTHER = "sid_other"  # a second code set of the same items, compared with the shown one
SID_OTHER_SIG, SID_OTHER_ERROR = "sid_other_sig", "sid_other_error"

# Collapse lab
TRAIN_RESULT = "train_result"  # {"data_key", "train_size", "configs": {name: TrainConfig}, "runs": {name: result}}

# map page
MAP_UMAP = "map_umap"  # {"args": tuple, "emb": ..., ...}

KEEP = "keep_"  # prefix of the remembered value of a widget

DEFAULT_TRAIN_SIZE = 4096
DEFAULT_SEED = 0


@dataclass
class ActiveData:
    """The loaded data set, as loaded and after the home page's options.

    ``key`` is a hash of the content of everything a cached result or a page built on one
    depends on: ``X`` (as preprocessed), the labels, the ids and the row numbers (never a file
    name; :func:`data_key`). Every cached result is keyed on it, so two uploads of the same
    vectors with other texts or ids never share a result. ``rows`` gives each row of ``X`` its number in
    the user's file (counting data rows from 0) where rows were dropped on
    loading; None when row i of ``X`` is row i of the file. Item numbers shown
    or exported are these (:meth:`row_numbers`). ``ids`` is the file's id column (vqcore.io's
    ``LoadedData.ids``), exported beside the row number; None when the file has none.
    """

    X_raw: np.ndarray
    labels: list | None
    name: str
    description: str = ""
    notes: list = field(default_factory=list)
    nonfinite_found: int = 0
    center: bool = False
    normalize: bool = False
    X: np.ndarray = None
    prep_notes: list = field(default_factory=list)
    key: str = ""
    rows: np.ndarray | None = None
    ids: np.ndarray | None = None  # the file's id column (int64, or strings), row i's at i; None without one
    upload: tuple | None = None  # (file name, bytes) of an .npz kept so another of its arrays can be chosen

    def __post_init__(self):
        if self.X is None:
            self.apply(self.center, self.normalize)
        _LIVE[id(self)] = self

    def apply(self, center, normalize):
        """Recompute ``X`` and ``key`` for these options (no-op when unchanged)."""
        if self.X is not None and (center, normalize) == (self.center, self.normalize):
            return False
        self.center, self.normalize = bool(center), bool(normalize)
        self.X, self.prep_notes = preprocess(self.X_raw, center=self.center, normalize=self.normalize)
        self.key = data_key(self.X, labels=self.labels, rows=self.rows, ids=self.ids)
        return True

    @property
    def shape(self):
        return self.X.shape

    def row_numbers(self, idx=None):
        """The file's row number of each row of ``X`` (or of the rows ``idx``), as int64."""
        rows = np.arange(self.X.shape[0], dtype=np.int64) if self.rows is None else self.rows
        return rows if idx is None else rows[idx]


# every data set some session holds, so that the server can say how much it holds (held_bytes);
# weak: a session that ends (its tab closed, then server.disconnectedSessionTTL) drops its own
_LIVE = weakref.WeakValueDictionary()


def held_bytes(exclude=None):
    """Bytes of the arrays held by every live data set of the process (each array counted once:
    the shipped samples are shared) and of the uploads they keep (:attr:`ActiveData.upload`), leaving out
    ``exclude`` (a session's current data)."""
    seen, total = set(), 0
    for data in list(_LIVE.values()):
        if data is exclude:
            continue
        for arr in (data.X_raw, data.X):
            if arr is not None and id(arr) not in seen:
                seen.add(id(arr))
                total += arr.nbytes
        if data.upload is not None and id(data.upload[1]) not in seen:
            seen.add(id(data.upload[1]))
            total += len(data.upload[1])
    return total


def content_hash(X):
    """A short hash of an array's bytes, shape and dtype (the cache key of a data set)."""
    X = np.ascontiguousarray(X)
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((X.shape, X.dtype.str)).encode())
    h.update(memoryview(X).cast("B"))
    return h.hexdigest()


def labels_hash(labels):
    """A short hash of a sequence of labels (texts or ids), each as its text, in order."""
    h = hashlib.blake2b(digest_size=16)
    h.update("".join(f"{lab}\x1f" for lab in labels).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def data_key(X, *, labels=None, rows=None, ids=None):
    """The cache key of a data set: a hash of ``X``'s content and of every per-row input a result or a
    page shows beside the codes (labels, the file's row numbers, the id column); ``"-"`` for each one
    the data does not have. The held-out query rows depend on ``X``'s row count and the seed only."""
    parts = [content_hash(X),
             "-" if labels is None else labels_hash(labels),
             "-" if rows is None else content_hash(np.asarray(rows, dtype=np.int64)),
             "-" if ids is None else labels_hash(ids)]
    return content_hash(np.frombuffer("|".join(parts).encode(), dtype=np.uint8))


def setdefault(state, key, value):
    """``state.setdefault`` for any mapping-like state (an AppTest's has no setdefault)."""
    if key not in state:
        state[key] = value
    return state[key]


def init(state, *, load_default=None):
    """Set every shared default once. ``load_default()`` returns the first data set."""
    setdefault(state, TRAIN_SIZE, DEFAULT_TRAIN_SIZE)
    setdefault(state, SEED, DEFAULT_SEED)
    setdefault(state, CMP_RESULTS, {})
    setdefault(state, CMP_BEAMS, {})
    setdefault(state, CMP_BASELINES, {})
    if DATA not in state and load_default is not None:
        state[DATA] = load_default()


def set_data(state, X, labels=None, name="data", *, description="", notes=(), nonfinite_found=0,
             center=None, normalize=None, rows=None, ids=None):
    """Make X the active data set (keeping the current centre / normalise options).

    ``rows``: the file's row number of each row of X, when rows were dropped on loading;
    ``ids``: the file's id column, one per row of X."""
    old = state.get(DATA)
    center = (old.center if old is not None else False) if center is None else center
    normalize = (old.normalize if old is not None else False) if normalize is None else normalize
    state[DATA] = ActiveData(
        X_raw=np.ascontiguousarray(X, dtype=np.float32), labels=None if labels is None else list(labels),
        name=name, description=description, notes=list(notes), nonfinite_found=int(nonfinite_found),
        center=center, normalize=normalize,
        rows=None if rows is None else np.asarray(rows, dtype=np.int64),
        ids=None if ids is None else np.asarray(ids),
    )
    return state[DATA]


def seed(state, dataset, **kw):
    """Pre-seed a session (e.g. an AppTest's ``session_state``) with a vqcore Dataset."""
    init(state)
    return set_data(state, dataset.X, dataset.labels, dataset.name, description=dataset.description, **kw)


def kept(state, key, default):
    """The value widget ``key`` is drawn with: its remembered value (see :func:`remember`), else ``default``.

    Pass it as the widget's own starting value (``value=``, ``index=`` or ``default=``),
    never by writing ``state[key]`` before the widget is drawn: in the browser, a widget
    that comes back after a run without it (another method's settings, another page)
    and whose value was written to its key shows its minimum, not that value, and sends
    it back on the next click (issue 15: RQ's Iterations 10 -> 1 after a visit to AQ).
    While the widget is on the page, Streamlit keeps its value and ignores this one.
    """
    return state.get(KEEP + key, default)


def remember(state, key):
    """After drawing widget ``key``: remember its value across page switches."""
    if key in state:
        state[KEEP + key] = state[key]


def clamp(state, key, low, high):
    """Keep a drawn widget's value within [low, high] (a bound that moved, e.g. with the data)."""
    if key in state and not low <= state[key] <= high:
        state[key] = min(max(state[key], low), high)
