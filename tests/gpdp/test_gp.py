"""GP dynamics against closed-form GP regression (Rasmussen & Williams 2006, eq. 2.25–2.26)."""

import numpy as np
import pytest
import jax.numpy as jnp
from scipy.stats import multivariate_normal, norm

import probinfer as pi


def _kernel(a, b, lengthscale, amplitude):
    return amplitude ** 2 * np.exp(-0.5 * (a[:, None] - b[None, :]) ** 2 / lengthscale ** 2)


def _closed_form(x, y, noise_var, xs, lengthscale, amplitude):
    K = _kernel(x, x, lengthscale, amplitude) + np.diag(noise_var)
    Ks = _kernel(xs, x, lengthscale, amplitude)
    mean = Ks @ np.linalg.solve(K, y)
    cov = _kernel(xs, xs, lengthscale, amplitude) - Ks @ np.linalg.solve(K, Ks.T)
    return mean, np.diag(cov)


@pytest.fixture
def data(rng):
    x = np.sort(rng.uniform(4.0, 9.0, 8))
    y = x * np.exp(0.5 * (1 - x / 8)) + 0.3 * rng.normal(size=8)
    return x, y


def test_posterior_mean_and_variance_match_closed_form(x64, data):
    x, y = data
    hyper = {"lengthscale": 1.3, "amplitude": 4.0, "noise": 0.3}
    gp = pi.gpdp.GPDynamics.fit(x, y, hyperparameters=hyper, known_points=())
    xs = np.linspace(0.0, 15.0, 23)
    mean, var = gp.predict(jnp.asarray(xs))
    m, v = _closed_form(x, y, np.full(8, 0.3 ** 2), xs, 1.3, 4.0)
    np.testing.assert_allclose(np.asarray(mean), m, atol=1e-9)
    np.testing.assert_allclose(np.asarray(var), v, atol=1e-9)


def test_known_point_is_noise_free_and_mixture_uses_total_variance(x64, data):
    x, y = data
    hyper = {"lengthscale": jnp.array([1.0, 2.5]), "amplitude": jnp.array([3.0, 5.0]),
             "noise": jnp.array([0.2, 0.4])}
    gp = pi.gpdp.GPDynamics.fit(x, y, hyperparameters=hyper)   # (0, 0) known by default
    xs = np.array([0.0, 2.0, 6.0, 12.0])
    means, variances = [], []
    for l, a, n in zip([1.0, 2.5], [3.0, 5.0], [0.2, 0.4]):
        xa = np.concatenate([[0.0], x])
        ya = np.concatenate([[0.0], y])
        noise_var = np.concatenate([[1e-6 * a ** 2], np.full(8, n ** 2)])
        m, v = _closed_form(xa, ya, noise_var, xs, l, a)
        means.append(m)
        variances.append(v)
    means, variances = np.array(means), np.array(variances)
    mean, var = gp.predict(jnp.asarray(xs))
    np.testing.assert_allclose(np.asarray(mean), means.mean(0), atol=1e-8)
    np.testing.assert_allclose(np.asarray(var), variances.mean(0) + means.var(0), atol=1e-8)
    assert abs(float(mean[0])) < 1e-4            # conditioned through (0, 0)
    # The predictive CDF of the next stock is the equal mixture of N(m_d, v_d + σ_d²).
    y_eval = 5.0
    expected = np.mean([norm.cdf(y_eval, means[d, 2], np.sqrt(variances[d, 2] + n ** 2))
                        for d, n in enumerate([0.2, 0.4])])
    assert float(gp.next_state_cdf(6.0, y_eval)) == pytest.approx(expected, abs=1e-10)


def test_log_marginal_likelihood_matches_multivariate_normal(x64, data):
    x, y = data
    log_hyper = jnp.log(jnp.array([1.7, 3.0, 0.25]))
    noisy = jnp.ones(8, bool)
    value = pi.gpdp.GPDynamics.log_marginal_likelihood(jnp.asarray(x), jnp.asarray(y), noisy,
                                                       log_hyper, "se", 1.0)
    cov = _kernel(x, x, 1.7, 3.0) + 0.25 ** 2 * np.eye(8)
    expected = multivariate_normal(np.ones(8), cov).logpdf(y)
    assert float(value) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("kernel", ["matern52", "matern32", "exponential"])
def test_other_kernels_are_valid_covariances(x64, data, kernel):
    x, y = data
    gp = pi.gpdp.GPDynamics.fit(x, y, kernel=kernel,
                                hyperparameters={"lengthscale": 1.0, "amplitude": 2.0,
                                                 "noise": 0.3})
    mean, var = gp.predict(jnp.linspace(0.0, 15.0, 31))
    assert bool(jnp.all(var >= 0)) and bool(jnp.all(jnp.isfinite(mean)))
    # Far from the data the posterior is the prior: mean 0, variance amplitude².
    assert float(var[-1]) == pytest.approx(4.0, rel=1e-3)


@pytest.mark.slow
def test_map_hyperparameters_maximise_the_posterior(data, key):
    x, y = data
    gp = pi.gpdp.GPDynamics.fit(x, y, hyperparameters="map", key=key, num_starts=4)
    h = gp.hyperparameters
    assert h.lengthscale.shape == (1,)
    inputs = jnp.concatenate([jnp.zeros(1), jnp.asarray(x, jnp.float32)])
    outputs = jnp.concatenate([jnp.zeros(1), jnp.asarray(y, jnp.float32)])
    noisy = jnp.arange(9) > 0
    prior = pi.gpdp.gp._prior_target(pi.gpdp.GPPrior(), float(np.sqrt(np.mean(y ** 2))),
                                     jnp.float32)

    def log_post(u):
        return prior.log_density(u) + pi.gpdp.GPDynamics.log_marginal_likelihood(
            inputs, outputs, noisy, u)

    u_map = jnp.log(jnp.stack([h.lengthscale[0], h.amplitude[0], h.noise[0]]))
    best = float(log_post(u_map))
    for direction in np.eye(3):
        for step in (-0.05, 0.05):
            assert float(log_post(u_map + step * direction)) <= best + 1e-3
