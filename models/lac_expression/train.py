"""Train the two lac-promoter expression oracles and write their model cards.

* ``lac-expression`` (the steering oracle): ridge regression on one-hot sequences (an
  additive position-weight model, :class:`probinfer._zoo_networks.LinearSequenceRegressor`)
  fitted on MAVE-NN's ``training`` split, ridge penalty chosen by 5-fold cross-validation
  on that split.
* ``lac-expression-heldout`` (evaluation only): a small 1-D CNN
  (:class:`probinfer._zoo_networks.SequenceCNNRegressor`) trained on the disjoint
  ``validation`` split. A different model family on different sequences: steering may
  exploit the ridge model's errors, and the design study checks whether its gains survive
  under this one.

Both predict the read-weighted mean sort bin (0..9; ``sortseq.py``). R² of both on the
``test`` split, and their agreement, go into the cards.

Run from the repository root (CPU, one thread)::

    nice -n 10 .venv/bin/python models/lac_expression/train.py [--wheel mavenn.whl]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from sklearn.linear_model import RidgeCV

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lac_promoter_mdm"))
import sortseq  # noqa: E402
from probinfer import zoo  # noqa: E402
from probinfer._zoo_networks import (LinearSequenceRegressor,  # noqa: E402
                                     SequenceCNNRegressor)

HELDOUT_DIR = HERE.parent / "lac_expression_heldout"
CNN = {"vocab_size": 4, "length": sortseq.LENGTH, "channels": 32, "kernel_size": 9}
CNN_TRAINING = {"seed": 0, "epochs": 12, "batch_size": 128, "learning_rate": 3e-3,
                "optimizer": "AdamW(weight_decay=1e-3)", "loss": "mean squared error",
                "early_stopping": "keep the epoch with the lowest loss on 10 % of the "
                                  "validation split held out from its fit"}


def one_hot(tokens: np.ndarray) -> np.ndarray:
    return np.eye(4, dtype=np.float64)[tokens].reshape(tokens.shape[0], -1)


def r2(y, pred) -> float:
    return float(1.0 - np.sum((y - pred) ** 2) / np.sum((y - np.mean(y)) ** 2))


def fit_ridge(x, y):
    model = RidgeCV(alphas=np.logspace(-1, 4, 11), cv=5).fit(one_hot(x), y)
    module = LinearSequenceRegressor(4, sortseq.LENGTH)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(model.coef_.reshape(sortseq.LENGTH, 4)))
        module.bias.copy_(torch.tensor(float(model.intercept_)))
    return module.eval(), {"alpha": float(model.alpha_)}


def fit_cnn(x, y, seed):
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    order = np.random.default_rng(seed).permutation(len(y))
    stop = order[: len(y) // 10]
    fit = order[len(y) // 10:]
    xs, ys = torch.from_numpy(x), torch.from_numpy(y).float()
    module = SequenceCNNRegressor(**CNN)
    optimizer = torch.optim.AdamW(module.parameters(), lr=CNN_TRAINING["learning_rate"],
                                  weight_decay=1e-3)
    best, best_state, log = np.inf, None, []
    for epoch in range(CNN_TRAINING["epochs"]):
        module.train()
        perm = torch.from_numpy(fit)[torch.randperm(len(fit), generator=generator)]
        for lo in range(0, len(perm), CNN_TRAINING["batch_size"]):
            batch = perm[lo:lo + CNN_TRAINING["batch_size"]]
            loss = torch.mean((module(xs[batch]) - ys[batch]) ** 2)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        module.eval()
        with torch.no_grad():
            stop_loss = float(torch.mean((module(xs[stop]) - ys[stop]) ** 2))
        log.append(round(stop_loss, 4))
        print(f"epoch {epoch + 1}: early-stopping MSE {stop_loss:.4f}", flush=True)
        if stop_loss < best:
            best = stop_loss
            best_state = {k: v.clone() for k, v in module.state_dict().items()}
    module.load_state_dict(best_state)
    return module.eval(), {"early_stopping_mse_per_epoch": log}


def save(module, out: Path, name: str, network: str, architecture: dict, extra: dict):
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().to(torch.float32) for k, v in module.state_dict().items()}
    weights = out / zoo.WEIGHTS_FILE
    save_file(state, str(weights), metadata={"format": "pt"})
    config = {"name": name, "network": network, "architecture": architecture,
              "kind": "oracle", "tokenizer": {"type": "dna", "alphabet": sortseq.ALPHABET},
              **extra, "weights": zoo.weights_manifest(weights, state)}
    (out / zoo.CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")


CARD = """# {name}

{summary}

- Architecture: `{network}` ({params} parameters), `{arch}`.
- Trained on MAVE-NN's `{split}` split of the lac-promoter sort-seq library ({n_train}
  sequences; `mavenn=={version}` wheel, `{member}`).
- Label: read-weighted mean sort bin (0 = dimmest .. 9 = brightest); most sequences have
  one read, so even a perfect model of the mean could not reach R² = 1.
- {fit}

## Held-out accuracy (MAVE-NN `test` split, {n_test} sequences)

| quantity | value |
|---|---|
| R² on test | {r2_test:.3f} |
| Pearson r with the other oracle on test | {agreement:.3f} |

Use: {use}

Measured by `models/lac_expression/train.py` (this card is written by it; wall time
{seconds:.0f} s on the shared CPU, one thread).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    data = sortseq.load(args.wheel)
    x_test, y_test = data["test"]
    ridge, ridge_log = fit_ridge(*data["training"])
    cnn, cnn_log = fit_cnn(*data["validation"], args.seed)
    with torch.no_grad():
        p_ridge = ridge(torch.from_numpy(x_test)).double().numpy()
        p_cnn = cnn(torch.from_numpy(x_test)).double().numpy()
    agreement = float(np.corrcoef(p_ridge, p_cnn)[0, 1])
    seconds = time.perf_counter() - start
    common = {"version": sortseq.MAVENN_VERSION, "member": sortseq.MEMBER,
              "n_test": len(y_test), "agreement": agreement, "seconds": seconds}
    specs = [
        (ridge, HERE, "lac-expression", "LinearSequenceRegressor",
         {"vocab_size": 4, "length": sortseq.LENGTH}, "training", ridge_log,
         r2(y_test, p_ridge),
         "The steering oracle: ridge regression on one-hot sequences (an additive "
         "position-weight model of expression).",
         f"Ridge penalty {ridge_log['alpha']:.3g}, chosen by 5-fold CV on the training split.",
         "`pi.zoo.load_oracle(\"lac-expression\")`, the reward that steering optimises."),
        (cnn, HELDOUT_DIR, "lac-expression-heldout", "SequenceCNNRegressor", CNN,
         "validation", {**CNN_TRAINING, **cnn_log}, r2(y_test, p_cnn),
         "The evaluation oracle: a small 1-D CNN, a different model family trained on "
         "sequences disjoint from the steering oracle's.",
         f"Trained {CNN_TRAINING['epochs']} epochs with early stopping "
         f"(per-epoch MSE {cnn_log['early_stopping_mse_per_epoch']}).",
         "`pi.zoo.load_oracle(\"lac-expression-heldout\")`, for evaluation only: never steer "
         "with it, or the held-out check means nothing."),
    ]
    for module, out, name, network, arch, split, log, score, summary, fit, use in specs:
        save(module, out, name, network, arch,
             {"data": {"source": f"mavenn=={sortseq.MAVENN_VERSION} wheel, {sortseq.MEMBER}",
                       "trained_on": split, "label": "read-weighted mean sort bin 0..9"},
              "training": log, "test_r2": round(score, 4)})
        (out / zoo.CARD_FILE).write_text(CARD.format(
            name=name, summary=summary, network=network,
            params=sum(p.numel() for p in module.parameters()), arch=json.dumps(arch),
            split=split, n_train=len(data[split][1]), fit=fit, r2_test=score, use=use,
            **common))
        print(f"{name}: test R² {score:.3f}")
    print(f"Pearson r of the two oracles on test: {agreement:.3f}")


if __name__ == "__main__":
    main()
