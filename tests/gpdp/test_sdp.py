"""Dynamic programming against exhaustive enumeration of policies, and the paper's policy.

Value iteration must return the value of the best deterministic stationary policy, found by
evaluating every one of them exactly (a linear solve each); backward induction must match
the best of all time-dependent policies. Both are exact answers, so the tolerances are
the solvers' own accuracy targets.
"""

import itertools

import numpy as np
import pytest
import jax.numpy as jnp
from scipy.optimize import brentq
from scipy.stats import norm

import probinfer as pi


def _random_mdp(rng, num_states, num_actions):
    transitions = rng.dirichlet(np.full(num_states, 0.5), size=(num_states, num_actions))
    rewards = rng.normal(size=(num_states, num_actions))
    return rewards, transitions


def _policy_value(rewards, transitions, decisions, discount):
    idx = np.arange(rewards.shape[0])
    p = transitions[idx, decisions]
    r = rewards[idx, decisions]
    return np.linalg.solve(np.eye(len(r)) - discount * p, r)


@pytest.mark.parametrize("discount", [0.5, 0.9, 0.97])
def test_value_iteration_equals_brute_force(x64, rng, discount):
    for _ in range(4):
        rewards, transitions = _random_mdp(rng, 4, 3)
        all_values = np.array([_policy_value(rewards, transitions, np.array(d), discount)
                               for d in itertools.product(range(3), repeat=4)])
        best = all_values.max(axis=0)
        # The optimal policy dominates every other in every state.
        assert np.allclose(all_values[np.argmax(all_values.sum(1))], best)
        value, decisions, info = pi.gpdp.value_iteration(rewards, transitions, discount,
                                                         tol=1e-10)
        scale = np.abs(best).max()
        assert bool(info.converged)
        np.testing.assert_allclose(np.asarray(value), best, atol=1e-9 * scale)
        greedy = _policy_value(rewards, transitions, np.asarray(decisions), discount)
        np.testing.assert_allclose(greedy, best, atol=1e-9 * scale)


def test_backward_induction_equals_brute_force(x64, rng):
    rewards, transitions = _random_mdp(rng, 3, 2)
    horizon, discount = 3, 0.8
    terminal = rng.normal(size=3)
    stationary = list(itertools.product(range(2), repeat=3))
    idx = np.arange(3)
    best = np.full(3, -np.inf)
    for plan in itertools.product(stationary, repeat=horizon):
        v = terminal
        for d in reversed(plan):
            d = np.array(d)
            v = rewards[idx, d] + discount * transitions[idx, d] @ v
        best = np.maximum(best, v)
    values, decisions = pi.gpdp.backward_induction(rewards, transitions, discount, horizon,
                                                   terminal_value=terminal)
    np.testing.assert_allclose(np.asarray(values[0]), best, atol=1e-12)
    np.testing.assert_allclose(np.asarray(values[-1]), terminal)
    assert decisions.shape == (horizon, 3)


def test_long_backward_induction_approaches_value_iteration(x64, rng):
    rewards, transitions = _random_mdp(rng, 5, 3)
    value, decisions, _ = pi.gpdp.value_iteration(rewards, transitions, 0.9, tol=1e-12)
    values, plan = pi.gpdp.backward_induction(rewards, transitions, 0.9, 400)
    # After 400 steps the truncation error is at most 0.9^400 · max|R| / 0.1 ~ 1e-17.
    np.testing.assert_allclose(np.asarray(values[0]), np.asarray(value), atol=1e-9)
    np.testing.assert_array_equal(np.asarray(plan[0]), np.asarray(decisions))


def test_transition_tensor_is_binned_lognormal(x64):
    model = pi.gpdp.Ricker(1.0, 8.0, 0.2)
    states = jnp.linspace(0.0, 15.0, 31)
    actions = jnp.array([0.0, 2.0, 20.0])
    P = np.asarray(pi.gpdp.transition_tensor(model, states, actions))
    np.testing.assert_allclose(P.sum(-1), 1.0, atol=1e-12)
    x = np.asarray(states)
    edges = 0.5 * (x[1:] + x[:-1])
    for i in (3, 17, 30):
        for a, h in enumerate(np.asarray(actions)):
            s = max(x[i] - h, 0.0)
            if s == 0:
                expected = np.eye(len(x))[0]          # extinct stays extinct
            else:
                f = s * np.exp(1.0 * (1 - s / 8.0))
                cdf = np.concatenate([[0.0], norm.cdf((np.log(edges) - np.log(f)) / 0.2), [1.0]])
                expected = np.diff(cdf)
            np.testing.assert_allclose(P[i, a], expected, atol=1e-12)


@pytest.mark.slow
def test_true_policy_is_constant_escapement_near_reed_optimum():
    """Paper setting: above the Allee region the true-model policy keeps a constant
    escapement. Reed (1979): S* solves γ E[Z] f'(S*) = 1 (here S* ≈ 6.64). Escapements on
    this grid are grid points (x_i − h_a with both grids equal), so the discrete optimum
    can only be within one grid spacing (15/49 ≈ 0.31) of S*."""
    setting = pi.gpdp.paper_setting()
    truth = setting.truth
    r, K, C, sigma = (float(p) for p in truth.params)

    def marginal(s):
        g = r * (1 - s / K) * (s - C) / K
        dg = r * ((s - C) * (-1 / K) + (1 - s / K)) / K
        return np.exp(g) * (1 + s * dg) * setting.discount * np.exp(0.5 * sigma ** 2) - 1

    s_star = brentq(marginal, 5.5, 8.0)
    policy = pi.gpdp.solve(truth, setting.states, setting.actions, discount=setting.discount)
    summary = policy.constant_escapement()
    spacing = float(setting.states[1] - setting.states[0])
    assert abs(summary.escapement - s_star) <= spacing
    assert summary.spread < 1e-4                 # one escapement for every harvested state
    assert summary.num_states >= 20
    assert abs(summary.escapement - 6.7) < 0.1   # the paper's 6.7 (grid point 6.73)
    # Stocks at or above S* are fished down to it; doomed stocks below the Allee region
    # (x < 4.5: f(x) < x even unharvested) are fished out.
    x = np.asarray(setting.states)
    h = np.asarray(policy.harvest_table())
    above = x >= summary.escapement
    np.testing.assert_allclose((x - h)[above], summary.escapement, atol=1e-5)
    np.testing.assert_allclose(h[x < 4.4], x[x < 4.4], atol=1e-5)
    # A stock between grid points is managed as the nearest grid state.
    assert float(policy.escapement(setting.states[32])) == pytest.approx(summary.escapement,
                                                                     abs=1e-5)


def test_finite_horizon_policy_fishes_out_in_the_last_year():
    model = pi.gpdp.Allee(2.0, 8.0, 5.0, 0.05)
    grid = jnp.linspace(0.0, 15.0, 50)
    policy = pi.gpdp.solve(model, grid, grid, discount=1.0, horizon=5)
    assert policy.decisions.shape == (5, 50)
    # With nothing after the horizon, the last decision takes everything.
    np.testing.assert_allclose(np.asarray(policy.harvest_table(t=4)), np.asarray(grid),
                               atol=1e-5)
    assert float(policy.harvest(10.0, t=0)) < 10.0
