"""Design targets on predicted performance, and the checked, counted predictor.

A target names an output column of the predictor and asks for a range (continuous
outputs), a set of classes (categorical outputs) or "minimise". Ranges and classes are
constraints; a design is *valid* when it meets all of them. Violations are measured so
that ``g <= 0`` means satisfied (pymoo's convention): for a range ``[lo, hi]``,
``max(lo − y, y − hi) / scale`` with ``scale`` the width of the range (or ``max(|bound|,
1)`` for one-sided ranges); for classes, 0 when the output is one of them and 1 otherwise.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

_MINIMISE = ("minimise", "minimize", "min")


class Targets:
    """What the predicted performance of a counterfactual must satisfy.

    Parameters
    ----------
    ranges : ``{output: (low, high)}``; ``None`` for an open side.
    classes : ``{output: [allowed classes]}``.
    minimise : output names to minimise (objectives, not constraints).

    Example
    -------
    >>> import probinfer as pi
    >>> t = pi.design.Targets(ranges={"stiffness": (5.0, None)}, classes={"safe": [True]},
    ...                       minimise=["mass"])
    >>> t.outputs
    ('stiffness', 'safe', 'mass')
    """

    def __init__(self, ranges: Mapping | None = None, classes: Mapping | None = None,
                 minimise: Sequence[str] = ()):
        self.ranges = {}
        for name, bounds in dict(ranges or {}).items():
            try:
                low, high = bounds
            except (TypeError, ValueError) as err:
                raise ValueError(f"ranges[{name!r}] must be a pair (low, high), got "
                                 f"{bounds!r}") from err
            low = -np.inf if low is None else float(low)
            high = np.inf if high is None else float(high)
            if np.isnan(low) or np.isnan(high) or low > high or (np.isinf(low) and np.isinf(high)):
                raise ValueError(f"ranges[{name!r}] must satisfy low <= high with at least one "
                                 f"finite bound, got ({low}, {high})")
            self.ranges[name] = (low, high)
        self.classes = {}
        for name, allowed in dict(classes or {}).items():
            if isinstance(allowed, (str, bytes)) or not hasattr(allowed, "__iter__"):
                allowed = [allowed]
            allowed = list(allowed)
            if not allowed:
                raise ValueError(f"classes[{name!r}] must list at least one class")
            self.classes[name] = allowed
        if isinstance(minimise, str):
            minimise = [minimise]
        self.minimise = list(minimise)
        names = list(self.ranges) + list(self.classes) + self.minimise
        if len(set(names)) != len(names):
            raise ValueError(f"an output appears in more than one target: {names}")
        if not self.ranges and not self.classes:
            raise ValueError("targets must constrain at least one output (a range or classes); "
                             "minimise-only targets have no notion of a valid design")
        self.outputs = tuple(names)
        self.constrained = tuple(list(self.ranges) + list(self.classes))

    @classmethod
    def from_spec(cls, spec) -> "Targets":
        """A :class:`Targets` from itself or from a dict ``{output: (low, high) | [classes] |
        'minimise'}``."""
        if isinstance(spec, Targets):
            return spec
        if not isinstance(spec, Mapping):
            raise TypeError(f"targets must be a pi.design.Targets or a dict, got "
                            f"{type(spec).__name__}")
        ranges, classes, minimise = {}, {}, []
        for name, value in spec.items():
            if isinstance(value, str) and value.lower() in _MINIMISE:
                minimise.append(name)
            elif isinstance(value, tuple):
                ranges[name] = value
            elif isinstance(value, (list, set, frozenset)):
                classes[name] = sorted(value, key=repr) if isinstance(value, (set, frozenset)) \
                    else value
            else:
                raise ValueError(f"targets[{name!r}] must be a (low, high) tuple, a list of "
                                 f"classes or 'minimise', got {value!r}")
        return cls(ranges, classes, minimise)

    def violations(self, predictions: pd.DataFrame) -> np.ndarray:
        """``(n, num_constraints)``: ``<= 0`` where a constraint is met (see the module)."""
        columns = []
        for name, (low, high) in self.ranges.items():
            y = predictions[name].to_numpy(float)
            scale = (high - low) if np.isfinite(high - low) and high > low else max(
                abs(low) if np.isfinite(low) else abs(high), 1.0)
            columns.append(np.maximum(low - y, y - high) / scale)
        for name, allowed in self.classes.items():
            columns.append(np.where(predictions[name].isin(allowed).to_numpy(), 0.0, 1.0))
        return np.stack(columns, axis=1)

    def __repr__(self):
        return (f"Targets(ranges={self.ranges}, classes={self.classes}, "
                f"minimise={self.minimise})")


class CheckedPredictor:
    """The user's batched predictor, with output checks and a count of designs predicted."""

    def __init__(self, predict: Callable, targets: Targets):
        if not callable(predict):
            raise TypeError(f"predict must be callable: DataFrame of designs -> DataFrame (or "
                            f"array) of outputs, got {type(predict).__name__}")
        self.predict = predict
        self.targets = targets
        self.num_predictions = 0

    def __call__(self, designs: pd.DataFrame) -> pd.DataFrame:
        n = len(designs)
        out = self.predict(designs.copy())
        self.num_predictions += n
        if isinstance(out, pd.Series):
            out = out.to_frame(out.name if out.name is not None else 0)
        if not isinstance(out, pd.DataFrame):
            array = np.asarray(out)
            if array.ndim == 2 and array.shape[1] == 1:
                array = array[:, 0]
            if array.ndim != 1:
                raise ValueError(f"predict returned an array of shape {array.shape} for {n} "
                                 f"designs; return a DataFrame naming its output columns (or "
                                 f"a 1-D array for a single target output)")
            if len(self.targets.outputs) != 1:
                raise ValueError(f"predict returned an unnamed 1-D array but targets name "
                                 f"{len(self.targets.outputs)} outputs "
                                 f"{list(self.targets.outputs)}; return a DataFrame")
            out = pd.DataFrame({self.targets.outputs[0]: array})
        if len(out) != n:
            raise ValueError(f"predict returned {len(out)} rows for {n} designs")
        missing = [name for name in self.targets.outputs if name not in out.columns]
        if missing:
            raise ValueError(f"targets name outputs the predictor does not produce: {missing} "
                             f"(it returned columns {list(out.columns)})")
        out = out.reset_index(drop=True)
        for name in self.targets.outputs:
            column = out[name]
            if name in self.targets.classes:
                bad = column.isna().to_numpy()
            else:
                values = pd.to_numeric(column, errors="coerce").to_numpy(float)
                bad = ~np.isfinite(values)
            if bad.any():
                first = int(np.flatnonzero(bad)[0])
                raise ValueError(f"predict returned NaN or non-numeric values for output "
                                 f"{name!r} at {int(bad.sum())} of {n} designs, e.g. for "
                                 f"{designs.iloc[first].to_dict()}")
        return out
