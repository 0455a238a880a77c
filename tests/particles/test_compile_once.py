"""Compile once: runners compile per structure, never per number.

Each test warms a runner up, then counts XLA backend compilations (the
``/jax/core/compile/backend_compile_duration`` monitoring event, one per compiled program)
while the runner is called again with new numbers of the same shapes: new keys, new data,
rebuilt models with new parameters, new temperatures. Zero means nothing was retraced and
recompiled. Each test also changes a *shape* once and sees a compilation, so the counter
cannot pass by counting nothing.
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.tree_util import Partial

import probinfer as pi

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def compilations():
    events = []

    def listener(event, duration, **kwargs):
        if event == COMPILE_EVENT:
            events.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield events
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def _lg(rho, sigma_y):
    return pi.ssm.LinearGaussian.scalar(rho=rho, sigma_x=1.0, sigma_y=sigma_y)


def test_rebuilt_bootstrap_filter_on_new_data_compiles_once():
    """The README pattern pi.smc.run(key, pi.ssm.bootstrap(ssm, ys), N) in a loop over new
    data and new model parameters; the answers still follow each model (Kalman)."""
    _, ys = _lg(0.9, 0.5).simulate(jax.random.key(0), 20)
    pi.smc.run(0, pi.ssm.bootstrap(_lg(0.9, 0.5), ys), 2000)
    # Models and data are made outside the count: only the runs are counted.
    models = [_lg(rho, sigma_y) for rho, sigma_y in [(0.5, 0.5), (0.8, 1.0), (-0.3, 0.7)]]
    datasets = [ys + 0.3 * i for i in range(3)]
    with compilations() as events:
        results = [pi.smc.run(i, pi.ssm.bootstrap(ssm, data), 2000)
                   for i, (ssm, data) in enumerate(zip(models, datasets))]
    assert events == []
    for ssm, data, res in zip(models, datasets, results):
        exact = float(ssm.kalman_filter(data).log_likelihood)
        assert abs(float(res.log_evidence) - exact) < 1.0
    with compilations() as events:
        pi.smc.run(0, pi.ssm.bootstrap(_lg(0.9, 0.5), ys[:10]), 2000)
    assert events, "a new number of steps is a new structure"


def test_rebuilt_guided_filter_compiles_once():
    _, ys = _lg(0.9, 0.5).simulate(jax.random.key(0), 15)

    def run(ssm, data, seed):
        proposal = pi.ssm.LinearGaussianOptimalProposal(ssm)
        return pi.smc.run(seed, pi.ssm.guided(ssm, data, proposal), 500)

    run(_lg(0.9, 0.5), ys, 0)
    ssm, data = _lg(0.7, 0.6), ys - 1.0
    with compilations() as events:
        res = run(ssm, data, 1)
    assert events == []
    exact = float(_lg(0.7, 0.6).kalman_filter(ys - 1.0).log_likelihood)
    assert abs(float(res.log_evidence) - exact) < 0.5


def _partial_model(centre, scale):
    return pi.smc.FeynmanKac(init=Partial(_init, scale), move=Partial(_move, scale),
                             log_potential=Partial(_log_potential, centre), num_steps=6)


def _init(scale, key, n):
    return scale * jax.random.normal(key, (n,))


def _move(scale, key, x, t):
    return x + scale * jax.random.normal(key, x.shape)


def _log_potential(centre, x_prev, x, t):
    return -0.5 * (x - centre[t]) ** 2


def test_user_model_with_partial_functions_is_traced_and_closures_are_static():
    pi.smc.run(0, _partial_model(jnp.zeros(6), jnp.asarray(1.0)), 300)
    centre, scale = jnp.ones(6), jnp.asarray(2.0)
    same_centre, same_scale = jnp.ones(6), jnp.asarray(2.0)     # equal numbers, new arrays
    with compilations() as events:
        a = pi.smc.run(1, _partial_model(centre, scale), 300)
        b = pi.smc.run(1, _partial_model(same_centre, same_scale), 300)
    assert events == []
    np.testing.assert_array_equal(a.samples, b.samples)

    def closure_model(centre):
        return pi.smc.FeynmanKac(init=lambda key, n: jax.random.normal(key, (n,)),
                                 move=lambda key, x, t: x + jax.random.normal(key, x.shape),
                                 log_potential=lambda x_prev, x, t: -0.5 * (x - centre) ** 2,
                                 num_steps=6)

    pi.smc.run(0, closure_model(0.0), 300)
    with compilations() as events:
        pi.smc.run(0, closure_model(1.0), 300)
    assert events, "closed-over numbers are structure: a new closure compiles again"


def test_tempered_new_numbers_do_not_retrace():
    """Counted as traces of the log-likelihood: each call traces it once for its shape
    check, and the compiled run only when it is retraced. (The number of tempering steps
    depends on the numbers, and a few small host-side ops on the traces compile per new
    step count, so XLA compilations are not the measure here.)"""
    prior = pi.Gaussian(jnp.zeros(2), jnp.eye(2))
    traces = []

    def log_likelihood(x):
        traces.append(None)
        return -0.5 * jnp.sum((x - 1.0) ** 2) / 0.5

    kernel = pi.kernels.repeat(pi.kernels.rwm(), 3)
    per_call = []
    for seed, target_ess in ((0, 0.5), (1, 0.3), (2, 0.7)):
        before = len(traces)
        res = pi.smc.tempered(seed, prior, log_likelihood, 200, kernel=kernel,
                              target_ess=target_ess, progress_bar=False)
        assert float(res.info.beta[-1]) == 1.0
        per_call.append(len(traces) - before)
    assert per_call[1] == per_call[2] < per_call[0], per_call
    with compilations() as events:
        pi.smc.tempered(0, prior, log_likelihood, 100, kernel=kernel, progress_bar=False)
    assert events, "a new particle count is a new structure"


MIX = pi.GaussianMixture(jnp.array([0.3, 0.7]), jnp.array([[-2.0, 0.0], [2.0, 1.0]]),
                         jnp.stack([0.5 * jnp.eye(2), 0.3 * jnp.eye(2)]))


def _reward(x):
    return -0.5 * jnp.sum((x - 1.0) ** 2)


def test_steering_runners_new_numbers_compile_once():
    prior = pi.diffusion.GaussianMixturePrior(MIX, num_steps=10)
    pi.steer.fk(0, prior, _reward, 32)
    pi.steer.svdd(0, prior, _reward, 16, 4, temperature=0.5)
    pi.steer.best_of_n(0, prior, _reward, 16)
    with compilations() as events:
        for seed, temperature in ((1, 0.5), (2, 2.0)):
            pi.steer.fk(seed, prior, _reward, 32, temperature=temperature)
            pi.steer.svdd(seed, prior, _reward, 16, 4, temperature=temperature)
            pi.steer.best_of_n(seed, prior, _reward, 16)
    assert events == []
    with compilations() as events:
        pi.steer.fk(0, prior, _reward, 48)
    assert events


def test_prior_sample_new_keys_compile_once():
    priors = [pi.diffusion.GaussianMixturePrior(MIX, num_steps=10),
              pi.diffusion.MarkovChainPrior(jnp.array([0.5, 0.5]),
                                            jnp.array([[0.9, 0.1], [0.2, 0.8]]), 5)]
    keys = list(jax.random.split(jax.random.key(0), 4))
    for prior in priors:
        prior.sample(keys[0], 64)
    with compilations() as events:
        for prior in priors:
            for key in keys[1:]:
                prior.sample(key, 64)
    assert events == []
    with compilations() as events:
        priors[0].sample(keys[0], 65)
    assert events
