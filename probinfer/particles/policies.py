"""Resampling policies: when to resample.

A policy is data, not code: an ESS fraction and an optional boolean schedule over steps.
Step ``t`` resamples (before moving) when ``ESS < ess_fraction * N`` or ``schedule[t]``.
Being arrays, policies pass through ``jit`` without recompilation when a threshold changes.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import jax.numpy as jnp

from probinfer._types import Array
from probinfer._validation import check_positive_int, is_concrete
from probinfer.particles.weights import ess


class ResamplingPolicy(NamedTuple):
    """``ess_fraction``: resample when ESS < ess_fraction·N (values above 1 always do).
    ``schedule``: optional bool array over steps; True forces a resample at that step."""

    ess_fraction: Array
    schedule: Array | None = None

    def should_resample(self, log_weights: Array, step: Array, ess_value=None) -> Array:
        """Decide for step ``step``; pass ``ess_value`` when the ESS of ``log_weights`` is
        already known (the engine carries it) to skip a pass over the particles."""
        num = log_weights.shape[0]
        ess_value = ess(log_weights) if ess_value is None else ess_value
        decision = ess_value < self.ess_fraction * num
        if self.schedule is not None:
            decision = decision | self.schedule[step]
        return decision


def always() -> ResamplingPolicy:
    """Resample at every step."""
    return ResamplingPolicy(jnp.asarray(2.0))


def never() -> ResamplingPolicy:
    """Never resample (sequential importance sampling)."""
    return ResamplingPolicy(jnp.asarray(0.0))


def ess_below(fraction: float) -> ResamplingPolicy:
    """Resample when the ESS falls below ``fraction`` times the number of particles."""
    f = jnp.asarray(fraction, dtype=jnp.result_type(float))
    if f.ndim != 0 or (is_concrete(f) and not 0.0 <= float(f) <= 1.0):
        raise ValueError(f"ess fraction must be a scalar in [0, 1], got {fraction!r}")
    return ResamplingPolicy(f)


def at_steps(steps, num_steps: int, ess_fraction: float = 0.0) -> ResamplingPolicy:
    """Resample at the given step indices (and, optionally, also when ESS is low)."""
    num_steps = check_positive_int(num_steps, "num_steps")
    steps = np.asarray(steps, dtype=int).reshape(-1)
    if steps.size and (steps.min() < 0 or steps.max() >= num_steps):
        raise ValueError(f"steps must lie in [0, {num_steps - 1}], got {steps.tolist()}")
    mask = np.zeros(num_steps, dtype=bool)
    mask[steps] = True
    base = ess_below(ess_fraction)
    return ResamplingPolicy(base.ess_fraction, jnp.asarray(mask))


def every(k: int, num_steps: int, start: int = 1, stop: int | None = None,
          ess_fraction: float = 0.0) -> ResamplingPolicy:
    """Resample every ``k`` steps in the window ``[start, stop)`` (default: all steps)."""
    k = check_positive_int(k, "k")
    stop = num_steps if stop is None else stop
    return at_steps(np.arange(start, stop, k), num_steps, ess_fraction)
