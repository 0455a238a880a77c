"""Checkpoint and resume: a resumed run equals the uninterrupted run with the same key."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import probinfer as pi



@pytest.fixture(scope="module")
def filter_model():
    ssm = pi.ssm.LinearGaussian.scalar(rho=0.9, sigma_x=1.0, sigma_y=0.3)
    _, ys = ssm.simulate(jax.random.key(0), 30)
    return pi.ssm.bootstrap(ssm, ys)




def test_interrupted_run_resumes_to_the_uninterrupted_result(filter_model, tmp_path,
                                                             monkeypatch, interrupt_saves,
                                                             assert_same_run):
    path = tmp_path / "run.npz"
    plain = pi.smc.run(3, filter_model, 400, keep_ancestors=True)
    saved = pi.smc.run(3, filter_model, 400, keep_ancestors=True,
                       checkpoint=pi.Checkpoint(path, every=7))
    assert_same_run(plain, saved)
    path.unlink()
    interrupt_saves(after=2)
    with pytest.raises(KeyboardInterrupt):
        pi.smc.run(3, filter_model, 400, keep_ancestors=True,
                   checkpoint=pi.Checkpoint(path, every=7))
    monkeypatch.undo()
    with np.load(path, allow_pickle=False) as data:
        assert int(data["leaf_3"]) == 14          # SMCState.step: the second save
    resumed = pi.smc.run(3, filter_model, 400, keep_ancestors=True, resume_from=path,
                         checkpoint=pi.Checkpoint(path, every=7))
    assert_same_run(plain, resumed)
    # The finished run's checkpoint resumes to the same result without running a step.
    assert_same_run(plain, pi.smc.run(3, filter_model, 400, keep_ancestors=True,
                                   resume_from=path))


def test_model_with_stopping_condition_resumes(tmp_path, monkeypatch, interrupt_saves,
                                               assert_same_run):
    fk = pi.smc.FeynmanKac(init=lambda key, n: jax.random.normal(key, (n,)),
                           move=lambda key, x, t: x + 0.5 * jax.random.normal(key, x.shape),
                           log_potential=lambda x_prev, x, t: -0.5 * x ** 2,
                           num_steps=40, done=lambda state: state.step >= 11)
    path = tmp_path / "stop.npz"
    plain = pi.smc.run(5, fk, 200)
    interrupt_saves(after=1)
    with pytest.raises(KeyboardInterrupt):
        pi.smc.run(5, fk, 200, checkpoint=pi.Checkpoint(path, every=4))
    monkeypatch.undo()
    resumed = pi.smc.run(5, fk, 200, resume_from=path)
    assert resumed.info.ess.shape == (12,)
    assert_same_run(plain, resumed)


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
