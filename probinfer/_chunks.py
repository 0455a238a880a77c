"""Memory-bounded evaluation: a batched function applied to row blocks of its input.

``jax.vmap`` over N particles materialises every intermediate of the function for all N at
once (a denoiser's activations, a reward's features). :func:`in_row_blocks` runs the same
function on blocks of ``block`` rows, one after the other inside the compiled program
(``jax.lax.map``), so the intermediates take ``block / N`` of the memory while the inputs and
outputs stay whole. The last block is padded with copies of the first row (valid inputs,
results dropped), so any N works.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from probinfer._validation import check_positive_int


def check_chunk_size(chunk_size) -> int | None:
    """``None`` (no chunking) or a positive int."""
    return None if chunk_size is None else check_positive_int(chunk_size, "chunk_size")


def in_row_blocks(fn, x, block: int | None):
    """``fn(x)`` for a function of a batch ``(n, ...) -> pytree of (n, ...)``, evaluated on
    blocks of at most ``block`` rows; ``block=None`` (or ``n <= block``) calls ``fn(x)``."""
    n = x.shape[0]
    if block is None or n <= block:
        return fn(x)
    pad = (-n) % block
    xp = jnp.concatenate([x, jnp.broadcast_to(x[:1], (pad,) + x.shape[1:])]) if pad else x
    out = jax.lax.map(fn, xp.reshape((-1, block) + x.shape[1:]))
    return jax.tree_util.tree_map(lambda o: o.reshape((-1,) + o.shape[2:])[:n], out)
