"""The closed-form Gaussian Schrödinger bridge: exact identities, exact sampling, and IPF."""

import numpy as np
import pytest
import jax
import jax.numpy as jnp

import probinfer as pi

M0, C0 = np.array([0.0, 1.0]), np.array([[1.0, 0.3], [0.3, 0.5]])
M1, C1 = np.array([2.0, -1.0]), np.array([[0.4, -0.1], [-0.1, 0.8]])


@pytest.mark.parametrize("reference", [None, pi.bridges.OU(0.7, 0.5)])
def test_static_coupling_is_the_entropic_optimum(x64, reference):
    """The joint law of (X_0, X_T) has density ∝ exp(Phi x0·x1 / S_T) mu0 mu1: its precision's
    off-diagonal block is exactly -Phi / S_T times the identity (Schrödinger system)."""
    sigma, t1 = 0.8, 1.5
    sb = pi.bridges.gaussian_bridge(M0, C0, M1, C1, sigma, t1=t1, reference=reference)
    theta = 0.0 if reference is None else 0.7
    phi = np.exp(-theta * t1)
    s_t = sigma ** 2 * t1 if theta == 0 else sigma ** 2 * (1 - np.exp(-2 * theta * t1)) / (2 * theta)
    joint = np.block([[C0, np.asarray(sb.cross_cov)], [np.asarray(sb.cross_cov).T, C1]])
    precision = np.linalg.inv(joint)
    np.testing.assert_allclose(precision[:2, 2:], -phi / s_t * np.eye(2), atol=1e-10)
    for t, (m, c) in ((0.0, (M0, C0)), (t1, (M1, C1))):
        mean, cov = sb.marginal(t)
        np.testing.assert_allclose(mean, m, atol=1e-12)
        np.testing.assert_allclose(cov, c, atol=1e-10)


def test_brownian_marginals_match_the_interpolation_formula(x64):
    sb = pi.bridges.gaussian_bridge(M0, C0, M1, C1, 1.3)
    cross = np.asarray(sb.cross_cov)
    for t in (0.2, 0.5, 0.9):
        mean, cov = sb.marginal(t)
        expect = ((1 - t) ** 2 * C0 + t ** 2 * C1 + t * (1 - t) * (cross + cross.T)
                  + 1.3 ** 2 * t * (1 - t) * np.eye(2))
        np.testing.assert_allclose(mean, (1 - t) * M0 + t * M1, atol=1e-12)
        np.testing.assert_allclose(cov, expect, atol=1e-12)


@pytest.mark.parametrize("reference", [None, pi.bridges.OU(1.2, -0.3)])
def test_sampled_paths_match_marginals_within_mcse(key, x64, reference):
    sb = pi.bridges.gaussian_bridge(M0, C0, M1, C1, 0.9, t1=2.0, reference=reference)
    times = jnp.array([0.3, 1.0, 1.7, 2.0])
    n = 40_000
    paths = np.asarray(sb.sample(key, times, n))
    assert paths.shape == (n, 4, 2)
    for i, t in enumerate(times):
        mean, cov = (np.asarray(v) for v in sb.marginal(t))
        z_mean = (paths[:, i].mean(0) - mean) / np.sqrt(np.diag(cov) / n)
        # Var of a sample variance of a Gaussian: 2 sigma^4 / n.
        z_var = (paths[:, i].var(0) - np.diag(cov)) / (np.sqrt(2.0 / n) * np.diag(cov))
        assert np.all(np.abs(z_mean) < 4) and np.all(np.abs(z_var) < 4), (t, z_mean, z_var)
    # The paths end on the X_T marginal.
    np.testing.assert_allclose(paths[:, -1].mean(0), M1, atol=4 * np.sqrt(np.diag(C1).max() / n))


@pytest.mark.slow
def test_ipf_matches_the_closed_form(rng, key, x64):
    """IPF (LinearDrift, the exact drift class) vs the closed form at intermediate times.

    Standard errors combine the training samples (n per end) and the evaluation draws.
    """
    m0, c0, m1, c1, sigma = np.array([0.0]), np.array([[1.0]]), np.array([2.0]), np.array([[0.25]]), 1.0
    n, n_eval = 2000, 20_000
    x0 = rng.multivariate_normal(m0, c0, n)
    x1 = rng.multivariate_normal(m1, c1, n)
    fit = pi.bridges.schrodinger_bridge(x0, x1, sigma=sigma, drift_model=pi.bridges.LinearDrift(8),
                                        num_paths=n, num_steps=100, num_ipf_iterations=4,
                                        ridge=1e-6, key=key)
    sb = pi.bridges.gaussian_bridge(m0, c0, m1, c1, sigma)
    times = [0.25, 0.5, 0.75, 1.0]
    draws = np.asarray(fit.sample(jax.random.key(1), times, n_eval))
    for i, t in enumerate(times):
        mean, cov = (float(np.asarray(v).ravel()[0]) for v in sb.marginal(t))
        se_mean = np.sqrt(cov * (1.0 / n + 1.0 / n_eval))
        se_var = cov * np.sqrt(2.0 * (1.0 / n + 1.0 / n_eval))
        z_mean = (draws[:, i, 0].mean() - mean) / se_mean
        z_var = (draws[:, i, 0].var() - cov) / se_var
        assert abs(z_mean) < 4 and abs(z_var) < 4, (t, z_mean, z_var)
