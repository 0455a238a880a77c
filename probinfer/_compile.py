"""One compile cache for every runner.

A runner compiles its whole run once per *structure* (the prior, the reward, the kind of
potential, the particle count) and passes every *number* (temperatures, guidance scales,
thresholds) as traced arguments, so a new temperature reuses the compiled program. The
compiled functions live on the object they close over (usually the prior), in a small
bounded table: they are freed with that object, and no module-level cache keeps torch
modules or rewards alive.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Callable, Hashable

import numpy as np
import jax

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


def uncached_copy(owner):
    """A shallow copy of ``owner`` without its compiled functions (they close over the
    original, so a modified copy must compile its own)."""
    other = copy.copy(owner)
    other.__dict__.pop(_ATTRIBUTE, None)
    return other


def runner_key(key):
    """A user's key (a typed key, a legacy ``uint32`` key or an int seed) as the key the
    compiled runs consume: same bits, faster generation on CPU (see :mod:`probinfer._random`)."""
    return fast_key(as_key(key))


def _is_numbers(value) -> bool:
    """Whether ``value`` is a non-empty pytree whose every leaf is an array."""
    leaves = jax.tree_util.tree_leaves(value)
    return bool(leaves) and all(isinstance(leaf, (jax.Array, np.ndarray)) for leaf in leaves)


class _Static:
    """The non-array attributes of an object: compared by value where they are hashable,
    by identity where they are not (a torch module, a list), so that equal structure means
    one compiled program."""

    __slots__ = ("cls", "items", "_key")

    def __init__(self, cls, items):
        self.cls, self.items = cls, items
        key = []
        for name, value in items:
            try:
                hash(value)
                key.append((name, value))
            except TypeError:
                key.append((name, id(value)))
        self._key = (cls, tuple(key))

    def __eq__(self, other):
        return isinstance(other, _Static) and self._key == other._key

    def __hash__(self):
        return hash(self._key)


def numbers_as_leaves(cls):
    """Register ``cls`` as a JAX pytree whose array-valued attributes are leaves and whose
    other attributes are static structure.

    An instance passed to a compiled runner then has its numbers (parameters, data) traced
    and its structure (Python scalars, sizes, functions) static: rebuilding the object with
    new numbers of the same shapes reuses the compiled program, where an object closed over
    or passed as a static argument recompiles. Compile caches stored on the object
    (:func:`cached`) are left out. Instances are rebuilt without calling ``__init__``.
    """

    def flatten(obj):
        items = [(k, v) for k, v in vars(obj).items() if k not in _NOT_STATE]
        numbers = tuple((k, v) for k, v in items if _is_numbers(v))
        static = tuple((k, v) for k, v in items if not _is_numbers(v))
        return tuple(v for _, v in numbers), (tuple(k for k, _ in numbers),
                                              _Static(type(obj), static))

    def unflatten(aux, children):
        names, static = aux
        obj = object.__new__(static.cls)
        obj.__dict__.update(static.items)
        obj.__dict__.update(zip(names, children))
        return obj

    jax.tree_util.register_pytree_node(cls, flatten, unflatten)
    return cls


_NOT_STATE = frozenset({_ATTRIBUTE})
