"""Noise schedules for continuous diffusion, their conversions, and timestep subsets.

Every schedule describes the forward (noising) process ``x_t = alpha(t) x_0 + sigma(t) eps``
with ``eps ~ N(0, I)``, in the schedule's *native time* ``t`` (the value a network is
conditioned on):

* variance preserving (VP, DDPM / score-SDE): ``alpha² + sigma² = 1``;
  :class:`VPSchedule` (continuous time ``t ∈ (0, 1]``, linear or cosine) and
  :class:`DiscreteVPSchedule` (DDPM: integer timesteps ``0 .. T-1`` over a ``betas`` array);
* variance exploding (VE / EDM): ``alpha = 1``; :class:`VESchedule`.

Conversion: a VP state is a scaled VE state, ``x_ve = x_vp / alpha`` at the VE noise level
``sigma_ve = sigma / alpha = exp(-log_snr / 2)``. Every schedule maps native time to
``sigma_ve`` and back (:meth:`Schedule.sigma_ve`, :meth:`Schedule.time_from_sigma_ve`), which
is how Karras (EDM) spacing is applied to any schedule and how second-order solvers run in
VE coordinates on VP models.

Timestep subsets for few-step sampling (:func:`timesteps`): ``uniform`` and ``quadratic``
(DDIM, Song et al. 2021) in native time, ``karras`` (Karras et al. 2022, "Elucidating the
Design Space of Diffusion-Based Generative Models", eq. 5) in ``sigma_ve``, ``logsnr``
(uniform in the log-SNR, "time-uniform in λ", the DPM-Solver grid of Lu et al. 2022), and
the ``leading`` / ``trailing`` grids of ``diffusers`` (Lin et al. 2024, "Common Diffusion
Noise Schedules and Sample Steps are Flawed"; :func:`discrete_timesteps` on discrete
schedules).
"""

from __future__ import annotations

import math

import numpy as np
import jax.numpy as jnp

from probinfer._types import Array
from probinfer._validation import check_positive_int

SPACINGS = ("uniform", "quadratic", "karras", "logsnr", "leading", "trailing")
DISCRETE_SPACINGS = ("trailing", "leading", "linspace")


class Schedule:
    """Base class: ``alpha(t)``, ``sigma(t)`` over native time ``t ∈ [t_min, t_max]``.

    Larger ``t`` is noisier. ``discrete`` schedules only accept integer times.
    """

    kind: str = "vp"
    discrete: bool = False
    t_min: float
    t_max: float

    def alpha_sigma(self, t) -> tuple[Array, Array]:
        raise NotImplementedError

    def sigma_ve(self, t):
        """The VE-equivalent noise level ``sigma / alpha`` (NumPy, float64)."""
        raise NotImplementedError

    def time_from_sigma_ve(self, sigma_ve):
        """Inverse of :meth:`sigma_ve` (NumPy, float64); discrete schedules round to the
        nearest timestep in log-sigma."""
        raise NotImplementedError

    def log_snr(self, t) -> Array:
        alpha, sigma = self.alpha_sigma(t)
        return 2.0 * (jnp.log(alpha) - jnp.log(sigma))

    @property
    def sigma_ve_range(self) -> tuple[float, float]:
        return float(self.sigma_ve(self.t_min)), float(self.sigma_ve(self.t_max))


def _check_range(value, name, low, high):
    if not (np.isfinite(value) and low < value < high):
        raise ValueError(f"{name} must lie in ({low}, {high}), got {value}")
    return float(value)


class VPSchedule(Schedule):
    """Continuous-time variance-preserving schedule.

    ``beta="linear"``: ``log alpha²(t) = -(beta_min t + ½ (beta_max - beta_min) t²)``
    (Song et al. 2021, "Score-Based Generative Modeling through SDEs");
    ``beta="cosine"``: ``alpha²(t) = cos²(π/2 (t+s)/(1+s)) / cos²(π/2 s/(1+s))``
    (Nichol & Dhariwal 2021). The cosine schedule reaches ``alpha = 0`` at ``t = 1``, so
    its default ``t_max`` is 0.999.

    Example
    -------
    >>> import probinfer as pi
    >>> s = pi.diffusion.VPSchedule("cosine")
    >>> a, sig = s.alpha_sigma(0.5)
    >>> round(float(a ** 2 + sig ** 2), 6)
    1.0
    """

    kind = "vp"

    def __init__(self, beta: str = "linear", beta_min: float = 0.1, beta_max: float = 20.0,
                 s: float = 0.008, t_min: float = 1e-3, t_max: float | None = None):
        if beta not in ("linear", "cosine"):
            raise ValueError(f"beta must be 'linear' or 'cosine', got {beta!r}")
        self.beta = beta
        if beta == "linear":
            if not (np.isfinite(beta_min) and np.isfinite(beta_max) and 0 < beta_min < beta_max):
                raise ValueError(f"need 0 < beta_min < beta_max, got beta_min={beta_min}, "
                                 f"beta_max={beta_max}")
        self.beta_min, self.beta_max = float(beta_min), float(beta_max)
        self.s = _check_range(s, "s", 0.0, 1.0)
        t_max = (1.0 if beta == "linear" else 0.999) if t_max is None else t_max
        self.t_max = _check_range(t_max, "t_max", 0.0, 1.0 + 1e-12)
        self.t_min = _check_range(t_min, "t_min", 0.0, self.t_max)

    def _neg_log_alpha2(self, t, xp):
        if self.beta == "linear":
            return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t ** 2
        f = xp.cos(0.5 * math.pi * (t + self.s) / (1 + self.s))
        f0 = math.cos(0.5 * math.pi * self.s / (1 + self.s))
        return -2.0 * xp.log(f / f0)

    def alpha_sigma(self, t):
        t = jnp.asarray(t, dtype=jnp.result_type(float))
        nla2 = self._neg_log_alpha2(t, jnp)
        return jnp.exp(-0.5 * nla2), jnp.sqrt(-jnp.expm1(-nla2))

    def sigma_ve(self, t):
        return np.sqrt(np.expm1(self._neg_log_alpha2(np.asarray(t, np.float64), np)))

    def time_from_sigma_ve(self, sigma_ve):
        nla2 = np.log1p(np.asarray(sigma_ve, np.float64) ** 2)   # -log alpha²
        if self.beta == "linear":
            a = 0.5 * (self.beta_max - self.beta_min)
            return (-self.beta_min + np.sqrt(self.beta_min ** 2 + 4 * a * nla2)) / (2 * a)
        f0 = math.cos(0.5 * math.pi * self.s / (1 + self.s))
        return (2 / math.pi) * (1 + self.s) * np.arccos(f0 * np.exp(-0.5 * nla2)) - self.s

    def __repr__(self):
        return f"VPSchedule({self.beta!r})"


class DiscreteVPSchedule(Schedule):
    """DDPM-style discrete VP schedule over integer timesteps ``0 .. T-1``.

    ``alpha²[n] = prod_{j <= n} (1 - betas[j])`` (Ho et al. 2020). Build it from an explicit
    ``betas`` array (each in (0, 1)) or with :meth:`linear` / :meth:`cosine`.

    Example
    -------
    >>> import probinfer as pi
    >>> s = pi.diffusion.DiscreteVPSchedule.linear(1000)
    >>> s.t_max
    999
    """

    kind = "vp"
    discrete = True

    def __init__(self, betas):
        b = np.asarray(betas, dtype=np.float64)
        if b.ndim != 1 or b.size < 2:
            raise ValueError(f"betas must be a 1-D array of length >= 2, got shape {b.shape}")
        if not np.all(np.isfinite(b)) or np.any(b <= 0) or np.any(b >= 1):
            raise ValueError("betas must lie strictly inside (0, 1)")
        self.betas = b
        self._alpha2 = np.cumprod(1.0 - b)
        self._log_sigma_ve = 0.5 * np.log(1.0 / self._alpha2 - 1.0)
        self.t_min, self.t_max = 0, b.size - 1

    @classmethod
    def linear(cls, num_train_steps: int = 1000, beta_start: float = 1e-4,
               beta_end: float = 0.02) -> "DiscreteVPSchedule":
        num_train_steps = check_positive_int(num_train_steps, "num_train_steps", 2)
        if not 0 < beta_start < beta_end < 1:
            raise ValueError(f"need 0 < beta_start < beta_end < 1, got {beta_start}, {beta_end}")
        return cls(np.linspace(beta_start, beta_end, num_train_steps))

    @classmethod
    def cosine(cls, num_train_steps: int = 1000, s: float = 0.008,
               max_beta: float = 0.999) -> "DiscreteVPSchedule":
        num_train_steps = check_positive_int(num_train_steps, "num_train_steps", 2)
        grid = np.arange(num_train_steps + 1) / num_train_steps
        f = np.cos(0.5 * np.pi * (grid + s) / (1 + s)) ** 2
        return cls(np.minimum(1 - f[1:] / f[:-1], max_beta))

    @property
    def num_train_steps(self) -> int:
        return self.betas.size

    def alpha_sigma(self, t):
        alpha2 = jnp.asarray(self._alpha2, dtype=jnp.result_type(float))[
            jnp.asarray(t, dtype=jnp.int32)]
        return jnp.sqrt(alpha2), jnp.sqrt(1.0 - alpha2)

    def sigma_ve(self, t):
        return np.exp(self._log_sigma_ve[np.asarray(t, dtype=int)])

    def time_from_sigma_ve(self, sigma_ve):
        log_s = np.log(np.asarray(sigma_ve, np.float64))
        idx = np.clip(np.searchsorted(self._log_sigma_ve, log_s), 1, self.t_max)
        lower_closer = (log_s - self._log_sigma_ve[idx - 1]) < (self._log_sigma_ve[idx] - log_s)
        return np.where(lower_closer, idx - 1, idx)

    def __repr__(self):
        return f"DiscreteVPSchedule(num_train_steps={self.num_train_steps})"


class VESchedule(Schedule):
    """Variance-exploding schedule: ``alpha = 1``, ``sigma(t) = sigma_min (sigma_max/sigma_min)^t``.

    ``VESchedule(0.002, 80.0)`` with ``spacing="karras"`` is the EDM sampler's noise grid
    (Karras et al. 2022); see :func:`edm`.
    """

    kind = "ve"

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0):
        if not (np.isfinite(sigma_min) and np.isfinite(sigma_max) and 0 < sigma_min < sigma_max):
            raise ValueError(f"need 0 < sigma_min < sigma_max, got sigma_min={sigma_min}, "
                             f"sigma_max={sigma_max}")
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        self.t_min, self.t_max = 0.0, 1.0

    def alpha_sigma(self, t):
        t = jnp.asarray(t, dtype=jnp.result_type(float))
        sigma = self.sigma_min * (self.sigma_max / self.sigma_min) ** t
        return jnp.ones_like(sigma), sigma

    def sigma_ve(self, t):
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** np.asarray(t, np.float64)

    def time_from_sigma_ve(self, sigma_ve):
        return (np.log(np.asarray(sigma_ve, np.float64) / self.sigma_min)
                / math.log(self.sigma_max / self.sigma_min))

    def __repr__(self):
        return f"VESchedule(sigma_min={self.sigma_min}, sigma_max={self.sigma_max})"


def edm(sigma_min: float = 0.002, sigma_max: float = 80.0) -> VESchedule:
    """The EDM noise range (Karras et al. 2022); use it with ``spacing="karras"``."""
    return VESchedule(sigma_min, sigma_max)


def karras_sigmas(num: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> np.ndarray:
    """``num`` noise levels from ``sigma_max`` down to ``sigma_min``, uniform in ``sigma^(1/rho)``.

    Karras et al. (2022), eq. 5. Returns a float64 NumPy array (decreasing).
    """
    num = check_positive_int(num, "num")
    if not (0 < sigma_min < sigma_max and np.isfinite(sigma_max)):
        raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
    if not (np.isfinite(rho) and rho > 0):
        raise ValueError(f"rho must be finite and > 0, got {rho}")
    if num == 1:
        return np.array([sigma_max])
    ramp = np.linspace(0.0, 1.0, num)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return (hi + ramp * (lo - hi)) ** rho


def discrete_timesteps(num_train_steps: int, num_steps: int, spacing: str = "trailing",
                       steps_offset: int = 0) -> np.ndarray:
    """Decreasing training timesteps of a few-step grid on ``0 .. T-1`` (diffusers spacings).

    ``"trailing"``: ``round(arange(T, 0, -T/S)) - 1``, starting at ``T - 1`` (Lin et al.
    2024, "Common Diffusion Noise Schedules and Sample Steps are Flawed");
    ``"leading"``: ``arange(S) * (T // S) + steps_offset``, reversed (the DDIM paper's grid);
    ``"linspace"``: ``round(linspace(0, T - 1, S))``, reversed.

    Example
    -------
    >>> discrete_timesteps(1000, 4).tolist()
    [999, 749, 499, 249]
    """
    num_train_steps = check_positive_int(num_train_steps, "num_train_steps", 2)
    num_steps = check_positive_int(num_steps, "num_steps")
    if num_steps > num_train_steps:
        raise ValueError(f"num_steps={num_steps} exceeds the {num_train_steps} training steps")
    if spacing == "trailing":
        grid = np.round(np.arange(num_train_steps, 0, -num_train_steps / num_steps)) - 1
    elif spacing == "leading":
        grid = (np.arange(num_steps) * (num_train_steps // num_steps) + steps_offset)[::-1]
    elif spacing == "linspace":
        grid = np.round(np.linspace(0, num_train_steps - 1, num_steps))[::-1]
    else:
        raise ValueError(f"spacing must be one of {DISCRETE_SPACINGS}, got {spacing!r}")
    grid = np.clip(grid.astype(np.int64), 0, num_train_steps - 1)
    if np.any(np.diff(grid) >= 0):
        raise ValueError(f"{num_steps} {spacing}-spaced steps collide on {num_train_steps} "
                         "training steps")
    return grid


def timesteps(schedule: Schedule, num_steps: int, spacing: str = "uniform",
              rho: float = 7.0) -> np.ndarray:
    """The ``num_steps`` native times of the noisy grid points, decreasing.

    ``uniform``: evenly spaced in native time from ``t_max`` to ``t_min``; ``quadratic``:
    ``t_min + (t_max - t_min) u²`` on an even grid ``u`` (denser near the data);
    ``karras``: :func:`karras_sigmas` over the schedule's ``sigma_ve`` range, mapped back to
    native time; ``logsnr``: evenly spaced in ``log sigma_ve = -log-SNR / 2`` (the
    ``rho -> ∞`` limit of ``karras``, what the DPM-Solvers are analysed on);
    ``trailing``: ``t_min + (t_max - t_min) (S - j) / S`` for ``j = 0 .. S-1`` (starts at
    the noisiest time, never reaches ``t_min``); ``leading``: the same shifted down by one
    interval (ends at ``t_min``, never reaches ``t_max``, so its first state is not pure
    noise: Lin et al. 2024 explain why that hurts priors started from ``N(0, sigma²)``). On
    a :class:`DiscreteVPSchedule` these two are :func:`discrete_timesteps` exactly.
    Discrete schedules round to integer timesteps, and raise if two grid points coincide.

    Example
    -------
    >>> import probinfer as pi
    >>> t = pi.diffusion.timesteps(pi.diffusion.VPSchedule(), 5, "logsnr")
    >>> t.shape, bool(t[0] == 1.0)
    ((5,), True)
    """
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a probinfer.diffusion Schedule, got "
                        f"{type(schedule).__name__}")
    num_steps = check_positive_int(num_steps, "num_steps")
    if spacing not in SPACINGS:
        raise ValueError(f"spacing must be one of {SPACINGS}, got {spacing!r}")
    if schedule.discrete and spacing in ("leading", "trailing"):
        return discrete_timesteps(schedule.t_max + 1, num_steps, spacing)
    u = np.linspace(1.0, 0.0, num_steps) if num_steps > 1 else np.ones(1)
    lo, hi = schedule.t_min, schedule.t_max
    if spacing == "uniform":
        t = lo + (hi - lo) * u
    elif spacing == "quadratic":
        t = lo + (hi - lo) * u ** 2
    elif spacing in ("leading", "trailing"):
        shift = 1 if spacing == "leading" else 0
        t = lo + (hi - lo) * (num_steps - shift - np.arange(num_steps)) / num_steps
    else:
        s_lo, s_hi = schedule.sigma_ve_range
        if spacing == "karras":
            sig = karras_sigmas(num_steps, s_lo, s_hi, rho)
        else:
            sig = np.exp(np.log(s_lo) + (np.log(s_hi) - np.log(s_lo)) * u)
        t = np.clip(schedule.time_from_sigma_ve(sig), lo, hi)
    if schedule.discrete:
        t = np.rint(t).astype(int)
        if np.any(np.diff(t) >= 0):
            raise ValueError(f"{num_steps} {spacing}-spaced steps do not fit in the "
                             f"{schedule.t_max + 1} timesteps of {schedule!r}: two grid points "
                             "coincide; use fewer steps or another spacing")
    return t


def check_timesteps(schedule: Schedule, times) -> np.ndarray:
    """Validate a user-given grid of native times: strictly decreasing, inside the range."""
    t = np.asarray(times)
    if t.ndim != 1 or t.size < 1:
        raise ValueError(f"timesteps must be a non-empty 1-D array, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError("timesteps must be finite")
    if np.any(np.diff(t) >= 0):
        raise ValueError("timesteps must be strictly decreasing (step 0 is the noisiest)")
    if t.max() > schedule.t_max or t.min() < schedule.t_min:
        raise ValueError(f"timesteps must lie in [{schedule.t_min}, {schedule.t_max}] for "
                         f"{schedule!r}, got range [{t.min()}, {t.max()}]")
    if schedule.discrete:
        if not np.all(t == np.rint(t)):
            raise ValueError(f"{schedule!r} is discrete: timesteps must be integers")
        t = t.astype(int)
    return t
