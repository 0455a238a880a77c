"""Steering on exact Gaussian-mixture priors: error to the exact tilted target vs NFE.

Problems: a 2-D and a 10-D mixture whose reward favours a low-mass mode,
``r(x) = -½ (x - c)ᵀ P (x - c)`` centred on that mode, temperature 1. The tilted target is
known in closed form (``pi.compare.Problem.mixture_tilt``), so for every method we report
the bias of its estimate of the favoured mode's mass (responsibilities under the exact
tilted mixture, weighted by the method's weights) with its Monte Carlo standard error, and
for FK steering the RMSE of one run's estimate, against the denoiser evaluations (NFE) per
run. Methods (``pi.compare``, budgets matched on NFE): best-of-N, FK steering with each
potential (ESS-triggered resampling at the default evaluation steps), SVDD-PM and SVDD-MC
(temperature 1, so they aim at the same target). FK runs are replicates of k particles;
best-of-N and SVDD replicates are single samples (their pooled bias is what matters). A
second part measures the overhead of FK steering over k unguided samples.

Run: ``.venv/bin/python inference/steering_gmm.py [--quick] [--ks 4 16 ...] [--previous
OLD.md]``; writes
``docs/results/steering_gmm.md``, ``.png`` and the summary ``.csv`` (+ ``.json``: seeds,
settings, versions, machine).
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import jax
import jax.numpy as jnp

import probinfer as pi

OUT = Path(__file__).resolve().parents[1] / "docs" / "results"
POTENTIALS = ("max", "difference", "immediate", "sum")


def mixture(dim: int):
    rng = np.random.default_rng(dim)
    weights = np.array([0.6, 0.35, 0.05])
    means = (np.array([[-2.0, 0.0], [0.0, 2.0], [2.5, -1.5]]) if dim == 2
             else rng.normal(0, 2.0, (3, dim)))
    covs = []
    for _ in range(3):
        a = rng.normal(size=(dim, dim)) * 0.3
        covs.append(a @ a.T / dim + 0.3 * np.eye(dim))
    return pi.GaussianMixture(weights, means, np.stack(covs))


def study(dim, ks, fk_reps, sample_reps, num_steps):
    mix = mixture(dim)
    problem = pi.compare.Problem.mixture_tilt(mix, center=mix.means[2],
                                              precision=0.5 * jnp.eye(dim), num_steps=num_steps)
    value_model = pi.steer.fit_value_model(jax.random.key(123), problem.prior, problem.reward,
                                           4000)
    budgets = [k * num_steps for k in ks]
    fk = [pi.compare.fk(f"FK {p}", potential=p, policy="ess") for p in POTENTIALS]
    single = [pi.compare.best_of_n("best-of-N"), pi.compare.svdd("SVDD-PM"),
              pi.compare.svdd("SVDD-MC", value=value_model)]
    frames = [pi.compare.run(jax.random.key(dim), problem, fk, fk_reps, budgets),
              pi.compare.run(jax.random.key(dim + 1), problem, single, sample_reps, budgets)]
    summary = pd.concat([pi.compare.summarize(f) for f in frames], ignore_index=True)
    summary.attrs = {"runs": [f.attrs for f in frames]}
    order = ["best-of-N"] + [m.name for m in fk] + ["SVDD-PM", "SVDD-MC"]
    summary["k"] = (summary["budget"] // num_steps).astype(int)
    summary["order"] = summary["method"].map(order.index)
    summary = summary.sort_values(["budget", "order"]).drop(columns="order")
    print(f"  d={dim} done", flush=True)
    return summary, float(problem.tilted.weights[2]), float(mix.weights[2])


def overhead(ks, num_steps, repeats):
    mix = mixture(2)
    problem = pi.compare.Problem.mixture_tilt(mix, center=mix.means[2],
                                              precision=0.5 * jnp.eye(2), num_steps=num_steps)
    prior, reward = problem.prior, problem.reward
    out = []
    for k in ks:
        fns = {"prior": lambda key: prior.sample(key, k),
               "fk": lambda key: pi.steer.fk(key, prior, reward, k).samples}
        for f in fns.values():
            f(jax.random.key(0)).block_until_ready()
        times = {n: [] for n in fns}
        for i in range(repeats):          # interleaved: the machine is shared and noisy
            for n, f in fns.items():
                start = time.perf_counter()
                f(jax.random.key(i + 1)).block_until_ready()
                times[n].append(time.perf_counter() - start)
        tp, tf = np.median(times["prior"]), np.median(times["fk"])
        out.append((k, 1e3 * tp, 1e3 * tf, tf / tp))
    return out


def previous_rows(path):
    """``{(dim, method, k): (|bias|, MCSE)}`` from an earlier version of the Markdown table."""
    rows, dim = {}, None
    for line in Path(path).read_text().splitlines():
        if line.startswith("## ") and "-D" in line:
            dim = int(line.split("-D")[0][3:])
        m = re.match(r"\| (.+?) \| (\d+) \| \d+ \| ([\d.]+) \| ([\d.]+) \|", line)
        if m and dim is not None:
            rows[(dim, m[1], int(m[2]))] = (float(m[3]), float(m[4]))
    return rows


def agreement(results, previous):
    """Differences to an earlier table in units of the combined MCSE."""
    z = []
    for dim, (summary, _, _) in results.items():
        rows = summary[summary["quantity"] == "mass[2]"]
        for _, r in rows.iterrows():
            old = previous.get((dim, r["method"], int(r["k"])))
            if old is not None:
                se = np.hypot(old[1], r["bias_mcse"])
                z.append(abs(abs(r["bias"]) - old[0]) / se if se > 0 else np.inf)
    return np.asarray(z)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--previous", type=Path,
                        help="an earlier steering_gmm.md to check the numbers against")
    parser.add_argument("--ks", type=int, nargs="+", help="particle counts (default 4 16 64 256)")
    args = parser.parse_args()
    ks = args.ks or ([4, 16] if args.quick else [4, 16, 64, 256])
    fk_reps, sample_reps = (8, 64) if args.quick else (32, 512)
    num_steps = 50 if args.quick else 100
    results = {dim: study(dim, ks, fk_reps, sample_reps, num_steps) for dim in (2, 10)}
    over = overhead([64] if args.quick else [64, 1024, 16384], num_steps, 3 if args.quick else 15)
    OUT.mkdir(parents=True, exist_ok=True)
    command = ("`.venv/bin/python inference/steering_gmm.py" + (" --quick" if args.quick else "")
               + (" --ks " + " ".join(map(str, args.ks)) if args.ks else "")
               + (f" --previous {args.previous}" if args.previous else "") + "`")
    lines = ["# Steering on exact Gaussian-mixture priors", "",
             f"Command: {command} — CPU ({os.cpu_count()} cores, shared), JAX "
             f"{jax.__version__}, DDPM with {num_steps} steps, temperature 1, run with "
             f"`pi.compare`. FK: {fk_reps} runs of k particles per cell; best-of-N and SVDD: "
             f"{sample_reps} single-sample runs per cell.", "",
             "Error of the favoured mode's mass against the exact tilted mixture: |bias| of "
             "the pooled estimate with its Monte Carlo standard error (MCSE), and for FK the "
             "RMSE of a single run's weighted estimate. NFE = denoiser evaluations per run as "
             "the runners report them (FK: k particles x steps; best-of-N: n x steps; SVDD: "
             "1 + k (steps - 1) per sample; SVDD-MC's value fit on 4000 rollouts is not "
             "counted). A bias within about 2 MCSE is not distinguishable from zero; "
             "`failures` counts runs that raised or gave a non-finite estimate.", ""]
    if args.previous:
        z = agreement(results, previous_rows(args.previous))
        lines += [f"Against the table before the harness ({args.previous.name}, other seeds): "
                  f"{len(z)} cells, |difference of |bias|| / combined MCSE: median "
                  f"{np.median(z):.2f}, {np.mean(z < 2):.0%} under 2, {np.mean(z < 3):.0%} "
                  f"under 3, max {z.max():.2f}.", ""]
    frames = []
    for dim, (summary, exact, prior_mass) in results.items():
        rows = summary[summary["quantity"] == "mass[2]"].copy()
        rows["abs_bias"] = rows["bias"].abs()
        rows.loc[~rows["method"].str.startswith("FK"), "rmse"] = np.nan
        rows = rows.rename(columns={"cost": "NFE", "bias_mcse": "MCSE", "rmse": "per-run RMSE",
                                    "abs_bias": "mass abs. bias"})
        lines += [f"## {dim}-D (favoured mode: prior mass {prior_mass:.2f}, tilted {exact:.3f})",
                  "", pi.compare.to_markdown(rows, ["method", "k", "NFE", "mass abs. bias",
                                                    "MCSE", "per-run RMSE", "failures"]), ""]
        frames.append(summary.assign(dim=dim))
    lines += ["## Overhead of FK steering over unguided sampling", "",
              "Same prior (2-D, DDPM), same steps, k particles vs k unguided samples, cheap "
              "JAX reward, default settings (5 evaluations, interval resampling); medians of "
              "interleaved repetitions, compiled.", "",
              "| k | unguided (ms) | FK steering (ms) | ratio |", "|---:|---:|---:|---:|"]
    lines += [f"| {k} | {a:.2f} | {b:.2f} | {r:.3f} |" for k, a, b, r in over]
    text = "\n".join(lines) + "\n"
    (OUT / "steering_gmm.md").write_text(text)
    table = pd.concat(frames, ignore_index=True)
    table.attrs = {dim: s.attrs for dim, (s, _, _) in results.items()}
    pi.compare.save(table, OUT / "steering_gmm")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, (dim, (summary, exact, prior_mass)) in zip(axes, results.items()):
        pi.compare.plot_error_vs_cost(summary, "mass[2]", metric="abs_bias", ax=ax)
        ax.set_title(f"{dim}-D mixture: favoured mode has prior mass {prior_mass:.2f}, "
                     f"tilted {exact:.2f}", fontsize=9)
        ax.set_xlabel("denoiser evaluations per run")
    fig.tight_layout()
    fig.savefig(OUT / "steering_gmm.png", dpi=120)
    print(text)


if __name__ == "__main__":
    main()
