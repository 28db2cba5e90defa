"""vqlens: the command line of VQ Lens; the numeric engine is :mod:`vqcore`.

``vqlens app`` starts the Streamlit app; every other command is
``vqcore``'s own (``python -m vqcore``), see :mod:`vqlens.cli`.
"""
