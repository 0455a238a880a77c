"""Conversion of a :class:`~probinfer.Result` to ArviZ ``InferenceData``.

ArviZ expects equally weighted draws with ``(chain, draw)`` axes. Weighted particles are
therefore resampled (systematically, with the given key) into one chain; the original
normalised log-weights go to ``sample_stats``, the log-evidence and the ESS of the weights
to the attributes. Results stacked over independent replicates (a leading replicate axis
on every array, as :func:`probinfer.smc.replicate` returns) become one chain each.

Per-step traces come from one protocol, whatever the sampler: when ``result.info`` has a
``traces()`` method it returns ``(per_step, counters)``, a dict of arrays (or pytrees)
with a leading step axis and a dict of numbers. One-dimensional traces go to
``sample_stats`` along an ``smc_step`` dimension, every trace to an ``smc_steps`` group,
counters to the attributes. This module knows no Info type.
"""

from __future__ import annotations

import numpy as np
import jax

from probinfer._random import as_key


def _is_uniform(log_weights) -> bool:
    lw = np.asarray(log_weights)
    return bool(np.allclose(lw, lw[..., :1], atol=1e-6))


def _leaves_as_dict(samples, var_name):
    if isinstance(samples, dict):
        named = {}
        for k, v in samples.items():
            named.update(_numbered(str(k), v))
        return named
    leaves, _ = jax.tree_util.tree_flatten(samples)
    if len(leaves) == 1:
        return {var_name: np.asarray(leaves[0])}
    return {f"{var_name}_{i}": np.asarray(leaf) for i, leaf in enumerate(leaves)}


def _numbered(name, tree):
    leaves = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(tree)]
    if len(leaves) == 1:
        return {name: leaves[0]}
    return {f"{name}_{i}": leaf for i, leaf in enumerate(leaves)}


def info_traces(info) -> tuple[dict, dict]:
    """``info.traces()`` flattened to named NumPy arrays, or empty dicts without one."""
    traces = getattr(info, "traces", None)
    if not callable(traces):
        return {}, {}
    per_step, counters = traces()
    flat = {}
    for name, value in per_step.items():
        if value is not None:
            flat.update(_numbered(str(name), value))
    return flat, dict(counters)


def _one_chain(result, key, constrain):
    """Equally weighted samples ``(N, ...)`` of one result, and whether it was resampled."""
    resampled = not _is_uniform(result.log_weights)
    samples = result.resample(key).samples if resampled else result.samples
    if constrain is not None:
        samples = jax.vmap(constrain)(samples)
    return samples, resampled


def to_arviz(result, key=None, var_name: str = "x", constrain=None):
    """Convert a :class:`~probinfer.Result` to ``arviz.InferenceData``.

    Parameters
    ----------
    result : the Result; a Result of replicates (``log_weights`` of shape ``(R, N)``, every
        array with a leading replicate axis) gives ``R`` chains of ``N`` draws.
    key : PRNG key (or int seed) for resampling weighted particles to equal weights
        (default seed 0).
    var_name : variable name for array samples (dict samples keep their keys).
    constrain : optional function ``one sample -> dict`` applied (vmapped) before conversion,
        e.g. the map back to constrained NumPyro sites. Default: the result's own map
        (``result.constrain_fn``, set by samplers run on a ``from_numpyro`` model).

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> res = pi.Result(jnp.zeros((8, 2)), jnp.full(8, -jnp.log(8.0)), jnp.asarray(0.0))
    >>> res.to_arviz().posterior["x"].shape
    (1, 8, 2)
    """
    import arviz as az

    log_weights = np.asarray(result.log_weights)
    if log_weights.ndim not in (1, 2):
        raise ValueError("result.log_weights must have shape (N,) or (replicates, N), got "
                         f"{log_weights.shape}")
    if constrain is None:
        constrain = result.constrain_fn or getattr(result.info, "constrain", None)
    key = as_key(0 if key is None else key)
    if log_weights.ndim == 1:
        samples, resampled = _one_chain(result, key, constrain)
        chains = [_leaves_as_dict(samples, var_name)]
        evidence = float(result.log_evidence)
    else:
        chains, resampled = [], False
        for r, chain_key in enumerate(jax.random.split(key, log_weights.shape[0])):
            one = jax.tree_util.tree_map(lambda leaf: leaf[r], result._replace(info=None))
            samples, chain_resampled = _one_chain(one, chain_key, constrain)
            chains.append(_leaves_as_dict(samples, var_name))
            resampled = resampled or chain_resampled
        evidence = np.asarray(result.log_evidence)
    posterior = {name: np.stack([chain[name] for chain in chains]) for name in chains[0]}
    sample_stats = {"log_weight": log_weights.reshape((-1, log_weights.shape[-1]))}
    per_step, counters = info_traces(result.info)
    ess = np.asarray(result.ess if log_weights.ndim == 1
                     else jax.vmap(lambda lw: result._replace(log_weights=lw).ess)(
                         result.log_weights))
    attrs = {
        "log_evidence": float(evidence) if np.ndim(evidence) == 0 else evidence.tolist(),
        "ess": float(ess) if ess.ndim == 0 else ess.tolist(),
        "resampled_to_equal_weights": int(resampled),
        "inference_library": "probinfer",
    }
    attrs.update({name: _attr(value) for name, value in counters.items()})
    idata = az.from_dict(posterior=posterior, sample_stats=sample_stats, attrs=attrs)
    if per_step and log_weights.ndim == 1:
        idata.sample_stats = idata.sample_stats.assign(
            {name: ("smc_step", v) for name, v in per_step.items() if v.ndim == 1})
        idata.sample_stats.attrs["log_evidence"] = attrs["log_evidence"]
        idata.add_groups({"smc_steps": _steps_dataset(per_step, ("step",))})
    elif per_step:
        idata.add_groups({"smc_steps": _steps_dataset(per_step, ("chain", "step"))})
    return idata


def _steps_dataset(per_step, leading):
    import xarray as xr

    data = {}
    for name, value in per_step.items():
        dims = leading + tuple(f"{name}_dim_{i}" for i in range(value.ndim - len(leading)))
        data[name] = (dims, value)
    length = next(iter(per_step.values())).shape[len(leading) - 1]
    return xr.Dataset(data, coords={"step": np.arange(length)})


def _attr(value):
    value = np.asarray(value)
    return value.item() if value.ndim == 0 else value.tolist()
