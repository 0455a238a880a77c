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


@pytest.fixture
def run_on_virtual_devices():
    """``run(script, devices=8)``: run a Python script in a fresh process with that many
    virtual CPU devices (the device count is fixed when JAX starts, and this process has
    started it) and return the JSON it prints after ``RESULT``."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]

    def run(script, devices=8):
        env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(root),
                   XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
        proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        line = [out for out in proc.stdout.splitlines() if out.startswith("RESULT")][-1]
        return json.loads(line[len("RESULT"):])

    return run
