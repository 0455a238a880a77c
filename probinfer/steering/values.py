"""Value functions for soft-value decoding: ``v_t(x_t) ≈ T log E[exp(r(x_0)/T) | x_t]``.

* :func:`posterior_mean_value` (SVDD-PM): the reward of the denoised estimate;
* :func:`fit_value_model` (SVDD-MC): a regression of ``r(x_0)`` on features of ``x_t``,
  per step, from unguided rollouts of the prior (ridge regression with cross-validated
  penalty from scikit-learn on random Fourier features; evaluation stays in JAX);
* :func:`exact_soft_value` : the exact value for a :class:`GaussianMixturePrior` and a
  linear or quadratic reward, for method comparisons and tests.

A value is a function ``value(x, step) -> scalar`` of ONE particle at state ``step``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from probinfer._validation import check_positive_int, check_positive_scalar
from probinfer.diffusion.gaussian_mixture import GaussianMixturePrior
from probinfer.diffusion.masked import MaskedDiffusionPrior
from probinfer.steering.rewards import batch_reward, check_reward


def posterior_mean_value(prior, reward):
    """SVDD-PM: ``v(x_t) = r(E[x_0 | x_t])`` (continuous priors)."""
    if isinstance(prior, MaskedDiffusionPrior):
        raise ValueError("posterior_mean_value is for continuous priors; masked priors use "
                         "draws from the denoiser (value='posterior_mean' in svdd does this)")
    return lambda x, step: reward(prior.denoise(x[None], step)[0])


def exact_soft_value(prior: GaussianMixturePrior, temperature, *, center=None, precision=None,
                     a=None):
    """Exact ``T log E[exp(r(x_0)/T) | x_t]`` for a Gaussian-mixture prior.

    Give ``center`` and ``precision`` for ``r(x) = -½ (x-c)ᵀ P (x-c)``, or ``a`` for
    ``r(x) = a·x``. ``p(x_0 | x_t)`` is the mixture tilted by the Gaussian likelihood of
    ``x_t``, so the conditional expectation is the normaliser of a second exact tilt.
    """
    if not isinstance(prior, GaussianMixturePrior):
        raise TypeError("exact_soft_value needs a GaussianMixturePrior")
    t = check_positive_scalar(temperature, "temperature")
    if (a is None) == (center is None or precision is None):
        raise ValueError("give either a (linear reward) or center and precision (quadratic)")
    mix, d = prior.mixture, prior.mixture.dim
    eye = jnp.eye(d, dtype=prior.dtype)

    def value(x, step):
        alpha, sigma = prior.alphas[step], prior.sigmas[step]
        noisy = sigma > 0
        s = jnp.where(noisy, sigma, 1.0)
        posterior, _ = mix.tilt_quadratic(x / alpha, (alpha / s) ** 2 * eye, 1.0)
        if a is not None:
            _, log_z = posterior.tilt_linear(a, t)
            clean = jnp.dot(a, x)
        else:
            _, log_z = posterior.tilt_quadratic(center, precision, t)
            clean = -0.5 * (x - center) @ precision @ (x - center)
        return jnp.where(noisy, t * log_z, clean)

    return value


class ValueModel(NamedTuple):
    """Per-step ridge regression on random Fourier features (see :func:`fit_value_model`)."""

    frequencies: jax.Array      # (S+1, F, d)
    phases: jax.Array           # (S+1, F)
    loc: jax.Array              # (S+1, d) feature standardisation
    scale: jax.Array            # (S+1, d)
    coef: jax.Array             # (S+1, 2d + F)
    intercept: jax.Array        # (S+1,)

    def features(self, x, step):
        z = (x.reshape(-1) - self.loc[step]) / self.scale[step]
        rff = jnp.cos(self.frequencies[step] @ z + self.phases[step])
        return jnp.concatenate([z, z ** 2, rff * jnp.sqrt(2.0 / self.phases.shape[1])])

    def __call__(self, x, step):
        return self.features(x, step) @ self.coef[step] + self.intercept[step]


def fit_value_model(key, prior, reward, num_rollouts: int = 2000, num_features: int = 256,
                    lengthscale: float = 1.0) -> ValueModel:
    """SVDD-MC: fit ``v_t(x_t) ≈ E[r(x_0) | x_t]`` by regression on prior rollouts.

    Draws ``num_rollouts`` unguided trajectories, scores their endpoints once, and fits, for
    every state, a ridge regression (``sklearn.linear_model.RidgeCV``) of the reward on
    standardised ``x_t``, its squares and random Fourier features. Regressing ``r`` rather
    than ``exp(r/T)`` is the approximation of the SVDD paper (Li et al. 2024, §4.2).
    """
    from sklearn.linear_model import RidgeCV

    if isinstance(prior, MaskedDiffusionPrior):
        raise ValueError("fit_value_model supports continuous priors")
    check_reward(reward)
    num_rollouts = check_positive_int(num_rollouts, "num_rollouts", 10)
    num_features = check_positive_int(num_features, "num_features")
    path_key, feat_key = jax.random.split(key)
    path = prior.sample(path_key, num_rollouts, return_trajectory=True)   # (S+1, n, ...)
    targets = np.asarray(batch_reward(reward, path[-1]), np.float64)
    flat = np.asarray(path.reshape(path.shape[0], num_rollouts, -1), np.float64)
    d = flat.shape[-1]
    loc = flat.mean(1)
    scale = flat.std(1) + 1e-8
    freqs = np.asarray(jax.random.normal(feat_key, (path.shape[0], num_features, d))) / lengthscale
    phases = np.asarray(jax.random.uniform(jax.random.fold_in(feat_key, 1),
                                           (path.shape[0], num_features))) * 2 * np.pi
    coefs, intercepts = [], []
    for s in range(path.shape[0]):
        z = (flat[s] - loc[s]) / scale[s]
        feats = np.concatenate([z, z ** 2, np.cos(z @ freqs[s].T + phases[s])
                                * np.sqrt(2.0 / num_features)], axis=1)
        model = RidgeCV(alphas=np.logspace(-4, 2, 7)).fit(feats, targets)
        coefs.append(model.coef_)
        intercepts.append(model.intercept_)
    dtype = prior.dtype
    return ValueModel(*(jnp.asarray(v, dtype) for v in (freqs, phases, loc, scale,
                                                         np.stack(coefs),
                                                         np.asarray(intercepts))))
