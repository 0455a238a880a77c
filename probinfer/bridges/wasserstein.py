"""Wasserstein distances between point clouds: exact (POT's network simplex) and debiased
Sinkhorn divergences (JAX)."""

from __future__ import annotations

import numpy as np
import jax.numpy as jnp

from probinfer._validation import as_float_array, check_finite
from probinfer.bridges.sinkhorn import sinkhorn


def _import_ot():
    try:
        import ot
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("exact Wasserstein distances need POT: pip install 'probinfer[bridges]' "
                          "(or pip install POT)") from err
    return ot


def _points(x, name):
    x = np.asarray(as_float_array(x, name), dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape (n, d) with n >= 1, got {x.shape}")
    check_finite(x, name)
    return x


def wasserstein(x, y, *, p=1, a=None, b=None):
    """Exact ``W_p`` between two weighted point clouds, by linear programming (POT's EMD).

    ``W_p(a, b) = (min_P sum_ij P_ij |x_i - y_j|^p)^(1/p)`` over couplings of ``a`` and
    ``b`` (uniform by default). Runs on the host in float64; meant for the small sets of
    evaluation (hundreds to a few thousand points).

    Parameters
    ----------
    x : (n, d) or (n,) points; y : (m, d) or (m,) points.
    p : 1 or 2 (any ``p >= 1`` works).
    a, b : optional weights summing to one.

    Examples
    --------
    >>> import numpy as np, probinfer as pi
    >>> x = np.zeros((3, 2)); y = np.ones((3, 2))
    >>> round(pi.bridges.wasserstein(x, y, p=2), 6)
    1.414214
    """
    ot = _import_ot()
    x, y = _points(x, "x"), _points(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same dimension, got {x.shape[1]} and "
                         f"{y.shape[1]}")
    if not p >= 1:
        raise ValueError(f"p must be >= 1, got {p}")
    a = np.full(len(x), 1.0 / len(x)) if a is None else np.asarray(a, np.float64)
    b = np.full(len(y), 1.0 / len(y)) if b is None else np.asarray(b, np.float64)
    if a.shape != (len(x),) or b.shape != (len(y),):
        raise ValueError(f"a and b must have shapes ({len(x)},) and ({len(y)},), got {a.shape} "
                         f"and {b.shape}")
    dist = ot.dist(x, y, metric="euclidean") ** p
    return float(ot.emd2(a, b, dist, numItermax=1_000_000)) ** (1.0 / p)


def sinkhorn_divergence(x, y, epsilon, *, a=None, b=None, cost="sqeuclidean", **kwargs):
    """Debiased Sinkhorn divergence ``S_eps = OT_eps(a, b) - (OT_eps(a, a) + OT_eps(b, b)) / 2``.

    ``OT_eps`` is the entropic objective ``<P, C> + eps KL(P | a b^T)``, so ``S_eps >= 0``,
    ``S_eps(a, a) = 0`` and ``S_eps -> OT`` as ``eps -> 0`` (Feydy et al. 2019,
    "Interpolating between optimal transport and MMD using Sinkhorn divergences"). Pure JAX,
    differentiable in the points. ``kwargs`` go to :func:`sinkhorn`.

    Examples
    --------
    >>> import jax, probinfer as pi
    >>> x = jax.random.normal(jax.random.key(0), (100, 2))
    >>> float(pi.bridges.sinkhorn_divergence(x, x, 0.1)) < 1e-5
    True
    """
    def objective(u, v, wu, wv):
        res = sinkhorn(u, v, epsilon, a=wu, b=wv, cost=cost, **kwargs)
        # At the optimum the entropic objective equals the dual value <f, a> + <g, b>.
        wu = jnp.full(u.shape[0], 1.0 / u.shape[0]) if wu is None else wu
        wv = jnp.full(v.shape[0], 1.0 / v.shape[0]) if wv is None else wv
        return jnp.sum(res.f * wu) + jnp.sum(res.g * wv)

    return objective(x, y, a, b) - 0.5 * (objective(x, x, a, a) + objective(y, y, b, b))
