"""Running a comparison: replicates, estimates, errors, costs, summaries with MCSE.

Each (method, budget) cell runs ``num_replicates`` independent replicates. Where the
runner traces (the steering runners, samplers built on ``pi.smc.scan``), the replicates
are one ``jax.vmap`` over keys: one compiled program per method and budget. Otherwise they
run in a loop with a progress bar, and a replicate that raises is recorded as a failure
(its error message kept), never dropped: a method that fails one run in ten shows
``failures = 10 %`` beside its error.

Files are CSV plus a JSON sidecar for ``DataFrame.attrs`` (no parquet dependency, no
pickle, so loading never runs code).
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import jax

from probinfer._random import as_key
from probinfer._validation import check_positive_int
from probinfer.compare._method import Method, reported_cost
from probinfer.compare._problem import Problem

COLUMNS = ("method", "budget", "replicate", "quantity", "estimate", "std_error", "reference",
           "reference_se", "error", "covered", "cost", "wall_time", "ess", "failed", "message")


def run(key, problem: Problem, methods: Sequence[Method], num_replicates: int,
        budgets: Sequence | None = None, *, level: float = 0.95,
        budget_tolerance: float = 0.1, progress_bar: bool | None = None):
    """Run every method (at every budget) ``num_replicates`` times against ``problem``.

    Parameters
    ----------
    key : PRNG key or integer seed. Cell (method ``i``, budget ``j``) uses
        ``jax.random.split(fold_in(fold_in(key, i), j), num_replicates)``.
    problem : a :class:`Problem`.
    methods : :class:`Method` values with distinct names.
    num_replicates : ``R >= 2`` independent runs per cell (MCSEs need at least two).
    budgets : ``None`` (each method at its own settings) or costs per run in each method's
        declared cost unit; each method's ``at_budget`` turns a budget into settings.
    level : nominal coverage of reported intervals ``estimate ± z std_error``.
    budget_tolerance : a warning names any cell whose mean reported cost differs from its
        budget by more than this fraction (the ``cost`` column always holds what the runner
        reported).
    progress_bar : bars over cells and over looped replicates (default: on for loops).

    Returns
    -------
    pandas.DataFrame, one row per (method, budget, replicate, quantity) with the columns
    ``COLUMNS``; failed runs have ``failed=True``, NaN estimates and their error in
    ``message``. ``wall_time`` is seconds per replicate: in a batched cell the batched call
    (compilation included) divided by ``R``; methods with ``cost="wall_time"`` run in a
    loop after one untimed warm-up run. ``df.attrs`` records the seed, problem, methods and settings, execution
    mode per cell (``vmap`` or ``loop``), library versions and the machine.

    Example
    -------
    >>> import jax.numpy as jnp, probinfer as pi
    >>> mix = pi.GaussianMixture(jnp.array([0.7, 0.3]), jnp.array([[-1.0], [2.0]]),
    ...                          0.5 * jnp.ones((2, 1, 1)))
    >>> problem = pi.compare.Problem.mixture_tilt(mix, a=jnp.array([1.0]), num_steps=20)
    >>> df = pi.compare.run(0, problem, [pi.compare.fk("FK")], 4, budgets=[640],
    ...                     progress_bar=False)
    >>> sorted(set(df["cost"]))
    [640.0]
    """
    import pandas as pd
    from tqdm.auto import tqdm

    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a probinfer.compare.Problem, got "
                        f"{type(problem).__name__}")
    if isinstance(methods, Method):
        methods = [methods]
    methods = list(methods)
    if not methods:
        raise ValueError("methods must be a non-empty list of probinfer.compare.Method")
    for m in methods:
        if not isinstance(m, Method):
            raise TypeError(f"methods must hold probinfer.compare.Method values, got "
                            f"{type(m).__name__}")
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise ValueError(f"method names must be distinct, got {names}")
    num_replicates = check_positive_int(num_replicates, "num_replicates", minimum=2)
    if budgets is None:
        budgets = [None]
    else:
        budgets = list(budgets)
        if not budgets:
            raise ValueError("budgets must be None or a non-empty sequence of costs")
        for b in budgets:
            if isinstance(b, bool) or not isinstance(b, (int, float, np.integer, np.floating)) \
                    or not b > 0 or not math.isfinite(b):
                raise ValueError(f"budgets must be positive finite numbers, got {b!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    z = statistics.NormalDist().inv_cdf(0.5 + level / 2)
    root = as_key(key)
    cells = [(i, m, j, b) for i, m in enumerate(methods) for j, b in enumerate(budgets)]
    rows, cell_records = [], []
    show = progress_bar is not False and len(cells) > 1
    for i, method, j, budget in tqdm(cells, disable=not show, desc="comparison", unit="cell"):
        settings = method.settings_at(budget, problem)
        keys = jax.random.split(jax.random.fold_in(jax.random.fold_in(root, i), j),
                                num_replicates)
        runs, mode, vmap_error = _run_cell(method, problem, settings, keys, progress_bar)
        costs = []
        for r, (res, wall, failure, warning, estimates) in enumerate(runs):
            rows += _rows(problem, method, budget, r, res, wall, failure, warning, estimates,
                          z)
            if res is not None:
                costs.append(rows[-1]["cost"])
        mean_cost = float(np.nanmean(costs)) if costs and np.isfinite(costs).any() else math.nan
        if budget is not None and math.isfinite(mean_cost) \
                and abs(mean_cost / budget - 1) > budget_tolerance:
            warnings.warn(f"method {method.name!r} at budget {budget}: the runs reported a mean "
                          f"{method.cost_name} of {mean_cost:.6g}, "
                          f"{100 * (mean_cost / budget - 1):+.1f}% off the budget",
                          RuntimeWarning, stacklevel=2)
        cell_records.append({"method": method.name, "budget": budget, "mode": mode,
                             "vmap_error": vmap_error, "settings": _jsonable(settings),
                             "mean_cost": mean_cost})
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df.attrs = {
        "format": "probinfer.compare/1",
        "problem": problem.name,
        "key_data": np.asarray(jax.random.key_data(root)).ravel().tolist(),
        "num_replicates": num_replicates,
        "budgets": [None if b is None else float(b) for b in budgets],
        "level": level,
        "methods": [{"name": m.name, "cost": m.cost_name, "settings": _jsonable(m.settings)}
                    for m in methods],
        "cells": cell_records,
        "versions": _versions(),
        "machine": _machine(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return df


def _run_cell(method, problem, settings, keys, progress_bar):
    """``([(Result or None, wall seconds, failure, warning, estimates or None)], mode,
    vmap error)``; estimates are computed here when the replicates were batched."""
    def runner(k):
        return method.runner(k, problem, **settings)

    num = keys.shape[0]
    vmap_error = None
    if method.vmap is not False and method.cost != "wall_time":
        try:
            start = time.perf_counter()
            stacked = jax.block_until_ready(jax.vmap(runner)(keys))
            wall = (time.perf_counter() - start) / num
        except Exception as err:          # any failure of the batched run: retry one by one
            if method.vmap is True:
                raise
            vmap_error = f"{type(err).__name__}: {err}"[:300]
        else:
            try:                          # one batched evaluation of the estimators
                batched = jax.vmap(problem.estimate)(stacked)
                estimates = [{q: (v[r], se[r]) for q, (v, se) in batched.items()}
                             for r in range(num)]
            except Exception:             # estimators that need concrete values
                estimates = [None] * num
            stacked = jax.tree_util.tree_map(np.asarray, stacked)     # cheap host slicing
            runs = [(jax.tree_util.tree_map(lambda leaf, r=r: leaf[r], stacked), wall, None,
                     None, estimates[r]) for r in range(num)]
            return runs, "vmap", None
    from tqdm.auto import tqdm

    if method.cost == "wall_time":
        # Compile and warm up outside the measured runs (its outcome is not a replicate).
        try:
            jax.block_until_ready(runner(jax.random.fold_in(keys[0], 2 ** 31 - 1)))
        except Exception:                 # the measured runs will record the failure
            pass
    runs = []
    show = num > 1 if progress_bar is None else bool(progress_bar)
    for k in tqdm(keys, disable=not show, desc=method.name, unit="run", leave=False):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.perf_counter()
            try:
                res = jax.block_until_ready(runner(k))
            except Exception as err:      # a failed run is data: counted, with its message
                runs.append((None, time.perf_counter() - start,
                             f"{type(err).__name__}: {err}"[:300], None, None))
                continue
            wall = time.perf_counter() - start
        warning = str(caught[0].message)[:300] if caught else None
        runs.append((res, wall, None, warning, None))
    return runs, "loop", vmap_error


def _rows(problem, method, budget, replicate, res, wall, failure, warning, estimates, z):
    base = {"method": method.name, "budget": math.nan if budget is None else float(budget),
            "replicate": replicate, "wall_time": wall}
    if res is None:
        return [{**base, "quantity": q, "estimate": math.nan, "std_error": math.nan,
                 "reference": problem.reference[q], "reference_se": problem.reference_se[q],
                 "error": math.nan, "covered": math.nan, "cost": math.nan, "ess": math.nan,
                 "failed": True, "message": failure} for q in problem.quantities]
    try:
        cost = reported_cost(method, res, wall)
    except Exception as err:              # a cost the runner does not report: NaN, said so
        cost, warning = math.nan, f"cost not reported: {type(err).__name__}: {err}"[:300]
    try:
        ess = float(res.ess)
    except Exception:                     # runners without weights of the usual shape
        ess = math.nan
    if estimates is None:
        try:
            estimates = problem.estimate(res)
        except Exception as err:          # an estimator that fails on this run's output
            estimates, failure = {}, f"estimator: {type(err).__name__}: {err}"[:300]
    rows = []
    for q in problem.quantities:
        value, se = estimates.get(q, (math.nan, math.nan))
        value, se = _float(value), _float(se)
        ref, ref_se = problem.reference[q], problem.reference_se[q]
        error = value - ref
        covered = (float(abs(error) <= z * math.hypot(se, ref_se))
                   if math.isfinite(se) and math.isfinite(value) else math.nan)
        bad = not math.isfinite(value)
        rows.append({**base, "quantity": q, "estimate": value, "std_error": se,
                     "reference": ref, "reference_se": ref_se, "error": error,
                     "covered": covered, "cost": cost, "ess": ess, "failed": bad,
                     "message": failure or ("non-finite estimate" if bad else warning)})
    return rows


def _float(x) -> float:
    try:
        return float(np.asarray(x))
    except (TypeError, ValueError):
        return math.nan


def summarize(df, by: Sequence[str] = ("method", "budget", "quantity")):
    """Per-cell summaries with Monte Carlo standard errors.

    Columns: ``replicates``, ``failures`` (runs that raised or gave a non-finite estimate;
    they are excluded from the error statistics and counted here), ``cost`` (mean reported
    cost), ``reference``, ``mean`` (of the estimates), ``bias`` and ``bias_mcse``,
    ``z`` (bias over ``sqrt(bias_mcse² + reference_se²)``: ``|z| > 3`` is a bias the
    replicates resolve), ``rmse`` and ``rmse_mcse`` (delta method), ``sd`` (spread of
    one run's estimate), ``coverage`` and ``coverage_mcse`` of reported intervals (NaN
    when the method reports none), ``ess`` (mean Kish ESS of the final weights) and
    ``ess_per_cost``.

    Example
    -------
    >>> import pandas as pd, probinfer as pi
    >>> df = pd.DataFrame({"method": "m", "budget": 1.0, "replicate": [0, 1, 2],
    ...     "quantity": "q", "estimate": [0.9, 1.1, 1.3], "std_error": float("nan"),
    ...     "reference": 1.0, "reference_se": 0.0, "error": [-0.1, 0.1, 0.3],
    ...     "covered": float("nan"), "cost": 10.0, "wall_time": 0.1, "ess": 5.0,
    ...     "failed": False, "message": None})
    >>> round(float(pi.compare.summarize(df)["bias"].iloc[0]), 3)
    0.1
    """
    import pandas as pd

    missing = [c for c in ("estimate", "error", "failed", "reference", "reference_se", "cost",
                           "covered", "ess") + tuple(by) if c not in df.columns]
    if missing:
        raise ValueError(f"df lacks the columns {missing}; pass the DataFrame of "
                         "pi.compare.run (or pi.compare.load)")
    records = []
    for keys, group in df.groupby(list(by), sort=False, dropna=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        failed = group["failed"].astype(bool).to_numpy()
        ok = group[~failed]
        err = ok["error"].to_numpy(dtype=float)
        m = err.size
        ref_se = float(group["reference_se"].iloc[0])
        bias = float(err.mean()) if m else math.nan
        bias_mcse = float(err.std(ddof=1) / math.sqrt(m)) if m > 1 else math.nan
        mse = float(np.mean(err ** 2)) if m else math.nan
        rmse = math.sqrt(mse) if m else math.nan
        rmse_mcse = (float((err ** 2).std(ddof=1) / math.sqrt(m)) / (2 * rmse)
                     if m > 1 and rmse > 0 else math.nan)
        covered = ok["covered"].to_numpy(dtype=float)
        covered = covered[np.isfinite(covered)]
        coverage = float(covered.mean()) if covered.size else math.nan
        cost = group["cost"].to_numpy(dtype=float)
        cost = float(np.nanmean(cost)) if np.isfinite(cost).any() else math.nan
        ess = ok["ess"].to_numpy(dtype=float)
        ess = float(np.nanmean(ess)) if np.isfinite(ess).any() else math.nan
        records.append({
            **dict(zip(by, keys)), "replicates": len(group), "failures": int(failed.sum()),
            "cost": cost, "reference": float(group["reference"].iloc[0]),
            "mean": float(ok["estimate"].mean()) if m else math.nan,
            "bias": bias, "bias_mcse": bias_mcse,
            "z": bias / math.hypot(bias_mcse, ref_se) if m > 1 and (bias_mcse or ref_se)
            else math.nan,
            "rmse": rmse, "rmse_mcse": rmse_mcse,
            "sd": float(ok["estimate"].std(ddof=1)) if m > 1 else math.nan,
            "coverage": coverage,
            "coverage_mcse": (math.sqrt(coverage * (1 - coverage) / covered.size)
                              if covered.size else math.nan),
            "ess": ess, "ess_per_cost": ess / cost if cost and math.isfinite(cost) else math.nan,
        })
    out = pd.DataFrame(records)
    out.attrs = dict(df.attrs)
    return out


def save(df, path) -> Path:
    """Write ``df`` to ``<path>.csv`` and its ``attrs`` to ``<path>.json``; returns the CSV
    path. Read back with :func:`load`."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".csv", ".json") else path
    stem.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(stem.with_suffix(".csv"), index=False)
    stem.with_suffix(".json").write_text(json.dumps(_jsonable(dict(df.attrs)), indent=1))
    return stem.with_suffix(".csv")


def load(path):
    """Read a comparison written by :func:`save` (the CSV and its JSON sidecar)."""
    import pandas as pd

    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".csv", ".json") else path
    csv = stem.with_suffix(".csv")
    if not csv.exists():
        raise FileNotFoundError(f"no comparison at {csv}")
    df = pd.read_csv(csv)
    sidecar = stem.with_suffix(".json")
    df.attrs = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    if "failed" in df.columns:
        df["failed"] = df["failed"].astype(bool)
    return df


def _jsonable(value):
    """Settings and attrs as JSON: numbers, strings, lists, dicts; anything else its repr."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else str(v)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "shape") and hasattr(value, "dtype") and np.size(value) <= 64:
        try:
            return _jsonable(np.asarray(value).tolist())
        except (TypeError, ValueError):
            pass
    return repr(value)


def _versions() -> dict:
    import pandas as pd
    import probinfer

    out = {"python": sys.version.split()[0], "probinfer": probinfer.__version__,
           "jax": jax.__version__, "numpy": np.__version__, "pandas": pd.__version__}
    for name in ("jaxlib", "numpyro", "blackjax"):
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "__version__"):
            out[name] = module.__version__
    return out


def _machine() -> dict:
    return {"platform": platform.platform(), "processor": platform.machine(),
            "cpu_count": os.cpu_count(), "backend": jax.default_backend(),
            "devices": [d.device_kind for d in jax.devices()]}
