"""Noise-level models: the conditional ``p(level | x)`` that DLG's Gibbs move draws from.

Under the joint ``p(x, i) ∝ pi(i) p_i(x)`` over data ``x`` and the prior's noisy steps
``i = 0 .. num_steps - 1`` (``p_i`` the noised marginal at step ``i``, ``pi`` a prior over
levels), the level conditional is

    ``p(i | x) = pi(i) p_i(x) / sum_j pi(j) p_j(x)``.

Two models provide it:

* :class:`ExactLevels` evaluates ``log p_i(x)`` itself (a function of the noisy marginal
  density; :func:`exact_levels` builds it for any prior with a ``noised_mixture`` method,
  such as :class:`~probinfer.diffusion.GaussianMixturePrior`). It also gives DLG's
  Langevin move a Metropolis correction.
* :class:`LevelEstimator` is a classifier ``q(i | x)`` over the levels, trained by
  :func:`fit_level_estimator` on noised data with levels drawn uniformly; then
  ``q(i | x) ∝ p_i(x)`` (Bayes with equal class priors), so ``pi(i) q(i | x)`` normalised is
  the level conditional. This is the noise-level estimator of Kim & Ye (2022) for learned
  priors, whose marginal densities are unknown. torch is imported only when one is fitted.
"""

from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp

from probinfer._optional import require
from probinfer._types import Array, PRNGKey
from probinfer._validation import check_positive_int, check_positive_scalar


class LevelModel:
    """Base class: ``log p(level | x)`` over the ``num_levels`` noisy steps of a prior.

    Attributes
    ----------
    num_levels : the prior's ``num_steps`` (levels are steps ``0 .. num_steps - 1``).
    calls_per_update : estimator evaluations per chain and Gibbs move (0 when exact).
    has_marginal : whether :meth:`log_marginals` exists (needed for a Metropolis step).
    """

    num_levels: int
    calls_per_update: int = 0
    has_marginal: bool = False

    def log_conditional(self, x: Array, log_level_prior: Array) -> Array:
        """Normalised ``log p(level | x)``, shape ``(n, num_levels)``, for particles ``x``."""
        raise NotImplementedError

    def log_marginals(self, x: Array) -> Array:
        """``log p_i(x)`` at every level, shape ``(n, num_levels)``."""
        raise NotImplementedError(f"{type(self).__name__} has no marginal density")


class ExactLevels(LevelModel):
    """The exact level conditional from a noisy marginal log density.

    Parameters
    ----------
    log_marginal : ``(x, step) -> (n,)``, ``log p_step(x)`` for particles ``(n, *event_shape)``
        and a scalar (possibly traced) step; normalised densities are required, since the
        conditional compares levels.
    num_levels : the prior's ``num_steps``.
    """

    calls_per_update = 0
    has_marginal = True

    def __init__(self, log_marginal, num_levels: int):
        if not callable(log_marginal):
            raise TypeError("log_marginal must be callable: (x, step) -> log p_step(x), (n,)")
        self._log_marginal = log_marginal
        self.num_levels = check_positive_int(num_levels, "num_levels")

    def log_marginals(self, x: Array) -> Array:
        """``log p_i(x)`` at every level, shape ``(n, num_levels)``."""
        table = jax.vmap(lambda s: self._log_marginal(x, s))(jnp.arange(self.num_levels))
        return table.T

    def log_conditional(self, x, log_level_prior):
        return jax.nn.log_softmax(self.log_marginals(x) + log_level_prior, axis=-1)


def exact_levels(prior, log_marginal=None) -> ExactLevels:
    """The exact level model of an analytic prior.

    Parameters
    ----------
    prior : a continuous diffusion prior.
    log_marginal : ``(x, step) -> (n,)``; default, for priors with a ``noised_mixture(step)``
        method (:class:`~probinfer.diffusion.GaussianMixturePrior`), that mixture's density.

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> mix = pi.GaussianMixture(jnp.array([0.5, 0.5]), jnp.array([[-2.0], [2.0]]),
    ...                          jnp.ones((2, 1, 1)))
    >>> prior = pi.diffusion.GaussianMixturePrior(mix, num_steps=10)
    >>> levels = pi.dmcmc.exact_levels(prior)
    >>> levels.log_conditional(jnp.zeros((3, 1)), jnp.zeros(10)).shape
    (3, 10)
    """
    if log_marginal is None:
        noised = getattr(prior, "noised_mixture", None)
        if not callable(noised):
            raise ValueError(
                f"{type(prior).__name__} has no exact noisy marginal (no noised_mixture "
                "method): pass log_marginal=(x, step) -> log p_step(x), or use a learned "
                "level model from pi.dmcmc.fit_level_estimator")
        log_marginal = lambda x, step: noised(step).batch_log_density(x)  # noqa: E731
    return ExactLevels(log_marginal, prior.num_steps)


def _noisy_batch(rng, data, alphas, sigmas, batch_size):
    """Noised training pairs: ``x = alpha_i x_0 + sigma_i eps`` with ``i`` uniform."""
    rows = rng.integers(0, data.shape[0], batch_size)
    levels = rng.integers(0, alphas.size, batch_size)
    shape = (batch_size,) + (1,) * (data.ndim - 1)
    noise = rng.standard_normal((batch_size,) + data.shape[1:]).astype(data.dtype)
    x = alphas[levels].reshape(shape) * data[rows] + sigmas[levels].reshape(shape) * noise
    return x.reshape(batch_size, -1), levels


class LevelEstimator(LevelModel):
    """A trained classifier over noise levels, called from JAX as one host call per batch.

    Built by :func:`fit_level_estimator`. Inside ``jit``/``vmap`` the classifier runs once
    per call for all particles (``jax.pure_callback`` with ``vmap_method="broadcast_all"``).

    Attributes
    ----------
    module : the torch classifier ``(B, prod(event_shape)) -> logits (B, num_levels)``.
    loss_history : training cross-entropy per logged iteration.
    num_calls, num_evaluations : host calls and particles classified so far.
    """

    calls_per_update = 1
    has_marginal = False

    def __init__(self, module, num_levels: int, event_shape, loss_history):
        self.module = module
        self.num_levels = int(num_levels)
        self.event_shape = tuple(event_shape)
        self.loss_history = np.asarray(loss_history)
        self.num_calls = 0
        self.num_evaluations = 0

    def _host_log_probs(self, x):
        import torch

        x = np.asarray(x)
        event_ndim = len(self.event_shape)
        batch_shape = x.shape[:x.ndim - event_ndim]
        flat = torch.from_numpy(np.array(x, dtype=np.float32).reshape(-1, int(np.prod(
            self.event_shape))))
        with torch.inference_mode():
            out = torch.log_softmax(self.module(flat), dim=-1).double().numpy()
        self.num_calls += 1
        self.num_evaluations += flat.shape[0]
        return out.astype(x.dtype).reshape(batch_shape + (self.num_levels,))

    def log_probs(self, x: Array) -> Array:
        """The classifier's ``log q(level | x)``, shape ``(n, num_levels)``."""
        x = jnp.asarray(x)
        out = jax.ShapeDtypeStruct(x.shape[:1] + (self.num_levels,), x.dtype)
        return jax.pure_callback(self._host_log_probs, out, x, vmap_method="broadcast_all")

    def log_conditional(self, x, log_level_prior):
        return jax.nn.log_softmax(self.log_probs(x) + log_level_prior, axis=-1)


def _classifier(torch, in_features, hidden_size, num_levels):
    # The log mean square of the input is a strong cue for the level on VP and VE
    # schedules alike; giving it explicitly spares the network learning it.
    class LevelClassifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(in_features + 1, hidden_size), torch.nn.SiLU(),
                torch.nn.Linear(hidden_size, hidden_size), torch.nn.SiLU(),
                torch.nn.Linear(hidden_size, num_levels))

        def forward(self, x):
            log_ms = torch.log(torch.mean(x ** 2, dim=-1, keepdim=True) + 1e-6)
            return self.net(torch.cat([x, log_ms], dim=-1))

    return LevelClassifier()


def fit_level_estimator(key: PRNGKey, prior, data, *, num_iterations: int = 2000,
                        batch_size: int = 512, hidden_size: int = 256,
                        learning_rate=1e-3) -> LevelEstimator:
    """Train a noise-level classifier for DLG's Gibbs move on a learned prior.

    Each iteration draws clean points from ``data``, levels uniformly over the prior's
    noisy steps and Gaussian noise, forms ``x = alphas[i] x_0 + sigmas[i] eps`` and takes
    one Adam step on the cross-entropy of a small MLP (two hidden layers of
    ``hidden_size``, SiLU) predicting ``i``. With uniform levels the Bayes classifier is
    ``q(i | x) ∝ p_i(x)``, so DLG draws levels from ``pi(i) q(i | x)``, normalised.
    Kim & Ye (2022), "Denoising MCMC for Accelerating Diffusion-Based Generative Models",
    train such a noise-level estimator for their learned score models.

    Parameters
    ----------
    key : seeds the batches and the network's initialisation.
    prior : the continuous diffusion prior whose levels (``alphas``, ``sigmas``) are used.
    data : clean samples ``(m, *event_shape)``: the prior's training data or its samples.
    num_iterations, batch_size, hidden_size : training size.
    learning_rate : Adam's step size.

    Returns
    -------
    LevelEstimator

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> mix = pi.GaussianMixture(jnp.array([0.5, 0.5]), jnp.array([[-2.0], [2.0]]),
    ...                          jnp.ones((2, 1, 1)))
    >>> prior = pi.diffusion.GaussianMixturePrior(mix, num_steps=5)
    >>> data = mix.sample(jax.random.key(0), 1000)
    >>> est = pi.dmcmc.fit_level_estimator(jax.random.key(1), prior, data, num_iterations=50)
    >>> est.log_conditional(data[:4], jnp.zeros(5)).shape
    (4, 5)
    """
    torch = require("torch", "torch", "fit_level_estimator")
    _check_scored_prior(prior)
    num_iterations = check_positive_int(num_iterations, "num_iterations")
    batch_size = check_positive_int(batch_size, "batch_size")
    hidden_size = check_positive_int(hidden_size, "hidden_size")
    learning_rate = float(check_positive_scalar(learning_rate, "learning_rate"))
    data = np.array(data, dtype=np.float32)
    event_shape = tuple(prior.event_shape)
    if data.ndim != 1 + len(event_shape) or data.shape[1:] != event_shape or data.shape[0] < 1:
        raise ValueError(f"data must have shape (num_points, {', '.join(map(str, event_shape))})"
                         f", got {data.shape}")
    if not np.all(np.isfinite(data)):
        raise ValueError("data must be finite, got non-finite entries")
    seed = int(jax.random.randint(key, (), 0, np.iinfo(np.int32).max))
    rng = np.random.default_rng(seed)
    alphas = np.asarray(prior.alphas[:-1], np.float32)
    sigmas = np.asarray(prior.sigmas[:-1], np.float32)
    # torch's initialisation draws from its global generator: seed it inside a forked
    # state so the caller's torch RNG is left as it was.
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        module = _classifier(torch, int(np.prod(event_shape)), hidden_size, prior.num_steps)
    optimiser = torch.optim.Adam(module.parameters(), lr=learning_rate)
    losses = []
    for it in range(num_iterations):
        x, levels = _noisy_batch(rng, data, alphas, sigmas, batch_size)
        loss = torch.nn.functional.cross_entropy(module(torch.from_numpy(x)),
                                                 torch.from_numpy(levels))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if it % 10 == 0 or it == num_iterations - 1:
            losses.append(loss.item())
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return LevelEstimator(module, prior.num_steps, event_shape, losses)


def _check_scored_prior(prior) -> None:
    """A continuous prior: a score (from its denoiser) and a noise grid."""
    if not (callable(getattr(prior, "score", None)) and hasattr(prior, "alphas")
            and hasattr(prior, "sigmas")):
        raise TypeError(f"prior must be a continuous diffusion prior with a score "
                        f"(pi.diffusion.ContinuousDiffusionPrior), got {type(prior).__name__}")
