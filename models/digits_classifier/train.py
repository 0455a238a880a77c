"""Train the zoo's ``digits-classifier``: a small CNN on scikit-learn's 8×8 digits.

It is the oracle for guided generation (reward ``log p(class | x0)``) and the feature
extractor of the classifier-Fréchet distance, so it reads images in the DDPM's data
scaling (``(B, 1, 8, 8)``, ``[-1, 1]``) and is trained to be smooth and robust: SiLU
activations, average pooling, dropout, label smoothing, and Gaussian pixel noise of a
random scale on half of every batch (guidance evaluates it on denoised estimates that are
blurrier than real digits).

Run from the repository root (CPU, deterministic for a given thread count)::

    .venv/bin/python models/digits_classifier/train.py

It writes ``model.safetensors`` and ``config.json`` next to this script and prints the
held-out accuracy (clean and with noise) that the model card reports.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from probinfer import zoo
from probinfer._zoo_networks import DigitsClassifier

HERE = Path(__file__).resolve().parent

ARCHITECTURE = {"channels": [32, 64], "feature_dim": 64, "num_classes": 10, "dropout": 0.2,
                "image_shape": [1, 8, 8]}
TRAINING = {"seed": 0, "epochs": 60, "batch_size": 64, "learning_rate": 2e-3,
            "weight_decay": 1e-4, "optimizer": "AdamW", "lr_schedule": "cosine decay to 0",
            "label_smoothing": 0.05, "noise_fraction": 0.5, "noise_sigma_max": 0.5}


def accuracy(module, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return float((module(images).argmax(-1) == labels).float().mean())


def train(threads: int, seed: int) -> tuple[torch.nn.Module, dict]:
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    train_x, train_y = (torch.from_numpy(a) for a in zoo.digits("train"))
    test_x, test_y = (torch.from_numpy(a) for a in zoo.digits("test"))

    model = DigitsClassifier(**{**ARCHITECTURE, "channels": tuple(ARCHITECTURE["channels"]),
                                "image_shape": tuple(ARCHITECTURE["image_shape"])})
    optimizer = torch.optim.AdamW(model.parameters(), lr=TRAINING["learning_rate"],
                                  weight_decay=TRAINING["weight_decay"])
    batch_size = TRAINING["batch_size"]
    steps_per_epoch = -(-train_x.shape[0] // batch_size)
    total = TRAINING["epochs"] * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    start = time.perf_counter()
    for epoch in range(TRAINING["epochs"]):
        model.train()
        order = torch.randperm(train_x.shape[0], generator=generator)
        for first in range(0, train_x.shape[0], batch_size):
            index = order[first:first + batch_size]
            x, y = train_x[index], train_y[index]
            noisy = torch.rand(x.shape[0], generator=generator) < TRAINING["noise_fraction"]
            sigma = TRAINING["noise_sigma_max"] * torch.rand(x.shape[0], generator=generator)
            noise = torch.randn(x.shape, generator=generator) * (sigma * noisy).view(-1, 1, 1, 1)
            loss = F.cross_entropy(model(x + noise), y,
                                   label_smoothing=TRAINING["label_smoothing"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        if (epoch + 1) % 10 == 0:
            model.eval()
            print(f"epoch {epoch + 1:3d}  loss {loss.item():.4f}  "
                  f"train acc {accuracy(model, train_x, train_y):.4f}  "
                  f"{time.perf_counter() - start:6.1f} s", flush=True)
    seconds = time.perf_counter() - start
    model.eval()
    noise_generator = torch.Generator().manual_seed(seed + 1)
    noisy_test = test_x + 0.3 * torch.randn(test_x.shape, generator=noise_generator)
    log = {"seed": seed, "threads": threads, "steps": total, "wall_seconds": round(seconds, 1)}
    metrics = {"train_accuracy": round(accuracy(model, train_x, train_y), 4),
               "test_accuracy": round(accuracy(model, test_x, test_y), 4),
               "test_accuracy_noise_0.3": round(accuracy(model, noisy_test, test_y), 4),
               "num_test": int(test_x.shape[0])}
    print(json.dumps(metrics))
    return model, {**log, **metrics}


def save(module: torch.nn.Module, log: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().to(torch.float32) for k, v in module.state_dict().items()}
    weights = out / zoo.WEIGHTS_FILE
    save_file(state, str(weights), metadata={"format": "pt"})
    config = {
        "name": "digits-classifier",
        "network": "DigitsClassifier",
        "architecture": ARCHITECTURE,
        "classes": list(range(10)),
        "input": "float32 (B, 1, 8, 8), NCHW, values x = pixel / 8 - 1 in [-1, 1]",
        "output": "logits (B, 10); log p(class | x) = log_softmax(logits); "
                  "features(x): penultimate (B, 64) for the classifier-Frechet distance",
        "data": {
            "source": "sklearn.datasets.load_digits",
            "scaling": "x = pixel / 8 - 1 (pixel intensities 0..16)",
            "range": [-1.0, 1.0],
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
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=TRAINING["seed"])
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    module, log = train(args.threads, args.seed)
    save(module, log, args.out)


if __name__ == "__main__":
    main()
