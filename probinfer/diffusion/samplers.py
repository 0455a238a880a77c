"""Reverse-process samplers for continuous priors, each one transition ``step -> step + 1``.

All samplers are written against the noise grid only (``alphas``, ``sigmas`` of
:class:`~probinfer.diffusion.ContinuousDiffusionPrior`), so they serve VP and VE, discrete
and continuous schedules alike. Notation for a step from the noisier level ``s`` (step
``i``) to the cleaner level ``t`` (step ``i + 1``): ``r = alpha_s / alpha_t``, the forward
variance ``v = sigma_s² - r² sigma_t²`` (``x_s | x_t ~ N(r x_t, v I)``), ``x̂ = E[x_0 | x_s]``,
``ε̂ = (x_s - alpha_s x̂) / sigma_s``.

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

The last step (``sigma_t = 0``) of DDPM and DDIM returns ``x̂`` exactly.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import jax
import jax.numpy as jnp


class Sampler:
    """Base class: ``step(prior, key, x, denoised, i)`` and, for Gaussian steps, ``mean_std``."""

    name: str = ""

    @property
    def is_stochastic(self) -> bool:
        raise NotImplementedError

    def nfe(self, num_steps: int) -> np.ndarray:
        return np.ones(num_steps, dtype=int)

    def mean_std(self, prior, x, denoised, i):
        raise ValueError(f"the {self.name} sampler has no Gaussian transition density; use a "
                         "stochastic sampler (ddpm, ddim with eta > 0, euler_maruyama)")

    def step(self, prior, key, x, denoised, i):
        mean, std = self.mean_std(prior, x, denoised, i)
        return mean + std * jax.random.normal(key, x.shape, x.dtype)


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

    def mean_std(self, prior, x, denoised, i):
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

    def mean_std(self, prior, x, denoised, i):
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

    def mean_std(self, prior, x, denoised, i):
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
        counts = np.full(num_steps, 2, dtype=int)
        counts[-1] = 1
        return counts

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


SAMPLERS = {"ddpm": DDPM, "ddim": DDIM, "euler_maruyama": EulerMaruyama, "heun": Heun}


def get_sampler(sampler) -> Sampler:
    """A sampler object from a name in :data:`SAMPLERS` or a :class:`Sampler` instance."""
    if isinstance(sampler, Sampler):
        return sampler
    if isinstance(sampler, str) and sampler in SAMPLERS:
        return SAMPLERS[sampler]()
    raise ValueError(f"sampler must be one of {sorted(SAMPLERS)} or a Sampler instance "
                     f"(e.g. probinfer.diffusion.DDIM(eta=0.5)), got {sampler!r}")
