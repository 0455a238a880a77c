"""Denoising MCMC end to end: persistent DLG chains, each state handed to a solver.

Kim & Ye (2022), "Denoising MCMC for Accelerating Diffusion-Based Generative Models".
``num_chains`` DLG chains run on ``p(x, i) ∝ pi(i) p_i(x)``. After a warm-up, every round
runs ``thinning`` DLG iterations and hands a copy of every chain's state to the prior's
reverse solver, which integrates it from the chain's own level ``i`` down to the data
(``num_steps - i`` steps instead of ``num_steps``); the chains themselves continue. The
MCMC cost is shared by all rounds, so the amortised denoiser calls per sample are
``(init + warm-up + rounds · thinning · per-iteration) / num_samples`` plus the hand-off's.

The hand-off keeps the sampler's per-particle memory (``init_memory`` /
``transition_with_memory``), so multistep solvers start fresh at each chain's own level.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from probinfer._random import fast_key
from probinfer._types import Array
from probinfer._validation import check_positive_int, check_positive_scalar
from probinfer.diffusion.samplers import get_sampler
from probinfer._compile import cached, uncached_copy
from probinfer.dmcmc.dlg import DLGState, check_levels, dlg, dlg_params
from probinfer.dmcmc.levels import _check_scored_prior
from probinfer.particles.weights import log_mean_exp
from probinfer.result import Result


class DMCMCInfo(NamedTuple):
    """Counters and traces of a :func:`sample` run.

    nfe : denoiser calls, all of them: ``nfe_init + nfe_mcmc + nfe_handoff``.
    nfe_init : carrying the chains from noise to the noisiest allowed level.
    nfe_mcmc : DLG's score evaluations (warm-up included).
    nfe_handoff : the solver's denoiser calls, each sample from its own level.
    num_estimator_calls : noise-level-estimator evaluations (0 for exact level models).
    nfe_per_sample : ``nfe / num_samples``, the amortised cost.
    handoff_levels : ``(num_samples,)`` the level each sample was handed off from.
    acceptance_rate : ``(num_rounds,)`` mean Langevin acceptance per round.
    num_rounds : rounds of hand-offs (``ceil(num_samples / num_chains)``).
    num_reward_evaluations : samples scored by the reward (0 without one).
    """

    nfe: int
    nfe_init: int
    nfe_mcmc: int
    nfe_handoff: int
    num_estimator_calls: int
    nfe_per_sample: float
    handoff_levels: Array
    acceptance_rate: Array
    num_rounds: int
    num_reward_evaluations: int


def with_sampler(prior, sampler):
    """A shallow copy of ``prior`` whose reverse transitions use ``sampler`` (a name or a
    :class:`~probinfer.diffusion.Sampler`); the denoiser is shared."""
    if sampler is None:
        return prior
    sampler = get_sampler(sampler)

    def build():
        other = uncached_copy(prior)
        other.sampler = sampler
        return other

    return cached(prior, ("sampler", sampler), build)


def handoff_nfe(prior) -> np.ndarray:
    """Denoiser calls to solve from each step to the data: ``(num_steps + 1,)``, 0 at the end."""
    per_step = np.asarray(prior.nfe_per_step, dtype=np.int64)
    return np.concatenate([np.cumsum(per_step[::-1])[::-1], [0]])


def handoff(key, prior, x, level, first_level: int = 0):
    """Integrate every particle from its own level to the data with the prior's sampler.

    Parameters
    ----------
    key : PRNG key (used by stochastic samplers).
    prior : the continuous diffusion prior; its ``sampler`` is the solver.
    x : ``(n, *event_shape)`` particles, each a draw at its level.
    level : ``(n,)`` integer steps in ``[first_level, num_steps)``.
    first_level : a static lower bound of ``level`` (the scan starts there).

    Returns
    -------
    ``(n, *event_shape)`` samples at step ``num_steps``. Particle ``j`` takes
    ``sum(prior.nfe_per_step[level[j]:])`` denoiser calls (:func:`handoff_nfe`); the batched
    scan evaluates the denoiser for all particles at every step from ``first_level`` and
    keeps the results of the active ones only.

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> mix = pi.GaussianMixture(jnp.array([1.0]), jnp.zeros((1, 2)), jnp.eye(2)[None])
    >>> prior = pi.diffusion.GaussianMixturePrior(mix, num_steps=10, sampler="ddim")
    >>> x = prior.noised_mixture(6).sample(jax.random.key(0), 5)
    >>> pi.dmcmc.handoff(jax.random.key(1), prior, x, jnp.full(5, 6)).shape
    (5, 2)
    """
    prior.check_particles(x)
    shape = x.shape[:1] + (1,) * (x.ndim - 1)

    def body(carry, inputs):
        x, memory = carry
        step_key, step = inputs
        denoised = prior.denoise(x, step)
        x_next, memory_next = prior.transition_with_memory(step_key, x, denoised, memory, step)
        active = level <= step

        def keep(new, old):
            return jnp.where(jnp.reshape(active, active.shape + (1,) * (new.ndim - 1)), new, old)

        return (jnp.where(jnp.reshape(active, shape), x_next, x),
                jax.tree_util.tree_map(keep, memory_next, memory)), None

    steps = jnp.arange(first_level, prior.num_steps)
    keys = jax.random.split(key, steps.shape[0])
    (x, _), _ = jax.lax.scan(body, (x, prior.init_memory(x)), (keys, steps))
    return x


def _carry_to_level(key, prior, num_chains, first_level):
    """Chains at ``first_level``: the prior's noise, then its own sampler down to there."""
    init_key, key = jax.random.split(key)
    x = prior.init(init_key, num_chains)
    if first_level == 0:
        return x
    memory = prior.init_memory(x)

    def body(carry, inputs):
        x, memory = carry
        step_key, step = inputs
        return prior.transition_with_memory(step_key, x, prior.denoise(x, step), memory,
                                            step), None

    keys = jax.random.split(key, first_level)
    (x, _), _ = jax.lax.scan(body, (x, memory), (keys, jnp.arange(first_level)))
    return x


@functools.partial(jax.jit, static_argnums=(0,))
def run_chains(step, key, state: DLGState, params, num_iterations):
    """Run ``num_iterations`` DLG iterations of ``step`` (from :func:`dlg`) on all chains.

    ``num_iterations`` is traced, so one compilation serves any count (the loop is a
    ``lax.fori_loop``). Returns the final state and ``(mean acceptance, denoiser calls,
    estimator calls)`` as the kernel counts them; :func:`sample` runs its chains with it.

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> mix = pi.GaussianMixture(jnp.array([1.0]), jnp.zeros((1, 2)), jnp.eye(2)[None])
    >>> prior = pi.diffusion.GaussianMixturePrior(mix, num_steps=10)
    >>> init, step = pi.dmcmc.dlg(prior)
    >>> state = init(prior.init(jax.random.key(0), 50), 0)
    >>> state, (acc, nfe, est) = pi.dmcmc.run_chains(step, jax.random.key(1), state,
    ...                                               pi.dmcmc.dlg_params(prior), 20)
    >>> int(nfe)
    2000
    """

    def body(i, carry):
        state, acc, nfe, est = carry
        state, info = step(jax.random.fold_in(key, i), state, params)
        return (state, acc + jnp.mean(info.acceptance_rate), nfe + info.nfe,
                est + info.num_estimator_calls)

    zero = jnp.zeros((), jnp.int32)
    state, acc, nfe, est = jax.lax.fori_loop(
        0, num_iterations, body, (state, jnp.zeros((), state.x.dtype), zero, zero))
    return state, (acc / jnp.maximum(num_iterations, 1), nfe, est)


_handoff_jit = jax.jit(lambda key, prior, x, level, first_level:
                       handoff(key, prior, x, level, first_level), static_argnums=(1, 4))
_carry_jit = jax.jit(_carry_to_level, static_argnums=(1, 2, 3))


def sample(key, prior, num_samples: int, *, num_chains: int | None = None, sampler=None,
           reward=None, temperature=1.0, step_size=0.2, levels=None, level_weights=None,
           level_model=None, metropolis: bool | None = None, level_update: str = "sample",
           num_warmup: int = 100, thinning: int = 1, progress_bar: bool | None = None) -> Result:
    """Denoising MCMC: DLG chains over (x, noise level), each state solved to the data.

    Parameters
    ----------
    key : PRNG key.
    prior : a continuous diffusion prior (analytic, torch, diffusers) with a score.
    num_samples : samples returned.
    num_chains : persistent chains; each round hands all of them off, so there are
        ``ceil(num_samples / num_chains)`` rounds (extra hand-offs of the last round are
        dropped but counted in the NFE). Default ``min(num_samples, 500)``.
    sampler : the hand-off solver (a name or :class:`~probinfer.diffusion.Sampler`); default
        the prior's own.
    reward, temperature : optional tilt ``p(x_0) exp(reward(x_0) / temperature)`` by
        self-normalised importance weights on the handed-off samples (``log_weights``; a
        reward of one sample, JAX or :func:`~probinfer.steer.host_reward`). The chains
        explore the untilted joint, so a strong tilt leaves a small ``Result.ess``.
    step_size : relative Langevin step (``step_size · sigmas[i]²`` at level ``i``), > 0.
    levels, level_weights : steps the chains may visit and their prior weights
        (:func:`dlg_params`); default every noisy step, uniformly. Chains start at the
        noisiest of them, carried there from noise by the prior's own sampler.
    level_model, metropolis, level_update : see :func:`dlg`. Learned priors need
        ``level_model=pi.dmcmc.fit_level_estimator(...)``.
    num_warmup : DLG iterations before the first hand-off.
    thinning : DLG iterations between hand-offs.
    progress_bar : show a bar over rounds (None: only for more than 20 rounds).

    Returns
    -------
    Result
        ``samples`` ``(num_samples, *event_shape)``, ``log_weights`` (uniform without a
        reward), ``log_evidence`` (``log E_p[exp(reward / temperature)]`` estimate; NaN
        without a reward) and ``info`` a :class:`DMCMCInfo` with the NFE accounting.

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> mix = pi.GaussianMixture(jnp.array([0.3, 0.7]), jnp.array([[-2.0, 0.0], [2.0, 1.0]]),
    ...                          jnp.stack([jnp.eye(2), 0.5 * jnp.eye(2)]))
    >>> prior = pi.diffusion.GaussianMixturePrior(mix, num_steps=20, sampler="ddim")
    >>> res = pi.dmcmc.sample(jax.random.key(0), prior, 400, num_chains=100,
    ...                       levels=range(12, 20))
    >>> res.samples.shape, res.info.num_rounds
    ((400, 2), 4)
    """
    from probinfer._progress import tqdm

    _check_scored_prior(prior)
    num_samples = check_positive_int(num_samples, "num_samples")
    num_chains = (min(num_samples, 500) if num_chains is None
                  else check_positive_int(num_chains, "num_chains"))
    num_warmup = check_positive_int(num_warmup, "num_warmup", minimum=0)
    thinning = check_positive_int(thinning, "thinning")
    if reward is not None:
        if not callable(reward):
            raise TypeError("reward must be callable: one sample -> scalar (wrap batched host "
                            "functions with pi.steer.host_reward)")
        temperature = check_positive_scalar(temperature, "temperature")
    levels = check_levels(prior, None if levels is None else np.asarray(list(levels)))
    params = dlg_params(prior, step_size, levels, level_weights)
    init, step = dlg(prior, level_model=level_model, metropolis=metropolis,
                     level_update=level_update)
    handoff_prior = with_sampler(prior, sampler)
    first_level = int(levels[0])
    num_rounds = math.ceil(num_samples / num_chains)

    key = fast_key(key)
    start_key, key = jax.random.split(key)
    carry_key, warm_key = jax.random.split(start_key)
    state = init(_carry_jit(carry_key, prior, num_chains, first_level), first_level)
    state, (_, warm_nfe, warm_est) = run_chains(step, warm_key, state, params, num_warmup)
    outputs, out_levels, acceptance = [], [], []
    nfe_mcmc, estimator_calls = int(warm_nfe), int(warm_est)
    show = num_rounds > 20 if progress_bar is None else bool(progress_bar)
    for r in tqdm(range(num_rounds), disable=not show, desc="dmcmc", unit="round"):
        move_key, solve_key = jax.random.split(jax.random.fold_in(key, r))
        state, (acc, round_nfe, round_est) = run_chains(step, move_key, state, params, thinning)
        outputs.append(_handoff_jit(solve_key, handoff_prior, state.x, state.level,
                                    first_level))
        out_levels.append(state.level)
        acceptance.append(acc)
        nfe_mcmc += int(round_nfe)
        estimator_calls += int(round_est)
    all_levels = np.concatenate([np.asarray(v) for v in out_levels])
    samples = jnp.concatenate(outputs)[:num_samples]

    nfe_init = num_chains * int(np.asarray(prior.nfe_per_step)[:first_level].sum())
    nfe_handoff = int(handoff_nfe(handoff_prior)[all_levels].sum())
    nfe = nfe_init + nfe_mcmc + nfe_handoff

    dtype = samples.dtype
    if reward is None:
        log_weights = jnp.full(num_samples, -math.log(num_samples), dtype)
        log_evidence = jnp.asarray(jnp.nan, dtype)
        num_reward = 0
    else:
        rewards = jax.vmap(reward)(samples)
        if rewards.shape != (num_samples,):
            raise ValueError(f"reward must return a scalar per sample, got shape "
                             f"{rewards.shape[1:]}")
        if not bool(jnp.all(jnp.isfinite(rewards))):
            raise ValueError(f"reward returned {int(jnp.sum(~jnp.isfinite(rewards)))} "
                             "non-finite values on the handed-off samples")
        log_w = rewards / temperature
        log_evidence = log_mean_exp(log_w)
        log_weights = log_w - jax.scipy.special.logsumexp(log_w)
        num_reward = num_samples
    info = DMCMCInfo(nfe=nfe, nfe_init=nfe_init, nfe_mcmc=nfe_mcmc, nfe_handoff=nfe_handoff,
                     num_estimator_calls=estimator_calls, nfe_per_sample=nfe / num_samples,
                     handoff_levels=jnp.asarray(all_levels[:num_samples]),
                     acceptance_rate=jnp.stack(acceptance), num_rounds=num_rounds,
                     num_reward_evaluations=num_reward)
    return Result(samples, log_weights, log_evidence, info)
