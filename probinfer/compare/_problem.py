"""Problems with reference answers: what a method comparison measures errors against.

A :class:`Problem` holds what the runners need (a target, or a prior and a reward, or a
NumPyro model, or a state-space model and its observations) and a set of named
*quantities*: for each, an estimator (a function of one run's :class:`~probinfer.Result`)
and a reference value with its standard error (0 when exact). The constructors read the
reference from the exact priors of the library in one call: closed-form tilts of a
:class:`~probinfer.GaussianMixture`, the forward–backward tilt of a
:class:`~probinfer.diffusion.MarkovChainPrior`, the Kalman filter of a
:class:`~probinfer.ssm.LinearGaussian`, or reference moments of a NumPyro model
(posteriordb-style means, sds and bulk ESS, or reference draws).
"""

from __future__ import annotations

import math
from typing import Callable, Mapping

import numpy as np
import jax
import jax.numpy as jnp

from probinfer._validation import check_positive_scalar
from probinfer.result import Result


def _weighted_mean(fn):
    """Estimator ``Σ_i w_i fn(x_i)`` of a Result (``fn`` of one sample)."""
    def estimate(res: Result):
        values = jax.vmap(fn)(res.samples)
        return jnp.tensordot(jnp.exp(res.log_weights), values, axes=(0, 0))
    return estimate


def log_evidence(res: Result):
    """The run's log-evidence estimate (NaN for runners that estimate none)."""
    return res.log_evidence


class Problem:
    """A comparison problem: inputs for the runners plus quantities with reference values.

    Parameters
    ----------
    name : short label, recorded with every comparison.
    quantities : ``{name: estimator}``; an estimator maps ONE run's
        :class:`~probinfer.Result` to a scalar estimate, or to ``(estimate, std_error)``
        when the method reports its own uncertainty (then coverage of the interval
        ``estimate ± z std_error`` is measured).
    reference : ``{name: value}`` for every quantity: the exact or reference answer.
    reference_se : ``{name: standard error}`` of reference values known only by
        simulation (reference draws, long runs); missing names are exact (0).
    **inputs : what the runners read, e.g. ``prior``, ``reward``, ``temperature``,
        ``target``, ``model``, ``ssm``, ``observations``. They are attributes of the
        problem (``problem.prior``).

    Example
    -------
    >>> import jax.numpy as jnp, probinfer as pi
    >>> mix = pi.GaussianMixture(jnp.array([0.7, 0.3]), jnp.array([[-1.0], [2.0]]),
    ...                          0.5 * jnp.ones((2, 1, 1)))
    >>> problem = pi.compare.Problem.mixture_tilt(mix, a=jnp.array([1.0]), num_steps=20)
    >>> sorted(problem.reference)[:3]
    ['log_evidence', 'mass[0]', 'mass[1]']
    """

    def __init__(self, name: str, quantities: Mapping[str, Callable],
                 reference: Mapping[str, float], reference_se: Mapping[str, float] | None = None,
                 **inputs):
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty string, got {name!r}")
        if not isinstance(quantities, Mapping) or not quantities:
            raise ValueError("quantities must be a non-empty mapping {name: estimator}")
        for q, fn in quantities.items():
            if not callable(fn):
                raise TypeError(f"quantities[{q!r}] must be a function Result -> scalar, got "
                                f"{type(fn).__name__}")
        reference = dict(reference)
        missing = [q for q in quantities if q not in reference]
        if missing:
            raise ValueError(f"reference lacks a value for the quantities {missing}")
        extra = [q for q in reference if q not in quantities]
        if extra:
            raise ValueError(f"reference names {extra}, which are not quantities")
        reference_se = dict(reference_se or {})
        unknown = [q for q in reference_se if q not in quantities]
        if unknown:
            raise ValueError(f"reference_se names {unknown}, which are not quantities")
        self.name = name
        self.quantities = dict(quantities)
        self.reference = {q: _finite_float(v, f"reference[{q!r}]") for q, v in reference.items()}
        self.reference_se = {q: _finite_float(reference_se.get(q, 0.0), f"reference_se[{q!r}]")
                             for q in quantities}
        if any(se < 0 for se in self.reference_se.values()):
            raise ValueError("reference_se must be >= 0")
        self.inputs = dict(inputs)

    def __getattr__(self, item):
        inputs = self.__dict__.get("inputs", {})
        if item in inputs:
            return inputs[item]
        raise AttributeError(f"problem {self.__dict__.get('name')!r} has no input {item!r} "
                             f"(inputs: {sorted(inputs)})")

    def estimate(self, res: Result) -> dict:
        """``{quantity: (estimate, std_error or NaN)}`` for one run."""
        out = {}
        for q, fn in self.quantities.items():
            value = fn(res)
            if isinstance(value, tuple):
                if len(value) != 2:
                    raise ValueError(f"estimator {q!r} must return a scalar or "
                                     f"(estimate, std_error), got a {len(value)}-tuple")
                out[q] = (value[0], value[1])
            else:
                out[q] = (value, jnp.nan)
        return out

    def __repr__(self):
        return (f"Problem({self.name!r}, quantities={len(self.quantities)}, "
                f"inputs={sorted(self.inputs)})")

    # ------------------------------------------------------------------ exact priors
    @classmethod
    def mixture_tilt(cls, mixture, *, center=None, precision=None, a=None, temperature=1.0,
                     num_steps: int = 100, name: str | None = None, **prior_kwargs) -> "Problem":
        """Steering a :class:`~probinfer.diffusion.GaussianMixturePrior` towards a closed-form
        tilt of its mixture.

        The reward is quadratic, ``r(x) = -½ (x - center)ᵀ precision (x - center)`` (give
        ``center`` and ``precision``), or linear, ``r(x) = a·x`` (give ``a``). Quantities:
        the tilted means ``mean[i]``, the masses ``mass[k]`` of the components (estimated
        by the weighted responsibilities under the exact tilted mixture, so their exact
        values are its weights) and ``log_evidence`` (``log E_p[exp(r / T)]``). Inputs:
        ``prior``, ``reward``, ``temperature``, ``mixture``, ``tilted``.
        """
        from probinfer.diffusion.gaussian_mixture import GaussianMixturePrior
        from probinfer.targets.gaussian import GaussianMixture

        if not isinstance(mixture, GaussianMixture):
            raise TypeError(f"mixture must be a probinfer.GaussianMixture, got "
                            f"{type(mixture).__name__}")
        quadratic = center is not None or precision is not None
        if quadratic == (a is not None):
            raise ValueError("give either center and precision (quadratic reward) or a "
                             "(linear reward)")
        temperature = float(check_positive_scalar(temperature, "temperature"))
        if quadratic:
            if center is None or precision is None:
                raise ValueError("a quadratic reward needs both center and precision")
            tilted, log_z = mixture.tilt_quadratic(center, precision, temperature)
            center, precision = jnp.asarray(center), jnp.asarray(precision)

            def reward(x):
                return -0.5 * (x - center) @ precision @ (x - center)
        else:
            tilted, log_z = mixture.tilt_linear(a, temperature)
            a = jnp.asarray(a)

            def reward(x):
                return a @ x
        prior = GaussianMixturePrior(mixture, num_steps=num_steps, **prior_kwargs)
        quantities, reference = {}, {}
        for i in range(mixture.dim):
            quantities[f"mean[{i}]"] = _weighted_mean(lambda x, i=i: x[i])
            reference[f"mean[{i}]"] = float(tilted.mean[i])
        for k in range(mixture.num_components):
            quantities[f"mass[{k}]"] = _weighted_mean(lambda x, k=k: tilted.responsibilities(x)[k])
            reference[f"mass[{k}]"] = float(tilted.weights[k])
        quantities["log_evidence"] = log_evidence
        reference["log_evidence"] = float(log_z)
        label = name or (f"{mixture.dim}-D mixture, {'quadratic' if quadratic else 'linear'} "
                         f"tilt, T={temperature:g}")
        return cls(label, quantities, reference, prior=prior, reward=reward,
                   temperature=temperature, mixture=mixture, tilted=tilted)

    @classmethod
    def markov_chain_tilt(cls, prior, site_rewards, temperature=1.0,
                          name: str | None = None) -> "Problem":
        """Steering a :class:`~probinfer.diffusion.MarkovChainPrior` by an additive reward
        ``r(x) = Σ_l site_rewards[l, x_l]``.

        Quantities: the tilted site marginals ``marginal[l,a]`` (forward–backward,
        :meth:`~probinfer.diffusion.MarkovChainPrior.tilt_additive`) and ``log_evidence``.
        Inputs: ``prior``, ``reward``, ``temperature``, ``tilted``.
        """
        from probinfer.diffusion.markov_chain import MarkovChainPrior

        if not isinstance(prior, MarkovChainPrior):
            raise TypeError(f"prior must be a probinfer.diffusion.MarkovChainPrior, got "
                            f"{type(prior).__name__}")
        temperature = float(check_positive_scalar(temperature, "temperature"))
        tilted, log_z = prior.tilt_additive(site_rewards, temperature)
        table = jnp.asarray(np.asarray(site_rewards, dtype=np.float64),
                            dtype=jnp.result_type(float))
        positions = jnp.arange(prior.length)

        def reward(x):
            return jnp.sum(table[positions, x])

        marginals = np.asarray(tilted.marginals())
        quantities, reference = {}, {}
        for l in range(prior.length):
            for v in range(prior.vocab_size):
                quantities[f"marginal[{l},{v}]"] = _weighted_mean(
                    lambda x, l=l, v=v: (x[l] == v).astype(jnp.result_type(float)))
                reference[f"marginal[{l},{v}]"] = float(marginals[l, v])
        quantities["log_evidence"] = log_evidence
        reference["log_evidence"] = log_z
        label = name or (f"Markov chain (L={prior.length}, K={prior.vocab_size}), additive "
                         f"tilt, T={temperature:g}")
        return cls(label, quantities, reference, prior=prior, reward=reward,
                   temperature=temperature, tilted=tilted)

    @classmethod
    def kalman(cls, ssm, observations, name: str | None = None) -> "Problem":
        """Filtering in a :class:`~probinfer.ssm.LinearGaussian` model.

        Quantities: the final filtering means ``filter_mean[i]`` (of ``E[x_{T-1} | y]``,
        estimated from the final weighted particles) and ``log_evidence`` against the
        Kalman log-likelihood. Inputs: ``ssm``, ``observations`` and ``bootstrap_model``
        (the bootstrap Feynman–Kac model, built once so that runs share its compilation).
        """
        from probinfer.ssm.base import bootstrap
        from probinfer.ssm.linear_gaussian import LinearGaussian

        if not isinstance(ssm, LinearGaussian):
            raise TypeError(f"ssm must be a probinfer.ssm.LinearGaussian, got "
                            f"{type(ssm).__name__}")
        exact = ssm.kalman_filter(observations)
        final_mean = np.asarray(exact.filtering_means[-1])
        quantities = {f"filter_mean[{i}]": _weighted_mean(lambda x, i=i: jnp.atleast_1d(x)[i])
                      for i in range(final_mean.shape[0])}
        reference = {f"filter_mean[{i}]": float(final_mean[i])
                     for i in range(final_mean.shape[0])}
        quantities["log_evidence"] = log_evidence
        reference["log_evidence"] = float(exact.log_likelihood)
        return cls(name or f"linear-Gaussian filtering (T={len(observations)})", quantities,
                   reference, ssm=ssm, observations=observations,
                   bootstrap_model=bootstrap(ssm, observations))

    @classmethod
    def numpyro(cls, model, *args, reference: Mapping, log_evidence_reference=None,
                name: str | None = None, **kwargs) -> "Problem":
        """Posterior moments of a NumPyro model against reference moments.

        Parameters
        ----------
        model, *args, **kwargs : the model and its arguments (as for
            :func:`~probinfer.from_numpyro`).
        reference : posteriordb-style ``{"names": [...], "mean": [...], "sd": [...]}`` with
            optionally ``"ess_bulk"`` (reference ESS per name; the reference standard error
            of a mean is ``sd / sqrt(ess)``, of an sd ``sd / sqrt(2 ess)``; without it the
            reference counts as exact), or ``{"draws": {site: (n, ...) array}}`` of
            (nearly independent) constrained reference draws. Names follow Stan: ``mu``,
            ``theta[3]`` (1-based, the third entry of a vector site).
        log_evidence_reference : optional ``(log Z, standard error)`` adding the quantity
            ``log_evidence``.

        Notes
        -----
        Quantities ``mean:<name>`` and ``sd:<name>`` (weighted moments of the constrained
        draws). Inputs: ``pm`` (the :func:`~probinfer.from_numpyro` model), ``model``,
        ``args``, ``kwargs``.
        """
        from probinfer.targets.numpyro import from_numpyro

        if not callable(model):
            raise TypeError(f"model must be a NumPyro model function, got {type(model).__name__}")
        pm = from_numpyro(model, *args, **kwargs)
        names, mean, sd, ess = _reference_moments(reference)
        quantities, ref, ref_se = {}, {}, {}
        for j, label in enumerate(names):
            site, index = _stan_name(label)
            if site not in pm.site_names and site not in getattr(pm, "deterministic_names", ()):
                raise ValueError(f"reference name {label!r}: the model has no site {site!r} "
                                 f"(sites: {list(pm.site_names)})")

            def value(x, site=site, index=index):
                v = pm.constrain(x)[site]
                return v if index is None else jnp.reshape(v, (-1,))[index]

            def moments(res, value=value):
                values = jax.vmap(value)(res.samples)
                w = jnp.exp(res.log_weights)
                m = w @ values
                return m, jnp.sqrt(w @ (values - m) ** 2)

            quantities[f"mean:{label}"] = lambda res, moments=moments: moments(res)[0]
            quantities[f"sd:{label}"] = lambda res, moments=moments: moments(res)[1]
            ref[f"mean:{label}"], ref[f"sd:{label}"] = mean[j], sd[j]
            if ess is not None:
                ref_se[f"mean:{label}"] = sd[j] / math.sqrt(ess[j])
                ref_se[f"sd:{label}"] = sd[j] / math.sqrt(2 * ess[j])
        if log_evidence_reference is not None:
            value, se = log_evidence_reference
            quantities["log_evidence"] = log_evidence
            ref["log_evidence"], ref_se["log_evidence"] = value, se
        return cls(name or getattr(model, "__name__", "numpyro model"), quantities, ref,
                   ref_se, pm=pm, model=model, args=args, kwargs=kwargs)


def _finite_float(value, name) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a real scalar, got {type(value).__name__}") from err
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    return v


def _stan_name(label: str):
    site, bracket, index = label.partition("[")
    if not bracket:
        return site, None
    if not index.endswith("]") or not index[:-1].isdigit() or int(index[:-1]) < 1:
        raise ValueError(f"reference name {label!r}: expected 'site' or 'site[i]' with a "
                         "1-based integer i")
    return site, int(index[:-1]) - 1


def _reference_moments(reference):
    if not isinstance(reference, Mapping):
        raise TypeError("reference must be a mapping with names/mean/sd or draws")
    if "draws" in reference:
        draws = reference["draws"]
        names, means, sds, counts = [], [], [], []
        for site in sorted(draws):
            v = np.asarray(draws[site], dtype=np.float64)
            if v.ndim == 1:
                columns = {site: v}
            elif v.ndim == 2:
                columns = {f"{site}[{i + 1}]": v[:, i] for i in range(v.shape[1])}
            else:
                raise ValueError(f"reference draws of {site!r} must have shape (n,) or (n, d), "
                                 f"got {v.shape}")
            for label, col in columns.items():
                names.append(label)
                means.append(float(col.mean()))
                sds.append(float(col.std(ddof=1)))
                counts.append(float(col.size))
        return names, means, sds, counts
    for field in ("names", "mean", "sd"):
        if field not in reference:
            raise ValueError(f"reference lacks {field!r} (give names, mean, sd and optionally "
                             "ess_bulk, or draws)")
    names = list(reference["names"])
    mean = [float(v) for v in reference["mean"]]
    sd = [float(v) for v in reference["sd"]]
    ess = reference.get("ess_bulk")
    ess = None if ess is None else [float(v) for v in ess]
    if not (len(names) == len(mean) == len(sd) and (ess is None or len(ess) == len(names))):
        raise ValueError("reference names, mean, sd (and ess_bulk) must have equal lengths")
    return names, mean, sd, ess
