"""Checks used at the public boundary.

They run on concrete (host) values only: inside ``jit`` the same objects are rebuilt
from traced arrays, and there degeneracy is reported through ``Info`` fields instead.
"""

from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp


def is_concrete(*arrays) -> bool:
    """True when none of the arrays is a tracer, so its values can be inspected."""
    return not any(isinstance(a, jax.core.Tracer) for a in jax.tree_util.tree_leaves(arrays))


def as_float_array(value, name: str, ndim: int | None = None, shape: tuple | None = None):
    """Convert to a floating JAX array and check its rank and shape."""
    try:
        arr = jnp.asarray(value)
    except TypeError as err:
        raise TypeError(f"{name} must be array-like, got {type(value).__name__}") from err
    if not (jnp.issubdtype(arr.dtype, jnp.floating) or jnp.issubdtype(arr.dtype, jnp.integer)
            or arr.dtype == jnp.bool_):
        raise TypeError(f"{name} must have a real numeric dtype, got {arr.dtype}")
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if shape is not None:
        for axis, (want, got) in enumerate(zip(shape, arr.shape)):
            if want is not None and want != got:
                raise ValueError(
                    f"{name} must have shape {tuple('*' if s is None else s for s in shape)}, "
                    f"got {arr.shape} (axis {axis} is {got}, expected {want})")
    return arr


def check_finite(arr, name: str) -> None:
    if is_concrete(arr) and not bool(np.all(np.isfinite(np.asarray(arr)))):
        raise ValueError(f"{name} must be finite, got non-finite entries")


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_positive_scalar(value, name: str, allow_zero: bool = False):
    """A positive scalar (kept as an array so it can be traced); checked when concrete."""
    arr = jnp.asarray(value, dtype=jnp.result_type(float))
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got shape {arr.shape}")
    if is_concrete(arr):
        v = float(arr)
        if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
            bound = ">= 0" if allow_zero else "> 0"
            raise ValueError(f"{name} must be finite and {bound}, got {v}")
    return arr


def check_probability_vector(p, name: str, atol: float = 1e-6) -> None:
    if not is_concrete(p):
        return
    p = np.asarray(p, dtype=np.float64)
    if np.any(~np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"{name} must be finite and non-negative")
    if abs(p.sum(-1) - 1.0).max() > atol * max(1, p.shape[-1]):
        raise ValueError(f"{name} must sum to one, sums to {p.sum(-1)}")


def check_spd(mats, name: str) -> None:
    """Symmetric positive definite, for a (d, d) matrix or a stack (..., d, d)."""
    if not is_concrete(mats):
        return
    m = np.asarray(mats, dtype=np.float64)
    if m.shape[-1] != m.shape[-2]:
        raise ValueError(f"{name} must be square in its last two axes, got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError(f"{name} must be finite")
    scale = np.maximum(np.abs(m).max(axis=(-1, -2), keepdims=True), 1e-300)
    if np.abs(m - np.swapaxes(m, -1, -2)).max() > 1e-5 * scale.max():
        raise ValueError(f"{name} must be symmetric")
    try:
        np.linalg.cholesky(m)
    except np.linalg.LinAlgError as err:
        raise ValueError(f"{name} must be positive definite") from err
