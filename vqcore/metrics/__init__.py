"""Quality metrics of vector quantizers, as defined in DESIGN.md ("Metric definitions").

Every function here is plain numpy on arrays a quantizer produced (or a user
uploaded): ``codes`` of shape (n, M), one integer column per codebook, and
float arrays of shape (n, d). Nothing here draws or caches; pages call these
through ``ui/`` and plot what they return.

Definitions (one meaning everywhere):

- usage of codebook m: counts of each code over the evaluated set; dead codes
  have count 0; dead fraction = dead / K_m.
- entropy ``H_m = -sum p log2 p`` bits (max ``log2 K_m``); perplexity ``2^H_m``;
  utilisation ``2^H_m / K_m``.
- mutual information between positions a and b in bits, from their joint code
  histogram, with a shuffled baseline (the same estimate for independent
  positions with the same code frequencies at this n); effective bits =
  entropy of the whole code tuple (at most ``log2 n``), against allocated
  bits ``sum_m log2 K_m``.
- reconstruction error ``mse = mean_i ||x_i - x_hat_i||^2`` (summed over
  dimensions); relative error ``mse / mean_i ||x_i - mean(X)||^2``;
  SNR ``-10 log10(relative)`` dB.
- recall@R: fraction of queries whose exact nearest neighbour is among the R
  nearest reconstructions by asymmetric distance (queries are not quantized).
- collision rate ``1 - (#distinct code tuples / n)``; prefix collision rate
  uses the first m+1 positions only.

``codebook_size`` is either one int K for every position or a sequence of M
ints (uploaded codes may use a different K per position); ``None`` infers
``max + 1`` per column, which undercounts dead codes at the top of a codebook
that the evaluated set never used.

The package has one module per idea: :mod:`~vqcore.metrics.usage`,
:mod:`~vqcore.metrics.information`, :mod:`~vqcore.metrics.reconstruction`,
:mod:`~vqcore.metrics.recall` and :mod:`~vqcore.metrics.collisions`; every name
is importable from ``vqcore.metrics`` itself. Validation is
:func:`vqcore._validation.check_codes` / ``check_sizes``, shared with the
quantizers and :mod:`vqcore.semantic_ids`.
"""

# the public API (__all__), and, as explicit re-exports (``name as name``), the shared pieces that
# vqcore's own modules (partials, semantic_ids, report, training) and the tests use
from .._validation import check_codes as check_codes
from .._validation import check_sizes as check_sizes
from ._shared import check_float_pair as check_float_pair
from ._shared import code_bits as code_bits
from ._shared import entropy_of_counts as entropy_of_counts
from ._shared import joint_counts as joint_counts
from ._shared import pack_rows as pack_rows
from ._shared import sorted_rows as sorted_rows
from ._shared import unpack_key as unpack_key
from .collisions import birthday_collision_rate, collision_groups, collision_rate, prefix_collision_rates
from .collisions import distinct_prefixes as distinct_prefixes
from .information import allocated_bits, effective_bits, mutual_information
from .information import independent_joint as independent_joint
from .information import mi_baseline_from_counts as mi_baseline_from_counts
from .information import mi_from_entropies as mi_from_entropies
from .information import mutual_information_baseline as mutual_information_baseline
from .recall import check_cutoffs as check_cutoffs
from .recall import check_ground_truth as check_ground_truth
from .recall import exact_neighbors, recall_at
from .reconstruction import reconstruction_error
from .usage import code_counts, usage_stats

__all__ = [
    "allocated_bits",
    "birthday_collision_rate",
    "code_counts",
    "collision_groups",
    "collision_rate",
    "effective_bits",
    "exact_neighbors",
    "mutual_information",
    "prefix_collision_rates",
    "recall_at",
    "reconstruction_error",
    "usage_stats",
]
