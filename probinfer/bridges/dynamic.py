"""Dynamic Schrödinger bridges by iterative proportional fitting (IPF) with drift regression.

The bridge between empirical marginals ``mu_0`` (time ``t_0``) and ``mu_1`` (time ``t_1``)
for the reference ``dX = f(X; params) dt + sigma dW`` is the path measure closest in KL to
the reference with those end marginals. IPF alternates two half-bridges (Kullback 1968;
Vargas et al. 2021, "Solving Schrödinger bridges via maximum likelihood"; De Bortoli et al.
2021, "Diffusion Schrödinger bridge"):

1. simulate the current forward SDE from ``mu_0`` (Euler–Maruyama, ``K`` steps) and fit the
   drift of its time reversal by regression on the simulated transitions;
2. simulate that backward SDE from ``mu_1`` and fit the forward drift the same way.

The first forward SDE is the reference. The regression targets are the discrete-time
mean-matching targets of De Bortoli et al. (2021, Prop. 3), and each fitted drift is the
reference drift (``+f`` forward, ``-f`` backward, the drift of the reversal without its
score term) plus a ridge-regularised linear model in a fixed feature map
(:class:`RandomFeatures`, a random-Fourier-feature approximation of a GP in space and time,
or :class:`LinearDrift`, affine in ``x`` with piecewise-linear coefficients in time). Away
from the simulated paths the ridge pulls the correction to zero, so the fit falls back on
the reference, as a GP with the reference drift as prior mean would (Shen et al. 2025).

Everything here is written for one interval and ``vmap``-ed over the intervals of a
multi-marginal problem (:mod:`probinfer.bridges.multimarginal`).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from probinfer._types import Array


class Basis(NamedTuple):
    """Arrays of a feature map (traced); ``kind`` lives on the :class:`DriftModel`."""
    loc: Array          # (d,) centring of x
    scale: Array        # (d,) scaling of x
    weights: Array      # (M, d + 1) random frequencies (x, s); empty for LinearDrift
    phases: Array       # (M,)
    knots: Array        # (J,) time knots in [0, 1] for the piecewise-linear time basis


@dataclasses.dataclass(frozen=True)
class RandomFeatures:
    """Random Fourier features in ``(x, s)`` plus affine terms: a GP-like drift model.

    ``num_features`` cosines ``sqrt(2/M) cos(w . (z, s / time_lengthscale) + b)`` with
    ``w ~ N(0, I / lengthscale^2)`` on the standardised state ``z = (x - loc) / scale`` and
    the interval's local time ``s`` in ``[0, 1]`` (Rahimi & Recht 2007), plus ``1, z, s``.
    """

    num_features: int = 200
    lengthscale: float = 1.0
    time_lengthscale: float = 0.5
    seed: int = 0

    def basis(self, loc, scale) -> Basis:
        d = loc.shape[0]
        rng = np.random.default_rng(self.seed)
        w = rng.normal(size=(self.num_features, d + 1))
        w[:, :d] /= self.lengthscale
        w[:, d] /= self.time_lengthscale
        b = rng.uniform(0.0, 2.0 * np.pi, self.num_features)
        dtype = loc.dtype
        return Basis(loc, scale, jnp.asarray(w, dtype), jnp.asarray(b, dtype),
                     jnp.zeros((0,), dtype))

    @staticmethod
    def features(basis: Basis, x, s):
        z = (x - basis.loc) / basis.scale
        zs = jnp.concatenate([z, jnp.broadcast_to(s, z.shape[:-1] + (1,))], axis=-1)
        m = basis.weights.shape[0]
        rff = jnp.sqrt(2.0 / m) * jnp.cos(zs @ basis.weights.T + basis.phases)
        return jnp.concatenate([rff, jnp.ones(z.shape[:-1] + (1,), z.dtype), zs], axis=-1)


@dataclasses.dataclass(frozen=True)
class LinearDrift:
    """A drift affine in ``x`` whose coefficients are piecewise linear in time.

    Features ``[1, z] ⊗ hat_j(s)`` for ``num_knots`` hat functions on ``[0, 1]``. Exact
    class for Gaussian bridges with a linear reference (the bridge drift is affine in ``x``).
    """

    num_knots: int = 8

    def basis(self, loc, scale) -> Basis:
        dtype = loc.dtype
        d = loc.shape[0]
        return Basis(loc, scale, jnp.zeros((0, d + 1), dtype), jnp.zeros((0,), dtype),
                     jnp.linspace(0.0, 1.0, self.num_knots, dtype=dtype))

    @staticmethod
    def features(basis: Basis, x, s):
        z = (x - basis.loc) / basis.scale
        width = basis.knots[1] - basis.knots[0]
        hats = jnp.maximum(0.0, 1.0 - jnp.abs(s - basis.knots) / width)
        affine = jnp.concatenate([jnp.ones(z.shape[:-1] + (1,), z.dtype), z], axis=-1)
        return (affine[..., :, None] * hats).reshape(z.shape[:-1] + (-1,))


class Interval(NamedTuple):
    """One bridge interval; ``vmap``-ed over intervals (all arrays traced)."""
    start: Array        # (N, d) samples of the marginal at the left end
    end: Array          # (N, d) samples at the right end
    duration: Array     # t_{k+1} - t_k


class HalfBridge(NamedTuple):
    """The fitted coefficients of the forward and the backward drift corrections."""
    forward: Array      # (M, d)
    backward: Array     # (M, d)


def drift_value(model, basis, reference, params, coef, x, s, sign):
    """``sign * f(x; params) + phi(x, s) @ coef`` for a batch ``x`` (N, d)."""
    return sign * reference.batched_drift(x, params) + model.features(basis, x, s) @ coef


def simulate(key, x_start, model, basis, reference, params, coef, sign, s_grid, step, sigma):
    """Euler–Maruyama over the local times ``s_grid`` (K+1,): path of shape (K+1, N, d)."""
    keys = jax.random.split(key, s_grid.shape[0] - 1)

    def advance(x, inp):
        k, s = inp
        drift = drift_value(model, basis, reference, params, coef, x, s, sign)
        x_new = x + step * drift + sigma * jnp.sqrt(step) * jax.random.normal(k, x.shape, x.dtype)
        return x_new, x_new

    _, xs = jax.lax.scan(advance, x_start, (keys, s_grid[:-1]))
    return jnp.concatenate([x_start[None], xs])


def _ridge(phi, target, ridge):
    rows = phi.shape[0]
    gram = phi.T @ phi / rows + ridge * jnp.eye(phi.shape[1], dtype=phi.dtype)
    return jnp.linalg.solve(gram, phi.T @ target / rows)


def reverse_targets(path, s_grid, model, basis, reference, params, coef, sign, step):
    """Mean-matching targets for the drift of the time reversal of a simulated path.

    ``path[k]`` is at local time ``s_grid[k]`` and was produced by the drift with ``coef``
    and ``sign``. The reversal steps from ``path[k+1]`` to ``path[k]``; an unbiased estimate
    of its drift at ``(path[k+1], s_grid[k+1])`` is
    ``(x_k - x_{k+1}) / step + b(x_k, s_k) - b(x_{k+1}, s_k)`` (De Bortoli et al. 2021,
    Prop. 3). Returns the points ``path[1:]`` (K, N, d) and the targets (K, N, d).
    """
    x_prev, x_next = path[:-1], path[1:]
    s_prev = s_grid[:-1]
    b = jax.vmap(lambda x, s: drift_value(model, basis, reference, params, coef, x, s, sign))
    return x_next, (x_prev - x_next) / step + b(x_prev, s_prev) - b(x_next, s_prev)


def fit_reverse(path, s_grid, model, basis, reference, params, coef, sign, step, ridge):
    """Fit the drift of the time reversal of a simulated path (mean matching).

    Ridge regression of the :func:`reverse_targets`, minus the reversal's prior mean
    ``-sign * f``, on the features at ``(path[k+1], s_grid[k+1])``.
    """
    x_next, target = reverse_targets(path, s_grid, model, basis, reference, params, coef, sign,
                                     step)
    prior = -sign * jax.vmap(lambda x: reference.batched_drift(x, params))(x_next)
    phi = jax.vmap(lambda x, s: model.features(basis, x, s))(x_next, s_grid[1:])
    d = path.shape[-1]
    return _ridge(phi.reshape(-1, phi.shape[-1]), (target - prior).reshape(-1, d), ridge)


def ipf_iteration(key, interval: Interval, coefs: HalfBridge, model, basis, reference, params,
                  sigma, num_steps, ridge) -> HalfBridge:
    """One IPF iteration on one interval: forward sim → fit backward; backward sim → fit forward."""
    key_f, key_b, key_pf, key_pb = jax.random.split(key, 4)
    n = interval.start.shape[0]
    step = interval.duration / num_steps
    s_fwd = jnp.linspace(0.0, 1.0, num_steps + 1, dtype=interval.start.dtype)
    start = interval.start[jax.random.permutation(key_pf, n)]
    path = simulate(key_f, start, model, basis, reference, params, coefs.forward, 1.0, s_fwd,
                    step, sigma)
    backward = fit_reverse(path, s_fwd, model, basis, reference, params, coefs.forward, 1.0,
                           step, ridge)
    s_bwd = s_fwd[::-1]
    end = interval.end[jax.random.permutation(key_pb, interval.end.shape[0])]
    path_b = simulate(key_b, end, model, basis, reference, params, backward, -1.0, s_bwd, step,
                      sigma)
    forward = fit_reverse(path_b, s_bwd, model, basis, reference, params, backward, -1.0,
                          step, ridge)
    return HalfBridge(forward, backward)
