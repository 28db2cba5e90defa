"""Minibatch training of codebooks the way neural tokenizers do, in numpy.

The collapse lab: train a codebook (or each stage of a residual quantizer) on
minibatches of the data with the update rules of VQ-VAE style tokenizers, and
record per step how many codes are used, so that codebook collapse, dead
codes and dead-code resets can be watched on one's own embeddings.

There is no encoder network: the "encoder output" z is the data vector
itself, so only the codebook learns. Gradients are written out by hand.

Trainers (``TrainConfig.trainer``):

- ``"ste"``: the VQ-VAE objective (van den Oord et al. 2017),
  ``||sg[z] - e||^2 + beta ||z - sg[e]||^2``, minimised over the codebook by
  SGD or Adam. The codebook gradient of codeword k is
  ``2/B sum_{i: k_i = k} (e_k - z_i)`` (B the batch size); with a fixed
  encoder the commitment term has no gradient and only adds to the loss.
- ``"ema"``: exponential-moving-average codebook (van den Oord et al. 2017,
  appendix; Razavi et al. 2019): ``N_k <- g N_k + (1-g) n_k``,
  ``m_k <- g m_k + (1-g) sum_{i: k_i = k} z_i``, ``e_k = m_k / N~_k`` with the
  Laplace-smoothed count ``N~_k = (N_k + eps) / (N + K eps) * N``.
- ``"nsvq"``: noise substitution (Vali & Backstrom 2022): the quantized output
  is ``z_hat = z + ||z - e_k|| v / ||v||`` with ``v ~ N(0, I)``, and the loss
  ``||z - z_hat||^2`` is differentiated with respect to the codebook through
  the norm ``||z - e_k||``. With a fixed encoder and no decoder this gradient
  equals the codebook-loss gradient of ``"ste"`` exactly (``||v / ||v|| || = 1``),
  so the two differ here only by the commitment term in the reported loss;
  NSVQ's benefit, a better gradient for the *encoder*, needs an encoder.
- ``"lloyd"``: the reference: full-batch Lloyd iterations (one per step) with
  the empty-cluster repair of :mod:`vqcore.kmeans` (faiss's split rule).
- ``"fsq"``: finite scalar quantization (Mentzer et al. 2023), codebook-free:
  the data are projected on their first ``len(levels)`` principal components,
  each coordinate is bounded by ``tanh(y / a_j)`` and rounded to one of
  ``levels[j]`` equal cells of (-1, 1); the implicit codebook is the grid of
  ``prod(levels)`` level combinations, decoded as ``a_j atanh(cell centre)``
  (Mentzer et al. round ``floor(L/2) tanh``, whose two edge cells are half as
  wide; equal cells are the simplest honest grid).
  Its "training" only fits the scale ``a_j`` of each dimension (a Lloyd step
  for one scalar per dimension, on moving averages of batch statistics), so
  it shows what a fixed grid gives, not what a learned encoder would; dead
  codes are unused level combinations.

Initialisations (``TrainConfig.init``): ``"normal"`` draws every codeword
from ``N(0, init_scale^2 I)`` (``init_scale=1`` is ``torch.nn.Embedding``'s
default; on unit-norm 384-d sentence embeddings it puts codewords at norm
about 19.6, twenty times farther out than the data: the classic collapse),
``"data"`` picks K distinct data rows (residual rows for later RQ stages),
``"kmeans++"`` seeds by greedy k-means++ (:func:`vqcore.kmeans.kmeans_plusplus`)
on at most 64 K rows.

Options: dead-code reset (``reset_after=T``: a code unused for T steps is
replaced by a random vector of the current batch, as in Jukebox, Dhariwal et
al. 2020, and SoundStream, Zeghidour et al. 2021), cosine codebooks
(``cosine=True``: data and codewords L2-normalised, gradients taken through
the normalisation, codewords renormalised after every update, as in
ViT-VQGAN, Yu et al. 2022; the mse is then that of unit vectors,
``2 - 2 cos``), and ``n_stages > 1``:
a residual quantizer whose stages are trained jointly in the same steps
(stage s sees ``z - sum_{j<s} q_j``, the hard quantized outputs of the
earlier stages, as in RQ-VAE, Lee et al. 2022; NSVQ's noisy output is not
passed on, only the loss of each stage uses it).

Every run records, per step, the loss, the mse, the batch and last-epoch
perplexity, active and dead codes and reset events (:class:`TrainingRun`);
it is reproducible from its seed and can be stopped early.

References
----------
A. van den Oord, O. Vinyals and K. Kavukcuoglu, "Neural discrete
representation learning", NeurIPS 2017.
A. Razavi, A. van den Oord and O. Vinyals, "Generating diverse high-fidelity
images with VQ-VAE-2", NeurIPS 2019.
M. H. Vali and T. Backstrom, "NSVQ: Noise substitution in vector quantization
for machine learning", IEEE Access 10, 2022.
F. Mentzer, D. Minnen, E. Agustsson and M. Tschannen, "Finite scalar
quantization: VQ-VAE made simple", arXiv 2309.15505, 2023 (ICLR 2024).
P. Dhariwal et al., "Jukebox: a generative model for music", arXiv 2005.00341,
2020; N. Zeghidour et al., "SoundStream: an end-to-end neural audio codec",
IEEE/ACM TASLP 30, 2022.
J. Yu et al., "Vector-quantized image modeling with improved VQGAN", ICLR 2022.
D. Lee et al., "Autoregressive image generation using residual
quantization", CVPR 2022.
D. P. Kingma and J. Ba, "Adam: a method for stochastic optimization", ICLR 2015.
"""

import math
import numbers
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ._distances import NearestAssigner, cluster_sums, nearest, sq_norms
from ._parallel import single_blas_thread
from ._validation import (
    check_choice,
    check_data,
    check_dim,
    check_int,
    check_real,
    code_dtype,
)
from .base import MAX_CODEBOOK_SIZE
from .exceptions import DataError, VQLensError
from .kmeans import _kmeans_plusplus, _update_centroids
from .metrics import _entropy_bits, reconstruction_error, usage_stats
from .rq import beam_search_encode

__all__ = [
    "DEFAULT_LR",
    "INITS",
    "OPTIMIZERS",
    "RUN_KEYS",
    "STAGE_KEYS",
    "TRAINERS",
    "ResetEvent",
    "TrainConfig",
    "TrainingRun",
    "history_key",
    "train_codebook",
]

TRAINERS = ("ste", "ema", "nsvq", "lloyd", "fsq")
INITS = ("normal", "data", "kmeans++")
OPTIMIZERS = ("sgd", "adam")
DEFAULT_LR = {"sgd": 0.5, "adam": 1e-3}
"""Learning rate used when ``TrainConfig.lr`` is None, per optimizer."""

RUN_KEYS = ("step", "loss", "mse")
"""History keys with one value per step for the whole run."""
STAGE_KEYS = (
    "loss",
    "mse",
    "batch_perplexity",
    "epoch_perplexity",
    "active_codes",
    "dead_codes",
    "resets",
)
"""History keys with one value per step and stage, stored as ``"<key>/<stage>"``."""

MAX_STAGES = 64
MAX_WINDOW_STEPS = 1000
"""The "last epoch" usage window is capped at this many steps."""
# k-means++ seeding samples at most this many rows per code
_KMEANSPP_ROWS_PER_CODE = 64
# Lloyd trains on at most K * this many rows (faiss's rule, as KMeansVQ)
_LLOYD_ROWS_PER_CODE = 256
# FSQ scale candidates, in units of each principal component's standard deviation
_FSQ_SCALE_GRID = np.geomspace(1 / 8, 8, 49)


def history_key(name, stage):
    """The history key of a per-stage metric.

    >>> history_key("dead_codes", 0)
    'dead_codes/0'
    """
    return f"{name}/{stage}"


# --------------------------------------------------------------------------
# configuration


def _check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise VQLensError(f"{name}={value!r} should be True or False.")
    return bool(value)


def _check_fraction(name, value):
    """A float in [0, 1)."""
    value = check_real(name, value, low=0.0)
    if value >= 1.0:
        raise VQLensError(f"{name}={value} should be < 1.")
    return value


@dataclass(frozen=True)
class TrainConfig:
    """What to train and how; validated when built.

    Parameters
    ----------
    trainer : {"ste", "ema", "nsvq", "lloyd", "fsq"}, default="ste"
        Update rule (see the module docstring).
    codebook_size : int, default=256
        K codes per stage, 2 to 65536. Not used by ``"fsq"``, whose implicit
        codebook has ``prod(levels)`` codes.
    n_stages : int, default=1
        Stages of a residual quantizer trained jointly (1 = plain VQ), up to 64.
    steps : int, default=1000
        Minibatch steps (Lloyd iterations for ``"lloyd"``).
    batch_size : int, default=256
        Rows per step, at most the number of rows. ``"lloyd"`` ignores it
        (full batch).
    lr : float or None, default=None
        Learning rate of ``"ste"`` and ``"nsvq"``; None uses
        ``DEFAULT_LR[optimizer]`` (sgd 0.5, adam 1e-3). Losses are summed over
        dimensions and averaged over the batch, so SGD with ``lr <= 0.5``
        never steps past a cluster mean.
    optimizer : {"sgd", "adam"}, default="adam"
        Optimiser of ``"ste"`` and ``"nsvq"``.
    adam_betas : (float, float), default=(0.9, 0.999)
    adam_eps : float, default=1e-8
    beta : float, default=0.25
        Commitment weight (in the ``"ste"`` and ``"ema"`` loss).
    decay : float, default=0.99
        EMA decay of ``"ema"``, and of the scale statistics of ``"fsq"``.
    ema_epsilon : float, default=1e-5
        Laplace smoothing of the EMA counts.
    init : {"normal", "data", "kmeans++"}, default="data"
        Codebook initialisation (not used by ``"fsq"``).
    init_scale : float, default=1.0
        Standard deviation of the ``"normal"`` init.
    reset_after : int or None, default=None
        Replace a code unused for this many steps by a random vector of the
        current batch; None never resets. Only for ``"ste"``, ``"ema"`` and
        ``"nsvq"`` (``"lloyd"`` repairs empty clusters itself at every step).
    cosine : bool, default=False
        L2-normalise the data and the codewords; single-stage codebook
        trainers only. Codewords are renormalised after each update, and
        ``"ste"`` / ``"nsvq"`` take the gradient through the normalisation
        (its component along the codeword is dropped), which matters for
        Adam: its per-coordinate steps would otherwise turn the inward pull
        of the loss into a drift along the sphere.
    levels : tuple of int, default=(8, 5, 5, 5)
        FSQ levels per dimension (each >= 2, product <= 65536); (8, 5, 5, 5)
        gives 1000 implicit codes.
    random_state : int or None, default=0
        Seed of every random draw: the same config gives the same history.
        None draws a fresh seed, kept in ``TrainingRun.seed``.

    Examples
    --------
    >>> TrainConfig(trainer="fsq", levels=[8, 5, 5, 5]).n_codes
    1000
    >>> TrainConfig(trainer="vq")
    Traceback (most recent call last):
    ...
    vqcore.exceptions.VQLensError: trainer='vq' should be one of ['ema', 'fsq', 'lloyd', 'nsvq', 'ste'].
    """

    trainer: str = "ste"
    codebook_size: int = 256
    n_stages: int = 1
    steps: int = 1000
    batch_size: int = 256
    lr: float | None = None
    optimizer: str = "adam"
    adam_betas: tuple = (0.9, 0.999)
    adam_eps: float = 1e-8
    beta: float = 0.25
    decay: float = 0.99
    ema_epsilon: float = 1e-5
    init: str = "data"
    init_scale: float = 1.0
    reset_after: int | None = None
    cosine: bool = False
    levels: tuple = (8, 5, 5, 5)
    random_state: int | None = 0

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        check_choice("trainer", self.trainer, set(TRAINERS))
        put("codebook_size",
            check_int("codebook_size", self.codebook_size, low=2, high=MAX_CODEBOOK_SIZE))
        put("n_stages", check_int("n_stages", self.n_stages, low=1, high=MAX_STAGES))
        put("steps", check_int("steps", self.steps, low=1))
        put("batch_size", check_int("batch_size", self.batch_size, low=1))
        if self.lr is not None:
            put("lr", check_real("lr", self.lr, low=0.0, inclusive=False))
        check_choice("optimizer", self.optimizer, set(OPTIMIZERS))
        betas = self.adam_betas
        if isinstance(betas, (str, bytes)) or np.ndim(betas) != 1 or len(betas) != 2:
            raise VQLensError(f"adam_betas={betas!r} should be a pair of numbers in [0, 1).")
        put("adam_betas", tuple(_check_fraction(f"adam_betas[{i}]", b) for i, b in enumerate(betas)))
        put("adam_eps", check_real("adam_eps", self.adam_eps, low=0.0, inclusive=False))
        put("beta", check_real("beta", self.beta, low=0.0))
        put("decay", _check_fraction("decay", self.decay))
        put("ema_epsilon", check_real("ema_epsilon", self.ema_epsilon, low=0.0, inclusive=False))
        check_choice("init", self.init, set(INITS))
        put("init_scale", check_real("init_scale", self.init_scale, low=0.0, inclusive=False))
        if self.reset_after is not None:
            put("reset_after", check_int("reset_after", self.reset_after, low=1))
        put("cosine", _check_bool("cosine", self.cosine))
        put("levels", self._checked_levels())
        seed = self.random_state
        if seed is not None:
            if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
                raise VQLensError(
                    f"random_state={seed!r} should be None or an integer >= 0 (a seed, so "
                    "that the run can be replayed)."
                )
            put("random_state", int(seed))
        self._check_combination()

    def _checked_levels(self):
        levels = self.levels
        if isinstance(levels, (str, bytes)) or np.ndim(levels) != 1 or len(levels) == 0:
            raise VQLensError(
                f"levels={levels!r} should be a non-empty sequence of integers >= 2, "
                "e.g. (8, 5, 5, 5)."
            )
        levels = tuple(check_int(f"levels[{j}]", v, low=2) for j, v in enumerate(levels))
        if math.prod(levels) > MAX_CODEBOOK_SIZE:
            raise VQLensError(
                f"levels={levels} give prod(levels)={math.prod(levels)} codes; should be "
                f"<= {MAX_CODEBOOK_SIZE}."
            )
        return levels

    def _check_combination(self):
        if self.trainer == "fsq":
            if self.n_stages != 1:
                raise VQLensError(
                    f"n_stages={self.n_stages} with trainer='fsq': FSQ here has one stage."
                )
            if self.cosine:
                raise VQLensError("cosine=True with trainer='fsq': FSQ has no codebook to normalise.")
        if self.cosine and self.n_stages != 1:
            raise VQLensError(
                f"cosine=True with n_stages={self.n_stages}: residuals are not unit-norm, so "
                "cosine codebooks are for a single stage."
            )
        if self.reset_after is not None and self.trainer in ("lloyd", "fsq"):
            why = (
                "Lloyd repairs empty clusters itself at every step"
                if self.trainer == "lloyd"
                else "FSQ has no codewords to reset"
            )
            raise VQLensError(
                f"reset_after={self.reset_after} with trainer={self.trainer!r}: {why}; "
                "use reset_after=None."
            )

    @property
    def learning_rate(self):
        """``lr``, or the optimizer's default when ``lr`` is None."""
        return DEFAULT_LR[self.optimizer] if self.lr is None else self.lr

    @property
    def n_codes(self):
        """Codes per stage: ``prod(levels)`` for FSQ, else ``codebook_size``."""
        return math.prod(self.levels) if self.trainer == "fsq" else self.codebook_size


# --------------------------------------------------------------------------
# the result


class ResetEvent(NamedTuple):
    """Codes of one stage replaced after one step (dead-code reset or Lloyd repair)."""

    step: int
    stage: int
    codes: tuple

    @property
    def n_codes(self):
        return len(self.codes)


@dataclass
class _FSQMap:
    """The fitted FSQ map: x -> y = (x - mean) @ components -> level indices -> x_hat."""

    mean: np.ndarray  # (d,)
    components: np.ndarray  # (d, L), orthonormal columns
    scales: np.ndarray  # (L,) a_j
    levels: tuple

    def codes(self, X):
        idx = _fsq_level_indices((X - self.mean) @ self.components, self.scales, self.levels)
        return _fsq_pack(idx, self.levels)

    def codebook(self):
        """All ``prod(levels)`` reconstructions, (K, d) float32 (K * d * 4 bytes)."""
        K = math.prod(self.levels)
        Y = _fsq_values(_fsq_unpack(np.arange(K), self.levels), self.scales, self.levels)
        return (Y @ self.components.T + self.mean).astype(np.float32)


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
    _fsq: _FSQMap = field(default=None, repr=False)

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
        return _l2_normalize(X) if self.config.cosine else X

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
        if codes.ndim != 2 or codes.shape[1] != self.n_stages or codes.dtype.kind not in "iu":
            raise DataError(
                f"codes should be integers of shape (n, {self.n_stages}), got "
                f"{codes.dtype} of shape {codes.shape}."
            )
        if codes.size and (codes.min() < 0 or codes.max() >= self.codebook_size):
            raise DataError(f"codes should lie in [0, {self.codebook_size - 1}].")
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
            stage_mse.append(_mean_sq(Xp - partial))
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


# --------------------------------------------------------------------------
# small numeric pieces


def _l2_normalize(A):
    norms = np.sqrt(np.einsum("...i,...i->...", A, A))
    return (A / np.maximum(norms, np.finfo(A.dtype).tiny)[..., None]).astype(A.dtype, copy=False)


def _mean_sq(R):
    return float(np.einsum("ij,ij->", R, R, dtype=np.float64) / R.shape[0])


def _scatter(Z, labels, K, weights=None):
    """Per code k: the (weighted) count and sum of the rows of Z assigned to k.

    One sparse (K, B) one-hot product (:func:`vqcore._distances.cluster_sums`).
    """
    B = Z.shape[0]
    w = np.ones(B, dtype=Z.dtype) if weights is None else weights.astype(Z.dtype, copy=False)
    return np.bincount(labels, weights=w, minlength=K), cluster_sums(labels, Z, K, w)


def _ste_grad(Z, C, labels):
    """Gradient of ``mean_i ||sg[z_i] - e_{k_i}||^2`` with respect to the codebook C."""
    B, K = Z.shape[0], C.shape[0]
    counts, sums = _scatter(Z, labels, K)
    return (2.0 / B) * (counts[:, None] * C - sums)


def _nsvq_forward(Z, C, labels, V):
    """NSVQ output ``z_hat = z + ||z - e_k|| v / ||v||``, the norms ``||z - e_k||`` and ``v / ||v||``."""
    U = V / np.sqrt(sq_norms(V))[:, None]
    dist = np.sqrt(np.maximum(sq_norms(Z - C[labels]), 0.0))
    return Z + dist[:, None] * U, dist, U


def _nsvq_loss_grad(Z, C, labels, V):
    """NSVQ loss ``mean_i ||z_i - z_hat_i||^2`` and its gradient in C (labels and V fixed).

    Chain rule through the norm ``n_i = ||z_i - e_k||``:
    ``dL/de_k = sum_{i: k_i = k} (2/B) <z_hat_i - z_i, u_i> (e_k - z_i) / n_i``,
    with ``u_i = v_i / ||v_i||`` (0 where ``n_i = 0``, a subgradient).

    Returns
    -------
    loss : float
    grad : ndarray of shape (K, d)
    """
    B, K = Z.shape[0], C.shape[0]
    Z_hat, dist, U = _nsvq_forward(Z, C, labels, V)
    D = Z_hat - Z
    loss = float(np.einsum("ij,ij->", D, D, dtype=np.float64) / B)
    dL_dn = (2.0 / B) * np.einsum("ij,ij->i", D, U)
    coef = np.divide(dL_dn, dist, out=np.zeros_like(dist), where=dist > 0)
    wsum, wz = _scatter(Z, labels, K, coef)
    return loss, wsum[:, None] * C - wz


class _Adam:
    """Adam (Kingma & Ba 2015) on one (K, d) codebook; moments of reset codes are zeroed."""

    def __init__(self, shape, lr, betas, eps):
        self.m = np.zeros(shape)
        self.v = np.zeros(shape)
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.t = 0

    def step(self, C, grad):
        self.t += 1
        self.m *= self.b1
        self.m += (1 - self.b1) * grad
        self.v *= self.b2
        self.v += (1 - self.b2) * grad * grad
        m_hat = self.m / (1 - self.b1**self.t)
        v_hat = self.v / (1 - self.b2**self.t)
        C -= (self.lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(C.dtype)

    def forget(self, codes):
        self.m[codes] = 0.0
        self.v[codes] = 0.0


class _SGD:
    def __init__(self, lr):
        self.lr = lr

    def step(self, C, grad):
        C -= (self.lr * grad).astype(C.dtype)

    def forget(self, codes):
        pass


class _EMA:
    """Moving averages of the counts N_k and sums m_k of one codebook (Razavi et al. 2019).

    Starts as if every code had had its fair share ``B / K`` of each batch at
    its initial position (so that ``e_k = m_k / N_k`` is the initial
    codeword); an unused code keeps its position while ``N_k`` dominates the
    smoothing epsilon, then shrinks towards the origin.
    """

    def __init__(self, C, batch_size, decay, eps):
        K = C.shape[0]
        self.fair = batch_size / K
        self.N = np.full(K, self.fair)
        self.M = self.fair * C.astype(np.float64)
        self.decay, self.eps = decay, eps

    def update(self, C, Z, labels):
        K = C.shape[0]
        counts, sums = _scatter(Z, labels, K)
        g = self.decay
        self.N *= g
        self.N += (1 - g) * counts
        self.M *= g
        self.M += (1 - g) * sums
        total = self.N.sum()
        smoothed = (self.N + self.eps) / (total + K * self.eps) * total
        C[:] = self.M / smoothed[:, None]

    def restart(self, C, codes):
        self.N[codes] = self.fair
        self.M[codes] = self.fair * C[codes]


# --------------------------------------------------------------------------
# FSQ pieces


def _fsq_grid(L):
    """Centres of L equal cells of (-1, 1)."""
    return (2.0 * np.arange(L) + 1.0 - L) / L


def _fsq_level_indices(Y, scales, levels):
    """Cell of ``tanh(y_j / a_j)`` among ``levels[j]`` equal cells of (-1, 1), int64.

    Y and scales broadcast over leading axes; the last axis is the dimension.
    """
    U = np.tanh(Y / scales)
    L = np.asarray(levels)
    return np.clip(np.floor((U + 1.0) * L / 2.0), 0, L - 1).astype(np.int64)


def _fsq_values(idx, scales, levels):
    """Reconstructed coordinates ``a_j * atanh(centre of cell i_j)``, float64.

    idx and scales broadcast over leading axes; the last axis is the dimension.
    """
    table = np.zeros((len(levels), max(levels)))
    for j, L in enumerate(levels):  # a loop over the few dimensions, not over items
        table[j, :L] = np.arctanh(_fsq_grid(L))
    return table[np.arange(len(levels)), idx] * scales


def _fsq_basis(levels):
    return np.cumprod((1,) + tuple(levels[:-1])).astype(np.int64)


def _fsq_pack(idx, levels):
    """Mixed-radix code of the level indices (dimension 0 least significant, as Mentzer et al.)."""
    return idx @ _fsq_basis(levels)


def _fsq_unpack(codes, levels):
    codes = np.asarray(codes, dtype=np.int64).reshape(-1)
    return (codes[:, None] // _fsq_basis(levels)) % np.asarray(levels)


# --------------------------------------------------------------------------
# per-step bookkeeping


class _Recorder:
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
                "batch_perplexity": float(2.0 ** _entropy_bits(batch_counts[s])),
                "epoch_perplexity": float(2.0 ** _entropy_bits(wc)),
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


class _Batches:
    """Minibatch indices: shuffled epochs, each row once per epoch."""

    def __init__(self, n, batch, rng):
        self.n, self.batch, self.rng = n, batch, rng
        self.queue = np.empty(0, dtype=np.int64)

    def next(self):
        if self.queue.size < self.batch:
            self.queue = np.concatenate([self.queue, self.rng.permutation(self.n)])
        idx, self.queue = self.queue[: self.batch], self.queue[self.batch :]
        return idx


# --------------------------------------------------------------------------
# public entry point


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
        X = _l2_normalize(X)

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
    rec = _Recorder(config.n_stages, K, batch, window, snapshot_every, callback, callback_every)

    start = time.perf_counter()
    if config.trainer == "fsq":
        fsq, stopped = _train_fsq(Xt, config, rng, rec, should_stop)
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


# --------------------------------------------------------------------------
# the trainers


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
            C[s] = R if config.init == "data" else _kmeans_plusplus(R, K, rng)
    if config.cosine:
        C = _l2_normalize(C)
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
        batches = _Batches(X.shape[0], config.batch_size, rng)
    if trainer in ("ste", "nsvq"):
        if config.optimizer == "adam":
            opts = [_Adam(C[s].shape, config.learning_rate, config.adam_betas, config.adam_eps)
                    for s in range(S)]
        else:
            opts = [_SGD(config.learning_rate) for _ in range(S)]
    elif trainer == "ema":
        emas = [_EMA(C[s], config.batch_size, config.decay, config.ema_epsilon) for s in range(S)]

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
            err = _mean_sq(R_next)
            stage_mse.append(err)
            # update stage s from its input R (its forward pass used the old codebook)
            if trainer in ("ste", "nsvq"):
                if trainer == "ste":
                    stage_loss.append((1.0 + config.beta) * err)
                    grad = _ste_grad(R, Cs, labels)
                else:
                    V = rng.standard_normal(R.shape).astype(R.dtype)
                    loss, grad = _nsvq_loss_grad(R, Cs, labels, V)
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
                C[s], repairs = _update_centroids(R, labels, K, Cs, rng)
                if repairs:
                    rec.reset(t, s, empty[:repairs])
                    n_resets[s] = repairs
            if config.cosine:
                C[s] = _l2_normalize(C[s])
            if config.reset_after is not None:
                stale = rec.stale(t, s, config.reset_after)
                if stale.size:
                    B = R.shape[0]
                    new = R[rng.choice(B, size=stale.size, replace=stale.size > B)]
                    C[s][stale] = _l2_normalize(new) if config.cosine else new
                    if trainer == "ema":
                        emas[s].restart(C[s], stale)
                    else:
                        opts[s].forget(stale)
                    rec.reset(t, s, stale)
                    n_resets[s] = int(stale.size)
            R = R_next
        rec.record(t, stage_loss, stage_mse, batch_counts, n_resets)
    return C, False


def _train_fsq(X, config, rng, rec, should_stop):
    """FSQ on the first principal components, fitting only the per-dimension scale.

    The error of a fixed grid on the principal coordinates separates over
    dimensions, so each scale ``a_j`` is fitted on its own: a stochastic grid
    search over ``_FSQ_SCALE_GRID`` times the component's standard deviation,
    keeping a moving average (decay ``config.decay``) of each candidate's
    batch error and using the best one. Returns ``(fsq_map, stopped)``.
    """
    levels = config.levels
    L = len(levels)
    mean = X.mean(axis=0, dtype=np.float64)
    Xc = X - mean.astype(X.dtype)
    with single_blas_thread():
        evals, evecs = np.linalg.eigh((Xc.T @ Xc).astype(np.float64) / X.shape[0])
    order = np.argsort(evals)[::-1][:L]
    P = evecs[:, order]
    std = np.sqrt(np.maximum(evals[order], 0.0)) + 1e-12
    candidates = _FSQ_SCALE_GRID[:, None] * std  # (n_candidates, L)
    fsq = _FSQMap(mean, P, std.copy(), levels)
    avg_err = np.zeros(candidates.shape)
    g = config.decay
    batches = _Batches(X.shape[0], config.batch_size, rng)
    for t in range(1, config.steps + 1):
        if should_stop is not None and should_stop():
            return fsq, True
        Z = X[batches.next()].astype(np.float64)
        Y = (Z - mean) @ P
        idx = _fsq_level_indices(Y, fsq.scales, levels)
        counts = rec.usage(t, 0, _fsq_pack(idx, levels))
        err = _mean_sq(Z - (_fsq_values(idx, fsq.scales, levels) @ P.T + mean))
        # batch error of every candidate scale, per dimension: (n_candidates, L)
        A = candidates[:, None, :]
        cand_err = ((Y - _fsq_values(_fsq_level_indices(Y, A, levels), A, levels)) ** 2).sum(axis=1)
        avg_err = g * avg_err + (1 - g) * cand_err
        fsq.scales = candidates[np.argmin(avg_err, axis=0), np.arange(L)]
        rec.record(t, [err], [err], [counts], [0])
    return fsq, False
