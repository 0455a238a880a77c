"""Samples: image grids, and 2-D particle clouds over an exact target density."""

from __future__ import annotations

import numpy as np

from probinfer.plot._common import figure_axes


def _images(images):
    images = np.asarray(getattr(images, "samples", images), dtype=np.float64)
    if images.ndim == 4 and images.shape[1] in (1, 3, 4) and images.shape[-1] not in (3, 4):
        images = np.moveaxis(images, 1, -1)          # channels first -> last
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (3, 4)) \
            or images.shape[0] == 0:
        raise ValueError("images must have shape (n, H, W), (n, 1, H, W), (n, H, W, 3|4) or "
                         f"(n, 3|4, H, W) with n >= 1, got {images.shape}")
    return images


def plot_image_grid(images, ncols: int | None = None, titles=None, cmap: str = "gray_r",
                    vmin=None, vmax=None, size: float = 0.9):
    """A grid of image samples (e.g. steered digits), one small axes per image.

    Parameters
    ----------
    images : array ``(n, H, W)``, ``(n, 1, H, W)``, ``(n, H, W, C)`` or ``(n, C, H, W)``
        with ``C`` 3 or 4, or a :class:`~probinfer.Result` whose samples are images.
    ncols : images per row (default: up to 12).
    titles : optional ``n`` strings, one above each image (e.g. the classifier's label).
    cmap, vmin, vmax : colour map and range of grey-scale images (default: the data range).
    size : inches per image.

    Returns
    -------
    The matplotlib ``Figure``.

    Examples
    --------
    >>> import numpy as np, probinfer as pi
    >>> images, labels = pi.zoo.digits("test")
    >>> fig = pi.plot.plot_image_grid(images[:8], titles=[str(l) for l in labels[:8]])
    """
    import matplotlib.pyplot as plt

    images = _images(images)
    n = images.shape[0]
    if ncols is None:
        ncols = min(n, 12)
    if isinstance(ncols, bool) or not isinstance(ncols, (int, np.integer)) or ncols < 1:
        raise ValueError(f"ncols must be a positive integer, got {ncols!r}")
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles must have one entry per image ({n}), got {len(titles)}")
    ncols = min(int(ncols), n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.2),
                             squeeze=False)
    low = np.min(images) if vmin is None else vmin
    high = np.max(images) if vmax is None else vmax
    for index, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if index >= n:
            ax.set_visible(False)
            continue
        ax.imshow(images[index], cmap=cmap if images.ndim == 3 else None, vmin=low, vmax=high)
        if titles is not None:
            ax.set_title(str(titles[index]), fontsize=8)
    fig.tight_layout()
    return fig


def plot_particles_2d(target, particles=None, log_weights=None, bounds=None,
                      grid_size: int = 120, ax=None):
    """Particles in the plane over the contours of an exact (unnormalised) target density.

    Parameters
    ----------
    target : a :class:`~probinfer.Target` (its ``log_density`` of ONE point ``(2,)``) or a
        JAX function of one point returning the log density.
    particles : ``(n, 2)`` array or a :class:`~probinfer.Result` (its samples and weights);
        None draws the density alone.
    log_weights : ``(n,)``; marker areas are proportional to the weights (default: the
        Result's, else equal).
    bounds : ``(xmin, xmax, ymin, ymax)``; default: the particles' range with a margin.
    grid_size : density evaluations per axis.
    ax : matplotlib Axes to draw into (default: a new figure).

    Returns
    -------
    The matplotlib ``Figure``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> mix = pi.GaussianMixture(jnp.array([0.5, 0.5]), jnp.array([[-2.0, 0.0], [2.0, 0.0]]),
    ...                          jnp.stack([jnp.eye(2)] * 2))
    >>> fig = pi.plot.plot_particles_2d(mix, mix.sample(jax.random.key(0), 200))
    """
    import jax
    import jax.numpy as jnp

    log_density = getattr(target, "log_density", target)
    if not callable(log_density):
        raise TypeError("target must be a Target or a function of one point, got "
                        f"{type(target).__name__}")
    if particles is not None and hasattr(particles, "samples"):
        if log_weights is None:
            log_weights = particles.log_weights
        particles = particles.samples
    points = None if particles is None else np.asarray(particles, dtype=np.float64)
    if points is not None and (points.ndim != 2 or points.shape[1] != 2):
        raise ValueError(f"particles must have shape (n, 2), got {points.shape}")
    if bounds is None:
        if points is None:
            raise ValueError("give bounds=(xmin, xmax, ymin, ymax) when there are no particles")
        low, high = points.min(0), points.max(0)
        margin = 0.15 * np.maximum(high - low, 1e-3)
        bounds = (low[0] - margin[0], high[0] + margin[0], low[1] - margin[1],
                  high[1] + margin[1])
    bounds = np.asarray(bounds, dtype=np.float64)
    if bounds.shape != (4,) or not np.all(np.isfinite(bounds)) or bounds[0] >= bounds[1] \
            or bounds[2] >= bounds[3]:
        raise ValueError(f"bounds must be finite (xmin, xmax, ymin, ymax) with min < max, got "
                         f"{bounds}")
    if isinstance(grid_size, bool) or not isinstance(grid_size, (int, np.integer)) \
            or grid_size < 2:
        raise ValueError(f"grid_size must be an integer >= 2, got {grid_size!r}")
    xs = np.linspace(bounds[0], bounds[1], grid_size)
    ys = np.linspace(bounds[2], bounds[3], grid_size)
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    values = np.asarray(jax.vmap(log_density)(jnp.asarray(grid, jnp.float32)), np.float64)
    if values.shape != (grid.shape[0],):
        raise ValueError("the target's log density must return a scalar for one point (2,), "
                         f"got shape {values.shape[1:]}")
    finite = np.isfinite(values)
    density = np.where(finite, np.exp(values - (values[finite].max() if finite.any() else 0.0)),
                       0.0).reshape(grid_size, grid_size)
    fig, ax = figure_axes(ax, (4.6, 4))
    ax.contourf(xs, ys, density, levels=12, cmap="Blues")
    if points is not None:
        if log_weights is None:
            sizes = np.full(points.shape[0], 6.0)
        else:
            lw = np.asarray(log_weights, dtype=np.float64)
            if lw.shape != (points.shape[0],):
                raise ValueError(f"log_weights must have shape ({points.shape[0]},), got "
                                 f"{lw.shape}")
            w = np.exp(lw - np.max(lw))
            sizes = 6.0 * points.shape[0] * w / w.sum()
        ax.scatter(points[:, 0], points[:, 1], s=sizes, color="C3", alpha=0.6, lw=0,
                   label=f"{points.shape[0]} particles")
        ax.legend(fontsize=8, loc="upper right")
    ax.set_xlim(bounds[0], bounds[1])
    ax.set_ylim(bounds[2], bounds[3])
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    fig.tight_layout()
    return fig
