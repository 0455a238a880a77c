"""Sobol' indices by pick-freeze Monte Carlo or by adaptive IS + control variates.

For independent inputs ``X = (X_1..X_d)`` and output ``Y = f(X)`` with variance ``V``, the
first-order index ``S_i = Var(E[Y | X_i]) / V`` and the total index
``ST_i = E[Var(Y | X_{~i})] / V``. Draw two independent input vectors ``A``, ``B`` and let
``AB_i`` be ``A`` with its i-th coordinate taken from ``B``. Then, with ``y_A = f(A)`` etc.,

* ``V_i  = E[y_B (y_ABi - y_A)]``      (Saltelli et al. 2010, first order),
* ``VT_i = E[(y_A - y_ABi)²] / 2``      (Jansen 1999, total),
* ``m_1 = E[(y_A + y_B) / 2]``, ``m_2 = E[(y_A² + y_B²) / 2]``, ``V = m_2 - m_1²``,

so the indices are smooth functions of ``M = 2d + 2`` expectations over the pair
``(A, B)``, each draw costing ``d + 2`` model evaluations.

``method="pick-freeze"`` estimates them by plain Monte Carlo. ``method="ais-cv"`` is the
application of Demange-Chryst, Bachoc & Morio (2023): the same M expectations estimated
together by :func:`~probinfer.importance.expectations` (adaptive IS toward the joint optimal
density of the pair, control variates, a fresh final stage). The pair is sampled in Gaussian
coordinates (``x_i = F_i^{-1}(Phi(z_i))``), where the adapted proposals are Gaussian mixtures.
In both cases the confidence intervals come from the delta method on the estimated
covariance of the M expectations. Because every estimate is a weighted average over draws of
``(A, B)``, the indices under a CHANGED input distribution follow from the same sample by
reweighting (:meth:`SobolResult.reweight`, the paper's second application).
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import numpy as np
import jax
import jax.numpy as jnp
from scipy.stats import norm as _scipy_norm

from probinfer import _executor
from probinfer._types import Array, PRNGKey
from probinfer._validation import check_positive_int
from probinfer.importance.adaptive import expectations
from probinfer.targets.gaussian import Gaussian

METHODS = ("ais-cv", "pick-freeze")
_MIN_DRAWS = {"ais-cv": 100, "pick-freeze": 10}


class SobolSample(NamedTuple):
    """The draws behind a :class:`SobolResult`, kept for reweighting."""

    x_a: Array
    x_b: Array
    values: Array
    log_weights: Array


class SobolResult(NamedTuple):
    """First-order and total Sobol' indices with confidence intervals.

    Attributes
    ----------
    first_order, total : (d,) indices ``S_i`` and ``ST_i``.
    first_order_ci, total_ci : (d, 2) confidence intervals.
    num_evaluations : model evaluations spent.
    first_order_se, total_se : (d,) standard errors (delta method).
    mean, variance : estimates of ``E[Y]`` and ``Var(Y)``.
    names : input names (``x1..xd`` unless given).
    method : ``"ais-cv"``, ``"pick-freeze"``, or ``"reweighted"``.
    confidence : level of the intervals.
    inputs : the input distributions.
    sample : the draws (:class:`SobolSample`), for :meth:`reweight`.
    info : method details (AIS stages and criterion; ESS after reweighting).
    """

    first_order: Array
    total: Array
    first_order_ci: Array
    total_ci: Array
    num_evaluations: int
    first_order_se: Array
    total_se: Array
    mean: Array
    variance: Array
    names: tuple
    method: str
    confidence: float
    inputs: tuple
    sample: SobolSample
    info: Any = None

    def to_dataframe(self):
        """A tidy ``pandas.DataFrame``: one row per (input, index kind)."""
        try:
            import pandas as pd
        except ImportError as err:
            raise ImportError("SobolResult.to_dataframe needs pandas: pip install pandas") from err
        rows = []
        for kind, est, ci, se in (("first_order", self.first_order, self.first_order_ci,
                                   self.first_order_se),
                                  ("total", self.total, self.total_ci, self.total_se)):
            for i, name in enumerate(self.names):
                rows.append({"input": name, "index": kind, "estimate": float(est[i]),
                             "std_error": float(se[i]), "ci_low": float(ci[i, 0]),
                             "ci_high": float(ci[i, 1])})
        return pd.DataFrame(rows)

    def reweight(self, inputs) -> "SobolResult":
        """Indices under other input distributions, from the same draws (no new evaluation).

        Each draw of the pair ``(A, B)`` is reweighted by
        ``prod_i p~_i(A_i) p~_i(B_i) / (p_i(A_i) p_i(B_i))``; the estimates are unbiased IS
        averages. The new distributions must put no mass where the old ones have none, and
        the ESS of the ratio (in ``info["ess"]``) says how far they can move.

        Example
        -------
        >>> import jax, jax.numpy as jnp, numpyro.distributions as dist, probinfer as pi
        >>> fn = lambda x: x[0] + 2.0 * x[1]
        >>> res = pi.importance.sobol(jax.random.key(0), fn, [dist.Normal(0., 1.)] * 2, 4000,
        ...                           method="pick-freeze")
        >>> wider = res.reweight([dist.Normal(0., 1.5), dist.Normal(0., 1.)])
        >>> bool(wider.first_order[0] > res.first_order[0])
        True
        """
        new = _check_inputs(inputs, len(self.names))
        ratio = jnp.zeros(self.sample.x_a.shape[0], self.sample.values.dtype)
        for i, (old_d, new_d) in enumerate(zip(self.inputs, new)):
            for x in (self.sample.x_a[:, i], self.sample.x_b[:, i]):
                ratio = ratio + new_d.log_prob(x) - old_d.log_prob(x)
        if not bool(jnp.all(jnp.isfinite(ratio))):
            raise ValueError("the new input distributions give zero or NaN density at draws "
                             "of the old ones; they must cover the same support")
        log_w = self.sample.log_weights + ratio
        terms = jnp.exp(log_w)[:, None] * self.sample.values
        from probinfer.particles.weights import ess
        return _indices_result(terms, self.num_evaluations, self.names, "reweighted",
                               self.confidence, tuple(new), self.sample._replace(log_weights=log_w),
                               {"ess": ess(log_w)})


def _has_icdf(distribution) -> bool:
    try:
        distribution.icdf(jnp.asarray(0.5))
    except (NotImplementedError, ImportError):
        return False
    return True


def _check_inputs(inputs, d: int | None = None) -> tuple:
    try:
        import numpyro.distributions as dist
    except ImportError as err:  # numpyro is a core dependency; kept for a clear message
        raise ImportError("sobol inputs are NumPyro distributions: pip install numpyro") from err
    if isinstance(inputs, dist.Distribution):
        raise ValueError("inputs must be a list of d independent univariate NumPyro "
                         "distributions, got a single distribution; dependent inputs are not "
                         "supported (Sobol' indices here assume independence)")
    inputs = tuple(inputs)
    if not inputs:
        raise ValueError("inputs must be a non-empty list of NumPyro distributions")
    for i, dd in enumerate(inputs):
        if not isinstance(dd, dist.Distribution):
            raise TypeError(f"inputs[{i}] must be a numpyro.distributions.Distribution, got "
                            f"{type(dd).__name__}")
        if dd.event_shape != () or dd.batch_shape != ():
            raise ValueError(f"inputs[{i}] must be univariate with batch_shape () and "
                             f"event_shape (), got batch {dd.batch_shape}, event "
                             f"{dd.event_shape}: dependent inputs are not supported (Sobol' "
                             "indices here assume independent inputs)")
    if d is not None and len(inputs) != d:
        raise ValueError(f"inputs must have {d} distributions, got {len(inputs)}")
    return inputs


def _icdf(distribution, u):
    """``F^{-1}(u)``; bisection on ``cdf`` where NumPyro has no ``icdf`` (e.g. Beta)."""
    if _has_icdf(distribution):
        return distribution.icdf(u)
    low, high = distribution.support.lower_bound, distribution.support.upper_bound
    low = jnp.broadcast_to(jnp.asarray(low, u.dtype), u.shape)
    high = jnp.broadcast_to(jnp.asarray(high, u.dtype), u.shape)
    if not (bool(jnp.all(jnp.isfinite(low))) and bool(jnp.all(jnp.isfinite(high)))):
        raise ValueError(f"{type(distribution).__name__} has neither icdf nor a bounded "
                         "support for inverting its cdf; method='ais-cv' needs one of them")

    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        below = distribution.cdf(mid) < u
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = jax.lax.fori_loop(0, 60, body, (low, high))
    return 0.5 * (lo + hi)


def _integrands(ya, yb, yab):
    """The M = 2d + 2 per-draw integrands from ``y_A (n,)``, ``y_B (n,)``, ``y_ABi (n, d)``."""
    m1 = 0.5 * (ya + yb)
    m2 = 0.5 * (ya * ya + yb * yb)
    first = yb[:, None] * (yab - ya[:, None])
    total = 0.5 * (ya[:, None] - yab) ** 2
    return jnp.concatenate([m1[:, None], m2[:, None], first, total], axis=1)


def _pick_freeze_points(x_a, x_b):
    """``(n, d + 2, d)``: A, B, then AB_i = A with coordinate i from B."""
    d = x_a.shape[1]
    eye = jnp.eye(d, dtype=bool)
    ab = jnp.where(eye[None], x_b[:, None, :], x_a[:, None, :])
    return jnp.concatenate([x_a[:, None, :], x_b[:, None, :], ab], axis=1)


def _evaluate_fn(fn, points):
    """``fn`` over ``(n, k, d)`` points -> ``(n, k)`` (one host call for host functions)."""
    n, k, d = points.shape
    y = jax.vmap(fn)(points.reshape(n * k, d))
    y = jnp.asarray(y)
    if y.shape != (n * k,):
        raise ValueError(f"fn must return a scalar per input vector, got shape {y.shape[1:]}")
    return y.reshape(n, k)


def _indices_gradient(est, d):
    """Jacobian of ``(S, ST)`` (2d,) with respect to the M expectations (2d, M)."""
    def indices(e):
        var = e[1] - e[0] ** 2
        return jnp.concatenate([e[2:2 + d], e[2 + d:]]) / var
    return jax.jacobian(indices)(est)


@partial(jax.jit, static_argnums=(2,))
def _index_summary(terms, z, d):
    """Expectations, their covariance, the indices and delta-method intervals (compiled once
    per shape)."""
    n = terms.shape[0]
    est = jnp.mean(terms, axis=0)
    cov = jnp.cov(terms, rowvar=False) / n
    var = est[1] - est[0] ** 2
    jac = _indices_gradient(est, d)
    se = jnp.sqrt(jnp.maximum(jnp.diag(jac @ cov @ jac.T), 0.0))
    idx = jnp.concatenate([est[2:2 + d], est[2 + d:]]) / var
    ci = jnp.stack([idx - z * se, idx + z * se], axis=1)
    return est[0], var, idx, se, ci


def _indices_result(terms, num_evaluations, names, method, confidence, inputs, sample, info):
    d = len(names)
    z = jnp.asarray(_scipy_norm.ppf(0.5 + confidence / 2), terms.dtype)
    mean, var, idx, se, ci = _index_summary(terms, z, d)
    if not bool(var > 0):
        raise ValueError("the estimated output variance is not positive: fn looks constant "
                         "over the inputs (or the budget is far too small)")
    return SobolResult(first_order=idx[:d], total=idx[d:], first_order_ci=ci[:d],
                       total_ci=ci[d:], num_evaluations=int(num_evaluations),
                       first_order_se=se[:d], total_se=se[d:], mean=mean, variance=var,
                       names=tuple(names), method=method, confidence=float(confidence),
                       inputs=tuple(inputs), sample=sample, info=info)


def _check_values(values, where):
    bad = int(jnp.sum(~jnp.isfinite(values)))
    if bad:
        raise ValueError(f"fn returned NaN or inf at {bad} input vectors ({where}); Sobol' "
                         "indices need a finite output everywhere in the input support")


def sobol(key: PRNGKey, fn, inputs, budget: int, *, method: str = "ais-cv",
          confidence: float = 0.95, names=None, executor=None, chunk_size: int = 256,
          **ais_options) -> SobolResult:
    """First-order and total Sobol' indices of ``fn`` under independent ``inputs``.

    Parameters
    ----------
    key : PRNG key.
    fn : a function of ONE input vector ``(d,)`` returning a scalar: JAX (vmapped), or a
        batched host function wrapped by :func:`probinfer.steer.host_reward` (one host
        call per batch).
    inputs : list of d univariate NumPyro distributions (``Uniform``, ``Normal``,
        ``TruncatedNormal``, ``Beta``, ...), assumed independent.
    budget : total evaluations of ``fn``; each draw costs ``d + 2``.
    method : ``"ais-cv"`` (adaptive IS + control variates; Demange-Chryst, Bachoc & Morio
        2023) or ``"pick-freeze"`` (Saltelli 2010 first order, Jansen total; plain MC).
    confidence : level of the delta-method confidence intervals.
    names : input names for the table (default ``x1..xd``).
    executor : any :class:`concurrent.futures.Executor` (a process pool, dask's
        ``client.get_executor()``, Ray's executor). ``fn`` is then a batched host function
        ``(B, d) -> (B,)`` (NumPy, a simulator), called as
        ``pi.steer.host_reward(fn, executor=executor, chunk_size=chunk_size)``: each batch of
        evaluations is split into chunks of at most ``chunk_size`` points spread over the
        executor and put back in order, so the result equals the in-process call's; a chunk
        that fails is submitted once more and its error re-raised if it fails again.
        ``fn`` must be picklable (a module-level function).
    chunk_size : points per chunk with ``executor``.
    **ais_options : passed to :func:`~probinfer.importance.expectations` for ``"ais-cv"``
        (``stage_size``, ``max_stages``, ``num_components``, ``alpha``, ``final_fraction``).

    Returns
    -------
    :class:`SobolResult` (``first_order``, ``total``, ``first_order_ci``, ``total_ci``,
    ``num_evaluations``, ``to_dataframe()``, ``reweight(new_inputs)``).

    Example
    -------
    >>> import jax, jax.numpy as jnp, numpyro.distributions as dist, probinfer as pi
    >>> def ishigami(x):
    ...     return jnp.sin(x[0]) + 7.0 * jnp.sin(x[1]) ** 2 + 0.1 * x[2] ** 4 * jnp.sin(x[0])
    >>> inputs = [dist.Uniform(-jnp.pi, jnp.pi)] * 3
    >>> res = pi.importance.sobol(jax.random.key(0), ishigami, inputs, 10_000,
    ...                           method="pick-freeze")
    >>> res.first_order.shape, res.total_ci.shape
    ((3,), (3, 2))
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not callable(fn):
        raise TypeError("fn must be callable: one input vector (d,) -> scalar")
    chunk_size = _executor.check_executor(executor, chunk_size)
    if executor is not None:
        from probinfer.steering._rewards import HostReward
        if isinstance(fn, HostReward):
            raise TypeError("executor= takes the batched host function itself; fn is already "
                            "a host_reward (give that one executor= instead)")
        fn = HostReward(fn, executor=executor, chunk_size=chunk_size)
        try:
            result = sobol(key, fn, inputs, budget, method=method, confidence=confidence,
                           names=names, **ais_options)
        except Exception:
            fn.raise_pending()         # the host function's own error, not a NaN report
            raise
        fn.raise_pending()
        return result
    inputs = _check_inputs(inputs)
    d = len(inputs)
    budget = check_positive_int(budget, "budget")
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    names = tuple(f"x{i + 1}" for i in range(d)) if names is None else tuple(names)
    if len(names) != d:
        raise ValueError(f"names must have {d} entries, got {len(names)}")
    num_draws = budget // (d + 2)
    if num_draws < _MIN_DRAWS[method]:
        need = _MIN_DRAWS[method] * (d + 2)
        raise ValueError(f"budget={budget} is too small for {d} first-order and total "
                         f"indices with method={method!r}: each draw costs d + 2 = {d + 2} "
                         f"evaluations and at least {_MIN_DRAWS[method]} draws are needed "
                         f"(budget >= {need})")
    if method == "pick-freeze":
        if ais_options:
            raise TypeError(f"options {sorted(ais_options)} apply to method='ais-cv' only")
        return _pick_freeze(key, fn, inputs, num_draws, names, confidence)
    return _ais_cv(key, fn, inputs, num_draws, names, confidence, ais_options)


@partial(jax.jit, static_argnums=(1, 2, 3))
def _pick_freeze_draws(key, fn, inputs, num_draws):
    keys = jax.random.split(key, len(inputs))
    x = jnp.stack([dd.sample(k, (2 * num_draws,)) for dd, k in zip(inputs, keys)], axis=1)
    x_a, x_b = x[:num_draws], x[num_draws:]
    y = _evaluate_fn(fn, _pick_freeze_points(x_a, x_b))
    return x_a, x_b, y, _integrands(y[:, 0], y[:, 1], y[:, 2:])


def _pick_freeze(key, fn, inputs, num_draws, names, confidence):
    x_a, x_b, y, terms = _pick_freeze_draws(key, fn, inputs, num_draws)
    _check_values(y, "pick-freeze sample")
    sample = SobolSample(x_a, x_b, terms, jnp.zeros(num_draws, terms.dtype))
    return _indices_result(terms, num_draws * (len(inputs) + 2), names, "pick-freeze",
                           confidence, inputs, sample, None)


class _PickFreezeIntegrands:
    """The M integrands of one draw ``z`` (2d,) of the pair in Gaussian coordinates.

    Hashable by the model and the input distributions (by identity), so repeated
    :func:`sobol` calls on the same problem reuse the compiled adaptive stages.
    """

    def __init__(self, fn, inputs):
        self.fn = fn
        self.inputs = inputs
        self.d = len(inputs)
        self._key = (fn, tuple(id(i) for i in inputs))

    def __hash__(self):
        return hash(self._key)

    def __eq__(self, other):
        return isinstance(other, _PickFreezeIntegrands) and other._key == self._key

    def to_inputs(self, z):
        u = jax.scipy.stats.norm.cdf(z)
        tiny = jnp.finfo(z.dtype).eps
        u = jnp.clip(u, tiny, 1 - tiny)
        # Coordinate i of the pair (A, B) follows input i mod d.
        return jnp.stack([_icdf(self.inputs[i % self.d], u[..., i]) for i in range(z.shape[-1])],
                         axis=-1)

    def __call__(self, z):
        d = self.d
        x = self.to_inputs(z)
        points = _pick_freeze_points(x[None, :d], x[None, d:])
        y = jax.vmap(self.fn)(points[0])
        return _integrands(y[0][None], y[1][None], y[2:][None])[0]


class _IndexWeights:
    """``c_m = sum_k (dS_k / dI_m)²``: each expectation weighted by how much its error moves
    the indices (the joint proposal then targets the indices' summed variance)."""

    def __init__(self, d):
        self.d = d

    def __hash__(self):
        return hash(("sobol-index-weights", self.d))

    def __eq__(self, other):
        return isinstance(other, _IndexWeights) and other.d == self.d

    def __call__(self, estimates):
        c = jnp.sum(_indices_gradient(estimates, self.d) ** 2, axis=0)
        return jnp.maximum(c, 1e-6 * jnp.max(c))


def _ais_cv(key, fn, inputs, num_draws, names, confidence, options):
    d = len(inputs)
    phi = _PickFreezeIntegrands(fn, inputs)
    dtype = jnp.result_type(float)
    nominal = _standard_normal(2 * d, dtype)
    options = dict(options)
    options.setdefault("weights", _IndexWeights(d))
    try:
        res = expectations(key, phi, nominal, num_draws, **options)
    except ValueError as err:
        if "NaN" in str(err):
            raise ValueError(f"fn returned NaN or inf ({err})") from err
        raise
    x = phi.to_inputs(res.result.samples)
    sample = SobolSample(x[:, :d], x[:, d:], res.values,
                         res.result.info["log_weights_unnormalized"])
    info = {"num_stages": res.num_stages, "criterion": res.criterion, "expectations": res}
    return _indices_result(res.influence, num_draws * (d + 2), names, "ais-cv", confidence,
                           inputs, sample, info)


_STANDARD_NORMALS: dict = {}


def _standard_normal(dim, dtype):
    """One ``N(0, I)`` object per (dim, dtype), so that compiled stages are reused."""
    key = (dim, jnp.dtype(dtype).name)
    if key not in _STANDARD_NORMALS:
        _STANDARD_NORMALS[key] = Gaussian(jnp.zeros(dim, dtype), jnp.eye(dim, dtype=dtype))
    return _STANDARD_NORMALS[key]


def plot_sobol(result: SobolResult, ax=None):
    """Bar chart of first-order and total indices with their confidence intervals.

    Returns the matplotlib ``Figure``.

    Example
    -------
    >>> import jax, jax.numpy as jnp, numpyro.distributions as dist, probinfer as pi
    >>> res = pi.importance.sobol(jax.random.key(0), lambda x: x[0] + x[1] ** 2,
    ...                           [dist.Normal(0., 1.)] * 2, 2000, method="pick-freeze")
    >>> fig = pi.importance.plot_sobol(res)
    """
    import matplotlib.pyplot as plt

    if not isinstance(result, SobolResult):
        raise TypeError(f"result must be a SobolResult, got {type(result).__name__}")
    fig, ax = (plt.subplots(figsize=(1.2 * len(result.names) + 3, 3.5)) if ax is None
               else (ax.figure, ax))
    pos = np.arange(len(result.names))
    width = 0.38
    for shift, label, est, ci in ((-width / 2, "first order", result.first_order,
                                   result.first_order_ci),
                                  (width / 2, "total", result.total, result.total_ci)):
        est, ci = np.asarray(est), np.asarray(ci)
        err = np.stack([est - ci[:, 0], ci[:, 1] - est])
        ax.bar(pos + shift, est, width, yerr=err, capsize=3, label=label)
    ax.set_xticks(pos, result.names)
    ax.set_ylabel("Sobol' index")
    ax.axhline(0.0, color="k", lw=0.5)
    ax.legend()
    ax.set_title(f"Sobol' indices ({result.method}, {result.num_evaluations} evaluations, "
                 f"{int(round(100 * result.confidence))}% CI)")
    fig.tight_layout()
    return fig
