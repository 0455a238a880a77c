"""Filtering and smoothing outputs of particle filters, without a loop of your own.

- :func:`moments`: a ``summary`` for :func:`~probinfer.ssm.bootstrap` /
  :func:`~probinfer.ssm.guided` that records the weighted mean and variance of
  ``fn(x_t)`` after every step (the filtering moments), in ``res.info.summary``.
- :func:`lineages` / :func:`trajectories`: the ancestral lineage of every final particle
  from ``info.ancestors`` of a run with ``keep_ancestors=True`` (genealogy tracking; the
  paths coalesce after a few resampling steps, so they estimate smoothing expectations of
  early states poorly).
- :func:`backward_sample` / :func:`smooth`: forward filtering–backward sampling (Godsill,
  Doucet & West 2004, "Monte Carlo smoothing for nonlinear time series"). Given the
  filtering particles ``x_t^i`` and weights ``w_t^i`` of every step, a trajectory is drawn
  backwards: ``J_{T-1} ~ w_{T-1}``, then ``J_t ~ w_t^i f(x_{t+1}^{J_{t+1}} | x_t^i)``. Each
  trajectory is an (asymptotically exact) draw of ``p(x_{0:T-1} | y_{0:T-1})``; the cost is
  ``O(T N M)`` for ``M`` trajectories from ``N`` particles.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from probinfer._random import as_key
from probinfer._types import Array, PRNGKey, PyTree
from probinfer._validation import check_positive_int
from probinfer.particles.smc import run as _run_smc
from probinfer.result import Result
from probinfer.ssm.base import Proposal, StateSpaceModel, _check_observations, bootstrap, guided


class Moments(NamedTuple):
    """Weighted mean and variance (elementwise) of a per-particle quantity."""

    mean: PyTree
    var: PyTree


def moments(fn: Callable | None = None) -> Callable:
    """A ``summary`` recording the weighted moments of ``fn(x_t)`` after every step.

    Parameters
    ----------
    fn : function of ONE particle (default: the particle itself).

    Returns
    -------
    ``(particles, log_weights, t) -> Moments(mean, var)``; pass it as ``summary=`` to
    :func:`~probinfer.ssm.bootstrap`, :func:`~probinfer.ssm.guided` or
    :class:`~probinfer.smc.FeynmanKac`; ``res.info.summary.mean`` then has a leading step
    axis (the filtering means ``E[fn(x_t) | y_{0:t}]``).

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> ssm = pi.ssm.LinearGaussian.scalar()
    >>> _, ys = ssm.simulate(jax.random.key(0), 10)
    >>> fk = pi.ssm.bootstrap(ssm, ys, summary=pi.ssm.moments(lambda x: jnp.exp(x)))
    >>> pi.smc.run(jax.random.key(1), fk, 200).info.summary.var.shape
    (10, 1)
    """
    if fn is not None and not callable(fn):
        raise TypeError(f"fn must be a function of one particle, got {type(fn).__name__}")

    def summary(particles, log_weights, t):
        values = particles if fn is None else jax.vmap(fn)(particles)
        weights = jnp.exp(log_weights)
        mean = jax.tree_util.tree_map(lambda v: jnp.tensordot(weights, v, axes=(0, 0)), values)
        var = jax.tree_util.tree_map(
            lambda v, m: jnp.tensordot(weights, (v - m) ** 2, axes=(0, 0)), values, mean)
        return Moments(mean, var)

    return summary


def history(particles, log_weights, t):
    """A ``summary`` keeping every step's particles and normalised log-weights (what
    :func:`backward_sample` needs): ``res.info.summary == (particles (T, N, ...),
    log_weights (T, N))``."""
    return particles, log_weights


def lineages(ancestors: Array) -> Array:
    """Index at every step of each final particle's ancestor.

    Parameters
    ----------
    ancestors : ``(T, N)`` integer array, ``ancestors[t][i]`` the parent at ``t - 1`` of
        particle ``i`` at ``t`` (``res.info.ancestors`` of an SMC run with
        ``keep_ancestors=True``).

    Returns
    -------
    ``(T, N)`` array ``b`` with ``b[T-1] = 0..N-1`` and ``b[t-1] = ancestors[t][b[t]]``.

    Example
    -------
    >>> import jax.numpy as jnp, probinfer as pi
    >>> pi.ssm.lineages(jnp.array([[0, 1, 2], [0, 0, 2], [1, 1, 0]])).tolist()
    [[0, 0, 0], [1, 1, 0], [0, 1, 2]]
    """
    ancestors = jnp.asarray(ancestors)
    if ancestors.ndim != 2 or not jnp.issubdtype(ancestors.dtype, jnp.integer):
        raise ValueError(f"ancestors must be an integer array (T, N), got {ancestors.dtype} "
                         f"{ancestors.shape}")
    last = jnp.arange(ancestors.shape[1], dtype=ancestors.dtype)

    def back(current, parents):
        return parents[current], current

    first, rest = jax.lax.scan(back, last, ancestors[1:], reverse=True)
    return jnp.concatenate([first[None], rest])


def trajectories(particles: PyTree, ancestors: Array) -> PyTree:
    """The ancestral path of every final particle, ``(N, T, ...)`` per leaf.

    ``particles``: every step's particles, leaves ``(T, N, ...)`` (e.g. ``res.info.summary[0]``
    with :func:`history`); ``ancestors``: ``res.info.ancestors`` ``(T, N)``.
    """
    index = lineages(ancestors)
    steps = jnp.arange(index.shape[0])[:, None]
    return jax.tree_util.tree_map(lambda leaf: jnp.swapaxes(leaf[steps, index], 0, 1),
                                  particles)


def backward_sample(key: PRNGKey, ssm: StateSpaceModel, particles: Array, log_weights: Array,
                    num_trajectories: int) -> Array:
    """Forward filtering–backward sampling: ``num_trajectories`` smoothing paths.

    Parameters
    ----------
    key : PRNG key.
    ssm : the model (its batched ``transition_log_density`` is evaluated ``T·N·M`` times).
    particles : ``(T, N, d)`` filtering particles of every step.
    log_weights : ``(T, N)`` their normalised filtering log-weights.
    num_trajectories : ``M``.

    Returns
    -------
    ``(M, T, d)`` trajectories, each a draw from the particle approximation of
    ``p(x_{0:T-1} | y_{0:T-1})``. Pure (``jit``/``vmap`` it).
    """
    if not isinstance(ssm, StateSpaceModel):
        raise TypeError(f"ssm must be a probinfer.ssm.StateSpaceModel, got {type(ssm).__name__}")
    num_trajectories = check_positive_int(num_trajectories, "num_trajectories")
    particles, log_weights = jnp.asarray(particles), jnp.asarray(log_weights)
    if log_weights.ndim != 2 or particles.shape[:2] != log_weights.shape:
        raise ValueError("particles (T, N, ...) and log_weights (T, N) must agree, got "
                         f"{particles.shape} and {log_weights.shape}")
    num_steps = log_weights.shape[0]
    keys = jax.random.split(as_key(key), num_steps)
    last = jax.random.categorical(keys[-1], log_weights[-1], shape=(num_trajectories,))
    x_last = particles[-1][last]

    def back(x_next, inputs):
        step_key, x_t, log_w, t = inputs

        def log_transition(x_one):
            return ssm.transition_log_density(x_t, jnp.broadcast_to(x_one, x_t.shape), t + 1)

        logits = log_w[None, :] + jax.vmap(log_transition)(x_next)      # (M, N)
        chosen = jax.random.categorical(step_key, logits, axis=-1)
        x = x_t[chosen]
        return x, x

    _, earlier = jax.lax.scan(
        back, x_last, (keys[:-1], particles[:-1], log_weights[:-1], jnp.arange(num_steps - 1)),
        reverse=True)
    return jnp.swapaxes(jnp.concatenate([earlier, x_last[None]]), 0, 1)


def smooth(key: PRNGKey, ssm: StateSpaceModel, observations, num_particles: int,
           num_trajectories: int | None = None, *, proposal: Proposal | None = None,
           **run_options) -> Result:
    """Particle smoothing by forward filtering–backward sampling.

    Parameters
    ----------
    key : PRNG key (or an integer seed).
    ssm : the state-space model.
    observations : ``(T,)`` or ``(T, obs_dim)``.
    num_particles : ``N``, particles of the forward filter.
    num_trajectories : ``M`` backward draws (default ``N``).
    proposal : a :class:`~probinfer.ssm.Proposal` for a guided filter (default bootstrap).
    **run_options : passed to :func:`probinfer.smc.run` (resampling, policy, ...).

    Returns
    -------
    Result with ``samples`` ``(M, T, d)`` (equally weighted smoothing trajectories),
    ``log_evidence`` the filter's estimate of ``log p(y_{0:T-1})`` and ``info`` the filter's
    :class:`~probinfer.smc.SMCInfo` (``info.summary`` holds every step's particles and
    log-weights).

    Example
    -------
    >>> import jax, probinfer as pi
    >>> ssm = pi.ssm.LinearGaussian.scalar(rho=0.9, sigma_x=1.0, sigma_y=0.5)
    >>> _, ys = ssm.simulate(jax.random.key(0), 20)
    >>> res = pi.ssm.smooth(jax.random.key(1), ssm, ys, 200)
    >>> res.samples.shape                     # E[x_t | y_{0:T-1}] ≈ res.samples.mean(0)
    (200, 20, 1)
    """
    ys = _check_observations(ssm, observations)
    num_particles = check_positive_int(num_particles, "num_particles")
    num_trajectories = num_particles if num_trajectories is None else check_positive_int(
        num_trajectories, "num_trajectories")
    fk = (bootstrap(ssm, ys, summary=history) if proposal is None
          else guided(ssm, ys, proposal, summary=history))
    filter_key, backward_key = jax.random.split(as_key(key))
    filtered = _run_smc(filter_key, fk, num_particles, **run_options)
    particles, log_weights = filtered.info.summary
    paths = _backward_jit(backward_key, ssm, particles, log_weights, num_trajectories)
    uniform = jnp.full((num_trajectories,), -math.log(num_trajectories), log_weights.dtype)
    return Result(paths, uniform, filtered.log_evidence, filtered.info)


_backward_jit = jax.jit(backward_sample, static_argnames=("ssm", "num_trajectories"))
