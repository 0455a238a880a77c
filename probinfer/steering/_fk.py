"""Feynman–Kac steering of diffusion priors (Singhal et al. 2025, "A General Framework for
Inference-time Scaling and Steering of Diffusion Models").

Target: ``pi(x_0) ∝ p(x_0) exp(r(x_0) / temperature)``. A steering run is a Feynman–Kac
model on the one SMC engine (:mod:`probinfer.particles.smc`): ``M_0`` = the prior's noise,
``M_t`` = the prior's reverse transition (or a gradient-guided proposal with its proposal
ratio in the weight), and potentials (:mod:`probinfer.steering._potentials`) built from
intermediate reward estimates, applied only at *evaluation steps* (every
``potential_every`` steps inside a window, plus the last step). The final potential divides
by the product of all earlier ones, so the product of potentials along any path is exactly
``exp(r(x_0) / temperature)`` and ``log_evidence`` estimates ``log E_p[exp(r / T)]``.

Why potentials only at evaluation steps: with ``max``/``sum`` potentials the final
correction divides by every earlier potential, and applying them at each of hundreds of
steps makes that last weight degenerate. ``difference`` potentials telescope and are safe
anywhere; they are the default on every prior.

Each particle carries its denoised estimate ``E[x_0 | x_t]`` (or the masked denoiser's
probabilities) and its sampler memory (multistep solvers), computed once per step and used
both for the intermediate reward and for the next transition: steering adds no denoiser
calls over unguided sampling, and resampling moves a particle's history with it.

Structure (the prior, the reward, the potential, the evaluation steps, the proposal, the
particle count) is compiled once; numbers (temperatures, guidance scale, the ESS threshold)
are traced arguments, so sweeping them reuses one program and ``jax.vmap`` of :func:`fk`
over keys or temperatures is one compiled program.
"""

from __future__ import annotations

import functools
import warnings
from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from probinfer import _checkpoint, _sharding
from probinfer._checkpoint import Checkpoint
from probinfer._chunks import check_chunk_size, in_row_blocks
from probinfer._compile import cached, runner_key
from probinfer._random import as_key, fast_key
from probinfer._progress import PROGRESS_THRESHOLD, chunked_scan
from probinfer._types import Array, PyTree
from probinfer._validation import check_positive_int, check_positive_scalar, is_concrete
from probinfer.diffusion.base import DiffusionPrior
from probinfer.particles import policies
from probinfer.particles.policies import ResamplingPolicy
from probinfer.particles.resampling import get_resampler
from probinfer.particles.smc import FeynmanKac, SMCInfo, check_run, execute, warn_on_collapse
from probinfer.particles.smc import init as smc_init
from probinfer.particles.smc import scan as smc_scan
from probinfer.particles.smc import step as smc_step
from probinfer.result import Result
from probinfer.steering._potentials import Potential, get_potential
from probinfer.steering._rewards import (batch_reward, check_invalid_reward, check_reward,
                                         clean_reward, explain_failures, host_calls,
                                         num_clean_draws, screen)

PROPOSALS = ("prior", "gradient")
POLICIES = ("interval", "ess", "never", "always")
DEFAULT_NUM_REWARD_DRAWS = 16


class SteeringParticles(NamedTuple):
    """Per-particle state of a steering run; the engine resamples all of it in one gather."""

    x: Array                # (n, *event_shape) particles at the current state
    denoised: Array         # E[x_0 | x_t] or the masked denoiser's probabilities
    memory: PyTree          # the sampler's memory (multistep solvers), () otherwise
    reward: Array           # (n,) latest reward estimate
    accumulator: Array      # (n,) the potential's running statistic (max, sum)
    applied: Array          # (n,) sum of the log-potentials applied so far
    last_value: Array       # (n,) λ r̂ at the last evaluation (what `difference` subtracts)
    log_potential: Array    # (n,) this step's log G (proposal ratio included)
    invalid: Array          # (n,) whether this step's reward was NaN


class SteeringSettings(NamedTuple):
    """The numbers of a steering run (traced: a new value does not recompile)."""

    inverse_temperatures: Array      # (num_steps + 1,) λ of the intermediate potentials
    final_inverse_temperature: Array  # λ = 1 / temperature of the target
    guidance_scale: Array


class _Structure(NamedTuple):
    """What a compiled steering run is specialised to (hashable)."""

    potential: Potential
    evaluated: tuple
    proposal: str
    num_reward_draws: int
    reject_invalid: bool
    chunk_size: int | None = None


class SteeringInfo(NamedTuple):
    """Traces over the ``num_steps + 1`` states (noise first) and counters of a steering run.

    ``smc`` holds the engine's traces (ESS, resampling flags, ancestors, log-evidence
    increments, non-finite counts).
    """

    smc: SMCInfo
    evaluated: Array              # whether a potential was evaluated at this state
    reward_mean: Array            # weighted mean of the latest reward estimate
    reward_max: Array
    num_invalid_rewards: Array    # samples whose reward was NaN at this state
    nfe: int                      # denoiser forward passes (all particles, all steps)
    num_reward_evaluations: int
    num_host_reward_calls: int

    @property
    def ess(self) -> Array:
        return self.smc.ess

    @property
    def resampled(self) -> Array:
        return self.smc.resampled

    def traces(self):
        """``(per-step traces, counters)``; see :func:`probinfer.diagnostics.to_arviz`."""
        per_step = {"ess": self.smc.ess, "resampled": self.smc.resampled,
                    "log_evidence_increment": self.smc.log_evidence_increment,
                    "evaluated": self.evaluated, "reward_mean": self.reward_mean,
                    "reward_max": self.reward_max,
                    "num_invalid_rewards": self.num_invalid_rewards}
        counters = {"nfe": self.nfe, "num_reward_evaluations": self.num_reward_evaluations,
                    "num_host_reward_calls": self.num_host_reward_calls}
        return per_step, counters


def evaluation_steps(num_steps: int, every: int | None = None, start: int | None = None,
                     stop: int | None = None, num_evaluations: int = 5):
    """Boolean mask over states ``0..num_steps``: intermediate potentials at
    ``start, start+every, ... < stop`` and always at ``num_steps`` (the data).

    Defaults: ``every = num_steps // num_evaluations`` and ``start = every``, i.e. about
    ``num_evaluations`` evaluations, the last on the data. :func:`fk` takes
    ``num_evaluations`` from the potential: 20 for ``difference``, whose potentials
    telescope, 5 for the others (few evaluations keep ``max``/``sum`` potentials from
    degenerating: each earlier potential tilts the intermediate targets once more).
    """
    num_steps = check_positive_int(num_steps, "num_steps")
    num_evaluations = check_positive_int(num_evaluations, "num_evaluations")
    every = max(1, num_steps // num_evaluations) if every is None else every
    start = every if start is None else start
    stop = num_steps if stop is None else stop
    if not 1 <= start <= num_steps:
        raise ValueError(f"potential_start must lie in [1, {num_steps}], got {start}")
    if not start <= stop <= num_steps:
        raise ValueError(f"potential_stop must lie in [{start}, {num_steps}], got {stop}")
    mask = np.zeros(num_steps + 1, dtype=bool)
    mask[np.arange(start, stop, check_positive_int(every, "potential_every"))] = True
    mask[num_steps] = True
    return mask


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(
        value, (bool, np.bool_))


@functools.lru_cache(maxsize=64)
def _number_settings(temperature, guidance_scale, num_steps, dtype_name):
    """Settings from Python numbers, built once per value: with NumPy, in the same dtype
    and the same (correctly rounded) division as the traced path, then put on the device
    once, so a repeated call runs no device operation and copies nothing before the
    compiled run. Concrete even when the first call is traced (see :func:`_interval_policy`)."""
    dtype = np.dtype(dtype_name)
    t = np.asarray(temperature, dtype)
    if not np.isfinite(t) or t <= 0:
        raise ValueError(f"temperature must be finite and > 0, got {float(t)}")
    final = np.divide(np.asarray(1.0, dtype), t)
    with jax.ensure_compile_time_eval():
        return SteeringSettings(jnp.asarray(np.full(num_steps + 1, final, dtype)),
                                jnp.asarray(final), jnp.asarray(guidance_scale, dtype))


def _settings(temperature, intermediate_temperature, guidance_scale, num_steps):
    if (intermediate_temperature is None and _is_number(temperature)
            and _is_number(guidance_scale)):
        return _number_settings(temperature, guidance_scale, num_steps,
                                jax.dtypes.canonicalize_dtype(np.float64).name)
    final = 1.0 / check_positive_scalar(temperature, "temperature")
    if intermediate_temperature is None:
        lambdas = jnp.full(num_steps + 1, final)
    else:
        t = jnp.asarray(intermediate_temperature, dtype=final.dtype)
        if t.ndim == 0:
            t = jnp.full(num_steps + 1, t)
        if t.shape != (num_steps + 1,):
            raise ValueError(f"intermediate_temperature must be a scalar or have shape "
                             f"({num_steps + 1},) (one per state, noise first), got {t.shape}")
        if is_concrete(t) and not bool(jnp.all(t > 0)):
            raise ValueError("intermediate_temperature must be > 0")
        lambdas = 1.0 / t
    guidance = jnp.asarray(guidance_scale, dtype=final.dtype)
    if guidance.ndim != 0:
        raise ValueError(f"guidance_scale must be a scalar, got shape {guidance.shape}")
    return SteeringSettings(lambdas, final, guidance)


@functools.lru_cache(maxsize=64)
def _interval_policy(evaluated: tuple) -> ResamplingPolicy:
    """Resample right after each evaluation: a resample helps only after the weights
    change. Kept per evaluation mask, so a call builds no arrays; built as concrete arrays
    even when the first call is traced (under jit), which would otherwise cache tracers."""
    with jax.ensure_compile_time_eval():
        return policies.at_steps(np.flatnonzero(evaluated[:-1]) + 1, len(evaluated))


@functools.lru_cache(maxsize=64)
def _evaluated_array(evaluated: tuple) -> Array:
    """The evaluation mask as a device array, built once per mask (``jnp.asarray`` of a
    tuple of Python bools costs about a millisecond: it types every element)."""
    with jax.ensure_compile_time_eval():
        return jnp.asarray(np.asarray(evaluated))


def _policy(policy, ess_threshold, evaluated: tuple) -> ResamplingPolicy:
    num_states = len(evaluated)
    if isinstance(policy, ResamplingPolicy):
        if policy.schedule is not None and policy.schedule.shape != (num_states,):
            raise ValueError(f"policy.schedule must have shape ({num_states},), one entry per "
                             f"state (num_steps + 1), got {policy.schedule.shape}")
        return policy
    if policy == "interval":
        return _interval_policy(evaluated)
    if policy == "ess":
        return policies.ess_below(ess_threshold)
    if policy == "never":
        return policies.never()
    if policy == "always":
        return policies.always()
    raise ValueError(f"policy must be one of {POLICIES} or a probinfer.smc ResamplingPolicy, "
                     f"got {policy!r}")


def _configure(prior, reward, potential, temperature, intermediate_temperature,
               potential_every, potential_start, potential_stop, proposal, guidance_scale,
               num_reward_draws, invalid_reward, policy, ess_threshold, chunk_size=None):
    if not isinstance(prior, DiffusionPrior):
        raise TypeError(f"prior must be a probinfer diffusion prior, got {type(prior).__name__}")
    check_reward(reward)
    potential = get_potential(potential)
    if proposal not in PROPOSALS:
        raise ValueError(f"proposal must be one of {PROPOSALS}, got {proposal!r}")
    if proposal == "gradient" and not callable(getattr(prior, "transition_mean_std", None)):
        raise ValueError("proposal='gradient' needs a prior with Gaussian transitions "
                         "(transition_mean_std): a continuous prior with a stochastic sampler")
    reject = check_invalid_reward(invalid_reward)
    num_draws = check_positive_int(num_reward_draws, "num_reward_draws")
    evaluated = _evaluation_mask(prior.num_steps, potential_every, potential_start,
                                 potential_stop, potential.num_evaluations)
    structure = _Structure(potential, evaluated, proposal, num_draws, reject,
                           check_chunk_size(chunk_size))
    settings = _settings(temperature, intermediate_temperature, guidance_scale,
                         prior.num_steps)
    return structure, settings, _policy(policy, ess_threshold, evaluated)


@functools.lru_cache(maxsize=64)
def _cached_evaluation_mask(typed_args: tuple) -> tuple:
    return tuple(bool(e) for e in evaluation_steps(*(value for _, value in typed_args)))


def _evaluation_mask(*args) -> tuple:
    """:func:`evaluation_steps` as a tuple of bools, kept per arguments (a call then
    builds no array and converts no element). The key holds each argument's type, so
    ``2.0`` or ``True`` still reach the validation that ``2`` passes; arguments that cannot
    be hashed are computed afresh."""
    typed_args = tuple((type(value), value) for value in args)
    try:
        hash(typed_args)
    except TypeError:
        return tuple(bool(e) for e in evaluation_steps(*args))
    return _cached_evaluation_mask(typed_args)


def _steering_log_potential(p_prev, p, t):
    return p.log_potential


def _model(prior, reward, structure: _Structure, settings: SteeringSettings) -> FeynmanKac:
    """The steering run as a FeynmanKac model; ``settings`` may be traced.

    The model's functions are built once per (prior, reward, structure) and take the
    settings as :class:`jax.tree_util.Partial` arguments, so models for new settings are
    equal in structure and share the engine's compiled runs (checkpointed runs included).
    """
    init, move, summary = cached(prior, ("fk-model", reward, structure),
                                 lambda: _model_functions(prior, reward, structure))
    return FeynmanKac(init=jax.tree_util.Partial(init, settings),
                      move=jax.tree_util.Partial(move, settings),
                      log_potential=_steering_log_potential, num_steps=prior.num_steps + 1,
                      summary=summary)


def _model_functions(prior, reward, structure: _Structure):
    """``init(settings, key, n)``, ``move(settings, key, p, t)`` and ``summary`` of the
    steering model of :func:`_model`."""
    num_steps = prior.num_steps
    evaluated = np.asarray(structure.evaluated)
    # 0: no potential, 1: intermediate potential, 2: the final correction.
    kinds = evaluated.astype(np.int32) + (np.arange(num_steps + 1) == num_steps)
    potential, reject = structure.potential, structure.reject_invalid
    chunk = structure.chunk_size

    def denoise(x, step):
        return in_row_blocks(lambda block: prior.denoise(block, step), x, chunk)

    def init(settings, key, n):
        lambdas = settings.inverse_temperatures
        x = prior.init(key, n)
        zero = jnp.zeros(n, lambdas.dtype)
        return SteeringParticles(x, denoise(x, 0), prior.init_memory(x), zero,
                                 potential.initial_accumulator(n, lambdas.dtype), zero, zero,
                                 zero, jnp.zeros(n, bool))

    def propose(settings, key, p, step):
        lambdas, _, guidance = jax.tree_util.tree_map(jnp.asarray, settings)
        if structure.proposal == "prior":
            x_new, memory = prior.transition_with_memory(key, p.x, p.denoised, p.memory, step)
            return x_new, memory, 0.0
        mean, std = prior.transition_mean_std(p.x, step, p.denoised, memory=p.memory)

        def guided_value(x1):
            return lambdas[step] * reward(prior.denoise(x1[None], step)[0])

        grad = in_row_blocks(jax.vmap(jax.grad(guided_value)), p.x, chunk)
        shifted = mean + guidance * std ** 2 * grad
        x_new = shifted + std * jax.random.normal(key, mean.shape, mean.dtype)
        axes = tuple(range(1, mean.ndim))
        safe = jnp.where(std > 0, std, 1.0)
        log_ratio = (-0.5 * jnp.sum(((x_new - mean) / safe) ** 2, axis=axes)
                     + 0.5 * jnp.sum(((x_new - shifted) / safe) ** 2, axis=axes))
        memory = prior.next_memory(p.x, p.denoised, p.memory, step)
        return x_new, memory, jnp.where(std > 0, log_ratio, 0.0)

    def move(settings, key, p, t):
        # NumPy settings (feynman_kac_model called with Python numbers) become constants.
        lambdas, final_lam, _ = jax.tree_util.tree_map(jnp.asarray, settings)
        step = t - 1                       # the prior's transition from state t-1 to t
        move_key, reward_key = jax.random.split(key)
        x_new, memory, log_ratio = propose(settings, move_key, p, step)
        denoised = jax.lax.cond(t < num_steps, lambda: denoise(x_new, t),
                                lambda: jnp.zeros_like(p.denoised))

        def keep():
            return (p.reward, p.accumulator, p.applied, p.last_value,
                    jnp.zeros_like(p.reward), jnp.zeros_like(p.invalid))

        def evaluate(final):
            def fn():
                if final:
                    r, invalid = screen(batch_reward(reward, x_new, chunk), reject)
                    lam = final_lam
                else:
                    lam = lambdas[t]
                    r, invalid = clean_reward(reward_key, prior, reward, x_new, denoised, lam,
                                              structure.num_reward_draws, reject, chunk)
                r = r.astype(lambdas.dtype)
                accumulator, value = potential.update(p.accumulator, r, lam, p.last_value)
                last_value = lam * r
                if final:
                    # The last potential divides by all earlier ones: the path product is
                    # exp(λ r(x_0)), -inf where the clean sample's reward failed (rejected).
                    log_g = final_lam * r - p.applied
                else:
                    log_g = value
                    if reject:
                        # A failed intermediate estimate carries no information: potential 1
                        # and nothing remembered, so the particle is judged by later
                        # estimates and by its clean sample (killing it here would bias the
                        # target, which only excludes clean samples whose reward fails).
                        log_g = jnp.where(invalid, 0.0, log_g)
                        accumulator = jnp.where(invalid, p.accumulator, accumulator)
                        last_value = jnp.where(invalid, p.last_value, last_value)
                # A particle already at zero weight stays there (its later potentials
                # would be -inf - (-inf)).
                log_g = jnp.where(jnp.isneginf(p.applied), -jnp.inf, log_g)
                return r, accumulator, p.applied + log_g, last_value, log_g, invalid
            return fn

        r, accumulator, applied, last_value, log_g, invalid = jax.lax.switch(
            jnp.asarray(kinds)[t], [keep, evaluate(False), evaluate(True)])
        return SteeringParticles(x_new, denoised, memory, r, accumulator, applied, last_value,
                                 log_g + log_ratio, invalid)

    def summary(p, log_weights, t):
        # The engine's log-weights are already normalised: no second logsumexp. Particles
        # with zero weight may carry -inf rewards, which must not turn the mean into NaN.
        w = jnp.exp(log_weights)
        return {"reward_mean": jnp.sum(jnp.where(w > 0, w * p.reward, 0.0)),
                "reward_max": jnp.max(p.reward),
                "num_invalid_rewards": jnp.sum(p.invalid).astype(jnp.int32)}

    return init, move, summary


def feynman_kac_model(prior, reward, *, potential="difference", temperature=1.0,
                      intermediate_temperature=None, potential_every=None,
                      potential_start=None, potential_stop=None, proposal="prior",
                      guidance_scale=1.0, num_reward_draws=DEFAULT_NUM_REWARD_DRAWS,
                      invalid_reward="raise", policy="interval", ess_threshold=0.5):
    """The steering run of :func:`fk` as a :class:`~probinfer.smc.FeynmanKac` model and its
    resampling policy, ``(model, policy)``, for the engine's pure functions (``scan``,
    ``init``/``step``), e.g. replicates under ``jax.vmap``.

    Particles are :class:`SteeringParticles`; ``model.num_steps`` is ``prior.num_steps + 1``
    (the states, noise first).
    """
    structure, settings, policy = _configure(
        prior, reward, potential, temperature, intermediate_temperature, potential_every,
        potential_start, potential_stop, proposal, guidance_scale, num_reward_draws,
        invalid_reward, policy, ess_threshold)
    return _model(prior, reward, structure, settings), policy


def _whole_run(prior, reward, structure, resampler, num_particles, mesh=None):
    def build():
        def run(key, settings, policy):
            # The runners' key conversion (probinfer._compile.runner_key) inside the
            # compiled run, where it costs nothing, instead of two device operations a call.
            return smc_scan(fast_key(key), _model(prior, reward, structure, settings),
                            num_particles, resampler, policy, mesh=mesh)
        return jax.jit(run)
    return cached(prior, ("fk", reward, structure, resampler, num_particles, mesh), build)


def _chunked_run(prior, reward, structure, resampler, num_particles, key, settings, policy,
                 mesh=None):
    """The same run as :func:`_whole_run` (same keys), compiled in chunks so that a progress
    bar can advance between them."""
    init_fn = cached(prior, ("fk-init", reward, structure, num_particles, mesh),
                     lambda: jax.jit(lambda k, s: smc_init(
                         k, _model(prior, reward, structure, s), num_particles, mesh=mesh)))

    def build_steps():
        def steps(keys, state, s, pol):
            model = _model(prior, reward, structure, s)
            return jax.lax.scan(lambda st, k: smc_step(k, st, model, resampler, pol,
                                                       mesh=mesh), state, keys)
        return jax.jit(steps)

    steps_fn = cached(prior, ("fk-steps", reward, structure, resampler, mesh), build_steps)
    keys = jax.random.split(key, prior.num_steps + 1)
    state, info0 = init_fn(keys[0], settings)
    state, rest = chunked_scan(lambda ks, st: steps_fn(ks, st, settings, policy), state,
                               keys[1:], True, desc="FK steering", initial=1)
    info = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b]), info0, rest)
    return state, info


def _check_run(info: SMCInfo, summary: dict, num_particles: int, final_ess,
               reject_invalid: bool) -> None:
    """Errors naming the earliest failing state (NaN rewards first, unless rejected: they
    are the cause of what follows), and a warning when the final weights collapsed."""
    # One device-to-host transfer for everything checked (each separate read would wait
    # for the device and copy on its own, a fixed cost that dominates small runs).
    invalid, nonfinite, increments, final_ess = jax.device_get(
        (summary["num_invalid_rewards"], info.num_nonfinite, info.log_evidence_increment,
         final_ess))
    info = info._replace(num_nonfinite=nonfinite, log_evidence_increment=increments)
    if invalid.any() and not reject_invalid:
        state = int(np.argmax(invalid > 0))
        raise ValueError(
            f"the reward returned NaN for {int(invalid[state])} of {num_particles} "
            f"sample(s) at state {state} (0 = noise, {invalid.size - 1} = the clean "
            "samples). Fix the reward, or pass invalid_reward='reject' to give such "
            "samples zero weight (they are counted in info.num_invalid_rewards).")
    check_run(info, potential="reward")
    warn_on_collapse(final_ess, num_particles,
                     "Use more particles, potential='difference', a higher temperature, or "
                     "(masked priors) more num_reward_draws.")


def fk(key, prior, reward, num_particles: int, *, potential="difference", temperature=1.0,
       intermediate_temperature=None, potential_every: int | None = None,
       potential_start: int | None = None, potential_stop: int | None = None,
       policy="interval", ess_threshold=0.5, resampling="systematic", proposal: str = "prior",
       guidance_scale=1.0, num_reward_draws: int = DEFAULT_NUM_REWARD_DRAWS,
       invalid_reward: str = "raise", progress_bar=None,
       checkpoint: Checkpoint | None = None, resume_from=None, mesh=None,
       chunk_size: int | None = None) -> Result:
    """Feynman–Kac steering: ``pi(x_0) ∝ p(x_0) exp(reward(x_0) / temperature)``.

    Parameters
    ----------
    key : PRNG key (or an integer seed).
    prior : a diffusion prior (continuous, masked, torch), e.g.
        :class:`~probinfer.diffusion.GaussianMixturePrior`.
    reward : JAX function of ONE clean sample -> scalar, or a
        :func:`~probinfer.steer.host_reward` / :func:`~probinfer.steer.torch_reward`.
    num_particles : k >= 1.
    potential : ``"difference"`` (default), ``"max"``, ``"sum"``, ``"immediate"`` or a
        :class:`Potential` (``pi.steer.Max()``, ...). All are exact for the target thanks to
        the final correction; they differ in which particles survive early (see
        :mod:`probinfer.steering._potentials`). ``"difference"`` is the default on every
        prior: it converges on continuous and masked priors alike, while ``"max"`` of noisy
        masked-prior estimates overshoots and leaves 16–192 of 16 000 particles after the
        final correction (``docs/results/steering_discrete.md``).
    temperature : ``T > 0`` of the target (``λ = 1 / T``); traced (a new value does not
        recompile).
    intermediate_temperature : optional scalar or ``(num_steps + 1,)`` array of temperatures
        used by the intermediate potentials (annealing); the final step always uses
        ``temperature``.
    potential_every, potential_start, potential_stop : evaluation steps
        ``start, start+every, ... < stop`` (in states, 0 = noise) plus the last state;
        default about 20 evaluations for ``difference`` and 5 for the other potentials
        (``every = start = num_steps // 20`` or ``// 5``; see :func:`evaluation_steps`).
    policy : when to resample: ``"interval"`` (after every evaluation; default), ``"ess"``
        (when ESS < ``ess_threshold`` · k), ``"never"`` (importance sampling), ``"always"``,
        or a :class:`~probinfer.smc.ResamplingPolicy` over the ``num_steps + 1`` states.
    ess_threshold : for ``policy="ess"``; traced.
    resampling : the resampler: ``"systematic"``, ``"stratified"``, ``"multinomial"``,
        ``"residual"`` or a callable ``(key, log_weights, num) -> ancestors``.
    proposal : ``"prior"`` or ``"gradient"`` (priors with Gaussian transitions and a
        differentiable reward: the transition mean is shifted by
        ``guidance_scale · std² ∇ λ r(E[x_0|x_t])`` and the proposal ratio enters the
        weights, so the target is unchanged).
    guidance_scale : scale of the gradient shift; traced.
    num_reward_draws : priors that draw ``x_0 | x_t`` (masked): draws per intermediate
        reward estimate (a soft value ``T log mean exp(r / T)``). 16 by default: with 4 the
        noise of the estimate drives the resampling, and the tilted marginals at 16 000
        particles were off by 0.027–0.067 against 0.018–0.030 with 16
        (``docs/results/steering_discrete.md``). Continuous priors use ``r(E[x_0|x_t])``.
    invalid_reward : ``"raise"`` (a NaN reward is an error naming the state and the count) or
        ``"reject"`` (it counts as ``-inf``: zero weight; counted in
        ``info.num_invalid_rewards``).
    progress_bar : show a progress bar; default only for priors of more than 200 steps.
    checkpoint : a :class:`probinfer.Checkpoint` ``(path, every=k)``: save the particles,
        weights and traces to ``path`` (``.npz``, replaced atomically) every ``k`` states and
        at the end; no progress bar. Needs concrete inputs (not under ``jit``/``vmap``).
    resume_from : path of a checkpoint of this run (same key, prior, reward and settings):
        continue from its state; the result equals the uninterrupted run's.
    mesh : a :class:`jax.sharding.Mesh` with one axis: the particles (and the denoiser and
        reward calls on them) are split over its devices (``num_particles`` a multiple of
        their number); weights and resampling are global, so the same key gives the
        single-device result (to float tolerance where a reduction is summed in another
        order). ``None``: one device. See ``docs/scaling.md``.
    chunk_size : evaluate the denoiser, the reward (and its gradient for
        ``proposal="gradient"``) on blocks of this many particles, one block after the other,
        so that their intermediates (a network's activations, a reward's features) take
        memory for ``chunk_size`` particles instead of all of them; same results as
        unchunked up to float rounding. ``None`` (default): all particles at once.

    Returns
    -------
    Result: ``samples`` (k, *event_shape) with normalised ``log_weights``, ``log_evidence``
    estimating ``log E_p[exp(r(x_0)/T)]``, and ``info`` a :class:`SteeringInfo`.

    Called with concrete inputs, ``fk`` raises on NaN rewards and dead populations and warns
    when the final ESS is under 1 % of the particles. Under ``jax.vmap``/``jit`` (e.g. over
    keys or temperatures) it cannot raise: the same facts are in
    ``info.num_invalid_rewards`` and ``info.smc``.

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> mix = pi.GaussianMixture(jnp.array([0.9, 0.1]), jnp.array([[-2.0], [2.0]]),
    ...                          0.3 * jnp.ones((2, 1, 1)))
    >>> prior = pi.diffusion.GaussianMixturePrior(mix, num_steps=50)
    >>> res = pi.steer.fk(jax.random.key(0), prior, lambda x: x[0], 256)
    >>> res.samples.shape
    (256, 1)
    >>> log_z = jax.vmap(lambda t: pi.steer.fk(0, prior, lambda x: x[0], 256,
    ...                                         temperature=t).log_evidence)(jnp.ones(3))
    """
    num_particles = check_positive_int(num_particles, "num_particles")
    structure, settings, policy = _configure(
        prior, reward, potential, temperature, intermediate_temperature, potential_every,
        potential_start, potential_stop, proposal, guidance_scale, num_reward_draws,
        invalid_reward, policy, ess_threshold, chunk_size)
    resampler = get_resampler(resampling)
    _checkpoint.check_options(checkpoint, resume_from)
    mesh = _sharding.check_mesh(mesh, num_particles)
    key = as_key(key)
    concrete = is_concrete(key, settings, policy)
    saving = checkpoint is not None or resume_from is not None
    if saving and not concrete:
        raise ValueError("checkpoint= and resume_from= need concrete inputs: a run under "
                         "jax.jit or jax.vmap cannot write files between its steps")
    never_resamples = (policy.schedule is None and is_concrete(policy.ess_fraction)
                       and float(policy.ess_fraction) == 0)
    if not prior.is_stochastic and not never_resamples:
        warnings.warn("the prior's sampler is deterministic: resampled copies of a particle "
                      "stay identical, so steering cannot diversify them. Use a stochastic "
                      "sampler (DDPM, DDIM with eta > 0, Euler–Maruyama).", stacklevel=2)
    show = concrete and (prior.num_steps > PROGRESS_THRESHOLD if progress_bar is None
                         else bool(progress_bar))
    before = host_calls(reward)

    def call():
        if saving:
            return execute(runner_key(key), _model(prior, reward, structure, settings),
                           num_particles, resampler, policy, checkpoint=checkpoint,
                           resume_from=resume_from, mesh=mesh)
        if show:
            return _chunked_run(prior, reward, structure, resampler, num_particles,
                                runner_key(key), settings, policy, mesh)
        return _whole_run(prior, reward, structure, resampler, num_particles, mesh)(
            key, settings, policy)

    state, smc_info = explain_failures(reward, call)
    summary = smc_info.summary
    if concrete:
        _check_run(smc_info, summary, num_particles, state.ess, structure.reject_invalid)
    nfe = int(num_particles * np.sum(prior.nfe_per_step))
    if proposal == "gradient":
        # The guided mean differentiates r(E[x_0 | x_t]): one more denoiser forward pass
        # (plus its backward pass) per particle and step.
        nfe += num_particles * prior.num_steps
    # A shape computation (it traces the prior), so it is kept with the compiled runs.
    draws = cached(prior, ("clean-draws", structure.num_reward_draws),
                   lambda: num_clean_draws(prior, structure.num_reward_draws))
    num_evals = int(num_particles * (sum(structure.evaluated[:-1]) * draws + 1))
    info = SteeringInfo(smc_info._replace(summary=None), _evaluated_array(structure.evaluated),
                        summary["reward_mean"], summary["reward_max"],
                        summary["num_invalid_rewards"], nfe, num_evals,
                        host_calls(reward) - before)
    return Result(state.particles.x, state.log_weights, state.log_evidence, info)
