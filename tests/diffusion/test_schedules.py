"""Schedules: VP/VE identities, sigma_ve round trips, timestep spacings, bad input."""

import numpy as np
import pytest
import jax.numpy as jnp

import probinfer as pi

D = pi.diffusion

SCHEDULES = [D.VPSchedule("linear"), D.VPSchedule("cosine"), D.VESchedule(0.01, 50.0),
             D.DiscreteVPSchedule.linear(1000), D.DiscreteVPSchedule.cosine(1000)]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_sigma_ve_is_sigma_over_alpha_and_inverts(schedule, x64):
    t = D.timesteps(schedule, 25, "uniform")
    alpha, sigma = schedule.alpha_sigma(jnp.asarray(t))
    np.testing.assert_allclose(np.asarray(sigma / alpha), schedule.sigma_ve(t), rtol=1e-9)
    if schedule.kind == "vp":
        np.testing.assert_allclose(np.asarray(alpha ** 2 + sigma ** 2), 1.0, rtol=1e-12)
    else:
        np.testing.assert_array_equal(np.asarray(alpha), 1.0)
    back = schedule.time_from_sigma_ve(schedule.sigma_ve(t))
    if schedule.discrete:
        np.testing.assert_array_equal(back, t)
    else:
        np.testing.assert_allclose(back, t, rtol=1e-9, atol=1e-12)
    # noisier with t: the log-SNR decreases strictly
    assert np.all(np.diff(np.asarray(schedule.log_snr(jnp.asarray(t)))) > 0)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
@pytest.mark.parametrize("spacing", ["uniform", "quadratic", "karras", "logsnr"])
def test_spacings_span_the_range_and_decrease(schedule, spacing):
    if (schedule.discrete and spacing in ("karras", "logsnr")
            and schedule.sigma_ve_range[1] > 1e3):
        # the clipped cosine schedule's sigma_ve reaches ~1e4 in its last few timesteps, so
        # Karras spacing puts several points on the same integer timestep: refused loudly
        with pytest.raises(ValueError, match="coincide"):
            D.timesteps(schedule, 12, spacing)
        return
    t = D.timesteps(schedule, 12, spacing)
    assert t.shape == (12,)
    assert np.all(np.diff(t) < 0)
    np.testing.assert_allclose([t[0], t[-1]], [schedule.t_max, schedule.t_min], rtol=1e-9,
                               atol=1e-9)


def test_quadratic_and_karras_are_denser_near_the_data():
    s = D.VPSchedule("linear")
    uniform, quad = D.timesteps(s, 30, "uniform"), D.timesteps(s, 30, "quadratic")
    assert quad[-2] - quad[-1] < uniform[-2] - uniform[-1]
    sig = D.karras_sigmas(30, 0.002, 80.0, rho=7.0)
    np.testing.assert_allclose([sig[0], sig[-1]], [80.0, 0.002])
    assert np.all(np.diff(np.log(sig)) < 0)
    assert sig[-2] - sig[-1] < sig[0] - sig[1]
    # rho = 1 is a uniform sigma grid
    np.testing.assert_allclose(D.karras_sigmas(5, 1.0, 5.0, rho=1.0), [5, 4, 3, 2, 1])


def test_logsnr_spacing_is_uniform_in_log_snr(x64):
    for schedule in [D.VPSchedule("linear"), D.VPSchedule("cosine"), D.edm()]:
        t = D.timesteps(schedule, 9, "logsnr")
        steps = np.diff(np.asarray(schedule.log_snr(jnp.asarray(t))))
        np.testing.assert_allclose(steps, steps[0], rtol=1e-8)
        assert steps[0] > 0


@pytest.mark.parametrize("num_steps", [4, 7, 10])
def test_leading_and_trailing_spacings(num_steps):
    discrete = D.DiscreteVPSchedule.linear(1000)
    for spacing in ["leading", "trailing"]:
        np.testing.assert_array_equal(D.timesteps(discrete, num_steps, spacing),
                                      D.discrete_timesteps(1000, num_steps, spacing))
    # the moved helper keeps its public name and the diffusers grids
    assert D.discrete_timesteps(1000, 4).tolist() == [999, 749, 499, 249]
    assert D.discrete_timesteps(1000, 4, "leading").tolist() == [750, 500, 250, 0]
    s = D.VPSchedule("linear", t_min=1e-3)
    trailing, leading = D.timesteps(s, num_steps, "trailing"), D.timesteps(s, num_steps,
                                                                            "leading")
    gap = (s.t_max - s.t_min) / num_steps
    np.testing.assert_allclose(trailing[0], s.t_max)
    np.testing.assert_allclose(trailing[-1], s.t_min + gap)
    np.testing.assert_allclose(leading, trailing - gap, atol=1e-12)
    np.testing.assert_allclose(leading[-1], s.t_min, atol=1e-12)
    assert np.all(np.diff(trailing) < 0)
    mix = pi.GaussianMixture(jnp.array([1.0]), jnp.zeros((1, 2)), jnp.eye(2)[None])
    prior = D.GaussianMixturePrior(mix, discrete, num_steps=num_steps, spacing="trailing")
    np.testing.assert_array_equal(np.asarray(prior.timesteps),
                                  D.discrete_timesteps(1000, num_steps))


def test_prior_grid_ends_at_the_data():
    mix = pi.GaussianMixture(jnp.array([1.0]), jnp.zeros((1, 2)), jnp.eye(2)[None])
    prior = D.GaussianMixturePrior(mix, D.edm(), num_steps=10, spacing="karras")
    assert prior.alphas.shape == prior.sigmas.shape == (11,)
    np.testing.assert_allclose(float(prior.sigmas[0]), 80.0, rtol=1e-5)
    assert float(prior.sigmas[-1]) == 0.0 and float(prior.alphas[-1]) == 1.0


def test_bad_schedules_raise():
    with pytest.raises(ValueError, match="betas"):
        D.DiscreteVPSchedule(np.array([0.1, 1.2, 0.3]))
    with pytest.raises(ValueError, match="betas"):
        D.DiscreteVPSchedule(np.array([0.1, -0.1, 0.3]))
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        D.VESchedule(5.0, 1.0)
    with pytest.raises(ValueError, match="beta_min < beta_max"):
        D.VPSchedule("linear", beta_min=20.0, beta_max=0.1)
    with pytest.raises(ValueError, match="beta"):
        D.VPSchedule("sigmoid")
    with pytest.raises(ValueError, match="rho"):
        D.karras_sigmas(10, 0.1, 1.0, rho=-1.0)
    with pytest.raises(ValueError, match="spacing"):
        D.timesteps(D.VPSchedule(), 10, "log")
    with pytest.raises(ValueError, match="coincide"):
        D.timesteps(D.DiscreteVPSchedule.linear(10), 10, "quadratic")
    mix = pi.GaussianMixture(jnp.array([1.0]), jnp.zeros((1, 2)), jnp.eye(2)[None])
    with pytest.raises(ValueError, match="strictly decreasing"):
        D.GaussianMixturePrior(mix, D.VPSchedule(), None, timesteps=[0.5, 0.9, 0.1])
    with pytest.raises(ValueError, match="lie in"):
        D.GaussianMixturePrior(mix, D.VPSchedule(), None, timesteps=[1.5, 0.5])
    with pytest.raises(ValueError, match="integers"):
        D.GaussianMixturePrior(mix, D.DiscreteVPSchedule.linear(100), None,
                               timesteps=[50.5, 10.0])
