"""Multi-marginal bridges with reference refinement on simulated Lotka–Volterra data."""

import numpy as np
import pytest
import jax
import jax.numpy as jnp

import probinfer as pi

TRUTH = {"alpha": 1.0, "beta": 0.4, "gamma": 0.4, "delta": 0.1}


def _distance(params):
    return np.sqrt(sum((float(params[k]) - v) ** 2 for k, v in TRUTH.items()))


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=(
    "known miss: with these small settings (3 intervals of length 1, 20 Euler steps, 3 IPF "
    "iterations, 256 paths) the bridges of the wrong start are far from converged and the "
    "refinement moves away from the truth: measured distances per round 0.656, 0.747, 0.800, "
    "0.830 (before the M-step change: 0.66, 0.44, 0.53, 0.68). The study (100 steps, 8 IPF "
    "iterations, 20 rounds) moves toward the truth after its first round (docs/bridges.md); "
    "a unit-test-sized setting that does so has not been found yet"))
def test_refinement_moves_parameters_toward_the_truth(key):
    times = np.array([0.0, 1.0, 2.0, 3.0])
    snaps = pi.bridges.simulate_snapshots(key, pi.bridges.LotkaVolterra(), jnp.array([5.0, 4.0]),
                                          times, 64, sigma=0.1, start_width=0.1, dt=0.02)
    start = pi.bridges.LotkaVolterra(alpha=0.5, beta=0.5, gamma=0.5, delta=0.5)
    fit = pi.bridges.multimarginal(list(snaps), times, reference=start, sigma=0.1,
                                   num_refinements=3, num_ipf_iterations=3, num_steps=20,
                                   num_paths=256, key=jax.random.key(1))
    history = [_distance(p) for p in fit.parameter_history]
    assert len(history) == 4 and len(fit.loss_history) == 3
    assert history[-1] < 0.5 * history[0], history
    assert fit.reference_parameters is fit.parameter_history[-1]
    paths = fit.sample(jax.random.key(2), [0.0, 0.5, 3.0], 16)
    assert paths.shape == (16, 3, 2) and bool(jnp.all(jnp.isfinite(paths)))
    marginals = fit.sample(jax.random.key(2), [0.5, 2.5], 16, trajectories=False)
    assert marginals.shape == (16, 2, 2)


def test_user_drift_brownian_and_simulator(key):
    """A user drift f(x, params) is refined like a built-in one; Brownian is never refined."""
    times = np.array([0.0, 0.5, 1.0])
    # OU data: dX = -k X dt + sigma dW with k = 2, started at 3.
    snaps = pi.bridges.simulate_snapshots(key, lambda x, p: -p * x, jnp.array([3.0]), times, 64,
                                          sigma=0.3, params=2.0, dt=0.05)
    assert snaps.shape == (3, 64, 1)
    decay = np.exp(-2.0 * times)
    np.testing.assert_allclose(np.asarray(snaps.mean(1))[:, 0], 3.0 * decay,
                               atol=4 * 0.3 * np.sqrt(0.5 / 2.0 / 64) + 0.05)
    fit = pi.bridges.multimarginal(list(snaps), times, reference=lambda x, p: -p * x,
                                   params=0.5, sigma=0.3, num_refinements=2,
                                   num_ipf_iterations=2, num_steps=10, num_paths=128, key=key)
    assert abs(float(fit.reference_parameters) - 2.0) < abs(0.5 - 2.0)
    brown = pi.bridges.multimarginal(list(snaps), times, reference=pi.bridges.Brownian(),
                                     sigma=0.3, num_refinements=3, num_ipf_iterations=2,
                                     num_steps=10, num_paths=128, key=key)
    assert brown.parameter_history == [{}] and brown.loss_history == []
    with pytest.raises(ValueError, match="times must lie"):
        brown.sample(key, [1.5], 4)
