"""Adaptive IS + control variates for many expectations: unbiased, honest intervals."""

import numpy as np
import pytest
import jax
import jax.numpy as jnp
from scipy.stats import norm

import probinfer as pi

# E over N(0, I_2): x0² -> 1, exp(x1) -> e^{1/2}, 1{x0 > 2} -> Phi(-2) (a rare event).
TRUTH = np.array([1.0, np.exp(0.5), norm.cdf(-2.0)])


def _phi(x):
    return jnp.stack([x[0] ** 2, jnp.exp(x[1]), (x[0] > 2.0) * 1.0])


@pytest.mark.slow
def test_unbiased_with_honest_errors(key):
    nominal = pi.Gaussian(jnp.zeros(2), jnp.eye(2))
    est, se = [], []
    for k in jax.random.split(key, 16):
        res = pi.importance.expectations(k, _phi, nominal, 2000)
        est.append(res.estimates)
        se.append(res.std_errors)
    est, se = np.asarray(est), np.asarray(se)
    # Unbiased: the replicate mean is within 4 Monte Carlo standard errors of the truth.
    z = (est.mean(0) - TRUTH) / (est.std(0, ddof=1) / np.sqrt(len(est)))
    assert np.all(np.abs(z) < 4), z
    # Reported standard errors match the spread over replicates (within a factor 1.6).
    ratio = se.mean(0) / est.std(0, ddof=1)
    assert np.all((ratio > 1 / 1.6) & (ratio < 1.6)), ratio
    inside = np.abs(est - TRUTH) < 1.96 * se
    assert inside.mean() > 0.8
    assert res.num_evaluations == 2000
    assert res.criterion.shape == (res.num_stages,)


@pytest.mark.slow
def test_adaptation_beats_plain_monte_carlo_on_a_rare_event(key):
    # One integrand, the rare event 1{x0 > 2}: the adapted proposal moves there, so the
    # standard error is well below plain Monte Carlo's sqrt(P (1 - P) / n).
    nominal = pi.Gaussian(jnp.zeros(2), jnp.eye(2))
    res = pi.importance.expectations(key, [lambda x: (x[0] > 2.0) * 1.0], nominal, 2000)
    mc_se = np.sqrt(TRUTH[2] * (1 - TRUTH[2]) / 2000)
    assert float(res.std_errors[0]) < 0.5 * mc_se
    assert abs(float(res.estimates[0]) - TRUTH[2]) < 4 * float(res.std_errors[0])


def test_bad_input(key):
    nominal = pi.Gaussian(jnp.zeros(2), jnp.eye(2))
    with pytest.raises(ValueError, match="budget"):
        pi.importance.expectations(key, _phi, nominal, 50)
    with pytest.raises(ValueError, match="NaN"):
        pi.importance.expectations(key, lambda x: jnp.log(x), nominal, 200)
    with pytest.raises(ValueError, match="log_normalizer"):
        pi.importance.expectations(key, _phi, pi.from_logdensity(
            lambda x: -0.5 * jnp.sum(x ** 2), sample_fn=nominal.sample), 200)
    with pytest.raises(TypeError, match="fns"):
        pi.importance.expectations(key, 3, nominal, 200)
