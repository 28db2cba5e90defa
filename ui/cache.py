"""Cached calls into vqcore. Keyed on the data's content hash (``key``), never
on a file name; the array itself is passed as an unhashed ``_X``. Every cache
has ``max_entries``. ``st.cache_data`` returns a copy, so callers may not
change what the cache holds.
"""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

import vqcore
from vqcore import datasets
from vqcore.inspect import codeword_points, data_summary, pca_basis, project, subsample_indices, umap_embed
from vqcore.report import default_n_queries, evaluate, holdout_split

MAP_MAX_POINTS = 10_000


# ---------------------------------------------------------------- data


@st.cache_data(max_entries=8, show_spinner=False)
def sample(name, n=None, d=None, rho=None, n_components=None):
    """A shipped sample or toy set (see vqcore.datasets) as a Dataset."""
    if name == "MiniLM sentences":
        return datasets.load_sample()
    if name == "Digits":
        return datasets.load_digits_dataset()
    if name == "Gaussian, uncorrelated":
        return datasets.make_gaussian(n, d, correlated=False, random_state=0)
    if name == "Gaussian, correlated":
        return datasets.make_gaussian(n, d, correlated=True, rho=rho, random_state=0)
    if name == "Gaussian mixture":
        return datasets.make_mixture(n, d, n_components, random_state=0)
    if name == "Rotated anisotropic":
        return datasets.make_rotated(n, d, random_state=0)
    raise vqcore.VQLensError(f"Unknown sample {name!r}.")


@st.cache_data(max_entries=8, show_spinner=False)
def summary(key, _X):
    return data_summary(_X)


# ---------------------------------------------------------------- fit and evaluate


def split(n, seed):
    """(base rows, held-out query rows) used by every fit on n rows."""
    nq = default_n_queries(n)
    if nq == 0:
        return np.arange(n), np.arange(0)
    return holdout_split(n, nq, random_state=seed)


@st.cache_data(max_entries=32, show_spinner=False)
def fit(key, spec, params, train_size, seed, _X):
    """Fit ``from_spec(spec, **params)`` on a training subsample of the base rows.

    ``params`` is a tuple of (name, value) pairs. Returns a dict with the fitted
    ``quantizer``, ``fit_seconds``, ``n_train`` and the ``base_idx`` / ``query_idx``
    split.
    """
    base_idx, query_idx = split(_X.shape[0], seed)
    train = base_idx[subsample_indices(len(base_idx), int(train_size), random_state=seed)]
    q = vqcore.from_spec(spec, random_state=seed, **dict(params))
    t0 = time.perf_counter()
    q.fit(_X[train])
    return {
        "quantizer": q,
        "fit_seconds": time.perf_counter() - t0,
        "n_train": int(len(train)),
        "base_idx": base_idx,
        "query_idx": query_idx,
    }


@st.cache_data(max_entries=32, show_spinner=False)
def run(key, spec, params, train_size, seed, _X):
    """Fit (cached) and evaluate on the base rows with the held-out queries: the whole result."""
    f = fit(key, spec, params, train_size, seed, _X)
    q = f["quantizer"]
    Xb = _X[f["base_idx"]]
    t0 = time.perf_counter()
    codes = q.encode(Xb)
    nq = len(f["query_idx"])
    query_set = (
        f"{nq:,} rows held out of the data at random (seed {seed}); the base is the other {len(Xb):,}"
        if nq else "no queries (fewer than 50 rows)"
    )
    report = evaluate(q, Xb, _X[f["query_idx"]] if nq else None, codes=codes,
                      fit_seconds=f["fit_seconds"], query_set=query_set)
    report["n_train"] = f["n_train"]
    return {**f, "codes": codes, "report": report, "eval_seconds": time.perf_counter() - t0}


def run_with_progress(key, spec, params, train_size, seed, X, *, label=None):
    """:func:`run` inside an ``st.status`` that says what it is doing."""
    label = label or spec
    with st.status(f"Running {label}…", expanded=False) as status:
        status.write(f"Fitting {label} on {min(int(train_size), X.shape[0]):,} training rows…")
        f = fit(key, spec, params, train_size, seed, X)
        status.write(f"Fitted in {f['fit_seconds']:.2f} s; encoding and measuring…")
        res = run(key, spec, params, train_size, seed, X)
        status.update(label=f"{label}: fit {res['fit_seconds']:.2f} s, evaluation {res['eval_seconds']:.2f} s",
                      state="complete")
    return res


# ---------------------------------------------------------------- maps


@st.cache_data(max_entries=8, show_spinner=False)
def map_rows(key, n, seed):
    """Rows shown on a map: all of them, or a random MAP_MAX_POINTS."""
    return subsample_indices(n, MAP_MAX_POINTS, random_state=seed)


@st.cache_data(max_entries=8, show_spinner=False)
def pca_map(key, _X):
    """2-D PCA basis of the data and every row's coordinates."""
    mean, comps = pca_basis(_X, 2)
    return mean, comps, project(_X, mean, comps)


def codeword_layer(result, position):
    """Codewords of one position in data space and how many items use each (not cached: cheap)."""
    q, codes = result["quantizer"], result["codes"]
    pts = codeword_points(q, codes, position)
    counts = np.bincount(codes[:, position].astype(np.intp), minlength=q.codebook_size)
    return pts, counts


@st.cache_data(max_entries=4, show_spinner=False)
def umap_map(key, run_id, seed, _Xs, _extra):
    """UMAP of the shown rows (at most MAP_MAX_POINTS) with the codewords of every position placed on it."""
    return umap_embed(_Xs, _extra, random_state=seed)


__all__ = ["sample", "summary", "fit", "run", "run_with_progress", "split", "map_rows", "pca_map",
           "codeword_layer", "umap_map", "learn_toy"]


# ---------------------------------------------------------------- learn page

LEARN_MAX_POINTS = 4096


@st.cache_data(max_entries=16, show_spinner=False)
def learn_toy(rho, K, M, n=1500, seed=0, resolution=160):
    """Fit VQ (K codes), PQ (2 subspaces x K) and RQ (M stages x K) on 2-D Gaussian data.

    Returns the data, the grid, and for each method the cell id of every grid
    point, the reconstruction points and the mse (for RQ: one entry per stage).
    """
    from vqcore import KMeansVQ, ProductQuantizer, ResidualQuantizer
    from vqcore.datasets import make_gaussian
    from vqcore.inspect import cell_ids, grid_points, prefix_reconstruction, reachable_points

    X = make_gaussian(n, 2, correlated=abs(rho) > 0, rho=rho if abs(rho) > 0 else 0.5, random_state=seed).X
    lo, hi = np.quantile(X, [0.002, 0.998], axis=0)
    pad = 0.15 * (hi - lo)
    bounds = (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])
    xs, ys, G = grid_points(bounds, resolution)

    def mse(q):
        return float(((X - q.decode(q.encode(X))) ** 2).sum(1).mean())

    vq = KMeansVQ(K, random_state=seed).fit(X)
    pq = ProductQuantizer(2, K, random_state=seed).fit(X)
    rq = ResidualQuantizer(M, K, random_state=seed).fit(X)
    codes_grid, codes_X = rq.encode(G), rq.encode(X)
    stages = []
    for s in range(1, M + 1):
        pts = reachable_points(rq, s) if K**s <= LEARN_MAX_POINTS else None
        err = float(((X - prefix_reconstruction(rq, codes_X, s)) ** 2).sum(1).mean())
        stages.append({"cells": cell_ids(codes_grid, s), "points": pts, "mse": err, "n_points": K**s})
    return {
        "X": X, "xs": xs, "ys": ys,
        "vq": {"cells": cell_ids(vq.encode(G)), "points": vq.codebooks_[0].astype(float), "mse": mse(vq)},
        "pq": {"cells": cell_ids(pq.encode(G)), "points": reachable_points(pq), "mse": mse(pq)},
        "rq": stages,
        "variance": float(((X - X.mean(0)) ** 2).sum(1).mean()),
    }
