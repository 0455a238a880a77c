"""Tempered SMC scaled out: ``mesh=`` (8 virtual CPU devices) and ``checkpoint=`` /
``resume_from=`` give the result of the plain run with the same key.

The device count is fixed when JAX starts (``XLA_FLAGS``), and the suite's process has
already started JAX, so the sharded check runs in a fresh Python subprocess, as in
``test_sharding.py``.
"""

from __future__ import annotations

import json
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probinfer as pi


def _problem():
    # Posterior N(mu, (1/1 + 1/0.05)^-1 I) from a standard normal prior: a few tempering
    # steps, exact evidence.
    prior = pi.Gaussian(jnp.zeros(2), jnp.eye(2))
    return prior, lambda x: -0.5 * jnp.sum((x - 1.0) ** 2) / 0.05


def test_interrupted_tempered_run_resumes_to_the_uninterrupted_result(
        tmp_path, monkeypatch, interrupt_saves, assert_same_run):
    prior, log_l = _problem()
    kwargs = dict(kernel=pi.kernels.rwm(), progress_bar=False)
    plain = pi.smc.tempered(3, prior, log_l, 256, **kwargs)
    steps = plain.info.beta.shape[0]
    assert steps >= 4, steps                      # enough steps for a save mid-run
    path = tmp_path / "tempered.npz"
    saved = pi.smc.tempered(3, prior, log_l, 256, checkpoint=pi.Checkpoint(path, every=2),
                            **kwargs)
    assert_same_run(plain, saved)
    path.unlink()
    interrupt_saves(after=1)
    with pytest.raises(KeyboardInterrupt):
        pi.smc.tempered(3, prior, log_l, 256, checkpoint=pi.Checkpoint(path, every=2),
                        **kwargs)
    monkeypatch.undo()
    with np.load(path, allow_pickle=False) as data:
        assert json.loads(bytes(data["header"]))["step"] == 2     # the first save
    resumed = pi.smc.tempered(3, prior, log_l, 256, resume_from=path, **kwargs)
    assert_same_run(plain, resumed)
    with pytest.raises(ValueError, match="key"):
        pi.smc.tempered(4, prior, log_l, 256, resume_from=path, **kwargs)


def test_tempered_scale_out_arguments_are_validated(tmp_path):
    prior, log_l = _problem()
    with pytest.raises(TypeError, match="checkpoint"):
        pi.smc.tempered(0, prior, log_l, 64, checkpoint=str(tmp_path / "r.npz"))
    with pytest.raises(TypeError, match="resume_from"):
        pi.smc.tempered(0, prior, log_l, 64, resume_from=3)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        pi.smc.tempered(0, prior, log_l, 64, resume_from=tmp_path / "missing.npz")
    with pytest.raises(TypeError, match="Mesh"):
        pi.smc.tempered(0, prior, log_l, 64, mesh="gpu")
    one = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("p",))
    two_axes = jax.sharding.Mesh(np.array(jax.devices()[:1]).reshape(1, 1), ("a", "b"))
    with pytest.raises(ValueError, match="one axis"):
        pi.smc.tempered(0, prior, log_l, 64, mesh=two_axes)
    res = pi.smc.tempered(0, prior, log_l, 64, kernel=pi.kernels.rwm(), mesh=one,
                          progress_bar=False)
    assert res.samples.shape == (64, 2)


SCRIPT = textwrap.dedent("""
    import json, jax, jax.numpy as jnp, numpy as np, probinfer as pi
    from jax.sharding import Mesh
    assert len(jax.devices()) == 8, jax.devices()
    mesh = Mesh(np.array(jax.devices()), ("particles",))
    prior = pi.Gaussian(jnp.zeros(2), jnp.eye(2))
    log_l = lambda x: -0.5 * jnp.sum((x - 1.0) ** 2) / 0.05
    out = {}
    # Random-walk moves with the default population adaptation (the covariance of the
    # sharded particles is a cross-device reduction); the default HMC move would only add
    # compile time.
    # "rwm_chunked": each device's particles also move in blocks (chunk_size < 512 / 8).
    for name, chunk_size in (("rwm", None), ("rwm_chunked", 32)):
        kw = dict(kernel=pi.kernels.rwm(), progress_bar=False)
        one = pi.smc.tempered(5, prior, log_l, 512, **kw)
        sharded = pi.smc.tempered(5, prior, log_l, 512, mesh=mesh, chunk_size=chunk_size,
                                  **kw)
        out[name] = {
            "devices": len(sharded.samples.sharding.device_set),
            "beta": [np.asarray(one.info.beta).tolist(),
                     np.asarray(sharded.info.beta).tolist()],
            "log_z": [float(one.log_evidence), float(sharded.log_evidence)],
            "max_sample_diff": float(np.max(np.abs(np.asarray(one.samples)
                                                   - np.asarray(sharded.samples))))}
    print("RESULT" + json.dumps(out))
""")


@pytest.mark.slow
def test_sharded_tempered_equals_single_device_run(run_on_virtual_devices):
    out = run_on_virtual_devices(SCRIPT)
    for name in ("rwm", "rwm_chunked"):
        r = out[name]
        assert r["devices"] == 8
        # Same key, same random numbers; the population statistics (mass matrix, ESS
        # bisection) may be reduced in another order: float32 rounding, no more.
        np.testing.assert_allclose(r["beta"][0], r["beta"][1], rtol=1e-5, atol=1e-6)
        assert abs(r["log_z"][0] - r["log_z"][1]) < 1e-4, r
        assert r["max_sample_diff"] < 1e-4, r
