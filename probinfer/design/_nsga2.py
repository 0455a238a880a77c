"""NSGA-II over mixed variables with a revert-to-query repair (pymoo).

pymoo's own mixed-variable mode (``MixedVariableMating``, used by MCD) keeps each design
as a dict and applies operators one individual at a time. Here a design is one row of a
float matrix of codes over the free features, and the operators are vectorised by type:

* real and integer features: simulated binary crossover and polynomial mutation
  (pymoo's ``cross_sbx`` / ``mut_pm``; Deb & Agrawal 1995, Deb & Goyal 1996);
* categorical and binary features: uniform crossover and resetting to a random option
  with probability ``1 / num_free``;
* repair: every offspring reverts each feature to the query's value with a probability
  drawn from Beta(0.2, 0.5) for that offspring (MCD's revert-to-query repair, which is
  what makes sparse counterfactuals reachable), then integers and options are rounded.

Survival is pymoo's NSGA-II (non-dominated sorting and crowding distance, with
feasibility first: Deb et al. 2002). The initial population is the query and designs of
the data set (with the frozen features set to the query's).
"""

from __future__ import annotations

import numpy as np

from probinfer._optional import require
from probinfer.design._problem import DesignProblem

_SBX_ETA = 15.0
_PM_ETA = 20.0
_REVERT_ALPHA, _REVERT_BETA = 0.2, 0.5


def run_nsga2(problem: DesignProblem, seed: int, budget: int, population_size: int,
              data_codes: np.ndarray) -> np.ndarray:
    """Run NSGA-II; returns the archive indices of every design it evaluated."""
    require("pymoo", "design", "pi.design.counterfactuals(method='nsga2')")
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.crossover import Crossover
    from pymoo.core.duplicate import DefaultDuplicateElimination
    from pymoo.core.mutation import Mutation
    from pymoo.core.problem import Problem
    from pymoo.core.repair import Repair
    from pymoo.core.sampling import Sampling
    from pymoo.operators.crossover.sbx import cross_sbx
    from pymoo.operators.mutation.pm import mut_pm
    from pymoo.optimize import minimize

    space = problem.space
    free = problem.free
    num_free = int(free.sum())
    xl, xu = space.low[free], space.high[free]
    numeric = space.numeric[free]
    discrete_choice = (space.categorical | space.binary)[free]
    rounded = (space.integer | space.categorical | space.binary)[free]
    num_objectives = len(("proximity", "sparsity", "manifold", "plausibility")) + len(
        problem.targets.minimise)
    num_constraints = len(problem.targets.constrained)
    query_free = problem.query[free]
    evaluated: list[np.ndarray] = []

    def full_codes(x):
        codes = np.tile(problem.query, (len(x), 1))
        codes[:, free] = x
        return codes

    class _Counterfactual(Problem):
        def __init__(self):
            super().__init__(n_var=num_free, n_obj=num_objectives,
                             n_ieq_constr=num_constraints, xl=xl, xu=xu)

        def _evaluate(self, x, out, *args, **kwargs):
            codes = space.repair(full_codes(np.asarray(x, float)))
            index = problem.evaluate(codes)
            evaluated.append(index)
            out["F"] = problem.objective_matrix(codes, index)
            out["G"] = problem.violations[index]

    class _Initial(Sampling):
        def _do(self, pymoo_problem, n_samples, *args, random_state=None, **kwargs):
            rows = data_codes[random_state.choice(len(data_codes), min(
                n_samples - 1, len(data_codes)), replace=False)][:, free]
            rows = np.clip(rows, xl, xu)
            return np.vstack([query_free, rows])

    class _MixedCrossover(Crossover):
        def __init__(self):
            super().__init__(2, 2)

        def _do(self, pymoo_problem, x, *args, random_state=None, **kwargs):
            _, n_matings, _ = x.shape
            x = x.astype(float)
            children = x.copy()
            if numeric.any():
                children[:, :, numeric] = cross_sbx(
                    x[:, :, numeric], xl[numeric], xu[numeric],
                    np.full((n_matings, 1), _SBX_ETA), np.full((n_matings, 1), 0.5),
                    np.full((n_matings, 1), 0.5), random_state=random_state)
            if discrete_choice.any():
                swap = random_state.random((n_matings, int(discrete_choice.sum()))) < 0.5
                a, b = x[0][:, discrete_choice], x[1][:, discrete_choice]
                children[0][:, discrete_choice] = np.where(swap, b, a)
                children[1][:, discrete_choice] = np.where(swap, a, b)
            return children

    class _MixedMutation(Mutation):
        def _do(self, pymoo_problem, x, *args, random_state=None, **kwargs):
            x = np.asarray(x, float).copy()
            n = len(x)
            if numeric.any():
                x[:, numeric] = mut_pm(x[:, numeric], xl[numeric], xu[numeric],
                                       np.full(n, _PM_ETA), np.full(n, 1.0 / num_free),
                                       at_least_once=False, random_state=random_state)
            if discrete_choice.any():
                cols = np.flatnonzero(discrete_choice)
                reset = random_state.random((n, len(cols))) < 1.0 / num_free
                draws = np.floor(random_state.random((n, len(cols))) * (xu[cols] - xl[cols] + 1)
                                 ) + xl[cols]
                x[:, cols] = np.where(reset, draws, x[:, cols])
            return x

    class _RevertToQuery(Repair):
        def _do(self, pymoo_problem, x, random_state=None, **kwargs):
            x = np.asarray(x, float).copy()
            probability = random_state.beta(_REVERT_ALPHA, _REVERT_BETA, size=(len(x), 1))
            revert = random_state.random(x.shape) < probability
            x = np.where(revert, query_free, x)
            x = np.clip(x, xl, xu)
            x[:, rounded] = np.round(x[:, rounded])
            return x

    algorithm = NSGA2(pop_size=population_size, sampling=_Initial(),
                      crossover=_MixedCrossover(), mutation=_MixedMutation(),
                      repair=_RevertToQuery(),
                      eliminate_duplicates=DefaultDuplicateElimination())
    generations = max(1, budget // population_size)
    minimize(_Counterfactual(), algorithm, ("n_gen", generations), seed=seed, verbose=False)
    return np.concatenate(evaluated)
