"""Univariate stochastic-volatility model (Kim, Shephard & Chib 1998).

``x_0 ~ N(mu, sigma² / (1 - phi²))``, ``x_t = mu + phi (x_{t-1} - mu) + sigma u_t``,
``y_t ~ N(0, exp(x_t))``. States are ``(n, 1)`` arrays.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from probinfer._validation import check_positive_int
from probinfer.ssm.base import StateSpaceModel

_LOG_2PI = math.log(2 * math.pi)


def _normal_log_density(x, mean, std):
    return -0.5 * ((x - mean) / std) ** 2 - jnp.log(std) - 0.5 * _LOG_2PI


class StochasticVolatility(StateSpaceModel):
    """Stochastic volatility with parameters ``mu`` (level), ``phi`` (|phi| < 1), ``sigma`` > 0."""

    state_dim = 1

    def __init__(self, mu=-1.0, phi=0.95, sigma=0.3):
        if not abs(phi) < 1:
            raise ValueError(f"phi must satisfy |phi| < 1 (stationarity), got {phi}")
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        self.mu, self.phi, self.sigma = float(mu), float(phi), float(sigma)
        self._std0 = self.sigma / math.sqrt(1 - self.phi ** 2)

    def sample_initial(self, key, num):
        return self.mu + self._std0 * jax.random.normal(key, (num, 1))

    def initial_log_density(self, x):
        return _normal_log_density(x[:, 0], self.mu, self._std0)

    def _transition_mean(self, x_prev):
        return self.mu + self.phi * (x_prev - self.mu)

    def sample_transition(self, key, x_prev, t):
        noise = jax.random.normal(key, x_prev.shape, x_prev.dtype)
        return self._transition_mean(x_prev) + self.sigma * noise

    def transition_log_density(self, x_prev, x, t):
        return _normal_log_density(x[:, 0], self._transition_mean(x_prev[:, 0]), self.sigma)

    def observation_log_density(self, x, y, t):
        return _normal_log_density(y[0], 0.0, jnp.exp(0.5 * x[:, 0]))

    def simulate(self, key, num_steps: int):
        """Draw ``(log-volatilities (T, 1), returns (T, 1))``."""
        num_steps = check_positive_int(num_steps, "num_steps")
        keys = jax.random.split(key, num_steps + 1)
        x0 = self.sample_initial(keys[0], 1)

        def one(x, k):
            kx, ky = jax.random.split(k)
            y = jnp.exp(0.5 * x) * jax.random.normal(ky, x.shape)
            return self.sample_transition(kx, x, None), (x[0], y[0])

        _, (xs, ys) = jax.lax.scan(one, x0, keys[1:])
        return xs, ys
