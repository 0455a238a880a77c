"""Importance sampling over the shared :class:`~probinfer.Target` interface.

Draw from a proposal ``q``, weight by ``log w = log pi(x) - log q(x)``. Two estimators of
``E_pi[f]`` follow from the same weights:

* self-normalised, ``sum_i w_i f(x_i) / sum_i w_i`` (consistent, biased at O(1/N); needs
  ``pi`` only up to a constant);
* unbiased, ``(1/N) sum_i w_i f(x_i)``, an unbiased estimate of ``Z E_pi[f]`` where ``Z`` is
  the normaliser of ``pi`` (so of ``E_pi[f]`` itself when ``pi`` is normalised).

``log_mean_exp`` of the unnormalised log-weights is the log-evidence estimate (``exp`` of
it is unbiased for ``Z``). The effective sample size and the Pareto-k̂ of the weight tail
(Vehtari, Simpson, Gelman, Yao & Gabry, "Pareto smoothed importance sampling", JMLR 2024)
say whether the estimates can be trusted: k̂ > 0.7 means the weights' variance is
effectively infinite.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from probinfer._types import Array, PRNGKey
from probinfer._validation import as_float_array, check_positive_int, check_probability_vector
from probinfer.particles.weights import ess, log_mean_exp, normalize
from probinfer.result import Result
from probinfer.targets.base import Target


class ISInfo(NamedTuple):
    """Diagnostics of one importance-sampling run.

    Attributes
    ----------
    log_weights_unnormalized : (N,) ``log pi(x_i) - log q(x_i)`` before normalisation
        (what the unbiased estimator needs).
    ess : effective sample size of the weights.
    pareto_k : Pareto-k̂ of the weight tail (NaN when not computed); > 0.7 is unreliable.
    num_evaluations : number of target-density evaluations.
    """

    log_weights_unnormalized: Array
    ess: Array
    pareto_k: Array
    num_evaluations: int


class Estimate(NamedTuple):
    """An expectation estimate with its Monte Carlo standard error."""

    mean: Array
    std_error: Array


def _check_target(target, name: str, need_sample: bool = False) -> None:
    if not isinstance(target, Target):
        raise TypeError(f"{name} must be a probinfer Target, got {type(target).__name__}")
    if need_sample and not target.can_sample:
        raise ValueError(f"{name} must be able to sample (a Target with .sample)")


def pareto_khat(log_weights) -> Array:
    """Pareto-k̂ of the upper tail of importance weights (ArviZ's PSIS).

    Parameters
    ----------
    log_weights : (N,) log importance weights, normalised or not.

    Returns
    -------
    k̂ as a float array; below 0.5 the weights have finite variance, above 0.7 the
    importance-sampling estimate is unreliable (Vehtari et al., JMLR 2024).

    Example
    -------
    >>> import jax, probinfer as pi
    >>> k = pi.importance.pareto_khat(jax.random.normal(jax.random.key(0), (1000,)) * 0.1)
    >>> bool(k < 0.5)
    True
    """
    return pareto_smooth(log_weights)[1]


def pareto_smooth(log_weights) -> tuple[Array, Array]:
    """PSIS-smoothed normalised log-weights and k̂ (``arviz.psislw``)."""
    import warnings

    import arviz

    lw = np.asarray(as_float_array(log_weights, "log_weights", ndim=1), dtype=np.float64)
    if lw.shape[0] < 5:
        raise ValueError(f"log_weights needs at least 5 entries for Pareto-k̂, got {lw.shape[0]}")
    with warnings.catch_warnings():
        # ArviZ warns when k̂ is large; the caller gets k̂ itself and decides.
        warnings.simplefilter("ignore")
        smoothed, k = arviz.psislw(lw.copy())
    return jnp.asarray(smoothed), jnp.asarray(k)


def importance_sampling(key: PRNGKey, target: Target, proposal: Target, num_samples: int, *,
                        psis: bool = False) -> Result:
    """Importance sampling of ``target`` with draws from ``proposal``.

    Parameters
    ----------
    key : PRNG key.
    target : the (possibly unnormalised) target density; ``log_density`` of one point.
    proposal : a normalised Target with ``sample`` (e.g. :class:`~probinfer.Gaussian`,
        :class:`Mixture`, :func:`defensive`).
    num_samples : number of draws.
    psis : replace the normalised log-weights by their Pareto-smoothed version
        (lower variance, small bias); the log-evidence is always the raw estimate.

    Returns
    -------
    :class:`~probinfer.Result` with normalised ``log_weights``, ``log_evidence`` (log of the
    unbiased estimate of the normaliser) and ``info`` an :class:`ISInfo`.

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> target = pi.Gaussian(jnp.ones(2), jnp.eye(2))
    >>> proposal = pi.Gaussian(jnp.zeros(2), 4.0 * jnp.eye(2))
    >>> res = pi.importance.importance_sampling(jax.random.key(0), target, proposal, 4000)
    >>> bool(abs(res.log_evidence) < 0.1)
    True
    """
    _check_target(target, "target")
    _check_target(proposal, "proposal", need_sample=True)
    num_samples = check_positive_int(num_samples, "num_samples", minimum=2)
    samples, log_w = _draw_and_weigh(key, target, proposal, num_samples)
    if not bool(jnp.any(jnp.isfinite(log_w))):
        raise ValueError("every importance weight is zero or NaN: the proposal puts no mass "
                         "where the target does, or the target's log_density returns NaN")
    if bool(jnp.any(jnp.isnan(log_w))):
        raise ValueError("target or proposal log_density returned NaN at some draws")
    log_norm, _ = normalize(log_w)
    k = pareto_khat(log_w) if num_samples >= 5 else jnp.asarray(jnp.nan)
    if psis:
        log_norm = pareto_smooth(log_w)[0].astype(log_w.dtype)
    info = ISInfo(log_weights_unnormalized=log_w, ess=ess(log_w), pareto_k=k,
                  num_evaluations=num_samples)
    return Result(samples=samples, log_weights=log_norm, log_evidence=log_mean_exp(log_w),
                  info=info)


@partial(jax.jit, static_argnums=(1, 2, 3))
def _draw_and_weigh(key, target, proposal, num_samples):
    samples = proposal.sample(key, num_samples)
    return samples, target.batch_log_density(samples) - proposal.batch_log_density(samples)


def _values(result: Result, fn) -> Array:
    values = jax.vmap(fn)(result.samples) if fn is not None else result.samples
    values = jnp.asarray(values)
    if not bool(jnp.all(jnp.isfinite(values))):
        raise ValueError("fn returned non-finite values at some samples")
    return values


def self_normalized(result: Result, fn=None) -> Estimate:
    """Self-normalised estimate of ``E_pi[fn(x)]`` with its delta-method standard error.

    ``std_error = sqrt(sum_i w_i² (f_i - mean)²)`` with normalised weights ``w``.
    """
    values = _values(result, fn)
    w = jnp.exp(result.log_weights)
    mean = jnp.tensordot(w, values, axes=(0, 0))
    centred = values - mean
    var = jnp.tensordot(w * w, centred * centred, axes=(0, 0))
    return Estimate(mean, jnp.sqrt(var))


def unbiased(result: Result, fn=None) -> Estimate:
    """Unbiased estimate ``(1/N) sum_i w_i fn(x_i)`` of ``Z E_pi[fn]`` with its standard error.

    Uses the unnormalised weights kept in ``result.info`` (an :class:`ISInfo`); for a
    normalised target (``Z = 1``) this is an unbiased estimate of ``E_pi[fn]``.
    """
    if not isinstance(result.info, ISInfo):
        raise TypeError("result must come from importance_sampling (its info is an ISInfo)")
    values = _values(result, fn)
    w = jnp.exp(result.info.log_weights_unnormalized)
    terms = w.reshape((-1,) + (1,) * (values.ndim - 1)) * values
    n = terms.shape[0]
    return Estimate(jnp.mean(terms, axis=0), jnp.std(terms, axis=0, ddof=1) / jnp.sqrt(n))


class Mixture(Target):
    """A finite mixture ``sum_k weights[k] q_k(x)`` of normalised, samplable Targets.

    ``component_log_densities(x)`` gives ``log weights[k] + log q_k(x)`` (the
    deterministic-mixture / balance-heuristic weights and the control variates
    ``q_k / q - 1`` of Owen & Zhou, "Safe and effective importance sampling", JASA 2000,
    are built from it).

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> q = pi.importance.Mixture([pi.Gaussian(-jnp.ones(1), jnp.eye(1)),
    ...                            pi.Gaussian(jnp.ones(1), jnp.eye(1))], jnp.array([0.5, 0.5]))
    >>> q.sample(jax.random.key(0), 3).shape
    (3, 1)
    """

    def __init__(self, components, weights):
        components = list(components)
        if not components:
            raise ValueError("components must be a non-empty list of Targets")
        for i, c in enumerate(components):
            _check_target(c, f"components[{i}]", need_sample=True)
        weights = as_float_array(weights, "weights", ndim=1, shape=(len(components),))
        check_probability_vector(weights, "weights")
        self.components = components
        self.weights = weights

    @property
    def log_normalizer(self):
        return jnp.zeros(())

    def component_log_densities(self, x) -> Array:
        return jnp.log(self.weights) + jnp.stack([c.log_density(x) for c in self.components])

    def log_density(self, x) -> Array:
        return logsumexp(self.component_log_densities(x))

    def sample(self, key, num_samples: int):
        num_samples = check_positive_int(num_samples, "num_samples")
        keys = jax.random.split(key, len(self.components) + 1)
        choice = jax.random.categorical(keys[0], jnp.log(self.weights), shape=(num_samples,))
        # Every component draws num_samples and the choice selects: static shapes under jit.
        draws = [c.sample(k, num_samples) for c, k in zip(self.components, keys[1:])]
        return jax.tree_util.tree_map(
            lambda *xs: jnp.choose(choice.reshape((-1,) + (1,) * (xs[0].ndim - 1)),
                                   xs, mode="clip"), *draws)


def defensive(proposal: Target, nominal: Target, alpha=0.1) -> Mixture:
    """Hesterberg's defensive mixture ``alpha · nominal + (1 - alpha) · proposal``.

    With the nominal density ``p`` as a component the weights ``p / q`` are bounded by
    ``1 / alpha`` whatever the tails of ``proposal``.

    Example
    -------
    >>> import jax.numpy as jnp, probinfer as pi
    >>> p = pi.Gaussian(jnp.zeros(1), jnp.eye(1))
    >>> q = pi.importance.defensive(pi.Gaussian(2 * jnp.ones(1), 0.1 * jnp.eye(1)), p, 0.2)
    >>> q.weights.tolist()
    [0.2, 0.8]
    """
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return Mixture([nominal, proposal], jnp.array([alpha, 1.0 - alpha]))
