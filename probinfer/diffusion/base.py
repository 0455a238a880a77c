"""The diffusion-prior interface (continuous and discrete) and the eps/x0/v/score conversions.

Step convention (used everywhere in probinfer)
-----------------------------------------------
A prior runs ``num_steps`` reverse (generative) transitions. **Step 0 is pure noise and
step ``num_steps`` is data**: ``init`` returns particles at step 0, and
``transition(key, x, step)`` maps particles at ``step`` to ``step + 1`` for
``step = 0 .. num_steps - 1``. Steps therefore count forward in the generative direction,
like the time index of a Feynman–Kac model. For continuous priors the state at step ``i``
is ``x = alphas[i] x_0 + sigmas[i] eps`` with ``sigmas[num_steps] == 0``; for masked priors
step ``i`` has a fraction ``1 - unmasked[i]`` of masked positions on average (all at step 0,
none at ``num_steps``).

Particles are arrays with a leading particle axis: ``(n, *event_shape)``. Every method is
batched over that axis and pure (``jit``/``scan``-friendly; ``step`` may be traced).

The interface steering relies on:

``init(key, num_samples)``
    particles at step 0.
``transition(key, x, step)``
    one reverse step of the chosen sampler (``nfe_per_step[step]`` denoiser calls).
``transition_given_denoised(key, x, denoised, step)``
    the same step reusing ``denoised = denoise(x, step)`` a caller already has (saves one
    denoiser call per step when intermediate rewards need the denoised estimate).
``denoise(x, step)``
    ``E[x_0 | x_step]`` (continuous) or per-position categorical probabilities
    ``p(x_0^l | x_step)``, shape ``(n, length, vocab_size)`` (masked).
``transition_log_density(x, x_next, step)``
    ``log p(x_next | x)`` per particle, for stochastic samplers.
``init_memory(x)``, ``transition_with_memory(key, x, denoised, memory, step)``
    the sampler's per-particle memory (a multistep solver's earlier denoised values; ``()``
    for one-step samplers) and the step that reads and updates it, returning
    ``(x_next, memory_next)``. Every leaf of the memory has the leading particle axis, so a
    runner that resamples ``(x, memory)`` in one gather moves each particle's history with
    it. ``next_memory(x, denoised, memory, step)`` is ``memory_next`` alone (for proposals
    that draw from a shifted ``transition_mean_std(..., memory=memory)``). ``transition``
    and ``transition_given_denoised`` are the memoryless form (for a multistep solver: its
    first-order step); ``sample`` uses the memory form.
``is_stochastic``, ``num_steps``, ``nfe_per_step``
    whether transitions are random (resampled copies of a particle diverge only then),
    the step count, and denoiser calls per transition (NFE accounting).
``sample(key, num_samples)``
    the full unguided reverse run, compiled as one ``lax.scan``.
"""

from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp

from probinfer._compile import cached
from probinfer._random import fast_key
from probinfer._types import Array, PRNGKey
from probinfer._validation import check_positive_int
from probinfer.diffusion.samplers import get_sampler
from probinfer.diffusion.schedules import Schedule, check_timesteps
from probinfer.diffusion.schedules import timesteps as make_timesteps


def x0_from_eps(x, eps, alpha, sigma):
    """``x_0 = (x - sigma eps) / alpha``."""
    return (x - sigma * eps) / alpha


def eps_from_x0(x, x0, alpha, sigma):
    """``eps = (x - alpha x_0) / sigma``."""
    return (x - alpha * x0) / sigma


def x0_from_v(x, v, alpha, sigma):
    """v-prediction ``v = alpha eps - sigma x_0`` (Salimans & Ho 2022) to ``x_0``.

    Valid for VP schedules (``alpha² + sigma² = 1``): ``x_0 = alpha x - sigma v``.
    """
    return alpha * x - sigma * v


def v_from_x0(x, x0, alpha, sigma):
    """``v = alpha eps - sigma x_0`` with ``eps`` from :func:`eps_from_x0`."""
    return alpha * eps_from_x0(x, x0, alpha, sigma) - sigma * x0


def score_from_x0(x, x0, alpha, sigma):
    """Tweedie: ``∇ log p_t(x) = (alpha E[x_0|x] - x) / sigma²``."""
    return (alpha * x0 - x) / sigma ** 2


class DiffusionPrior:
    """Base class of every diffusion prior (continuous or masked); see the module docstring."""

    num_steps: int
    event_shape: tuple

    def init(self, key: PRNGKey, num_samples: int) -> Array:
        raise NotImplementedError

    def denoise(self, x: Array, step) -> Array:
        raise NotImplementedError

    def transition_given_denoised(self, key: PRNGKey, x: Array, denoised: Array, step) -> Array:
        raise NotImplementedError

    def transition_log_density(self, x: Array, x_next: Array, step) -> Array:
        raise NotImplementedError

    @property
    def is_stochastic(self) -> bool:
        raise NotImplementedError

    @property
    def nfe_per_step(self) -> np.ndarray:
        """Denoiser evaluations per particle of ``transition`` at each step, ``(num_steps,)``."""
        raise NotImplementedError

    def init_memory(self, x: Array):
        """Per-particle sampler memory at step 0 for particles ``x`` (a pytree whose leaves
        have the leading particle axis), e.g. a multistep solver's earlier denoised values
        (:class:`~probinfer.diffusion.MultistepMemory`).

        One-step samplers keep none: ``()``. Runners carry the memory with the particles,
        so when SMC resamples a particle its history moves with it.
        """
        return ()

    def transition_with_memory(self, key: PRNGKey, x: Array, denoised: Array, memory, step):
        """One reverse step that reads and updates the sampler memory:
        ``(x_next, memory_next)``, with ``denoised = denoise(x, step)``. One-step samplers
        ignore the memory. The memory must come from :meth:`init_memory` at step 0 and be
        threaded through every step in order (a multistep solver reads it as the denoised
        values of steps ``step - 1``, ``step - 2``)."""
        return self.transition_given_denoised(key, x, denoised, step), memory

    def next_memory(self, x: Array, denoised: Array, memory, step):
        """The memory :meth:`transition_with_memory` returns, without taking the step (it
        does not depend on the step's noise): for proposals that draw ``x_next`` from a
        shifted :meth:`~ContinuousDiffusionPrior.transition_mean_std` instead. One-step
        samplers return ``memory`` unchanged."""
        return memory

    def clean_draws(self, key: PRNGKey, x: Array, denoised: Array, num_draws: int) -> Array:
        """Estimates of the clean sample given particles at an intermediate step, shape
        ``(m, n, *event_shape)``, for intermediate rewards.

        Continuous priors return the posterior mean ``E[x_0 | x_t]`` once (``m = 1``, the
        FK-steering convention ``r(E[x_0 | x_t])``); priors that can draw ``x_0 | x_t``
        exactly (masked diffusion) return ``m = num_draws`` draws.
        """
        raise NotImplementedError

    def transition(self, key: PRNGKey, x: Array, step) -> Array:
        """One reverse step: particles at ``step`` -> particles at ``step + 1``."""
        self.check_particles(x)
        return self.transition_given_denoised(key, x, self.denoise(x, step), step)

    def check_particles(self, x) -> None:
        """Raise if ``x`` is not ``(n, *event_shape)`` (shapes are static, so this also runs
        under ``jit``)."""
        shape = tuple(jnp.shape(x))
        if len(shape) != 1 + len(self.event_shape) or shape[1:] != tuple(self.event_shape):
            raise ValueError(f"particles must have shape (num_particles, "
                             f"{', '.join(map(str, self.event_shape))}) for this prior, got "
                             f"{shape}")

    def _run(self, key, num_samples, return_trajectory):
        init_key, key = jax.random.split(key)
        x = self.init(init_key, num_samples)
        keys = jax.random.split(key, self.num_steps)

        def body(carry, inputs):
            x, memory = carry
            step_key, step = inputs
            self.check_particles(x)
            x, memory = self.transition_with_memory(step_key, x, self.denoise(x, step), memory,
                                                    step)
            return (x, memory), (x if return_trajectory else None)

        (x_final, _), path = jax.lax.scan(body, (x, self.init_memory(x)),
                                          (keys, jnp.arange(self.num_steps)))
        if return_trajectory:
            return jnp.concatenate([x[None], path])
        return x_final

    def sample(self, key: PRNGKey, num_samples: int, return_trajectory: bool = False) -> Array:
        """Run the whole unguided reverse process (one compiled ``lax.scan``).

        Returns the particles at step ``num_steps``, shape ``(num_samples, *event_shape)``,
        or with ``return_trajectory=True`` every step, ``(num_steps + 1, num_samples, ...)``.
        """
        num_samples = check_positive_int(num_samples, "num_samples")
        run = cached(self, ("sample", num_samples, bool(return_trajectory)), lambda: jax.jit(
            lambda key: self._run(key, num_samples, bool(return_trajectory))))
        # Same bits as the caller's key, generated faster on CPU (see probinfer._random).
        return run(fast_key(key))


class ContinuousDiffusionPrior(DiffusionPrior):
    """A Gaussian diffusion prior over ``R^event_shape`` driven by a denoiser.

    Subclasses implement :meth:`denoise` (``E[x_0 | x_step]``, batched); everything else
    (score, eps/v predictions, samplers, log-densities, the full run) follows from it.

    Parameters
    ----------
    schedule : a :class:`~probinfer.diffusion.Schedule`.
    num_steps : number of reverse transitions.
    event_shape : shape of one sample.
    sampler : ``"ddpm"``, ``"ddim"`` (eta = 0), ``"euler_maruyama"``, ``"heun"``,
        ``"dpm_solver_2s"``, ``"dpm_solver_2m"``, ``"dpm_solver_3m"``,
        ``"dpm_solver_2m_sde"`` or a sampler object
        (:class:`~probinfer.diffusion.DDIM` ``(eta=...)``,
        :class:`~probinfer.diffusion.DPMSolverMultistep` ``(order=..., thresholding=...)``
        etc.); see :mod:`probinfer.diffusion.samplers`.
    spacing : ``"uniform"``, ``"quadratic"``, ``"karras"``, ``"logsnr"``, ``"leading"`` or
        ``"trailing"`` (see :func:`~probinfer.diffusion.timesteps`); ignored when
        ``timesteps`` is given.
    rho : Karras exponent.
    timesteps : optional explicit native times of steps ``0 .. num_steps-1`` (strictly
        decreasing); step ``num_steps`` is always the data.
    dtype : float dtype of the grid (default: JAX's default float).

    Attributes
    ----------
    timesteps : (num_steps,) native times, what a network is conditioned on at each step.
    alphas, sigmas : (num_steps + 1,) noise levels; ``alphas[-1] = 1``, ``sigmas[-1] = 0``.
    """

    def __init__(self, schedule: Schedule, num_steps: int, event_shape, sampler="ddpm",
                 spacing: str = "uniform", rho: float = 7.0, timesteps=None, dtype=None):
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be a probinfer.diffusion Schedule, got "
                            f"{type(schedule).__name__}")
        self.schedule = schedule
        if timesteps is None:
            self.num_steps = check_positive_int(num_steps, "num_steps")
            times = make_timesteps(schedule, self.num_steps, spacing, rho)
        else:
            times = check_timesteps(schedule, timesteps)
            self.num_steps = times.size
            if num_steps is not None and num_steps != self.num_steps:
                raise ValueError(f"num_steps={num_steps} does not match len(timesteps)="
                                 f"{self.num_steps}")
        self.event_shape = tuple(int(s) for s in event_shape)
        self.sampler = get_sampler(sampler)
        dtype = jnp.result_type(float) if dtype is None else dtype
        alpha, sigma = schedule.alpha_sigma(jnp.asarray(times))
        self.timesteps = jnp.asarray(times)
        self.alphas = jnp.concatenate([alpha, jnp.ones(1)]).astype(dtype)
        self.sigmas = jnp.concatenate([sigma, jnp.zeros(1)]).astype(dtype)
        if not bool(jnp.all(jnp.diff(self.sigmas / self.alphas) < 0)):
            raise ValueError("the noise grid must decrease strictly from step 0 to the data")

    @property
    def dtype(self):
        return self.alphas.dtype

    def _bcast(self, values, step):
        """``values[step]`` broadcast against particles ``(n, *event_shape)``."""
        return jnp.reshape(values[step], (1,) + (1,) * len(self.event_shape))

    def alpha_sigma(self, step):
        return self._bcast(self.alphas, step), self._bcast(self.sigmas, step)

    def init(self, key, num_samples):
        """``N(0, sigmas[0]² I)``: the usual start, exact when ``alphas[0] x_0`` is negligible."""
        z = jax.random.normal(key, (num_samples,) + self.event_shape, self.dtype)
        return self.sigmas[0] * z

    def clean_draws(self, key, x, denoised, num_draws):
        """``E[x_0 | x_t]`` once, shape ``(1, n, *event_shape)`` (see the base class)."""
        return denoised[None]

    def score(self, x, step):
        """``∇_x log p_step(x)`` (for ``step < num_steps``), from the denoiser by Tweedie."""
        alpha, sigma = self.alpha_sigma(step)
        return score_from_x0(x, self.denoise(x, step), alpha, sigma)

    def predict_eps(self, x, step):
        """The noise prediction ``E[eps | x_step]`` (for ``step < num_steps``)."""
        alpha, sigma = self.alpha_sigma(step)
        return eps_from_x0(x, self.denoise(x, step), alpha, sigma)

    def predict_v(self, x, step):
        """The v-prediction ``alpha E[eps|x] - sigma E[x_0|x]`` (for ``step < num_steps``)."""
        alpha, sigma = self.alpha_sigma(step)
        return v_from_x0(x, self.denoise(x, step), alpha, sigma)

    @property
    def is_stochastic(self) -> bool:
        return self.sampler.is_stochastic

    @property
    def nfe_per_step(self) -> np.ndarray:
        return self.sampler.nfe(self.num_steps)

    def transition_given_denoised(self, key, x, denoised, step):
        """The memoryless step (first order for a multistep sampler)."""
        return self.sampler.step(self, key, x, denoised, step)

    def init_memory(self, x):
        """The sampler's per-particle memory at step 0: ``()``, or for the multistep
        DPM-Solvers a :class:`~probinfer.diffusion.MultistepMemory` (earlier denoised
        values ``(n, history, *event_shape)`` and ``num_valid`` ``(n,)``)."""
        self.check_particles(x)
        return self.sampler.init_memory(self, x)

    def transition_with_memory(self, key, x, denoised, memory, step):
        return self.sampler.step_with_memory(self, key, x, denoised, memory, step)

    def next_memory(self, x, denoised, memory, step):
        return self.sampler.next_memory(self, x, denoised, memory, step)

    def transition_mean_std(self, x, step, denoised=None, memory=None):
        """Mean ``(n, *event_shape)`` and scalar std of a Gaussian transition.

        The std is 0 at steps where the sampler is deterministic (e.g. the last DDPM step,
        which returns ``E[x_0 | x]``). Twisted or gradient-guided proposals shift this mean.
        ``memory`` (from :meth:`init_memory`) makes ``"dpm_solver_2m_sde"`` use its
        second-order mean, the law :meth:`transition_with_memory` draws from; without it
        the first-order (memoryless) step's. One-step samplers ignore it.
        Raises ``ValueError`` for non-Gaussian (deterministic multi-evaluation) samplers.
        """
        denoised = self.denoise(x, step) if denoised is None else denoised
        return self.sampler.mean_std(self, x, denoised, step, memory)

    def transition_log_density(self, x, x_next, step, denoised=None, memory=None):
        """``log p(x_next | x)`` per particle, shape ``(n,)`` (``memory``: see
        :meth:`transition_mean_std`).

        At a step whose std is 0 the transition is a point mass at its mean; the value
        returned there is 0 (a deterministic move contributes nothing to proposal ratios).
        """
        self.check_particles(x)
        self.check_particles(x_next)
        mean, std = self.transition_mean_std(x, step, denoised, memory)
        axes = tuple(range(1, x.ndim))
        d = int(np.prod(self.event_shape))
        safe = jnp.where(std > 0, std, 1.0)
        log_q = (-0.5 * jnp.sum(((x_next - mean) / safe) ** 2, axis=axes)
                 - d * jnp.log(safe) - 0.5 * d * jnp.log(2 * jnp.pi))
        return jnp.where(std > 0, log_q, jnp.zeros_like(log_q))
