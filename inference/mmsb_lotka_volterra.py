"""Multi-marginal Schrödinger bridges with iterative reference refinement (Shen et al. 2025).

Data: ``/work/shared/reference/lotka_volterra_snapshots.npy`` (9 snapshots, t = 0..8, 50
cells, 2-D Lotka–Volterra SDE with alpha=1, beta=0.4, gamma=0.4, delta=0.1, sigma=0.1) and
``repressilator_snapshots.npy`` (11 snapshots, 50 cells, 3 genes, sigma=0.1; the paper's
notebook places the training snapshots 1.5 apart, so snapshot k is at t = 0.75 k). Train on
the even snapshots, evaluate on the odd ones.

Methods: (a) piecewise bridges with a Brownian reference (``pi.bridges.Brownian()``);
(b) ``pi.bridges.multimarginal`` with reference refinement, from a wrong start; and, as a
ceiling for (b), bridges with the TRUE Lotka–Volterra reference (no refinement).
Metric: exact W1 (POT EMD) between the held-out snapshot and 50 draws of the fitted
bridge's marginal at that time (``trajectories=False``: the interval's bridge started from
its left training snapshot), mean and spread over 5 independent draws of 50.

Reference numbers (README of the data, same W1): fresh samples from the TRUE drift
t=1: 0.044, t=3: 0.069, t=5: 0.102, t=7: 0.234; nearest-training-snapshot baseline 1.198,
0.613, 0.664, 1.797. Goal: (b) within 2x of the true-drift numbers at every held-out time
and clearly better than (a).

Run: ``.venv/bin/python inference/mmsb_lotka_volterra.py`` (about 20-30 minutes on a shared
2-core machine); ``--quick`` for a smoke run. Writes docs/results/mmsb_lotka_volterra.md,
mmsb_lotka_volterra.png (trajectories), mmsb_lotka_volterra_params.png and
mmsb_repressilator.png.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import jax
import jax.numpy as jnp

import probinfer as pi

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "reference"
RESULTS = ROOT / "docs" / "results"
TRUE_LV = {"alpha": 1.0, "beta": 0.4, "gamma": 0.4, "delta": 0.1}
TRUE_DRIFT_W1 = {1: 0.044, 3: 0.069, 5: 0.102, 7: 0.234}
NEAREST_W1 = {1: 1.198, 3: 0.613, 5: 0.664, 7: 1.797}


def evaluate(fit, held, times, draws, num=50):
    out = {}
    for k, t in zip(held, times):
        w = [pi.bridges.wasserstein(
            np.asarray(fit.sample(jax.random.key(100 + s), [t], num, trajectories=False)[:, 0]),
            held[k]) for s in range(draws)]
        out[k] = (float(np.mean(w)), float(np.std(w, ddof=1)) if draws > 1 else 0.0)
    return out


def fit_all(train, times, reference, settings, refinements, seed):
    start = time.perf_counter()
    fit = pi.bridges.multimarginal(train, times, reference=reference, sigma=0.1,
                                   num_refinements=refinements, key=jax.random.key(seed),
                                   progress_bar=True, **settings)
    return fit, time.perf_counter() - start


def lotka_volterra(args, settings, lines):
    data = np.load(DATA / "lotka_volterra_snapshots.npy")
    train = [data[i] for i in range(0, data.shape[0], 2)]
    t_train = np.arange(0, data.shape[0], 2, dtype=float)
    held = {i: data[i] for i in range(1, data.shape[0], 2)}
    t_held = [float(i) for i in held]
    start = pi.bridges.LotkaVolterra(alpha=0.5, beta=0.5, gamma=0.5, delta=0.5)
    runs = {}
    runs["(a) Brownian reference"] = fit_all(train, t_train, pi.bridges.Brownian(), settings, 0, 1)
    runs["(b) refined LV reference"] = fit_all(train, t_train, start, settings,
                                               args.refinements, 2)
    runs["true LV reference (ceiling of b)"] = fit_all(train, t_train, pi.bridges.LotkaVolterra(),
                                                       settings, 0, 3)
    w1 = {name: evaluate(fit, held, t_held, args.draws) for name, (fit, _) in runs.items()}
    lines += ["## Lotka–Volterra", "",
              f"Train t = {t_train.astype(int).tolist()}, held out t = {list(held)}. W1 mean ± sd "
              f"over {args.draws} draws of 50. Start of (b): alpha = beta = gamma = delta = 0.5; "
              f"{args.refinements} refinement rounds.", "",
              "| method | " + " | ".join(f"t={k}" for k in held) + " | fit time (s) |",
              "|---|" + "---:|" * (len(held) + 1)]
    lines.append("| true drift, fresh samples (README) | "
                 + " | ".join(f"{TRUE_DRIFT_W1[k]:.3f}" for k in held) + " | |")
    lines.append("| nearest training snapshot (README) | "
                 + " | ".join(f"{NEAREST_W1[k]:.3f}" for k in held) + " | |")
    for name, (fit, seconds) in runs.items():
        lines.append(f"| {name} | " + " | ".join(f"{w1[name][k][0]:.3f} ± {w1[name][k][1]:.3f}"
                                                  for k in held) + f" | {seconds:.0f} |")
    refined = runs["(b) refined LV reference"][0]
    ratio = [w1["(b) refined LV reference"][k][0] / TRUE_DRIFT_W1[k] for k in held]
    better = [w1["(b) refined LV reference"][k][0] < w1["(a) Brownian reference"][k][0]
              for k in held]
    lines += ["", f"Ratio (b) / true drift: " + ", ".join(
        f"t={k}: {r:.1f}×" for k, r in zip(held, ratio))
        + f". Goal (≤ 2× at every time): {'met' if max(ratio) <= 2 else 'NOT met'}. "
        f"(b) better than (a) at {sum(better)} of {len(better)} held-out times.", "",
        "Recovered parameters (each refinement round):", "",
        "| round | alpha | beta | gamma | delta |", "|---:|---:|---:|---:|---:|"]
    for r, p in enumerate(refined.parameter_history):
        lines.append(f"| {r} | " + " | ".join(f"{float(p[k]):.3f}" for k in TRUE_LV) + " |")
    lines.append("| truth | " + " | ".join(f"{v:.3f}" for v in TRUE_LV.values()) + " |")
    lines.append("")
    plot_lv(runs, data, t_train, held)
    plot_params(refined)
    return lines


def repressilator(args, settings, lines):
    data = np.load(DATA / "repressilator_snapshots.npy")
    spacing = 0.75
    train = [data[i] for i in range(0, data.shape[0], 2)]
    t_train = spacing * np.arange(0, data.shape[0], 2, dtype=float)
    held = {i: data[i] for i in range(1, data.shape[0], 2)}
    t_held = [spacing * i for i in held]
    # The paper's start (Shen et al. 2025, experiments_helper.get_settings): a near-Brownian
    # reference, beta = gamma = 1e-5, n = k = 1.
    start = pi.bridges.Repressilator(beta=1e-5, n=1.0, k=1.0, gamma=1e-5)
    runs = {"(a) Brownian reference": fit_all(train, t_train, pi.bridges.Brownian(), settings,
                                              0, 4),
            "(b) refined repressilator reference": fit_all(train, t_train, start, settings,
                                                           args.refinements, 5)}
    w1 = {name: evaluate(fit, held, t_held, args.draws) for name, (fit, _) in runs.items()}
    nearest = {k: float(np.mean([pi.bridges.wasserstein(data[k - 1], held[k]),
                                 pi.bridges.wasserstein(data[k + 1], held[k])]))
               for k in held}
    lines += ["## Repressilator", "",
              f"Snapshot k at t = {spacing} k; train on even k, evaluate on odd k. The true "
              "parameters are not published with the data, so only W1 is reported. Start of "
              "(b), as in the paper: beta = gamma = 1e-5, n = k = 1 (near-Brownian).", "",
              "| method | " + " | ".join(f"k={k}" for k in held) + " | fit time (s) |",
              "|---|" + "---:|" * (len(held) + 1)]
    lines.append("| neighbouring training snapshot (mean of both) | "
                 + " | ".join(f"{nearest[k]:.3f}" for k in held) + " | |")
    for name, (fit, seconds) in runs.items():
        lines.append(f"| {name} | " + " | ".join(f"{w1[name][k][0]:.3f} ± {w1[name][k][1]:.3f}"
                                                  for k in held) + f" | {seconds:.0f} |")
    fit = runs["(b) refined repressilator reference"][0]
    lines += ["", "Refined repressilator parameters: " + ", ".join(
        f"{k} = {float(v):.3f}" for k, v in fit.reference_parameters.items()), ""]
    plot_repressilator(runs, data, spacing)
    return lines


def plot_lv(runs, data, t_train, held):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 4), sharex=True,
                             sharey=True)
    grid = np.linspace(t_train[0], t_train[-1], 161)
    for ax, (name, (fit, _)) in zip(axes, runs.items()):
        paths = np.asarray(fit.sample(jax.random.key(7), grid, 30))
        for p in paths:
            ax.plot(p[:, 0], p[:, 1], color="0.4", lw=0.5, alpha=0.5)
        for i in range(data.shape[0]):
            is_held = i in held
            ax.scatter(data[i, :, 0], data[i, :, 1], s=6, marker="x" if is_held else "o",
                       color=plt.cm.viridis(i / (data.shape[0] - 1)),
                       label=None if i > 1 else ("held out" if is_held else "training"))
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("prey")
    axes[0].set_ylabel("predator")
    axes[0].legend(fontsize=8)
    fig.suptitle("Lotka–Volterra: bridge trajectories from t = 0 (grey), snapshots (colour = time)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(RESULTS / "mmsb_lotka_volterra.png", dpi=110)
    plt.close(fig)


def plot_params(fit):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    rounds = np.arange(len(fit.parameter_history))
    for k, truth in TRUE_LV.items():
        line, = ax.plot(rounds, [float(p[k]) for p in fit.parameter_history], marker="o",
                        label=k)
        ax.axhline(truth, color=line.get_color(), ls=":", lw=1)
    ax.set_xlabel("refinement round")
    ax.set_ylabel("parameter (dotted: truth)")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(RESULTS / "mmsb_lotka_volterra_params.png", dpi=110)
    plt.close(fig)


def plot_repressilator(runs, data, spacing):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t_all = spacing * np.arange(data.shape[0])
    grid = np.linspace(0.0, spacing * 2 * ((data.shape[0] - 1) // 2), 121)
    fig, axes = plt.subplots(len(runs), 3, figsize=(11, 3 * len(runs)), sharex=True)
    for row, (name, (fit, _)) in enumerate(runs.items()):
        paths = np.asarray(fit.sample(jax.random.key(8), grid, 20))
        for gene in range(3):
            ax = axes[row, gene]
            ax.plot(grid, paths[:, :, gene].T, color="0.4", lw=0.5, alpha=0.5)
            for i, t in enumerate(t_all):
                ax.scatter(np.full(data.shape[1], t), data[i, :, gene], s=4,
                           color="C0" if i % 2 == 0 else "C3")
            ax.set_title(f"{name}: gene {gene + 1}", fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("t (blue: training, red: held out)")
    fig.tight_layout()
    fig.savefig(RESULTS / "mmsb_repressilator.png", dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--refinements", type=int, default=20)
    parser.add_argument("--draws", type=int, default=5)
    args = parser.parse_args()
    # 100 Euler steps per interval (h = 0.02 on Lotka–Volterra, the paper's step): at 40
    # (h = 0.05) the Euler error of the true drift alone is 0.055 at t = 1 against 0.044.
    # 8 IPF iterations: with fewer, the bridges of a wrong reference stay close to it and
    # every refinement round moves the parameters less.
    settings = dict(num_ipf_iterations=8, num_steps=100, num_paths=256, ridge=1e-2)
    if args.quick:
        settings = dict(num_ipf_iterations=2, num_steps=10, num_paths=64, ridge=1e-2)
        args.refinements, args.draws = 2, 2
    command = ".venv/bin/python inference/mmsb_lotka_volterra.py" + (
        " --quick" if args.quick else f" --refinements {args.refinements} --draws {args.draws}")
    lines = ["# Multi-marginal Schrödinger bridges with reference refinement", "",
             f"Generated by `{command}` on {jax.devices()[0].platform} (float32). Settings: "
             + ", ".join(f"{k} = {v}" for k, v in settings.items())
             + ", sigma = 0.1, drift model RandomFeatures(200 features) + reference drift.", ""]
    figures = ["![trajectories](mmsb_lotka_volterra.png)", "",
               "![parameters](mmsb_lotka_volterra_params.png)", ""]
    lines = lotka_volterra(args, settings, lines)
    # Written after each data set, so a long run leaves the finished part.
    (RESULTS / "mmsb_lotka_volterra.md").write_text("\n".join(lines + figures))
    print("\n".join(lines), flush=True)
    lines = repressilator(args, settings, lines)
    figures += ["![repressilator](mmsb_repressilator.png)", ""]
    (RESULTS / "mmsb_lotka_volterra.md").write_text("\n".join(lines + figures))
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
