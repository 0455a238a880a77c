"""l_p sensitivity sampling: leverage scores, Lewis weights, l_p sensitivities, sampled regression.

To approximate ``||A x||_p`` for every ``x`` with few rows, sample row ``i`` with probability
``q_i`` and weight it by ``1 / (m q_i)``: ``sum_j |a_{i_j}^T x|^p / (m q_{i_j})`` is unbiased
for ``||A x||_p^p``. Good ``q`` follow how much a row can matter:

* leverage scores ``tau_i = a_i^T (A^T A)^+ a_i`` (the l_2 sensitivities; they sum to rank A);
* l_p Lewis weights ``w_i = (a_i^T (A^T W^{1-2/p} A)^{-1} a_i)^{p/2}`` (sum to d; the fixed
  point iteration of Cohen & Peng 2015 converges for p < 4);
* l_p sensitivities ``s_i = max_x |a_i^T x|^p / ||A x||_p^p`` (total at most d for p <= 2,
  at most ``d^{p/2}`` for p > 2). Exactly, ``1 / s_i = min {||A x||_p^p : a_i^T x = 1}``: a
  linear program for p = 1, a smooth convex program for p > 1. Approximately, the Lewis
  weights bound them: ``s_i <= w_i`` for p <= 2 and ``s_i <= d^{p/2 - 1} w_i`` for p > 2
  (Hölder on ``|a_i^T x| <= w_i^{1/p} ||M^{1/2} x||``, ``M = A^T W^{1-2/p} A``).

Woodruff & Yasuda, "Sharper Bounds for l_p Sensitivity Sampling" (ICML 2023), show that
sampling by sensitivities needs fewer rows than Lewis-weight sampling when the total
sensitivity is small, and for p > 2 combine sensitivities with leverage scores;
``"root-leverage"`` samples by ``sqrt(tau_i)``, a cheap proxy for p = 1. :func:`lp_regression`
solves the sampled (sketch-and-solve) l_p regression and reports the distortion
``||S A x||_p / ||A x||_p`` it measured.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from probinfer._types import Array, PRNGKey
from probinfer._validation import as_float_array, check_positive_int

METHODS = ("sensitivity", "lewis", "root-leverage", "leverage+sensitivity")
EXACT_SENSITIVITY_MAX_ROWS = 400


def _check_matrix(A, name: str = "A", full_rank: bool = True):
    A = np.asarray(as_float_array(A, name, ndim=2), dtype=np.float64)
    n, d = A.shape
    if not np.all(np.isfinite(A)):
        raise ValueError(f"{name} must be finite")
    if n < d:
        raise ValueError(f"{name} must have at least as many rows as columns, got shape {A.shape}")
    if full_rank:
        rank = np.linalg.matrix_rank(A)
        if rank < d:
            raise ValueError(f"{name} is rank-deficient (rank {rank} < {d} columns): Lewis "
                             "weights, l_p sensitivities and l_p regression need full column "
                             "rank; drop or combine the dependent columns")
    return A


def _check_p(p) -> float:
    try:
        p = float(p)
    except (TypeError, ValueError) as err:
        raise TypeError(f"p must be a number >= 1, got {p!r}") from err
    if not np.isfinite(p) or p < 1.0:
        raise ValueError(f"p must be finite and >= 1 (l_p is a norm only for p >= 1), got {p}")
    return p


@jax.jit
def _leverage(A):
    u, s, _ = jnp.linalg.svd(A, full_matrices=False)
    tol = jnp.max(s) * max(A.shape) * jnp.finfo(A.dtype).eps
    keep = s > tol
    return jnp.sum(jnp.where(keep[None, :], u * u, 0.0), axis=1)


def leverage_scores(A) -> Array:
    """Leverage scores ``tau_i = a_i^T (A^T A)^+ a_i`` of the rows of ``A`` (n, d).

    They sum to rank A (rank-deficient matrices are allowed: the pseudo-inverse is used).

    Example
    -------
    >>> import jax, probinfer as pi
    >>> A = jax.random.normal(jax.random.key(0), (50, 3))
    >>> round(float(pi.importance.leverage_scores(A).sum()), 4)
    3.0
    """
    A = _check_matrix(A, full_rank=False)
    return _leverage(jnp.asarray(A, jnp.result_type(float)))


@jax.jit
def _lewis_iterations(A, p, num_iterations):
    n, d = A.shape
    exponent = 1.0 - 2.0 / p
    # In log space the fixed-point map has slope in [-(p/2 - 1), 0]: a contraction for
    # p < 4; past that, a damped step of 2/p keeps the slope in [0, 1 - 2/p].
    step = jnp.where(p < 4, 1.0, 2.0 / p)

    def body(_, w):
        m = (A * (w ** exponent)[:, None]).T @ A
        tau = jnp.sum(A * jnp.linalg.solve(m, A.T).T, axis=1)
        target = jnp.maximum(tau, 1e-300) ** (p / 2.0)
        return jnp.exp((1.0 - step) * jnp.log(w) + step * jnp.log(target))

    w0 = jnp.full((n,), d / n, A.dtype)
    return jax.lax.fori_loop(0, num_iterations, body, w0)


def lewis_weights(A, p, *, num_iterations: int = 100) -> Array:
    """l_p Lewis weights of the rows of a full-column-rank ``A`` (n, d); they sum to d.

    The fixed point ``w_i = (a_i^T (A^T W^{1-2/p} A)^{-1} a_i)^{p/2}`` by iteration
    (Cohen & Peng, "l_p row sampling by Lewis weights", STOC 2015; contraction for p < 4,
    damped for larger p). ``p = 2`` gives the leverage scores.

    Example
    -------
    >>> import jax, probinfer as pi
    >>> A = jax.random.normal(jax.random.key(0), (50, 3))
    >>> round(float(pi.importance.lewis_weights(A, 1.0).sum()), 3)
    3.0
    """
    A = _check_matrix(A)
    p = _check_p(p)
    num_iterations = check_positive_int(num_iterations, "num_iterations")
    dtype = jnp.result_type(float)
    return _lewis_iterations(jnp.asarray(A, dtype), jnp.asarray(p, dtype),
                             jnp.asarray(num_iterations))


def _min_lp_norm_on_hyperplane(A, a, p):
    """``min {||A x||_p^p : a^T x = 1}`` (an LP for p = 1, L-BFGS for p > 1)."""
    from scipy.optimize import linprog, minimize

    n, d = A.shape
    if p == 1.0:
        cost = np.concatenate([np.zeros(d), np.ones(n)])
        eye = np.eye(n)
        a_ub = np.block([[A, -eye], [-A, -eye]])
        a_eq = np.concatenate([a, np.zeros(n)])[None, :]
        bounds = [(None, None)] * d + [(0, None)] * n
        res = linprog(cost, A_ub=a_ub, b_ub=np.zeros(2 * n), A_eq=a_eq, b_eq=[1.0],
                      bounds=bounds, method="highs")
        if res.status != 0:
            raise RuntimeError(f"the sensitivity LP failed: {res.message}")
        return res.fun
    # Parametrise the hyperplane: x = a / |a|² + N y with N a basis of a's complement.
    x0 = a / (a @ a)
    basis = np.linalg.svd(a[None, :])[2][1:].T
    B, r0 = A @ basis, A @ x0

    def objective(y):
        r = r0 + B @ y
        ar = np.abs(r)
        return np.sum(ar ** p), B.T @ (p * ar ** (p - 1) * np.sign(r))

    y0 = np.linalg.lstsq(B, -r0, rcond=None)[0] if d > 1 else np.zeros(0)
    if d == 1:
        return float(np.sum(np.abs(r0) ** p))
    res = minimize(objective, y0, jac=True, method="L-BFGS-B",
                   options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-12})
    return float(res.fun)


def lp_sensitivities(A, p, *, method: str = "auto") -> Array:
    """l_p sensitivities ``s_i = max_x |a_i^T x|^p / ||A x||_p^p`` of a full-rank ``A``.

    Parameters
    ----------
    A : (n, d) with full column rank.
    p : >= 1.
    method : ``"exact"`` (one LP per row for p = 1 via ``scipy.optimize.linprog``, one
        convex L-BFGS problem per row for p > 1), ``"approximate"`` (the Lewis-weight upper
        bound: ``w_i`` for p <= 2, ``d^{p/2-1} w_i`` for p > 2), or ``"auto"`` (exact up to
        ``EXACT_SENSITIVITY_MAX_ROWS`` rows).

    Example
    -------
    >>> import jax, probinfer as pi
    >>> A = jax.random.normal(jax.random.key(0), (40, 2))
    >>> bool(pi.importance.lp_sensitivities(A, 1.0).sum() <= 2.0 + 1e-6)
    True
    """
    A = _check_matrix(A)
    p = _check_p(p)
    if method not in ("auto", "exact", "approximate"):
        raise ValueError(f"method must be 'auto', 'exact' or 'approximate', got {method!r}")
    n, d = A.shape
    if method == "approximate" or (method == "auto" and n > EXACT_SENSITIVITY_MAX_ROWS):
        w = lewis_weights(A, p)
        return jnp.minimum(w * (d ** max(0.0, p / 2.0 - 1.0)), 1.0)
    s = np.array([1.0 / _min_lp_norm_on_hyperplane(A, A[i], p) if np.any(A[i]) else 0.0
                  for i in range(n)])
    return jnp.asarray(np.minimum(s, 1.0), jnp.result_type(float))


def sampling_probabilities(A, p, method: str = "lewis", *, sensitivities=None) -> Array:
    """Row-sampling probabilities ``q`` (n,) of :func:`lp_sample`'s methods."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    A = _check_matrix(A)
    p = _check_p(p)
    if method in ("sensitivity", "leverage+sensitivity"):
        s = (lp_sensitivities(A, p) if sensitivities is None
             else as_float_array(sensitivities, "sensitivities", ndim=1, shape=(A.shape[0],)))
        s = s / jnp.sum(s)
    if method == "lewis":
        w = lewis_weights(A, p)
        return w / jnp.sum(w)
    if method == "sensitivity":
        return s
    tau = leverage_scores(A)
    if method == "root-leverage":
        r = jnp.sqrt(tau)
        return r / jnp.sum(r)
    return 0.5 * tau / jnp.sum(tau) + 0.5 * s


def lp_sample(key: PRNGKey, A, p, m: int, method: str = "lewis", *,
              sensitivities=None) -> tuple[Array, Array]:
    """Sample ``m`` rows of ``A`` for l_p subspace embedding / regression.

    Rows are drawn i.i.d. with probabilities ``q`` from ``method``; the sampled matrix is
    ``S A`` with rows ``weights_j^{1/p} a_{indices_j}``, so that
    ``||S A x||_p^p = sum_j weights_j |a_{indices_j}^T x|^p`` is unbiased for ``||A x||_p^p``.

    Parameters
    ----------
    key : PRNG key.
    A : (n, d) full column rank.
    p : >= 1.
    m : number of rows drawn (with replacement).
    method : ``"sensitivity"`` (q ∝ l_p sensitivities), ``"lewis"`` (q ∝ Lewis weights),
        ``"root-leverage"`` (q ∝ sqrt(leverage)), or ``"leverage+sensitivity"`` (the
        half-half mixture of leverage and sensitivity sampling; Woodruff & Yasuda 2023).
    sensitivities : precomputed sensitivities (n,), to avoid recomputing them.

    Returns
    -------
    ``(indices (m,), weights (m,))`` with ``weights = 1 / (m q_indices)``.

    Example
    -------
    >>> import jax, probinfer as pi
    >>> A = jax.random.normal(jax.random.key(0), (200, 3))
    >>> idx, w = pi.importance.lp_sample(jax.random.key(1), A, 1.0, 50)
    >>> idx.shape, w.shape
    ((50,), (50,))
    """
    m = check_positive_int(m, "m")
    q = sampling_probabilities(A, p, method, sensitivities=sensitivities)
    indices = jax.random.choice(key, q.shape[0], (m,), p=q)
    return indices, 1.0 / (m * q[indices])


def _lp_solve(A, b, p, weights):
    """``argmin_x sum_i weights_i |a_i^T x - b_i|^p`` (LP for p = 1, L-BFGS otherwise)."""
    from scipy.optimize import linprog, minimize

    n, d = A.shape
    if p == 1.0:
        cost = np.concatenate([np.zeros(d), weights])
        eye = np.eye(n)
        res = linprog(cost, A_ub=np.block([[A, -eye], [-A, -eye]]),
                      b_ub=np.concatenate([b, -b]),
                      bounds=[(None, None)] * d + [(0, None)] * n, method="highs")
        if res.status != 0:
            raise RuntimeError(f"the l_1 regression LP failed: {res.message}")
        return res.x[:d]
    sw = np.sqrt(weights)
    x0 = np.linalg.lstsq(A * sw[:, None], b * sw, rcond=None)[0]
    scale = max(np.sum(weights * np.abs(A @ x0 - b) ** p), 1e-300)

    def objective(x):
        r = A @ x - b
        ar = np.abs(r)
        return (np.sum(weights * ar ** p) / scale,
                A.T @ (weights * p * ar ** (p - 1) * np.sign(r)) / scale)

    res = minimize(objective, x0, jac=True, method="L-BFGS-B",
                   options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-12})
    return res.x


def _lp_cost(A, b, x, p, weights=None):
    r = np.abs(A @ x - b) ** p
    return float(np.sum(r if weights is None else weights * r) ** (1.0 / p))


class LpRegressionResult(NamedTuple):
    """Sketch-and-solve l_p regression and its measured distortion.

    Attributes
    ----------
    x : (d,) solution of the sampled problem.
    cost : ``||A x - b||_p`` of ``x`` on the FULL problem.
    optimal_cost : ``||A x* - b||_p`` of the full problem's solution.
    relative_error : ``cost / optimal_cost - 1`` (the ε of a 1 + ε approximation).
    distortion : ``max |r - 1|`` over the probes, ``r = ||S [A b] v||_p / ||[A b] v||_p``.
    distortion_range : (min r, max r) over the probes.
    indices, weights : the sampled rows and their weights (see :func:`lp_sample`).
    """

    x: Array
    cost: float
    optimal_cost: float
    relative_error: float
    distortion: float
    distortion_range: tuple
    indices: Array
    weights: Array


def _distortion(M, rows, weights, p, rng, num_probes: int):
    """Range of ``||S M v||_p / ||M v||_p``: random probes, then local search on the extremes."""
    from scipy.optimize import minimize

    S = M[rows]

    def log_ratio(v, sign):
        rs, rf = S @ v, M @ v
        ns, nf = np.sum(weights * np.abs(rs) ** p), np.sum(np.abs(rf) ** p)
        gs = S.T @ (weights * p * np.abs(rs) ** (p - 1) * np.sign(rs)) / ns
        gf = M.T @ (p * np.abs(rf) ** (p - 1) * np.sign(rf)) / nf
        return sign * (np.log(ns) - np.log(nf)) / p, sign * (gs - gf) / p

    probes = rng.standard_normal((num_probes, M.shape[1]))
    values = np.array([log_ratio(v, 1.0)[0] for v in probes])
    lo, hi = values.min(), values.max()
    # The worst random probes start a local search, so the report is close to the true
    # extremes of the ratio rather than to the extremes of a random sample.
    for sign, start in ((-1.0, probes[np.argmax(values)]), (1.0, probes[np.argmin(values)])):
        res = minimize(lambda v: log_ratio(v, sign), start, jac=True, method="L-BFGS-B",
                       options={"maxiter": 200})
        val = log_ratio(res.x, 1.0)[0]
        lo, hi = min(lo, val), max(hi, val)
    return float(np.exp(lo)), float(np.exp(hi))


def lp_regression(key: PRNGKey, A, b, p, m: int, method: str = "lewis", *,
                  num_probes: int = 200, sensitivities=None) -> LpRegressionResult:
    """Sampled (sketch-and-solve) l_p regression ``min_x ||A x - b||_p`` with a distortion report.

    Samples ``m`` rows of ``[A b]`` by :func:`lp_sample` (probabilities from ``[A b]``, so
    the embedding covers the residual directions), solves the weighted sampled problem
    (LP for p = 1, L-BFGS for p > 1), and measures: the full-problem cost of the sketched
    solution against the optimum, and the range of ``||S [A b] v||_p / ||[A b] v||_p`` over
    ``num_probes`` random directions refined by local search.

    Example
    -------
    >>> import jax, probinfer as pi
    >>> A = jax.random.normal(jax.random.key(0), (300, 3))
    >>> b = A @ jax.numpy.ones(3) + jax.random.laplace(jax.random.key(1), (300,))
    >>> res = pi.importance.lp_regression(jax.random.key(2), A, b, 1.0, 120)
    >>> bool(res.relative_error < 0.5)
    True
    """
    A = _check_matrix(A)
    p = _check_p(p)
    b = np.asarray(as_float_array(b, "b", ndim=1, shape=(A.shape[0],)), dtype=np.float64)
    if not np.all(np.isfinite(b)):
        raise ValueError("b must be finite")
    num_probes = check_positive_int(num_probes, "num_probes")
    M = np.concatenate([A, b[:, None]], axis=1)
    if np.linalg.matrix_rank(M) < M.shape[1]:
        # b in the column span: the problem is solved exactly by least squares.
        M = A
    idx, w = lp_sample(key, M, p, m, method, sensitivities=sensitivities)
    idx, w = np.asarray(idx), np.asarray(w, dtype=np.float64)
    x = _lp_solve(A[idx], b[idx], p, w)
    x_full = _lp_solve(A, b, p, np.ones(A.shape[0]))
    cost, best = _lp_cost(A, b, x, p), _lp_cost(A, b, x_full, p)
    seed = int(jax.random.randint(jax.random.fold_in(key, 1), (), 0, 2 ** 31 - 1))
    lo, hi = _distortion(np.concatenate([A, b[:, None]], axis=1), idx, w, p,
                         np.random.default_rng(seed), num_probes)
    rel = cost / best - 1.0 if best > 0 else (0.0 if cost == 0 else np.inf)
    return LpRegressionResult(x=jnp.asarray(x), cost=cost, optimal_cost=best,
                              relative_error=float(rel), distortion=max(1.0 - lo, hi - 1.0),
                              distortion_range=(lo, hi), indices=jnp.asarray(idx),
                              weights=jnp.asarray(w))
