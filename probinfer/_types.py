"""Type aliases shared across probinfer (cf. diffrax/_custom_types.py)."""

from typing import Any, Callable

import jax

Array = jax.Array
PRNGKey = jax.Array
PyTree = Any
#: Particles: a pytree whose leaves all carry a leading particle axis.
Particles = Any
#: Log-weights: shape ``(num_particles,)``; normalised means ``logsumexp == 0``.
LogWeights = jax.Array
LogDensityFn = Callable[[PyTree], Array]
