"""Encode a whole catalogue and report on it, chunk by chunk, in this process or on Dask.

The fit happens elsewhere, once, on a sample (:meth:`LazyDataset.sample`).
Here every chunk of rows is read, encoded and reduced to mergeable partial
metrics (:mod:`vqcore.partials`); a second, cheaper pass over the codes alone
finds the members of the largest collision groups and the recall ranks. Each
pass is a list of independent chunk tasks: run one after the other in this
process, or as Dask tasks on a ``distributed`` cluster (a ``LocalCluster`` or
the address of a running scheduler). Results come back in row order and
merge in row order, so both engines give the same codes and the same report.

Examples
--------
>>> from vqcore import ResidualQuantizer
>>> from vqcore.catalog import as_dataset
>>> X = np.random.default_rng(0).normal(size=(600, 8)).astype(np.float32)
>>> q = ResidualQuantizer(n_codebooks=2, codebook_size=16, random_state=0).fit(X)
>>> report, codes = report_dataset(q, as_dataset(X), chunk_rows=256)
>>> codes.shape, report["n"]
((600, 2), 600)
"""

from __future__ import annotations

import contextlib
import time

import numpy as np

from . import partials, progress
from ._validation import check_data, check_dim, check_int, code_dtype
from .catalog import DEFAULT_CHUNK_ROWS
from .exceptions import DataError, VQLensError
from .metrics import check_ground_truth

__all__ = ["report_dataset", "dask_client", "close_client", "draw_queries"]

#: Chunks per task: a task reads its chunks in order (a row group decoded once) and returns
#: their codes and one merged partial.
SPAN_CHUNKS = 16


# --------------------------------------------------------------------------
# the chunk tasks (module-level functions, so Dask can ship them)


def _pass1(quantizer, dataset, span, plan, codes=None):
    """Read, encode (unless ``codes`` are given) and measure the chunks of one span, in order."""
    out, part = [], None
    for k, c in enumerate(span):
        progress.report(k / len(span), f"rows {c.offset + 1:,}-{c.offset + c.rows:,}")
        with progress.reporting(None):  # the encoder's own block reports
            X = dataset.read(c)
            a = c.offset - span[0].offset
            t0 = time.perf_counter()
            cc = quantizer.encode(X) if codes is None else codes[a:a + c.rows]
            seconds = time.perf_counter() - t0
            p = partials.chunk_stats(quantizer, X, cc, c.offset, plan)
            p.encode_seconds = seconds
        part = p if part is None else part.merge(p)
        out.append(cc)
    return np.concatenate(out), part


def _pass2(quantizer, codes, span, plan):
    with progress.reporting(None):
        return partials.merge_all(
            partials.chunk_codes_pass(quantizer, codes[c.offset - span[0].offset:][:c.rows], c.offset, plan)
            for c in span)


def _spans(chunks, max_chunks):
    """Consecutive chunks of the same file and row group, at most ``max_chunks`` each: one task
    reads a span in order, so that a row group is decoded once (see ParquetDataset._table)."""
    spans = []
    for c in chunks:
        if spans and len(spans[-1]) < max_chunks and (spans[-1][-1].part, spans[-1][-1].group) == (c.part, c.group):
            spans[-1].append(c)
        else:
            spans.append([c])
    return spans


# --------------------------------------------------------------------------
# engines


def _in_order(fn, args, client, label, window):
    """Results of ``fn(*a)`` for each ``a`` in ``args``, in order; reports (to
    :mod:`vqcore.progress`) go from 0 to 1 within each pass, the message starting with
    ``label`` ("encode", then "metrics")."""
    total = len(args)
    if client is None:
        for i, a in enumerate(args):
            progress.report(i / total, f"{label}: task {i + 1:,} of {total:,}")
            with progress.part(i / total, (i + 1) / total, f"{label}: "):
                result = fn(*a)
            yield result
        progress.report(1.0, f"{label}: {total:,} tasks done")
        return
    pending = []
    submitted = 0
    for i in range(total):
        while submitted < total and submitted - i < window:
            pending.append(client.submit(fn, *args[submitted], pure=False))
            submitted += 1
        fut = pending.pop(0)
        result = fut.result()
        fut.release()
        progress.report((i + 1) / total, f"{label}: task {i + 1:,} of {total:,}")
        yield result


def dask_client(address="local", **cluster_kw):
    """A ``distributed.Client``: on a new ``LocalCluster`` for ``"local"``, else connected to the
    scheduler at ``address`` (e.g. ``"tcp://10.0.0.5:8786"``).

    ``cluster_kw`` go to ``LocalCluster`` (default: one single-threaded worker process per core,
    with ``VQCORE_NUM_THREADS`` set to its thread count).
    The caller closes the client (and its cluster) with ``client.close()``.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise VQLensError("Dask is not installed: pip install dask distributed.") from None
    if address == "local":
        import os

        kw = {"n_workers": os.cpu_count() or 1, "threads_per_worker": 1, "processes": True,
              "dashboard_address": None}
        kw.update(cluster_kw)
        if kw["processes"]:
            # each worker process encodes with as many threads as Dask gives it (distributed
            # already limits BLAS and OpenMP there), so the cores are not oversubscribed
            kw.setdefault("env", {"VQCORE_NUM_THREADS": str(kw["threads_per_worker"])})
        cluster = LocalCluster(**kw)
        client = Client(cluster)
        client._vqlens_cluster = cluster  # closed with the client by close_client
        return client
    return Client(address)


def close_client(client):
    """Close a client made by :func:`dask_client` and, for ``"local"``, its cluster."""
    cluster = getattr(client, "_vqlens_cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


# --------------------------------------------------------------------------
# the report


def draw_queries(dataset, n_queries, seed):
    """Rows of the data drawn at random as recall queries (seed ``seed + 1``, not the training
    sample's), their vectors, and the words saying so: ``(rows or None, queries or None, query_set)``.

    The queries keep their codes and count in every other metric; :func:`report_dataset` leaves them
    out of the searched base when given as ``query_rows``. ``n_queries=0``: no queries.
    """
    n_queries = check_int("n_queries", n_queries, low=0)
    if not n_queries:
        return None, None, "no queries"
    if n_queries >= dataset.n:
        raise VQLensError(f"n_queries={n_queries} should be between 0 and n-1={dataset.n - 1}.")
    rows = dataset.sample_rows(n_queries, random_state=seed + 1)
    query_set = (f"{n_queries:,} rows of the data drawn at random (seed {seed + 1}), left out of the "
                 "searched base")
    return rows, dataset.take(rows), query_set


def report_dataset(quantizer, dataset, *, chunk_rows=DEFAULT_CHUNK_ROWS, queries=None, query_rows=None,
                   ground_truth=None, R=(1, 10, 100), query_set="queries", codes=None, fit_seconds=None,
                   client=None, on_codes=None, top_groups=20, random_state=0, encode_seconds=None):
    """Encode every row of ``dataset`` with a fitted quantizer and compute the whole report.

    Parameters
    ----------
    quantizer : fitted vqcore quantizer
    dataset : vqcore.catalog.LazyDataset
    chunk_rows : int
        Rows read, encoded and measured at a time (memory is about
        ``chunk_rows * d * 4`` bytes per running task, plus the code tables).
    queries : ndarray of shape (nq, d), optional
        Queries for recall@R; their exact nearest neighbour in the data is
        found in the same pass (float64, the lowest row on a tie) unless
        ``ground_truth`` is given.
    query_rows : array of int, optional
        Rows of the dataset that are the queries: they stay in every metric
        and in the codes, and are left out of the base that recall searches.
    ground_truth : array of int, shape (nq,) or (nq, k), optional
    R : tuple of int
    query_set : str
        Says which queries were used; stored in the report.
    codes : ndarray of shape (n, M), optional
        Codes already computed (no encoding then).
    fit_seconds : float, optional
    client : distributed.Client, optional
        Run the chunk tasks on this Dask cluster (see :func:`dask_client`);
        default in this process.
    on_codes : callable, optional
        ``on_codes(chunk, codes)`` is called for each chunk in row order as
        soon as its codes are known (e.g. to write them out).
    top_groups : int
        How many of the largest collision groups the report lists.
    encode_seconds : float, optional
        Wall time of computing ``codes`` when they are given; otherwise the
        encoding's own time, summed over the chunks (the report's
        ``complexity.encode_us_per_vector``).

    Returns
    -------
    report : dict
        The keys of :func:`vqcore.report.evaluate`, plus ``collisions.groups``.
    codes : ndarray of shape (n, M)
    """
    quantizer.check_fitted()
    if dataset.d != quantizer.n_features_in_:
        raise DataError(f"{dataset.source} has d={dataset.d} but the quantizer was fitted with "
                        f"n_features={quantizer.n_features_in_}.")
    chunk_rows = check_int("chunk_rows", chunk_rows, low=1)
    top_groups = check_int("top_groups", top_groups, low=1)
    M, K = quantizer.n_codebooks, quantizer.codebook_size
    Q = None
    if queries is not None:
        Q = check_data(queries, name="queries").astype(np.float64)
        check_dim(Q, dataset.d, name="queries")
    exclude = None if query_rows is None else np.unique(np.asarray(query_rows, dtype=np.int64))
    plan = partials.Plan(sizes=[K] * M, queries=Q, exclude=exclude,
                         find_truth=Q is not None and ground_truth is None)
    if Q is not None and ground_truth is not None:
        plan.truth = check_ground_truth(ground_truth, Q.shape[0], dataset.n)
    chunks = dataset.chunk_list(chunk_rows)
    spans = _spans(chunks, SPAN_CHUNKS)
    if codes is not None:
        codes = np.asarray(codes)
        if codes.shape != (dataset.n, M):
            raise VQLensError(f"codes has shape {codes.shape}; the data needs ({dataset.n}, {M}).")
    out = np.empty((dataset.n, M), dtype=code_dtype(K)) if codes is None else codes
    window = 2 * max(1, len(client.scheduler_info().get("workers", {})) if client is not None else 1)
    shared = _Shared(client, quantizer, dataset, plan)

    def rows(span):
        return slice(span[0].offset, span[-1].offset + span[-1].rows)

    try:
        args = [(shared.q, shared.ds, span, shared.plan, None if codes is None else codes[rows(span)])
                for span in spans]
        stats = None
        for span, (span_codes, part) in zip(spans, _in_order(_pass1, args, client, "encode", window)):
            if codes is None:
                out[rows(span)] = span_codes
            if on_codes is not None:
                for c in span:
                    on_codes(c, out[c.offset:c.offset + c.rows])
            stats = part if stats is None else stats.merge(part)
        partials.prepare_codes_pass(quantizer, stats, plan, top=top_groups)
        if plan.truth is not None:
            partials.truth_codes(quantizer, plan, out[plan.truth])
        shared.update_plan(plan)
        args = [(shared.q, out[rows(span)], span, shared.plan) for span in spans]
        second = partials.merge_all(_in_order(_pass2, args, client, "metrics", window))
    finally:
        shared.release()
    if codes is None:
        encode_seconds = stats.encode_seconds
    report = partials.finish_report(quantizer, stats, second, plan, R=R, query_set=query_set,
                                    fit_seconds=fit_seconds, random_state=random_state,
                                    encode_seconds=encode_seconds)
    return report, out


class _Shared:
    """The quantizer, dataset and plan: as they are in process, scattered once to a Dask cluster."""

    def __init__(self, client, quantizer, dataset, plan):
        self.client = client
        if client is None:
            self.q, self.ds, self.plan = quantizer, dataset, plan
        else:
            self.q, self.ds, self.plan = client.scatter([quantizer, dataset, plan], broadcast=True)

    def update_plan(self, plan):
        if self.client is None:
            self.plan = plan
        else:
            with contextlib.suppress(Exception):
                self.plan.release()
            self.plan = self.client.scatter(plan, broadcast=True)

    def release(self):
        if self.client is not None:
            for f in (self.q, self.ds, self.plan):
                with contextlib.suppress(Exception):
                    f.release()
