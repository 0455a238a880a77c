"""Rewards for steering: JAX rewards, batched host rewards, intermediate reward estimates,
and the one policy for rewards that fail.

A reward is a function of ONE clean sample returning a scalar. JAX rewards are traced and
vmapped. Host rewards (NumPy, torch, RDKit, ...) are batched Python functions wrapped by
:func:`host_reward`: under ``vmap`` the wrapper makes ONE host call per batch of
particles, never one per particle.

Failed rewards: a NaN reward is an error by default (``invalid_reward="raise"``), reported
by every runner with the step and the count. With ``invalid_reward="reject"`` a NaN reward
counts as ``-inf`` (the sample gets zero weight, is never selected) and the runners count
such samples in their ``info``; design loops with RDKit or simulators, where some candidates
cannot be scored, need this.

Host rewards on a cluster: ``host_reward(fn, executor=...)`` takes any
:class:`concurrent.futures.Executor` (a process pool, ``dask.distributed``'s
``client.get_executor()``, Ray's executor) and scores each batch in chunks spread over it;
we use the standard executor interface rather than a scheduler of our own so that any of
them plugs in without code changes.
"""

from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp

from probinfer import _executor
from probinfer._chunks import in_row_blocks
from probinfer.particles.weights import log_mean_exp

INVALID_REWARD_POLICIES = ("raise", "reject")

_TRACING_ERRORS = (jax.errors.TracerBoolConversionError, jax.errors.TracerArrayConversionError,
                   jax.errors.TracerIntegerConversionError, jax.errors.ConcretizationTypeError)


class HostReward:
    """A batched host function ``f(samples (B, *event_shape)) -> (B,)`` as a JAX reward.

    Call it on one sample inside JAX code; ``jax.vmap`` over particles turns that into a
    single host call with the whole batch (``jax.pure_callback`` with
    ``vmap_method="broadcast_all"``). ``num_calls`` and ``num_evaluations`` count host calls
    and samples scored, for NFE/reward-call accounting.

    The function receives a writable NumPy copy of the batch (``torch.from_numpy`` accepts
    it without a warning). An exception raised by ``fn``, or an output of the wrong shape,
    is kept and re-raised, with its own type and message, by the runner that made the call
    (JAX itself would only report an internal callback error).

    With ``executor`` (any :class:`concurrent.futures.Executor`), each batch is split into
    chunks of at most ``chunk_size`` samples, submitted together, and the rewards put back in
    order, so the result equals the in-process call's. A chunk that fails (an exception,
    a lost worker, a wrong shape) is submitted once more; if it fails again,
    ``on_chunk_error="raise"`` (default) re-raises its exception through the runner as
    above, and ``"nan"`` gives that chunk's samples NaN rewards, which the runners' own
    ``invalid_reward`` policy then handles (``"raise"``: an error naming the count;
    ``"reject"``: zero weight), so one bad chunk never loses the rest of the batch.
    ``num_retries`` counts resubmitted chunks, ``num_failed_chunks`` chunks given NaN.
    With a process pool or a cluster, ``fn`` must be picklable (a module-level function).

    Example
    -------
    >>> import numpy as np, probinfer as pi
    >>> reward = pi.steer.host_reward(lambda xs: -np.sum(xs ** 2, axis=-1))
    """

    def __init__(self, fn, dtype=None, executor=None, chunk_size: int = 256,
                 on_chunk_error: str = "raise"):
        if not callable(fn):
            raise TypeError("fn must be a batched callable: samples (B, ...) -> rewards (B,)")
        self.chunk_size = _executor.check_executor(executor, chunk_size, on_chunk_error)
        self.fn = fn
        self.dtype = jnp.result_type(float) if dtype is None else dtype
        self.executor = executor
        self.on_chunk_error = on_chunk_error
        self.num_calls = 0
        self.num_evaluations = 0
        self._counts = _executor.ChunkCounts()
        self._error = None

    @property
    def num_retries(self) -> int:
        return self._counts.num_retries

    @property
    def num_failed_chunks(self) -> int:
        return self._counts.num_failed_chunks

    def _checked(self, out, size):
        out = np.asarray(out, dtype=self.dtype)
        if out.shape != (size,):
            raise ValueError(f"host reward must return shape ({size},) for a batch of {size} "
                             f"samples, got {out.shape}")
        return out

    def _scatter(self, flat):
        """Score ``flat`` in chunks on the executor: each chunk retried once on failure."""
        chunks = [flat[i:j] for i, j in _executor.split(flat.shape[0], self.chunk_size)]
        fail = (None if self.on_chunk_error == "raise"
                else lambda chunk: np.full(chunk.shape[0], np.nan, self.dtype))
        outputs = _executor.map_chunks(
            self.fn, chunks, self.executor,
            lambda out, chunk: self._checked(out, chunk.shape[0]), fail, self._counts)
        return np.concatenate(outputs) if outputs else np.zeros(0, self.dtype)

    def _host(self, event_ndim, x):
        x = np.array(x)                       # a writable copy: JAX hands over read-only views
        batch_shape = x.shape[:x.ndim - event_ndim]
        flat = x.reshape((-1,) + x.shape[x.ndim - event_ndim:])
        try:
            if self.executor is None:
                out = self._checked(self.fn(flat), flat.shape[0])
            else:
                out = self._scatter(flat)
        except Exception as exc:             # re-raised on the caller's side, see raise_pending
            if self._error is None:
                self._error = exc
            return np.full(batch_shape, np.nan, self.dtype)
        self.num_calls += 1
        self.num_evaluations += flat.shape[0]
        return out.reshape(batch_shape)

    def raise_pending(self) -> None:
        """Re-raise the first exception the host function raised since the last check."""
        error, self._error = self._error, None
        if error is not None:
            raise error

    def __call__(self, x):
        x = jnp.asarray(x)
        return jax.pure_callback(lambda v: self._host(x.ndim, v),
                                 jax.ShapeDtypeStruct((), self.dtype), x,
                                 vmap_method="broadcast_all")


def host_reward(fn, dtype=None, *, executor=None, chunk_size: int = 256,
                on_chunk_error: str = "raise") -> HostReward:
    """Wrap a batched host reward ``fn(samples (B, ...)) -> (B,)``; see :class:`HostReward`.

    ``executor``: any :class:`concurrent.futures.Executor` to score each batch on, in chunks
    of ``chunk_size`` samples; ``on_chunk_error``: ``"raise"`` or ``"nan"`` for a chunk that
    fails twice.
    """
    return HostReward(fn, dtype, executor, chunk_size, on_chunk_error)


def host_calls(reward) -> int:
    """Host calls a reward has made so far (0 for JAX rewards)."""
    return getattr(reward, "num_calls", 0)


def check_reward(reward) -> None:
    if not callable(reward):
        raise TypeError("reward must be callable: one sample -> scalar (wrap batched host "
                        "functions with probinfer.steer.host_reward)")


def check_invalid_reward(policy: str) -> bool:
    """Validate ``invalid_reward``; True when failed rewards are rejected (count as -inf)."""
    if policy not in INVALID_REWARD_POLICIES:
        raise ValueError(f"invalid_reward must be one of {INVALID_REWARD_POLICIES}, got "
                         f"{policy!r}")
    return policy == "reject"


def batch_reward(reward, x, chunk_size: int | None = None):
    """Rewards of a batch ``(n, *event_shape) -> (n,)`` (one host call for host rewards;
    with ``chunk_size``, one call per block of that many samples)."""
    out = in_row_blocks(jax.vmap(reward), x, chunk_size)
    if out.shape != x.shape[:1]:
        raise ValueError(f"reward must return a scalar per sample, got shape {out.shape[1:]}")
    return out


def screen(values, reject: bool):
    """``(values, invalid)``: NaN rewards flagged, and set to ``-inf`` when rejected."""
    invalid = jnp.isnan(values)
    return (jnp.where(invalid, -jnp.inf, values) if reject else values), invalid


def clean_reward(key, prior, reward, x, denoised, inverse_temperature, num_draws: int,
                 reject: bool, chunk_size: int | None = None):
    """The reward estimate at an intermediate step, ``((n,) estimates, (n,) invalid)``.

    From the prior's clean estimates (:meth:`~probinfer.diffusion.DiffusionPrior.clean_draws`):
    one posterior mean gives ``r(E[x_0 | x_t])``; ``m`` exact draws of ``x_0 | x_t`` give the
    soft value ``T log mean_j exp(r(x_0^j) / T)``. A sample is invalid when any of its
    draws has a NaN reward.
    """
    draws = prior.clean_draws(key, x, denoised, num_draws)
    m, n = draws.shape[:2]
    values = batch_reward(reward, draws.reshape((m * n,) + draws.shape[2:]),
                          chunk_size).reshape(m, n)
    values, invalid = screen(values, reject)
    invalid = jnp.any(invalid, axis=0)
    if m == 1:
        return values[0], invalid
    return log_mean_exp(inverse_temperature * values, axis=0) / inverse_temperature, invalid


def num_clean_draws(prior, num_draws: int) -> int:
    """How many clean estimates ``clean_draws`` returns per particle (from shapes only)."""
    x = jax.eval_shape(lambda k: prior.init(k, 1), jax.random.key(0))
    denoised = jax.eval_shape(lambda v: prior.denoise(v, 0), x)
    draws = jax.eval_shape(lambda k, v, d: prior.clean_draws(k, v, d, num_draws),
                           jax.random.key(0), x, denoised)
    return int(draws.shape[0])


def explain_failures(reward, call):
    """Run ``call()``; re-raise a host reward's own exception, and turn a reward that JAX
    cannot trace into a ``TypeError`` that suggests :func:`host_reward`."""
    try:
        out = call()
    except _TRACING_ERRORS as err:
        raise TypeError(
            "JAX could not trace the reward (or the prior): it converts a traced value to a "
            f"Python/NumPy value ({type(err).__name__}). Write the reward with jax.numpy, or "
            "wrap a batched NumPy/torch/Python function with pi.steer.host_reward(fn), which "
            "calls it on the host once per batch.") from err
    except Exception:
        if isinstance(reward, HostReward):
            reward.raise_pending()
        raise
    if isinstance(reward, HostReward):
        reward.raise_pending()
    return out
