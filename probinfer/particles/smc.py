"""The generic Feynman–Kac SMC engine.

Convention (Chopin & Papaspiliopoulos 2020): ``X_0 ~ M_0`` weighted by ``G_0(X_0)``; for
``t = 1..T-1``, ``X_t ~ M_t(X_{t-1})`` weighted by ``G_t(X_{t-1}, X_t)``. One step of the
engine at time ``t >= 1``: decide (policy on the weights of ``t-1``) → resample (one gather
of the whole particle pytree) → move (``M_t``) → reweight (``G_t``). Weights are carried in
log space across steps that do not resample; every step reports its log-evidence
increment, so ``log_evidence`` estimates ``log Z_T = log E[prod_t G_t]``.

``init``/``step`` are pure functions over NamedTuples (the user owns ``jit``/``vmap``);
:func:`scan` is the pure whole-run loop (vmappable over keys for replicates); :func:`run`
is the convenience runner with validation, a progress bar and clear errors.
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial
from typing import Callable, NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from probinfer._progress import PROGRESS_THRESHOLD, chunked_scan
from probinfer._random import fast_key
from probinfer._types import Array, PRNGKey, PyTree
from probinfer._validation import check_positive_int
from probinfer.particles import policies as _policies
from probinfer.particles.policies import ResamplingPolicy
from probinfer.particles.resampling import Resampler, get_resampler
from probinfer.particles.weights import ess as _ess
from probinfer.particles.weights import normalize
from probinfer.result import Result


@dataclasses.dataclass(frozen=True, eq=False)
class FeynmanKac:
    """A Feynman–Kac model: ``M_0``, ``M_t``, ``log G_t`` and the number of steps ``T``.

    Parameters
    ----------
    init : ``(key, n) -> particles`` with leading axis ``n``.
    move : ``(key, x_prev, t) -> x``, batched over particles.
    log_potential : ``(x_prev, x, t) -> (n,)``; ``x_prev`` is ``None`` at ``t = 0``.
    num_steps : ``T``, the number of potentials (``M_0`` counts as step 0).
    summary : optional ``(particles, log_weights, t) -> pytree`` recorded after every
        step into ``SMCInfo.summary`` (e.g. weighted means, reward traces), so per-step
        statistics need no loop of your own.

    ``t`` is a traced integer inside compiled runs. Instances compare by identity, so
    reusing one object reuses the compiled run.
    """

    init: Callable[[PRNGKey, int], PyTree]
    move: Callable[[PRNGKey, PyTree, Array], PyTree]
    log_potential: Callable[[PyTree | None, PyTree, Array], Array]
    num_steps: int
    summary: Callable[[PyTree, Array, Array], PyTree] | None = None

    def __post_init__(self):
        if self.summary is not None and not callable(self.summary):
            raise TypeError("FeynmanKac.summary must be callable or None")
        for name in ("init", "move", "log_potential"):
            if not callable(getattr(self, name)):
                raise TypeError(f"FeynmanKac.{name} must be callable, got "
                                f"{type(getattr(self, name)).__name__}")
        check_positive_int(self.num_steps, "num_steps")


class SMCState(NamedTuple):
    particles: PyTree
    log_weights: Array      # normalised
    log_evidence: Array     # running estimate of log Z_t
    step: Array             # index of the last completed step
    ess: Array              # ESS of log_weights, kept so the next decision needs no pass


class SMCInfo(NamedTuple):
    ess: Array                     # ESS after reweighting at this step
    resampled: Array               # whether this step resampled before moving
    ancestors: Array               # (N,) parent of each particle (identity if not resampled)
    log_evidence_increment: Array  # log sum_i W_{t-1}^i G_t^i
    num_nonfinite: Array           # potentials that were NaN or +inf (should be 0)
    summary: PyTree = None         # FeynmanKac.summary after this step, if given


def _summary(fk, particles, log_weights, t):
    return None if fk.summary is None else fk.summary(particles, log_weights, t)


def _reweight(log_weights_prev, log_potential):
    """New normalised log-weights, log-evidence increment, #non-finite potentials, ESS."""
    nonfinite = jnp.isnan(log_potential) | (log_potential == jnp.inf)
    unnormalized = log_weights_prev + log_potential
    new_log_weights, increment = normalize(unnormalized)
    # The ESS of the unnormalised weights is the same number, and it shares normalize's
    # exponentials, so it costs no extra pass over the particles.
    return (new_log_weights, increment, jnp.sum(nonfinite).astype(jnp.int32),
            _ess(unnormalized))


def _check_potential_shape(log_g, num_particles):
    if log_g.shape != (num_particles,):
        raise ValueError(f"log_potential must return shape ({num_particles},), "
                         f"got {log_g.shape}")


def init(key: PRNGKey, fk: FeynmanKac, num_particles: int) -> tuple[SMCState, SMCInfo]:
    """Draw ``X_0 ~ M_0`` and weight by ``G_0``. Returns the state and the step-0 info."""
    x0 = fk.init(key, num_particles)
    log_g = jnp.asarray(fk.log_potential(None, x0, jnp.asarray(0)))
    _check_potential_shape(log_g, num_particles)
    uniform = jnp.full(num_particles, -math.log(num_particles), log_g.dtype)
    log_weights, increment, bad, ess = _reweight(uniform, log_g)
    state = SMCState(x0, log_weights, increment, jnp.asarray(0, jnp.int32), ess)
    info = SMCInfo(ess, jnp.asarray(False),
                   jnp.arange(num_particles, dtype=jnp.int32), increment, bad,
                   _summary(fk, x0, log_weights, state.step))
    return state, info


def resample_particles(key: PRNGKey, particles: PyTree, log_weights: Array,
                       resampler: Resampler, num: int | None = None):
    """Resample all per-particle state in one gather; returns ``(particles, ancestors)``."""
    num = log_weights.shape[0] if num is None else num
    ancestors = resampler(key, log_weights, num)
    return jax.tree_util.tree_map(lambda leaf: leaf[ancestors], particles), ancestors


def step(key: PRNGKey, state: SMCState, fk: FeynmanKac, resampler: Resampler,
         policy: ResamplingPolicy) -> tuple[SMCState, SMCInfo]:
    """One SMC step ``t = state.step + 1``: decide → resample → move → reweight."""
    resample_key, move_key = jax.random.split(key)
    t = state.step + 1
    num = state.log_weights.shape[0]
    do_resample = policy.should_resample(state.log_weights, t, state.ess)

    def with_resampling(_):
        x, ancestors = resample_particles(resample_key, state.particles, state.log_weights,
                                          resampler)
        return x, jnp.full_like(state.log_weights, -math.log(num)), ancestors

    def without(_):
        return state.particles, state.log_weights, jnp.arange(num, dtype=jnp.int32)

    x_prev, log_w_prev, ancestors = jax.lax.cond(do_resample, with_resampling, without, None)
    x = fk.move(move_key, x_prev, t)
    log_g = jnp.asarray(fk.log_potential(x_prev, x, t))
    _check_potential_shape(log_g, num)
    log_weights, increment, bad, ess = _reweight(log_w_prev, log_g)
    new_state = SMCState(x, log_weights, state.log_evidence + increment, t, ess)
    return new_state, SMCInfo(ess, do_resample, ancestors, increment, bad,
                              _summary(fk, x, log_weights, t))


def _scan_steps(keys, state, fk, resampler, policy):
    return jax.lax.scan(lambda s, k: step(k, s, fk, resampler, policy), state, keys)


def _stack(first: SMCInfo, rest: SMCInfo) -> SMCInfo:
    return jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b]), first, rest)


def scan(key: PRNGKey, fk: FeynmanKac, num_particles: int, resampler: Resampler,
         policy: ResamplingPolicy) -> tuple[SMCState, SMCInfo]:
    """The whole run as one pure function (``jit``/``vmap`` it, e.g. over replicate keys).

    Returns the final state and the per-step infos stacked along a leading step axis.
    No input validation or error reporting: :func:`run` adds those.
    """
    keys = jax.random.split(key, fk.num_steps)
    state, info0 = init(keys[0], fk, num_particles)
    state, infos = _scan_steps(keys[1:], state, fk, resampler, policy)
    return state, _stack(info0, infos)


_init_jit = jax.jit(init, static_argnames=("fk", "num_particles"))
_scan_steps_jit = jax.jit(_scan_steps, static_argnames=("fk", "resampler"))
_scan_jit = jax.jit(scan, static_argnames=("fk", "num_particles", "resampler"))


def _policy_from(policy, ess_threshold, num_steps) -> ResamplingPolicy:
    if policy is None:
        return _policies.ess_below(ess_threshold)
    if isinstance(policy, str):
        named = {"always": _policies.always, "never": _policies.never}
        if policy not in named:
            raise ValueError(f"policy must be 'always', 'never' or a ResamplingPolicy, got "
                             f"{policy!r}")
        return named[policy]()
    if not isinstance(policy, ResamplingPolicy):
        raise TypeError(f"policy must be a ResamplingPolicy or a name, got "
                        f"{type(policy).__name__}")
    if policy.schedule is not None and policy.schedule.shape != (num_steps,):
        raise ValueError(f"policy.schedule must have shape ({num_steps},) to match "
                         f"fk.num_steps, got {policy.schedule.shape}")
    return policy


def _raise_on_degeneracy(info: SMCInfo):
    """Raise for the earliest failure: once every weight is zero the run carries NaNs, so
    later non-finite potentials are consequences, not causes."""
    bad = np.asarray(info.num_nonfinite) > 0
    dead = np.isneginf(np.asarray(info.log_evidence_increment))
    first_bad = int(np.argmax(bad)) if bad.any() else None
    first_dead = int(np.argmax(dead)) if dead.any() else None
    if first_dead is not None and (first_bad is None or first_dead < first_bad):
        raise ValueError(
            f"every particle has zero weight at step {first_dead}: all log-potentials are "
            "-inf (e.g. a hard constraint no particle satisfies). Use more particles, a "
            "softer potential, or a proposal that reaches the support.")
    if first_bad is not None:
        count = int(np.asarray(info.num_nonfinite)[first_bad])
        raise ValueError(
            f"log_potential returned NaN or +inf for {count} particle(s) at step "
            f"{first_bad}; the per-step counts are in SMCInfo.num_nonfinite (use "
            "probinfer.smc.scan to inspect the run without this check)")


def run(key: PRNGKey, fk: FeynmanKac, num_particles: int, resampling="systematic",
        ess_threshold: float = 0.5, policy=None, final_resample: bool = False,
        progress_bar: bool | None = None) -> Result:
    """Run SMC on a Feynman–Kac model.

    Parameters
    ----------
    key : PRNG key.
    fk : the :class:`FeynmanKac` model.
    num_particles : N >= 1.
    resampling : 'systematic' (default), 'stratified', 'multinomial', 'residual' or a
        callable ``(key, log_weights, num) -> ancestors``.
    ess_threshold : resample when ESS < ess_threshold · N (ignored when ``policy`` is given).
    policy : 'always', 'never', or a :class:`ResamplingPolicy` (see
        ``probinfer.smc.every``/``at_steps``) overriding ``ess_threshold``.
    final_resample : resample once more at the end, returning equally weighted samples.
    progress_bar : show a progress bar; default: only for runs of more than 200 steps
        (it advances between compiled chunks; results do not depend on it).

    Returns
    -------
    Result with ``samples`` (particles at ``T-1``), normalised ``log_weights``,
    ``log_evidence`` (estimate of ``log E[prod_t G_t]``) and ``info`` (:class:`SMCInfo`
    stacked over the ``T`` steps).

    Raises ``ValueError`` naming the step when a potential is NaN or +inf, and when every
    particle has zero weight (all potentials ``-inf``).

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> fk = pi.smc.FeynmanKac(
    ...     init=lambda key, n: jax.random.normal(key, (n,)),
    ...     move=lambda key, x, t: x + jax.random.normal(key, x.shape),
    ...     log_potential=lambda x_prev, x, t: -0.5 * x ** 2,
    ...     num_steps=10)
    >>> res = pi.smc.run(jax.random.key(0), fk, 1000)
    >>> res.info.ess.shape
    (10,)
    """
    if not isinstance(fk, FeynmanKac):
        raise TypeError(f"fk must be a probinfer.smc.FeynmanKac, got {type(fk).__name__}")
    num_particles = check_positive_int(num_particles, "num_particles")
    resampler = get_resampler(resampling)
    policy = _policy_from(policy, ess_threshold, fk.num_steps)
    if progress_bar is None:
        progress_bar = fk.num_steps > PROGRESS_THRESHOLD
    # Same bits as the caller's key, generated faster on CPU (see probinfer._random).
    key = fast_key(key)
    if progress_bar and fk.num_steps > 1:
        keys = jax.random.split(key, fk.num_steps)
        state, info0 = _init_jit(keys[0], fk, num_particles)
        state, rest = chunked_scan(
            lambda chunk, s: _scan_steps_jit(chunk, s, fk, resampler, policy), state,
            keys[1:], True, desc="SMC", initial=1)
        info = _stack(info0, rest)
    else:
        # One compiled call: init, every step and the stacking of infos.
        state, info = _scan_jit(key, fk, num_particles, resampler, policy)
    _raise_on_degeneracy(info)

    samples, log_weights = state.particles, state.log_weights
    if final_resample:
        final_key = jax.random.fold_in(key, fk.num_steps)
        samples, _ = resample_particles(final_key, samples, log_weights, resampler)
        log_weights = jnp.full_like(log_weights, -math.log(num_particles))
    return Result(samples, log_weights, state.log_evidence, info)
