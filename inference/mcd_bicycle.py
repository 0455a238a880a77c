"""Counterfactual bicycle design: minimal changes that make a real bicycle self-stable.

The linearised Whipple bicycle (Meijaard et al. 2007), from the PyPI package
``bicycleparameters`` (Moore), is self-stable at a forward speed v when every eigenvalue
of its state matrix A(v) has a negative real part. The query is the package's benchmark
bicycle with rider, self-stable only between about 4.3 and 6.0 m/s. The request: a bicycle
that is self-stable over the whole range 3.5–7.0 m/s, changing as little as possible of
the wheelbase w, trail c, steer-axis tilt lam, rear frame/rider centre of mass (xB, zB),
front assembly (xH, zH, mH) and front wheel mass mF; the wheel radii and the rider+frame
mass are frozen. The data set (plausibility model, manifold distance, bounds) is 200
perturbations (5 % relative noise on every feature) of each of the ten shipped bicycles.
The predictor computes max_v max Re eig A(v) on a grid of the requested speeds; the
target asks for it to be below −0.01.

Both searches of ``pi.design.counterfactuals`` run at the same budget (SMC also at four
times it); the table lists the
recommended designs with their changed parameters, and the figure their eigenvalue real
parts against speed.

Needs ``bicycleparameters`` (the ``bench`` extra's peers): ``.venv/bin/pip install
bicycleparameters``.

Run:  .venv/bin/python inference/mcd_bicycle.py [--budget 3000]
Writes docs/results/mcd_bicycle.md and docs/results/mcd_bicycle.png.
"""

from __future__ import annotations

import argparse
import glob
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # see inference/mcd_2d.py

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
FEATURES = ["w", "c", "lam", "rR", "rF", "xB", "zB", "mB", "xH", "zH", "mH", "mF"]
FROZEN = ["rR", "rF", "mB"]
SPEED_RANGE = (3.5, 7.0)
MARGIN = -0.01
PER_BICYCLE = 200
NUM_COUNTERFACTUALS = 5


def shipped_bicycles():
    import bicycleparameters
    from bicycleparameters.io import load_parameter_text_file
    root = os.path.join(os.path.dirname(bicycleparameters.__file__), "app-data", "bicycles")
    bicycles = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # uncertainties warns about zero standard deviations
        for path in sorted(glob.glob(os.path.join(root, "*", "Parameters", "*Benchmark.txt"))):
            name = os.path.basename(path).replace("Benchmark.txt", "")
            params = load_parameter_text_file(path)
            bicycles[name] = {k: float(getattr(v, "nominal_value", v)) for k, v in
                              params.items()}
    return bicycles


def max_real_parts(params: dict, speeds: np.ndarray) -> np.ndarray:
    """max Re eig A(v) at each speed (negative: self-stable)."""
    from bicycleparameters.bicycle import ab_matrix, benchmark_par_to_canonical
    mass, c1, k0, k2 = benchmark_par_to_canonical(dict(params))
    a = np.stack([ab_matrix(mass, c1, k0, k2, v, params["g"])[0] for v in speeds])
    return np.linalg.eigvals(a).real.max(axis=1)


def make_predictor(base: dict):
    speeds = np.linspace(*SPEED_RANGE, 15)

    def predict(designs: pd.DataFrame) -> pd.DataFrame:
        out = np.empty(len(designs))
        for i, row in enumerate(designs[FEATURES].itertuples(index=False)):
            params = dict(base, **dict(zip(FEATURES, map(float, row))))
            out[i] = max_real_parts(params, speeds).max()
        return pd.DataFrame({"max_real_eig": out})

    return predict


def stable_range(params: dict):
    speeds = np.linspace(0.0, 10.0, 401)
    stable = speeds[max_real_parts(params, speeds) < 0]
    return (float(stable.min()), float(stable.max())) if stable.size else (np.nan, np.nan)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import probinfer as pi

    bicycles = shipped_bicycles()
    base = bicycles["Benchmark"]
    rng = np.random.default_rng(args.seed)
    rows = []
    for params in bicycles.values():
        nominal = np.array([params[f] for f in FEATURES])
        rows.append(nominal * (1.0 + 0.05 * rng.standard_normal((PER_BICYCLE, len(FEATURES)))))
    data = pd.DataFrame(np.vstack(rows), columns=FEATURES)
    query = {f: base[f] for f in FEATURES}
    predict = make_predictor(base)
    low, high = stable_range(base)
    print(f"query (Benchmark bicycle) self-stable on [{low:.3f}, {high:.3f}] m/s", flush=True)

    results, walls = {}, {}
    runs = [("nsga2", args.budget), ("smc", args.budget), ("smc", 4 * args.budget)]
    for method, budget in runs:
        label = f"{method} (budget {budget})"
        start = time.perf_counter()
        cf = pi.design.counterfactuals(query, data, predict, {"max_real_eig": (None, MARGIN)},
                                       NUM_COUNTERFACTUALS, key=args.seed, method=method,
                                       budget=budget, frozen=FROZEN)
        walls[label] = time.perf_counter() - start
        results[label] = cf
        print(label, f"{walls[label]:.1f} s", cf.attrs["num_predictions"], "predictions",
              flush=True)
    write_results(pi, results, walls, base, query, args)


def write_results(pi, results, walls, base, query, args):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    RESULTS.mkdir(parents=True, exist_ok=True)
    low, high = stable_range(base)
    lines = ["# Counterfactual bicycles: self-stable from 3.5 to 7.0 m/s", "",
             f"Produced by `.venv/bin/python inference/mcd_bicycle.py --budget {args.budget}` "
             f"(bicycleparameters {__import__('bicycleparameters').__version__}). Query: the "
             f"benchmark bicycle with rider, self-stable on [{low:.2f}, {high:.2f}] m/s. "
             f"Frozen: {', '.join(FROZEN)}. Data: {PER_BICYCLE} perturbations of each of the "
             f"10 shipped bicycles. Stable ranges on a 0.025 m/s grid.", "",
             "| method | predicted designs | wall s | valid found | hypervolume | "
             "returned valid | λ reached (SMC, of 1000) |",
             "|---|---|---|---|---|---|---|"]
    for method, cf in results.items():
        lines.append(f"| {method} | {cf.attrs['num_predictions']} | {walls[method]:.1f} | "
                     f"{cf.attrs['num_candidates']} | {cf.attrs['hypervolume']:.4f} | "
                     f"{int(cf['valid'].sum())}/{len(cf)} | "
                     f"{cf.attrs.get('lambda_reached', float('nan')):.3g} |")
    lines += ["", "Returned designs (changed parameters: query → new value):", "",
              "| method | # | valid | changes | Gower | changed | plausibility | "
              "stable range m/s |",
              "|---|---|---|---|---|---|---|---|"]
    curves = []
    for method, cf in results.items():
        for i, row in cf.iterrows():
            params = dict(base, **{f: float(row[f]) for f in FEATURES})
            changes = ", ".join(f"{f} {query[f]:.3g}→{row[f]:.3g}" for f in row["changed"])
            lo, hi = stable_range(params)
            lines.append(f"| {method} | {i} | {row['valid']} | {changes} | "
                         f"{row['proximity']:.4f} | "
                         f"{row['sparsity']} | {row['plausibility']:.2f} | "
                         f"[{lo:.2f}, {hi:.2f}] |")
            if i < 2 and row["valid"]:
                curves.append((f"{method} #{i}", params))
    (RESULTS / "mcd_bicycle.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    speeds = np.linspace(0.0, 10.0, 401)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax.plot(speeds, max_real_parts(base, speeds), color="k", lw=2, label="query (Benchmark)")
    for label, params in curves:
        ax.plot(speeds, max_real_parts(params, speeds), label=label)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.axvspan(*SPEED_RANGE, color="C2", alpha=0.1, label="requested range")
    ax.set_ylim(-4, 4)
    ax.set_xlabel("speed v (m/s)")
    ax.set_ylabel("max Re eig A(v) (1/s)")
    ax.legend(fontsize=7)
    for method, cf in results.items():
        pi.design.plot_pareto(cf, "proximity", "plausibility", ax=ax2, label=method)
    fig.tight_layout()
    fig.savefig(RESULTS / "mcd_bicycle.png", dpi=110)


if __name__ == "__main__":
    main()
