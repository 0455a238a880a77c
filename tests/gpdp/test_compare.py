"""compare(): common random numbers, the table's columns, extinction counting, plots."""

import numpy as np
import pytest
import jax

import probinfer as pi

pytestmark = pytest.mark.slow  # one compare() run shared by the module (fit, solve, simulate)


@pytest.fixture(scope="module")
def result():
    setting = pi.gpdp.paper_setting()
    data = setting.observations(jax.random.key(11))
    # "copy of truth" solves to the same policy: with common random numbers its NPV equals
    # the true policy's in every replicate. "Ricker (wrong)" has no Allee effect and fishes
    # the stock below its tipping point.
    models = {"copy of truth": pi.gpdp.Allee(2.0, 8.0, 5.0, 0.05),
              "Ricker (wrong)": pi.gpdp.Ricker(0.4, 8.0, 0.06)}
    return pi.gpdp.compare(jax.random.key(12), setting.truth, data, models,
                           num_replicates=20, years=50, return_details=True)


def test_table_columns_and_common_random_numbers(result):
    table, details = result
    assert list(table.index) == ["true model", "copy of truth", "Ricker (wrong)"]
    for column in ("npv_ratio", "npv_ratio_se", "extinction_fraction"):
        assert column in table.columns
    assert table.loc["true model", "npv_ratio"] == 1.0
    assert table.loc["copy of truth", "npv_ratio"] == pytest.approx(1.0, abs=1e-6)
    assert table.loc["copy of truth", "npv_ratio_se"] == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(details["stock"]["copy of truth"], details["stock"]["true model"])
    assert table.loc["true model", "escapement"] == pytest.approx(6.73, abs=0.01)


def test_wrong_model_drives_the_stock_extinct(result):
    table, details = result
    stock = details["stock"]["Ricker (wrong)"]
    # The reported fraction is the share of replicates below half a grid step at the end.
    final = stock[:, -1]
    assert table.loc["Ricker (wrong)", "extinction_fraction"] >= np.mean(final < 0.1)
    assert table.loc["Ricker (wrong)", "extinction_fraction"] == 1.0
    assert table.loc["true model", "extinction_fraction"] == 0.0
    assert table.loc["Ricker (wrong)", "npv_ratio"] < 0.5


def test_plots_return_figures(result):
    import matplotlib
    matplotlib.use("Agg")
    _, details = result
    figs = [pi.gpdp.plot_policies(details["policies"]),
            pi.gpdp.plot_trajectories(details["stock"]),
            pi.gpdp.plot_dynamics(details["models"])]
    for fig in figs:
        assert isinstance(fig, matplotlib.figure.Figure)
        matplotlib.pyplot.close(fig)
