"""State-space models: densities against scipy, Kalman filter against brute force."""

import math

import numpy as np
import pytest
import scipy.stats
import jax
import jax.numpy as jnp

import probinfer as pi


def test_kalman_matches_joint_gaussian_likelihood(x64, rng, key):
    """log p(y_{0:T-1}) from the filter equals the log density of the joint Gaussian of y."""
    d, m, T = 2, 2, 6
    f = rng.normal(0, 0.5, (d, d))
    q = np.eye(d) * 0.3 + 0.1
    h = rng.normal(size=(m, d))
    r = np.eye(m) * 0.4
    m0, p0 = rng.normal(size=d), np.eye(d)
    ssm = pi.ssm.LinearGaussian(f, q, h, r, m0, p0)
    _, ys = ssm.simulate(key, T)
    # Joint moments of x_{0:T-1} and then y.
    means, covs = [m0], [[p0]]
    for t in range(1, T):
        means.append(f @ means[-1])
    big = np.zeros((T * d, T * d))
    cov_t = p0
    marg = [p0]
    for t in range(1, T):
        cov_t = f @ cov_t @ f.T + q
        marg.append(cov_t)
    for s in range(T):
        for t in range(s, T):
            block = np.linalg.matrix_power(f, t - s) @ marg[s]
            big[t * d:(t + 1) * d, s * d:(s + 1) * d] = block
            big[s * d:(s + 1) * d, t * d:(t + 1) * d] = block.T
    hh = np.kron(np.eye(T), h)
    y_cov = hh @ big @ hh.T + np.kron(np.eye(T), r)
    y_mean = hh @ np.concatenate(means)
    exact = scipy.stats.multivariate_normal(y_mean, y_cov).logpdf(np.asarray(ys).ravel())
    np.testing.assert_allclose(float(ssm.kalman_filter(ys).log_likelihood), exact, rtol=1e-9)


def test_linear_gaussian_densities(x64, rng, key):
    ssm = pi.ssm.LinearGaussian.scalar(rho=0.8, sigma_x=0.7, sigma_y=0.3)
    x_prev = jnp.asarray(rng.normal(size=(5, 1)))
    x = jnp.asarray(rng.normal(size=(5, 1)))
    y = jnp.array([0.4])
    np.testing.assert_allclose(np.asarray(ssm.transition_log_density(x_prev, x, 1)),
                               scipy.stats.norm(0.8 * x_prev[:, 0], 0.7).logpdf(x[:, 0]))
    np.testing.assert_allclose(np.asarray(ssm.observation_log_density(x, y, 1)),
                               scipy.stats.norm(x[:, 0], 0.3).logpdf(0.4))
    std0 = 0.7 / math.sqrt(1 - 0.64)
    np.testing.assert_allclose(np.asarray(ssm.initial_log_density(x)),
                               scipy.stats.norm(0, std0).logpdf(x[:, 0]))
    draws = np.asarray(ssm.sample_transition(key, jnp.full((100_000, 1), 2.0), 1))
    assert abs(draws.mean() - 1.6) < 4 * 0.7 / math.sqrt(1e5)


def test_optimal_proposal_potential_is_predictive_density(x64, rng):
    ssm = pi.ssm.LinearGaussian.scalar(rho=0.9, sigma_x=1.0, sigma_y=0.5)
    prop = ssm.locally_optimal_proposal()
    x_prev = jnp.asarray(rng.normal(size=(4, 1)))
    x = jnp.asarray(rng.normal(size=(4, 1)))
    y = jnp.array([0.7])
    log_g = (ssm.transition_log_density(x_prev, x, 1) + ssm.observation_log_density(x, y, 1)
             - prop.log_density(x_prev, x, y, 1))
    expected = scipy.stats.norm(0.9 * x_prev[:, 0], math.sqrt(1.25)).logpdf(0.7)
    np.testing.assert_allclose(np.asarray(log_g), expected, rtol=1e-10)


def test_stochastic_volatility_densities_and_filter(x64, rng, key):
    sv = pi.ssm.StochasticVolatility(mu=-1.0, phi=0.9, sigma=0.4)
    x_prev = jnp.asarray(rng.normal(size=(6, 1)))
    x = jnp.asarray(rng.normal(size=(6, 1)))
    np.testing.assert_allclose(np.asarray(sv.transition_log_density(x_prev, x, 1)),
                               scipy.stats.norm(-1 + 0.9 * (x_prev[:, 0] + 1), 0.4)
                               .logpdf(x[:, 0]))
    np.testing.assert_allclose(np.asarray(sv.observation_log_density(x, jnp.array([0.3]), 1)),
                               scipy.stats.norm(0, np.exp(0.5 * x[:, 0])).logpdf(0.3))
    _, ys = sv.simulate(key, 40)
    res = pi.smc.run(key, pi.ssm.bootstrap(sv, ys), 500)
    assert np.isfinite(float(res.log_evidence))
    assert res.samples.shape == (500, 1)


def test_ssm_bad_input():
    with pytest.raises(ValueError, match="transition_cov must be positive definite"):
        pi.ssm.LinearGaussian(np.eye(1), -np.eye(1), np.eye(1), np.eye(1), np.zeros(1),
                              np.eye(1))
    with pytest.raises(ValueError, match="observation_matrix must have shape"):
        pi.ssm.LinearGaussian(np.eye(2), np.eye(2), np.eye(3), np.eye(3), np.zeros(2),
                              np.eye(2))
    with pytest.raises(ValueError, match="phi"):
        pi.ssm.StochasticVolatility(phi=1.0)
    ssm = pi.ssm.LinearGaussian.scalar()
    with pytest.raises(ValueError, match="observations must be finite"):
        pi.ssm.bootstrap(ssm, np.array([0.0, np.nan]))
    with pytest.raises(TypeError, match="ssm must be"):
        pi.ssm.bootstrap(object(), np.zeros(3))
    with pytest.raises(TypeError, match="proposal must be"):
        pi.ssm.guided(ssm, np.zeros(3), object())
