"""Masked (absorbing-state) discrete diffusion over token sequences (MDLM / MD4 style).

A sequence of ``length`` tokens from ``{0 .. vocab_size-1}``; the extra value
``mask_id = vocab_size`` is the absorbing mask. The forward process masks each position
independently: at time ``t ∈ [0, 1]`` a position is still unmasked with probability
``alpha(t)`` (``linear``: ``1 - t``; ``cosine``: ``1 - cos(π/2 (1 - t))``, Shi et al. 2024,
"Simplified and Generalized Masked Diffusion for Discrete Data"). Step ``i`` of the
reverse process sits at ``t_i = 1 - i / num_steps``: step 0 is all-masked, step
``num_steps`` is data.

Reverse transitions, given the denoiser's per-position probabilities
``p(x_0^l | x_t)`` (Sahoo et al. 2024, "Simple and Effective Masked Diffusion Language
Models"):

* ``"ancestral"``: each masked position is unmasked with probability
  ``(alpha_{i+1} - alpha_i) / (1 - alpha_i)`` and, if so, takes a token drawn from its
  probabilities; unmasked positions are kept.
* ``"first_hitting"``: exactly one masked position, chosen uniformly, is unmasked per step,
  so ``num_steps = length``. For a time-agnostic denoiser (one whose output does not
  depend on ``t``, such as every exact prior) this is the first-hitting sampler of Zheng
  et al. 2024: it visits the same sequence of unmaskings as the continuous-time process
  without simulating the empty steps, hence is exact in ``length`` steps.

Tokens are drawn with :func:`~probinfer.diffusion.categorical`, which keeps probabilities
that float32 Gumbel-max sampling truncates.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import jax
import jax.numpy as jnp

from probinfer._validation import check_positive_int
from probinfer.diffusion.base import DiffusionPrior
from probinfer.diffusion.categorical import best_float, categorical

MASKING_SCHEDULES = ("linear", "cosine")


class MaskedSampler:
    """Base class of the reverse samplers of masked priors: ``step`` draws the next
    particles from the denoiser's probabilities, ``log_density`` scores a move."""

    name: str = ""

    def check_steps(self, num_steps: int, length: int) -> None:
        """Raise if this sampler cannot run ``num_steps`` steps over sequences of ``length``."""

    def step(self, prior, key, x, probs, step):
        raise NotImplementedError

    def log_density(self, prior, x, x_next, probs, step):
        raise NotImplementedError


def _revealed_token_log_probs(prior, x, x_next, probs):
    masked = x == prior.mask_id
    revealed = masked & (x_next != prior.mask_id)
    illegal = jnp.any(~masked & (x_next != x), axis=1)
    token = jnp.take_along_axis(probs, jnp.clip(x_next, 0, prior.vocab_size - 1)[..., None],
                                axis=-1)[..., 0]
    return masked, revealed, illegal, jnp.where(revealed, jnp.log(token), 0.0)


@dataclasses.dataclass(frozen=True)
class Ancestral(MaskedSampler):
    """Each masked position is unmasked with probability ``(alpha_{i+1} - alpha_i) /
    (1 - alpha_i)`` and takes a token drawn from its own probabilities. Positions unmasked
    in the same step are drawn independently, so the joint law is exact only in the limit
    of many steps (or for data without dependence between positions)."""

    name = "ancestral"

    def step(self, prior, key, x, probs, step):
        pick_key, token_key = jax.random.split(key)
        unmask = jax.random.uniform(pick_key, x.shape) < prior.unmask_probability(step)
        tokens = categorical(token_key, probs)
        return jnp.where((x == prior.mask_id) & unmask, tokens, x).astype(x.dtype)

    def log_density(self, prior, x, x_next, probs, step):
        masked, revealed, illegal, log_token = _revealed_token_log_probs(prior, x, x_next, probs)
        p = prior.unmask_probability(step)
        log_pick = jnp.where(revealed, jnp.log(p), jnp.where(masked, jnp.log1p(-p), 0.0))
        return jnp.where(illegal, -jnp.inf, jnp.sum(log_pick + log_token, axis=1))


@dataclasses.dataclass(frozen=True)
class FirstHitting(MaskedSampler):
    """Exactly one masked position, chosen uniformly, is unmasked per step
    (``num_steps = length``). Exact for time-agnostic denoisers (Zheng et al. 2024)."""

    name = "first_hitting"

    def check_steps(self, num_steps, length):
        if num_steps != length:
            raise ValueError(f"the first-hitting sampler unmasks one position per step, so "
                             f"num_steps must equal length={length}, got {num_steps}")

    def step(self, prior, key, x, probs, step):
        pick_key, token_key = jax.random.split(key)
        masked = x == prior.mask_id
        priority = jnp.where(masked, jax.random.uniform(pick_key, x.shape), -1.0)
        position = jnp.argmax(priority, axis=1)
        rows = jnp.arange(x.shape[0])
        tokens = categorical(token_key, probs[rows, position])
        new = jnp.where(masked[rows, position], tokens, x[rows, position])
        return x.at[rows, position].set(new.astype(x.dtype))

    def log_density(self, prior, x, x_next, probs, step):
        masked, revealed, illegal, log_token = _revealed_token_log_probs(prior, x, x_next, probs)
        num_masked = jnp.sum(masked, axis=1)
        total = jnp.sum(log_token, axis=1) - jnp.log(jnp.maximum(num_masked, 1))
        illegal = illegal | (jnp.sum(revealed, axis=1) != jnp.minimum(num_masked, 1))
        return jnp.where(illegal, -jnp.inf, total)


MASKED_SAMPLERS = {"ancestral": Ancestral, "first_hitting": FirstHitting}


def get_masked_sampler(sampler) -> MaskedSampler:
    """A masked sampler from an instance or a name in :data:`MASKED_SAMPLERS`."""
    if isinstance(sampler, MaskedSampler):
        return sampler
    if isinstance(sampler, str) and sampler in MASKED_SAMPLERS:
        return MASKED_SAMPLERS[sampler]()
    raise ValueError(f"sampler must be one of {sorted(MASKED_SAMPLERS)} or a MaskedSampler "
                     f"(probinfer.diffusion.FirstHitting(), ...), got {sampler!r}")


def unmasked_fraction(t, schedule: str = "linear"):
    """``alpha(t)``: the probability that a position is still unmasked at time ``t``."""
    if schedule not in MASKING_SCHEDULES:
        raise ValueError(f"schedule must be one of {MASKING_SCHEDULES}, got {schedule!r}")
    t = np.asarray(t, dtype=np.float64)
    if np.any((t < 0) | (t > 1)):
        raise ValueError("masking times must lie in [0, 1]")
    return 1.0 - t if schedule == "linear" else 1.0 - np.cos(0.5 * math.pi * (1.0 - t))


class MaskedDiffusionPrior(DiffusionPrior):
    """Base class of masked-diffusion priors; subclasses implement :meth:`denoise`.

    Parameters
    ----------
    vocab_size : K, the number of real tokens (the mask is token ``K``).
    length : sequence length L.
    num_steps : reverse transitions (default ``length``); must equal ``length`` (or be
        None) for ``sampler="first_hitting"``.
    schedule : ``"linear"`` or ``"cosine"`` masking schedule.
    sampler : ``"ancestral"``, ``"first_hitting"`` or a :class:`MaskedSampler`
        (:class:`Ancestral`, :class:`FirstHitting`).
    """

    def __init__(self, vocab_size: int, length: int, num_steps: int | None = None,
                 schedule: str = "linear", sampler="ancestral"):
        self.vocab_size = check_positive_int(vocab_size, "vocab_size", 2)
        self.length = check_positive_int(length, "length")
        sampler = get_masked_sampler(sampler)
        if num_steps is None:
            num_steps = self.length
        num_steps = check_positive_int(num_steps, "num_steps")
        sampler.check_steps(num_steps, self.length)
        self.num_steps, self.sampler, self.masking_schedule = num_steps, sampler, schedule
        self.event_shape = (self.length,)
        self.mask_id = self.vocab_size
        times = np.linspace(1.0, 0.0, num_steps + 1)
        self.unmasked = jnp.asarray(unmasked_fraction(times, schedule), dtype=best_float())

    @property
    def is_stochastic(self) -> bool:
        return True

    @property
    def nfe_per_step(self) -> np.ndarray:
        return np.ones(self.num_steps, dtype=int)

    def init(self, key, num_samples):
        """All-masked sequences, ``(num_samples, length)`` int32."""
        return jnp.full((num_samples, self.length), self.mask_id, jnp.int32)

    def check_particles(self, x) -> None:
        super().check_particles(x)
        if not jnp.issubdtype(jnp.asarray(x).dtype, jnp.integer):
            raise TypeError(f"masked-diffusion particles must be integer tokens, got dtype "
                            f"{jnp.asarray(x).dtype}")

    def clean_draws(self, key, x, denoised, num_draws):
        """``num_draws`` draws of ``x_0 | x_t``, ``(num_draws, n, length)``: unmasked
        positions are kept, masked ones drawn from the denoiser's probabilities."""
        keys = jax.random.split(key, num_draws)
        masked = x == self.mask_id
        return jax.vmap(lambda k: jnp.where(masked, categorical(k, denoised), x))(keys)

    def unmask_probability(self, step):
        """Probability that a position masked at ``step`` is unmasked at ``step + 1``."""
        a_s, a_t = self.unmasked[step], self.unmasked[step + 1]
        return (a_t - a_s) / (1.0 - a_s)

    def transition_given_denoised(self, key, x, denoised, step):
        self.check_particles(x)
        return self.sampler.step(self, key, x, denoised, step)

    def transition_log_density(self, x, x_next, step, denoised=None):
        """``log p(x_next | x)`` per sequence, ``(n,)``; ``-inf`` for impossible moves."""
        self.check_particles(x)
        self.check_particles(x_next)
        probs = self.denoise(x, step) if denoised is None else denoised
        return self.sampler.log_density(self, x, x_next, probs, step)
