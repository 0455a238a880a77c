"""Denoising Langevin Gibbs (DLG): MCMC over data × noise level.

Kim & Ye (2022), "Denoising MCMC for Accelerating Diffusion-Based Generative Models". The
chain targets the joint ``p(x, i) ∝ pi(i) p_i(x)`` over data ``x`` and the prior's noisy steps
``i`` (``p_i`` the noised marginal at step ``i``, ``pi`` a prior over levels). One DLG
iteration, for each chain independently:

1. **Gibbs move on the level**: ``i ~ p(i | x) ∝ pi(i) p_i(x)`` from a
   :class:`~probinfer.dmcmc.LevelModel` (exact for analytic priors, a trained classifier for
   learned ones); ``level_update="argmax"`` takes the most probable level instead (not a
   valid MCMC move: kept to compare with the paper's variants).
2. **Langevin move on x given the level**: ``x' = x + h s_i(x) + sqrt(2 h) z`` with the
   prior's score ``s_i = ∇ log p_i`` (Tweedie, one denoiser call) and the step
   ``h = step_size · sigmas[i]²``: the noise level sets the local scale of ``p_i`` near the
   data, so one relative step size serves every level. With ``metropolis=True`` the move is
   MALA (one more denoiser call at the proposal, and ``log p_i`` from the level model), and
   the chain leaves the joint exactly invariant.

Why not BlackJAX's MALA: the state lives on a product space with a discrete coordinate,
each chain's log density and score change with its own level, the score comes from a
denoiser rather than from differentiating a log density, and unadjusted Langevin (the only
option for learned priors, whose ``log p_i`` is unknown) is needed beside MALA. The kernel
below is that product-space move, over all chains at once, so a torch denoiser is called
once per move for the whole batch.

Levels are the prior's discrete steps ``0 .. num_steps - 1`` (step ``num_steps`` is the
data, where the score is undefined), not a continuum: the hand-off integrates on the
prior's own grid from each chain's level, a learned denoiser is only known to be accurate
at its grid, and the level conditional becomes a categorical over ``num_steps`` values
(exact, no quadrature). A finer grid is a prior with more steps.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from probinfer._compile import cached
from probinfer._types import Array
from probinfer._validation import check_positive_scalar, is_concrete
from probinfer.dmcmc.levels import LevelModel, _check_scored_prior, exact_levels

LEVEL_UPDATES = ("sample", "argmax")

class DLGState(NamedTuple):
    """Chains of DLG: positions ``x`` ``(n, *event_shape)`` and levels ``level`` ``(n,)``."""

    x: Array
    level: Array


class DLGInfo(NamedTuple):
    """Diagnostics of one DLG iteration.

    acceptance_rate : ``(n,)`` Metropolis acceptance probability (1 when unadjusted).
    nfe : denoiser calls of this iteration, all chains (``n`` or ``2 n`` with Metropolis).
    num_estimator_calls : noise-level-estimator evaluations, all chains.
    """

    acceptance_rate: Array
    nfe: int
    num_estimator_calls: int


class DLGParams(NamedTuple):
    """Tuned numbers of DLG (traced: a new value does not recompile).

    step_size : scalar relative Langevin step; the step at level ``i`` is
        ``step_size · sigmas[i]²``.
    log_level_prior : ``(num_steps,)`` log of the (unnormalised) level prior ``pi``; ``-inf``
        excludes a level.
    """

    step_size: Array
    log_level_prior: Array


def dlg_params(prior, step_size=0.2, levels=None, level_weights=None) -> DLGParams:
    """Build and check :class:`DLGParams`.

    Parameters
    ----------
    prior : the continuous diffusion prior.
    step_size : relative Langevin step, > 0.
    levels : the steps the chains may visit (integers in ``[0, num_steps)``); default all.
    level_weights : non-negative weights of ``levels`` (the level prior ``pi``), default
        uniform.

    Raises
    ------
    ValueError : non-positive step size, levels outside the schedule, repeated levels, bad
        weights.
    """
    _check_scored_prior(prior)
    step_size = check_positive_scalar(step_size, "step_size")
    levels = check_levels(prior, levels)
    if level_weights is None:
        weights = np.ones(levels.size)
    else:
        weights = np.asarray(level_weights, dtype=np.float64)
        if weights.shape != levels.shape:
            raise ValueError(f"level_weights must have shape {levels.shape} (one per level), "
                             f"got {weights.shape}")
        if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError("level_weights must be finite, non-negative and not all zero")
    log_prior = np.full(prior.num_steps, -np.inf)
    with np.errstate(divide="ignore"):
        log_prior[levels] = np.log(weights / weights.sum())
    return DLGParams(step_size, jnp.asarray(log_prior, dtype=prior.dtype))


def check_levels(prior, levels) -> np.ndarray:
    """Sorted unique steps in ``[0, num_steps)``; default all noisy steps."""
    if levels is None:
        return np.arange(prior.num_steps)
    arr = np.asarray(levels)
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"levels must be a non-empty 1-D array of integer steps, got "
                         f"{arr.dtype} array of shape {arr.shape}")
    if arr.min() < 0 or arr.max() >= prior.num_steps:
        raise ValueError(f"levels must be noisy steps of the schedule, in [0, "
                         f"{prior.num_steps - 1}] (step {prior.num_steps} is the data), got "
                         f"range [{arr.min()}, {arr.max()}]")
    if np.unique(arr).size != arr.size:
        raise ValueError("levels must not repeat")
    return np.sort(arr)


def _per_chain(values, level, like):
    """``values[level]`` shaped to broadcast against particles ``like`` ``(n, ...)``."""
    return jnp.reshape(values[level], level.shape + (1,) * (like.ndim - 1))


def denoise_at_levels(prior, x, level):
    """``E[x_0 | x]`` for chains each at its own level (one batched denoiser call)."""
    return jax.vmap(lambda xi, li: prior.denoise(xi[None], li)[0])(x, level)


def score_at_levels(prior, x, level):
    """``∇ log p_level(x)`` per chain, from the denoiser by Tweedie."""
    alpha = _per_chain(prior.alphas, level, x)
    sigma = _per_chain(prior.sigmas, level, x)
    return (alpha * denoise_at_levels(prior, x, level) - x) / sigma ** 2


def dlg(prior, *, level_model: LevelModel | None = None, metropolis: bool | None = None,
        level_update: str = "sample"):
    """The Denoising Langevin Gibbs kernel as an ``(init, step)`` pair.

    Parameters
    ----------
    prior : a continuous diffusion prior (it must have a score, i.e. a denoiser).
    level_model : the level conditional; default :func:`~probinfer.dmcmc.exact_levels`
        (analytic priors). Learned priors need :func:`~probinfer.dmcmc.fit_level_estimator`.
    metropolis : MALA instead of unadjusted Langevin; default whenever the level model has
        the marginal density (exact priors), which makes the chain exact.
    level_update : ``"sample"`` (Gibbs) or ``"argmax"``.

    Returns
    -------
    init : ``init(x, level) -> DLGState``; ``x`` ``(n, *event_shape)``, ``level`` an integer
        step or ``(n,)`` steps in ``[0, num_steps)``.
    step : ``step(key, state, params) -> (DLGState, DLGInfo)`` with ``params`` from
        :func:`dlg_params`. Pure; ``jit`` and ``scan`` it.

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> mix = pi.GaussianMixture(jnp.array([0.5, 0.5]), jnp.array([[-2.0], [2.0]]),
    ...                          jnp.ones((2, 1, 1)))
    >>> prior = pi.diffusion.GaussianMixturePrior(mix, num_steps=10)
    >>> init, step = pi.dmcmc.dlg(prior)
    >>> state = init(prior.init(jax.random.key(0), 100), 0)
    >>> params = pi.dmcmc.dlg_params(prior, step_size=0.5)
    >>> state, info = jax.jit(step)(jax.random.key(1), state, params)
    >>> state.x.shape, state.level.shape
    ((100, 1), (100,))
    """
    _check_scored_prior(prior)
    cache_key = ("dlg", level_model, metropolis, level_update)
    if level_model is None:
        level_model = exact_levels(prior)
    if not isinstance(level_model, LevelModel):
        raise TypeError(f"level_model must be a pi.dmcmc LevelModel (exact_levels or "
                        f"fit_level_estimator), got {type(level_model).__name__}")
    if level_model.num_levels != prior.num_steps:
        raise ValueError(f"level_model has {level_model.num_levels} levels but the prior has "
                         f"{prior.num_steps} noisy steps")
    if metropolis is None:
        metropolis = level_model.has_marginal
    metropolis = bool(metropolis)
    if metropolis and not level_model.has_marginal:
        raise ValueError("metropolis=True needs the noisy marginal density, which "
                         f"{type(level_model).__name__} does not have; use metropolis=False "
                         "(unadjusted Langevin)")
    if level_update not in LEVEL_UPDATES:
        raise ValueError(f"level_update must be one of {LEVEL_UPDATES}, got {level_update!r}")
    # Stored on the prior (probinfer._compile): repeated runs with the same structure reuse
    # one compilation; numbers are traced.
    return cached(prior, cache_key, lambda: _build(prior, level_model, metropolis, level_update))


def _build(prior, level_model, metropolis, level_update):

    def init(x, level) -> DLGState:
        prior.check_particles(x)
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"x must be floating point, got dtype {x.dtype}")
        level = jnp.asarray(level)
        if not jnp.issubdtype(level.dtype, jnp.integer):
            raise TypeError(f"level must be integer steps, got dtype {level.dtype}")
        if level.ndim > 1 or (level.ndim == 1 and level.shape[0] != x.shape[0]):
            raise ValueError(f"level must be a scalar or have shape ({x.shape[0]},), got "
                             f"{level.shape}")
        if is_concrete(level):
            values = np.asarray(level)
            if values.min() < 0 or values.max() >= prior.num_steps:
                raise ValueError(f"level must lie in the schedule's noisy steps [0, "
                                 f"{prior.num_steps - 1}], got range [{values.min()}, "
                                 f"{values.max()}]")
        return DLGState(x, jnp.broadcast_to(level, x.shape[:1]).astype(jnp.int32))

    def step(key, state: DLGState, params: DLGParams):
        check_positive_scalar(params.step_size, "step_size")
        level_key, noise_key, accept_key = jax.random.split(key, 3)
        x = state.x
        n = x.shape[0]
        if metropolis:
            # One table of log p_i(x) over all levels serves the Gibbs move and the
            # Metropolis ratio (cheaper to compile than per-chain densities).
            table = level_model.log_marginals(x)
            log_cond = jax.nn.log_softmax(table + params.log_level_prior, axis=-1)
        else:
            log_cond = level_model.log_conditional(x, params.log_level_prior)
        if level_update == "sample":
            level = jax.random.categorical(level_key, log_cond, axis=-1).astype(jnp.int32)
        else:
            level = jnp.argmax(log_cond, axis=-1).astype(jnp.int32)
        h = params.step_size * _per_chain(prior.sigmas, level, x) ** 2
        score = score_at_levels(prior, x, level)
        noise = jax.random.normal(noise_key, x.shape, x.dtype)
        proposal = x + h * score + jnp.sqrt(2.0 * h) * noise
        estimator_calls = n * level_model.calls_per_update
        if not metropolis:
            return DLGState(proposal, level), DLGInfo(jnp.ones(n, x.dtype), n, estimator_calls)
        axes = tuple(range(1, x.ndim))
        score_prop = score_at_levels(prior, proposal, level)
        h_flat = jnp.reshape(h, (n,))
        log_forward = -jnp.sum((proposal - x - h * score) ** 2, axis=axes) / (4 * h_flat)
        log_backward = -jnp.sum((x - proposal - h * score_prop) ** 2, axis=axes) / (4 * h_flat)

        def at_level(t):
            return jnp.take_along_axis(t, level[:, None], axis=1)[:, 0]

        log_ratio = (at_level(level_model.log_marginals(proposal)) - at_level(table)
                     + log_backward - log_forward)
        log_ratio = jnp.where(jnp.isnan(log_ratio), -jnp.inf, log_ratio)
        accept_prob = jnp.exp(jnp.minimum(log_ratio, 0.0))
        accept = jax.random.uniform(accept_key, (n,), x.dtype) < accept_prob
        shape = (n,) + (1,) * (x.ndim - 1)
        new_x = jnp.where(jnp.reshape(accept, shape), proposal, x)
        return DLGState(new_x, level), DLGInfo(accept_prob, 2 * n, estimator_calls)

    return init, step
