"""What a training run is asked to do: :class:`TrainConfig`, the names of its choices, the history keys."""

import math
import numbers
from dataclasses import dataclass

import numpy as np

from .._validation import check_choice, check_int, check_real
from ..base import MAX_CODEBOOK_SIZE
from ..exceptions import VQLensError

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



def history_key(name, stage):
    """The history key of a per-stage metric.

    >>> history_key("dead_codes", 0)
    'dead_codes/0'
    """
    return f"{name}/{stage}"



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
