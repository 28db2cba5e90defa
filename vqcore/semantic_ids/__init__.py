"""Semantic IDs: code tuples of generative recommenders, seen as a tree of prefixes.

A generative recommender in the TIGER family (Rajput et al., NeurIPS 2023)
turns each item embedding into a short tuple of codes with residual
quantization, level 0 first, and then generates those tuples token by token.
What matters is the tree the tuples make: how items spread over the first
codes, where they pile up under one prefix, which items collide on a whole
tuple, and how far all of that is from codes drawn uniformly at random.

Everything here is plain numpy on ``codes`` of shape (n_items, n_levels), row i
being item i, with optional item embeddings ``X`` (n_items, d) and item
``labels`` (texts, titles). Results are plain Python data (lists, dicts, ints,
floats), ready for a table or a plotly sunburst / treemap; nothing draws.

- :func:`validate_codes`: shape, integers, ranges against K per level,
  alignment with embeddings / labels.
- :func:`prefix_tree`: the code tree as flat node lists (``ids``,
  ``parents``, ``counts``, ...), largest branches first, the rest folded.
- :func:`prefix_collision_table`: per depth, distinct prefixes, collision rate
  against the birthday bound of uniform codes, and coverage.
- :func:`collision_groups_detail`: the largest groups of items sharing a whole
  tuple, with their labels and how far apart their embeddings are.
- :func:`items_under_prefix`: the items under one prefix and how tight they are.
- :func:`deduplicate`: TIGER's extra token that makes every tuple unique;
  :func:`export_codes` writes codes back to ``.npy`` / ``.csv`` bytes that
  :func:`vqcore.io.load_codes` reads.
- :func:`id_table`: item -> ID table (row, id, one column per level, the
  joined ID, text) as parquet or formula-safe CSV (:func:`csv_safe`);
  :func:`prefix_trie` / :func:`prefix_trie_json`: every prefix with its
  children and item count, as constrained decoding needs.
- :func:`compare_code_sets`: two code sets of the same items (a retrain, or
  the user's pipeline against a loaded model): IDs changed, agreement per
  level, items that moved between collision groups.

Per-level usage, dead codes and entropy are :func:`vqcore.metrics.usage_stats`
and :func:`vqcore.metrics.code_counts`; collision rates, collision groups and
the birthday bound are :mod:`vqcore.metrics` too, and are called from here,
not recomputed.

Distances are Euclidean (not squared), accumulated in float64.

References
----------
S. Rajput, N. Mehta, A. Singh, R. Keshavan, T. Vu, L. Heldt, L. Hong, Y. Tay,
V. Q. Tran, J. Samost, M. Kula, E. H. Chi and M. Sathiamoorthy, "Recommender
Systems with Generative Retrieval", NeurIPS 2023.

The package has one module per idea (:mod:`~vqcore.semantic_ids.tree`,
:mod:`~vqcore.semantic_ids.collisions`, :mod:`~vqcore.semantic_ids.deduplication`,
:mod:`~vqcore.semantic_ids.tables`, :mod:`~vqcore.semantic_ids.compare`); every
name is importable from ``vqcore.semantic_ids`` itself.
"""

from ._common import validate_codes
from .collisions import DEFAULT_MAX_PAIRWISE as DEFAULT_MAX_PAIRWISE  # re-exported, as before the split
from .collisions import collision_groups_detail, items_under_prefix, prefix_collision_table
from .collisions import prefix_table as prefix_table  # re-exported: ui.report_html uses it
from .compare import compare_code_sets
from .deduplication import deduplicate, export_codes
from .tables import csv_safe, id_table, prefix_trie, prefix_trie_json, semantic_id_strings
from .tree import prefix_tree

__all__ = [
    "collision_groups_detail",
    "compare_code_sets",
    "csv_safe",
    "deduplicate",
    "export_codes",
    "id_table",
    "items_under_prefix",
    "prefix_collision_table",
    "prefix_tree",
    "prefix_trie",
    "prefix_trie_json",
    "semantic_id_strings",
    "validate_codes",
]
