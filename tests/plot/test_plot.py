"""``pi.plot``: every function returns a Figure with the expected artists, never shows it,
and rejects bad input with a clear error. Inputs are tiny runs of the real samplers."""

import matplotlib

matplotlib.use("Agg")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import probinfer as pi  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures(monkeypatch):
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("plt.show was called"))
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def mixture():
    return pi.GaussianMixture(jnp.array([0.7, 0.3]), jnp.array([[-2.0, 0.0], [2.0, 1.0]]),
                              jnp.stack([0.5 * jnp.eye(2)] * 2))


@pytest.fixture(scope="module")
def steered(mixture):
    prior = pi.diffusion.GaussianMixturePrior(mixture, num_steps=10)
    return pi.steer.fk(jax.random.key(0), prior, lambda x: x[0], 32)


@pytest.fixture(scope="module")
def filtered():
    ssm = pi.ssm.LinearGaussian.scalar(rho=0.9, sigma_x=1.0, sigma_y=0.5)
    _, ys = ssm.simulate(jax.random.key(0), 15)
    return pi.smc.run(jax.random.key(1), pi.ssm.bootstrap(ssm, ys), 40, keep_ancestors=True)


def test_ess_marks_resampling_steps_of_steering_and_smc(steered, filtered):
    fig = pi.plot.plot_ess(steered)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    ess_line, markers = ax.lines[0], ax.lines[1]
    np.testing.assert_allclose(ess_line.get_ydata(), np.asarray(steered.info.ess))
    assert len(markers.get_xdata()) == int(np.sum(steered.info.resampled))
    assert ax.lines[-1].get_ydata()[0] == 32          # the N = 32 ceiling
    fig = pi.plot.plot_ess(filtered.info, num_particles=40)   # SMCInfo has no traces()
    assert len(fig.axes[0].lines[0].get_xdata()) == 15


def test_ess_of_replicates_draws_one_line_each():
    info = pi.result.SavedInfo("SMCInfo", {"ess": np.full((3, 8), 5.0)}, {})
    fig = pi.plot.plot_ess(info, num_particles=10)
    assert sum(len(line.get_xdata()) == 8 for line in fig.axes[0].lines) == 3


def test_weights_title_reports_the_exact_ess():
    log_weights = np.log(np.array([0.5, 0.25, 0.125, 0.125]))
    fig = pi.plot.plot_weights(log_weights)
    ess = 1 / np.sum(np.exp(log_weights) ** 2)
    assert f"ESS {ess:.1f} of 4" in fig.axes[0].get_title()
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), [0, 0.5, 0.75, 0.875, 1.0])


def test_rewards_of_fk_svdd_and_best_of_n(mixture, steered):
    fig = pi.plot.plot_rewards(steered)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert "mean reward" in labels and "potential evaluated" in labels
    evaluated = [line for line in fig.axes[0].lines if line.get_label() == "potential evaluated"]
    assert len(evaluated[0].get_xdata()) == int(np.sum(steered.info.evaluated))
    prior = pi.diffusion.GaussianMixturePrior(mixture, num_steps=4)
    svdd = pi.steer.svdd(jax.random.key(1), prior, lambda x: x[0], 8, num_candidates=4)
    assert "mean value" in [line.get_label() for line in pi.plot.plot_rewards(svdd).axes[0].lines]
    best = pi.steer.best_of_n(jax.random.key(2), prior, lambda x: x[0], n=16, num_samples=3)
    ax = pi.plot.plot_rewards(best).axes[0]
    assert len(ax.patches) == 30 and len(ax.lines) == 3           # histogram + 3 winners


def test_genealogy_traces_lineages_back_to_step_zero(filtered):
    ancestors = np.array([[0, 1, 2, 3], [0, 0, 2, 2], [1, 1, 1, 3]])
    fig = pi.plot.plot_genealogy(ancestors)
    ax = fig.axes[0]
    links, lineages = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(links.get_segments()) == 2 * 4 and len(lineages.get_segments()) == 4
    # final particles 0,1,2 come from 1 -> 0 at step 0, particle 3 from 2 -> 2
    assert "from 2 of 4" in ax.get_title()
    fig = pi.plot.plot_genealogy(filtered)
    assert len(fig.axes[0].collections) == 2


def test_image_grid_one_axes_per_image():
    images, labels = pi.zoo.digits("test")
    fig = pi.plot.plot_image_grid(images[:7], ncols=4, titles=[str(x) for x in labels[:7]])
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 8 and len(shown) == 7
    assert all(len(ax.images) == 1 for ax in shown) and shown[0].get_title() == str(labels[0])
    assert shown[0].images[0].get_array().shape == (8, 8)


def test_particles_over_the_exact_density(mixture):
    points = mixture.sample(jax.random.key(3), 50)
    fig = pi.plot.plot_particles_2d(mixture, points, grid_size=30)
    ax = fig.axes[0]
    scatter = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(scatter) == 1 and scatter[0].get_offsets().shape == (50, 2)
    assert any(type(c).__name__ in ("QuadContourSet", "ContourSet") or hasattr(c, "levels")
               for c in ax.collections + getattr(ax, "_children", []))
    target, _ = mixture.tilt_linear(jnp.array([1.0, 0.0]), 1.0)
    log_weights = jax.nn.log_softmax(jax.vmap(target.log_density)(points)
                                     - jax.vmap(mixture.log_density)(points))
    res = pi.Result(points, log_weights, jnp.nan)      # importance weights towards the tilt
    fig = pi.plot.plot_particles_2d(target, res, grid_size=20)
    sizes = [c for c in fig.axes[0].collections if isinstance(c, PathCollection)][0].get_sizes()
    assert np.ptp(sizes) > 0                           # weighted markers
    np.testing.assert_allclose(sizes.mean(), 6.0, rtol=1e-5)


def test_sobol_and_gpdp_are_the_owning_modules_functions():
    assert pi.plot.plot_sobol is pi.importance.plot_sobol
    assert pi.plot.plot_policies is pi.gpdp.plot_policies
    assert pi.plot.plot_pareto is pi.design.plot_pareto
    assert pi.plot.plot_error_vs_cost is pi.compare.plot_error_vs_cost
    stock = {"GP": np.ones((5, 10)), "Ricker": np.zeros((5, 10))}
    fig = pi.plot.plot_trajectories(stock, max_paths=3)
    assert [len(ax.lines) for ax in fig.axes if ax.get_visible()] == [3, 3]


def test_bridge_phase_plane_and_one_dimensional():
    times = [0.0, 0.5, 1.0]
    snaps = pi.bridges.simulate_snapshots(jax.random.key(0), pi.bridges.LotkaVolterra(),
                                          jnp.array([5.0, 4.0]), times, 20, sigma=0.1)
    paths = np.cumsum(np.ones((4, 6, 2)), axis=1)
    ax = pi.plot.plot_bridge(snaps, times, trajectories=paths).axes[0]
    assert len(ax.collections) == 3 and len(ax.lines) == 4
    bridge = pi.bridges.gaussian_bridge(jnp.zeros(1), jnp.eye(1), jnp.ones(1), jnp.eye(1), 0.5)
    grid = jnp.linspace(0.0, 1.0, 5)
    paths = bridge.sample(jax.random.key(1), grid, 7)
    ax = pi.plot.plot_bridge([np.zeros((3, 1)), np.ones((3, 1))], [0.0, 1.0], paths,
                             trajectory_times=grid).axes[0]
    assert len(ax.lines) == 7 and ax.get_xlabel() == "time"


def test_bad_inputs_are_clear_errors(steered):
    with pytest.raises(ValueError, match="num_particles must be a positive integer"):
        pi.plot.plot_ess(steered, num_particles=0)
    with pytest.raises(TypeError, match="cannot read per-step traces"):
        pi.plot.plot_ess(object())
    with pytest.raises(ValueError, match="no reward trace"):
        pi.plot.plot_rewards(pi.result.SavedInfo("SMCInfo", {"ess": np.ones(3)}, {}))
    with pytest.raises(TypeError, match="keep_ancestors=True"):
        pi.plot.plot_genealogy(pi.result.SavedInfo("SMCInfo", {"ess": np.ones(3)}, {}))
    with pytest.raises(ValueError, match="non-empty 1-D"):
        pi.plot.plot_weights(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="integers in 0..2"):
        pi.plot.plot_genealogy(np.array([[0, 1, 2], [0, 5, 1]]))
    with pytest.raises(ValueError, match="images must have shape"):
        pi.plot.plot_image_grid(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"particles must have shape \(n, 2\)"):
        pi.plot.plot_particles_2d(lambda x: -x @ x, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="give bounds"):
        pi.plot.plot_particles_2d(lambda x: -x @ x)
    with pytest.raises(ValueError, match="same length"):
        pi.plot.plot_bridge([np.zeros((3, 2))], [0.0, 1.0])
    with pytest.raises(ValueError, match="trajectory_times"):
        pi.plot.plot_bridge([np.zeros((3, 1))], [0.0], np.zeros((2, 4, 1)))
    with pytest.raises(TypeError, match="matplotlib Axes"):
        pi.plot.plot_weights(np.zeros(3), ax="left")
