"""The common answer of every sampler."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from probinfer._types import Array, PyTree


class Result(NamedTuple):
    """What every probinfer sampler returns.

    Attributes
    ----------
    samples : pytree with a leading particle axis.
    log_weights : (N,) normalised log-weights: ``E[f] ≈ Σ exp(log_weights) f(samples)``.
    log_evidence : scalar estimate of the log normalising constant, where defined (else NaN).
    info : per-step traces and counters (for SMC an :class:`~probinfer.smc.SMCInfo` with a
        leading step axis).
    """

    samples: PyTree
    log_weights: Array
    log_evidence: Array
    info: Any = None

    @property
    def num_particles(self) -> int:
        return self.log_weights.shape[0]

    @property
    def weights(self) -> Array:
        return jnp.exp(self.log_weights)

    @property
    def ess(self) -> Array:
        """Effective sample size of the final weights."""
        from probinfer.particles.weights import ess
        return ess(self.log_weights)

    def mean(self, fn=None) -> PyTree:
        """Weighted mean of ``fn(sample)`` (default: the samples themselves)."""
        values = self.samples if fn is None else jax.vmap(fn)(self.samples)
        w = self.weights
        return jax.tree_util.tree_map(lambda v: jnp.tensordot(w, v, axes=(0, 0)), values)

    def to_arviz(self, key=None, var_name: str = "x", constrain=None):
        """Convert to an ArviZ ``InferenceData``; see :func:`probinfer.diagnostics.to_arviz`."""
        from probinfer.diagnostics.arviz import to_arviz
        return to_arviz(self, key=key, var_name=var_name, constrain=constrain)
