"""Stock–recruitment models with lognormal process noise: Ricker, Myers and Ricker–Allee.

Each model maps the escapement ``s = x − h`` (stock left after the harvest ``h``) to the
next stock ``X' = Z · f(s)``, ``log Z ~ N(0, σ²)`` (Reed 1979). The three growth curves are
those of Boettiger, Mangel & Munch (2015):

* Ricker: ``f(s) = s · exp(r (1 − s/K))`` — no tipping point;
* Myers: ``f(s) = r s^θ / (1 + s^θ / K)`` — an Allee threshold when ``θ > 1``;
* Allee ("Allen" in the paper): ``f(s) = s · exp(r (1 − s/K)(s − C)/K)`` — the stock
  collapses from below the threshold ``C``.

A model is a :class:`Dynamics`: its one-point ``next_state_cdf(s, y) = P(X' ≤ y | s)`` is
all that :func:`probinfer.gpdp.solve` needs. Parameters can be fitted by maximum
likelihood (:meth:`ParametricModel.fit`, with AIC/BIC) or integrated over their posterior
(:meth:`ParametricModel.fit_posterior`, tempered SMC with the paper's uniform priors),
which gives a :class:`ParameterPosterior`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr
from jax.scipy.stats import norm

from probinfer._types import Array, PRNGKey
from probinfer._validation import as_float_array, check_positive_int, is_concrete


class Trajectory(NamedTuple):
    """A simulated stock path: ``stock[t]`` is the stock at the start of year ``t``,
    ``harvest[t]`` the catch taken from it (0 without a policy)."""

    stock: Array
    harvest: Array


class Dynamics:
    """A model of next year's stock given this year's escapement.

    Subclasses implement :meth:`next_state_cdf` for ONE escapement and ONE value; the
    dynamic-programming code ``vmap``s it to build transition tensors.
    """

    #: ``(min, max)`` of the training inputs and outputs when fitted to data, else None;
    #: :func:`~probinfer.gpdp.solve` checks that the state grid covers it.
    data_range: tuple | None = None

    def next_state_cdf(self, s: Array, y: Array) -> Array:
        """``P(X' ≤ y | escapement s)`` for scalars ``s ≥ 0`` and ``y``."""
        raise NotImplementedError

    def mean(self, s: Array) -> Array:
        """Expected next stock ``E[X' | s]`` at one escapement."""
        raise NotImplementedError


def check_stock_data(x_t, x_next, positive: bool):
    """Validate a pair of transition arrays at the public boundary."""
    x_t = as_float_array(x_t, "x_t", ndim=1)
    x_next = as_float_array(x_next, "x_next", ndim=1)
    if x_t.shape != x_next.shape:
        raise ValueError(f"x_t and x_next must have the same shape, got {x_t.shape} and "
                         f"{x_next.shape}")
    if x_t.shape[0] < 2:
        raise ValueError(f"need at least 2 transitions, got {x_t.shape[0]}")
    for name, arr in (("x_t", x_t), ("x_next", x_next)):
        values = np.asarray(arr)
        if np.isnan(values).any():
            raise ValueError(f"{name} contains NaN at index {int(np.argmax(np.isnan(values)))}")
        if not np.isfinite(values).all():
            raise ValueError(f"{name} must be finite")
        if positive and (values <= 0).any():
            bad = int(np.argmax(values <= 0))
            raise ValueError(
                f"{name} must be > 0 for a model with lognormal noise (it works in log space); "
                f"{name}[{bad}] = {values[bad]}. Drop zero stocks or use GPDynamics, which "
                "takes (0, 0) as a known point")
        if (values < 0).any():
            raise ValueError(f"{name} must be non-negative stock sizes")
    return x_t, x_next


@jax.tree_util.register_pytree_node_class
class ParametricModel(Dynamics):
    """Base of the parametric models: ``X' = Z f(s; θ)`` with ``log Z ~ N(0, σ²)``.

    Subclasses set ``param_names`` (growth parameters, then ``sigma`` last),
    ``prior_bounds`` (the paper's uniform priors) and implement :meth:`log_growth`.
    Instances are pytrees of their parameters, so they pass through ``jit``/``vmap``.
    """

    param_names: tuple = ()
    prior_bounds: dict = {}

    def __init__(self, *params, data_range=None):
        if len(params) != len(self.param_names):
            raise TypeError(f"{type(self).__name__} takes {len(self.param_names)} parameters "
                            f"{self.param_names}, got {len(params)}")
        values = []
        for name, value in zip(self.param_names, params):
            arr = jnp.asarray(value, dtype=jnp.result_type(float))
            if arr.ndim != 0:
                raise ValueError(f"{name} must be a scalar, got shape {arr.shape}")
            if is_concrete(arr) and not (np.isfinite(float(arr)) and float(arr) > 0):
                raise ValueError(f"{name} must be finite and > 0, got {float(arr)}")
            values.append(arr)
        self.params = tuple(values)
        self.data_range = data_range

    def __getattr__(self, name):
        names = type(self).param_names
        if name in names:
            return self.params[names.index(name)]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __repr__(self):
        inner = ", ".join(f"{n}={float(v):.4g}" if is_concrete(v) else n
                          for n, v in zip(self.param_names, self.params))
        return f"{type(self).__name__}({inner})"

    def tree_flatten(self):
        return self.params, self.data_range

    @classmethod
    def tree_unflatten(cls, data_range, params):
        obj = object.__new__(cls)
        obj.params = tuple(params)
        obj.data_range = data_range
        return obj

    @property
    def sigma(self) -> Array:
        return self.params[-1]

    # --- the growth curve -------------------------------------------------------------
    def log_growth(self, s: Array) -> Array:
        """``log f(s)`` for ``s > 0`` (one point)."""
        raise NotImplementedError

    def growth(self, s: Array) -> Array:
        """The deterministic map ``f(s)``, with ``f(0) = 0``."""
        s = jnp.asarray(s)
        positive = s > 0
        return jnp.where(positive, jnp.exp(self.log_growth(jnp.where(positive, s, 1.0))), 0.0)

    def mean(self, s):
        # E[Z] = exp(σ²/2) for lognormal noise with median one.
        return self.growth(s) * jnp.exp(0.5 * self.sigma ** 2)

    def next_state_cdf(self, s, y):
        positive = s > 0
        log_f = self.log_growth(jnp.where(positive, s, 1.0))
        safe_y = jnp.where(y > 0, y, 1.0)
        lognormal = jnp.where(y > 0, ndtr((jnp.log(safe_y) - log_f) / self.sigma), 0.0)
        # Zero escapement: the stock stays extinct (a point mass at 0).
        return jnp.where(positive, lognormal, jnp.where(y >= 0, 1.0, 0.0))

    # --- likelihood, fitting and model selection --------------------------------------
    def _log_likelihood(self, x_t, x_next):
        log_f = jax.vmap(self.log_growth)(x_t)
        return jnp.sum(norm.logpdf(jnp.log(x_next), log_f, self.sigma) - jnp.log(x_next))

    def log_likelihood(self, x_t, x_next) -> Array:
        """Log-likelihood of observed transitions ``x_t → x_next`` (both > 0)."""
        x_t, x_next = check_stock_data(x_t, x_next, positive=True)
        return self._log_likelihood(x_t, x_next)

    @property
    def num_params(self) -> int:
        """Number of fitted parameters, σ included."""
        return len(self.param_names)

    def aic(self, x_t, x_next) -> float:
        """Akaike information criterion ``2k − 2 log L``."""
        return 2 * self.num_params - 2 * float(self.log_likelihood(x_t, x_next))

    def bic(self, x_t, x_next) -> float:
        """Bayesian information criterion ``k log n − 2 log L``."""
        n = np.asarray(x_t).shape[0]
        return self.num_params * math.log(n) - 2 * float(self.log_likelihood(x_t, x_next))

    @classmethod
    def _from_log_params(cls, log_params):
        return cls.tree_unflatten(None, tuple(jnp.exp(log_params)))

    @classmethod
    def fit(cls, x_t, x_next, *, num_starts: int = 20, seed: int = 0):
        """Maximum-likelihood fit to transitions ``x_t → x_next`` (all > 0).

        σ is profiled out (``σ̂² = mean squared log-residual``); the growth parameters are
        optimised in log space by L-BFGS-B from ``num_starts`` starting points drawn
        log-uniformly within the paper's prior bounds, keeping the best.

        Example
        -------
        >>> import jax, probinfer as pi
        >>> truth = pi.gpdp.Ricker(1.0, 8.0, 0.05)
        >>> x = truth.simulate(jax.random.key(0), 3.0, 40).stock
        >>> fit = pi.gpdp.Ricker.fit(x[:-1], x[1:])
        >>> abs(float(fit.K) - 8.0) < 1.0
        True
        """
        from scipy.optimize import minimize

        x_t, x_next = check_stock_data(x_t, x_next, positive=True)
        num_starts = check_positive_int(num_starts, "num_starts")
        log_y = jnp.log(x_next)

        def profile(log_theta):
            model = cls._from_log_params(jnp.concatenate([log_theta, jnp.zeros(1)]))
            resid = log_y - jax.vmap(model.log_growth)(x_t)
            return 0.5 * x_t.shape[0] * jnp.log(jnp.mean(resid ** 2))

        value_and_grad = jax.jit(jax.value_and_grad(profile))

        def objective(theta):
            value, grad = value_and_grad(jnp.asarray(theta, log_y.dtype))
            value = float(value)
            if not np.isfinite(value):
                return 1e30, np.zeros_like(theta)
            return value, np.asarray(grad, np.float64)

        rng = np.random.default_rng(seed)
        lows = np.log([cls.prior_bounds[n][0] for n in cls.param_names[:-1]])
        highs = np.log([cls.prior_bounds[n][1] for n in cls.param_names[:-1]])
        best = None
        for _ in range(num_starts):
            start = rng.uniform(lows, highs)
            res = minimize(objective, start, jac=True, method="L-BFGS-B",
                           bounds=list(zip(lows - 3.0, highs + 3.0)))
            if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
                best = res
        if best is None or best.fun >= 1e29:
            raise RuntimeError(f"{cls.__name__}.fit: no start gave a finite likelihood")
        theta = jnp.asarray(best.x, log_y.dtype)
        model = cls._from_log_params(jnp.concatenate([theta, jnp.zeros(1)]))
        resid = log_y - jax.vmap(model.log_growth)(x_t)
        sigma = jnp.sqrt(jnp.mean(resid ** 2))
        params = tuple(float(p) for p in jnp.exp(theta)) + (float(sigma),)
        return cls(*params, data_range=_data_range(x_t, x_next))

    @classmethod
    def fit_posterior(cls, key: PRNGKey, x_t, x_next, *, num_particles: int = 2000,
                      bounds: dict | None = None, max_draws: int = 500,
                      progress_bar: bool = False) -> "ParameterPosterior":
        """Posterior over all parameters under independent uniform priors, by tempered SMC.

        The priors are the paper's (``cls.prior_bounds``, overridable by ``bounds``); the
        sampler is :func:`probinfer.smc.tempered` on a box prior written as a
        :class:`~probinfer.Target` over logit-transformed parameters. Returns a
        :class:`ParameterPosterior` whose transitions average over ``max_draws`` draws.
        """
        import probinfer as pi

        x_t, x_next = check_stock_data(x_t, x_next, positive=True)
        bounds = dict(cls.prior_bounds, **(bounds or {}))
        unknown = set(bounds) - set(cls.param_names)
        if unknown:
            raise ValueError(f"bounds has unknown parameter(s) {sorted(unknown)}; "
                             f"{cls.__name__} has {cls.param_names}")
        low = jnp.asarray([bounds[n][0] for n in cls.param_names], dtype=x_t.dtype)
        high = jnp.asarray([bounds[n][1] for n in cls.param_names], dtype=x_t.dtype)
        if not bool(jnp.all((low > 0) & (high > low))):
            raise ValueError("bounds must satisfy 0 < low < high for every parameter")
        dim = len(cls.param_names)

        def to_params(u):
            return low + (high - low) * jax.nn.sigmoid(u)

        def log_prior(u):
            # Uniform on the box, pushed through the logit map: the Jacobian of sigmoid.
            return jnp.sum(jax.nn.log_sigmoid(u) + jax.nn.log_sigmoid(-u))

        def sample_prior(k, n):
            return jax.scipy.special.logit(jax.random.uniform(k, (n, dim), x_t.dtype,
                                                              1e-6, 1 - 1e-6))

        def log_likelihood(u):
            model = cls.tree_unflatten(None, tuple(to_params(u)))
            return model._log_likelihood(x_t, x_next)

        prior = pi.from_logdensity(log_prior, sample_prior)
        res = pi.smc.tempered(key, prior, log_likelihood, num_particles,
                              progress_bar=progress_bar)
        draws = jax.vmap(to_params)(res.samples)
        return ParameterPosterior(cls, draws[:max_draws], data_range=_data_range(x_t, x_next))

    # --- simulation -------------------------------------------------------------------
    def simulate(self, key: PRNGKey, x0, T: int, policy=None) -> Trajectory:
        """Simulate ``T`` years from stock ``x0``, harvesting by ``policy`` if given.

        Year ``t``: observe ``x_t``, catch ``h_t = min(policy.harvest(x_t), x_t)``, then
        ``x_{t+1} = Z_t f(x_t − h_t)``. Returns the ``T`` stocks ``x_0 … x_{T−1}`` and the
        catches.
        """
        T = check_positive_int(T, "T")
        x0 = jnp.asarray(x0, dtype=jnp.result_type(float))
        if is_concrete(x0) and not (x0.ndim == 0 and float(x0) >= 0):
            raise ValueError(f"x0 must be a non-negative scalar stock, got {x0}")
        noise = jnp.exp(self.sigma * jax.random.normal(key, (T,), x0.dtype))
        return simulate_with_noise(self, noise, x0, policy)


def simulate_with_noise(model, noise, x0, policy=None) -> Trajectory:
    """Managed stock path driven by given multiplicative noise ``noise`` (shape ``(T,)``).

    Used for common random numbers: every policy sees the same ``noise``.
    """
    def year(x, z):
        h = jnp.zeros_like(x) if policy is None else jnp.minimum(policy.harvest(x), x)
        return z * model.growth(x - h), (x, h)

    _, (stock, harvest) = jax.lax.scan(year, x0, noise)
    return Trajectory(stock, harvest)


def _data_range(x_t, x_next):
    values = np.concatenate([np.asarray(x_t), np.asarray(x_next)])
    return float(values.min()), float(values.max())


@jax.tree_util.register_pytree_node_class
class Ricker(ParametricModel):
    """Ricker map ``f(s) = s exp(r (1 − s/K))`` with lognormal noise ``σ``.

    Example
    -------
    >>> import probinfer as pi
    >>> m = pi.gpdp.Ricker(r=1.0, K=8.0, sigma=0.05)
    >>> round(float(m.growth(8.0)), 4)
    8.0
    """

    param_names = ("r", "K", "sigma")
    prior_bounds = {"r": (0.01, 20.0), "K": (0.01, 40.0), "sigma": (1e-6, 100.0)}

    def __init__(self, r, K, sigma, *, data_range=None):
        super().__init__(r, K, sigma, data_range=data_range)

    def log_growth(self, s):
        r, K, _ = self.params
        return jnp.log(s) + r * (1.0 - s / K)


@jax.tree_util.register_pytree_node_class
class Myers(ParametricModel):
    """Myers et al. (1995) map ``f(s) = r s^θ / (1 + s^θ / K)`` with lognormal noise ``σ``.

    ``θ = 1`` is Beverton–Holt; ``θ > 1`` gives an Allee threshold.
    """

    param_names = ("r", "theta", "K", "sigma")
    prior_bounds = {"r": (1e-4, 10.0), "theta": (1e-4, 10.0), "K": (1e-4, 40.0),
                    "sigma": (1e-6, 100.0)}

    def __init__(self, r, theta, K, sigma, *, data_range=None):
        super().__init__(r, theta, K, sigma, data_range=data_range)

    def log_growth(self, s):
        r, theta, K, _ = self.params
        log_s_theta = theta * jnp.log(s)
        return jnp.log(r) + log_s_theta - jnp.logaddexp(0.0, log_s_theta - jnp.log(K))


@jax.tree_util.register_pytree_node_class
class Allee(ParametricModel):
    """Ricker map with an Allee threshold: ``f(s) = s exp(r (1 − s/K)(s − C)/K)``.

    Below ``C`` the stock declines to extinction: the tipping point of Boettiger, Mangel &
    Munch (2015), who call it the "Allen" model and use ``r = 2, K = 8, C = 5, σ = 0.05``
    as the truth.
    """

    param_names = ("r", "K", "C", "sigma")
    prior_bounds = {"r": (0.01, 6.0), "K": (0.01, 20.0), "C": (0.01, 20.0),
                    "sigma": (1e-6, 100.0)}

    def __init__(self, r, K, C, sigma, *, data_range=None):
        super().__init__(r, K, C, sigma, data_range=data_range)

    def log_growth(self, s):
        r, K, C, _ = self.params
        return jnp.log(s) + r * (1.0 - s / K) * (s - C) / K


@jax.tree_util.register_pytree_node_class
class ParameterPosterior(Dynamics):
    """A parametric model averaged over posterior draws of its parameters.

    ``next_state_cdf`` is the posterior predictive: the mean over draws of each draw's
    lognormal CDF (the paper's "parameter uncertainty SDP").
    """

    def __init__(self, model_class, draws, data_range=None):
        if not (isinstance(model_class, type) and issubclass(model_class, ParametricModel)):
            raise TypeError("model_class must be a ParametricModel subclass")
        draws = as_float_array(draws, "draws", ndim=2,
                               shape=(None, len(model_class.param_names)))
        self.model_class = model_class
        self.draws = draws
        self.data_range = data_range

    def tree_flatten(self):
        return (self.draws,), (self.model_class, self.data_range)

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        obj.draws, = children
        obj.model_class, obj.data_range = aux
        return obj

    def __repr__(self):
        return f"ParameterPosterior({self.model_class.__name__}, {self.draws.shape[0]} draws)"

    def _models(self):
        return self.model_class.tree_unflatten(None, tuple(self.draws.T))

    def next_state_cdf(self, s, y):
        return jnp.mean(jax.vmap(lambda m: m.next_state_cdf(s, y))(self._models()))

    def mean(self, s):
        return jnp.mean(jax.vmap(lambda m: m.mean(s))(self._models()))

    def growth(self, s):
        """Posterior mean of the deterministic map (used for plots)."""
        return jnp.mean(jax.vmap(lambda m: m.growth(s))(self._models()))

    def posterior_mean(self) -> ParametricModel:
        """The model at the posterior mean of the parameters."""
        return self.model_class(*[float(v) for v in jnp.mean(self.draws, axis=0)])


__all__ = ["Dynamics", "ParametricModel", "Ricker", "Myers", "Allee", "ParameterPosterior",
           "Trajectory", "simulate_with_noise"]
