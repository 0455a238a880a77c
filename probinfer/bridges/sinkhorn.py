"""Entropic optimal transport: log-domain Sinkhorn in JAX.

The entropic problem between ``a = sum_i a_i delta_{x_i}`` and ``b = sum_j b_j delta_{y_j}``
with cost ``C_ij = c(x_i, y_j)`` is

    min_P <P, C> + epsilon KL(P | a b^T)  subject to  P 1 = a,  P^T 1 = b,

whose solution is ``P_ij = a_i b_j exp((f_i + g_j - C_ij) / epsilon)`` for dual potentials
``f, g``. Sinkhorn alternates the two exact half-updates of the potentials; working with
``f, g`` and ``logsumexp`` (rather than the scalings ``exp(f / epsilon)``) keeps every
iterate finite for small ``epsilon`` (Peyré & Cuturi 2019, "Computational Optimal
Transport", §4.4). ε-scaling (Schmitzer 2019) anneals ``epsilon`` geometrically from a large
start, warm-starting the potentials, which cuts the iteration count at small ``epsilon``.

Sinkhorn is a deterministic fixed-point iteration, so there is no ``(init, step)`` pair
with keys here: :func:`sinkhorn` runs the sweeps to convergence in one compiled
``while_loop`` (batched over a leading axis by ``vmap``; no progress bar, since a solve
takes well under a second) and returns a :class:`SinkhornResult`.
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import NamedTuple

import numpy as np
import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from probinfer._chunks import in_row_blocks
from probinfer._types import Array
from probinfer._validation import (as_float_array, check_finite, check_positive_int,
                                   check_positive_scalar, check_probability_vector, is_concrete)

#: Above this many entries the cost and the coupling are not stored: rows are recomputed
#: in blocks at every iteration and the coupling is returned as a :class:`Coupling` operator.
MAX_DENSE = 25_000_000
_BLOCK = 512
_COSTS = ("sqeuclidean", "euclidean")


def _pairwise(x, y, cost):
    """The cost matrix between point sets ``x`` (n, d) and ``y`` (m, d)."""
    if callable(cost):
        return jax.vmap(lambda xi: jax.vmap(lambda yj: cost(xi, yj))(y))(x)
    sq = jnp.maximum(jnp.sum(x ** 2, -1)[:, None] + jnp.sum(y ** 2, -1)[None, :]
                     - 2.0 * x @ y.T, 0.0)
    if cost == "sqeuclidean":
        return sq
    # The square root is taken where the distance is positive only, so gradients stay finite.
    pos = sq > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)


class _Geometry(NamedTuple):
    """Point clouds, and the cost matrix when it is small enough to keep."""
    x: Array
    y: Array
    cost_matrix: Array | None

    def softmin_rows(self, pot_y, log_b, eps, cost):
        """``-eps log sum_j b_j exp((pot_y_j - C_ij) / eps)`` for every row ``i``."""
        z = (pot_y + eps * log_b)
        if self.cost_matrix is not None:
            return -eps * logsumexp((z[None, :] - self.cost_matrix) / eps, axis=1)
        return in_row_blocks(
            lambda xb: -eps * logsumexp((z[None, :] - _pairwise(xb, self.y, cost)) / eps, 1),
            self.x, _BLOCK)

    def transpose(self):
        cm = None if self.cost_matrix is None else self.cost_matrix.T
        return _Geometry(self.y, self.x, cm)


class SinkhornState(NamedTuple):
    f: Array                # (n,) dual potential of the rows
    g: Array                # (m,) dual potential of the columns
    iteration: Array        # number of completed f/g sweeps
    marginal_error: Array   # ||P 1 - a||_1 of the current (f, g); +inf before the first check
    epsilon: Array          # the epsilon the current (f, g) were computed at


class SinkhornResult(NamedTuple):
    """The answer of :func:`sinkhorn` (all fields carry the batch axis when batched).

    Attributes
    ----------
    coupling : the ``(n, m)`` optimal entropic coupling ``P``, or, when ``n * m`` exceeds
        ``max_dense``, a :class:`Coupling` operator with ``P @ v``, ``P.T @ u``, ``.sum``
        and ``.dense()``.
    cost : the transport cost ``<P, C>`` of that coupling.
    f, g : dual potentials, ``P_ij = a_i b_j exp((f_i + g_j - C_ij) / epsilon)``.
    marginal_error : ``||P 1 - a||_1`` (the column marginal is exact after each sweep).
    num_iterations : number of sweeps run; ``marginal_error <= tol`` says it converged.
    """

    coupling: Array
    cost: Array
    f: Array
    g: Array
    marginal_error: Array
    num_iterations: Array


@jax.tree_util.register_pytree_node_class
class Coupling:
    """The entropic coupling ``P`` as an operator, for problems too large to store it.

    Built from the potentials; each product costs one pass over the cost in row blocks.
    """

    def __init__(self, x, y, f, g, log_a, log_b, epsilon, cost="sqeuclidean"):
        self.x, self.y, self.f, self.g = x, y, f, g
        self.log_a, self.log_b, self.epsilon, self.cost = log_a, log_b, epsilon, cost

    def tree_flatten(self):
        return (self.x, self.y, self.f, self.g, self.log_a, self.log_b, self.epsilon), self.cost

    @classmethod
    def tree_unflatten(cls, cost, children):
        return cls(*children, cost=cost)

    @property
    def shape(self):
        return self.x.shape[-2], self.y.shape[-2]

    def _log_rows(self, xb, fb, la):
        c = _pairwise(xb, self.y, self.cost)
        return (la[:, None] + self.log_b[None, :]
                + (fb[:, None] + self.g[None, :] - c) / self.epsilon)

    def __matmul__(self, v):
        """``P @ v`` for ``v`` of shape (m,) or (m, k)."""
        vv = v if v.ndim == 2 else v[:, None]
        stacked = jnp.concatenate([self.x, self.f[:, None], self.log_a[:, None]], axis=1)
        d = self.x.shape[1]
        out = in_row_blocks(
            lambda s: jnp.exp(self._log_rows(s[:, :d], s[:, d], s[:, d + 1])) @ vv,
            stacked, _BLOCK)
        return out if v.ndim == 2 else out[:, 0]

    @property
    def T(self):
        return Coupling(self.y, self.x, self.g, self.f, self.log_b, self.log_a, self.epsilon,
                        _transposed_cost(self.cost))

    def sum(self, axis=None):
        """Row sums (``axis=1``), column sums (``axis=0``) or the total mass."""
        if axis == 1:
            return self @ jnp.ones(self.shape[1], self.f.dtype)
        if axis == 0:
            return self.T @ jnp.ones(self.shape[0], self.f.dtype)
        return jnp.sum(self.sum(axis=1))

    def dense(self):
        """The full ``(n, m)`` matrix (only when it fits in memory)."""
        return jnp.exp(self._log_rows(self.x, self.f, self.log_a))


def _transposed_cost(cost):
    if callable(cost):
        return lambda yj, xi: cost(xi, yj)
    return cost


def _step(geom, log_a, log_b, state, epsilon, epsilon_decay, cost):
    """One sweep: ``f`` from ``g``, the row-marginal error of the old pair, then ``g``.

    The error of ``(f, g)`` is read off the ``f`` update it triggers:
    ``(P 1)_i = a_i exp((f_i - f_new_i) / eps)``, so checking costs nothing extra. While
    epsilon is still being annealed the error is not defined (reported as +inf).
    """
    eps_old = state.epsilon
    eps = jnp.maximum(epsilon, eps_old * epsilon_decay)
    f_new = geom.softmin_rows(state.g, log_b, eps, cost)
    err = jnp.where(eps == eps_old,
                    jnp.sum(jnp.exp(log_a) * jnp.abs(jnp.expm1((state.f - f_new) / eps))),
                    jnp.inf)
    g_new = geom.transpose().softmin_rows(f_new, log_a, eps, _transposed_cost(cost))
    return SinkhornState(f_new, g_new, state.iteration + 1, err, eps)


def _solve_one(x, y, a, b, epsilon, tol, max_iter, epsilon_start, epsilon_decay, *, cost,
               dense):
    geom = _Geometry(x, y, _pairwise(x, y, cost) if dense else None)
    log_a, log_b = jnp.log(a), jnp.log(b)
    eps0 = jnp.maximum(epsilon_start, epsilon)
    g0 = jnp.zeros(y.shape[0], x.dtype)
    f0 = geom.softmin_rows(g0, log_b, eps0, cost)
    g0 = geom.transpose().softmin_rows(f0, log_a, eps0, _transposed_cost(cost))
    state = SinkhornState(f0, g0, jnp.asarray(1), jnp.asarray(jnp.inf, x.dtype), eps0)

    def cond(carry):
        st, done = carry
        return (~done) & (st.iteration < max_iter)

    def body(carry):
        st, _ = carry
        new = _step(geom, log_a, log_b, st, epsilon, epsilon_decay, cost)
        # Converged: the OLD pair meets tol at the target epsilon; keep it (its error is known).
        done = new.marginal_error <= tol
        kept = jax.tree_util.tree_map(
            lambda o, n: jnp.where(done, o, n), st._replace(marginal_error=new.marginal_error),
            new)
        return kept, done

    state, done = jax.lax.while_loop(cond, body, (state, jnp.asarray(False)))
    f, g = state.f, state.g
    # When the budget ran out, report the error of the returned pair (one more f-update).
    f_chk = geom.softmin_rows(g, log_b, state.epsilon, cost)
    err_final = jnp.sum(a * jnp.abs(jnp.expm1((f - f_chk) / state.epsilon)))
    err = jnp.where(done, state.marginal_error, err_final)
    coupling_op = Coupling(x, y, f, g, log_a, log_b, state.epsilon, cost)
    if dense:
        coupling = jnp.exp(log_a[:, None] + log_b[None, :]
                           + (f[:, None] + g[None, :] - geom.cost_matrix) / state.epsilon)
        transport_cost = jnp.sum(coupling * geom.cost_matrix)
    else:
        coupling = coupling_op
        d = x.shape[1]
        stacked = jnp.concatenate([x, f[:, None], log_a[:, None]], axis=1)
        transport_cost = jnp.sum(in_row_blocks(
            lambda s: jnp.sum(jnp.exp(coupling_op._log_rows(s[:, :d], s[:, d], s[:, d + 1]))
                              * _pairwise(s[:, :d], y, cost), axis=1),
            stacked, _BLOCK))
    return SinkhornResult(coupling, transport_cost, f, g, err, state.iteration)


@partial(jax.jit, static_argnames=("cost", "dense", "batched"))
def _solve(x, y, a, b, epsilon, tol, max_iter, epsilon_start, epsilon_decay, *, cost, dense,
           batched):
    fn = partial(_solve_one, cost=cost, dense=dense)
    if batched:
        return jax.vmap(fn, in_axes=(0, 0, 0, 0, None, None, None, None, None))(
            x, y, a, b, epsilon, tol, max_iter, epsilon_start, epsilon_decay)
    return fn(x, y, a, b, epsilon, tol, max_iter, epsilon_start, epsilon_decay)


def _weights(w, n, name, batch, x):
    if w is None:
        return jnp.full(batch + (n,), 1.0 / n, x.dtype)
    w = as_float_array(w, name).astype(x.dtype)
    if w.shape != batch + (n,):
        raise ValueError(f"{name} must have shape {batch + (n,)}, got {w.shape}")
    check_probability_vector(w, name, atol=1e-5)
    if is_concrete(w) and bool(np.any(np.asarray(w) <= 0)):
        raise ValueError(f"{name} must be strictly positive (drop zero-weight points)")
    return w


def sinkhorn(x, y, epsilon, *, a=None, b=None, cost="sqeuclidean", tol=1e-6, max_iter=2000,
             epsilon_start=None, epsilon_decay=0.9, max_dense=MAX_DENSE) -> SinkhornResult:
    """Entropic optimal transport between two weighted point clouds (log-domain Sinkhorn).

    Solves ``min_P <P, C> + epsilon KL(P | a b^T)`` over couplings of ``a`` and ``b``
    (Cuturi 2013; log-domain stabilisation and ε-scaling as in Peyré & Cuturi 2019, §4.4,
    and Schmitzer 2019, "Stabilized sparse scaling algorithms for entropy regularized
    transport problems").

    Parameters
    ----------
    x : (n, d) or (batch, n, d) source points.
    y : (m, d) or (batch, m, d) target points.
    epsilon : entropic regularisation (> 0, in units of the cost). Traced: a new value does
        not recompile.
    a, b : (n,), (m,) (or batched) positive weights summing to one; uniform by default.
    cost : ``"sqeuclidean"`` (``|x - y|^2``), ``"euclidean"`` (``|x - y|``), or a JAX
        function ``c(x_i, y_j) -> scalar`` of ONE pair of points.
    tol : stop when ``||P 1 - a||_1 <= tol`` at the target epsilon. In float32 the reachable
        error is about ``1e-7 * max|f| / epsilon``; enable x64 for tighter tolerances.
    max_iter : at most this many sweeps (each sweep updates ``f`` then ``g``).
    epsilon_start : when given, ε-scaling: sweep ``k`` uses
        ``max(epsilon, epsilon_start * epsilon_decay**k)``.
    epsilon_decay : the geometric decay of ε-scaling, in (0, 1).
    max_dense : above ``n * m`` entries the cost is recomputed in row blocks at every
        sweep and ``coupling`` is a :class:`Coupling` operator instead of a matrix.

    Returns
    -------
    SinkhornResult
        ``coupling``, ``cost`` (``<P, C>``), ``f``, ``g``, ``marginal_error``,
        ``num_iterations``. A warning is issued when ``tol`` was not reached.

    Examples
    --------
    >>> import jax, probinfer as pi
    >>> x = jax.random.normal(jax.random.key(0), (200, 2))
    >>> res = pi.bridges.sinkhorn(x, x + 1.0, 0.5, tol=1e-4)
    >>> bool(res.marginal_error <= 1e-4), res.coupling.shape
    (True, (200, 200))
    """
    x = as_float_array(x, "x")
    y = as_float_array(y, "y")
    if x.ndim not in (2, 3):
        raise ValueError(f"x must have shape (n, d) or (batch, n, d), got {x.shape}")
    if y.ndim != x.ndim:
        raise ValueError(f"y must have the same rank as x ({x.ndim}), got shape {y.shape}")
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(f"x and y must have the same dimension d, got {x.shape[-1]} "
                         f"and {y.shape[-1]}")
    if x.ndim == 3 and x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same batch size, got {x.shape[0]} and "
                         f"{y.shape[0]}")
    if x.shape[-2] == 0 or y.shape[-2] == 0:
        raise ValueError("x and y must hold at least one point each")
    dtype = jnp.result_type(x.dtype, y.dtype)
    x, y = x.astype(dtype), y.astype(dtype)
    check_finite(x, "x")
    check_finite(y, "y")
    if not (callable(cost) or cost in _COSTS):
        raise ValueError(f"cost must be one of {_COSTS} or a function c(x_i, y_j), got {cost!r}")
    batch = x.shape[:-2]
    a = _weights(a, x.shape[-2], "a", batch, x)
    b = _weights(b, y.shape[-2], "b", batch, x)
    epsilon = check_positive_scalar(epsilon, "epsilon").astype(dtype)
    tol = check_positive_scalar(tol, "tol").astype(dtype)
    max_iter = check_positive_int(max_iter, "max_iter")
    if epsilon_start is None:
        eps_start = epsilon
    else:
        eps_start = check_positive_scalar(epsilon_start, "epsilon_start").astype(dtype)
    decay = jnp.asarray(epsilon_decay, dtype)
    if is_concrete(decay) and not (0.0 < float(decay) < 1.0):
        raise ValueError(f"epsilon_decay must lie in (0, 1), got {float(decay)}")
    dense = x.shape[-2] * y.shape[-2] <= int(max_dense)
    res = _solve(x, y, a, b, epsilon, tol, jnp.asarray(max_iter), eps_start, decay, cost=cost,
                 dense=dense, batched=bool(batch))
    if is_concrete(res.marginal_error):
        worst = float(jnp.max(res.marginal_error))
        if not worst <= float(tol):
            warnings.warn(f"sinkhorn did not reach tol={float(tol):g} in {max_iter} sweeps "
                          f"(marginal error {worst:.3g}); raise max_iter, use epsilon_start "
                          f"(ε-scaling) or a larger epsilon", RuntimeWarning, stacklevel=2)
    return res


def barycentric_map(coupling, y):
    """The barycentric projection ``T(x_i) = sum_j P_ij y_j / sum_j P_ij`` (a transport map).

    ``coupling`` is a ``SinkhornResult.coupling`` (matrix or :class:`Coupling`).
    """
    return (coupling @ y) / coupling.sum(axis=1)[:, None]
