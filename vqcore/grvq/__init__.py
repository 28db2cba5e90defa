"""Generalized residual vector quantization (GRVQ).

RQ learns codebook m once, on the residuals of stages 0..m-1, and never
revisits it. GRVQ keeps all M codebooks and improves them in turn: codebook m
is refitted on the *intermediate set* ``x - sum_{j != m} c_j(x)`` (what is left
once every other codebook's contribution is removed), the data are re-encoded
by beam search, and so on around the codebooks for several passes. One pass
from all-zero codebooks with a beam of 1 is plain RQ.

References
----------
S. Liu, J. Shao and H. Lu, "Generalized residual vector quantization for large
scale data", ICME 2015 (arXiv:1609.05345): the alternation, the transition
clustering (k-means in PCA space on a growing number of dimensions), the
multi-path (beam) encoding with the codebooks in descending order of variance,
and the three ways of handling the norm term of fast Euclidean search.
T. Zhang, C. Du and J. Wang, "Composite quantization for approximate nearest
neighbor search", ICML 2014: the constant inter-codebook term that
``norm="regularized"`` asks for.

The package: :mod:`~vqcore.grvq.quantizer` (the estimator and its fit),
:mod:`~vqcore.grvq.norms` (the norm options) and :mod:`~vqcore.grvq.encoders`
(the penalised beam search); every name is importable from ``vqcore.grvq``.
"""

from .encoders import codebook_variances, penalised_beam_search, start_state
from .norms import NORMS, NormTermMixin
from .quantizer import GeneralizedResidualQuantizer

__all__ = [
    "NORMS",
    "GeneralizedResidualQuantizer",
    "NormTermMixin",
    "codebook_variances",
    "penalised_beam_search",
    "start_state",
]
