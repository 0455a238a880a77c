"""Gaussian-process dynamics: a nonparametric prior over next year's stock.

Observed transitions ``(s_t, x_{t+1})`` (escapement ``s_t = x_t − h_t``; ``x_t`` when
unharvested) are modelled as ``x_{t+1} = g(s_t) + ε``, ``g ~ GP(m, k)``, ``ε ~ N(0, σ_n²)``
(Boettiger, Mangel & Munch 2015, eq. 2.6; additive noise on purpose: the GP need not have
the right noise structure). Known points such as ``(0, 0)`` (a closed population stays
extinct) are conditioned on without noise. Away from the data the posterior reverts to the
prior mean with the prior's variance: that is what keeps a GP-based policy away from stock
sizes nobody has observed.

Hyperparameters ``θ = (ℓ, amplitude, σ_n)`` are integrated over their posterior
``p(θ | data) ∝ p(θ) · N(y | m, K_θ + σ_n² I)`` with :func:`probinfer.smc.tempered` on a
:class:`~probinfer.Target` over ``log θ`` (the paper used random-walk Metropolis), or set to
their MAP value (``hyperparameters="map"``), or fixed by the user.

Engine: everything runs in JAX with dense Cholesky factors, one per hyperparameter draw.
That is the right tool for the data this problem has (tens to a few hundred transitions).
There is no gpytorch path: above a few thousand transitions use a sparse or structured GP
outside this module and wrap its predictive moments as a :class:`~probinfer.gpdp.Dynamics`.

References: Rasmussen & Williams (2006), *Gaussian Processes for Machine Learning*, §2.2
and §5.4; Munch, Kottas & Mangel (2005), "Bayesian nonparametric analysis of
stock-recruitment relationships", Can. J. Fish. Aquat. Sci.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr

from probinfer._types import Array, PRNGKey
from probinfer._validation import as_float_array, check_positive_int
from probinfer.gpdp.models import Dynamics, check_stock_data


def _se(r):
    return jnp.exp(-0.5 * r ** 2)


def _matern32(r):
    a = math.sqrt(3.0) * r
    return (1.0 + a) * jnp.exp(-a)


def _matern52(r):
    a = math.sqrt(5.0) * r
    return (1.0 + a + a ** 2 / 3.0) * jnp.exp(-a)


def _exponential(r):
    return jnp.exp(-r)


#: Stationary correlation functions of the scaled distance ``r = |x − x'| / ℓ``.
KERNELS = {"se": _se, "matern52": _matern52, "matern32": _matern32, "exponential": _exponential}


def kernel_matrix(kernel: str, a, b, lengthscale, amplitude):
    """``amplitude² · ρ(|a_i − b_j| / ℓ)`` for 1-D inputs ``a`` (n,), ``b`` (m,)."""
    r = jnp.abs(a[:, None] - b[None, :]) / lengthscale
    if kernel != "se":
        # |x| is not differentiable at 0; the Matérn forms are smooth there in r².
        r = jnp.sqrt(r ** 2 + 1e-30)
    return amplitude ** 2 * KERNELS[kernel](r)


class Hyperparameters(NamedTuple):
    """GP hyperparameters; each field has a leading draw axis (D,)."""

    lengthscale: Array
    amplitude: Array
    noise: Array   # observation-noise standard deviation σ_n


class GPPrior(NamedTuple):
    """Independent inverse-gamma priors ``(α, β)`` on ``ℓ`` and ``σ_n`` (the paper's
    choice) and a log-normal prior on the amplitude (``log a ~ N(log loc, scale²)``)."""

    lengthscale: tuple = (10.0, 10.0)
    noise: tuple = (5.0, 5.0)
    amplitude: tuple | None = None   # (loc, scale); None: loc = RMS of the outputs, scale 1


def _invgamma_logpdf_of_log(u, alpha, beta):
    # Density of u = log θ when θ ~ InvGamma(α, β): p(θ) θ.
    return alpha * jnp.log(beta) - jax.scipy.special.gammaln(alpha) - alpha * u - beta * jnp.exp(-u)


def _prior_target(prior: GPPrior, amplitude_loc, dtype):
    import probinfer as pi

    (a_l, b_l), (a_n, b_n) = prior.lengthscale, prior.noise
    loc, scale = prior.amplitude if prior.amplitude is not None else (amplitude_loc, 1.0)
    log_loc = math.log(loc)

    def log_density(u):
        return (_invgamma_logpdf_of_log(u[0], a_l, b_l)
                + jax.scipy.stats.norm.logpdf(u[1], log_loc, scale)
                + _invgamma_logpdf_of_log(u[2], a_n, b_n))

    def sample(key, n):
        k1, k2, k3 = jax.random.split(key, 3)
        log_l = jnp.log(b_l) - jnp.log(jax.random.gamma(k1, a_l, (n,), dtype))
        log_a = log_loc + scale * jax.random.normal(k2, (n,), dtype)
        log_n = jnp.log(b_n) - jnp.log(jax.random.gamma(k3, a_n, (n,), dtype))
        return jnp.stack([log_l, log_a, log_n], axis=1)

    return pi.from_logdensity(log_density, sample)


@jax.tree_util.register_pytree_node_class
class GPDynamics(Dynamics):
    """GP posterior over the stock map, averaged over hyperparameter draws.

    Build it with :meth:`fit`. ``next_state_cdf`` is the posterior predictive of the next
    stock: an equally weighted mixture over draws of ``N(μ_d(s), v_d(s) + σ_{n,d}²)``,
    with negative values meaning extinction (mass below the lowest grid bin).
    """

    def __init__(self, inputs, outputs, noisy, hyperparameters: Hyperparameters,
                 kernel: str = "se", mean=0.0, data_range=None):
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {sorted(KERNELS)}, got {kernel!r}")
        self.inputs = inputs
        self.outputs = outputs
        self.noisy = noisy
        self.hyperparameters = hyperparameters
        self.kernel = kernel
        self.prior_mean = jnp.asarray(mean, inputs.dtype)
        self.data_range = data_range
        self._chol, self._alpha = _factors(self.inputs, self.outputs, self.noisy,
                                           self.prior_mean, hyperparameters, kernel)

    def tree_flatten(self):
        children = (self.inputs, self.outputs, self.noisy, self.hyperparameters,
                    self.prior_mean, self._chol, self._alpha)
        return children, (self.kernel, self.data_range)

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        (obj.inputs, obj.outputs, obj.noisy, obj.hyperparameters, obj.prior_mean, obj._chol,
         obj._alpha) = children
        obj.kernel, obj.data_range = aux
        return obj

    def __repr__(self):
        h = self.hyperparameters
        return (f"GPDynamics(kernel={self.kernel!r}, {self.inputs.shape[0]} points, "
                f"{h.lengthscale.shape[0]} draws, median lengthscale "
                f"{float(jnp.median(h.lengthscale)):.3g}, amplitude "
                f"{float(jnp.median(h.amplitude)):.3g}, noise {float(jnp.median(h.noise)):.3g})")

    # --- linear algebra per hyperparameter draw ---------------------------------------
    def _moments_one_draw(self, h, chol, alpha, s):
        k_s = kernel_matrix(self.kernel, jnp.atleast_1d(s), self.inputs, h.lengthscale,
                            h.amplitude)[0]
        mean = self.prior_mean + k_s @ alpha
        v = jax.scipy.linalg.solve_triangular(chol, k_s, lower=True)
        var = jnp.maximum(h.amplitude ** 2 - v @ v, 0.0)
        return mean, var

    def draw_moments(self, s) -> tuple[Array, Array]:
        """Latent ``g(s)`` posterior mean and variance under each draw: two (D,) arrays."""
        s = jnp.asarray(s, self.inputs.dtype)
        return jax.vmap(self._moments_one_draw, in_axes=(0, 0, 0, None))(
            self.hyperparameters, self._chol, self._alpha, s)

    def predict(self, s) -> tuple[Array, Array]:
        """Posterior mean and variance of the latent map ``g`` at points ``s`` (any shape),
        averaged over hyperparameter draws (law of total variance)."""
        s = jnp.asarray(s, self.inputs.dtype)
        mean, var = _predict(self, s.reshape(-1))
        return mean.reshape(s.shape), var.reshape(s.shape)

    def mean(self, s):
        means, _ = self.draw_moments(s)
        return jnp.mean(means)

    def growth(self, s):
        """Posterior mean of the map (for plots)."""
        return self.mean(s)

    def next_state_cdf(self, s, y):
        means, variances = self.draw_moments(s)
        sd = jnp.sqrt(variances + self.hyperparameters.noise ** 2)
        return jnp.mean(ndtr((y - means) / sd))

    # --- fitting --------------------------------------------------------------------
    @staticmethod
    def log_marginal_likelihood(inputs, outputs, noisy, log_hyper, kernel="se", mean=0.0):
        """``log N(outputs | mean, K + diag(σ_n² on noisy points))`` at ``log θ`` (3,)."""
        h = Hyperparameters(*jnp.exp(log_hyper))
        chol = jnp.linalg.cholesky(_covariance(inputs, noisy, h, kernel))
        resid = outputs - mean
        z = jax.scipy.linalg.solve_triangular(chol, resid, lower=True)
        value = (-0.5 * z @ z - jnp.sum(jnp.log(jnp.diag(chol)))
                 - 0.5 * resid.shape[0] * math.log(2 * math.pi))
        return jnp.where(jnp.isfinite(value), value, -jnp.inf)

    @classmethod
    def fit(cls, x_t, x_next, *, harvest=None, kernel: str = "se", mean=0.0,
            known_points=((0.0, 0.0),), hyperparameters="posterior", prior: GPPrior | None = None,
            key: PRNGKey | None = None, num_particles: int = 1000, max_draws: int = 200,
            num_starts: int = 10, progress_bar: bool = False) -> "GPDynamics":
        """GP regression of ``x_next`` on ``x_t − harvest`` with hyperparameter uncertainty.

        Parameters
        ----------
        x_t, x_next : (n,) observed stocks and the stocks one year later (≥ 0, no NaN).
        harvest : (n,) catches taken from ``x_t`` (default none: unharvested data).
        kernel : 'se' (squared exponential, the paper's), 'matern52', 'matern32',
            'exponential'.
        mean : constant prior mean (the paper's 0: far from data the GP predicts collapse
            with wide uncertainty).
        known_points : ``(input, output)`` pairs conditioned on without noise; default
            ``((0, 0),)``; ``()`` for none.
        hyperparameters : 'posterior' (tempered SMC, needs ``key``), 'map' (L-BFGS from
            ``num_starts`` prior draws, needs ``key``), or a dict with ``lengthscale``,
            ``amplitude``, ``noise`` (scalars or (D,) arrays of draws) to fix them.
        prior : :class:`GPPrior` (default: the paper's inverse-gamma priors on ``ℓ`` and
            ``σ_n``; log-normal amplitude around the outputs' RMS).
        num_particles : SMC particles for 'posterior'.
        max_draws : hyperparameter draws kept for prediction (the predictive averages them).

        Example
        -------
        >>> import jax, jax.numpy as jnp, probinfer as pi
        >>> x = jnp.array([5.5, 6.1, 6.9, 7.6, 8.0, 7.8, 8.1])
        >>> gp = pi.gpdp.GPDynamics.fit(x[:-1], x[1:], hyperparameters="map",
        ...                             key=jax.random.key(0))
        >>> mean, var = gp.predict(jnp.array([0.0, 3.0, 7.0]))
        >>> round(float(mean[0]), 2), bool(var[2] < var[1])   # through (0, 0); sure near data
        (0.0, True)
        """
        x_t, x_next = check_stock_data(x_t, x_next, positive=False)
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {sorted(KERNELS)}, got {kernel!r}")
        inputs = x_t
        if harvest is not None:
            harvest = as_float_array(harvest, "harvest", shape=x_t.shape)
            if not bool(jnp.all(jnp.isfinite(harvest))) or bool(jnp.any(harvest < 0)):
                raise ValueError("harvest must be finite and non-negative")
            if bool(jnp.any(harvest > x_t)):
                raise ValueError("harvest must not exceed the stock x_t")
            inputs = x_t - harvest
        known = np.asarray(known_points, dtype=np.float64).reshape(-1, 2) if len(
            known_points) else np.zeros((0, 2))
        if not np.isfinite(known).all():
            raise ValueError("known_points must be finite (input, output) pairs")
        all_inputs = jnp.concatenate([jnp.asarray(known[:, 0], x_t.dtype), inputs])
        all_outputs = jnp.concatenate([jnp.asarray(known[:, 1], x_t.dtype), x_next])
        noisy = jnp.concatenate([jnp.zeros(known.shape[0], bool), jnp.ones(x_t.shape[0], bool)])
        mean = jnp.asarray(mean, x_t.dtype)
        data_range = (float(min(np.min(np.asarray(inputs)), np.min(np.asarray(x_next)))),
                      float(max(np.max(np.asarray(inputs)), np.max(np.asarray(x_next)))))

        if isinstance(hyperparameters, dict):
            missing = {"lengthscale", "amplitude", "noise"} - set(hyperparameters)
            if missing:
                raise ValueError(f"hyperparameters dict is missing {sorted(missing)}")
            fields = [jnp.atleast_1d(jnp.asarray(hyperparameters[n], x_t.dtype))
                      for n in Hyperparameters._fields]
            size = max(f.shape[0] for f in fields)
            fields = [jnp.broadcast_to(f, (size,)) for f in fields]
            if not all(bool(jnp.all(jnp.isfinite(f) & (f > 0))) for f in fields):
                raise ValueError("hyperparameters must be finite and > 0")
            return cls(all_inputs, all_outputs, noisy, Hyperparameters(*fields), kernel, mean,
                       data_range)
        if hyperparameters not in ("posterior", "map"):
            raise ValueError("hyperparameters must be 'posterior', 'map' or a dict of values, "
                             f"got {hyperparameters!r}")
        if key is None:
            raise ValueError(f"hyperparameters={hyperparameters!r} needs a PRNG key")
        prior = GPPrior() if prior is None else prior
        if not isinstance(prior, GPPrior):
            raise TypeError("prior must be a probinfer.gpdp.GPPrior")
        rms = float(jnp.sqrt(jnp.mean((x_next - mean) ** 2)))
        prior_target = _prior_target(prior, max(rms, 1e-3), x_t.dtype)

        def log_likelihood(u):
            return cls.log_marginal_likelihood(all_inputs, all_outputs, noisy, u, kernel, mean)

        if hyperparameters == "posterior":
            import probinfer as pi
            num_particles = check_positive_int(num_particles, "num_particles", minimum=2)
            max_draws = check_positive_int(max_draws, "max_draws")
            res = pi.smc.tempered(key, prior_target, log_likelihood, num_particles,
                                  progress_bar=progress_bar)
            log_hyper = res.samples[:max_draws]
        else:
            log_hyper = _map_estimate(key, prior_target, log_likelihood, num_starts)[None]
        hyper = Hyperparameters(*jnp.exp(log_hyper).T)
        return cls(all_inputs, all_outputs, noisy, hyper, kernel, mean, data_range)


def _covariance(inputs, noisy, h, kernel):
    k = kernel_matrix(kernel, inputs, inputs, h.lengthscale, h.amplitude)
    # Known points get a jitter relative to the prior variance, data get σ_n².
    return k + jnp.diag(jnp.where(noisy, h.noise ** 2, 1e-6 * h.amplitude ** 2))


@partial(jax.jit, static_argnames="kernel")
def _factors(inputs, outputs, noisy, mean, hyperparameters, kernel):
    def one(h):
        chol = jnp.linalg.cholesky(_covariance(inputs, noisy, h, kernel))
        return chol, jax.scipy.linalg.cho_solve((chol, True), outputs - mean)
    return jax.vmap(one)(hyperparameters)


@jax.jit
def _predict(model, s):
    means, variances = jax.vmap(model.draw_moments)(s)
    return jnp.mean(means, axis=1), jnp.mean(variances, axis=1) + jnp.var(means, axis=1)


def _map_estimate(key, prior_target, log_likelihood, num_starts):
    from scipy.optimize import minimize

    num_starts = check_positive_int(num_starts, "num_starts")

    def neg_log_posterior(u):
        return -(prior_target.log_density(u) + log_likelihood(u))

    value_and_grad = jax.jit(jax.value_and_grad(neg_log_posterior))
    starts = np.asarray(prior_target.sample(key, num_starts))

    def objective(u):
        value, grad = value_and_grad(jnp.asarray(u, starts.dtype))
        if not np.isfinite(float(value)):
            return 1e30, np.zeros_like(u)
        return float(value), np.asarray(grad, np.float64)

    best = None
    for start in starts:
        res = minimize(objective, np.asarray(start, np.float64), jac=True, method="L-BFGS-B")
        if best is None or res.fun < best.fun:
            best = res
    if best.fun >= 1e29:
        raise RuntimeError("GP MAP: no start gave a finite posterior density")
    return jnp.asarray(best.x, starts.dtype)


__all__ = ["GPDynamics", "GPPrior", "Hyperparameters", "KERNELS", "kernel_matrix"]
