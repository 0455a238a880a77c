"""Clear errors at the public boundary of pi.gpdp."""

import pytest
import jax
import jax.numpy as jnp

import probinfer as pi

GRID = jnp.linspace(0.0, 15.0, 50)
X = jnp.array([5.5, 6.0, 6.6, 7.2, 7.8, 8.1, 7.9])


def test_non_positive_stock_for_log_space_models():
    bad = X.at[2].set(0.0)
    with pytest.raises(ValueError, match=r"x_t must be > 0.*lognormal"):
        pi.gpdp.Allee.fit(bad[:-1], bad[1:])
    with pytest.raises(ValueError, match="x_next must be > 0"):
        pi.gpdp.Ricker(1.0, 8.0, 0.1).log_likelihood(X[:-1], X[1:].at[0].set(-1.0))
    with pytest.raises(ValueError, match="K must be finite and > 0"):
        pi.gpdp.Ricker(1.0, -8.0, 0.1)


def test_nan_data():
    bad = X.at[3].set(jnp.nan)
    with pytest.raises(ValueError, match=r"x_t contains NaN at index 3"):
        pi.gpdp.Myers.fit(bad[:-1], bad[1:])
    with pytest.raises(ValueError, match="NaN"):
        pi.gpdp.GPDynamics.fit(bad[:-1], bad[1:], hyperparameters={
            "lengthscale": 1.0, "amplitude": 1.0, "noise": 0.1})
    with pytest.raises(ValueError, match="states must be finite"):
        pi.gpdp.solve(pi.gpdp.Ricker(1.0, 8.0, 0.1), GRID.at[4].set(jnp.nan), GRID,
                      discount=0.9)


@pytest.mark.parametrize("discount", [0.0, 1.0, 1.5, -0.2])
def test_discount_outside_unit_interval(discount):
    with pytest.raises(ValueError, match=r"discount must be a discount factor in \(0, 1\)"):
        pi.gpdp.solve(pi.gpdp.Ricker(1.0, 8.0, 0.1), GRID, GRID, discount=discount)
    with pytest.raises(ValueError, match="discount"):
        pi.gpdp.value_iteration(jnp.zeros((2, 2)), jnp.ones((2, 2, 2)) / 2, discount)


def test_discount_one_allowed_only_with_a_horizon():
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        pi.gpdp.solve(pi.gpdp.Ricker(1.0, 8.0, 0.1), GRID, GRID, discount=1.5, horizon=3)


@pytest.mark.slow
def test_grid_must_contain_the_observations():
    fit = pi.gpdp.Ricker.fit(X[:-1], X[1:])
    small = jnp.linspace(0.0, 7.0, 20)
    with pytest.raises(ValueError, match=r"states grid \[0, 7\] does not contain the obs"):
        pi.gpdp.solve(fit, small, small, discount=0.99)
    gp = pi.gpdp.GPDynamics.fit(X[:-1], X[1:], hyperparameters={
        "lengthscale": 1.0, "amplitude": 5.0, "noise": 0.3})
    with pytest.raises(ValueError, match="does not contain the observations"):
        pi.gpdp.solve(gp, small, small, discount=0.99)
    with pytest.raises(ValueError, match="does not contain the observations"):
        pi.gpdp.compare(jax.random.key(0), pi.gpdp.Allee(2.0, 8.0, 5.0, 0.05), X,
                        {"Ricker": pi.gpdp.Ricker}, states=small, num_replicates=2, years=2)


def test_bad_grids_and_models():
    model = pi.gpdp.Ricker(1.0, 8.0, 0.1)
    with pytest.raises(ValueError, match="strictly increasing"):
        pi.gpdp.solve(model, GRID[::-1], GRID, discount=0.9)
    with pytest.raises(ValueError, match="non-negative"):
        pi.gpdp.solve(model, GRID - 1.0, GRID, discount=0.9)
    with pytest.raises(TypeError, match="Dynamics"):
        pi.gpdp.solve(lambda s: s, GRID, GRID, discount=0.9)
    with pytest.raises(ValueError, match="kernel must be one of"):
        pi.gpdp.GPDynamics.fit(X[:-1], X[1:], kernel="rbf", hyperparameters={
            "lengthscale": 1.0, "amplitude": 1.0, "noise": 0.1})
    with pytest.raises(ValueError, match="needs a PRNG key"):
        pi.gpdp.GPDynamics.fit(X[:-1], X[1:])
    with pytest.raises(ValueError, match="same shape"):
        pi.gpdp.Ricker.fit(X[:-1], X[2:])
    with pytest.raises(TypeError, match="truth must be a parametric model"):
        pi.gpdp.compare(jax.random.key(0), pi.gpdp.ParameterPosterior(
            pi.gpdp.Ricker, jnp.ones((2, 3))), X, {"Ricker": pi.gpdp.Ricker})
    with pytest.raises(TypeError, match="each entry of models"):
        pi.gpdp.compare(jax.random.key(0), pi.gpdp.Allee(2.0, 8.0, 5.0, 0.05), X,
                        {"bad": 3}, num_replicates=2, years=2)
