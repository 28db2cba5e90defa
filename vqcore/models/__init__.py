"""Trained models in: a tokenizer trained elsewhere as a fitted vqcore quantizer.

:func:`load_quantizer` reads ``.safetensors``, ``.npz`` / ``.npy`` codebooks
and PyTorch ``.pt`` / ``.pth`` / ``.ckpt`` files (without torch, and without
running anything the pickle names: :mod:`vqcore.models._torchzip`),
recognises the quantizer among the tensors (:mod:`vqcore.models.layouts`) and
returns a fitted quantizer (:func:`vqcore.models.quantizer.fitted`) whose
codes are the model's own. :func:`check_model_data` says whether loaded data
and codes fit the model.
"""

from .load import MODEL_EXTENSIONS, baseline_specs, check_model_data, load_quantizer
from .native import save_codebooks
from .quantizer import ProjectedQuantizer

__all__ = ["MODEL_EXTENSIONS", "ProjectedQuantizer", "baseline_specs", "check_model_data", "load_quantizer",
           "save_codebooks"]
