"""The DPM-Solver++ family: convergence order, convergence to the exact mixture, the SDE
transition law, per-particle memory under SMC resampling, thresholding."""

import numpy as np
import pytest
import scipy.stats
import jax
import jax.numpy as jnp

import probinfer as pi

from test_gaussian_mixture_prior import (energy_permutation_pvalue, mixture_2d, mixture_10d,
                                         moment_z_scores)

D = pi.diffusion
NEW_SAMPLERS = ["dpm_solver_2s", "dpm_solver_2m", "dpm_solver_3m", "dpm_solver_2m_sde"]


def flow_map_error(sampler, num_steps, key):
    """Max error at the last noisy step against the exact probability-flow map of a Gaussian.

    For ``x_0 ~ N(m, S)`` the ODE moves ``x_s - alpha_s m`` linearly by
    ``C_t^{1/2} C_s^{-1/2}`` with ``C = alpha² S + sigma² I`` (all commute), so the
    discretisation error of a deterministic solver is measured exactly.
    """
    mean, cov = np.array([1.0, -0.5]), np.array([[1.0, 0.6], [0.6, 0.8]])
    mix = pi.GaussianMixture(np.ones(1), mean[None], cov[None])
    prior = D.GaussianMixturePrior(mix, num_steps=num_steps, sampler=sampler, spacing="logsnr")
    path = np.asarray(prior.sample(key, 64, return_trajectory=True))

    def root(step, power):
        a, s = float(prior.alphas[step]), float(prior.sigmas[step])
        w, v = np.linalg.eigh(a * a * cov + s * s * np.eye(2))
        return v @ np.diag(w ** power) @ v.T, a

    start, a0 = root(0, -0.5)
    end, a1 = root(num_steps - 1, 0.5)
    exact = (path[0] - a0 * mean) @ (end @ start).T + a1 * mean
    return np.abs(path[-2] - exact).max()


@pytest.mark.slow
def test_ode_solvers_have_their_order(x64, key):
    errors = {s: [flow_map_error(s, n, key) for n in (20, 40)]
              for s in ["ddim", "dpm_solver_2s", "dpm_solver_2m", "dpm_solver_3m"]}
    slopes = {s: np.log2(e[0] / e[1]) for s, e in errors.items()}
    # ddim (DPM-Solver-1) is first order, 2S and 2M second, 3M third (its start-up steps
    # are lower order, so demand a bit less than 3)
    assert 0.8 < slopes["ddim"] < 1.3, slopes
    assert slopes["dpm_solver_2s"] > 1.7 and slopes["dpm_solver_2m"] > 1.7, slopes
    assert slopes["dpm_solver_3m"] > 2.5, slopes
    at_40 = {s: e[1] for s, e in errors.items()}
    assert at_40["dpm_solver_3m"] < at_40["dpm_solver_2m"] < at_40["ddim"], at_40


@pytest.mark.slow
@pytest.mark.parametrize("dim", [2, 10])
@pytest.mark.parametrize("sampler", NEW_SAMPLERS)
def test_new_samplers_converge_to_the_mixture(sampler, dim, key, rng):
    mix = mixture_2d() if dim == 2 else mixture_10d()
    n = 4000
    num_tests = dim + dim * (dim + 1) // 2
    crit = scipy.stats.norm.isf(0.001 / (2 * num_tests))
    # the SDE is first order in its noise like DDPM and needs its step count
    num_steps = 250 if sampler == "dpm_solver_2m_sde" else 60
    x = D.GaussianMixturePrior(mix, num_steps=num_steps, sampler=sampler).sample(key, n)
    z = moment_z_scores(x, mix)
    assert np.abs(z).max() < crit, np.abs(z).max()
    exact = np.asarray(mix.sample(jax.random.fold_in(key, 99), 500))
    assert energy_permutation_pvalue(np.asarray(x[:500]), exact, rng) > 0.001
    if dim == 2 and sampler == "dpm_solver_2m":
        # the same check has power: 4 steps are visibly wrong
        few = D.GaussianMixturePrior(mix, num_steps=4, sampler=sampler).sample(key, n)
        assert np.abs(moment_z_scores(few, mix)).max() > crit


@pytest.mark.slow
def test_memory_layout_and_memoryless_step(key):
    mix = mixture_2d()
    prior = D.GaussianMixturePrior(mix, num_steps=8, sampler="dpm_solver_3m")
    ddim = D.GaussianMixturePrior(mix, num_steps=8, sampler="ddim")
    x = prior.init(key, 16)
    memory = prior.init_memory(x)
    assert isinstance(memory, D.MultistepMemory)
    assert memory.denoised.shape == (16, 2, 2) and memory.num_valid.shape == (16,)
    assert D.GaussianMixturePrior(mix, num_steps=8, sampler="ddpm").init_memory(x) == ()
    # the memoryless transition is the first-order (DDIM) step; so is the first step
    np.testing.assert_allclose(prior.transition(key, x, 3), ddim.transition(key, x, 3),
                               rtol=1e-5, atol=1e-6)
    denoised = prior.denoise(x, 0)
    x1, memory = prior.transition_with_memory(key, x, denoised, memory, 0)
    np.testing.assert_allclose(x1, ddim.transition(key, x, 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(memory.denoised[:, 0], denoised)
    assert np.all(np.asarray(memory.num_valid) == 1)
    # from the second step on the history changes the step
    x2, memory = prior.transition_with_memory(key, x1, prior.denoise(x1, 1), memory, 1)
    assert np.abs(np.asarray(x2 - ddim.transition(key, x1, 1))).max() > 1e-3
    assert np.all(np.asarray(memory.num_valid) == 2)
    with pytest.raises(TypeError, match="MultistepMemory"):
        prior.transition_with_memory(key, x, denoised, (), 0)
    with pytest.raises(ValueError, match="memory must hold"):
        prior.transition_with_memory(key, x, denoised, prior.init_memory(x[:4]), 0)


def test_sde_first_order_step_is_ddpm(key):
    mix = mixture_2d()
    sde = D.GaussianMixturePrior(mix, num_steps=10, sampler="dpm_solver_2m_sde")
    ddpm = D.GaussianMixturePrior(mix, num_steps=10, sampler="ddpm")
    x = sde.init(key, 8)
    for step in [0, 5, 9]:
        m1, s1 = sde.transition_mean_std(x, step)
        m2, s2 = ddpm.transition_mean_std(x, step)
        np.testing.assert_allclose(m1, m2, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(s1, s2, rtol=1e-4, atol=1e-7)
    assert sde.is_stochastic
    assert not D.GaussianMixturePrior(mix, num_steps=4, sampler="dpm_solver_2m").is_stochastic


@pytest.mark.slow
def test_sde_draws_match_its_memory_log_density(key):
    prior = D.GaussianMixturePrior(mixture_2d(), num_steps=10, sampler="dpm_solver_2m_sde")
    n, step = 20000, 4
    x = jnp.broadcast_to(prior.init(key, 1), (n, 2))
    previous = jnp.broadcast_to(jnp.array([[0.5, -1.0]]), (n, 2))
    memory = D.MultistepMemory(previous[:, None], jnp.ones(n, jnp.int32))
    denoised = prior.denoise(x, step)
    nxt, new_memory = jax.jit(prior.transition_with_memory)(jax.random.fold_in(key, 1), x,
                                                             denoised, memory, step)
    np.testing.assert_allclose(new_memory.denoised[:, 0], denoised)
    np.testing.assert_allclose(prior.next_memory(x, denoised, memory, step).denoised,
                               new_memory.denoised)
    mean, std = prior.transition_mean_std(x[:1], step, memory=jax.tree.map(lambda a: a[:1],
                                                                           memory))
    first_order, _ = prior.transition_mean_std(x[:1], step)
    assert np.abs(np.asarray(mean - first_order)).max() > 10 * float(std) / np.sqrt(n)
    z_mean = (np.asarray(nxt.mean(0)) - np.asarray(mean[0])) / (float(std) / np.sqrt(n))
    z_var = (np.asarray(nxt.var(0)) / float(std) ** 2 - 1.0) / np.sqrt(2.0 / n)
    crit = scipy.stats.norm.isf(0.001 / 8)
    assert np.all(np.abs(z_mean) < crit) and np.all(np.abs(z_var) < crit), (z_mean, z_var)
    log_q = prior.transition_log_density(x[:3], nxt[:3], step,
                                         memory=jax.tree.map(lambda a: a[:3], memory))
    expected = scipy.stats.multivariate_normal(np.asarray(mean[0]), float(std) ** 2).logpdf(
        np.asarray(nxt[:3]))
    np.testing.assert_allclose(log_q, expected, rtol=1e-4)
    with pytest.raises(ValueError, match="no Gaussian transition density"):
        D.GaussianMixturePrior(mixture_2d(), num_steps=4,
                               sampler="dpm_solver_3m").transition_mean_std(x[:2], 0)


def memory_fk(prior, mismatch):
    """Particles ``(x, memory)``, zero potentials: SMC must leave the sampler's law alone.
    ``mismatch`` rolls the memory by one particle, what a runner that forgot to gather it
    at resampling does to a resampled particle."""
    def init(key, n):
        x = prior.init(key, n)
        return x, prior.init_memory(x)

    def move(key, particles, t):
        x, memory = particles
        if mismatch:
            memory = jax.tree.map(lambda a: jnp.roll(a, 1, axis=0), memory)
        return prior.transition_with_memory(key, x, prior.denoise(x, t - 1), memory, t - 1)

    return pi.smc.FeynmanKac(init, move, lambda x_prev, x, t: jnp.zeros(x[0].shape[0]),
                             prior.num_steps + 1)


@pytest.mark.slow
def test_resampling_carries_the_history(key, rng):
    # Multinomial resampling at every step duplicates particles (systematic resampling of
    # equal weights would not), so each copy continues from its ancestor's history.
    prior = D.GaussianMixturePrior(mixture_2d(), num_steps=6, sampler="dpm_solver_2m_sde")
    n = 800
    results = {name: pi.smc.run(jax.random.fold_in(key, i), memory_fk(prior, mismatch), n,
                                resampling="multinomial", policy=policy)
               for i, (name, mismatch, policy) in enumerate([("carried", False, "always"),
                                                             ("none", False, "never"),
                                                             ("mismatched", True, "never")])}
    assert bool(np.all(np.asarray(results["carried"].info.resampled)[1:]))
    runs = {name: np.asarray(res.samples[0]) for name, res in results.items()}
    assert energy_permutation_pvalue(runs["carried"], runs["none"], rng) > 0.001
    # the same test sees a history that does not belong to the particle
    assert energy_permutation_pvalue(runs["mismatched"], runs["none"], rng, 1000) < 0.002


@pytest.mark.slow
def test_thresholding(key):
    clip = D.Thresholding(ratio=0.5, max_value=2.0)
    x = jnp.array([[0.5, -3.0, 1.5, 4.0], [0.1, 0.2, -0.3, 0.4]])
    out = np.asarray(clip(x))
    # row 0: median of |x| = 2.25 clamped to 2 -> clip to [-2, 2], divide by 2
    np.testing.assert_allclose(out[0], [0.25, -1.0, 0.75, 1.0])
    np.testing.assert_allclose(out[1], np.asarray(x[1]))      # s clamps up to 1: unchanged
    mix = pi.GaussianMixture(np.array([0.5, 0.5]), np.array([[-2.0, 0.0], [2.0, 0.5]]),
                             np.stack([np.eye(2), np.eye(2)]))
    sampler = D.DPMSolverMultistep(order=2, thresholding=D.Thresholding(max_value=1.0))
    x = D.GaussianMixturePrior(mix, num_steps=8, sampler=sampler).sample(key, 500)
    assert float(jnp.abs(x).max()) <= 1.0 + 1e-6
    with pytest.raises(ValueError, match="ratio"):
        D.Thresholding(ratio=1.5)
    with pytest.raises(ValueError, match="max_value"):
        D.Thresholding(max_value=0.5)
    with pytest.raises(TypeError, match="thresholding"):
        D.DPMSolverSDE(thresholding=0.99)
    with pytest.raises(ValueError, match="order"):
        D.DPMSolverMultistep(order=4)


def test_names_and_nfe():
    mix = mixture_2d()
    for name in NEW_SAMPLERS:
        prior = D.GaussianMixturePrior(mix, num_steps=6, sampler=name)
        assert prior.sampler.name == name
        expected = [2] * 5 + [1] if name == "dpm_solver_2s" else [1] * 6
        assert list(prior.nfe_per_step) == expected


def diffusers_path(prior, order, x_init):
    """diffusers' DPMSolverMultistepScheduler (data prediction, ``trailing`` steps) driven
    by the prior's exact denoiser from ``x_init``: its state after every step."""
    torch = pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    scheduler = diffusers.DPMSolverMultistepScheduler(
        prediction_type="sample", solver_order=order, timestep_spacing="trailing")
    scheduler.set_timesteps(prior.num_steps)
    np.testing.assert_array_equal(scheduler.timesteps.numpy(), np.asarray(prior.timesteps))
    x, path = torch.from_numpy(np.asarray(x_init)), []
    for i, t in enumerate(scheduler.timesteps):
        denoised = torch.from_numpy(np.asarray(prior.denoise(jnp.asarray(x.numpy()), i)))
        x = scheduler.step(denoised, t, x).prev_sample
        path.append(x.numpy())
    return np.stack(path)


def test_multistep_matches_diffusers(key):
    # Same initial particles, same grid, same exact denoiser: 2M is diffusers' 2M step for
    # step; 3M is too until its first third-order step (step 2), where diffusers weighs the
    # curvature term by half of the exact integral that probinfer uses. Five steps: orders
    # 1, 2, 3, 2, 1 (lower_order_final in both), long steps that make the curvature visible.
    schedule = D.DiscreteVPSchedule.linear(1000)
    paths = {}
    for order in (2, 3):
        prior = D.GaussianMixturePrior(mixture_2d(), schedule, num_steps=5,
                                       sampler=f"dpm_solver_{order}m", spacing="trailing")
        ours = np.asarray(prior.sample(key, 64, return_trajectory=True))
        paths[order] = prior, ours, diffusers_path(prior, order, ours[0])
    _, ours, theirs = paths[2]
    np.testing.assert_allclose(ours[1:], theirs, atol=2e-4)
    prior, ours, theirs = paths[3]
    np.testing.assert_allclose(ours[1:3], theirs[:2], atol=2e-4)
    alphas, sigmas = np.asarray(prior.alphas, np.float64), np.asarray(prior.sigmas, np.float64)
    lam = np.log(alphas[:4]) - np.log(sigmas[:4])
    d = [np.asarray(prior.denoise(jnp.asarray(ours[i]), i), np.float64) for i in range(3)]
    f01, f12 = (d[2] - d[1]) / (lam[2] - lam[1]), (d[1] - d[0]) / (lam[1] - lam[0])
    f012 = (f01 - f12) / (lam[2] - lam[0])
    h = lam[3] - lam[2]
    psi2 = h ** 2 - 2 * (h - 1 + np.exp(-h))
    np.testing.assert_allclose(ours[3] - theirs[2], alphas[3] * 0.5 * psi2 * f012, atol=2e-4)
    assert np.abs(ours[3] - theirs[2]).max() > 5e-3       # the two weights are told apart
