"""BlackJAX-backed Metropolis–Hastings moves: random walk, MALA, HMC and NUTS.

Each kernel runs the BlackJAX transition on standardised coordinates ``y = scale⁻¹ x``
(see :class:`~probinfer.kernels.KernelParams`). The map is linear with a constant
Jacobian, so a kernel invariant for ``y ↦ p(scale y)`` is invariant for ``p`` in ``x``;
this gives every kernel the same preconditioning from one ``scale`` (for HMC and NUTS it
equals the inverse mass matrix ``scale scaleᵀ``) without factorising a matrix per
particle.

Default step sizes are the optimal-scaling values for a standard normal in ``d``
dimensions (Roberts & Rosenthal 2001; Beskos et al. 2013): RWM ``2.38/√d``, MALA proposal
variance ``1.65² d^{-1/3}``, HMC/NUTS ``d^{-1/4}``. Target acceptance rates are the
matching optimal values (0.234, 0.574, 0.65, 0.8).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from probinfer._types import Array
from probinfer._validation import check_positive_int
from probinfer.kernels.base import Kernel, KernelParams


def _to_standard(scale: Array, x: Array) -> Array:
    if scale.ndim == 1:
        return x / scale
    return jax.scipy.linalg.solve_triangular(scale, x, lower=True)


def _from_standard(scale: Array, y: Array) -> Array:
    return scale * y if scale.ndim == 1 else scale @ y


class _Standardised(Kernel):
    """A BlackJAX kernel run on ``y = scale⁻¹ x`` (subclasses set the BlackJAX calls)."""

    default_step_size_factor: float = 1.0
    dimension_exponent: float = 0.0

    def default_params(self, dim: int, dtype=None) -> KernelParams:
        dtype = jnp.result_type(float) if dtype is None else dtype
        step = self.default_step_size_factor * dim ** (-self.dimension_exponent)
        return KernelParams(jnp.asarray(step, dtype), jnp.ones(dim, dtype))

    @staticmethod
    def _standard_log_density(log_density_fn, scale):
        return lambda y: log_density_fn(_from_standard(scale, y))

    def init_state(self, x, log_density_fn, params):
        y = _to_standard(params.scale, x)
        return self._blackjax_init(y, self._standard_log_density(log_density_fn, params.scale))

    def step(self, key, state, log_density_fn, params):
        log_density_y = self._standard_log_density(log_density_fn, params.scale)
        return self._blackjax_step(key, state, log_density_y, params.step_size)

    def position(self, state, params):
        return _from_standard(params.scale, state.position)


@dataclasses.dataclass(frozen=True)
class RandomWalk(_Standardised):
    """Gaussian random-walk Metropolis: ``y' = y + step_size · ξ``, ``ξ ~ N(0, I)``."""

    target_acceptance: float = 0.234
    default_step_size_factor: float = 2.38
    dimension_exponent: float = 0.5

    def _blackjax_init(self, y, log_density_fn):
        from blackjax.mcmc import random_walk
        return random_walk.init(y, log_density_fn)

    def _blackjax_step(self, key, state, log_density_fn, step_size):
        from blackjax.mcmc import random_walk
        kernel = random_walk.build_additive_step()
        state, info = kernel(key, state, log_density_fn, random_walk.normal(step_size))
        return state, info.acceptance_rate


@dataclasses.dataclass(frozen=True)
class MALA(_Standardised):
    """Metropolis-adjusted Langevin: ``y' = y + h ∇log p(y) + √(2h) ξ``, ``h = step_size``."""

    target_acceptance: float = 0.574
    default_step_size_factor: float = 1.65 ** 2 / 2
    dimension_exponent: float = 1.0 / 3.0
    gradients_per_step = 1

    def _blackjax_init(self, y, log_density_fn):
        from blackjax.mcmc import mala
        return mala.init(y, log_density_fn)

    def _blackjax_step(self, key, state, log_density_fn, step_size):
        from blackjax.mcmc import mala
        state, info = mala.build_kernel()(key, state, log_density_fn, step_size)
        return state, info.acceptance_rate


@dataclasses.dataclass(frozen=True)
class HMC(_Standardised):
    """Hamiltonian Monte Carlo with a fixed number of leapfrog steps or a fixed trajectory.

    With ``trajectory_length = T`` the number of leapfrog steps is chosen from the step
    size at each move, ``min(ceil(T / step_size), num_integration_steps)``, so the
    trajectory keeps length about ``T`` in the standardised coordinates while the step
    size adapts. Why: on a standard normal (what a well-adapted mass matrix makes of a
    Gaussian-like level) exact Hamiltonian flow for time ``T`` gives a draw with
    correlation ``cos T`` to its start; ``T ≈ π/2 … 2`` decorrelates in one step, whereas
    10 leapfrog steps at the usual step sizes 0.5–0.7 integrate for ``T ≈ 2π`` and come
    back near the start. ``num_integration_steps`` then only caps the cost per step.
    """

    num_integration_steps: int = 10
    trajectory_length: float | None = None
    target_acceptance: float = 0.65
    default_step_size_factor: float = 1.0
    dimension_exponent: float = 0.25

    def __post_init__(self):
        check_positive_int(self.num_integration_steps, "num_integration_steps")
        if self.trajectory_length is not None and not (
                isinstance(self.trajectory_length, (int, float))
                and not isinstance(self.trajectory_length, bool)
                and 0 < self.trajectory_length < float("inf")):
            raise ValueError(f"trajectory_length must be None or a positive number, got "
                             f"{self.trajectory_length!r}")

    @property
    def gradients_per_step(self):
        return self.num_integration_steps if self.trajectory_length is None else None

    def num_leapfrog_steps(self, step_size):
        """Leapfrog steps per HMC step at ``step_size`` (array-valued; any shape)."""
        if self.trajectory_length is None:
            return jnp.full(jnp.shape(step_size), self.num_integration_steps, jnp.int32)
        steps = jnp.ceil(self.trajectory_length / jnp.asarray(step_size))
        # A NaN or zero step size would make the count undefined; the cap bounds the cost.
        steps = jnp.where(jnp.isfinite(steps), steps, self.num_integration_steps)
        return jnp.clip(steps, 1, self.num_integration_steps).astype(jnp.int32)

    def gradient_evaluations(self, params):
        return self.num_leapfrog_steps(params.step_size)

    def _blackjax_init(self, y, log_density_fn):
        from blackjax.mcmc import hmc
        return hmc.init(y, log_density_fn)

    def _blackjax_step(self, key, state, log_density_fn, step_size):
        from blackjax.mcmc import hmc
        # A traced count is fine: BlackJAX integrates with a fori_loop.
        state, info = hmc.build_kernel()(key, state, log_density_fn, step_size,
                                         jnp.ones_like(state.position),
                                         self.num_leapfrog_steps(step_size))
        return state, info.acceptance_rate


@dataclasses.dataclass(frozen=True)
class NUTS(_Standardised):
    """The No-U-Turn sampler (multinomial, BlackJAX's iterative implementation)."""

    max_num_doublings: int = 10
    target_acceptance: float = 0.8
    default_step_size_factor: float = 1.0
    dimension_exponent: float = 0.25
    gradients_per_step = None

    def __post_init__(self):
        check_positive_int(self.max_num_doublings, "max_num_doublings")

    def _blackjax_init(self, y, log_density_fn):
        from blackjax.mcmc import hmc
        return hmc.init(y, log_density_fn)

    def _blackjax_step(self, key, state, log_density_fn, step_size):
        from blackjax.mcmc import nuts
        state, info = nuts.build_kernel()(key, state, log_density_fn, step_size,
                                          jnp.ones_like(state.position),
                                          self.max_num_doublings)
        return state, info.acceptance_rate


def rwm() -> RandomWalk:
    """Random-walk Metropolis move (gradient-free).

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> k = pi.kernels.rwm()
    >>> x = jax.random.normal(jax.random.key(0), (100, 2))
    >>> x, info = k.move(jax.random.key(1), x, lambda z: -0.5 * jnp.sum(z ** 2),
    ...                  k.default_params(2))
    >>> info.acceptance_rate.shape
    (100,)
    """
    return RandomWalk()


def mala() -> MALA:
    """Metropolis-adjusted Langevin move (Roberts & Tweedie 1996)."""
    return MALA()


def hmc(num_integration_steps: int = 10, trajectory_length: float | None = None) -> HMC:
    """HMC move (Duane et al. 1987; Neal 2011).

    ``hmc(10)``: 10 leapfrog steps per step. ``hmc(32, trajectory_length=2.0)``: as many
    leapfrog steps as a trajectory of length 2 in the standardised coordinates needs at
    the current step size, at most 32 (see :class:`HMC`).

    Example
    -------
    >>> import jax.numpy as jnp, probinfer as pi
    >>> k = pi.kernels.hmc(32, trajectory_length=2.0)
    >>> int(k.num_leapfrog_steps(jnp.asarray(0.7)))
    3
    """
    return HMC(num_integration_steps, trajectory_length)


def nuts(max_num_doublings: int = 10) -> NUTS:
    """NUTS move (Hoffman & Gelman 2014). Under ``vmap`` every particle waits for the
    longest trajectory of the batch, so HMC is usually cheaper inside SMC."""
    return NUTS(max_num_doublings)

