"""Resamplers: pure, static-shape ``(key, log_weights, num) -> ancestors``.

Systematic, stratified and residual resampling run in O(N): each scheme gives, in closed
form, how many of its sorted uniforms fall below every cumulative weight; those counts
are turned into ancestor indices by one scatter-add and one cumulative sum. The usual
``searchsorted`` formulation is O(N log N) and is the bottleneck of a bootstrap filter at
N = 100 000 on CPU (measured in ``inference/bench_particle_filter.py``). On CPU the two
cumulative sums are blocked (see :func:`_blocked_cumsum`): XLA's own lowering of
``cumsum`` there is 2-3x slower.
Multinomial resampling draws i.i.d. indices by inverse-CDF search; it is the reference
scheme and is not used on hot paths.

References: Douc, Cappé & Moulines (2005), "Comparison of resampling schemes for particle
filtering"; Chopin & Papaspiliopoulos (2020), *An Introduction to Sequential Monte Carlo*,
ch. 9.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from probinfer._types import Array, PRNGKey
from probinfer.particles.weights import normalize

Resampler = Callable[[PRNGKey, Array, int], Array]


_CUMSUM_ROWS = 32


def _blocked_cumsum(x: Array) -> Array:
    """Inclusive prefix sum of a 1-D array as ``_CUMSUM_ROWS`` sequential vector adds.

    XLA:CPU lowers ``cumsum`` to a multi-level ``reduce_window``, 2-3x slower than this at
    N = 10^5 (measured in ``inference/bench_particle_filter.py``): split ``x`` into
    contiguous blocks, lay block positions along the rows, accumulate the rows with a
    short ``scan`` (each step one vectorised add across all blocks), then add the prefix
    of the block totals.
    """
    n = x.shape[0]
    if n == 0:
        return x
    rows = min(_CUMSUM_ROWS, n)
    cols = -(-n // rows)
    blocks = jnp.pad(x, (0, rows * cols - n)).reshape(cols, rows).T

    def accumulate(total, row):
        total = total + row
        return total, total

    totals, within = jax.lax.scan(accumulate, jnp.zeros(cols, x.dtype), blocks)
    offsets = jnp.cumsum(totals) - totals
    return (within + offsets).T.reshape(-1)[:n]


def _cumsum(x: Array) -> Array:
    """``jnp.cumsum`` of a 1-D array; blocked on CPU, native elsewhere."""
    return jax.lax.platform_dependent(x, cpu=_blocked_cumsum, default=jnp.cumsum)


def _cumulative_weights(log_weights: Array) -> Array:
    # Shifting by the max is enough: the division below normalises, so the logsumexp of
    # `normalize` would be one more pass over the weights for nothing. (No guard against a
    # non-finite max as in `normalize`: the result is NaN either way, and the guard made
    # this resampler 35% slower on CPU.)
    cumulative = _cumsum(jnp.exp(log_weights - jnp.max(log_weights)))
    # Dividing by the last entry (not the sum) makes the final cumulative weight exactly 1,
    # so rounding in float32 can never leave the last slots without an ancestor.
    return cumulative / cumulative[-1]


def _ancestors_from_counts_below(counts_below: Array, num: int) -> Array:
    """``counts_below[i]`` = how many sorted uniforms are < cumulative weight i.

    The ancestor of slot j is the number of particles i with ``counts_below[i] <= j``.
    """
    counts_below = jnp.clip(counts_below, 0, num).astype(jnp.int32)
    marks = jnp.zeros(num + 1, jnp.int32).at[counts_below].add(1, mode="promise_in_bounds")
    ancestors = _cumsum(marks[:num])
    return jnp.minimum(ancestors, counts_below.shape[0] - 1)


def systematic(key: PRNGKey, log_weights: Array, num: int) -> Array:
    """Systematic resampling: one uniform ``u``, points ``(j + u) / num``."""
    cumulative = _cumulative_weights(log_weights)
    u = jax.random.uniform(key, (), cumulative.dtype)
    # #{j : (j + u)/num < c} = ceil(num * c - u)
    below = jnp.ceil(num * cumulative - u)
    return _ancestors_from_counts_below(below, num)


def stratified(key: PRNGKey, log_weights: Array, num: int) -> Array:
    """Stratified resampling: independent ``u_j`` in each stratum ``[j/num, (j+1)/num)``."""
    cumulative = _cumulative_weights(log_weights)
    u = jax.random.uniform(key, (num + 1,), cumulative.dtype)
    scaled = num * cumulative
    stratum = jnp.floor(scaled).astype(jnp.int32)
    # All strata below `stratum` lie entirely under c; the one containing c counts if its
    # uniform falls under c.
    below = stratum + (u[jnp.clip(stratum, 0, num)] < scaled - stratum)
    return _ancestors_from_counts_below(below, num)


def multinomial(key: PRNGKey, log_weights: Array, num: int) -> Array:
    """Multinomial resampling: ``num`` i.i.d. draws from the weights."""
    cumulative = _cumulative_weights(log_weights)
    u = jax.random.uniform(key, (num,), cumulative.dtype)
    idx = jnp.searchsorted(cumulative, u, side="right", method="sort")
    return jnp.minimum(idx, cumulative.shape[0] - 1).astype(jnp.int32)


def residual(key: PRNGKey, log_weights: Array, num: int) -> Array:
    """Residual resampling: ``floor(num w_i)`` copies, the rest multinomial on the remainders."""
    weights = jnp.exp(normalize(log_weights)[0])
    copies = jnp.floor(num * weights)
    deterministic = _ancestors_from_counts_below(_cumsum(copies), num)
    num_deterministic = jnp.sum(copies).astype(jnp.int32)
    remainder = num * weights - copies
    # Static shapes: draw `num` residual indices and use only the slots that are left.
    log_remainder = jnp.where(remainder > 0, jnp.log(remainder), -jnp.inf)
    random_part = multinomial(key, log_remainder, num)
    slots = jnp.arange(num)
    return jnp.where(slots < num_deterministic, deterministic, random_part).astype(jnp.int32)


RESAMPLERS: dict[str, Resampler] = {
    "systematic": systematic,
    "stratified": stratified,
    "multinomial": multinomial,
    "residual": residual,
}


def get_resampler(resampling: str | Resampler) -> Resampler:
    """Look up a resampler by name, or pass a callable through."""
    if callable(resampling):
        return resampling
    if resampling not in RESAMPLERS:
        raise ValueError(f"resampling must be one of {sorted(RESAMPLERS)} or a callable "
                         f"(key, log_weights, num) -> ancestors, got {resampling!r}")
    return RESAMPLERS[resampling]


def resample(key: PRNGKey, log_weights, num: int | None = None,
             resampling: str | Resampler = "systematic") -> Array:
    """Validated resampling for user-supplied weights: returns ``num`` ancestor indices.

    The bare resamplers above are for use inside compiled code and do not check their
    input; this entry point does (on concrete values).

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> pi.particles.resample(jax.random.key(0), jnp.log(jnp.array([0.0, 1.0]))).tolist()
    [1, 1]
    """
    import numpy as np
    from probinfer._validation import check_positive_int, is_concrete

    log_weights = jnp.asarray(log_weights)
    if log_weights.ndim != 1 or log_weights.shape[0] < 1:
        raise ValueError(f"log_weights must have shape (N,) with N >= 1, got {log_weights.shape}")
    if not jnp.issubdtype(log_weights.dtype, jnp.floating):
        raise TypeError(f"log_weights must be floating point, got {log_weights.dtype}")
    num = log_weights.shape[0] if num is None else check_positive_int(num, "num")
    if is_concrete(log_weights):
        lw = np.asarray(log_weights)
        if np.isnan(lw).any() or np.isposinf(lw).any():
            raise ValueError("log_weights must not contain NaN or +inf")
        if np.isneginf(lw).all():
            raise ValueError("every log-weight is -inf: all particles have zero weight, "
                             "there is nothing to resample from")
    return get_resampler(resampling)(key, log_weights, num)
