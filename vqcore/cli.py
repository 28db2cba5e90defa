"""The command line: ``python -m vqcore report DATA --spec RQ3x8 --out DIR``.

Fits a quantizer on a random sample of a catalogue (or loads a trained one),
encodes every row chunk by chunk, in this process or on Dask, and writes

- ``DIR/codes.parquet``: the row number, the data's id column when it has
  one, and one column of codes per level (``level_0`` ...);
- ``DIR/report.json``: the report of :func:`vqcore.report.evaluate` for the
  whole catalogue, with how it was made;
- ``DIR/report.html``: one self-contained page with the app's charts (needs
  plotly; written by ``ui/report_html.py``, which vqcore never imports at
  module level).

Every file is written under a temporary name and renamed when all are
complete, ``report.json`` last: a failed run leaves no new file that looks
finished. Bad input prints one ``error:`` line and exits with status 2.

:func:`main` takes the argument list, so an installed ``vqlens`` script (or
a test) can call it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from . import progress
from .catalog import DEFAULT_CHUNK_ROWS, open_dataset
from .exceptions import VQLensError

EXIT_BAD_INPUT = 2
DEFAULT_SAMPLE = 100_000


def _parser():
    p = argparse.ArgumentParser(prog="python -m vqcore", description="VQ Lens on whole catalogues.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser(
        "report", help="fit (or load) a quantizer, encode every row, write codes and the report",
        description="Fit a quantizer on a sample of DATA (or load --model), encode every row and write "
                    "DIR/codes.parquet, DIR/report.json and DIR/report.html.")
    r.add_argument("data", metavar="DATA",
                   help=".npy, .fvecs, .bvecs or .parquet file, or a folder of .parquet shards")
    r.add_argument("--spec", help="quantizer spec, e.g. RQ3x8, PQ8x8, RQ4x8_b4 (with --model: optional)")
    r.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    r.add_argument("--model", metavar="FILE", help="a trained model to load instead of fitting")
    r.add_argument("--dask", metavar="local|ADDRESS",
                   help="run the encoding and metrics on Dask: 'local' starts a LocalCluster, else the "
                        "address of a running scheduler (tcp://host:8786)")
    r.add_argument("--sample", type=int, default=DEFAULT_SAMPLE,
                   help=f"rows drawn at random to fit on (default {DEFAULT_SAMPLE:,})")
    r.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS,
                   help=f"rows read and encoded at a time (default {DEFAULT_CHUNK_ROWS:,})")
    r.add_argument("--queries", type=int, default=None,
                   help="rows drawn as queries for recall@R, left out of the searched base "
                        "(default 10%% of n, at most 1000; 0 for none)")
    r.add_argument("--seed", type=int, default=0, help="random seed of the sample, the queries and the fit")
    r.add_argument("--no-html", action="store_true", help="do not write report.html")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


class _Bars:
    """vqcore.progress reports as tqdm bars, a new bar for each phase (the text before ':')."""

    def __init__(self, quiet):
        self.quiet = quiet
        self.bar = None
        self.phase = None

    def phase_bar(self, phase):
        self.close()
        self.phase = phase
        if not self.quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=1000, desc=phase, unit="‰", file=sys.stderr, leave=True,
                            bar_format="{desc:>8}: {percentage:3.0f}%|{bar}| {elapsed} {postfix}")

    def __call__(self, fraction, message):
        phase, _, rest = message.partition(": ")
        if phase in ("fit", "encode", "metrics") and phase != self.phase:
            self.phase_bar(phase)
            message = rest
        elif phase == self.phase:
            message = rest
        if self.bar is not None:
            self.bar.n = int(round(fraction * 1000))
            self.bar.set_postfix_str(message[:60], refresh=False)
            self.bar.refresh()

    def close(self):
        if self.bar is not None:
            self.bar.n = self.bar.total
            self.bar.refresh()
            self.bar.close()
        self.bar = None


def _load_model(path):
    from .models import load_quantizer

    return load_quantizer(os.fspath(path))


def _fit(args, ds, bars):
    from .spec import from_spec

    if args.spec is None:
        raise VQLensError("--spec is required without --model, e.g. --spec RQ3x8.")
    q = from_spec(args.spec, random_state=args.seed)
    sample = min(args.sample, ds.n)
    if sample < 1:
        raise VQLensError(f"--sample={args.sample} should be >= 1.")
    rows = ds.sample_rows(sample, random_state=args.seed)
    bars.phase_bar("fit")
    bars(0.0, f"fit: reading {rows.size:,} sample rows")
    X = ds.take(rows)
    t0 = time.perf_counter()
    with progress.reporting(lambda f, m: bars(f, "fit: " + m)):
        q.fit(X)
    seconds = time.perf_counter() - t0
    bars.close()
    return q, int(rows.size), seconds


class CodesWriter:
    """codes.parquet written chunk by chunk, in row order, under a temporary name."""

    def __init__(self, path, ds, M):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa, self.ds, self.M = pa, ds, M
        self.path = path
        self.writer = None
        self.pq = pq
        self.rows = 0

    def __call__(self, chunk, codes):
        pa = self.pa
        cols = {"row": pa.array(np.arange(chunk.offset, chunk.offset + chunk.rows, dtype=np.int64))}
        ids = self.ds.read_ids(chunk)
        if ids is not None:
            cols[self.ds.id_column] = pa.array(ids)
        for m in range(self.M):
            cols[f"level_{m}"] = pa.array(np.ascontiguousarray(codes[:, m]))
        table = pa.table(cols)
        if self.writer is None:
            self.writer = self.pq.ParquetWriter(self.path, table.schema)
        self.writer.write_table(table)
        self.rows += chunk.rows

    def close(self):
        if self.writer is not None:
            self.writer.close()


def report_command(args):
    out = Path(args.out)
    bars = _Bars(args.quiet)
    ds = open_dataset(args.data)
    for name, value, low in (("--chunk-rows", args.chunk_rows, 1), ("--sample", args.sample, 1)):
        if value < low:
            raise VQLensError(f"{name}={value} should be >= {low}.")
    n_queries = _default_queries(ds.n) if args.queries is None else args.queries
    if not 0 <= n_queries < ds.n:
        raise VQLensError(f"--queries={n_queries} should be between 0 and n-1={ds.n - 1}.")
    if out.exists() and not out.is_dir():
        raise VQLensError(f"--out {str(out)!r} exists and is not a folder.")
    if args.model:
        q, n_train, fit_seconds = _load_model(args.model), None, None
        if args.spec and q.spec() != args.spec:
            raise VQLensError(f"--spec {args.spec} does not match the model's spec {q.spec()}.")
    else:
        q, n_train, fit_seconds = _fit(args, ds, bars)
    if q.n_features_in_ != ds.d:
        raise VQLensError(f"the model has d={q.n_features_in_} but {ds.source} has d={ds.d}.")
    out.mkdir(parents=True, exist_ok=True)
    tag = f".tmp-{os.getpid()}"
    final = {k: out / k for k in ("codes.parquet", "report.html", "report.json")}
    tmp = {k: p.with_name(p.name + tag) for k, p in final.items()}
    writer = CodesWriter(tmp["codes.parquet"], ds, q.n_codebooks)
    client = None
    try:
        from .pipeline import close_client, dask_client, draw_queries, report_dataset

        if args.dask:
            client = dask_client(args.dask)
        qrows, queries, query_set = draw_queries(ds, n_queries, args.seed)
        t0 = time.perf_counter()
        with progress.reporting(bars):
            report, _ = report_dataset(q, ds, chunk_rows=args.chunk_rows, queries=queries, query_rows=qrows,
                                       query_set=query_set, fit_seconds=fit_seconds, client=client,
                                       on_codes=writer, random_state=args.seed)
        bars.close()
        writer.close()
        report.update({
            "n_train": n_train,
            "data": {"path": os.path.abspath(args.data), "source": ds.source, "dtype": str(ds.dtype),
                     "id_column": ds.id_column},
            "run": {"engine": "in-process" if client is None else f"dask {args.dask}",
                    "chunk_rows": args.chunk_rows, "seed": args.seed,
                    "encode_and_metrics_seconds": time.perf_counter() - t0,
                    "model": os.path.abspath(args.model) if args.model else None},
        })
        from .report import report_to_json

        tmp["report.json"].write_text(report_to_json(report))
        html = not args.no_html and _write_html(report, tmp["report.html"])
        for k in ("codes.parquet", "report.html", "report.json"):  # report.json last: the run is complete
            if k == "report.html" and not html:
                continue
            os.replace(tmp[k], final[k])
    finally:
        bars.close()
        writer.close()
        for p in tmp.values():
            if p.exists():
                p.unlink()
        if client is not None:
            close_client(client)
    print(json.dumps(_summary(report, out), indent=2))
    return 0


def _default_queries(n):
    from .report import default_n_queries

    return default_n_queries(n)


def _write_html(report, path):
    """report.html by the app's ui/report_html.py (plotly); False with a message when plotly is missing.

    The app's ``ui`` package is ``vqlens.app.ui`` once installed, ``ui`` in a checkout.
    """
    try:
        report_html = _report_html_module()
    except ImportError as exc:
        print(f"warning: report.html not written: {exc.name or exc} is not installed "
              "(pip install plotly); codes.parquet and report.json are.", file=sys.stderr)
        return False
    report_html.write(report, path)
    return True


def _report_html_module():
    import importlib

    for name in ("vqlens.app.ui.report_html", "ui.report_html"):
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            if not exc.name or not (name == exc.name or name.startswith(exc.name + ".")):
                raise  # found, but something it imports (plotly) is missing
    raise ImportError("report.html needs the VQ Lens app's ui package: install the app extra "
                      "(pip install 'vqlens[app]') or run from the checkout's folder", name="vqlens.app.ui")


def _summary(report, out):
    from .report import headline

    return {"out": str(out), "spec": report["spec"], "n": report["n"],
            **{k: v for k, v in headline(report).items() if v is not None}}


class _Terminated(BaseException):
    pass


def _terminated(signum, frame):
    raise _Terminated


def main(argv=None):
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = _parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        # a terminated run unwinds like an interrupted one: its temporary files are removed
        signal.signal(signal.SIGTERM, _terminated)
    try:
        if args.command == "report":
            return report_command(args)
    except VQLensError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted; no output was completed.", file=sys.stderr)
        return 130
    except _Terminated:
        print("terminated; no output was completed.", file=sys.stderr)
        return 143
    return 1
