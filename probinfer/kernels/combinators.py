"""Kernel combinators: ``repeat(kernel, k)``, ``adaptive_repeat(kernel, ...)`` and
``chain(k1, k2, ...)`` (cf. optax.chain).

All return a :class:`~probinfer.kernels.Kernel`, so they nest. ``repeat`` keeps the inner
kernel's state (cached log density and gradient) across its ``k`` steps and shares its
params; ``adaptive_repeat`` does the same for as many steps as the population needs to
decorrelate; ``chain`` applies its kernels in turn, each with its own params (the chain's
params and acceptance rates are tuples with one entry per kernel).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from probinfer._chunks import blocked_vmap
from probinfer._validation import check_positive_int
from probinfer.kernels.base import MAX_DENSE_DIM, Kernel, MoveInfo
from probinfer.particles.weights import particles_as_rows


@dataclasses.dataclass(frozen=True)
class Repeat(Kernel):
    """``kernel`` applied ``num_steps`` times; acceptance is the mean over the steps."""

    kernel: Kernel
    num_steps: int

    def __post_init__(self):
        if not isinstance(self.kernel, Kernel):
            raise TypeError(f"kernel must be a probinfer Kernel, got "
                            f"{type(self.kernel).__name__}")
        check_positive_int(self.num_steps, "num_steps")

    @property
    def target_acceptance(self):
        return self.kernel.target_acceptance

    @property
    def gradients_per_step(self):
        return self.kernel.gradients_per_step

    @property
    def steps_per_move(self):
        inner = self.kernel.steps_per_move
        return None if inner is None else self.num_steps * inner

    def default_params(self, dim, dtype=None):
        return self.kernel.default_params(dim, dtype)

    def gradient_evaluations(self, params):
        # Per inner step, like gradients_per_step (steps_per_move counts the steps).
        return self.kernel.gradient_evaluations(params)

    def init_state(self, x, log_density_fn, params):
        return self.kernel.init_state(x, log_density_fn, params)

    def step(self, key, state, log_density_fn, params):
        def body(state, step_key):
            return self.kernel.step(step_key, state, log_density_fn, params)

        state, acceptance = jax.lax.scan(body, state, jax.random.split(key, self.num_steps))
        return state, jax.tree_util.tree_map(lambda a: jnp.mean(a, axis=0), acceptance)

    def position(self, state, params):
        return self.kernel.position(state, params)


def _population_whitening(rows):
    """``v ↦ L⁻¹ v`` row-wise, ``L Lᵀ`` the covariance of ``rows``; diagonal above 200-D.

    In whitened coordinates independent draws are ``2 d`` apart in squared distance
    whatever the correlations. Per-coordinate standardisation alone would count a move
    along a narrow ridge (kilpisjarvi's −0.9999 intercept–slope correlation) as full
    decorrelation while the narrow direction has not moved.
    """
    num, dim = rows.shape
    tiny, eps = jnp.finfo(rows.dtype).tiny, jnp.finfo(rows.dtype).eps
    var = jnp.var(rows, axis=0)
    # A relative floor keeps coordinates on which the particles coincide from
    # dominating the jump distance.
    floor = eps * jnp.mean(var) + tiny
    if dim > MAX_DENSE_DIM:
        sd = jnp.sqrt(var + floor)
        return lambda v: v / sd
    cov = jnp.cov(rows, rowvar=False).reshape(dim, dim)
    chol = jnp.linalg.cholesky(cov + (10 * floor) * jnp.eye(dim, dtype=rows.dtype))
    sd = jnp.sqrt(var + floor)
    ok = jnp.all(jnp.isfinite(chol))

    def whiten(v):
        dense = jax.scipy.linalg.solve_triangular(jnp.where(ok, chol, jnp.eye(dim, dtype=rows.dtype)), v.T,
                                                  lower=True).T
        return jnp.where(ok, dense, v / sd)

    return whiten


@dataclasses.dataclass(frozen=True)
class AdaptiveRepeat(Kernel):
    """``kernel`` applied until the population has decorrelated from its start.

    After each step (every particle moves once), the mean squared jump distance from the
    starting points, whitened by the starting population's covariance ``S = L Lᵀ``
    (its diagonal above 200 dimensions), ``J_k = mean_i |L⁻¹ (x_i^(k) − x_i^(0))|²``, is
    compared with its value for independent draws, ``2d``. The move stops at the first ``k >= min_num_steps``
    with ``J_k >= 2 d · decorrelation`` (the lag-``k`` autocorrelation averaged over
    coordinates is then at most ``1 - decorrelation``), or at ``max_num_steps``. This is
    the expected-squared-jump-distance criterion used to size the MCMC stage of SMC
    samplers (cf. Dau & Chopin 2022; Buchholz, Chopin & Jacob 2021).

    The number of steps depends on the whole population, like the population-adapted
    scale (see :class:`~probinfer.kernels.PopulationAdaptation`); for a fixed number each
    step leaves the target invariant. ``MoveInfo.num_steps`` reports it.
    """

    kernel: Kernel
    max_num_steps: int = 50
    min_num_steps: int = 1
    decorrelation: float = 0.8

    def __post_init__(self):
        if not isinstance(self.kernel, Kernel):
            raise TypeError(f"kernel must be a probinfer Kernel, got "
                            f"{type(self.kernel).__name__}")
        check_positive_int(self.max_num_steps, "max_num_steps")
        check_positive_int(self.min_num_steps, "min_num_steps")
        if self.min_num_steps > self.max_num_steps:
            raise ValueError(f"min_num_steps ({self.min_num_steps}) must not exceed "
                             f"max_num_steps ({self.max_num_steps})")
        if not (isinstance(self.decorrelation, (int, float)) and 0 < self.decorrelation < 1):
            raise ValueError(f"decorrelation must lie in (0, 1), got {self.decorrelation!r}")

    @property
    def target_acceptance(self):
        return self.kernel.target_acceptance

    @property
    def gradients_per_step(self):
        return self.kernel.gradients_per_step

    steps_per_move = None

    def default_params(self, dim, dtype=None):
        return self.kernel.default_params(dim, dtype)

    def gradient_evaluations(self, params):
        return self.kernel.gradient_evaluations(params)

    def init_state(self, x, log_density_fn, params):
        return self.kernel.init_state(x, log_density_fn, params)

    def step(self, key, state, log_density_fn, params):
        return self.kernel.step(key, state, log_density_fn, params)

    def position(self, state, params):
        return self.kernel.position(state, params)

    def move(self, key, particles, log_density_fn, params, chunk_size=None):
        rows, unravel = particles_as_rows(particles)
        num, dim = rows.shape
        flat_log_density = lambda z: log_density_fn(unravel(z))  # noqa: E731
        states = blocked_vmap(lambda x: self.kernel.init_state(x, flat_log_density, params),
                              chunk_size)(rows)
        whiten = _population_whitening(rows)
        target = jnp.asarray(2.0 * dim * self.decorrelation, rows.dtype)
        acceptance0 = jax.tree_util.tree_map(
            lambda t: jnp.zeros(num, rows.dtype), self.kernel.target_acceptance)

        def body(carry):
            k, states, acceptance_sum, _ = carry
            keys = jax.random.split(jax.random.fold_in(key, k), num)
            states, acceptance = blocked_vmap(
                lambda kk, s: self.kernel.step(kk, s, flat_log_density, params),
                chunk_size)(keys, states)
            positions = jax.vmap(lambda s: self.kernel.position(s, params))(states)
            jump = jnp.mean(jnp.sum(whiten(positions - rows) ** 2, axis=1))
            acceptance_sum = jax.tree_util.tree_map(jnp.add, acceptance_sum, acceptance)
            return k + 1, states, acceptance_sum, jump

        def cond(carry):
            k, _, _, jump = carry
            keep_going = (k < self.min_num_steps) | ~(jump >= target)
            return (k < self.max_num_steps) & keep_going

        zero = jnp.zeros((), rows.dtype)
        k, states, acceptance_sum, _ = jax.lax.while_loop(
            cond, body, (jnp.asarray(0, jnp.int32), states, acceptance0, zero))
        positions = jax.vmap(lambda s: self.kernel.position(s, params))(states)
        acceptance = jax.tree_util.tree_map(lambda a: a / k.astype(a.dtype), acceptance_sum)
        return jax.vmap(unravel)(positions), MoveInfo(acceptance, k)


@dataclasses.dataclass(frozen=True)
class Chain(Kernel):
    """The kernels applied one after the other; the state between them is the position."""

    kernels: tuple

    def __post_init__(self):
        if not self.kernels:
            raise ValueError("chain needs at least one kernel")
        for i, kernel in enumerate(self.kernels):
            if not isinstance(kernel, Kernel):
                raise TypeError(f"chain argument {i} must be a probinfer Kernel, got "
                                f"{type(kernel).__name__}")

    @property
    def target_acceptance(self):
        return tuple(kernel.target_acceptance for kernel in self.kernels)

    @property
    def gradients_per_step(self):
        counts = []
        for kernel in self.kernels:
            if kernel.gradients_per_step is None or kernel.steps_per_move is None:
                return None
            counts.append(kernel.gradients_per_step * kernel.steps_per_move)
        return sum(counts)

    def default_params(self, dim, dtype=None):
        return tuple(kernel.default_params(dim, dtype) for kernel in self.kernels)

    def gradient_evaluations(self, params):
        total = 0
        for kernel, kernel_params in zip(self.kernels, params):
            count = kernel.gradient_evaluations(kernel_params)
            if count is None or kernel.steps_per_move is None:
                return None
            total = total + count * kernel.steps_per_move
        return total

    def init_state(self, x, log_density_fn, params):
        return x

    def step(self, key, state, log_density_fn, params):
        x = state
        acceptance = []
        for kernel, kernel_params, k in zip(self.kernels, params,
                                            jax.random.split(key, len(self.kernels))):
            inner = kernel.init_state(x, log_density_fn, kernel_params)
            inner, a = kernel.step(k, inner, log_density_fn, kernel_params)
            x = kernel.position(inner, kernel_params)
            acceptance.append(a)
        return x, tuple(acceptance)

    def position(self, state, params):
        return state


def repeat(kernel: Kernel, num_steps: int) -> Repeat:
    """Apply ``kernel`` ``num_steps`` times per move.

    Example
    -------
    >>> import probinfer as pi
    >>> k = pi.kernels.repeat(pi.kernels.hmc(5), 3)
    >>> k.target_acceptance
    0.65
    """
    return Repeat(kernel, num_steps)


def adaptive_repeat(kernel: Kernel, max_num_steps: int = 50, min_num_steps: int = 1,
                    decorrelation: float = 0.8) -> AdaptiveRepeat:
    """Apply ``kernel`` until the particles have decorrelated from their start.

    Stops at the first step (at least ``min_num_steps``, at most ``max_num_steps``) where
    the mean squared jump distance, standardised by the population, reaches
    ``2 d · decorrelation``; see :class:`AdaptiveRepeat`. The default move of
    :func:`probinfer.smc.tempered`.

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> k = pi.kernels.adaptive_repeat(pi.kernels.hmc(5), max_num_steps=20)
    >>> x = jax.random.normal(jax.random.key(0), (200, 3))
    >>> x, info = k.move(jax.random.key(1), x, lambda z: -0.5 * jnp.sum(z ** 2),
    ...                  k.default_params(3))
    >>> 1 <= int(info.num_steps) <= 20
    True
    """
    return AdaptiveRepeat(kernel, max_num_steps, min_num_steps, decorrelation)


def chain(*kernels: Kernel) -> Chain:
    """Apply the kernels in turn (e.g. ``chain(rwm(), mala())``); params are a tuple.

    Example
    -------
    >>> import probinfer as pi
    >>> k = pi.kernels.chain(pi.kernels.rwm(), pi.kernels.mala())
    >>> len(k.default_params(3))
    2
    """
    return Chain(tuple(kernels))
