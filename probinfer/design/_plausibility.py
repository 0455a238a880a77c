"""The plausibility model: a Gaussian mixture fitted to the data set's designs.

MCD measures how "on-manifold" a counterfactual is by its Gower distance to the nearest
designs in the data. We add a density: a Gaussian mixture fitted (scikit-learn's EM, the
number of components chosen by BIC) to the designs in the plausibility embedding of
:class:`~probinfer.design.DesignSpace`, returned as the library's exact
:class:`~probinfer.GaussianMixture` target. Its ``log_density`` is the ``plausibility``
column of the results; the SMC search uses the mixture, conditioned on the frozen
features (closed form for a Gaussian mixture), as its prior.
"""

from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp

from probinfer.targets import GaussianMixture

_COMPONENT_CHOICES = (1, 2, 4, 8)
_MAX_FIT_ROWS = 2000
_REG_COVAR = 1e-3
_CHUNK = 4096
_MIN_BATCH = 64


@jax.jit
def _batch_log_density(target: GaussianMixture, points):
    # The mixture is a pytree argument, so every fitted model of the same size and batch
    # shape reuses one compilation.
    return target.batch_log_density(points)


class Plausibility:
    """A Gaussian-mixture density over the plausibility embedding (one ``Target``)."""

    def __init__(self, weights, means, covs):
        self.weights = np.asarray(weights, float)
        self.means = np.asarray(means, float)
        self.covs = np.asarray(covs, float)
        self.target = GaussianMixture(self.weights, self.means, self.covs)

    @classmethod
    def fit(cls, embedded: np.ndarray, seed: int) -> "Plausibility":
        from sklearn.mixture import GaussianMixture as SkMixture
        from threadpoolctl import threadpool_limits
        rng = np.random.default_rng(seed)
        rows = embedded
        if len(rows) > _MAX_FIT_ROWS:
            rows = rows[rng.choice(len(rows), _MAX_FIT_ROWS, replace=False)]
        # EM on a few thousand small rows gains nothing from BLAS threads, and on a busy
        # machine their contention made each fit 10-20x slower (measured).
        with threadpool_limits(1):
            best = cls._select_by_bic(SkMixture, rows, rng)
        return cls(best.weights_, best.means_, best.covariances_)

    @staticmethod
    def _select_by_bic(SkMixture, rows, rng):
        dim = rows.shape[1]
        best, best_bic = None, np.inf
        for k in _COMPONENT_CHOICES:
            # At least 5 designs per free parameter of a component.
            if k > 1 and len(rows) < 5 * k * (dim + dim * (dim + 1) / 2):
                break
            model = SkMixture(k, covariance_type="full", reg_covar=_REG_COVAR,
                              random_state=int(rng.integers(2 ** 31)), n_init=1).fit(rows)
            bic = model.bic(rows)
            if bic < best_bic:
                best, best_bic = model, bic
        return best

    def log_density(self, embedded: np.ndarray) -> np.ndarray:
        """Log density at each row, jitted over batches padded to powers of two (a handful
        of compilations, and no 1 024-row evaluation for a population of 100)."""
        embedded = np.asarray(embedded, np.float32)
        out = np.empty(len(embedded))
        for start in range(0, len(embedded), _CHUNK):
            block = embedded[start:start + _CHUNK]
            size = max(_MIN_BATCH, 1 << int(np.ceil(np.log2(max(len(block), 1)))))
            padded = np.zeros((size, embedded.shape[1]), np.float32)
            padded[:len(block)] = block
            out[start:start + len(block)] = np.asarray(
                _batch_log_density(self.target, jnp.asarray(padded)))[:len(block)]
        return out

    def conditional(self, free: np.ndarray, fixed_values: np.ndarray) -> GaussianMixture:
        """The mixture over the ``free`` embedding columns given the others' values."""
        free = np.asarray(free, bool)
        if free.all():
            return GaussianMixture(self.weights, self.means, self.covs)
        fixed = ~free
        log_w, means, covs = [], [], []
        for w, mu, cov in zip(self.weights, self.means, self.covs):
            s_ff, s_fr = cov[np.ix_(free, free)], cov[np.ix_(free, fixed)]
            s_rr = cov[np.ix_(fixed, fixed)]
            resid = fixed_values - mu[fixed]
            solve = np.linalg.solve(s_rr, np.column_stack([resid, s_fr.T]))
            means.append(mu[free] + s_fr @ solve[:, 0])
            cond = s_ff - s_fr @ solve[:, 1:]
            covs.append(0.5 * (cond + cond.T))
            _, logdet = np.linalg.slogdet(s_rr)
            log_w.append(np.log(w) - 0.5 * (resid @ solve[:, 0] + logdet))
        log_w = np.asarray(log_w)
        weights = np.exp(log_w - log_w.max())
        return GaussianMixture(weights / weights.sum(), np.asarray(means), np.asarray(covs))
