"""GaussianMixturePrior: exact score / posterior mean, transitions, sampler convergence."""

import numpy as np
import pytest
import scipy.stats
import jax
import jax.numpy as jnp

import probinfer as pi

D = pi.diffusion


def mixture_2d():
    covs = np.array([[[1.0, 0.6], [0.6, 0.8]], [[0.3, -0.1], [-0.1, 0.6]]])
    return pi.GaussianMixture(np.array([0.25, 0.75]), np.array([[-2.0, 1.0], [1.5, -0.5]]),
                              covs)


def mixture_10d():
    rng = np.random.default_rng(7)
    a = rng.normal(size=(3, 10, 10)) / np.sqrt(10)
    covs = 0.3 * np.eye(10) + np.einsum("kij,klj->kil", a, a)
    return pi.GaussianMixture(np.array([0.5, 0.3, 0.2]), 2.0 * rng.normal(size=(3, 10)), covs)


@pytest.mark.parametrize("schedule", [D.VPSchedule("linear"), D.DiscreteVPSchedule.cosine(),
                                      D.edm()], ids=repr)
def test_score_matches_autodiff_of_noised_density(schedule, x64, key):
    mix = mixture_10d()
    prior = D.GaussianMixturePrior(mix, schedule, num_steps=20)

    @jax.jit
    def compare(x, step):
        autodiff = jax.vmap(jax.grad(prior.noised_mixture(step).log_density))(x)
        alpha, sigma = prior.alpha_sigma(step)
        tweedie = (x + sigma ** 2 * autodiff) / alpha
        return prior.score(x, step), autodiff, prior.denoise(x, step), tweedie

    for step in [0, 7, 19, 20]:
        x = prior.noised_mixture(step).sample(jax.random.fold_in(key, step), 16)
        score, autodiff, denoised, tweedie = compare(x, step)
        np.testing.assert_allclose(score, autodiff, rtol=1e-8, atol=1e-10)
        if step < prior.num_steps:
            # Tweedie's formula ties the posterior mean to the score
            np.testing.assert_allclose(denoised, tweedie, rtol=1e-7, atol=1e-8)


def test_posterior_mean_matches_quadrature(x64):
    mix = mixture_2d()
    prior = D.GaussianMixturePrior(mix, num_steps=10)
    grid = np.linspace(-9.0, 9.0, 901)
    x0 = np.stack(np.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    log_prior = np.asarray(jax.vmap(mix.log_density)(x0))
    for step in [2, 5, 7]:   # sigma >= 0.4: the 0.02 grid resolves the posterior
        alpha, sigma = float(prior.alphas[step]), float(prior.sigmas[step])
        points = np.array([[0.0, 0.0], [-1.5, 1.0], [1.0, -1.0]]) * alpha
        for x in points:
            log_w = log_prior - 0.5 * np.sum((x - alpha * x0) ** 2, 1) / sigma ** 2
            w = np.exp(log_w - log_w.max())
            expected = (w[:, None] * x0).sum(0) / w.sum()
            got = np.asarray(prior.denoise(jnp.asarray(x)[None], step))[0]
            np.testing.assert_allclose(got, expected, atol=1e-6)


def test_conversions_and_data_endpoint(x64, key):
    prior = D.GaussianMixturePrior(mixture_2d(), num_steps=8)
    x = prior.noised_mixture(3).sample(key, 5)
    alpha, sigma = prior.alpha_sigma(3)
    x0 = prior.denoise(x, 3)
    np.testing.assert_allclose(D.x0_from_eps(x, prior.predict_eps(x, 3), alpha, sigma), x0)
    np.testing.assert_allclose(D.x0_from_v(x, prior.predict_v(x, 3), alpha, sigma), x0)
    data = prior.mixture.sample(key, 5)
    np.testing.assert_allclose(prior.denoise(data, prior.num_steps), data, rtol=1e-10)


def test_ddim_eta_one_is_ddpm_and_nfe(key):
    mix = mixture_2d()
    ddpm = D.GaussianMixturePrior(mix, num_steps=12, sampler="ddpm")
    ddim = D.GaussianMixturePrior(mix, num_steps=12, sampler=D.DDIM(eta=1.0))
    x = ddpm.init(key, 64)
    step_ddpm, step_ddim = jax.jit(ddpm.transition), jax.jit(ddim.transition)
    for step in [0, 6, 11]:
        np.testing.assert_allclose(step_ddpm(key, x, step), step_ddim(key, x, step),
                                   rtol=1e-4, atol=1e-5)
    heun = D.GaussianMixturePrior(mix, num_steps=12, sampler="heun")
    assert not heun.is_stochastic and ddpm.is_stochastic
    assert not D.GaussianMixturePrior(mix, num_steps=12, sampler="ddim").is_stochastic
    assert list(heun.nfe_per_step) == [2] * 11 + [1]
    assert list(ddpm.nfe_per_step) == [1] * 12
    with pytest.raises(ValueError, match="no Gaussian transition density"):
        heun.transition_log_density(x, x, 0)


@pytest.mark.parametrize("sampler", ["ddpm", D.DDIM(eta=0.5), "euler_maruyama"], ids=str)
def test_transition_draws_match_its_log_density(sampler, key):
    prior = D.GaussianMixturePrior(mixture_2d(), num_steps=10, sampler=sampler)
    n = 20000
    x = jnp.broadcast_to(prior.init(key, 1), (n, 2))
    step = 4
    nxt = jax.jit(prior.transition)(jax.random.fold_in(key, 1), x, step)
    mean, std = prior.transition_mean_std(x[:1], step)
    z_mean = (np.asarray(nxt.mean(0)) - np.asarray(mean[0])) / (float(std) / np.sqrt(n))
    z_var = (np.asarray(nxt.var(0)) / float(std) ** 2 - 1.0) / np.sqrt(2.0 / n)
    crit = scipy.stats.norm.isf(0.001 / 8)
    assert np.all(np.abs(z_mean) < crit) and np.all(np.abs(z_var) < crit), (z_mean, z_var)
    log_q = prior.transition_log_density(x[:3], nxt[:3], step)
    expected = scipy.stats.multivariate_normal(np.asarray(mean[0]), float(std) ** 2).logpdf(
        np.asarray(nxt[:3]))
    np.testing.assert_allclose(log_q, expected, rtol=1e-4)


def moment_z_scores(x, mix):
    """z-scores (MCSE) of every mean and second-moment entry against the exact mixture."""
    x = np.asarray(x, np.float64)
    n, d = x.shape
    mu = np.asarray(mix.mean, np.float64)
    second = np.asarray(mix.covariance, np.float64) + np.outer(mu, mu)
    iu = np.triu_indices(d)
    prods = (x[:, :, None] * x[:, None, :])[:, iu[0], iu[1]]
    values = np.concatenate([x, prods], 1)
    exact = np.concatenate([mu, second[iu]])
    return (values.mean(0) - exact) / (values.std(0, ddof=1) / np.sqrt(n))


def energy_permutation_pvalue(a, b, rng, num_permutations=200):
    """Two-sample energy statistic (Székely & Rizzo) with a permutation p-value.

    With signs ``w = +1/n`` on sample a and ``-1/n`` on b the statistic
    ``2 E|a-b| - E|a-a'| - E|b-b'|`` is ``-wᵀ D w``, so all permutations are one product.
    """
    z = np.concatenate([a, b]).astype(np.float64)
    dist = np.sqrt(((z[:, None] - z[None]) ** 2).sum(-1))
    n = len(a)
    signs = np.concatenate([np.full(n, 1.0 / n), np.full(len(b), -1.0 / len(b))])
    perms = np.stack([signs] + [rng.permutation(signs) for _ in range(num_permutations)])
    stats = -np.sum((perms @ dist) * perms, axis=1)
    return (1 + np.sum(stats[1:] >= stats[0])) / (1 + num_permutations)


@pytest.mark.parametrize("dim", [2, 10])
@pytest.mark.parametrize("sampler", ["ddpm", D.DDIM(eta=0.5), "euler_maruyama"], ids=str)
def test_stochastic_samplers_converge_to_the_mixture(sampler, dim, key, rng):
    mix = mixture_2d() if dim == 2 else mixture_10d()
    n = 4000
    num_tests = dim + dim * (dim + 1) // 2
    crit = scipy.stats.norm.isf(0.001 / (2 * num_tests))
    many = D.GaussianMixturePrior(mix, num_steps=250, sampler=sampler).sample(key, n)
    z_many = moment_z_scores(many, mix)
    if dim == 2 and sampler == "ddpm":
        # the same check has power: 4 steps are visibly wrong
        few = D.GaussianMixturePrior(mix, num_steps=4, sampler=sampler).sample(key, n)
        assert np.abs(moment_z_scores(few, mix)).max() > crit
    assert np.abs(z_many).max() < crit, np.abs(z_many).max()
    exact = np.asarray(mix.sample(jax.random.fold_in(key, 99), 500))
    assert energy_permutation_pvalue(np.asarray(many[:500]), exact, rng) > 0.001


def test_sample_shapes_and_bad_particles(key):
    prior = D.GaussianMixturePrior(mixture_2d(), num_steps=5)
    path = prior.sample(key, 7, return_trajectory=True)
    assert path.shape == (6, 7, 2)
    with pytest.raises(ValueError, match="particles must have shape"):
        prior.transition(key, jnp.zeros((7, 3)), 0)
    with pytest.raises(ValueError, match="particles must have shape"):
        prior.denoise(jnp.zeros(2), 0)
    with pytest.raises(TypeError, match="GaussianMixture"):
        D.GaussianMixturePrior(jnp.zeros(2))
    with pytest.raises(ValueError, match="sampler"):
        D.GaussianMixturePrior(mixture_2d(), sampler="rk4")
    with pytest.raises(ValueError, match="eta"):
        D.DDIM(eta=-1.0)
    with pytest.raises(ValueError, match="num_steps"):
        D.GaussianMixturePrior(mixture_2d(), num_steps=0)
