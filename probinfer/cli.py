"""The ``probinfer`` command.

``probinfer demo`` runs the main job: a bootstrap particle filter on a bundled
linear-Gaussian state-space model, checked against the exact Kalman answer.
"""

from __future__ import annotations

import argparse
import sys
import time


def _demo(args) -> int:
    import jax
    import numpy as np

    import probinfer as pi

    ssm = pi.ssm.LinearGaussian.scalar(rho=0.9, sigma_x=1.0, sigma_y=0.5)
    _, ys = ssm.simulate(jax.random.key(args.seed), args.steps)
    fk = pi.ssm.bootstrap(ssm, ys)
    kalman = ssm.kalman_filter(ys)
    print(f"probinfer {pi.__version__} demo: bootstrap particle filter, 1-D linear-Gaussian "
          f"SSM (rho=0.9, sigma_x=1, sigma_y=0.5), T={args.steps}, N={args.particles}, "
          f"JAX on {jax.devices()[0].platform}")
    pi.smc.run(jax.random.key(0), fk, args.particles).log_evidence.block_until_ready()
    estimates, times = [], []
    for r in range(args.replicates):
        start = time.perf_counter()
        res = pi.smc.run(jax.random.key(args.seed + 1 + r), fk, args.particles)
        res.log_evidence.block_until_ready()
        times.append(time.perf_counter() - start)
        estimates.append(float(res.log_evidence))
    est = np.asarray(estimates)
    exact = float(kalman.log_likelihood)
    ratio = np.exp(est - exact)
    last_mean = float(res.mean()[0])
    print(f"  exact log-likelihood (Kalman) {exact:12.4f}")
    print(f"  SMC log-evidence               {est.mean():12.4f} ± {est.std(ddof=1):.4f} "
          f"(mean ± sd over {args.replicates} runs)")
    print(f"  mean exp(logZ_hat - logZ)      {ratio.mean():12.4f} ± "
          f"{ratio.std(ddof=1) / np.sqrt(ratio.size):.4f} (unbiased: should be 1)")
    print(f"  filtering mean at t=T-1        {last_mean:12.4f} (Kalman "
          f"{float(kalman.filtering_means[-1, 0]):.4f})")
    print(f"  resampling steps               {int(res.info.resampled.sum()):12d} of "
          f"{args.steps} (ESS < N/2)")
    print(f"  min ESS over steps             {float(res.info.ess.min()):12.1f}")
    print(f"  wall time per filter           {1e3 * np.median(times):10.1f} ms (median, "
          f"compiled)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="probinfer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the bundled SMC demo and print a short report")
    demo.add_argument("--particles", type=int, default=10_000)
    demo.add_argument("--steps", type=int, default=100)
    demo.add_argument("--replicates", type=int, default=20)
    demo.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
