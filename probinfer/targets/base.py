"""The shared target-density interface and its algebra.

A :class:`Target` is an unnormalised density over a space of pytrees. ``log_density``
takes ONE point and returns a scalar in the positive sense (log p, never an energy);
algorithms ``vmap`` it. ``sample`` and ``log_normalizer`` exist where they are known.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from probinfer._types import Array, PRNGKey, PyTree
from probinfer._validation import check_positive_int, check_positive_scalar


class Target:
    """Base class of every target density.

    Subclasses implement :meth:`log_density`; those with exact draws implement
    :meth:`sample` and set :attr:`log_normalizer` (``None`` when unknown).
    """

    log_normalizer: Array | None = None

    def log_density(self, x: PyTree) -> Array:
        raise NotImplementedError

    def sample(self, key: PRNGKey, num_samples: int) -> PyTree:
        raise NotImplementedError(f"{type(self).__name__} has no exact sampler")

    @property
    def can_sample(self) -> bool:
        return type(self).sample is not Target.sample

    def batch_log_density(self, xs: PyTree) -> Array:
        """``log_density`` over a leading batch axis."""
        return jax.vmap(self.log_density)(xs)


class LogDensityTarget(Target):
    """A target given by a log-density function and, optionally, a sampler."""

    def __init__(self, log_density_fn: Callable[[PyTree], Array],
                 sample_fn: Callable[[PRNGKey, int], PyTree] | None = None,
                 log_normalizer=None):
        if not callable(log_density_fn):
            raise TypeError("log_density_fn must be callable: one point -> scalar log density")
        if sample_fn is not None and not callable(sample_fn):
            raise TypeError("sample_fn must be callable (key, num_samples) -> samples, or None")
        self._log_density_fn = log_density_fn
        self._sample_fn = sample_fn
        self.log_normalizer = None if log_normalizer is None else jnp.asarray(log_normalizer)

    def log_density(self, x):
        return self._log_density_fn(x)

    def sample(self, key, num_samples):
        if self._sample_fn is None:
            raise NotImplementedError("this target was built without sample_fn")
        check_positive_int(num_samples, "num_samples")
        return self._sample_fn(key, num_samples)

    @property
    def can_sample(self) -> bool:
        return self._sample_fn is not None


def from_logdensity(log_density_fn, sample_fn=None, log_normalizer=None) -> Target:
    """Wrap a function ``x -> log p(x)`` (one point, positive sense) as a :class:`Target`.

    Example
    -------
    >>> import jax.numpy as jnp, probinfer as pi
    >>> t = pi.from_logdensity(lambda x: -0.5 * jnp.sum(x ** 2))
    >>> float(t.log_density(jnp.zeros(2)))
    -0.0
    """
    return LogDensityTarget(log_density_fn, sample_fn, log_normalizer)


class TiltedTarget(Target):
    """``pi(x) ∝ base(x) · exp(reward(x) / temperature)``."""

    def __init__(self, base: Target, reward: Callable[[PyTree], Array], temperature):
        if not isinstance(base, Target):
            raise TypeError(f"base must be a probinfer Target, got {type(base).__name__}")
        if not callable(reward):
            raise TypeError("reward must be callable: one point -> scalar")
        self.base = base
        self.reward = reward
        self.temperature = check_positive_scalar(temperature, "temperature")

    def log_density(self, x):
        return self.base.log_density(x) + self.reward(x) / self.temperature


def tilt(base: Target, reward, temperature=1.0) -> Target:
    """Tilt ``base`` by a reward: ``pi(x) ∝ base(x) · exp(reward(x) / temperature)``.

    Analytic targets (:class:`~probinfer.Gaussian`, :class:`~probinfer.GaussianMixture`)
    also offer exact tilts by linear and quadratic rewards (``tilt_linear``,
    ``tilt_quadratic``) that return the normalising constant.
    """
    return TiltedTarget(base, reward, temperature)


class GeometricPath:
    """The tempering path ``pi_beta(x) ∝ base(x) · exp(beta · log_likelihood(x))``, beta in [0, 1].

    ``beta`` is an argument of the density (not baked in), so one compiled sampler serves
    every point on the path. At ``beta = 0`` the density is the base's, also where
    ``log_likelihood`` is ``-inf`` (``0 · (-inf)`` would be NaN).

    Example
    -------
    >>> import jax.numpy as jnp, probinfer as pi
    >>> path = pi.targets.GeometricPath(pi.Gaussian(jnp.zeros(1), jnp.eye(1)),
    ...                                 lambda x: -jnp.inf)
    >>> float(path.log_density(jnp.zeros(1), 0.0)) == float(
    ...     pi.Gaussian(jnp.zeros(1), jnp.eye(1)).log_density(jnp.zeros(1)))
    True
    """

    def __init__(self, base: Target, log_likelihood: Callable[[PyTree], Array]):
        if not isinstance(base, Target):
            raise TypeError(f"base must be a probinfer Target, got {type(base).__name__}")
        if not callable(log_likelihood):
            raise TypeError("log_likelihood must be callable: one point -> scalar")
        self.base = base
        self.log_likelihood = log_likelihood

    def log_density(self, x, beta) -> Array:
        log_l = self.log_likelihood(x)
        tempered = jnp.where(beta == 0, jnp.zeros_like(log_l), beta * log_l)
        return self.base.log_density(x) + tempered

    def at(self, beta) -> Target:
        """The target at one exponent, as a :class:`Target`."""
        beta = jnp.asarray(beta)
        return LogDensityTarget(lambda x: self.log_density(x, beta))


def geometric_path(base: Target, log_likelihood) -> GeometricPath:
    """``prior(x) · likelihood(x)^beta``: see :class:`GeometricPath`."""
    return GeometricPath(base, log_likelihood)
