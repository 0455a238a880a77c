"""Kernel combinators: ``repeat(kernel, k)`` and ``chain(k1, k2, ...)`` (cf. optax.chain).

Both return a :class:`~probinfer.kernels.Kernel`, so they nest. ``repeat`` keeps the inner
kernel's state (cached log density and gradient) across its ``k`` steps and shares its
params; ``chain`` applies its kernels in turn, each with its own params (the chain's params
and acceptance rates are tuples with one entry per kernel).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from probinfer._validation import check_positive_int
from probinfer.kernels.base import Kernel


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

    def default_params(self, dim, dtype=None):
        return self.kernel.default_params(dim, dtype)

    def init_state(self, x, log_density_fn, params):
        return self.kernel.init_state(x, log_density_fn, params)

    def step(self, key, state, log_density_fn, params):
        def body(state, step_key):
            return self.kernel.step(step_key, state, log_density_fn, params)

        state, acceptance = jax.lax.scan(body, state, jax.random.split(key, self.num_steps))
        return state, jax.tree_util.tree_map(lambda a: jnp.mean(a, axis=0), acceptance)

    def position(self, state, params):
        return self.kernel.position(state, params)


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

    def default_params(self, dim, dtype=None):
        return tuple(kernel.default_params(dim, dtype) for kernel in self.kernels)

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
