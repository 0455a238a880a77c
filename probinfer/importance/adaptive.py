"""Many expectations from one sample: adaptive importance sampling + control variates.

Demange-Chryst, Bachoc & Morio, "Efficient estimation of multiple expectations with the
same sample by adaptive importance sampling and control variates" (2023). The goal is
``I_m = E_p[phi_m(X)]``, ``m = 1..M``, for a normalised nominal density ``p``, with one budget
of evaluations of ``phi`` (one evaluation gives all M values).

With proposal ``g`` and the control variate ``p/g - 1`` (mean zero under ``g``), the
estimator ``phi_m p/g - beta (p/g - 1)`` at ``beta = I_m`` is ``(phi_m - I_m) p/g + I_m``; its
variance summed over the integrands with weights ``c_m`` is smallest for

    g*(x) ∝ p(x) sqrt(sum_m c_m (phi_m(x) - I_m)²),

which needs the unknown ``I_m``. The algorithm approaches it stage by stage:

1. draw a stage (the first from ``p`` mixed with a moment-matched Gaussian) from the current proposal ``g_s = alpha p + (1 - alpha) GM_s`` (a defensive
   mixture of the nominal density and a Gaussian mixture), evaluate ``phi``;
2. estimate ``I`` from all stages so far, fit ``GM_{s+1}`` to ``g*`` by weighted EM
   (cross-entropy) on all stages' draws;
3. predict the weighted variance of the final estimator under ``g_{s+1}``, ``V_{s+1}``,
   by importance sampling from the stored draws, and the criterion
   ``J_s = V_{s+1} / (budget left after stage s)``: the final error if we stopped now.
   Adaptation stops as soon as a stage fails to lower ``J`` (it no longer pays for the
   evaluations it spends), or when the budget kept for the final stage would be cut.
   The first proposal stays a candidate (its ``J`` is predicted the same way), so when
   adaptation cannot beat it the final stage uses it;
4. the budget left is spent on a FRESH sample from the best proposal; the estimates use
   the mixture components as control variates (Owen & Zhou 2000), with coefficients
   fitted by least squares and cross-fitted over two halves, so they are exactly unbiased;
   the spread of the per-draw terms gives each expectation's variance, their covariance
   and normal confidence intervals.

``ais_init`` / ``ais_step`` are the pure stage functions over :class:`AISState`;
:func:`expectations` runs the whole procedure.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np
import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp
from scipy.stats import norm as _scipy_norm

from probinfer._types import Array, PRNGKey
from probinfer._validation import check_positive_int
from probinfer.particles.weights import ess, log_mean_exp, normalize
from probinfer.result import Result
from probinfer.targets.base import Target


class AISState(NamedTuple):
    """State of the adaptation stages.

    The draws of all stages live in fixed buffers ``(max_stages, stage_size, ...)`` so
    that every stage has the same compiled shape; ``filled`` marks the stages drawn.
    ``means``, ``covs``, ``mix`` describe the Gaussian-mixture part of the NEXT proposal.
    """

    means: Array
    covs: Array
    mix: Array
    samples: Array
    values: Array
    log_nominal: Array
    log_proposal: Array
    filled: Array
    stage: Array
    integrand_weights: Array
    estimates: Array
    criterion: Array
    criterion_previous: Array
    num_nonfinite: Array


class ExpectationsResult(NamedTuple):
    """Estimates of many expectations from :func:`expectations`.

    Attributes
    ----------
    estimates : (M,) unbiased estimates from the final fresh stage.
    std_errors : (M,) their Monte Carlo standard errors.
    ci : (M, 2) normal confidence intervals at the requested level.
    covariance : (M, M) estimated covariance of ``estimates``.
    influence : (n_final, M) per-draw terms whose mean is ``estimates`` (for delta methods).
    values : (n_final, M) ``phi`` at the final draws.
    result : :class:`~probinfer.Result` of the final stage (draws, normalised ``p/g``
        log-weights, ``log_evidence`` estimating ``log ∫ p = 0`` as a check).
    num_evaluations : total evaluations of ``phi`` (adaptation + final).
    num_stages : adaptation stages drawn.
    criterion : (num_stages,) the stopping criterion ``J_s`` after each stage.
    stage_estimates : (num_stages, M) the pooled estimates after each stage.
    proposal : the final stage's proposal (defensive weight ``alpha``, Gaussian ``means``,
        Cholesky factors ``chols``, mixture weights ``mix``).
    """

    estimates: Array
    std_errors: Array
    ci: Array
    covariance: Array
    influence: Array
    values: Array
    result: Result
    num_evaluations: int
    num_stages: int
    criterion: Array
    stage_estimates: Array
    proposal: Any


class _Proposal(NamedTuple):
    """``alpha p + (1 - alpha) sum_k mix_k N(means_k, covs_k)`` with Cholesky factors cached."""

    alpha: Array
    means: Array
    chols: Array
    mix: Array

    @classmethod
    def build(cls, alpha, means, covs, mix):
        return cls(alpha, means, jnp.linalg.cholesky(covs), mix)

    def gaussian_log_densities(self, x):
        """``(n, K)`` log N(x_n; means_k, covs_k), one triangular solve per component."""
        d = x.shape[1]

        def one(mean, chol):
            z = jax.scipy.linalg.solve_triangular(chol, (x - mean).T, lower=True)
            half_logdet = jnp.sum(jnp.log(jnp.diagonal(chol)))
            return -0.5 * jnp.sum(z * z, axis=0) - half_logdet - 0.5 * d * jnp.log(2 * jnp.pi)

        return jax.vmap(one)(self.means, self.chols).T

    def component_log_densities(self, x, log_nominal):
        """``(n, K + 1)``: the nominal, then the Gaussians, each times its mixture weight."""
        return jnp.concatenate(
            [(jnp.log(self.alpha) + log_nominal)[:, None],
             jnp.log1p(-self.alpha) + jnp.log(self.mix) + self.gaussian_log_densities(x)],
            axis=1)

    def log_density(self, x, log_nominal):
        return logsumexp(self.component_log_densities(x, log_nominal), axis=1)

    def sample(self, key, nominal: Target, num: int):
        k_choice, k_nom, k_comp, k_z = jax.random.split(key, 4)
        use_nominal = jax.random.uniform(k_choice, (num,)) < self.alpha
        comp = jax.random.categorical(k_comp, jnp.log(self.mix), shape=(num,))
        z = jax.random.normal(k_z, (num, self.means.shape[1]), self.means.dtype)
        gauss = self.means[comp] + jnp.einsum("nij,nj->ni", self.chols[comp], z)
        return jnp.where(use_nominal[:, None], nominal.sample(k_nom, num), gauss)


def _evaluate(phi, x):
    values = jax.vmap(phi)(x)
    values = values.reshape(x.shape[0], -1)
    return values, jnp.sum(~jnp.all(jnp.isfinite(values), axis=1))


def _weighted_em(x, weights, means, covs, mix, ridge, num_iterations: int):
    """Weighted EM for a Gaussian mixture; ``weights`` (n,) non-negative, sum one."""
    d = x.shape[1]
    eye = jnp.eye(d, dtype=x.dtype)

    def body(_, params):
        means, covs, mix = params
        gm = _Proposal.build(jnp.zeros((), x.dtype), means, covs, mix)
        log_r = jnp.log(mix) + gm.gaussian_log_densities(x)
        resp = jax.nn.softmax(log_r, axis=1) * weights[:, None]
        mass = jnp.sum(resp, axis=0)
        safe = jnp.maximum(mass, 1e-30)
        new_means = (resp.T @ x) / safe[:, None]
        centred = x[None, :, :] - new_means[:, None, :]
        new_covs = jnp.einsum("nk,kni,knj->kij", resp, centred, centred) / safe[:, None, None]
        new_covs = new_covs + ridge * eye
        # A component that lost all mass keeps its old parameters.
        alive = mass > 1e-12
        new_means = jnp.where(alive[:, None], new_means, means)
        new_covs = jnp.where(alive[:, None, None], new_covs, covs)
        new_mix = jnp.maximum(mass, 1e-6)
        return new_means, new_covs, new_mix / jnp.sum(new_mix)

    if means.shape[0] == 1:
        # One Gaussian: the weighted moments are the exact fit, no iteration needed.
        num_iterations = 1
    return jax.lax.fori_loop(0, num_iterations, body, (means, covs, mix))


def _adapt(state: AISState, nominal, alpha, ridge, num_em: int) -> AISState:
    """Pooled estimates, proposal refit toward g*, and the predicted variance under it."""
    mask = state.filled[:, None].astype(state.values.dtype)
    n_total = jnp.sum(mask) * state.values.shape[1]
    log_w = state.log_nominal - state.log_proposal
    w = jnp.exp(log_w) * mask
    estimates = jnp.einsum("sn,snm->m", w, state.values) / n_total
    centred2 = (state.values - estimates) ** 2
    rho = jnp.sqrt(jnp.einsum("snm,m->sn", centred2, state.integrand_weights))
    fit_w = (rho * w).reshape(-1)
    total = jnp.sum(fit_w)
    x = state.samples.reshape(-1, state.samples.shape[-1])
    fitted = _weighted_em(x, fit_w / jnp.where(total > 0, total, 1.0), state.means,
                          state.covs, state.mix, ridge, num_em)
    keep = total > 0
    means, covs, mix = (jnp.where(keep, new, old) for new, old in
                        zip(fitted, (state.means, state.covs, state.mix)))

    def predicted(means, covs, mix):
        # E_g[((phi - I) p / g)²] estimated from draws of the stages' own proposals q:
        # mean of (phi - I)² p² / (g q), weighted by c.
        proposal = _Proposal.build(alpha, means, covs, mix)
        log_g = proposal.log_density(x, state.log_nominal.reshape(-1))
        log_g = log_g.reshape(state.log_nominal.shape)
        ratio = jnp.exp(2 * state.log_nominal - log_g - state.log_proposal) * mask
        variances = jnp.einsum("sn,snm->m", ratio, centred2) / n_total
        return jnp.dot(state.integrand_weights, variances)

    return state._replace(means=means, covs=covs, mix=mix, estimates=estimates,
                          criterion=predicted(means, covs, mix),
                          criterion_previous=predicted(state.means, state.covs, state.mix))


def _store(state: AISState, x, values, log_p, log_q, nonfinite) -> AISState:
    s = state.stage
    put = lambda buf, v: jax.lax.dynamic_update_index_in_dim(buf, v, s, 0)
    return state._replace(samples=put(state.samples, x), values=put(state.values, values),
                          log_nominal=put(state.log_nominal, log_p),
                          log_proposal=put(state.log_proposal, log_q),
                          filled=state.filled.at[s].set(True), stage=s + 1,
                          num_nonfinite=nonfinite)


def _draw_stage(key, state: AISState, nominal, phi, alpha, num: int):
    proposal = _Proposal.build(alpha, state.means, state.covs, state.mix)
    x = proposal.sample(key, nominal, num)
    values, nonfinite = _evaluate(phi, x)
    log_p = nominal.batch_log_density(x)
    return x, values, log_p, proposal.log_density(x, log_p), nonfinite


def ais_init(key: PRNGKey, nominal: Target, phi: Callable, stage_size: int, max_stages: int,
             num_components: int = 1) -> AISState:
    """The empty state: buffers for ``max_stages`` stages and the first proposal.

    The first proposal's Gaussian part is moment matched to ``4 · stage_size`` draws of
    ``p`` (free: no evaluation of ``phi``); with several components they start at distinct
    draws of ``p``. ``phi`` is only traced here, for the number of integrands.
    """
    pilot = nominal.sample(key, 4 * stage_size)
    d = pilot.shape[1]
    centre = jnp.mean(pilot, axis=0)
    cov = (pilot - centre).T @ (pilot - centre) / (pilot.shape[0] - 1)
    means = pilot[:num_components] if num_components > 1 else centre[None]
    m = jax.eval_shape(phi, pilot[0]).shape
    num_integrands = int(np.prod(m)) if m else 1
    dtype = pilot.dtype
    return AISState(
        means=means, covs=jnp.broadcast_to(cov, (num_components, d, d)),
        mix=jnp.full((num_components,), 1.0 / num_components, dtype),
        samples=jnp.zeros((max_stages, stage_size, d), dtype),
        values=jnp.zeros((max_stages, stage_size, num_integrands), dtype),
        log_nominal=jnp.zeros((max_stages, stage_size), dtype),
        log_proposal=jnp.zeros((max_stages, stage_size), dtype),
        filled=jnp.zeros((max_stages,), bool), stage=jnp.zeros((), jnp.int32),
        integrand_weights=jnp.ones((num_integrands,), dtype),
        estimates=jnp.zeros((num_integrands,), dtype), criterion=jnp.zeros((), dtype),
        criterion_previous=jnp.zeros((), dtype), num_nonfinite=jnp.zeros((), jnp.int32))


def ais_step(key: PRNGKey, state: AISState, nominal: Target, phi: Callable, alpha,
             integrand_weights=None, *, ridge=1e-3, em_iterations: int = 10) -> AISState:
    """One adaptation stage: draw from the current proposal, re-estimate, refit, predict.

    ``integrand_weights`` (the ``c_m`` of the joint optimal density) are fixed at the first
    stage: a function of the first stage's estimates returning them, or None (each
    integrand relative to its first-stage variance, so that no scale dominates).
    ``ridge`` is added to refitted covariances, relative to the first proposal's mean
    variance.
    """
    x, values, log_p, log_q, nonfinite = _draw_stage(key, state, nominal, phi, alpha,
                                                      state.samples.shape[1])
    first = state.stage == 0
    scale = jnp.trace(state.covs[0]) / state.covs.shape[-1]
    state = _store(state, x, values, log_p, log_q, nonfinite)
    wv = jnp.exp(log_p - log_q)[:, None] * values
    if integrand_weights is None:
        c = 1.0 / jnp.maximum(jnp.var(wv, axis=0), 1e-30)
    else:
        c = jnp.asarray(integrand_weights(jnp.mean(wv, axis=0)), values.dtype)
    c = jnp.where(first, jnp.broadcast_to(c, state.integrand_weights.shape),
                  state.integrand_weights)
    state = state._replace(integrand_weights=c)
    return _adapt(state, nominal, alpha, ridge * scale, em_iterations)


def _cross_fitted(values, log_p, log_components, log_g):
    """Per-draw terms of the IS + control-variate estimator, coefficients cross-fitted.

    Controls ``q_j / g - 1`` for all mixture components but the last (they sum to zero
    with the mixture weights, so one is redundant). Coefficients are fitted by least
    squares on one half and applied to the other, so every term has exact mean ``I``.
    """
    w = jnp.exp(log_p - log_g)
    y = values * w[:, None]
    controls = jnp.exp(log_components[:, :-1] - log_g[:, None]) - 1.0
    n = y.shape[0]
    fold = jnp.arange(n) % 2
    terms = y
    for f in (0, 1):
        fit = fold == f
        design = jnp.concatenate([jnp.ones((n, 1), y.dtype), controls], axis=1)
        dm = design * fit[:, None]
        gram = dm.T @ design + 1e-10 * jnp.eye(design.shape[1], dtype=y.dtype)
        beta = jnp.linalg.solve(gram, dm.T @ y)[1:]
        terms = jnp.where((~fit)[:, None], y - controls @ beta, terms)
    return terms


def _final_stage(key, nominal, phi, proposal: _Proposal, num: int, z):
    """Fresh draws from the final proposal, cross-fitted IS + CV terms and their summary."""
    x = proposal.sample(key, nominal, num)
    values, nonfinite = _evaluate(phi, x)
    log_p = nominal.batch_log_density(x)
    log_comps = proposal.component_log_densities(x, log_p)
    log_g = logsumexp(log_comps, axis=1)
    # Component densities without their mixture weights, for the controls q_j / g - 1.
    mass = jnp.concatenate([jnp.log(proposal.alpha)[None],
                            jnp.log1p(-proposal.alpha) + jnp.log(proposal.mix)])
    terms = _cross_fitted(values, log_p, log_comps - mass, log_g)
    estimates = jnp.mean(terms, axis=0)
    covariance = jnp.atleast_2d(jnp.cov(terms, rowvar=False)) / num
    std_errors = jnp.sqrt(jnp.diag(covariance))
    ci = jnp.stack([estimates - z * std_errors, estimates + z * std_errors], axis=1)
    log_w = log_p - log_g
    summary = (estimates, std_errors, ci, covariance, normalize(log_w)[0], log_mean_exp(log_w),
               ess(log_w))
    return x, values, log_w, terms, nonfinite, summary


def _as_vector_fn(fns):
    if callable(fns):
        return fns
    try:
        fns = list(fns)
    except TypeError as err:
        raise TypeError("fns must be a callable of one point returning (M,) values, or a list "
                        "of callables of one point returning scalars") from err
    if not fns or not all(callable(f) for f in fns):
        raise TypeError("fns must be a callable or a non-empty list of callables")
    return lambda x: jnp.stack([jnp.asarray(f(x)).reshape(()) for f in fns])


def _check_nonfinite(count, where: str) -> None:
    if int(count) > 0:
        raise ValueError(f"the integrands returned NaN or inf at {int(count)} draws of the "
                         f"{where}; expectations need finite values everywhere p > 0")


def expectations(key: PRNGKey, fns, target: Target, budget: int, *, stage_size: int | None = None,
                 max_stages: int = 10, num_components: int = 1, alpha=0.1, weights=None,
                 final_fraction: float = 0.3, confidence: float = 0.95,
                 em_iterations: int = 10, progress_bar: bool | None = None) -> ExpectationsResult:
    """Estimate many expectations ``E_p[phi_m(X)]`` from one adaptive sample.

    Adaptive importance sampling with control variates, a stopping rule that trades
    adaptation against the budget left, and a final fresh stage that makes the reported
    estimates unbiased (Demange-Chryst, Bachoc & Morio 2023; see the module docstring).

    Parameters
    ----------
    key : PRNG key.
    fns : a JAX function of ONE point returning the M integrand values ``(M,)``, or a list
        of functions of one point returning scalars (host functions: wrap with
        :func:`probinfer.steer.host_reward`).
    target : the nominal density ``p``: a Target with ``sample``, normalised (its
        ``log_normalizer`` is subtracted when it is known), over vectors ``(d,)``.
    budget : total evaluations of the integrands (adaptation plus final stage).
    stage_size : draws per adaptation stage (default ``budget // 10``).
    max_stages : most adaptation stages.
    num_components : Gaussian components of the adapted proposal.
    alpha : weight of ``p`` in the defensive mixture (bounds the weights by ``1/alpha``).
    weights : ``c_m`` of the joint objective ``sum_m c_m Var(I_m hat)``: an ``(M,)`` array,
        a function of the first-stage estimates returning one, or None (each integrand
        relative to its own first-stage variance).
    final_fraction : the least share of the budget kept for the final stage.
    confidence : level of the confidence intervals.
    em_iterations : EM iterations per refit.
    progress_bar : show a bar over the stages (default: only for long runs).

    Returns
    -------
    :class:`ExpectationsResult`.

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> p = pi.Gaussian(jnp.zeros(2), jnp.eye(2))
    >>> fns = [lambda x: x[0] ** 2, lambda x: jnp.exp(x[1]), lambda x: (x[0] > 2.0) * 1.0]
    >>> res = pi.importance.expectations(jax.random.key(0), fns, p, 4000)
    >>> res.estimates.shape, res.ci.shape
    ((3,), (3, 2))
    """
    from probinfer._progress import tqdm

    if not isinstance(target, Target):
        raise TypeError(f"target must be a probinfer Target, got {type(target).__name__}")
    if not target.can_sample:
        raise ValueError("target must be able to sample: it is the nominal density p")
    if target.log_normalizer is None:
        raise ValueError("target.log_normalizer must be known (0 for a normalised density): "
                         "unbiased estimates of E_p need a normalised p")
    phi = _as_vector_fn(fns)
    budget = check_positive_int(budget, "budget")
    max_stages = check_positive_int(max_stages, "max_stages")
    num_components = check_positive_int(num_components, "num_components")
    em_iterations = check_positive_int(em_iterations, "em_iterations")
    if not 0.0 < float(final_fraction) < 1.0:
        raise ValueError(f"final_fraction must be in (0, 1), got {final_fraction}")
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    alpha_f = float(alpha)
    if not 0.0 < alpha_f < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    stage_size = budget // 10 if stage_size is None else check_positive_int(stage_size,
                                                                            "stage_size")
    min_final = int(np.ceil(final_fraction * budget))
    if stage_size < 10 or budget - stage_size < max(min_final, 10):
        raise ValueError(f"budget={budget} is too small: it must pay for a first stage of at "
                         f"least 10 draws (stage_size={stage_size}) and keep "
                         f"{max(min_final, 10)} for the final stage; raise budget (>= 100 with "
                         "the default stage_size)")
    nominal = _Normalised(target, float(target.log_normalizer))
    probe = target.sample(jax.random.key(0), 1)
    if probe.ndim != 2:
        raise ValueError(f"target must be over vectors (d,), its samples have shape {probe.shape}")
    alpha_arr = jnp.asarray(alpha_f, probe.dtype)

    keys = jax.random.split(key, max_stages + 2)
    c_arg = weights
    if weights is not None and not callable(weights):
        c_arg = np.asarray(weights, dtype=np.float64)
        if c_arg.ndim != 1 or np.any(~np.isfinite(c_arg)) or np.any(c_arg < 0):
            raise ValueError("weights must be a 1-D array of finite non-negative numbers")
        # Arrays are not hashable static arguments: pass the array through a closure.
        c_arg = _ConstantWeights(c_arg)
    m = jax.eval_shape(phi, probe[0]).shape
    if c_arg is not None and isinstance(c_arg, _ConstantWeights) and c_arg.c.shape != (
            int(np.prod(m)) if m else 1,):
        raise ValueError(f"weights must have shape ({int(np.prod(m)) if m else 1},), got "
                         f"{c_arg.c.shape}")
    state = _init_jit(keys[0], nominal, phi, stage_size, max_stages, num_components)
    initial_params = (state.means, state.covs, state.mix)
    state = _step_jit(keys[1], state, nominal, phi, alpha_arr, c_arg, em_iterations=em_iterations)
    _check_nonfinite(state.num_nonfinite, "first stage")
    used = stage_size
    crit = [float(state.criterion) / (budget - used)]
    history = [state.estimates]
    best = (crit[0], state.means, state.covs, state.mix)
    # The first proposal stays a candidate: when adapting does not help (integrands that
    # p already samples well), the final stage falls back to it.
    initial = (float(state.criterion_previous) / (budget - used), *initial_params)
    if initial[0] <= best[0]:
        best = initial
    with tqdm(total=max_stages, disable=not progress_bar, desc="AIS stages") as bar:
        bar.update(1)
        for s in range(1, max_stages):
            if budget - used - stage_size < min_final:
                break
            state = _step_jit(keys[s + 1], state, nominal, phi, alpha_arr, c_arg,
                              em_iterations=em_iterations)
            _check_nonfinite(state.num_nonfinite, f"adaptation stage {s}")
            used += stage_size
            crit.append(float(state.criterion) / (budget - used))
            history.append(state.estimates)
            bar.update(1)
            if not crit[-1] < best[0]:
                break
            best = (crit[-1], state.means, state.covs, state.mix)
    proposal = _Proposal.build(alpha_arr, best[1], best[2], best[3])
    num_final = budget - used
    z = jnp.asarray(_scipy_norm.ppf(0.5 + confidence / 2), probe.dtype)
    x, values, log_w, terms, nonfinite, summary = _final_jit(keys[-1], nominal, phi, proposal,
                                                             num_final, z)
    _check_nonfinite(nonfinite, "final stage")
    estimates, std_errors, ci, covariance, log_norm, log_evidence, final_ess = summary
    result = Result(samples=x, log_weights=log_norm, log_evidence=log_evidence,
                    info={"ess": final_ess, "log_weights_unnormalized": log_w,
                          "num_evaluations": budget})
    return ExpectationsResult(
        estimates=estimates, std_errors=std_errors, ci=ci, covariance=covariance,
        influence=terms, values=values, result=result, num_evaluations=budget,
        num_stages=len(crit), criterion=jnp.asarray(crit), stage_estimates=jnp.stack(history),
        proposal=proposal)


class _ConstantWeights:
    """Fixed integrand weights as a hashable callable (a static argument of the stages)."""

    def __init__(self, c):
        self.c = np.asarray(c)
        self._key = (self.c.shape, self.c.tobytes())

    def __call__(self, estimates):
        return jnp.asarray(self.c, estimates.dtype)

    def __hash__(self):
        return hash(self._key)

    def __eq__(self, other):
        return isinstance(other, _ConstantWeights) and self._key == other._key


class _Normalised(Target):
    """The nominal target with its known log-normaliser subtracted.

    Equal (and hashing equal) for the same target and normaliser, so repeated calls reuse
    the compiled stages.
    """

    def __init__(self, target: Target, log_z: float):
        self.target = target
        self.log_z = log_z

    def __hash__(self):
        return hash((id(self.target), self.log_z))

    def __eq__(self, other):
        return (isinstance(other, _Normalised) and other.target is self.target
                and other.log_z == self.log_z)

    @property
    def log_normalizer(self):
        return jnp.zeros(())

    def log_density(self, x):
        return self.target.log_density(x) - self.log_z

    def sample(self, key, num_samples):
        return self.target.sample(key, num_samples)


# Module-level compiled stages: repeated calls with the same integrands, nominal density and
# sizes reuse them (numeric settings are traced arguments).
_init_jit = jax.jit(ais_init, static_argnums=(1, 2, 3, 4, 5))
_step_jit = jax.jit(ais_step, static_argnums=(2, 3, 5), static_argnames=("em_iterations",))
_final_jit = jax.jit(_final_stage, static_argnums=(1, 2, 4))
