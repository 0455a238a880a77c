"""Result.to_arviz: shapes, weights, SMC traces; ArviZ's own summary works on it."""

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
    assert idata.smc_steps["ess"].shape == (12,)
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
