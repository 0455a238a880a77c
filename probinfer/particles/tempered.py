"""Adaptive tempered SMC with MCMC rejuvenation, and its waste-free variant.

The target is the end of the geometric path ``π_β(x) ∝ prior(x) · L(x)^β`` from ``β = 0``
(exact prior draws) to ``β = 1`` (the posterior). One step from equally weighted particles
at ``β``:

1. choose ``β' = β + δ`` by bisection so that the ESS of the incremental weights
   ``exp(δ · log L(x_i))`` is ``target_ess · N`` (or ``β' = 1`` if that already keeps the
   ESS above the target) (Jasra et al. 2011; Zhou, Johansen & Aston 2016);
2. reweight; the log-evidence grows by ``log mean_i exp(δ · log L(x_i))``;
3. tune the move from the weighted particles (pluggable, see
   :mod:`probinfer.kernels.adaptation`);
4. resample, then move every particle with an MCMC kernel invariant for ``π_β'``.

Waste-free SMC (Dau & Chopin 2022) resamples only ``M = N / P`` particles and runs a chain
of ``P - 1`` moves from each, keeping *every* state of every chain as the new ``N``
particles; the same number of likelihood evaluations then buys a far better particle
system than moving all ``N`` particles and discarding the intermediate states.

``init``/``step`` are pure functions over NamedTuples; :func:`loop` is the whole run as
one pure function (``jit``/``vmap`` it over replicate keys); :func:`tempered` is the
runner with validation, a progress bar and clear errors.

References: Del Moral, Doucet & Jasra (2006), "Sequential Monte Carlo samplers";
Chopin & Papaspiliopoulos (2020), *An Introduction to Sequential Monte Carlo*, ch. 17;
Dau & Chopin (2022), "Waste-free sequential Monte Carlo", JRSS B.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from probinfer._types import Array, PRNGKey, PyTree
from probinfer._validation import check_positive_int
from probinfer.kernels.adaptation import population_adaptation
from probinfer.kernels.base import Kernel
from probinfer.kernels.combinators import repeat
from probinfer.kernels.moves import rwm
from probinfer.particles.resampling import Resampler, get_resampler
from probinfer.particles.smc import resample_particles
from probinfer.particles.weights import ess as _ess
from probinfer.particles.weights import normalize
from probinfer.result import Result
from probinfer.targets.base import Target

_BISECTION_ITERATIONS = 60


class TemperedState(NamedTuple):
    particles: PyTree         # equally weighted, targeting prior · L^beta
    log_likelihood: Array     # (N,) log L at the particles (cached)
    beta: Array               # current exponent in [0, 1]
    log_evidence: Array       # running estimate of log ∫ prior · L^beta
    kernel_params: PyTree     # params the next move starts from
    acceptance_rate: PyTree   # mean acceptance of the last move (targets before the first)
    step: Array               # number of completed steps


class TemperedInfo(NamedTuple):
    beta: Array                    # exponent reached at this step
    ess: Array                     # ESS of the incremental weights, before resampling
    log_evidence_increment: Array  # log mean_i exp(delta · log L(x_i))
    acceptance_rate: PyTree        # mean acceptance of this step's move
    kernel_params: PyTree          # params used for this step's move
    ancestors: Array               # (N,) or (M,) waste-free: the resampled parents
    num_nonfinite: Array           # NaN / +inf log-likelihoods after the move (should be 0)
    constrain: Callable | None = None  # map to named constrained sites (from_numpyro runs)


def _incremental_log_weights(log_likelihood: Array, delta: Array) -> Array:
    # 0 · (-inf) is NaN; a particle with zero likelihood has zero weight for any delta > 0.
    return jnp.where(jnp.isneginf(log_likelihood), -jnp.inf, delta * log_likelihood)


def next_exponent(log_likelihood: Array, beta: Array, target_ess) -> Array:
    """The next exponent: the largest ``β' ≤ 1`` whose incremental ESS is ``≥ target_ess·N``.

    Bisection on ``δ ∈ [0, 1 − β]`` of the decreasing function
    ``δ ↦ ESS(exp(δ · log L)) / N``. The weights carry ``+δ · log L``, the same sign as
    the reweighting step; a sign error would pass on a symmetric likelihood and fail on
    an asymmetric one, which the tests check. Returns ``β`` itself when no ``δ > 0``
    reaches the target (the run has stalled; :func:`tempered` reports it).
    """
    num = log_likelihood.shape[0]
    log_target = jnp.log(jnp.asarray(target_ess, log_likelihood.dtype))
    max_delta = 1.0 - beta

    def reaches_target(delta):
        log_ess = jnp.log(_ess(_incremental_log_weights(log_likelihood, delta)))
        return log_ess - math.log(num) >= log_target

    def bisect(_, bounds):
        low, high = bounds
        mid = 0.5 * (low + high)
        ok = reaches_target(mid)
        return jnp.where(ok, mid, low), jnp.where(ok, high, mid)

    low, _ = jax.lax.fori_loop(0, _BISECTION_ITERATIONS, bisect,
                               (jnp.zeros_like(max_delta), max_delta))
    return jnp.where(reaches_target(max_delta), jnp.ones_like(beta), beta + low)


def _dim_and_dtype(particles):
    flat = ravel_pytree(jax.tree_util.tree_map(lambda leaf: leaf[0], particles))[0]
    return flat.shape[0], flat.dtype


def init(key: PRNGKey, prior: Target, log_likelihood: Callable, num_particles: int,
         kernel: Kernel, adaptation=None, kernel_params=None) -> TemperedState:
    """Draw ``N`` particles from the prior (``β = 0``) and set up the kernel params.

    ``kernel_params`` defaults to ``kernel.default_params``; ``adaptation`` (if given)
    then sets the scale from the prior draws.
    """
    particles = prior.sample(key, num_particles)
    log_l = jax.vmap(log_likelihood)(particles)
    dim, dtype = _dim_and_dtype(particles)
    params = kernel.default_params(dim, dtype) if kernel_params is None else kernel_params
    uniform = jnp.zeros(num_particles, log_l.dtype)
    if adaptation is not None:
        params = adaptation(kernel, params, particles, uniform, None)
    acceptance = jax.tree_util.tree_map(lambda t: jnp.asarray(t, log_l.dtype),
                                        kernel.target_acceptance)
    zero = jnp.zeros((), log_l.dtype)
    return TemperedState(particles, log_l, zero, zero, params, acceptance,
                         jnp.asarray(0, jnp.int32))


def step(key: PRNGKey, state: TemperedState, prior: Target, log_likelihood: Callable,
         kernel: Kernel, target_ess, adaptation=None, resampler: Resampler = None,
         chain_length: int | None = None) -> tuple[TemperedState, TemperedInfo]:
    """One tempering step: next exponent → reweight → adapt → resample → move.

    ``chain_length=None`` moves all ``N`` particles once with ``kernel``; an integer
    ``P`` is the waste-free step (``N / P`` chains of ``P`` states each).
    """
    resampler = get_resampler("systematic") if resampler is None else resampler
    resample_key, move_key = jax.random.split(key)
    num = state.log_likelihood.shape[0]
    beta = next_exponent(state.log_likelihood, state.beta, target_ess)
    log_w = _incremental_log_weights(state.log_likelihood, beta - state.beta)
    log_w_normalized, log_sum = normalize(log_w)
    increment = log_sum - math.log(num)
    params = state.kernel_params
    if adaptation is not None:
        params = adaptation(kernel, params, state.particles, log_w_normalized,
                            state.acceptance_rate)

    num_resampled = num if chain_length is None else num // chain_length
    x, ancestors = resample_particles(resample_key, state.particles, log_w_normalized,
                                      resampler, num_resampled)

    def tempered_log_density(point):
        return prior.log_density(point) + beta * log_likelihood(point)

    if chain_length is None:
        x, move_info = kernel.move(move_key, x, tempered_log_density, params)
    else:
        x, move_info = kernel.trajectories(move_key, x, tempered_log_density, params,
                                           chain_length)
    log_l = jax.vmap(log_likelihood)(x)
    acceptance = jax.tree_util.tree_map(jnp.mean, move_info.acceptance_rate)
    nonfinite = jnp.sum(jnp.isnan(log_l) | (log_l == jnp.inf)).astype(jnp.int32)
    new_state = TemperedState(x, log_l, beta, state.log_evidence + increment, params,
                              acceptance, state.step + 1)
    info = TemperedInfo(beta, _ess(log_w), increment, acceptance, params, ancestors,
                        nonfinite)
    return new_state, info


def loop(key: PRNGKey, prior: Target, log_likelihood: Callable, num_particles: int,
         kernel: Kernel, target_ess=0.5, adaptation=None, resampler: Resampler = None,
         chain_length: int | None = None, max_steps: int = 500, kernel_params=None
         ) -> tuple[TemperedState, TemperedInfo]:
    """The whole run as one pure function (``jit``/``vmap`` it, e.g. over replicate keys).

    Stops at ``β = 1``, after ``max_steps`` steps, or when a step fails to increase ``β``.
    Returns the final state and the infos in a buffer of ``max_steps`` rows, of which the
    first ``state.step`` are filled. No validation or error reporting: :func:`tempered`
    adds those. Uses the same random keys as :func:`tempered`, so both give the same run.
    """
    init_key, step_key = jax.random.split(key)
    state = init(init_key, prior, log_likelihood, num_particles, kernel, adaptation,
                 kernel_params)

    def one_step(s):
        return step(jax.random.fold_in(step_key, s.step), s, prior, log_likelihood, kernel,
                    target_ess, adaptation, resampler, chain_length)

    info_shapes = jax.eval_shape(lambda s: one_step(s)[1], state)
    buffer = jax.tree_util.tree_map(lambda s: jnp.zeros((max_steps,) + s.shape, s.dtype),
                                    info_shapes)

    def cond(carry):
        s, _, stalled = carry
        return (s.beta < 1) & (s.step < max_steps) & ~stalled

    def body(carry):
        s, buf, _ = carry
        new, info = one_step(s)
        buf = jax.tree_util.tree_map(lambda b, v: b.at[s.step].set(v), buf, info)
        return new, buf, new.beta <= s.beta

    state, buffer, _ = jax.lax.while_loop(cond, body, (state, buffer, jnp.asarray(False)))
    return state, buffer


_STATIC = ("prior", "log_likelihood", "kernel", "adaptation", "resampler", "chain_length")
_init_jit = jax.jit(init, static_argnames=("prior", "log_likelihood", "num_particles",
                                           "kernel", "adaptation"))
_step_jit = jax.jit(step, static_argnames=_STATIC)
_batch_log_density = jax.jit(lambda target, x: jax.vmap(target.log_density)(x),
                             static_argnames="target")
_DEFAULT_KERNEL = repeat(rwm(), 10)
_DEFAULT_ADAPTATION = population_adaptation()


def _is_probabilistic_program(obj) -> bool:
    return all(hasattr(obj, name) for name in ("prior", "log_likelihood", "constrain"))


def _check_initial_particles(state: TemperedState, prior: Target):
    log_l = np.asarray(state.log_likelihood)
    bad = np.isnan(log_l) | (log_l == np.inf)
    if bad.any():
        first = int(np.argmax(bad))
        raise ValueError(
            f"log_likelihood returned NaN or +inf at {int(bad.sum())} of {log_l.size} prior "
            f"draws (first at particle {first}: {log_l[first]}); it must be finite or -inf "
            "(zero likelihood) wherever the prior has mass")
    if np.isneginf(log_l).all():
        raise ValueError("log_likelihood is -inf at every prior draw: no particle has "
                         "positive likelihood, so the posterior cannot be reached by tempering")
    log_p = np.asarray(_batch_log_density(prior, state.particles))
    if not np.isfinite(log_p).all():
        raise ValueError(f"prior.log_density is not finite at {int((~np.isfinite(log_p)).sum())}"
                         f" of its own {log_p.size} draws")


def _stall_message(state: TemperedState, target_ess: float) -> str:
    log_l = np.asarray(state.log_likelihood)
    zero = float(np.mean(np.isneginf(log_l)))
    finite = log_l[np.isfinite(log_l)]
    spread = float(finite.max() - finite.min()) if finite.size else float("nan")
    return (f"tempering stalled at beta = {float(state.beta):.6g} after {int(state.step)} "
            f"step(s): no exponent increment keeps the ESS at target_ess = {target_ess} "
            f"(log-likelihood is -inf for {100 * zero:.1f}% of particles; spread of the finite "
            f"values {spread:.3g}). Use more particles, a lower target_ess, more MCMC moves, or "
            "check the likelihood for -inf regions and extreme values")


def tempered(key: PRNGKey, prior, log_likelihood=None, num_particles: int | None = None, *,
             kernel: Kernel | None = None, target_ess: float = 0.5,
             adaptation=_DEFAULT_ADAPTATION, kernel_params=None, waste_free: bool = False,
             chain_length: int = 20, resampling="systematic", max_steps: int = 500,
             progress_bar: bool | None = None) -> Result:
    """Adaptive tempered SMC from the prior to the posterior ``∝ prior · exp(log_likelihood)``.

    Parameters
    ----------
    key : PRNG key.
    prior : a :class:`~probinfer.Target` with ``sample``, or the result of
        :func:`~probinfer.from_numpyro` (then omit ``log_likelihood``:
        ``tempered(key, pm, num_particles)``).
    log_likelihood : ONE point -> scalar ``log L(x)``; finite or ``-inf``.
    num_particles : N.
    kernel : the move (a :class:`~probinfer.kernels.Kernel`); default
        ``repeat(rwm(), 10)``. Use ``pi.kernels.hmc``/``mala``/``nuts`` for gradients.
    target_ess : fraction in (0, 1): each exponent increment keeps the ESS at
        ``target_ess · N``.
    adaptation : tuning strategy applied before each move (default
        :func:`~probinfer.kernels.population_adaptation`: scale from the weighted particle
        standard deviations, step size from the acceptance rate); ``None`` keeps
        ``kernel_params``.
    kernel_params : starting params (default ``kernel.default_params``).
    waste_free : use waste-free SMC (Dau & Chopin 2022) with ``N / chain_length``
        chains of ``chain_length`` states each (``chain_length`` must divide N).
    chain_length : P, used when ``waste_free``.
    resampling : 'systematic' (default), 'stratified', 'multinomial', 'residual' or a callable.
    max_steps : upper bound on the number of tempering steps.
    progress_bar : show a progress bar over beta (default: on).

    Returns
    -------
    Result with equally weighted ``samples`` from the final move at ``β = 1``,
    ``log_evidence`` (estimate of ``log ∫ prior · L``) and ``info``
    (:class:`TemperedInfo` stacked over steps: ``info.beta`` is the tempering schedule
    after ``β = 0``, plus ESS, acceptance rates and kernel params per step). For NumPyro
    models ``info.constrain`` maps samples to named sites and ``result.to_arviz()`` uses it.

    Raises ``ValueError`` for bad arguments and for a log-likelihood that is NaN/+inf at
    the prior draws, and ``RuntimeError`` when the exponent stops increasing or
    ``max_steps`` is reached.

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> prior = pi.Gaussian(jnp.zeros(2), jnp.eye(2))
    >>> res = pi.smc.tempered(jax.random.key(0), prior,
    ...                       lambda x: -0.5 * jnp.sum((x - 1.0) ** 2) / 0.1, 500,
    ...                       progress_bar=False)
    >>> float(res.info.beta[-1])
    1.0
    """
    constrain = None
    if _is_probabilistic_program(prior):
        if num_particles is None and not callable(log_likelihood):
            log_likelihood, num_particles = None, log_likelihood
        if log_likelihood is not None:
            raise TypeError("pass either a from_numpyro model or (prior, log_likelihood), not "
                            "both: tempered(key, pm, num_particles)")
        constrain = jax.tree_util.Partial(prior.constrain)
        prior, log_likelihood = prior.prior, prior.log_likelihood
    if not isinstance(prior, Target):
        raise TypeError(f"prior must be a probinfer Target with sample() or a from_numpyro "
                        f"model, got {type(prior).__name__}")
    if not prior.can_sample:
        raise ValueError("prior must be able to sample (tempering starts from prior draws)")
    if not callable(log_likelihood):
        raise TypeError(f"log_likelihood must be callable: one point -> scalar, got "
                        f"{type(log_likelihood).__name__}")
    num_particles = check_positive_int(num_particles, "num_particles", minimum=2)
    kernel = _DEFAULT_KERNEL if kernel is None else kernel
    if not isinstance(kernel, Kernel):
        raise TypeError(f"kernel must be a probinfer.kernels.Kernel, got {type(kernel).__name__}")
    if isinstance(target_ess, bool) or not isinstance(target_ess, (int, float)) or not (
            0.0 < float(target_ess) < 1.0):
        raise ValueError(f"target_ess must be a fraction strictly between 0 and 1, got "
                         f"{target_ess!r}")
    if adaptation is not None and not callable(adaptation):
        raise TypeError("adaptation must be None or a callable "
                        "(kernel, params, particles, log_weights, acceptance_rate) -> params")
    max_steps = check_positive_int(max_steps, "max_steps")
    length = None
    if waste_free:
        length = check_positive_int(chain_length, "chain_length", minimum=2)
        if num_particles % length:
            raise ValueError(f"chain_length ({length}) must divide num_particles "
                             f"({num_particles}) for waste-free SMC")
    resampler = get_resampler(resampling)
    target_ess = float(target_ess)

    init_key, step_key = jax.random.split(key)
    state = _init_jit(init_key, prior, log_likelihood, num_particles, kernel, adaptation,
                      kernel_params)
    if state.log_likelihood.shape != (num_particles,):
        raise ValueError("log_likelihood must return a scalar for one point, got shape "
                         f"{state.log_likelihood.shape[1:]}")
    _check_initial_particles(state, prior)

    from tqdm.auto import tqdm
    infos = []
    beta = 0.0
    with tqdm(total=1.0, disable=progress_bar is False, desc="tempered SMC",
              bar_format="{l_bar}{bar}| beta={n:.4f} [{elapsed}]") as bar:
        while beta < 1.0:
            if len(infos) == max_steps:
                raise RuntimeError(
                    f"tempering did not reach beta = 1 in max_steps = {max_steps} steps "
                    f"(beta = {beta:.6g}); raise max_steps or lower target_ess")
            previous = state
            state, info = _step_jit(jax.random.fold_in(step_key, state.step), state, prior,
                                    log_likelihood, kernel, target_ess, adaptation, resampler,
                                    length)
            infos.append(info)
            new_beta = float(state.beta)
            if not new_beta > beta:
                raise RuntimeError(_stall_message(previous, target_ess))
            bar.update(new_beta - beta)
            beta = new_beta

    info = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *infos)
    bad = np.asarray(info.num_nonfinite)
    if bad.any():
        t = int(np.argmax(bad > 0))
        raise FloatingPointError(
            f"log_likelihood returned NaN or +inf for {int(bad[t])} particle(s) after the move "
            f"at step {t}; per-step counts are in TemperedInfo.num_nonfinite (probinfer.smc."
            "tempered_loop runs without this check)")
    info = info._replace(constrain=constrain)
    log_weights = jnp.full(num_particles, -math.log(num_particles), state.log_likelihood.dtype)
    return Result(state.particles, log_weights, state.log_evidence, info)


__all__ = ["TemperedState", "TemperedInfo", "init", "step", "loop", "tempered",
           "next_exponent"]
