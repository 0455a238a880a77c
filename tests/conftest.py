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


@pytest.fixture
def interrupt_saves(monkeypatch):
    """``interrupt_saves(after)``: probinfer's checkpoint writer raises KeyboardInterrupt (a
    Ctrl-C arriving while the next chunk runs) after ``after`` saves; ``monkeypatch.undo()``
    puts the writer back."""
    from probinfer import _checkpoint
    save = _checkpoint.save

    def install(after):
        saves = [0]

        def interrupted(*args, **kwargs):
            if saves[0] == after:
                raise KeyboardInterrupt
            save(*args, **kwargs)
            saves[0] += 1

        monkeypatch.setattr(_checkpoint, "save", interrupted)

    return install


@pytest.fixture
def assert_same_run():
    """Two runs' results equal to the bit: samples, weights, evidence and every trace."""
    def check(a, b):
        leaves = [jax.tree_util.tree_leaves((r.samples, r.log_weights, r.log_evidence, r.info))
                  for r in (a, b)]
        assert len(leaves[0]) == len(leaves[1])
        for x, y in zip(*leaves):
            np.testing.assert_array_equal(x, y)
    return check
