"""FK steering on an exact discrete prior: which defaults converge (issue "Right by default").

Problem: a random 4-letter Markov chain of length 10 (``MarkovChainPrior``), additive
GC-count reward, temperature 0.5; the tilted chain is exact (forward–backward), so the
tilted marginals and ``log Z = log E_p[exp(r / T)]`` are known. For each configuration
(masked sampler × potential × reward draws per intermediate estimate) and particle count k,
four independent runs (one vmapped program) report the maximum marginal error, the
log-evidence error and the final ESS.

Writes ``docs/results/steering_discrete.md``.

    .venv/bin/python inference/steering_discrete.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import jax
import jax.numpy as jnp

import probinfer as pi

OUT = Path(__file__).resolve().parents[1] / "docs" / "results" / "steering_discrete.md"
LENGTH, VOCAB, TEMPERATURE, SEEDS = 10, 4, 0.5, 4
PARTICLES = (1_000, 4_000, 16_000)
CONFIGS = [  # (sampler, potential, reward draws): the old defaults first, the new ones last
    ("ancestral", "max", 4),
    ("ancestral", "difference", 4),
    ("first_hitting", "max", 4),
    ("first_hitting", "max", 16),
    ("first_hitting", "difference", 4),
    ("first_hitting", "difference", 16),
]


def problem(sampler):
    rng = np.random.default_rng(0)
    prior = pi.diffusion.MarkovChainPrior(rng.dirichlet(np.ones(VOCAB)),
                                          rng.dirichlet(np.ones(VOCAB), size=VOCAB), LENGTH,
                                          sampler=sampler)
    gc = jnp.array([0.0, 1.0, 1.0, 0.0])
    tilted, log_z = prior.tilt_additive(np.tile(np.asarray(gc), (LENGTH, 1)), TEMPERATURE)
    return prior, (lambda seq: jnp.sum(gc[seq])), tilted.marginals(), log_z


def main():
    rows = []
    for sampler, potential, draws in CONFIGS:
        prior, reward, exact, log_z = problem(sampler)
        for k in PARTICLES:
            def one(key):
                res = pi.steer.fk(key, prior, reward, k, potential=potential,
                                  temperature=TEMPERATURE, num_reward_draws=draws)
                marg = jnp.einsum("n,nlk->lk", jnp.exp(res.log_weights),
                                  jax.nn.one_hot(res.samples, VOCAB))
                return marg, res.log_evidence, res.ess
            start = time.perf_counter()
            marg, log_z_hat, ess = jax.jit(jax.vmap(one))(
                jax.random.split(jax.random.key(1), SEEDS))
            seconds = time.perf_counter() - start
            err = np.abs(np.asarray(marg, np.float64) - exact).max(axis=(1, 2))
            dz = np.asarray(log_z_hat, np.float64) - log_z
            rows.append((sampler, potential, draws, k, err, dz, np.asarray(ess), seconds))
            print(rows[-1][:4], err.round(3), dz.round(2), np.asarray(ess).round(0), flush=True)

    lines = [
        "# FK steering on an exact discrete prior",
        "",
        "`.venv/bin/python inference/steering_discrete.py` — random 4-letter Markov chain, "
        "length 10, additive GC reward, temperature 0.5, each potential's default evaluation "
        "steps (`difference`: every state; `max`: every 2nd) and interval resampling; "
        f"{SEEDS} seeds per cell (one vmapped program). "
        "Exact answers by forward–backward. Columns: max |marginal − exact| over positions "
        "and letters (range over seeds), log Ẑ − log Z (range), final ESS (range).",
        "",
        "| masked sampler | potential | reward draws | k | max marginal error | "
        "log Ẑ − log Z | final ESS |",
        "|---|---|---|---|---|---|---|",
    ]
    for sampler, potential, draws, k, err, dz, ess, _ in rows:
        lines.append(f"| {sampler} | {potential} | {draws} | {k:,} | "
                     f"{err.min():.3f} – {err.max():.3f} | {dz.min():+.2f} … {dz.max():+.2f} | "
                     f"{ess.min():.0f} – {ess.max():.0f} |")
    lines += [
        "",
        "The first row is the old default (potential `max`, 4 draws, the inexact ancestral "
        "sampler); the last row is the new default (`difference`, 16 draws, first-hitting, "
        "which is exact for this time-agnostic prior). Two causes: the ancestral sampler "
        "unmasks several positions per step independently, so the prior that is steered is "
        "not the chain (bias that does not shrink with k); and a running maximum of noisy "
        "soft-value estimates overshoots, so the final correction leaves a handful of "
        "particles.",
    ]
    OUT.write_text("\n".join(lines) + "\n")
    print(OUT.read_text())


if __name__ == "__main__":
    main()
