"""Fisheries models: growth curves, simulation noise, maximum likelihood, AIC/BIC."""

import math

import numpy as np
import pytest
import jax
import jax.numpy as jnp
from scipy.stats import norm

import probinfer as pi

Z_MAX = 4.0


def test_growth_curves_match_their_formulas(x64):
    s = np.array([0.0, 0.5, 3.0, 5.0, 8.0, 12.0])
    ricker = pi.gpdp.Ricker(1.5, 8.0, 0.1)
    myers = pi.gpdp.Myers(2.0, 2.5, 6.0, 0.1)
    allee = pi.gpdp.Allee(2.0, 8.0, 5.0, 0.1)
    np.testing.assert_allclose(jax.vmap(ricker.growth)(s), s * np.exp(1.5 * (1 - s / 8)))
    np.testing.assert_allclose(jax.vmap(myers.growth)(s), 2.0 * s ** 2.5 / (1 + s ** 2.5 / 6))
    np.testing.assert_allclose(jax.vmap(allee.growth)(s),
                               s * np.exp(2.0 * (1 - s / 8) * (s - 5) / 8))
    # Fixed points of the Allee map: 0, C (unstable) and K.
    for point in (5.0, 8.0):
        assert float(allee.growth(point)) == pytest.approx(point)
    assert float(allee.mean(8.0)) == pytest.approx(8.0 * math.exp(0.005))


def test_simulated_noise_is_lognormal_with_sigma(key):
    model = pi.gpdp.Ricker(0.8, 8.0, 0.1)
    x = np.asarray(model.simulate(key, 8.0, 2001).stock, np.float64)
    resid = np.log(x[1:]) - np.log(np.asarray(jax.vmap(model.growth)(x[:-1]), np.float64))
    n = resid.size
    assert abs(resid.mean()) / (0.1 / math.sqrt(n)) < Z_MAX
    # var of a sample variance of normals: 2σ⁴/(n−1)
    assert abs(resid.var(ddof=1) - 0.01) / math.sqrt(2 * 0.1 ** 4 / (n - 1)) < Z_MAX


def test_simulate_with_policy_harvests_down_to_escapement():
    truth = pi.gpdp.Allee(2.0, 8.0, 5.0, 0.05)
    grid = jnp.linspace(0.0, 15.0, 50)
    policy = pi.gpdp.solve(truth, grid, grid, discount=0.99)
    path = truth.simulate(jax.random.key(3), 10.0, 30, policy)
    stock, harvest = np.asarray(path.stock), np.asarray(path.harvest)
    assert stock.shape == harvest.shape == (30,)
    assert np.all(harvest <= stock + 1e-6) and np.all(harvest >= 0)
    assert stock.min() > 5.0                      # never pushed across the tipping point
    np.testing.assert_allclose(harvest[0], float(policy.harvest(10.0)))


@pytest.mark.slow
def test_ricker_mle_is_log_linear_least_squares(x64, key):
    """log(x'/x) = r − (r/K) x + ε: the Ricker MLE is ordinary least squares."""
    x = np.asarray(pi.gpdp.Ricker(1.2, 8.0, 0.1).simulate(key, 2.0, 60).stock)
    x_t, x_next = x[:-1], x[1:]
    design = np.stack([np.ones_like(x_t), x_t], axis=1)
    (a, b), *_ = np.linalg.lstsq(design, np.log(x_next / x_t), rcond=None)
    resid = np.log(x_next / x_t) - design @ np.array([a, b])
    fit = pi.gpdp.Ricker.fit(x_t, x_next)
    assert float(fit.r) == pytest.approx(a, rel=1e-4)
    assert float(fit.K) == pytest.approx(-a / b, rel=1e-4)
    assert float(fit.sigma) == pytest.approx(np.sqrt(np.mean(resid ** 2)), rel=1e-4)
    assert fit.data_range == (float(x.min()), float(x.max()))


@pytest.mark.slow
def test_log_likelihood_aic_bic(x64, key):
    model = pi.gpdp.Allee(2.0, 8.0, 5.0, 0.05)
    x = np.asarray(model.simulate(key, 5.5, 40).stock)
    x_t, x_next = x[:-1], x[1:]
    mu = np.log(np.asarray(jax.vmap(model.growth)(x_t)))
    expected = np.sum(norm.logpdf(np.log(x_next), mu, 0.05) - np.log(x_next))
    assert float(model.log_likelihood(x_t, x_next)) == pytest.approx(expected, rel=1e-10)
    assert model.aic(x_t, x_next) == pytest.approx(2 * 4 - 2 * expected)
    assert model.bic(x_t, x_next) == pytest.approx(4 * math.log(39) - 2 * expected)
    fit = pi.gpdp.Allee.fit(x_t, x_next)
    # The MLE cannot be beaten by the truth it was simulated from.
    assert float(fit.log_likelihood(x_t, x_next)) >= expected - 1e-6


def test_parameter_posterior_averages_draws(x64):
    draws = jnp.array([[1.0, 8.0, 0.1], [1.5, 7.0, 0.2]])
    post = pi.gpdp.ParameterPosterior(pi.gpdp.Ricker, draws)
    a, b = pi.gpdp.Ricker(1.0, 8.0, 0.1), pi.gpdp.Ricker(1.5, 7.0, 0.2)
    for s, y in [(3.0, 4.0), (6.0, 9.0), (0.0, 0.5)]:
        expected = 0.5 * (float(a.next_state_cdf(s, y)) + float(b.next_state_cdf(s, y)))
        assert float(post.next_state_cdf(s, y)) == pytest.approx(expected)
    assert float(post.posterior_mean().K) == pytest.approx(7.5)
