"""Memory-bounded evaluation: a batched function applied to row blocks of its input.

``jax.vmap`` over N particles materialises every intermediate of the function for all N at
once (a denoiser's activations, a reward's features, a likelihood's per-datum terms).
:func:`in_row_blocks` runs the same function on blocks of ``block`` rows, one after the
other inside the compiled program (``jax.lax.map``), so the intermediates take ``block / N``
of the memory while the inputs and outputs stay whole. The last block is padded with copies
of the first row (valid inputs, results dropped), so any N works.
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
    blocks of at most ``block`` rows; ``block=None`` (or ``n <= block``) calls ``fn(x)``.

    ``x`` may be a pytree whose leaves share the leading axis ``n`` (e.g. keys and points).
    """
    n = jax.tree_util.tree_leaves(x)[0].shape[0]
    if block is None or n <= block:
        return fn(x)
    pad = (-n) % block

    def blocks(leaf):
        if pad:
            leaf = jnp.concatenate([leaf, jnp.broadcast_to(leaf[:1], (pad,) + leaf.shape[1:])])
        return leaf.reshape((-1, block) + leaf.shape[1:])

    out = jax.lax.map(fn, jax.tree_util.tree_map(blocks, x))
    return jax.tree_util.tree_map(lambda o: o.reshape((-1,) + o.shape[2:])[:n], out)


def blocked_vmap(fn, block: int | None):
    """``jax.vmap(fn)`` (over the leading axis of every argument) run on row blocks of at
    most ``block`` rows; ``block=None`` is exactly ``jax.vmap(fn)``."""
    batched = jax.vmap(fn)
    if block is None:
        return batched
    return lambda *args: in_row_blocks(lambda blocked: batched(*blocked), args, block)
