"""Scaling the SMC engine: memory against the number of particles, compile-once, checkpoints.

Sections (``--section``, default all):

- ``memory``: a bootstrap filter on a scalar state (the 1-D linear-Gaussian SSM, float32,
  T = 100, systematic resampling when ESS < N/2), ``pi.smc.run(key, pi.ssm.bootstrap(ssm,
  ys), N)``, against a hand-written JAX filter of the same model (one ``lax.scan`` carrying
  the particles and log-weights, nothing else: the floor any JAX implementation pays), and
  against the engine with ``keep_ancestors=True`` (what every run kept before the genealogy
  became opt-in: ``T × N`` int32 ancestors). Each configuration runs in a fresh process, so
  its peak resident memory (``ru_maxrss``) is its own; the time per particle-step is the
  best of ``--repeats`` compiled runs (compilation excluded) divided by ``N T``.
- ``compile``: seconds per call of the README pattern ``pi.smc.run(key,
  pi.ssm.bootstrap(ssm, ys), N)`` when the model is rebuilt every call (new data of the same
  shape), against the same model reused.
- ``checkpoint``: overhead of ``checkpoint=pi.Checkpoint(path, every=10)`` on the same filter.
- ``chunks``: peak memory of ``pi.steer.fk`` (2-D mixture prior, 20 steps) with a reward
  whose intermediate is large (the mean of 4 096 random Fourier features of a particle,
  16 KB per particle), and of ``pi.smc.tempered`` on a logistic regression with 2 048 data
  points (per-datum terms of the likelihood and its gradient), at N and 10 N particles, all
  at once against ``chunk_size=1024``; fresh process per row.
- ``devices``: weak and strong scaling of ``pi.smc.run`` (the same filter) and ``pi.steer.fk``
  (a 2-D Gaussian-mixture prior, 100 steps, quadratic reward) with ``mesh=`` over 1, 2, 4, 8
  devices, each configuration in a fresh process with 8 virtual CPU devices
  (``--xla_force_host_platform_device_count=8``). Virtual devices share the machine's cores,
  so on a CPU this measures what sharding costs (partitioning, the gather of the
  log-weights, the exchange of resampled particles), not a speed-up; on a multi-GPU
  machine the same section measures the speed-up.

Usage::

    nice -n 10 .venv/bin/python inference/bench_scaling.py                 # all sections
    nice -n 10 .venv/bin/python inference/bench_scaling.py --section memory --max-particles 4000000

Writes ``docs/results/bench_scaling.md`` (the sections run; others keep their last table)
and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results" / "bench_scaling.md"
NUM_STEPS = 100
RHO, SIGMA_X, SIGMA_Y = 0.9, 1.0, 0.5


def _problem():
    import jax
    import probinfer as pi
    ssm = pi.ssm.LinearGaussian.scalar(rho=RHO, sigma_x=SIGMA_X, sigma_y=SIGMA_Y)
    _, ys = ssm.simulate(jax.random.key(0), NUM_STEPS)
    return ssm, ys


def _jax_filter(num_particles):
    """The floor: a bootstrap filter as one lax.scan over (particles, log-weights)."""
    import math
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp

    stationary_sd = SIGMA_X / math.sqrt(1 - RHO ** 2)

    def log_g(x, y):
        return -0.5 * ((y - x) / SIGMA_Y) ** 2 - math.log(SIGMA_Y * math.sqrt(2 * math.pi))

    def systematic(key, log_w):
        cdf = jnp.cumsum(jnp.exp(log_w))
        u = (jax.random.uniform(key, ()) + jnp.arange(num_particles)) / num_particles
        return jnp.minimum(jnp.searchsorted(cdf, u * cdf[-1]), num_particles - 1)

    @jax.jit
    def run(key, ys):
        init_key, key = jax.random.split(key)
        x = stationary_sd * jax.random.normal(init_key, (num_particles,))
        unnorm = log_g(x, ys[0])
        log_z = logsumexp(unnorm) - math.log(num_particles)
        log_w = unnorm - logsumexp(unnorm)

        def body(carry, inputs):
            x, log_w, log_z = carry
            k, y = inputs
            rk, mk = jax.random.split(k)
            ess = 1.0 / jnp.sum(jnp.exp(2 * log_w))
            x, log_w = jax.lax.cond(
                ess < num_particles / 2,
                lambda: (x[systematic(rk, log_w)], jnp.full_like(log_w, -math.log(num_particles))),
                lambda: (x, log_w))
            x = RHO * x + SIGMA_X * jax.random.normal(mk, x.shape)
            unnorm = log_w + log_g(x, y)
            total = logsumexp(unnorm)
            return (x, unnorm - total, log_z + total), None

        (x, log_w, log_z), _ = jax.lax.scan(
            body, (x, log_w, log_z), (jax.random.split(key, ys.shape[0] - 1), ys[1:, 0]))
        return log_z

    return run


def _memory_worker(kind, num_particles, repeats):
    import jax
    import probinfer as pi
    ssm, ys = _problem()
    key = jax.random.key(1)
    if kind == "jax":
        from probinfer._random import fast_key
        filt = _jax_filter(num_particles)

        def once():
            # The engine's faster Threefry lowering, so both sides draw the same bits alike.
            return filt(fast_key(key), ys).block_until_ready()
    else:
        fk = pi.ssm.bootstrap(ssm, ys)

        def once():
            res = pi.smc.run(key, fk, num_particles, progress_bar=False,
                             keep_ancestors=kind == "keep_ancestors")
            return res.log_evidence.block_until_ready()

    log_z = float(once())
    best = min(_timed(once) for _ in range(repeats))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"kind": kind, "num_particles": num_particles, "peak_mb": peak_mb,
            "ns_per_particle_step": 1e9 * best / (num_particles * NUM_STEPS), "log_z": log_z,
            "exact_log_z": float(ssm.kalman_filter(ys).log_likelihood)}


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _idle_worker():
    import jax.numpy as jnp
    import probinfer  # noqa: F401  (the import cost is part of every configuration)
    jnp.zeros(1).block_until_ready()
    return {"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _devices_worker(runner, num_devices, num_particles, repeats):
    import jax
    import jax.numpy as jnp
    from jax.sharding import Mesh
    import probinfer as pi
    mesh = Mesh(jax.devices()[:num_devices], ("particles",))
    if runner == "filter":
        ssm, ys = _problem()
        fk = pi.ssm.bootstrap(ssm, ys)

        def once(seed):
            return pi.smc.run(seed, fk, num_particles, mesh=mesh).log_evidence
    else:
        mix = pi.GaussianMixture(jnp.array([0.9, 0.1]), jnp.array([[-2.0, 0.0], [2.0, 1.0]]),
                                 0.3 * jnp.stack([jnp.eye(2)] * 2))
        prior = pi.diffusion.GaussianMixturePrior(mix, num_steps=100)
        center = jnp.array([2.0, 1.0])

        def reward(x):      # one function object: a new one per call would recompile
            return -0.5 * jnp.sum((x - center) ** 2)

        def once(seed):
            return pi.steer.fk(seed, prior, reward, num_particles, mesh=mesh).log_evidence

    once(0).block_until_ready()
    best = min(_timed(lambda: once(r + 1).block_until_ready()) for r in range(repeats))
    return {"runner": runner, "num_devices": num_devices, "num_particles": num_particles,
            "seconds": best}


def _chunks_worker(runner, num_particles, chunk_size):
    import jax
    import jax.numpy as jnp
    import probinfer as pi
    chunk = None if chunk_size == 0 else chunk_size
    if runner == "fk":
        mix = pi.GaussianMixture(jnp.array([0.9, 0.1]), jnp.array([[-2.0, 0.0], [2.0, 1.0]]),
                                 0.3 * jnp.stack([jnp.eye(2)] * 2))
        prior = pi.diffusion.GaussianMixturePrior(mix, num_steps=20)
        frequencies = jax.random.normal(jax.random.key(0), (4096, 2))

        def reward(x):
            return jnp.mean(jnp.cos(frequencies @ x))

        res = pi.steer.fk(0, prior, reward, num_particles, chunk_size=chunk)
    else:
        # Logistic regression on TEMPERED_DATA points: the log-likelihood's per-datum terms
        # are TEMPERED_DATA floats per particle (and as many again for the gradient).
        k1, k2 = jax.random.split(jax.random.key(0))
        features = jax.random.normal(k1, (TEMPERED_DATA, 3))
        labels = jax.random.bernoulli(k2, jax.nn.sigmoid(features @ jnp.array([0.3, -0.2, 0.1])))

        def log_likelihood(w):
            logits = features @ w
            return jnp.sum(jnp.where(labels, jax.nn.log_sigmoid(logits),
                                     jax.nn.log_sigmoid(-logits)))

        res = pi.smc.tempered(0, pi.Gaussian(jnp.zeros(3), jnp.eye(3)), log_likelihood,
                              num_particles, kernel=pi.kernels.repeat(pi.kernels.hmc(5), 2),
                              progress_bar=False, chunk_size=chunk)
    res.log_evidence.block_until_ready()
    return {"runner": runner, "num_particles": num_particles, "chunk_size": chunk_size,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


TEMPERED_DATA = 2048
CHUNK = 1024


def chunks_section(base_fk, base_tempered):
    idle = _in_subprocess("idle")["peak_mb"]
    rows = []
    for runner, base in (("fk", base_fk), ("tempered", base_tempered)):
        for num in (base, 10 * base):
            for chunk in (0, CHUNK):
                rows.append(_in_subprocess("chunks", runner, num, chunk))
                print(json.dumps(rows[-1]), flush=True)
    names = {"fk": "`pi.steer.fk`: 2-D mixture prior, 20 steps, a reward whose intermediate "
                   "is 4 096 floats per particle (mean of random Fourier features)",
             "tempered": f"`pi.smc.tempered`: logistic regression on {TEMPERED_DATA} points "
                         "(d = 3), `repeat(hmc(5), 2)` moves; the log-likelihood and its "
                         f"gradient hold {TEMPERED_DATA} per-datum terms per particle"}
    lines = ["## Chunked evaluation (`chunk_size=`)", "",
             "Peak resident memory of a fresh process above its baseline "
             f"({idle:.0f} MB), at N and 10 N particles, all at once against "
             f"`chunk_size={CHUNK}`. Command: "
             f"`python inference/bench_scaling.py {' '.join(sys.argv[1:])}`.", "",
             "| runner | N | all at once (MB) | `chunk_size=%d` (MB) |" % CHUNK,
             "|---|---:|---:|---:|"]
    for runner, base in (("fk", base_fk), ("tempered", base_tempered)):
        for num in (base, 10 * base):
            got = {r["chunk_size"]: r["peak_mb"] - idle for r in rows
                   if r["runner"] == runner and r["num_particles"] == num}
            lines.append(f"| {names[runner] if num == base else ''} | {num} | {got[0]:.0f} | "
                         f"{got[CHUNK]:.0f} |")
    return "\n".join(lines)


def devices_section(base_filter, base_fk, repeats):
    counts = (1, 2, 4, 8)
    rows = []
    for runner, base in (("filter", base_filter), ("fk", base_fk)):
        for mode in ("strong", "weak"):
            for d in counts:
                num = base * 8 if mode == "strong" else base * d
                r = _in_subprocess("devices", runner, d, num, repeats, device_count=8)
                r["mode"] = mode
                rows.append(r)
                print(json.dumps(r), flush=True)
    names = {"filter": f"`pi.smc.run`, bootstrap filter, T = {NUM_STEPS}",
             "fk": "`pi.steer.fk`, 2-D mixture prior, 100 steps"}
    lines = ["## Sharded particles over 1, 2, 4, 8 virtual CPU devices", "",
             f"`mesh=Mesh(jax.devices()[:d], ('particles',))`; best of {repeats} compiled runs "
             f"in a fresh process with 8 virtual devices on {os.cpu_count()} CPU cores. Strong "
             "scaling: the same total N on d devices (ideal: time / d); weak: N = base × d "
             "(ideal: constant time). Efficiency = ideal time / measured time. The virtual "
             "devices share the cores, so above d = cores no speed-up is possible here: the "
             "columns say what the sharded program costs over one device, not what GPUs "
             "would gain. Command: "
             f"`python inference/bench_scaling.py {' '.join(sys.argv[1:])}`.", "",
             "| runner | scaling | N | d | s / run | efficiency |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        one = next(q for q in rows if q["runner"] == r["runner"] and q["mode"] == r["mode"]
                   and q["num_devices"] == 1)
        ideal = one["seconds"] / r["num_devices"] if r["mode"] == "strong" else one["seconds"]
        lines.append(f"| {names[r['runner']]} | {r['mode']} | {r['num_particles']} | "
                     f"{r['num_devices']} | {r['seconds']:.3f} | {ideal / r['seconds']:.2f} |")
    return "\n".join(lines)


def _in_subprocess(*args, device_count=1):
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={device_count}")
    out = subprocess.run([sys.executable, __file__, "--worker", *map(str, args)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def memory_section(sizes, repeats, measured=None):
    """``measured``: rows printed by an earlier run of this section (one JSON object per
    line), to tabulate a run that was stopped before its largest N."""
    idle = _in_subprocess("idle")["peak_mb"]
    rows = [] if measured is None else [json.loads(line) for line in
                                        Path(measured).read_text().splitlines() if line]
    sizes = sizes if measured is None else sorted({r["num_particles"] for r in rows})
    for num in sizes if measured is None else ():
        # At 10^7 the genealogy alone is 4 GB: too much for the shared machine this ran on.
        kinds = ("jax", "probinfer") + (("keep_ancestors",) if num < 10_000_000 else ())
        for kind in kinds:
            r = _in_subprocess(kind, num, repeats if num < 4_000_000 else 1)
            rows.append(r)
            print(json.dumps(r), flush=True)
    base_time = {r["kind"]: r["ns_per_particle_step"] for r in rows
                 if r["num_particles"] == sizes[0]}
    lines = [
        "## Memory and time per particle-step (bootstrap filter, scalar state, T = 100)",
        "",
        f"Fresh process per row; peak RSS includes the process baseline (`import probinfer` "
        f"and JAX start-up: {idle:.0f} MB). One float32 particle array at N is 4 N bytes. "
        f"Time: best of {repeats} compiled runs (1 at N >= 4·10^6) / (N T); "
        "`flat` is the time per particle-step relative to the smallest N. Command: "
        f"`python inference/bench_scaling.py {' '.join(sys.argv[1:])}`.",
        "",
        "| N | run | peak RSS (MB) | RSS − baseline (MB) | ratio to JAX (over baseline) "
        "| ns / particle-step | flat | log Z − exact |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    jax_rss = {r["num_particles"]: r["peak_mb"] - idle for r in rows if r["kind"] == "jax"}
    names = {"jax": "hand-written JAX filter", "probinfer": "`pi.smc.run` (default)",
             "keep_ancestors": "`pi.smc.run(..., keep_ancestors=True)`"}
    for r in rows:
        over = r["peak_mb"] - idle
        ratio = over / jax_rss[r["num_particles"]] if jax_rss[r["num_particles"]] > 0 else float("nan")
        lines.append(
            f"| {r['num_particles']:.0e} | {names[r['kind']]} | {r['peak_mb']:.0f} | "
            f"{over:.0f} | {ratio:.2f} | {r['ns_per_particle_step']:.1f} | "
            f"{r['ns_per_particle_step'] / base_time[r['kind']]:.2f} | "
            f"{r['log_z'] - r['exact_log_z']:+.3f} |")
    return "\n".join(lines)


def _closure_bootstrap(ssm, ys):
    """The bootstrap filter as it was built before the models became pytrees: closures
    over the model and the data (structure and numbers mixed, so every rebuild compiles)."""
    import probinfer as pi
    return pi.smc.FeynmanKac(
        init=ssm.sample_initial, move=ssm.sample_transition,
        log_potential=lambda x_prev, x, t: ssm.observation_log_density(x, ys[t], t),
        num_steps=ys.shape[0])


def compile_section(num_particles, calls):
    import jax
    import probinfer as pi
    ssm, ys = _problem()
    datasets = [ys + 0.1 * i for i in range(calls + 1)]

    def per_call(build):
        pi.smc.run(0, build(0), num_particles).log_evidence.block_until_ready()
        start = time.perf_counter()
        for i in range(1, calls + 1):
            pi.smc.run(i, build(i), num_particles).log_evidence.block_until_ready()
        return (time.perf_counter() - start) / calls

    reused = pi.ssm.bootstrap(ssm, ys)
    rows = [
        ("model reused (same object, new key)", per_call(lambda i: reused)),
        ("`pi.ssm.bootstrap(ssm, ys_i)` rebuilt on new data", per_call(
            lambda i: pi.ssm.bootstrap(ssm, datasets[i]))),
        ("`pi.ssm.bootstrap(LinearGaussian.scalar(rho_i), ys_i)`: new model and data",
         per_call(lambda i: pi.ssm.bootstrap(
             pi.ssm.LinearGaussian.scalar(rho=0.9 - 0.01 * i, sigma_x=1.0, sigma_y=SIGMA_Y),
             datasets[i]))),
        ("closures over the data (how `bootstrap` was built before)", per_call(
            lambda i: _closure_bootstrap(ssm, datasets[i]))),
    ]
    lines = ["## Compile once (`pi.smc.run(key, pi.ssm.bootstrap(ssm, ys), N)` in a loop)", "",
             f"N = {num_particles}, T = {NUM_STEPS}; seconds per call, mean of {calls} calls "
             "after one warm-up call (which compiles).", "",
             "| how the model is made each call | s / call |", "|---|---:|"]
    lines += [f"| {name} | {sec:.3f} |" for name, sec in rows]
    return "\n".join(lines)


def checkpoint_section(sizes, repeats):
    import tempfile
    import probinfer as pi
    ssm, ys = _problem()
    fk = pi.ssm.bootstrap(ssm, ys)
    path = Path(tempfile.mkdtemp()) / "bench.npz"
    lines = ["## Checkpoint overhead (one checkpoint per 10 steps)", "",
             f"Bootstrap filter, T = {NUM_STEPS}; best of {repeats} runs after a warm-up. "
             f"Command: `python inference/bench_scaling.py {' '.join(sys.argv[1:])}`.", "",
             "| N | plain (s) | `checkpoint=pi.Checkpoint(path, every=10)` (s) | overhead "
             "| checkpoint file (MB) |", "|---:|---:|---:|---:|---:|"]
    for num in sizes:
        def plain():
            pi.smc.run(1, fk, num).log_evidence.block_until_ready()

        def saved():
            pi.smc.run(1, fk, num, checkpoint=pi.Checkpoint(path, every=10)
                       ).log_evidence.block_until_ready()

        times = {}
        for name, fn in (("plain", plain), ("saved", saved)):
            fn()
            times[name] = min(_timed(fn) for _ in range(repeats))
        size_mb = path.stat().st_size / 1e6
        lines.append(f"| {num:.0e} | {times['plain']:.3f} | {times['saved']:.3f} | "
                     f"{100 * (times['saved'] / times['plain'] - 1):+.1f} % | {size_mb:.1f} |")
    return "\n".join(lines)


def _replace_section(text, title, body):
    pattern = re.compile(rf"^## {re.escape(title)}.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        return pattern.sub(body.rstrip() + "\n\n", text)
    return text.rstrip() + "\n\n" + body.rstrip() + "\n"


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        kind = sys.argv[2]
        if kind == "idle":
            result = _idle_worker()
        elif kind == "chunks":
            result = _chunks_worker(sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        elif kind == "devices":
            result = _devices_worker(sys.argv[3], *map(int, sys.argv[4:7]))
        else:
            result = _memory_worker(kind, int(sys.argv[3]), int(sys.argv[4]))
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=["memory", "compile", "checkpoint", "chunks", "devices",
                                                "all"],
                        default="all")
    parser.add_argument("--max-particles", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", help="tabulate the memory rows (JSON lines) printed by an "
                        "earlier run instead of measuring them again")
    parser.add_argument("--devices-base-filter", type=int, default=2 ** 15,
                        help="particles per device of the weak scaling of the filter (strong "
                             "scaling runs 8 times this on every device count)")
    parser.add_argument("--devices-base-fk", type=int, default=2 ** 10,
                        help="the same for FK steering")
    args = parser.parse_args()
    sizes = [n for n in (100_000, 1_000_000, 4_000_000, 10_000_000) if n <= args.max_particles]

    text = RESULTS.read_text() if RESULTS.exists() else ""
    header = (f"# Scaling the SMC engine\n\nMachine: {platform.machine()}, {os.cpu_count()} "
              f"CPUs (shared with other jobs). Command: `python inference/bench_scaling.py "
              f"{' '.join(sys.argv[1:])}`.\n\n")
    if args.section != "all" and text:
        # One section rerun: the header keeps the command of the other sections' run.
        header = re.match(r"\A# Scaling the SMC engine.*?(?=^## |\Z)", text, re.S | re.M)[0]
    text = header + re.sub(r"\A# Scaling the SMC engine.*?(?=^## |\Z)", "", text, flags=re.S | re.M)
    if args.section in ("memory", "all"):
        body = memory_section(sizes, args.repeats, args.rows)
        text = _replace_section(text, "Memory and time", body)
    if args.section in ("compile", "all"):
        text = _replace_section(text, "Compile once", compile_section(100_000, 5))
    if args.section in ("checkpoint", "all"):
        text = _replace_section(text, "Checkpoint overhead", checkpoint_section(
            [n for n in (100_000, 1_000_000) if n <= args.max_particles], args.repeats))
    if args.section in ("chunks", "all"):
        text = _replace_section(text, "Chunked evaluation", chunks_section(8192, 4096))
    if args.section in ("devices", "all"):
        text = _replace_section(text, "Sharded particles", devices_section(
            args.devices_base_filter, args.devices_base_fk, args.repeats))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
