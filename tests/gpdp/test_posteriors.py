"""Posterior fits through the library's tempered SMC (parametric models and GP hyperparameters).

With 150 transitions the posterior is close to normal around the MLE (Bernstein–von Mises):
the posterior mean and the MLE differ by O(1/n), a small fraction of the posterior standard
deviation O(1/√n); the SMC estimate of the mean adds a Monte Carlo error of about
sd/√ESS. Half a posterior standard deviation bounds both with a wide margin.
"""

import numpy as np
import pytest
import jax
import jax.numpy as jnp

import probinfer as pi

pytestmark = pytest.mark.slow


def test_ricker_posterior_concentrates_at_the_mle(key):
    truth = pi.gpdp.Ricker(1.0, 8.0, 0.1)
    x = truth.simulate(jax.random.fold_in(key, 1), 3.0, 151).stock
    mle = pi.gpdp.Ricker.fit(x[:-1], x[1:])
    post = pi.gpdp.Ricker.fit_posterior(key, x[:-1], x[1:], num_particles=600, max_draws=600)
    draws = np.asarray(post.draws, np.float64)
    assert draws.shape == (600, 3)
    low = np.array([b[0] for b in pi.gpdp.Ricker.prior_bounds.values()])
    high = np.array([b[1] for b in pi.gpdp.Ricker.prior_bounds.values()])
    assert np.all((draws > low) & (draws < high))
    for i, value in enumerate(np.asarray([float(p) for p in mle.params])):
        sd = draws[:, i].std()
        assert abs(draws[:, i].mean() - value) < 0.5 * sd, (i, draws[:, i].mean(), value, sd)
    assert post.data_range == mle.data_range


def test_gp_hyperparameter_posterior(key):
    x = pi.gpdp.Allee(2.0, 8.0, 5.0, 0.05).simulate(jax.random.fold_in(key, 2), 5.5, 30).stock
    gp = pi.gpdp.GPDynamics.fit(x[:-1], x[1:], key=key, num_particles=300, max_draws=100)
    h = gp.hyperparameters
    assert h.lengthscale.shape == (100,)
    # More than one distinct draw: the hyperparameters are integrated, not fixed.
    assert np.unique(np.asarray(h.lengthscale)).size > 10
    # σ_n is identified by the data: lognormal noise σ = 0.05 at stocks near 8 gives an
    # additive standard deviation of about 0.4.
    assert 0.2 < float(jnp.median(h.noise)) < 0.9
    mean, var = gp.predict(jnp.array([0.0, 3.0, 7.5]))
    assert abs(float(mean[0])) < 0.05
    assert float(var[2]) < float(var[1])
