"""The run loop: :func:`train_codebook` checks, samples, trains (ste, ema, nsvq, lloyd; fsq) and records."""

import time

import numpy as np

from .._distances import NearestAssigner, nearest
from .._validation import check_data, check_int
from ..exceptions import VQLensError
from ..kmeans import kmeans_plusplus_rng, update_centroids
from ._bookkeeping import Batches, Recorder
from ._config import MAX_WINDOW_STEPS, TrainConfig
from ._fsq import train_fsq
from ._result import TrainingRun
from ._updates import AdamUpdate, EMAUpdate, SGDUpdate, l2_normalize, mean_sq, nsvq_loss_grad, ste_grad

# k-means++ seeding samples at most this many rows per code
_KMEANSPP_ROWS_PER_CODE = 64
# Lloyd trains on at most K * this many rows (faiss's rule, as KMeansVQ)
_LLOYD_ROWS_PER_CODE = 256



def train_codebook(
    X, config, *, callback=None, should_stop=None, callback_every=10, snapshot_every=None
):
    """Train codebooks on minibatches of X and record the training dynamics.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The data; each row is used as the "encoder output" z.
    config : TrainConfig
    callback : callable(step, record) or None
        Called every ``callback_every`` steps and after the last step run,
        with ``record`` the dict of that step's history values (the keys of
        ``TrainingRun.history``), e.g. to draw live progress.
    should_stop : callable() -> bool, or None
        Asked before every step; True ends the run, which keeps and evaluates
        what it has (``stopped_early=True``).
    callback_every : int, default=10
    snapshot_every : int or None, default=None
        Steps between usage snapshots; None takes ``ceil(steps / 50)``. The
        last step run is always snapshotted.

    Returns
    -------
    run : TrainingRun

    Examples
    --------
    >>> from vqcore.datasets import make_mixture
    >>> X = make_mixture(2000, 8, 16, random_state=0).X
    >>> config = TrainConfig(trainer="ema", codebook_size=16, steps=200, batch_size=128)
    >>> run = train_codebook(X, config)
    >>> run.codebooks.shape, len(run.history["step"]), run.final["dead_codes"]
    ((1, 16, 8), 200, [0])
    """
    if not isinstance(config, TrainConfig):
        raise VQLensError(f"config={config!r} should be a TrainConfig.")
    callback_every = check_int("callback_every", callback_every, low=1)
    if snapshot_every is None:
        snapshot_every = -(-config.steps // 50)
    snapshot_every = check_int("snapshot_every", snapshot_every, low=1)
    X = check_data(X)
    n, d = X.shape
    K = config.n_codes
    if config.trainer == "fsq":
        if len(config.levels) > d:
            raise VQLensError(
                f"levels has {len(config.levels)} entries but X has n_features={d}; FSQ "
                "quantizes at most d principal components."
            )
    elif (config.trainer == "lloyd" or config.init != "normal") and n < K:
        raise VQLensError(
            f"n_samples={n} should be >= codebook_size={K} for init={config.init!r} with "
            f"trainer={config.trainer!r}: use a smaller codebook_size or more data."
        )
    if config.trainer != "lloyd" and config.batch_size > n:
        raise VQLensError(f"batch_size={config.batch_size} should be <= n_samples={n}.")
    seed = config.random_state
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> 1)
    rng = np.random.default_rng(seed)
    if config.cosine:
        X = l2_normalize(X)

    if config.trainer == "lloyd" and n > K * _LLOYD_ROWS_PER_CODE:
        Xt = X[np.sort(rng.choice(n, size=K * _LLOYD_ROWS_PER_CODE, replace=False))]
    else:
        Xt = X
    n_train = Xt.shape[0]
    if config.trainer == "lloyd":
        window, batch = 1, n_train
    else:
        batch = config.batch_size
        window = min(-(-n_train // batch), MAX_WINDOW_STEPS)
    rec = Recorder(config.n_stages, K, batch, window, snapshot_every, callback, callback_every)

    start = time.perf_counter()
    if config.trainer == "fsq":
        fsq, stopped = train_fsq(Xt, config, rng, rec, should_stop)
        codebooks = fsq.codebook()[None]
    else:
        codebooks, stopped = _train_codebooks(Xt, config, rng, rec, should_stop)
        fsq = None
    rec.finish()
    run = TrainingRun(
        config=config,
        seed=seed,
        codebooks=codebooks,
        history=rec.history,
        resets=rec.resets,
        usage_snapshots=rec.usage_snapshots(),
        stopped_early=stopped,
        steps_run=rec.steps,
        window_steps=window,
        n_train=n_train,
        n_features=d,
        seconds=time.perf_counter() - start,
        _fsq=fsq,
    )
    run.final = run.evaluate(X)
    return run



def _init_codebooks(X, config, rng):
    """Initial codebooks (S, K, d); stage s is seeded on the residuals of a fresh sample."""
    S, K, d = config.n_stages, config.codebook_size, X.shape[1]
    if config.init == "normal":
        C = (config.init_scale * rng.standard_normal((S, K, d))).astype(np.float32)
    else:
        C = np.empty((S, K, d), dtype=np.float32)
        n = X.shape[0]
        rows = K if config.init == "data" else min(n, K * _KMEANSPP_ROWS_PER_CODE)
        for s in range(S):
            R = X[rng.choice(n, size=rows, replace=False)]
            for j in range(s):
                R = R - C[j][nearest(R, C[j])[0]]
            C[s] = R if config.init == "data" else kmeans_plusplus_rng(R, K, rng)
    if config.cosine:
        C = l2_normalize(C)
    return C


def _train_codebooks(X, config, rng, rec, should_stop):
    """The loop of the ste, ema, nsvq and lloyd trainers; returns (codebooks, stopped)."""
    S, K = config.n_stages, config.codebook_size
    trainer = config.trainer
    C = _init_codebooks(X, config, rng)
    lloyd = trainer == "lloyd"
    if lloyd:
        assigner = NearestAssigner(X)
    else:
        batches = Batches(X.shape[0], config.batch_size, rng)
    if trainer in ("ste", "nsvq"):
        if config.optimizer == "adam":
            opts = [AdamUpdate(C[s].shape, config.learning_rate, config.adam_betas, config.adam_eps)
                    for s in range(S)]
        else:
            opts = [SGDUpdate(config.learning_rate) for _ in range(S)]
    elif trainer == "ema":
        emas = [EMAUpdate(C[s], config.batch_size, config.decay, config.ema_epsilon) for s in range(S)]

    for t in range(1, config.steps + 1):
        if should_stop is not None and should_stop():
            return C, True
        R = X if lloyd else X[batches.next()]
        stage_loss, stage_mse, batch_counts, n_resets = [], [], [], [0] * S
        for s in range(S):
            Cs = C[s]
            labels, _ = assigner.assign(Cs) if (lloyd and s == 0) else nearest(R, Cs)
            batch_counts.append(rec.usage(t, s, labels))
            R_next = R - Cs[labels]
            err = mean_sq(R_next)
            stage_mse.append(err)
            # update stage s from its input R (its forward pass used the old codebook)
            if trainer in ("ste", "nsvq"):
                if trainer == "ste":
                    stage_loss.append((1.0 + config.beta) * err)
                    grad = ste_grad(R, Cs, labels)
                else:
                    V = rng.standard_normal(R.shape).astype(R.dtype)
                    loss, grad = nsvq_loss_grad(R, Cs, labels, V)
                    stage_loss.append(loss)
                if config.cosine:  # through e = w / ||w|| at ||w|| = 1: drop the radial part
                    grad -= np.einsum("kd,kd->k", grad, Cs)[:, None] * Cs
                opts[s].step(Cs, grad)
            elif trainer == "ema":
                stage_loss.append(config.beta * err)
                emas[s].update(Cs, R, labels)
            else:  # lloyd: the k-means update and its empty-cluster repair
                stage_loss.append(err)
                empty = np.flatnonzero(batch_counts[s] == 0)
                C[s], repairs = update_centroids(R, labels, K, Cs, rng)
                if repairs:
                    rec.reset(t, s, empty[:repairs])
                    n_resets[s] = repairs
            if config.cosine:
                C[s] = l2_normalize(C[s])
            if config.reset_after is not None:
                stale = rec.stale(t, s, config.reset_after)
                if stale.size:
                    B = R.shape[0]
                    new = R[rng.choice(B, size=stale.size, replace=stale.size > B)]
                    C[s][stale] = l2_normalize(new) if config.cosine else new
                    if trainer == "ema":
                        emas[s].restart(C[s], stale)
                    else:
                        opts[s].forget(stale)
                    rec.reset(t, s, stale)
                    n_resets[s] = int(stale.size)
            R = R_next
        rec.record(t, stage_loss, stage_mse, batch_counts, n_resets)
    return C, False
