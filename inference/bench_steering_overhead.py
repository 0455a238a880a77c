"""The cost of FK steering over unguided sampling at equal NFE (issue "Right by default",
speed debts).

FK steering with the prior's own transition makes exactly the denoiser calls of unguided
sampling (each particle carries its denoised estimate), so any extra time is the steering
bookkeeping: rewards at the evaluation steps, potentials, resampling. Measured side by side
in one run, interleaved, as the ratio of median wall times (compiled calls):

* the 2-D analytic Gaussian-mixture prior (100 DDPM steps) at k = 64 and 1 024;
* the shipped digits DDPM (50 DDPM steps, torch through the bridge) at k = 8 and 64.

Each with a cheap JAX reward (what the bookkeeping costs) and, for the digits, the shipped
classifier as a host reward (what a user pays, reward calls included). Default settings of
``pi.steer.fk``. Writes ``docs/results/bench_steering_overhead.md``.

    .venv/bin/python inference/bench_steering_overhead.py [--repeats 15]

``--breakdown 300`` instead prints where the time of one ``pi.steer.fk`` call goes on the
2-D prior at k = 64: unguided sampling, the compiled steering run alone (the private
function ``fk`` calls, same keys, settings and policy) and the whole call, interleaved,
medians of that many calls (a table for the results page; nothing is written).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import jax
import jax.numpy as jnp

import probinfer as pi

OUT = Path(__file__).resolve().parents[1] / "docs" / "results" / "bench_steering_overhead.md"


def median_ratio(unguided, steered, repeats):
    times_u, times_s = [], []
    for fn, times in ((unguided, times_u), (steered, times_s)):
        jax.block_until_ready(fn(0))                      # compile
    for r in range(repeats):
        for fn, times in ((unguided, times_u), (steered, times_s)):
            start = time.perf_counter()
            jax.block_until_ready(fn(r + 1))
            times.append(time.perf_counter() - start)
    mu, ms = float(np.median(times_u)), float(np.median(times_s))
    return mu, ms, ms / mu


def analytic_problem():
    mix = pi.GaussianMixture(jnp.array([0.9, 0.1]), jnp.array([[-2.0, 0.0], [2.0, 1.0]]),
                             0.3 * jnp.stack([jnp.eye(2)] * 2))
    center = jnp.array([2.0, 1.0])
    return (pi.diffusion.GaussianMixturePrior(mix, num_steps=100),
            lambda x: -0.5 * jnp.sum((x - center) ** 2))


def breakdown(repeats, k=64):
    """Unguided sampling vs the compiled steering run alone vs the whole ``fk`` call."""
    from probinfer._compile import runner_key
    from probinfer.particles.resampling import get_resampler
    from probinfer.steering import _fk

    analytic, quadratic = analytic_problem()
    structure, settings, policy = _fk._configure(
        analytic, quadratic, "difference", 1.0, None, None, None, None, "prior", 1.0, 16,
        "raise", "interval", 0.5)
    run = _fk._whole_run(analytic, quadratic, structure, get_resampler("systematic"), k)
    calls = {
        "`prior.sample` (unguided, 100 steps)": lambda s: analytic.sample(jax.random.key(s), k),
        "the compiled steering run alone (same keys, settings, policy)":
            lambda s: run(runner_key(jax.random.key(s)), settings, policy)[0].particles.x,
        "`pi.steer.fk` (validation, configuration, the run, its checks, the result)":
            lambda s: pi.steer.fk(jax.random.key(s), analytic, quadratic, k).samples,
    }
    times = {name: [] for name in calls}
    for fn in calls.values():
        jax.block_until_ready(fn(0))
    for r in range(repeats):
        for name, fn in calls.items():
            start = time.perf_counter()
            jax.block_until_ready(fn(r + 1))
            times[name].append(time.perf_counter() - start)
    print(f"k = {k}, {repeats} interleaved calls each, load average {os.getloadavg()[0]:.1f}")
    print("| call | ms |\n|---|---:|")
    for name, values in times.items():
        print(f"| {name} | {1e3 * np.median(values):.2f} |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--breakdown", type=int, default=0, metavar="CALLS",
                        help="print the time breakdown of one call instead (see docstring)")
    args = parser.parse_args()
    if args.breakdown:
        return breakdown(args.breakdown)
    rows = []
    analytic, quadratic = analytic_problem()
    for k in (64, 1024):
        mu, ms, ratio = median_ratio(
            lambda s: analytic.sample(jax.random.key(s), k),
            lambda s: pi.steer.fk(jax.random.key(s), analytic, quadratic, k).samples,
            args.repeats)
        rows.append(("2-D mixture, 100 steps", "JAX quadratic", k, mu, ms, ratio))
        print(rows[-1], flush=True)

    digits = pi.zoo.load_prior("digits-ddpm", num_steps=50)
    template = jnp.asarray(pi.zoo.digits("train")[0][0])
    brightness = lambda x: -jnp.mean((x - template) ** 2)
    classifier = pi.zoo.load_reward("digits-classifier", target=3, differentiable=False)
    for reward_name, reward in (("JAX template distance", brightness),
                                ("classifier (torch, host)", classifier)):
        for k in (8, 64):
            mu, ms, ratio = median_ratio(
                lambda s: digits.sample(jax.random.key(s), k),
                lambda s: pi.steer.fk(jax.random.key(s), digits, reward, k,
                                      temperature=0.25).samples,
                args.repeats)
            rows.append(("digits DDPM, 50 steps", reward_name, k, mu, ms, ratio))
            print(rows[-1], flush=True)

    load = os.getloadavg()[0]
    lines = ["# FK steering overhead over unguided sampling at equal NFE",
             "",
             f"`.venv/bin/python inference/bench_steering_overhead.py --repeats {args.repeats}` "
             f"— default `pi.steer.fk` (difference potentials at ~20 evaluation steps, interval "
             f"resampling) vs `prior.sample`, interleaved, medians of {args.repeats} compiled "
             f"calls each; load average {load:.1f} on the 2-core machine at the end of the run.",
             "",
             "| prior | reward | k | unguided (ms) | FK steering (ms) | ratio |",
             "|---|---|---|---|---|---|"]
    for prior_name, reward_name, k, mu, ms, ratio in rows:
        lines.append(f"| {prior_name} | {reward_name} | {k} | {1e3 * mu:.1f} | "
                     f"{1e3 * ms:.1f} | {ratio:.2f} |")
    OUT.write_text("\n".join(lines) + "\n")
    print(OUT.read_text())


if __name__ == "__main__":
    main()
