"""What a training run learned and recorded: :class:`TrainingRun` (encode, decode, evaluate)."""

from dataclasses import dataclass, field

import numpy as np

from .._distances import nearest
from .._validation import check_codes, check_data, check_dim, code_dtype
from ..exceptions import DataError, VQLensError
from ..metrics import reconstruction_error, usage_stats
from ..rq import beam_search_encode
from ._config import STAGE_KEYS, TrainConfig, history_key
from ._fsq import FSQMap
from ._updates import l2_normalize, mean_sq


@dataclass
class TrainingRun:
    """What a training run learned and recorded, as plain data.

    Attributes
    ----------
    config : TrainConfig
    seed : int
        The seed actually used (``config.random_state``, or the fresh one).
    codebooks : ndarray of shape (n_stages, K, d), float32
        The codebooks at the end of the run; for ``"fsq"`` the implicit
        codebook of all ``prod(levels)`` level combinations, shape (1, K, d).
    history : dict of str -> list
        Equal-length lists of plain ints and floats, one entry per step run
        (step t is the forward pass of the t-th minibatch with the codebook
        after t-1 updates, and the resets done after update t).
        Run keys (``RUN_KEYS``):

        - ``step``: 1, 2, ...
        - ``loss``: the trainer's objective on the batch, summed over stages:
          ste ``(1 + beta) ||r_s - e||^2`` (codebook + commitment), ema
          ``beta ||r_s - e||^2`` (the commitment only: the codebook moves by
          EMA), nsvq ``||r_s - r_hat_s||^2``, lloyd and fsq the mse;
        - ``mse``: batch mean of ``||z - sum_s q_s||^2`` (summed over dims).

        Per-stage keys ``"<key>/<s>"``, s = 0 .. n_stages-1 (``STAGE_KEYS``;
        :func:`history_key`; :meth:`stage_history` stacks the stages):

        - ``loss/s``: stage s's part of the loss;
        - ``mse/s``: batch error after stages 0..s (the last one is ``mse``);
        - ``batch_perplexity/s``: ``2^H`` of the stage's codes in the batch;
        - ``epoch_perplexity/s``: ``2^H`` of its codes over the last epoch
          (the last ``window_steps`` steps; fewer at the start);
        - ``active_codes/s``: distinct codes in the batch;
        - ``dead_codes/s``: codes unused over the last epoch;
        - ``resets/s``: codes reset (lloyd: repaired) after the step.
    resets : list of ResetEvent
        ``(step, stage, codes)`` of every reset or repair, in order.
    usage_snapshots : dict
        ``"step"``: list of int; ``"counts"``: ndarray of shape
        (n_snapshots, n_stages, K), int64: the code counts over the last epoch
        at those steps (a usage histogram over time).
    stopped_early : bool
        True when ``should_stop`` ended the run before ``config.steps``.
    steps_run : int
    window_steps : int
        Steps in the "last epoch" window: ``ceil(n_train / batch_size)``, at
        most ``MAX_WINDOW_STEPS``; 1 for lloyd (every step sees all rows).
    n_train : int
        Rows trained on (lloyd subsamples to ``K * 256`` rows, as KMeansVQ).
    n_features : int
    final : dict
        :meth:`evaluate` on the whole X at the end of the run.
    seconds : float
        Wall time of the training loop (without the final evaluation).
    """

    config: TrainConfig
    seed: int
    codebooks: np.ndarray
    history: dict
    resets: list
    usage_snapshots: dict
    stopped_early: bool
    steps_run: int
    window_steps: int
    n_train: int
    n_features: int
    final: dict = field(default_factory=dict)
    seconds: float = 0.0
    _fsq: FSQMap = field(default=None, repr=False)

    def __repr__(self):
        c = self.config
        mse = self.final.get("mse")
        return (
            f"TrainingRun(trainer={c.trainer!r}, init={c.init!r}, codebooks={self.codebooks.shape}, "
            f"steps_run={self.steps_run}/{c.steps}, stopped_early={self.stopped_early}, "
            f"resets={sum(e.n_codes for e in self.resets)}, "
            f"final_mse={'n/a' if mse is None else f'{mse:.4g}'}, "
            f"final_dead_codes={self.final.get('dead_codes')})"
        )

    @property
    def n_stages(self):
        return self.codebooks.shape[0]

    @property
    def codebook_size(self):
        return self.codebooks.shape[1]

    def stage_history(self, name):
        """``history["<name>/<s>"]`` of every stage s, as an array of shape (steps_run, n_stages)."""
        if name not in STAGE_KEYS:
            raise VQLensError(f"name={name!r} should be one of {list(STAGE_KEYS)}.")
        cols = [self.history[history_key(name, s)] for s in range(self.n_stages)]
        return np.array(cols).reshape(self.n_stages, -1).T

    def _prepare(self, X):
        X = check_data(X, min_rows=0)
        check_dim(X, self.n_features)
        return l2_normalize(X) if self.config.cosine else X

    def encode(self, X):
        """Codes of X, shape (n, n_stages), by greedy residual encoding (beam 1).

        With ``cosine=True`` X is L2-normalised first.
        """
        return self._encode(self._prepare(X))

    def _encode(self, X):
        dtype = code_dtype(self.codebook_size)
        if X.shape[0] == 0:
            return np.empty((0, self.n_stages), dtype=dtype)
        if self._fsq is not None:
            codes = self._fsq.codes(X)[:, None]
        elif self.n_stages == 1:
            codes = nearest(X, self.codebooks[0])[0][:, None]
        else:
            codes = beam_search_encode(X, self.codebooks, 1)
        return codes.astype(dtype, copy=False)

    def decode(self, codes):
        """Reconstruction ``sum_s codebooks[s][codes[:, s]]``, float32 of shape (n, d)."""
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != self.n_stages:
            raise DataError(f"codes should have shape (n, {self.n_stages}), got shape {codes.shape}.")
        codes, _ = check_codes(codes, self.codebook_size, min_rows=0)
        codes = codes.astype(np.intp)
        X_hat = np.zeros((codes.shape[0], self.n_features), dtype=np.float32)
        for s in range(self.n_stages):
            X_hat += self.codebooks[s][codes[:, s]]
        return X_hat

    def evaluate(self, X):
        """Error and code usage on X with the learned codebooks (via vqcore.metrics).

        Returns
        -------
        metrics : dict
            ``n`` (rows); ``mse``, ``relative``, ``snr_db`` from
            :func:`vqcore.metrics.reconstruction_error`; ``stage_mse``: list
            of the error after stages 0..s; and lists with one entry per
            stage from :func:`vqcore.metrics.usage_stats`: ``perplexity``,
            ``utilisation``, ``dead_codes``, ``dead_fraction``. With
            ``cosine=True`` X is L2-normalised first.
        """
        Xp = self._prepare(X)
        codes = self._encode(Xp)
        X_hat = self.decode(codes)
        err = reconstruction_error(Xp, X_hat)
        stage_mse = []
        partial = np.zeros_like(Xp)
        for s in range(self.n_stages - 1):
            partial += self.codebooks[s][codes[:, s].astype(np.intp)]
            stage_mse.append(mean_sq(Xp - partial))
        stage_mse.append(err["mse"])
        usage = usage_stats(codes, self.codebook_size)
        return {
            "n": int(Xp.shape[0]),
            "mse": err["mse"],
            "relative": err["relative"],
            "snr_db": err["snr_db"],
            "stage_mse": stage_mse,
            "perplexity": usage["perplexity"].tolist(),
            "utilisation": usage["utilisation"].tolist(),
            "dead_codes": usage["dead"].tolist(),
            "dead_fraction": usage["dead_fraction"].tolist(),
        }
