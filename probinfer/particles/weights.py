"""Log-weight arithmetic: normalisation, effective sample size, log-mean-exp.

Weights always live in log space. These are the one place the library normalises
weights; everything else calls them.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import logsumexp

from probinfer._types import Array


def normalize(log_weights: Array) -> tuple[Array, Array]:
    """Return ``(log_weights - logsumexp, logsumexp)``.

    With every entry ``-inf`` the normaliser is ``-inf`` and the normalised weights are
    NaN; callers report that case (see :func:`probinfer.smc.run`).
    """
    log_sum = logsumexp(log_weights)
    return log_weights - log_sum, log_sum


def ess(log_weights: Array) -> Array:
    """Effective sample size ``1 / sum w_i²`` of (possibly unnormalised) log-weights."""
    normalized, _ = normalize(log_weights)
    return jnp.exp(-logsumexp(2.0 * normalized))


def log_mean_exp(values: Array, axis=None) -> Array:
    """``log mean exp(values)``, stable; e.g. the log-evidence increment of equal weights."""
    values = jnp.asarray(values)
    n = values.size if axis is None else values.shape[axis]
    return logsumexp(values, axis=axis) - jnp.log(n)


def weighted_mean(log_weights: Array, values: Array) -> Array:
    """``sum_i w_i values[i]`` with normalised weights from ``log_weights``; values (N, ...)."""
    w = jnp.exp(normalize(log_weights)[0])
    return jnp.tensordot(w, values, axes=(0, 0))
