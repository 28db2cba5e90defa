"""Semantic IDs: code tuples of generative recommenders, seen as a tree of prefixes.

A generative recommender in the TIGER family (Rajput et al., NeurIPS 2023)
turns each item embedding into a short tuple of codes with residual
quantization, level 0 first, and then generates those tuples token by token.
What matters is the tree the tuples make: how items spread over the first
codes, where they pile up under one prefix, which items collide on a whole
tuple, and how far all of that is from codes drawn uniformly at random.

Everything here is plain numpy on ``codes`` of shape (n_items, n_levels), row i
being item i, with optional item embeddings ``X`` (n_items, d) and item
``labels`` (texts, titles). Results are plain Python data (lists, dicts, ints,
floats), ready for a table or a plotly sunburst / treemap; nothing draws.

- :func:`validate_codes`: shape, integers, ranges against K per level,
  alignment with embeddings / labels.
- :func:`prefix_tree`: the code tree as flat node lists (``ids``,
  ``parents``, ``counts``, ...), largest branches first, the rest folded.
- :func:`prefix_collision_table`: per depth, distinct prefixes, collision rate
  against the birthday bound of uniform codes, and coverage.
- :func:`collision_groups_detail`: the largest groups of items sharing a whole
  tuple, with their labels and how far apart their embeddings are.
- :func:`items_under_prefix`: the items under one prefix and how tight they are.
- :func:`deduplicate`: TIGER's extra token that makes every tuple unique;
  :func:`export_codes` writes codes back to ``.npy`` / ``.csv`` bytes that
  :func:`vqcore.io.load_codes` reads.
- :func:`id_table`: item -> ID table (row, id, one column per level, the
  joined ID, text) as parquet or formula-safe CSV (:func:`csv_safe`);
  :func:`prefix_trie` / :func:`prefix_trie_json`: every prefix with its
  children and item count, as constrained decoding needs.
- :func:`compare_code_sets`: two code sets of the same items (a retrain, or
  the user's pipeline against a loaded model): IDs changed, agreement per
  level, items that moved between collision groups.

Per-level usage, dead codes and entropy are :func:`vqcore.metrics.usage_stats`
and :func:`vqcore.metrics.code_counts`; collision rates, collision groups and
the birthday bound are :mod:`vqcore.metrics` too, and are called from here,
not recomputed.

Distances are Euclidean (not squared), accumulated in float64.

References
----------
S. Rajput, N. Mehta, A. Singh, R. Keshavan, T. Vu, L. Heldt, L. Hong, Y. Tay,
V. Q. Tran, J. Samost, M. Kula, E. H. Chi and M. Sathiamoorthy, "Recommender
Systems with Generative Retrieval", NeurIPS 2023.
"""

import io
import math
import warnings

import numpy as np

from . import metrics
from ._distances import row_chunks
from ._validation import check_choice, check_codes, check_data, check_int
from .csvfile import csv_bytes, safe_cell
from .exceptions import DataError, VQLensError, VQLensWarning
from .metrics import sorted_rows

__all__ = [
    "collision_groups_detail",
    "compare_code_sets",
    "csv_safe",
    "deduplicate",
    "export_codes",
    "id_table",
    "items_under_prefix",
    "prefix_collision_table",
    "prefix_tree",
    "prefix_trie",
    "prefix_trie_json",
    "semantic_id_strings",
    "validate_codes",
]

#: Largest group whose pairwise distances are all computed (200 items = 19,900 pairs).
DEFAULT_MAX_PAIRWISE = 200
# float64 row blocks of this size when a centroid and the distances to it are accumulated
_SPREAD_CHUNK_BYTES = 8 * 2**20


# --------------------------------------------------------------------------
# validation


def validate_codes(codes, codebook_sizes=None, *, n_items=None):
    """Check codes and return them as a compact unsigned array with the size of each level.

    Parameters
    ----------
    codes : array-like of shape (n_items, n_levels)
        Integer codes, row i for item i, level 0 first. Floats holding whole
        numbers are accepted.
    codebook_sizes : int, sequence of int, or None, default=None
        K of every level, or one K per level; each code of level m must be in
        ``0..K_m - 1``. ``None`` infers ``max + 1`` per level (a lower bound).
    n_items : int, optional
        Number of items the codes must describe (rows of the embeddings, or
        number of labels), so that row i of the codes is item i.

    Returns
    -------
    codes : ndarray of shape (n_items, n_levels)
        C-contiguous, the smallest unsigned integer dtype holding the largest code.
    codebook_sizes : list of int
        One K per level.

    Raises
    ------
    DataError
        Not 2-D (a 1-D array gets the advice ``codes.reshape(-1, 1)``), not
        integers, negative, a code ``>= K`` of its level (the message names the
        level, ``codes[:, m]``, the value and K), or ``n_items`` not matching.

    Examples
    --------
    >>> codes, sizes = validate_codes([[3, 0], [3, 1]], [4, 2])
    >>> codes.dtype.name, sizes
    ('uint8', [4, 2])
    >>> validate_codes([[3, 0], [3, 2]], [4, 2])  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    vqcore.exceptions.DataError: codes[:, 1] contains the value 2 but codebook_size[1]=2;
    codes of a codebook of size K should be in 0..K-1.
    """
    arr, sizes = check_codes(codes, codebook_sizes)
    if n_items is not None:
        n_items = check_int("n_items", n_items, low=1)
        if arr.shape[0] != n_items:
            raise DataError(
                f"codes have {arr.shape[0]} rows but there are n_items={n_items} items (embeddings or "
                f"labels); row i of the codes must be item i. Load codes and items of the same set."
            )
    dtype = np.min_scalar_type(int(arr.max()))
    return np.ascontiguousarray(arr, dtype=dtype), sizes


def _check_labels(labels, n):
    if labels is None:
        return None
    if isinstance(labels, (str, bytes)):
        raise VQLensError("labels should be a sequence of one label per item, not a single string.")
    labels = list(labels)
    if len(labels) != n:
        raise DataError(
            f"labels has {len(labels)} entries but codes have {n} rows; pass one label per item, in "
            "the order of the codes."
        )
    return labels


def _check_items(X, n):
    if X is None:
        return None
    X = check_data(X, name="X")
    if X.shape[0] != n:
        raise DataError(
            f"X has {X.shape[0]} rows but codes have {n}; pass the embeddings of the same items, "
            "row i for item i."
        )
    return X


def _label_list(labels, items):
    """Labels of the given items, or ``"item i"`` when there are no labels."""
    if labels is None:
        return [f"item {int(i)}" for i in items]
    return [str(labels[int(i)]) for i in items]


# --------------------------------------------------------------------------
# distances inside a set of items


def _chunks_of(n, d):
    """Row slices that keep a float64 block of d columns near _SPREAD_CHUNK_BYTES."""
    return row_chunks(n, d, 8, _SPREAD_CHUNK_BYTES)


def _centroid_spread(X, idx=None):
    """Centroid and mean Euclidean distance to it of the rows ``idx`` of X (all rows if None).

    Two passes in row chunks of float64, so a prefix holding most of X is
    never copied whole.
    """
    d = X.shape[1]
    n = X.shape[0] if idx is None else len(idx)

    def block(a, b):
        rows = X[a:b] if idx is None else X[idx[a:b]]
        return rows.astype(np.float64)

    total = np.zeros(d)
    for a, b in _chunks_of(n, d):
        total += block(a, b).sum(axis=0)
    centroid = total / n
    spread = 0.0
    for a, b in _chunks_of(n, d):
        diff = block(a, b) - centroid
        spread += float(np.sqrt(np.einsum("ij,ij->i", diff, diff)).sum())
    return centroid, spread / n


def _pairwise_stats(rows):
    """Mean and max Euclidean distance over all pairs of rows (k >= 2), by one Gram matrix."""
    rows = rows.astype(np.float64)
    rows = rows - rows.mean(axis=0)  # centring keeps the Gram trick accurate
    sq = np.einsum("ij,ij->i", rows, rows)
    dist2 = sq[:, None] + sq[None, :] - 2.0 * (rows @ rows.T)
    iu = np.triu_indices(rows.shape[0], k=1)
    dist = np.sqrt(np.maximum(dist2[iu], 0.0))
    return float(dist.mean()), float(dist.max())


# --------------------------------------------------------------------------
# the code tree


def _prefix_runs(sorted_codes, depth):
    """Run starts of the distinct prefixes of length 1..depth of lexicographically sorted codes."""
    n = sorted_codes.shape[0]
    new = np.zeros(n, dtype=bool)
    new[0] = True
    starts = []
    for m in range(depth):
        col = sorted_codes[:, m]
        new[1:] |= col[1:] != col[:-1]
        starts.append(np.flatnonzero(new))
    return starts


def prefix_tree(codes, *, max_depth=3, max_children=20, labels=None, examples=3):
    """The tree of code prefixes, as flat node lists for a sunburst or a treemap.

    A node is a prefix ``(c_0, ..., c_{d-1})`` used by at least one item; its
    children are the prefixes one level longer. Under each shown node the
    ``max_children`` largest children are kept (ties: smaller code first) and
    the others are folded into one ``"other"`` leaf holding their total count,
    so the counts of a node's children always sum to its own count.

    Parameters
    ----------
    codes : array-like of shape (n_items, n_levels)
        Integer codes, level 0 first.
    max_depth : int, default=3
        Deepest level shown (capped at n_levels).
    max_children : int, default=20
        Largest number of children shown under one node, besides ``"other"``.
    labels : sequence of str, optional
        One label per item, used for the examples.
    examples : int, default=3
        Number of example items per node (the first ones, in item order).

    Returns
    -------
    tree : dict of lists, one entry per node, parents before children
        ``ids`` (str): the prefix joined by ``/`` (``"12"``, ``"12/3"``); an
        ``"other"`` node is ``"<parent id>/other"`` (``"other"`` at the top).
        ``parents`` (str): the parent's id, ``""`` for level-0 nodes.
        ``labels`` (str): the node's last code, or ``"other (k)"`` for k folded
        codes. ``counts`` (int): items under the node. ``depth`` (int): 1 for
        level 0. ``prefix`` (tuple of int, or None for ``"other"``): the codes,
        ready for :func:`items_under_prefix`. ``n_folded`` (int): codes folded
        into an ``"other"`` node (0 for the others). ``examples`` (list of int):
        item indices. ``example_labels`` (list of str): their labels (or
        ``"item i"``).

        For plotly: ``go.Sunburst(ids=t["ids"], parents=t["parents"],
        labels=t["labels"], values=t["counts"], branchvalues="total")``.
        Level-0 counts sum to n_items.

    Examples
    --------
    >>> t = prefix_tree([[0, 0], [0, 0], [0, 1], [1, 1]], max_children=1)
    >>> t["ids"], t["counts"]
    (['0', 'other', '0/0', '0/other'], [3, 1, 2, 1])
    """
    codes, _ = validate_codes(codes)
    n, n_levels = codes.shape
    labels = _check_labels(labels, n)
    max_depth = check_int("max_depth", max_depth, low=1)
    max_children = check_int("max_children", max_children, low=1)
    examples = check_int("examples", examples, low=0)
    depth = min(max_depth, n_levels)

    _, _, _, perm = sorted_rows(codes[:, :depth], order=True)
    sorted_codes = codes[perm, :depth]
    run_starts = _prefix_runs(sorted_codes, depth)

    out = {key: [] for key in (
        "ids", "parents", "labels", "counts", "depth", "prefix", "n_folded", "examples", "example_labels",
    )}

    def emit(node_id, parent, label, count, d, prefix, folded, items):
        out["ids"].append(node_id)
        out["parents"].append(parent)
        out["labels"].append(label)
        out["counts"].append(int(count))
        out["depth"].append(d)
        out["prefix"].append(prefix)
        out["n_folded"].append(int(folded))
        out["examples"].append([int(i) for i in items])
        out["example_labels"].append(_label_list(labels, items))

    # shown nodes of the previous depth: group index -> node id, in the order they were emitted
    shown = {0: ""}  # depth 0: the root, one group
    prev_starts = np.zeros(1, dtype=np.int64)
    for d in range(1, depth + 1):
        starts = run_starts[d - 1]
        sizes = np.diff(np.append(starts, n))
        # Sorting by the first d levels only puts the same groups at the same starts, and
        # (the sort being stable) their items in item order, which the examples need.
        perm_d = perm if d == depth else sorted_rows(codes[:, :d], order=True)[3]
        parent = np.searchsorted(prev_starts, starts, side="right") - 1
        n_parents = prev_starts.size
        parent_shown = np.zeros(n_parents, dtype=bool)
        parent_shown[list(shown)] = True
        code = sorted_codes[starts, d - 1].astype(np.int64)
        # rank of each group among its siblings: larger first, then smaller code
        order = np.lexsort((code, -sizes, parent))
        rank = np.empty(starts.size, dtype=np.int64)
        rank[order] = np.arange(starts.size) - np.searchsorted(parent[order], parent[order], side="left")
        candidate = parent_shown[parent]
        kept = candidate & (rank < max_children)
        folded = candidate & ~kept

        # "other" leaves: total count, and the first example items among the folded siblings
        other_count = np.bincount(parent[folded], weights=sizes[folded], minlength=n_parents)
        other_n = np.bincount(parent[folded], minlength=n_parents)
        cand_parent = [np.zeros(0, dtype=np.int64)]
        cand_item = [np.zeros(0, dtype=np.int64)]
        for e in range(examples):
            has = folded & (sizes > e)
            cand_parent.append(parent[has])
            cand_item.append(perm_d[starts[has] + e])
        cand_parent, cand_item = np.concatenate(cand_parent), np.concatenate(cand_item)
        cand = np.lexsort((cand_item, cand_parent))
        cand_parent, cand_item = cand_parent[cand], cand_item[cand]

        # children grouped by parent (in the parents' order), largest first, "other" last
        kept_idx = np.flatnonzero(kept)
        kept_idx = kept_idx[np.lexsort((rank[kept_idx], parent[kept_idx]))]
        kept_parent = parent[kept_idx]
        next_shown = {}
        for p, pid in shown.items():
            lo, hi = np.searchsorted(kept_parent, [p, p + 1])
            for g in kept_idx[lo:hi]:
                c = int(code[g])
                node_id = f"{pid}/{c}" if pid else str(c)
                prefix = tuple(int(v) for v in sorted_codes[starts[g], :d])
                items = perm_d[starts[g]: starts[g] + min(examples, int(sizes[g]))]
                emit(node_id, pid, str(c), sizes[g], d, prefix, 0, items)
                next_shown[int(g)] = node_id
            if other_n[p]:
                lo, hi = np.searchsorted(cand_parent, [p, p + 1])
                emit(f"{pid}/other" if pid else "other", pid, f"other ({int(other_n[p])})",
                     other_count[p], d, None, other_n[p], cand_item[lo:hi][:examples])
        shown, prev_starts = next_shown, starts
    return out


# --------------------------------------------------------------------------
# collisions and coverage


def prefix_collision_table(codes, codebook_sizes):
    """Collisions and coverage of the code prefixes at each depth, against uniform codes.

    For depth d (the first d levels): the number of distinct prefixes used;
    the collision rate ``1 - distinct / n``
    (:func:`vqcore.metrics.prefix_collision_rates`); the rate n items would
    have with uniform, independent codes over the same ``prod K`` tuples, the
    birthday bound (:func:`vqcore.metrics.birthday_collision_rate`); and
    coverage, the used combinations over the most that n items could use,
    ``distinct / min(prod K, n)``.

    Parameters
    ----------
    codes : array-like of shape (n_items, n_levels)
        Integer codes, level 0 first.
    codebook_sizes : int, sequence of int, or None
        K of every level or one K per level. ``None`` infers ``max + 1`` per
        level, which makes coverage look better than it is when top codes are
        unused; pass the real sizes when known.

    Returns
    -------
    table : dict of lists, one entry per depth 1..n_levels
        ``depth``; ``distinct_prefixes`` (int, the used combinations);
        ``collision_rate``; ``uniform_collision_rate``; ``possible`` (int,
        ``prod K`` of the first d levels, a Python int that may exceed 64 bits);
        ``log2_possible``; ``coverage`` in (0, 1]; ``uniform_coverage``, the
        coverage uniform codes would have, ``n (1 - uniform_collision_rate) /
        min(prod K, n)``. ``pandas.DataFrame(table)`` gives the table.

    Examples
    --------
    >>> t = prefix_collision_table([[0, 0], [0, 0], [0, 1], [1, 1]], [2, 2])
    >>> t["distinct_prefixes"], t["collision_rate"], t["possible"], t["coverage"]
    ([2, 3], [0.5, 0.25], [2, 4], [1.0, 0.75])
    """
    codes, sizes = validate_codes(codes, codebook_sizes)
    return prefix_table(codes.shape[0], sizes, metrics.prefix_collision_rates(codes))


def prefix_table(n, codebook_sizes, prefix_rates):
    """:func:`prefix_collision_table` from n, the K of each level and the prefix collision
    rates alone (e.g. a report's ``collisions.prefix_rates``, streamed over a catalogue)."""
    sizes = [int(k) for k in codebook_sizes]
    rates = [float(r) for r in prefix_rates]
    n_levels = len(rates)
    distinct = [round(n * (1.0 - r)) for r in rates]  # exact: rates are 1 - distinct / n
    possible = [math.prod(sizes[: d + 1]) for d in range(n_levels)]
    uniform = [float(metrics.birthday_collision_rate(n, sizes[: d + 1])) for d in range(n_levels)]
    return {
        "depth": list(range(1, n_levels + 1)),
        "distinct_prefixes": distinct,
        "collision_rate": [float(r) for r in rates],
        "uniform_collision_rate": uniform,
        "possible": possible,
        "log2_possible": [float(sum(math.log2(k) for k in sizes[: d + 1])) for d in range(n_levels)],
        "coverage": [u / min(p, n) for u, p in zip(distinct, possible, strict=True)],
        # uniform codes: E[#distinct] = n (1 - birthday rate), over the same cap as coverage
        "uniform_coverage": [n * (1.0 - u) / min(p, n) for u, p in zip(uniform, possible, strict=True)],
    }


def collision_groups_detail(codes, X=None, labels=None, top=20, *, max_pairwise=DEFAULT_MAX_PAIRWISE):
    """The largest groups of items sharing a whole code tuple, with how far apart they are.

    Groups come from :func:`vqcore.metrics.collision_groups` (largest first).
    With embeddings, each group gets the mean and largest Euclidean distance
    over its pairs of items and the mean distance to its centroid: a group of
    near-duplicates (small distances) is a harmless collision, a group of
    unrelated items is a tokenizer that ran out of codes.

    Parameters
    ----------
    codes : array-like of shape (n_items, n_levels)
    X : array-like of shape (n_items, n_features), optional
        The items' embeddings.
    labels : sequence of str, optional
        One label per item.
    top : int or None, default=20
        How many groups; None for all.
    max_pairwise : int, default=200
        Pairwise distances use at most the first ``max_pairwise`` items of a
        group (``pairwise_items`` says how many were used); the centroid
        distance always uses the whole group.

    Returns
    -------
    groups : list of dict, largest group first
        ``codes`` (tuple of int), ``size`` (int), ``items`` (list of int,
        increasing), ``labels`` (list of str, or None without labels), and, with
        X (else None): ``mean_pairwise``, ``max_pairwise`` (floats),
        ``pairwise_items`` (int), ``mean_to_centroid`` (float), ``tightness``
        (``mean_to_centroid`` over the whole data's mean distance to its
        centroid, as in :func:`items_under_prefix`; None when every item has
        the same embedding).

    References
    ----------
    S. Rajput et al., "Recommender Systems with Generative Retrieval",
    NeurIPS 2023 (colliding items get an extra token; see :func:`deduplicate`).

    Examples
    --------
    >>> g = collision_groups_detail([[0, 1], [1, 1], [0, 1]], X=[[0.0], [5.0], [2.0]])
    >>> g[0]["codes"], g[0]["items"], g[0]["mean_pairwise"], g[0]["mean_to_centroid"]
    ((0, 1), [0, 2], 2.0, 1.0)
    """
    codes, _ = validate_codes(codes)
    n = codes.shape[0]
    X = _check_items(X, n)
    labels = _check_labels(labels, n)
    max_pairwise = check_int("max_pairwise", max_pairwise, low=2)
    spread = _centroid_spread(X)[1] if X is not None else None
    out = []
    for tup, members in metrics.collision_groups(codes, top=top):
        group = {
            "codes": tup,
            "size": int(members.size),
            "items": members.tolist(),
            "labels": None if labels is None else [str(labels[i]) for i in members],
            "mean_pairwise": None,
            "max_pairwise": None,
            "pairwise_items": None,
            "mean_to_centroid": None,
            "tightness": None,
        }
        if X is not None:
            used = members[:max_pairwise]
            group["mean_pairwise"], group["max_pairwise"] = _pairwise_stats(X[used])
            group["pairwise_items"] = int(used.size)
            group["mean_to_centroid"] = _centroid_spread(X, members)[1]
            group["tightness"] = group["mean_to_centroid"] / spread if spread else None
        out.append(group)
    return out


def _parse_prefix(prefix, n_levels):
    if isinstance(prefix, str):
        parts = [p for p in prefix.strip().split("/") if p != ""]
        if "other" in parts:
            raise VQLensError(
                f"prefix={prefix!r} is an 'other' node, which folds several prefixes; pick one of its "
                "codes (raise max_children in prefix_tree to see them)."
            )
        try:
            prefix = [int(p) for p in parts]
        except ValueError:
            raise VQLensError(
                f"prefix={prefix!r} should be codes joined by '/', e.g. '12/3', or a tuple of ints."
            ) from None
    elif np.ndim(prefix) == 0:
        prefix = [prefix]
    prefix = [check_int(f"prefix[{m}]", v.item() if isinstance(v, np.generic) else v, low=0)
              for m, v in enumerate(prefix)]
    if len(prefix) > n_levels:
        raise VQLensError(
            f"prefix={tuple(prefix)} has {len(prefix)} codes but the codes have only {n_levels} levels."
        )
    return tuple(prefix)


def items_under_prefix(codes, prefix, X=None, labels=None, limit=50):
    """The items whose codes start with ``prefix``, and how tight they are.

    Tightness compares the mean distance of these items to their own centroid
    with the mean distance of all items to the global centroid: below 1 the
    prefix gathers items closer than the data as a whole (a meaningful
    branch), near 1 it is no better than a random subset.

    Parameters
    ----------
    codes : array-like of shape (n_items, n_levels)
    prefix : sequence of int, int, or str
        The first codes, level 0 first, e.g. ``(12, 3)``, or a node id of
        :func:`prefix_tree` such as ``"12/3"``. ``()`` selects every item.
    X : array-like of shape (n_items, n_features), optional
        The items' embeddings, for tightness.
    labels : sequence of str, optional
    limit : int or None, default=50
        Largest number of items listed (the first ones, in item order);
        ``count`` is always the full number.

    Returns
    -------
    result : dict
        ``prefix`` (tuple of int), ``count`` (int), ``fraction`` (count / n),
        ``indices`` (list of int, at most ``limit``), ``labels`` (their labels,
        or None without labels), and with X (else None):
        ``mean_distance_to_centroid``, ``data_mean_distance_to_centroid`` and
        ``tightness`` = their ratio (0 for a single item or identical items;
        NaN, with a warning, when all items are identical).

    Examples
    --------
    >>> codes = [[0, 0], [0, 1], [1, 0], [1, 1]]
    >>> r = items_under_prefix(codes, "0", X=[[0.0], [2.0], [10.0], [12.0]])
    >>> r["indices"], r["mean_distance_to_centroid"], r["data_mean_distance_to_centroid"]
    ([0, 1], 1.0, 5.0)
    >>> r["tightness"]
    0.2
    """
    codes, _ = validate_codes(codes)
    n, n_levels = codes.shape
    X = _check_items(X, n)
    labels = _check_labels(labels, n)
    if limit is not None:
        limit = check_int("limit", limit, low=0)
    prefix = _parse_prefix(prefix, n_levels)
    if prefix:
        mask = np.ones(n, dtype=bool)
        for m, c in enumerate(prefix):
            mask &= codes[:, m] == c
        idx = np.flatnonzero(mask)
    else:
        idx = np.arange(n)
    shown = idx[:limit]
    result = {
        "prefix": prefix,
        "count": int(idx.size),
        "fraction": idx.size / n,
        "indices": shown.tolist(),
        "labels": None if labels is None else [str(labels[i]) for i in shown],
        "mean_distance_to_centroid": None,
        "data_mean_distance_to_centroid": None,
        "tightness": None,
    }
    if X is not None and idx.size:
        inside = _centroid_spread(X, idx)[1]
        overall = _centroid_spread(X)[1]
        if overall == 0.0:
            warnings.warn(
                "All items have the same embedding, so tightness is undefined; it is returned as NaN.",
                VQLensWarning, stacklevel=2,
            )
            ratio = float("nan")
        else:
            ratio = inside / overall
        result.update(
            mean_distance_to_centroid=inside, data_mean_distance_to_centroid=overall, tightness=ratio,
        )
    return result


# --------------------------------------------------------------------------
# de-duplication and export


def deduplicate(codes):
    """Append one level that makes every code tuple unique, as TIGER does.

    Items sharing a whole tuple get 0, 1, 2, ... in the new last level, in the
    order they appear; items with a tuple of their own get 0. The new level
    needs as many codes as the largest collision group, the least any extra
    level can do; the original levels are unchanged.

    Parameters
    ----------
    codes : array-like of shape (n_items, n_levels)

    Returns
    -------
    new_codes : ndarray of shape (n_items, n_levels + 1)
        Unsigned integers; every row distinct.
    extra_size : int
        Size K of the added level: the size of the largest collision group
        (1 when no two items collide, and the new level is all zeros).

    References
    ----------
    S. Rajput et al., "Recommender Systems with Generative Retrieval",
    NeurIPS 2023, sec. 3.1: "we append an extra token at the end of the
    ordered semantic codes to make them unique".

    Examples
    --------
    >>> new, k = deduplicate([[5, 1], [2, 0], [5, 1], [5, 1]])
    >>> new.tolist(), k
    ([[5, 1, 0], [2, 0, 0], [5, 1, 1], [5, 1, 2]], 3)
    """
    codes, _ = validate_codes(codes)
    n, n_levels = codes.shape
    _, _, new_run, perm = sorted_rows(codes, order=True)  # stable: runs keep item order
    run_start = np.flatnonzero(new_run)[np.cumsum(new_run) - 1]
    extra = np.empty(n, dtype=np.int64)
    extra[perm] = np.arange(n) - run_start
    extra_size = int(extra.max()) + 1
    dtype = np.result_type(codes.dtype, np.min_scalar_type(extra_size - 1))
    new_codes = np.empty((n, n_levels + 1), dtype=dtype)
    new_codes[:, :n_levels] = codes
    new_codes[:, n_levels] = extra
    return new_codes, extra_size


def export_codes(codes, fmt="csv", *, labels=None, level_names=None, label_name="label", rows=None,
                 row_name="row"):
    """Codes (e.g. from :func:`deduplicate`) as the bytes of a ``.csv`` or ``.npy`` file.

    :func:`vqcore.io.load_codes` reads them back exactly (for a CSV with
    labels, pass ``text_column=label_name``, since labels that look like
    numbers would otherwise be read as a level).

    Parameters
    ----------
    codes : array-like of shape (n_items, n_levels)
    fmt : {"csv", "npy"}, default="csv"
    labels : sequence of str, optional
        CSV only: one label per item, written as the last column.
    level_names : sequence of str, optional
        CSV header of the code columns; default ``level_0, level_1, ...``.
    label_name : str, default="label"
        CSV header of the label column.
    rows : sequence of int, optional
        CSV only: each item's row number in the user's data (increasing),
        written as the first column (``row_name``); :func:`vqcore.io.load_codes`
        drops a first column named ``row`` of increasing numbers.
    row_name : str, default="row"
        CSV header of the row column.

    Returns
    -------
    data : bytes

    Labels that a spreadsheet would run as a formula (starting with ``= + - @``) are written
    with a leading ``'`` (:mod:`vqcore.csvfile`); the codes are numbers and stay as they are.

    Examples
    --------
    >>> export_codes([[1, 0], [1, 1]], labels=["a", "b, c"]).decode()
    'level_0,level_1,label\\n1,0,a\\n1,1,"b, c"\\n'
    >>> export_codes([[1, 0], [1, 1]], rows=[3, 7]).decode()
    'row,level_0,level_1\\n3,1,0\\n7,1,1\\n'
    >>> export_codes([[2]], labels=["=HYPERLINK(0)"]).decode()
    "level_0,label\\n2,'=HYPERLINK(0)\\n"
    """
    codes, _ = validate_codes(codes)
    n, n_levels = codes.shape
    fmt = check_choice("fmt", fmt, {"csv", "npy"})
    labels = _check_labels(labels, n)
    if rows is not None:
        rows = np.asarray(rows)
        if rows.shape != (n,) or rows.dtype.kind not in "iu":
            raise VQLensError(f"rows should hold one integer row number per item ({n}); got shape {rows.shape}.")
    if fmt == "npy":
        if labels is not None or rows is not None:
            raise VQLensError("labels and rows cannot be stored in a .npy file; use fmt='csv' to keep them.")
        buf = io.BytesIO()
        np.save(buf, codes, allow_pickle=False)
        return buf.getvalue()
    if level_names is None:
        level_names = [f"level_{m}" for m in range(n_levels)]
    level_names = [str(v) for v in level_names]
    if len(level_names) != n_levels:
        raise VQLensError(f"level_names has {len(level_names)} names but the codes have {n_levels} levels.")
    head = [str(row_name)] if rows is not None else []
    header = head + level_names + ([str(label_name)] if labels is not None else [])
    lines = codes.tolist()
    if rows is not None:
        lines = [[r] + line for r, line in zip(rows.tolist(), lines, strict=True)]
    if labels is not None:
        lines = (line + [str(lab)] for line, lab in zip(lines, labels, strict=True))
    return csv_bytes(lines, header=header)


# --------------------------------------------------------------------------
# the ID table, the prefix trie, and two code sets side by side

def csv_safe(cell):
    """A text cell that a spreadsheet shows as text: a leading ``'`` when it starts like a formula
    (:func:`vqcore.csvfile.safe_cell` of the cell as text).

    Examples
    --------
    >>> csv_safe("=HYPERLINK(\\"http://x\\")"), csv_safe("plain"), csv_safe("-3 dB")
    ('\\'=HYPERLINK("http://x")', 'plain', "'-3 dB")
    """
    return safe_cell(str(cell))


def semantic_id_strings(codes, sep="_"):
    """Each row's code tuple as one string, level 0 first (``"12_3_7"``).

    ``_`` is the default separator because spreadsheets read ``12-3-7`` or
    ``12/3/7`` as dates.
    """
    codes, _ = validate_codes(codes)
    cols = [codes[:, m].astype(str) for m in range(codes.shape[1])]
    out = cols[0].astype(object)
    for c in cols[1:]:
        out = out + sep + c
    return out.tolist()


def id_table(codes, fmt="parquet", *, ids=None, texts=None, level_names=None, sep="_"):
    """The item -> semantic ID table, as the bytes of a ``.parquet`` or ``.csv`` file.

    One row per item, in item order, with the columns ``row`` (the item's row
    number in the data), ``id`` (the data's id column, when given), one column
    per level (``level_0``, ``level_1``, ...: the codes unpacked, one integer
    column each, unlike faiss's bit-packed codes), ``semantic_id`` (the tuple
    joined by ``sep``) and ``text`` (the item's text, when given). In the CSV,
    text and id cells that a spreadsheet would run as a formula are prefixed
    with ``'`` (:func:`csv_safe`); the parquet file keeps them as they are.

    Parameters
    ----------
    codes : array-like of shape (n_items, n_levels)
    fmt : {"parquet", "csv"}, default="parquet"
    ids, texts : sequence of length n_items, optional
    level_names : sequence of str, optional
    sep : str, default="_"

    Returns
    -------
    data : bytes

    Examples
    --------
    >>> print(id_table([[1, 0], [1, 2]], "csv", texts=["a", "=cmd()"]).decode())
    row,level_0,level_1,semantic_id,text
    0,1,0,1_0,a
    1,1,2,1_2,'=cmd()
    <BLANKLINE>
    """
    import pandas as pd

    codes, _ = validate_codes(codes)
    n, n_levels = codes.shape
    fmt = check_choice("fmt", fmt, {"parquet", "csv"})
    ids = _check_labels(ids, n)
    texts = _check_labels(texts, n)
    if level_names is None:
        level_names = [f"level_{m}" for m in range(n_levels)]
    level_names = [str(v) for v in level_names]
    if len(level_names) != n_levels:
        raise VQLensError(f"level_names has {len(level_names)} names but the codes have {n_levels} levels.")
    if fmt == "csv":  # a spreadsheet must not run an id or a text as a formula
        ids = None if ids is None else [v if v is None or not isinstance(v, str) else csv_safe(v) for v in ids]
        texts = None if texts is None else [None if v is None else csv_safe(v) for v in texts]
    cols = {"row": np.arange(n, dtype=np.int64)}
    if ids is not None:
        cols["id"] = ids
    for m, name in enumerate(level_names):
        cols[name] = codes[:, m].astype(np.int64)
    cols["semantic_id"] = semantic_id_strings(codes, sep)
    if texts is not None:
        cols["text"] = [None if t is None else str(t) for t in texts]
    df = pd.DataFrame(cols)
    if fmt == "parquet":
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        return buf.getvalue()
    return csv_bytes(df.itertuples(index=False, name=None), header=list(df.columns))


def prefix_trie(codes, *, max_depth=None):
    """The trie of the code tuples: for each prefix, its children and the number of items under it.

    This is the structure constrained decoding of semantic IDs walks: after
    generating a prefix, only its children are valid next codes.

    Parameters
    ----------
    codes : array-like of shape (n_items, n_levels)
    max_depth : int, optional
        Deepest level kept (default: all levels).

    Returns
    -------
    trie : dict
        ``{"count": n_items, "children": {"<code>": {"count": ..., "children": {...}}, ...}}``;
        nodes at the last kept level have no ``children``. Keys are the codes
        as strings (JSON object keys), in increasing code order.
        ``json.dumps(trie)`` gives the JSON file.

    Examples
    --------
    >>> prefix_trie([[0, 1], [0, 1], [2, 0]])  # doctest: +NORMALIZE_WHITESPACE
    {'count': 3, 'children': {'0': {'count': 2, 'children': {'1': {'count': 2}}},
                              '2': {'count': 1, 'children': {'0': {'count': 1}}}}}
    """
    codes, _ = validate_codes(codes)
    n, n_levels = codes.shape
    depth = n_levels if max_depth is None else min(check_int("max_depth", max_depth, low=1), n_levels)
    _, _, _, perm = sorted_rows(codes[:, :depth], order=True)
    sorted_codes = codes[perm, :depth]
    run_starts = _prefix_runs(sorted_codes, depth)
    root = {"count": int(n)}
    parents, parent_starts = [root], np.zeros(1, dtype=np.int64)
    for d in range(depth):
        starts = run_starts[d]
        sizes = np.diff(np.append(starts, n))
        owner = np.searchsorted(parent_starts, starts, side="right") - 1
        nodes = []
        for s, size, p in zip(starts.tolist(), sizes.tolist(), owner.tolist()):
            node = {"count": int(size)}
            parents[p].setdefault("children", {})[str(int(sorted_codes[s, d]))] = node
            nodes.append(node)
        parents, parent_starts = nodes, starts
    return root


def prefix_trie_json(codes, *, max_depth=None):
    """:func:`prefix_trie` as compact JSON bytes, for a download."""
    import json

    return json.dumps(prefix_trie(codes, max_depth=max_depth), separators=(",", ":")).encode("utf-8")


def _tuple_labels(codes):
    """Group label of each row: rows with the same code tuple share a label (0..G-1)."""
    _, _, new_run, perm = sorted_rows(codes, order=True)
    labels = np.empty(codes.shape[0], dtype=np.int64)
    labels[perm] = np.cumsum(new_run) - 1
    return labels


_MAX_RELABEL_K = 1024


def _relabelled_agreement(a, b):
    """Share of items equal at one level after the best one-to-one renaming of b's codes (Hungarian)."""
    from scipy.optimize import linear_sum_assignment

    ua, ia = np.unique(a, return_inverse=True)
    ub, ib = np.unique(b, return_inverse=True)
    if max(ua.size, ub.size) > _MAX_RELABEL_K:
        return None
    table = np.zeros((ua.size, ub.size), dtype=np.int64)
    np.add.at(table, (ia, ib), 1)
    r, c = linear_sum_assignment(table, maximize=True)
    return float(table[r, c].sum() / a.size)


def compare_code_sets(codes_a, codes_b, *, min_group_size=2, top=20):
    """Two code sets of the same items side by side: what changed, level by level and group by group.

    A retrain of a tokenizer that changes most items' IDs breaks a deployed
    generative recommender (its model emits the old IDs); this says how many
    changed, at which level, and whether the items that collided together
    still do.

    Parameters
    ----------
    codes_a, codes_b : array-like of shape (n_items, n_levels)
        Row i is item i in both (e.g. the codes of two runs on the same data).
    min_group_size : int, default=2
        A collision group (items sharing a whole tuple) of at least this many
        items is "large".
    top : int, default=20
        How many of A's largest groups to detail.

    Returns
    -------
    result : dict
        ``n_items``; ``n_changed`` and ``share_changed`` (items whose whole ID
        differs); ``level_agreement`` (per level, share of items with the same
        code); ``prefix_agreement`` (per depth d, same first d codes);
        ``relabelled_level_agreement`` (per level, the same after the best
        one-to-one renaming of B's codes, Hungarian assignment on the joint
        counts: near 1 with a low ``level_agreement`` means the same partition
        under other names; None above 1,024 codes); ``large_groups_a`` /
        ``large_groups_b``; ``items_in_large_groups``; ``n_moved`` and
        ``share_moved`` (items of a large group in A or B whose group-mates are
        not the same in both); ``groups`` (A's largest groups: ``codes_a``,
        ``size``, ``n_parts`` (groups of B they were split into),
        ``kept_together`` (items in their largest part), ``codes_b`` of that
        part).

    Examples
    --------
    >>> r = compare_code_sets([[0, 0], [0, 0], [1, 2]], [[5, 0], [5, 1], [1, 2]])
    >>> r["share_changed"], r["level_agreement"], r["relabelled_level_agreement"], r["n_moved"]
    (0.6666666666666666, [0.3333333333333333, 0.6666666666666666], [1.0, 0.6666666666666666], 2)
    """
    a, _ = validate_codes(codes_a)
    b, _ = validate_codes(codes_b)
    if a.shape != b.shape:
        raise DataError(
            f"the two code sets have shapes {a.shape} and {b.shape}; compare codes of the same items "
            "(same rows) with the same number of levels."
        )
    min_group_size = check_int("min_group_size", min_group_size, low=2)
    top = check_int("top", top, low=1)
    n, n_levels = a.shape
    a64, b64 = a.astype(np.int64), b.astype(np.int64)
    same = a64 == b64
    changed = ~same.all(axis=1)
    prefix_same = np.cumprod(same, axis=1).astype(bool)
    la, lb = _tuple_labels(a64), _tuple_labels(b64)
    size_a, size_b = np.bincount(la), np.bincount(lb)
    joint = la * (int(lb.max()) + 1) + lb
    _, joint_inv, joint_counts = np.unique(joint, return_inverse=True, return_counts=True)
    together = joint_counts[joint_inv]
    stayed = (together == size_a[la]) & (together == size_b[lb])
    large = (size_a[la] >= min_group_size) | (size_b[lb] >= min_group_size)
    moved = large & ~stayed
    groups = []
    for tup, members in metrics.collision_groups(a64, top=top):
        if members.size < min_group_size:
            break
        parts, counts = np.unique(lb[members], return_counts=True)
        best = int(np.argmax(counts))
        first = members[lb[members] == parts[best]][0]
        groups.append({
            "codes_a": tup,
            "size": int(members.size),
            "n_parts": int(parts.size),
            "kept_together": int(counts[best]),
            "codes_b": tuple(int(c) for c in b64[first]),
        })
    return {
        "n_items": int(n),
        "n_changed": int(changed.sum()),
        "share_changed": float(changed.mean()),
        "level_agreement": [float(v) for v in same.mean(axis=0)],
        "prefix_agreement": [float(v) for v in prefix_same.mean(axis=0)],
        "relabelled_level_agreement": [_relabelled_agreement(a64[:, m], b64[:, m]) for m in range(n_levels)],
        "large_groups_a": int((size_a >= min_group_size).sum()),
        "large_groups_b": int((size_b >= min_group_size).sum()),
        "items_in_large_groups": int(large.sum()),
        "n_moved": int(moved.sum()),
        "share_moved": float(moved.mean()),
        "groups": groups,
    }
