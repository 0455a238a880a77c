"""Train the zoo's ``moses-selfies-mdm``: a masked-diffusion transformer over SELFIES tokens.

Data: 30 000 molecules drawn (seed 0) from the MOSES training set (``moses_data.py``; the
``molsets`` wheel is fetched with ``pip download --no-deps molsets`` unless ``--wheel`` is
given), encoded as SELFIES (Krenn et al. 2020) and padded with ``[nop]`` to 48 tokens
(molecules with longer encodings, about 0.1 %, are dropped). The vocabulary is every token
seen in the subset plus ``[nop]``; it is stored in ``config.json`` (``tokenizer.vocab``).
Every token sequence decodes to a molecule: that is why we use SELFIES.

Model and loss as ``models/lac_promoter_mdm/train.py``: a time-agnostic
:class:`probinfer._zoo_networks.MaskedSequenceTransformer` trained on the any-order
masked-diffusion ELBO per token; the EMA of the weights is saved.

Run from the repository root (CPU, one thread)::

    nice -n 10 .venv/bin/python models/moses_selfies_mdm/train.py [--wheel molsets.whl]
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import math
import time
from pathlib import Path

import numpy as np
import selfies as sf
import torch
from safetensors.torch import save_file

import moses_data
from probinfer import zoo
from probinfer._zoo_networks import MaskedSequenceTransformer, any_order_loss

HERE = Path(__file__).resolve().parent

LENGTH = 48
NUM_MOLECULES = 30_000
ARCHITECTURE = {"length": LENGTH, "width": 64, "depth": 2, "heads": 4, "ff_mult": 4}
TRAINING = {"seed": 0, "steps": 12_000, "batch_size": 64, "learning_rate": 2e-3,
            "warmup_steps": 200,
            "lr_schedule": "linear warm-up then cosine decay to 0 over progress = max(step / "
                           "steps, elapsed / max_seconds) (the shared CPU sets the pace)",
            "optimizer": "AdamW(betas=(0.9, 0.99), weight_decay=0.01)", "grad_clip_norm": 1.0,
            "ema_decay": 0.999}


def tokenize(smiles: list[str]):
    """``(tokens (n, LENGTH) int64, vocab)``: SELFIES of every molecule that fits in LENGTH."""
    symbols = []
    for s in smiles:
        try:
            parts = list(sf.split_selfies(sf.encoder(s)))
        except sf.EncoderError:
            continue
        if len(parts) <= LENGTH:
            symbols.append(parts + [moses_data.PAD] * (LENGTH - len(parts)))
    counts = collections.Counter(t for row in symbols for t in row)
    vocab = [moses_data.PAD] + sorted(t for t in counts if t != moses_data.PAD)
    index = {t: i for i, t in enumerate(vocab)}
    return np.array([[index[t] for t in row] for row in symbols], np.int64), vocab


def train(tokens: np.ndarray, vocab_size: int, steps: int, threads: int, seed: int,
          max_seconds: float):
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    data = torch.from_numpy(tokens)
    model = MaskedSequenceTransformer(vocab_size=vocab_size, **ARCHITECTURE)
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
        index = torch.randint(0, data.shape[0], (TRAINING["batch_size"],), generator=generator)
        loss = any_order_loss(model, data[index], generator)
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
            print(f"step {done:6d}  loss/token {np.mean(running[-250:]):.4f}  "
                  f"{time.perf_counter() - start:7.1f} s", flush=True)
        if time.perf_counter() - start > max_seconds:
            print(f"stopped at the time budget after {done} steps", flush=True)
            break
    log = {"steps_run": done, "seed": seed, "threads": threads,
           "wall_seconds": round(time.perf_counter() - start, 1),
           "final_loss_per_token_mean_last_250": round(float(np.mean(running[-250:])), 5)}
    return ema.eval(), log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", default=None, help="a downloaded molsets wheel")
    parser.add_argument("--steps", type=int, default=TRAINING["steps"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=TRAINING["seed"])
    parser.add_argument("--max-seconds", type=float, default=1400.0)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    molecules = moses_data.subset(moses_data.smiles("train", args.wheel), NUM_MOLECULES,
                                  args.seed)
    tokens, vocab = tokenize(molecules)
    print(f"{tokens.shape[0]} of {len(molecules)} molecules fit in {LENGTH} tokens; "
          f"vocabulary {len(vocab)}", flush=True)
    module, log = train(tokens, len(vocab), args.steps, args.threads, args.seed,
                        args.max_seconds)
    args.out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().to(torch.float32) for k, v in module.state_dict().items()}
    weights = args.out / zoo.WEIGHTS_FILE
    save_file(state, str(weights), metadata={"format": "pt"})
    config = {
        "name": "moses-selfies-mdm",
        "network": "MaskedSequenceTransformer",
        "architecture": {"vocab_size": len(vocab), **ARCHITECTURE},
        "kind": "masked",
        "masking": {"schedule": "linear", "time_input": None, "mask_id": len(vocab),
                    "input": f"int64 tokens (B, {LENGTH}) indexing tokenizer.vocab, "
                             f"mask = {len(vocab)}",
                    "output": f"logits (B, {LENGTH}, {len(vocab)})"},
        "tokenizer": {"type": "selfies", "vocab": vocab, "pad": moses_data.PAD,
                      "selfies_version": sf.__version__},
        "data": {"source": f"molsets=={moses_data.MOLSETS_VERSION} wheel, "
                           "moses/dataset/data/train.csv.gz",
                 "subset": {"size": NUM_MOLECULES, "seed": args.seed,
                            "function": "moses_data.subset"},
                 "num_training_molecules": int(tokens.shape[0])},
        "training": {**TRAINING, **log},
        "weights": zoo.weights_manifest(weights, state),
    }
    (args.out / zoo.CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    print(f"wrote {weights} ({weights.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
