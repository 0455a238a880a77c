"""Figures and tables of a comparison.

Figures are returned, never shown (``fig.savefig`` or a notebook displays them); matplotlib
is imported inside the functions. The table writers are our own few lines because
``DataFrame.to_markdown`` needs the optional ``tabulate`` package.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from pandas.api.types import is_numeric_dtype

_METRICS = {"rmse": ("rmse", "rmse_mcse", "RMSE"),
            "abs_bias": ("bias", "bias_mcse", "|bias|")}


def plot_error_vs_cost(summary, quantity: str, metric: str = "rmse", ax=None,
                       num_mcse: float = 2.0, floor: float = 1e-4):
    """Error against mean reported cost, log-log, one line per method, ``±num_mcse`` MCSE bars.

    Parameters
    ----------
    summary : the table of :func:`~probinfer.compare.summarize`.
    quantity : which quantity to plot.
    metric : ``"rmse"`` (one run's error: bias and variance) or ``"abs_bias"``.
    ax : an existing matplotlib ``Axes`` (default: a new figure).
    floor : errors below it are drawn at it (log axes cannot show zero).

    Returns
    -------
    The matplotlib ``Figure``.
    """
    import matplotlib.pyplot as plt

    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {sorted(_METRICS)}, got {metric!r}")
    _check_quantity(summary, quantity)
    column, mcse_column, label = _METRICS[metric]
    rows = summary[summary["quantity"] == quantity]
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
    else:
        fig = ax.figure
    for method in dict.fromkeys(rows["method"]):
        part = rows[rows["method"] == method].sort_values("cost")
        value = part[column].to_numpy(dtype=float)
        value = np.abs(value) if metric == "abs_bias" else value
        mcse = part[mcse_column].to_numpy(dtype=float)
        ax.errorbar(part["cost"].to_numpy(dtype=float), np.maximum(value, floor),
                    yerr=num_mcse * np.nan_to_num(mcse), fmt="o-", capsize=2, label=method)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("cost per run (" + _cost_label(summary) + ")")
    ax.set_ylabel(f"{label} of {quantity} (±{num_mcse:g} MCSE)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_estimates(df, quantity: str, budget=None, ax=None):
    """Distribution of one quantity's estimates per method (box plot of the replicates) with
    the reference as a horizontal line; failed runs are counted in the labels.

    ``budget``: which budget to show (default: the largest). Returns the ``Figure``.
    """
    import matplotlib.pyplot as plt

    _check_quantity(df, quantity)
    rows = df[df["quantity"] == quantity]
    budgets = rows["budget"].dropna().unique()
    if budget is None and budgets.size:
        budget = float(budgets.max())
    if budget is not None:
        rows = rows[np.isclose(rows["budget"].to_numpy(dtype=float), budget)]
        if rows.empty:
            raise ValueError(f"no runs at budget {budget}; budgets: {sorted(budgets)}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.2 + 1.1 * rows["method"].nunique(), 4))
    else:
        fig = ax.figure
    methods = list(dict.fromkeys(rows["method"]))
    data, labels = [], []
    for m in methods:
        part = rows[rows["method"] == m]
        ok = part[~part["failed"].astype(bool)]["estimate"].to_numpy(dtype=float)
        data.append(ok)
        failures = len(part) - ok.size
        labels.append(m + (f"\n({failures} failed)" if failures else ""))
    ax.boxplot(data, showmeans=True)
    ax.set_xticks(range(1, len(labels) + 1), labels, rotation=30, ha="right", fontsize=8)
    ax.axhline(float(rows["reference"].iloc[0]), color="k", ls="--", lw=1, label="reference")
    title = quantity if budget is None else f"{quantity} at budget {budget:g}"
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _check_quantity(df, quantity):
    if "quantity" not in df.columns:
        raise ValueError("pass the DataFrame of pi.compare.run or pi.compare.summarize")
    if quantity not in set(df["quantity"]):
        raise ValueError(f"unknown quantity {quantity!r}; quantities: "
                         f"{sorted(set(df['quantity']))}")


def _cost_label(df) -> str:
    costs = {m.get("cost") for m in df.attrs.get("methods", [])}
    return costs.pop() if len(costs) == 1 else "declared cost"


def _format(value, digits: int) -> str:
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            return "—"
        if value != 0 and (abs(value) >= 10 ** 6 or abs(value) < 10 ** -digits):
            return f"{value:.{max(digits - 1, 1)}e}"
        if float(value).is_integer() and abs(value) >= 1:
            return f"{int(value)}"
        return f"{value:.{digits}f}"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    return str(value)


def to_markdown(table, columns: Sequence[str] | None = None, digits: int = 4) -> str:
    """A Markdown table of ``table`` (e.g. a summary); numbers right-aligned, NaN as ``—``."""
    columns = list(table.columns if columns is None else columns)
    _check_columns(table, columns)
    numeric = [is_numeric_dtype(table[c]) for c in columns]
    lines = ["| " + " | ".join(columns) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    for _, row in table[columns].iterrows():
        lines.append("| " + " | ".join(_format(row[c], digits) for c in columns) + " |")
    return "\n".join(lines)


def to_latex(table, columns: Sequence[str] | None = None, digits: int = 4) -> str:
    """A LaTeX ``tabular`` (booktabs rules) of ``table``; ``_``, ``%``, ``&`` and ``#`` escaped."""
    columns = list(table.columns if columns is None else columns)
    _check_columns(table, columns)

    def escape(text):
        for ch in ("\\", "&", "%", "_", "#", "$"):
            text = text.replace(ch, "\\" + ch)
        return text.replace("—", "--")

    align = "".join("r" if is_numeric_dtype(table[c]) else "l" for c in columns)
    lines = [f"\\begin{{tabular}}{{{align}}}", "\\toprule",
             " & ".join(escape(str(c)) for c in columns) + " \\\\", "\\midrule"]
    for _, row in table[columns].iterrows():
        lines.append(" & ".join(escape(_format(row[c], digits)) for c in columns) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines)


def _check_columns(table, columns):
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"unknown columns {missing}; the table has {list(table.columns)}")
