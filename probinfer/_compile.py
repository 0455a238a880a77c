"""One compile cache for every runner.

A runner compiles its whole run once per *structure* (the prior, the reward, the kind of
potential, the particle count) and passes every *number* (temperatures, guidance scales,
thresholds) as traced arguments, so a new temperature reuses the compiled program. The
compiled functions live on the object they close over (usually the prior), in a small
bounded table: they are freed with that object, and no module-level cache keeps torch
modules or rewards alive.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Hashable

from probinfer._random import as_key, fast_key

MAX_ENTRIES = 16
_ATTRIBUTE = "_probinfer_compiled"


def cached(owner, signature: Hashable, build: Callable[[], Callable]) -> Callable:
    """The function stored on ``owner`` under ``signature``, built by ``build()`` on first use.

    At most :data:`MAX_ENTRIES` functions are kept per owner (least recently used dropped).
    """
    table = owner.__dict__.get(_ATTRIBUTE)
    if table is None:
        table = OrderedDict()
        object.__setattr__(owner, _ATTRIBUTE, table)
    if signature in table:
        table.move_to_end(signature)
        return table[signature]
    if len(table) >= MAX_ENTRIES:
        table.popitem(last=False)
    table[signature] = fn = build()
    return fn


def runner_key(key):
    """A user's key (a typed key, a legacy ``uint32`` key or an int seed) as the key the
    compiled runs consume: same bits, faster generation on CPU (see :mod:`probinfer._random`)."""
    return fast_key(as_key(key))
