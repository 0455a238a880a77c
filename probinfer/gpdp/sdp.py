"""Stochastic dynamic programming on state and harvest grids.

The state is the stock ``x`` on a grid ``states``; the action a harvest ``h`` on a grid
``actions``; the escapement ``s = max(x − h, 0)`` goes through any
:class:`~probinfer.gpdp.Dynamics` to the next stock. The transition tensor
``P[i, a, j] = P(X' ∈ bin_j | s = max(x_i − h_a, 0))`` integrates the model's predictive
CDF over bins centred on the grid (edges at the midpoints; mass below the first midpoint
goes to the lowest state, mass above the last to the highest), so it is exact for the
discretised chain rather than a renormalised density evaluated at grid points.

Value iteration solves ``V(x) = max_h { R(x, h) + γ E[V(X') | x, h] }`` for ``0 < γ < 1``;
backward induction solves the finite-horizon problem (``γ = 1`` allowed there). Both run as
one compiled JAX loop over ``(nx, na, nx)`` tensors.

References: Reed (1979), "Optimal escapement levels in stochastic and deterministic
harvesting models", J. Environ. Econ. Manag.; Mangel & Clark (1988), *Dynamic Modeling in
Behavioral Ecology*; Puterman (1994), *Markov Decision Processes*, §6.3 and §6.6 (the
span stopping rule and MacQueen's bounds used here).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from probinfer._types import Array
from probinfer._validation import as_float_array, check_positive_int, is_concrete
from probinfer.gpdp.models import Dynamics


def harvest_reward(x: Array, h: Array) -> Array:
    """The catch ``min(x, h)``: the paper's reward (one state, one harvest)."""
    return jnp.minimum(x, h)


def check_grid(values, name: str) -> Array:
    """A 1-D, finite, non-negative, strictly increasing grid of at least two points."""
    grid = as_float_array(values, name, ndim=1)
    arr = np.asarray(grid)
    if arr.shape[0] < 2:
        raise ValueError(f"{name} must have at least 2 points, got {arr.shape[0]}")
    if np.isnan(arr).any() or not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    if (arr < 0).any():
        raise ValueError(f"{name} must be non-negative stock or harvest sizes, min {arr.min()}")
    if (np.diff(arr) <= 0).any():
        raise ValueError(f"{name} must be strictly increasing")
    return grid


def check_discount(discount, finite_horizon: bool) -> Array:
    value = jnp.asarray(discount, dtype=jnp.result_type(float))
    if value.ndim != 0:
        raise ValueError(f"discount must be a scalar, got shape {value.shape}")
    if is_concrete(value):
        v = float(value)
        ok = 0.0 < v <= 1.0 if finite_horizon else 0.0 < v < 1.0
        if not ok:
            bound = "(0, 1]" if finite_horizon else "(0, 1) (an infinite horizon needs γ < 1)"
            raise ValueError(f"discount must be a discount factor in {bound}, got {v}")
    return value


def check_covers(states, data_range, what="the observations"):
    """The state grid must span the data the model was fitted to."""
    if data_range is None:
        return
    low, high = data_range
    grid = np.asarray(states)
    if low < grid[0] or high > grid[-1]:
        raise ValueError(f"states grid [{grid[0]:.4g}, {grid[-1]:.4g}] does not contain {what} "
                         f"(range [{low:.4g}, {high:.4g}]); extend the grid")


def transition_tensor(model: Dynamics, states, actions) -> Array:
    """``P[i, a, j]``: probability of stock ``states[j]`` next year from ``states[i]``
    after harvest ``actions[a]``, from ``model.next_state_cdf``.

    Escapements shared by several ``(state, harvest)`` pairs are evaluated once (with
    ``actions == states`` there are only ``nx`` distinct escapements).
    """
    if not isinstance(model, Dynamics):
        raise TypeError(f"model must be a probinfer.gpdp.Dynamics, got {type(model).__name__}")
    states = check_grid(states, "states")
    actions = check_grid(actions, "actions")
    probs_fn = _binned_probabilities_jit if _is_pytree_model(model) else _binned_probabilities
    escapement = np.maximum(np.asarray(states, np.float64)[:, None]
                            - np.asarray(actions, np.float64)[None, :], 0.0)
    unique, inverse = np.unique(np.round(escapement, 9), return_inverse=True)
    edges = 0.5 * (states[1:] + states[:-1])
    probs = probs_fn(model, jnp.asarray(unique, states.dtype), edges)
    return probs[inverse.reshape(-1)].reshape(states.shape[0], actions.shape[0],
                                              states.shape[0])


def _binned_probabilities(model, escapements, edges):
    cdf = jax.vmap(lambda s: jax.vmap(lambda y: model.next_state_cdf(s, y))(edges))(escapements)
    cdf = jnp.concatenate([jnp.zeros((cdf.shape[0], 1), cdf.dtype), cdf,
                           jnp.ones((cdf.shape[0], 1), cdf.dtype)], axis=1)
    probs = jnp.clip(jnp.diff(cdf, axis=1), 0.0, None)
    return probs / jnp.sum(probs, axis=1, keepdims=True)


# Models are pytrees of their parameters: one compilation per model type and grid size.
_binned_probabilities_jit = jax.jit(_binned_probabilities)


def _is_pytree_model(model) -> bool:
    # A user's Dynamics need not be a pytree; those run eagerly instead of compiled.
    leaves, _ = jax.tree_util.tree_flatten(model)
    return not (len(leaves) == 1 and leaves[0] is model)


def reward_matrix(reward: Callable, states, actions) -> Array:
    """``R[i, a] = reward(states[i], actions[a])`` (the reward is written for one pair)."""
    return jax.vmap(lambda x: jax.vmap(lambda h: reward(x, h))(actions))(states)


class ValueIterationInfo(NamedTuple):
    iterations: Array   # Bellman updates performed
    error_bound: Array  # bound on sup |value − V*| (MacQueen), from the last update
    converged: Array    # error_bound <= tol · max |value|


def _bellman(rewards, transitions, discount, value):
    q = rewards + discount * jnp.einsum("iaj,j->ia", transitions, value)
    return q


def value_iteration(rewards, transitions, discount, *, tol=1e-5, max_iterations: int = 10_000
                    ) -> tuple[Array, Array, ValueIterationInfo]:
    """Discounted infinite-horizon value iteration on a finite MDP.

    Parameters
    ----------
    rewards : (S, A) immediate rewards ``R[i, a]``.
    transitions : (S, A, S) row-stochastic ``P[i, a, j]``.
    discount : γ in (0, 1).
    tol : relative accuracy: stop when MacQueen's bound on ``sup |V − V*|`` is at most
        ``tol · max |V|``, i.e. ``γ/(1−γ) · span(V_{k+1} − V_k) / 2 ≤ tol · max|V|``.
    max_iterations : upper bound on Bellman updates.

    Returns
    -------
    value : (S,) the MacQueen mid-point estimate of ``V*``;
    decisions : (S,) greedy action indices (the first maximiser on ties);
    info : :class:`ValueIterationInfo`.

    Example
    -------
    >>> import jax.numpy as jnp, probinfer as pi
    >>> P = jnp.array([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])
    >>> R = jnp.array([[0.0, 0.0], [1.0, 1.0]])
    >>> v, d, info = pi.gpdp.value_iteration(R, P, 0.5)
    >>> [round(float(a), 3) for a in v], [int(a) for a in d]
    ([1.0, 2.0], [1, 0])
    """
    rewards = jnp.asarray(rewards)
    transitions = jnp.asarray(transitions, rewards.dtype)
    discount = check_discount(discount, finite_horizon=False)
    max_iterations = check_positive_int(max_iterations, "max_iterations")
    return _value_iteration(rewards, transitions, discount.astype(rewards.dtype),
                            jnp.asarray(tol, rewards.dtype), max_iterations)


@jax.jit
def _bound(discount, diff):
    return discount / (1.0 - discount) * (jnp.max(diff) - jnp.min(diff)) / 2.0


def _value_iteration(rewards, transitions, discount, tol, max_iterations):
    def update(value):
        return jnp.max(_bellman(rewards, transitions, discount, value), axis=1)

    def cond(carry):
        value, new, k = carry
        bound = _bound(discount, new - value)
        return (k < max_iterations) & (bound > tol * jnp.max(jnp.abs(new)))

    def body(carry):
        _, new, k = carry
        return new, update(new), k + 1

    start = jnp.zeros(rewards.shape[0], rewards.dtype)
    value, new, k = jax.lax.while_loop(cond, body, (start, update(start), jnp.asarray(1)))
    diff = new - value
    estimate = new + discount / (1.0 - discount) * 0.5 * (jnp.max(diff) + jnp.min(diff))
    decisions = jnp.argmax(_bellman(rewards, transitions, discount, estimate), axis=1)
    bound = _bound(discount, diff)
    return estimate, decisions, ValueIterationInfo(k, bound, bound <= tol * jnp.max(jnp.abs(new)))


_value_iteration = jax.jit(_value_iteration, static_argnames="max_iterations")


def backward_induction(rewards, transitions, discount, horizon: int, terminal_value=None
                       ) -> tuple[Array, Array]:
    """Finite-horizon dynamic programming: ``horizon`` decisions, then ``terminal_value``.

    Returns ``values`` (horizon + 1, S), ``values[t]`` the optimal value with ``horizon − t``
    decisions left (``values[horizon] = terminal_value``, default 0), and ``decisions``
    (horizon, S), the optimal action indices at time ``t``. ``discount`` may be 1 here.
    """
    rewards = jnp.asarray(rewards)
    transitions = jnp.asarray(transitions, rewards.dtype)
    discount = check_discount(discount, finite_horizon=True).astype(rewards.dtype)
    horizon = check_positive_int(horizon, "horizon")
    terminal = (jnp.zeros(rewards.shape[0], rewards.dtype) if terminal_value is None
                else as_float_array(terminal_value, "terminal_value",
                                    shape=(rewards.shape[0],)).astype(rewards.dtype))
    return _backward_induction(rewards, transitions, discount, terminal, horizon)


def _backward_induction(rewards, transitions, discount, terminal, horizon):
    def step(value, _):
        q = _bellman(rewards, transitions, discount, value)
        new = jnp.max(q, axis=1)
        return new, (new, jnp.argmax(q, axis=1))

    _, (values, decisions) = jax.lax.scan(step, terminal, None, length=horizon)
    values = jnp.concatenate([values[::-1], terminal[None]], axis=0)
    return values, decisions[::-1]


_backward_induction = jax.jit(_backward_induction, static_argnames="horizon")


class EscapementSummary(NamedTuple):
    """Constant-escapement diagnostic of a policy over the states where it harvests part
    of the stock (``0 < h < x``): Reed's (1979) optimum is a constant escapement there."""

    escapement: float   # median escapement ``x − h`` over those states (NaN if none)
    spread: float       # max − min escapement over those states
    num_states: int     # how many states harvest part of the stock


@jax.tree_util.register_pytree_node_class
class Policy:
    """A harvest policy on a state grid, with its value.

    Attributes
    ----------
    states, actions : the grids.
    decisions : (S,) action index per state (stationary), or (T, S) per time for a finite
        horizon.
    value : (S,) value of the stationary policy, or (T + 1, S) per time.
    info : :class:`ValueIterationInfo` for a stationary policy, else None.

    A stock between grid points is assigned to the nearest grid state (as in the paper's
    simulations); the harvest never exceeds the stock.
    """

    def __init__(self, states, actions, decisions, value, info=None):
        self.states = states
        self.actions = actions
        self.decisions = decisions
        self.value = value
        self.info = info

    def tree_flatten(self):
        return (self.states, self.actions, self.decisions, self.value, self.info), None

    @classmethod
    def tree_unflatten(cls, _, children):
        return cls(*children)

    @property
    def finite_horizon(self) -> bool:
        return self.decisions.ndim == 2

    def _index(self, x):
        return jnp.argmin(jnp.abs(self.states - x))

    def harvest(self, x, t=0) -> Array:
        """Harvest for stock ``x`` (one point; ``t`` selects the year of a finite-horizon
        policy and is ignored by a stationary one)."""
        x = jnp.asarray(x, self.states.dtype)
        row = self.decisions[t] if self.finite_horizon else self.decisions
        return jnp.minimum(self.actions[row[self._index(x)]], x)

    def escapement(self, x, t=0) -> Array:
        """Stock left after the harvest, ``x − harvest(x)`` (one point)."""
        x = jnp.asarray(x, self.states.dtype)
        return x - self.harvest(x, t)

    def harvest_table(self, t=0) -> Array:
        """Harvest at every grid state, shape (S,)."""
        return jax.vmap(lambda x: self.harvest(x, t))(self.states)

    def constant_escapement(self, t=0) -> EscapementSummary:
        """Median and spread of the escapement where the policy harvests part of the stock."""
        x = np.asarray(self.states)
        h = np.asarray(self.harvest_table(t))
        partial = (h > 0) & (h < x)
        if not partial.any():
            return EscapementSummary(float("nan"), float("nan"), 0)
        s = (x - h)[partial]
        return EscapementSummary(float(np.median(s)), float(s.max() - s.min()),
                                 int(partial.sum()))


def solve(model: Dynamics, states, actions, *, discount, reward: Callable = harvest_reward,
          horizon: int | None = None, tol=1e-5, max_iterations: int = 10_000) -> Policy:
    """Optimal harvest policy for a dynamics model on state and harvest grids.

    Parameters
    ----------
    model : any :class:`~probinfer.gpdp.Dynamics` (a parametric model, a
        :class:`~probinfer.gpdp.ParameterPosterior`, a :class:`~probinfer.gpdp.GPDynamics`).
    states : (S,) increasing non-negative stock grid; must contain the model's training
        data when the model was fitted.
    actions : (A,) increasing non-negative harvest grid.
    discount : discount factor γ per year; in (0, 1) for the stationary (infinite-horizon)
        policy, in (0, 1] with ``horizon``. A discount *rate* δ gives ``γ = 1/(1 + δ)``.
    reward : ``reward(x, h)`` for one state and one harvest (default: catch ``min(x, h)``).
    horizon : None for value iteration (stationary policy), or a number of years for
        backward induction (a policy per year).
    tol, max_iterations : value-iteration stopping rule (see :func:`value_iteration`).

    Returns
    -------
    :class:`Policy` with ``.harvest(x)``, ``.escapement(x)`` and ``.value``.

    Example
    -------
    >>> import jax.numpy as jnp, probinfer as pi
    >>> grid = jnp.linspace(0.0, 15.0, 50)
    >>> policy = pi.gpdp.solve(pi.gpdp.Allee(2.0, 8.0, 5.0, 0.05), grid, grid, discount=0.99)
    >>> round(policy.constant_escapement().escapement, 2)   # Reed's constant escapement
    6.73
    """
    if not isinstance(model, Dynamics):
        raise TypeError(f"model must be a probinfer.gpdp.Dynamics, got {type(model).__name__}")
    if not callable(reward):
        raise TypeError("reward must be callable: reward(x, h) for one state and harvest")
    states = check_grid(states, "states")
    actions = check_grid(actions, "actions").astype(states.dtype)
    discount = check_discount(discount, finite_horizon=horizon is not None)
    check_covers(states, getattr(model, "data_range", None))
    rewards = reward_matrix(reward, states, actions)
    if rewards.shape != (states.shape[0], actions.shape[0]):
        raise ValueError("reward must return a scalar for one (state, harvest) pair")
    if not bool(jnp.all(jnp.isfinite(rewards))):
        raise ValueError("reward is not finite on the grid")
    transitions = transition_tensor(model, states, actions)
    if horizon is None:
        value, decisions, info = value_iteration(rewards, transitions, discount, tol=tol,
                                                 max_iterations=max_iterations)
        if not bool(info.converged):
            raise RuntimeError(f"value iteration did not reach tol = {tol} in {max_iterations} "
                               f"iterations (error bound {float(info.error_bound):.3g}); raise "
                               "max_iterations or tol")
        return Policy(states, actions, decisions, value, info)
    values, decisions = backward_induction(rewards, transitions, discount, horizon)
    return Policy(states, actions, decisions, values)


__all__ = ["harvest_reward", "transition_tensor", "reward_matrix", "value_iteration",
           "backward_induction", "Policy", "EscapementSummary", "ValueIterationInfo", "solve"]
