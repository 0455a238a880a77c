"""Sobol' indices against analytic values: Ishigami and the Sobol' G-function."""

import numpy as np
import pytest
import jax
import jax.numpy as jnp
import numpyro.distributions as dist

import probinfer as pi


def ishigami(x, a=7.0, b=0.1):
    return jnp.sin(x[0]) + a * jnp.sin(x[1]) ** 2 + b * x[2] ** 4 * jnp.sin(x[0])


def ishigami_indices(a=7.0, b=0.1):
    v1 = 0.5 * (1 + b * np.pi ** 4 / 5) ** 2
    v2 = a ** 2 / 8
    v13 = b ** 2 * np.pi ** 8 * (1 / 18 - 1 / 50)
    v = v1 + v2 + v13
    return np.array([v1, v2, 0.0]) / v, np.array([v1 + v13, v2, v13]) / v


G_A = np.array([0.0, 1.0, 4.5, 9.0, 99.0, 99.0, 99.0, 99.0])


def g_function(x):
    a = jnp.asarray(G_A, x.dtype)
    return jnp.prod((jnp.abs(4 * x - 2) + a) / (1 + a))


def g_function_indices():
    vi = 1 / (3 * (1 + G_A) ** 2)
    v = np.prod(1 + vi) - 1
    total = np.array([vi[i] * np.prod(np.delete(1 + vi, i)) for i in range(len(G_A))]) / v
    return vi / v, total


ISHIGAMI_INPUTS = [dist.Uniform(-jnp.pi, jnp.pi)] * 3
G_INPUTS = [dist.Uniform(0.0, 1.0)] * 8


def test_analytic_values_match_the_issue():
    s1, st = ishigami_indices()
    np.testing.assert_allclose(s1, [0.3139, 0.4424, 0.0], atol=1e-4)
    np.testing.assert_allclose(st, [0.5576, 0.4424, 0.2437], atol=1e-4)


def _check(results, s1, st, min_coverage):
    est1 = np.array([r.first_order for r in results])
    estt = np.array([r.total for r in results])
    ci1 = np.array([r.first_order_ci for r in results])
    cit = np.array([r.total_ci for r in results])
    inside = np.concatenate([(ci1[..., 0] <= s1) & (s1 <= ci1[..., 1]),
                             (cit[..., 0] <= st) & (st <= cit[..., 1])], axis=1)
    assert inside.mean() >= min_coverage, inside.mean(axis=0)
    # Replicate means within 4 Monte Carlo standard errors of the analytic indices.
    for est, truth in ((est1, s1), (estt, st)):
        mcse = est.std(0, ddof=1) / np.sqrt(len(est))
        assert np.all(np.abs(est.mean(0) - truth) < 4 * mcse + 1e-3), (est.mean(0), truth)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["pick-freeze", "ais-cv"])
def test_ishigami_within_reported_intervals(key, method):
    s1, st = ishigami_indices()
    results = [pi.importance.sobol(k, ishigami, ISHIGAMI_INPUTS, 5000, method=method)
               for k in jax.random.split(key, 10)]
    # 60 nominal 95% intervals: at least 80% cover (binomial: 57 expected, sd 1.7).
    _check(results, s1, st, 0.8)
    assert results[0].num_evaluations == 5000


@pytest.mark.slow
@pytest.mark.parametrize("method", ["pick-freeze", "ais-cv"])
def test_g_function_within_reported_intervals(key, method):
    s1, st = g_function_indices()
    results = [pi.importance.sobol(k, g_function, G_INPUTS, 10_000, method=method)
               for k in jax.random.split(key, 6)]
    # 96 nominal 95% intervals: at least 80% cover.
    _check(results, s1, st, 0.8)


def test_table_plot_and_host_function(key):
    import numpy as onp

    host = pi.steer.host_reward(
        lambda xs: onp.sin(xs[:, 0]) + 7 * onp.sin(xs[:, 1]) ** 2
        + 0.1 * xs[:, 2] ** 4 * onp.sin(xs[:, 0]))
    res = pi.importance.sobol(key, host, ISHIGAMI_INPUTS, 2500, method="pick-freeze",
                              names=["x1", "x2", "x3"])
    # One host call per batch, every evaluation counted.
    assert host.num_evaluations == res.num_evaluations == 2500
    df = res.to_dataframe()
    assert list(df.columns) == ["input", "index", "estimate", "std_error", "ci_low", "ci_high"]
    assert len(df) == 6
    fig = pi.importance.plot_sobol(res)
    assert fig.axes and len(fig.axes[0].patches) == 6
    s1, st = ishigami_indices()
    assert np.all(np.abs(np.asarray(res.first_order) - s1) < 5 * np.asarray(res.first_order_se))


def test_reweighting_to_a_new_input_distribution(key):
    # y = x1 + x2 with independent normals: S1 = s1² / (s1² + s2²) in closed form, so the
    # indices under a wider first input are known and come from the same sample.
    fn = lambda x: x[0] + x[1]
    res = pi.importance.sobol(key, fn, [dist.Normal(0.0, 1.0)] * 2, 40_000, method="pick-freeze")
    wider = res.reweight([dist.Normal(0.0, 1.2), dist.Normal(0.0, 1.0)])
    truth = 1.2 ** 2 / (1.2 ** 2 + 1)
    assert abs(float(wider.first_order[0]) - truth) < 4 * float(wider.first_order_se[0])
    assert abs(float(wider.total[1]) - (1 - truth)) < 4 * float(wider.total_se[1])
    assert wider.method == "reweighted" and 0 < float(wider.info["ess"]) < 10_000


def test_bad_input(key):
    with pytest.raises(ValueError, match="budget"):
        pi.importance.sobol(key, ishigami, ISHIGAMI_INPUTS, 40, method="pick-freeze")
    with pytest.raises(ValueError, match="budget"):
        pi.importance.sobol(key, ishigami, ISHIGAMI_INPUTS, 400, method="ais-cv")
    with pytest.raises(ValueError, match="NaN"):
        pi.importance.sobol(key, lambda x: jnp.log(x[0]), ISHIGAMI_INPUTS, 500,
                            method="pick-freeze")
    with pytest.raises(ValueError, match="independent"):
        pi.importance.sobol(key, ishigami, [dist.MultivariateNormal(jnp.zeros(3), jnp.eye(3))],
                            500, method="pick-freeze")
    with pytest.raises(ValueError, match="method"):
        pi.importance.sobol(key, ishigami, ISHIGAMI_INPUTS, 500, method="saltelli")
    with pytest.raises(TypeError, match="inputs"):
        pi.importance.sobol(key, ishigami, [1.0, 2.0], 500, method="pick-freeze")
