"""Shared method list and runner of the design studies (``design_dna.py``,
``design_molecules.py``).

One method list, :func:`design_methods`, serves both studies; every method produces
``num_designs`` designs per seed through the public API:

* ``pretrained``: unguided draws of the prior;
* ``best-of-N``: ``pi.steer.best_of_n`` (the best of N unguided draws, per design);
* ``FK k=..``: ``pi.steer.fk`` with k particles, one run per design (``jax.vmap`` over
  keys: one host call per step for all runs); the design is the final particle with the
  highest steering reward (as in Singhal et al. 2025);
* ``SVDD-PM M=..``: ``pi.steer.svdd`` with M candidates per step, temperature 0 (argmax),
  one chain per design.

NFE per design is read from each runner's ``info.nfe`` (denoiser calls on one sequence).
All runs use ``invalid_reward="reject"``: designs the oracle cannot score count as -inf
and are reported (``invalid``).

Why not ``pi.compare``: its problems carry a reference value per quantity and its summary
is bias / RMSE / coverage of one run's estimate against it. A design study has no
reference: it reports the distribution of the designs' rewards (median, p90, mean) and
their naturalness, each design coming from its own run (one FK run or SVDD chain per
design). So the studies share this module instead.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import jax

import probinfer as pi

ROOT = Path(__file__).resolve().parents[1]


def design_methods(temperature: float, potentials, ks=(4, 8), ms=(10, 20),
                   fk_reward_draws: int = 16, svdd_reward_draws: int = 16) -> list[dict]:
    """The method list of both studies at matched NFE per design.

    Pretrained; FK with ``k`` particles per design (each potential) against best-of-``k``;
    SVDD-PM with ``M`` candidates per step against best-of-``(M + 1)`` (SVDD-PM costs about
    ``(M + 1) x steps - M`` denoiser calls per design).
    """
    out = [{"label": "pretrained", "family": "pretrained", "kind": "pretrained"}]
    for n in sorted({*ks, *(m + 1 for m in ms)}):
        out.append({"label": f"best-of-{n}", "family": "best-of-N", "kind": "best_of_n", "n": n})
    for k in ks:
        for potential in potentials:
            out.append({"label": f"FK k={k} ({potential})", "family": f"FK ({potential})",
                        "kind": "fk", "k": k, "potential": potential,
                        "temperature": temperature, "num_reward_draws": fk_reward_draws})
    for m in ms:
        out.append({"label": f"SVDD-PM M={m}", "family": "SVDD-PM", "kind": "svdd", "m": m,
                    "num_reward_draws": svdd_reward_draws})
    return out


def run_seeds(method: dict, prior, reward, num_designs: int, seeds, diversity) -> dict:
    """``method`` on every seed: the designs of all seeds ``(seeds x designs, L)``, mean NFE
    and wall seconds per seed, invalid rewards, and ``diversity(tokens)`` of each seed's
    designs as ``(mean, min, max)`` over seeds."""
    designs, nfes, walls, invalid, per_seed = [], [], [], 0, []
    for seed in seeds:
        tokens, nfe, wall, bad = run_method(method, prior, reward, num_designs, seed)
        designs.append(tokens)
        nfes.append(nfe)
        walls.append(wall)
        invalid += bad
        per_seed.append(diversity(tokens))
    return {"tokens": np.concatenate(designs), "nfe": float(np.mean(nfes)),
            "wall": float(np.mean(walls)), "invalid": invalid,
            "diversity": (float(np.nanmean(per_seed)), float(np.nanmin(per_seed)),
                          float(np.nanmax(per_seed)))}


def add_arguments(parser, *, designs: int, seeds, potentials, num_steps: int, length: int):
    """The options both studies share (their defaults differ)."""
    parser.add_argument("--designs", type=int, default=designs, help="designs per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(seeds))
    parser.add_argument("--potentials", nargs="+", default=list(potentials),
                        help="FK potentials (difference, max, sum)")
    parser.add_argument("--num-steps", type=int, default=num_steps,
                        help="reverse steps of the prior (ancestral sampler when below the "
                             f"length; the length {length} gives the exact first-hitting "
                             "sampler)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results")


def prior_label(num_steps: int, length: int) -> str:
    return (f"first-hitting sampler, {length} steps" if num_steps == length
            else f"ancestral sampler, {num_steps} steps")


def command_line() -> str:
    """This run's command line, from the repository root, as the tables record it."""
    script = Path(sys.argv[0]).resolve().relative_to(ROOT)
    python = Path(sys.executable)
    python = str(python.relative_to(ROOT)) if python.is_relative_to(ROOT) else "python"
    niceness = os.nice(0)
    return " ".join([*(["nice", "-n", str(niceness)] if niceness else []), python, str(script),
                     *(shlex.quote(a) for a in sys.argv[1:])])


def run_method(method: dict, prior, reward, num_designs: int, seed: int):
    """``(tokens (num_designs, L), nfe per design, wall seconds, invalid count)``."""
    key = jax.random.key(seed)
    start = time.perf_counter()
    kind = method["kind"]
    if kind == "pretrained":
        tokens = np.asarray(prior.sample(key, num_designs))
        nfe, invalid = float(np.sum(prior.nfe_per_step)), 0
    elif kind == "best_of_n":
        res = pi.steer.best_of_n(key, prior, reward, method["n"], num_designs,
                                 invalid_reward="reject")
        tokens, nfe = np.asarray(res.samples), res.info.nfe / num_designs
        invalid = int(res.info.num_invalid_rewards)
    elif kind == "fk":
        keys = jax.random.split(key, num_designs)
        particles, bad = _vmapped_fk(method, prior, reward, num_designs)(keys)
        particles = np.asarray(particles)                    # (designs, k, L)
        flat = particles.reshape(-1, particles.shape[-1])
        scores = reward.score_tokens(flat).reshape(particles.shape[:2])
        scores = np.where(np.isnan(scores), -np.inf, scores)
        tokens = particles[np.arange(num_designs), np.argmax(scores, axis=1)]
        nfe = method["k"] * float(np.sum(prior.nfe_per_step))
        invalid = int(np.sum(bad))
    elif kind == "svdd":
        res = pi.steer.svdd(key, prior, reward, num_designs, method["m"], temperature=0.0,
                            invalid_reward="reject",
                            num_reward_draws=method["num_reward_draws"])
        tokens, nfe = np.asarray(res.samples), res.info.nfe / num_designs
        invalid = int(np.sum(res.info.num_invalid_rewards))
    else:
        raise ValueError(f"unknown method kind {kind!r}")
    return tokens, nfe, time.perf_counter() - start, invalid


_COMPILED = {}


def _vmapped_fk(method, prior, reward, num_designs):
    """One compiled program per FK configuration: the seeds reuse it."""
    cache_key = (id(prior), id(reward), method["label"], num_designs)
    if cache_key not in _COMPILED:
        def one(k):
            res = pi.steer.fk(k, prior, reward, method["k"], potential=method["potential"],
                              temperature=method["temperature"], invalid_reward="reject",
                              num_reward_draws=method["num_reward_draws"])
            return res.samples, res.info.num_invalid_rewards.sum()

        _COMPILED[cache_key] = jax.jit(jax.vmap(one))
    return _COMPILED[cache_key]


def bootstrap_ci(values, stat, num_boot: int = 2000, seed: int = 0):
    """Percentile 95 % bootstrap interval of ``stat(values)``."""
    values = np.asarray(values, np.float64)
    rng = np.random.default_rng(seed)
    boots = [stat(values[rng.integers(0, len(values), len(values))]) for _ in range(num_boot)]
    return float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def summarise(values):
    """``{median, p90, mean}`` each as ``(value, lo, hi)`` with bootstrap 95 % CIs; NaN and
    -inf (failed designs) are dropped."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    out = {}
    for name, stat in (("median", np.median), ("p90", lambda v: np.percentile(v, 90)),
                       ("mean", np.mean)):
        lo, hi = bootstrap_ci(values, stat)
        out[name] = (float(stat(values)), lo, hi)
    return out


def fmt(triple, digits: int = 2) -> str:
    value, lo, hi = triple
    return f"{value:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def mean_pairwise_hamming(tokens: np.ndarray) -> float:
    """Mean Hamming distance over all pairs of designs (diversity)."""
    n = len(tokens)
    d = (tokens[:, None, :] != tokens[None]).sum(-1)
    return float(d[np.triu_indices(n, 1)].mean())


def reward_vs_nfe_figure(rows: list[dict], keys: list[tuple[str, str]], path, title: str):
    """Median reward (with 95 % CI) vs NFE per design, one panel per reward key."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, len(keys), figsize=(5.2 * len(keys), 3.8), squeeze=False)
    families = {}
    for row in rows:
        families.setdefault(row["family"], []).append(row)
    for ax, (key, label) in zip(axes[0], keys):
        for family, items in families.items():
            items = sorted(items, key=lambda r: r["nfe"])
            x = [r["nfe"] for r in items]
            y = [r[key]["median"][0] for r in items]
            err = np.array([[r[key]["median"][0] - r[key]["median"][1],
                             r[key]["median"][2] - r[key]["median"][0]] for r in items]).T
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=family)
        ax.set_xscale("log")
        # Label the budgets themselves: log-axis minor labels collide over this short range.
        nfes = sorted({round(r["nfe"]) for r in rows})
        ax.set_xticks(nfes, [str(n) for n in nfes], fontsize=7, rotation=45)
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("NFE per design (denoiser calls)")
        ax.set_ylabel(f"median {label}")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
