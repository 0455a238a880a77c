"""The Feynman–Kac SMC engine against exact answers.

* linear-Gaussian SSM: Kalman log-likelihood and filtering means;
* a finite-state FK model with arbitrary (asymmetric) potentials: exact normalising
  constant by the forward recursion.

Unbiasedness is checked in exp-space: the mean over replicates of ``exp(log Z_hat - log Z)``
is 1 within a few Monte Carlo standard errors.
"""

import math

import numpy as np
import pytest
import jax
import jax.numpy as jnp

import probinfer as pi

POLICIES = {"always": pi.smc.always(), "ess-adaptive": pi.smc.ess_below(0.5)}


def _assert_unbiased_in_exp_space(log_z_hat, log_z, z_max=4.0):
    ratio = np.exp(np.asarray(log_z_hat, np.float64) - float(log_z))
    mean, se = ratio.mean(), ratio.std(ddof=1) / math.sqrt(ratio.size)
    assert se < 0.2, f"replicate spread too large to test anything (se={se})"
    assert abs(mean - 1.0) < z_max * se, (mean, se)


@pytest.fixture(scope="module")
def lg_problem():
    ssm = pi.ssm.LinearGaussian.scalar(rho=0.9, sigma_x=1.0, sigma_y=0.5)
    _, ys = ssm.simulate(jax.random.key(3), 25)
    return ssm, ys, ssm.kalman_filter(ys)


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_log_evidence_unbiased_on_linear_gaussian(policy, lg_problem, key):
    ssm, ys, kalman = lg_problem
    fk = pi.ssm.bootstrap(ssm, ys)
    run = jax.jit(jax.vmap(lambda k: pi.smc.scan(k, fk, 256, pi.particles.systematic,
                                                 POLICIES[policy])[0].log_evidence))
    log_z_hat = run(jax.random.split(key, 1000))
    _assert_unbiased_in_exp_space(log_z_hat, kalman.log_likelihood)


def test_guided_filter_unbiased_and_less_variable(lg_problem, key):
    ssm, ys, kalman = lg_problem
    keys = jax.random.split(key, 500)
    estimates = {}
    for name, fk in {"bootstrap": pi.ssm.bootstrap(ssm, ys),
                     "guided": pi.ssm.guided(ssm, ys, ssm.locally_optimal_proposal())}.items():
        run = jax.jit(jax.vmap(lambda k: pi.smc.scan(k, fk, 128, pi.particles.systematic,
                                                     pi.smc.ess_below(0.5))[0].log_evidence))
        estimates[name] = np.asarray(run(keys))
    _assert_unbiased_in_exp_space(estimates["guided"], kalman.log_likelihood)
    assert estimates["guided"].var() < estimates["bootstrap"].var()


def test_filtering_means_match_kalman(lg_problem, key):
    """Per-step filtering means from init/step, averaged over replicates."""
    ssm, ys, kalman = lg_problem
    fk = pi.ssm.bootstrap(ssm, ys)
    policy, num = pi.smc.ess_below(0.5), 1000

    def filter_means(k):
        keys = jax.random.split(k, fk.num_steps)
        state, _ = pi.smc.init(keys[0], fk, num)

        def body(s, kk):
            s, _ = pi.smc.step(kk, s, fk, pi.particles.systematic, policy)
            return s, pi.particles.weighted_mean(s.log_weights, s.particles[:, 0])

        _, means = jax.lax.scan(body, state, keys[1:])
        first = pi.particles.weighted_mean(state.log_weights, state.particles[:, 0])
        return jnp.concatenate([first[None], means])

    reps = 100
    means = np.asarray(jax.jit(jax.vmap(filter_means))(jax.random.split(key, reps)))
    est, se = means.mean(axis=0), means.std(axis=0, ddof=1) / math.sqrt(reps)
    z = np.abs(est - np.asarray(kalman.filtering_means[:, 0])) / se
    assert z.max() < 4.1, z.max()     # Bonferroni over 25 steps at two-sided level ~1e-3


class _FiniteStateFK:
    """X_0 ~ p0 on {0..K-1}, X_t ~ P[X_{t-1}], log G_t(x_prev, x) = A_t[x_prev, x] (asymmetric)."""

    def __init__(self, rng, num_states=4, num_steps=8):
        self.p0 = rng.dirichlet(np.ones(num_states))
        self.P = rng.dirichlet(np.ones(num_states), size=num_states)
        self.log_g0 = rng.normal(0, 1.0, num_states)
        # Skewed potentials: mostly small, occasionally large — sign errors would show.
        self.log_g = rng.exponential(1.0, (num_steps, num_states, num_states)) - 1.5
        self.num_steps = num_steps

    def exact_log_z(self):
        alpha = self.p0 * np.exp(self.log_g0)
        for t in range(1, self.num_steps):
            alpha = (alpha[:, None] * self.P * np.exp(self.log_g[t])).sum(axis=0)
        return float(np.log(alpha.sum()))

    def feynman_kac(self):
        log_p0, log_p = jnp.log(self.p0), jnp.log(self.P)
        log_g0, log_g = jnp.asarray(self.log_g0), jnp.asarray(self.log_g)

        def log_potential(x_prev, x, t):
            return log_g0[x] if x_prev is None else log_g[t, x_prev, x]

        return pi.smc.FeynmanKac(
            init=lambda key, n: jax.random.categorical(key, log_p0, shape=(n,)),
            move=lambda key, x, t: jax.random.categorical(key, log_p[x]),
            log_potential=log_potential,
            num_steps=self.num_steps)


@pytest.mark.parametrize("policy", sorted(POLICIES) + ["every-3"])
@pytest.mark.parametrize("scheme", ["systematic", "residual", "multinomial", "stratified"])
def test_log_evidence_unbiased_finite_state(policy, scheme, rng, key):
    model = _FiniteStateFK(rng)
    fk = model.feynman_kac()
    pol = POLICIES.get(policy) or pi.smc.every(3, fk.num_steps)
    resampler = pi.particles.RESAMPLERS[scheme]
    run = jax.jit(jax.vmap(lambda k: pi.smc.scan(k, fk, 32, resampler, pol)[0].log_evidence))
    _assert_unbiased_in_exp_space(run(jax.random.split(key, 2000)), model.exact_log_z())


def test_never_resampling_is_importance_sampling(rng, key):
    model = _FiniteStateFK(rng)
    fk = model.feynman_kac()
    res = pi.smc.run(key, fk, 50, policy="never", keep_ancestors=True)
    assert not np.asarray(res.info.resampled).any()
    assert (np.asarray(res.info.ancestors) == np.arange(50)).all()


def test_run_reports_traces_and_schedule(lg_problem, key):
    ssm, ys, _ = lg_problem
    fk = pi.ssm.bootstrap(ssm, ys)
    res = pi.smc.run(key, fk, 500, policy=pi.smc.at_steps([4, 9], fk.num_steps),
                     keep_ancestors=True)
    info = res.info
    assert info.ess.shape == (25,) and info.ancestors.shape == (25, 500)
    assert pi.smc.run(key, fk, 500).info.ancestors is None
    assert np.flatnonzero(np.asarray(info.resampled)).tolist() == [4, 9]
    np.testing.assert_allclose(float(jnp.sum(info.log_evidence_increment)),
                               float(res.log_evidence), rtol=1e-5)
    np.testing.assert_allclose(float(jax.scipy.special.logsumexp(res.log_weights)), 0.0,
                               atol=1e-5)
    assert (np.asarray(info.ess) <= 500 + 1e-3).all() and (np.asarray(info.ess) >= 1).all()
    assert np.asarray(info.num_nonfinite).sum() == 0


def test_progress_bar_chunks_do_not_change_results(lg_problem, key):
    ssm, ys, _ = lg_problem
    fk = pi.ssm.bootstrap(ssm, ys)
    a = pi.smc.run(key, fk, 300, progress_bar=False)
    b = pi.smc.run(key, fk, 300, progress_bar=True)
    np.testing.assert_array_equal(np.asarray(a.samples), np.asarray(b.samples))
    np.testing.assert_array_equal(np.asarray(a.info.resampled), np.asarray(b.info.resampled))
    np.testing.assert_allclose(float(a.log_evidence), float(b.log_evidence), rtol=1e-6)


def test_final_resample_gives_equal_weights(lg_problem, key):
    ssm, ys, _ = lg_problem
    res = pi.smc.run(key, pi.ssm.bootstrap(ssm, ys), 200, final_resample=True)
    np.testing.assert_allclose(np.asarray(res.log_weights), -math.log(200), rtol=1e-6)
    np.testing.assert_allclose(float(res.ess), 200, rtol=1e-5)


def test_all_per_particle_state_is_resampled_together(key):
    """Pytree particles: a cached field must follow its particle through resampling."""
    def init(k, n):
        x = jax.random.normal(k, (n,))
        return {"x": x, "cached_square": x ** 2}

    def move(k, p, t):
        x = p["x"] + jax.random.normal(k, p["x"].shape)
        return {"x": x, "cached_square": x ** 2}

    fk = pi.smc.FeynmanKac(init, move, lambda xp, p, t: -0.5 * p["cached_square"], 10)
    res = pi.smc.run(key, fk, 300, policy="always")
    np.testing.assert_allclose(np.asarray(res.samples["cached_square"]),
                               np.asarray(res.samples["x"]) ** 2, rtol=1e-5)


def _annealed_model(cache_key=None):
    """Adapted params and a stopping condition: anneal N(0, 1) towards N(0, 1/(1 + lam)) by
    increments of lam that the params carry, and stop once lam reaches 4. Exact
    log Z = -1/2 log(1 + 4)."""
    def adapt(params, x, log_weights, t):
        return {"lam": params["lam"] + params["increment"], "increment": params["increment"]}

    def move(key, x, t, params):
        # Exact draws from the current target, N(0, 1 / (1 + lam)).
        return jax.random.normal(key, x.shape) / jnp.sqrt(1.0 + params["lam"])

    return pi.smc.FeynmanKac(
        init=lambda key, n: jax.random.normal(key, (n,)),
        move=move,
        log_potential=lambda xp, x, t, params: -0.5 * params["increment"] * x ** 2,
        num_steps=50, adapt=adapt, done=lambda state: state.params["lam"] >= 4.0 - 1e-6,
        cache_key=cache_key)


@pytest.mark.slow
def test_adapted_params_and_stopping_condition(key):
    params = {"lam": jnp.asarray(0.0), "increment": jnp.asarray(0.5)}
    fk = _annealed_model()
    res = pi.smc.run(key, fk, 2000, policy="always", params=params)
    # lam = 0.5, 1, ..., 4: eight steps, recorded in info.params.
    np.testing.assert_allclose(np.asarray(res.info.params["lam"]), 0.5 * np.arange(1, 9))
    assert res.info.ess.shape == (8,)
    assert abs(float(res.log_evidence) + 0.5 * math.log(5.0)) < 0.05
    # The host-side loop (progress bar) takes the same steps with the same keys.
    b = pi.smc.run(key, fk, 2000, policy="always", params=params, progress_bar=True)
    np.testing.assert_allclose(np.asarray(b.samples), np.asarray(res.samples), rtol=1e-5)
    # Params are traced: a new increment reuses the compiled run; the stopping condition
    # follows (4 / 2 = 2 steps).
    res2 = pi.smc.run(key, fk, 2000, policy="always",
                      params={"lam": jnp.asarray(0.0), "increment": jnp.asarray(2.0)})
    assert res2.info.ess.shape == (2,)
    # The pure scan returns the full buffer; state.step says how many rows are filled.
    state, info = pi.smc.scan(key, fk, 2000, pi.particles.systematic, pi.smc.always(), params)
    assert int(state.step) == 7 and info.ess.shape == (50,)


def test_cache_key_makes_equal_models_share_compilation():
    a, b = _annealed_model(("annealing", 1)), _annealed_model(("annealing", 1))
    assert a == b and hash(a) == hash(b)
    assert _annealed_model() != _annealed_model()
    assert a != _annealed_model(("annealing", 2))
