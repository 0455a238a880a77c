"""Denoising MCMC vs plain solvers: sample quality against denoiser calls per sample.

Kim & Ye (2022), "Denoising MCMC for Accelerating Diffusion-Based Generative Models",
claim that persistent Langevin–Gibbs chains over (x, noise level), each state handed to a
solver from its own level, beat the solvers started from pure noise at a low budget
(about 10 denoiser calls per sample). This script measures that, in one run, side by side:

* plain solvers (DDIM, DDPM, Heun, DPM-Solver++(2M)) from pure noise at about 10 NFE,
  DDIM and DPM-Solver++(2M) also at 5 and 20 (uniform grid; trailing for digits);
* DMCMC: DLG chains restricted to the last ``k`` levels of a grid, handed to each of the
  same solvers; NFE per sample is everything (carrying the chains from noise, warm-up,
  MCMC, hand-off) divided by the samples, as ``info.nfe_per_sample`` reports it.

Problems: the exact 2-D and 10-D Gaussian mixtures of ``bench_diffusion_samplers.py``
(sliced Wasserstein-2 to the exact mixture, with the exact-sample floor), where DLG's
level move is exact (MALA) or from a trained noise-level classifier (unadjusted, sampled
or argmax levels); and the shipped digits DDPM (classifier-Fréchet distance to the
training images, ``pi.diagnostics.classifier_quality``), with the trained classifier.
Small on purpose (a loaded 2-core CPU): 4000 mixture samples, 500 digit samples.

Run:  .venv/bin/python inference/dmcmc_vs_solvers.py [--quick]
Writes docs/results/dmcmc_vs_solvers.md and docs/results/dmcmc_vs_solvers.png. On a loaded
machine the problems can run as parallel processes (``--dims 2 --skip-digits --output
dmcmc_vs_solvers_2d``, ``--dims --output dmcmc_vs_solvers_digits``, ``--dims 10
--skip-digits --output dmcmc_vs_solvers_10d``, ``--dims 2 --skip-digits --only-wide --output
dmcmc_vs_solvers_2d_wide``) and be combined with ``--merge``; the committed results were
made that way, with ``--estimator-iterations 400 --estimator-hidden 128``.
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import sys
import time

import numpy as np
import jax
import jax.numpy as jnp

import probinfer as pi

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_diffusion_samplers import mixture, projected_quantiles, sliced_wasserstein  # noqa

D = pi.diffusion
OUT = pathlib.Path(__file__).resolve().parents[1] / "docs" / "results"

SOLVERS = {"DDIM": "ddim", "DDPM": "ddpm", "Heun": "heun", "DPM-Solver++(2M)": "dpm_solver_2m"}


def steps_for(solver: str, nfe: int) -> int:
    """Grid size giving about ``nfe`` calls (Heun: 2 per step, 1 on the last)."""
    return max(2, (nfe + 1) // 2) if solver == "heun" else nfe


# NFE budgets of the plain solvers: all four at about 10 (the paper's headline budget),
# DDIM and DPM-Solver++(2M) also at 5 and 20 for the curve. Each configuration is one XLA
# compilation, which costs about a minute on this loaded machine.
BUDGETS = {"DDIM": [5, 10, 20], "DDPM": [10], "Heun": [10], "DPM-Solver++(2M)": [5, 10, 20]}


def plain_rows(make_prior, measure, spacing, key):
    rows = []
    for name, solver in SOLVERS.items():
        for budget in BUDGETS[name]:
            prior = make_prior(steps_for(solver, budget), solver, spacing)
            x = prior.sample(key, measure.num_samples)
            nfe = int(prior.nfe_per_step.sum())
            rows.append(dict(method=f"{name} ({spacing})", family="plain", solver=name,
                             nfe=float(nfe), quality=measure(x)))
            print(rows[-1], flush=True)
    return rows


def dmcmc_rows(prior, measure, configs, key):
    rows = []
    for label, solver, kwargs in configs:
        start = time.perf_counter()
        try:
            res = pi.dmcmc.sample(key, prior, measure.num_samples, sampler=solver, **kwargs)
        except Exception as err:      # reported in the table, not hidden
            rows.append(dict(method=f"{label} (FAILED: {type(err).__name__}: {err})",
                             family="failed", solver=solver, nfe=float("nan"),
                             quality=float("nan")))
            print(rows[-1], flush=True)
            continue
        info = res.info
        rows.append(dict(method=label, family="dmcmc", solver=solver,
                         nfe=float(info.nfe_per_sample),
                         est=info.num_estimator_calls / measure.num_samples,
                         quality=measure(res.samples), acc=float(np.mean(info.acceptance_rate)),
                         levels=float(np.mean(np.asarray(info.handoff_levels))),
                         seconds=time.perf_counter() - start))
        print(rows[-1], flush=True)
    return rows


class MixtureMeasure:
    def __init__(self, mix, num_samples, key):
        self.num_samples = num_samples
        dirs = jax.random.normal(jax.random.fold_in(key, 3), (mix.dim, 128))
        self.dirs = dirs / jnp.linalg.norm(dirs, axis=0)
        self.quantiles = projected_quantiles(mix, self.dirs, num_samples)
        self.floor = float(np.mean([self(mix.sample(jax.random.fold_in(key, 100 + r),
                                                    num_samples)) for r in range(3)]))

    def __call__(self, x):
        return sliced_wasserstein(jnp.asarray(x, jnp.float32), self.dirs, self.quantiles)


class DigitsMeasure:
    def __init__(self, num_samples):
        self.num_samples = num_samples
        self.reference, _ = pi.zoo.digits("train")
        test, _ = pi.zoo.digits("test")
        self.floor = pi.diagnostics.classifier_quality(test, self.reference).frechet_distance

    def __call__(self, x):
        return pi.diagnostics.classifier_quality(np.asarray(x), self.reference).frechet_distance


def dmcmc_configs(num_steps, last, estimator, chains, warmup, thinning, step_size, exact=True):
    """DLG + each solver (exact levels and MALA where the prior allows, else the trained
    estimator), plus the estimator variants (sampled and argmax levels) with DDIM."""
    levels = range(num_steps - last, num_steps)
    common = dict(levels=levels, num_chains=chains, num_warmup=warmup, thinning=thinning)
    configs = []
    for name, solver in SOLVERS.items():
        if exact:
            configs.append((f"DMCMC MALA+exact levels -> {name}", solver,
                            dict(step_size=step_size, **common)))
        else:
            configs.append((f"DMCMC ULA+estimator (sample) -> {name}", solver,
                            dict(step_size=step_size / 2, level_model=estimator, **common)))
    if exact:
        configs.append(("DMCMC ULA+estimator (sample) -> DDIM", "ddim",
                        dict(step_size=step_size / 2, level_model=estimator, **common)))
    configs.append(("DMCMC ULA+estimator (argmax) -> DDIM", "ddim",
                    dict(step_size=step_size / 2, level_model=estimator, level_update="argmax",
                         **common)))
    return configs


def run_mixture(dim, args, key):
    mix = mixture(dim)
    measure = MixtureMeasure(mix, args.num_samples, key)

    def make(steps, solver, spacing):
        return D.GaussianMixturePrior(mix, num_steps=steps, sampler=solver, spacing=spacing)

    prior = D.GaussianMixturePrior(mix, num_steps=args.grid, sampler="ddim", spacing="uniform")
    if args.only_wide:
        # Every level allowed, with weights halving every two levels away from the data:
        # chains can climb to high noise and cross between modes, while most hand-offs
        # still start near the data.
        weights = 2.0 ** (np.arange(args.grid) / 2.0)
        configs = [("DMCMC MALA+exact, all levels (weights 2^(i/2)) -> DDIM", "ddim",
                    dict(step_size=args.step_size, levels=range(args.grid),
                         level_weights=weights, num_chains=args.chains,
                         num_warmup=args.warmup, thinning=args.thinning))]
        return dmcmc_rows(prior, measure, configs, jax.random.fold_in(key, 30)), measure.floor
    out = plain_rows(make, measure, "uniform", jax.random.fold_in(key, 10))
    data = mix.sample(jax.random.fold_in(key, 20), 20_000)
    start = time.perf_counter()
    estimator = pi.dmcmc.fit_level_estimator(jax.random.fold_in(key, 21), prior, data,
                                             num_iterations=args.estimator_iterations,
                                             hidden_size=args.estimator_hidden)
    print(f"estimator d={dim}: {time.perf_counter() - start:.1f}s, final loss "
          f"{estimator.loss_history[-1]:.3f}", flush=True)
    configs = dmcmc_configs(args.grid, args.last, estimator, args.chains, args.warmup,
                            args.thinning, args.step_size)
    out += dmcmc_rows(prior, measure, configs, jax.random.fold_in(key, 30))
    return out, measure.floor


def run_digits(args, key):
    measure = DigitsMeasure(args.digits_samples)

    def make(steps, solver, spacing):
        return pi.zoo.load_prior("digits-ddpm", num_steps=steps, sampler=solver)

    out = plain_rows(make, measure, "trailing", jax.random.fold_in(key, 40))
    prior = pi.zoo.load_prior("digits-ddpm", num_steps=args.grid, sampler="ddim")
    data, _ = pi.zoo.digits("train")
    start = time.perf_counter()
    estimator = pi.dmcmc.fit_level_estimator(jax.random.fold_in(key, 41), prior, data,
                                             num_iterations=args.estimator_iterations,
                                             hidden_size=args.estimator_hidden)
    print(f"estimator digits: {time.perf_counter() - start:.1f}s, final loss "
          f"{estimator.loss_history[-1]:.3f}", flush=True)
    configs = dmcmc_configs(args.grid, args.last, estimator, args.digits_chains,
                            args.warmup // 2, args.thinning, args.digits_step_size, exact=False)
    out += dmcmc_rows(prior, measure, configs, jax.random.fold_in(key, 50))
    return out, measure.floor


def best_plain(rows, budget):
    plain = [r for r in rows if r["family"] == "plain" and r["nfe"] <= budget]
    return min(plain, key=lambda r: r["quality"]) if plain else None


def write(results, args, elapsed):
    lines = ["# Denoising MCMC vs plain solvers: quality vs denoiser calls per sample", "",
             f"Produced by `.venv/bin/python inference/dmcmc_vs_solvers.py "
             f"{' '.join(sys.argv[1:])}` in {elapsed / 60:.1f} min on a shared "
             f"2-core CPU (JAX {jax.__version__}, float32).", "",
             f"Settings: {args.num_samples} samples per mixture run, {args.digits_samples} per "
             f"digits run (small for this machine: the digits distances carry Monte Carlo "
             f"noise of the order of the floor). DMCMC: a {args.grid}-step grid (uniform "
             f"on the mixtures, trailing on digits), chains on its last {args.last} "
             f"levels (uniform level prior), {args.chains} chains on the mixtures and "
             f"{args.digits_chains} on digits, {args.warmup} (mixtures) / {args.warmup // 2} "
             f"(digits) warm-up iterations, {args.thinning} DLG iterations between hand-offs, "
             f"relative step {args.step_size} (MALA) and half that for unadjusted Langevin "
             f"({args.digits_step_size / 2} on digits). The noise-level estimator is "
             f"`pi.dmcmc.fit_level_estimator` ({args.estimator_iterations} Adam iterations, "
             f"hidden size {args.estimator_hidden}). "
             "NFE/sample counts every denoiser call (carrying chains from noise, warm-up, "
             "MCMC, hand-off) over the samples returned; 'est/sample' counts the estimator's "
             "calls separately (a classifier much smaller than the denoiser).", ""]
    verdicts = []
    for problem, (rows, floor), metric in results:
        lines += [f"## {problem}", "", f"Metric: {metric} (lower is better); floor (exact or "
                  f"held-out real samples of the same size): {floor:.4f}.", "",
                  "| method | NFE/sample | est/sample | " + metric + " | accept | mean level |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in sorted(rows, key=lambda r: (r["family"], r["method"], r["nfe"])):
            if r["family"] == "failed":
                lines.append(f"| {r['method']} | - | - | - | - | - |")
                continue
            lines.append(f"| {r['method']} | {r['nfe']:.1f} | {r.get('est', 0):.1f} | "
                         f"{r['quality']:.4f} | "
                         f"{r['acc']:.2f} | {r['levels']:.1f} |" if r["family"] == "dmcmc" else
                         f"| {r['method']} | {r['nfe']:.0f} | 0 | {r['quality']:.4f} | - | - |")
        lines.append("")
        dm = [r for r in rows if r["family"] == "dmcmc"]
        for r in sorted(dm, key=lambda r: r["quality"])[:3]:
            ref = best_plain(rows, r["nfe"] + r.get("est", 0.0))
            if ref is None:
                continue
            better = r["quality"] < ref["quality"]
            verdicts.append(f"- {problem}: {r['method']} at {r['nfe']:.1f} NFE (+{r['est']:.1f} "
                            f"estimator calls) per sample: {r['quality']:.4f} vs the best plain "
                            f"solver within that budget, {ref['method']} at {ref['nfe']:.0f} NFE:"
                            f" {ref['quality']:.4f} -> DMCMC {'better' if better else 'worse'}.")
    lines += ["## Verdict against the paper's headline", "",
              "The three best DMCMC configurations per problem against the best plain solver "
              "whose NFE is at most the DMCMC NFE plus its estimator calls:", ""] + verdicts
    (OUT / f"{args.output}.md").write_text("\n".join(lines) + "\n")


def plot(results, args):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4.2))
    axes = np.atleast_1d(axes)
    for ax, (problem, (rows, floor), metric) in zip(axes, results):
        plain = {}
        for r in rows:
            if r["family"] == "plain":
                plain.setdefault(r["method"], []).append((r["nfe"], r["quality"]))
        for name, pts in sorted(plain.items()):
            pts = sorted(pts)
            ax.plot(*zip(*pts), marker="o", lw=1, alpha=0.7, label=name)
        for r in rows:
            if r["family"] == "dmcmc":
                marker = "*" if "MALA" in r["method"] else ("^" if "argmax" in r["method"]
                                                            else "s")
                ax.scatter(r["nfe"], r["quality"], marker=marker, s=70, color="k", zorder=3)
        ax.axhline(floor, color="grey", ls=":", label="floor")
        ax.axvline(10, color="grey", ls="--", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("denoiser calls per sample")
        ax.set_ylabel(metric)
        ax.set_title(f"{problem}\n(black: DMCMC; * MALA, s sampled, ^ argmax levels)",
                     fontsize=9)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(OUT / f"{args.output}.png", dpi=120)
    return fig

PARTS = [("2-D mixture", "dmcmc_vs_solvers_2d"),
         ("2-D mixture, every level allowed", "dmcmc_vs_solvers_2d_wide"),
         ("digits DDPM", "dmcmc_vs_solvers_digits"), ("10-D mixture", "dmcmc_vs_solvers_10d")]


def merge():
    """Combine per-problem outputs (``--output dmcmc_vs_solvers_<part>``, run as parallel
    processes on a loaded machine) into ``dmcmc_vs_solvers.md/.png``; each section keeps the
    command that produced it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

    lines = ["# Denoising MCMC vs plain solvers: quality vs denoiser calls per sample", "",
             "`inference/dmcmc_vs_solvers.py`, run as one process per problem in parallel (the "
             "shared 2-core CPU was loaded about 20-fold by other jobs; every XLA compilation "
             "took about a minute), then merged with `--merge`. Each section gives the command "
             "that produced it. Figure: `dmcmc_vs_solvers.png`, one panel per problem (black "
             "markers DMCMC, lines the plain solvers from pure noise, dotted the floor).", ""]
    verdicts, images = [], []
    for title, stem in PARTS:
        md = OUT / f"{stem}.md"
        if not md.exists():
            lines += [f"## {title}", "", "Not run (see docs/dmcmc.md).", ""]
            continue
        text = md.read_text().splitlines()
        first = next(k for k, line in enumerate(text) if line.startswith("## "))
        last = text.index("## Verdict against the paper's headline")
        lines += [f"## {title}"] + text[first + 1:last]
        lines += [line for line in text if line.startswith(("Produced by", "Settings:"))] + [""]
        verdicts += [line for line in text[last:] if line.startswith("- ")]
        images.append(OUT / f"{stem}.png")
    lines += ["## Verdict against the paper's headline", "",
              "The three best DMCMC configurations per problem against the best plain solver "
              "whose NFE is at most the DMCMC NFE plus its estimator calls:", ""] + verdicts
    (OUT / "dmcmc_vs_solvers.md").write_text("\n".join(lines) + "\n")
    fig, axes = plt.subplots(1, len(images), figsize=(6 * len(images), 4.6))
    for ax, png in zip(np.atleast_1d(axes), images):
        ax.imshow(mpimg.imread(png))
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(OUT / "dmcmc_vs_solvers.png", dpi=130)
    return fig


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--dims", type=int, nargs="*", default=[2, 10])
    parser.add_argument("--num-samples", type=int, default=4000)
    parser.add_argument("--digits-samples", type=int, default=500)
    parser.add_argument("--grid", type=int, default=20)
    parser.add_argument("--last", type=int, default=6)
    parser.add_argument("--chains", type=int, default=200)
    parser.add_argument("--digits-chains", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--thinning", type=int, default=2)
    parser.add_argument("--step-size", type=float, default=0.5)
    parser.add_argument("--digits-step-size", type=float, default=0.2)
    parser.add_argument("--estimator-iterations", type=int, default=1500)
    parser.add_argument("--estimator-hidden", type=int, default=256)
    parser.add_argument("--skip-digits", action="store_true")
    parser.add_argument("--only-wide", action="store_true",
                        help="mixtures: only DMCMC with every level allowed (geometric weights)")
    parser.add_argument("--merge", action="store_true",
                        help="only merge the per-problem outputs into dmcmc_vs_solvers.md/.png")
    parser.add_argument("--output", default="dmcmc_vs_solvers",
                        help="basename of the .md/.png written to docs/results")
    args = parser.parse_args()
    if args.merge:
        merge()
        return
    if args.quick:
        args.dims, args.num_samples, args.estimator_iterations = [2], 1000, 300
        args.digits_samples = 200
    import torch
    # One thread: on a shared, oversubscribed CPU torch's thread pool spins and stalls.
    torch.set_num_threads(1)
    start = time.perf_counter()
    key = jax.random.key(0)
    results = []
    # Results are written after every problem, so a partial run still reports.
    problems = [(f"{dim}-D mixture", functools.partial(run_mixture, dim), "sliced W2")
                for dim in args.dims]
    if not args.skip_digits:
        problems.insert(1, ("digits DDPM", run_digits, "classifier-FD"))
    for name, run, metric in problems:
        results.append((name, run(args, key), metric))
        write(results, args, time.perf_counter() - start)
        plot(results, args)


if __name__ == "__main__":
    main()
