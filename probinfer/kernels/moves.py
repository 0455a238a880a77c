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
    """Hamiltonian Monte Carlo with ``num_integration_steps`` leapfrog steps."""

    num_integration_steps: int = 10
    target_acceptance: float = 0.65
    default_step_size_factor: float = 1.0
    dimension_exponent: float = 0.25

    def __post_init__(self):
        check_positive_int(self.num_integration_steps, "num_integration_steps")

    @property
    def gradients_per_step(self):
        return self.num_integration_steps

    def _blackjax_init(self, y, log_density_fn):
        from blackjax.mcmc import hmc
        return hmc.init(y, log_density_fn)

    def _blackjax_step(self, key, state, log_density_fn, step_size):
        from blackjax.mcmc import hmc
        state, info = hmc.build_kernel()(key, state, log_density_fn, step_size,
                                         jnp.ones_like(state.position),
                                         self.num_integration_steps)
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


def hmc(num_integration_steps: int = 10) -> HMC:
    """HMC move with a fixed number of leapfrog steps (Duane et al. 1987; Neal 2011)."""
    return HMC(num_integration_steps)


def nuts(max_num_doublings: int = 10) -> NUTS:
    """NUTS move (Hoffman & Gelman 2014). Under ``vmap`` every particle waits for the
    longest trajectory of the batch, so HMC is usually cheaper inside SMC."""
    return NUTS(max_num_doublings)

