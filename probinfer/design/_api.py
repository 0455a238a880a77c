"""``pi.design.counterfactuals``: the public entry point of counterfactual design search."""

from __future__ import annotations

import warnings
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import jax

from probinfer import _executor
from probinfer._random import as_key
from probinfer._validation import check_positive_int
from probinfer.design._problem import BASE_OBJECTIVES, DEFAULT_WEIGHTS, DesignProblem
from probinfer.design._select import _POOL, hypervolume, pareto_front, select_diverse
from probinfer.design._space import DesignSpace, as_query_frame
from probinfer.design._targets import CheckedPredictor, Targets

METHODS = ("nsga2", "smc")
#: Objectives of the reported hypervolume, each in [0, 1]: Gower proximity, the fraction of
#: changed features and the manifold (Gower) distance; reference point (1.1, 1.1, 1.1), just
#: beyond the worst value of each, so designs that change every feature still count.
HYPERVOLUME_OBJECTIVES = ("proximity", "sparsity_fraction", "manifold")
HYPERVOLUME_REFERENCE = 1.1


def _seed_from_key(key) -> int:
    data = np.asarray(jax.random.key_data(key)).ravel().astype(np.uint32)
    return int(np.random.SeedSequence(data.tolist()).generate_state(1)[0])


def _weights(weights, targets: Targets) -> dict:
    merged = dict(DEFAULT_WEIGHTS)
    merged.update({name: 1.0 for name in targets.minimise})
    if weights is not None:
        if not isinstance(weights, Mapping):
            raise TypeError(f"weights must be a dict, got {type(weights).__name__}")
        unknown = [k for k in weights if k not in merged]
        if unknown:
            raise ValueError(f"weights has unknown names {unknown}; known: {list(merged)}")
        for name, value in weights.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or \
                    not np.isfinite(value) or value < 0:
                raise ValueError(f"weights[{name!r}] must be a finite number >= 0, got {value!r}")
            merged[name] = float(value)
    return merged


class _ChunkedPredict:
    """``predict`` on an executor: a batch of designs in chunks of rows, outputs in order."""

    def __init__(self, predict, executor, chunk_size):
        self.predict, self.executor, self.chunk_size = predict, executor, chunk_size

    @staticmethod
    def _rows(out, chunk):
        if len(out) != len(chunk):
            raise ValueError(f"predict returned {len(out)} rows for a chunk of {len(chunk)} "
                             "designs")
        return out

    def __call__(self, designs: pd.DataFrame):
        chunks = [designs.iloc[i:j] for i, j in _executor.split(len(designs), self.chunk_size)]
        outputs = _executor.map_chunks(self.predict, chunks, self.executor, self._rows)
        if all(isinstance(out, (pd.DataFrame, pd.Series)) for out in outputs):
            return pd.concat(outputs, ignore_index=True)
        return np.concatenate([np.asarray(out) for out in outputs])


def counterfactuals(query, data: pd.DataFrame, predict: Callable, targets,
                    num_counterfactuals: int, *, key=None, method: str = "nsga2",
                    budget: int = 5000, weights: Mapping | None = None,
                    frozen: Sequence[str] = (), variables: Mapping | None = None,
                    population_size: int | None = None, max_lambda: float = 1000.0,
                    target_ess: float = 0.5, executor=None,
                    chunk_size: int = 256) -> pd.DataFrame:
    """Small, plausible, diverse changes of a query design that meet performance targets.

    Multi-objective counterfactuals for design (MCD; Regenwetter, Abu Obaideh & Ahmed
    2023) with two searches: NSGA-II over mixed variables (pymoo, revert-to-query repair)
    and tempered SMC over designs targeting ``plausibility(x) · exp(−λ · objectives(x))``
    restricted to the constraints (see ``docs/design.md``).

    Parameters
    ----------
    query : the design to modify: a one-row DataFrame, a Series or a dict.
    data : DataFrame of designs (the feature columns), used for bounds, categories, the
        manifold distance and the plausibility model.
    predict : batched function DataFrame of designs -> DataFrame of outputs (or a 1-D
        array when the targets name one output); called on new designs only.
    targets : :class:`Targets` or a dict ``{output: (low, high) | [classes] | 'minimise'}``.
    num_counterfactuals : how many designs to return.
    key : PRNG key or integer seed (default 0); results are deterministic given it.
    method : ``'nsga2'`` (default) or ``'smc'``.
    budget : the largest number of designs passed to ``predict``.
    weights : weights of the score (selection and SMC objective), in natural units:
        ``proximity`` (per unit of Gower distance, default 1), ``sparsity`` (per fraction of
        changed features, 0.3), ``manifold`` (per unit of Gower distance, 0.5),
        ``plausibility`` (per nat of log density, 0.01), each minimised output (per
        standard deviation over the data, 1), and ``diversity`` (the DPP temperature on the
        score, 0.05; 0 returns the best scores).
    frozen : features that must keep the query's value.
    variables : ``{feature: Real(low, high) | Integer(...) | Categorical(options) |
        Binary()}`` overriding the types and bounds inferred from ``data``.
    population_size : NSGA-II population (default 100) or SMC particles (default
        ``budget // 60`` within [64, 1000]).
    max_lambda : SMC only: the final inverse temperature on the objectives.
    target_ess : SMC only: fraction of the ESS kept by each tempering step.
    executor : any :class:`concurrent.futures.Executor` (a process pool, dask's
        ``client.get_executor()``, Ray's executor): each batch of designs is split into
        chunks of at most ``chunk_size`` rows, predicted on it and put back in order, so the
        result equals the in-process run's. A chunk that fails (an exception, a lost
        worker, the wrong number of rows) is submitted once more and its error re-raised if
        it fails again. ``predict`` must then be picklable (a module-level function).
    chunk_size : rows per chunk with ``executor``.

    Returns
    -------
    DataFrame, best first, with the design columns, the target outputs predicted for each
    design, and ``valid``, ``proximity`` (Gower distance to the query), ``sparsity``
    (number of changed features), ``manifold`` (mean Gower distance to the 3 nearest data
    designs), ``plausibility`` (log density of the plausibility model), ``score`` and
    ``changed`` (tuple of the changed features). ``attrs``: ``num_predictions``,
    ``method``, ``num_candidates`` (valid designs found), ``pareto_front`` (DataFrame of
    the non-dominated valid candidates' objectives), ``hypervolume`` and
    ``hypervolume_selected`` (over ``HYPERVOLUME_OBJECTIVES``, reference (1.1, 1.1, 1.1)),
    ``lambda_reached`` (SMC).

    Raises ``ValueError``/``TypeError`` for unknown features or categories in the query,
    targets on outputs the predictor does not produce, predictor outputs of the wrong
    shape or with NaN, and bad arguments. Warns when no valid design is found (the
    least-violating designs are returned with ``valid = False``).

    Example
    -------
    >>> import numpy as np, pandas as pd, probinfer as pi
    >>> rng = np.random.default_rng(0)
    >>> data = pd.DataFrame({"a": rng.uniform(0, 1, 200), "b": rng.uniform(0, 1, 200)})
    >>> predict = lambda d: pd.DataFrame({"s": d["a"] + d["b"]})
    >>> cf = pi.design.counterfactuals({"a": 0.1, "b": 0.1}, data, predict,
    ...                                {"s": (1.0, None)}, 3, key=0, budget=600)
    >>> bool(cf["valid"].all()), bool((cf["s"] >= 1.0).all())
    (True, True)
    """
    targets = Targets.from_spec(targets)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    num_counterfactuals = check_positive_int(num_counterfactuals, "num_counterfactuals")
    budget = check_positive_int(budget, "budget", minimum=64)
    key = as_key(0 if key is None else key)
    query = as_query_frame(query)
    space = DesignSpace.from_data(data, variables, extra_rows=query)
    query_codes = space.encode(query, "query", check_bounds=True)[0]
    data_codes = space.encode(data, "data")
    if isinstance(frozen, str):
        frozen = [frozen]
    unknown = [name for name in frozen if name not in space.columns]
    if unknown:
        raise ValueError(f"frozen names unknown features {unknown} (features: "
                         f"{list(space.columns)})")
    frozen_mask = np.isin(np.asarray(space.columns, dtype=object), list(frozen))
    if frozen_mask.all():
        raise ValueError("every feature is frozen: nothing can change")
    weights = _weights(weights, targets)
    # SMC: 60 predictions per particle leave room for 15 tempering steps of two moves.
    default_population = 100 if method == "nsga2" else int(np.clip(budget // 60, 64, 1000))
    population_size = check_positive_int(
        default_population if population_size is None else population_size,
        "population_size", minimum=4)
    if population_size > budget // 2:
        raise ValueError(f"budget ({budget}) must allow at least two populations of "
                         f"population_size ({population_size})")
    if isinstance(max_lambda, bool) or not np.isfinite(max_lambda) or max_lambda <= 0:
        raise ValueError(f"max_lambda must be a finite number > 0, got {max_lambda!r}")
    if not 0.0 < float(target_ess) < 1.0:
        raise ValueError(f"target_ess must be in (0, 1), got {target_ess!r}")

    chunk_size = _executor.check_executor(executor, chunk_size)
    if executor is not None:
        predict = _ChunkedPredict(predict, executor, chunk_size)

    seed = _seed_from_key(key)
    predictor = CheckedPredictor(predict, targets)
    problem = DesignProblem(space, query_codes, data_codes, targets, predictor, frozen_mask,
                            weights, seed)
    remaining = budget - predictor.num_predictions
    lambda_reached = None
    if method == "nsga2":
        from probinfer.design._nsga2 import run_nsga2
        candidates = run_nsga2(problem, seed, remaining, population_size,
                               problem.with_frozen(data_codes))
    else:
        from probinfer.design._smc import run_smc
        candidates, _, lambda_reached = run_smc(problem, key, remaining, population_size, 2,
                                                float(max_lambda), float(target_ess))
    candidates = np.unique(candidates)
    result = _assemble(problem, candidates, num_counterfactuals, weights)
    result.attrs.update({"num_predictions": predictor.num_predictions, "method": method,
                         "budget": budget})
    if lambda_reached is not None:
        result.attrs["lambda_reached"] = lambda_reached
    return result


def _hypervolume_objectives(problem, objectives):
    return np.column_stack([objectives[:, 0], objectives[:, 1] / problem.space.num_features,
                            objectives[:, 2]])


def _assemble(problem: DesignProblem, candidates: np.ndarray, num: int, weights: dict):
    valid = problem.valid(candidates)
    names = list(BASE_OBJECTIVES) + list(problem.targets.minimise)
    reference = np.full(len(HYPERVOLUME_OBJECTIVES), HYPERVOLUME_REFERENCE)
    if valid.any():
        all_valid = candidates[valid]
        all_codes = problem.codes[all_valid]
        all_objectives = problem.objective_matrix(all_codes, all_valid)
        all_scores = problem.scalar_objective(all_codes, all_valid, -all_objectives[:, 3])
        order = np.argsort(all_scores, kind="stable")[:_POOL]
        pool, codes, objectives, scores = (all_valid[order], all_codes[order],
                                           all_objectives[order], all_scores[order])
        chosen = select_diverse(problem.space.gower(codes, codes), scores, num,
                                weights["diversity"])
        chosen = chosen[np.argsort(scores[chosen], kind="stable")]
        front = pareto_front(all_objectives)
        hv_all = hypervolume(_hypervolume_objectives(problem, all_objectives[front]), reference)
        hv_chosen = hypervolume(_hypervolume_objectives(problem, objectives[chosen]), reference)
        pareto = pd.DataFrame(all_objectives[front], columns=names)
        pareto["plausibility"] = -pareto["plausibility"]
        index, objectives, scores = pool[chosen], objectives[chosen], scores[chosen]
        num_valid = len(all_valid)
    else:
        warnings.warn("no valid design was found within the budget; returning the designs "
                      "that violate the targets least (valid = False). Raise the budget or "
                      "check the targets.", RuntimeWarning, stacklevel=3)
        penalty = problem.constraint_penalty(candidates)
        index = candidates[np.argsort(penalty, kind="stable")[:num]]
        objectives = problem.objective_matrix(problem.codes[index], index)
        scores = np.full(len(index), np.nan)
        pareto = pd.DataFrame(columns=names)
        hv_all = hv_chosen = 0.0
        num_valid = 0
    codes = problem.codes[index]
    designs = problem.space.decode(codes)
    outputs = problem.outputs(index)
    outputs.columns = [f"predicted_{c}" if c in designs.columns else c for c in outputs.columns]
    columns = problem.space.columns
    changed = [tuple(columns[j] for j in np.flatnonzero(row != problem.query)) for row in codes]
    result = pd.concat([designs, outputs], axis=1)
    result["valid"] = problem.valid(index)
    result["proximity"] = objectives[:, 0]
    result["sparsity"] = objectives[:, 1].astype(np.int64)
    result["manifold"] = objectives[:, 2]
    result["plausibility"] = -objectives[:, 3]
    result["score"] = scores
    result["changed"] = changed
    result.attrs.update({"num_candidates": num_valid, "pareto_front": pareto,
                         "hypervolume": hv_all, "hypervolume_selected": hv_chosen})
    return result
