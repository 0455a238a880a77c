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

from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from probinfer._chunks import check_chunk_size, in_row_blocks
from probinfer._compile import cached, runner_key
from probinfer._progress import chunked_scan
from probinfer._types import Array
from probinfer._validation import check_positive_int, check_positive_scalar, is_concrete
from probinfer.diffusion.base import DiffusionPrior
from probinfer.particles.weights import uniform
from probinfer.result import Result
from probinfer.steering._rewards import (batch_reward, check_invalid_reward, check_reward,
                                         clean_reward, explain_failures, host_calls,
                                         num_clean_draws, screen)
from probinfer.steering._values import ValueModel


class SVDDState(NamedTuple):
    x: Array
    denoised: Array
    memory: object            # the sampler's memory (multistep solvers), () otherwise
    step: Array


class SVDDInfo(NamedTuple):
    value_mean: Array          # mean value of the selected children, per step
    value_max: Array
    num_invalid_rewards: Array  # children whose value was NaN, per step
    nfe: int
    num_reward_evaluations: int
    num_host_reward_calls: int

    def traces(self):
        """``(per-step traces, counters)``; see :func:`probinfer.diagnostics.to_arviz`."""
        return ({"value_mean": self.value_mean, "value_max": self.value_max,
                 "num_invalid_rewards": self.num_invalid_rewards},
                {"nfe": self.nfe, "num_reward_evaluations": self.num_reward_evaluations,
                 "num_host_reward_calls": self.num_host_reward_calls})


def init(key, prior: DiffusionPrior, num_particles: int, chunk_size: int | None = None
         ) -> SVDDState:
    x = prior.init(key, num_particles)
    return SVDDState(x, in_row_blocks(lambda block: prior.denoise(block, 0), x, chunk_size),
                     prior.init_memory(x), jnp.asarray(0, jnp.int32))


def step(key, state: SVDDState, prior, reward, value, num_candidates: int, temperature,
         num_reward_draws: int = 16, reject_invalid: bool = False,
         chunk_size: int | None = None):
    """One SVDD step from state ``s`` to ``s + 1``.

    Returns ``(state, (mean value, max value, number of NaN values))`` of the selected
    children. NaN values are never selected when ``reject_invalid`` (they count as -inf).
    ``chunk_size`` evaluates the denoiser, values and rewards of the children in blocks.
    """
    n = state.x.shape[0]
    move_key, value_key, pick_key = jax.random.split(key, 3)
    rep = lambda tree: jax.tree_util.tree_map(lambda a: jnp.repeat(a, num_candidates, axis=0),
                                              tree)
    children, memory = prior.transition_with_memory(move_key, rep(state.x),
                                                    rep(state.denoised), rep(state.memory),
                                                    state.step)
    t = state.step + 1

    def intermediate():
        denoised = in_row_blocks(lambda block: prior.denoise(block, t), children, chunk_size)
        if value == "posterior_mean":
            v, invalid = clean_reward(value_key, prior, reward, children, denoised,
                                      1.0 / jnp.maximum(temperature, 1e-6), num_reward_draws,
                                      reject_invalid, chunk_size)
        else:
            v, invalid = screen(in_row_blocks(
                lambda block: jax.vmap(value, in_axes=(0, None))(block, t), children,
                chunk_size), reject_invalid)
        return denoised, v.astype(temperature.dtype), invalid

    def final():
        v, invalid = screen(batch_reward(reward, children, chunk_size), reject_invalid)
        return jnp.zeros_like(rep(state.denoised)), v.astype(temperature.dtype), invalid

    denoised, values, invalid = jax.lax.cond(t < prior.num_steps, intermediate, final)
    values = values.reshape(n, num_candidates)
    logits = values / jnp.where(temperature > 0, temperature, 1.0)
    sampled = jax.random.categorical(pick_key, logits, axis=1)
    choice = jnp.where(temperature > 0, sampled, jnp.argmax(values, axis=1))
    index = jnp.arange(n) * num_candidates + choice
    chosen = values[jnp.arange(n), choice]
    new_state = SVDDState(children[index], denoised[index],
                          jax.tree_util.tree_map(lambda a: a[index], memory), t)
    return new_state, (jnp.mean(chosen), jnp.max(chosen), jnp.sum(invalid).astype(jnp.int32))


def _compiled(prior, reward, value, num_particles, num_candidates, num_reward_draws, reject,
              chunk_size):
    """The init and the step scan, compiled once per structure; a fitted ValueModel is
    data (traced), strings and callables are structure."""
    static_value = None if isinstance(value, ValueModel) else value

    def build():
        def run_init(key):
            return init(key, prior, num_particles, chunk_size)

        def run_steps(keys, state, temperature, model):
            v = model if static_value is None else static_value
            return jax.lax.scan(lambda st, k: step(k, st, prior, reward, v, num_candidates,
                                                   temperature, num_reward_draws, reject,
                                                   chunk_size),
                                state, keys)
        return jax.jit(run_init), jax.jit(run_steps)

    return cached(prior, ("svdd", reward, static_value, num_particles, num_candidates,
                          num_reward_draws, reject, chunk_size), build)


def svdd(key, prior, reward, num_particles: int, num_candidates: int, *, temperature=0.0,
         value="posterior_mean", num_reward_draws: int = 16, invalid_reward: str = "raise",
         progress_bar=None, chunk_size: int | None = None) -> Result:
    """Soft value-based decoding.

    Parameters
    ----------
    key : PRNG key (or an integer seed).
    prior : a diffusion prior (continuous or masked).
    reward : function of ONE clean sample -> scalar (JAX or :func:`host_reward`).
    num_particles : independent decoding chains.
    num_candidates : children drawn per particle per step (M >= 1; M = 1 is the prior).
    temperature : ``T >= 0``; 0 selects the best child (argmax); traced.
    value : ``"posterior_mean"`` (SVDD-PM: the reward of the prior's clean estimate,
        ``r(E[x_0|x_t])``, or for priors that draw ``x_0 | x_t`` (masked) the soft value over
        ``num_reward_draws`` draws), a fitted :class:`ValueModel` (SVDD-MC, see
        :func:`fit_value_model`), or any callable ``value(x, step) -> scalar`` of one
        particle (e.g. :func:`exact_soft_value`).
    invalid_reward : ``"raise"`` (a NaN value or reward is an error naming the step and the
        count) or ``"reject"`` (such children count as ``-inf`` and are never selected unless
        every child is; counted in ``info.num_invalid_rewards``).
    progress_bar : show a progress bar over the steps (default: on for long runs).
    chunk_size : evaluate the denoiser, the values and the rewards of the
        ``num_particles * num_candidates`` children on blocks of at most this many (one
        after the other on the device, ``jax.lax.map``; a host reward gets one call per
        block), so their intermediates take memory for ``chunk_size`` children; same keys,
        same run as unchunked up to float rounding. ``None`` (default): all at once.

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
    reject = check_invalid_reward(invalid_reward)
    chunk_size = check_chunk_size(chunk_size)
    if not (value == "posterior_mean" or callable(value)):
        raise ValueError("value must be 'posterior_mean', a ValueModel or a callable "
                         "value(x, step) -> scalar")
    if not prior.is_stochastic and num_candidates > 1:
        raise ValueError("the prior's sampler is deterministic: all candidates of a particle "
                         "would be identical. Use a stochastic sampler.")
    key = runner_key(key)
    concrete = is_concrete(jax.random.key_data(key), temperature)
    before = host_calls(reward)
    keys = jax.random.split(key, prior.num_steps + 1)
    model = value if isinstance(value, ValueModel) else None
    run_init, run_steps = _compiled(prior, reward, value, num_particles, num_candidates,
                                    num_reward_draws, reject, chunk_size)

    def call():
        return chunked_scan(lambda ks, s: run_steps(ks, s, temperature, model),
                            run_init(keys[0]), keys[1:], progress_bar and concrete, "SVDD")

    state, (vmean, vmax, invalid) = explain_failures(reward, call)
    if concrete and bool(np.any(np.asarray(invalid) > 0)):
        first = int(np.argmax(np.asarray(invalid) > 0))
        count = int(np.asarray(invalid)[first])
        if not reject:
            raise ValueError(
                f"the {'reward' if first == prior.num_steps - 1 else 'value'} was NaN for "
                f"{count} of {num_particles * num_candidates} candidate(s) at step {first + 1}. "
                "Fix the reward, or pass invalid_reward='reject' so that such candidates are "
                "never selected (counted in info.num_invalid_rewards).")
    # One denoiser call at init; then per child the transition's extra calls beyond the
    # shared denoised estimate, plus its own denoised estimate (not after the last step).
    nfe = num_particles * (1 + num_candidates * (int(np.sum(prior.nfe_per_step)) - 1))
    draws = cached(prior, ("clean-draws", num_reward_draws),
                   lambda: num_clean_draws(prior, num_reward_draws)) \
        if value == "posterior_mean" else 0
    num_evals = num_particles * num_candidates * (1 + (prior.num_steps - 1) * draws)
    info = SVDDInfo(vmean, vmax, invalid, int(nfe), int(num_evals),
                    host_calls(reward) - before)
    dtype = state.x.dtype if jnp.issubdtype(state.x.dtype, jnp.floating) else None
    return Result(state.x, uniform(num_particles, dtype), jnp.asarray(jnp.nan), info)
