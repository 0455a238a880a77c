"""Recompilation of the steering runners when only numbers change, before and after the
"one engine, one vocabulary" refactor, side by side in one run.

"Before" is the first release's steering (git revision ``96bd6e6``, checked out with
``git worktree`` under ``inference/_work/``); "after" is this checkout. Each side runs in
its own process on the same 2-D analytic prior (50 DDPM steps, 256 particles): the first
call (compilation), a repeat, a new temperature, a new guidance scale (prior proposal), and
``jax.vmap`` over eight temperatures. Writes ``docs/results/bench_steering_compile.md``.

    .venv/bin/python inference/bench_steering_compile.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "96bd6e6"
OUT = ROOT / "docs" / "results" / "bench_steering_compile.md"

MEASURE = r"""
import json, time
import jax, jax.numpy as jnp, probinfer as pi
mix = pi.GaussianMixture(jnp.array([0.9, 0.1]), jnp.array([[-2.0, 0.0], [2.0, 1.0]]),
                         0.3 * jnp.stack([jnp.eye(2)] * 2))
prior = pi.diffusion.GaussianMixturePrior(mix, num_steps=50)
reward = lambda x: -0.5 * jnp.sum((x - jnp.array([2.0, 1.0])) ** 2)
key = jax.random.key(0)

def timed(fn):
    start = time.perf_counter()
    out = fn()
    jax.block_until_ready(out)
    return time.perf_counter() - start

row = {"first call": timed(lambda: pi.steer.fk(key, prior, reward, 256).log_evidence),
       "same call again": timed(lambda: pi.steer.fk(key, prior, reward, 256).log_evidence),
       "new temperature": timed(lambda: pi.steer.fk(key, prior, reward, 256,
                                                    temperature=0.7).log_evidence),
       "new guidance_scale": timed(lambda: pi.steer.fk(key, prior, reward, 256,
                                                       guidance_scale=2.0).log_evidence)}
try:
    temps = jnp.linspace(0.5, 2.0, 8)
    vmapped = jax.vmap(lambda t: pi.steer.fk(key, prior, reward, 256, temperature=t)
                       .log_evidence)
    row["vmap over 8 temperatures (first)"] = timed(lambda: vmapped(temps))
    row["vmap over 8 temperatures (new values)"] = timed(lambda: vmapped(temps + 0.1))
except Exception as err:
    row["vmap over 8 temperatures (first)"] = f"fails: {type(err).__name__}"
    row["vmap over 8 temperatures (new values)"] = "—"
print("RESULT" + json.dumps(row))
"""


def measure(path: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(path))
    out = subprocess.run([sys.executable, "-c", MEASURE], env=env, capture_output=True,
                         text=True, check=True, cwd=path).stdout
    return json.loads(out.split("RESULT", 1)[1])


def main():
    before_dir = ROOT / "inference" / "_work" / f"probinfer-{BEFORE}"
    if not before_dir.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(before_dir), BEFORE],
                       cwd=ROOT, check=True, capture_output=True)
    before, after = measure(before_dir), measure(ROOT)

    def cell(value):
        return f"{value:.3f} s" if isinstance(value, float) else value

    lines = ["# Steering: recompilation when only numbers change",
             "",
             "`.venv/bin/python inference/bench_steering_compile.py` — `pi.steer.fk` on a 2-D "
             "Gaussian-mixture prior (50 DDPM steps, 256 particles), wall time of each call, "
             f"first release (`{BEFORE}`) and this checkout, each in its own process, one run "
             "on a shared 2-core machine.",
             "",
             "| call | before | after |", "|---|---|---|"]
    for name in before:
        lines.append(f"| {name} | {cell(before[name])} | {cell(after[name])} |")
    OUT.write_text("\n".join(lines) + "\n")
    print(OUT.read_text())


if __name__ == "__main__":
    main()
