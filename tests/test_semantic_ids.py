"""Tests of vqcore.semantic_ids (the code tree, collisions, de-duplication) and of
vqcore.io.load_codes (uploaded codes).

What must hold:
- on hand-built codes, the tree, the prefix collision rates, the birthday
  baseline, coverage and the collision groups are the numbers worked out by hand;
- the tree's counts add up (children sum to their parent, level 0 to n) and match
  a slow pure-Python reference on random codes, "other" nodes included;
- de-duplication makes every row unique, keeps the original levels, and uses
  exactly as many extra codes as the largest collision group (no fewer can work);
- tightness is < 1 for a prefix holding one tight cluster and ~1 for random codes;
- codes files load exactly (smallest unsigned dtype, labels kept) and every bad
  file or bad input ends in a DataError / VQLensError naming the level and value.
"""

import io
import itertools
from collections import Counter, defaultdict

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist

from vqcore import ResidualQuantizer, metrics
from vqcore.exceptions import DataError, VQLensError, VQLensWarning
from vqcore.io import MAX_CODE_LEVELS, LoadedCodes, load_codes
from vqcore.semantic_ids import (
    collision_groups_detail,
    deduplicate,
    export_codes,
    items_under_prefix,
    prefix_collision_table,
    prefix_tree,
    validate_codes,
)

# Eight items over two levels, K = (3, 4). Worked out by hand:
#   level 0: code 0 -> items 0,1,2,4,7 (5); code 1 -> items 3,5,6 (3); code 2 dead.
#   tuples:  (0,0) -> 0,1,4   (0,1) -> 2   (0,2) -> 7   (1,2) -> 3,5   (1,3) -> 6
#   distinct prefixes: 2 at depth 1, 5 at depth 2; collision rates 6/8, 3/8.
#   coverage: 2 / min(3, 8) = 2/3, then 5 / min(12, 8) = 5/8.
#   de-dup extra token, in item order: 0 1 0 0 2 1 0 0 (largest group 3).
CODES = np.array([[0, 0], [0, 0], [0, 1], [1, 2], [0, 0], [1, 2], [1, 3], [0, 2]])
SIZES = [3, 4]
TEXTS = ["apple", "apples", "pear", "car", "apple pie", "cars", "truck", "plum"]


def npy(arr):
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def parquet(df):
    buf = io.BytesIO()
    df.to_parquet(buf)
    return buf.getvalue()


# --------------------------------------------------------------------------
# hand-built codes


def test_tree_of_hand_built_codes():
    t = prefix_tree(CODES, max_depth=2, labels=TEXTS)
    assert t["ids"] == ["0", "1", "0/0", "0/1", "0/2", "1/2", "1/3"]
    assert t["parents"] == ["", "", "0", "0", "0", "1", "1"]
    assert t["labels"] == ["0", "1", "0", "1", "2", "2", "3"]
    assert t["counts"] == [5, 3, 3, 1, 1, 2, 1]
    assert t["depth"] == [1, 1, 2, 2, 2, 2, 2]
    assert t["prefix"] == [(0,), (1,), (0, 0), (0, 1), (0, 2), (1, 2), (1, 3)]
    assert t["n_folded"] == [0] * 7
    assert t["examples"] == [[0, 1, 2], [3, 5, 6], [0, 1, 4], [2], [7], [3, 5], [6]]
    assert t["example_labels"][2] == ["apple", "apples", "apple pie"]


def test_tree_folds_small_branches_into_other():
    t = prefix_tree(CODES, max_depth=2, max_children=1, examples=2)
    assert t["ids"] == ["0", "other", "0/0", "0/other"]
    assert t["parents"] == ["", "", "0", "0"]
    assert t["labels"] == ["0", "other (1)", "0", "other (2)"]
    assert t["counts"] == [5, 3, 3, 2]
    assert t["prefix"] == [(0,), None, (0, 0), None]
    assert t["n_folded"] == [0, 1, 0, 2]
    # "other" examples: the first items over all folded branches ((0,1) -> 2, (0,2) -> 7)
    assert t["examples"] == [[0, 1], [3, 5], [0, 1], [2, 7]]
    assert t["example_labels"][3] == ["item 2", "item 7"]


def test_tree_depth_is_capped_by_levels_and_max_depth():
    assert max(prefix_tree(CODES, max_depth=9)["depth"]) == 2
    t = prefix_tree(CODES, max_depth=1, examples=0)
    assert t["ids"] == ["0", "1"] and t["examples"] == [[], []]


def test_collision_table_of_hand_built_codes():
    t = prefix_collision_table(CODES, SIZES)
    assert t["depth"] == [1, 2]
    assert t["distinct_prefixes"] == [2, 5]
    assert t["collision_rate"] == pytest.approx([6 / 8, 3 / 8])
    assert t["possible"] == [3, 12]
    assert t["log2_possible"] == pytest.approx([np.log2(3), np.log2(12)])
    assert t["coverage"] == pytest.approx([2 / 3, 5 / 8])
    # birthday baseline: n items uniform over N tuples occupy N (1 - (1 - 1/N)^n) on average
    expected = [1 - N * (1 - (1 - 1 / N) ** 8) / 8 for N in (3, 12)]
    assert t["uniform_collision_rate"] == pytest.approx(expected, rel=1e-12)
    assert len(pd.DataFrame(t)) == 2


def test_collision_table_coverage_uses_n_when_space_is_larger():
    codes = [[0, 0], [1, 1], [2, 2], [3, 3]]  # 4 items, 16 * 16 possible pairs
    t = prefix_collision_table(codes, 16)
    assert t["possible"] == [16, 256]
    assert t["coverage"] == [4 / 4, 4 / 4]  # every item on its own prefix: full coverage
    big = prefix_collision_table(codes, [256] * 2)
    assert big["possible"][-1] == 65536
    huge = prefix_collision_table(np.zeros((3, 12), dtype=int), 2**16)
    assert huge["possible"][-1] == 2**192  # exact Python int, beyond 64 bits
    assert huge["log2_possible"][-1] == pytest.approx(192.0)


def test_collision_groups_detail_of_hand_built_codes():
    X = np.array([[0, 0], [3, 4], [9, 9], [1, 0], [0, 0], [1, 1], [7, 7], [5, 5]], dtype=np.float32)
    groups = collision_groups_detail(CODES, X=X, labels=TEXTS)
    assert [g["codes"] for g in groups] == [(0, 0), (1, 2)]
    assert [g["items"] for g in groups] == [[0, 1, 4], [3, 5]]
    assert [g["size"] for g in groups] == [3, 2]
    assert groups[0]["labels"] == ["apple", "apples", "apple pie"]
    # group (0,0): points (0,0), (3,4), (0,0): pair distances 5, 0, 5; centroid (1, 4/3)
    g = groups[0]
    assert g["mean_pairwise"] == pytest.approx(10 / 3)
    assert g["max_pairwise"] == pytest.approx(5.0)
    assert g["pairwise_items"] == 3
    c = np.array([1.0, 4 / 3])
    expected = np.mean([np.linalg.norm(p - c) for p in X[[0, 1, 4]].astype(np.float64)])
    assert g["mean_to_centroid"] == pytest.approx(expected)
    # group (1,2): points (1,0), (1,1): one pair at distance 1
    assert groups[1]["mean_pairwise"] == pytest.approx(1.0)
    assert groups[1]["mean_to_centroid"] == pytest.approx(0.5)
    plain = collision_groups_detail(CODES, top=1)
    assert len(plain) == 1 and plain[0]["labels"] is None and plain[0]["mean_pairwise"] is None


def test_collision_groups_detail_caps_pairwise_and_matches_pdist():
    rng = np.random.default_rng(0)
    codes = np.zeros((260, 2), dtype=int)
    codes[250:, 1] = 1  # one group of 250 and one of 10
    X = rng.normal(size=(260, 5)).astype(np.float32)
    big, small = collision_groups_detail(codes, X=X, max_pairwise=200)
    assert big["size"] == 250 and big["pairwise_items"] == 200
    d = pdist(X[:200].astype(np.float64))
    assert big["mean_pairwise"] == pytest.approx(d.mean(), rel=1e-9)
    assert big["max_pairwise"] == pytest.approx(d.max(), rel=1e-9)
    centroid = X[:250].astype(np.float64).mean(axis=0)
    assert big["mean_to_centroid"] == pytest.approx(
        np.linalg.norm(X[:250] - centroid, axis=1).mean(), rel=1e-9)  # whole group, not capped
    assert small["pairwise_items"] == 10
    assert small["mean_pairwise"] == pytest.approx(pdist(X[250:].astype(np.float64)).mean(), rel=1e-9)


def test_identical_embeddings_in_a_group_are_at_distance_zero():
    X = np.tile(np.array([[0.1, 1e3, -7.0]], dtype=np.float32), (4, 1))
    (g,) = collision_groups_detail([[1]] * 4, X=X)
    assert g["mean_pairwise"] == 0.0 and g["max_pairwise"] == 0.0 and g["mean_to_centroid"] == 0.0


def test_items_under_prefix_of_hand_built_codes():
    r = items_under_prefix(CODES, (0,), labels=TEXTS)
    assert r["prefix"] == (0,)
    assert r["count"] == 5 and r["fraction"] == 5 / 8
    assert r["indices"] == [0, 1, 2, 4, 7]
    assert r["labels"] == ["apple", "apples", "pear", "apple pie", "plum"]
    assert r["tightness"] is None
    assert items_under_prefix(CODES, "1/2")["indices"] == [3, 5]
    assert items_under_prefix(CODES, [np.int64(1), np.uint8(2)])["indices"] == [3, 5]
    assert items_under_prefix(CODES, 1)["indices"] == [3, 5, 6]
    assert items_under_prefix(CODES, (0,), limit=2)["indices"] == [0, 1]
    assert items_under_prefix(CODES, (0,), limit=2)["count"] == 5
    assert items_under_prefix(CODES, ())["count"] == 8
    missing = items_under_prefix(CODES, (2,), X=np.ones((8, 2)))
    assert missing["count"] == 0 and missing["indices"] == [] and missing["tightness"] is None


def test_every_tree_node_id_selects_its_items():
    t = prefix_tree(CODES, max_depth=2)
    for node_id, count, prefix in zip(t["ids"], t["counts"], t["prefix"], strict=True):
        if prefix is not None:
            assert items_under_prefix(CODES, node_id)["count"] == count
            assert items_under_prefix(CODES, prefix)["count"] == count


def test_dedup_of_hand_built_codes():
    new, extra = deduplicate(CODES)
    assert extra == 3
    assert new[:, 2].tolist() == [0, 1, 0, 0, 2, 1, 0, 0]
    np.testing.assert_array_equal(new[:, :2], CODES)
    assert metrics.collision_rate(new) == 0.0


def test_coverage_and_usage_come_from_the_shared_metrics():
    # per-level usage is metrics.usage_stats on the same codes: one dead code at level 0
    usage = metrics.usage_stats(CODES, SIZES)
    assert usage["dead"].tolist() == [1, 0]


# --------------------------------------------------------------------------
# properties against slow references


def reference_tree(codes, max_depth, max_children, examples):
    """Pure-Python tree: dict prefix -> items, children ranked by (-count, code)."""
    n = len(codes)
    depth = min(max_depth, codes.shape[1])
    members = defaultdict(list)
    for i, row in enumerate(codes.tolist()):
        for d in range(1, depth + 1):
            members[tuple(row[:d])].append(i)
    nodes = []  # (id, parent, count, prefix, n_folded, examples), depth by depth
    shown = {(): ""}
    for d in range(1, depth + 1):
        next_shown = {}
        for parent_prefix, pid in shown.items():
            kids = sorted((p for p in members if len(p) == d and p[:-1] == parent_prefix),
                          key=lambda p: (-len(members[p]), p[-1]))
            for p in kids[:max_children]:
                nid = "/".join(map(str, p))
                nodes.append((nid, pid, len(members[p]), p, 0, members[p][:examples]))
                next_shown[p] = nid
            rest = kids[max_children:]
            if rest:
                items = sorted(i for p in rest for i in members[p])
                nodes.append((f"{pid}/other" if pid else "other", pid, len(items), None, len(rest),
                              items[:examples]))
        shown = next_shown
    assert sum(c for _, pid, c, *_ in nodes if pid == "") == n
    return nodes


@settings(max_examples=60, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 60), st.integers(1, 4), st.integers(1, 6), st.integers(1, 4), st.integers(1, 4),
       st.integers(0, 3), st.integers(0, 2**32 - 1))
def test_tree_matches_slow_reference(n, levels, K, max_depth, max_children, examples, seed):
    rng = np.random.default_rng(seed)
    # skewed codes so that some branches are big and some small
    codes = np.minimum(rng.geometric(0.5, size=(n, levels)) - 1, K - 1)
    t = prefix_tree(codes, max_depth=max_depth, max_children=max_children, examples=examples)
    got = list(zip(t["ids"], t["parents"], t["counts"], t["prefix"], t["n_folded"], t["examples"]))
    want = [(nid, pid, c, p, f, ex) for nid, pid, c, p, f, ex in reference_tree(codes, max_depth, max_children,
                                                                                 examples)]
    # the reference lists children per parent in the same order; compare as sequences
    assert got == want
    # the counts of a node's children always sum to its own count
    count = dict(zip(t["ids"], t["counts"]))
    kids = Counter()
    for pid, c in zip(t["parents"], t["counts"]):
        kids[pid] += c
    for pid, total in kids.items():
        assert total == (n if pid == "" else count[pid])
    assert len(set(t["ids"])) == len(t["ids"])


@settings(max_examples=60, deadline=None, database=None, derandomize=True)
@given(st.integers(1, 80), st.integers(1, 4), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_collision_table_matches_sets_of_tuples(n, levels, K, seed):
    codes = np.random.default_rng(seed).integers(0, K, size=(n, levels))
    t = prefix_collision_table(codes, K)
    for d in range(levels):
        distinct = len({tuple(r[: d + 1]) for r in codes.tolist()})
        assert t["distinct_prefixes"][d] == distinct
        assert t["collision_rate"][d] == pytest.approx(1 - distinct / n)
        assert t["coverage"][d] == pytest.approx(distinct / min(K ** (d + 1), n))
        assert 0 < t["coverage"][d] <= 1
    assert t["collision_rate"] == sorted(t["collision_rate"], reverse=True)


@settings(max_examples=80, deadline=None, database=None, derandomize=True)
@given(st.integers(1, 120), st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_dedup_unique_minimal_and_in_order(n, levels, K, seed):
    codes = np.random.default_rng(seed).integers(0, K, size=(n, levels))
    new, extra = deduplicate(codes)
    assert new.shape == (n, levels + 1)
    np.testing.assert_array_equal(new[:, :levels], codes)  # original levels unchanged
    assert len({tuple(r) for r in new.tolist()}) == n  # every item has its own ID
    # minimal: an extra level needs at least as many codes as the largest group
    largest = max(Counter(map(tuple, codes.tolist())).values())
    assert extra == largest == int(new[:, -1].max()) + 1
    groups = metrics.collision_groups(codes, top=None)
    assert extra == (max(len(i) for _, i in groups) if groups else 1)
    for _, items in groups:  # 0, 1, 2, ... in order of appearance
        assert new[items, -1].tolist() == list(range(len(items)))
    # de-duplicating again changes nothing but adds a constant level
    again, extra2 = deduplicate(new)
    assert extra2 == 1 and not again[:, -1].any()


def test_dedup_dtype_widens_only_when_needed():
    new, extra = deduplicate(np.zeros((300, 2), dtype=np.uint8))
    assert extra == 300 and new.dtype == np.uint16 and new[:, -1].tolist() == list(range(300))
    new, _ = deduplicate(np.array([[200, 1], [200, 1]], dtype=np.int64))
    assert new.dtype == np.uint8


# --------------------------------------------------------------------------
# tightness on constructed data


def test_tightness_below_one_for_a_tight_cluster_and_near_one_for_random_codes():
    rng = np.random.default_rng(0)
    n, d, k = 2000, 8, 5
    centers = rng.normal(scale=10.0, size=(k, d))
    level0 = rng.integers(0, k, size=n)
    X = (centers[level0] + rng.normal(scale=0.5, size=(n, d))).astype(np.float32)
    codes = np.column_stack([level0, rng.integers(0, 4, size=n)])
    tight = items_under_prefix(codes, (int(level0[0]),), X=X)
    assert tight["tightness"] < 0.1
    assert tight["tightness"] == pytest.approx(
        tight["mean_distance_to_centroid"] / tight["data_mean_distance_to_centroid"])
    random_codes = rng.integers(0, 4, size=(n, 2))
    for c in range(4):
        loose = items_under_prefix(random_codes, (c,), X=X)
        assert 0.9 < loose["tightness"] < 1.1
    assert items_under_prefix(codes, (), X=X)["tightness"] == pytest.approx(1.0)


def test_tightness_edge_cases():
    X = np.array([[0.0, 0.0], [1.0, 1.0], [4.0, 4.0]])
    single = items_under_prefix([[0], [1], [2]], (2,), X=X)
    assert single["count"] == 1 and single["tightness"] == 0.0
    with pytest.warns(VQLensWarning, match="same embedding"):
        flat = items_under_prefix([[0], [1], [1]], (1,), X=np.ones((3, 2)))
    assert np.isnan(flat["tightness"])


def test_rq_codes_of_clustered_data_make_tight_first_level_branches():
    rng = np.random.default_rng(1)
    centers = rng.normal(scale=8.0, size=(8, 6))
    X = (centers[rng.integers(0, 8, size=1000)] + rng.normal(size=(1000, 6))).astype(np.float32)
    q = ResidualQuantizer(n_codebooks=3, codebook_size=8, random_state=0).fit(X)
    codes = q.encode(X)
    tree = prefix_tree(codes, max_depth=2, max_children=8)
    top = [p for p, dep in zip(tree["prefix"], tree["depth"]) if dep == 1]
    ratios = [items_under_prefix(codes, p, X=X)["tightness"] for p in top]
    assert max(ratios) < 0.5
    table = prefix_collision_table(codes, q.codebook_size)
    assert table["collision_rate"][-1] == pytest.approx(metrics.collision_rate(codes))


# --------------------------------------------------------------------------
# bad inputs


BAD_CODES = [
    # (id, codes, codebook_sizes, error, words the message must hold)
    ("one-dimensional", [1, 2, 3], None, DataError, ["reshape(-1, 1)"]),
    ("three-dimensional", np.zeros((2, 2, 2), int), None, DataError, ["2-D", "(2, 2, 2)"]),
    ("fraction", [[0, 1], [2, 1.5]], None, DataError, ["codes[1, 1]=1.5", "integers"]),
    ("nan", [[0, np.nan]], None, DataError, ["codes[0, 1]=nan"]),
    ("negative", [[0, 1], [2, -3]], None, DataError, ["codes[:, 1]", "-3"]),
    ("above K of level 1", [[0, 1], [2, 4]], [3, 4], DataError, ["codes[:, 1]", "value 4", "codebook_size[1]=4"]),
    ("above shared K", [[0, 1], [5, 1]], 4, DataError, ["codes[:, 0]", "value 5", "codebook_size=4"]),
    ("too few sizes", [[0, 1]], [4], VQLensError, ["1 entries", "n_codebooks=2"]),
    ("zero size", [[0, 0]], [4, 0], VQLensError, ["codebook_size[1]=0"]),
    ("strings", [["a", "b"]], None, DataError, ["dtype <U1"]),
    ("booleans", np.ones((2, 2), dtype=bool), None, DataError, ["dtype bool"]),
    ("no rows", np.zeros((0, 3), int), None, DataError, ["(0, 3)"]),
]


@pytest.mark.parametrize("codes, sizes, error, words", [c[1:] for c in BAD_CODES], ids=[c[0] for c in BAD_CODES])
def test_bad_codes_name_level_and_value(codes, sizes, error, words):
    with pytest.raises(error) as info:
        validate_codes(codes, sizes)
    for word in words:
        assert word in str(info.value)


def test_validate_codes_returns_compact_dtype_and_sizes():
    for top, dtype in [(0, np.uint8), (255, np.uint8), (256, np.uint16), (70_000, np.uint32), (2**40, np.uint64)]:
        codes, sizes = validate_codes(np.array([[0, top]], dtype=np.int64))
        assert codes.dtype == dtype and sizes == [1, top + 1] and codes.flags["C_CONTIGUOUS"]
    codes, sizes = validate_codes(np.array([[1.0, 2.0]]), [2, 3])
    assert codes.tolist() == [[1, 2]] and sizes == [2, 3]


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: validate_codes(CODES, n_items=7), ["8 rows", "n_items=7"]),
        (lambda: prefix_tree(CODES, labels=TEXTS[:-1]), ["labels has 7", "8 rows"]),
        (lambda: prefix_tree(CODES, labels="abcdefgh"), ["single string"]),
        (lambda: collision_groups_detail(CODES, X=np.zeros((7, 2))), ["X has 7 rows", "8"]),
        (lambda: collision_groups_detail(CODES, X=np.full((8, 2), np.nan)), ["NaN"]),
        (lambda: collision_groups_detail(CODES, max_pairwise=1), ["max_pairwise=1"]),
        (lambda: items_under_prefix(CODES, (0, 1, 2)), ["3 codes", "only 2 levels"]),
        (lambda: items_under_prefix(CODES, (0, -1)), ["prefix[1]=-1"]),
        (lambda: items_under_prefix(CODES, "0/other"), ["'other' node", "max_children"]),
        (lambda: items_under_prefix(CODES, "0/x"), ["'12/3'"]),
        (lambda: prefix_tree(CODES, max_children=0), ["max_children=0"]),
        (lambda: prefix_tree(CODES, max_depth=0), ["max_depth=0"]),
        (lambda: prefix_collision_table(CODES, [3, 2]), ["codes[:, 1]", "value 3", "codebook_size[1]=2"]),
        (lambda: export_codes(CODES, "parquet"), ["fmt='parquet'"]),
        (lambda: export_codes(CODES, "npy", labels=TEXTS), ["fmt='csv'"]),
        (lambda: export_codes(CODES, level_names=["a"]), ["1 names", "2 levels"]),
    ],
    ids=["n_items", "labels-length", "labels-string", "X-rows", "X-nan", "max_pairwise", "prefix-long",
         "prefix-negative", "prefix-other", "prefix-text", "max_children", "max_depth", "table-K",
         "export-fmt", "export-npy-labels", "export-level-names"],
)
def test_bad_arguments_raise_with_a_message(call, words):
    with pytest.raises(VQLensError) as info:
        call()
    for word in words:
        assert word in str(info.value)


# --------------------------------------------------------------------------
# loading codes


def test_load_codes_npy_keeps_exact_integers_in_smallest_dtype():
    for arr, dtype in [
        (CODES.astype(np.int64), np.uint8),
        (np.array([[0, 300]], dtype=np.int32), np.uint16),
        (np.array([[2**24 + 1, 0]], dtype=np.int64), np.uint32),  # not representable in float32
        (np.array([[3.0, 1.0]]), np.uint8),
        (np.asfortranarray(CODES.astype(np.uint16)), np.uint8),
    ]:
        loaded = load_codes(npy(arr), "codes.npy")
        assert isinstance(loaded, LoadedCodes)
        np.testing.assert_array_equal(loaded.codes, arr)
        assert loaded.codes.dtype == dtype and loaded.codes.flags["C_CONTIGUOUS"]
        assert loaded.codes.flags["WRITEABLE"]
        assert loaded.codebook_sizes == [int(v) + 1 for v in np.max(arr, axis=0)]
        assert loaded.labels is None and loaded.source == "codes.npy"
    notes = load_codes(npy(np.array([[3.0, 1.0]])), "c.npy").notes
    assert any("whole numbers stored as float64" in s for s in notes)


def test_load_codes_csv_with_header_and_text_column():
    text = "l0,l1,title\n" + "".join(f"{a},{b},{t}\n" for (a, b), t in zip(CODES.tolist(), TEXTS))
    loaded = load_codes(text.encode(), "codes.csv")
    np.testing.assert_array_equal(loaded.codes, CODES)
    assert loaded.labels == TEXTS and loaded.codebook_sizes == [2, 4]
    assert any("'title'" in s for s in loaded.notes)
    tsv = load_codes(text.replace(",", "\t").encode(), "codes.tsv")
    np.testing.assert_array_equal(tsv.codes, CODES)
    # without a header and with the text first
    bare = "".join(f"{t},{a},{b}\n" for (a, b), t in zip(CODES.tolist(), TEXTS))
    loaded = load_codes(bare.encode(), "codes.csv")
    np.testing.assert_array_equal(loaded.codes, CODES)
    assert loaded.labels == TEXTS


def test_load_codes_csv_labels_chosen_by_text_column():
    text = "l0,l1,id,title\n1,2,a1,x\n3,4,b2,y\n"
    loaded = load_codes(text.encode(), "c.csv", text_column="title")
    assert loaded.labels == ["x", "y"] and loaded.codes.tolist() == [[1, 2], [3, 4]]


def test_load_codes_parquet_scalar_and_list_columns():
    df = pd.DataFrame({"c0": CODES[:, 0], "c1": CODES[:, 1], "title": TEXTS})
    loaded = load_codes(parquet(df), "codes.parquet")
    np.testing.assert_array_equal(loaded.codes, CODES)
    assert loaded.labels == TEXTS
    assert not any("float32" in s for s in loaded.notes)
    df = pd.DataFrame({
        "embedding": [np.ones(3, dtype=np.float32)] * 8, "sid": list(CODES), "title": TEXTS,
    })
    loaded = load_codes(parquet(df), "codes.parquet", array_key="sid")
    np.testing.assert_array_equal(loaded.codes, CODES)
    assert loaded.source == "codes.parquet['sid']" and loaded.array_keys == ["embedding", "sid"]


@pytest.mark.parametrize("fmt", ["csv", "npy"])
def test_export_then_load_round_trips(fmt):
    new, _ = deduplicate(CODES)
    labels = TEXTS if fmt == "csv" else None
    data = export_codes(new, fmt, labels=labels)
    loaded = load_codes(data, f"dedup.{fmt}", text_column="label" if labels else None)
    np.testing.assert_array_equal(loaded.codes, new)
    assert loaded.labels == labels


def test_export_csv_quotes_awkward_labels():
    labels = ['a, "quoted" text', "line\nbreak", "123"]
    data = export_codes([[0], [1], [2]], labels=labels)
    loaded = load_codes(data, "x.csv", text_column="label")
    assert loaded.labels == labels and loaded.codes.ravel().tolist() == [0, 1, 2]


BAD_FILES = [
    # (id, bytes, filename, words the message must hold)
    ("fraction-npy", npy(np.array([[1.0, 2.5]])), "c.npy", ["whole number", "row 0, level 1", "2.5", "embeddings"]),
    ("fraction-csv", b"a,b\n1,2\n3,4.5\n", "c.csv", ["not a whole number", "row 1, level 1", "4.5"]),
    ("negative-npy", npy(np.array([[1, 2], [3, -4]])), "c.npy", ["negative value -4", "row 1, level 1", "missing"]),
    ("negative-csv", b"a,b\n-1,2\n", "c.csv", ["negative", "row 0, level 0", "-1"]),
    # the row is that of the value the message names (the lowest of the first level with a negative)
    ("negative-two-levels", npy(np.array([[1, -2], [-3, 0]])), "c.npy",
     ["codes[:, 0] contains the negative value -3", "row 1, level 0", "2 such value(s)"]),
    ("one-dimensional", npy(np.arange(5)), "c.npy", ["1-D", "reshape(-1, 1)"]),
    ("too-many-levels", npy(np.zeros((2, MAX_CODE_LEVELS + 1), int)), "c.npy", ["65 columns", "embeddings"]),
    ("no-rows", npy(np.zeros((0, 3), int)), "c.npy", ["empty", "(0, 3)"]),
    ("zero-bytes", b"", "c.npy", ["empty"]),
    ("header-only-csv", b"a,b\n", "c.csv", ["no data"]),
    ("nan-npy", npy(np.array([[1.0, np.nan]])), "c.npy", ["missing", "row 0, level 1"]),
    ("empty-cell-csv", b"a,b\n1,2\n3,\n", "c.csv", ["missing", "row 1, level 1"]),
    ("null-parquet", parquet(pd.DataFrame({"a": [1, None], "b": [1, 2]})), "c.parquet", ["missing", "row 1"]),
    ("text-in-code-column", b"a,b,t\n1,2,x\n1,oops,y\n3,4,z\n", "c.csv", ["'b'", "oops", "text_column"]),
    ("infinite", npy(np.array([[1.0, np.inf]])), "c.npy", ["not a whole number", "inf"]),
    ("too-large-float", npy(np.array([[2.0**60]])), "c.npy", ["not a whole number"]),
    ("booleans", npy(np.ones((2, 2), dtype=bool)), "c.npy", ["dtype bool", "astype(np.int64)"]),
    ("pickle", npy(np.array([[1, None]], dtype=object)), "c.npy", ["pickle"]),
    ("complex", npy(np.ones((2, 2), dtype=complex)), "c.npy", ["complex"]),
    ("wrong-extension", b"1,2\n", "c.txt", [".txt", ".npy, .csv, .tsv, .parquet", "numpy.save(path, codes)"]),
    ("npz-not-for-codes", b"PK\x03\x04", "c.npz", [".npz"]),
    ("truncated-npy", npy(CODES)[:-3], "c.npy", ["truncated"]),
    ("not-parquet", b"hello", "c.parquet", ["not a parquet file"]),
]


@pytest.mark.parametrize("data, filename, words", [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_bad_codes_files_raise_data_error_saying_what(data, filename, words):
    with pytest.raises(DataError) as info:
        load_codes(data, filename)
    for word in words:
        assert word in str(info.value), str(info.value)


def test_load_codes_notes_on_degenerate_codes():
    notes = load_codes(npy(np.array([[0, 5], [0, 2**27]])), "c.npy").notes
    assert any("Level(s) 0 use a single code" in s for s in notes)
    assert any("look like item ids" in s for s in notes)


def test_load_codes_caps_and_file_like_upload():
    with pytest.raises(DataError, match="max_bytes"):
        load_codes(npy(CODES), "c.npy", max_bytes=10)
    with pytest.raises(DataError, match="max_elements"):
        load_codes(npy(CODES), "c.npy", max_elements=10)
    loaded = load_codes(io.BytesIO(npy(CODES)), "c.npy")
    np.testing.assert_array_equal(loaded.codes, CODES)
    with pytest.raises(VQLensError, match="text_column"):
        load_codes(b"1\n", "c.csv", text_column=1.5)


@settings(max_examples=40, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([".npy", ".csv", ".parquet"]), st.binary(max_size=300), st.integers(0, 2**32 - 1))
def test_fuzz_load_codes_gives_codes_or_data_error(ext, noise, seed):
    rng = np.random.default_rng(seed)
    base = {".npy": npy(CODES), ".csv": export_codes(CODES), ".parquet": parquet(pd.DataFrame(CODES))}[ext]
    data = bytearray(base)
    for _ in range(rng.integers(1, 4)):  # damage a few bytes, or append noise
        if data and rng.random() < 0.7:
            data[rng.integers(0, len(data))] = rng.integers(0, 256)
        else:
            data += noise
    try:
        loaded = load_codes(bytes(data), "x" + ext)
    except DataError as exc:
        assert str(exc)
        return
    assert loaded.codes.ndim == 2 and loaded.codes.dtype.kind == "u"
    assert loaded.codebook_sizes == [int(v) + 1 for v in loaded.codes.max(axis=0)]


def test_loaded_codes_feed_every_function():
    text = "l0,l1,title\n" + "".join(f"{a},{b},{t}\n" for (a, b), t in zip(CODES.tolist(), TEXTS))
    loaded = load_codes(text.encode(), "codes.csv")
    codes, sizes = validate_codes(loaded.codes, SIZES, n_items=len(TEXTS))
    assert prefix_tree(codes, labels=loaded.labels)["example_labels"][0] == ["apple", "apples", "pear"]
    assert prefix_collision_table(codes, sizes)["coverage"] == pytest.approx([2 / 3, 5 / 8])
    assert collision_groups_detail(codes, labels=loaded.labels)[1]["labels"] == ["car", "cars"]
    assert list(itertools.chain(deduplicate(codes)[0][:, -1])) == [0, 1, 0, 0, 2, 1, 0, 0]
