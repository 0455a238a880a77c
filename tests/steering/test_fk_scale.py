"""FK steering scaled out: ``mesh=`` (8 virtual CPU devices) and ``checkpoint=`` /
``resume_from=`` give the result of the plain run with the same key.

The device count is fixed when JAX starts (``XLA_FLAGS``), and the suite's process has
already started JAX, so the sharded check runs in a fresh Python subprocess, as in
``tests/particles/test_sharding.py``.
"""

from __future__ import annotations

import json
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probinfer as pi


def _prior():
    mix = pi.GaussianMixture(jnp.array([0.9, 0.1]), jnp.array([[-2.0], [2.0]]),
                             0.3 * jnp.ones((2, 1, 1)))
    return pi.diffusion.GaussianMixturePrior(mix, num_steps=20)


def _reward(x):
    return x[0]


def test_interrupted_steering_run_resumes_to_the_uninterrupted_result(
        tmp_path, monkeypatch, interrupt_saves, assert_same_run):
    prior = _prior()
    plain = pi.steer.fk(2, prior, _reward, 64, temperature=0.5)
    path = tmp_path / "fk.npz"
    saved = pi.steer.fk(2, prior, _reward, 64, temperature=0.5,
                        checkpoint=pi.Checkpoint(path, every=6))
    assert_same_run(plain, saved)
    path.unlink()
    interrupt_saves(after=2)
    with pytest.raises(KeyboardInterrupt):
        pi.steer.fk(2, prior, _reward, 64, temperature=0.5,
                    checkpoint=pi.Checkpoint(path, every=6))
    monkeypatch.undo()
    with np.load(path, allow_pickle=False) as data:
        assert json.loads(bytes(data["header"]))["step"] == 12     # the second save
    resumed = pi.steer.fk(2, prior, _reward, 64, temperature=0.5, resume_from=path)
    assert_same_run(plain, resumed)
    assert resumed.info.nfe == plain.info.nfe
    with pytest.raises(ValueError, match="num_particles"):
        pi.steer.fk(2, prior, _reward, 32, temperature=0.5, resume_from=path)


def test_steering_scale_out_arguments_are_validated(tmp_path):
    prior = _prior()
    with pytest.raises(TypeError, match="checkpoint"):
        pi.steer.fk(0, prior, _reward, 16, checkpoint=str(tmp_path / "r.npz"))
    with pytest.raises(TypeError, match="resume_from"):
        pi.steer.fk(0, prior, _reward, 16, resume_from=3)
    with pytest.raises(TypeError, match="Mesh"):
        pi.steer.fk(0, prior, _reward, 16, mesh="gpu")
    with pytest.raises(ValueError, match="concrete"):
        jax.vmap(lambda t: pi.steer.fk(0, prior, _reward, 16, temperature=t,
                                       checkpoint=pi.Checkpoint(tmp_path / "r.npz")
                                       ).log_evidence)(jnp.ones(2))
    one = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("p",))
    np.testing.assert_array_equal(pi.steer.fk(0, prior, _reward, 16, mesh=one).samples,
                                  pi.steer.fk(0, prior, _reward, 16).samples)


SCRIPT = textwrap.dedent("""
    import json, jax, jax.numpy as jnp, numpy as np, probinfer as pi
    from jax.sharding import Mesh
    assert len(jax.devices()) == 8, jax.devices()
    mesh = Mesh(np.array(jax.devices()), ("particles",))
    mix = pi.GaussianMixture(jnp.array([0.9, 0.1]), jnp.array([[-2.0], [2.0]]),
                             0.3 * jnp.ones((2, 1, 1)))
    prior = pi.diffusion.GaussianMixturePrior(mix, num_steps=20)
    out = {}
    for policy in ("interval", "ess"):
        one = pi.steer.fk(7, prior, lambda x: x[0], 256, temperature=0.5, policy=policy)
        sharded = pi.steer.fk(7, prior, lambda x: x[0], 256, temperature=0.5,
                              policy=policy, mesh=mesh)
        out[policy] = {
            "devices": len(sharded.samples.sharding.device_set),
            "resampled": [np.asarray(one.info.resampled).tolist(),
                          np.asarray(sharded.info.resampled).tolist()],
            "log_z": [float(one.log_evidence), float(sharded.log_evidence)],
            "max_sample_diff": float(np.max(np.abs(np.asarray(one.samples)
                                                   - np.asarray(sharded.samples))))}
    print("RESULT" + json.dumps(out))
""")


@pytest.mark.slow
def test_sharded_steering_equals_single_device_run(run_on_virtual_devices):
    out = run_on_virtual_devices(SCRIPT)
    for policy in ("interval", "ess"):
        r = out[policy]
        assert r["devices"] == 8
        assert r["resampled"][0] == r["resampled"][1], r
        # Same key, same random numbers, weights reduced in the single-device order: at
        # most float32 rounding of the per-particle arithmetic.
        assert abs(r["log_z"][0] - r["log_z"][1]) < 1e-5, r
        assert r["max_sample_diff"] < 1e-5, r
