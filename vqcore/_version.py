"""The version of VQ Lens (the ``vqcore`` library and the ``vqlens`` app), in one place.

``pyproject.toml`` reads it from here (``[tool.setuptools.dynamic]``) and
``vqcore.__version__`` and ``vqlens --version`` print it.
"""

__version__ = "0.2.0.dev0"
