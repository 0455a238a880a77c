"""Memorisation check of ``digits-ddpm``: are samples closer to training images than new
digits are?

For every image, the distance to its nearest training image (Euclidean, in the model's
``[-1, 1]`` pixel scaling, 64 pixels) is computed for

- the 360 held-out digits of :func:`probinfer.zoo.digits` (never seen in training): how
  close a *new* real digit comes to the training set;
- samples of the prior (plain-PyTorch reference sampler,
  :func:`probinfer._zoo_networks.reference_sample`, trailing grid, DDIM eta = 0 and DDPM
  ancestral eta = 1, 50 steps);
- each training image's nearest *other* training image (leave-one-out), for scale.

A model that reproduces training images puts many samples much closer to the training
set than held-out digits come (distance near 0). We report quantiles of the three
distributions, the fraction of samples nearer than the 1st percentile and the minimum of
the held-out distances, and the fraction with a nearest/second-nearest distance ratio
below 1/3 (the "eidetic" criterion of Carlini et al., 2023, "Extracting Training Data
from Diffusion Models"), next to the same fraction for held-out digits.

Run from the repository root::

    .venv/bin/python models/digits_ddpm/memorisation.py

It writes ``memorisation.md`` next to this script (the table in the model card).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import probinfer as pi
from probinfer._zoo_networks import linear_alphas_cumprod, reference_sample

HERE = Path(__file__).resolve().parent
QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5)


def nearest_two(queries: np.ndarray, train: np.ndarray, exclude_self: bool = False):
    """Distances to the nearest and second-nearest training image, ``(n,)`` each."""
    q = queries.reshape(len(queries), -1).astype(np.float64)
    t = train.reshape(len(train), -1).astype(np.float64)
    sq = (q ** 2).sum(1)[:, None] + (t ** 2).sum(1)[None, :] - 2 * q @ t.T
    d = np.sqrt(np.maximum(sq, 0.0))
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    part = np.partition(d, 1, axis=1)
    return part[:, 0], part[:, 1]


def row(label, d1, d2, held_out_d1):
    qs = np.quantile(d1, QUANTILES)
    below_p1 = np.mean(d1 < np.quantile(held_out_d1, 0.01))
    below_min = np.mean(d1 < held_out_d1.min())
    eidetic = np.mean(d1 / d2 < 1 / 3)
    return (f"| {label} | {len(d1)} | " + " | ".join(f"{v:.3f}" for v in qs)
            + f" | {below_p1:.3f} | {below_min:.3f} | {eidetic:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=2000)
    parser.add_argument("--num-steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)

    start = time.perf_counter()
    train, _ = pi.zoo.digits("train")
    held_out, _ = pi.zoo.digits("test")
    model = pi.zoo.load("digits-ddpm")
    schedule = model.config["schedule"]
    alphas = linear_alphas_cumprod(schedule["beta_start"], schedule["beta_end"],
                                   schedule["num_train_timesteps"])

    held_d1, held_d2 = nearest_two(held_out, train)
    train_d1, train_d2 = nearest_two(train, train, exclude_self=True)
    lines = [
        "# digits-ddpm: memorisation check",
        "",
        f"Command: `.venv/bin/python models/digits_ddpm/memorisation.py --num-samples "
        f"{args.num_samples} --num-steps {args.num_steps} --seed {args.seed}`",
        "",
        "Distance of each image to its nearest training image (Euclidean over the 64 pixels "
        "in [-1, 1]; an 8×8 digit differing by one full intensity level, 1/8, in every pixel "
        "is at distance 1.0). Columns: quantiles of that distance; the fraction nearer than "
        "the 1st percentile and than the minimum of the held-out digits' distances; the "
        "fraction whose nearest/second-nearest ratio is below 1/3 (Carlini et al., 2023).",
        "",
        "| images | n | min | 1 % | 5 % | 25 % | median | < held-out 1 % | < held-out min "
        "| ratio < 1/3 |",
        "|---|---|---|---|---|---|---|---|---|---|",
        row("held-out digits (new real digits)", held_d1, held_d2, held_d1),
        row("training digits, leave-one-out", train_d1, train_d2, held_d1),
    ]
    for label, eta in (("DDIM (eta=0)", 0.0), ("DDPM ancestral (eta=1)", 1.0)):
        generator = torch.Generator().manual_seed(args.seed)
        samples = reference_sample(model.module, alphas, args.num_samples, args.num_steps, eta,
                                   generator).numpy()
        d1, d2 = nearest_two(samples, train)
        lines.append(row(f"samples, {label}, {args.num_steps} steps", d1, d2, held_d1))
    lines += ["", f"Wall time {time.perf_counter() - start:.1f} s (1 torch thread, shared "
              "machine)."]
    text = "\n".join(lines) + "\n"
    (HERE / "memorisation.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
