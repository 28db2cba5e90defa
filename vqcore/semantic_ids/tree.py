"""The tree of code prefixes, as flat node lists for a sunburst or a treemap."""

import numpy as np

from .._validation import check_int
from ..metrics import sorted_rows
from ._common import check_labels, label_list, prefix_runs, validate_codes


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
    labels = check_labels(labels, n)
    max_depth = check_int("max_depth", max_depth, low=1)
    max_children = check_int("max_children", max_children, low=1)
    examples = check_int("examples", examples, low=0)
    depth = min(max_depth, n_levels)

    _, _, _, perm = sorted_rows(codes[:, :depth], order=True)
    sorted_codes = codes[perm, :depth]
    run_starts = prefix_runs(sorted_codes, depth)

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
        out["example_labels"].append(label_list(labels, items))

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
