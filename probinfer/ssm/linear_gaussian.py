"""Linear-Gaussian state-space model with an exact Kalman filter.

``x_0 ~ N(m0, P0)``, ``x_t = F x_{t-1} + N(0, Q)``, ``y_t = H x_t + N(0, R)``. The Kalman
filter gives the exact log-likelihood and filtering moments that the SMC tests and the
particle-filter benchmark compare against; the Rauch–Tung–Striebel smoother gives the exact
smoothing moments that particle smoothers are tested against.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from probinfer._types import Array
from probinfer._validation import (as_float_array, check_finite, check_positive_int,
                                   check_spd)
from probinfer.ssm.base import Proposal, StateSpaceModel, _check_observations


class _GaussianNoise(NamedTuple):
    """A fixed covariance, pre-factorised for batched sampling and log densities."""

    chol: Array            # lower Cholesky factor L
    inv_chol_t: Array      # L^{-T}: z = diff @ L^{-T} is standard normal
    log_norm: Array        # -½ d log 2π - log det L

    @classmethod
    def from_cov(cls, cov):
        chol = jnp.linalg.cholesky(cov)
        d = cov.shape[0]
        inv = jax.scipy.linalg.solve_triangular(chol, jnp.eye(d, dtype=cov.dtype), lower=True)
        log_norm = -0.5 * d * math.log(2 * math.pi) - jnp.sum(jnp.log(jnp.diagonal(chol)))
        return cls(chol, inv.T, log_norm)

    def sample(self, key, mean):
        return mean + jax.random.normal(key, mean.shape, mean.dtype) @ self.chol.T

    def log_density(self, x, mean):
        z = (x - mean) @ self.inv_chol_t
        return self.log_norm - 0.5 * jnp.sum(z * z, axis=-1)


class KalmanResult(NamedTuple):
    log_likelihood: Array                # log p(y_{0:T-1})
    log_likelihood_increments: Array     # (T,) log p(y_t | y_{0:t-1})
    filtering_means: Array               # (T, d) E[x_t | y_{0:t}]
    filtering_covs: Array                # (T, d, d)


class KalmanSmootherResult(NamedTuple):
    smoothing_means: Array               # (T, d) E[x_t | y_{0:T-1}]
    smoothing_covs: Array                # (T, d, d)


class LinearGaussian(StateSpaceModel):
    """Linear-Gaussian SSM (time-homogeneous).

    Parameters
    ----------
    transition_matrix F (d, d), transition_cov Q (d, d), observation_matrix H (m, d),
    observation_cov R (m, m), initial_mean m0 (d,), initial_cov P0 (d, d).

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> ssm = pi.ssm.LinearGaussian.scalar(rho=0.9, sigma_x=1.0, sigma_y=0.5)
    >>> xs, ys = ssm.simulate(jax.random.key(0), 50)
    >>> res = pi.smc.run(jax.random.key(1), pi.ssm.bootstrap(ssm, ys), 1000)
    >>> exact = ssm.kalman_filter(ys).log_likelihood
    """

    def __init__(self, transition_matrix, transition_cov, observation_matrix, observation_cov,
                 initial_mean, initial_cov):
        f = as_float_array(transition_matrix, "transition_matrix", ndim=2)
        d = f.shape[0]
        f = as_float_array(f, "transition_matrix", shape=(d, d))
        q = as_float_array(transition_cov, "transition_cov", ndim=2, shape=(d, d))
        h = as_float_array(observation_matrix, "observation_matrix", ndim=2, shape=(None, d))
        m = h.shape[0]
        r = as_float_array(observation_cov, "observation_cov", ndim=2, shape=(m, m))
        m0 = as_float_array(initial_mean, "initial_mean", ndim=1, shape=(d,))
        p0 = as_float_array(initial_cov, "initial_cov", ndim=2, shape=(d, d))
        for arr, name in ((f, "transition_matrix"), (h, "observation_matrix"),
                          (m0, "initial_mean")):
            check_finite(arr, name)
        for arr, name in ((q, "transition_cov"), (r, "observation_cov"), (p0, "initial_cov")):
            check_spd(arr, name)
        self.F, self.Q, self.H, self.R, self.m0, self.P0 = f, q, h, r, m0, p0
        self.state_dim, self.obs_dim = d, m
        self._q_noise = _GaussianNoise.from_cov(q)
        self._r_noise = _GaussianNoise.from_cov(r)
        self._p0_noise = _GaussianNoise.from_cov(p0)

    @classmethod
    def scalar(cls, rho=0.9, sigma_x=1.0, sigma_y=0.2, initial_std=None):
        """The 1-D model ``x_t = rho x_{t-1} + sigma_x u_t``, ``y_t = x_t + sigma_y v_t``,
        started at its stationary law (as ``particles.state_space_models.LinearGauss``)."""
        if initial_std is None:
            if not abs(rho) < 1:
                raise ValueError("initial_std is required when |rho| >= 1 (no stationary law)")
            initial_std = sigma_x / math.sqrt(1 - rho ** 2)
        one = jnp.ones((1, 1))
        return cls(rho * one, sigma_x ** 2 * one, one, sigma_y ** 2 * one, jnp.zeros(1),
                   initial_std ** 2 * one)

    def sample_initial(self, key, num):
        mean = jnp.broadcast_to(self.m0, (num, self.state_dim))
        return self._p0_noise.sample(key, mean)

    def initial_log_density(self, x):
        return self._p0_noise.log_density(x, self.m0)

    def sample_transition(self, key, x_prev, t):
        return self._q_noise.sample(key, x_prev @ self.F.T)

    def transition_log_density(self, x_prev, x, t):
        return self._q_noise.log_density(x, x_prev @ self.F.T)

    def observation_log_density(self, x, y, t):
        return self._r_noise.log_density(y, x @ self.H.T)

    def simulate(self, key, num_steps: int):
        """Draw ``(states (T, d), observations (T, m))``."""
        num_steps = check_positive_int(num_steps, "num_steps")
        keys = jax.random.split(key, num_steps + 1)
        x0 = self.sample_initial(keys[0], 1)

        def one(x, k):
            kx, ky = jax.random.split(k)
            y = self._r_noise.sample(ky, x @ self.H.T)
            return self.sample_transition(kx, x, None), (x[0], y[0])

        _, (xs, ys) = jax.lax.scan(one, x0, keys[1:])
        return xs, ys

    def kalman_filter(self, observations) -> KalmanResult:
        """Exact filtering moments and log-likelihood of ``observations`` (T, m)."""
        ys = _check_observations(self, observations)
        eye = jnp.eye(self.state_dim, dtype=self.F.dtype)

        def update(mean, cov, y):
            s = self.H @ cov @ self.H.T + self.R
            gain = jnp.linalg.solve(s, self.H @ cov).T
            resid = y - self.H @ mean
            chol = jnp.linalg.cholesky(s)
            z = jax.scipy.linalg.solve_triangular(chol, resid, lower=True)
            log_lik = (-0.5 * z @ z - jnp.sum(jnp.log(jnp.diagonal(chol)))
                       - 0.5 * self.obs_dim * math.log(2 * math.pi))
            new_cov = (eye - gain @ self.H) @ cov
            return mean + gain @ resid, 0.5 * (new_cov + new_cov.T), log_lik

        def one(carry, y):
            mean, cov = carry
            mean, cov = self.F @ mean, self.F @ cov @ self.F.T + self.Q
            mean, cov, ll = update(mean, cov, y)
            return (mean, cov), (mean, cov, ll)

        m0, p0, ll0 = update(self.m0, self.P0, ys[0])
        _, (means, covs, lls) = jax.lax.scan(one, (m0, p0), ys[1:])
        means = jnp.concatenate([m0[None], means])
        covs = jnp.concatenate([p0[None], covs])
        lls = jnp.concatenate([ll0[None], lls])
        return KalmanResult(jnp.sum(lls), lls, means, covs)

    def kalman_smoother(self, observations) -> KalmanSmootherResult:
        """Exact smoothing moments ``p(x_t | y_{0:T-1})`` (Rauch, Tung & Striebel 1965).

        A backward pass over the Kalman filter's moments: with the gain
        ``G_t = P_t Fᵀ (F P_t Fᵀ + Q)⁻¹``, ``m^s_t = m_t + G_t (m^s_{t+1} - F m_t)`` and
        ``P^s_t = P_t + G_t (P^s_{t+1} - F P_t Fᵀ - Q) G_tᵀ``.

        Example
        -------
        >>> import jax, probinfer as pi
        >>> ssm = pi.ssm.LinearGaussian.scalar(rho=0.9, sigma_x=1.0, sigma_y=0.5)
        >>> _, ys = ssm.simulate(jax.random.key(0), 20)
        >>> ssm.kalman_smoother(ys).smoothing_means.shape
        (20, 1)
        """
        filtered = self.kalman_filter(observations)

        def back(carry, moments):
            mean_next, cov_next = carry
            mean, cov = moments
            predicted_cov = self.F @ cov @ self.F.T + self.Q
            gain = jnp.linalg.solve(predicted_cov, self.F @ cov).T
            mean = mean + gain @ (mean_next - self.F @ mean)
            cov = cov + gain @ (cov_next - predicted_cov) @ gain.T
            cov = 0.5 * (cov + cov.T)
            return (mean, cov), (mean, cov)

        last = (filtered.filtering_means[-1], filtered.filtering_covs[-1])
        _, (means, covs) = jax.lax.scan(
            back, last, (filtered.filtering_means[:-1], filtered.filtering_covs[:-1]),
            reverse=True)
        return KalmanSmootherResult(jnp.concatenate([means, last[0][None]]),
                                    jnp.concatenate([covs, last[1][None]]))

    def locally_optimal_proposal(self) -> "LinearGaussianOptimalProposal":
        """``q_t(x_t | x_{t-1}, y_t) = p(x_t | x_{t-1}, y_t)``, exact for this model."""
        return LinearGaussianOptimalProposal(self)


class LinearGaussianOptimalProposal(Proposal):
    """The locally optimal proposal of a :class:`LinearGaussian` SSM: with it the guided
    filter's potential ``p(y_t | x_{t-1})`` no longer depends on the proposed ``x_t``."""

    def __init__(self, ssm: LinearGaussian):
        self.ssm = ssm
        h_rinv = jnp.linalg.solve(ssm.R, ssm.H).T                  # Hᵀ R⁻¹
        q_inv = jnp.linalg.inv(ssm.Q)
        p0_inv = jnp.linalg.inv(ssm.P0)
        self._cov = jnp.linalg.inv(q_inv + h_rinv @ ssm.H)
        self._cov0 = jnp.linalg.inv(p0_inv + h_rinv @ ssm.H)
        self._prev_gain = self._cov @ q_inv @ ssm.F                 # acts on x_{t-1}
        self._obs_gain = self._cov @ h_rinv                         # acts on y_t
        self._mean0_base = self._cov0 @ p0_inv @ ssm.m0
        self._obs_gain0 = self._cov0 @ h_rinv
        self._noise = _GaussianNoise.from_cov(0.5 * (self._cov + self._cov.T))
        self._noise0 = _GaussianNoise.from_cov(0.5 * (self._cov0 + self._cov0.T))

    def _mean0(self, y):
        return self._mean0_base + self._obs_gain0 @ y

    def _mean(self, x_prev, y):
        return x_prev @ self._prev_gain.T + self._obs_gain @ y

    def sample_initial(self, key, y, num):
        return self._noise0.sample(key, jnp.broadcast_to(self._mean0(y),
                                                         (num, self.ssm.state_dim)))

    def initial_log_density(self, x, y):
        return self._noise0.log_density(x, self._mean0(y))

    def sample(self, key, x_prev, y, t):
        return self._noise.sample(key, self._mean(x_prev, y))

    def log_density(self, x_prev, x, y, t):
        return self._noise.log_density(x, self._mean(x_prev, y))
