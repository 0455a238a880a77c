"""Analytic Gaussian and Gaussian-mixture targets with exact tilts.

These are ground truth for the whole library: every sampler is validated against the
closed-form tilted mixtures computed here. Both classes are pytrees, so they can be
built, tilted and passed through ``jit``.

Tilts (per component ``N(m, S)``, ``b = a / temperature``, ``A = P / temperature``):

* linear ``r(x) = a·x``: ``N(m + S b, S)`` with log mass ``b·m + ½ bᵀ S b``;
* quadratic ``r(x) = -½ (x-c)ᵀ P (x-c)``: covariance ``(I + S A)⁻¹ S``, mean
  ``(I + S A)⁻¹ (m + S A c)``, log mass
  ``-½ log det(I + S A) - ½ (m-c)ᵀ A (I + S A)⁻¹ (m-c)``. This form never inverts ``A``,
  so a singular precision (a reward on a subspace) is allowed.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from probinfer._types import Array
from probinfer._validation import (as_float_array, check_finite, check_positive_int,
                                   check_positive_scalar, check_probability_vector, check_spd,
                                   is_concrete)
from probinfer.targets.base import Target


def _mvn_log_density(x, mean, chol):
    d = mean.shape[-1]
    z = jax.scipy.linalg.solve_triangular(chol, x - mean, lower=True)
    return (-0.5 * jnp.sum(z ** 2) - jnp.sum(jnp.log(jnp.diagonal(chol)))
            - 0.5 * d * math.log(2 * math.pi))


def _tilt_linear_component(mean, cov, b):
    shift = cov @ b
    return mean + shift, cov, b @ mean + 0.5 * b @ shift


def _tilt_quadratic_component(mean, cov, center, a):
    d = mean.shape[-1]
    m = jnp.eye(d, dtype=cov.dtype) + cov @ a          # I + S A
    new_cov = jnp.linalg.solve(m, cov)
    new_cov = 0.5 * (new_cov + new_cov.T)
    new_mean = jnp.linalg.solve(m, mean + cov @ (a @ center))
    diff = mean - center
    _, logdet = jnp.linalg.slogdet(m)
    log_mass = -0.5 * logdet - 0.5 * diff @ (a @ jnp.linalg.solve(m, diff))
    return new_mean, new_cov, log_mass


def _check_quadratic_args(center, precision, d):
    center = as_float_array(center, "center", ndim=1, shape=(d,))
    precision = as_float_array(precision, "precision", ndim=2, shape=(d, d))
    check_finite(center, "center")
    check_finite(precision, "precision")
    if is_concrete(precision):
        import numpy as np
        p = np.asarray(precision, dtype=np.float64)
        if np.abs(p - p.T).max() > 1e-6 * max(1.0, np.abs(p).max()):
            raise ValueError("precision must be symmetric")
        if np.linalg.eigvalsh(0.5 * (p + p.T)).min() < -1e-8 * max(1.0, np.abs(p).max()):
            raise ValueError("precision must be positive semi-definite (the reward must be "
                             "bounded above, or the tilted density is not normalisable)")
    return center, precision


@jax.tree_util.register_pytree_node_class
class Gaussian(Target):
    """Multivariate normal ``N(mean, cov)`` (normalised: ``log_normalizer == 0``).

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> g = pi.Gaussian(jnp.zeros(2), jnp.eye(2))
    >>> g.sample(jax.random.key(0), 5).shape
    (5, 2)
    """

    def __init__(self, mean, cov):
        mean = as_float_array(mean, "mean", ndim=1)
        d = mean.shape[0]
        cov = as_float_array(cov, "cov", ndim=2, shape=(d, d))
        check_finite(mean, "mean")
        check_spd(cov, "cov")
        dtype = jnp.result_type(mean, cov)
        self.mean = mean.astype(dtype)
        self.cov = cov.astype(dtype)
        self.chol = jnp.linalg.cholesky(self.cov)

    @property
    def dim(self) -> int:
        return self.mean.shape[0]

    @property
    def log_normalizer(self):
        return jnp.zeros((), self.mean.dtype)

    def log_density(self, x) -> Array:
        return _mvn_log_density(x, self.mean, self.chol)

    def sample(self, key, num_samples: int) -> Array:
        check_positive_int(num_samples, "num_samples")
        z = jax.random.normal(key, (num_samples, self.dim), self.mean.dtype)
        return self.mean + z @ self.chol.T

    def tilt_linear(self, a, temperature=1.0):
        """Exact tilt by ``r(x) = a·x``; returns ``(Gaussian, log E[exp(r/temperature)])``."""
        a = as_float_array(a, "a", ndim=1, shape=(self.dim,))
        t = check_positive_scalar(temperature, "temperature")
        m, s, log_z = _tilt_linear_component(self.mean, self.cov, a / t)
        return Gaussian._unchecked(m, s), log_z

    def tilt_quadratic(self, center, precision, temperature=1.0):
        """Exact tilt by ``r(x) = -½ (x-c)ᵀ P (x-c)``; returns ``(Gaussian, log Z)``."""
        center, precision = _check_quadratic_args(center, precision, self.dim)
        t = check_positive_scalar(temperature, "temperature")
        m, s, log_z = _tilt_quadratic_component(self.mean, self.cov, center, precision / t)
        return Gaussian._unchecked(m, s), log_z

    @classmethod
    def _unchecked(cls, mean, cov, chol=None):
        obj = object.__new__(cls)
        obj.mean, obj.cov = mean, cov
        obj.chol = jnp.linalg.cholesky(cov) if chol is None else chol
        return obj

    def tree_flatten(self):
        return (self.mean, self.cov, self.chol), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls._unchecked(*children)

    def __repr__(self):
        return f"Gaussian(dim={self.dim})"


@jax.tree_util.register_pytree_node_class
class GaussianMixture(Target):
    """Mixture ``sum_k weights[k] N(means[k], covs[k])`` with full covariances.

    Exact ``log_density``, ``sample``, ``log_normalizer`` (zero: the mixture is
    normalised), moments, component responsibilities, and closed-form tilts.

    Parameters
    ----------
    weights : (K,) probabilities summing to one.
    means : (K, d).
    covs : (K, d, d) symmetric positive definite.

    Example
    -------
    >>> import jax.numpy as jnp, probinfer as pi
    >>> mix = pi.GaussianMixture(jnp.array([0.9, 0.1]), jnp.array([[-2.0], [2.0]]),
    ...                          jnp.ones((2, 1, 1)))
    >>> tilted, log_z = mix.tilt_linear(jnp.array([1.0]), temperature=1.0)
    >>> bool(tilted.weights[1] > 0.5)
    True
    """

    def __init__(self, weights, means, covs):
        weights = as_float_array(weights, "weights", ndim=1)
        k = weights.shape[0]
        means = as_float_array(means, "means", ndim=2, shape=(k, None))
        d = means.shape[1]
        covs = as_float_array(covs, "covs", ndim=3, shape=(k, d, d))
        check_probability_vector(weights, "weights")
        check_finite(means, "means")
        check_spd(covs, "covs")
        dtype = jnp.result_type(weights, means, covs)
        self._set(weights.astype(dtype), means.astype(dtype), covs.astype(dtype), None)

    def _set(self, weights, means, covs, chols):
        self.weights, self.means, self.covs = weights, means, covs
        self.chols = jnp.linalg.cholesky(covs) if chols is None else chols

    @classmethod
    def _unchecked(cls, weights, means, covs, chols=None):
        obj = object.__new__(cls)
        obj._set(weights, means, covs, chols)
        return obj

    def tree_flatten(self):
        return (self.weights, self.means, self.covs, self.chols), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls._unchecked(*children)

    @property
    def num_components(self) -> int:
        return self.weights.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def log_normalizer(self):
        return jnp.zeros((), self.means.dtype)

    @property
    def mean(self) -> Array:
        return self.weights @ self.means

    @property
    def covariance(self) -> Array:
        mu = self.mean
        centred = self.means - mu
        return (jnp.einsum("k,kij->ij", self.weights, self.covs)
                + jnp.einsum("k,ki,kj->ij", self.weights, centred, centred))

    def component_log_densities(self, x) -> Array:
        """``log weights[k] + log N(x; means[k], covs[k])`` for each k, shape (K,)."""
        logs = jax.vmap(_mvn_log_density, in_axes=(None, 0, 0))(x, self.means, self.chols)
        return jnp.log(self.weights) + logs

    def log_density(self, x) -> Array:
        return logsumexp(self.component_log_densities(x))

    def responsibilities(self, x) -> Array:
        """Posterior component probabilities ``P(k | x)``, shape (K,)."""
        return jax.nn.softmax(self.component_log_densities(x))

    def sample(self, key, num_samples: int) -> Array:
        check_positive_int(num_samples, "num_samples")
        k_key, z_key = jax.random.split(key)
        comp = jax.random.categorical(k_key, jnp.log(self.weights), shape=(num_samples,))
        z = jax.random.normal(z_key, (num_samples, self.dim), self.means.dtype)
        return self.means[comp] + jnp.einsum("nij,nj->ni", self.chols[comp], z)

    def _reweighted(self, means, covs, log_masses):
        log_w = jnp.log(self.weights) + log_masses
        log_z = logsumexp(log_w)
        return GaussianMixture._unchecked(jnp.exp(log_w - log_z), means, covs), log_z

    def tilt_linear(self, a, temperature=1.0):
        """Exact tilt by ``r(x) = a·x``.

        Returns ``(tilted mixture, log E_p[exp(r(x) / temperature)])``.
        """
        a = as_float_array(a, "a", ndim=1, shape=(self.dim,))
        check_finite(a, "a")
        t = check_positive_scalar(temperature, "temperature")
        means, covs, log_m = jax.vmap(_tilt_linear_component, in_axes=(0, 0, None))(
            self.means, self.covs, a / t)
        return self._reweighted(means, covs, log_m)

    def tilt_quadratic(self, center, precision, temperature=1.0):
        """Exact tilt by ``r(x) = -½ (x - center)ᵀ precision (x - center)``.

        Returns ``(tilted mixture, log E_p[exp(r(x) / temperature)])``. ``precision``
        must be symmetric positive semi-definite.
        """
        center, precision = _check_quadratic_args(center, precision, self.dim)
        t = check_positive_scalar(temperature, "temperature")
        means, covs, log_m = jax.vmap(_tilt_quadratic_component, in_axes=(0, 0, None, None))(
            self.means, self.covs, center, precision / t)
        return self._reweighted(means, covs, log_m)

    def __repr__(self):
        return f"GaussianMixture(num_components={self.num_components}, dim={self.dim})"
