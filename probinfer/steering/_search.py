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

from probinfer._chunks import check_chunk_size
from probinfer._compile import runner_key
from probinfer._types import Array
from probinfer._validation import check_positive_int, check_positive_scalar, is_concrete
from probinfer.diffusion.base import DiffusionPrior
from probinfer.particles.weights import uniform
from probinfer.result import Result
from probinfer.steering._rewards import (batch_reward, check_invalid_reward, check_reward,
                                         explain_failures, host_calls, screen)


class SearchInfo(NamedTuple):
    rewards: Array            # all rewards seen: best-of-N (num_samples, n); noise search trace
    best_reward: Array
    num_invalid_rewards: Array  # samples whose reward was NaN
    nfe: int
    num_reward_evaluations: int
    num_host_reward_calls: int

    def traces(self):
        """No per-step traces; the counters (see :func:`probinfer.diagnostics.to_arviz`)."""
        return {}, {"nfe": self.nfe, "num_reward_evaluations": self.num_reward_evaluations,
                    "num_host_reward_calls": self.num_host_reward_calls,
                    "num_invalid_rewards": self.num_invalid_rewards}


def _check(prior, reward):
    if not isinstance(prior, DiffusionPrior):
        raise TypeError(f"prior must be a probinfer diffusion prior, got {type(prior).__name__}")
    check_reward(reward)


def _float_dtype(x):
    return x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else None


def _raise_on_invalid(invalid, total: int, reject: bool) -> None:
    if not reject and is_concrete(invalid) and int(invalid) > 0:
        raise ValueError(f"the reward was NaN for {int(invalid)} of {total} sample(s). Fix the "
                         "reward, or pass invalid_reward='reject' so that such samples are "
                         "never selected (counted in info.num_invalid_rewards).")


def best_of_n(key, prior, reward, n: int, num_samples: int = 1, *,
              invalid_reward: str = "raise", chunk_size: int | None = None) -> Result:
    """Best of ``n`` unguided samples by reward, ``num_samples`` times.

    Returns a Result whose ``samples`` are the ``num_samples`` winners (equal weights;
    ``log_evidence`` NaN) and ``info.rewards`` all ``(num_samples, n)`` rewards.
    ``invalid_reward``: ``"raise"`` (a NaN reward is an error) or ``"reject"`` (NaN rewards
    count as ``-inf`` and are never selected unless all are; counted in
    ``info.num_invalid_rewards``). Vmappable over keys.

    ``chunk_size``: draw the ``n * num_samples`` samples in blocks of at most this many
    (one after the other on the device, ``jax.lax.map``, each block from its own key) and
    evaluate the reward on blocks of the same size (one host call per block for a host
    reward), so the denoiser's and the reward's intermediates take memory for
    ``chunk_size`` samples. The draws are then other draws of the same law than the
    unchunked run's (the prior draws a whole batch from one key). ``None``: all at once.

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
    reject = check_invalid_reward(invalid_reward)
    chunk_size = check_chunk_size(chunk_size)
    before = host_calls(reward)
    draws = _draw(prior, runner_key(key), n * num_samples, chunk_size)
    rewards, invalid = screen(explain_failures(
        reward, lambda: batch_reward(reward, draws, chunk_size)), reject)
    _raise_on_invalid(jnp.sum(invalid), n * num_samples, reject)
    rewards = rewards.reshape(num_samples, n)
    best = jnp.argmax(rewards, axis=1)
    winners = draws.reshape((num_samples, n) + draws.shape[1:])[jnp.arange(num_samples), best]
    info = SearchInfo(rewards, rewards[jnp.arange(num_samples), best], jnp.sum(invalid),
                      int(n * num_samples * np.sum(prior.nfe_per_step)), n * num_samples,
                      host_calls(reward) - before)
    return Result(winners, uniform(num_samples, _float_dtype(winners)), jnp.asarray(jnp.nan),
                  info)


def _draw(prior, key, total: int, chunk_size: int | None):
    """``total`` unguided draws, all at once or in blocks of ``chunk_size`` (see best_of_n)."""
    if chunk_size is None or total <= chunk_size:
        return prior.sample(key, total)
    num_blocks = -(-total // chunk_size)
    blocks = jax.lax.map(lambda k: prior.sample(k, chunk_size),
                         jax.random.split(key, num_blocks))
    return blocks.reshape((num_blocks * chunk_size,) + blocks.shape[2:])[:total]


def _generate(prior, noise):
    """The deterministic map from step-0 particles to data (keys are unused)."""
    dummy = jax.random.key(0)

    def body(x, step):
        return prior.transition(dummy, x, step), None

    x, _ = jax.lax.scan(body, noise, jnp.arange(prior.num_steps))
    return x


def noise_search(key, prior, reward, num_candidates: int, num_local_steps: int = 0,
                 num_neighbours: int = 8, perturbation=0.2, *,
                 invalid_reward: str = "raise") -> Result:
    """Random search over initial noises, then zero-order local search around the best.

    Needs a deterministic sampler (e.g. ``sampler="ddim"``, ``"heun"``), so that a noise
    determines its sample. Returns a Result with the single best sample, and in
    ``info.rewards`` the best reward after the random search and after each local step.
    ``invalid_reward`` as in :func:`best_of_n`.
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
    reject = check_invalid_reward(invalid_reward)
    before = host_calls(reward)
    init_key, local_key = jax.random.split(runner_key(key))
    sigma0 = prior.sigmas[0] if hasattr(prior, "sigmas") else 1.0

    compiled = jax.jit(lambda noise: _generate(prior, noise))
    num_invalid = 0

    def score(noise):
        nonlocal num_invalid
        x = compiled(noise)
        values, invalid = screen(explain_failures(reward, lambda: batch_reward(reward, x)),
                                 reject)
        _raise_on_invalid(jnp.sum(invalid), noise.shape[0], reject)
        num_invalid += int(jnp.sum(invalid))
        return x, values

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
    info = SearchInfo(jnp.stack(trace), r_best, jnp.asarray(num_invalid),
                      int(evaluations * np.sum(prior.nfe_per_step)), evaluations,
                      host_calls(reward) - before)
    return Result(x_best[None], uniform(1, _float_dtype(x_best)), jnp.asarray(jnp.nan), info)
