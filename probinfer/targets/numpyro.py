"""NumPyro models as targets in unconstrained space.

A NumPyro model with continuous latent sites defines a posterior over constrained values
(positive scales, simplices, intervals, ...). Samplers want an unconstrained Euclidean
space, so every latent site ``z`` is written as ``z = T(u)`` with ``T = biject_to(support)``
and the density of ``u`` picks up ``log |det dT/du|``. The flat vector ``u`` of all sites
(ravelled in sorted site-name order) is the point a :class:`~probinfer.Target` sees.

NumPyro itself reports the *potential energy* ``-(log joint + log Jacobian)``; this adapter
computes log densities in the positive sense directly from the model trace, and splits the
joint into

* the prior ``log p(u) = Σ_latent log p(z_site) + log |det J|`` (a normalised density of
  ``u``, with exact draws), and
* the log-likelihood ``Σ_observed log p(y_site | z)`` plus every ``numpyro.factor`` term,

so that ``prior.log_density(u) + log_likelihood(u)`` equals ``-potential_energy(u)``.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from probinfer._types import Array, PRNGKey
from probinfer._validation import check_positive_int
from probinfer.targets.base import LogDensityTarget, Target


def _numpyro():
    import numpyro
    from numpyro import handlers
    from numpyro.distributions.transforms import biject_to
    from numpyro.distributions.util import sum_rightmost
    from numpyro.infer.util import compute_log_probs
    return numpyro, handlers, biject_to, sum_rightmost, compute_log_probs


def _is_latent(site) -> bool:
    return site["type"] == "sample" and not site["is_observed"]


class _NumPyroPrior(Target):
    """The prior of a :class:`NumPyroModel` as a density of the unconstrained vector ``u``."""

    def __init__(self, model: "NumPyroModel"):
        self._model = model

    def log_density(self, x) -> Array:
        return self._model.log_prior_and_likelihood(x)[0]

    def sample(self, key: PRNGKey, num_samples: int) -> Array:
        check_positive_int(num_samples, "num_samples")
        return jax.vmap(self._model._draw_unconstrained)(jax.random.split(key, num_samples))


class NumPyroModel:
    """A NumPyro model with its data, as targets over the flat unconstrained vector ``u``.

    Built by :func:`from_numpyro`; see there for the attributes.
    """

    def __init__(self, model: Callable, args: tuple, kwargs: dict, key: PRNGKey):
        _, handlers, biject_to, _, _ = _numpyro()
        self.model = model
        self.args = args
        self.kwargs = kwargs
        try:
            trace = handlers.trace(handlers.seed(model, key)).get_trace(*args, **kwargs)
        except Exception as err:
            raise ValueError(
                f"from_numpyro could not trace the model with the given arguments: "
                f"{type(err).__name__}: {err}") from err
        latent = {name: site for name, site in trace.items() if _is_latent(site)}
        discrete = [name for name, site in latent.items() if site["fn"].support.is_discrete]
        if discrete:
            raise ValueError(f"from_numpyro supports continuous latent sites only; the model "
                             f"has discrete latent site(s) {discrete}")
        if not latent:
            raise ValueError("the model has no latent sample sites: every site is observed, "
                             "so there is nothing to infer")
        # `param` sites are held at their initial values: they are not random.
        self._params = {name: site["value"] for name, site in trace.items()
                        if site["type"] in ("param", "mutable")}
        prototype = {name: biject_to(site["fn"].support).inv(site["value"])
                     for name, site in latent.items()}
        flat, self._unravel = ravel_pytree(prototype)
        self.dim = int(flat.shape[0])
        self.site_names = tuple(sorted(latent))
        self.deterministic_names = tuple(name for name, site in trace.items()
                                         if site["type"] == "deterministic")
        self.prior = _NumPyroPrior(self)
        self.target = LogDensityTarget(self.log_density)

    def _with_params(self):
        _, handlers, _, _, _ = _numpyro()
        return handlers.substitute(self.model, data=self._params) if self._params else self.model

    def unravel(self, x) -> dict:
        """The flat unconstrained vector as ``{site: unconstrained value}``."""
        return self._unravel(x)

    def _constrained_trace(self, x, log_jacobians: dict | None = None):
        _, handlers, biject_to, sum_rightmost, _ = _numpyro()
        values = self._unravel(x)

        def substitute_fn(site):
            if site["type"] != "sample" or site["name"] not in values:
                return None
            # The support is read at trace time, so supports that depend on other
            # sites (e.g. Uniform(low=a, ...)) use the current value of `a`.
            transform = biject_to(site["fn"].support)
            u = values[site["name"]]
            z = transform(u)
            if log_jacobians is not None:
                log_det = transform.log_abs_det_jacobian(u, z)
                log_det = sum_rightmost(
                    log_det, jnp.ndim(log_det) - jnp.ndim(z) + len(site["fn"].event_shape))
                log_jacobians[site["name"]] = log_det
            return z

        return handlers.substitute(self._with_params(), substitute_fn=substitute_fn)

    def log_prior_and_likelihood(self, x) -> tuple[Array, Array]:
        """``(log prior density of u incl. Jacobian, log-likelihood)`` at one point."""
        *_, compute_log_probs = _numpyro()
        log_jacobians: dict = {}
        model = self._constrained_trace(x, log_jacobians)
        log_probs, trace = compute_log_probs(model, self.args, self.kwargs, {})
        log_prior = jnp.zeros((), jnp.result_type(x))
        log_likelihood = jnp.zeros((), jnp.result_type(x))
        for name, value in log_probs.items():
            if trace[name]["is_observed"]:
                log_likelihood = log_likelihood + value
            else:
                log_prior = log_prior + value
        for name, log_det in log_jacobians.items():
            scale = trace[name]["scale"]
            log_prior = log_prior + jnp.sum(log_det if scale is None else scale * log_det)
        return log_prior, log_likelihood

    def log_likelihood(self, x) -> Array:
        """Log-likelihood of the observed sites (and ``numpyro.factor`` terms) at one point."""
        return self.log_prior_and_likelihood(x)[1]

    def log_density(self, x) -> Array:
        """Unnormalised log posterior of ``u`` (prior with Jacobian + log-likelihood)."""
        log_prior, log_likelihood = self.log_prior_and_likelihood(x)
        return log_prior + log_likelihood

    def constrain(self, x) -> dict:
        """One unconstrained point -> ``{site: constrained value}`` (with deterministic sites)."""
        _, handlers, _, _, _ = _numpyro()
        trace = handlers.trace(self._constrained_trace(x)).get_trace(*self.args, **self.kwargs)
        wanted = set(self.site_names) | set(self.deterministic_names)
        return {name: site["value"] for name, site in trace.items() if name in wanted}

    def unconstrain(self, values: dict) -> Array:
        """``{site: constrained value}`` (one point) -> the flat unconstrained vector."""
        _, handlers, biject_to, _, _ = _numpyro()
        missing = set(self.site_names) - set(values)
        if missing:
            raise ValueError(f"values is missing latent site(s) {sorted(missing)}")
        trace = handlers.trace(handlers.substitute(
            handlers.seed(self._with_params(), jax.random.key(0)),
            data={k: values[k] for k in self.site_names})).get_trace(*self.args, **self.kwargs)
        return ravel_pytree({name: biject_to(trace[name]["fn"].support).inv(trace[name]["value"])
                             for name in self.site_names})[0]

    def _draw_unconstrained(self, key) -> Array:
        _, handlers, biject_to, _, _ = _numpyro()
        trace = handlers.trace(handlers.seed(self._with_params(), key)).get_trace(
            *self.args, **self.kwargs)
        return ravel_pytree({name: biject_to(trace[name]["fn"].support).inv(trace[name]["value"])
                             for name in self.site_names})[0]

    def __repr__(self) -> str:
        name = getattr(self.model, "__name__", type(self.model).__name__)
        return f"NumPyroModel({name}, dim={self.dim}, sites={list(self.site_names)})"


def from_numpyro(model: Callable, *args, **kwargs) -> NumPyroModel:
    """A NumPyro model, conditioned on its data, as targets in unconstrained space.

    Observed data are passed as model arguments (``obs=`` inside the model). Latent sites
    must be continuous; any support NumPyro can biject to the reals (positive, simplex,
    interval, ordered, correlation Cholesky, ...) is allowed, inside plates or not.

    Parameters
    ----------
    model : a callable with NumPyro primitives.
    *args, **kwargs : the model's arguments (including observed data).

    Returns
    -------
    NumPyroModel
        with

        * ``prior``: a :class:`~probinfer.Target` over the flat unconstrained vector ``u``
          (dimension ``dim``), log density with the Jacobian, and exact ``sample``;
        * ``log_likelihood(u)``: one point -> scalar (observed sites and
          ``numpyro.factor`` terms);
        * ``target``: the unnormalised posterior, ``prior.log_density + log_likelihood``;
        * ``constrain(u)``: ``{site: constrained value}`` (deterministic sites included);
          ``unconstrain(values)`` is its inverse and ``unravel(u)`` gives unconstrained
          values by site.

    A model that raises while being traced gives a ``ValueError`` carrying the cause.

    Example
    -------
    >>> import jax, jax.numpy as jnp, numpyro, numpyro.distributions as dist
    >>> import probinfer as pi
    >>> def model(y):
    ...     mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
    ...     sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    ...     with numpyro.plate("data", y.shape[0]):
    ...         numpyro.sample("y", dist.Normal(mu, sigma), obs=y)
    >>> pm = pi.from_numpyro(model, jnp.array([0.3, -0.1, 0.5]))
    >>> u = pm.prior.sample(jax.random.key(0), 4)
    >>> u.shape, sorted(pm.constrain(u[0]))
    ((4, 2), ['mu', 'sigma'])
    """
    if not callable(model):
        raise TypeError(f"model must be a callable NumPyro model, got {type(model).__name__}")
    return NumPyroModel(model, args, kwargs, jax.random.key(0))
