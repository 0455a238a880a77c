"""Rewards for steering: JAX rewards, batched host rewards, intermediate reward estimates.

A reward is a function of ONE clean sample returning a scalar. JAX rewards are traced and
vmapped. Host rewards (NumPy, torch, RDKit, ...) are batched Python functions wrapped by
:func:`host_reward`: under ``vmap`` the wrapper makes ONE host call per batch of
particles, never one per particle.
"""

from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp

from probinfer.diffusion.categorical import categorical
from probinfer.diffusion.masked import MaskedDiffusionPrior
from probinfer.particles.weights import log_mean_exp


class HostReward:
    """A batched host function ``f(samples (B, *event_shape)) -> (B,)`` as a JAX reward.

    Call it on one sample inside JAX code; ``jax.vmap`` over particles turns that into a
    single host call with the whole batch (``jax.pure_callback`` with
    ``vmap_method="broadcast_all"``). ``num_calls`` and ``num_evaluations`` count host calls
    and samples scored, for NFE/reward-call accounting.

    Example
    -------
    >>> import numpy as np, probinfer as pi
    >>> reward = pi.steer.host_reward(lambda xs: -np.sum(np.asarray(xs) ** 2, axis=-1))
    """

    def __init__(self, fn, dtype=None):
        if not callable(fn):
            raise TypeError("fn must be a batched callable: samples (B, ...) -> rewards (B,)")
        self.fn = fn
        self.dtype = jnp.result_type(float) if dtype is None else dtype
        self.num_calls = 0
        self.num_evaluations = 0

    def _host(self, event_ndim, x):
        x = np.asarray(x)
        batch_shape = x.shape[:x.ndim - event_ndim]
        flat = x.reshape((-1,) + x.shape[x.ndim - event_ndim:])
        out = np.asarray(self.fn(flat), dtype=self.dtype)
        if out.shape != (flat.shape[0],):
            raise ValueError(f"host reward must return shape ({flat.shape[0]},) for a batch of "
                             f"{flat.shape[0]} samples, got {out.shape}")
        self.num_calls += 1
        self.num_evaluations += flat.shape[0]
        return out.reshape(batch_shape)

    def __call__(self, x):
        x = jnp.asarray(x)
        return jax.pure_callback(lambda v: self._host(x.ndim, v),
                                 jax.ShapeDtypeStruct((), self.dtype), x,
                                 vmap_method="broadcast_all")


def host_reward(fn, dtype=None) -> HostReward:
    """Wrap a batched host reward ``fn(samples (B, ...)) -> (B,)``; see :class:`HostReward`."""
    return HostReward(fn, dtype)


def batch_reward(reward, x):
    """Rewards of a batch ``(n, *event_shape) -> (n,)`` (one host call for host rewards)."""
    out = jax.vmap(reward)(x)
    if out.shape != x.shape[:1]:
        raise ValueError(f"reward must return a scalar per sample, got shape {out.shape[1:]}")
    return out


def check_reward(reward) -> None:
    if not callable(reward):
        raise TypeError("reward must be callable: one sample -> scalar (wrap batched host "
                        "functions with probinfer.steer.host_reward)")


def denoised_samples(key, prior, x, denoised, num_draws: int):
    """Draws of ``x_0 | x_t`` for masked priors: ``(num_draws, n, L)``.

    Unmasked positions are kept; masked ones are drawn from the denoiser's probabilities.
    """
    keys = jax.random.split(key, num_draws)
    masked = x == prior.mask_id
    return jax.vmap(lambda k: jnp.where(masked, categorical(k, denoised), x))(keys)


def intermediate_reward(key, prior, reward, x, denoised, inverse_temperature, num_draws: int):
    """The reward estimate at an intermediate step.

    Continuous priors: ``r(E[x_0 | x_t])`` (the denoised estimate). Masked priors: the soft
    value ``T log mean_j exp(r(x_0^j) / T)`` over ``num_draws`` draws ``x_0^j ~ p(x_0 | x_t)``,
    which is the log-mean-exp of rewards at ``T = 1``.
    """
    if isinstance(prior, MaskedDiffusionPrior):
        draws = denoised_samples(key, prior, x, denoised, num_draws)
        rewards = batch_reward(reward, draws.reshape((-1,) + draws.shape[2:]))
        rewards = rewards.reshape(num_draws, x.shape[0])
        return log_mean_exp(inverse_temperature * rewards, axis=0) / inverse_temperature
    return batch_reward(reward, denoised)
