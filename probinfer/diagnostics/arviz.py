"""Conversion of a :class:`~probinfer.Result` to ArviZ ``InferenceData``.

ArviZ expects equally weighted draws with ``(chain, draw)`` axes. Weighted particles are
therefore resampled (systematically, with the given key) into one chain; the original
normalised log-weights go to ``sample_stats`` and per-step SMC traces to a ``smc_steps``
group, with the log-evidence and the ESS of the weights in the attributes.
"""

from __future__ import annotations

import numpy as np
import jax


def _is_uniform(log_weights) -> bool:
    lw = np.asarray(log_weights)
    return bool(np.allclose(lw, lw[0], atol=1e-6))


def _leaves_as_dict(samples, var_name):
    if isinstance(samples, dict):
        return {str(k): np.asarray(v) for k, v in samples.items()}
    leaves, _ = jax.tree_util.tree_flatten(samples)
    if len(leaves) == 1:
        return {var_name: np.asarray(leaves[0])}
    return {f"{var_name}_{i}": np.asarray(leaf) for i, leaf in enumerate(leaves)}


def to_arviz(result, key=None, var_name: str = "x", constrain=None):
    """Convert a :class:`~probinfer.Result` to ``arviz.InferenceData``.

    Parameters
    ----------
    result : the Result.
    key : PRNG key for resampling weighted particles to equal weights (default key 0).
    var_name : variable name for array samples (dict samples keep their keys).
    constrain : optional function ``one sample -> dict`` applied (vmapped) before conversion,
        e.g. the map back to constrained NumPyro sites. Default: ``result.info.constrain``
        where the sampler stored one (tempered SMC on a ``from_numpyro`` model).

    For tempered SMC (:class:`~probinfer.smc.TemperedInfo`) the per-step traces (tempering
    exponent, ESS, log-evidence increment, acceptance rate, step size) go to
    ``sample_stats`` along an ``smc_step`` dimension and to the ``smc_steps`` group.
    """
    import arviz as az
    from probinfer.particles.resampling import systematic
    from probinfer.particles.smc import SMCInfo
    from probinfer.particles.tempered import TemperedInfo
    from probinfer.particles.weights import ess

    samples = result.samples
    log_weights = result.log_weights
    resampled = not _is_uniform(log_weights)
    if constrain is None:
        constrain = getattr(result.info, "constrain", None)
    if resampled:
        key = jax.random.key(0) if key is None else key
        ancestors = systematic(key, log_weights, log_weights.shape[0])
        samples = jax.tree_util.tree_map(lambda leaf: leaf[ancestors], samples)
    if constrain is not None:
        samples = jax.vmap(constrain)(samples)
    posterior = {name: v[None] for name, v in _leaves_as_dict(samples, var_name).items()}
    sample_stats = {"log_weight": np.asarray(log_weights)[None]}
    attrs = {
        "log_evidence": float(result.log_evidence),
        "ess": float(ess(log_weights)),
        "resampled_to_equal_weights": int(resampled),
        "inference_library": "probinfer",
    }
    idata = az.from_dict(posterior=posterior, sample_stats=sample_stats, attrs=attrs)
    if isinstance(result.info, SMCInfo):
        import xarray as xr
        steps = np.arange(np.asarray(result.info.ess).shape[0])
        traces = xr.Dataset({
            "ess": ("step", np.asarray(result.info.ess)),
            "resampled": ("step", np.asarray(result.info.resampled)),
            "log_evidence_increment": ("step", np.asarray(result.info.log_evidence_increment)),
        }, coords={"step": steps})
        idata.add_groups({"smc_steps": traces})
    if hasattr(result.info, "traces"):
        # Any info may contribute per-step traces and counters without diagnostics having
        # to know its type (e.g. steering's SteeringInfo).
        import xarray as xr
        traces, counters = result.info.traces()
        length = len(next(iter(traces.values())))
        idata.add_groups({"smc_steps": xr.Dataset(
            {name: ("step", np.asarray(v)) for name, v in traces.items()},
            coords={"step": np.arange(length)})})
        idata.attrs.update({name: int(v) for name, v in counters.items()})
    if isinstance(result.info, TemperedInfo):
        traces = _tempered_traces(result.info)
        idata.sample_stats = idata.sample_stats.assign(
            {name: ("smc_step", values) for name, values in traces.items()})
        idata.sample_stats.attrs["log_evidence"] = float(result.log_evidence)
        import xarray as xr
        idata.add_groups({"smc_steps": xr.Dataset(
            {name: ("step", values) for name, values in traces.items()},
            coords={"step": np.arange(1, len(traces["tempering_exponent"]) + 1)})})
    return idata


def _numbered(name, tree):
    leaves = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(tree)]
    if len(leaves) == 1:
        return {name: leaves[0]}
    return {f"{name}_{i}": leaf for i, leaf in enumerate(leaves)}


def _tempered_traces(info) -> dict:
    """Per-step scalar traces of a tempered SMC run (steps after beta = 0)."""
    from probinfer.kernels.base import KernelParams
    step_sizes = [p.step_size for p in jax.tree_util.tree_leaves(
        info.kernel_params, is_leaf=lambda node: isinstance(node, KernelParams))
        if isinstance(p, KernelParams)]
    traces = {
        "tempering_exponent": np.asarray(info.beta),
        "ess": np.asarray(info.ess),
        "log_evidence_increment": np.asarray(info.log_evidence_increment),
    }
    traces.update(_numbered("acceptance_rate", info.acceptance_rate))
    traces.update(_numbered("step_size", step_sizes))
    return traces
