"""What the plotting modules share: a Figure/Axes pair, and reading per-step traces.

Traces are read through the protocol :func:`probinfer.diagnostics.to_arviz` uses (an
``info`` with ``traces() -> (per_step, counters)``), so this package knows no Info type;
the engine's own :class:`~probinfer.smc.SMCInfo` has no ``traces()`` and is read by its
fields (``ess``, ``resampled``, ``ancestors``).
"""

from __future__ import annotations

import numpy as np

_ENGINE_FIELDS = ("ess", "resampled", "ancestors", "log_evidence_increment")


def figure_axes(ax, figsize):
    """``(fig, ax)``: a new figure of ``figsize`` when ``ax`` is None, else ``ax``'s figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    if not hasattr(ax, "figure") or not hasattr(ax, "plot"):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    return ax.figure, ax


def info_of(source):
    """The ``info`` of a :class:`~probinfer.Result`, or ``source`` itself."""
    from probinfer.result import Result

    if isinstance(source, Result):
        if source.info is None:
            raise ValueError("this Result carries no info (no per-step traces to plot)")
        return source.info
    return source


def per_step(source) -> dict:
    """Named per-step arrays (NumPy) of a Result or an Info (``traces()`` or engine fields)."""
    info = info_of(source)
    traces = getattr(info, "traces", None)
    found = {}
    if callable(traces):
        steps, _ = traces()
        found = {name: np.asarray(value) for name, value in steps.items()
                 if value is not None and not isinstance(value, (dict, tuple, list))}
    for name in _ENGINE_FIELDS:
        if name in found:
            continue
        for holder in (info, getattr(info, "smc", None)):
            value = getattr(holder, name, None) if holder is not None else None
            if value is not None:
                found[name] = np.asarray(value)
                break
    if not found:
        raise TypeError(f"cannot read per-step traces from {type(info).__name__}: expected a "
                        "probinfer Result or an Info with traces() or ess/resampled fields")
    return found


def require_trace(steps: dict, names, what: str) -> str:
    """The first of ``names`` present in ``steps``; a ValueError naming what is there."""
    for name in names:
        if name in steps:
            return name
    raise ValueError(f"no {what} trace in this info (looked for {list(names)}; it has "
                     f"{sorted(steps)})")
