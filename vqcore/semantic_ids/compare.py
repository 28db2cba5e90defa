"""Two code sets of the same items side by side: what changed, level by level and group by group."""

import numpy as np

from .. import metrics
from .._validation import check_int
from ..exceptions import DataError
from ..metrics import sorted_rows
from ._common import validate_codes


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
