"""The common answer of every sampler.

:class:`Result` is a NamedTuple registered as a pytree: ``samples``, ``log_weights``,
``log_evidence`` and ``info`` are its children, the optional ``constrain_fn`` (a Python
function, e.g. the map back to a NumPyro model's constrained sites) is static aux data.
So ``jax.jit`` and ``jax.vmap`` of a function returning a Result work, with or without a
constrain map, and replicates stack along a leading axis of every array.

Files written by :meth:`Result.save` are one ``.npz`` holding only numeric arrays plus a
JSON string describing the structure: :meth:`Result.load` reads them with
``allow_pickle=False``, so loading a file never runs code.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from probinfer._random import as_key
from probinfer._types import Array, PRNGKey, PyTree

_FORMAT = "probinfer.Result/1"
_METADATA_KEY = "__metadata__"


class Result(NamedTuple):
    """What every probinfer sampler returns.

    Attributes
    ----------
    samples : pytree with a leading particle axis.
    log_weights : (N,) normalised log-weights: ``E[f] ≈ Σ exp(log_weights) f(samples)``.
    log_evidence : scalar estimate of the log normalising constant, where defined (else NaN).
    info : per-step traces and counters (for SMC an :class:`~probinfer.smc.SMCInfo` with a
        leading step axis). Info types expose them through ``info.traces()``, which returns
        ``(per_step: dict of arrays with a leading step axis, counters: dict)``.
    constrain_fn : optional function of ONE sample returning the constrained values (e.g.
        ``{site: value}`` for a :func:`~probinfer.from_numpyro` model); static, not traced.

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> res = pi.Result(jnp.arange(4.0)[:, None], jnp.log(jnp.array([.1, .2, .3, .4])),
    ...                 jnp.asarray(0.0))
    >>> res.unweighted(jax.random.key(0)).shape
    (4, 1)
    """

    samples: PyTree
    log_weights: Array
    log_evidence: Array
    info: Any = None
    constrain_fn: Callable | None = None

    @property
    def num_particles(self) -> int:
        return self.log_weights.shape[0]

    @property
    def weights(self) -> Array:
        return jnp.exp(self.log_weights)

    @property
    def ess(self) -> Array:
        """Effective sample size of the final weights."""
        from probinfer.particles.weights import ess
        return ess(self.log_weights)

    def mean(self, fn=None) -> PyTree:
        """Weighted mean of ``fn(sample)`` (default: the samples themselves)."""
        values = self.samples if fn is None else jax.vmap(fn)(self.samples)
        w = self.weights
        return jax.tree_util.tree_map(lambda v: jnp.tensordot(w, v, axes=(0, 0)), values)

    def resample(self, key: PRNGKey, num: int | None = None,
                 resampling="systematic") -> "Result":
        """``num`` equally weighted draws from the weighted particles (default ``N``).

        Parameters
        ----------
        key : PRNG key (an ``int`` seed is accepted).
        num : number of draws; default the number of particles.
        resampling : ``"systematic"`` (default, lowest variance), ``"stratified"``,
            ``"multinomial"`` (independent draws), ``"residual"`` or a callable
            ``(key, log_weights, num) -> ancestors``.

        Returns
        -------
        Result with the drawn samples, uniform ``log_weights`` of length ``num``, the same
        ``log_evidence``, ``info`` and ``constrain_fn``.
        """
        from probinfer.particles.resampling import get_resampler

        num = self.num_particles if num is None else _positive_int(num, "num")
        resampler = get_resampler(resampling)
        ancestors = resampler(as_key(key), self.log_weights, num)
        samples = jax.tree_util.tree_map(lambda leaf: leaf[ancestors], self.samples)
        uniform = jnp.full((num,), -math.log(num), jnp.result_type(self.log_weights))
        return self._replace(samples=samples, log_weights=uniform)

    def unweighted(self, key: PRNGKey, num: int | None = None) -> PyTree:
        """Equally weighted samples (systematic resampling): ``resample(key, num).samples``."""
        return self.resample(key, num).samples

    def constrain(self, fn: Callable | None = None) -> PyTree:
        """The samples mapped to constrained space, ``vmap(fn)(samples)``.

        ``fn`` defaults to ``constrain_fn`` (set by samplers run on a
        :func:`~probinfer.from_numpyro` model), else ``info.constrain`` where an older
        sampler stored it there. Raises ``ValueError`` when there is no map.
        """
        fn = fn if fn is not None else self.constrain_fn
        if fn is None:
            fn = getattr(self.info, "constrain", None)
        if fn is None:
            raise ValueError("this Result has no constrain map (samplers set one when run on a "
                             "pi.from_numpyro model); pass fn=one sample -> constrained values")
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        return jax.vmap(fn)(self.samples)

    def to_arviz(self, key=None, var_name: str = "x", constrain=None):
        """Convert to an ArviZ ``InferenceData``; see :func:`probinfer.diagnostics.to_arviz`."""
        from probinfer.diagnostics.arviz import to_arviz
        return to_arviz(self, key=key, var_name=var_name, constrain=constrain)

    def __repr__(self) -> str:
        parts = [f"samples={_describe(self.samples)}"]
        shape = tuple(jnp.shape(self.log_weights))
        if len(shape) == 2:                   # stacked replicates (pi.smc.replicate)
            parts.append(f"num_replicates={shape[0]}")
        parts.append(f"num_particles={shape[-1]}")
        ess = _scalar(self.ess) if len(shape) == 1 and _concrete(self.log_weights) else None
        if ess is not None:
            parts.append(f"ess={ess:.1f}")
        evidence = _scalar(self.log_evidence)
        parts.append("log_evidence=" + (f"{evidence:.4g}" if evidence is not None
                                        else _describe(self.log_evidence)))
        if self.info is not None:
            parts.append("info=" + (_describe_info(self.info) if len(shape) == 1
                                    else type(self.info).__name__))
        if self.constrain_fn is not None:
            parts.append(f"constrain_fn={getattr(self.constrain_fn, '__name__', 'callable')}")
        return "Result(" + ", ".join(parts) + ")"

    def save(self, path) -> Path:
        """Write the result to ``path`` (``.npz``): arrays plus JSON metadata, never pickle.

        Saved: ``samples`` (arrays, nested dicts, lists and tuples of arrays; NamedTuples
        are saved as dicts of their fields), ``log_weights``, ``log_evidence`` and, when
        ``info`` has ``traces()``, its per-step traces (as arrays) and counters. Not saved:
        the ``info`` object itself and ``constrain_fn`` (code is not data; apply
        :meth:`constrain` before saving to keep constrained values). Returns the path
        written (``.npz`` is appended when missing).

        Example
        -------
        >>> import jax.numpy as jnp, probinfer as pi, tempfile, os
        >>> res = pi.Result(jnp.zeros((3, 2)), jnp.log(jnp.ones(3) / 3), jnp.asarray(0.0))
        >>> path = res.save(os.path.join(tempfile.mkdtemp(), "run"))
        >>> pi.Result.load(path).samples.shape
        (3, 2)
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        arrays: dict[str, np.ndarray] = {}
        metadata = {
            "format": _FORMAT,
            "samples": _encode(self.samples, "samples", arrays),
            "log_weights": _encode(self.log_weights, "log_weights", arrays),
            "log_evidence": _encode(self.log_evidence, "log_evidence", arrays),
        }
        if self.info is not None and callable(getattr(self.info, "traces", None)):
            per_step, counters = self.info.traces()
            metadata["info"] = {
                "type": type(self.info).__name__,
                "per_step": {str(k): _encode(v, f"info/{k}", arrays)
                             for k, v in per_step.items() if v is not None},
                "counters": {str(k): _json_number(v, k) for k, v in counters.items()},
            }
        arrays[_METADATA_KEY] = np.asarray(json.dumps(metadata))
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)
        return path

    @classmethod
    def load(cls, path) -> "Result":
        """Read a file written by :meth:`save` (``allow_pickle=False``).

        ``info``, when saved, comes back as a :class:`SavedInfo` whose ``traces()``
        returns the saved per-step traces and counters, so :meth:`to_arviz` still shows
        them.
        """
        path = Path(path)
        with np.load(path, allow_pickle=False) as data:
            if _METADATA_KEY not in data.files:
                raise ValueError(f"{path} is not a file written by probinfer.Result.save")
            metadata = json.loads(str(data[_METADATA_KEY]))
            if metadata.get("format") != _FORMAT:
                raise ValueError(f"{path}: unknown format {metadata.get('format')!r}, expected "
                                 f"{_FORMAT!r}")
            arrays = {name: data[name] for name in data.files if name != _METADATA_KEY}
        info = None
        if "info" in metadata:
            saved = metadata["info"]
            info = SavedInfo(saved["type"],
                             {k: _decode(v, arrays) for k, v in saved["per_step"].items()},
                             dict(saved["counters"]))
        return cls(_decode(metadata["samples"], arrays), _decode(metadata["log_weights"], arrays),
                   _decode(metadata["log_evidence"], arrays), info)


class SavedInfo(NamedTuple):
    """The info of a loaded :class:`Result`: what ``traces()`` returned when it was saved."""

    type_name: str
    per_step: dict
    counters: dict

    def traces(self):
        """``(per_step, counters)`` as saved."""
        return self.per_step, self.counters


_CHILDREN = ("samples", "log_weights", "log_evidence", "info")

jax.tree_util.register_pytree_with_keys(
    Result,
    lambda r: (tuple((jax.tree_util.GetAttrKey(n), getattr(r, n)) for n in _CHILDREN),
               r.constrain_fn),
    lambda constrain_fn, children: Result(*children, constrain_fn=constrain_fn),
    lambda r: (tuple(getattr(r, n) for n in _CHILDREN), r.constrain_fn))


def _positive_int(value, name) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _concrete(x) -> bool:
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(x))


def _scalar(x) -> float | None:
    if not _concrete(x) or np.ndim(x) != 0:
        return None
    return float(x)


def _describe(tree) -> str:
    """``float32[64,2]`` for an array; the same per leaf inside dicts/sequences."""
    if isinstance(tree, dict):
        return "{" + ", ".join(f"{k!r}: {_describe(v)}" for k, v in tree.items()) + "}"
    if isinstance(tree, (list, tuple)) and not hasattr(tree, "_fields"):
        inner = ", ".join(_describe(v) for v in tree)
        return f"[{inner}]" if isinstance(tree, list) else f"({inner})"
    if hasattr(tree, "shape") and hasattr(tree, "dtype"):
        return f"{tree.dtype}[{','.join(str(d) for d in tree.shape)}]"
    leaves = jax.tree_util.tree_leaves(tree)
    return f"{type(tree).__name__}({len(leaves)} leaves)"


def _describe_info(info) -> str:
    traces = getattr(info, "traces", None)
    if callable(traces) and _concrete(info):
        per_step, counters = traces()
        lengths = {np.shape(leaf)[0] for leaf in jax.tree_util.tree_leaves(per_step)
                   if np.ndim(leaf) >= 1}
        steps = f"{lengths.pop()} steps" if len(lengths) == 1 else "traces"
        extra = "".join(f", {k}={v}" for k, v in counters.items())
        return f"{type(info).__name__}({steps}{extra})"
    return type(info).__name__


def _json_number(value, name):
    value = np.asarray(value)
    if value.ndim != 0:
        raise ValueError(f"info counter {name!r} must be a scalar, got shape {value.shape}")
    return value.item()


def _encode(tree, name: str, arrays: dict) -> dict:
    """JSON description of ``tree``; its arrays go into ``arrays`` under numbered keys."""
    if tree is None:
        return {"kind": "none"}
    if isinstance(tree, dict):
        if not all(isinstance(k, str) for k in tree):
            raise TypeError(f"{name}: only dicts with string keys can be saved")
        return {"kind": "dict",
                "items": {k: _encode(v, f"{name}/{k}", arrays) for k, v in tree.items()}}
    if hasattr(tree, "_fields"):
        return {"kind": "dict", "items": {k: _encode(getattr(tree, k), f"{name}/{k}", arrays)
                                          for k in tree._fields}}
    if isinstance(tree, (list, tuple)):
        return {"kind": type(tree).__name__,
                "items": [_encode(v, f"{name}/{i}", arrays) for i, v in enumerate(tree)]}
    array = np.asarray(tree)
    if array.dtype == object:
        raise TypeError(f"{name}: cannot save a {type(tree).__name__} (arrays, dicts, lists and "
                        "tuples of arrays only)")
    key = f"a{len(arrays)}"
    arrays[key] = array
    return {"kind": "array", "key": key}


def _decode(spec: dict, arrays: dict):
    kind = spec["kind"]
    if kind == "none":
        return None
    if kind == "dict":
        return {k: _decode(v, arrays) for k, v in spec["items"].items()}
    if kind in ("list", "tuple"):
        items = [_decode(v, arrays) for v in spec["items"]]
        return items if kind == "list" else tuple(items)
    return jnp.asarray(arrays[spec["key"]])
