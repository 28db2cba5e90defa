"""vqcore: the numeric engine of VQ Lens (numpy + scikit-learn, no UI).

Quantizers share one interface (``fit``, ``encode``, ``decode``,
``codebooks_``, ``n_codebooks``, ``codebook_size``); see DESIGN.md.
"""

from ._version import __version__ as __version__  # re-exported: the one version number
from .aq import AdditiveQuantizer
from .base import BaseQuantizer
from .catalog import open_dataset
from .exceptions import DataError, VQLensError, VQLensWarning
from .export import adc_search, serialize_faiss_index, to_faiss_index
from .grvq import GeneralizedResidualQuantizer
from .kmeans import KMeansVQ, kmeans, kmeans_plusplus, warm_up
from .models import ProjectedQuantizer, check_model_data, load_quantizer
from .opq import OPQ
from .pq import ProductQuantizer
from .rq import ResidualQuantizer, beam_search_encode
from .spec import QUANTIZERS, fit_problem, format_spec, from_spec, parse_spec

__all__ = [
    "AdditiveQuantizer",
    "BaseQuantizer",
    "DataError",
    "GeneralizedResidualQuantizer",
    "KMeansVQ",
    "OPQ",
    "ProductQuantizer",
    "ProjectedQuantizer",
    "QUANTIZERS",
    "ResidualQuantizer",
    "VQLensError",
    "VQLensWarning",
    "adc_search",
    "beam_search_encode",
    "check_model_data",
    "fit_problem",
    "format_spec",
    "from_spec",
    "kmeans",
    "kmeans_plusplus",
    "load_quantizer",
    "open_dataset",
    "parse_spec",
    "serialize_faiss_index",
    "to_faiss_index",
    "warm_up",
]
