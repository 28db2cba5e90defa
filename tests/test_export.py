"""Exports: faiss indexes with vqcore's codebooks and codes, the ID table, the trie, two code sets compared."""

import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import vqcore
from vqcore import VQLensError
from vqcore.export import adc_search, serialize_faiss_index, to_faiss_index
from vqcore.semantic_ids import compare_code_sets, csv_safe, id_table, prefix_trie, prefix_trie_json

faiss = pytest.importorskip("faiss")
FIX = Path(__file__).parent / "fixtures" / "models"


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(30, 16)) * 3
    X = (centres[rng.integers(0, 30, 1200)] + rng.normal(size=(1200, 16))).astype(np.float32)
    Q = (centres[rng.integers(0, 30, 25)] + rng.normal(size=(25, 16))).astype(np.float32)
    return X, Q


def _fitted(spec, X):
    # 1200 rows are 37.5 per GRVQ2x5 codeword: min_points_per_centroid=None runs its passes anyway,
    # so the export is tested on jointly refined codebooks, not on the RQ start's
    extra = {"min_points_per_centroid": None} if spec.startswith("GRVQ") else {}
    return vqcore.from_spec(spec, random_state=0, **extra).fit(X)


SPECS = ["VQ1x6", "PQ4x6", "PQ8x4", "OPQ4x5", "RQ3x5", "AQ2x5", "GRVQ2x5"]


def _check_same_search(q, codes, Q, index, k=10):
    D, found = index.search(Q, k)
    d_ref, i_ref = adc_search(q, codes, Q, k)
    # the same distances, nearest first
    np.testing.assert_allclose(D, d_ref, rtol=1e-4, atol=1e-3)
    # and faiss's items are at those distances (items at equal distance may come in another order)
    X_hat = q.decode(codes).astype(np.float64)
    exact = ((Q[:, None, :].astype(np.float64) - X_hat[found]) ** 2).sum(-1)
    np.testing.assert_allclose(D, exact, rtol=1e-4, atol=1e-3)
    # where the k-th distance is not tied with the next one, the sets are equal
    full = ((Q[:, None, :].astype(np.float64) - X_hat[None]) ** 2).sum(-1)
    srt = np.sort(full, axis=1)
    clear = srt[:, k] - srt[:, k - 1] > 1e-3
    assert clear.any() or q.n_codebooks == 1  # one codebook: items share few reconstructions, all tied
    for qi in np.flatnonzero(clear):
        assert set(found[qi]) == set(i_ref[qi])


@pytest.mark.parametrize("spec", SPECS)
def test_faiss_search_on_the_exported_index_is_vqcores_adc_search(spec, data):
    X, Q = data
    q = _fitted(spec, X)
    codes = q.encode(X)
    index = to_faiss_index(q, codes)
    assert index.ntotal == X.shape[0] and index.d == X.shape[1]
    _check_same_search(q, codes, Q, index)
    # faiss decodes the packed codes to vqcore's reconstructions: the bit layout is faiss's own
    packed = index.sa_encode(X) if spec.startswith(("PQ", "VQ")) else None
    recon = faiss.downcast_index(index.index if hasattr(index, "index") else index)
    if packed is not None:
        # faiss's own encoder picks the same nearest codewords as vqcore's (PQ: independent subspaces)
        np.testing.assert_allclose(index.sa_decode(packed), q.decode(codes), atol=1e-4)
    assert recon.ntotal == X.shape[0]


@pytest.mark.parametrize("spec", ["VQ1x6", "PQ4x6", "OPQ4x5", "RQ3x5", "AQ2x5"])
def test_exported_index_holds_the_mean_the_codebooks_are_centred_on(spec, data):
    """vqcore's codebooks are centred on mean_ and faiss does not centre: the export folds the
    mean into the codebooks, so data far from the origin search the same."""
    X, Q = (a + 10.0 for a in data)  # not further: faiss computes |q|^2 - 2 q.c + |c|^2 in float32
    q = _fitted(spec, X)
    assert np.abs(q.mean_).min() > 8
    codes = q.encode(X)
    _check_same_search(q, codes, Q, to_faiss_index(q, codes))


def test_serialized_index_searches_the_same(data):
    X, Q = data
    q = _fitted("RQ3x5", X)
    index = to_faiss_index(q, X=X)
    blob = serialize_faiss_index(index)
    assert isinstance(blob, bytes) and len(blob) > 0
    again = faiss.deserialize_index(np.frombuffer(blob, dtype=np.uint8))
    np.testing.assert_array_equal(again.search(Q, 5)[1], index.search(Q, 5)[1])


@pytest.mark.parametrize("name", ["grvq", "rvq_proj", "vq_heads", "rvq"])
def test_loaded_models_export_with_their_own_codes(name):
    X = np.load(FIX / f"{name}_X.npy")
    q = vqcore.load_quantizer(FIX / f"{name}.pt")
    codes = q.encode(X)
    index = to_faiss_index(q, codes)
    _check_same_search(q, codes, X[:15] + 0.01, index, k=5)


def test_faiss_needs_k_a_power_of_two_and_says_how_to_install(data, monkeypatch):
    X, _ = data
    q = vqcore.KMeansVQ(codebook_size=100, random_state=0).fit(X[:500])
    with pytest.raises(VQLensError, match="power of two"):
        to_faiss_index(q)
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        to_faiss_index(q)


# --------------------------------------------------------------------- ID table


def test_id_table_parquet_holds_every_item_with_unpacked_levels():
    codes = np.array([[3, 1, 255], [0, 0, 7], [3, 1, 255]], dtype=np.uint8)
    data = id_table(codes, ids=["a", "b", "c"], texts=["one", "=two", None])
    df = pd.read_parquet(io.BytesIO(data))
    assert list(df.columns) == ["row", "id", "level_0", "level_1", "level_2", "semantic_id", "text"]
    assert df["row"].tolist() == [0, 1, 2]
    np.testing.assert_array_equal(df[["level_0", "level_1", "level_2"]].to_numpy(), codes)
    assert df["semantic_id"].tolist() == ["3_1_255", "0_0_7", "3_1_255"]
    assert df["text"].tolist()[:2] == ["one", "=two"]  # parquet keeps the text as it is


def test_id_table_numbers_items_by_the_given_rows_in_both_formats():
    """Rows dropped on loading (or a catalogue's sample): each item keeps its file row beside its codes."""
    codes = np.array([[1, 2], [3, 4], [5, 6]])
    rows = np.array([0, 2, 7])
    for fmt in ("parquet", "csv"):
        raw = id_table(codes, fmt, rows=rows, ids=[10, 12, 17])
        df = pd.read_parquet(io.BytesIO(raw)) if fmt == "parquet" else pd.read_csv(io.BytesIO(raw))
        assert df["row"].tolist() == [0, 2, 7] and df["id"].tolist() == [10, 12, 17]
        np.testing.assert_array_equal(df[["level_0", "level_1"]].to_numpy(), codes)
    with pytest.raises(VQLensError, match="rows must be 3 whole numbers"):
        id_table(codes, rows=[0, 1])
    with pytest.raises(VQLensError, match="rows must be 3 whole numbers"):
        id_table(codes, rows=[0.5, 1, 2])


def test_id_table_csv_neutralises_formulas_and_reads_back():
    hostile = ["=HYPERLINK(\"http://x\",\"y\")", "+1", "-2+3", "@SUM(A1)", "\tx", "fine, with comma"]
    codes = np.arange(12).reshape(6, 2)
    text = id_table(codes, "csv", ids=hostile[::-1], texts=hostile).decode()
    df = pd.read_csv(io.StringIO(text), keep_default_na=False)
    assert df["text"].tolist() == [csv_safe(t) for t in hostile]
    assert all(not str(v).startswith(("=", "+", "-", "@", "\t")) for v in df["text"].tolist() + df["id"].tolist())
    assert df["text"].tolist()[-1] == "fine, with comma"
    np.testing.assert_array_equal(df[["level_0", "level_1"]].to_numpy(), codes)


# ------------------------------------------------------------------------- trie


def _naive_trie(codes):
    root = {"count": 0}
    for row in codes.tolist():
        node = root
        node["count"] += 1
        for c in row:
            node = node.setdefault("children", {}).setdefault(str(c), {"count": 0})
            node["count"] += 1
    return root


def _sort_keys(node):
    out = {"count": node["count"]}
    if "children" in node:
        out["children"] = {k: _sort_keys(node["children"][k]) for k in sorted(node["children"], key=int)}
    return out


def test_prefix_trie_equals_a_naive_one_and_counts_add_up():
    rng = np.random.default_rng(4)
    codes = rng.integers(0, 5, size=(400, 3))
    codes[:50] = codes[0]  # a large collision group
    trie = prefix_trie(codes)
    assert trie == _sort_keys(_naive_trie(codes))
    assert list(trie["children"]) == sorted(trie["children"], key=int)

    def check(node):
        if "children" in node:
            assert sum(ch["count"] for ch in node["children"].values()) == node["count"]
            for ch in node["children"].values():
                check(ch)

    check(trie)
    assert json.loads(prefix_trie_json(codes)) == trie
    shallow = prefix_trie(codes, max_depth=1)
    assert all("children" not in ch for ch in shallow["children"].values())


# -------------------------------------------------------------- two code sets


def test_compare_identical_permuted_and_split_code_sets():
    rng = np.random.default_rng(5)
    a = rng.integers(0, 8, size=(500, 3))
    a[:20] = [1, 2, 3]  # a collision group of 20 (plus chance members)
    same = compare_code_sets(a, a.copy())
    assert same["share_changed"] == 0 and same["n_moved"] == 0 and same["level_agreement"] == [1.0] * 3

    perm = rng.permutation(8)
    renamed = perm[a]  # the same partition under other names at every level
    r = compare_code_sets(a, renamed)
    assert r["relabelled_level_agreement"] == [1.0, 1.0, 1.0]
    assert r["level_agreement"][0] == pytest.approx(np.mean(a[:, 0] == perm[a[:, 0]]))
    assert r["n_moved"] == 0  # groups are the same sets of items

    split = a.copy()
    split[:10, 2] = 7 if a[0, 2] != 7 else 6  # half of the big group gets another last code
    r = compare_code_sets(a, split)
    big = next(g for g in r["groups"] if g["codes_a"] == (1, 2, 3))
    assert big["n_parts"] == 2 and big["kept_together"] == big["size"] - 10
    assert r["prefix_agreement"][:2] == [1.0, 1.0]
    assert r["level_agreement"][2] == pytest.approx(1 - 10 / 500)
    assert r["n_moved"] >= big["size"]  # every item of the split group has other mates now


def test_compare_refuses_different_items():
    with pytest.raises(vqcore.DataError, match="same items"):
        compare_code_sets(np.zeros((4, 2), int), np.zeros((5, 2), int))


def test_faiss_available_says_how_to_install(monkeypatch):
    from vqcore.export import faiss_available

    assert faiss_available() == (True, None)
    monkeypatch.setitem(sys.modules, "faiss", None)
    ok, message = faiss_available()
    assert not ok and "pip install faiss-cpu" in message
