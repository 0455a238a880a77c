"""Categorical sampling that keeps the tail: inverse CDF with 64-bit uniforms.

Why not float32 Gumbel-max. ``jax.random.categorical`` draws ``argmax_k (log p_k + g_k)``
with ``g = -log(-log u)`` and, in float32, ``u`` on a grid of step ``2^-23`` in
``[tiny, 1)``. The Gumbel noise is then bounded: ``g <= -log(-log(1 - 2^-23)) ≈ 15.9`` and
``g >= -log(-log(tiny)) ≈ -4.5``. A category whose probability is below
``exp(-20.4) ≈ 1.4e-9`` times that of another category can never win, and categories a
little above that bound are under-sampled, because the upper tail of the Gumbel
distribution is cut off. Over a vocabulary of thousands of tokens these small
probabilities add up: float32 Gumbel-max silently lowers the effective temperature and the
diversity of masked-diffusion samples (Zheng et al. 2024, "Masked Diffusion Models are
Secretly Time-Agnostic Masked Models and Exploit Inaccurate Categorical Sampling").

What this module does instead, in the best precision JAX has at the time (float64 when
``jax_enable_x64`` is on, float32 otherwise):

1. sort the probabilities in ascending order, so the small ones sit at the bottom of the
   cumulative distribution, where floating point is dense (the CDF value of a tiny
   category is itself tiny, never ``1 - tiny``);
2. draw a uniform from 64 random bits, ``u = (hi 2^32 + lo + ½) 2^-64``: its resolution
   near 0 is ``2^-64`` whatever the float type;
3. return the first category whose cumulative probability exceeds ``u``.

Each category's probability is then reproduced with relative error about
``(number of categories not larger than it) × eps`` of the float type (``eps = 2^-24`` in
float32, ``2^-53`` in float64), down to probabilities of ``~1e-19``: in float32 this is
already exact for any practical purpose, and float64 removes even that. The cost is a
sort per distribution, ``O(K log K)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from probinfer._types import Array, PRNGKey


def best_float():
    """float64 when ``jax_enable_x64`` is on, else float32."""
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


def uniform64(key: PRNGKey, shape, dtype=None) -> Array:
    """Uniforms in ``(0, 1]`` built from 64 random bits (resolution ``2^-64`` near 0)."""
    dtype = best_float() if dtype is None else dtype
    bits = jax.random.bits(key, (2,) + tuple(shape), jnp.uint32)
    hi, lo = bits[0].astype(dtype), bits[1].astype(dtype)
    return hi * 2.0 ** -32 + (lo + 0.5) * 2.0 ** -64


def categorical(key: PRNGKey, probs: Array, shape=None) -> Array:
    """Draw category indices from probabilities ``probs`` (last axis), keeping tiny tails.

    Parameters
    ----------
    key : PRNG key.
    probs : (..., K) non-negative probabilities (normalised along the last axis here).
    shape : output shape; default ``probs.shape[:-1]``. For a single distribution
        (``probs`` 1-D) any shape may be drawn in ``O(log K)`` per draw.

    Returns
    -------
    int32 array of shape ``shape``.

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> x = pi.diffusion.categorical(jax.random.key(0), jnp.array([0.2, 0.8]), (1000,))
    >>> x.shape
    (1000,)
    """
    dtype = best_float()
    p = jnp.asarray(probs).astype(dtype)
    batch = p.shape[:-1]
    shape = batch if shape is None else tuple(shape)
    num = p.shape[-1]
    order = jnp.argsort(p, axis=-1)
    cdf = jnp.cumsum(jnp.take_along_axis(p, order, axis=-1), axis=-1)
    cdf = cdf / cdf[..., -1:]
    u = uniform64(key, shape, dtype)
    if p.ndim == 1:
        idx = jnp.searchsorted(cdf, u, side="right")
        return order[jnp.minimum(idx, num - 1)].astype(jnp.int32)
    cdf = jnp.broadcast_to(cdf, shape + (num,))
    idx = jnp.minimum(jnp.sum(cdf <= u[..., None], axis=-1), num - 1)
    order = jnp.broadcast_to(order, shape + (num,))
    return jnp.take_along_axis(order, idx[..., None], axis=-1)[..., 0].astype(jnp.int32)
