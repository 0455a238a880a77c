"""Tuning move kernels between SMC steps from the particle population.

Inside SMC the particles themselves describe the current target, so the kernel can be
tuned without pilot runs (Chopin 2002; Fearnhead & Taylor 2013; Buchholz, Chopin & Jacob
2021): the proposal scale (or HMC mass matrix) comes from the weighted particle covariance
(dense up to 200 dimensions, its diagonal above), and the step size in the standardised coordinates is nudged
towards the kernel's optimal acceptance rate, ``log h ← log h + gain · (acceptance − target)``.

A strategy is any callable ``(kernel, params, particles, log_weights, acceptance_rate)
-> params``, applied *before* each move. For fixed params every kernel is invariant for
its target; the params are a function of the whole population, including the particle
being moved, an effect of order ``(number of tuned values) / N`` (see
:class:`PopulationAdaptation`). ``acceptance_rate`` is ``None`` before the first move
(then only the scale is set).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from probinfer.kernels.base import MAX_DENSE_DIM, Kernel, KernelParams
from probinfer.kernels.combinators import AdaptiveRepeat, Chain, Repeat
from probinfer.particles.weights import ess, normalize, particles_as_rows


def weighted_covariance(rows, log_weights):
    """Weighted mean and covariance of ``rows`` ``(N, d)`` under ``log_weights`` ``(N,)``."""
    w = jnp.exp(normalize(log_weights)[0]).astype(rows.dtype)
    mean = w @ rows
    centred = rows - mean
    return mean, (centred * w[:, None]).T @ centred


#: ``covariance='auto'`` also needs at least this many particles per dimension.
MIN_PARTICLES_PER_DIM = 10


def _shrink(cov, ess):
    """``(1 − λ) Σ + λ diag(Σ)`` with ``λ = d / (d + 10 · ESS)``.

    The sample covariance of ``ESS`` effective draws has relative errors of order
    ``sqrt(d / ESS)`` in its small eigenvalues; pulling it slightly towards its diagonal
    keeps the factor well conditioned when ``ESS`` is not much larger than ``d``
    (λ ≈ 0.02 at d = 200, ESS = 1000) and leaves it nearly untouched when ``ESS ≫ d``
    (λ = 3·10⁻⁴ at d = 3, ESS = 1000), so a −0.9999 correlation survives as −0.9996.
    The factor 10 is a judgement, not a fitted value.
    """
    d = cov.shape[0]
    lam = d / (d + 10.0 * ess)
    return (1.0 - lam) * cov + lam * jnp.diag(jnp.diagonal(cov))


@dataclasses.dataclass(frozen=True)
class PopulationAdaptation:
    """Scale from the weighted particle covariance, step size from the acceptance rate.

    Parameters
    ----------
    gain : rate of the multiplicative step-size update (0 keeps the step size). HMC's
        acceptance falls steeply with the step size; at gain 2 it oscillated between about
        0.25 and 0.9 from step to step on the logistic regression of the tutorial, at the
        default 1.0 it settles near the target.
    covariance : ``'auto'`` (default), ``'full'`` or ``'diag'``. ``'full'``: the scale is
        the Cholesky factor of the weighted covariance, shrunk slightly towards its
        diagonal (see :func:`_shrink`); for HMC this is the dense mass matrix
        ``Σ⁻¹``. ``'diag'``: standard deviations only. ``'auto'``: ``'full'`` when
        ``d ≤ 200`` and ``N ≥ 10 d`` (both known when the sampler is compiled),
        ``'diag'`` otherwise.

    Notes
    -----
    Why dense up to d = 200: a diagonal mass matrix cannot follow correlations, and
    posteriors of regressions with uncentred predictors have them (posteriordb's
    kilpisjarvi: intercept–slope correlation −0.9999; with a diagonal scale default SMC
    was 57 sd off there). The Cholesky factorisation costs ``O(d³)`` once per tempering
    step and each leapfrog step ``O(d²)`` per particle, negligible next to the gradients
    for d ≤ 200. Above that, and with fewer than 10 particles per dimension, the estimate
    is poor: the scale is estimated from the very particles it then moves, so each
    particle's move depends on itself through the estimate, an effect that grows like
    ``d / N`` for a full covariance; measured on the 31-parameter logistic regression of
    ``inference/bench_tempered_smc.py`` with N = 400, full-covariance HMC moves (unshrunk,
    10 leapfrog steps) overestimated ``log Z`` by about 1.2 nats.
    """

    gain: float = 1.0
    covariance: str = "auto"

    def __post_init__(self):
        if not (isinstance(self.gain, (int, float)) and self.gain >= 0):
            raise ValueError(f"gain must be a number >= 0, got {self.gain!r}")
        if self.covariance not in ("auto", "full", "diag"):
            raise ValueError(f"covariance must be 'auto', 'full' or 'diag', got "
                             f"{self.covariance!r}")

    def uses_full(self, num_particles: int, dim: int) -> bool:
        """Whether the scale is a dense factor for ``num_particles`` points in ``dim``."""
        if self.covariance == "auto":
            return dim <= MAX_DENSE_DIM and num_particles >= MIN_PARTICLES_PER_DIM * dim
        return self.covariance == "full"

    def scale_from(self, particles, log_weights):
        rows, _ = particles_as_rows(particles)
        _, cov = weighted_covariance(rows, log_weights)
        num, d = rows.shape
        # A relative jitter keeps the factorisation defined when the particles collapse
        # onto a subspace (e.g. few distinct values after resampling).
        jitter = 10 * jnp.finfo(cov.dtype).eps * (jnp.trace(cov) / d) + jnp.finfo(cov.dtype).tiny
        if not self.uses_full(num, d):
            scale = jnp.sqrt(jnp.diagonal(cov) + jitter)
            fallback = jnp.ones(d, cov.dtype)
        else:
            cov = _shrink(cov, ess(log_weights).astype(cov.dtype))
            scale = jnp.linalg.cholesky(cov + jitter * jnp.eye(d, dtype=cov.dtype))
            fallback = jnp.eye(d, dtype=cov.dtype)
        return jnp.where(jnp.all(jnp.isfinite(scale)), scale, fallback)

    def _update(self, kernel, params, scale, acceptance):
        if isinstance(kernel, Chain):
            accs = (None,) * len(kernel.kernels) if acceptance is None else acceptance
            return tuple(self._update(k, p, scale, a)
                         for k, p, a in zip(kernel.kernels, params, accs))
        if isinstance(kernel, (Repeat, AdaptiveRepeat)):
            return self._update(kernel.kernel, params, scale, acceptance)
        if not isinstance(params, KernelParams):
            raise TypeError(f"PopulationAdaptation tunes KernelParams; {type(kernel).__name__} "
                            f"has params of type {type(params).__name__}")
        step_size = params.step_size
        if acceptance is not None:
            error = jnp.nan_to_num(acceptance - kernel.target_acceptance, nan=-1.0)
            step_size = step_size * jnp.exp(self.gain * error).astype(step_size.dtype)
        return KernelParams(step_size, scale.astype(params.scale.dtype))

    def __call__(self, kernel: Kernel, params, particles, log_weights, acceptance_rate=None):
        return self._update(kernel, params, self.scale_from(particles, log_weights),
                            acceptance_rate)


def population_adaptation(gain: float = 1.0, covariance: str = "auto") -> PopulationAdaptation:
    """The default tuning strategy of tempered SMC; see :class:`PopulationAdaptation`.

    The default ``covariance='auto'`` gives a dense scale (mass matrix) for ``d ≤ 200``
    with at least 10 particles per dimension, a diagonal one otherwise.

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> kernel = pi.kernels.rwm()
    >>> adapt = pi.kernels.population_adaptation()
    >>> x = 3.0 * jax.random.normal(jax.random.key(0), (500, 2))
    >>> params = adapt(kernel, kernel.default_params(2), x, jnp.zeros(500))
    >>> params.scale.shape  # dense: Cholesky factor of the particle covariance
    (2, 2)
    """
    return PopulationAdaptation(gain, covariance)
