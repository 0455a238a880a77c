"""Denoising MCMC: DLG's stationary joint, the hand-off, NFE accounting, tilt, bad input.

Exact answers come from ``GaussianMixturePrior``: under ``p(x, i) ∝ pi(i) p_i(x)`` the level
marginal is ``pi`` and ``x | i`` is the noised mixture, so the joint's moments are closed
form. Chains are independent, so their final states are i.i.d. and z-scores use the
plain standard error.
"""

import numpy as np
import pytest
import scipy.stats
import jax
import jax.numpy as jnp

import probinfer as pi

D = pi.diffusion
Z_MAX = 4.0


def mixture_2d():
    covs = np.array([[[1.0, 0.6], [0.6, 0.8]], [[0.3, -0.1], [-0.1, 0.6]]])
    return pi.GaussianMixture(np.array([0.25, 0.75]), np.array([[-2.0, 1.0], [1.5, -0.5]]),
                              covs)


@pytest.fixture(scope="module")
def prior():
    """One prior for the statistical tests, so its compiled kernels are shared."""
    return D.GaussianMixturePrior(mixture_2d(), num_steps=50, sampler="ddpm")


LEVELS = np.arange(30, 50)


def joint_moments(prior, levels):
    """Exact E[x] and E[x xᵀ] under pi(i) p_i(x) with pi uniform on ``levels``."""
    mix = prior.mixture
    m0 = np.asarray(mix.mean)
    s0 = np.asarray(mix.covariance) + np.outer(m0, m0)
    a = np.asarray(prior.alphas)[levels]
    s = np.asarray(prior.sigmas)[levels]
    mean = np.mean(a) * m0
    second = np.mean(a ** 2) * s0 + np.mean(s ** 2) * np.eye(mix.dim)
    return mean, second


def z_scores(values, expected):
    values = np.asarray(values, np.float64)
    return (values.mean(0) - expected) / (values.std(0, ddof=1) / np.sqrt(values.shape[0]))


@pytest.mark.slow
def test_dlg_converges_to_exact_joint(prior, key):
    """From chains all started at the noisiest allowed level, MALA + exact Gibbs reach the
    exact joint: level histogram = pi, moments = the closed-form ones."""
    init, step = pi.dmcmc.dlg(prior)
    params = pi.dmcmc.dlg_params(prior, step_size=0.5, levels=LEVELS)
    num_chains = 1000
    x = prior.noised_mixture(int(LEVELS[0])).sample(jax.random.fold_in(key, 1), num_chains)
    state = init(x, int(LEVELS[0]))

    state, (acceptance, nfe, estimator_calls) = pi.dmcmc.run_chains(step, key, state, params,
                                                                    200)
    assert float(acceptance) > 0.5
    assert int(nfe) == 200 * 2 * num_chains and int(estimator_calls) == 0
    counts = np.bincount(np.asarray(state.level) - LEVELS[0], minlength=LEVELS.size)
    assert counts.sum() == num_chains and np.all(np.isin(np.asarray(state.level), LEVELS))
    assert scipy.stats.chisquare(counts).pvalue > 1e-3
    mean, second = joint_moments(prior, LEVELS)
    x = np.asarray(state.x, np.float64)
    assert np.all(np.abs(z_scores(x, mean)) < Z_MAX)
    outer = np.stack([x[:, 0] ** 2, x[:, 1] ** 2, x[:, 0] * x[:, 1]], 1)
    expected = np.array([second[0, 0], second[1, 1], second[0, 1]])
    assert np.all(np.abs(z_scores(outer, expected)) < Z_MAX)


@pytest.mark.slow
def test_dmcmc_samples_converge_to_mixture(prior, key):
    """After the DDPM hand-off (20 or fewer steps from a level near the data) the samples
    match the mixture's mean and covariance."""
    res = pi.dmcmc.sample(key, prior, 1000, num_chains=1000, step_size=0.5, levels=LEVELS,
                          num_warmup=100)
    x = np.asarray(res.samples, np.float64)
    assert x.shape == (1000, 2) and np.all(np.isfinite(x))
    mix = prior.mixture
    m0 = np.asarray(mix.mean)
    c0 = np.asarray(mix.covariance)
    assert np.all(np.abs(z_scores(x, m0)) < Z_MAX)
    products = np.stack([(x[:, 0] - m0[0]) ** 2, (x[:, 1] - m0[1]) ** 2,
                         (x[:, 0] - m0[0]) * (x[:, 1] - m0[1])], 1)
    assert np.all(np.abs(z_scores(products, [c0[0, 0], c0[1, 1], c0[0, 1]])) < Z_MAX)
    # mode weights: the fraction nearer the first component's mean
    near_first = np.linalg.norm(x - mix.means[0], axis=1) < np.linalg.norm(x - mix.means[1],
                                                                           axis=1)
    ref = np.asarray(mix.sample(jax.random.fold_in(key, 9), 200_000))
    exact = np.mean(np.linalg.norm(ref - mix.means[0], axis=1)
                    < np.linalg.norm(ref - mix.means[1], axis=1))
    se = np.sqrt(exact * (1 - exact) / x.shape[0])
    assert abs(near_first.mean() - exact) < Z_MAX * se
    assert res.info.nfe == res.info.nfe_init + res.info.nfe_mcmc + res.info.nfe_handoff
    assert np.isnan(float(res.log_evidence))


@pytest.mark.slow
def test_reward_tilt_matches_exact_tilted_mixture(prior, key):
    """Quadratic reward: weighted samples match the exact tilted mixture and the log
    evidence its log normaliser."""
    center, precision = jnp.array([1.0, 0.0]), 0.5 * jnp.eye(2)
    reward = lambda x: -0.5 * (x - center) @ precision @ (x - center)  # noqa: E731
    tilted, log_z = prior.mixture.tilt_quadratic(center, precision, 2.0)
    res = pi.dmcmc.sample(jax.random.fold_in(key, 3), prior, 1000, num_chains=1000,
                          step_size=0.5, levels=LEVELS, reward=reward, temperature=2.0)
    w = np.asarray(res.weights, np.float64)
    x = np.asarray(res.samples, np.float64)
    est = w @ x
    # self-normalised IS standard error (delta method)
    se = np.sqrt(np.sum(w[:, None] ** 2 * (x - est) ** 2, axis=0))
    assert np.all(np.abs(est - np.asarray(tilted.mean)) < Z_MAX * se)
    r = np.asarray(jax.vmap(reward)(res.samples), np.float64) / 2.0
    se_log_z = np.std(np.exp(r - r.max()), ddof=1) / np.sqrt(r.size) / np.mean(np.exp(r - r.max()))
    assert abs(float(res.log_evidence) - float(log_z)) < Z_MAX * se_log_z
    assert res.info.num_reward_evaluations == 1000


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["ddim", "dpm_solver_2m"])
def test_handoff_is_the_solver_from_each_level(sampler, key):
    """Each particle's hand-off equals the solver run alone from its level (fresh memory)."""
    prior = D.GaussianMixturePrior(mixture_2d(), num_steps=8, sampler=sampler)
    levels = jnp.array([5, 2, 7])
    x = prior.noised_mixture(4).sample(key, levels.shape[0])
    out = pi.dmcmc.handoff(jax.random.key(0), prior, x, levels, first_level=2)
    for j, level in enumerate(np.asarray(levels)):
        xj = x[j:j + 1]
        memory = prior.init_memory(xj)
        for s in range(int(level), prior.num_steps):
            xj, memory = prior.transition_with_memory(jax.random.key(1), xj, prior.denoise(xj, s),
                                                      memory, s)
        np.testing.assert_allclose(out[j], xj[0], rtol=1e-5, atol=1e-5)
    tails = pi.dmcmc.handoff_nfe(prior)
    assert tails[prior.num_steps] == 0 and tails[0] == prior.nfe_per_step.sum()


@pytest.mark.slow
def test_nfe_accounting_with_persistent_chains(key):
    """Rounds, thinning, warm-up, carrying to the first level and the hand-off are counted
    exactly (Heun: two calls per step, one on the last)."""
    prior = D.GaussianMixturePrior(mixture_2d(), num_steps=10, sampler="ddim")
    res = pi.dmcmc.sample(key, prior, 300, num_chains=100, sampler="heun", levels=range(5, 10),
                          num_warmup=7, thinning=2, step_size=0.3)
    info = res.info
    heun = np.array([2] * 9 + [1])
    assert info.num_rounds == 3
    assert info.nfe_init == 100 * prior.nfe_per_step[:5].sum() == 500
    assert info.nfe_mcmc == (7 + 3 * 2) * 100 * 2          # MALA: two calls per iteration
    tails = np.concatenate([np.cumsum(heun[::-1])[::-1], [0]])
    assert info.nfe_handoff == tails[np.asarray(info.handoff_levels)].sum()
    assert info.nfe == info.nfe_init + info.nfe_mcmc + info.nfe_handoff
    assert info.nfe_per_sample == pytest.approx(info.nfe / 300)
    assert info.num_estimator_calls == 0
    assert info.acceptance_rate.shape == (3,)
    # persistent chains: consecutive rounds continue the same chains (states differ)
    assert not np.allclose(res.samples[:100], res.samples[100:200])


@pytest.mark.slow
@pytest.mark.torch
def test_level_estimator_approximates_exact_conditional(key):
    """A small trained classifier's level conditional is close to the exact one, and
    drives DLG (sampled and argmax levels), its calls counted."""
    pytest.importorskip("torch")
    mix = mixture_2d()
    prior = D.GaussianMixturePrior(mix, num_steps=10, sampler="ddim")
    data = mix.sample(jax.random.fold_in(key, 1), 5000)
    est = pi.dmcmc.fit_level_estimator(jax.random.fold_in(key, 2), prior, data,
                                       num_iterations=400, batch_size=256, hidden_size=64)
    levels = jax.random.randint(jax.random.fold_in(key, 3), (2000,), 0, 10)
    x0 = mix.sample(jax.random.fold_in(key, 4), 2000)
    noise = jax.random.normal(jax.random.fold_in(key, 5), x0.shape)
    x = prior.alphas[levels][:, None] * x0 + prior.sigmas[levels][:, None] * noise
    flat = jnp.zeros(10)
    exact = np.exp(np.asarray(pi.dmcmc.exact_levels(prior).log_conditional(x, flat)))
    learned = np.exp(np.asarray(est.log_conditional(x, flat)))
    tv_learned = 0.5 * np.abs(exact - learned).sum(1).mean()
    tv_uniform = 0.5 * np.abs(exact - 0.1).sum(1).mean()
    assert tv_learned < 0.15 and tv_learned < 0.3 * tv_uniform
    calls = est.num_evaluations
    for update in ("sample", "argmax"):
        res = pi.dmcmc.sample(key, prior, 200, num_chains=100, level_model=est,
                              level_update=update, levels=range(4, 10), num_warmup=10)
        assert res.samples.shape == (200, 2) and np.all(np.isfinite(res.samples))
        assert res.info.num_estimator_calls == (10 + 2) * 100
        assert res.info.nfe_mcmc == (10 + 2) * 100                 # unadjusted: one call
    assert est.num_evaluations - calls == 2 * (10 + 2) * 100


class _Plain(D.ContinuousDiffusionPrior):
    """A continuous prior with a denoiser but no exact marginal density."""

    def __init__(self):
        super().__init__(D.VPSchedule(), 5, (2,))

    def denoise(self, x, step):
        return jnp.zeros_like(x)


class _NoMarginal(pi.dmcmc.LevelModel):
    num_levels = 50

    def log_conditional(self, x, log_level_prior):
        return jnp.broadcast_to(jax.nn.log_softmax(log_level_prior), (x.shape[0], 50))


def test_bad_input(prior):
    with pytest.raises(ValueError, match="step_size"):
        pi.dmcmc.dlg_params(prior, step_size=0.0)
    with pytest.raises(ValueError, match="step_size"):
        pi.dmcmc.dlg_params(prior, step_size=-1.0)
    with pytest.raises(ValueError, match="step_size"):
        pi.dmcmc.sample(jax.random.key(0), prior, 10, step_size=0.0)
    with pytest.raises(ValueError, match="levels"):
        pi.dmcmc.dlg_params(prior, levels=[20, 50])        # step 50 is the data
    with pytest.raises(ValueError, match="levels"):
        pi.dmcmc.sample(jax.random.key(0), prior, 10, levels=[-1, 3])
    with pytest.raises(ValueError, match="level_weights"):
        pi.dmcmc.dlg_params(prior, levels=[1, 2], level_weights=[1.0, -1.0])
    init, _ = pi.dmcmc.dlg(prior)
    with pytest.raises(ValueError, match="level"):
        init(jnp.zeros((3, 2)), 50)
    with pytest.raises(TypeError, match="level"):
        init(jnp.zeros((3, 2)), 0.5)
    with pytest.raises(ValueError, match="particles"):
        init(jnp.zeros((3, 4)), 0)
    masked = D.MarkovChainPrior(np.array([0.5, 0.5]), np.full((2, 2), 0.5), 4)
    with pytest.raises(TypeError, match="score"):
        pi.dmcmc.dlg(masked)
    with pytest.raises(TypeError, match="score"):
        pi.dmcmc.sample(jax.random.key(0), masked, 10)
    with pytest.raises(ValueError, match="noisy marginal"):
        pi.dmcmc.dlg(_Plain())
    with pytest.raises(ValueError, match="level_update"):
        pi.dmcmc.dlg(prior, level_update="mode")
    plain_levels = pi.dmcmc.ExactLevels(lambda x, s: jnp.zeros(x.shape[0]), 7)
    with pytest.raises(ValueError, match="levels"):
        pi.dmcmc.dlg(_Plain(), level_model=plain_levels)
    with pytest.raises(ValueError, match="metropolis"):
        pi.dmcmc.dlg(prior, level_model=_NoMarginal(), metropolis=True)
    with pytest.raises(TypeError, match="level_model"):
        pi.dmcmc.dlg(prior, level_model="exact")
    with pytest.raises(TypeError, match="reward"):
        pi.dmcmc.sample(jax.random.key(0), prior, 10, reward=3.0)
    with pytest.raises(ValueError, match="temperature"):
        pi.dmcmc.sample(jax.random.key(0), prior, 10, reward=jnp.sum, temperature=0.0)
