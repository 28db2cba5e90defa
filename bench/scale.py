"""A whole catalogue on one machine: ``python -m vqcore report`` on millions of rows.

For each data set (parquet shards generated under /tmp, never committed):

1. peak RSS (the CLI process and, with Dask, its whole process tree), fit time
   and the encode + metrics time of ``python -m vqcore report``, in process
   and with ``--dask local``; whether the two codes.parquet are identical;
2. encode throughput (rows/s) of vqcore against faiss's ``sa_encode`` with the
   *same* codebooks (a faiss index built from vqcore's fitted codebooks), on
   the same rows, for PQ and RQ beam 1, and how many codes agree;
3. the metric pass alone (the report from given codes) against the encoding.

Data: ``sift`` tiles SIFT10K's base (../shared/bench/data) with Gaussian noise
of ``--noise`` (default 0.5) times each dimension's spread, so that rows are
distinct but keep SIFT's structure (at 0.1, 99% of 4M rows share their RQ4x8
code with another row: near-duplicates); ``minilm`` does the same with
MiniLM's 30,000 sentence embeddings (base + learn), re-normalised to unit length.

Usage::

    python bench/scale.py --data sift --n 10000000          # the 10M x 128 run (long)
    python bench/scale.py --data minilm --n 1000000
    python bench/scale.py --data sift --n 200000 --quick     # a smoke run
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

import vqcore  # noqa: E402
from vqcore.catalog import open_dataset  # noqa: E402
from vqcore.io import read_fvecs  # noqa: E402
from vqcore.pipeline import report_dataset  # noqa: E402

# ../shared/bench/data of the checkout (or of the folder holding the worktrees)
DATA = next((p / "shared" / "bench" / "data" for p in ROOT.parents if (p / "shared" / "bench" / "data").is_dir()),
            ROOT.parent / "shared" / "bench" / "data")
SHARD_ROWS = 1_000_000
ROW_GROUP = 131_072


def _base(kind):
    if kind == "sift":
        return read_fvecs(str(DATA / "siftsmall_base.fvecs"))
    return np.concatenate([np.load(DATA / "minilm_base.npy"), np.load(DATA / "minilm_learn.npy")])


def generate(kind, n, folder, seed=0, noise=0.5):
    """Parquet shards of n rows (id, emb as fixed-size list of float32), made block by block:
    rows of the base drawn at random plus Gaussian noise of ``noise`` times each dimension's spread."""
    folder = Path(folder)
    done = folder / "COMPLETE"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    base = _base(kind).astype(np.float32)
    scale = (noise * base.std(axis=0)).astype(np.float32)
    d = base.shape[1]
    for s, a in enumerate(range(0, n, SHARD_ROWS)):
        rows = min(SHARD_ROWS, n - a)
        schema = pa.schema([("id", pa.int64()), ("emb", pa.list_(pa.float32(), d))])
        with pq.ParquetWriter(folder / f"part-{s:05d}.parquet", schema, compression="none") as w:
            for b in range(0, rows, ROW_GROUP):
                m = min(ROW_GROUP, rows - b)
                rng = np.random.default_rng([seed, s, b])
                X = base[rng.integers(len(base), size=m)]
                X += rng.standard_normal((m, d), dtype=np.float32) * scale
                if kind == "minilm":
                    X /= np.linalg.norm(X, axis=1, keepdims=True)
                ids = np.arange(a + b, a + b + m, dtype=np.int64)
                emb = pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), d)
                w.write_table(pa.table({"id": ids, "emb": emb}, schema=schema), row_group_size=ROW_GROUP)
    done.write_text(f"{kind} {n}\n")
    return folder


def _tree_rss(proc):
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.Error:
        return 0, 0
    total = 0
    main = 0
    for p in procs:
        try:
            rss = p.memory_info().rss
        except psutil.Error:
            continue
        total += rss
        if p.pid == proc.pid:
            main = rss
    return main, total


def run_cli(args, label):
    """Run the CLI; return (seconds, peak RSS of the CLI process, peak RSS of its process tree)."""
    cmd = [sys.executable, "-m", "vqcore", "report", *map(str, args), "--quiet"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak = [0, 0]

    def poll():
        while proc.poll() is None:
            m, t = _tree_rss(ps)
            peak[0], peak[1] = max(peak[0], m), max(peak[1], t)
            time.sleep(0.1)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    out, err = proc.communicate()
    th.join()
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{label} failed ({proc.returncode}):\n{err[-3000:]}")
    return seconds, peak[0], peak[1]


def faiss_index(q):
    """A faiss index encoding with vqcore's fitted codebooks (PQ or RQ beam 1)."""
    import faiss

    d, M = q.n_features_in_, q.n_codebooks
    nbits = int(np.log2(q.codebook_size))
    cb = np.ascontiguousarray(q.codebooks_, dtype=np.float32)
    if q.method == "PQ":
        index = faiss.IndexPQ(d, M, nbits)
        faiss.copy_array_to_vector(cb.ravel(), index.pq.centroids)
    elif q.method == "RQ":
        index = faiss.IndexResidualQuantizer(d, M, nbits)
        faiss.copy_array_to_vector(cb.ravel(), index.rq.codebooks)
        index.rq.is_trained = True
        index.rq.max_beam_size = 1
    else:
        raise ValueError(q.method)
    index.is_trained = True
    return index


def encode_race(q, X, repeat=5, threads=2):
    """rows/s of vqcore and faiss on X with the same codebooks; share of equal codes.

    The two sides alternate in one process (vqcore, faiss, vqcore, ...), ``repeat`` times
    each, on ``threads`` threads each (faiss's OpenMP, vqcore's pool and BLAS); the best
    time of each is kept, so that a burst of load on the shared machine hits both."""
    import faiss
    from threadpoolctl import threadpool_limits

    os.environ["VQCORE_NUM_THREADS"] = str(threads)
    faiss.omp_set_num_threads(threads)
    index = faiss_index(q)
    Xf = np.ascontiguousarray(X - q.mean_ if getattr(q, "mean_", None) is not None else X, dtype=np.float32)
    t_vq = t_fa = float("inf")
    load = [os.getloadavg()[0]]
    with threadpool_limits(limits=threads, user_api="blas"):
        q.encode(X[:1000]), index.sa_encode(Xf[:1000])  # warm up (numba, faiss's tables)
        for _ in range(repeat):
            t0 = time.perf_counter()
            codes = q.encode(X)
            t_vq = min(t_vq, time.perf_counter() - t0)
            t0 = time.perf_counter()
            packed = index.sa_encode(Xf)
            t_fa = min(t_fa, time.perf_counter() - t0)
            load.append(os.getloadavg()[0])
    fa = packed[:, :q.n_codebooks].astype(np.int64)  # nbits = 8: one byte per code
    return {"rows": len(X), "vqcore_rows_s": len(X) / t_vq, "faiss_rows_s": len(X) / t_fa,
            "ratio": t_fa / t_vq, "codes_equal": float(np.mean(fa == codes)),
            "load": (min(load), max(load))}


def codes_equal(a, b):
    ta, tb = pq.ParquetFile(a), pq.ParquetFile(b)
    if ta.metadata.num_rows != tb.metadata.num_rows or ta.schema_arrow != tb.schema_arrow:
        return False
    for x, y in zip(ta.iter_batches(1 << 20), tb.iter_batches(1 << 20)):
        if not x.equals(y):
            return False
    return True


def verify_in_memory(ds, out, spec, sample, seed=0):
    """The CLI's collision rate, dead codes and mse against those computed in memory from the same
    codes (the whole codes loaded at once; the data block by block; the fit reproduced from
    the same sample)."""
    from vqcore import metrics

    rep = json.loads((Path(out) / "report.json").read_text())
    table = pq.read_table(Path(out) / "codes.parquet")
    codes = np.column_stack([table.column(f"level_{m}").to_numpy() for m in range(rep["n_codebooks"])])
    assert np.array_equal(table.column("row").to_numpy(), np.arange(ds.n))
    del table
    K = rep["codebook_size"]
    rate = metrics.collision_rate(codes)
    dead = int(sum(metrics.usage_stats(codes, K)["dead"]))
    q = vqcore.from_spec(spec, random_state=seed).fit(ds.sample(sample, random_state=seed)[1])
    # the whole codes are in memory; the data (5 GB at 10M x 128) and its reconstruction go by
    # blocks (a row group at most), each block's mse by the in-memory metrics.reconstruction_error
    total = 0.0
    for start, X in ds.chunks(1 << 20):
        total += metrics.reconstruction_error(X, q.decode(codes[start:start + len(X)]))["mse"] * len(X)
    mse = total / ds.n
    print(f"\nin memory from the same codes: collision rate {rate!r} (CLI {rep['collisions']['rate']!r}), "
          f"dead codes {dead} (CLI {sum(rep['usage']['dead'])}), mse {mse!r} (CLI {rep['reconstruction']['mse']!r}, "
          f"relative difference {abs(mse / rep['reconstruction']['mse'] - 1):.1e})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", choices=["sift", "minilm"], default="sift")
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--spec", default="RQ4x8")
    ap.add_argument("--pq", default=None, help="PQ spec for the encode race (default PQ<d/8>x8)")
    ap.add_argument("--sample", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--chunk-rows", type=int, default=65_536)
    ap.add_argument("--race-rows", type=int, default=200_000)
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--quick", action="store_true", help="skip the metric pass alone")
    ap.add_argument("--noise", type=float, default=0.5)
    ap.add_argument("--workdir", default="/tmp/vqlens_scale")
    ap.add_argument("--race-only", action="store_true", help="only the encode race (no CLI runs)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of each side in the encode race")
    ap.add_argument("--threads", type=int, default=2, help="threads of each side in the encode race")
    ap.add_argument("--verify", action="store_true",
                    help="only check an earlier run's report against the in-memory metrics of its codes")
    args = ap.parse_args()
    if args.verify:
        ds = open_dataset(Path(args.workdir) / f"{args.data}_{args.n}_noise{args.noise:g}")
        verify_in_memory(ds, Path(args.workdir) / "out_local", args.spec, args.sample)
        return

    work = Path(args.workdir)
    t0 = time.perf_counter()
    data = generate(args.data, args.n, work / f"{args.data}_{args.n}_noise{args.noise:g}", noise=args.noise)
    ds = open_dataset(data)
    print(f"data: {ds} ({time.perf_counter() - t0:.0f} s to generate or find), "
          f"{sum(f.stat().st_size for f in Path(data).glob('*.parquet')) / 2**30:.2f} GiB on disk")
    if args.race_only:
        race_all(args, ds, None)
        return
    common = ["--spec", args.spec, "--sample", args.sample, "--queries", args.queries,
              "--chunk-rows", args.chunk_rows, "--no-html"]
    out_local, out_dask = work / "out_local", work / "out_dask"
    sec, rss, _ = run_cli([data, "--out", out_local, *common], "in process")
    rep = json.loads((out_local / "report.json").read_text())
    codes_mb = ds.n * rep["n_codebooks"] / 2**20
    print(f"\nCLI in process: {sec:.1f} s wall; fit {rep['fit_seconds']:.1f} s on {rep['n_train']:,} rows; "
          f"encode + metrics {rep['run']['encode_and_metrics_seconds']:.1f} s "
          f"({ds.n / rep['run']['encode_and_metrics_seconds']:,.0f} rows/s)")
    print(f"  peak RSS {rss / 2**30:.2f} GiB; codes {codes_mb:.0f} MiB; beyond the codes "
          f"{(rss - codes_mb * 2**20) / 2**30:.2f} GiB (target < 1.5)")
    print(f"  mse {rep['reconstruction']['mse']:.5g}, collision rate {rep['collisions']['rate']:.6g}, "
          f"dead codes {sum(rep['usage']['dead'])}, recall@10 {rep['recall']['at']['10']:.3f} "
          f"({rep['recall']['n_queries']} queries)")
    if not args.no_dask:
        sec_d, rss_d, tree_d = run_cli([data, "--out", out_dask, *common, "--dask", "local"], "dask")
        rep_d = json.loads((out_dask / "report.json").read_text())
        same = codes_equal(out_local / "codes.parquet", out_dask / "codes.parquet")
        same_report = all(rep_d[k] == rep[k] for k in ("reconstruction", "usage", "collisions", "recall",
                                                        "mutual_information", "residual_variance"))
        em, em_d = rep["run"]["encode_and_metrics_seconds"], rep_d["run"]["encode_and_metrics_seconds"]
        print(f"\nCLI --dask local: {sec_d:.1f} s wall; encode + metrics {em_d:.1f} s against {em:.1f} s "
              f"in process (overhead {em_d / em - 1:+.0%}, target < +25%); whole run {sec_d / sec - 1:+.0%}")
        print(f"  peak RSS: client {rss_d / 2**30:.2f} GiB, process tree {tree_d / 2**30:.2f} GiB")
        print(f"  codes.parquet identical: {same}; report numbers identical: {same_report}")

    race_all(args, ds, out_local)
    if ds.n * ds.d * 4 <= 4 * 2**30:
        verify_in_memory(ds, out_local, args.spec, args.sample)


def race_all(args, ds, out_local):
    """The encode race with codebooks fitted on the same sample; with ``out_local``, also the
    metric pass alone on the CLI's codes."""
    rows, S = ds.sample(args.sample, random_state=0)
    Xr = np.concatenate([X for _, X in zip(range(10**9), _take(ds, args.race_rows, args.chunk_rows))])
    print(f"\nencode, {len(Xr):,} rows, same codebooks (vqcore / faiss sa_encode), {args.threads} threads each, "
          f"best of {args.repeat} interleaved; load average {os.getloadavg()}:")
    pq_spec = args.pq or f"PQ{ds.d // 8}x8"
    for spec in (args.spec, pq_spec):
        t = time.perf_counter()
        q = vqcore.from_spec(spec, random_state=0).fit(S)
        fit = time.perf_counter() - t
        race = encode_race(q, Xr, repeat=args.repeat, threads=args.threads)
        print(f"  {spec:8s} vqcore {race['vqcore_rows_s']:>12,.0f} rows/s   faiss {race['faiss_rows_s']:>12,.0f} "
              f"rows/s   ratio {race['ratio']:.2f} (target >= 0.8)   codes equal {race['codes_equal']:.4f}   "
              f"(fit {fit:.1f} s; load {race['load'][0]:.1f}-{race['load'][1]:.1f})")
        if spec == args.spec and not args.quick and out_local is not None:
            codes = pq.read_table(out_local / "codes.parquet",
                                  columns=[f"level_{m}" for m in range(q.n_codebooks)])
            codes = np.column_stack([c.to_numpy() for c in codes.columns])
            np.testing.assert_array_equal(q.encode(Xr[:1000]), codes[:1000])  # the CLI's fit, reproduced
            t = time.perf_counter()
            report_dataset(q, ds, chunk_rows=args.chunk_rows, codes=codes)
            print(f"  metric pass alone (given codes, no queries): {time.perf_counter() - t:.1f} s "
                  f"({ds.n / (time.perf_counter() - t):,.0f} rows/s)")
            del codes


def _take(ds, n_rows, chunk_rows):
    got = 0
    for _, X in ds.chunks(chunk_rows):
        yield X[: n_rows - got]
        got += len(X)
        if got >= n_rows:
            return


if __name__ == "__main__":
    main()
