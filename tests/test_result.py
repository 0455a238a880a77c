"""Result: equal-weight resampling, compact repr, save/load, constrain map under jit/vmap,
replicates as ArviZ chains."""

import warnings
from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp
import pytest

import probinfer as pi


def _weighted(key, num=1000):
    """Particles of N(0, 1) weighted towards N(1, 1): the weighted law is N(1, 1)."""
    x = jax.random.normal(key, (num, 1))
    log_w, _ = pi.particles.normalize(x[:, 0] - 0.5)
    return pi.Result(x, log_w, jnp.asarray(0.0))


class _Info(NamedTuple):
    ess: jax.Array
    nfe: int

    def traces(self):
        return {"ess": self.ess}, {"nfe": self.nfe}


@pytest.mark.parametrize("resampling", ["multinomial"])
def test_resample_is_unbiased_for_the_weighted_mean(key, resampling):
    res = _weighted(key)
    target = float(res.mean()[0])
    means = jax.vmap(lambda k: jnp.mean(res.resample(k, 500, resampling).samples))(
        jax.random.split(jax.random.key(3), 100))
    # Over resampling keys the mean of the draws is unbiased for the weighted mean.
    z = (float(jnp.mean(means)) - target) / (float(jnp.std(means)) / np.sqrt(100))
    assert abs(z) < 4, z
    out = res.resample(key, 500, resampling)
    assert out.samples.shape == (500, 1)
    np.testing.assert_allclose(out.log_weights, -np.log(500.0), rtol=1e-6)
    assert float(out.ess) == pytest.approx(500.0)


def test_unweighted_and_int_seed(key):
    res = _weighted(key, 64)
    draws = res.unweighted(7)
    assert draws.shape == (64, 1)
    # Every draw is one of the particles.
    assert np.isin(np.asarray(draws[:, 0]), np.asarray(res.samples[:, 0])).all()
    with pytest.raises(ValueError, match="num"):
        res.resample(key, 0)


def test_repr_is_compact(key):
    x = jax.random.normal(key, (64, 1))
    res = pi.Result(x, jnp.full(64, -np.log(64.0)), jnp.asarray(-3.25),
                    _Info(jnp.ones(12), 640))
    text = repr(res)
    assert len(text) < 200, text
    for part in ("float32[64,1]", "num_particles=64", "ess=64.0", "log_evidence=-3.25",
                 "_Info(12 steps, nfe=640)"):
        assert part in text, (part, text)


def test_save_load_round_trip(key, tmp_path):
    samples = {"a": jax.random.normal(key, (10, 2)),
               "b": (jnp.arange(10), jnp.ones((10, 3), jnp.float32))}
    log_w, _ = pi.particles.normalize(jax.random.normal(key, (10,)))
    res = pi.Result(samples, log_w, jnp.asarray(1.5), _Info(jnp.arange(4.0), 7))
    path = res.save(tmp_path / "run")
    assert path.suffix == ".npz"
    back = pi.Result.load(path)
    for got, want in zip(jax.tree_util.tree_leaves(back.samples),
                         jax.tree_util.tree_leaves(res.samples)):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype
    assert isinstance(back.samples["b"], tuple)
    np.testing.assert_array_equal(back.log_weights, res.log_weights)
    assert float(back.log_evidence) == 1.5
    per_step, counters = back.info.traces()
    np.testing.assert_array_equal(per_step["ess"], np.arange(4.0))
    assert counters == {"nfe": 7}
    # The file holds no pickled object: numpy can read it with pickling disabled.
    with np.load(path, allow_pickle=False) as data:
        assert all(data[name].dtype != object for name in data.files)
    assert back.to_arviz().attrs["nfe"] == 7


def test_load_rejects_other_files(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, x=np.ones(3))
    with pytest.raises(ValueError, match="not a file written"):
        pi.Result.load(path)


def _constrained_result(key):
    x = jax.random.normal(key, (5, 2))
    return pi.Result(x, jnp.full(5, -np.log(5.0)), jnp.asarray(0.0),
                     constrain_fn=lambda s: {"scale": jnp.exp(s[0]), "loc": s[1]})


def test_constrain_map_survives_jit_and_vmap(key):
    res = jax.jit(_constrained_result)(key)
    sites = res.constrain()
    np.testing.assert_allclose(sites["scale"], np.exp(res.samples[:, 0]), rtol=1e-6)
    reps = jax.vmap(_constrained_result)(jax.random.split(key, 3))
    assert reps.samples.shape == (3, 5, 2) and reps.constrain_fn is not None
    idata = res.to_arviz()
    assert set(idata.posterior.data_vars) == {"scale", "loc"}
    with pytest.raises(ValueError, match="no constrain map"):
        res._replace(constrain_fn=None).constrain()


def _fk():
    return pi.smc.FeynmanKac(
        init=lambda key, n: jax.random.normal(key, (n,)),
        move=lambda key, x, t: 0.5 * x + jax.random.normal(key, x.shape),
        log_potential=lambda x_prev, x, t: -0.5 * (x - 1.0) ** 2,
        num_steps=4)


@pytest.mark.slow
def test_replicate_vmaps_a_pure_runner_and_loops_otherwise(key):
    """Both paths give the same replicates, and they become ArviZ chains."""
    import arviz as az
    fk = _fk()

    def pure(k):
        state, info = pi.smc.scan(k, fk, 200, pi.particles.systematic, pi.smc.ess_below(0.5))
        return pi.Result(state.particles, state.log_weights, state.log_evidence, info)

    vmapped = pi.smc.replicate(key, pure, 4, method="vmap")
    looped = pi.smc.replicate(key, lambda k: pi.smc.run(k, fk, 200), 4, progress_bar=False)
    assert vmapped.samples.shape == looped.samples.shape == (4, 200)
    assert looped.log_evidence.shape == (4,)
    assert "num_replicates=4, num_particles=200" in repr(looped)
    # Same keys, same algorithm: the two paths agree.
    np.testing.assert_allclose(vmapped.log_evidence, looped.log_evidence, rtol=1e-5)
    with pytest.raises(jax.errors.JAXTypeError):       # run() checks concrete values
        pi.smc.replicate(key, lambda k: pi.smc.run(k, fk, 200), 2, method="vmap")
    with pytest.raises(ValueError, match="method"):
        pi.smc.replicate(key, pure, 2, method="pmap")

    idata = looped.to_arviz()
    assert idata.posterior["x"].shape == (4, 200)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary = az.summary(idata)
    # Independent replicates of the same target: r_hat near 1, and a finite bulk ESS.
    assert abs(float(summary["r_hat"].iloc[0]) - 1.0) < 0.05
    assert float(summary["ess_bulk"].iloc[0]) > 100
    assert len(idata.attrs["log_evidence"]) == 4
