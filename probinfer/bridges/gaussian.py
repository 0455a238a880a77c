"""The Schrödinger bridge between two Gaussians, in closed form.

Reference: ``dX = theta (mu - X) dt + sigma dW`` on ``[0, T]`` (``theta = 0``: Brownian
motion). The static bridge (the law of ``(X_0, X_T)``) minimises ``KL(pi | R_0T)``; with
``Phi = exp(-theta T)`` and ``S_T = sigma^2 (1 - exp(-2 theta T)) / (2 theta)`` (the
reference transition variance) this is entropic OT between ``Phi X_0`` and ``X_T`` with
cost ``|u - v|^2`` and ``epsilon = 2 S_T``. Between Gaussians the optimal coupling is
Gaussian, with cross-covariance (Janati et al. 2020, "Entropic optimal transport between
unbalanced Gaussian measures has a closed form"; Bunne et al. 2023, "The Schrödinger bridge
between Gaussian measures has a closed form")

    C = (A^{1/2} D A^{-1/2} - S_T I) / 2,   D = (4 A^{1/2} B A^{1/2} + S_T^2 I)^{1/2},

for ``A = Phi^2 Cov(X_0)``, ``B = Cov(X_T)``, and ``Cov(X_0, X_T) = C / Phi``. Given its
endpoints the bridge is the reference's own bridge (an OU or Brownian bridge), so every
marginal and every finite-dimensional law of the path is Gaussian and exact.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from probinfer._types import Array, PRNGKey
from probinfer._validation import (as_float_array, check_finite, check_positive_scalar,
                                   check_spd, is_concrete)


def _sym_sqrt(m, inverse=False):
    w, v = jnp.linalg.eigh(0.5 * (m + m.T))
    w = jnp.maximum(w, 0.0)
    s = 1.0 / jnp.sqrt(w) if inverse else jnp.sqrt(w)
    return (v * s) @ v.T


def _phi(theta, t):
    return jnp.exp(-theta * t)


def _var(theta, sigma, t):
    """Reference transition variance ``sigma^2 (1 - e^{-2 theta t}) / (2 theta)`` (-> sigma^2 t)."""
    small = theta * t < 1e-6
    safe = jnp.where(small, 1.0, theta)
    exact = -jnp.expm1(-2.0 * safe * t) / (2.0 * safe)
    return sigma ** 2 * jnp.where(small, t * (1.0 - theta * t), exact)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class GaussianBridge:
    """The closed-form Gaussian Schrödinger bridge (build it with :func:`gaussian_bridge`).

    Attributes
    ----------
    mean0, cov0, mean1, cov1 : the end marginals. cross_cov : ``Cov(X_0, X_T)``.
    sigma, theta, mu : the reference ``dX = theta (mu - X) dt + sigma dW``. t1 : ``T``.
    """

    mean0: Array
    cov0: Array
    mean1: Array
    cov1: Array
    cross_cov: Array
    sigma: Array
    theta: Array
    mu: Array
    t1: Array

    def _weights(self, t):
        """``X_t - mu = alpha (X_0 - mu) + beta (X_T - mu) + sqrt(v) Z`` given the endpoints."""
        s_t = _var(self.theta, self.sigma, t)
        s_rest = _var(self.theta, self.sigma, self.t1 - t)
        s_all = _var(self.theta, self.sigma, self.t1)
        phi_rest = _phi(self.theta, self.t1 - t)
        beta = s_t * phi_rest / s_all
        alpha = _phi(self.theta, t) * s_rest / s_all
        v = s_t * s_rest / s_all
        return alpha, beta, v

    def marginal(self, t):
        """Mean ``(d,)`` and covariance ``(d, d)`` of ``X_t`` for a scalar ``t`` in ``[0, T]``."""
        t = jnp.asarray(t, self.mean0.dtype)
        alpha, beta, v = self._weights(t)
        mean = self.mu + alpha * (self.mean0 - self.mu) + beta * (self.mean1 - self.mu)
        cov = (alpha ** 2 * self.cov0 + beta ** 2 * self.cov1
               + alpha * beta * (self.cross_cov + self.cross_cov.T)
               + v * jnp.eye(self.mean0.shape[0], dtype=self.mean0.dtype))
        return mean, cov

    def sample_endpoints(self, key: PRNGKey, num_samples: int):
        """Exact draws of ``(X_0, X_T)``, each ``(num_samples, d)``."""
        d = self.mean0.shape[0]
        joint = jnp.block([[self.cov0, self.cross_cov], [self.cross_cov.T, self.cov1]])
        mean = jnp.concatenate([self.mean0, self.mean1])
        z = jax.random.multivariate_normal(key, mean, joint, (num_samples,), method="eigh")
        return z[:, :d], z[:, d:]

    def sample(self, key: PRNGKey, times, num_samples: int):
        """Exact paths at increasing ``times`` in ``[0, T]``: shape ``(num_samples, len(times), d)``.

        Endpoints are drawn from the static bridge, then each ``X_{t_k}`` from the
        reference bridge given ``X_{t_{k-1}}`` and ``X_T`` (the bridge is Markov).
        """
        times = jnp.asarray(times, self.mean0.dtype)
        key0, key_path = jax.random.split(key)
        x0, x1 = self.sample_endpoints(key0, num_samples)
        keys = jax.random.split(key_path, times.shape[0])

        def advance(carry, inp):
            x, t_prev = carry
            k, t = inp
            # The bridge from (t_prev, x) to (T, x1) is the reference bridge over T - t_prev.
            sub = dataclasses.replace(self, t1=self.t1 - t_prev)
            alpha, beta, v = sub._weights(t - t_prev)
            noise = jax.random.normal(k, x.shape, x.dtype)
            x_new = (self.mu + alpha * (x - self.mu) + beta * (x1 - self.mu)
                     + jnp.sqrt(jnp.maximum(v, 0.0)) * noise)
            # Exactly at T the bridge has arrived (alpha = v = 0 up to round-off).
            x_new = jnp.where(t >= self.t1, x1, x_new)
            return (x_new, t), x_new

        _, path = jax.lax.scan(advance, (x0, jnp.zeros((), times.dtype)), (keys, times))
        return jnp.swapaxes(path, 0, 1)


def gaussian_bridge(mean0, cov0, mean1, cov1, sigma, *, t1=1.0, reference=None) -> GaussianBridge:
    """The Schrödinger bridge between ``N(mean0, cov0)`` and ``N(mean1, cov1)``, exactly.

    Parameters
    ----------
    mean0, mean1 : (d,) means; cov0, cov1 : (d, d) covariances (positive definite).
    sigma : reference diffusion coefficient (> 0).
    t1 : the horizon ``T`` (> 0).
    reference : ``None`` or ``pi.bridges.Brownian()`` for ``dX = sigma dW``;
        ``pi.bridges.OU(theta, mean)`` for ``dX = theta (mean - X) dt + sigma dW`` with a
        scalar ``theta >= 0``.

    Returns
    -------
    GaussianBridge
        ``.marginal(t) -> (mean, cov)``, ``.sample(key, times, num_samples)`` (exact paths),
        ``.sample_endpoints(key, num_samples)``, ``.cross_cov``.

    Notes
    -----
    Janati et al. 2020 (entropic OT between Gaussians); Bunne, Hsieh, Cuturi & Krause 2023,
    "The Schrödinger bridge between Gaussian measures has a closed form" (AISTATS).

    Examples
    --------
    >>> import jax.numpy as jnp, probinfer as pi
    >>> sb = pi.bridges.gaussian_bridge(jnp.zeros(2), jnp.eye(2), jnp.ones(2), 0.5 * jnp.eye(2), 1.0)
    >>> mean, cov = sb.marginal(0.5)
    >>> mean
    Array([0.5, 0.5], dtype=float32)
    """
    from probinfer.bridges.references import Reference

    mean0 = as_float_array(mean0, "mean0", ndim=1)
    d = mean0.shape[0]
    mean1 = as_float_array(mean1, "mean1", shape=(d,))
    if mean1.ndim != 1:
        raise ValueError(f"mean1 must have shape ({d},), got {mean1.shape}")
    cov0 = as_float_array(cov0, "cov0", shape=(d, d))
    cov1 = as_float_array(cov1, "cov1", shape=(d, d))
    for arr, name in ((cov0, "cov0"), (cov1, "cov1")):
        if arr.ndim != 2:
            raise ValueError(f"{name} must have shape ({d}, {d}), got {arr.shape}")
    for arr, name in ((mean0, "mean0"), (mean1, "mean1")):
        check_finite(arr, name)
    check_spd(cov0, "cov0")
    check_spd(cov1, "cov1")
    dtype = jnp.result_type(mean0.dtype, cov0.dtype, mean1.dtype, cov1.dtype)
    sigma = check_positive_scalar(sigma, "sigma").astype(dtype)
    t1 = check_positive_scalar(t1, "t1").astype(dtype)
    if reference is None or (isinstance(reference, Reference) and reference.name == "Brownian"):
        theta, mu = jnp.zeros((), dtype), jnp.zeros(d, dtype)
    elif isinstance(reference, Reference) and reference.name == "OU":
        theta = jnp.asarray(reference.params["theta"], dtype)
        if theta.ndim != 0:
            raise ValueError(f"OU reference: theta must be a scalar here, got shape {theta.shape}")
        if is_concrete(theta) and float(theta) < 0:
            raise ValueError(f"OU reference: theta must be >= 0, got {float(theta)}")
        mu = jnp.broadcast_to(jnp.asarray(reference.params["mean"], dtype), (d,))
    else:
        raise TypeError("reference must be None, pi.bridges.Brownian() or pi.bridges.OU(theta, mean)")
    mean0, mean1, cov0, cov1 = (m.astype(dtype) for m in (mean0, mean1, cov0, cov1))
    phi = _phi(theta, t1)
    s_all = _var(theta, sigma, t1)
    a = phi ** 2 * cov0
    a_half, a_half_inv = _sym_sqrt(a), _sym_sqrt(a, inverse=True)
    dmat = _sym_sqrt(4.0 * a_half @ cov1 @ a_half + s_all ** 2 * jnp.eye(d, dtype=dtype))
    cross = 0.5 * (a_half @ dmat @ a_half_inv - s_all * jnp.eye(d, dtype=dtype)) / phi
    return GaussianBridge(mean0, cov0, mean1, cov1, cross, sigma, theta, mu, t1)
