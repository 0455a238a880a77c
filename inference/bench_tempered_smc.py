"""Tempered SMC on two NumPyro models: probinfer vs BlackJAX vs NumPyro NUTS, on ``pi.compare``.

Models: (a) Bayesian logistic regression on scikit-learn's breast-cancer data (569 rows,
30 standardised features + intercept, N(0, 1) priors); (b) eight schools, non-centred.
Each is a ``pi.compare.Problem.numpyro`` whose reference moments come from NumPyro NUTS
(2 chains; reference standard errors from ArviZ's bulk ESS) and whose reference
log-evidence comes from importance sampling with a multivariate-t (5 d.o.f.) proposal
fitted to the NUTS draws in unconstrained space.

1. Wall time (``cost="wall_time"``, compiled before timing, median of R runs):
   ``pi.smc.tempered`` (runner, and the pure jitted ``tempered_scan``) against BlackJAX's
   ``adaptive_tempered_smc`` with the *same* kernel (HMC, fixed step size and diagonal
   inverse mass matrix, same leapfrog steps and moves per SMC step), particle count and
   target ESS, on the same log densities. Goal: ratio probinfer / BlackJAX <= 1.
2. Accuracy of probinfer's default settings (``pi.smc.tempered(key, pm, N)``) over R runs:
   z = bias / sqrt(MCSE_SMC² + MCSE_NUTS²) of every posterior mean and sd (the ``z`` of
   ``pi.compare.summarize``).
3. Log-evidence: ``exp(log Z_SMC - log Z_ref)`` (unbiased for 1) over the same runs.

Run: ``.venv/bin/python inference/bench_tempered_smc.py`` (about 10 minutes on 2 CPU
cores); ``--quick`` for a smoke run. Writes docs/results/bench_tempered_smc.md and the
summary as ``.csv`` + ``.json``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd
import jax
import jax.numpy as jnp

jax.config.update("jax_enable_x64", True)

import numpyro  # noqa: E402
import numpyro.distributions as dist  # noqa: E402

import probinfer as pi  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "results" / "bench_tempered_smc"


def logistic_model(x, y):
    intercept = numpyro.sample("intercept", dist.Normal(0.0, 1.0))
    coef = numpyro.sample("coef", dist.Normal(0.0, 1.0).expand([x.shape[1]]).to_event(1))
    numpyro.sample("y", dist.Bernoulli(logits=intercept + x @ coef), obs=y)


def eight_schools(sigma, y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("school", y.shape[0]):
        theta_tilde = numpyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
        numpyro.sample("y", dist.Normal(mu + tau * theta_tilde, sigma), obs=y)


def models():
    from sklearn.datasets import load_breast_cancer
    data = load_breast_cancer()
    x = (data.data - data.data.mean(0)) / data.data.std(0)
    return {"logistic regression (breast cancer, d=31)":
            (logistic_model, (jnp.asarray(x), jnp.asarray(data.target))),
            "eight schools, non-centred (d=10)":
            (eight_schools, (jnp.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0]),
                             jnp.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])))}


def nuts_reference(model, args, key, num_warmup, num_samples):
    """Posteriordb-style reference moments (names, mean, sd, bulk ESS) and the draws."""
    import arviz as az
    from numpyro.infer import MCMC, NUTS
    mcmc = MCMC(NUTS(model), num_warmup=num_warmup, num_samples=num_samples, num_chains=2,
                chain_method="sequential", progress_bar=False)
    mcmc.run(key, *args)
    samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    ess = az.ess(az.from_dict(posterior=samples), method="bulk")
    names, mean, sd, ess_bulk = [], [], [], []
    for site in sorted(samples):
        draws = samples[site].reshape((-1,) + samples[site].shape[2:])
        e = np.asarray(ess[site])
        columns = ([(site, draws, e)] if draws.ndim == 1 else
                   [(f"{site}[{i + 1}]", draws[:, i], e[i]) for i in range(draws.shape[1])])
        for name, column, e_i in columns:
            names.append(name)
            mean.append(float(column.mean()))
            sd.append(float(column.std()))
            ess_bulk.append(float(e_i))
    flat = {k: v.reshape((-1,) + v.shape[2:]) for k, v in samples.items()}
    return {"names": names, "mean": mean, "sd": sd, "ess_bulk": ess_bulk}, flat


def importance_log_evidence(pm, key, unconstrained_draws, num_draws, df=5.0, batch=20_000):
    """log Z by importance sampling with a multivariate-t proposal; returns (log Z, rel. MCSE
    of Z, ESS)."""
    mean = unconstrained_draws.mean(0)
    chol = jnp.asarray(np.linalg.cholesky(np.cov(unconstrained_draws.T) * 1.2))
    d = mean.shape[0]
    log_target = jax.jit(jax.vmap(pm.target.log_density))

    def t_log_density(x):
        z = jax.scipy.linalg.solve_triangular(chol, (x - mean).T, lower=True)
        return (jax.scipy.special.gammaln((df + d) / 2) - jax.scipy.special.gammaln(df / 2)
                - 0.5 * d * jnp.log(df * jnp.pi) - jnp.sum(jnp.log(jnp.diag(chol)))
                - 0.5 * (df + d) * jnp.log1p(jnp.sum(z ** 2, 0) / df))

    log_w = []
    for k in jax.random.split(key, num_draws // batch):
        kz, kg = jax.random.split(k)
        g = jax.random.gamma(kg, df / 2, (batch,)) / (df / 2)
        x = mean + (jax.random.normal(kz, (batch, d)) @ chol.T) / jnp.sqrt(g)[:, None]
        log_w.append(np.asarray(log_target(x) - t_log_density(x)))
    log_w = np.concatenate(log_w)
    w = np.exp(log_w - log_w.max())
    return (log_w.max() + math.log(w.mean()), w.std() / w.mean() / math.sqrt(w.size),
            float(w.sum() ** 2 / (w ** 2).sum()))


def blackjax_runner(pm, num_particles, target_ess, step_size, inverse_mass, num_leapfrog,
                    num_moves):
    import blackjax
    from blackjax.smc import resampling
    from blackjax.smc.base import extend_params

    smc = blackjax.adaptive_tempered_smc(
        pm.prior.log_density, pm.log_likelihood, blackjax.hmc.build_kernel(), blackjax.hmc.init,
        extend_params({"step_size": jnp.asarray(step_size),
                       "inverse_mass_matrix": jnp.asarray(inverse_mass),
                       "num_integration_steps": num_leapfrog}),
        resampling.systematic, target_ess=target_ess, num_mcmc_steps=num_moves)

    @jax.jit
    def run(key):
        init_key, key = jax.random.split(key)
        state = smc.init(pm.prior.sample(init_key, num_particles))

        def body(carry):
            i, s, k, log_z = carry
            k, sk = jax.random.split(k)
            s, info = smc.step(sk, s)
            return i + 1, s, k, log_z + info.log_likelihood_increment

        n, state, _, log_z = jax.lax.while_loop(lambda c: c[1].tempering_param < 1, body,
                                                (0, state, key, 0.0))
        return pi.Result(state.particles, jnp.log(state.weights), log_z, {"steps": n})

    return run


def timing_methods(pm, num_particles, target_ess, reference_draws, num_leapfrog, num_moves,
                   steps):
    """The three samplers with the same fixed HMC kernel, as wall-time methods; ``steps``
    receives each one's number of tempering steps."""
    inverse_mass = reference_draws.var(0)
    step_size = 0.5 * pm.dim ** -0.25
    kernel = pi.kernels.repeat(pi.kernels.hmc(num_leapfrog), num_moves)
    params = pi.kernels.KernelParams(jnp.asarray(step_size), jnp.sqrt(jnp.asarray(inverse_mass)))

    def ours(key, problem):
        res = pi.smc.tempered(key, pm, num_particles, kernel=kernel, target_ess=target_ess,
                              adaptation=None, kernel_params=params, progress_bar=False)
        steps["probinfer runner"] = res.info.beta.shape[0]
        return res

    loop = jax.jit(lambda k: pi.smc.tempered_scan(k, pm.prior, pm.log_likelihood,
                                                  num_particles, kernel, target_ess,
                                                  kernel_params=params)[0])

    def ours_scan(key, problem):
        state = loop(key)
        steps["probinfer tempered_scan (jit)"] = int(state.step) + 1
        return pi.Result(state.particles.position, state.log_weights, state.log_evidence,
                         {"steps": state.step + 1})

    theirs = blackjax_runner(pm, num_particles, target_ess, step_size, inverse_mass,
                             num_leapfrog, num_moves)
    def blackjax(key, problem):
        res = theirs(key)
        steps["BlackJAX adaptive_tempered_smc"] = int(res.info["steps"])
        return res

    return [pi.compare.Method("probinfer runner", ours, cost="wall_time"),
            pi.compare.Method("probinfer tempered_scan (jit)", ours_scan, cost="wall_time"),
            pi.compare.Method("BlackJAX adaptive_tempered_smc", blackjax, cost="wall_time")]


def default_method(num_particles, kernels):
    """``pi.smc.tempered(key, pm, N)`` with its defaults; ``kernels`` receives the move used."""
    def runner(key, problem, num_particles):
        res = pi.smc.tempered(key, problem.pm, num_particles, progress_bar=False)
        kernels["default"] = res.info.kernel
        return res

    return pi.compare.Method(f"tempered SMC (default), N={num_particles}", runner,
                             {"num_particles": num_particles},
                             cost="num_gradient_evaluations", vmap=False)


def study(name, model, args, settings, key):
    print(f"== {name}", flush=True)
    reference, draws = nuts_reference(model, args, jax.random.fold_in(key, 1),
                                      settings["nuts_warmup"], settings["nuts_samples"])
    base = pi.compare.Problem.numpyro(model, *args, reference=reference, name=name)
    pm = base.pm
    unconstrained = np.asarray(jax.vmap(pm.unconstrain)({k: draws[k] for k in pm.site_names}))
    log_z, rel_se, is_ess = importance_log_evidence(pm, jax.random.fold_in(key, 7),
                                                    unconstrained, settings["is_draws"])
    # exp(log Z_SMC - log Z_ref) is unbiased for 1 (up to the reference's own error).
    problem = pi.compare.Problem(
        name, {**base.quantities, "Z ratio": lambda res: jnp.exp(res.log_evidence - log_z)},
        {**base.reference, "Z ratio": 1.0}, {**base.reference_se, "Z ratio": rel_se},
        **base.inputs)
    n, steps, kernels = settings["num_particles"], {}, {}
    timing = pi.compare.run(jax.random.fold_in(key, 2), problem,
                            timing_methods(pm, n, settings["target_ess"], unconstrained,
                                           settings["num_leapfrog"], settings["num_moves"],
                                           steps),
                            settings["timing_repeats"], progress_bar=False)
    accuracy = pi.compare.run(jax.random.fold_in(key, 3), problem,
                              [default_method(n, kernels)], settings["num_replicates"])
    return timing, steps, accuracy, (log_z, rel_se, is_ess), kernels.get("default", "")


def main(quick: bool):
    settings = {"num_particles": 400 if quick else 1000, "timing_repeats": 2 if quick else 3,
                "num_replicates": 3 if quick else 8, "num_leapfrog": 5, "num_moves": 5,
                "target_ess": 0.5, "nuts_warmup": 300 if quick else 1000,
                "nuts_samples": 300 if quick else 2000, "is_draws": 40_000 if quick else 200_000}
    key = jax.random.key(20261126)
    timing_rows, accuracy_rows, evidence_rows, frames = [], [], [], []
    for name, (model, args) in models().items():
        timing, steps, accuracy, (log_z, rel_se, is_ess), kernel = study(
            name, model, args, settings, key)
        frames += [pi.compare.summarize(timing).assign(model=name),
                   pi.compare.summarize(accuracy).assign(model=name)]
        times = timing[timing["quantity"] == "Z ratio"].groupby("method", sort=False)["cost"]
        base = times.median()["BlackJAX adaptive_tempered_smc"]
        timing_rows += [(name, m, steps.get(m, 0), t, t / base)
                        for m, t in times.median().items()]
        table = pi.compare.summarize(accuracy)
        moments = {kind: table[table["quantity"].str.startswith(kind + ":")]["z"].abs()
                   for kind in ("mean", "sd")}
        failures = int(table["failures"].max())
        accuracy_rows.append((name, len(moments["mean"]),
                              *[f(moments[k]) for k in ("mean", "sd")
                                for f in (np.median, np.max, lambda z: np.mean(z < 3))],
                              float(table["cost"].iloc[0]), failures, kernel))
        ratio = table[table["quantity"] == "Z ratio"].iloc[0]
        log_zs = accuracy[accuracy["quantity"] == "Z ratio"]["estimate"].apply(np.log) + log_z
        evidence_rows.append((name, log_z, rel_se, is_ess, log_zs.mean(), log_zs.std(ddof=1),
                              ratio["mean"], ratio["bias_mcse"]))
    summary = pd.concat(frames, ignore_index=True)
    summary.attrs = {"settings": settings, "runs": [f.attrs for f in frames]}
    pi.compare.save(summary, OUT)
    write_table(timing_rows, accuracy_rows, evidence_rows, settings, quick)


def write_table(timing_rows, accuracy_rows, evidence_rows, s, quick):
    lines = [
        "# Tempered SMC: probinfer vs BlackJAX vs NumPyro NUTS", "",
        "Generated by `inference/bench_tempered_smc.py`" + (" --quick" if quick else "")
        + f" (on `pi.compare`) on CPU ({jax.devices()[0].device_kind}, float64). "
        f"N = {s['num_particles']} particles, target ESS {s['target_ess']}. Wall-time section: "
        f"HMC with {s['num_leapfrog']} leapfrog steps, {s['num_moves']} moves per SMC step on "
        "both sides; accuracy and evidence sections: probinfer's default settings.", "",
        f"## Wall time (same fixed kernel, warm, median of {s['timing_repeats']})", "",
        "Both sides run HMC with the same step size and diagonal inverse mass matrix (the "
        "NUTS posterior variances), on the same `from_numpyro` log densities.", "",
        "| model | sampler | tempering steps (last run) | wall time (s) | ratio to BlackJAX |",
        "|---|---|---:|---:|---:|"]
    lines += [f"| {m} | {s_} | {n} | {t:.3f} | {r:.2f} |" for m, s_, n, t, r in timing_rows]
    lines += [
        "", f"## Posterior agreement with NumPyro NUTS ({s['num_replicates']} SMC runs, "
        "default settings)", "",
        f"NUTS: 2 chains x {s['nuts_samples']} draws after {s['nuts_warmup']} warm-up. "
        "z = (SMC - NUTS) / sqrt(MCSE_SMC² + MCSE_NUTS²) per coordinate (constrained space); "
        "SMC MCSE from the spread over runs, NUTS MCSE sd/sqrt(ESS_bulk) for means and "
        "sd/sqrt(2 ESS_bulk) for sds.", "",
        "| model | coordinates | median abs z (mean) | max abs z (mean) | frac abs z < 3 (mean) | "
        "median abs z (sd) | max abs z (sd) | frac abs z < 3 (sd) | gradient evaluations per "
        "run | failed runs | default kernel |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    lines += [f"| {m} | {n} | {a:.2f} | {b:.2f} | {c:.2f} | {d:.2f} | {e:.2f} | {f:.2f} | "
              f"{g:.3g} | {h} | `{k}` |" for m, n, a, b, c, d, e, f, g, h, k in accuracy_rows]
    lines += [
        "", "## Log-evidence", "",
        "Reference: importance sampling, multivariate-t (5 d.o.f.) proposal fitted to the NUTS "
        f"draws in unconstrained space, {s['is_draws']} draws.", "",
        "| model | reference log Z | reference rel. MCSE of Z | IS ESS | SMC log Z (mean) | "
        "SMC log Z (sd over runs) | mean exp(log Z_SMC - log Z_ref) | its MCSE |",
        "|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {m} | {r:.3f} | {e:.1e} | {s_:.0f} | {a:.3f} | {b:.3f} | {c:.3f} | {d:.3f} |"
              for m, r, e, s_, a, b, c, d in evidence_rows]
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    main(parser.parse_args().quick)
