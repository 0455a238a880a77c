"""Soft value-based decoding (SVDD; Li et al. 2024, "Derivative-Free Guidance in Continuous
and Discrete Diffusion Models with Soft Value-Based Decoding").

At every step each particle draws ``num_candidates`` children from the prior transition
and keeps one, chosen with probability ``∝ exp(v(child) / temperature)`` (``temperature=0``:
the argmax, the variant used in the paper's experiments). With the exact soft value
``v_t = T log E[exp(r(x_0)/T) | x_t]`` and many candidates this samples the tilted target
``p(x_0) exp(r(x_0)/T)``; with approximate values (the posterior-mean value of SVDD-PM, a
regression of SVDD-MC) it is an approximate method: it returns unweighted samples and no
evidence estimate, and its bias is not corrected. Prefer :func:`~probinfer.steer.fk` where an
unbiased answer matters.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from probinfer._progress import chunked_scan
from probinfer._random import fast_key
from probinfer._types import Array
from probinfer._validation import check_positive_int, check_positive_scalar
from probinfer.diffusion.base import DiffusionPrior
from probinfer.diffusion.masked import MaskedDiffusionPrior
from probinfer.result import Result
from probinfer.steering.rewards import (HostReward, batch_reward, check_reward,
                                        intermediate_reward)
from probinfer.steering.values import ValueModel


class SVDDState(NamedTuple):
    x: Array
    denoised: Array
    step: Array


class SVDDInfo(NamedTuple):
    value_mean: Array          # mean value of the selected children, per step
    value_max: Array
    nfe: int
    num_reward_evaluations: int
    num_host_reward_calls: int


def init(key, prior: DiffusionPrior, num_particles: int) -> SVDDState:
    x = prior.init(key, num_particles)
    return SVDDState(x, prior.denoise(x, 0), jnp.asarray(0, jnp.int32))


def step(key, state: SVDDState, prior, reward, value, num_candidates: int, temperature,
         num_reward_draws: int = 4):
    """One SVDD step from state ``s`` to ``s + 1``; returns ``(state, (mean, max value))``."""
    n = state.x.shape[0]
    move_key, value_key, pick_key = jax.random.split(key, 3)
    rep = lambda a: jnp.repeat(a, num_candidates, axis=0)
    children = prior.transition_given_denoised(move_key, rep(state.x), rep(state.denoised),
                                               state.step)
    t = state.step + 1

    def intermediate():
        denoised = prior.denoise(children, t)
        if value == "posterior_mean":
            v = intermediate_reward(value_key, prior, reward, children, denoised,
                                    1.0 / jnp.maximum(temperature, 1e-6), num_reward_draws)
        else:
            v = jax.vmap(value, in_axes=(0, None))(children, t)
        return denoised, v.astype(temperature.dtype)

    def final():
        return jnp.zeros_like(rep(state.denoised)), \
            batch_reward(reward, children).astype(temperature.dtype)

    denoised, values = jax.lax.cond(t < prior.num_steps, intermediate, final)
    values = values.reshape(n, num_candidates)
    logits = values / jnp.where(temperature > 0, temperature, 1.0)
    sampled = jax.random.categorical(pick_key, logits, axis=1)
    choice = jnp.where(temperature > 0, sampled, jnp.argmax(values, axis=1))
    index = jnp.arange(n) * num_candidates + choice
    chosen = values[jnp.arange(n), choice]
    return SVDDState(children[index], denoised[index], t), (jnp.mean(chosen), jnp.max(chosen))


_init_jit = jax.jit(init, static_argnames=("prior", "num_particles"))


@functools.partial(jax.jit, static_argnames=("prior", "reward", "value", "num_candidates",
                                             "num_reward_draws"))
def _scan_jit(keys, state, temperature, model, *, prior, reward, value, num_candidates,
              num_reward_draws):
    value = model if value is None else value
    return jax.lax.scan(lambda st, k: step(k, st, prior, reward, value, num_candidates,
                                           temperature, num_reward_draws), state, keys)


def svdd(key, prior, reward, num_particles: int, num_candidates: int, *, temperature=0.0,
         value="posterior_mean", num_reward_draws: int = 4, progress_bar=None) -> Result:
    """Soft value-based decoding.

    Parameters
    ----------
    key : PRNG key.
    prior : a diffusion prior (continuous or masked).
    reward : function of ONE clean sample -> scalar (JAX or :func:`host_reward`).
    num_particles : independent decoding chains.
    num_candidates : children drawn per particle per step (M >= 1; M = 1 is the prior).
    temperature : ``T >= 0``; 0 selects the best child (argmax).
    value : ``"posterior_mean"`` (SVDD-PM: reward of ``E[x_0|x_t]``; masked priors: soft
        value over ``num_reward_draws`` draws of ``x_0 | x_t``), a fitted
        :class:`ValueModel` (SVDD-MC, see :func:`fit_value_model`), or any callable
        ``value(x, step) -> scalar`` of one particle (e.g. :func:`exact_soft_value`).

    Returns
    -------
    Result with equally weighted ``samples``, ``log_evidence`` NaN (SVDD estimates none) and
    ``info`` an :class:`SVDDInfo`.

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> mix = pi.GaussianMixture(jnp.array([0.9, 0.1]), jnp.array([[-2.0], [2.0]]),
    ...                          0.3 * jnp.ones((2, 1, 1)))
    >>> prior = pi.diffusion.GaussianMixturePrior(mix, num_steps=30)
    >>> res = pi.steer.svdd(jax.random.key(0), prior, lambda x: x[0], 64, num_candidates=8)
    >>> res.samples.shape
    (64, 1)
    """
    if not isinstance(prior, DiffusionPrior):
        raise TypeError(f"prior must be a probinfer diffusion prior, got {type(prior).__name__}")
    check_reward(reward)
    num_particles = check_positive_int(num_particles, "num_particles")
    num_candidates = check_positive_int(num_candidates, "num_candidates")
    num_reward_draws = check_positive_int(num_reward_draws, "num_reward_draws")
    temperature = check_positive_scalar(temperature, "temperature", allow_zero=True)
    if not (value == "posterior_mean" or callable(value)):
        raise ValueError("value must be 'posterior_mean', a ValueModel or a callable "
                         "value(x, step) -> scalar")
    if not prior.is_stochastic and num_candidates > 1:
        raise ValueError("the prior's sampler is deterministic: all candidates of a particle "
                         "would be identical. Use a stochastic sampler.")
    host_before = reward.num_calls if isinstance(reward, HostReward) else 0
    keys = jax.random.split(fast_key(key), prior.num_steps + 1)
    state = _init_jit(keys[0], prior, num_particles)
    # A fitted ValueModel is data (traced); strings and callables are static, so repeated
    # calls with the same prior, reward and value reuse the compiled scan.
    model = value if isinstance(value, ValueModel) else None
    static_value = None if model is not None else value
    state, (vmean, vmax) = chunked_scan(
        lambda ks, s: _scan_jit(ks, s, temperature, model, prior=prior, reward=reward,
                                value=static_value, num_candidates=num_candidates,
                                num_reward_draws=num_reward_draws),
        state, keys[1:], progress_bar, "SVDD")
    num_host = (reward.num_calls if isinstance(reward, HostReward) else 0) - host_before
    # One denoiser call at init; then per child the transition's extra calls beyond the
    # shared denoised estimate, plus its own denoised estimate (not after the last step).
    nfe = num_particles * (1 + num_candidates * (int(np.sum(prior.nfe_per_step)) - 1))
    draws = num_reward_draws if (value == "posterior_mean"
                                 and isinstance(prior, MaskedDiffusionPrior)) else 1
    uses_reward = value == "posterior_mean"
    num_evals = num_particles * num_candidates * (
        1 + (prior.num_steps - 1) * draws * uses_reward)
    info = SVDDInfo(vmean, vmax, int(nfe), int(num_evals), int(num_host))
    log_w = jnp.full(num_particles, -jnp.log(num_particles), state.x.dtype
                     if jnp.issubdtype(state.x.dtype, jnp.floating) else jnp.float32)
    return Result(state.x, log_w, jnp.asarray(jnp.nan), info)
