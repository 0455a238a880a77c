"""Train the zoo's ``digits-ddpm``: an eps-prediction DDPM on scikit-learn's 8×8 digits.

Data: the training split of :func:`probinfer.zoo.digits` (1437 images, stratified 80 %,
seed 0), scaled to ``[-1, 1]``. Schedule: linear VP betas from 1e-4 to 0.02 over 1000
training timesteps (Ho et al., 2020, "Denoising Diffusion Probabilistic Models").
Loss: ``|| eps - eps_theta(sqrt(a_t) x0 + sqrt(1 - a_t) eps, t) ||^2`` with ``t`` uniform.
The exponential moving average of the weights is what gets saved.

Run from the repository root (CPU, deterministic for a given thread count)::

    .venv/bin/python models/digits_ddpm/train.py

It writes ``model.safetensors`` and ``config.json`` next to this script.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from probinfer import zoo
from probinfer._zoo_networks import DigitsDenoiser, linear_alphas_cumprod

HERE = Path(__file__).resolve().parent

ARCHITECTURE = {"width": 256, "num_blocks": 4, "time_embed_dim": 64, "embed_dim": 128,
                "dropout": 0.0, "image_shape": [1, 8, 8]}
SCHEDULE = {"type": "linear", "beta_start": 1e-4, "beta_end": 0.02,
            "num_train_timesteps": 1000}
TRAINING = {"seed": 0, "steps": 12_000, "batch_size": 128, "learning_rate": 1e-3,
            "warmup_steps": 200, "lr_schedule": "linear warm-up then cosine decay to 0",
            "optimizer": "AdamW(betas=(0.9, 0.999), weight_decay=0)", "grad_clip_norm": 1.0,
            "ema_decay": 0.999}


def train(steps: int, threads: int, seed: int) -> tuple[torch.nn.Module, dict]:
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)

    images, _ = zoo.digits("train")
    data = torch.from_numpy(images)
    alphas_cumprod = linear_alphas_cumprod(
        SCHEDULE["beta_start"], SCHEDULE["beta_end"],
        SCHEDULE["num_train_timesteps"]).to(torch.float32)

    model = DigitsDenoiser(**{**ARCHITECTURE, "image_shape": tuple(ARCHITECTURE["image_shape"])})
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=TRAINING["learning_rate"],
                                  betas=(0.9, 0.999), weight_decay=0.0)
    warmup = TRAINING["warmup_steps"]

    def lr_factor(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    batch_size = TRAINING["batch_size"]
    start = time.perf_counter()
    running = []
    for step in range(steps):
        index = torch.randint(0, data.shape[0], (batch_size,), generator=generator)
        x0 = data[index]
        t = torch.randint(0, SCHEDULE["num_train_timesteps"], (batch_size,), generator=generator)
        eps = torch.randn(x0.shape, generator=generator)
        a = alphas_cumprod[t].view(-1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1.0 - a).sqrt() * eps
        loss = torch.mean((model(x_t, t) - eps) ** 2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), TRAINING["grad_clip_norm"])
        optimizer.step()
        scheduler.step()
        # EMA with a warm-up so early weights do not linger in the average.
        decay = min(TRAINING["ema_decay"], (1.0 + step) / (10.0 + step))
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), model.parameters()):
                p_ema.lerp_(p, 1.0 - decay)
        running.append(loss.item())
        if (step + 1) % 1000 == 0 or step + 1 == steps:
            print(f"step {step + 1:6d}  loss {np.mean(running[-1000:]):.4f}  "
                  f"{time.perf_counter() - start:7.1f} s", flush=True)
    seconds = time.perf_counter() - start
    log = {"steps": steps, "seed": seed, "threads": threads,
           "wall_seconds": round(seconds, 1),
           "final_loss_mean_last_1000": round(float(np.mean(running[-1000:])), 5)}
    return ema.eval(), log


def save(module: torch.nn.Module, log: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().to(torch.float32) for k, v in module.state_dict().items()}
    weights = out / zoo.WEIGHTS_FILE
    save_file(state, str(weights), metadata={"format": "pt"})
    config = {
        "name": "digits-ddpm",
        "network": "DigitsDenoiser",
        "architecture": ARCHITECTURE,
        "prediction": "eps",
        "schedule": {
            **SCHEDULE,
            "betas": "linspace(beta_start, beta_end, num_train_timesteps), float64",
            "alphas_cumprod": "cumprod(1 - betas); x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps",
            "timestep_input": "t in 0..num_train_timesteps-1 (training-step units), "
                              "int or float; t = 0 is the least noisy level",
        },
        "sample_shape": [1, 8, 8],
        "data": {
            "source": "sklearn.datasets.load_digits",
            "scaling": "x = pixel / 8 - 1 (pixel intensities 0..16)",
            "range": [-1.0, 1.0],
            "layout": "NCHW float32 (B, 1, 8, 8)",
            "split": {"function": "probinfer.zoo.digits", "test_fraction": zoo.DIGITS_TEST_FRACTION,
                      "stratified": True, "seed": zoo.DIGITS_SPLIT_SEED, "trained_on": "train"},
        },
        "training": {**TRAINING, **log},
        "weights": zoo.weights_manifest(weights, state),
    }
    (out / zoo.CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    print(f"wrote {weights} ({weights.stat().st_size / 1e6:.2f} MB) and {out / zoo.CONFIG_FILE}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=TRAINING["steps"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=TRAINING["seed"])
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    module, log = train(args.steps, args.threads, args.seed)
    save(module, log, args.out)


if __name__ == "__main__":
    main()
