"""Importance-sampling core: estimators, log-evidence, ESS, Pareto-k̂, mixture proposals."""

import numpy as np
import pytest
import jax
import jax.numpy as jnp

import probinfer as pi


def test_unbiased_evidence_and_estimators(key):
    # Unnormalised target: 3 × N(1, I) in 2-D, so Z = 3 and E[x] = (1, 1) exactly.
    base = pi.Gaussian(jnp.ones(2), jnp.eye(2))
    target = pi.from_logdensity(lambda x: base.log_density(x) + jnp.log(3.0))
    proposal = pi.importance.defensive(pi.Gaussian(jnp.zeros(2), 4.0 * jnp.eye(2)),
                                       pi.Gaussian(jnp.zeros(2), jnp.eye(2)), 0.2)
    z_hat, means = [], []
    for k in jax.random.split(key, 12):
        res = pi.importance.importance_sampling(k, target, proposal, 2000)
        z_hat.append(float(jnp.exp(res.log_evidence)))
        means.append(np.asarray(pi.importance.self_normalized(res).mean))
    z_hat, means = np.array(z_hat), np.array(means)
    assert abs(z_hat.mean() - 3.0) < 4 * z_hat.std(ddof=1) / np.sqrt(len(z_hat))
    assert np.all(np.abs(means.mean(0) - 1.0) < 4 * means.std(0, ddof=1) / np.sqrt(len(means)))
    # The unbiased estimator of Z E[x] = 3 (1, 1), with its own standard error.
    est = pi.importance.unbiased(res)
    assert np.all(np.abs(np.asarray(est.mean) - 3.0) < 4 * np.asarray(est.std_error))
    sn = pi.importance.self_normalized(res)
    assert np.all(np.abs(np.asarray(sn.mean) - 1.0) < 4 * np.asarray(sn.std_error))
    assert 0 < float(res.info.ess) <= 2000
    assert float(res.info.pareto_k) < 0.5
    np.testing.assert_allclose(float(jnp.sum(res.weights)), 1.0, rtol=1e-5)


def test_pareto_k_flags_heavy_tails(key):
    # Narrow proposal for a wide target: infinite-variance weights, k̂ well above 0.7.
    target = pi.Gaussian(jnp.zeros(1), 4.0 * jnp.eye(1))
    narrow = pi.Gaussian(jnp.zeros(1), 0.5 * jnp.eye(1))
    res = pi.importance.importance_sampling(key, target, narrow, 4000)
    assert float(res.info.pareto_k) > 0.7
    smoothed = pi.importance.importance_sampling(key, target, narrow, 4000, psis=True)
    np.testing.assert_allclose(float(jnp.sum(smoothed.weights)), 1.0, rtol=1e-5)


def test_mixture_density_and_sampling(key):
    comps = [pi.Gaussian(-2 * jnp.ones(1), jnp.eye(1)), pi.Gaussian(2 * jnp.ones(1), jnp.eye(1))]
    q = pi.importance.Mixture(comps, jnp.array([0.25, 0.75]))
    exact = pi.GaussianMixture(jnp.array([0.25, 0.75]), jnp.array([[-2.0], [2.0]]),
                               jnp.ones((2, 1, 1)))
    x = jnp.linspace(-4, 4, 7)[:, None]
    np.testing.assert_allclose(q.batch_log_density(x), exact.batch_log_density(x), rtol=1e-5)
    draws = q.sample(key, 4000)
    frac = float(jnp.mean(draws[:, 0] > 0))
    assert abs(frac - 0.75) < 4 * np.sqrt(0.75 * 0.25 / 4000)


def test_bad_input():
    g = pi.Gaussian(jnp.zeros(1), jnp.eye(1))
    with pytest.raises(TypeError, match="target"):
        pi.importance.importance_sampling(jax.random.key(0), "not a target", g, 10)
    with pytest.raises(ValueError, match="alpha"):
        pi.importance.defensive(g, g, 1.5)
    with pytest.raises(ValueError, match="weights"):
        pi.importance.Mixture([g, g], jnp.array([0.5, 0.6]))
    nan_target = pi.from_logdensity(lambda x: jnp.nan * jnp.sum(x))
    with pytest.raises(ValueError, match="NaN"):
        pi.importance.importance_sampling(jax.random.key(0), nan_target, g, 10)
