"""A counterfactual problem: the space, the query, the targets, the objectives and an archive.

Every design either search evaluates goes through :meth:`DesignProblem.evaluate`, which
predicts only designs not seen before (an archive keyed by the design's codes) and keeps
their constraint violations and minimised outputs, so repeated designs (reverted offspring,
rejected MCMC proposals, particles re-evaluated at the start of a move) cost no prediction.

Objectives (all minimised):

* ``proximity``: Gower distance to the query;
* ``sparsity``: number of changed features;
* ``manifold``: mean Gower distance to the ``k = 3`` nearest designs of the data set
  (MCD's manifold proximity; exact, by a KD-tree in the L1 Gower embedding);
* ``plausibility``: log density of the plausibility model (maximised, so ``-plausibility``
  is the objective);
* the outputs ``Targets.minimise`` names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from probinfer.design._plausibility import Plausibility
from probinfer.design._space import DesignSpace
from probinfer.design._targets import CheckedPredictor, Targets

NEIGHBOURS = 3
BASE_OBJECTIVES = ("proximity", "sparsity", "manifold", "plausibility")
#: Weights of the score, in natural units: Gower distances and the fraction of changed
#: features lie in [0, 1]; plausibility counts per nat of log density; minimised outputs per
#: standard deviation over the data; diversity is the DPP's temperature on the score.
DEFAULT_WEIGHTS = {"proximity": 1.0, "sparsity": 0.3, "manifold": 0.5, "plausibility": 0.01,
                   "diversity": 0.05}


class DesignProblem:
    """Everything the searches share (see the module docstring)."""

    def __init__(self, space: DesignSpace, query_codes: np.ndarray, data_codes: np.ndarray,
                 targets: Targets, predictor: CheckedPredictor, frozen: np.ndarray,
                 weights: dict, seed: int):
        from scipy.spatial import cKDTree
        self.space = space
        self.query = np.asarray(query_codes, float)
        self.free = ~np.asarray(frozen, bool)
        self.targets = targets
        self.predictor = predictor
        self.weights = weights
        self._tree = cKDTree(space.embed(data_codes))
        self._index: dict[bytes, int] = {}
        self._codes: list[np.ndarray] = []
        self._violations: list[np.ndarray] = []
        self._minimised: list[np.ndarray] = []
        self._outputs: list[pd.DataFrame] = []
        self._flat = None
        # One call on the query and a few designs of the data checks the predictor's
        # output early and gives the scales of the minimised outputs.
        rng = np.random.default_rng(seed)
        sample = data_codes[rng.choice(len(data_codes), min(31, len(data_codes)),
                                       replace=False)]
        probe = self.evaluate(np.vstack([self.query, self.with_frozen(sample)]))
        minimised = self.minimised[probe]
        self.query_minimised = minimised[0]
        spread = minimised.std(axis=0) if len(minimised) > 1 else np.ones(minimised.shape[1])
        self.minimised_scale = np.where(spread > 0, spread, 1.0)
        self.plausibility = Plausibility.fit(space.embed(data_codes, 1.0), seed)

    # -- archive --------------------------------------------------------------------
    def with_frozen(self, codes: np.ndarray) -> np.ndarray:
        codes = np.array(codes, float)
        codes[:, ~self.free] = self.query[~self.free]
        return codes

    def evaluate(self, codes: np.ndarray) -> np.ndarray:
        """Archive indices of ``codes`` (rows of full codes), predicting unseen designs."""
        codes = np.ascontiguousarray(codes, dtype=float)
        keys = [row.tobytes() for row in codes]
        new = {}
        for i, key in enumerate(keys):
            if key not in self._index and key not in new:
                new[key] = i
        if new:
            rows = codes[list(new.values())]
            predictions = self.predictor(self.space.decode(rows))
            start = sum(len(c) for c in self._codes)
            self._codes.append(rows)
            self._violations.append(self.targets.violations(predictions))
            self._minimised.append(predictions[self.targets.minimise].to_numpy(float).reshape(
                len(rows), len(self.targets.minimise)))
            self._outputs.append(predictions[list(self.targets.outputs)])
            for j, key in enumerate(new):
                self._index[key] = start + j
            self._flat = None
        return np.array([self._index[key] for key in keys], dtype=np.int64)

    def _arrays(self):
        if self._flat is None:
            self._flat = (np.concatenate(self._codes), np.concatenate(self._violations),
                          np.concatenate(self._minimised))
        return self._flat

    @property
    def codes(self) -> np.ndarray:
        return self._arrays()[0]

    @property
    def violations(self) -> np.ndarray:
        return self._arrays()[1]

    @property
    def minimised(self) -> np.ndarray:
        return self._arrays()[2]

    def outputs(self, index: np.ndarray) -> pd.DataFrame:
        return pd.concat(self._outputs, ignore_index=True).iloc[index].reset_index(drop=True)

    def valid(self, index: np.ndarray) -> np.ndarray:
        return np.all(self.violations[index] <= 0, axis=1)

    # -- objectives -----------------------------------------------------------------
    def proximity(self, codes: np.ndarray) -> np.ndarray:
        return self.space.gower(codes, self.query)[:, 0]

    def sparsity(self, codes: np.ndarray) -> np.ndarray:
        return np.count_nonzero(codes != self.query, axis=1)

    def manifold(self, codes: np.ndarray) -> np.ndarray:
        k = min(NEIGHBOURS, self._tree.n)
        distances, _ = self._tree.query(self.space.embed(codes), k=k, p=1)
        return np.mean(distances.reshape(len(codes), k), axis=1) / self.space.num_features

    def log_plausibility(self, codes: np.ndarray) -> np.ndarray:
        return self.plausibility.log_density(self.space.embed(codes, 1.0))

    def objective_matrix(self, codes: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Columns: proximity, sparsity, manifold, -plausibility, minimised outputs."""
        return np.column_stack([self.proximity(codes), self.sparsity(codes),
                                self.manifold(codes), -self.log_plausibility(codes),
                                self.minimised[index]])

    def scalar_objective(self, codes: np.ndarray, index: np.ndarray,
                         plausibility: np.ndarray | None = None) -> np.ndarray:
        """The weighted score (lower is better): ``Σ_k w_k · objective_k`` in the natural
        units of :data:`DEFAULT_WEIGHTS`; the plausibility term is included when its log
        densities are given (the SMC target has the plausibility model as its prior)."""
        w = self.weights
        total = (w["proximity"] * self.proximity(codes)
                 + w["sparsity"] * self.sparsity(codes) / self.space.num_features
                 + w["manifold"] * self.manifold(codes))
        for j, name in enumerate(self.targets.minimise):
            total = total + w[name] * (self.minimised[index, j] - self.query_minimised[j]) / (
                self.minimised_scale[j])
        if plausibility is not None:
            total = total - w["plausibility"] * plausibility
        return total

    def constraint_penalty(self, index: np.ndarray) -> np.ndarray:
        """Number of violated constraints plus their scaled excess (0 for valid designs)."""
        g = self.violations[index]
        return np.sum((g > 0) + np.maximum(g, 0.0), axis=1)
