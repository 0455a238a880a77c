"""Per-step diagnostics of particle methods: ESS and resampling, weight degeneracy, reward
traces of steering, particle genealogies."""

from __future__ import annotations

import numpy as np

from probinfer.plot._common import figure_axes, info_of, per_step, require_trace


def _num_particles(source, steps, num_particles):
    if num_particles is not None:
        if isinstance(num_particles, bool) or not isinstance(num_particles, (int, np.integer)) \
                or num_particles < 1:
            raise ValueError(f"num_particles must be a positive integer, got {num_particles!r}")
        return int(num_particles)
    log_weights = getattr(source, "log_weights", None)
    if log_weights is not None and np.ndim(log_weights) >= 1:
        return int(np.shape(log_weights)[-1])
    if "ancestors" in steps:
        return int(steps["ancestors"].shape[-1])
    return None


def plot_ess(source, num_particles: int | None = None, ax=None):
    """Effective sample size over the steps, with the steps that resampled marked.

    Parameters
    ----------
    source : a :class:`~probinfer.Result` or its ``info`` (any sampler whose info has an
        ``ess`` trace: SMC, tempered SMC, FK steering; replicated results give one line
        per replicate).
    num_particles : drawn as the ceiling; read from the Result's weights when omitted.
    ax : matplotlib Axes to draw into (default: a new figure).

    Returns
    -------
    The matplotlib ``Figure``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> mix = pi.GaussianMixture(jnp.array([0.5, 0.5]), jnp.array([[-2.0], [2.0]]),
    ...                          0.3 * jnp.ones((2, 1, 1)))
    >>> prior = pi.diffusion.GaussianMixturePrior(mix, num_steps=20)
    >>> res = pi.steer.fk(jax.random.key(0), prior, lambda x: x[0], 64)
    >>> fig = pi.plot.plot_ess(res)
    """
    steps = per_step(source)
    ess = np.atleast_2d(steps[require_trace(steps, ("ess",), "ESS")])
    num = _num_particles(source, steps, num_particles)
    fig, ax = figure_axes(ax, (6, 3.2))
    x = np.arange(ess.shape[-1])
    for i, line in enumerate(ess):
        ax.plot(x, line, color="C0", lw=1.5 if ess.shape[0] == 1 else 0.8,
                alpha=1.0 if ess.shape[0] == 1 else 0.4, label="ESS" if i == 0 else None)
    if "resampled" in steps:
        resampled = np.atleast_2d(steps["resampled"]).astype(bool)
        where = np.flatnonzero(resampled.any(axis=0))
        if where.size:
            ax.plot(where, ess[:, where].min(axis=0), "v", color="C3", ms=5,
                    label=f"resampled ({where.size} steps)")
    if num is not None:
        ax.axhline(num, color="grey", ls=":", lw=1, label=f"N = {num}")
        ax.set_ylim(0, 1.05 * num)
    ax.set_xlabel("step")
    ax.set_ylabel("effective sample size")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def plot_weights(source, ax=None):
    """Weight degeneracy: the share of the total weight held by the heaviest particles.

    The curve is the cumulative normalised weight of the particles sorted from heaviest to
    lightest, against their fraction of the population; equal weights give the diagonal, a
    degenerate population a jump to 1 at the first particle. The title gives the ESS and
    the largest weight.

    Parameters
    ----------
    source : a :class:`~probinfer.Result` (its final ``log_weights``) or a ``(N,)`` array of
        log-weights (need not be normalised).
    ax : matplotlib Axes to draw into (default: a new figure).

    Returns
    -------
    The matplotlib ``Figure``.
    """
    log_weights = np.asarray(getattr(source, "log_weights", source), dtype=np.float64)
    if log_weights.ndim != 1 or log_weights.size == 0:
        raise ValueError("log-weights must be a non-empty 1-D array (one run; index a "
                         f"replicate first), got shape {log_weights.shape}")
    if np.isnan(log_weights).any() or not np.isfinite(log_weights).any():
        raise ValueError("log-weights must have no NaN and at least one finite entry")
    weights = np.exp(log_weights - log_weights.max())
    weights /= weights.sum()
    ordered = np.sort(weights)[::-1]
    n = weights.size
    ess = 1.0 / np.sum(weights ** 2)
    fig, ax = figure_axes(ax, (4.2, 3.6))
    fraction = np.arange(n + 1) / n
    ax.plot(fraction, np.concatenate([[0.0], np.cumsum(ordered)]), color="C0",
            drawstyle="steps-post", label="heaviest first")
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1, label="equal weights")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("fraction of particles (heaviest first)")
    ax.set_ylabel("cumulative weight")
    ax.set_title(f"ESS {ess:.1f} of {n} ({100 * ess / n:.0f}%), max weight {ordered[0]:.2f}",
                 fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_rewards(source, ax=None):
    """Reward over the steps of a steering run, or the reward distribution of best-of-N.

    FK steering: the weighted mean and the maximum of the particles' latest reward
    estimate at each state (noise first), with the states where potentials were evaluated
    marked. SVDD: the mean and maximum value of the selected children per step.
    Best-of-N: a histogram of every candidate's reward with the selected ones marked.

    Parameters
    ----------
    source : a :class:`~probinfer.Result` of :func:`probinfer.steer.fk`,
        :func:`probinfer.steer.svdd` or :func:`probinfer.steer.best_of_n`, or its ``info``.
    ax : matplotlib Axes to draw into (default: a new figure).

    Returns
    -------
    The matplotlib ``Figure``.
    """
    info = info_of(source)
    fig, ax = figure_axes(ax, (6, 3.2))
    if hasattr(info, "rewards") and hasattr(info, "best_reward"):
        rewards = np.asarray(info.rewards, dtype=np.float64).ravel()
        ax.hist(rewards[np.isfinite(rewards)], bins=30, color="C0", alpha=0.7,
                label=f"all {rewards.size} candidates")
        for i, best in enumerate(np.atleast_1d(np.asarray(info.best_reward))):
            ax.axvline(best, color="C3", lw=1, label="selected" if i == 0 else None)
        ax.set_xlabel("reward")
        ax.set_ylabel("candidates")
        ax.legend(fontsize=8)
        fig.tight_layout()
        return fig
    steps = per_step(info)
    mean_name = require_trace(steps, ("reward_mean", "value_mean"), "reward")
    max_name = mean_name.replace("_mean", "_max")
    label = "reward" if mean_name.startswith("reward") else "value"
    mean = np.atleast_2d(steps[mean_name])
    x = np.arange(mean.shape[-1])
    ax.plot(x, mean.T, color="C0", lw=1.2, label=[f"mean {label}"] + [None] * (len(mean) - 1))
    if max_name in steps:
        ax.plot(x, np.atleast_2d(steps[max_name]).T, color="C1", lw=1, ls="--",
                label=[f"max {label}"] + [None] * (len(mean) - 1))
    if "evaluated" in steps:
        evaluated = np.flatnonzero(np.atleast_2d(steps["evaluated"]).astype(bool).any(axis=0))
        ax.plot(evaluated, mean[:, evaluated].mean(axis=0), "o", color="C0", ms=4,
                label="potential evaluated")
    ax.set_xlabel("step (0 = noise)")
    ax.set_ylabel(label)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _ancestors_of(source):
    info = info_of(source)
    ancestors = getattr(info, "ancestors", None)
    if ancestors is None and getattr(info, "smc", None) is not None:
        ancestors = info.smc.ancestors
    if ancestors is None and (hasattr(info, "ndim") or type(info) in (list, tuple)):
        ancestors = info
    if ancestors is None:
        raise TypeError(f"{type(info).__name__} records no ancestors: run with "
                        "keep_ancestors=True (e.g. pi.smc.run(..., keep_ancestors=True)), or "
                        "pass a (steps, N) array")
    return np.asarray(ancestors)


def plot_genealogy(source, ax=None):
    """Particle genealogy: every parent-to-child link, the surviving lineages highlighted.

    Particle ``i`` at step ``t`` descends from particle ``ancestors[t, i]`` at step
    ``t - 1``. Grey segments are all links; coloured ones the lineages of the final
    particles, traced back to step 0 (their coalescence is the path degeneracy of SMC).

    Parameters
    ----------
    source : a :class:`~probinfer.Result` (or its info) of a run that recorded its
        genealogy (``keep_ancestors=True``, e.g. ``pi.smc.run(..., keep_ancestors=True)``),
        or an integer array ``(steps, N)`` of ancestor indices.
    ax : matplotlib Axes to draw into (default: a new figure).

    Returns
    -------
    The matplotlib ``Figure``.
    """
    from matplotlib.collections import LineCollection

    ancestors = _ancestors_of(source)
    if ancestors.ndim != 2 or ancestors.shape[0] < 1 or ancestors.shape[1] < 1:
        raise ValueError("ancestors must have shape (steps, N) for one run (index a replicate "
                         f"first), got {ancestors.shape}")
    if not np.issubdtype(ancestors.dtype, np.integer) or ancestors.min() < 0 \
            or ancestors.max() >= ancestors.shape[1]:
        raise ValueError(f"ancestors must be integers in 0..{ancestors.shape[1] - 1}")
    num_steps, n = ancestors.shape
    fig, ax = figure_axes(ax, (6, 3.6))
    t = np.broadcast_to(np.arange(1, num_steps)[:, None], (num_steps - 1, n))
    child = np.broadcast_to(np.arange(n), (num_steps - 1, n))
    links = np.stack([np.stack([t - 1, ancestors[1:]], -1), np.stack([t, child], -1)], axis=2)
    ax.add_collection(LineCollection(links.reshape(-1, 2, 2), colors="0.75", linewidths=0.5))
    lineage = np.empty((num_steps, n), dtype=np.int64)
    lineage[-1] = np.arange(n)
    for step in range(num_steps - 1, 0, -1):
        lineage[step - 1] = ancestors[step, lineage[step]]
    paths = np.stack([np.broadcast_to(np.arange(num_steps)[:, None], lineage.shape), lineage],
                     -1).transpose(1, 0, 2)
    ax.add_collection(LineCollection(paths, colors="C0", linewidths=1.0, alpha=0.6))
    ax.set_xlim(-0.5, num_steps - 0.5)
    ax.set_ylim(-0.5, n - 0.5)
    ax.set_xlabel("step")
    ax.set_ylabel("particle index")
    ax.set_title(f"final particles descend from {np.unique(lineage[0]).size} of {n} "
                 "particles at step 0", fontsize=9)
    fig.tight_layout()
    return fig
