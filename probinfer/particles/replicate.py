"""Independent replicates of a sampler, stacked so that each becomes an ArviZ chain.

One SMC run gives one weighted population: ArviZ's ``r_hat`` and bulk/tail ESS need
several independent chains to mean anything (with one chain ``az.summary`` warns about
the shape and ``r_hat`` is undefined). :func:`replicate` runs a sampler under
``num_replicates`` independent keys and stacks the results along a leading replicate
axis; :func:`probinfer.diagnostics.to_arviz` turns that axis into chains, and the spread
of ``log_evidence`` across replicates is the honest error bar of the evidence estimate.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from probinfer._random import as_key
from probinfer._types import PRNGKey
from probinfer._validation import check_positive_int
from probinfer.result import Result

METHODS = ("auto", "vmap", "loop")

# Errors JAX raises when a function needs concrete values (NumPy conversion, Python
# branching on arrays, host-side validation): such runners cannot be vmapped.
_NOT_VMAPPABLE = (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError,
                  jax.errors.TracerBoolConversionError, jax.errors.TracerIntegerConversionError)


def replicate(key: PRNGKey, runner: Callable[[PRNGKey], Result], num_replicates: int, *,
              method: str = "auto", progress_bar: bool | None = None) -> Result:
    """Run ``runner(key)`` under ``num_replicates`` independent keys and stack the Results.

    Parameters
    ----------
    key : PRNG key (an ``int`` seed is accepted); replicate ``r`` uses
        ``jax.random.split(key, num_replicates)[r]``.
    runner : ``key -> Result``, e.g. ``lambda k: pi.smc.run(k, fk, 1000)``.
    num_replicates : ``R >= 1``.
    method : ``"vmap"`` (one compiled program over all keys: the runner must be a pure JAX
        function, e.g. built on :func:`probinfer.smc.scan`), ``"loop"`` (one call per key,
        with a progress bar; any runner, including ``pi.smc.run`` and host rewards), or
        ``"auto"`` (default): ``vmap`` when the runner can be traced, else ``loop``.
    progress_bar : show a bar over replicates in the loop; default when ``R > 1``.

    Returns
    -------
    Result whose arrays all carry a leading replicate axis: ``samples`` ``(R, N, ...)``,
    ``log_weights`` ``(R, N)``, ``log_evidence`` ``(R,)``, ``info`` stacked (Python
    counters become arrays ``(R,)``). ``result.to_arviz()`` gives ``R`` chains of ``N``
    equally weighted draws each, so ``az.summary`` reports ``r_hat`` and ESS across runs.

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> fk = pi.smc.FeynmanKac(
    ...     init=lambda key, n: jax.random.normal(key, (n,)),
    ...     move=lambda key, x, t: x + jax.random.normal(key, x.shape),
    ...     log_potential=lambda x_prev, x, t: -0.5 * x ** 2, num_steps=5)
    >>> reps = pi.smc.replicate(jax.random.key(0), lambda k: pi.smc.run(k, fk, 100), 4)
    >>> reps.log_evidence.shape, reps.samples.shape
    ((4,), (4, 100))
    """
    if not callable(runner):
        raise TypeError(f"runner must be a function key -> Result, got {type(runner).__name__}")
    num_replicates = check_positive_int(num_replicates, "num_replicates")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    keys = jax.random.split(as_key(key), num_replicates)
    if method in ("auto", "vmap"):
        try:
            results = jax.vmap(runner)(keys)
        except _NOT_VMAPPABLE:
            if method == "vmap":
                raise
        else:
            _check_result(results)
            return results
    return _loop(runner, keys, progress_bar)


def _check_result(result):
    if not isinstance(result, Result):
        raise TypeError(f"runner must return a probinfer.Result, got {type(result).__name__}")


def _loop(runner, keys, progress_bar) -> Result:
    from probinfer._progress import tqdm

    show = keys.shape[0] > 1 if progress_bar is None else bool(progress_bar)
    results = []
    for k in tqdm(keys, disable=not show, desc="replicates", unit="run"):
        result = runner(k)
        _check_result(result)
        results.append(result)
    try:
        return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *results)
    except ValueError as err:
        raise ValueError("the replicates' Results differ in structure (e.g. samples of "
                         f"different shapes or a different info type): {err}") from err
