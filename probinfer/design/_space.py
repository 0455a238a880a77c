"""Mixed-variable design spaces: variable types, bounds, encodings and the Gower distance.

A design is a row of a pandas DataFrame whose columns are real, integer, categorical or
binary. Every algorithm here works on *codes*: a float matrix with one column per feature
(the value for real and integer features, the option index for categorical ones, 0/1 for
binary ones). Two embeddings of the codes serve the distances and the plausibility model:

* the Gower embedding: numeric features scaled to ``(x - low) / range``, categorical ones
  one-hot times 1/2, binary ones as 0/1. The L1 distance between two embedded designs,
  divided by the number of features, is their Gower distance (Gower 1971; the mixed form
  used by MCD: ``|x_j - y_j| / range_j`` for numeric features, ``1[x_j != y_j]`` for the
  others), so nearest-neighbour queries can use a KD-tree with the L1 metric;
* the plausibility embedding: the same with one-hot vectors of weight 1, the space in
  which the plausibility density is fitted.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np
import pandas as pd


@dataclasses.dataclass(frozen=True)
class Real:
    """A real feature in ``[low, high]`` (bounds inferred from the data when ``None``)."""

    low: float | None = None
    high: float | None = None


@dataclasses.dataclass(frozen=True)
class Integer:
    """An integer feature in ``[low, high]`` (bounds inferred from the data when ``None``)."""

    low: float | None = None
    high: float | None = None


@dataclasses.dataclass(frozen=True)
class Categorical:
    """A categorical feature with the given options (the data's values when ``None``)."""

    options: tuple | None = None


@dataclasses.dataclass(frozen=True)
class Binary:
    """A binary feature (``False``/``True`` or 0/1)."""


_KINDS = (Real, Integer, Categorical, Binary)


def _infer_variable(series: pd.Series):
    if pd.api.types.is_bool_dtype(series):
        return Binary()
    if pd.api.types.is_integer_dtype(series):
        return Integer()
    if pd.api.types.is_float_dtype(series):
        return Real()
    return Categorical()


class DesignSpace:
    """The features of a design, their types and bounds.

    Build it with :meth:`from_data`. ``columns`` lists the features in order and
    ``variables`` their types with bounds/options filled in.
    """

    def __init__(self, columns: Sequence[str], variables: Sequence, dtypes: Sequence):
        self.columns = tuple(columns)
        self.variables = tuple(variables)
        self._dtypes = tuple(dtypes)
        self.num_features = len(self.columns)
        self.numeric = np.array([isinstance(v, (Real, Integer)) for v in self.variables])
        self.integer = np.array([isinstance(v, Integer) for v in self.variables])
        self.categorical = np.array([isinstance(v, Categorical) for v in self.variables])
        self.binary = np.array([isinstance(v, Binary) for v in self.variables])
        low = np.zeros(self.num_features)
        high = np.ones(self.num_features)
        for j, v in enumerate(self.variables):
            if isinstance(v, (Real, Integer)):
                low[j], high[j] = v.low, v.high
            elif isinstance(v, Categorical):
                high[j] = len(v.options) - 1
        self.low, self.high = low, high
        # A constant numeric feature (low == high) cannot change inside its bounds; a unit
        # range keeps the Gower terms finite.
        span = high - low
        self.range = np.where(self.numeric & (span > 0), span, 1.0)

    # -- construction ---------------------------------------------------------------
    @classmethod
    def from_data(cls, data: pd.DataFrame, variables: Mapping | None = None,
                  extra_rows: pd.DataFrame | None = None) -> "DesignSpace":
        """Types and bounds from ``data``; ``variables`` overrides some features' types.

        Bounds and options left ``None`` are taken from ``data`` (and ``extra_rows``, e.g.
        the query, so that the query is always inside the space).
        """
        if not isinstance(data, pd.DataFrame):
            raise TypeError(f"data must be a pandas DataFrame of designs, got "
                            f"{type(data).__name__}")
        if len(data) < 2:
            raise ValueError(f"data must have at least 2 designs, got {len(data)}")
        if len(data.columns) == 0:
            raise ValueError("data has no columns (features)")
        if data.columns.duplicated().any():
            raise ValueError(f"data has duplicated columns: "
                             f"{list(data.columns[data.columns.duplicated()])}")
        variables = dict(variables or {})
        unknown = [name for name in variables if name not in data.columns]
        if unknown:
            raise ValueError(f"variables names features that are not columns of data: "
                             f"{unknown} (columns: {list(data.columns)})")
        pool = data if extra_rows is None else pd.concat(
            [data, extra_rows[[c for c in data.columns if c in extra_rows.columns]]],
            ignore_index=True)
        filled, dtypes = [], []
        for name in data.columns:
            column = pool[name]
            spec = variables.get(name, None)
            if spec is None:
                spec = _infer_variable(data[name])
            if not isinstance(spec, _KINDS):
                raise TypeError(f"variables[{name!r}] must be Real, Integer, Categorical or "
                                f"Binary, got {type(spec).__name__}")
            if isinstance(spec, (Real, Integer)):
                values = pd.to_numeric(column, errors="coerce").to_numpy(float)
                if not np.all(np.isfinite(values)):
                    raise ValueError(f"feature {name!r} is {type(spec).__name__} but has "
                                     f"non-numeric or non-finite values")
                low = float(values.min()) if spec.low is None else float(spec.low)
                high = float(values.max()) if spec.high is None else float(spec.high)
                if not (np.isfinite(low) and np.isfinite(high)) or low > high:
                    raise ValueError(f"feature {name!r} has bad bounds [{low}, {high}]")
                spec = type(spec)(low, high)
            elif isinstance(spec, Categorical):
                options = spec.options
                if options is None:
                    options = tuple(sorted(pd.unique(column.dropna()), key=repr))
                options = tuple(options)
                if len(options) < 1 or len(set(options)) != len(options):
                    raise ValueError(f"feature {name!r}: categorical options must be distinct "
                                     f"and non-empty, got {options}")
                spec = Categorical(options)
            filled.append(spec)
            dtypes.append(data[name].dtype)
        return cls(list(data.columns), filled, dtypes)

    # -- codes <-> DataFrames -------------------------------------------------------
    def encode(self, frame: pd.DataFrame, name: str = "designs",
               check_bounds: bool = False) -> np.ndarray:
        """The codes of the designs in ``frame`` (float ``(n, num_features)``).

        Raises ``ValueError`` naming unknown or missing features, unknown categories,
        non-binary values of binary features and (with ``check_bounds``) values outside
        the bounds.
        """
        unknown = [c for c in frame.columns if c not in self.columns]
        if unknown:
            raise ValueError(f"{name} has unknown features {unknown} (the design features "
                             f"are {list(self.columns)})")
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} lacks the features {missing}")
        codes = np.empty((len(frame), self.num_features))
        for j, (column, v) in enumerate(zip(self.columns, self.variables)):
            values = frame[column]
            if isinstance(v, Categorical):
                index = {option: k for k, option in enumerate(v.options)}
                bad = [x for x in pd.unique(values) if x not in index]
                if bad:
                    raise ValueError(f"{name} has unknown categories {bad} for feature "
                                     f"{column!r} (options: {list(v.options)})")
                codes[:, j] = [index[x] for x in values]
            elif isinstance(v, Binary):
                numeric = pd.to_numeric(values.astype(object).map(
                    lambda x: int(x) if isinstance(x, (bool, np.bool_)) else x),
                    errors="coerce").to_numpy(float)
                if not np.all(np.isin(numeric, (0.0, 1.0))):
                    raise ValueError(f"{name}: binary feature {column!r} must be 0/1 or "
                                     f"False/True, got {sorted(set(values.tolist()))[:5]}")
                codes[:, j] = numeric
            else:
                numeric = pd.to_numeric(values, errors="coerce").to_numpy(float)
                if not np.all(np.isfinite(numeric)):
                    raise ValueError(f"{name}: feature {column!r} must be finite numbers")
                if isinstance(v, Integer) and np.any(numeric != np.round(numeric)):
                    raise ValueError(f"{name}: integer feature {column!r} has non-integer "
                                     f"values")
                if check_bounds and (np.any(numeric < v.low) or np.any(numeric > v.high)):
                    raise ValueError(f"{name}: feature {column!r} lies outside its bounds "
                                     f"[{v.low}, {v.high}]")
                codes[:, j] = numeric
        return codes

    def repair(self, codes: np.ndarray) -> np.ndarray:
        """Codes clipped to the bounds, integers and option indices rounded."""
        codes = np.clip(codes, self.low, self.high)
        discrete = self.integer | self.categorical | self.binary
        codes[:, discrete] = np.round(codes[:, discrete])
        return codes

    def decode(self, codes: np.ndarray) -> pd.DataFrame:
        """The DataFrame of designs with these codes, in the data's dtypes."""
        codes = np.asarray(codes, float)
        columns = {}
        for j, (column, v, dtype) in enumerate(zip(self.columns, self.variables, self._dtypes)):
            values = codes[:, j]
            if isinstance(v, Categorical):
                columns[column] = pd.Series(np.asarray(v.options, dtype=object)[
                    values.astype(int)]).astype(dtype)
            elif isinstance(v, Binary):
                columns[column] = (values > 0.5) if pd.api.types.is_bool_dtype(dtype) else (
                    values > 0.5).astype(np.int64)
            elif isinstance(v, Integer):
                columns[column] = np.round(values).astype(
                    dtype if pd.api.types.is_integer_dtype(dtype) else np.int64)
            else:
                columns[column] = values
        return pd.DataFrame(columns)

    # -- embeddings and distances ---------------------------------------------------
    def embed(self, codes: np.ndarray, categorical_weight: float = 0.5) -> np.ndarray:
        """Numeric features scaled to ``(x - low) / range``, categorical ones one-hot times
        ``categorical_weight``, binary ones as 0/1 (see the module docstring)."""
        codes = np.atleast_2d(np.asarray(codes, float))
        blocks = []
        for j, v in enumerate(self.variables):
            if isinstance(v, Categorical):
                blocks.append(categorical_weight * np.eye(len(v.options))[
                    codes[:, j].astype(int)])
            elif isinstance(v, Binary):
                blocks.append(codes[:, j:j + 1])
            else:
                blocks.append(((codes[:, j] - self.low[j]) / self.range[j])[:, None])
        return np.concatenate(blocks, axis=1)

    def embedding_blocks(self) -> list[slice]:
        """The columns of each feature in the embeddings."""
        blocks, start = [], 0
        for v in self.variables:
            width = len(v.options) if isinstance(v, Categorical) else 1
            blocks.append(slice(start, start + width))
            start += width
        return blocks

    def gower(self, codes_a: np.ndarray, codes_b: np.ndarray) -> np.ndarray:
        """Gower distances ``(n, m)`` between two sets of codes."""
        a = np.atleast_2d(np.asarray(codes_a, float))
        b = np.atleast_2d(np.asarray(codes_b, float))
        diff = a[:, None, :] - b[None, :, :]
        per_feature = np.where(self.numeric, np.abs(diff) / self.range, diff != 0)
        return per_feature.sum(-1) / self.num_features


def gower_distance(designs: pd.DataFrame, reference: pd.DataFrame,
                   space: DesignSpace | pd.DataFrame) -> np.ndarray:
    """Gower distance between every row of ``designs`` and every row of ``reference``.

    ``(1/d) Σ_j δ_j`` with ``δ_j = |x_j − y_j| / range_j`` for real and integer features and
    ``δ_j = 1[x_j ≠ y_j]`` for categorical and binary ones (Gower 1971). ``space`` is a
    :class:`DesignSpace` or a data set of designs from which one is built (ranges from the
    data).

    Example
    -------
    >>> import pandas as pd, probinfer as pi
    >>> data = pd.DataFrame({"a": [0.0, 10.0], "c": ["x", "y"]})
    >>> float(pi.design.gower_distance(pd.DataFrame({"a": [2.0], "c": ["x"]}),
    ...                                pd.DataFrame({"a": [7.0], "c": ["y"]}), data)[0, 0])
    0.75
    """
    if not isinstance(space, DesignSpace):
        space = DesignSpace.from_data(space)
    return space.gower(space.encode(designs, "designs"), space.encode(reference, "reference"))


def sparsity(designs: pd.DataFrame, query) -> np.ndarray:
    """Number of features of each design that differ from the query (``(n,)`` integers).

    Example
    -------
    >>> import pandas as pd, probinfer as pi
    >>> pi.design.sparsity(pd.DataFrame({"a": [1, 1], "b": ["u", "v"]}), {"a": 1, "b": "u"})
    array([0, 1])
    """
    if not isinstance(designs, pd.DataFrame):
        raise TypeError(f"designs must be a DataFrame, got {type(designs).__name__}")
    query = as_query_frame(query)
    missing = [c for c in designs.columns if c not in query.columns]
    if missing:
        raise ValueError(f"query lacks the features {missing}")
    reference = query[list(designs.columns)].iloc[0]
    return (designs != reference).sum(axis=1).to_numpy(np.int64)


def as_query_frame(query) -> pd.DataFrame:
    """A one-row DataFrame from a one-row DataFrame, a Series or a dict."""
    if isinstance(query, pd.Series):
        query = query.to_frame().T
    elif isinstance(query, Mapping):
        query = pd.DataFrame({k: [v] for k, v in query.items()})
    if not isinstance(query, pd.DataFrame):
        raise TypeError(f"query must be a one-row DataFrame, a Series or a dict, got "
                        f"{type(query).__name__}")
    if len(query) != 1:
        raise ValueError(f"query must have exactly one row, got {len(query)}")
    return query.reset_index(drop=True).infer_objects()
