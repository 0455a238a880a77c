"""Figures of the fisheries study: fitted maps, policies and managed stock trajectories.

Each function returns a matplotlib ``Figure`` and never calls ``show``.
"""

from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp


def _figure(ax, figsize):
    import matplotlib.pyplot as plt
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def plot_dynamics(models: dict, x_t=None, x_next=None, states=None, ax=None):
    """Expected next stock against escapement for each model, the GP's ±2 sd band, data.

    ``models``: ``{name: Dynamics}``; a model with ``predict`` (the GP) also gets its band.
    """
    fig, ax = _figure(ax, (5.5, 4))
    grid = jnp.linspace(0.0, 15.0, 200) if states is None else jnp.asarray(states)
    for name, model in models.items():
        if hasattr(model, "predict"):
            mean, var = model.predict(grid)
            sd = np.sqrt(np.asarray(var))
            ax.fill_between(np.asarray(grid), np.asarray(mean) - 2 * sd,
                            np.asarray(mean) + 2 * sd, alpha=0.2, label=f"{name} ±2 sd")
            ax.plot(np.asarray(grid), np.asarray(mean), label=name)
        else:
            ax.plot(np.asarray(grid), np.asarray(jax.vmap(model.growth)(grid)), label=name)
    if x_t is not None:
        ax.scatter(np.asarray(x_t), np.asarray(x_next), s=12, color="k", zorder=5,
                   label="data")
    ax.plot(np.asarray(grid), np.asarray(grid), ls=":", color="grey", lw=1)
    ax.set_xlabel("escapement $s_t$")
    ax.set_ylabel("next stock $x_{t+1}$")
    ax.set_ylim(-2, 16)
    ax.legend(fontsize=7)
    return fig


def plot_policies(policies: dict, ax=None):
    """Escapement ``x − h(x)`` against stock ``x`` for each policy (``{name: Policy}``)."""
    fig, ax = _figure(ax, (5.5, 4))
    for name, policy in policies.items():
        x = np.asarray(policy.states)
        ax.step(x, x - np.asarray(policy.harvest_table()), where="mid", label=name)
    ax.set_xlabel("stock $x$")
    ax.set_ylabel("escapement $x - h(x)$")
    ax.legend(fontsize=7)
    return fig


def plot_trajectories(stock: dict, max_paths: int = 100):
    """Managed stock paths, one panel per policy (``{name: (replicates, years) array}``,
    e.g. ``details["stock"]`` from :func:`~probinfer.gpdp.compare`)."""
    import matplotlib.pyplot as plt

    names = list(stock)
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.5 * rows), sharex=True,
                             sharey=True, squeeze=False)
    for ax, name in zip(axes.flat, names):
        paths = np.asarray(stock[name])[:max_paths]
        ax.plot(paths.T, color="C0", alpha=0.15, lw=0.8)
        ax.set_title(name, fontsize=9)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("year")
    for ax in axes[:, 0]:
        ax.set_ylabel("stock")
    fig.tight_layout()
    return fig


__all__ = ["plot_dynamics", "plot_policies", "plot_trajectories"]
