"""Property-based hardening of the public runners (hypothesis): whatever the potentials,
rewards or likelihoods return (NaN, +inf, -inf, extreme finite values), each call ends in a
result with no NaN in its weights and a finite evidence, or in the documented ``ValueError``
naming the failure, never a raw JAX error and never silent NaNs.

Shapes are fixed and the varying numbers are traced arguments (a ``Partial`` model, keys,
temperatures), so the examples reuse a handful of compiled programs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from jax.tree_util import Partial

import probinfer as pi

T, N = 4, 8
# 3e38 is near the float32 maximum: two of them overflow the evidence.
SPECIAL = st.sampled_from([np.nan, np.inf, -np.inf, 3e38, -3e38, 1e4, -1e4, 0.0])
VALUES = st.one_of(st.floats(-50.0, 50.0, width=32), SPECIAL)


def _init(key, n):
    return jax.random.normal(key, (n,))


def _move(key, x, t):
    return x + jax.random.normal(key, x.shape)


def _table_potential(table, x_prev, x, t):
    return table[t]


def _model(table):
    return pi.smc.FeynmanKac(init=_init, move=_move,
                             log_potential=Partial(_table_potential, table), num_steps=T)


def _documented(error: ValueError) -> bool:
    text = str(error)
    return ("returned NaN or +inf" in text or "zero weight" in text
            or "log-evidence overflowed" in text)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=st.lists(st.lists(VALUES, min_size=N, max_size=N), min_size=T, max_size=T),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31 - 1),
       policy=st.sampled_from(["always", "never"]))
def test_smc_run_gives_a_result_or_a_documented_error(table, dtype, seed, policy):
    table = np.asarray(table, dtype)
    try:
        res = pi.smc.run(seed, _model(table), N, policy=policy)
    except ValueError as error:
        assert _documented(error), error
        nonfinite = np.isnan(table) | (table == np.inf)
        # Resampling at every step revives every particle, so only a step whose potentials
        # are all -inf kills an "always" run; without resampling -inf accumulate.
        extreme = np.abs(table) > 1e38
        assert (nonfinite.any() or extreme.any() or np.isneginf(table).all(axis=1).any()
                or policy == "never"), error
        return
    assert not np.isnan(np.asarray(res.log_weights)).any()
    assert np.isfinite(float(res.log_evidence))
    # No potential was NaN or +inf anywhere a particle with weight could reach.
    assert not (np.isnan(table) | (table == np.inf)).any()


def test_evidence_overflow_is_an_error_not_an_infinite_result():
    # Each potential is finite; their sum over the steps passes the float32 maximum.
    table = np.full((T, N), 1e38, np.float32)
    with pytest.raises(ValueError, match="log-evidence overflowed at step 3"):
        pi.smc.run(0, _model(table), N, policy="never")


def _prior():
    mix = pi.GaussianMixture(jnp.array([0.7, 0.3]), jnp.array([[-1.0], [1.5]]),
                             0.5 * jnp.ones((2, 1, 1)))
    return pi.diffusion.GaussianMixturePrior(mix, num_steps=6)


PRIOR = _prior()


def _nan_above_one(x):
    # NaN on part of the prior's mass: how often depends on the key.
    return jnp.where(x[0] > 1.0, jnp.nan, x[0])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), temperature=st.floats(0.05, 20.0),
       invalid=st.sampled_from(["raise", "reject"]))
def test_steering_with_failing_rewards_gives_a_result_or_a_documented_error(
        seed, temperature, invalid):
    try:
        res = pi.steer.fk(seed, PRIOR, _nan_above_one, 16, temperature=temperature,
                          invalid_reward=invalid)
    except ValueError as error:
        text = str(error)
        if invalid == "raise":
            assert "reward returned NaN" in text, text
        else:                                   # every clean sample rejected
            assert "zero weight" in text, text
        return
    assert not np.isnan(np.asarray(res.log_weights)).any()
    assert np.isfinite(float(res.log_evidence))
    if invalid == "raise":
        assert int(np.sum(np.asarray(res.info.num_invalid_rewards))) == 0
    else:
        # Rejected samples have zero weight: no NaN-rewarded sample carries weight.
        bad = np.asarray(res.samples)[:, 0] > 1.0
        assert np.all(np.isneginf(np.asarray(res.log_weights)[bad]))


def _gaussian_prior():
    return pi.Gaussian(jnp.zeros(1), jnp.eye(1))


def _log_l_with_holes(x):
    # -inf outside x < 2 (a support boundary), NaN on a thin band: tempering must either
    # finish with finite weights or name the NaN.
    value = -0.5 * (x[0] - 0.5) ** 2 / 0.2
    value = jnp.where(x[0] >= 2.0, -jnp.inf, value)
    return jnp.where(jnp.abs(x[0] + 1.5) < 0.02, jnp.nan, value)


@pytest.mark.slow
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1))
def test_tempered_with_holes_gives_a_result_or_a_documented_error(seed):
    try:
        res = pi.smc.tempered(seed, _gaussian_prior(), _log_l_with_holes, 64,
                              kernel=pi.kernels.rwm(), progress_bar=False)
    except ValueError as error:
        assert "log_likelihood returned NaN or +inf" in str(error), error
        return
    assert not np.isnan(np.asarray(res.log_weights)).any()
    assert np.isfinite(float(res.log_evidence))
    assert np.all(np.asarray(res.samples)[np.isfinite(np.asarray(res.log_weights)), 0] < 2.0)
