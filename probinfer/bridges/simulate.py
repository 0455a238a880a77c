"""Simulators of reference SDEs that generate snapshot data (Lotka–Volterra, repressilator, ...)."""

from __future__ import annotations

from functools import partial

import numpy as np
import jax
import jax.numpy as jnp

from probinfer._types import PRNGKey
from probinfer._validation import (as_float_array, check_finite, check_positive_int,
                                   check_positive_scalar)
from probinfer.bridges.references import as_reference


@partial(jax.jit, static_argnames=("reference", "num_fine"))
def _euler(key, x0, params, t_grid, sigma, *, reference, num_fine):
    """Euler–Maruyama with ``num_fine`` sub-steps between consecutive ``t_grid`` entries."""

    def interval(x, inp):
        k, t_from, t_to = inp
        h = (t_to - t_from) / num_fine

        def sub(x, kk):
            noise = jax.random.normal(kk, x.shape, x.dtype)
            return x + h * reference.batched_drift(x, params) + sigma * jnp.sqrt(h) * noise, None

        x, _ = jax.lax.scan(sub, x, jax.random.split(k, num_fine))
        return x, x

    keys = jax.random.split(key, t_grid.shape[0] - 1)
    _, xs = jax.lax.scan(interval, x0, (keys, t_grid[:-1], t_grid[1:]))
    return jnp.concatenate([x0[None], xs])


def simulate_snapshots(key: PRNGKey, reference, x0, times, num_samples: int, *, sigma,
                       params=None, dt=0.01, start_width=0.0):
    """Snapshots of ``dX = f(X; params) dt + sigma dW`` at ``times``: ``(len(times), n, d)``.

    Parameters
    ----------
    key : PRNG key.
    reference : a reference (``pi.bridges.LotkaVolterra()``, ...) or a drift ``f(x, params)``.
    x0 : ``(d,)`` start (every cell starts there, plus ``start_width`` uniform jitter), or
        ``(num_samples, d)`` start states.
    times : increasing times; the first is the start time.
    num_samples : cells per snapshot (the same cells are recorded at every time).
    sigma : diffusion coefficient. params : overrides the reference's parameters.
    dt : the largest Euler–Maruyama step.
    start_width : with a ``(d,)`` start, cells start uniform on ``[x0, x0 + start_width]``
        per axis (the paper's Lotka–Volterra data: ``x0 = (5, 4)``, width 0.1).

    Examples
    --------
    >>> import jax, probinfer as pi
    >>> snaps = pi.bridges.simulate_snapshots(jax.random.key(0), pi.bridges.LotkaVolterra(),
    ...                                       jax.numpy.array([5.0, 4.0]), [0, 1, 2], 50, sigma=0.1)
    >>> snaps.shape
    (3, 50, 2)
    """
    ref = as_reference(reference, params)
    num_samples = check_positive_int(num_samples, "num_samples")
    sigma = check_positive_scalar(sigma, "sigma")
    dt = float(check_positive_scalar(dt, "dt"))
    t = np.asarray(times, dtype=np.float64)
    if t.ndim != 1 or t.shape[0] < 1 or np.any(np.diff(t) <= 0) or not np.all(np.isfinite(t)):
        raise ValueError(f"times must be a finite, strictly increasing 1-D array, got {times!r}")
    x0 = as_float_array(x0, "x0")
    check_finite(x0, "x0")
    key_start, key_path = jax.random.split(key)
    if x0.ndim == 1:
        jitter = jax.random.uniform(key_start, (num_samples, x0.shape[0]), sigma.dtype)
        x0 = x0[None, :] + float(start_width) * jitter
    elif x0.shape[0] != num_samples:
        raise ValueError(f"x0 must have shape (d,) or ({num_samples}, d), got {x0.shape}")
    num_fine = max(1, int(np.ceil(np.max(np.diff(t), initial=0.0) / dt)))
    if t.shape[0] == 1:
        return x0[None]
    return _euler(key_path, x0.astype(sigma.dtype), ref.params, jnp.asarray(t, sigma.dtype),
                  sigma, reference=ref, num_fine=num_fine)
