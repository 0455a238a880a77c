"""Analytic targets: exact densities, sampling, and closed-form tilts.

The tilts are checked three ways: the pointwise identity
``log tilted(x) = log p(x) + r(x)/T - log Z`` (exact), numerical integration on a grid in
2-D, and importance sampling in 6-D with MCSE tolerances.
"""

import math

import numpy as np
import pytest
import scipy.stats
import jax
import jax.numpy as jnp

import probinfer as pi


def random_mixture(rng, k=3, d=2):
    weights = rng.dirichlet(np.ones(k))
    means = rng.normal(0, 2.0, (k, d))
    a = rng.normal(size=(k, d, d))
    covs = a @ np.swapaxes(a, 1, 2) / d + 0.3 * np.eye(d)
    return pi.GaussianMixture(weights, means, covs)


def random_psd(rng, d, rank=None):
    rank = d if rank is None else rank
    b = rng.normal(size=(d, rank))
    return b @ b.T / rank


def test_mixture_log_density_matches_scipy(x64, rng):
    mix = random_mixture(rng, k=4, d=3)
    xs = rng.normal(0, 3, (20, 3))
    expected = np.log(sum(
        float(w) * scipy.stats.multivariate_normal(np.asarray(m), np.asarray(c)).pdf(xs)
        for w, m, c in zip(mix.weights, mix.means, mix.covs)))
    np.testing.assert_allclose(np.asarray(mix.batch_log_density(jnp.asarray(xs))), expected,
                               rtol=1e-10)
    g = pi.Gaussian(mix.means[0], mix.covs[0])
    np.testing.assert_allclose(
        np.asarray(g.batch_log_density(jnp.asarray(xs))),
        scipy.stats.multivariate_normal(np.asarray(mix.means[0]), np.asarray(mix.covs[0]))
        .logpdf(xs), rtol=1e-10)


def test_mixture_sampling_moments(x64, rng, key):
    mix = random_mixture(rng, k=3, d=2)
    n = 200_000
    x = np.asarray(mix.sample(key, n))
    se = np.sqrt(np.diag(np.asarray(mix.covariance)) / n)
    assert (np.abs(x.mean(0) - np.asarray(mix.mean)) / se).max() < 4
    # Component frequencies: a chi-square goodness of fit on hard assignments by responsibility
    # would be approximate; instead check the second moment, whose MCSE is known from 4th moments.
    sq = x ** 2
    se2 = sq.std(0) / np.sqrt(n)
    expected2 = np.diag(np.asarray(mix.covariance)) + np.asarray(mix.mean) ** 2
    assert (np.abs(sq.mean(0) - expected2) / se2).max() < 4


def _grid_log_integral(log_f, lo=-14, hi=14, num=801):
    g = np.linspace(lo, hi, num)
    xx, yy = np.meshgrid(g, g, indexing="ij")
    pts = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], -1))
    vals = np.asarray(jax.vmap(log_f)(pts), np.float64)
    h = g[1] - g[0]
    m = vals.max()
    return m + np.log(np.exp(vals - m).sum() * h * h)


@pytest.mark.parametrize("kind", ["linear", "quadratic", "quadratic-singular"])
def test_tilts_pointwise_identity_and_grid_integral(kind, x64, rng):
    mix = random_mixture(rng, k=3, d=2)
    temperature = 0.7
    if kind == "linear":
        a = jnp.asarray(rng.normal(size=2))
        tilted, log_z = mix.tilt_linear(a, temperature)
        reward = lambda x: a @ x
    else:
        center = jnp.asarray(rng.normal(0, 2, 2))
        precision = jnp.asarray(random_psd(rng, 2, rank=1 if kind.endswith("singular") else 2))
        tilted, log_z = mix.tilt_quadratic(center, precision, temperature)
        reward = lambda x: -0.5 * (x - center) @ precision @ (x - center)
    unnormalised = lambda x: mix.log_density(x) + reward(x) / temperature
    xs = jnp.asarray(rng.normal(0, 3, (50, 2)))
    np.testing.assert_allclose(np.asarray(jax.vmap(tilted.log_density)(xs)),
                               np.asarray(jax.vmap(unnormalised)(xs)) - float(log_z),
                               rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(float(log_z), _grid_log_integral(unnormalised), atol=1e-6)
    np.testing.assert_allclose(float(jnp.sum(tilted.weights)), 1.0, rtol=1e-12)


def test_quadratic_tilt_by_importance_sampling_6d(x64, rng, key):
    """Independent of the closed form: E_p[exp(r/T)] and the tilted mean by plain IS."""
    mix = random_mixture(rng, k=4, d=6)
    center = jnp.asarray(rng.normal(0, 1, 6))
    precision = jnp.asarray(random_psd(rng, 6, rank=3)) * 0.3
    temperature = 2.0
    tilted, log_z = mix.tilt_quadratic(center, precision, temperature)
    n = 400_000
    x = mix.sample(key, n)
    r = jax.vmap(lambda v: -0.5 * (v - center) @ precision @ (v - center))(x) / temperature
    w = np.exp(np.asarray(r, np.float64))
    z_hat, z_se = w.mean(), w.std(ddof=1) / math.sqrt(n)
    assert abs(z_hat - math.exp(float(log_z))) < 4 * z_se
    xw = np.asarray(x) * w[:, None]
    # Ratio estimator of the tilted mean; delta-method standard error.
    mean_hat = xw.mean(0) / z_hat
    resid = (np.asarray(x) - mean_hat) * w[:, None] / z_hat
    se = resid.std(0, ddof=1) / math.sqrt(n)
    assert (np.abs(mean_hat - np.asarray(tilted.mean)) / se).max() < 4.5


def test_gaussian_tilts_agree_with_one_component_mixture(x64, rng):
    mix = random_mixture(rng, k=1, d=3)
    g = pi.Gaussian(mix.means[0], mix.covs[0])
    a = jnp.asarray(rng.normal(size=3))
    (gt, gz), (mt, mz) = g.tilt_linear(a, 1.5), mix.tilt_linear(a, 1.5)
    np.testing.assert_allclose(np.asarray(gt.mean), np.asarray(mt.means[0]), rtol=1e-12)
    np.testing.assert_allclose(float(gz), float(mz), rtol=1e-12)
    c, p = jnp.asarray(rng.normal(size=3)), jnp.asarray(random_psd(rng, 3))
    (gt, gz), (mt, mz) = g.tilt_quadratic(c, p, 0.5), mix.tilt_quadratic(c, p, 0.5)
    np.testing.assert_allclose(np.asarray(gt.cov), np.asarray(mt.covs[0]), rtol=1e-10)
    np.testing.assert_allclose(float(gz), float(mz), rtol=1e-10)


def test_tilt_low_mass_mode_moves_mass(rng):
    mix = pi.GaussianMixture(jnp.array([0.95, 0.05]), jnp.array([[-3.0], [3.0]]),
                             jnp.ones((2, 1, 1)) * 0.5)
    tilted, _ = mix.tilt_quadratic(jnp.array([3.0]), jnp.eye(1), 0.5)
    assert float(tilted.weights[1]) > 0.99


def test_mixture_is_a_pytree_usable_under_jit(rng):
    mix = random_mixture(rng)

    @jax.jit
    def tilted_mean(m, a):
        return m.tilt_linear(a, 1.0)[0].mean

    out = tilted_mean(mix, jnp.ones(2))
    expected = mix.tilt_linear(jnp.ones(2), 1.0)[0].mean
    np.testing.assert_allclose(np.asarray(out), np.asarray(expected), rtol=1e-5)


def test_generic_tilt_and_geometric_path(rng):
    mix = random_mixture(rng)
    reward = lambda x: -jnp.sum(x ** 2)
    t = pi.tilt(mix, reward, temperature=2.0)
    x = jnp.array([0.3, -1.2])
    np.testing.assert_allclose(float(t.log_density(x)),
                               float(mix.log_density(x) + reward(x) / 2.0), rtol=1e-6)
    path = pi.geometric_path(mix, reward)
    np.testing.assert_allclose(float(path.at(0.25).log_density(x)),
                               float(mix.log_density(x) + 0.25 * reward(x)), rtol=1e-6)
    f = pi.from_logdensity(lambda v: -0.5 * jnp.sum(v ** 2))
    assert not f.can_sample and mix.can_sample


def test_bad_input_errors():
    with pytest.raises(ValueError, match="weights must sum to one"):
        pi.GaussianMixture([0.5, 0.6], [[0.0], [1.0]], np.ones((2, 1, 1)))
    with pytest.raises(ValueError, match="means must have shape"):
        pi.GaussianMixture([0.5, 0.5], [[0.0], [1.0], [2.0]], np.ones((2, 1, 1)))
    with pytest.raises(ValueError, match="covs must be positive definite"):
        pi.GaussianMixture([0.5, 0.5], [[0.0], [1.0]], -np.ones((2, 1, 1)))
    with pytest.raises(ValueError, match="covs must be symmetric"):
        pi.GaussianMixture([1.0], [[0.0, 0.0]], [[[1.0, 0.5], [0.0, 1.0]]])
    with pytest.raises(ValueError, match="weights must be finite"):
        pi.GaussianMixture([np.nan, 1.0], [[0.0], [1.0]], np.ones((2, 1, 1)))
    with pytest.raises(ValueError, match="mean must be finite"):
        pi.Gaussian([np.inf, 0.0], np.eye(2))
    with pytest.raises(TypeError, match="mean must be array-like"):
        pi.Gaussian(object(), np.eye(2))
    g = pi.Gaussian(np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="temperature"):
        g.tilt_linear(np.ones(2), temperature=0.0)
    with pytest.raises(ValueError, match="a must have shape"):
        g.tilt_linear(np.ones(3))
    with pytest.raises(ValueError, match="positive semi-definite"):
        g.tilt_quadratic(np.zeros(2), -np.eye(2))
    with pytest.raises(ValueError, match="num_samples"):
        g.sample(jax.random.key(0), 0)
    with pytest.raises(TypeError, match="reward must be callable"):
        pi.tilt(g, 3.0)
    with pytest.raises(TypeError, match="base must be a probinfer Target"):
        pi.tilt(lambda x: x, lambda x: x)
