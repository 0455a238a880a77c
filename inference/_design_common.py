"""Shared runner of the design studies (``design_dna.py``, ``design_molecules.py``).

Every method produces ``num_designs`` designs per seed through the public API:

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
"""

from __future__ import annotations

import time

import numpy as np
import jax

import probinfer as pi


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
                            num_reward_draws=method.get("num_reward_draws", 16))
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
                              num_reward_draws=method.get("num_reward_draws", 16))
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
        ax.set_xlabel("NFE per design (denoiser calls)")
        ax.set_ylabel(f"median {label}")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
