"""Shared pytest setup (the repository root is importable through pyproject.toml's pythonpath)."""

import sys

import pytest


@pytest.fixture(autouse=True)
def _clear_streamlit_cache():
    """Every test starts and ends with empty st.cache_data (AppTests share the process's caches)."""
    if "streamlit" not in sys.modules:
        yield
        return
    import streamlit as st

    st.cache_data.clear()
    yield
    st.cache_data.clear()


@pytest.fixture(scope="session")
def toy():
    """A small correlated Gaussian data set (2000 x 16) for page tests."""
    from vqcore.datasets import make_gaussian

    return make_gaussian(2000, 16, correlated=True, rho=0.8, random_state=0)
