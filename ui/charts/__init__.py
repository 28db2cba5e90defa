"""Every plotly figure of the app. Builders take plain data (a vqcore report,
arrays) and return a ``go.Figure`` with the shared ``vqlens`` template, the
title a person (and a test) looks for, axis titles and hover text.

Titles are fixed strings (see ``TITLES``); explanations go in the subtitle.

One module per page (``home``, ``quantize``, ``compare``, ``map``, ``learn``, ``training``,
``semantic_ids``) and the shared ``theme``; every builder and constant is importable from here.
"""

from .compare import (  # noqa: F401
    METHOD_ORDER,
    compare_figures,
    entropy_side_by_side,
    error_vs_encode_cost,
    error_vs_encode_time,
    error_vs_stages,
    fit_time,
    method_color,
    rate_distortion,
    recall_vs_bits,
)
from .home import (  # noqa: F401
    norm_histogram,
    pca_spectrum,
)
from .learn import (  # noqa: F401
    toy_partition,
)
from .map import (  # noqa: F401
    HIGHLIGHT,
    code_map,
)
from .quantize import (  # noqa: F401
    codebook_collapse,
    codebook_usage,
    entropy_per_position,
    error_per_dimension,
    mutual_information,
    quantize_figures,
    residual_variance,
)
from .semantic_ids import (  # noqa: F401
    SEMANTIC_TITLES,
    code_set_agreement,
    code_tree,
    collision_groups_chart,
    coverage_per_depth,
    prefix_collisions,
    semantic_usage_figures,
)
from .theme import (  # noqa: F401
    COLORS,
    COMPARE_TITLES,
    DEAD,
    FONT,
    IDEAL,
    OTHER,
    QUANTIZE_TITLES,
    TEMPLATE,
    TITLES,
    cyclic_scale,
    figure,
    fmt_bits,
    pio,
    title_of,
    wrap,
)
from .training import (  # noqa: F401
    TRAINER_NAMES,
    TRAINING_TITLES,
    training_codes,
    training_description,
    training_figures,
    training_labels,
    training_loss,
    training_perplexity,
    training_snapshot_steps,
    training_usage,
    training_usage_at,
)
