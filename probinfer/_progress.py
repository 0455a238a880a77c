"""Compiled scans with a progress bar.

A ``lax.scan`` over all steps gives no feedback. Long runs are split into at most ~20
chunks, each a compiled scan (at most two chunk lengths compile), and the bar advances
between chunks. The per-step keys are split up front, so results do not depend on the
chunking.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

PROGRESS_THRESHOLD = 200


def chunked_scan(scan_fn, state, keys, progress_bar, desc: str, initial: int = 0):
    """Run ``scan_fn(keys_chunk, state) -> (state, stacked_outputs)`` over ``keys``.

    ``progress_bar``: True/False, or None to show it only for more than
    ``PROGRESS_THRESHOLD`` steps. ``initial`` steps are counted as already done (e.g. an
    init step). Returns the final state and the outputs concatenated along the step axis.
    """
    from tqdm.auto import tqdm

    num = keys.shape[0]
    total = num + initial
    show = total > PROGRESS_THRESHOLD if progress_bar is None else bool(progress_bar)
    size = max(1, math.ceil(num / 20)) if show else max(num, 1)
    outputs = []
    with tqdm(total=total, disable=not show, desc=desc, unit="step") as bar:
        bar.update(initial)
        for start in range(0, num, size):
            chunk = keys[start:start + size]
            state, out = scan_fn(chunk, state)
            outputs.append(out)
            bar.update(chunk.shape[0])
    if not outputs:
        return state, None
    return state, jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *outputs)
