"""Cached calls into vqcore. Keyed on the data's content hash (``key``), never
on a file name; the array itself is passed as an unhashed ``_X``. Every cache
has ``max_entries``. ``st.cache_data`` returns a copy, so callers may not
change what the cache holds.
"""

from __future__ import annotations

import gc
import threading
import time
from contextlib import contextmanager

import numpy as np
import streamlit as st

import vqcore
from vqcore import datasets, metrics, progress
from vqcore.inspect import codeword_points, data_summary, pca_basis, project, subsample_indices, umap_embed
from vqcore.report import beam_sweep as report_beam_sweep
from vqcore.report import default_n_queries, evaluate, holdout_split
from vqcore.report import recall_truth as report_recall_truth

from .store import HoldBack, Miss, drawing_progress, kept, unless_abandoned

MAP_MAX_POINTS = 10_000


# ---------------------------------------------------------------- process


def _warm_up():
    vqcore.warm_up()
    # Streamlit collects all garbage (gc.collect(2)) after every script run, which walks every
    # object of the process: about 250,000 from the imports alone (streamlit, plotly, numba,
    # scipy), 0.1-0.3 s after every rerun, with the GIL held. Moved to the permanent generation
    # once loaded, they are not walked again; what the sessions make later is collected as before.
    gc.freeze()


@st.cache_resource(show_spinner=False)
def warm_up_vqcore():
    """Once per server process, in a background thread: load vqcore's compiled loops (about
    0.4 s), so that the first Run does not wait for them, then freeze the objects loaded so far
    out of the garbage collector's reach (see ``_warm_up``)."""
    thread = threading.Thread(target=_warm_up, name="vqcore-warm-up", daemon=True)
    thread.start()
    return thread


# ---------------------------------------------------------------- data


@st.cache_data(max_entries=8, show_spinner=False)
def sample(name, n=None, d=None, rho=None, n_components=None):
    """A shipped sample or toy set (see vqcore.datasets) as a Dataset."""
    if name == "MiniLM sentences":
        return datasets.load_sample()
    if name == "Digits":
        return datasets.load_digits_dataset()
    if name == "Gaussian, uncorrelated":
        return datasets.make_gaussian(n, d, correlated=False, random_state=0)
    if name == "Gaussian, correlated":
        return datasets.make_gaussian(n, d, correlated=True, rho=rho, random_state=0)
    if name == "Gaussian mixture":
        return datasets.make_mixture(n, d, n_components, random_state=0)
    if name == "Rotated anisotropic":
        return datasets.make_rotated(n, d, random_state=0)
    raise vqcore.VQLensError(f"Unknown sample {name!r}.")


@st.cache_data(max_entries=8, show_spinner=False)
def summary(key, _X):
    return data_summary(_X)


# ---------------------------------------------------------------- fit and evaluate


def split(n, seed):
    """(base rows, query rows) of every fit on n rows: the codebooks train on base rows only, and
    each query row is searched for among the other rows for recall (every row still gets its code)."""
    nq = default_n_queries(n)
    if nq == 0:
        return np.arange(n), np.arange(0)
    return holdout_split(n, nq, random_state=seed)


@st.cache_data(max_entries=32, show_spinner=False)
def _finished_fit(key, spec, params, train_size, seed, _result=None):
    """The finished :func:`fit` of these arguments: a store, not a computation (as
    :func:`_finished_training`), because a fit's progress callback draws into elements
    made outside it, which a cached function could not replay. Raises ``Miss`` when
    asked without ``_result`` for a fit it does not hold."""
    if _result is None:
        raise Miss
    return _result


def fit(key, spec, params, train_size, seed, X, *, on_progress=None):
    """Fit ``from_spec(spec, **params)`` on a training subsample of the base rows (not the queries); cached.

    ``params`` is a tuple of (name, value) pairs. Returns a dict with the fitted
    ``quantizer``, ``fit_seconds``, ``n_train`` and the ``base_idx`` / ``query_idx``
    split. ``on_progress(fraction, message)`` follows a fit that is computed
    (:mod:`vqcore.progress`); an exception it raises ends the fit, and nothing is kept
    (:func:`drawing_progress` makes one that holds Streamlit's stop back instead).
    """
    args = (key, spec, params, train_size, seed)
    checked = unless_abandoned(args, on_progress)
    return kept(_finished_fit, args, lambda: _fit(X, spec, params, train_size, seed, checked))


def _fit(X, spec, params, train_size, seed, on_progress):
    base_idx, query_idx = split(X.shape[0], seed)
    train = base_idx[subsample_indices(len(base_idx), int(train_size), random_state=seed)]
    q = vqcore.from_spec(spec, random_state=seed, **dict(params))
    getattr(on_progress, "check", lambda: None)()  # abandoned while it waited for the lock?
    t0 = time.perf_counter()
    with progress.reporting(on_progress):
        q.fit(X[train])
    return {
        "quantizer": q,
        "fit_seconds": time.perf_counter() - t0,
        "n_train": int(len(train)),
        "base_idx": base_idx,
        "query_idx": query_idx,
    }


@st.cache_data(max_entries=32, show_spinner=False)
def _finished_run(key, spec, params, train_size, seed, _result=None):
    """The finished :func:`run` of these arguments; a store, as :func:`_finished_fit`."""
    if _result is None:
        raise Miss
    return _result


def run(key, spec, params, train_size, seed, X, *, on_progress=None):
    """Fit (kept), encode every row and evaluate: the whole result; cached.

    ``codes`` has one row per row of X, in order; the held-out query rows are only *also*
    used for recall, searched for among the other rows. ``on_progress`` follows the encoding
    (in blocks, for large data) when the result is computed; as for :func:`fit`.
    """
    args = (key, spec, params, train_size, seed)
    checked = unless_abandoned(args, on_progress)
    return kept(_finished_run, args,
                lambda: _evaluate(fit(*args, X), X, seed, checked, truth=lambda: recall_truth(key, seed, X)))


@st.cache_data(max_entries=8, show_spinner=False)
def recall_truth(key, seed, _X):
    """Each held-out query's exact nearest neighbour among the other rows (:func:`vqcore.report.recall_truth`),
    once per data and seed: every run on the same data, of any method or model, measures recall against
    it (0.1 s of CPU on the sample, seconds on 100,000 rows). None without queries."""
    _, query_idx = split(_X.shape[0], seed)
    return report_recall_truth(_X, query_idx) if len(query_idx) else None


def _evaluate(f, X, seed, on_progress, truth=None):
    """Encode every row and measure; ``truth()`` gives recall's ground truth (:func:`recall_truth`,
    cached per data), timed with the evaluation."""
    q = f["quantizer"]
    t0 = time.perf_counter()
    with progress.reporting(on_progress):
        codes = q.encode(X)
    encode_seconds = time.perf_counter() - t0
    nq = len(f["query_idx"])
    query_set = (
        f"{nq:,} rows drawn at random (seed {seed}), each searched for among the other "
        f"{X.shape[0] - nq:,} (not trained on; they have codes and count in every other metric)"
        if nq else "no queries (fewer than 50 rows)"
    )
    report = evaluate(q, X, codes=codes, query_rows=f["query_idx"] if nq else None,
                      ground_truth=truth() if nq and truth is not None else None,
                      fit_seconds=f["fit_seconds"], query_set=query_set, encode_seconds=encode_seconds)
    report["n_train"] = f["n_train"]
    return {**f, "codes": codes, "report": report, "eval_seconds": time.perf_counter() - t0}


@st.cache_data(max_entries=32, show_spinner=False)
def beam_sweep(key, spec, params, train_size, seed, _X):
    """Error against encoding time for beams 1 to 16 with the fitted (cached) codebooks,
    on up to 5,000 rows (all of them, as the other measures, when there are fewer):
    :func:`vqcore.report.beam_sweep`."""
    f = fit(key, spec, params, train_size, seed, _X)
    return report_beam_sweep(f["quantizer"], _X, random_state=seed)


@st.cache_data(max_entries=32, show_spinner=False)
def grvq_norm_options(key, spec, params, train_size, seed, _X, max_rows=5000):
    """GRVQ's norm options on the fitted (cached) codebooks, measured on up to ``max_rows``
    base rows: :meth:`vqcore.GeneralizedResidualQuantizer.norm_options`."""
    f = fit(key, spec, params, train_size, seed, _X)
    idx = f["base_idx"]
    if len(idx) > max_rows:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_rows, replace=False))
    return f["quantizer"].norm_options(_X[idx])


def run_with_progress(key, spec, params, train_size, seed, X, *, label=None, then=None):
    """:func:`run` inside an ``st.status`` that says what it is doing, with a progress bar
    above it that follows the fit's stages or iterations, then the encoding of large data
    (:mod:`vqcore.progress`).

    ``then(res)``, when given, runs after that (below the status: the pass over every row of a
    catalogue, ``X`` being its sample) and returns what it measured, in words; the status line then
    says the fit and evaluation were the sample's, followed by those words."""
    label = label or spec
    n_train = min(int(train_size), X.shape[0])
    bar = st.empty()  # above the status, which stays collapsed

    def into_bar(prefix):
        return drawing_progress(lambda fraction, message: bar.progress(fraction, text=f"{prefix}{message}…"))

    with st.status(f"Running {label}…", expanded=False) as status:
        status.write(f"Fitting {label} on {n_train:,} training rows…")
        with into_bar(f"Fitting {label} on {n_train:,} rows: ") as on_progress:
            f = fit(key, spec, params, train_size, seed, X, on_progress=on_progress)
        bar.empty()
        status.write(f"Fitted in {f['fit_seconds']:.2f} s; encoding and measuring…")
        with into_bar(f"{label}: ") as on_progress:
            res = run(key, spec, params, train_size, seed, X, on_progress=on_progress)
        bar.empty()
        done = f"{label}: fit {res['fit_seconds']:.2f} s, evaluation {res['eval_seconds']:.2f} s"
        status.update(label=done if then is None else f"{done} on the sample of {X.shape[0]:,} rows; every row…",
                      state="complete" if then is None else "running")
    if then is not None:
        done = (f"{label}: fit {res['fit_seconds']:.2f} s on {res['n_train']:,} rows of the sample, its evaluation "
                f"{res['eval_seconds']:.2f} s")
        try:
            status.update(label=f"{done}; {then(res)}", state="complete")
        except BaseException:
            status.update(label=f"{done}; the pass over every row did not finish", state="error")
            raise
    return res


# ---------------------------------------------------------------- trained models (issue 18)


@st.cache_data(max_entries=4, show_spinner=False)
def load_model(model_key, ext, _raw, _name):
    """vqcore.load_quantizer of an uploaded model file; keyed on the file's content hash
    (``model_key``) and its extension (which names the format), never on its name: the name
    ``_name`` only goes in error messages (not cached), and the result names no file.
    Raises vqcore.DataError."""
    q = vqcore.load_quantizer(_raw, filename=_name)
    q.source_info_ = {**q.source_info_, "filename": f"model{ext}"}
    return q


def with_beam(quantizer, beam):
    """A copy of a loaded residual model that encodes with a beam of ``beam`` (1 = greedy, the
    libraries' own inference); other models are returned as they are."""
    import copy

    if "beam_size" not in quantizer.get_params() or int(beam) == quantizer.beam_size:
        return quantizer
    q = copy.deepcopy(quantizer)
    q.set_params(beam_size=int(beam))
    return q


@st.cache_data(max_entries=8, show_spinner=False)
def run_model(key, model_key, beam, seed, _quantizer, _X):
    """Encode every row with a loaded model (nothing is fitted) and evaluate it as :func:`run` does,
    with the same held-out queries as a fit of the same seed, so it compares with them."""
    base_idx, query_idx = split(_X.shape[0], seed)
    f = {"quantizer": with_beam(_quantizer, beam), "fit_seconds": None, "n_train": 0,
         "base_idx": base_idx, "query_idx": query_idx}
    return _evaluate(f, _X, seed, None, truth=lambda: recall_truth(key, seed, _X))


@st.cache_data(max_entries=8, show_spinner=False)
def model_agreement(key, model_key, beam, codes_key, _model_codes, _user_codes):
    """vqcore.semantic_ids.compare_code_sets of the codes the user's pipeline produced (A) against
    the codes the loaded codebooks give (B)."""
    from vqcore.semantic_ids import compare_code_sets

    return compare_code_sets(_user_codes, _model_codes)


# ---------------------------------------------------------------- maps


@st.cache_data(max_entries=8, show_spinner=False)
def map_rows(key, n, seed):
    """Rows shown on a map: all of them, or a random MAP_MAX_POINTS."""
    return subsample_indices(n, MAP_MAX_POINTS, random_state=seed)


@st.cache_data(max_entries=8, show_spinner=False)
def pca_map(key, _X):
    """2-D PCA basis of the data and every row's coordinates."""
    mean, comps = pca_basis(_X, 2)
    return mean, comps, project(_X, mean, comps)


def codeword_layer(result, position):
    """Codewords of one position in data space and how many items use each (not cached: cheap)."""
    q, codes = result["quantizer"], result["codes"]
    pts = codeword_points(q, codes, position)
    counts = metrics.code_counts(codes[:, position:position + 1], q.codebook_size)[0]
    return pts, counts


def map_highlight(codes, position, K, text):
    """The items a Map highlight picks, as (boolean mask over ``codes``' rows, what it is in words).

    ``text`` is a code at ``position`` (``"12"``) or a prefix of the whole code from position 0
    (``"12/3"``, as on the Semantic IDs page). Raises VQLensError for text that is neither, or a
    code out of range for K codes.
    """
    from vqcore.semantic_ids import items_under_prefix

    text = str(text).strip()
    if "/" not in text:
        try:
            c = int(text)
        except ValueError:
            raise vqcore.VQLensError(f"Highlight {text!r}: write a code (e.g. 12) or a prefix (e.g. 12/3).") from None
        if not 0 <= c < K:
            raise vqcore.VQLensError(f"Code {c} is out of range: codes run from 0 to {K - 1:,} (K = {K:,}).")
        return codes[:, position] == c, f"code {c} at position {position}"
    r = items_under_prefix(codes, text.strip("/"), limit=codes.shape[0])
    for level, c in enumerate(r["prefix"]):
        if c >= K:
            raise vqcore.VQLensError(f"Code {c} at position {level} is out of range: codes run from 0 to "
                                     f"{K - 1:,} (K = {K:,}).")
    mask = np.zeros(codes.shape[0], dtype=bool)
    mask[r["indices"]] = True
    return mask, "prefix " + "/".join(map(str, r["prefix"]))


@st.cache_data(max_entries=4, show_spinner=False)
def umap_map(key, run_id, seed, _Xs, _extra):
    """UMAP of the shown rows (at most MAP_MAX_POINTS) with the codewords of every position placed on it."""
    return umap_embed(_Xs, _extra, random_state=seed)


__all__ = ["sample", "summary", "drawing_progress", "fit", "run", "run_with_progress", "split", "recall_truth",
           "map_rows", "pca_map", "codeword_layer", "map_highlight", "umap_map", "learn_toy", "load_model", "with_beam",
           "run_model", "model_agreement", "sid_compare"]


# ---------------------------------------------------------------- learn page

LEARN_MAX_POINTS = 4096


@st.cache_data(max_entries=16, show_spinner=False)
def learn_toy(rho, K, M, n=1500, seed=0, resolution=160):
    """vqcore.inspect.plane_partitions (VQ, PQ and RQ cells) on the Learn page's 2-D Gaussian toy
    (vqcore.datasets.make_plane)."""
    from vqcore.datasets import make_plane
    from vqcore.inspect import plane_partitions

    X = make_plane(n, rho, random_state=seed).X
    return plane_partitions(X, K, M, resolution=resolution, max_points=LEARN_MAX_POINTS, random_state=seed)


# ---------------------------------------------------------------- semantic IDs page
# Keyed on a code set's ``key`` (ui.data.code_set: a hash of the codes, K, embeddings and labels).

SID_TABLE_ITEMS = 200  # items listed under a prefix
SID_GROUP_ITEMS = 50  # items listed per collision group


@st.cache_data(max_entries=2, show_spinner=False)
def sid_demo(seed=0):
    """Semantic IDs of the shipped sample: RQ with 3 levels of 256 codes (as TIGER) fitted on all 6,000 texts."""
    ds = datasets.load_sample()
    q = vqcore.from_spec("RQ3x8", random_state=seed)
    t0 = time.perf_counter()
    q.fit(ds.X)
    seconds = time.perf_counter() - t0
    return {
        "codes": q.encode(ds.X), "codebook_size": q.codebook_size, "X": ds.X, "labels": ds.labels,
        "spec": q.spec(), "name": f"{q.spec()} on {ds.name}",
        "notes": [f"{q.spec()} (3 levels of 256 codes, as TIGER) fitted on all {ds.X.shape[0]:,} sentence "
                  f"embeddings in {seconds:.1f} s (seed {seed}); the labels are the texts."],
    }


@st.cache_data(max_entries=8, show_spinner=False)
def sid_overview(key, K, _codes, _X):
    """Everything per level and per depth: a report-shaped dict for the Quantize page's usage charts,
    the per-depth table (with what uniform codes would cover), collision figures and the data's spread."""
    from vqcore.semantic_ids import items_under_prefix, prefix_collision_table

    n, M = _codes.shape
    usage = metrics.usage_stats(_codes, K)
    report = {
        "n": int(n), "n_codebooks": int(M), "codebook_size": int(K),
        "usage": {**{k: np.asarray(v).tolist() for k, v in usage.items()},
                  "counts": [c.tolist() for c in metrics.code_counts(_codes, K)]},
        "effective_bits": float(metrics.effective_bits(_codes)),
        "allocated_bits": float(metrics.allocated_bits(K, M)),
    }
    table = prefix_collision_table(_codes, K)
    largest = metrics.collision_groups(_codes, top=1)
    spread = items_under_prefix(_codes, (), X=_X, limit=0)["data_mean_distance_to_centroid"] \
        if _X is not None else None
    return {
        "report": report, "table": table,
        "collision_rate": table["collision_rate"][-1], "distinct": table["distinct_prefixes"][-1],
        "largest_group": int(largest[0][1].size) if largest else 1,
        "data_spread": spread,
    }


SID_SHOWN = "sid_shown_codes"  # session key: the last code set whose overview was computed


def sid_checked(state, slot):
    """The code set of ``state[slot]`` and its :func:`sid_overview`, or the last one that worked.

    Returns ``(code set, overview, problem)``. A code set whose overview fails (a
    :class:`vqcore.VQLensError` or MemoryError) is replaced in ``state[slot]`` by the last
    code set whose overview was computed, so that one bad file never leaves the page failing
    on every rerun; ``problem`` then says why. ``(None, None, problem or None)`` when there
    is nothing to show.
    """
    cs, problem = state.get(slot), None
    if cs is not None:
        try:
            overview = sid_overview(cs["key"], cs["codebook_size"], cs["codes"], cs["X"])
        except (vqcore.VQLensError, MemoryError) as exc:
            problem = f"{cs['name']} could not be shown: {exc}"
            if isinstance(exc, MemoryError):
                problem = f"{cs['name']} could not be shown: not enough memory. Use fewer items or levels."
        else:
            state[SID_SHOWN] = cs
            return cs, overview, None
    good = state.get(SID_SHOWN)
    if good is None or good is cs:
        state[slot] = None if problem else cs
        return None, None, problem
    state[slot] = good
    return good, sid_overview(good["key"], good["codebook_size"], good["codes"], good["X"]), problem


@st.cache_data(max_entries=16, show_spinner=False)
def sid_tree(key, depth, max_children, _codes, _labels):
    """The code tree (vqcore.semantic_ids.prefix_tree) with three example items per node."""
    from vqcore.semantic_ids import prefix_tree

    return prefix_tree(_codes, max_depth=depth, max_children=max_children, labels=_labels, examples=3)


@st.cache_data(max_entries=8, show_spinner=False)
def sid_groups(key, top, spread, _codes, _X, _labels):
    """The largest collision groups with their distances and tightness (vqcore.semantic_ids.collision_groups_detail;
    ``spread``, the data's, keys the cache). At most SID_GROUP_ITEMS items listed per group."""
    from vqcore.semantic_ids import collision_groups_detail

    groups = collision_groups_detail(_codes, X=_X, labels=_labels, top=top)
    for g in groups:
        g["items"] = g["items"][:SID_GROUP_ITEMS]
        if g["labels"] is not None:
            g["labels"] = g["labels"][:SID_GROUP_ITEMS]
    return groups


@st.cache_data(max_entries=16, show_spinner=False)
def sid_largest_prefixes(key, depth, _codes, top=50):
    """The largest prefixes of ``depth`` levels held by two or more items: [(prefix, count)], largest first."""

    return [(tup, int(members.size)) for tup, members in metrics.collision_groups(_codes[:, :depth], top=top)]


@st.cache_data(max_entries=32, show_spinner=False)
def sid_under_prefix(key, prefix, K, _codes, _X, _labels):
    """vqcore.semantic_ids.items_under_prefix (the first SID_TABLE_ITEMS items), with each item's codes.

    Raises VQLensError for a prefix the engine refuses (e.g. ``"12/x"``) and for a code out of
    range for K codes per level (no item *could* have it; "no item" would suggest otherwise).
    A single item has no spread: its distance to the centre and tightness are None (a dash), not 0.
    """
    from vqcore.semantic_ids import items_under_prefix

    r = items_under_prefix(_codes, prefix, X=_X, labels=_labels, limit=SID_TABLE_ITEMS)
    for level, c in enumerate(r["prefix"]):
        if c >= K:
            raise vqcore.VQLensError(f"Code {c} at level {level} is out of range: with K = {K:,} codes per "
                                     f"level, codes run from 0 to {K - 1:,}.")
    if r["count"] < 2:
        r["mean_distance_to_centroid"] = r["tightness"] = None
    r["codes"] = [tuple(int(c) for c in row) for row in _codes[r["indices"]]]
    return r


@st.cache_data(max_entries=8, show_spinner=False)
def sid_compare(key_a, key_b, _codes_a, _codes_b):
    """vqcore.semantic_ids.compare_code_sets of two code sets of the same items (keyed on both sets)."""
    from vqcore.semantic_ids import compare_code_sets

    return compare_code_sets(_codes_a, _codes_b, top=10)


@st.cache_data(max_entries=4, show_spinner=False)
def sid_dedup(key, _codes, _labels, _rows, _ids=None):
    """TIGER's de-duplication: the new codes, the size of the added level, and both export files
    (the CSV starts with each item's row number, ``_rows``, and its id, ``_ids``, when the data has
    an id column; ``key``, the code set's, covers both)."""
    from vqcore.semantic_ids import deduplicate, export_codes

    from .data import per_row_csv

    new, extra = deduplicate(_codes)
    return {
        "codes": new, "extra_size": int(extra), "collision_rate": float(metrics.collision_rate(new)),
        "csv": per_row_csv(new, _rows, ids=_ids, labels=_labels), "npy": export_codes(new, "npy"),
    }


# ---------------------------------------------------------------- collapse lab (pages/5_Training.py)

from threadpoolctl import threadpool_limits  # noqa: E402

from vqcore.training import train_codebook  # noqa: E402

TRAIN_STOP = "train_stop_requested"  # session flag read by the running training's should_stop
TRAIN_DONE = "train_done"  # threading.Event, set when no training of the session is running


@contextmanager
def training_session(state=None):
    """Mark the session's training as running until the block ends (see :func:`wait_for_training`)."""
    state = st.session_state if state is None else state
    done = threading.Event()
    state[TRAIN_DONE] = done
    try:
        yield
    finally:
        done.set()


def wait_for_training(state=None, timeout=30.0):
    """Wait until the session's training block has ended (at most ``timeout`` seconds).

    A click during a run makes Streamlit stop the running script and start the rerun at once, in
    another thread, while the stopped one still finishes its step and stores its partial run. The
    rerun calls this first, so it shows that run.
    """
    state = st.session_state if state is None else state
    done = state.get(TRAIN_DONE)
    if done is not None:
        done.wait(timeout)


@st.cache_data(max_entries=16, show_spinner=False)
def _finished_training(key, config, train_size, _result=None):
    """The finished training of ``config`` (a frozen, hashable TrainConfig holding the seed) on
    ``train_size`` rows of the data whose content hash is ``key``.

    A store, not a computation: :func:`train` computes the run outside any cached function, because
    its progress callback draws into elements made outside it (which a cached function could not
    replay), then hands it in as ``_result`` to be kept. Asked without ``_result`` on a miss, it
    raises ``Miss``, which is not cached.
    """
    if _result is None:
        raise Miss
    return _result


def train(key, config, train_size, X, *, callback=None, should_stop=None, callback_every=10):
    """Train ``config`` on ``train_size`` random rows of X (drawn with the config's seed); cached.

    Returns ``(result, cached)``; ``result`` holds the ``run`` (a vqcore TrainingRun, evaluated on
    its training rows), ``n_train``, ``other``: the same evaluation on the rows not trained on (None
    when every row trained) with ``n_other`` rows, and ``codes_reset``: codes reset (or repaired)
    in all. Finished runs with a seed are cached per data content and config; a run stopped early
    is not. BLAS runs on one thread: the per-step products are small, and extra threads only
    stall on a busy machine.
    """
    train_size = int(train_size)
    cacheable = config.random_state is not None
    if cacheable:
        try:
            return _finished_training(key, config, train_size), True
        except Miss:
            pass
    n = X.shape[0]
    rows = subsample_indices(n, train_size, random_state=config.random_state)
    other = np.setdiff1d(np.arange(n), rows, assume_unique=True)
    with threadpool_limits(limits=1):
        run = train_codebook(X[rows], config, callback=callback, should_stop=should_stop,
                             callback_every=callback_every)
        held_out = run.evaluate(X[other]) if other.size else None
    result = {"run": run, "n_train": int(rows.size), "other": held_out, "n_other": int(other.size),
              "codes_reset": int(sum(e.n_codes for e in run.resets))}
    if cacheable and not run.stopped_early:
        _finished_training(key, config, train_size, _result=result)
    return result, False


def _step_text(name, step, steps, record, n_stages):
    dead = " / ".join(str(record[f"dead_codes/{s}"]) for s in range(n_stages))
    return (f"{name}: step {step:,} of {steps:,} · loss {record['loss']:.4g} · "
            f"perplexity {record['epoch_perplexity/0']:.1f} · dead codes {dead}")


def train_with_progress(key, config, train_size, X, *, name, slot, store, state=None):
    """:func:`train` with a progress bar in ``slot`` that follows the steps; the result goes in ``store[name]``.

    Streamlit stops a running script when the person clicks a widget (the page's Stop button, or
    any setting) by raising a control exception from the next ``st`` call, including a read of
    ``st.session_state``: here, the progress callback or ``should_stop``. Both hold that exception
    back and set the session flag ``TRAIN_STOP`` that ``should_stop`` reads, so the engine ends the
    run and keeps what it learned; the partial run is stored, then the exception is raised again
    and Streamlit reruns the page, which shows it. Returns ``(result, cached)``.
    """
    state = st.session_state if state is None else state
    state[TRAIN_STOP] = False
    bar = slot.progress(0.0, text=f"{name}: starting…")

    def flag_stop():
        try:
            state[TRAIN_STOP] = True
        except BaseException:  # noqa: BLE001 - a second request: the held one reruns anyway
            pass

    hold = HoldBack(on_hold=flag_stop)

    def on_step(step, record):
        hold(lambda: bar.progress(min(step / config.steps, 1.0),
                                  text=_step_text(name, step, config.steps, record, config.n_stages)))

    def should_stop():
        flag = hold(lambda: state.get(TRAIN_STOP))
        return hold.request is not None or bool(flag)

    result, cached = train(key, config, train_size, X, callback=on_step, should_stop=should_stop)
    store[name] = result
    hold.release()
    run = result["run"]
    if cached:
        text = f"{name}: reused the cached run ({run.steps_run:,} steps)."
    elif run.stopped_early:
        text = f"{name}: stopped at step {run.steps_run:,} of {config.steps:,}."
    else:
        text = f"{name}: {run.steps_run:,} steps in {run.seconds:.2f} s."
    bar.progress(1.0, text=text)
    return result, cached


SID_TREE_MAX_NODES = 8000  # sectors of the code tree drawn at once (about 1.5 MB of figure)
SID_TREE_BRANCHES = (4, 8, 16, 32, 64, 128, 256, 512, 1024)
# the tree at first sight: up to 256 branches under each node (a TIGER level), largest first, drawn
# one level at a time (ui.charts.code_tree); 2 levels of 256 at once were specks and a hairball
SID_TREE_DEFAULT_BRANCHES = 256


def sid_tree_depth(table, depth, branches, max_nodes=SID_TREE_MAX_NODES):
    """The most levels (<= ``depth``) whose code tree stays within ``max_nodes`` sectors, and that bound.

    Depth d adds at most min(distinct prefixes, branches^d) shown nodes plus one "other" node per shown
    parent (``table`` is prefix_collision_table's). Level 0 is always drawn.
    """
    distinct = table["distinct_prefixes"]
    total, fits, bound = 0, 1, 0
    for d in range(1, int(depth) + 1):
        parents = 1 if d == 1 else min(distinct[d - 2], branches ** (d - 1))
        total += min(distinct[d - 1], branches ** d) + parents
        if d > 1 and total > max_nodes:
            return fits, bound, total
        fits, bound = d, total
    return fits, bound, total
