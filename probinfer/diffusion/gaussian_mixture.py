"""The exact diffusion prior of a Gaussian-mixture data distribution.

If ``x_0 ~ sum_k w_k N(m_k, S_k)`` and ``x = alpha x_0 + sigma eps``, every noised marginal
is again a mixture, ``sum_k w_k N(alpha m_k, C_k)`` with ``C_k = alpha² S_k + sigma² I``,
and everything a network approximates is available in closed form:

* score ``∇ log p(x) = -sum_k r_k(x) C_k⁻¹ (x - alpha m_k)``;
* posterior mean ``E[x_0 | x] = sum_k r_k(x) (m_k + alpha S_k C_k⁻¹ (x - alpha m_k))``;

with ``r_k(x)`` the responsibilities under the noised mixture. This is probinfer's
ground-truth diffusion model: samplers, steering and denoising MCMC are validated on it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from probinfer._validation import check_positive_int
from probinfer.diffusion.base import ContinuousDiffusionPrior
from probinfer.diffusion.schedules import VPSchedule
from probinfer.targets.gaussian import GaussianMixture


class GaussianMixturePrior(ContinuousDiffusionPrior):
    """Exact denoiser of a :class:`~probinfer.GaussianMixture` (any dimension, full covariances).

    Parameters
    ----------
    mixture : the data distribution ``p(x_0)``.
    schedule : noise schedule (default ``VPSchedule("linear")``).
    num_steps : number of reverse transitions (step 0 = noise, ``num_steps`` = data);
        default 100, or ``len(timesteps)``.
    sampler, spacing, rho, timesteps : see :class:`ContinuousDiffusionPrior`.
    exact_init : draw step-0 particles from the exact noised mixture (default) rather
        than ``N(0, sigmas[0]² I)``, so the only error left is the sampler's discretisation.

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> mix = pi.GaussianMixture(jnp.array([0.3, 0.7]), jnp.array([[-2.0, 0.0], [2.0, 1.0]]),
    ...                          jnp.stack([jnp.eye(2), 0.5 * jnp.eye(2)]))
    >>> prior = pi.diffusion.GaussianMixturePrior(mix, num_steps=50, sampler="ddpm")
    >>> prior.sample(jax.random.key(0), 1000).shape
    (1000, 2)
    """

    def __init__(self, mixture: GaussianMixture, schedule=None, num_steps: int | None = None,
                 sampler="ddpm", spacing: str = "uniform", rho: float = 7.0, timesteps=None,
                 exact_init: bool = True):
        if not isinstance(mixture, GaussianMixture):
            raise TypeError(f"mixture must be a probinfer.GaussianMixture, got "
                            f"{type(mixture).__name__}")
        if timesteps is None:
            num_steps = check_positive_int(100 if num_steps is None else num_steps, "num_steps")
        self.mixture = mixture
        self.exact_init = bool(exact_init)
        super().__init__(VPSchedule("linear") if schedule is None else schedule, num_steps,
                         (mixture.dim,), sampler=sampler, spacing=spacing, rho=rho,
                         timesteps=timesteps, dtype=mixture.means.dtype)

    def _noised_components(self, step):
        alpha, sigma = self.alphas[step], self.sigmas[step]
        eye = jnp.eye(self.mixture.dim, dtype=self.dtype)
        covs = alpha ** 2 * self.mixture.covs + sigma ** 2 * eye
        return alpha, alpha * self.mixture.means, covs

    def noised_mixture(self, step) -> GaussianMixture:
        """The exact marginal ``p_step(x)`` as a :class:`~probinfer.GaussianMixture`."""
        _, means, covs = self._noised_components(step)
        return GaussianMixture._unchecked(self.mixture.weights, means, covs)

    def init(self, key, num_samples):
        if self.exact_init:
            return self.noised_mixture(0).sample(key, num_samples)
        return super().init(key, num_samples)

    def _terms(self, x, step):
        """Responsibilities ``(n, K)`` and whitened residuals ``C_k⁻¹ (x - alpha m_k)``."""
        self.check_particles(x)
        alpha, means, covs = self._noised_components(step)
        d = self.mixture.dim
        chols = jnp.linalg.cholesky(covs)
        # K precision matrices once per step, then one einsum over particles: much cheaper
        # than a triangular solve per particle and component.
        eye = jnp.broadcast_to(jnp.eye(d, dtype=self.dtype), covs.shape)
        precisions = jax.vmap(lambda c, e: jax.scipy.linalg.cho_solve((c, True), e))(chols, eye)
        diff = x[:, None, :] - means[None]                       # (n, K, d)
        whitened = jnp.einsum("kde,nke->nkd", precisions, diff)
        half_logdet = jnp.sum(jnp.log(jnp.diagonal(chols, axis1=-2, axis2=-1)), axis=-1)
        log_comp = (jnp.log(self.mixture.weights) - half_logdet
                    - 0.5 * jnp.sum(diff * whitened, axis=-1))
        return alpha, jax.nn.softmax(log_comp, axis=-1), whitened

    def score(self, x, step):
        """Exact ``∇_x log p_step(x)``, batched ``(n, d)``."""
        _, resp, whitened = self._terms(x, step)
        return -jnp.einsum("nk,nkd->nd", resp, whitened)

    def denoise(self, x, step):
        """Exact ``E[x_0 | x_step]``, batched ``(n, d)``; the identity at ``num_steps``."""
        alpha, resp, whitened = self._terms(x, step)
        comp = self.mixture.means[None] + alpha * jnp.einsum("kde,nke->nkd",
                                                             self.mixture.covs, whitened)
        return jnp.einsum("nk,nkd->nd", resp, comp)

    def __repr__(self):
        return (f"GaussianMixturePrior({self.mixture!r}, {self.schedule!r}, "
                f"num_steps={self.num_steps}, sampler={self.sampler.name!r})")
