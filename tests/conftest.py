"""Shared test set-up: fixed seeds, per-test float64, markers.

JAX runs in float32 by default; tests that need float64 (exact-answer comparisons at
tight tolerances) use the ``x64`` fixture, which enables it for that test only.
"""

import numpy as np
import pytest
import jax


@pytest.fixture
def key():
    """A fixed PRNG key: every statistical test is seeded."""
    return jax.random.key(20261126)


@pytest.fixture
def rng():
    return np.random.default_rng(20261126)


@pytest.fixture
def x64():
    """Enable float64 for one test."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)


def pytest_collection_modifyitems(config, items):
    try:
        import torch  # noqa: F401
        has_torch = True
    except ImportError:
        has_torch = False
    has_gpu = any(d.platform == "gpu" for d in jax.devices())
    for item in items:
        if "torch" in item.keywords and not has_torch:
            item.add_marker(pytest.mark.skip(reason="needs the torch extra"))
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(pytest.mark.skip(reason="needs a GPU"))
