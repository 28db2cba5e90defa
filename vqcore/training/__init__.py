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

The package's modules: ``_config`` (:class:`TrainConfig`), ``_loop``
(:func:`train_codebook` and the trainers' loop), ``_updates`` (gradients,
SGD, Adam, EMA), ``_fsq`` (FSQ), ``_bookkeeping`` (history, usage window,
resets, minibatches) and ``_result`` (:class:`TrainingRun`).

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

from ._bookkeeping import ResetEvent
from ._config import (
    DEFAULT_LR,
    INITS,
    MAX_STAGES,
    MAX_WINDOW_STEPS,
    OPTIMIZERS,
    RUN_KEYS,
    STAGE_KEYS,
    TRAINERS,
    TrainConfig,
    history_key,
)
from ._loop import train_codebook
from ._result import TrainingRun

__all__ = [
    "DEFAULT_LR",
    "INITS",
    "MAX_STAGES",
    "MAX_WINDOW_STEPS",
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

