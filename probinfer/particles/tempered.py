"""Adaptive tempered SMC as a Feynman–Kac model on the one SMC engine, and waste-free SMC.

The target is the end of the geometric path ``π_β(x) ∝ prior(x) · L(x)^β``
(:class:`~probinfer.targets.GeometricPath`) from ``β = 0`` (exact prior draws) to ``β = 1``
(the posterior). As a Feynman–Kac model (Chopin & Papaspiliopoulos 2020, ch. 17):

* ``M_0`` draws from the prior; ``M_t`` is an MCMC move invariant for ``π_{β_t}``;
* after each move the next exponent ``β_{t+1}`` is chosen (the model's ``adapt``) so that
  the ESS of the weights ``W_t ∝ W_{t-1} · L(x)^{β_{t+1} - β_t}`` is ``target_ess`` times the
  ESS they had before (Jasra et al. 2011; Zhou, Johansen & Aston 2016), and the move's
  params are tuned from the reweighted particles;
* ``G_t(x) = L(x)^{β_{t+1} - β_t}``; the run stops after the step that reaches ``β = 1``
  (the engine's ``done``), so the final particles are weighted for the posterior and
  ``log_evidence`` estimates ``log ∫ prior · L``.

The exponent is found by bisection on ``log δ`` between ``log(tiny)`` and ``log(1 - β)``,
so increments down to the smallest positive float are reachable and tempering does not
stall on likelihoods whose values at the prior draws span hundreds of orders of magnitude.
Particles with ``log L = -inf`` (outside the likelihood's support) get zero weight at the
first positive exponent and are dropped at resampling; the ESS target counts only the
others, and the dropped fraction is reported.

Waste-free SMC (Dau & Chopin 2022) is a move: of the ``N`` resampled particles it keeps
``M = N / P`` (every ``P``-th from a random offset, which is a resampling of ``M`` from the
weights with the same marginals as the engine's scheme), runs a chain of ``P - 1`` kernel
steps from each and keeps every state, so the same number of likelihood evaluations buys
a far better particle system than moving all ``N`` particles.

References: Del Moral, Doucet & Jasra (2006), "Sequential Monte Carlo samplers";
Chopin & Papaspiliopoulos (2020), *An Introduction to Sequential Monte Carlo*, ch. 17;
Dau & Chopin (2022), "Waste-free sequential Monte Carlo", JRSS B;
Buchholz, Chopin & Jacob (2021), "Adaptive tuning of HMC within SMC", Bayesian Analysis.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from probinfer import _checkpoint, _sharding
from probinfer._checkpoint import Checkpoint
from probinfer._chunks import blocked_vmap, check_chunk_size, in_row_blocks
from probinfer._types import Array, PRNGKey, PyTree
from probinfer._validation import check_positive_int
from probinfer.kernels.adaptation import population_adaptation
from probinfer.kernels.base import Kernel
from probinfer.kernels.combinators import AdaptiveRepeat, Chain, Repeat, adaptive_repeat
from probinfer.kernels.moves import HMC, MALA, NUTS, RandomWalk, hmc, rwm
from probinfer.particles import policies
from probinfer.particles.resampling import Resampler, get_resampler
from probinfer.particles.smc import (FeynmanKac, SMCInfo, SMCState, check_run, execute, scan,
                                     single_key, warn_on_collapse)
from probinfer.particles.weights import ess as _ess
from probinfer.particles.weights import normalize
from probinfer.result import Result
from probinfer.targets.base import GeometricPath, Target

_BISECTION_ITERATIONS = 64


class TemperedParticles(NamedTuple):
    """Per-particle state of tempered SMC (resampled together in one gather)."""

    position: PyTree          # the points, leading axis N
    log_prior: Array          # (N,) prior log density at the points (cached)
    log_likelihood: Array     # (N,) log L at the points (cached)
    acceptance_rate: PyTree   # (N,) acceptance of the last move (NaN before the first)
    num_moves: Array          # (N,) kernel steps of the last move (0 before the first)


class TemperedState(NamedTuple):
    """The tempering part of the engine's state (``SMCState.params``), after a step."""

    beta: Array               # exponent the weighted particles now target
    previous_beta: Array      # exponent the step's move targeted
    target_ess: Array         # each step keeps the ESS at target_ess times its previous value
    kernel_params: PyTree     # params the next move uses (tuned at this step)
    acceptance_rate: PyTree   # mean acceptance of this step's move (NaN at step 0)
    num_moves: Array          # kernel steps of this step's move (0 at step 0)
    dropped_fraction: Array   # weight on particles with log L = -inf, set to 0 at this step
    num_nonfinite_prior: Array  # particles whose prior log density is not finite (0)


class TemperedInfo(NamedTuple):
    """Per-step traces of a tempered run (leading axis: the steps, step 0 = prior draws)."""

    beta: Array                    # exponent reached at this step (the schedule, > 0)
    ess: Array                     # ESS after reweighting at this step
    log_evidence_increment: Array  # log sum_i W_{t-1}^i L(x_i)^delta
    acceptance_rate: PyTree        # mean acceptance of this step's move (NaN at step 0)
    kernel_params: PyTree          # params tuned at this step for the next move
    ancestors: Array | None        # (N,) parents at this step's resampling (keep_ancestors)
    num_nonfinite: Array           # NaN / +inf log-likelihoods at this step (should be 0)
    num_moves: Array               # kernel steps of this step's move (0 at step 0)
    dropped_fraction: Array        # weight dropped for log L = -inf at this step
    num_gradient_evaluations: Array  # log-density gradients in this step's move (NaN: NUTS)
    kernel: str = ""               # the move, e.g. 'adaptive_repeat(rwm(), max 100)'

    def traces(self):
        """``(per_step, counters)``: per-step traces and run totals (see ``to_arviz``)."""
        per_step = {"tempering_exponent": self.beta, "ess": self.ess,
                    "log_evidence_increment": self.log_evidence_increment,
                    "acceptance_rate": self.acceptance_rate, "moves_per_level": self.num_moves,
                    "dropped_fraction": self.dropped_fraction,
                    "step_size": _step_sizes(self.kernel_params)}
        grads = np.asarray(self.num_gradient_evaluations)
        counters = {"num_tempering_steps": int(np.asarray(self.beta).shape[0]),
                    "num_moves": int(np.sum(np.asarray(self.num_moves)))}
        if np.isfinite(grads).all():
            counters["num_gradient_evaluations"] = int(grads.sum())
        return per_step, counters


def _flatten_info(info):
    return tuple(info[:-1]), info.kernel


def _unflatten_info(kernel, children):
    return TemperedInfo(*children, kernel)


# The kernel's name is static data, not a leaf: jit, vmap and stacking replicates (see
# probinfer.smc.replicate) see only the arrays.
jax.tree_util.register_pytree_node(TemperedInfo, _flatten_info, _unflatten_info)


def _step_sizes(kernel_params):
    from probinfer.kernels.base import KernelParams
    leaves = jax.tree_util.tree_leaves(kernel_params,
                                       is_leaf=lambda node: isinstance(node, KernelParams))
    sizes = tuple(p.step_size for p in leaves if isinstance(p, KernelParams))
    return sizes[0] if len(sizes) == 1 else sizes


def incremental_log_weights(log_likelihood: Array, delta: Array) -> Array:
    """``delta · log L``, with ``-inf`` (not NaN) where ``log L = -inf`` for any ``delta``."""
    return jnp.where(jnp.isneginf(log_likelihood), -jnp.inf, delta * log_likelihood)


def next_exponent(log_likelihood: Array, beta: Array, target_ess,
                  log_weights: Array | None = None) -> Array:
    """The next exponent: the largest ``β' ≤ 1`` whose weights keep ``target_ess`` of the ESS.

    The ESS of ``log_weights + δ · log L`` decreases from ``ESS_0`` (its limit as
    ``δ → 0+``: the ESS of ``log_weights`` over the particles with finite ``log L``) as
    ``δ`` grows; the bisection runs on ``log δ ∈ [log(tiny), log(1 − β)]`` for the largest
    ``δ`` with ESS ``≥ target_ess · ESS_0``. The weights carry ``+δ · log L``, the sign of
    the reweighting (a sign error would pass on a symmetric likelihood only). Where no
    representable ``δ`` reaches the target the exponent still moves to the next float
    above ``β``: tempering never stalls, and ``info.ess`` shows the shortfall.
    """
    dtype = log_likelihood.dtype
    log_weights = (jnp.zeros_like(log_likelihood) if log_weights is None
                   else jnp.asarray(log_weights, dtype))
    finite = jnp.isfinite(log_likelihood)
    log_l = jnp.where(finite, log_likelihood, 0.0)
    base = jnp.where(finite, log_weights, -jnp.inf)
    log_target = jnp.log(jnp.asarray(target_ess, dtype)) + jnp.log(_ess(base))

    def reaches_target(log_delta):
        return jnp.log(_ess(base + jnp.exp(log_delta) * log_l)) >= log_target

    remaining = 1.0 - beta
    high = jnp.log(remaining)
    low = jnp.log(jnp.asarray(jnp.finfo(dtype).tiny, dtype))

    def bisect(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        ok = reaches_target(mid)
        return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid)

    low, _ = jax.lax.fori_loop(0, _BISECTION_ITERATIONS, bisect, (low, high))
    proposed = jnp.minimum(beta + jnp.exp(low), 1.0)
    proposed = jnp.maximum(proposed, jnp.nextafter(beta, jnp.asarray(2.0, beta.dtype)))
    return jnp.where(reaches_target(high), jnp.ones_like(beta), jnp.minimum(proposed, 1.0))


def _mean_acceptance(acceptance):
    return jax.tree_util.tree_map(jnp.mean, acceptance)


def tempering_model(path: GeometricPath, kernel: Kernel, adaptation=None,
                    chain_length: int | None = None, max_steps: int = 500,
                    chunk_size: int | None = None) -> FeynmanKac:
    """The adaptive tempering Feynman–Kac model of ``path`` (see the module docstring).

    Run it with the engine and the initial params of :func:`tempering_params`, resampling
    at every step: ``pi.smc.run(key, fk, n, policy="always", params=params)``.
    :func:`tempered` does this with input checks and the tempering-specific errors.

    Parameters
    ----------
    path : the :class:`~probinfer.targets.GeometricPath` from a prior with ``sample``.
    kernel : the MCMC move (a :class:`~probinfer.kernels.Kernel`).
    adaptation : ``(kernel, params, particles, log_weights, acceptance_rate) -> params``
        applied after choosing each exponent, or ``None`` to keep the params.
    chain_length : ``None`` moves all particles with ``kernel``; ``P`` makes the move
        waste-free (``N / P`` chains of ``P`` states; ``P`` must divide ``N``).
    max_steps : upper bound on the number of steps (the engine's ``num_steps``).
    chunk_size : evaluate the likelihood, the prior density and the moves on blocks of at
        most this many particles (``None``: all at once); see :func:`tempered`.
    """
    prior, log_likelihood = path.base, path.log_likelihood
    batch_log_likelihood = blocked_vmap(log_likelihood, chunk_size)

    def batch_log_prior(x):
        return in_row_blocks(prior.batch_log_density, x, chunk_size)
    target_acceptance = kernel.target_acceptance

    def init(key, num):
        x = prior.sample(key, num)
        log_l = batch_log_likelihood(x)
        nan = jax.tree_util.tree_map(lambda _: jnp.full(num, jnp.nan, log_l.dtype),
                                     target_acceptance)
        return TemperedParticles(x, batch_log_prior(x), log_l, nan,
                                 jnp.zeros(num, jnp.int32))

    def adapt(params, particles, log_weights, t):
        log_l = particles.log_likelihood
        beta = next_exponent(log_l, params.beta, params.target_ess, log_weights)
        new_log_weights = log_weights + incremental_log_weights(log_l, beta - params.beta)
        dropped = jnp.sum(jnp.where(jnp.isneginf(log_l), jnp.exp(normalize(log_weights)[0]),
                                    0.0))
        acceptance = _mean_acceptance(particles.acceptance_rate)
        kernel_params = params.kernel_params
        if adaptation is not None:
            # Before the first move there is no acceptance rate: aim the step size at the
            # target, i.e. leave it unchanged.
            observed = jax.tree_util.tree_map(
                lambda a, target: jnp.where(jnp.isnan(a), jnp.asarray(target, a.dtype), a),
                acceptance, target_acceptance)
            kernel_params = adaptation(kernel, kernel_params, particles.position,
                                       new_log_weights, observed)
        bad_prior = jnp.sum(~jnp.isfinite(particles.log_prior)).astype(jnp.int32)
        return TemperedState(beta, params.beta, params.target_ess, kernel_params, acceptance,
                             particles.num_moves[0], dropped.astype(log_l.dtype), bad_prior)

    def move(key, particles, t, params):
        beta = params.beta

        def log_density(point):
            return path.log_density(point, beta)

        num = particles.log_likelihood.shape[0]
        if chain_length is None:
            x, info = kernel.move(key, particles.position, log_density, params.kernel_params,
                                  chunk_size)
            acceptance = info.acceptance_rate
            steps = kernel.steps_per_move if info.num_steps is None else info.num_steps
        else:
            offset_key, move_key = jax.random.split(key)
            offset = jax.random.randint(offset_key, (), 0, chain_length)
            starts = jax.tree_util.tree_map(
                lambda leaf: jax.lax.dynamic_index_in_dim(
                    leaf.reshape((num // chain_length, chain_length) + leaf.shape[1:]),
                    offset, axis=1, keepdims=False), particles.position)
            x, info = kernel.trajectories(move_key, starts, log_density, params.kernel_params,
                                          chain_length, chunk_size)
            acceptance = jax.tree_util.tree_map(lambda a: jnp.repeat(a, chain_length),
                                                info.acceptance_rate)
            steps = (chain_length - 1) * (kernel.steps_per_move or 1)
        log_l = batch_log_likelihood(x)
        acceptance = jax.tree_util.tree_map(lambda a: a.astype(log_l.dtype), acceptance)
        return TemperedParticles(x, batch_log_prior(x), log_l, acceptance,
                                 jnp.full(num, steps, jnp.int32))

    def log_potential(x_prev, particles, t, params):
        log_g = incremental_log_weights(particles.log_likelihood,
                                        params.beta - params.previous_beta)
        # A prior that is not finite at its own draws stops the run (the runner says why).
        return jnp.where(jnp.isfinite(particles.log_prior), log_g, jnp.nan)

    def done(state):
        return state.params.beta >= 1

    return FeynmanKac(init, move, log_potential, max_steps, adapt=adapt, done=done,
                      cache_key=("tempering", prior, log_likelihood, kernel, adaptation,
                                 chain_length, chunk_size))


def tempering_params(kernel: Kernel, example_point: PyTree, target_ess=0.5,
                     kernel_params=None) -> TemperedState:
    """Initial params of :func:`tempering_model` at ``β = 0``.

    ``example_point`` (ONE point, or its ``jax.ShapeDtypeStruct``) fixes the dimension and
    dtype of ``kernel.default_params``, used when ``kernel_params`` is ``None``.
    """
    leaves = jax.tree_util.tree_leaves(example_point)
    dim = sum(int(np.prod(leaf.shape)) for leaf in leaves)
    dtype = jnp.result_type(*[leaf.dtype for leaf in leaves])
    params = kernel.default_params(dim, dtype) if kernel_params is None else kernel_params
    zero = jnp.zeros((), dtype)
    nan = jax.tree_util.tree_map(lambda _: jnp.full((), jnp.nan, dtype),
                                 kernel.target_acceptance)
    return TemperedState(zero, zero, jnp.asarray(target_ess, dtype), params, nan,
                         jnp.asarray(0, jnp.int32), zero, jnp.asarray(0, jnp.int32))


def tempered_scan(key: PRNGKey, prior: Target, log_likelihood: Callable, num_particles: int,
                  kernel: Kernel, target_ess=0.5, adaptation=None,
                  resampler: Resampler | None = None, chain_length: int | None = None,
                  max_steps: int = 500, kernel_params=None, chunk_size: int | None = None
                  ) -> tuple[SMCState, SMCInfo]:
    """The whole tempered run as one pure function (``jit``/``vmap`` it over replicate keys).

    The engine's :func:`~probinfer.smc.scan` on :func:`tempering_model`: returns the final
    :class:`~probinfer.smc.SMCState` (``state.particles`` are :class:`TemperedParticles`,
    ``state.params`` the :class:`TemperedState`) and the engine infos in a buffer of
    ``max_steps`` rows, of which the first ``state.step + 1`` are filled. No validation or
    error reporting: :func:`tempered` adds those. Uses the same random keys as
    :func:`tempered`, so both give the same run. ``target_ess`` may be traced;
    ``chunk_size`` as in :func:`tempered`.
    """
    fk = tempering_model(GeometricPath(prior, log_likelihood), kernel, adaptation,
                         chain_length, max_steps, chunk_size)
    example = jax.eval_shape(lambda k: jax.tree_util.tree_map(lambda leaf: leaf[0],
                                                              prior.sample(k, 1)), key)
    params = tempering_params(kernel, example, target_ess, kernel_params)
    resampler = get_resampler("systematic") if resampler is None else resampler
    return scan(key, fk, num_particles, resampler, policies.always(), params)


_DEFAULT_ADAPTATION = population_adaptation()
#: Leapfrog steps of the default HMC move. A fixed trajectory length (``hmc(32,
#: trajectory_length=2.0)``) spends 8-18x fewer gradients but its evidence estimate spread
#: 10x more and was biased by +3.4 nats at d = 20 and on a 31-d logistic regression
#: (docs/tempered_smc.md): the evidence is part of what tempered SMC returns, so the default
#: keeps the fixed step count.
DEFAULT_LEAPFROG_STEPS = 10
DEFAULT_MAX_MOVES_HMC = 20
DEFAULT_MAX_MOVES_RWM = 100


def _has_gradient(log_density: Callable, point) -> bool:
    """Whether ``jax.grad`` can trace ``log_density`` at ``point`` (floating leaves only;
    host callbacks without a JVP rule, integer sites and NumPy calls fail here)."""
    if not all(jnp.issubdtype(leaf.dtype, jnp.floating)
               for leaf in jax.tree_util.tree_leaves(point)):
        return False
    try:
        jax.eval_shape(jax.grad(log_density), point)
    except (TypeError, ValueError, NotImplementedError, jax.errors.JAXTypeError):
        return False
    return True


def default_kernel(prior: Target, log_likelihood: Callable, example_point) -> Kernel:
    """The default move of :func:`tempered`: gradients when the target has them.

    ``adaptive_repeat(hmc(10), max_num_steps=20)`` (mass matrix adapted from the
    population, dense up to 200 dimensions) when
    ``prior.log_density`` and ``log_likelihood`` are differentiable with JAX, else
    ``adaptive_repeat(rwm(), max_num_steps=100)``; see ``docs/tempered_smc.md`` for why.
    """
    path = GeometricPath(prior, log_likelihood)
    if _has_gradient(lambda x: path.log_density(x, 0.5), example_point):
        return adaptive_repeat(hmc(DEFAULT_LEAPFROG_STEPS), DEFAULT_MAX_MOVES_HMC)
    return adaptive_repeat(rwm(), DEFAULT_MAX_MOVES_RWM)


def describe_kernel(kernel: Kernel) -> str:
    """A short name of a move, e.g. ``'adaptive_repeat(hmc(length 2, max 32), max 20)'``."""
    if isinstance(kernel, RandomWalk):
        return "rwm()"
    if isinstance(kernel, MALA):
        return "mala()"
    if isinstance(kernel, HMC):
        if kernel.trajectory_length is not None:
            return (f"hmc(length {kernel.trajectory_length:g}, "
                    f"max {kernel.num_integration_steps})")
        return f"hmc({kernel.num_integration_steps})"
    if isinstance(kernel, NUTS):
        return "nuts()"
    if isinstance(kernel, Repeat):
        return f"repeat({describe_kernel(kernel.kernel)}, {kernel.num_steps})"
    if isinstance(kernel, AdaptiveRepeat):
        return f"adaptive_repeat({describe_kernel(kernel.kernel)}, max {kernel.max_num_steps})"
    if isinstance(kernel, Chain):
        return "chain(" + ", ".join(describe_kernel(k) for k in kernel.kernels) + ")"
    return type(kernel).__name__


def _is_probabilistic_program(obj) -> bool:
    return all(hasattr(obj, name) for name in ("prior", "log_likelihood", "constrain"))


def _gradient_evaluations(kernel, num_moves, num_particles, chain_length, kernel_params):
    """Gradients of the log density spent by each step's move (NaN when unknown).

    ``kernel_params`` are the params tuned at each step; step ``t``'s move used row
    ``t - 1`` (the per-step count can depend on them, as for HMC with a trajectory length).
    """
    num_moves = np.asarray(num_moves, np.float64)
    used = jax.tree_util.tree_map(lambda leaf: jnp.concatenate([leaf[:1], leaf[:-1]]),
                                  kernel_params)
    per_step = kernel.gradient_evaluations(used)
    if per_step is None:
        return np.full(num_moves.shape, np.nan)
    per_step = np.broadcast_to(np.asarray(per_step, np.float64), num_moves.shape)
    if not np.any(per_step):
        return np.zeros(num_moves.shape)
    chains = num_particles if chain_length is None else num_particles // chain_length
    # Each move (or chain) starts by evaluating the gradient at its starting point.
    evaluations = chains * (num_moves * per_step + 1.0)
    evaluations[0] = 0.0
    return evaluations


def _check_support(info: SMCInfo, num_particles: int) -> None:
    dropped = float(np.asarray(info.params.dropped_fraction)[0])
    if dropped >= 1.0:
        raise ValueError(
            f"log_likelihood is -inf at all {num_particles} prior draws (100% of the particles "
            "lie outside the likelihood's support), so tempering cannot start: check the "
            "likelihood (e.g. data outside its support) or the prior, or use more particles")


def tempered(key: PRNGKey, prior, log_likelihood=None, num_particles: int | None = None, *,
             kernel: Kernel | None = None, target_ess: float = 0.5,
             adaptation=_DEFAULT_ADAPTATION, kernel_params=None, waste_free: bool = False,
             chain_length: int = 20, resampling="systematic", max_steps: int = 500,
             progress_bar: bool | None = None, keep_ancestors: bool = False,
             checkpoint: Checkpoint | None = None, resume_from=None, mesh=None,
             chunk_size: int | None = None) -> Result:
    """Adaptive tempered SMC from the prior to the posterior ``∝ prior · exp(log_likelihood)``.

    Parameters
    ----------
    key : PRNG key, or an integer seed.
    prior : a :class:`~probinfer.Target` with ``sample``, or the result of
        :func:`~probinfer.from_numpyro` (then omit ``log_likelihood``:
        ``tempered(key, pm, num_particles)``).
    log_likelihood : ONE point -> scalar ``log L(x)``; finite or ``-inf``.
    num_particles : N >= 2.
    kernel : the move (a :class:`~probinfer.kernels.Kernel`). Default
        (:func:`default_kernel`): HMC with 10 leapfrog steps and a mass matrix adapted
        from the population (dense up to 200 dimensions) repeated until the particles
        have decorrelated (:func:`~probinfer.kernels.adaptive_repeat`, at most 20 times)
        when the log densities are differentiable with JAX, else random-walk Metropolis
        repeated the same way (at most 100 times). ``info.kernel`` names the move used.
    target_ess : fraction in (0, 1): each step keeps ``target_ess`` of the ESS.
    adaptation : tuning strategy applied after choosing each exponent (default
        :func:`~probinfer.kernels.population_adaptation`: scale, i.e. HMC mass matrix,
        from the weighted particle covariance, dense for ``d ≤ 200`` and ``N ≥ 10 d``,
        diagonal otherwise; step size from the acceptance rate); ``None`` keeps
        ``kernel_params``.
    kernel_params : starting params (default ``kernel.default_params``).
    waste_free : use waste-free SMC (Dau & Chopin 2022) with ``N / chain_length``
        chains of ``chain_length`` states each (``chain_length`` must divide N); each
        chain step is one step of ``kernel`` (of its inner kernel for the default).
    chain_length : P, used when ``waste_free``.
    resampling : 'systematic' (default), 'stratified', 'multinomial', 'residual' or a callable.
    max_steps : upper bound on the number of tempering steps (exponents chosen, the
        first from the prior draws).
    progress_bar : show a progress bar over the steps (default: on).
    keep_ancestors : record every step's ancestor indices in ``info.ancestors``
        (``(steps, N)``); off by default (``None``), keeping memory ``O(N + max_steps)``.
    checkpoint : a :class:`probinfer.Checkpoint` ``(path, every=k)``: save the run's state
        and traces to ``path`` (``.npz``, replaced atomically) every ``k`` tempering steps
        and at the end; no progress bar is shown.
    resume_from : path of a checkpoint of this run (same key, prior, likelihood, kernel and
        settings): continue from its step; the result equals the uninterrupted run's.
    mesh : a :class:`jax.sharding.Mesh` with one axis: the particles (and their moves, the
        expensive part) are split over its devices (``num_particles`` a multiple of their
        number). Weights and
        resampling are global. Same key -> the single-device result to float tolerance
        (the population adaptation's covariance and the moves' reductions may be summed in
        another order). ``None``: one device. See ``docs/scaling.md``.
    chunk_size : evaluate the likelihood, the prior density and every move on blocks of
        at most this many particles, one block after the other on the device
        (``jax.lax.map``): the intermediates of ``log_likelihood`` (e.g. per-datum terms of
        a large data set, ``N × n_data`` under plain ``vmap``) take memory for
        ``chunk_size`` particles; the particles themselves stay whole. Same keys, so the
        same run as unchunked up to float rounding. ``None`` (default): all at once.

    Returns
    -------
    Result with weighted ``samples`` at ``β = 1`` (ESS about ``target_ess · N``),
    ``log_evidence`` (estimate of ``log ∫ prior · L``) and ``info``
    (:class:`TemperedInfo` over the steps: ``info.beta`` is the schedule after ``β = 0``,
    plus ESS, the fraction dropped outside the support, the kernel, its acceptance, number
    of moves and gradient evaluations per step). For NumPyro models ``constrain_fn`` maps
    a sample to its named sites; ``result.constrain()`` and ``result.to_arviz()`` use it.

    Raises ``ValueError`` for bad arguments, for a log-likelihood that is NaN or +inf
    (naming the step and the count) and when every prior draw lies outside the
    likelihood's support; ``RuntimeError`` when ``max_steps`` is reached before ``β = 1``.
    Warns when the final ESS is below 1 % of the particles.

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> prior = pi.Gaussian(jnp.zeros(2), jnp.eye(2))
    >>> res = pi.smc.tempered(jax.random.key(0), prior,
    ...                       lambda x: -0.5 * jnp.sum((x - 1.0) ** 2) / 0.1, 500,
    ...                       progress_bar=False)
    >>> float(res.info.beta[-1]), res.info.kernel
    (1.0, 'adaptive_repeat(hmc(10), max 20)')
    """
    key = single_key(key)
    constrain = None
    if _is_probabilistic_program(prior):
        if num_particles is None and not callable(log_likelihood):
            log_likelihood, num_particles = None, log_likelihood
        if log_likelihood is not None:
            raise TypeError("pass either a from_numpyro model or (prior, log_likelihood), not "
                            "both: tempered(key, pm, num_particles)")
        constrain = prior.constrain
        prior, log_likelihood = prior.prior, prior.log_likelihood
    num_particles = check_positive_int(num_particles, "num_particles", minimum=2)
    if not isinstance(prior, Target):
        raise TypeError(f"prior must be a probinfer Target with sample() or a from_numpyro "
                        f"model, got {type(prior).__name__}")
    if not prior.can_sample:
        raise ValueError("prior must be able to sample (tempering starts from prior draws)")
    if not callable(log_likelihood):
        raise TypeError(f"log_likelihood must be callable: one point -> scalar, got "
                        f"{type(log_likelihood).__name__}")
    if kernel is not None and not isinstance(kernel, Kernel):
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
    _checkpoint.check_options(checkpoint, resume_from)
    mesh = _sharding.check_mesh(mesh, num_particles)
    chunk_size = check_chunk_size(chunk_size)

    example = jax.eval_shape(lambda k: jax.tree_util.tree_map(lambda leaf: leaf[0],
                                                              prior.sample(k, 1)), key)
    log_l_shape = jax.eval_shape(log_likelihood, example).shape
    if log_l_shape != ():
        raise ValueError(f"log_likelihood must return a scalar for one point, got shape "
                         f"{log_l_shape}")
    if kernel is None:
        kernel = default_kernel(prior, log_likelihood, example)
    fk = tempering_model(GeometricPath(prior, log_likelihood), kernel, adaptation, length,
                         max_steps, chunk_size)
    params = tempering_params(kernel, example, float(target_ess), kernel_params)
    state, info = execute(key, fk, num_particles, resampler, policies.always(), params,
                          progress_bar is not False, desc="tempered SMC",
                          keep_ancestors=bool(keep_ancestors), checkpoint=checkpoint,
                          resume_from=resume_from, mesh=mesh)
    bad_prior = int(np.asarray(info.params.num_nonfinite_prior)[0])
    if bad_prior:
        raise ValueError(f"prior.log_density is not finite at {bad_prior} of its own "
                         f"{num_particles} draws")
    _check_support(info, num_particles)
    check_run(info, "log_likelihood")
    beta = float(state.params.beta)
    if beta < 1.0:
        raise RuntimeError(
            f"tempering did not reach beta = 1 in max_steps = {max_steps} steps "
            f"(beta = {beta:.6g}); raise max_steps or lower target_ess")
    warn_on_collapse(state.ess, num_particles,
                     "Use more particles, a higher target_ess, or a move with more steps.")
    return Result(state.particles.position, state.log_weights, state.log_evidence,
                  _tempered_info(info, kernel, num_particles, length), constrain_fn=constrain)


def _tempered_info(info: SMCInfo, kernel, num_particles, chain_length):
    p = info.params
    grads = _gradient_evaluations(kernel, p.num_moves, num_particles, chain_length,
                                  p.kernel_params)
    return TemperedInfo(p.beta, info.ess, info.log_evidence_increment, p.acceptance_rate,
                        p.kernel_params, info.ancestors, info.num_nonfinite, p.num_moves,
                        p.dropped_fraction, jnp.asarray(grads), describe_kernel(kernel))


__all__ = ["TemperedParticles", "TemperedState", "TemperedInfo", "tempering_model",
           "tempering_params", "tempered_scan", "tempered", "next_exponent",
           "incremental_log_weights", "default_kernel", "describe_kernel"]
