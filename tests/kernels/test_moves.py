"""Move kernels: each leaves a known Gaussian invariant; combinators and adaptation.

Invariance test: start from exact i.i.d. draws of N(mu, S); a kernel that leaves the target
invariant returns i.i.d. draws of N(mu, S) again (each particle moves independently), so
sample means and second moments have the plain i.i.d. Monte Carlo standard errors. The
preconditioner is deliberately off (1.3 x the Cholesky factor) so the kernels do real work,
and each test also checks that particles actually moved.
"""

import numpy as np
import pytest
import jax
import jax.numpy as jnp

import probinfer as pi

MU = jnp.array([1.0, -2.0, 0.5])
CHOL = jnp.array([[1.0, 0.0, 0.0], [0.6, 2.0, 0.0], [0.2, -0.5, 0.4]])
COV = CHOL @ CHOL.T
PRECISION = jnp.linalg.inv(COV)
Z_MAX = 4.0  # two-sided p ≈ 6e-5 per check; at most ~10 checks per test


def _log_density(x):
    r = x - MU
    return -0.5 * r @ PRECISION @ r


def _exact_draws(key, num):
    return MU + jax.random.normal(key, (num, 3)) @ CHOL.T


def _params(kernel):
    """Default step sizes with a deliberately imperfect preconditioner, 1.3 x CHOL."""
    return jax.tree_util.tree_map(
        lambda p: p._replace(scale=1.3 * CHOL), kernel.default_params(3),
        is_leaf=lambda node: isinstance(node, pi.kernels.KernelParams))


def _moment_z_scores(x):
    """z-scores of the sample mean and second central moments (true mean) against N(MU, COV)."""
    x = np.asarray(x, np.float64)
    n = x.shape[0]
    r = x - np.asarray(MU)
    z = list(r.mean(0) / np.sqrt(np.diag(np.asarray(COV)) / n))
    for i in range(3):
        for j in range(i, 3):
            prod = r[:, i] * r[:, j]
            z.append((prod.mean() - float(COV[i, j])) / (prod.std() / np.sqrt(n)))
    return np.array(z)


KERNELS = {
    "rwm": pi.kernels.repeat(pi.kernels.rwm(), 3),
    "mala": pi.kernels.repeat(pi.kernels.mala(), 3),
    "hmc": pi.kernels.hmc(5),
    "hmc_length": pi.kernels.hmc(16, trajectory_length=1.5),
    "nuts": pi.kernels.nuts(5),
    "chain": pi.kernels.chain(pi.kernels.rwm(), pi.kernels.mala()),
    "adaptive": pi.kernels.adaptive_repeat(pi.kernels.rwm(), max_num_steps=30),
}


@pytest.mark.parametrize("name", list(KERNELS))
def test_kernel_leaves_gaussian_invariant(key, name):
    kernel = KERNELS[name]
    x0 = _exact_draws(key, 20_000)
    move = jax.jit(lambda k, x: kernel.move(k, x, _log_density, _params(kernel)))
    x, info = move(jax.random.fold_in(key, 1), x0)
    z = _moment_z_scores(x)
    assert np.abs(z).max() < Z_MAX, z
    moved = float(jnp.mean(jnp.any(x != x0, axis=1)))
    assert moved > 0.3, f"only {moved:.2f} of particles moved"
    for rate in jax.tree_util.tree_leaves(info.acceptance_rate):
        assert rate.shape == (20_000,)
        assert 0.05 < float(rate.mean()) <= 1.0


def test_trajectories_keep_every_state_and_stay_invariant(key):
    """Waste-free chains: M starts -> M * P states, each marginally N(MU, COV)."""
    kernel = pi.kernels.rwm()
    num_chains, length = 4000, 5
    x0 = _exact_draws(key, num_chains)
    x, info = jax.jit(lambda k, x: kernel.trajectories(k, x, _log_density, _params(kernel),
                                                       length))(jax.random.fold_in(key, 2), x0)
    assert x.shape == (num_chains * length, 3)
    assert info.acceptance_rate.shape == (num_chains,)
    chains = np.asarray(x).reshape(num_chains, length, 3)
    np.testing.assert_array_equal(chains[:, 0], np.asarray(x0))
    # States within a chain are correlated; chains are independent: MCSE from chain means.
    chain_means = chains.mean(1)
    z = (chain_means.mean(0) - np.asarray(MU)) / (chain_means.std(0) / np.sqrt(num_chains))
    assert np.abs(z).max() < Z_MAX, z
    assert np.mean(chains[:, -1] != chains[:, 0]) > 0.3


def test_pytree_particles(key):
    """Dict particles are ravelled for the move and restored with their structure."""
    kernel = pi.kernels.rwm()
    x0 = {"a": jax.random.normal(key, (50, 2)), "b": jnp.zeros(50)}
    ld = lambda p: -0.5 * (jnp.sum(p["a"] ** 2) + p["b"] ** 2)  # noqa: E731
    x, info = jax.jit(lambda k, x: kernel.move(k, x, ld, kernel.default_params(3)))(key, x0)
    assert x["a"].shape == (50, 2) and x["b"].shape == (50,)
    assert info.acceptance_rate.shape == (50,)


def test_adaptation_scale_is_weighted_covariance(key, rng):
    x = _exact_draws(key, 1000)
    log_w = jnp.asarray(rng.normal(size=1000))
    w = np.exp(np.asarray(log_w) - np.asarray(log_w).max())
    expected = np.cov(np.asarray(x).T, aweights=w, ddof=0)
    ess = w.sum() ** 2 / (w ** 2).sum()
    lam = 3 / (3 + 10 * ess)  # the documented shrinkage towards the diagonal
    shrunk = (1 - lam) * expected + lam * np.diag(np.diag(expected))
    kernel = pi.kernels.hmc()
    full = pi.kernels.population_adaptation(covariance="full")(kernel, kernel.default_params(3),
                                                                x, log_w)
    np.testing.assert_allclose(full.scale @ full.scale.T, shrunk, rtol=1e-4, atol=1e-5)
    assert np.abs(full.scale @ full.scale.T - expected).max() > 1e-6  # shrinkage applied
    diag = pi.kernels.population_adaptation(covariance="diag")(kernel, kernel.default_params(3),
                                                                x, log_w)
    np.testing.assert_allclose(diag.scale ** 2, np.diag(expected), rtol=1e-4)
    np.testing.assert_allclose(full.step_size, kernel.default_params(3).step_size)
    # 'auto' (the default): dense with >= 10 particles per dimension, diagonal below that
    # and above 200 dimensions.
    auto = pi.kernels.population_adaptation()
    np.testing.assert_allclose(auto(kernel, kernel.default_params(3), x, log_w).scale,
                               full.scale)
    assert auto(kernel, kernel.default_params(3), x[:29], log_w[:29]).scale.shape == (3,)
    assert auto.uses_full(2000, 200) and not auto.uses_full(2000, 201)
    assert not auto.uses_full(1999, 200)


def test_adaptation_step_size_follows_acceptance(key):
    x = _exact_draws(key, 200)
    lw = jnp.zeros(200)
    adapt = pi.kernels.population_adaptation(gain=2.0)
    kernel = pi.kernels.chain(pi.kernels.rwm(), pi.kernels.mala())
    params = kernel.default_params(3)
    new = adapt(kernel, params, x, lw, (jnp.asarray(0.9), jnp.asarray(0.1)))
    assert float(new[0].step_size) > float(params[0].step_size)  # accepting too often
    assert float(new[1].step_size) < float(params[1].step_size)  # rejecting too often
    np.testing.assert_allclose(new[0].step_size,
                               params[0].step_size * np.exp(2.0 * (0.9 - 0.234)), rtol=1e-5)


def test_kernel_bad_input():
    with pytest.raises(ValueError, match="num_steps"):
        pi.kernels.repeat(pi.kernels.rwm(), 0)
    with pytest.raises(TypeError, match="Kernel"):
        pi.kernels.repeat(lambda x: x, 2)
    with pytest.raises(ValueError, match="at least one"):
        pi.kernels.chain()
    with pytest.raises(TypeError, match="argument 1"):
        pi.kernels.chain(pi.kernels.rwm(), "mala")
    with pytest.raises(ValueError, match="covariance"):
        pi.kernels.population_adaptation(covariance="low-rank")
    with pytest.raises(ValueError, match="num_integration_steps"):
        pi.kernels.hmc(0)
    for bad in (0.0, -1.0, float("inf"), "2", True):
        with pytest.raises(ValueError, match="trajectory_length"):
            pi.kernels.hmc(10, trajectory_length=bad)


def test_hmc_trajectory_length_sets_leapfrog_steps():
    """ceil(T / h) leapfrog steps, capped; the gradient count follows the params."""
    kernel = pi.kernels.hmc(8, trajectory_length=2.0)
    steps = kernel.num_leapfrog_steps(jnp.array([0.7, 1.0, 2.5, 0.1, jnp.nan]))
    np.testing.assert_array_equal(steps, [3, 2, 1, 8, 8])
    assert kernel.gradients_per_step is None
    params = kernel.default_params(3)._replace(step_size=jnp.asarray(0.45))
    assert int(pi.kernels.adaptive_repeat(kernel).gradient_evaluations(params)) == 5
    chained = pi.kernels.chain(pi.kernels.rwm(), pi.kernels.repeat(kernel, 2))
    rwm_params = pi.kernels.rwm().default_params(3)
    assert int(chained.gradient_evaluations((rwm_params, params))) == 10
    assert pi.kernels.hmc(7).gradient_evaluations(params) == 7


@pytest.mark.slow
def test_adaptive_repeat_stops_when_decorrelated(key):
    """The number of steps follows the mixing: a well-scaled HMC decorrelates a standard
    normal in one or two steps, random-walk Metropolis in 10 dimensions needs tens, and the
    squared jump distance at the stop has reached 2 d · decorrelation."""
    d = 10
    x0 = jax.random.normal(key, (4000, d))
    log_density = lambda z: -0.5 * jnp.sum(z ** 2)  # noqa: E731
    steps = {}
    for name, inner in (("hmc", pi.kernels.hmc(5)), ("rwm", pi.kernels.rwm())):
        kernel = pi.kernels.adaptive_repeat(inner, max_num_steps=100, decorrelation=0.8)
        x, info = kernel.move(jax.random.fold_in(key, 1), x0, log_density,
                              kernel.default_params(d))
        steps[name] = int(info.num_steps)
        # The stopping rule's distance: whitened by the starting population's covariance.
        chol = np.linalg.cholesky(np.cov(np.asarray(x0).T))
        white = np.linalg.solve(chol, np.asarray(x - x0).T)
        assert np.mean(np.sum(white ** 2, axis=0)) >= 2 * d * 0.8
        assert info.acceptance_rate.shape == (4000,)
    assert 1 <= steps["hmc"] <= 3 and 10 <= steps["rwm"] < 100, steps
    assert pi.kernels.adaptive_repeat(pi.kernels.hmc(7)).gradients_per_step == 7
    with pytest.raises(ValueError, match="decorrelation"):
        pi.kernels.adaptive_repeat(pi.kernels.rwm(), decorrelation=1.5)
    with pytest.raises(ValueError, match="min_num_steps"):
        pi.kernels.adaptive_repeat(pi.kernels.rwm(), max_num_steps=2, min_num_steps=3)
