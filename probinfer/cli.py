"""The ``probinfer`` command.

``probinfer demo`` runs the main job: the shipped digits diffusion model steered to a chosen
digit by FK steering, with the shipped classifier as the reward. It writes a PNG grid of
unguided and steered samples and a JSON/Markdown report (class accuracy of both, rewards,
NFE, ESS). ``probinfer steer`` steers any shipped prior (or the built-in exact 2-D mixture)
with a shipped or built-in reward by FK steering, SVDD or best-of-N and writes the samples,
a figure and a report; ``probinfer bench`` lists and runs the studies in ``inference/``;
``probinfer filter`` runs a bootstrap particle filter checked against the exact Kalman
answer; ``probinfer zoo`` lists the shipped models. ``--quiet`` silences messages and
progress bars (errors still go to stderr).
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

INFERENCE_DIR = Path(__file__).resolve().parents[1] / "inference"
METHODS = ("fk", "svdd", "best-of-n")
# The built-in exact prior and reward (no torch): a 2-D two-component Gaussian mixture and
# r(x) = x_1, whose tilt is known in closed form, so ``steer`` reports the exact answer.
EXACT_PRIOR = "gmm-2d"
EXACT_REWARD = "first-coordinate"


class _Parser(argparse.ArgumentParser):
    """argparse, with the closest valid choice suggested for a mistyped one."""

    def error(self, message):
        match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if match:
            choices = re.findall(r"'([^']*)'", match.group(2))
            message += _suggestion(match.group(1), choices)
        super().error(message)


def _suggestion(name: str, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def _unknown(kind: str, name: str, choices) -> SystemExit:
    return SystemExit(f"probinfer: unknown {kind} {name!r}{_suggestion(name, choices)} "
                      f"(choose from {', '.join(choices)})")


class _Say:
    """Messages to stdout unless ``--quiet``."""

    def __init__(self, quiet: bool):
        self.quiet = quiet

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(message, flush=True)


def _steering_demo(args) -> int:
    import jax
    import jax.numpy as jnp
    import numpy as np

    import probinfer as pi
    from probinfer._progress import tqdm

    if not 0 <= args.digit <= 9:
        raise SystemExit(f"probinfer demo: --digit must be 0..9, got {args.digit}")
    say = _Say(args.quiet)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    prior = pi.zoo.load_prior("digits-ddpm", num_steps=args.steps)
    reward = pi.zoo.load_reward("digits-classifier", target=args.digit, differentiable=False)
    classifier = pi.zoo.load("digits-classifier").module
    say(f"probinfer {pi.__version__} demo: FK steering of the shipped digits DDPM "
          f"({args.steps} DDPM steps) towards the digit {args.digit}, reward log p({args.digit} "
          f"| x) from the shipped classifier, temperature {args.temperature}; "
          f"{args.samples} samples, each from one run of {args.particles} particles; "
          f"JAX on {jax.devices()[0].platform}")

    start = time.perf_counter()
    keys = jax.random.split(jax.random.key(args.seed), args.samples + 1)
    unguided = prior.sample(keys[0], args.samples)
    steered, ess_traces, log_evidence = [], [], []
    for key in tqdm(keys[1:], desc="steering", unit="run"):
        run_key, pick_key = jax.random.split(key)
        res = pi.steer.fk(run_key, prior, reward, args.particles, temperature=args.temperature)
        steered.append(res.resample(pick_key, 1).samples[0])
        ess_traces.append(np.asarray(res.info.ess))
        log_evidence.append(float(res.log_evidence))
    steered = jnp.stack(steered)
    seconds = time.perf_counter() - start

    _, probs_unguided = pi.diagnostics.classifier_outputs(classifier, unguided)
    _, probs_steered = pi.diagnostics.classifier_outputs(classifier, steered)
    log_p = lambda probs: np.log(np.maximum(probs[:, args.digit], 1e-300))
    report = {
        "digit": args.digit,
        "class_accuracy": float(np.mean(probs_steered.argmax(1) == args.digit)),
        "unguided_accuracy": float(np.mean(probs_unguided.argmax(1) == args.digit)),
        "mean_reward_steered": float(np.mean(log_p(probs_steered))),
        "mean_reward_unguided": float(np.mean(log_p(probs_unguided))),
        "nfe": int(res.info.nfe) * args.samples,
        "nfe_per_steered_sample": int(res.info.nfe),
        "particles_per_run": args.particles,
        "temperature": args.temperature,
        "num_steps": args.steps,
        "mean_final_ess": float(np.mean([trace[-1] for trace in ess_traces])),
        "ess_trace_mean": np.mean(ess_traces, axis=0).round(2).tolist(),
        "log_evidence_mean": float(np.mean(log_evidence)),
        "seconds": round(seconds, 2),
        "seed": args.seed,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    _write_grid(out / "demo.png", np.asarray(unguided), np.asarray(steered),
                probs_unguided.argmax(1), probs_steered.argmax(1), args.digit)
    (out / "report.md").write_text(
        f"# probinfer demo: steering digits towards {args.digit}\n\n"
        f"| | unguided | FK steering |\n|---|---|---|\n"
        f"| class accuracy | {report['unguided_accuracy']:.2f} | "
        f"{report['class_accuracy']:.2f} |\n"
        f"| mean log p({args.digit} given x) | {report['mean_reward_unguided']:.2f} | "
        f"{report['mean_reward_steered']:.2f} |\n"
        f"| NFE per sample | {int(np.sum(prior.nfe_per_step))} | "
        f"{report['nfe_per_steered_sample']} |\n\n"
        f"Mean final ESS {report['mean_final_ess']:.1f} of {args.particles} particles; "
        f"{seconds:.1f} s. Samples: `demo.png` (top: unguided, bottom: steered).\n")
    say(f"  class accuracy  unguided {report['unguided_accuracy']:.2f}  ->  "
          f"steered {report['class_accuracy']:.2f}")
    say(f"  mean log p({args.digit}|x) unguided {report['mean_reward_unguided']:.2f}  ->  "
          f"steered {report['mean_reward_steered']:.2f}")
    say(f"  NFE per steered sample {report['nfe_per_steered_sample']} "
          f"({args.particles} particles x {args.steps} steps); mean final ESS "
          f"{report['mean_final_ess']:.1f}; {seconds:.1f} s")
    say(f"  wrote {out / 'demo.png'}, {out / 'report.json'}, {out / 'report.md'}")
    return 0


def _write_grid(path, unguided, steered, labels_unguided, labels_steered, digit) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = unguided.shape[0]
    fig, axes = plt.subplots(2, cols, figsize=(0.9 * cols, 2.4), squeeze=False)
    for row, (images, labels, name) in enumerate(((unguided, labels_unguided, "unguided"),
                                                  (steered, labels_steered, "steered"))):
        for col in range(cols):
            ax = axes[row, col]
            ax.imshow(images[col].reshape(8, 8), cmap="gray_r", vmin=-1, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(str(labels[col]), fontsize=8,
                         color="C2" if labels[col] == digit else "C3")
        axes[row, 0].set_ylabel(name, fontsize=8)
    fig.suptitle(f"digits DDPM, unguided vs FK-steered towards {digit} "
                 "(titles: classifier's label)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _filter_demo(args) -> int:
    import jax
    import numpy as np

    import probinfer as pi

    say = _Say(args.quiet)

    ssm = pi.ssm.LinearGaussian.scalar(rho=0.9, sigma_x=1.0, sigma_y=0.5)
    _, ys = ssm.simulate(jax.random.key(args.seed), args.steps)
    fk = pi.ssm.bootstrap(ssm, ys)
    kalman = ssm.kalman_filter(ys)
    say(f"probinfer {pi.__version__}: bootstrap particle filter, 1-D linear-Gaussian "
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
    say(f"  exact log-likelihood (Kalman) {exact:12.4f}")
    say(f"  SMC log-evidence               {est.mean():12.4f} ± {est.std(ddof=1):.4f} "
          f"(mean ± sd over {args.replicates} runs)")
    say(f"  mean exp(logZ_hat - logZ)      {ratio.mean():12.4f} ± "
          f"{ratio.std(ddof=1) / np.sqrt(ratio.size):.4f} (unbiased: should be 1)")
    say(f"  filtering mean at t=T-1        {float(res.mean()[0]):12.4f} (Kalman "
          f"{float(kalman.filtering_means[-1, 0]):.4f})")
    say(f"  wall time per filter           {1e3 * np.median(times):10.1f} ms (median, "
          f"compiled)")
    return 0


def _zoo(args) -> int:
    import probinfer as pi

    for name in pi.zoo.available():
        try:
            card = pi.zoo.model_dir(name) / pi.zoo.CARD_FILE
        except FileNotFoundError:
            print(f"{name:22s} (weights not found: run the model's train.py in models/)")
            continue
        summary = next((line.strip() for line in card.read_text().splitlines()
                        if line.strip() and not line.startswith("#")), "") if card.exists() else ""
        print(f"{name:22s} {summary}")
    return 0


def _zoo_config(name: str):
    import probinfer as pi

    try:
        return pi.zoo.read_config(pi.zoo.model_dir(name) / pi.zoo.CONFIG_FILE)
    except (FileNotFoundError, ValueError):
        return None


def _steer_names():
    """Prior names, reward names, and ``fits(prior, reward)``, read from the zoo configs."""
    import probinfer as pi

    configs = {name: _zoo_config(name) for name in pi.zoo.available()}
    priors = [EXACT_PRIOR] + sorted(
        n for n, c in configs.items() if c and (c.get("kind") == "masked"
                                                or ("schedule" in c and "prediction" in c)))
    classifiers = sorted(n for n, c in configs.items() if c and "classes" in c)
    oracles = list(getattr(pi.zoo, "ORACLES", ()))
    chemistry = ("qed", "sa", "logp", "mw")

    def fits(prior: str, reward: str) -> bool:
        if EXACT_PRIOR in (prior, reward) or EXACT_REWARD in (prior, reward):
            return prior == EXACT_PRIOR and reward == EXACT_REWARD
        prior_config = configs.get(prior) or {}
        if reward in classifiers:
            return prior_config.get("sample_shape") == \
                configs[reward]["architecture"].get("image_shape")
        if reward in chemistry:
            return prior == "moses-selfies-mdm"
        reward_config = configs.get(reward) or {}
        return "tokenizer" in prior_config and \
            prior_config["tokenizer"] == reward_config.get("tokenizer")

    return priors, [EXACT_REWARD] + classifiers + oracles, fits


def _exact_mixture():
    import jax.numpy as jnp

    import probinfer as pi

    return pi.GaussianMixture(jnp.array([0.8, 0.2]), jnp.array([[-2.0, 0.0], [2.0, 1.0]]),
                              jnp.stack([jnp.array([[0.5, 0.2], [0.2, 0.5]])] * 2))


def _steer(args) -> int:
    import jax
    import jax.numpy as jnp
    import numpy as np

    import probinfer as pi

    say = _Say(args.quiet)
    priors, rewards, fits = _steer_names()
    if args.prior not in priors:
        raise _unknown("prior", args.prior, priors)
    if args.reward not in rewards:
        raise _unknown("reward", args.reward, rewards)
    if not fits(args.prior, args.reward):
        raise SystemExit(f"probinfer steer: the reward {args.reward!r} does not fit the prior "
                         f"{args.prior!r} (rewards that fit it: "
                         f"{', '.join(r for r in rewards if fits(args.prior, r)) or 'none'})")
    for name in ("num_particles", "num_steps", "num_candidates", "samples"):
        if getattr(args, name) < 1:
            raise SystemExit(f"probinfer steer: --{name.replace('_', '-')} must be >= 1, got "
                             f"{getattr(args, name)}")
    if not args.temperature > 0 and args.method != "svdd":
        raise SystemExit(f"probinfer steer: --temperature must be > 0, got {args.temperature}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    exact = args.prior == EXACT_PRIOR
    invalid = "raise"
    mixture = None
    if exact:
        mixture = _exact_mixture()
        prior = pi.diffusion.GaussianMixturePrior(mixture, num_steps=args.num_steps)
        reward = lambda x: x[0]                                   # noqa: E731
        what = "r(x) = x_1"
    else:
        prior = pi.zoo.load_prior(args.prior, num_steps=args.num_steps)
        if args.reward in getattr(pi.zoo, "ORACLES", ()):
            reward = pi.zoo.load_oracle(args.reward)
            what = f"the {args.reward} oracle"
            invalid = "reject"          # designs an oracle cannot score weigh nothing
        else:
            try:
                reward = pi.zoo.load_reward(args.reward, target=args.target,
                                            differentiable=False)
            except ValueError as err:
                raise SystemExit(f"probinfer steer: {err}") from err
            what = f"log p({args.target} | x) from {args.reward}"
    say(f"probinfer {pi.__version__} steer: {args.method} on {args.prior} ({args.num_steps} "
        f"steps), reward {what}, temperature {args.temperature}, {args.num_particles} "
        f"particles; JAX on {jax.devices()[0].platform}")

    key = jax.random.key(args.seed)
    start = time.perf_counter()
    if args.method == "fk":
        res = pi.steer.fk(key, prior, reward, args.num_particles, temperature=args.temperature,
                          invalid_reward=invalid)
    elif args.method == "svdd":
        res = pi.steer.svdd(key, prior, reward, args.num_particles, args.num_candidates,
                            temperature=args.temperature, invalid_reward=invalid)
    else:
        res = pi.steer.best_of_n(key, prior, reward, n=args.num_particles,
                                 num_samples=args.samples, invalid_reward=invalid)
    seconds = time.perf_counter() - start

    weights = np.exp(np.asarray(res.log_weights, dtype=np.float64))
    weights /= weights.sum()
    scores = np.asarray(jax.vmap(reward)(jnp.asarray(res.samples)), dtype=np.float64)
    scored = np.isfinite(scores)
    _, counters = res.info.traces()
    report = {"prior": args.prior, "reward": args.reward, "method": args.method,
              "num_particles": args.num_particles, "num_steps": args.num_steps,
              "temperature": args.temperature, "seed": args.seed,
              "num_samples": int(scores.size),
              "mean_reward": float(np.sum(weights[scored] * scores[scored])
                                   / max(np.sum(weights[scored]), 1e-300)),
              "num_unscored_samples": int(np.sum(~scored)),
              "ess": float(1.0 / np.sum(weights ** 2)),
              "log_evidence": None if not np.isfinite(res.log_evidence)
              else float(res.log_evidence),
              "nfe": int(counters["nfe"]),
              "num_reward_evaluations": int(counters["num_reward_evaluations"]),
              "seconds": round(seconds, 2)}
    if args.reward in rewards and _zoo_config(args.reward) and \
            "classes" in _zoo_config(args.reward):
        report["target"] = args.target
    if exact and (args.method == "fk" or (args.method == "svdd" and args.temperature > 0)):
        # Both target p(x) exp(x_1 / T); best-of-N and SVDD at T = 0 target something else.
        tilted, log_z = mixture.tilt_linear(jnp.array([1.0 / args.temperature, 0.0]), 1.0)
        report["exact_mean_reward"] = float(jnp.sum(tilted.weights * tilted.means[:, 0]))
        report["exact_log_evidence"] = float(log_z)
    res.save(out / "samples.npz")
    written = ["samples.npz"]
    if hasattr(prior, "decode"):
        lines = [f"{w:.4f}\t{r:.4f}\t{text}" for w, r, text in
                 zip(weights, scores, prior.decode(np.asarray(res.samples)))]
        (out / "samples.txt").write_text("weight\treward\tsample\n" + "\n".join(lines) + "\n")
        written.append("samples.txt")
    written.append(_steer_figure(out, res, exact, mixture, args))
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# probinfer steer: {args.method} on {args.prior}", "",
             f"Reward {what}, temperature {args.temperature}, {args.num_particles} particles, "
             f"{args.num_steps} steps, seed {args.seed}.", "", "| quantity | value |",
             "|---|---|"]
    lines += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |"
              for k, v in report.items()
              if k in ("mean_reward", "exact_mean_reward", "ess", "log_evidence",
                       "exact_log_evidence", "nfe", "num_reward_evaluations",
                       "num_unscored_samples", "seconds")]
    lines += ["", "Files: " + ", ".join(f"`{name}`" for name in written)
              + " (`samples.npz`: `probinfer.Result.load`).", ""]
    (out / "report.md").write_text("\n".join(lines))
    say(f"  mean reward {report['mean_reward']:.3f}"
        + (f" (exact {report['exact_mean_reward']:.3f})" if "exact_mean_reward" in report
           else "") + f"; ESS {report['ess']:.1f}; NFE {report['nfe']}; {seconds:.1f} s")
    say("  wrote " + ", ".join(str(out / name) for name in
                               written + ["report.json", "report.md"]))
    return 0


def _steer_figure(out, res, exact, mixture, args) -> str:
    """Particles over the exact density (gmm-2d), an image grid, or the reward traces."""
    import matplotlib
    matplotlib.use("Agg")
    import jax.numpy as jnp
    import matplotlib.pyplot as plt
    import numpy as np

    import probinfer as pi

    samples = np.asarray(res.samples)
    if exact:
        target, _ = mixture.tilt_linear(jnp.array([1.0 / max(args.temperature, 1e-6), 0.0]), 1.0)
        fig = pi.plot.plot_particles_2d(target, res)
        fig.axes[0].set_title(f"{args.method}: particles over the exact tilted density",
                              fontsize=9)
    elif samples.ndim == 4 and np.issubdtype(samples.dtype, np.floating):
        fig = pi.plot.plot_image_grid(samples[:24], vmin=-1, vmax=1)
        fig.suptitle(f"{args.method} on {args.prior} towards {args.target}", fontsize=9)
    else:
        fig = pi.plot.plot_rewards(res)
        fig.axes[0].set_title(f"{args.method} on {args.prior}, reward {args.reward}",
                              fontsize=9)
    name = "samples.png"
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


def _studies() -> dict:
    """``{name: first paragraph of its docstring}`` for the scripts in ``inference/``."""
    if not INFERENCE_DIR.is_dir():
        return {}
    studies = {}
    for path in sorted(INFERENCE_DIR.glob("*.py")):
        if path.name.startswith("_"):
            continue
        try:
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        except SyntaxError:
            doc = ""
        studies[path.stem] = " ".join(doc.split("\n\n")[0].split())
    return studies


def _bench(args) -> int:
    studies = _studies()
    if not studies:
        raise SystemExit(f"probinfer bench: no studies found in {INFERENCE_DIR}; the studies "
                         "ship with a source checkout (git clone), not with the wheel")
    if args.list or args.name is None:
        width = max(map(len, studies))
        for name, summary in studies.items():
            print(f"{name:{width}s}  {summary}")
        return 0
    name = args.name[:-3] if args.name.endswith(".py") else args.name
    if name not in studies:
        raise _unknown("study", args.name, list(studies))
    extra = args.study_args[1:] if args.study_args[:1] == ["--"] else args.study_args
    command = [sys.executable, str(INFERENCE_DIR / f"{name}.py"), *extra]
    _Say(args.quiet)(f"probinfer bench: {' '.join(command)}")
    return subprocess.run(command, cwd=INFERENCE_DIR.parent, check=False).returncode


def _parser() -> argparse.ArgumentParser:
    quiet = argparse.ArgumentParser(add_help=False)
    quiet.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                       help="no messages and no progress bars (errors still print)")
    parser = _Parser(prog="probinfer", description=__doc__.split("\n\n")[0].splitlines()[0],
                     parents=[quiet])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser("demo", parents=[quiet],
                          help="steer the shipped digits prior to a digit (main job)")
    demo.add_argument("--digit", type=int, default=3, help="digit to steer towards (0-9)")
    demo.add_argument("--out", default="demo-output", help="folder for demo.png and reports")
    demo.add_argument("--samples", type=int, default=12, help="steered samples (one run each)")
    demo.add_argument("--particles", type=int, default=16, help="particles per run")
    demo.add_argument("--steps", type=int, default=50, help="DDPM steps")
    demo.add_argument("--temperature", type=float, default=0.25)
    demo.add_argument("--seed", type=int, default=0)

    steer = sub.add_parser("steer", parents=[quiet],
                           help="steer a shipped (or the built-in exact) prior with a reward",
                           description="Steer a prior with a reward and write samples.npz, "
                           "samples.png (samples.txt for sequences), report.json and "
                           "report.md. Priors: the zoo's diffusion models (images, "
                           f"sequences) and {EXACT_PRIOR!r} (an exact 2-D mixture); rewards: "
                           "the zoo's classifiers (log p(--target | x)) and oracles, and "
                           f"{EXACT_REWARD!r} (r(x) = x_1, for {EXACT_PRIOR!r}, whose exact "
                           "answer is reported). A wrong pair is refused with the rewards "
                           "that fit the prior.")
    steer.add_argument("--prior", default="digits-ddpm", help="prior name (see above)")
    steer.add_argument("--reward", default="digits-classifier", help="reward name")
    steer.add_argument("--method", choices=METHODS, default="fk",
                       help="FK steering, SVDD or best-of-N")
    steer.add_argument("--num-particles", type=int, default=16,
                       help="particles (fk, svdd) or candidates per sample (best-of-n)")
    steer.add_argument("--num-steps", type=int, default=50, help="diffusion steps")
    steer.add_argument("--temperature", type=float, default=0.25,
                       help="target temperature (svdd: 0 picks the best child)")
    steer.add_argument("--target", type=int, default=3, help="class of a classifier reward")
    steer.add_argument("--num-candidates", type=int, default=8, help="children per step (svdd)")
    steer.add_argument("--samples", type=int, default=8, help="winners drawn (best-of-n)")
    steer.add_argument("--seed", type=int, default=0)
    steer.add_argument("--out", default="steer-output", help="output folder")

    bench = sub.add_parser("bench", parents=[quiet], help="list or run a study in inference/",
                           description="Run a study script from inference/ (needs a source "
                           "checkout). Arguments after the name go to the script, e.g. "
                           "`probinfer bench sobol_vs_salib -- --replicates 2`.")
    bench.add_argument("name", nargs="?", help="study name (see --list)")
    bench.add_argument("--list", action="store_true", help="list the studies")
    bench.add_argument("study_args", nargs=argparse.REMAINDER,
                       help="arguments passed to the study script")

    flt = sub.add_parser("filter", parents=[quiet],
                         help="bootstrap particle filter vs the exact Kalman answer")
    flt.add_argument("--particles", type=int, default=10_000)
    flt.add_argument("--steps", type=int, default=100)
    flt.add_argument("--replicates", type=int, default=20)
    flt.add_argument("--seed", type=int, default=0)
    sub.add_parser("zoo", parents=[quiet], help="list the shipped models")
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    args.quiet = getattr(args, "quiet", False)
    commands = {"demo": _steering_demo, "steer": _steer, "bench": _bench,
                "filter": _filter_demo, "zoo": _zoo}
    if not args.quiet:
        return commands[args.command](args)
    from probinfer import _progress

    previous = _progress._forced
    _progress.set_progress(False)
    try:
        return commands[args.command](args)
    finally:
        _progress.set_progress(previous)


if __name__ == "__main__":
    sys.exit(main())
