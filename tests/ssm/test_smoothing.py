"""Filtering moments, lineages and the backward-sampling smoother against the exact
Kalman filter and Rauch–Tung–Striebel smoother."""

import numpy as np
import jax
import jax.numpy as jnp
import pytest

import probinfer as pi


def _joint_posterior(ssm, ys):
    """Exact p(x_{0:T-1} | y) by conditioning the joint Gaussian of (x, y) directly."""
    f, q, h, r = (np.asarray(a, np.float64) for a in (ssm.F, ssm.Q, ssm.H, ssm.R))
    m0, p0 = np.asarray(ssm.m0, np.float64), np.asarray(ssm.P0, np.float64)
    ys = np.asarray(ys, np.float64).reshape(len(ys), -1)
    T, d = ys.shape[0], f.shape[0]
    means = [m0]
    marg = [p0]
    for _ in range(1, T):
        means.append(f @ means[-1])
        marg.append(f @ marg[-1] @ f.T + q)
    cov_x = np.zeros((T * d, T * d))
    for s in range(T):
        for t in range(s, T):
            block = np.linalg.matrix_power(f, t - s) @ marg[s]
            cov_x[t * d:(t + 1) * d, s * d:(s + 1) * d] = block
            cov_x[s * d:(s + 1) * d, t * d:(t + 1) * d] = block.T
    hh = np.kron(np.eye(T), h)
    cov_y = hh @ cov_x @ hh.T + np.kron(np.eye(T), r)
    gain = np.linalg.solve(cov_y, hh @ cov_x).T
    mean = np.concatenate(means) + gain @ (ys.ravel() - hh @ np.concatenate(means))
    cov = cov_x - gain @ hh @ cov_x
    return mean.reshape(T, d), np.stack([cov[t * d:(t + 1) * d, t * d:(t + 1) * d]
                                         for t in range(T)])


def test_rts_smoother_matches_joint_gaussian(x64, rng, key):
    d, m, T = 2, 1, 6
    ssm = pi.ssm.LinearGaussian(rng.normal(0, 0.5, (d, d)), np.eye(d) * 0.3 + 0.1,
                                rng.normal(size=(m, d)), np.eye(m) * 0.4, rng.normal(size=d),
                                np.eye(d))
    _, ys = ssm.simulate(key, T)
    smoothed = ssm.kalman_smoother(ys)
    mean, cov = _joint_posterior(ssm, ys)
    np.testing.assert_allclose(smoothed.smoothing_means, mean, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(smoothed.smoothing_covs, cov, rtol=1e-8, atol=1e-10)
    # At the last step smoothing is filtering.
    filtered = ssm.kalman_filter(ys)
    np.testing.assert_allclose(smoothed.smoothing_means[-1], filtered.filtering_means[-1])


@pytest.mark.slow
def test_ffbs_matches_kalman_smoother_over_replicates(key):
    """Filtering means (from the kept history) and FFBS smoothing means and variances
    agree with the exact Kalman answers; z-scores from the spread over replicates.

    The filter is the guided one with the locally optimal proposal: with this seed y_2 is
    an outlier at which a bootstrap filter keeps an ESS of 1-3 of 256 particles, and its
    heavy-tailed, biased estimates would test the filter's degeneracy, not the smoother.
    """
    ssm = pi.ssm.LinearGaussian.scalar(rho=0.9, sigma_x=1.0, sigma_y=0.5)
    _, ys = ssm.simulate(key, 8)
    fk = pi.ssm.guided(ssm, ys, ssm.locally_optimal_proposal(), summary=pi.ssm.history)
    num, num_replicates = 256, 12

    def one(k):
        filter_key, backward_key = jax.random.split(k)
        _, info = pi.smc.scan(filter_key, fk, num, pi.particles.systematic,
                              pi.smc.ess_below(0.5))
        particles, log_weights = info.summary
        paths = pi.ssm.backward_sample(backward_key, ssm, particles, log_weights, num)
        filtering = jnp.einsum("tn,tnd->td", jnp.exp(log_weights), particles)
        return filtering[:, 0], paths[..., 0].mean(0), paths[..., 0].var(0)

    filtering, means, variances = jax.jit(jax.vmap(one))(jax.random.split(key, num_replicates))
    exact_filter = ssm.kalman_filter(ys)
    exact = ssm.kalman_smoother(ys)
    for estimates, truth in ((filtering, exact_filter.filtering_means[:, 0]),
                             (means, exact.smoothing_means[:, 0]),
                             (variances, exact.smoothing_covs[:, 0, 0])):
        estimates = np.asarray(estimates)
        se = estimates.std(0, ddof=1) / np.sqrt(num_replicates)
        z = (estimates.mean(0) - np.asarray(truth)) / se
        assert np.max(np.abs(z)) < 5, z


def test_smooth_runner_and_moments(key):
    ssm = pi.ssm.LinearGaussian.scalar(rho=0.9, sigma_x=1.0, sigma_y=0.5)
    _, ys = ssm.simulate(key, 6)
    res = pi.ssm.smooth(key, ssm, ys, 128, 64)
    assert res.samples.shape == (64, 6, 1)
    np.testing.assert_allclose(res.log_weights, -np.log(64.0), rtol=1e-6)
    assert np.isfinite(float(res.log_evidence))
    # moments() on the same run (same key: the summary does not touch the randomness)
    # equals the weighted mean and variance of the kept history.
    run_key = jax.random.split(key)[0]
    with_moments = pi.smc.run(run_key, pi.ssm.bootstrap(ssm, ys, summary=pi.ssm.moments()),
                              128)
    particles, log_weights = res.info.summary
    w = np.exp(np.asarray(log_weights))
    mean = np.einsum("tn,tnd->td", w, np.asarray(particles))
    var = np.einsum("tn,tnd->td", w, (np.asarray(particles) - mean[:, None]) ** 2)
    np.testing.assert_allclose(with_moments.info.summary.mean, mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(with_moments.info.summary.var, var, rtol=1e-3, atol=1e-5)


def test_lineages_and_trajectories():
    ancestors = jnp.array([[0, 1, 2], [0, 0, 2], [1, 1, 0]])
    np.testing.assert_array_equal(pi.ssm.lineages(ancestors),
                                  [[0, 0, 0], [1, 1, 0], [0, 1, 2]])
    particles = jnp.arange(9.0).reshape(3, 3, 1)         # step t, particle i: 3 t + i
    paths = pi.ssm.trajectories(particles, ancestors)
    np.testing.assert_array_equal(paths[..., 0], [[0, 4, 6], [0, 4, 7], [0, 3, 8]])
    with pytest.raises(ValueError, match="ancestors"):
        pi.ssm.lineages(jnp.zeros((3, 3)))


def test_backward_sample_rejects_mismatched_shapes(key):
    ssm = pi.ssm.LinearGaussian.scalar()
    with pytest.raises(ValueError, match="agree"):
        pi.ssm.backward_sample(key, ssm, jnp.zeros((4, 10, 1)), jnp.zeros((4, 9)), 5)
