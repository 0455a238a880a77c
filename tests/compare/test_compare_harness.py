"""The comparison harness recovers known answers.

Toy methods with a known distribution (a Gaussian mean estimate with a chosen bias and a
chosen reported standard error) check the statistics; small exact problems check the
problem constructors, the cost accounting and the runners end to end.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import jax
import jax.numpy as jnp

import probinfer as pi
from probinfer.compare import Method, Problem

NUM_PARTICLES = 50


def _mean_runner(key, problem, bias=0.0, se_scale=1.0, num_particles=NUM_PARTICLES):
    """N(0, 1) draws shifted by ``bias``: the weighted mean has bias ``bias`` and sd
    ``1/sqrt(N)``; ``se_scale`` scales the standard error the estimator reports."""
    x = jax.random.normal(key, (num_particles,)) + bias
    log_w = jnp.full((num_particles,), -math.log(num_particles))
    return pi.Result(x, log_w, jnp.asarray(jnp.nan), {"se_scale": jnp.asarray(se_scale)})


def _mean_with_se(res):
    n = res.samples.shape[0]
    return jnp.mean(res.samples), res.info["se_scale"] * jnp.std(res.samples) / jnp.sqrt(n)


def _toy_problem():
    return Problem("standard normal mean", {"mean": _mean_with_se}, {"mean": 0.0})


def _particles(res):
    return res.samples.shape[0]


def test_known_bias_recovered_within_mcse():
    methods = [Method("unbiased", _mean_runner, cost=_particles),
               Method("biased", _mean_runner, {"bias": 0.1}, cost=_particles)]
    df = pi.compare.run(0, _toy_problem(), methods, 200, progress_bar=False)
    table = pi.compare.summarize(df).set_index("method")
    assert set(df.attrs["cells"][i]["mode"] for i in range(2)) == {"vmap"}
    for name, bias in (("unbiased", 0.0), ("biased", 0.1)):
        row = table.loc[name]
        assert abs(row["bias"] - bias) < 3 * row["bias_mcse"]
        # The MCSE is the sd of one estimate over sqrt(R): 1 / sqrt(N R).
        assert row["bias_mcse"] == pytest.approx(1 / math.sqrt(NUM_PARTICLES * 200), rel=0.2)
        assert row["rmse"] == pytest.approx(math.sqrt(bias ** 2 + 1 / NUM_PARTICLES), rel=0.2)
        assert row["cost"] == NUM_PARTICLES
    assert abs(table.loc["biased", "z"]) > 5      # the bias is resolved ...
    assert abs(table.loc["unbiased", "z"]) < 3    # ... and no bias is invented


def test_coverage_near_nominal_and_too_narrow_intervals_detected():
    methods = [Method("correct se", _mean_runner, cost=_particles),
               Method("se halved", _mean_runner, {"se_scale": 0.5}, cost=_particles)]
    df = pi.compare.run(1, _toy_problem(), methods, 400, level=0.9, progress_bar=False)
    table = pi.compare.summarize(df).set_index("method")
    good, bad = table.loc["correct se"], table.loc["se halved"]
    assert abs(good["coverage"] - 0.9) < 3 * math.sqrt(0.9 * 0.1 / 400)
    # Halved intervals cover P(|Z| < 1.645 / 2) = 0.59.
    assert abs(bad["coverage"] - 0.59) < 3 * math.sqrt(0.59 * 0.41 / 400)


def test_failing_runs_are_counted_not_dropped():
    def flaky(key, problem):
        # A host-side check (not traceable): the harness falls back to the loop.
        if int(jax.random.key_data(key)[-1]) % 3 == 0:
            raise RuntimeError("diverged")
        return _mean_runner(key, problem)

    def nan_sometimes(key, problem):
        res = _mean_runner(key, problem)
        bad = jax.random.uniform(jax.random.fold_in(key, 1)) < 0.25
        return res._replace(samples=jnp.where(bad, jnp.nan, res.samples))

    methods = [Method("flaky", flaky, cost=_particles),
               Method("NaN sometimes", nan_sometimes, cost=_particles)]
    num = 40
    df = pi.compare.run(2, _toy_problem(), methods, num, progress_bar=False)
    assert len(df) == 2 * num                       # every replicate keeps its row
    cells = {c["method"]: c for c in df.attrs["cells"]}
    assert cells["flaky"]["mode"] == "loop" and "Error" in cells["flaky"]["vmap_error"]
    assert cells["NaN sometimes"]["mode"] == "vmap"
    table = pi.compare.summarize(df).set_index("method")
    for name in ("flaky", "NaN sometimes"):
        rows = df[df["method"] == name]
        failures = int(rows["failed"].sum())
        assert 0 < failures < num
        assert table.loc[name, "failures"] == failures
        assert table.loc[name, "replicates"] == num
        assert np.isfinite(table.loc[name, "bias"])
    flaky_rows = df[(df["method"] == "flaky") & df["failed"]]
    assert flaky_rows["message"].str.contains("RuntimeError: diverged").all()
    assert flaky_rows["estimate"].isna().all()


def _mixture_problem(num_steps=10):
    mix = pi.GaussianMixture(jnp.array([0.8, 0.2]), jnp.array([[-1.0], [1.5]]),
                             jnp.array([[[0.4]], [[0.3]]]))
    return Problem.mixture_tilt(mix, a=jnp.array([1.5]), num_steps=num_steps)


def test_matched_budgets_match_reported_costs():
    problem = _mixture_problem()
    budgets = [40, 160]
    df = pi.compare.run(3, problem, [pi.compare.fk("FK"), pi.compare.best_of_n("best-of-N")],
                        4, budgets=budgets, progress_bar=False)
    svdd = pi.compare.run(3, problem, [pi.compare.svdd("SVDD-PM")], 4, budgets=[160],
                          progress_bar=False)
    cells = {(c["method"], c["budget"]): c for c in df.attrs["cells"] + svdd.attrs["cells"]}
    assert all(c["mode"] == "vmap" for c in cells.values())
    for budget in budgets:
        rows = df[df["budget"] == budget]
        assert (rows["cost"] == budget).all()
        # The reported cost is what the runner's info says for those settings.
        res = pi.steer.fk(0, problem.prior, problem.reward, **cells[("FK", budget)]["settings"])
        assert res.info.nfe == budget and res.num_particles == budget // 10
    assert (abs(svdd["cost"] / 160 - 1) <= 0.1).all()
    res = pi.steer.svdd(0, problem.prior, problem.reward, temperature=1.0,
                        **cells[("SVDD-PM", 160)]["settings"])
    assert res.info.nfe == svdd["cost"].iloc[0]


def test_budget_mismatch_warns():
    overspends = Method("overspends", _mean_runner, cost=_particles,
                        at_budget=lambda budget, problem: {"num_particles": 2 * budget})
    with pytest.warns(RuntimeWarning, match=r"\+100.0% off the budget"):
        df = pi.compare.run(0, _toy_problem(), [overspends], 2, budgets=[10],
                            progress_bar=False)
    assert (df["cost"] == 20).all()


def test_markov_chain_kalman_and_numpyro_problems():
    chain = pi.diffusion.MarkovChainPrior(jnp.array([0.5, 0.3, 0.2]),
                                          jnp.array([[0.8, 0.1, 0.1], [0.2, 0.6, 0.2],
                                                     [0.3, 0.3, 0.4]]), 4)
    rewards = np.array([[0.0, 1.0, -1.0]] * 4)
    problem = Problem.markov_chain_tilt(chain, rewards)
    tilted, log_z = chain.tilt_additive(rewards)
    assert problem.reference["log_evidence"] == pytest.approx(log_z)
    assert problem.reference["marginal[2,1]"] == pytest.approx(tilted.marginals()[2, 1])
    assert float(problem.reward(jnp.array([1, 1, 0, 2]))) == pytest.approx(1.0)

    ssm = pi.ssm.LinearGaussian.scalar()
    _, ys = ssm.simulate(jax.random.key(1), 8)
    problem = Problem.kalman(ssm, ys)
    df = pi.compare.run(0, problem, [pi.compare.particle_filter("PF")], 8, budgets=[800],
                        progress_bar=False)
    table = pi.compare.summarize(df).set_index("quantity")
    assert (df["cost"] == 800).all()
    assert abs(table.loc["log_evidence", "z"]) < 4
    assert abs(table.loc["filter_mean[0]", "z"]) < 4

    import numpyro
    import numpyro.distributions as dist

    def model(y):
        mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)

    # Conjugate: mu | y ~ N(y / 2, 1 / 2).
    problem = Problem.numpyro(model, 1.0, reference={"names": ["mu"], "mean": [0.5],
                                                     "sd": [math.sqrt(0.5)]})
    draws = {"mu": 0.5 + math.sqrt(0.5) * jax.random.normal(jax.random.key(0), (4000,))}
    from_draws = Problem.numpyro(model, 1.0, reference={"draws": draws})
    assert from_draws.reference["mean:mu"] == pytest.approx(0.5, abs=0.05)
    assert from_draws.reference_se["mean:mu"] == pytest.approx(math.sqrt(0.5 / 4000), rel=0.1)
    exact = pi.Result(jnp.zeros((1, 1)) + 0.5, jnp.zeros(1), jnp.asarray(0.0))
    estimates = problem.estimate(exact)
    assert float(estimates["mean:mu"][0]) == pytest.approx(0.5, abs=1e-6)


def test_save_load_plots_and_tables(tmp_path):
    methods = [Method("unbiased", _mean_runner, cost=_particles),
               Method("wall", _mean_runner, cost="wall_time", at_budget=lambda b, p: {}),
               Method("biased", _mean_runner, {"bias": 0.2}, cost=_particles,
                      at_budget=lambda b, p: {"num_particles": int(b)})]
    df = pi.compare.run(jax.random.key(5), _toy_problem(), methods[2:], 4, budgets=[10, 40],
                        progress_bar=False)
    assert sorted(set(df["cost"])) == [10.0, 40.0]
    wall = pi.compare.run(0, _toy_problem(), methods[1:2], 3, progress_bar=False)
    assert (wall["cost"] > 0).all() and wall.attrs["cells"][0]["mode"] == "loop"
    path = pi.compare.save(df, tmp_path / "cmp")
    back = pi.compare.load(path)
    assert back.attrs == pi.compare.load(tmp_path / "cmp.json").attrs
    assert back.attrs["methods"][0]["settings"] == {"bias": 0.2}
    assert back.attrs["key_data"] == df.attrs["key_data"]
    assert "jax" in back.attrs["versions"] and "cpu_count" in back.attrs["machine"]
    np.testing.assert_allclose(back["estimate"], df["estimate"])
    assert back["failed"].dtype == bool
    table = pi.compare.summarize(back)
    fig = pi.compare.plot_error_vs_cost(table, "mean", metric="abs_bias")
    assert fig.axes[0].get_xscale() == "log" and fig.axes[0].get_yscale() == "log"
    fig = pi.compare.plot_estimates(df, "mean")
    assert len(fig.axes) == 1
    md = pi.compare.to_markdown(table, ["method", "budget", "bias", "bias_mcse"])
    assert md.splitlines()[1] == "|---|---:|---:|---:|" and len(md.splitlines()) == 4
    tex = pi.compare.to_latex(table, ["method", "bias_mcse"])
    assert "bias\\_mcse" in tex and tex.startswith("\\begin{tabular}{lr}")


def test_bad_inputs():
    problem = _toy_problem()
    good = Method("m", _mean_runner, cost=_particles)
    with pytest.raises(ValueError, match="reference lacks"):
        Problem("p", {"a": _mean_with_se}, {})
    with pytest.raises(TypeError, match="must be a function"):
        Problem("p", {"a": 1.0}, {"a": 0.0})
    with pytest.raises(ValueError, match="finite"):
        Problem("p", {"a": _mean_with_se}, {"a": float("nan")})
    with pytest.raises(ValueError, match="either center and precision"):
        Problem.mixture_tilt(_mixture_problem().mixture, a=jnp.ones(1), center=jnp.zeros(1),
                             precision=jnp.eye(1))
    with pytest.raises(ValueError, match="cost must be one of"):
        Method("m", _mean_runner, cost="flops")
    with pytest.raises(TypeError, match="runner must be"):
        Method("m", None)
    with pytest.raises(ValueError, match="num_replicates must be >= 2"):
        pi.compare.run(0, problem, [good], 1)
    with pytest.raises(ValueError, match="distinct"):
        pi.compare.run(0, problem, [good, good], 2)
    with pytest.raises(TypeError, match="Method"):
        pi.compare.run(0, problem, ["fk"], 2)
    with pytest.raises(TypeError, match="Problem"):
        pi.compare.run(0, {"mean": 0.0}, [good], 2)
    with pytest.raises(ValueError, match="budgets must be positive"):
        pi.compare.run(0, problem, [good], 2, budgets=[-1])
    with pytest.raises(ValueError, match="has no at_budget"):
        pi.compare.run(0, problem, [good], 2, budgets=[10])
    with pytest.raises(ValueError, match="lacks the columns"):
        pi.compare.summarize(pi.compare.summarize(
            pi.compare.run(0, problem, [good], 2, progress_bar=False)))
    with pytest.raises(AttributeError, match="no input 'prior'"):
        problem.prior
