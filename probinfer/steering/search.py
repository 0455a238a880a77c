"""Best-of-N and noise search (Ma et al. 2025, "Inference-Time Scaling for Diffusion Models
beyond Scaling Denoising Steps"): the reward is the verifier, the prior is run unguided.

* :func:`best_of_n`: draw ``n`` samples, keep the one with the highest reward (repeated
  ``num_samples`` times independently). The selected reward has the law of the maximum of
  ``n`` i.i.d. rewards: CDF ``F(r)^n``.
* :func:`noise_search`: with a deterministic sampler, ``x_0`` is a function of the initial
  noise; random search over ``num_candidates`` noises, then a zero-order local search:
  ``num_neighbours`` perturbations ``sqrt(1-ρ²) z* + ρ σ_0 ξ`` of the best noise ``z*`` (a
  move that keeps the Gaussian noise law), moving whenever a neighbour scores higher.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from probinfer._types import Array
from probinfer._validation import check_positive_int, check_positive_scalar
from probinfer.diffusion.base import DiffusionPrior
from probinfer.result import Result
from probinfer.steering.rewards import HostReward, batch_reward, check_reward


class SearchInfo(NamedTuple):
    rewards: Array            # all rewards seen: best-of-N (num_samples, n); noise search trace
    best_reward: Array
    nfe: int
    num_reward_evaluations: int
    num_host_reward_calls: int


def _check(prior, reward):
    if not isinstance(prior, DiffusionPrior):
        raise TypeError(f"prior must be a probinfer diffusion prior, got {type(prior).__name__}")
    check_reward(reward)


def _host_calls(reward):
    return reward.num_calls if isinstance(reward, HostReward) else 0


def _uniform_log_weights(n, dtype):
    dtype = dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.float32
    return jnp.full(n, -jnp.log(n), dtype)


def best_of_n(key, prior, reward, n: int, num_samples: int = 1) -> Result:
    """Best of ``n`` unguided samples by reward, ``num_samples`` times.

    Returns a Result whose ``samples`` are the ``num_samples`` winners (equal weights;
    ``log_evidence`` NaN) and ``info.rewards`` all ``(num_samples, n)`` rewards.

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> mix = pi.GaussianMixture(jnp.array([1.0]), jnp.zeros((1, 2)), jnp.eye(2)[None])
    >>> prior = pi.diffusion.GaussianMixturePrior(mix, num_steps=20)
    >>> pi.steer.best_of_n(jax.random.key(0), prior, lambda x: x[0], n=8).samples.shape
    (1, 2)
    """
    _check(prior, reward)
    n = check_positive_int(n, "n")
    num_samples = check_positive_int(num_samples, "num_samples")
    before = _host_calls(reward)
    draws = prior.sample(key, n * num_samples)
    rewards = batch_reward(reward, draws).reshape(num_samples, n)
    best = jnp.argmax(rewards, axis=1)
    winners = draws.reshape((num_samples, n) + draws.shape[1:])[jnp.arange(num_samples), best]
    info = SearchInfo(rewards, rewards[jnp.arange(num_samples), best],
                      int(n * num_samples * np.sum(prior.nfe_per_step)), n * num_samples,
                      _host_calls(reward) - before)
    return Result(winners, _uniform_log_weights(num_samples, winners.dtype),
                  jnp.asarray(jnp.nan), info)


def _generate(prior, noise):
    """The deterministic map from step-0 particles to data (keys are unused)."""
    dummy = jax.random.key(0)

    def body(x, step):
        return prior.transition(dummy, x, step), None

    x, _ = jax.lax.scan(body, noise, jnp.arange(prior.num_steps))
    return x


def noise_search(key, prior, reward, num_candidates: int, num_local_steps: int = 0,
                 num_neighbours: int = 8, perturbation=0.2) -> Result:
    """Random search over initial noises, then zero-order local search around the best.

    Needs a deterministic sampler (e.g. ``sampler="ddim"``, ``"heun"``), so that a noise
    determines its sample. Returns a Result with the single best sample, and in
    ``info.rewards`` the best reward after the random search and after each local step.
    """
    _check(prior, reward)
    if prior.is_stochastic:
        raise ValueError("noise_search needs a deterministic sampler (x_0 must be a function "
                         "of the initial noise): build the prior with sampler='ddim' (eta=0) "
                         "or 'heun'; for stochastic samplers use best_of_n")
    num_candidates = check_positive_int(num_candidates, "num_candidates")
    num_local_steps = check_positive_int(num_local_steps, "num_local_steps", 0)
    num_neighbours = check_positive_int(num_neighbours, "num_neighbours")
    rho = check_positive_scalar(perturbation, "perturbation")
    if float(rho) > 1:
        raise ValueError(f"perturbation must lie in (0, 1], got {float(rho)}")
    before = _host_calls(reward)
    init_key, local_key = jax.random.split(key)
    sigma0 = prior.sigmas[0] if hasattr(prior, "sigmas") else 1.0

    @jax.jit
    def score(noise):
        x = _generate(prior, noise)
        return x, batch_reward(reward, x)

    noises = prior.init(init_key, num_candidates)
    xs, rewards = score(noises)
    best = int(jnp.argmax(rewards))
    z, x_best, r_best = noises[best], xs[best], rewards[best]
    trace = [r_best]
    for k in jax.random.split(local_key, num_local_steps):
        xi = jax.random.normal(k, (num_neighbours,) + z.shape, z.dtype)
        neighbours = jnp.sqrt(1 - rho ** 2) * z[None] + rho * sigma0 * xi
        xs, rewards = score(neighbours)
        i = int(jnp.argmax(rewards))
        if rewards[i] > r_best:
            z, x_best, r_best = neighbours[i], xs[i], rewards[i]
        trace.append(r_best)
    evaluations = num_candidates + num_local_steps * num_neighbours
    info = SearchInfo(jnp.stack(trace), r_best, int(evaluations * np.sum(prior.nfe_per_step)),
                      evaluations, _host_calls(reward) - before)
    return Result(x_best[None], _uniform_log_weights(1, x_best.dtype), jnp.asarray(jnp.nan),
                  info)
