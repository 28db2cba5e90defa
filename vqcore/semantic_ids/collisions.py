"""Collisions and coverage of the code prefixes, the largest collision groups with how far apart
their items are, and the items under one prefix with how tight they are."""

import math
import warnings

import numpy as np

from .. import metrics
from .._validation import check_int
from ..exceptions import VQLensError, VQLensWarning
from ._common import centroid_spread, check_items, check_labels, pairwise_stats, validate_codes

#: Largest group whose pairwise distances are all computed (200 items = 19,900 pairs).
DEFAULT_MAX_PAIRWISE = 200


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
    X = check_items(X, n)
    labels = check_labels(labels, n)
    max_pairwise = check_int("max_pairwise", max_pairwise, low=2)
    spread = centroid_spread(X)[1] if X is not None else None
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
            group["mean_pairwise"], group["max_pairwise"] = pairwise_stats(X[used])
            group["pairwise_items"] = int(used.size)
            group["mean_to_centroid"] = centroid_spread(X, members)[1]
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
    X = check_items(X, n)
    labels = check_labels(labels, n)
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
        inside = centroid_spread(X, idx)[1]
        overall = centroid_spread(X)[1]
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
