"""The whole quality report of a fitted quantizer, as one plain, serialisable dict.

``evaluate`` is what pages, exports and scripts call: it encodes the evaluated
set once and derives every metric of :mod:`vqcore.metrics` from those codes.
"""

import json
import math
import time
from typing import Any, NotRequired, TypedDict

import numpy as np

from . import metrics, partials
from ._validation import check_data, check_dim, check_int, check_random_state
from .catalog import as_dataset
from .csvfile import csv_bytes
from .exceptions import VQLensError
from .pipeline import report_dataset
from .rq import beam_search_encode

# --------------------------------------------------------------------------
# the report's shape: plain Python types (json.dumps works on it), declared once here for every
# reader (pages, charts, exports, scripts). TypedDicts are plain dicts: read them by key as before.


class Reconstruction(TypedDict):
    """:func:`vqcore.metrics.reconstruction_error` as plain types."""

    mse: float  # mean_i ||x_i - x_hat_i||^2, summed over dimensions
    relative: float  # mse over the total variance: 1 for reconstructing every vector by the mean
    snr_db: float  # -10 log10(relative)
    per_dim: list[float]  # mean squared error of each dimension, summing to mse


class Usage(TypedDict):
    """:func:`vqcore.metrics.usage_stats`, one entry per codebook, and the counts of every code."""

    dead: list[int]  # codes never used
    dead_fraction: list[float]
    entropy_bits: list[float]  # H_m = -sum_c p_c log2 p_c
    max_entropy_bits: list[float]  # log2 K
    perplexity: list[float]  # 2^H_m
    utilisation: list[float]  # 2^H_m / K
    counts: list[list[int]]  # counts[m][c]: items with code c at position m


class Collisions(TypedDict):
    rate: float  # share of items whose whole code tuple another item also has
    prefix_rates: list[float]  # the same for the first m+1 positions
    uniform_prefix_rates: list[float]  # what uniform, independent codes would give (birthday bound)
    groups: list[dict[str, Any]]  # the largest collision groups: {"codes", "size", "items" (first member rows)}


class Recall(TypedDict):
    query_set: str | None  # in words, where the queries came from
    n_queries: int
    n_searched: int
    at: dict[str, float]  # recall at R (keys are str(R), for JSON)


class ResidualVariance(TypedDict):
    """:func:`residual_variance`."""

    kind: str  # "cumulative" (additive: M+1 values from 1.0) or "per_subspace" (PQ, OPQ: M values)
    values: list[float]


class Complexity(TypedDict):
    """:func:`complexity`."""

    codebook_bytes: int
    encode_madds: int  # multiply-adds per vector
    encode_us_per_vector: float | None  # measured; None when the encoding was not timed


class Report(TypedDict):
    """What :func:`evaluate` returns: every figure of one fitted quantizer on one data set."""

    spec: str  # e.g. "RQ8x8_b5" (vqcore.spec.format_spec)
    faiss: str | None  # the nearest faiss index_factory string
    method: str
    params: dict[str, Any]  # the quantizer's get_params(), as plain types
    n_codebooks: int
    codebook_size: int
    n: int  # rows evaluated
    d: int
    bits_per_vector: float
    compression_ratio: float  # 32 d / bits (float32 vectors against codes)
    fit_seconds: float | None
    reconstruction: Reconstruction
    usage: Usage
    mutual_information: list[list[float]]  # (M, M), diagonal H_m
    mutual_information_baseline: list[list[float]]  # the same with each position shuffled
    effective_bits: float
    allocated_bits: float
    residual_variance: ResidualVariance
    collisions: Collisions
    recall: Recall | None  # None without queries
    complexity: Complexity
    n_train: NotRequired[int]  # rows the codebooks were trained on, when the caller adds it (the app)


class ComparisonRow(TypedDict):
    """:func:`comparison_row`: one row of a comparison table."""

    method: str  # the method, or the loaded model's label
    bits: float
    spec: str
    relative: float
    mse: float
    recall: dict[str, float] | None
    query_set: str | None
    entropy_bits: list[float]
    codebook_size: int
    fit_seconds: float | None
    dead: int  # unused codes over all codebooks
    effective_bits: float
    collision_rate: float
    residual_variance: ResidualVariance
    codebook_bytes: int | None
    encode_madds: int | None
    encode_us: float | None


def holdout_split(n, n_queries, *, random_state=None):
    """Split row indices into (base, queries) with ``n_queries`` held out at random.

    Returns
    -------
    base_idx, query_idx : sorted int64 arrays
    """
    n = check_int("n", n, low=2)
    n_queries = check_int("n_queries", n_queries, low=0, high=n - 1)
    rng = check_random_state(random_state)
    perm = rng.permutation(n)
    return np.sort(perm[n_queries:]), np.sort(perm[:n_queries])


def default_n_queries(n):
    """Queries to hold out of n rows: 10%, between 1 and 1000 (0 below 50 rows)."""
    if n < 50:
        return 0
    return int(min(1000, max(1, n // 10)))


def residual_variance(quantizer, X, codes):
    """Residual variance per stage, as defined in DESIGN.md.

    For additive quantizers (VQ, RQ, AQ): ``mean_i ||x_i - sum_{j<=m} c_j||^2``
    over total variance ``mean_i ||x_i - mean(X)||^2``, with stage 0 = 1.0
    (so M+1 values). For product quantizers (PQ, OPQ): each subspace's share
    of the squared error, over the total variance (M values, summing to the
    relative error).

    Returns
    -------
    dict with ``kind`` ("cumulative" or "per_subspace") and ``values`` (list).
    """
    X = check_data(X)
    total = float(((X - X.mean(axis=0, dtype=np.float64)) ** 2).sum(axis=1).mean())
    errs = quantizer.stage_errors(X, codes)
    scale = 1.0 / total if total > 0 else float("nan")
    if quantizer.additive:
        return {"kind": "cumulative", "values": [1.0] + [float(e * scale) for e in errs]}
    return {"kind": "per_subspace", "values": [float(e * scale) for e in errs]}


def evaluate(
    quantizer,
    X,
    queries=None,
    *,
    ground_truth=None,
    R=(1, 10, 100),
    query_set="held-out queries",
    codes=None,
    fit_seconds=None,
    query_rows=None,
    encode_seconds=None,
) -> Report:
    """Encode X with a fitted quantizer and compute every metric of DESIGN.md.

    Every row of X gets its code and counts in every metric; queries are only
    *also* used for recall (DESIGN.md). With ``query_rows``, the queries are
    rows of X itself, held out of the search: recall looks for each among
    the other rows.

    This is :func:`vqcore.pipeline.report_dataset` over the row chunks of one
    array: the numbers are those a whole catalogue gets, streamed or on Dask.
    Recall ranks ties by row number (identical reconstructions of the same
    code tuple are tied), and the nearest neighbour on an exact tie is the
    lowest row.

    Parameters
    ----------
    quantizer : fitted vqcore quantizer
    X : ndarray of shape (n, d)
        The evaluated set: every row is encoded and measured.
    queries : ndarray of shape (nq, d), optional
        Queries for recall@R, searched among all rows of X; exact ground truth
        is computed on X unless given.
    ground_truth : ndarray of shape (nq, k), optional
    R : tuple of int
    query_set : str
        Says which queries were used; stored in the report.
    codes : ndarray of shape (n, M), optional
        Codes of X when already computed.
    fit_seconds : float, optional
        Stored as is.
    query_rows : array-like of int, optional
        Rows of X used as the recall queries instead of ``queries``; they are
        searched for among the other rows (``ground_truth``, when given, indexes
        those other rows in order).
    encode_seconds : float, optional
        Wall time of encoding X, when ``codes`` were computed by the caller;
        measured here otherwise.

    Returns
    -------
    report : Report
        A dict of plain Python types (json.dumps works on it); its keys are declared and
        documented by :class:`Report`. ``collisions.groups`` lists the 20 largest collision groups (code
        tuple, size, first member rows).
    """
    X = check_data(X)
    check_dim(X, quantizer.n_features_in_)
    searched = None  # rows of X that recall searches (None: all)
    if query_rows is not None:
        if queries is not None:
            raise VQLensError("Give either queries or query_rows, not both.")
        query_rows, searched = _held_out(X.shape[0], query_rows)
        if query_rows is not None:
            queries = X[query_rows]
    if searched is not None and ground_truth is not None:
        # given over the searched rows in order: as rows of X
        truth = np.asarray(ground_truth)
        first = metrics.check_ground_truth(truth, queries.shape[0], searched.size)
        ground_truth = searched[first]
    report, _ = report_dataset(quantizer, as_dataset(X), queries=queries, query_rows=query_rows,
                               ground_truth=ground_truth, R=R, query_set=query_set, codes=codes,
                               fit_seconds=fit_seconds, encode_seconds=encode_seconds)
    return report


def _held_out(n, query_rows):
    """(query rows, the rows searched for them) of :func:`evaluate`'s ``query_rows``, checked;
    (None, None) for no query row."""
    query_rows = np.asarray(query_rows)
    if query_rows.ndim != 1 or query_rows.dtype.kind not in "iu":
        raise VQLensError("query_rows should be a 1-D array of row indices.")
    held = np.zeros(n, dtype=bool)
    if query_rows.size and (query_rows.min() < 0 or query_rows.max() >= n):
        raise VQLensError(f"query_rows should be row indices of X, in [0, {n}).")
    held[query_rows] = True
    if held.sum() != query_rows.size or held.all():
        raise VQLensError("query_rows should be distinct rows of X, leaving at least one row to search.")
    if not query_rows.size:
        return None, None
    return query_rows, np.flatnonzero(~held)


def recall_truth(X, query_rows):
    """The exact nearest neighbour of each query row of X among the other rows, as :func:`evaluate`
    finds it for recall (float64 distances, the lowest row on a tie).

    It depends on the data and the queries only: a caller that evaluates several quantizers on the
    same data and queries computes it once and passes it as ``evaluate(..., query_rows=query_rows,
    ground_truth=...)``, which then skips its own exact search and gives the same report.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    query_rows : array-like of int
        Distinct rows of X, at least one, leaving at least one row to search.

    Returns
    -------
    ndarray of shape (n_queries,), int64
        Each query's neighbour as a position among the searched rows (the rows of X not in
        ``query_rows``, in order): what ``ground_truth`` indexes.
    """
    X = check_data(X)
    query_rows, searched = _held_out(X.shape[0], query_rows)
    if query_rows is None:
        raise VQLensError("recall_truth needs at least one query row.")
    _, rows = partials.exact_nearest(X[query_rows], as_dataset(X), np.unique(query_rows))
    return np.searchsorted(searched, rows)


def complexity(quantizer, n=None, encode_seconds=None):
    """The third axis beside bits and error: what the quantizer costs to hold and to run.

    Returns
    -------
    dict
        ``codebook_bytes`` (:meth:`~vqcore.base.BaseQuantizer.codebook_bytes`),
        ``encode_madds`` (multiply-adds per vector worked out from the
        method's structure, :meth:`~vqcore.base.BaseQuantizer.encode_cost`),
        and, when ``encode_seconds`` for ``n`` rows is known,
        ``encode_us_per_vector`` (measured; None otherwise).
    """
    per = None
    if encode_seconds is not None and n:
        per = float(encode_seconds) / int(n) * 1e6
    return {"codebook_bytes": int(quantizer.codebook_bytes()), "encode_madds": int(quantizer.encode_cost()),
            "encode_us_per_vector": per}


def headline(report):
    """The few numbers a person reads first, as an ordered dict of label -> value."""
    rec = report["reconstruction"]
    usage = report["usage"]
    out = {
        "bits / vector": report["bits_per_vector"],
        "compression": report["compression_ratio"],
        "mse": rec["mse"],
        "relative error": rec["relative"],
        "SNR (dB)": rec["snr_db"],
        "recall@10": None,
        "mean perplexity": float(np.mean(usage["perplexity"])),
        "dead codes": int(np.sum(usage["dead"])),
        "collision rate": report["collisions"]["rate"],
        "fit seconds": report["fit_seconds"],
    }
    cx = report.get("complexity")
    if cx:
        out["codebook bytes"] = cx["codebook_bytes"]
        out["encode madds / vector"] = cx["encode_madds"]
        out["encode µs / vector"] = cx["encode_us_per_vector"]
    if report["recall"] is not None:
        out["recall@10"] = report["recall"]["at"].get("10")
    return out


def report_to_json(report):
    return json.dumps(report, indent=2, allow_nan=True)


def report_to_csv(report):
    """One ``metric,position,value`` row per scalar of the report (per-position lists expanded),
    written by :func:`vqcore.csvfile.csv_bytes` (text cells safe to open in a spreadsheet)."""
    rows = []

    def emit(key, value, pos=""):
        rows.append([key, pos, "None" if value is None else value])

    for key in ("spec", "faiss", "method", "n", "d", "n_codebooks", "codebook_size",
                "bits_per_vector", "compression_ratio", "fit_seconds",
                "effective_bits", "allocated_bits"):
        emit(key, report[key])
    for key in ("mse", "relative", "snr_db"):
        emit(key, report["reconstruction"][key])
    for key in ("dead", "dead_fraction", "entropy_bits", "max_entropy_bits", "perplexity", "utilisation"):
        for m, v in enumerate(report["usage"][key]):
            emit(key, v, m)
    for m, v in enumerate(report["residual_variance"]["values"]):
        emit(f"residual_variance_{report['residual_variance']['kind']}", v, m)
    emit("collision_rate", report["collisions"]["rate"])
    for m, v in enumerate(report["collisions"]["prefix_rates"]):
        emit("prefix_collision_rate", v, m)
    if report["recall"] is not None:
        for r, v in report["recall"]["at"].items():
            emit(f"recall@{r}", v)
    for key, v in (report.get("complexity") or {}).items():
        emit(key, v)
    return csv_bytes(rows, header=["metric", "position", "value"]).decode("utf-8")


def to_plain(value):
    """numpy scalars/arrays (possibly nested in dicts/lists) to plain Python."""
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return value
    return value


BEAMS = (1, 2, 4, 8, 16)


def beam_sweep(quantizer, X, beams=BEAMS, *, max_rows=5000, random_state=0):
    """Reconstruction error against encoding time for several beam widths.

    The right panel of GRVQ's Figure 2 (Liu, Shao & Lu, ICME 2015): the
    fitted codebooks of an additive quantizer (RQ, GRVQ, AQ) are kept and
    the rows are re-encoded by beam search (:func:`vqcore.beam_search_encode`,
    multipath encoding) with each beam width. A wider beam searches more code
    tuples and costs more time; it usually lowers the error but need not:
    beam search may drop the path a narrower beam keeps, and RQ's later
    codebooks were trained on the residuals of its own narrow-beam encoding,
    so a path a wider beam prefers early can end worse. AQ's own encoder
    adds local search after the beam; here only the beam is measured, so
    the methods are compared on the same search.

    Parameters
    ----------
    quantizer : fitted quantizer with ``additive = True`` and M >= 2
    X : ndarray of shape (n, d)
    beams : sequence of int
    max_rows : int, default=5000
        Rows encoded (a random subsample of X above this), to bound the time.

    Returns
    -------
    list of dict
        One per beam: ``beam``, ``seconds`` (wall time of the encoding),
        ``rows``, ``mse`` and ``relative`` (mse / total variance).
    """
    quantizer.check_fitted()
    if not getattr(quantizer, "additive", False) or quantizer.n_codebooks < 2:
        raise VQLensError(
            f"beam search needs an additive quantizer with at least 2 codebooks; got "
            f"{quantizer.spec()} (PQ and OPQ codes are independent per subspace).")
    X = check_data(X)
    check_dim(X, quantizer.n_features_in_)
    beams = sorted({check_int("beam", b, low=1) for b in beams})
    max_rows = check_int("max_rows", max_rows, low=1)
    if X.shape[0] > max_rows:
        rng = check_random_state(random_state)
        X = X[np.sort(rng.choice(X.shape[0], max_rows, replace=False))]
    out = []
    for beam in beams:
        t0 = time.perf_counter()
        codes = beam_search_encode(quantizer.centred(X), quantizer.codebooks_, beam)
        seconds = time.perf_counter() - t0
        err = metrics.reconstruction_error(X, quantizer.decode(codes))
        out.append({"beam": beam, "seconds": seconds, "rows": int(X.shape[0]),
                    "mse": float(err["mse"]), "relative": float(err["relative"])})
    return out


def entropy_profile(items):
    """What the entropy-per-position view shows, in numbers and one sentence.

    GRVQ's Figure 1 claim is that the entropy of RQ's codes falls at later
    positions while GRVQ's stays nearer log2 K. For each method (its
    largest budget with at least 2 positions) this measures the entropy of
    the first and the last position, the fall between the first and the
    second half of the positions, and the mean gap to log2 K; then says
    whether the data shows the claim.

    Parameters
    ----------
    items : list of dict
        Each with ``method``, ``spec``, ``bits``, ``codebook_size`` and
        ``entropy_bits`` (per position), as the Compare page keeps them.

    Returns
    -------
    dict
        ``methods`` (method -> numbers) and ``sentence`` (str, empty when
        no method has 2 positions).
    """
    best = {}
    for it in items:
        H = np.asarray(it["entropy_bits"], dtype=float)
        if H.size < 2:
            continue
        if it["method"] not in best or it["bits"] > best[it["method"]]["bits"]:
            best[it["method"]] = it
    methods = {}
    for method, it in best.items():
        H = np.asarray(it["entropy_bits"], dtype=float)
        half = H.size // 2
        ceiling = math.log2(it["codebook_size"])
        methods[method] = {
            "spec": it["spec"], "first": float(H[0]), "last": float(H[-1]), "ceiling": ceiling,
            "fall": float(H[:half].mean() - H[H.size - half:].mean()),
            "gap": float(ceiling - H.mean()),
        }
    if not methods:
        return {"methods": methods, "sentence": ""}
    parts = [f"{m['spec']} goes from {m['first']:.2f} bits at position 0 to {m['last']:.2f} at the last "
             f"(first half minus second half: {m['fall']:+.2f} bits; {m['gap']:.2f} bits below log2 K "
             f"on average)" for m in methods.values()]
    sentence = "On this data " + "; ".join(parts) + "."
    rq, gr = methods.get("RQ"), methods.get("GRVQ")
    if rq and gr:
        falls = rq["fall"] > max(gr["fall"], 0.05)
        nearer = gr["gap"] < rq["gap"]
        if falls and nearer:
            verdict = ("As in GRVQ's Figure 1, RQ's entropy falls at later positions and GRVQ's stays "
                       "nearer log2 K.")
        elif nearer:
            verdict = ("GRVQ's entropy stays nearer log2 K than RQ's, but RQ's does not fall at later "
                       "positions more than GRVQ's, so only half of GRVQ's Figure 1 shows here.")
        elif falls:
            verdict = ("RQ's entropy falls at later positions, but GRVQ's is not nearer log2 K on "
                       "average, so only half of GRVQ's Figure 1 shows here.")
        else:
            verdict = ("This data does not show GRVQ's Figure 1: RQ's entropy does not fall at later "
                       "positions more than GRVQ's, and GRVQ's is not nearer log2 K.")
        sentence += " " + verdict
    elif rq:
        sentence += " Add GRVQ to the methods to compare with GRVQ's Figure 1."
    return {"methods": methods, "sentence": sentence}


def comparison_row(report: Report, method) -> ComparisonRow:
    """One row of a comparison table (the Compare page's charts and table) from an ``evaluate`` report.

    ``method`` is the name shown for the row (the method, or a loaded model's label). ``recall`` is
    the report's recall at each k (None without queries) and ``dead`` the number of unused codes over
    all codebooks.
    """
    rep = report
    row: ComparisonRow = {
        "method": method, "bits": rep["bits_per_vector"], "spec": rep["spec"],
        "relative": rep["reconstruction"]["relative"], "mse": rep["reconstruction"]["mse"],
        "recall": (rep["recall"] or {}).get("at"), "query_set": (rep["recall"] or {}).get("query_set"),
        "entropy_bits": rep["usage"]["entropy_bits"], "codebook_size": rep["codebook_size"],
        "fit_seconds": rep["fit_seconds"], "dead": int(sum(rep["usage"]["dead"])),
        "effective_bits": rep["effective_bits"], "collision_rate": rep["collisions"]["rate"],
        "residual_variance": rep["residual_variance"],
        # complexity beside quality (see complexity above)
        "codebook_bytes": (rep.get("complexity") or {}).get("codebook_bytes"),
        "encode_madds": (rep.get("complexity") or {}).get("encode_madds"),
        "encode_us": (rep.get("complexity") or {}).get("encode_us_per_vector"),
    }
    return row
