"""Reverse-process samplers for continuous priors, each one transition ``step -> step + 1``.

All samplers are written against the noise grid only (``alphas``, ``sigmas`` of
:class:`~probinfer.diffusion.ContinuousDiffusionPrior`), so they serve VP and VE, discrete
and continuous schedules alike. Notation for a step from the noisier level ``s`` (step
``i``) to the cleaner level ``t`` (step ``i + 1``): ``r = alpha_s / alpha_t``, the forward
variance ``v = sigma_s² - r² sigma_t²`` (``x_s | x_t ~ N(r x_t, v I)``), ``x̂ = E[x_0 | x_s]``,
``ε̂ = (x_s - alpha_s x̂) / sigma_s``, the half log-SNR ``λ = log(alpha / sigma)`` and the
step in it ``h = λ_t - λ_s > 0``.

* :class:`DDPM` — ancestral sampling from ``q(x_t | x_s, x_0 = x̂)`` (Ho et al. 2020):
  mean ``r sigma_t²/sigma_s² x_s + alpha_t v/sigma_s² x̂``, variance ``v sigma_t²/sigma_s²``
  (``variance="posterior"``) or ``v`` (``"forward"``, Ho et al.'s ``sigma² = beta``).
* :class:`DDIM` — ``alpha_t x̂ + sqrt(sigma_t² - c²) ε̂ + c z`` with ``c = eta`` times the DDPM
  posterior std (Song, Meng & Ermon 2021); ``eta = 0`` is deterministic, ``eta = 1`` equals DDPM.
* :class:`EulerMaruyama` — Euler–Maruyama for the reverse SDE
  ``dx = [f x - g² ∇log p] dt + g dW̄`` (Song et al. 2021) with ``f dt`` and ``g² dt`` replaced
  by their integrals over the step, ``log r`` and ``v``:
  ``x_t = (1 - log r) x_s + v ∇log p(x_s) + sqrt(v) z``.
* :class:`Heun` — the deterministic second-order Heun solver of the probability-flow ODE
  in VE coordinates ``x/alpha`` over ``sigma/alpha`` (Karras et al. 2022, Algorithm 1,
  no churn): two denoiser calls per step, one on the last step (an Euler step to sigma 0).
* The DPM-Solver++ family (Lu et al. 2022, "DPM-Solver: A Fast ODE Solver for Diffusion
  Probabilistic Model Sampling in Around 10 Steps" and "DPM-Solver++: Fast Solver for
  Guided Sampling of Diffusion Probabilistic Models"), exponential integrators of the
  probability-flow ODE in data prediction. In ``λ`` the ODE is exactly

      ``x_t = (sigma_t/sigma_s) x_s + alpha_t ∫_0^h e^{-(h-u)} x̂(λ_s + u) du``,

  and the solvers replace ``x̂`` by a polynomial in ``u`` and integrate it exactly:
  ``φ0 = 1 - e^{-h}``, ``φ1 = h - 1 + e^{-h}``, ``ψ2 = h² - 2h + 2 - 2e^{-h}`` weigh the
  value, the slope and the curvature of ``x̂``. Order 1 is DDIM (eta = 0).

  - :class:`DPMSolver2S` (``"dpm_solver_2s"``, DPM-Solver++(2S)): a DDIM predictor to
    ``t``, a second denoiser call there, and the trapezoid of the two ``x̂`` (two calls per
    step, one on the last).
  - :class:`DPMSolverMultistep` (``"dpm_solver_2m"``, ``"dpm_solver_3m"``): the slope (and
    curvature) of ``x̂`` from the denoised values of the previous one (two) steps, by
    divided differences in ``λ`` (one call per step). Those values are the sampler's
    per-particle **memory** (:class:`MultistepMemory`).
  - :class:`DPMSolverSDE` (``"dpm_solver_2m_sde"``, SDE-DPM-Solver++(2M)): the same for the
    reverse SDE, ``mean = (sigma_t/sigma_s) e^{-h} x_s + alpha_t [(1 - e^{-2h}) x̂ +
    (h - (1 - e^{-2h})/2) ∂x̂/∂λ]``, ``std = sigma_t sqrt(1 - e^{-2h})``; its first-order
    step is exactly DDPM. A Gaussian transition, so steering and gradient proposals can use
    it (:meth:`~probinfer.diffusion.ContinuousDiffusionPrior.transition_mean_std` with
    ``memory=``).

  The slope term of a second-order step is weighed as in Lu et al.'s Algorithm 2,
  ``φ0 h / 2`` in place of ``φ1`` (``solver_type="midpoint"``, the default, as in
  ``diffusers``; for the SDE ``(1 - e^{-2h}) h / 2``), or integrated exactly
  (``solver_type="taylor"``, diffusers' "heun" type). Both are second order; on the exact
  mixture benchmark the midpoint weighting is the more accurate at 10 steps (sliced W2
  0.105 vs 0.178 in 2-D). Third-order steps integrate the quadratic exactly (``ψ2`` on
  the second divided difference); diffusers' ``DPMSolverMultistepScheduler`` weighs that
  term by ``ψ2 / 2``, the one place where the two 3M solvers differ (``docs/diffusion.md``).
  In 2S the intermediate evaluation sits at the next grid point (Lu et al.'s ``r = 1``
  rather than ``1/2``) because a prior's denoiser is defined on its step grid only (a
  network's time table).

Sampler memory
--------------
A multistep sampler's earlier denoised values belong to each particle, like its position:
when SMC resamples a particle, its history must move with it, or the slope would be
estimated from another particle's past. ``init_memory(prior, x)`` returns a pytree whose
leaves have the leading particle axis; ``step_with_memory(prior, key, x, denoised, memory,
i)`` returns ``(x_next, memory_next)``, and ``next_memory(prior, x, denoised, memory, i)``
the same ``memory_next`` alone (for proposals that draw from a shifted ``mean_std``).
Memoryless samplers use ``()``. The memoryless
``step`` of a multistep sampler is its first-order step (DDIM, or DDPM for the SDE).

The last step (``sigma_t = 0``) of DDPM, DDIM and the DPM-Solver family returns ``x̂``
exactly (first order: ``λ_t = ∞``).

Thresholding
------------
The DPM-Solver samplers take ``thresholding=Thresholding(ratio, max_value)``: every
denoised value is clipped per particle to ``[-s, s]`` and divided by ``s``, with ``s``
the ``ratio`` quantile of ``|x̂|`` clamped to ``[1, max_value]`` (dynamic thresholding,
Saharia et al. 2022; ``max_value = 1`` is plain clipping to ``[-1, 1]``). It applies
only to data known to lie in ``[-1, 1]`` (pixel-space images scaled that way), where it
keeps large guidance or few steps from overshooting; it changes the sampled law, so
leave it off for latent or unbounded data and for exact priors.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from probinfer._types import Array


class Sampler:
    """Base class: ``step(prior, key, x, denoised, i)`` and, for Gaussian steps, ``mean_std``.

    Samplers with memory (multistep solvers) also override :meth:`init_memory` and
    :meth:`step_with_memory`; the defaults keep no memory.
    """

    name: str = ""

    @property
    def is_stochastic(self) -> bool:
        raise NotImplementedError

    def nfe(self, num_steps: int) -> np.ndarray:
        return np.ones(num_steps, dtype=int)

    def mean_std(self, prior, x, denoised, i, memory=None):
        raise ValueError(f"the {self.name} sampler has no Gaussian transition density; use a "
                         "stochastic sampler (ddpm, ddim with eta > 0, euler_maruyama, "
                         "dpm_solver_2m_sde)")

    def step(self, prior, key, x, denoised, i):
        mean, std = self.mean_std(prior, x, denoised, i)
        return mean + std * jax.random.normal(key, x.shape, x.dtype)

    def init_memory(self, prior, x):
        """Per-particle memory at the first step; ``()`` for one-step samplers."""
        return ()

    def next_memory(self, prior, x, denoised, memory, i):
        """The memory after the step from ``i`` (it does not depend on the step's noise);
        one-step samplers pass it through."""
        return memory

    def step_with_memory(self, prior, key, x, denoised, memory, i):
        """``(x_next, memory_next)``; one-step samplers pass the memory through."""
        return self.step(prior, key, x, denoised, i), memory


def _two_per_step_one_last(num_steps):
    """Denoiser calls of two-stage solvers: the step to the data is a single Euler step."""
    counts = np.full(num_steps, 2, dtype=int)
    counts[-1] = 1
    return counts


def _levels(prior, i):
    a_s, s_s = prior.alpha_sigma(i)
    a_t, s_t = prior.alpha_sigma(i + 1)
    r = a_s / a_t
    v = s_s ** 2 - (r * s_t) ** 2
    return a_s, s_s, a_t, s_t, r, v


def _posterior(prior, x, denoised, i):
    a_s, s_s, a_t, s_t, r, v = _levels(prior, i)
    mean = (r * s_t ** 2 / s_s ** 2) * x + (a_t * v / s_s ** 2) * denoised
    return mean, v * s_t ** 2 / s_s ** 2, v


@dataclasses.dataclass(frozen=True)
class DDPM(Sampler):
    """DDPM ancestral sampling; ``variance`` is ``"posterior"`` (default) or ``"forward"``."""

    variance: str = "posterior"
    name = "ddpm"

    def __post_init__(self):
        if self.variance not in ("posterior", "forward"):
            raise ValueError(f"variance must be 'posterior' or 'forward', got {self.variance!r}")

    @property
    def is_stochastic(self):
        return True

    def mean_std(self, prior, x, denoised, i, memory=None):
        mean, var_post, var_fwd = _posterior(prior, x, denoised, i)
        var = var_post if self.variance == "posterior" else var_fwd * (prior.sigmas[i + 1] > 0)
        return mean, jnp.sqrt(jnp.reshape(var, ()))


@dataclasses.dataclass(frozen=True)
class DDIM(Sampler):
    """DDIM with stochasticity ``eta >= 0`` (``eta = 0``: deterministic; ``1``: DDPM)."""

    eta: float = 0.0
    name = "ddim"

    def __post_init__(self):
        if not (np.isfinite(self.eta) and self.eta >= 0):
            raise ValueError(f"eta must be finite and >= 0, got {self.eta}")

    @property
    def is_stochastic(self):
        return self.eta > 0

    def mean_std(self, prior, x, denoised, i, memory=None):
        a_s, s_s, a_t, s_t, _, _ = _levels(prior, i)
        _, var_post, _ = _posterior(prior, x, denoised, i)
        c2 = jnp.minimum(self.eta ** 2 * var_post, s_t ** 2)
        eps = (x - a_s * denoised) / s_s
        mean = a_t * denoised + jnp.sqrt(s_t ** 2 - c2) * eps
        return mean, jnp.sqrt(jnp.reshape(c2, ()))

    def step(self, prior, key, x, denoised, i):
        if self.eta == 0:
            return self.mean_std(prior, x, denoised, i)[0]
        return super().step(prior, key, x, denoised, i)


@dataclasses.dataclass(frozen=True)
class EulerMaruyama(Sampler):
    """Euler–Maruyama discretisation of the reverse-time SDE."""

    name = "euler_maruyama"

    @property
    def is_stochastic(self):
        return True

    def mean_std(self, prior, x, denoised, i, memory=None):
        a_s, s_s, _, _, r, v = _levels(prior, i)
        score = (a_s * denoised - x) / s_s ** 2
        mean = (1.0 - jnp.log(r)) * x + v * score
        return mean, jnp.sqrt(jnp.reshape(v, ()))


@dataclasses.dataclass(frozen=True)
class Heun(Sampler):
    """Deterministic Heun (EDM) solver of the probability-flow ODE, second order."""

    name = "heun"

    @property
    def is_stochastic(self):
        return False

    def nfe(self, num_steps):
        return _two_per_step_one_last(num_steps)

    def step(self, prior, key, x, denoised, i):
        a_s, s_s = prior.alpha_sigma(i)
        a_t, s_t = prior.alpha_sigma(i + 1)
        sig_s, sig_t = s_s / a_s, s_t / a_t        # VE-equivalent noise levels
        y = x / a_s
        slope = (y - denoised) / sig_s
        y_euler = y + (sig_t - sig_s) * slope

        def corrected(_):
            slope_t = (y_euler - prior.denoise(a_t * y_euler, i + 1)) / sig_t
            return y + (sig_t - sig_s) * 0.5 * (slope + slope_t)

        last = i + 1 >= prior.num_steps
        y_next = jax.lax.cond(last, lambda _: y_euler, corrected, None)
        return a_t * y_next


# --------------------------------------------------------------------------- DPM-Solver++


@dataclasses.dataclass(frozen=True)
class Thresholding:
    """Dynamic thresholding of denoised values (Saharia et al. 2022, "Photorealistic
    Text-to-Image Diffusion Models with Deep Language Understanding").

    Per particle, ``s = clip(quantile(|x̂|, ratio), 1, max_value)``; ``x̂ -> clip(x̂, -s, s)
    / s``. ``max_value = 1`` is plain clipping to ``[-1, 1]``. For data in ``[-1, 1]`` only
    (see the module docstring).
    """

    ratio: float = 0.995
    max_value: float = 1.0

    def __post_init__(self):
        if not (np.isfinite(self.ratio) and 0 < self.ratio <= 1):
            raise ValueError(f"ratio must lie in (0, 1], got {self.ratio}")
        if not (np.isfinite(self.max_value) and self.max_value >= 1):
            raise ValueError(f"max_value must be finite and >= 1, got {self.max_value}")

    def __call__(self, denoised: Array) -> Array:
        flat = jnp.abs(jnp.reshape(denoised, (denoised.shape[0], -1)))
        s = jnp.clip(jnp.quantile(flat, self.ratio, axis=1), 1.0, self.max_value)
        s = jnp.reshape(s, (-1,) + (1,) * (denoised.ndim - 1))
        return jnp.clip(denoised, -s, s) / s


def _check_thresholding(thresholding):
    if thresholding is not None and not isinstance(thresholding, Thresholding):
        raise TypeError(f"thresholding must be None or a probinfer.diffusion.Thresholding, "
                        f"got {type(thresholding).__name__}")


def _clip(thresholding, denoised):
    return denoised if thresholding is None else thresholding(denoised)


def _half_log_snr(prior, i):
    """``λ = log(alpha / sigma)`` at step ``i`` (``i < num_steps``)."""
    return jnp.log(prior.alphas[i]) - jnp.log(prior.sigmas[i])


def _exp_step(prior, i):
    """``sigma_t/sigma_s``, ``alpha_t``, ``h`` and whether ``t`` is the data step.

    At the data step ``h = ∞``; ``h`` is then returned as 1 (a finite stand-in) and every
    caller zeroes the terms beyond first order there, so no ``inf * 0`` is formed.
    """
    last = prior.sigmas[i + 1] == 0
    lam_s = _half_log_snr(prior, i)
    lam_t = _half_log_snr(prior, jnp.minimum(i + 1, prior.num_steps - 1))
    h = jnp.where(last, 1.0, lam_t - lam_s)
    ratio = prior.sigmas[i + 1] / prior.sigmas[i]
    return ratio, prior.alphas[i + 1], h, last


def _phis(h, last):
    """``φ0, φ1, ψ2`` of the module docstring (``φ0 = 1`` at the data step)."""
    phi0 = jnp.where(last, 1.0, -jnp.expm1(-h))
    phi1 = h - phi0
    psi2 = h ** 2 - 2.0 * phi1
    return phi0, phi1, psi2


class MultistepMemory(NamedTuple):
    """Per-particle history of a multistep solver.

    Attributes
    ----------
    denoised : ``(n, history, *event_shape)``; ``denoised[:, 0]`` is the (thresholded)
        denoised value of the previous step, ``denoised[:, 1]`` the one before.
    num_valid : ``(n,)`` int32, how many of those entries are filled (0 at the first step).
    """

    denoised: Array
    num_valid: Array


def _empty_memory(x, history):
    shape = (x.shape[0], history) + tuple(x.shape[1:])
    return MultistepMemory(jnp.zeros(shape, x.dtype), jnp.zeros(x.shape[0], jnp.int32))


def _push(memory, denoised):
    history = memory.denoised.shape[1]
    stacked = jnp.concatenate([denoised[:, None], memory.denoised[:, :history - 1]], axis=1)
    return MultistepMemory(stacked, jnp.minimum(memory.num_valid + 1, history))


def _check_memory(memory, x, history):
    if not isinstance(memory, MultistepMemory):
        raise TypeError(f"memory must be the MultistepMemory returned by init_memory, got "
                        f"{type(memory).__name__}")
    expected = (x.shape[0], history) + tuple(x.shape[1:])
    if tuple(memory.denoised.shape) != expected or tuple(memory.num_valid.shape) != x.shape[:1]:
        raise ValueError(f"memory must hold denoised values of shape {expected} and num_valid "
                         f"of shape {x.shape[:1]} for these particles, got "
                         f"{tuple(memory.denoised.shape)} and {tuple(memory.num_valid.shape)}")


def _orders(prior, i, memory, order, lower_order_final):
    """Per-particle order ``(n,)``: limited by the history each particle holds, by the steps
    left (``lower_order_final``), and to 1 on the step to the data."""
    k = jnp.minimum(order, 1 + memory.num_valid)
    if lower_order_final:
        k = jnp.minimum(k, prior.num_steps - i)
    return jnp.where(prior.sigmas[i + 1] == 0, 1, k)


def _slope_curvature(prior, i, denoised, memory, k):
    """``∂x̂/∂λ`` at ``λ_s`` and half the second derivative, from divided differences over
    the history (zero where the particle's order ``k`` does not use them)."""
    bcast = (-1,) + (1,) * (denoised.ndim - 1)
    lam_s = _half_log_snr(prior, i)
    lam_1 = _half_log_snr(prior, jnp.maximum(i - 1, 0))
    h0 = jnp.where(i >= 1, lam_s - lam_1, 1.0)
    f01 = (denoised - memory.denoised[:, 0]) / h0
    if memory.denoised.shape[1] < 2:
        return jnp.where(jnp.reshape(k >= 2, bcast), f01, 0.0), jnp.zeros_like(denoised)
    lam_2 = _half_log_snr(prior, jnp.maximum(i - 2, 0))
    h1 = jnp.where(i >= 2, lam_1 - lam_2, 1.0)
    f12 = (memory.denoised[:, 0] - memory.denoised[:, 1]) / h1
    f012 = (f01 - f12) / (h0 + h1)
    third = jnp.reshape(k >= 3, bcast)
    slope = jnp.where(third, f01 + h0 * f012, jnp.where(jnp.reshape(k >= 2, bcast), f01, 0.0))
    return slope, jnp.where(third, f012, 0.0)


SOLVER_TYPES = ("midpoint", "taylor")


def _check_solver_type(solver_type):
    if solver_type not in SOLVER_TYPES:
        raise ValueError(f"solver_type must be one of {SOLVER_TYPES}, got {solver_type!r}")


def _check_order_final(lower_order_final):
    if not isinstance(lower_order_final, (bool, np.bool_)):
        raise TypeError(f"lower_order_final must be a bool, got "
                        f"{type(lower_order_final).__name__}")


@dataclasses.dataclass(frozen=True)
class DPMSolver2S(Sampler):
    """DPM-Solver++(2S): single-step, second order, two denoiser calls per step (one on
    the last). Deterministic; no memory. See the module docstring."""

    thresholding: Thresholding | None = None
    name = "dpm_solver_2s"

    def __post_init__(self):
        _check_thresholding(self.thresholding)

    @property
    def is_stochastic(self):
        return False

    def nfe(self, num_steps):
        return _two_per_step_one_last(num_steps)

    def step(self, prior, key, x, denoised, i):
        ratio, a_t, h, last = _exp_step(prior, i)
        phi0, phi1, _ = _phis(h, last)
        d0 = _clip(self.thresholding, denoised)
        predictor = ratio * x + a_t * phi0 * d0

        def corrected(_):
            d_t = _clip(self.thresholding, prior.denoise(predictor, i + 1))
            return predictor + a_t * (phi1 / h) * (d_t - d0)

        return jax.lax.cond(last, lambda _: predictor, corrected, None)


@dataclasses.dataclass(frozen=True)
class DPMSolverMultistep(Sampler):
    """DPM-Solver++ multistep in data prediction, ``order`` 1, 2 (2M) or 3 (3M).

    Parameters
    ----------
    order : 2 (``"dpm_solver_2m"``) or 3 (``"dpm_solver_3m"``); 1 is DDIM.
    thresholding : optional :class:`Thresholding` of every denoised value.
    solver_type : how a second-order step weighs the slope: ``"midpoint"`` (Lu et al.'s
        Algorithm 2, default) or ``"taylor"`` (exact integral); see the module docstring.
    lower_order_final : lower the order on the last steps (at most ``num_steps - i`` at
        step ``i``), as DPM-Solver++ does for few-step sampling. The step to the data is
        always first order (``x̂``).

    Notes
    -----
    One denoiser call per step. The history lives in the particles' memory
    (:class:`MultistepMemory`); without it (``step``, ``transition``) the step is first
    order. Deterministic.

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> mix = pi.GaussianMixture(jnp.array([0.5, 0.5]), jnp.array([[-2.0], [2.0]]),
    ...                          jnp.stack([jnp.eye(1), jnp.eye(1)]))
    >>> prior = pi.diffusion.GaussianMixturePrior(mix, num_steps=10, sampler="dpm_solver_3m",
    ...                                           spacing="logsnr")
    >>> prior.sample(jax.random.key(0), 5).shape
    (5, 1)
    """

    order: int = 2
    thresholding: Thresholding | None = None
    lower_order_final: bool = True
    solver_type: str = "midpoint"

    def __post_init__(self):
        if self.order not in (1, 2, 3):
            raise ValueError(f"order must be 1, 2 or 3, got {self.order!r}")
        _check_thresholding(self.thresholding)
        _check_order_final(self.lower_order_final)
        _check_solver_type(self.solver_type)

    @property
    def name(self):
        return {1: "dpm_solver_1", 2: "dpm_solver_2m", 3: "dpm_solver_3m"}[self.order]

    @property
    def is_stochastic(self):
        return False

    def _update(self, prior, x, d0, slope, curvature, i, second_order=False):
        ratio, a_t, h, last = _exp_step(prior, i)
        phi0, phi1, psi2 = _phis(h, last)
        if self.solver_type == "midpoint":
            phi1 = jnp.where(second_order, 0.5 * h * phi0, phi1)
        return ratio * x + a_t * (phi0 * d0 + phi1 * slope + psi2 * curvature)

    def step(self, prior, key, x, denoised, i):
        d0 = _clip(self.thresholding, denoised)
        return self._update(prior, x, d0, 0.0, 0.0, i)

    def init_memory(self, prior, x):
        return _empty_memory(x, max(self.order - 1, 1))

    def next_memory(self, prior, x, denoised, memory, i):
        _check_memory(memory, x, max(self.order - 1, 1))
        return _push(memory, _clip(self.thresholding, denoised))

    def step_with_memory(self, prior, key, x, denoised, memory, i):
        _check_memory(memory, x, max(self.order - 1, 1))
        d0 = _clip(self.thresholding, denoised)
        k = _orders(prior, i, memory, self.order, self.lower_order_final)
        slope, curvature = _slope_curvature(prior, i, d0, memory, k)
        second = jnp.reshape(k == 2, (-1,) + (1,) * (x.ndim - 1))
        return self._update(prior, x, d0, slope, curvature, i, second), _push(memory, d0)


@dataclasses.dataclass(frozen=True)
class DPMSolverSDE(Sampler):
    """SDE-DPM-Solver++(2M): the stochastic second-order multistep solver.

    Gaussian transitions (``mean_std(..., memory=)``); its first-order step (no memory,
    the first step, the last step) is DDPM's posterior step. Parameters as
    :class:`DPMSolverMultistep` (order 2; ``"midpoint"`` weighs the slope by
    ``(1 - e^{-2h}) h / 2``, ``"taylor"`` by ``h - (1 - e^{-2h}) / 2``).
    """

    thresholding: Thresholding | None = None
    lower_order_final: bool = True
    solver_type: str = "midpoint"
    name = "dpm_solver_2m_sde"

    def __post_init__(self):
        _check_thresholding(self.thresholding)
        _check_order_final(self.lower_order_final)
        _check_solver_type(self.solver_type)

    @property
    def is_stochastic(self):
        return True

    def init_memory(self, prior, x):
        return _empty_memory(x, 1)

    def mean_std(self, prior, x, denoised, i, memory=None):
        ratio, a_t, h, last = _exp_step(prior, i)
        d0 = _clip(self.thresholding, denoised)
        decay2 = jnp.where(last, 0.0, jnp.exp(-2.0 * h))
        mean = ratio * jnp.where(last, 0.0, jnp.exp(-h)) * x + a_t * (1.0 - decay2) * d0
        if memory is not None:
            _check_memory(memory, x, 1)
            k = _orders(prior, i, memory, 2, self.lower_order_final)
            slope, _ = _slope_curvature(prior, i, d0, memory, k)
            weight = (0.5 * h * (1.0 - decay2) if self.solver_type == "midpoint"
                      else h - 0.5 * (1.0 - decay2))
            mean = mean + a_t * weight * slope
        std = prior.sigmas[i + 1] * jnp.sqrt(1.0 - decay2)
        return mean, jnp.reshape(std, ())

    def next_memory(self, prior, x, denoised, memory, i):
        _check_memory(memory, x, 1)
        return _push(memory, _clip(self.thresholding, denoised))

    def step_with_memory(self, prior, key, x, denoised, memory, i):
        mean, std = self.mean_std(prior, x, denoised, i, memory)
        x_next = mean + std * jax.random.normal(key, x.shape, x.dtype)
        return x_next, self.next_memory(prior, x, denoised, memory, i)


SAMPLERS = {"ddpm": DDPM, "ddim": DDIM, "euler_maruyama": EulerMaruyama, "heun": Heun,
            "dpm_solver_2s": DPMSolver2S,
            "dpm_solver_2m": functools.partial(DPMSolverMultistep, order=2),
            "dpm_solver_3m": functools.partial(DPMSolverMultistep, order=3),
            "dpm_solver_2m_sde": DPMSolverSDE}


def get_sampler(sampler) -> Sampler:
    """A sampler object from a name in :data:`SAMPLERS` or a :class:`Sampler` instance."""
    if isinstance(sampler, Sampler):
        return sampler
    if isinstance(sampler, str) and sampler in SAMPLERS:
        return SAMPLERS[sampler]()
    raise ValueError(f"sampler must be one of {sorted(SAMPLERS)} or a Sampler instance "
                     f"(e.g. probinfer.diffusion.DDIM(eta=0.5)), got {sampler!r}")
