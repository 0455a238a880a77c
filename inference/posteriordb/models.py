"""NumPyro versions of posteriordb posteriors, with their data and reference moments.

posteriordb (stan-dev/posteriordb, BSD-3, see ``README.md`` here) pairs Stan programs with
data and with reference posteriors of 10 000 (nearly independent) draws. This module
rewrites thirteen of those Stan programs in NumPyro and loads, from the small JSON files
beside it, each posterior's data and the reference means, standard deviations and bulk
ESS per parameter (computed once from posteriordb's reference draws by ``extract.py``).
No network access at run time.

``SUITE`` maps the posteriordb posterior name to a :class:`Posterior`:

>>> import jax, probinfer as pi
>>> post = SUITE["eight_schools-eight_schools_noncentered"]
>>> pm = pi.from_numpyro(post.model, **post.data())
>>> ref = post.reference()            # {"names", "mean", "sd", "ess_bulk", ...}

Stan's implicit improper flat priors become wide proper priors (NumPyro's prior must be
sampleable, and tempering starts from prior draws); each model's docstring says which.
``Posterior.wide_priors`` lists those sites, and ``extract.py`` measures, by reweighting
the reference draws with the replacement prior, how far the replacement moves each
posterior mean and sd (stored in the reference file as ``wide_prior_effect``).

Parameter names follow Stan's (``beta[3]`` is ``beta[..., 2]`` of the NumPyro site of the
same name); :func:`flatten_draws` turns constrained NumPyro draws into that layout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import logsumexp
from jax.scipy.stats import norm
from numpyro.distributions import constraints

HERE = Path(__file__).resolve().parent


class Posterior(NamedTuple):
    """One posteriordb posterior: a NumPyro model, its data and the reference moments."""

    name: str                 # posteriordb posterior name, also the JSON file's stem
    model: Callable           # NumPyro model, called as model(**data)
    kind: str                 # a few words: what sort of model it is
    wide_priors: dict         # site -> the proper prior that replaces Stan's flat one

    def _file(self) -> dict:
        return json.loads((HERE / f"{self.name}.json").read_text())

    def data(self) -> dict:
        """The model's keyword arguments as float / int JAX arrays."""
        return _DATA_ADAPTERS[self.name](self._file()["data"])

    def reference(self) -> dict:
        """``names`` (Stan layout), ``mean``, ``sd``, ``ess_bulk`` (NumPy arrays) and the
        measured ``wide_prior_effect`` of the replacement priors."""
        ref = self._file()["reference"]
        out = {"names": list(ref["names"])}
        for field in ("mean", "sd", "ess_bulk"):
            out[field] = np.asarray(ref[field], dtype=np.float64)
        out["wide_prior_effect"] = ref.get("wide_prior_effect")
        return out


def flatten_draws(constrained: dict, names) -> np.ndarray:
    """Constrained draws ``{site: (n, ...)}`` -> array ``(n, len(names))`` in Stan's layout."""
    columns = []
    for name in names:
        site, _, index = name.partition("[")
        value = np.asarray(constrained[site])
        columns.append(value if not index else value[:, int(index.rstrip("]")) - 1])
    return np.stack(columns, axis=1)


# ---------------------------------------------------------------------------- priors
# The wide proper priors standing in for Stan's implicit flat ones. Their scales are 100
# or more times the posterior sds, so that they move no reference mean by more than 0.015
# posterior sd (measured by extract.py, stored as ``wide_prior_effect``).
_WIDE_COEF = dist.Normal(0.0, 100.0)
_WIDE_SCALE = dist.HalfNormal(100.0)


def _linear_regression(y, design, coef_prior, sigma_prior):
    beta = numpyro.sample("beta", coef_prior.expand([design.shape[1]]).to_event(1))
    sigma = numpyro.sample("sigma", sigma_prior)
    with numpyro.plate("data", y.shape[0]):
        numpyro.sample("y", dist.Normal(design @ beta, sigma), obs=y)


def earnings_logearn_height(earn, height):
    """``log(earn) ~ normal(beta[1] + beta[2] * height, sigma)`` (earnings data, N = 1 192).

    Stan: flat priors on ``beta`` and ``sigma``. Here ``beta ~ normal(0, 100)``,
    ``sigma ~ half-normal(100)``. The intercept and slope are correlated at about -0.999.
    """
    design = jnp.stack([jnp.ones_like(height), height], axis=1)
    _linear_regression(jnp.log(earn), design, _WIDE_COEF, _WIDE_SCALE)


def logmesquite(weight, diam1, diam2, canopy_height, total_height, density, group):
    """Log-log regression of mesquite bush weight on six log-size predictors (N = 46).

    Stan: flat priors on ``beta`` (7) and ``sigma``. Here ``beta ~ normal(0, 100)``,
    ``sigma ~ half-normal(100)``.
    """
    design = jnp.stack([jnp.ones_like(weight), jnp.log(diam1), jnp.log(diam2),
                        jnp.log(canopy_height), jnp.log(total_height), jnp.log(density),
                        group], axis=1)
    _linear_regression(jnp.log(weight), design, _WIDE_COEF, _WIDE_SCALE)


def nes(partyid7, real_ideo, race_adj, educ1, gender, income, age_discrete):
    """Party identification (7-point scale) on ideology, race, age group, education, gender
    and income; 1972 National Election Study (N = 1 330).

    Stan: flat priors on ``beta`` (9) and ``sigma``. Here ``beta ~ normal(0, 100)``,
    ``sigma ~ half-normal(100)``.
    """
    ones = jnp.ones_like(partyid7)
    design = jnp.stack([ones, real_ideo, race_adj, (age_discrete == 2) * ones,
                        (age_discrete == 3) * ones, (age_discrete == 4) * ones, educ1, gender,
                        income], axis=1)
    _linear_regression(partyid7, design, _WIDE_COEF, _WIDE_SCALE)


def kidscore_momhsiq(kid_score, mom_hs, mom_iq):
    """Child test score on mother's high-school completion and IQ (N = 434).

    Stan: flat prior on ``beta`` (3), ``sigma ~ cauchy(0, 2.5)`` on the positive half-line.
    Here ``beta ~ normal(0, 100)``.
    """
    design = jnp.stack([jnp.ones_like(kid_score), mom_hs, mom_iq], axis=1)
    _linear_regression(kid_score, design, _WIDE_COEF, dist.HalfCauchy(2.5))


def blr(X, y):
    """Bayesian linear regression on simulated data (sblrc: N = 100, D = 5, no intercept).

    Stan: ``beta ~ normal(0, 10)``, ``sigma ~ normal(0, 10)`` on the positive half-line
    (half-normal); all proper. The slopes are known to about 1e-3.
    """
    _linear_regression(y, X, dist.Normal(0.0, 10.0), dist.HalfNormal(10.0))


def kilpisjarvi(x, y, pmualpha, psalpha, pmubeta, psbeta):
    """Linear trend in Kilpisjärvi summer temperature (N = 62), years shifted by +2000 so
    that intercept and slope are correlated at about -0.9999.

    Stan: ``alpha ~ normal(pmualpha, psalpha)``, ``beta ~ normal(pmubeta, psbeta)``, flat
    prior on ``sigma``. Here ``sigma ~ half-normal(100)``.
    """
    alpha = numpyro.sample("alpha", dist.Normal(pmualpha, psalpha))
    beta = numpyro.sample("beta", dist.Normal(pmubeta, psbeta))
    sigma = numpyro.sample("sigma", _WIDE_SCALE)
    with numpyro.plate("data", y.shape[0]):
        numpyro.sample("y", dist.Normal(alpha + beta * x, sigma), obs=y)


def eight_schools_noncentered(y, sigma):
    """Eight schools, non-centred: ``theta = mu + tau * theta_trans``.

    Stan: ``theta_trans ~ normal(0, 1)``, ``mu ~ normal(0, 5)``, ``tau ~ cauchy(0, 5)`` on
    the positive half-line; all proper. ``theta`` is reported as a deterministic site.
    """
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("school", y.shape[0]):
        theta_trans = numpyro.sample("theta_trans", dist.Normal(0.0, 1.0))
        theta = numpyro.deterministic("theta", mu + tau * theta_trans)
        numpyro.sample("y", dist.Normal(theta, sigma), obs=y)


def _ar_errors(y, mu, phi, theta):
    # err[t] = y[t] - (mu + phi y[t-1] + theta err[t-1]), err[0] = y[0] - (mu + phi mu).
    first = y[0] - (mu + phi * mu)

    def one(err, pair):
        y_prev, y_t = pair
        new = y_t - (mu + phi * y_prev + theta * err)
        return new, new

    _, rest = jax.lax.scan(one, first, (y[:-1], y[1:]))
    return jnp.concatenate([first[None], rest])


def arma11(y):
    """ARMA(1, 1) on 200 simulated observations.

    Stan: ``mu ~ normal(0, 10)``, ``phi ~ normal(0, 2)``, ``theta ~ normal(0, 2)``,
    ``sigma ~ cauchy(0, 2.5)`` on the positive half-line; all proper. Prior draws with
    ``|theta| > 1`` make the error recursion explode (log-likelihoods of -1e100 and below).
    """
    mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
    phi = numpyro.sample("phi", dist.Normal(0.0, 2.0))
    theta = numpyro.sample("theta", dist.Normal(0.0, 2.0))
    sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))
    err = _ar_errors(y, mu, phi, theta)
    numpyro.sample("err", dist.Normal(0.0, sigma).expand([y.shape[0]]).to_event(1), obs=err)


def arK(y, K):
    """AR(K) with K = 5 on 200 simulated observations (the first K condition).

    Stan: ``alpha ~ normal(0, 10)``, ``beta ~ normal(0, 10)``, ``sigma ~ cauchy(0, 2.5)``
    on the positive half-line; all proper.
    """
    num_lags = int(K)
    alpha = numpyro.sample("alpha", dist.Normal(0.0, 10.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, 10.0).expand([num_lags]).to_event(1))
    sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))
    length = y.shape[0]
    # lags[t, k] = y[t - k - 1] for the predicted times t = K .. T-1
    lags = jnp.stack([y[num_lags - k - 1: length - k - 1] for k in range(num_lags)], axis=1)
    with numpyro.plate("time", length - num_lags):
        numpyro.sample("y", dist.Normal(alpha + lags @ beta, sigma), obs=y[num_lags:])


def garch11(y, sigma1):
    """GARCH(1, 1) volatility model on 200 simulated observations.

    ``sigma[t]^2 = alpha0 + alpha1 (y[t-1] - mu)^2 + beta1 sigma[t-1]^2``, ``sigma[1]``
    given. Stan: flat priors on ``mu``, ``alpha0 > 0`` and on the triangle
    ``0 < alpha1 < 1``, ``0 < beta1 < 1 - alpha1``. Here ``mu ~ normal(0, 100)``,
    ``alpha0 ~ half-normal(100)``, and the triangle stays uniform exactly:
    ``alpha1 ~ beta(1, 2)`` (its marginal) and ``beta1 | alpha1 ~ uniform(0, 1 - alpha1)``.
    """
    mu = numpyro.sample("mu", _WIDE_COEF)
    alpha0 = numpyro.sample("alpha0", _WIDE_SCALE)
    alpha1 = numpyro.sample("alpha1", dist.Beta(1.0, 2.0))
    beta1 = numpyro.sample("beta1", dist.Uniform(0.0, 1.0 - alpha1))

    def one(sigma_prev, y_prev):
        sigma_t = jnp.sqrt(alpha0 + alpha1 * (y_prev - mu) ** 2 + beta1 * sigma_prev ** 2)
        return sigma_t, sigma_t

    _, rest = jax.lax.scan(one, jnp.asarray(sigma1, y.dtype), y[:-1])
    sigma = jnp.concatenate([jnp.asarray(sigma1, y.dtype)[None], rest])
    with numpyro.plate("time", y.shape[0]):
        numpyro.sample("y", dist.Normal(mu, sigma), obs=y)


def gp_pois_regr(x, k):
    """Poisson regression with a latent GP (squared-exponential kernel), 11 counts.

    Non-centred: ``f = chol(K(alpha, rho) + 1e-10 I) f_tilde``. Stan:
    ``rho ~ gamma(25, 4)``, ``alpha ~ normal(0, 2)`` on the positive half-line,
    ``f_tilde ~ normal(0, 1)``; all proper. ``f`` is reported as a deterministic site.
    """
    rho = numpyro.sample("rho", dist.Gamma(25.0, 4.0))
    alpha = numpyro.sample("alpha", dist.HalfNormal(2.0))
    f_tilde = numpyro.sample("f_tilde", dist.Normal(0.0, 1.0).expand([x.shape[0]]).to_event(1))
    sq_dist = (x[:, None] - x[None, :]) ** 2
    cov = alpha ** 2 * jnp.exp(-0.5 * sq_dist / rho ** 2) + 1e-10 * jnp.eye(x.shape[0])
    f = numpyro.deterministic("f", jnp.linalg.cholesky(cov) @ f_tilde)
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("k", dist.Poisson(jnp.exp(f)), obs=k)


class _OrderedNormal(dist.Distribution):
    """``normal(loc, scale)`` on each of ``size`` coordinates, restricted to increasing
    vectors: the law of the sorted iid draws (density ``size!`` times the product)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.ordered_vector
    reparametrized_params = ["loc", "scale"]

    def __init__(self, loc, scale, size, *, validate_args=None):
        self.loc, self.scale, self.size = loc, scale, size
        super().__init__(batch_shape=(), event_shape=(size,), validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        draws = jax.random.normal(key, sample_shape + (self.size,))
        return jnp.sort(self.loc + self.scale * draws, axis=-1)

    def log_prob(self, value):
        log_factorial = jax.scipy.special.gammaln(self.size + 1.0)
        return (jnp.sum(dist.Normal(self.loc, self.scale).log_prob(value), axis=-1)
                + log_factorial)


def low_dim_gauss_mix(y):
    """Two-component normal mixture on 1 000 simulated points, ordered means.

    Stan: ``mu ~ normal(0, 2)`` (ordered), ``sigma ~ normal(0, 2)`` on the positive
    half-line, ``theta ~ beta(5, 5)``; all proper (the ordered normal is sampled by sorting
    iid draws).
    """
    mu = numpyro.sample("mu", _OrderedNormal(0.0, 2.0, 2))
    sigma = numpyro.sample("sigma", dist.HalfNormal(2.0).expand([2]).to_event(1))
    theta = numpyro.sample("theta", dist.Beta(5.0, 5.0))
    log_mix = jnp.stack([jnp.log(theta) + dist.Normal(mu[0], sigma[0]).log_prob(y),
                         jnp.log1p(-theta) + dist.Normal(mu[1], sigma[1]).log_prob(y)])
    numpyro.factor("y", jnp.sum(logsumexp(log_mix, axis=0)))


def hmm_example(y):
    """Two-state hidden Markov model with unit-variance normal emissions (100 points),
    the states marginalised by the forward algorithm.

    Stan: uniform (Dirichlet(1, 1)) transition rows ``theta1``, ``theta2``;
    ``mu ~ normal((3, 10), 1)`` restricted to ``0 < mu[1] < mu[2]``; all proper. The
    ordered pair is drawn as ``mu[1] ~ normal(3, 1)`` truncated to ``(0, inf)`` and
    ``mu[2] | mu[1] ~ normal(10, 1)`` truncated to ``(mu[1], inf)``; the factor
    ``log P(normal(10, 1) > mu[1])`` (in the likelihood) makes the joint exactly Stan's.
    """
    theta1 = numpyro.sample("theta1", dist.Dirichlet(jnp.ones(2)))
    theta2 = numpyro.sample("theta2", dist.Dirichlet(jnp.ones(2)))
    mu1 = numpyro.sample("mu1", dist.TruncatedNormal(3.0, 1.0, low=0.0))
    mu2 = numpyro.sample("mu2", dist.TruncatedNormal(10.0, 1.0, low=mu1))
    mu = numpyro.deterministic("mu", jnp.stack([mu1, mu2]))
    numpyro.factor("ordering", norm.logcdf(10.0 - mu1))
    log_transition = jnp.log(jnp.stack([theta1, theta2]))        # [from, to]
    log_emission = dist.Normal(mu, 1.0).log_prob(y[:, None])   # (T, K)

    def forward(log_alpha, log_e):
        new = logsumexp(log_alpha[:, None] + log_transition, axis=0) + log_e
        return new, None

    log_alpha, _ = jax.lax.scan(forward, log_emission[0], log_emission[1:])
    numpyro.factor("y", logsumexp(log_alpha))


# ---------------------------------------------------------------------------- data
def _float(data, *names):
    return {name: jnp.asarray(data[name], dtype=float) for name in names}


_DATA_ADAPTERS: dict[str, Callable[[dict], dict]] = {
    "earnings-logearn_height": lambda d: _float(d, "earn", "height"),
    "mesquite-logmesquite": lambda d: _float(d, "weight", "diam1", "diam2", "canopy_height",
                                             "total_height", "density", "group"),
    "nes1972-nes": lambda d: _float(d, "partyid7", "real_ideo", "race_adj", "educ1",
                                    "gender", "income", "age_discrete"),
    "kidiq-kidscore_momhsiq": lambda d: _float(d, "kid_score", "mom_hs", "mom_iq"),
    "sblrc-blr": lambda d: _float(d, "X", "y"),
    "kilpisjarvi_mod-kilpisjarvi": lambda d: _float(d, "x", "y", "pmualpha", "psalpha",
                                                    "pmubeta", "psbeta"),
    "eight_schools-eight_schools_noncentered": lambda d: _float(d, "y", "sigma"),
    "arma-arma11": lambda d: _float(d, "y"),
    "arK-arK": lambda d: {**_float(d, "y"), "K": int(d["K"])},
    "garch-garch11": lambda d: _float(d, "y", "sigma1"),
    "gp_pois_regr-gp_pois_regr": lambda d: {**_float(d, "x"),
                                            "k": jnp.asarray(d["k"], dtype=jnp.int32)},
    "low_dim_gauss_mix-low_dim_gauss_mix": lambda d: _float(d, "y"),
    "hmm_example-hmm_example": lambda d: _float(d, "y"),
}

SUITE: dict[str, Posterior] = {p.name: p for p in [
    Posterior("eight_schools-eight_schools_noncentered", eight_schools_noncentered,
              "hierarchical, non-centred", {}),
    Posterior("earnings-logearn_height", earnings_logearn_height,
              "linear regression, correlated", {"beta": _WIDE_COEF, "sigma": _WIDE_SCALE}),
    Posterior("nes1972-nes", nes, "linear regression, 10-d",
              {"beta": _WIDE_COEF, "sigma": _WIDE_SCALE}),
    Posterior("mesquite-logmesquite", logmesquite, "linear regression, 8-d",
              {"beta": _WIDE_COEF, "sigma": _WIDE_SCALE}),
    Posterior("kidiq-kidscore_momhsiq", kidscore_momhsiq, "linear regression",
              {"beta": _WIDE_COEF}),
    Posterior("sblrc-blr", blr, "linear regression, tight", {}),
    Posterior("kilpisjarvi_mod-kilpisjarvi", kilpisjarvi, "linear trend, corr. -0.9999",
              {"sigma": _WIDE_SCALE}),
    Posterior("arK-arK", arK, "time series, AR(5)", {}),
    Posterior("arma-arma11", arma11, "time series, ARMA(1,1)", {}),
    Posterior("garch-garch11", garch11, "time series, GARCH(1,1)",
              {"mu": _WIDE_COEF, "alpha0": _WIDE_SCALE}),
    Posterior("gp_pois_regr-gp_pois_regr", gp_pois_regr, "latent GP, Poisson", {}),
    Posterior("low_dim_gauss_mix-low_dim_gauss_mix", low_dim_gauss_mix, "normal mixture", {}),
    Posterior("hmm_example-hmm_example", hmm_example, "hidden Markov model", {}),
]}
