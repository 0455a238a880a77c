"""Bridge trajectories over the observed snapshots."""

from __future__ import annotations

import numpy as np

from probinfer.plot._common import figure_axes


def plot_bridge(snapshots, times, trajectories=None, trajectory_times=None, dims=(0, 1),
                max_paths: int = 50, ax=None):
    """Snapshots of a population and bridge trajectories through them.

    With two or more dimensions the plot is the phase plane ``dims`` (snapshots coloured
    by time, trajectories as lines); with one dimension it is value against time (then
    ``trajectory_times`` is needed).

    Parameters
    ----------
    snapshots : a list of ``(n_k, d)`` arrays or one ``(K, n, d)`` array, the population
        observed at each of ``times``.
    times : ``(K,)`` snapshot times.
    trajectories : optional ``(num_paths, len(trajectory_times), d)``, e.g.
        :meth:`probinfer.bridges.MultimarginalBridge.sample` or
        :meth:`probinfer.bridges.GaussianBridge.sample`.
    trajectory_times : the times of the trajectories' points (needed when ``d == 1``).
    dims : the two coordinates of the phase plane.
    max_paths : at most this many trajectories are drawn.
    ax : matplotlib Axes to draw into (default: a new figure).

    Returns
    -------
    The matplotlib ``Figure``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> times = [0.0, 1.0, 2.0]
    >>> snaps = pi.bridges.simulate_snapshots(jax.random.key(0), pi.bridges.LotkaVolterra(),
    ...                                       jnp.array([5.0, 4.0]), times, 50, sigma=0.1)
    >>> fig = pi.plot.plot_bridge(snaps, times)
    """
    import matplotlib.pyplot as plt

    snaps = [np.asarray(s, dtype=np.float64) for s in snapshots]
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1 or len(snaps) != times.shape[0] or not snaps:
        raise ValueError(f"snapshots and times must have the same length K >= 1, got "
                         f"{len(snaps)} snapshots and times of shape {times.shape}")
    d = snaps[0].shape[-1] if snaps[0].ndim == 2 else None
    if d is None or any(s.ndim != 2 or s.shape[1] != d for s in snaps):
        raise ValueError("every snapshot must be an (n_k, d) array with the same d")
    paths = None
    if trajectories is not None:
        paths = np.asarray(trajectories, dtype=np.float64)
        if paths.ndim != 3 or paths.shape[2] != d:
            raise ValueError(f"trajectories must have shape (num_paths, num_times, {d}), got "
                             f"{paths.shape}")
        paths = paths[:max_paths]
    colours = plt.get_cmap("viridis")(np.linspace(0, 1, len(snaps)))
    fig, ax = figure_axes(ax, (5, 4))
    if d == 1:
        if paths is not None:
            if trajectory_times is None or np.shape(trajectory_times) != (paths.shape[1],):
                raise ValueError("one-dimensional trajectories need trajectory_times of shape "
                                 f"({paths.shape[1]},)")
            ax.plot(np.asarray(trajectory_times), paths[..., 0].T, color="0.4", lw=0.6,
                    alpha=0.5)
        for t, snap, colour in zip(times, snaps, colours):
            ax.scatter(np.full(snap.shape[0], t), snap[:, 0], s=8, color=colour, zorder=3)
        ax.set_xlabel("time")
        ax.set_ylabel("$x$")
    else:
        i, j = dims
        if not (0 <= i < d and 0 <= j < d and i != j):
            raise ValueError(f"dims must be two different coordinates in 0..{d - 1}, got {dims}")
        if paths is not None:
            ax.plot(paths[..., i].T, paths[..., j].T, color="0.4", lw=0.6, alpha=0.5)
        for t, snap, colour in zip(times, snaps, colours):
            ax.scatter(snap[:, i], snap[:, j], s=8, color=colour, zorder=3, label=f"t = {t:g}")
        ax.set_xlabel(f"$x_{i + 1}$")
        ax.set_ylabel(f"$x_{j + 1}$")
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig
