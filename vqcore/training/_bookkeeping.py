"""Per-step bookkeeping of a run: history, last-epoch usage window, snapshots, resets, minibatches."""

from typing import NamedTuple

import numpy as np

from ..metrics import entropy_of_counts
from ._config import RUN_KEYS, STAGE_KEYS, history_key


class ResetEvent(NamedTuple):
    """Codes of one stage replaced after one step (dead-code reset or Lloyd repair)."""

    step: int
    stage: int
    codes: tuple

    @property
    def n_codes(self):
        return len(self.codes)



class Recorder:
    """History, last-epoch usage window, snapshots, last use of each code, callback."""

    def __init__(self, n_stages, K, batch, window, snapshot_every, callback, callback_every):
        self.S, self.K, self.window = n_stages, K, window
        self.history = {k: [] for k in RUN_KEYS}
        for s in range(n_stages):
            for k in STAGE_KEYS:
                self.history[history_key(k, s)] = []
        # the codes of the last `window` steps, to take them out of the window counts
        self.ring = np.zeros((window, n_stages, batch), dtype=np.int32)
        self.window_counts = np.zeros((n_stages, K), dtype=np.int64)
        self.last_used = np.zeros((n_stages, K), dtype=np.int64)
        self.snapshot_every = snapshot_every
        self.snapshot_steps, self.snapshot_counts = [], []
        self.callback, self.callback_every = callback, callback_every
        self.resets = []
        self.steps = 0

    def usage(self, t, s, labels):
        """Count the codes of stage s at step t; return the batch counts."""
        counts = np.bincount(labels, minlength=self.K)
        slot = (t - 1) % self.window
        if t > self.window:
            self.window_counts[s] -= np.bincount(self.ring[slot, s], minlength=self.K)
        self.ring[slot, s] = labels
        self.window_counts[s] += counts
        self.last_used[s, counts > 0] = t
        return counts

    def stale(self, t, s, after):
        """Codes of stage s unused for ``after`` steps at step t."""
        return np.flatnonzero(t - self.last_used[s] >= after)

    def reset(self, t, s, codes):
        self.last_used[s, codes] = t
        self.resets.append(ResetEvent(t, s, tuple(int(k) for k in codes)))

    def record(self, t, stage_loss, stage_mse, batch_counts, n_resets):
        h = self.history
        h["step"].append(t)
        h["loss"].append(float(sum(stage_loss)))
        h["mse"].append(float(stage_mse[-1]))
        for s in range(self.S):
            wc = self.window_counts[s]
            values = {
                "loss": float(stage_loss[s]),
                "mse": float(stage_mse[s]),
                "batch_perplexity": float(2.0 ** entropy_of_counts(batch_counts[s])),
                "epoch_perplexity": float(2.0 ** entropy_of_counts(wc)),
                "active_codes": int(np.count_nonzero(batch_counts[s])),
                "dead_codes": int(self.K - np.count_nonzero(wc)),
                "resets": int(n_resets[s]),
            }
            for k, v in values.items():
                h[history_key(k, s)].append(v)
        self.steps = t
        if t % self.snapshot_every == 0:
            self.snapshot(t)
        if self.callback is not None and t % self.callback_every == 0:
            self.callback(t, self.last_record())

    def snapshot(self, t):
        if not self.snapshot_steps or self.snapshot_steps[-1] != t:
            self.snapshot_steps.append(t)
            self.snapshot_counts.append(self.window_counts.copy())

    def last_record(self):
        return {k: v[-1] for k, v in self.history.items()}

    def finish(self):
        """Snapshot and report the last step, if not already done."""
        t = self.steps
        if t == 0:
            return
        self.snapshot(t)
        if self.callback is not None and t % self.callback_every != 0:
            self.callback(t, self.last_record())

    def usage_snapshots(self):
        if self.snapshot_counts:
            counts = np.stack(self.snapshot_counts)
        else:
            counts = np.zeros((0, self.S, self.K), dtype=np.int64)
        return {"step": list(self.snapshot_steps), "counts": counts}



class Batches:
    """Minibatch indices: shuffled epochs, each row once per epoch."""

    def __init__(self, n, batch, rng):
        self.n, self.batch, self.rng = n, batch, rng
        self.queue = np.empty(0, dtype=np.int64)

    def next(self):
        if self.queue.size < self.batch:
            self.queue = np.concatenate([self.queue, self.rng.permutation(self.n)])
        idx, self.queue = self.queue[: self.batch], self.queue[self.batch :]
        return idx
