"""Reproduce Boettiger, Mangel & Munch (2015): GP dynamic programming avoids tipping points.

Truth: Allee ("Allen") model r = 2, K = 8, C = 5, lognormal noise σ = 0.05. Data: 40
unharvested stocks from x = 5.5. Candidates fitted to the same data: the GP (SE kernel,
zero mean, (0, 0) known, hyperparameters integrated by tempered SMC), the Allee model
integrated over its posterior ("Allee"), the Allee model at its maximum-likelihood estimate
("MLE"), Ricker and Myers integrated over their posteriors (the paper's uniform priors).
Each model's policy (50-point state and harvest grids on [0, 15], catch min(x, h), discount
factor 0.99) manages the true stock for 50 years from x = 10 in 100 replicates with common
random numbers; the table gives the mean NPV ratio to the true-model policy with its
standard error and the fraction of replicates extinct in year 50.

The paper reports one data set; here ``--datasets`` independent data sets are drawn, each
with its own table, and the spread across data sets is shown with the per-data-set numbers.

Sensitivity (``--sensitivity``): σ ∈ {0.01, 0.05, 0.1} (with C = 4, as in the paper's
supplement) and C ∈ {1, …, 5} (σ = 0.05), one data set each. To keep the run within
minutes on a shared 2-core machine the sensitivity runs fit the parametric models by
maximum likelihood and the GP at its MAP hyperparameters (no posterior sampling).

Run: ``.venv/bin/python inference/gpdp_fisheries.py --datasets 1 --sensitivity``.
Writes docs/results/gpdp_fisheries.md and .png.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import jax

import probinfer as pi

PAPER = {"Allee": 0.99, "GP": 0.94, "MLE": 0.53, "Myers": 0.23, "Ricker": 0.22}
OUT = Path(__file__).resolve().parents[1] / "docs" / "results"


def _markdown(table, columns, floatfmt="{:.3f}"):
    lines = ["| model | " + " | ".join(columns) + " |",
             "|---|" + "---|" * len(columns)]
    for name, row in table.iterrows():
        cells = []
        for c in columns:
            v = row[c]
            cells.append(floatfmt.format(v) if isinstance(v, (float, np.floating)) else str(v))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fast_models():
    def gp_map(key, x_t, x_next):
        return pi.gpdp.GPDynamics.fit(x_t, x_next, hyperparameters="map", key=key)
    return {"GP (MAP)": gp_map, "Allee (MLE)": pi.gpdp.Allee, "Ricker (MLE)": pi.gpdp.Ricker,
            "Myers (MLE)": pi.gpdp.Myers}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=1)
    parser.add_argument("--replicates", type=int, default=100)
    parser.add_argument("--sensitivity", action="store_true")
    parser.add_argument("--particles", type=int, default=500,
                        help="SMC particles for each posterior (library default 1000/2000)")
    parser.add_argument("--quick", action="store_true", help="1 data set, 20 replicates")
    args = parser.parse_args(argv)
    if args.quick:
        args.datasets, args.replicates = 1, 20
    start = time.time()
    import matplotlib
    matplotlib.use("Agg")

    setting = pi.gpdp.paper_setting()
    kwargs = dict(setting.compare_kwargs(), num_replicates=args.replicates)
    models = _study_models(setting, args.particles)
    header = [f"<!-- produced by: .venv/bin/python inference/gpdp_fisheries.py "
              f"{' '.join(sys.argv[1:] if argv is None else argv)} -->",
              "# GP dynamic programming vs parametric models (Boettiger, Mangel & Munch 2015)",
              "",
              "Truth Allee(r=2, K=8, C=5, σ=0.05); 40 unharvested observations from 5.5; "
              "grids of 50 points on [0, 15]; reward min(x, h); discount factor 0.99 (solving "
              f"and NPV); {args.replicates} replicates × 50 years from x = 10, common random "
              "numbers. `npv_ratio` = mean over replicates of NPV / NPV(true-model policy); "
              "`extinction_fraction` = share of replicates with stock < 0.15 in year 50; "
              "`escapement` = median target escapement of the policy. Posteriors by tempered "
              f"SMC with {args.particles} particles (GP hyperparameters and parametric models).",
              ""]
    sections, tables, first = [], [], None
    for d in range(args.datasets):
        data = setting.observations(jax.random.key(1000 + d))
        t0 = time.time()
        table, details = pi.gpdp.compare(jax.random.key(2000 + d), setting.truth, data,
                                         models, return_details=True, **kwargs)
        print(f"data set {d} ({time.time() - t0:.0f} s)\n{table}", flush=True)
        tables.append(table)
        if first is None:
            first = (data, details)
            _figures(data, details)
        x_t, x_next = np.asarray(data[:-1]), np.asarray(data[1:])
        fits = {name: getattr(pi.gpdp, name).fit(x_t, x_next)
                for name in ("Ricker", "Myers", "Allee")}
        shown = table.copy()
        shown["paper"] = [PAPER.get(n, 1.0 if n == "true model" else float("nan"))
                          for n in shown.index]
        sections += [f"## Data set {d} (key {1000 + d}; {time.time() - t0:.0f} s)", "",
                     _markdown(shown, ["npv_ratio", "npv_ratio_se", "extinction_fraction",
                                       "escapement", "paper"]), "",
                     "Model selection on these data (MLE fits; lower is preferred): "
                     + ", ".join(f"{n}: AIC {m.aic(x_t, x_next):.1f}, BIC "
                                 f"{m.bic(x_t, x_next):.1f}" for n, m in fits.items()), ""]
        _write(header, sections, start)

    if len(tables) > 1:
        ratios = np.stack([t["npv_ratio"].to_numpy() for t in tables])
        ext = np.stack([t["extinction_fraction"].to_numpy() for t in tables])
        sections += ["## Across data sets", "",
                     "| model | npv_ratio per data set | mean | extinction per data set | paper |",
                     "|---|---|---|---|---|"]
        for i, name in enumerate(tables[0].index):
            sections.append(f"| {name} | {', '.join(f'{v:.3f}' for v in ratios[:, i])} | "
                            f"{ratios[:, i].mean():.3f} | "
                            f"{', '.join(f'{v:.2f}' for v in ext[:, i])} | "
                            f"{PAPER.get(name, 1.0 if name == 'true model' else float('nan'))} |")
        sections.append("")
        _write(header, sections, start)

    if args.sensitivity:
        fast = _fast_models()
        sections += ["## Sensitivity (MLE / GP-MAP fits, one data set per setting)", "",
                     "Entries: npv_ratio (extinction_fraction).", "",
                     "| σ | C | " + " | ".join(fast) + " |",
                     "|---|---|" + "---|" * len(fast)]
        settings = [(s, 4.0) for s in (0.01, 0.05, 0.1)] + [(0.05, float(c)) for c in range(1, 6)]
        for i, (sigma, C) in enumerate(settings):
            s = pi.gpdp.paper_setting(sigma=sigma, C=C)
            data = s.observations(jax.random.key(3000 + i))
            t0 = time.time()
            table = pi.gpdp.compare(jax.random.key(4000 + i), s.truth, data, fast,
                                    **dict(s.compare_kwargs(), num_replicates=args.replicates))
            print(f"sensitivity σ={sigma} C={C} ({time.time() - t0:.0f} s)\n{table}", flush=True)
            cells = [f"{table.loc[n, 'npv_ratio']:.2f} ({table.loc[n, 'extinction_fraction']:.2f})"
                     for n in fast]
            sections.append(f"| {sigma} | {C:g} | " + " | ".join(cells) + " |")
            _write(header, sections, start)
        sections.append("")
    _write(header, sections, start)


def _study_models(setting, particles):
    """The paper's candidates with ``particles`` SMC particles for every posterior."""
    def gp(key, x_t, x_next):
        return pi.gpdp.GPDynamics.fit(x_t, x_next, key=key, num_particles=particles)

    def posterior(cls):
        return lambda key, x_t, x_next: cls.fit_posterior(key, x_t, x_next,
                                                          num_particles=particles)
    models = {"GP": gp, "Allee": posterior(pi.gpdp.Allee), "MLE": pi.gpdp.Allee,
              "Ricker": posterior(pi.gpdp.Ricker), "Myers": posterior(pi.gpdp.Myers)}
    assert list(models) == list(setting.models)
    return models


def _figures(data, details):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    shown = {n: m for n, m in details["models"].items() if n != "MLE"}
    pi.gpdp.plot_dynamics(shown, data[:-1], data[1:], ax=axes[0, 0])
    axes[0, 0].set_title("fitted maps (data set 0)")
    pi.gpdp.plot_policies(details["policies"], ax=axes[0, 1])
    axes[0, 1].set_title("policies")
    names = list(details["npv"])
    ref = details["npv"]["true model"]
    axes[1, 0].boxplot([details["npv"][n] / ref for n in names[1:]], tick_labels=names[1:])
    axes[1, 0].set_ylabel("NPV / NPV(true policy)")
    axes[1, 0].set_title("per-replicate NPV ratio")
    for i, n in enumerate(names):
        axes[1, 1].plot(details["stock"][n][:30].T, color=f"C{i}", alpha=0.15, lw=0.8)
        axes[1, 1].plot([], [], color=f"C{i}", label=n)
    axes[1, 1].set_xlabel("year")
    axes[1, 1].set_ylabel("stock")
    axes[1, 1].legend(fontsize=7)
    axes[1, 1].set_title("managed stocks (30 replicates each)")
    fig.tight_layout()
    OUT.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT / "gpdp_fisheries.png", dpi=110)
    plt.close(fig)
    traj = pi.gpdp.plot_trajectories(details["stock"])
    traj.savefig(OUT / "gpdp_fisheries_trajectories.png", dpi=100)
    plt.close(traj)


def _write(header, sections, start):
    """Rewrite the results file after every section, so a partial run leaves its numbers."""
    footer = ["![study](gpdp_fisheries.png)", "",
              "![trajectories](gpdp_fisheries_trajectories.png)", "",
              f"Run time so far {time.time() - start:.0f} s (2 shared CPU cores)."]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "gpdp_fisheries.md").write_text("\n".join(header + sections + footer) + "\n")


if __name__ == "__main__":
    main()
