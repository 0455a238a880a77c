"""posteriordb suite: default tempered SMC and waste-free SMC vs reference posteriors and NUTS.

For each of the thirteen posteriordb posteriors in ``inference/posteriordb/models.py``
(NumPyro versions of the Stan programs; data and reference moments from posteriordb's
10 000 reference draws, stored beside them):

1. ``pi.smc.tempered(key, pm, N)`` with default settings, twice (keys 0 and 1), and the
   same with ``waste_free=True``. Against the reference: the largest |mean − ref| / ref-sd
   and the range of sd / ref-sd over parameters and both runs; the log-evidence when the
   two runs agree to 0.5 nats; a stall (``RuntimeError``) is reported as such.
2. NumPyro NUTS (one chain, default adaptation) on the same model.
3. Cost per effective sample. SMC: gradient evaluations in the moves per run
   (``info.num_gradient_evaluations``; the default move uses gradients on every model here)
   divided by an ESS measured against the reference, ``ESS = 1 / (mean z² − mean
   1/ESS_ref)`` with ``z = (mean − ref) / ref-sd`` over parameters and runs (the harmonic
   mean over parameters of the per-parameter ESS; bias counts against it). NUTS: leapfrog
   steps (= gradient evaluations, warm-up included) divided by ArviZ's ESS of the mean,
   harmonic mean over parameters. Also NUTS's max |mean − ref| / ref-sd using only the
   draws that fit in SMC's evaluation budget (warm-up counted): accuracy at matched cost.

Goal (issue 19): every model within 0.2 ref-sd on every mean, sd ratios in [0.8, 1.25],
no stall, evaluations per effective sample within 3x of NUTS.

``--models ''`` runs nothing and rewrites the table from the stored results.

Run: ``.venv/bin/python inference/posteriordb_suite.py`` (writes
``docs/results/posteriordb_suite.md``; float64 on CPU). Each model's rows are stored under
``inference/_work/posteriordb_suite/`` with a ``--label`` (default: the git commit), and
the table gathers every stored model with that label, so ``--models a,b`` subsets can run
in parallel processes and be combined. NUTS runs are cached there too (they do not depend
on SMC's defaults). Most of the time is XLA compilation (one SMC step function, one
waste-free one and NUTS per model): the second SMC run of a model takes seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import jax

jax.config.update("jax_enable_x64", True)

import numpyro  # noqa: E402

import probinfer as pi  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "results" / "posteriordb_suite.md"
CACHE = ROOT / "inference" / "_work" / "posteriordb_suite"
sys.path.insert(0, str(ROOT / "inference" / "posteriordb"))

from models import SUITE, flatten_draws  # noqa: E402

EVIDENCE_AGREEMENT = 0.5  # nats: two runs closer than this report their mean log Z


def _moments(draws):
    return draws.mean(0), draws.std(0, ddof=1)


def _smc_gradients(res):
    """Log-density gradient evaluations in the moves of one run (NaN if not counted)."""
    return float(np.sum(np.asarray(res.info.num_gradient_evaluations, dtype=float)))


def run_smc(post, pm, ref, num_particles, waste_free, runs=2):
    """Two default runs; moments, log Z, cost and wall time, or the stall message."""
    out = {"z": [], "sd_ratio": [], "log_z": [], "evals": [], "wall": [], "steps": []}
    for r in range(runs):
        start = time.perf_counter()
        try:
            kwargs = {"waste_free": True} if waste_free else {}
            res = pi.smc.tempered(jax.random.key(r), pm, num_particles, progress_bar=False,
                                  **kwargs)
            jax.block_until_ready(res.samples)
        except (RuntimeError, FloatingPointError) as err:
            out["error"] = f"{type(err).__name__}: {str(err)[:160]}"
            return out
        out["wall"].append(time.perf_counter() - start)
        constrained = jax.vmap(pm.constrain)(res.samples)
        draws = flatten_draws(constrained, ref["names"])
        weights = np.exp(np.asarray(res.log_weights, dtype=float))
        weights /= weights.sum()
        mean = weights @ draws
        sd = np.sqrt(weights @ (draws - mean) ** 2)
        out["z"].append((mean - ref["mean"]) / ref["sd"])
        out["sd_ratio"].append(sd / ref["sd"])
        out["log_z"].append(float(res.log_evidence))
        out["evals"].append(_smc_gradients(res))
        out["steps"].append(int(np.asarray(res.info.beta).shape[0]))
    z = np.array(out["z"])
    excess = np.mean(z ** 2) - np.mean(1.0 / ref["ess_bulk"])
    out["ess"] = 1.0 / excess if excess > 0 else math.inf
    return out


def run_nuts(post, data, ref, warmup, samples, seed=0):
    """One NUTS chain; cached in ``inference/_work/`` (NUTS does not change with SMC's
    defaults, so a re-run of the study after an SMC change reuses it)."""
    cache = CACHE / f"nuts_{post.name}_{warmup}_{samples}_{seed}.npz"
    if cache.exists():
        with np.load(cache) as stored:
            out = {k: stored[k] for k in stored.files}
        out = {k: (float(v) if v.ndim == 0 else v) for k, v in out.items()}
        return {**out, "cached": True}
    out = _run_nuts(post, data, ref, warmup, samples, seed)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **out)
    return out


def _run_nuts(post, data, ref, warmup, samples, seed):
    from numpyro.infer import MCMC, NUTS
    import arviz as az

    start = time.perf_counter()
    mcmc = MCMC(NUTS(post.model), num_warmup=warmup, num_samples=samples, num_chains=1,
                progress_bar=False)
    mcmc.warmup(jax.random.key(seed), **data, collect_warmup=True, extra_fields=("num_steps",))
    warmup_steps = np.asarray(mcmc.get_extra_fields()["num_steps"], dtype=float)
    mcmc.run(jax.random.key(seed + 1), **data, extra_fields=("num_steps",))
    draws = flatten_draws(mcmc.get_samples(), ref["names"])
    wall = time.perf_counter() - start
    sample_steps = np.asarray(mcmc.get_extra_fields()["num_steps"], dtype=float)
    dataset = az.convert_to_dataset({"x": draws[None]})
    ess = np.asarray(az.ess(dataset, method="mean")["x"]).reshape(-1)
    mean, sd = _moments(draws)
    return {"draws": draws, "warmup_grads": warmup_steps.sum(),
            "cum_grads": warmup_steps.sum() + np.cumsum(sample_steps),
            "grads": warmup_steps.sum() + sample_steps.sum(),
            "ess": len(ess) / np.sum(1.0 / ess), "z": (mean - ref["mean"]) / ref["sd"],
            "sd_ratio": sd / ref["sd"], "wall": wall}


def nuts_at_budget(nuts, ref, budget):
    """NUTS's max |mean − ref| / ref-sd from the draws that fit in ``budget`` gradients."""
    kept = int(np.searchsorted(nuts["cum_grads"], budget, side="right"))
    if kept < 10:
        return None, kept
    mean = nuts["draws"][:kept].mean(0)
    return float(np.max(np.abs(mean - ref["mean"]) / ref["sd"])), kept


def _fmt(x, digits=2):
    if x is None:
        return "–"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    if abs(x) >= 1e4:
        return f"{x:.2e}"
    return f"{x:.{digits}f}" if abs(x) < 100 else f"{x:.0f}"


def _log_z(values):
    if len(values) < 2:
        return "–"
    if abs(values[0] - values[1]) <= EVIDENCE_AGREEMENT:
        return f"{np.mean(values):.2f}"
    return f"disagree ({values[0]:.1f}, {values[1]:.1f})"


def smc_row(label, res, nuts, ref):
    if "error" in res:
        return (f"| {label} | stall / error: {res['error']} | | | | | | | ✗ |"), False
    z = np.abs(np.array(res["z"]))
    ratio = np.array(res["sd_ratio"])
    per_ess = np.mean(res["evals"]) / res["ess"]
    nuts_per_ess = nuts["grads"] / nuts["ess"]
    relative = per_ess / nuts_per_ess
    matched, kept = nuts_at_budget(nuts, ref, np.mean(res["evals"]))
    ok_accuracy = z.max() <= 0.2 and ratio.min() >= 0.8 and ratio.max() <= 1.25
    ok = ok_accuracy and relative <= 3.0
    if matched is not None:
        matched_text = f"{_fmt(matched)} ({kept} draws)"
    elif np.mean(res["evals"]) < nuts["warmup_grads"]:
        matched_text = "within NUTS's warm-up"
    else:
        matched_text = f"{kept} draws only"
    row = (f"| {label} | {np.mean(res['steps']):.0f} | {_fmt(float(z.max()))} | "
           f"[{ratio.min():.2f}, {ratio.max():.2f}] | {_log_z(res['log_z'])} | "
           f"{np.mean(res['evals']):.3g} grad | {_fmt(per_ess, 1)} ({_fmt(relative)}× NUTS) "
           f"| {matched_text} | {res['wall'][0]:.0f} / {res['wall'][-1]:.0f} | "
           f"{'✓' if ok else '✗'} |")
    return row, ok


def run_model(name, args):
    """All runs on one model: its table rows, its misses and its wall time."""
    post = SUITE[name]
    data, ref = post.data(), post.reference()
    pm = pi.from_numpyro(post.model, **data)
    print(f"{name} (d = {pm.dim})", flush=True)
    start = time.perf_counter()
    results = {}
    for label, waste_free in (("SMC", False), ("waste-free", True)):
        results[label] = run_smc(post, pm, ref, args.num_particles, waste_free)
        res = results[label]
        print(f"  {label}: " + (res.get("error") or
                                f"{sum(res['wall']):.0f} s, max |z| "
                                f"{np.abs(np.array(res['z'])).max():.2f}"), flush=True)
    nuts = run_nuts(post, data, ref, args.nuts_warmup, args.nuts_samples)
    print(f"  NUTS: {nuts['wall']:.0f} s, max |z| {np.abs(nuts['z']).max():.2f}", flush=True)
    rows = [f"| **{name}** ({post.kind}, d = {pm.dim}) | | | | | | | | | |"]
    misses = []
    for label, res in results.items():
        row, ok = smc_row(label, res, nuts, ref)
        rows.append(row)
        if not ok:
            misses.append(f"{name} ({label})")
    rows.append(f"| NUTS | – | {_fmt(float(np.abs(nuts['z']).max()))} | "
                f"[{nuts['sd_ratio'].min():.2f}, {nuts['sd_ratio'].max():.2f}] | – | "
                f"{nuts['grads']:.3g} grad | {_fmt(nuts['grads'] / nuts['ess'], 1)} "
                f"(ESS {nuts['ess']:.0f}) | – | {nuts['wall']:.0f} | |")
    return {"rows": rows, "misses": misses, "wall": time.perf_counter() - start,
            "nuts_cached": bool(nuts.get("cached"))}


def _git_commit():
    import subprocess
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(SUITE),
                        help="comma-separated subset (default: all)")
    parser.add_argument("--num-particles", type=int, default=2000)
    parser.add_argument("--nuts-warmup", type=int, default=500)
    parser.add_argument("--nuts-samples", type=int, default=1000)
    parser.add_argument("--label", default=None,
                        help="version the results belong to (default: git commit); the table "
                             "gathers every model's stored result with this label, so "
                             "subsets may run in parallel processes")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    names = [name for name in args.models.split(",") if name]
    unknown = sorted(set(names) - set(SUITE))
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; choose from {sorted(SUITE)}")
    label = args.label or _git_commit()
    settings = f"{label}_{args.num_particles}_{args.nuts_warmup}_{args.nuts_samples}"
    CACHE.mkdir(parents=True, exist_ok=True)
    for name in names:
        result = run_model(name, args)
        (CACHE / f"result_{settings}_{name}.json").write_text(json.dumps(result))

    stored = {name: CACHE / f"result_{settings}_{name}.json" for name in SUITE}
    results = {name: json.loads(path.read_text()) for name, path in stored.items()
               if path.exists()}
    rows = [row for result in results.values() for row in result["rows"]]
    misses = [miss for result in results.values() for miss in result["misses"]]
    missing = [name for name in SUITE if name not in results]
    cached = [name for name, result in results.items() if result["nuts_cached"]]
    total = sum(result["wall"] for result in results.values())
    text = "\n".join([
        "# posteriordb suite: default tempered SMC vs reference posteriors and NUTS",
        "",
        f"Command: `python inference/posteriordb_suite.py --label {label}` (float64, CPU), "
        "here run as subsets of `--models` in parallel processes with the same label; "
        f"{total / 60:.0f} min of process time in all on a shared 2-core machine under heavy "
        "load (wall times below are inflated several-fold by that load; compare them within "
        f"a row only). probinfer version: {label}.",
        "",
        f"N = {args.num_particles} particles, default settings of `pi.smc.tempered` "
        "(move `adaptive_repeat(hmc(10), max 20)` with a population-adapted "
        "mass matrix, dense for d ≤ 200; see docs/tempered_smc.md) "
        "(and `waste_free=True`), two runs each (keys 0 and 1); NUTS: NumPyro, one chain, "
        f"{args.nuts_warmup} warm-up + {args.nuts_samples} draws. Reference: posteriordb's "
        "10 000 draws (means, sds). Columns: tempering steps; max |mean − ref| / ref-sd over "
        "parameters and runs; sd / ref-sd range; log-evidence when the two runs agree within "
        f"{EVIDENCE_AGREEMENT} nats; log-density gradient evaluations per run (SMC: in the "
        "moves, as counted in `info.num_gradient_evaluations`; NUTS: leapfrog steps); gradients "
        "per effective sample (SMC: ESS from the error against the reference over both runs, "
        "ESS = 1 / (mean z² − mean 1/ESS_ref); NUTS: ArviZ ESS of the mean, harmonic mean over "
        "parameters) and its ratio to NUTS; NUTS's max |mean − ref| / ref-sd with only the "
        "draws that fit in SMC's evaluation budget (warm-up included); wall time in s "
        "(SMC: first run with compilation / second run; NUTS: one run with compilation). "
        "Goal: max |Δmean| ≤ 0.2, sd ratio in [0.8, 1.25], ≤ 3× NUTS per effective sample.",
        "",
        "| model / method | steps | max abs Δmean / sd | sd ratio | log Z | gradients per run "
        "| gradients / ESS | NUTS at SMC's budget | wall s | goal |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Misses ({len(misses)} of {2 * len(results)} SMC rows): "
        + (", ".join(misses) if misses else "none") + ".",
        "",
        *([f"Not run: {', '.join(missing)}.", ""] if missing else []),
        *([f"NUTS results of {len(cached)} model(s) come from an earlier run with the same "
           "settings (cached in inference/_work/; NUTS does not depend on SMC's defaults); "
           "their wall times are that run's.", ""] if cached else []),
    ])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
