"""Figures of counterfactual search: the Pareto front and the selected designs.

Each function returns a matplotlib ``Figure`` and never calls ``show``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def plot_pareto(result: pd.DataFrame, x: str = "proximity", y: str = "manifold", ax=None,
                label: str | None = None):
    """Two objectives of the non-dominated valid candidates (``result.attrs['pareto_front']``)
    and of the selected counterfactuals (the rows of ``result``).

    ``x`` and ``y`` name columns of the Pareto front: ``proximity``, ``sparsity``,
    ``manifold``, ``plausibility`` or a minimised output.

    Example
    -------
    >>> fig = pi.design.plot_pareto(cf)                      # doctest: +SKIP
    >>> fig.savefig("pareto.png")                            # doctest: +SKIP
    """
    import matplotlib.pyplot as plt
    if not isinstance(result, pd.DataFrame) or "pareto_front" not in result.attrs:
        raise TypeError("result must be the DataFrame returned by pi.design.counterfactuals")
    front = result.attrs["pareto_front"]
    for name in (x, y):
        if name not in front.columns or name not in result.columns:
            raise ValueError(f"{name!r} is not an objective of the result; choose from "
                             f"{[c for c in front.columns if c in result.columns]}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 4))
    else:
        fig = ax.figure
    prefix = f"{label}: " if label else ""
    ax.scatter(np.asarray(front[x], float), np.asarray(front[y], float), s=10, alpha=0.5,
               label=f"{prefix}Pareto front ({len(front)})")
    valid = result["valid"].to_numpy(bool)
    for mask, marker, name in ((valid, "*", "selected"), (~valid, "x", "returned, invalid")):
        if mask.any():
            ax.scatter(np.asarray(result[x], float)[mask], np.asarray(result[y], float)[mask],
                       s=40, marker=marker, label=f"{prefix}{name} ({int(mask.sum())})")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.legend(fontsize=8)
    return fig
