"""l_p sensitivity sampling: rows needed for a (1 + eps)-approximate l_p regression.

Matrices with heavy and coherent rows: ``n`` Gaussian rows scaled by |t(1.5)| factors (a few
rows are much heavier than the rest), plus ``k`` coherent rows that alone span the last
column (a uniform sample misses them and the sampled problem loses a direction). The
response is ``b = A x + Laplace noise``. For p in {1, 1.5, 3}, each sampling method of
``pi.importance.lp_regression`` (sensitivity, Lewis, root-leverage,
leverage+sensitivity) and uniform sampling (``method="sensitivity"`` with constant
sensitivities), and a growing number of sampled rows m, we solve the sampled problem in
``trials`` independent draws and record the share of draws whose solution has
``||A x_m - b||_p <= (1 + eps) min_x ||A x - b||_p``. The table gives the smallest m on
the grid where at least 80% of draws succeed ("> max" when none on the grid does), with the
median relative error and the median measured distortion range at that m.

Run: ``.venv/bin/python inference/lp_sampling.py [--trials 6]``; writes
``docs/results/lp_sampling.md`` and ``docs/results/lp_sampling.png``. Each p can run in its own
process (``--p 1.5`` writes ``inference/_work/lp_sampling_p1.5.json``; ``--merge`` then
writes the table and figure from those files).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import jax

import probinfer as pi

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results"
WORK = Path(__file__).resolve().parent / "_work"
N, D, K = 200, 4, 4
EPS = 0.1
GRID = (12, 24, 48, 96, 192)
PS = (1.0, 1.5, 3.0)
METHODS = ("uniform", "root-leverage", "lewis", "sensitivity", "leverage+sensitivity")


def problem(seed=0):
    rng = np.random.default_rng(seed)
    A = np.zeros((N + K, D))
    A[:N, :D - 1] = rng.standard_normal((N, D - 1)) * np.abs(rng.standard_t(1.5, (N, 1)))
    A[N:, D - 1] = rng.uniform(1.0, 2.0, K)          # coherent rows: the only ones in e_D
    A[N:, :D - 1] = 0.1 * rng.standard_normal((K, D - 1))
    b = A @ np.ones(D) + rng.laplace(size=N + K)
    return A, b


def run_p(p, trials):
    """Rows-needed search for one p; returns (rows, curves, seconds)."""
    A, b = problem()
    M = np.c_[A, b]
    rows, curves = [], {}
    t_all = time.perf_counter()
    sens = np.asarray(pi.importance.lp_sensitivities(M, p, method="exact"))
    print(f"p={p}: exact sensitivities of [A b] in {time.perf_counter() - t_all:.1f}s, "
          f"total {sens.sum():.2f}", flush=True)
    for method in METHODS:
        kw = ({"sensitivities": np.ones(M.shape[0])} if method == "uniform"
              else {"sensitivities": sens} if "sensitivity" in method else {})
        api_method = "sensitivity" if method == "uniform" else method
        needed, detail = None, None
        for m in GRID:
            errs, dist = [], []
            for t in range(trials):
                key = jax.random.key(10_000 * int(10 * p) + 100 * m + t)
                res = pi.importance.lp_regression(key, A, b, p, m, api_method, num_probes=20,
                                                  **kw)
                errs.append(res.relative_error)
                dist.append(res.distortion_range)
            success = float(np.mean(np.array(errs) <= EPS))
            curves.setdefault(method, []).append((m, success))
            print(p, method, m, f"success {success:.2f}", f"median err {np.median(errs):.3f}",
                  flush=True)
            if success >= 0.8:
                needed = m
                detail = (float(np.median(errs)), float(np.median([d[0] for d in dist])),
                          float(np.median([d[1] for d in dist])))
                break
        rows.append((p, method, float(sens.sum()), needed, detail))
    return rows, curves, time.perf_counter() - t_all


def write(results, trials):
    rows = [r for res in results for r in res["rows"]]
    wall = sum(res["seconds"] for res in results)
    lines = [
        "# l_p sensitivity sampling: rows for a (1 + eps)-approximate l_p regression",
        "",
        f"Command: `.venv/bin/python inference/lp_sampling.py --trials {trials} --p P` for P in "
        f"1.0, 1.5, 3.0 (one process each), then `... --merge --trials {trials}` (the same as "
        f"one run without --p) — CPU (2 cores shared with many other jobs), float64, "
        f"{wall:.0f} s of wall time summed over the values of p.",
        "",
        f"Matrix: n = {N} Gaussian rows in the first {D - 1} columns scaled by |t(1.5)| factors, "
        f"plus {K} coherent rows that alone carry column {D}; b = A·1 + Laplace noise; "
        f"eps = {EPS}. 'rows needed': smallest m on the grid {GRID} where at least 80% of "
        f"{trials} independent samples give a solution within (1 + eps) of the optimal "
        "l_p cost (stopping at the first such m); 'median error' and 'distortion' (median "
        "min and max of ||S[A b]v||_p / ||[A b]v||_p over 20 random probes refined by local "
        "search) at that m. Total sensitivity: exact (LP for p = 1, convex programs for "
        "p > 1) of [A b]; uniform sampling is `method=\"sensitivity\"` with constant "
        "sensitivities.",
        "",
        "| p | method | total sensitivity | rows needed | median rel. error | distortion "
        "(min, max) |",
        "|---:|---|---:|---:|---:|---|",
    ]
    for p, method, total, needed, detail in rows:
        if needed is None:
            lines.append(f"| {p} | {method} | {total:.2f} | > {GRID[-1]} | — | — |")
        else:
            lines.append(f"| {p} | {method} | {total:.2f} | {needed} | {detail[0]:.3f} | "
                         f"({detail[1]:.2f}, {detail[2]:.2f}) |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lp_sampling.md").write_text("\n".join(lines) + "\n")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4 * len(results), 3.5), sharey=True,
                             squeeze=False)
    for ax, res in zip(axes[0], results):
        for method in METHODS:
            pts = np.array(res["curves"][method])
            ax.semilogx(pts[:, 0], pts[:, 1], "o-", label=method)
        ax.set_title(f"p = {res['p']}")
        ax.set_xlabel("sampled rows m")
        ax.axhline(0.8, color="k", lw=0.5, ls="--")
    axes[0, 0].set_ylabel(f"share of samples within 1 + {EPS}")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "lp_sampling.png", dpi=110)


def main():
    jax.config.update("jax_enable_x64", True)
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--p", type=float, default=None, help="run one p into inference/_work")
    parser.add_argument("--merge", action="store_true", help="table from inference/_work")
    args = parser.parse_args()
    if args.merge:
        results = [json.loads((WORK / f"lp_sampling_p{p}.json").read_text()) for p in PS]
        write(results, args.trials)
        return
    results = []
    for p in ([args.p] if args.p is not None else PS):
        rows, curves, seconds = run_p(p, args.trials)
        res = {"p": p, "rows": rows, "curves": curves, "seconds": seconds}
        results.append(res)
        if args.p is not None:
            WORK.mkdir(exist_ok=True)
            (WORK / f"lp_sampling_p{p}.json").write_text(json.dumps(res))
    if args.p is None:
        write(results, args.trials)


if __name__ == "__main__":
    main()
