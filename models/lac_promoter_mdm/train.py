"""Train the zoo's ``lac-promoter-mdm``: a masked-diffusion transformer over 75-bp lac promoters.

Data: the ``training`` split (30 516 sequences) of the E. coli lac-promoter sort-seq library
shipped in MAVE-NN's wheel (see ``sortseq.py``; the wheel is fetched with
``pip download --no-deps mavenn`` unless ``--wheel`` is given). Tokens A, C, G, T = 0..3,
the mask is 4.

Model: :class:`probinfer._zoo_networks.MaskedSequenceTransformer`, time-agnostic. Loss: the
any-order masked-diffusion ELBO per base (linear masking schedule; Sahoo et al. 2024, Ou et
al. 2024): ``k ~ U{1..L}`` positions masked uniformly, loss ``(1/k) sum_masked -log p(x_l |
x_unmasked)``, an unbiased estimate of the ELBO divided by ``L``. The exponential moving
average of the weights is saved.

Run from the repository root (CPU, one thread)::

    nice -n 10 .venv/bin/python models/lac_promoter_mdm/train.py [--wheel mavenn.whl]

It writes ``model.safetensors`` and ``config.json`` next to this script; ``evaluate.py``
then measures the held-out likelihood for the model card.
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

import sortseq
from probinfer import zoo
from probinfer._zoo_networks import MaskedSequenceTransformer, any_order_loss

HERE = Path(__file__).resolve().parent

ARCHITECTURE = {"vocab_size": 4, "length": sortseq.LENGTH, "width": 32, "depth": 2, "heads": 4,
                "ff_mult": 4}
TRAINING = {"seed": 0, "steps": 12_000, "batch_size": 64, "learning_rate": 2e-3,
            "warmup_steps": 200,
            "lr_schedule": "linear warm-up then cosine decay to 0 over progress = max(step / "
                           "steps, elapsed / max_seconds) (the shared CPU sets the pace)",
            "optimizer": "AdamW(betas=(0.9, 0.99), weight_decay=0.01)", "grad_clip_norm": 1.0,
            "ema_decay": 0.999}


def train(data: np.ndarray, steps: int, threads: int, seed: int, max_seconds: float):
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.from_numpy(data)
    model = MaskedSequenceTransformer(**ARCHITECTURE)
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=TRAINING["learning_rate"],
                                  betas=(0.9, 0.99), weight_decay=0.01)
    warmup = TRAINING["warmup_steps"]

    start = time.perf_counter()

    def lr_factor(step):
        if step < warmup:
            return (step + 1) / warmup
        progress = max(step / steps, (time.perf_counter() - start) / max_seconds)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    running = []
    done = 0
    for step in range(steps):
        index = torch.randint(0, tokens.shape[0], (TRAINING["batch_size"],), generator=generator)
        loss = any_order_loss(model, tokens[index], generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), TRAINING["grad_clip_norm"])
        optimizer.step()
        scheduler.step()
        decay = min(TRAINING["ema_decay"], (1.0 + step) / (10.0 + step))
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), model.parameters()):
                p_ema.lerp_(p, 1.0 - decay)
        running.append(loss.item())
        done = step + 1
        if done % 250 == 0 or done == steps:
            print(f"step {done:6d}  loss/base {np.mean(running[-250:]):.4f}  "
                  f"{time.perf_counter() - start:7.1f} s", flush=True)
        if time.perf_counter() - start > max_seconds:
            print(f"stopped at the time budget after {done} steps", flush=True)
            break
    log = {"steps_run": done, "seed": seed, "threads": threads,
           "wall_seconds": round(time.perf_counter() - start, 1),
           "final_loss_per_base_mean_last_250": round(float(np.mean(running[-250:])), 5)}
    return ema.eval(), log


def save(module, log: dict, out: Path) -> None:
    state = {k: v.detach().contiguous().to(torch.float32) for k, v in module.state_dict().items()}
    weights = out / zoo.WEIGHTS_FILE
    save_file(state, str(weights), metadata={"format": "pt"})
    config = {
        "name": "lac-promoter-mdm",
        "network": "MaskedSequenceTransformer",
        "architecture": ARCHITECTURE,
        "kind": "masked",
        "masking": {"schedule": "linear", "time_input": None,
                    "mask_id": ARCHITECTURE["vocab_size"],
                    "input": "int64 tokens (B, 75), A,C,G,T = 0..3, mask = 4",
                    "output": "logits (B, 75, 4) of the clean base at every position"},
        "tokenizer": {"type": "dna", "alphabet": sortseq.ALPHABET},
        "data": {"source": f"mavenn=={sortseq.MAVENN_VERSION} wheel, {sortseq.MEMBER}",
                 "split": "MAVE-NN's 'set' column", "trained_on": "training"},
        "training": {**TRAINING, **log},
        "weights": zoo.weights_manifest(weights, state),
    }
    (out / zoo.CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    print(f"wrote {weights} ({weights.stat().st_size / 1e6:.2f} MB) and {out / zoo.CONFIG_FILE}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", default=None, help="a downloaded mavenn wheel")
    parser.add_argument("--steps", type=int, default=TRAINING["steps"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=TRAINING["seed"])
    parser.add_argument("--max-seconds", type=float, default=1200.0)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    data = sortseq.load(args.wheel)
    module, log = train(data["training"][0], args.steps, args.threads, args.seed,
                        args.max_seconds)
    args.out.mkdir(parents=True, exist_ok=True)
    save(module, log, args.out)


if __name__ == "__main__":
    main()
