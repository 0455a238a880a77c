"""Checkpoint and resume: a resumed run equals the uninterrupted run with the same key."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probinfer as pi
from probinfer import _checkpoint

SAVE = _checkpoint.save


@pytest.fixture(scope="module")
def filter_model():
    ssm = pi.ssm.LinearGaussian.scalar(rho=0.9, sigma_x=1.0, sigma_y=0.3)
    _, ys = ssm.simulate(jax.random.key(0), 30)
    return pi.ssm.bootstrap(ssm, ys)


def _assert_same(a, b):
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.log_weights, b.log_weights)
    assert float(a.log_evidence) == float(b.log_evidence)
    for x, y in zip(jax.tree_util.tree_leaves(a.info), jax.tree_util.tree_leaves(b.info)):
        np.testing.assert_array_equal(x, y)


class _Interrupt:
    """``_checkpoint.save`` that raises KeyboardInterrupt (a Ctrl-C) after ``after`` saves,
    as if it arrived while the next chunk was running."""

    def __init__(self, after):
        self.after, self.saves = after, 0

    def __call__(self, *args, **kwargs):
        if self.saves == self.after:
            raise KeyboardInterrupt
        SAVE(*args, **kwargs)
        self.saves += 1


def test_interrupted_run_resumes_to_the_uninterrupted_result(filter_model, tmp_path,
                                                             monkeypatch):
    path = tmp_path / "run.npz"
    plain = pi.smc.run(3, filter_model, 400, keep_ancestors=True)
    saved = pi.smc.run(3, filter_model, 400, keep_ancestors=True,
                       checkpoint=pi.Checkpoint(path, every=7))
    _assert_same(plain, saved)
    path.unlink()
    interrupt = _Interrupt(after=2)
    monkeypatch.setattr(_checkpoint, "save", interrupt)
    with pytest.raises(KeyboardInterrupt):
        pi.smc.run(3, filter_model, 400, keep_ancestors=True,
                   checkpoint=pi.Checkpoint(path, every=7))
    monkeypatch.undo()
    with np.load(path, allow_pickle=False) as data:
        assert int(data["leaf_3"]) == 14          # SMCState.step: the second save
    resumed = pi.smc.run(3, filter_model, 400, keep_ancestors=True, resume_from=path,
                         checkpoint=pi.Checkpoint(path, every=7))
    _assert_same(plain, resumed)
    # The finished run's checkpoint resumes to the same result without running a step.
    _assert_same(plain, pi.smc.run(3, filter_model, 400, keep_ancestors=True,
                                   resume_from=path))


def test_model_with_stopping_condition_resumes(tmp_path, monkeypatch):
    fk = pi.smc.FeynmanKac(init=lambda key, n: jax.random.normal(key, (n,)),
                           move=lambda key, x, t: x + 0.5 * jax.random.normal(key, x.shape),
                           log_potential=lambda x_prev, x, t: -0.5 * x ** 2,
                           num_steps=40, done=lambda state: state.step >= 11)
    path = tmp_path / "stop.npz"
    plain = pi.smc.run(5, fk, 200)
    monkeypatch.setattr(_checkpoint, "save", _Interrupt(after=1))
    with pytest.raises(KeyboardInterrupt):
        pi.smc.run(5, fk, 200, checkpoint=pi.Checkpoint(path, every=4))
    monkeypatch.undo()
    resumed = pi.smc.run(5, fk, 200, resume_from=path)
    assert resumed.info.ess.shape == (12,)
    _assert_same(plain, resumed)


def test_checkpoint_and_resume_errors(filter_model, tmp_path):
    with pytest.raises(ValueError, match=r"\.npz"):
        pi.Checkpoint(tmp_path / "run.pkl")
    with pytest.raises(ValueError, match="every"):
        pi.Checkpoint(tmp_path / "run.npz", every=0)
    with pytest.raises(TypeError, match="path"):
        pi.Checkpoint(3)
    with pytest.raises(TypeError, match="checkpoint"):
        pi.smc.run(0, filter_model, 50, checkpoint=str(tmp_path / "run.npz"))
    with pytest.raises(TypeError, match="resume_from"):
        pi.smc.run(0, filter_model, 50, resume_from=1)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        pi.smc.run(0, filter_model, 50, resume_from=tmp_path / "missing.npz")
    path = tmp_path / "run.npz"
    pi.smc.run(0, filter_model, 50, checkpoint=pi.Checkpoint(path, every=10))
    with pytest.raises(ValueError, match="key"):
        pi.smc.run(1, filter_model, 50, resume_from=path)
    with pytest.raises(ValueError, match="num_particles"):
        pi.smc.run(0, filter_model, 60, resume_from=path)
    with pytest.raises(ValueError, match="keep_ancestors"):
        pi.smc.run(0, filter_model, 50, resume_from=path, keep_ancestors=True)
    (tmp_path / "other.npz").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a probinfer checkpoint"):
        pi.smc.run(0, filter_model, 50, resume_from=tmp_path / "other.npz")
