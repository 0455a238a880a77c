"""Result.to_arviz: shapes, weights, SMC traces; ArviZ's own summary works on it."""

from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp
import arviz as az

import probinfer as pi


def _result(key, num=400):
    ssm = pi.ssm.LinearGaussian.scalar(rho=0.9, sigma_x=1.0, sigma_y=0.5)
    _, ys = ssm.simulate(key, 12)
    return pi.smc.run(key, pi.ssm.bootstrap(ssm, ys), num)


def test_to_arviz_weighted_result(key):
    res = _result(key)
    idata = res.to_arviz()
    assert isinstance(idata, az.InferenceData)
    assert idata.posterior["x"].shape == (1, 400, 1)
    assert idata.attrs["resampled_to_equal_weights"] == 1
    np.testing.assert_allclose(idata.attrs["log_evidence"], float(res.log_evidence))
    assert idata.sample_stats["log_weight"].shape == (1, 400)
    summary = az.summary(idata, kind="stats")
    # The resampled posterior mean agrees with the weighted mean up to resampling noise.
    weighted = float(res.mean()[0])
    se = float(np.sqrt(res.mean(lambda x: x ** 2)[0] - weighted ** 2) / np.sqrt(float(res.ess)))
    assert abs(summary["mean"].iloc[0] - weighted) < 5 * se + 0.01


def test_to_arviz_dict_samples_and_constrain(key):
    samples = {"a": jax.random.normal(key, (50, 2)), "b": jnp.ones((50,))}
    res = pi.Result(samples, jnp.full(50, -np.log(50.0)), jnp.asarray(np.nan))
    idata = res.to_arviz()
    assert set(idata.posterior.data_vars) == {"a", "b"}
    assert idata.attrs["resampled_to_equal_weights"] == 0
    idata = res.to_arviz(constrain=lambda s: {"scale": jnp.exp(s["b"])})
    np.testing.assert_allclose(idata.posterior["scale"].values, np.e, rtol=1e-6)


class _StepInfo(NamedTuple):
    """Any info type: diagnostics only knows the ``traces()`` protocol."""

    ess: jax.Array
    ancestors: jax.Array
    nfe: int

    def traces(self):
        return {"ess": self.ess, "ancestors": self.ancestors, "pair": (self.ess, self.ess)}, \
            {"nfe": self.nfe}


def test_to_arviz_uses_the_traces_protocol(key):
    info = _StepInfo(jnp.arange(5.0), jnp.zeros((5, 20), jnp.int32), 100)
    res = pi.Result(jax.random.normal(key, (20,)), jnp.full(20, -np.log(20.0)),
                    jnp.asarray(-1.5), info)
    idata = res.to_arviz()
    np.testing.assert_array_equal(idata.smc_steps["ess"].values, np.arange(5.0))
    assert idata.smc_steps["ancestors"].shape == (5, 20)
    assert set(idata.smc_steps.data_vars) == {"ess", "ancestors", "pair_0", "pair_1"}
    assert idata.sample_stats["ess"].dims == ("smc_step",)
    assert idata.attrs["nfe"] == 100
    # An info without the protocol is skipped, not an error.
    plain = res._replace(info=(1, 2)).to_arviz()
    assert "smc_steps" not in plain.groups()
