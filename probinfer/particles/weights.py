"""Log-weight arithmetic: normalisation, effective sample size, log-mean-exp.

Weights always live in log space. These are the one place the library normalises
weights; everything else calls them.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jax.scipy.special import logsumexp

from probinfer._types import Array, PyTree


def uniform(num: int, dtype=None) -> Array:
    """Normalised uniform log-weights ``-log(num)``, shape ``(num,)``."""
    dtype = jnp.result_type(float) if dtype is None else dtype
    return jnp.full(num, -math.log(num), dtype)


def _shifted_exp(log_weights: Array) -> tuple[Array, Array]:
    """``(exp(log_weights - shift), shift)`` with ``shift`` the max (0 if it is not finite).

    :func:`normalize` and :func:`ess` share this expression, so when both are applied to the
    same weights inside one compiled step, XLA computes the exponentials once and fuses
    both sums into a single pass over the particles.
    """
    shift = jnp.max(log_weights)
    shift = jax.lax.stop_gradient(jnp.where(jnp.isfinite(shift), shift, 0.0))
    return jnp.exp(log_weights - shift), shift


def normalize(log_weights: Array) -> tuple[Array, Array]:
    """Return ``(log_weights - logsumexp, logsumexp)``.

    With every entry ``-inf`` the normaliser is ``-inf`` and the normalised weights are
    NaN; callers report that case (see :func:`probinfer.smc.run`).
    """
    weights, shift = _shifted_exp(log_weights)
    log_sum = jnp.log(jnp.sum(weights)) + shift
    return log_weights - log_sum, log_sum


def ess(log_weights: Array) -> Array:
    """Effective sample size ``(sum w_i)² / sum w_i²`` of (possibly unnormalised) log-weights.

    One pass over the weights (the two sums share the exponentials).
    """
    weights, _ = _shifted_exp(log_weights)
    total = jnp.sum(weights)
    return total * total / jnp.sum(weights * weights)


def log_mean_exp(values: Array, axis=None) -> Array:
    """``log mean exp(values)``, stable; e.g. the log-evidence increment of equal weights."""
    values = jnp.asarray(values)
    n = values.size if axis is None else values.shape[axis]
    return logsumexp(values, axis=axis) - jnp.log(n)


def weighted_mean(log_weights: Array, values: Array) -> Array:
    """``sum_i w_i values[i]`` with normalised weights from ``log_weights``; values (N, ...)."""
    w = jnp.exp(normalize(log_weights)[0])
    return jnp.tensordot(w, values, axes=(0, 0))


def particles_as_rows(particles: PyTree) -> tuple[Array, Callable]:
    """Flatten a particle pytree with leading axis ``N`` to rows ``(N, d)``.

    Returns the rows and ``unravel``, which maps ONE row back to a point (``vmap`` it for
    many). Moves and population statistics work on the rows.
    """
    first = jax.tree_util.tree_map(lambda leaf: leaf[0], particles)
    _, unravel = ravel_pytree(first)
    rows = jax.vmap(lambda p: ravel_pytree(p)[0])(particles)
    return rows, unravel
