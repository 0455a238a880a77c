"""Measure the sample quality of ``digits-ddpm`` with a plain PyTorch reference sampler.

For DDIM (eta = 0) and DDPM ancestral sampling (eta = 1) at 10, 25, 50 and 100 steps of
the trailing timestep grid (:func:`probinfer._zoo_networks.reference_sample`), draw
``--num-samples`` digits and compare them with the held-out split of
:func:`probinfer.zoo.digits` in the feature space of ``digits-classifier``
(:func:`probinfer.diagnostics.classifier_quality`): classifier-Fréchet distance, class
coverage, entropy of the predicted-class histogram, mean classifier confidence. The floor
row compares the real training split with the held-out split.

Run from the repository root::

    .venv/bin/python models/digits_ddpm/sample_reference.py

It writes ``sample_quality.md`` (the tables in the model card) and ``samples.png`` (a grid
of DDIM-50 and DDPM-100 samples above real held-out digits) next to this script. A second
table calibrates the fast check of the test suite (500 samples, 25 DDIM steps) over five
seeds, next to two broken priors: Gaussian noise clipped to [-1, 1] and the untrained
network.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import probinfer as pi
from probinfer._zoo_networks import build, linear_alphas_cumprod, reference_sample

HERE = Path(__file__).resolve().parent
STEPS = (10, 25, 50, 100)
SAMPLERS = {"DDIM (eta=0)": 0.0, "DDPM ancestral (eta=1)": 1.0}
FAST_CHECK = {"num_samples": 500, "num_steps": 25, "eta": 0.0, "seeds": (0, 1, 2, 3, 4)}


def alphas_cumprod_from(config: dict) -> torch.Tensor:
    schedule = config["schedule"]
    if schedule["type"] != "linear":
        raise ValueError(f"unsupported schedule type {schedule['type']!r}")
    return linear_alphas_cumprod(schedule["beta_start"], schedule["beta_end"],
                                 schedule["num_train_timesteps"])


def quality_row(label: str, steps, quality, seconds) -> str:
    cov = quality.coverage
    return (f"| {label} | {steps} | {quality.frechet_distance:.3f} | "
            f"{cov.fraction_present:.2f} | {cov.normalized_entropy:.4f} | "
            f"{quality.mean_confidence:.3f} | {quality.num_samples} | {seconds} |")


def save_grid(rows: list[tuple[str, np.ndarray]], path: Path, per_row: int = 20) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 1, figsize=(per_row * 0.45, len(rows) * 1.2))
    for ax, (title, images) in zip(np.atleast_1d(axes), rows):
        strip = np.concatenate([np.pad(im[0], 1, constant_values=-1)
                                for im in images[:per_row]], axis=1)
        ax.imshow(np.clip(strip, -1, 1), cmap="gray_r", vmin=-1, vmax=1)
        ax.set_title(title, fontsize=8, loc="left")
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    ddpm = pi.zoo.load("digits-ddpm")
    classifier = pi.zoo.load("digits-classifier").module
    alphas_cumprod = alphas_cumprod_from(ddpm.config)
    test_images, _ = pi.zoo.digits("test")
    train_images, _ = pi.zoo.digits("train")

    floor = pi.diagnostics.classifier_quality(train_images, test_images, classifier)
    lines = ["| sampler | steps | classifier-FID ↓ | classes present | "
             "class entropy / log 10 | mean confidence | samples | seconds |",
             "|---|---|---|---|---|---|---|---|",
             quality_row("real train split (floor)", "-", floor, "-")]
    print(lines[-1], flush=True)
    grid = []
    for label, eta in SAMPLERS.items():
        for num_steps in STEPS:
            generator = torch.Generator().manual_seed(args.seed)
            start = time.perf_counter()
            samples = reference_sample(ddpm.module, alphas_cumprod, args.num_samples, num_steps,
                                       eta, generator).numpy()
            seconds = round(time.perf_counter() - start, 2)
            quality = pi.diagnostics.classifier_quality(samples, test_images, classifier)
            lines.append(quality_row(label, num_steps, quality, seconds))
            print(lines[-1], flush=True)
            if (eta, num_steps) in ((0.0, 50), (1.0, 100)):
                grid.append((f"{label}, {num_steps} steps", samples))
    grid.append(("real held-out digits", test_images))

    fast = FAST_CHECK
    fast_lines = ["| prior | seed | classifier-FID | classes present |", "|---|---|---|---|"]
    for seed in fast["seeds"]:
        samples = reference_sample(ddpm.module, alphas_cumprod, fast["num_samples"],
                                   fast["num_steps"], fast["eta"],
                                   torch.Generator().manual_seed(seed)).numpy()
        quality = pi.diagnostics.classifier_quality(samples, test_images, classifier)
        fast_lines.append(f"| digits-ddpm | {seed} | {quality.frechet_distance:.3f} | "
                          f"{quality.coverage.fraction_present:.2f} |")
    noise = torch.randn((fast["num_samples"], 1, 8, 8),
                        generator=torch.Generator().manual_seed(0)).clamp(-1, 1).numpy()
    torch.manual_seed(0)
    untrained = build(ddpm.config["network"], ddpm.config["architecture"]).eval()
    untrained_samples = reference_sample(untrained, alphas_cumprod, fast["num_samples"],
                                         fast["num_steps"], fast["eta"],
                                         torch.Generator().manual_seed(0)).numpy()
    for label, samples in (("N(0, 1) noise clipped to [-1, 1]", noise),
                           ("untrained network (init seed 0)", untrained_samples)):
        quality = pi.diagnostics.classifier_quality(samples, test_images, classifier)
        fast_lines.append(f"| {label} | 0 | {quality.frechet_distance:.3f} | "
                          f"{quality.coverage.fraction_present:.2f} |")
    print("\n".join(fast_lines), flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    header = (f"Reference: the held-out split ({floor.num_reference} real digits). "
              f"{args.num_samples} samples per row, seed {args.seed}, "
              f"{args.threads} CPU thread(s), torch {torch.__version__}.\n"
              f"Command: `.venv/bin/python models/digits_ddpm/sample_reference.py "
              f"--num-samples {args.num_samples} --seed {args.seed}`\n\n")
    fast_header = (f"\n\nFast check ({fast['num_samples']} samples, {fast['num_steps']} DDIM "
                   f"steps, eta = {fast['eta']}) against the same reference:\n\n")
    (args.out / "sample_quality.md").write_text(
        header + "\n".join(lines) + fast_header + "\n".join(fast_lines) + "\n")
    save_grid(grid, args.out / "samples.png")
    print(f"wrote {args.out / 'sample_quality.md'} and {args.out / 'samples.png'}")


if __name__ == "__main__":
    main()
