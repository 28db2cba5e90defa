"""Whole catalogues: lazy datasets, streamed metrics that merge, Dask, the command line.

The streamed report must give the in-memory numbers: integers (counts, dead
codes, distinct tuples, recall hits) exactly, float sums to rounding; Dask
must give the in-process codes and report exactly.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import vqcore
from vqcore import metrics
from vqcore.catalog import as_dataset, open_dataset
from vqcore.datasets import make_gaussian
from vqcore.exceptions import DataError
from vqcore.io import read_bvecs, read_fvecs
from vqcore.partials import KeyCounts, merge_all
from vqcore.pipeline import report_dataset
from vqcore.report import evaluate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def X():
    return make_gaussian(3000, 16, correlated=True, rho=0.8, random_state=0).X


def _write_shards(folder, X, *, per_shard=1000, row_group=400, layout="fixed", ids=True, text=False):
    os.makedirs(folder, exist_ok=True)
    n, d = X.shape
    for i, a in enumerate(range(0, n, per_shard)):
        x = X[a:a + per_shard]
        cols = {}
        if ids:
            cols["item_id"] = np.arange(a, a + len(x), dtype=np.int64) * 7 + 3
        if layout == "fixed":
            cols["emb"] = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), d)
        elif layout == "list":
            cols["emb"] = pa.array(list(x))
        else:
            cols.update({f"f{j}": x[:, j] for j in range(d)})
        if text:
            cols["title"] = [f"item {j}" for j in range(a, a + len(x))]
        pq.write_table(pa.table(cols), os.path.join(folder, f"part-{i:04d}.parquet"), row_group_size=row_group)
    return folder


# --------------------------------------------------------------------------
# lazy datasets


def test_npy_float16_is_memory_mapped_and_converted_per_chunk(tmp_path, X):
    X16 = X.astype(np.float16)
    np.save(tmp_path / "x.npy", X16)
    ds = open_dataset(tmp_path / "x.npy")
    assert (ds.n, ds.d, ds.dtype) == (3000, 16, np.float16)
    assert isinstance(ds._array, np.memmap)
    got = list(ds.chunks(700))
    assert [o for o, _ in got] == [0, 700, 1400, 2100, 2800]
    assert all(c.dtype == np.float32 and c.shape[0] <= 700 for _, c in got)
    np.testing.assert_array_equal(np.concatenate([c for _, c in got]), X16.astype(np.float32))


@pytest.mark.parametrize("ext", ["fvecs", "bvecs"])
def test_vecs_files_read_like_vqcore_io(tmp_path, ext):
    rng = np.random.default_rng(1)
    item = np.float32 if ext == "fvecs" else np.uint8
    V = (rng.normal(size=(500, 12)) * 50 if ext == "fvecs" else rng.integers(0, 256, (500, 12))).astype(item)
    rec = np.zeros(500, dtype=[("d", "<i4"), ("v", item, (12,))])
    rec["d"], rec["v"] = 12, V
    path = tmp_path / f"x.{ext}"
    rec.tofile(path)
    ds = open_dataset(path)
    expected = (read_fvecs if ext == "fvecs" else read_bvecs)(str(path)).astype(np.float32)
    np.testing.assert_array_equal(np.concatenate([c for _, c in ds.chunks(128)]), expected)
    rows, S = ds.sample(50, random_state=3)
    np.testing.assert_array_equal(S, expected[rows])


@pytest.mark.parametrize("layout", ["fixed", "list", "columns"])
def test_parquet_shards_knows_n_and_d_and_reads_every_row_in_order(tmp_path, X, layout):
    ds = open_dataset(_write_shards(tmp_path / "s", X, layout=layout, text=True))
    assert (ds.n, ds.d) == X.shape
    assert ds.id_column == "item_id" and ds.text_column == "title"
    chunks = ds.chunk_list(300)
    assert sum(c.rows for c in chunks) == ds.n and max(c.rows for c in chunks) <= 300
    np.testing.assert_array_equal(np.concatenate([ds.read(c) for c in chunks]), X)
    ids = np.concatenate([ds.read_ids(c) for c in chunks])
    np.testing.assert_array_equal(ids, np.arange(3000) * 7 + 3)
    for c in chunks[::-1]:  # backwards: every read restarts its row group's cursor
        assert ds.read_texts(c) == [f"item {i}" for i in range(c.offset, c.offset + c.rows)]


def test_shards_with_an_upper_case_suffix_are_read_as_the_data_folder_lists_them(tmp_path, X):
    """The data folder lists ``PART.PARQUET`` shards; opening the folder must read them, in name order."""
    from vqcore.datafolder import list_datasets

    folder = _write_shards(tmp_path / "s", X)
    for f in sorted(os.listdir(folder))[1:]:
        os.rename(os.path.join(folder, f), os.path.join(folder, f.replace(".parquet", ".PARQUET")))
    os.mkdir(os.path.join(folder, "not_a_shard.parquet"))  # a folder named like a shard is skipped
    ds = open_dataset(folder)
    assert (ds.n, ds.d) == X.shape
    np.testing.assert_array_equal(np.concatenate([ds.read(c) for c in ds.chunk_list(1000)]), X)
    listed = {e.name: e for e in list_datasets(tmp_path).entries}
    assert listed["s"].n == X.shape[0]


def test_sample_is_uniform_reproducible_and_the_right_rows(tmp_path, X):
    ds = open_dataset(_write_shards(tmp_path / "s", X))
    rows, S = ds.sample(500, random_state=7)
    rows2, _ = ds.sample(500, random_state=7)
    np.testing.assert_array_equal(rows, rows2)
    assert np.unique(rows).size == 500 and np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(S, X[rows])
    assert not np.array_equal(rows, ds.sample_rows(500, random_state=8))
    # uniform: every shard gets its share (1000 of 3000 rows each -> about 1/3)
    shares = np.bincount(rows // 1000) / 500
    np.testing.assert_allclose(shares, 1 / 3, atol=0.08)


def test_bad_catalogues_say_what_and_where(tmp_path, X):
    with pytest.raises(DataError, match="does not exist"):
        open_dataset(tmp_path / "missing.parquet")
    (tmp_path / "x.txt").write_text("1,2")
    with pytest.raises(DataError, match="extension"):
        open_dataset(tmp_path / "x.txt")
    (tmp_path / "bad.fvecs").write_bytes(np.array([4, 0, 0], dtype="<i4").tobytes())
    with pytest.raises(DataError, match="not a whole number of records"):
        open_dataset(tmp_path / "bad.fvecs")
    Xn = X.copy()
    Xn[1234, 5] = np.nan
    ds = open_dataset(_write_shards(tmp_path / "nan", Xn))
    with pytest.raises(DataError, match="row 1,234 "):
        list(ds.chunks(500))
    folder = tmp_path / "ragged"
    os.makedirs(folder)
    pq.write_table(pa.table({"emb": pa.array([[1.0, 2.0]] * 5 + [[1.0, 2.0, 3.0]] + [[1.0, 2.0]] * 4)}),
                   folder / "a.parquet")
    with pytest.raises(DataError, match="row 5 has a vector of 3 values|not all have the same length"):
        list(open_dataset(folder).chunks(4))
    other = _write_shards(tmp_path / "mixed", X[:100], per_shard=100)
    pq.write_table(pa.table({"item_id": np.arange(3), "emb": pa.array([[1.0] * 8] * 3)}),
                   os.path.join(other, "part-9999.parquet"))
    with pytest.raises(DataError, match="differs"):
        open_dataset(other)


# --------------------------------------------------------------------------
# partials that merge


def test_key_counts_merge_to_the_exact_table_in_any_grouping():
    rng = np.random.default_rng(0)
    # few distinct keys (most merged keys are found) and many (most are inserted), empty parts too
    for width, high in ((1, 6), (3, 6), (1, 2**40), (1, 3000), (2, 40)):
        words = rng.integers(0, high, size=(5000, width)).astype(np.uint64)
        parts = np.split(words, np.sort(rng.choice(np.arange(0, 5001), 30)))
        kc = KeyCounts(width)
        for p in parts:
            kc.merge(KeyCounts.of(p))
        keys, counts = kc.final()
        ref_keys, ref_counts = np.unique(words, axis=0, return_counts=True)
        np.testing.assert_array_equal(keys, ref_keys)
        np.testing.assert_array_equal(counts, ref_counts)
        assert len(kc.tables) == 1


def test_shuffled_baseline_from_counts_has_the_law_of_the_shuffle():
    """The baseline needs only the code counts: drawing the joint table from its margins
    (multivariate hypergeometric, one draw per a-code) has the law of shuffling column b."""
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, 300)
    b = (a + rng.integers(0, 2, 300)) % 6  # dependent, and b-code 5 rarely used
    ca, cb = np.bincount(a, minlength=5), np.bincount(b, minlength=6)  # a-code 4 unused
    table = metrics.independent_joint(ca, cb, rng, method="draws").reshape(-1, 6)
    np.testing.assert_array_equal(table.sum(axis=1), ca[ca > 0])
    np.testing.assert_array_equal(table.sum(axis=0), cb)
    H = metrics.entropy_of_counts
    shuffled = [H(metrics.joint_counts(a, rng.permutation(b), 5, 6)) for _ in range(400)]
    for method in ("draws", "shuffle"):
        drawn = [H(metrics.independent_joint(ca, cb, rng, method=method)) for _ in range(400)]
        se = np.std(shuffled) * np.sqrt(2 / 400)
        assert abs(np.mean(drawn) - np.mean(shuffled)) < 4 * se
        assert np.mean(drawn) > H(metrics.joint_counts(a, b, 5, 6)) + 0.5  # independence: more entropy


@pytest.mark.parametrize("spec", ["RQ3x4", "PQ4x4", "OPQ2x5"])
def test_streamed_report_equals_the_in_memory_metrics(X, spec):
    base, Q = X[200:], X[:200]
    q = vqcore.from_spec(spec, random_state=0).fit(base)
    codes = q.encode(base)
    X_hat = q.decode(codes)
    streamed, got_codes = report_dataset(q, as_dataset(base), chunk_rows=97, queries=Q)
    np.testing.assert_array_equal(got_codes, codes)
    whole = evaluate(q, base, Q)
    K = q.codebook_size
    # integers exactly
    assert streamed["usage"]["counts"] == [c.tolist() for c in metrics.code_counts(codes, K)]
    assert streamed["usage"]["dead"] == metrics.usage_stats(codes, K)["dead"].tolist()
    assert streamed["collisions"]["rate"] == metrics.collision_rate(codes)
    assert streamed["collisions"]["prefix_rates"] == metrics.prefix_collision_rates(codes).tolist()
    groups = metrics.collision_groups(codes, top=20)
    assert [(tuple(g["codes"]), g["items"]) for g in streamed["collisions"]["groups"]] == \
           [(t, m.tolist()) for t, m in groups]
    # float results to rounding
    np.testing.assert_allclose(streamed["effective_bits"], metrics.effective_bits(codes), rtol=1e-13)
    np.testing.assert_allclose(streamed["mutual_information"], metrics.mutual_information(codes, K), atol=1e-12)
    np.testing.assert_allclose(streamed["mutual_information_baseline"],
                               metrics.mutual_information_baseline(codes, K, random_state=0), atol=1e-12)
    rec = metrics.reconstruction_error(base, X_hat)
    # OPQ decodes through a float32 rotation, whose products round differently in row blocks
    # of different sizes; the others' reconstructions are sums of codewords, identical
    tol = 1e-6 if spec.startswith("OPQ") else 1e-11
    for key in ("mse", "relative", "snr_db"):
        np.testing.assert_allclose(streamed["reconstruction"][key], rec[key], rtol=tol)
    np.testing.assert_allclose(streamed["reconstruction"]["per_dim"], rec["per_dim"], rtol=tol)
    total = float(((base - base.mean(axis=0, dtype=np.float64)) ** 2).sum(axis=1).mean())
    stages = q.stage_errors(base, codes) / total
    expected = ([1.0] + stages.tolist()) if q.additive else stages.tolist()
    np.testing.assert_allclose(streamed["residual_variance"]["values"], expected, rtol=1e-6)
    # recall: the exact neighbour, then its rank among the reconstructions, ties by row number
    truth = metrics.exact_neighbors(base, Q, 1)[:, 0]
    d = ((X_hat[None, :, :].astype(np.float64) - Q[:, None, :]) ** 2).sum(axis=2)
    dt = d[np.arange(len(Q)), truth][:, None]
    rows = np.arange(len(base))[None, :]
    before = rows < truth[:, None]
    same = (codes[None, :, :] == codes[truth][:, None, :]).all(axis=2)  # the same reconstruction
    rank = np.where(same, before, (d < dt) | ((d == dt) & before)).sum(axis=1)
    assert streamed["recall"]["at"] == {str(r): float(np.mean(rank < r)) for r in (1, 10, 100)}
    # evaluate is the same machinery over one array: same numbers to rounding
    assert whole["usage"] == streamed["usage"] and whole["collisions"] == streamed["collisions"]
    assert whole["recall"]["at"] == streamed["recall"]["at"]
    np.testing.assert_allclose(whole["reconstruction"]["mse"], streamed["reconstruction"]["mse"], rtol=tol)


def test_a_chunk_without_collisions_or_queries_still_merges(X):
    q = vqcore.from_spec("RQ2x8", random_state=0).fit(X)
    report, _ = report_dataset(q, as_dataset(X[:300]), chunk_rows=1)
    assert report["n"] == 300 and report["recall"] is None
    assert report["collisions"]["rate"] == metrics.collision_rate(q.encode(X[:300]))
    assert merge_all([]) is None


# --------------------------------------------------------------------------
# Dask


def test_dask_gives_the_in_process_codes_and_report(tmp_path, X):
    distributed = pytest.importorskip("distributed")
    ds = open_dataset(_write_shards(tmp_path / "s", X))
    q = vqcore.from_spec("RQ2x6", random_state=0).fit(ds.sample(1000, random_state=0)[1])
    qrows = ds.sample_rows(60, random_state=1)
    kw = dict(chunk_rows=350, queries=ds.take(qrows), query_rows=qrows)
    local, codes = report_dataset(q, ds, **kw)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        remote, codes_dask = report_dataset(q, ds, client=client, **kw)
    np.testing.assert_array_equal(codes_dask, codes)
    for timed in (remote, local):  # the encoding's measured time is the one thing allowed to differ
        timed["complexity"].pop("encode_us_per_vector")
    assert json.dumps(remote, sort_keys=True) == json.dumps(local, sort_keys=True)


# --------------------------------------------------------------------------
# the command line


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "vqcore", *map(str, args), "--quiet"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def test_cli_report_writes_codes_json_and_html_equal_to_in_memory(tmp_path, X):
    data = _write_shards(tmp_path / "shards", X)
    out = tmp_path / "out"
    run = _cli("report", data, "--spec", "RQ3x5", "--out", out, "--chunk-rows", 450, "--sample", 2000,
               "--queries", 100, "--seed", 4)
    assert run.returncode == 0, run.stderr
    assert sorted(os.listdir(out)) == ["codes.parquet", "report.html", "report.json"]
    table = pq.read_table(out / "codes.parquet")
    assert table.column_names == ["row", "item_id", "level_0", "level_1", "level_2"]
    np.testing.assert_array_equal(table.column("row").to_numpy(), np.arange(3000))
    np.testing.assert_array_equal(table.column("item_id").to_numpy(), np.arange(3000) * 7 + 3)
    codes = np.column_stack([table.column(f"level_{m}").to_numpy() for m in range(3)])
    report = json.loads((out / "report.json").read_text())
    # the same fit from the same sample, then the in-memory report of the same codes
    ds = open_dataset(data)
    q = vqcore.from_spec("RQ3x5", random_state=4).fit(ds.sample(2000, random_state=4)[1])
    np.testing.assert_array_equal(q.encode(X), codes)
    whole = evaluate(q, X, codes=codes)
    assert report["collisions"]["rate"] == whole["collisions"]["rate"] == metrics.collision_rate(codes)
    assert report["usage"]["dead"] == whole["usage"]["dead"]
    assert report["usage"]["counts"] == whole["usage"]["counts"]
    np.testing.assert_allclose(report["reconstruction"]["mse"], whole["reconstruction"]["mse"], rtol=1e-12)
    np.testing.assert_allclose(report["effective_bits"], whole["effective_bits"], rtol=1e-13)
    # recall: the query rows are left out of the searched base
    qrows = ds.sample_rows(100, random_state=5)
    keep = np.setdiff1d(np.arange(3000), qrows)
    held_out = evaluate(q, X[keep], X[qrows], codes=codes[keep])
    assert report["recall"]["at"] == held_out["recall"]["at"]
    assert report["n_train"] == 2000 and report["run"]["engine"] == "in-process"
    page = (out / "report.html").read_text()
    assert page.count("Plotly.newPlot") == 8 and "RQ3x5" in page and "<script src=" not in page

    dask_out = tmp_path / "dask_out"
    run = _cli("report", data, "--spec", "RQ3x5", "--out", dask_out, "--chunk-rows", 450, "--sample", 2000,
               "--queries", 100, "--seed", 4, "--dask", "local", "--no-html")
    assert run.returncode == 0, run.stderr
    assert pq.read_table(dask_out / "codes.parquet").equals(table)
    dask_report = json.loads((dask_out / "report.json").read_text())
    for key in ("usage", "collisions", "reconstruction", "mutual_information", "recall", "residual_variance"):
        assert dask_report[key] == report[key]
    assert dask_report["run"]["engine"] == "dask local"


def test_cli_bad_input_exits_non_zero_and_leaves_no_report(tmp_path, X):
    # a bad row outside the fit's sample and the queries: found while encoding, after the fit
    clean = open_dataset(_write_shards(tmp_path / "clean", X))
    drawn = np.union1d(clean.sample_rows(500, random_state=0), clean.sample_rows(300, random_state=1))
    bad = int(np.setdiff1d(np.arange(2400, 3000), drawn)[0])
    Xn = X.copy()
    Xn[bad, 0] = np.inf
    data = _write_shards(tmp_path / "shards", Xn)
    out = tmp_path / "out"
    run = _cli("report", data, "--spec", "PQ2x4", "--out", out, "--sample", 500, "--chunk-rows", 400)
    assert run.returncode == 2
    assert f"row {bad:,} " in run.stderr and "Traceback" not in run.stderr
    assert os.listdir(out) == []  # no report.json, and no half-written codes under any name
    for args in (["report", tmp_path / "nope", "--spec", "RQ2x4", "--out", out],
                 ["report", data, "--spec", "XQ2", "--out", out],
                 ["report", data, "--spec", "RQ2x4", "--out", out, "--chunk-rows", 0]):
        run = _cli(*args)
        assert run.returncode == 2 and run.stderr.startswith("error: "), run.stderr
    assert not (out / "report.json").exists()


def test_cli_terminated_midway_leaves_nothing_behind(tmp_path, X):
    """SIGTERM while the codes are being written: the temporary files go, nothing is renamed."""
    import signal
    import time

    data = _write_shards(tmp_path / "shards", np.concatenate([X] * 20), per_shard=20000, row_group=2000)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "vqcore", "report", str(data), "--spec", "RQ2x6", "--out",
                             str(out), "--sample", "2000", "--chunk-rows", "500", "--queries", "0", "--quiet"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and any(".tmp-" in f for f in os.listdir(out)):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be terminated"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "terminated" in err
    assert os.listdir(out) == []


def test_cli_model_encodes_with_the_loaded_codebooks(tmp_path, X):
    from vqcore.models import save_codebooks

    q = vqcore.from_spec("RQ2x5", random_state=1).fit(X)
    (tmp_path / "model.npz").write_bytes(save_codebooks(q))
    np.save(tmp_path / "x.npy", X)
    out = tmp_path / "out"
    run = _cli("report", tmp_path / "x.npy", "--model", tmp_path / "model.npz", "--out", out, "--no-html",
               "--queries", 0)
    assert run.returncode == 0, run.stderr
    table = pq.read_table(out / "codes.parquet")
    codes = np.column_stack([table.column(f"level_{m}").to_numpy() for m in range(2)])
    np.testing.assert_array_equal(codes, q.encode(X))
    report = json.loads((out / "report.json").read_text())
    assert report["n_train"] is None and report["fit_seconds"] is None and report["recall"] is None
    assert report["collisions"]["rate"] == metrics.collision_rate(codes)
    run = _cli("report", tmp_path / "x.npy", "--model", tmp_path / "model.npz", "--spec", "PQ2x5", "--out", out)
    assert run.returncode == 2 and "does not match" in run.stderr
