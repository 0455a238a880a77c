"""Steering the shipped digits DDPM to a chosen class with the classifier reward.

Prior: ``pi.zoo.load_prior("digits-ddpm")`` (DDPM ancestral = DDIM eta 1, stochastic, so
resampled copies diverge). Reward: ``log p(class | x_0)`` from the shipped
``digits-classifier``, a batched host (torch) reward. For k in {1, 2, 4, 8, 16} particles
at equal steps, FK steering (``max`` potential, the default five evaluations) against
best-of-N with the same number of denoiser evaluations (n = k): mean reward and
class accuracy (the classifier's argmax equals the target class) of the returned sample,
over independent runs. Sample grids go to ``docs/results/steering_digits.png``.

Run: ``.venv/bin/python inference/steering_digits.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import jax
import jax.numpy as jnp

import probinfer as pi

OUT = Path(__file__).resolve().parents[1] / "docs" / "results"


def classifier_reward(target: int):
    import torch

    classifier = pi.zoo.load("digits-classifier").module

    def log_prob(xs):
        x = torch.as_tensor(np.array(xs, dtype=np.float32)).reshape(-1, 1, 8, 8)
        with torch.inference_mode():
            return torch.log_softmax(classifier(x), dim=-1)[:, target].numpy()

    return pi.steer.host_reward(log_prob)


def pick(res, key):
    """One sample from a weighted result (FK) or its only sample (best-of-N)."""
    idx = jax.random.categorical(key, res.log_weights)
    return res.samples[idx]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--target", type=int, default=3)
    parser.add_argument("--temperature", type=float, default=0.25,
                        help="target ∝ p(x) p(class | x)^(1/temperature)")
    args = parser.parse_args()
    import torch
    torch.set_num_threads(1)
    ks = [1, 2, 4] if args.quick else [1, 2, 4, 8, 16]
    runs = 8 if args.quick else 64
    steps = 25 if args.quick else 50
    prior = pi.zoo.load_prior("digits-ddpm", num_steps=steps, sampler="ddpm")
    reward = classifier_reward(args.target)
    rows, grids = [], {}
    for k in ks:
        for method in ("FK steering", "best-of-N"):
            chosen, rewards = [], []
            for r in range(runs):
                key = jax.random.key(1000 * k + r)
                if method == "FK steering":
                    res = pi.steer.fk(key, prior, reward, k, potential="max",
                                      temperature=args.temperature)
                else:
                    res = pi.steer.best_of_n(key, prior, reward, k)
                x = pick(res, jax.random.fold_in(key, 7))
                chosen.append(np.asarray(x))
            chosen = np.stack(chosen)
            rewards = np.asarray(reward.fn(chosen))
            accuracy = float(np.mean(rewards > np.log(0.5)))
            rows.append((method, k, k * steps, float(rewards.mean()),
                         float(rewards.std(ddof=1) / np.sqrt(runs)), accuracy))
            grids[(method, k)] = chosen[:8]
            print(rows[-1], flush=True)
    write(rows, grids, ks, steps, runs, args)


def write(rows, grids, ks, steps, runs, args):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    OUT.mkdir(parents=True, exist_ok=True)
    methods = ("FK steering", "best-of-N")
    fig, axes = plt.subplots(len(ks) * 2, 8, figsize=(8, 2 * len(ks)))
    for i, (k, method) in enumerate((k, m) for k in ks for m in methods):
        for j in range(8):
            ax = axes[i, j]
            ax.imshow(grids[(method, k)][j].reshape(8, 8), cmap="gray_r", vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i, 0].set_ylabel(f"{method.split()[0]}\nk={k}", fontsize=7)
    fig.suptitle(f"target class {args.target}", fontsize=9)
    fig.tight_layout()
    fig.savefig(OUT / "steering_digits.png", dpi=110)
    lines = ["# Steering the digits DDPM to a class", "",
             f"Command: `.venv/bin/python inference/steering_digits.py"
             f"{' --quick' if args.quick else ''}` — CPU ({os.cpu_count()} cores, shared); "
             f"prior `digits-ddpm`, DDPM ancestral, {steps} steps; reward log p(class = "
             f"{args.target} | x0) from `digits-classifier`, FK temperature {args.temperature} "
             f"(target ∝ p(x) p(class | x)^{1 / args.temperature:g}); {runs} independent runs per "
             "cell; one sample returned per run (FK: drawn from the final weights).", "",
             "Accuracy = fraction of returned samples the classifier assigns to the target "
             "class with probability > 1/2.", "",
             "| method | k | NFE | mean reward | MCSE | accuracy |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {m} | {k} | {n} | {r:.3f} | {s:.3f} | {a:.2f} |" for m, k, n, r, s, a in rows]
    text = "\n".join(lines) + "\n"
    (OUT / "steering_digits.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
