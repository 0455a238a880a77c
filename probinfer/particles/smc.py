"""The generic Feynman–Kac SMC engine.

Convention (Chopin & Papaspiliopoulos 2020): ``X_0 ~ M_0`` weighted by ``G_0(X_0)``; for
``t = 1..T-1``, ``X_t ~ M_t(X_{t-1})`` weighted by ``G_t(X_{t-1}, X_t)``. One step of the
engine at time ``t >= 1``: decide (policy on the weights of ``t-1``) → resample (one gather
of the whole particle pytree) → move (``M_t``) → reweight (``G_t``). Weights are carried in
log space across steps that do not resample; every step reports its log-evidence
increment, so ``log_evidence`` estimates ``log Z_T = log E[prod_t G_t]``.

Adaptive models (tempering, steering with tuned settings) carry *parameters* in the state:
``FeynmanKac.adapt`` updates them after each move from the particles (e.g. the next
temperature, a tuned kernel step size), and ``move``/``log_potential`` receive them. A model
whose number of steps is not known in advance gives ``done`` (a stopping condition) and an
upper bound ``num_steps``; the engine then runs a ``lax.while_loop`` instead of a
``lax.scan``.

``init``/``step`` are pure functions over NamedTuples (the user owns ``jit``/``vmap``);
:func:`scan` is the pure whole-run loop (vmappable over keys for replicates); :func:`run`
is the convenience runner with validation, a progress bar and clear errors.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Callable, Hashable, NamedTuple

import numpy as np
import jax
import jax.numpy as jnp

from probinfer import _checkpoint, _sharding
from probinfer._checkpoint import Checkpoint
from probinfer._progress import PROGRESS_THRESHOLD, chunked_scan, progress_enabled
from probinfer._random import as_key, fast_key
from probinfer._types import Array, PRNGKey, PyTree
from probinfer._validation import check_positive_int
from probinfer.particles import policies as _policies
from probinfer.particles.policies import ResamplingPolicy
from probinfer.particles.resampling import Resampler, get_resampler
from probinfer.particles import weights
from probinfer.particles.weights import ess as _ess
from probinfer.particles.weights import normalize
from probinfer.result import Result


@dataclasses.dataclass(frozen=True, eq=False)
class FeynmanKac:
    """A Feynman–Kac model: ``M_0``, ``M_t``, ``log G_t`` and the number of steps ``T``.

    Parameters
    ----------
    init : ``(key, n) -> particles`` with leading axis ``n``.
    move : ``(key, x_prev, t) -> x``, batched over particles; must keep the structure,
        shapes and dtypes of ``x_prev``.
    log_potential : ``(x_prev, x, t) -> (n,)``; ``x_prev`` is ``None`` at ``t = 0``.
    num_steps : ``T``, the number of potentials (``M_0`` counts as step 0); with ``done``,
        the largest number of steps.
    summary : optional ``(particles, log_weights, t) -> pytree`` recorded after every
        step into ``SMCInfo.summary`` (e.g. weighted means, reward traces), so per-step
        statistics need no loop of your own.
    adapt : optional ``(params, particles, log_weights, t) -> params``, called after the
        move of step ``t`` (after ``M_0`` at ``t = 0``) with the weights the particles carry
        into the reweighting. The params live in ``SMCState.params`` (the run's ``params``
        argument is their initial value) and are recorded in ``SMCInfo.params``. With
        ``adapt`` given, ``move`` is called as ``move(key, x_prev, t, params)`` with the
        params of the previous step and ``log_potential`` as ``log_potential(x_prev, x, t,
        params)`` with this step's.
    done : optional ``state -> bool``: stop after the first step whose state satisfies it
        (at most ``num_steps`` steps). The run is then a ``lax.while_loop``.
    cache_key : optional hashable. Instances compare by identity, so reusing one object
        reuses the compiled run; models built by one builder from the same objects can
        pass the same ``cache_key`` (e.g. a tuple of those objects) to compare equal and
        share the compiled program.

    Notes
    -----
    ``t`` is a traced integer inside compiled runs.

    Compile once: a model is a JAX pytree. Plain functions are structure (static: the
    compiled run is reused only for the same function objects, or the same ``cache_key``);
    functions given as :class:`jax.tree_util.Partial` carry their arguments as numbers
    (traced). A model rebuilt with new data of the same shapes, with its functions written
    as ``Partial(fn, data)`` for a module-level ``fn``, reuses the compiled run (this is how
    :func:`probinfer.ssm.bootstrap` and :func:`probinfer.ssm.guided` are built).
    """

    init: Callable[[PRNGKey, int], PyTree]
    move: Callable[..., PyTree]
    log_potential: Callable[..., Array]
    num_steps: int
    summary: Callable[[PyTree, Array, Array], PyTree] | None = None
    adapt: Callable[[PyTree, PyTree, Array, Array], PyTree] | None = None
    done: Callable[["SMCState"], Array] | None = None
    cache_key: Hashable | None = None

    def __post_init__(self):
        for name in ("init", "move", "log_potential"):
            if not callable(getattr(self, name)):
                raise TypeError(f"FeynmanKac.{name} must be callable, got "
                                f"{type(getattr(self, name)).__name__}")
        for name in ("summary", "adapt", "done"):
            if getattr(self, name) is not None and not callable(getattr(self, name)):
                raise TypeError(f"FeynmanKac.{name} must be callable or None")
        check_positive_int(self.num_steps, "num_steps")
        if self.cache_key is not None:
            hash(self.cache_key)

    def __eq__(self, other):
        if self.cache_key is None or not isinstance(other, FeynmanKac):
            return self is other
        return (type(self), self.num_steps, self.cache_key) == (
            type(other), other.num_steps, other.cache_key)

    def __hash__(self):
        if self.cache_key is None:
            return id(self)
        return hash((type(self), self.num_steps, self.cache_key))


_FUNCTIONS = ("init", "move", "log_potential", "summary", "adapt", "done")


def _carries_numbers(fn) -> bool:
    """Whether a model function is a pytree node (a ``Partial``): its arguments are traced."""
    return fn is not None and not jax.tree_util.treedef_is_leaf(jax.tree_util.tree_structure(fn))


class _ModelStructure:
    """The static part of a :class:`FeynmanKac`: equal structures share a compiled run."""

    __slots__ = ("functions", "num_steps", "cache_key", "traced")

    def __init__(self, functions, num_steps, cache_key, traced):
        self.functions, self.num_steps = functions, num_steps
        self.cache_key, self.traced = cache_key, traced

    def _signature(self):
        functions = (self.cache_key if self.cache_key is not None
                     else tuple(id(fn) for fn in self.functions))
        return self.num_steps, self.traced, functions

    def __eq__(self, other):
        if not isinstance(other, _ModelStructure) or self._signature() != other._signature():
            return False
        # Identity, not ids alone: an id can be reused once its function is freed.
        return self.cache_key is not None or all(
            a is b for a, b in zip(self.functions, other.functions))

    def __hash__(self):
        return hash(self._signature())


def _flatten_model(fk):
    fns = tuple(getattr(fk, name) for name in _FUNCTIONS)
    traced = tuple(_carries_numbers(fn) for fn in fns)
    children = tuple(fn if t else None for fn, t in zip(fns, traced))
    static = tuple(None if t else fn for fn, t in zip(fns, traced))
    return children, _ModelStructure(static, fk.num_steps, fk.cache_key, traced)


def _unflatten_model(structure, children):
    fk = object.__new__(FeynmanKac)
    for name, child, fn, t in zip(_FUNCTIONS, children, structure.functions, structure.traced):
        object.__setattr__(fk, name, child if t else fn)
    object.__setattr__(fk, "num_steps", structure.num_steps)
    object.__setattr__(fk, "cache_key", structure.cache_key)
    return fk


jax.tree_util.register_pytree_node(FeynmanKac, _flatten_model, _unflatten_model)


class SMCState(NamedTuple):
    particles: PyTree
    log_weights: Array      # normalised
    log_evidence: Array     # running estimate of log Z_t
    step: Array             # index of the last completed step
    ess: Array              # ESS of log_weights, kept so the next decision needs no pass
    params: PyTree = None   # FeynmanKac.adapt's parameters after this step (None without)


class SMCInfo(NamedTuple):
    ess: Array                     # ESS after reweighting at this step
    resampled: Array               # whether this step resampled before moving
    ancestors: Array | None        # (N,) parent of each particle (identity if not
                                   # resampled); None unless the run keeps its genealogy
    log_evidence_increment: Array  # log sum_i W_{t-1}^i G_t^i
    num_nonfinite: Array           # potentials that were NaN or +inf (should be 0)
    summary: PyTree = None         # FeynmanKac.summary after this step, if given
    params: PyTree = None          # FeynmanKac.adapt's parameters after this step, if given


def _summary(fk, particles, log_weights, t):
    return None if fk.summary is None else fk.summary(particles, log_weights, t)


def _reweight(log_weights_prev, log_potential):
    """New normalised log-weights, log-evidence increment, #non-finite potentials, ESS."""
    nonfinite = jnp.isnan(log_potential) | (log_potential == jnp.inf)
    unnormalized = log_weights_prev + log_potential
    new_log_weights, increment = normalize(unnormalized)
    # The ESS of the unnormalised weights is the same number, and it shares normalize's
    # exponentials, so it costs no extra pass over the particles.
    return (new_log_weights, increment, jnp.sum(nonfinite).astype(jnp.int32),
            _ess(unnormalized))


def single_key(key) -> PRNGKey:
    """A user's key or integer seed (:func:`probinfer._random.as_key`), refusing a batch."""
    key = as_key(key)
    if key.shape not in ((), (2,)) or (key.shape == (2,) and key.dtype != np.uint32):
        raise ValueError(f"key must be a single PRNG key, got a batch of shape {key.shape} "
                         "(run once per key, e.g. with probinfer.smc.replicate, or vmap over "
                         "the keys)")
    return key


def _check_potential_shape(log_g, num_particles):
    if log_g.shape != (num_particles,):
        raise ValueError(f"log_potential must return shape ({num_particles},), "
                         f"got {log_g.shape}")


def _leaf_name(path) -> str:
    name = jax.tree_util.keystr(path)
    return f" (leaf {name})" if name else ""


def _check_initial_particles(x0, num_particles):
    for path, leaf in jax.tree_util.tree_flatten_with_path(x0)[0]:
        shape = getattr(leaf, "shape", ())
        if len(shape) == 0 or shape[0] != num_particles:
            raise ValueError(
                f"FeynmanKac.init(key, n) must return particles whose leaves have leading "
                f"axis n = {num_particles}, got shape {tuple(shape)}{_leaf_name(path)}")


def _check_moved_particles(x, x_prev):
    structure, structure_prev = (jax.tree_util.tree_structure(x),
                                 jax.tree_util.tree_structure(x_prev))
    if structure != structure_prev:
        raise ValueError(f"FeynmanKac.move must return particles with the structure of its "
                         f"input x_prev: {structure_prev}, got {structure}")
    paths = jax.tree_util.tree_flatten_with_path(x_prev)[0]
    for (path, before), after in zip(paths, jax.tree_util.tree_leaves(x)):
        after = jnp.asarray(after)
        if after.shape != before.shape or after.dtype != before.dtype:
            raise ValueError(
                f"FeynmanKac.move must keep the shape and dtype of the particles: got "
                f"{after.dtype}{list(after.shape)} from x_prev of "
                f"{before.dtype}{list(before.shape)}{_leaf_name(path)}")


def _call(fk, fn, params, *args):
    return fn(*args, params) if fk.adapt is not None else fn(*args)


def init(key: PRNGKey, fk: FeynmanKac, num_particles: int, params: PyTree = None,
         keep_ancestors: bool = False, mesh=None) -> tuple[SMCState, SMCInfo]:
    """Draw ``X_0 ~ M_0`` and weight by ``G_0``. Returns the state and the step-0 info.

    ``params`` is the initial value of the adapted parameters (models with ``adapt``);
    ``keep_ancestors``: record ``info.ancestors`` (else ``None``, see :func:`run`);
    ``mesh``: a one-axis :class:`jax.sharding.Mesh` splitting the particles (see :func:`run`).
    """
    x0 = fk.init(key, num_particles)
    _check_initial_particles(x0, num_particles)
    x0 = _sharding.shard_particles(x0, mesh, num_particles)
    t0 = jnp.asarray(0, jnp.int32)
    uniform = weights.uniform(num_particles)
    if fk.adapt is not None:
        params = fk.adapt(params, x0, uniform, t0)
    log_g = jnp.asarray(_call(fk, fk.log_potential, params, None, x0, t0))
    _check_potential_shape(log_g, num_particles)
    log_g = _sharding.replicate(log_g, mesh)
    log_weights, increment, bad, ess = _reweight(uniform.astype(log_g.dtype), log_g)
    state = SMCState(x0, log_weights, increment, t0, ess, params)
    ancestors = jnp.arange(num_particles, dtype=jnp.int32) if keep_ancestors else None
    info = SMCInfo(ess, jnp.asarray(False), ancestors, increment, bad,
                   _summary(fk, x0, log_weights, state.step), params)
    return state, info


def resample_particles(key: PRNGKey, particles: PyTree, log_weights: Array,
                       resampler: Resampler, num: int | None = None):
    """Resample all per-particle state in one gather; returns ``(particles, ancestors)``."""
    num = log_weights.shape[0] if num is None else num
    ancestors = resampler(key, log_weights, num)
    return jax.tree_util.tree_map(lambda leaf: leaf[ancestors], particles), ancestors


def step(key: PRNGKey, state: SMCState, fk: FeynmanKac, resampler: Resampler,
         policy: ResamplingPolicy, keep_ancestors: bool = False, mesh=None
         ) -> tuple[SMCState, SMCInfo]:
    """One SMC step ``t = state.step + 1``: decide → resample → move → reweight.

    ``keep_ancestors``: report the step's ancestor indices in ``info.ancestors`` (else
    ``None``: a run that stacks its infos then keeps O(T) numbers, not a T × N genealogy);
    ``mesh``: a one-axis :class:`jax.sharding.Mesh` splitting the particles (see :func:`run`).
    """
    resample_key, move_key = jax.random.split(key)
    t = state.step + 1
    num = state.log_weights.shape[0]
    do_resample = policy.should_resample(state.log_weights, t, state.ess)

    def with_resampling(_):
        x, ancestors = resample_particles(resample_key, state.particles, state.log_weights,
                                          resampler)
        return x, weights.uniform(num, state.log_weights.dtype), ancestors

    def without(_):
        return state.particles, state.log_weights, jnp.arange(num, dtype=jnp.int32)

    x_prev, log_w_prev, ancestors = jax.lax.cond(do_resample, with_resampling, without, None)
    x_prev = _sharding.shard_particles(x_prev, mesh, num)
    x = _call(fk, fk.move, state.params, move_key, x_prev, t)
    _check_moved_particles(x, x_prev)
    x = _sharding.shard_particles(x, mesh, num)
    params = state.params
    if fk.adapt is not None:
        params = fk.adapt(params, x, log_w_prev, t)
    log_g = jnp.asarray(_call(fk, fk.log_potential, params, x_prev, x, t))
    _check_potential_shape(log_g, num)
    log_g = _sharding.replicate(log_g, mesh)
    log_weights, increment, bad, ess = _reweight(log_w_prev, log_g)
    new_state = SMCState(x, log_weights, state.log_evidence + increment, t, ess, params)
    return new_state, SMCInfo(ess, do_resample, ancestors if keep_ancestors else None,
                              increment, bad, _summary(fk, x, log_weights, t), params)


def _scan_steps(keys, state, fk, resampler, policy, keep_ancestors=False, mesh=None):
    return jax.lax.scan(lambda s, k: step(k, s, fk, resampler, policy, keep_ancestors, mesh),
                        state, keys)


def _stack(first: SMCInfo, rest: SMCInfo) -> SMCInfo:
    return jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b]), first, rest)


def _running(fk, state):
    """Whether a model with a stopping condition takes another step. A run whose evidence
    is no longer finite (NaN or +inf potentials, or every weight zero) stops at once: its
    later steps carry NaNs, and the runner reports the first failing step."""
    finite = jnp.isfinite(state.log_evidence)
    return ~jnp.asarray(fk.done(state)) & (state.step < fk.num_steps - 1) & finite


def _while_steps(keys, state, info0, fk, resampler, policy, keep_ancestors, mesh):
    buffer = jax.tree_util.tree_map(
        lambda leaf: jnp.zeros((fk.num_steps,) + leaf.shape, leaf.dtype).at[0].set(leaf),
        info0)

    def body(carry):
        s, buf = carry
        new, info = step(keys[s.step + 1], s, fk, resampler, policy, keep_ancestors, mesh)
        return new, jax.tree_util.tree_map(lambda b, v: b.at[new.step].set(v), buf, info)

    return jax.lax.while_loop(lambda carry: _running(fk, carry[0]), body, (state, buffer))


def scan(key: PRNGKey, fk: FeynmanKac, num_particles: int, resampler: Resampler,
         policy: ResamplingPolicy, params: PyTree = None, keep_ancestors: bool = False,
         mesh=None) -> tuple[SMCState, SMCInfo]:
    """The whole run as one pure function (``jit``/``vmap`` it, e.g. over replicate keys).

    Returns the final state and the per-step infos stacked along a leading step axis of
    length ``fk.num_steps`` (``info.ancestors`` only with ``keep_ancestors``). For a model
    with ``done`` the run stops early and only the first ``state.step + 1`` rows are filled
    (the rest are zeros). No input validation or error reporting: :func:`run` adds those.
    """
    keys = jax.random.split(key, fk.num_steps)
    state, info0 = init(keys[0], fk, num_particles, params, keep_ancestors, mesh)
    if fk.done is not None:
        return _while_steps(keys, state, info0, fk, resampler, policy, keep_ancestors, mesh)
    state, infos = _scan_steps(keys[1:], state, fk, resampler, policy, keep_ancestors, mesh)
    return state, _stack(info0, infos)


# The model is a traced argument (a pytree: its Partial functions' numbers are leaves, the
# rest is structure), so a model rebuilt with new data of the same shapes reuses the run.
_init_jit = jax.jit(init, static_argnames=("num_particles", "keep_ancestors", "mesh"))
_step_jit = jax.jit(step, static_argnames=("resampler", "keep_ancestors", "mesh"))
_scan_steps_jit = jax.jit(_scan_steps, static_argnames=("resampler", "keep_ancestors", "mesh"))
_scan_jit = jax.jit(scan, static_argnames=("num_particles", "resampler", "keep_ancestors",
                                           "mesh"))


def execute(key: PRNGKey, fk: FeynmanKac, num_particles: int, resampler: Resampler,
            policy: ResamplingPolicy, params: PyTree = None, progress_bar: bool | None = None,
            desc: str = "SMC", keep_ancestors: bool = False,
            checkpoint: Checkpoint | None = None, resume_from=None, mesh=None
            ) -> tuple[SMCState, SMCInfo]:
    """Compiled run shared by every runner: returns the final state and the infos of the
    steps actually taken. No validation and no error reporting (see :func:`check_run`).

    Without a progress bar the whole run is one compiled call. With one, a fixed-length
    model runs in compiled chunks and a model with ``done`` one compiled step at a time;
    the per-step keys are the same in every mode. With ``checkpoint`` or ``resume_from``
    the run goes in chunks of ``checkpoint.every`` steps, saving after each (no bar).
    """
    if checkpoint is not None or resume_from is not None:
        return _execute_checkpointed(fast_key(key), fk, num_particles, resampler, policy,
                                     params, keep_ancestors, checkpoint, resume_from, mesh)
    if progress_bar is None:
        progress_bar = fk.done is None and fk.num_steps > PROGRESS_THRESHOLD
    # A hidden bar takes the one-compiled-call path (the switch in probinfer._progress).
    progress_bar = progress_bar and progress_enabled()
    # Same bits as the caller's key, generated faster on CPU (see probinfer._random).
    key = fast_key(key)
    if not progress_bar or fk.num_steps == 1:
        state, info = _scan_jit(key, fk, num_particles, resampler, policy, params,
                                keep_ancestors, mesh)
        if fk.done is not None:
            # Sliced on the host: an eager slice would compile once per number of steps.
            steps = int(state.step) + 1
            info = jax.tree_util.tree_map(
                lambda leaf: jax.device_put(np.asarray(leaf)[:steps], leaf.sharding), info)
        return state, info
    keys = jax.random.split(key, fk.num_steps)
    state, info0 = _init_jit(keys[0], fk, num_particles, params, keep_ancestors, mesh)
    if fk.done is None:
        state, rest = chunked_scan(
            lambda chunk, s: _scan_steps_jit(chunk, s, fk, resampler, policy, keep_ancestors,
                                             mesh),
            state, keys[1:], True, desc=desc, initial=1)
        return state, _stack(info0, rest)
    from probinfer._progress import tqdm
    infos = [info0]
    with tqdm(desc=desc, unit="step") as bar:
        bar.update(1)
        while bool(_running(fk, state)):
            state, info = _step_jit(keys[int(state.step) + 1], state, fk, resampler, policy,
                                    keep_ancestors, mesh)
            infos.append(info)
            bar.update(1)
    return state, jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *infos)


def _key_bits(key) -> list:
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.asarray(key).tolist()


def _execute_checkpointed(key, fk, num_particles, resampler, policy, params, keep_ancestors,
                          checkpoint, resume_from, mesh):
    """:func:`execute` in chunks of ``checkpoint.every`` steps with the same per-step keys,
    saving the state and the infos so far after each chunk; or continuing a saved run.

    The infos are gathered on the host as they come (NumPy: concatenating them on the
    device compiled one program per length, i.e. per chunk), the chunks' keys are sliced on
    the host (an eager slice of the device keys compiled once per offset), and each chunk's
    save runs while the next chunk computes (JAX dispatches it asynchronously), so saving
    costs a device-to-host copy and a file write that overlap the computation.
    """
    keys = jax.random.split(key, fk.num_steps)
    impl = jax.random.key_impl(keys)
    key_data = np.asarray(jax.random.key_data(keys))
    header = {"num_particles": num_particles, "num_steps": fk.num_steps,
              "key": _key_bits(key), "keep_ancestors": bool(keep_ancestors)}
    if resume_from is None:
        state, info0 = _init_jit(keys[0], fk, num_particles, params, keep_ancestors, mesh)
        infos = jax.tree_util.tree_map(lambda leaf: leaf[None], jax.device_get(info0))
    else:
        like = jax.eval_shape(lambda k: init(k, fk, num_particles, params, keep_ancestors),
                              keys[0])
        (state, infos), _ = _checkpoint.load(resume_from, like, header)
        state = jax.tree_util.tree_map(jnp.asarray, state)
    every = fk.num_steps if checkpoint is None else checkpoint.every
    pieces = [infos]

    def collect(state, info):
        pieces.append(jax.device_get(info))
        if checkpoint is not None:
            infos = jax.tree_util.tree_map(lambda *xs: np.concatenate(xs), *pieces)
            pieces[:] = [infos]
            _checkpoint.save(checkpoint.path, (state, infos),
                             dict(header, step=int(state.step)))

    if fk.done is None:
        t = int(state.step)
        done = None
        while t < fk.num_steps - 1:
            stop = min(t + every, fk.num_steps - 1)
            chunk_keys = jax.random.wrap_key_data(key_data[t + 1:stop + 1], impl=impl)
            state, rest = _scan_steps_jit(chunk_keys, state, fk, resampler, policy,
                                          keep_ancestors, mesh)
            if done is not None:
                collect(*done)          # the previous chunk, while this one computes
            done = state, rest
            t = stop
        if done is not None:
            collect(*done)
    else:
        while bool(_running(fk, state)):
            state, info = _step_jit(keys[int(state.step) + 1], state, fk, resampler, policy,
                                    keep_ancestors, mesh)
            info = jax.tree_util.tree_map(lambda leaf: leaf[None], jax.device_get(info))
            if int(state.step) % every == 0 or not bool(_running(fk, state)):
                collect(state, info)
            else:
                pieces.append(info)
    infos = jax.tree_util.tree_map(lambda *xs: np.concatenate(xs), *pieces)
    return state, jax.tree_util.tree_map(jnp.asarray, infos)


def _policy_from(policy, ess_threshold, num_steps) -> ResamplingPolicy:
    if policy is None:
        return _policies.ess_below(ess_threshold)
    if isinstance(policy, str):
        named = {"always": _policies.always, "never": _policies.never}
        if policy not in named:
            raise ValueError(f"policy must be 'always', 'never' or a ResamplingPolicy, got "
                             f"{policy!r}")
        return named[policy]()
    if not isinstance(policy, ResamplingPolicy):
        raise TypeError(f"policy must be a ResamplingPolicy or a name, got "
                        f"{type(policy).__name__}")
    if policy.schedule is not None and policy.schedule.shape != (num_steps,):
        raise ValueError(f"policy.schedule must have shape ({num_steps},) to match "
                         f"fk.num_steps, got {policy.schedule.shape}")
    return policy


def check_run(info: SMCInfo, potential: str = "log_potential") -> None:
    """Raise ``ValueError`` for the earliest failure of a run, naming the step and count.

    Once every weight is zero the run carries NaNs, so later non-finite potentials are
    consequences, not causes. ``potential`` names the user function behind the potentials
    (e.g. ``'log_likelihood'`` for tempering).
    """
    bad = np.asarray(info.num_nonfinite) > 0
    increments = np.asarray(info.log_evidence_increment)
    dead = np.isneginf(increments)
    first_bad = int(np.argmax(bad)) if bad.any() else None
    first_dead = int(np.argmax(dead)) if dead.any() else None
    # Finite potentials whose sums pass the float range (with the log-weights, or over the
    # steps) give a NaN or +inf evidence: reported, not returned as a result.
    with np.errstate(over="ignore", invalid="ignore"):
        running = np.cumsum(increments)
    overflow = np.isnan(running) | (running == np.inf)
    first_overflow = int(np.argmax(overflow)) if overflow.any() else None
    if first_overflow is not None and all(first is None or first_overflow < first
                                          for first in (first_bad, first_dead)):
        raise ValueError(
            f"the log-evidence overflowed at step {first_overflow}: {potential} values are "
            f"too large for {increments.dtype} (their sums pass "
            f"{np.finfo(increments.dtype).max:.3g}); rescale them")
    if first_dead is not None and (first_bad is None or first_dead < first_bad):
        raise ValueError(
            f"every particle has zero weight at step {first_dead}: all {potential} values "
            "are -inf (e.g. a hard constraint no particle satisfies). Use more particles, a "
            "softer potential, or a proposal that reaches the support.")
    if first_bad is not None:
        count = int(np.asarray(info.num_nonfinite)[first_bad])
        raise ValueError(
            f"{potential} returned NaN or +inf for {count} particle(s) at step "
            f"{first_bad}; the per-step counts are in info.num_nonfinite (use "
            "probinfer.smc.scan to inspect the run without this check)")


COLLAPSE_FRACTION = 0.01


def warn_on_collapse(ess, num_particles: int, advice: str) -> None:
    """Warn when the final ESS is below ``COLLAPSE_FRACTION`` of the particles."""
    ess = float(ess)
    if ess < COLLAPSE_FRACTION * num_particles:
        warnings.warn(
            f"the final effective sample size collapsed to {ess:.3g} of {num_particles} "
            f"particles ({100 * ess / num_particles:.2g}%, below "
            f"{100 * COLLAPSE_FRACTION:g}%): weighted estimates rest on a handful of "
            f"particles. {advice}", RuntimeWarning, stacklevel=3)


def run(key: PRNGKey, fk: FeynmanKac, num_particles: int, resampling="systematic",
        ess_threshold: float = 0.5, policy=None, final_resample: bool = False,
        progress_bar: bool | None = None, params: PyTree = None,
        keep_ancestors: bool = False, checkpoint: Checkpoint | None = None,
        resume_from=None, mesh=None) -> Result:
    """Run SMC on a Feynman–Kac model.

    Parameters
    ----------
    key : PRNG key, or an integer seed (``jax.random.key(seed)``).
    fk : the :class:`FeynmanKac` model.
    num_particles : N >= 1.
    resampling : 'systematic' (default), 'stratified', 'multinomial', 'residual' or a
        callable ``(key, log_weights, num) -> ancestors``.
    ess_threshold : resample when ESS < ess_threshold · N (ignored when ``policy`` is given).
    policy : 'always', 'never', or a :class:`ResamplingPolicy` (see
        ``probinfer.smc.every``/``at_steps``) overriding ``ess_threshold``.
    final_resample : resample once more at the end, returning equally weighted samples.
    progress_bar : show a progress bar; default: only for fixed-length runs of more than
        200 steps (it advances between compiled chunks; results do not depend on it).
    params : initial value of the adapted parameters (models with ``FeynmanKac.adapt``).
    keep_ancestors : record every step's ancestor indices in ``info.ancestors`` (``(T, N)``
        int32: the genealogy that :func:`probinfer.ssm.lineages` and
        :func:`probinfer.ssm.trajectories` read). Off by default, so a run's memory is
        ``O(N + T)`` rather than ``O(N T)``; ``info.ancestors`` is then ``None``.
    checkpoint : a :class:`probinfer.Checkpoint` ``(path, every=k)``: save the state and
        the infos so far to ``path`` (``.npz``) every ``k`` steps and at the end. The file is
        replaced atomically, so an interrupted run (Ctrl-C, a preempted job) keeps its last
        complete checkpoint. No progress bar is shown.
    resume_from : path of a checkpoint of this run (same key, model, ``num_particles`` and
        settings): continue from its step. The result equals the uninterrupted run's.
        Raises ``ValueError`` when the file belongs to another run (a different key, size
        or state structure; the model's functions cannot be compared, keep them the same).
    mesh : a :class:`jax.sharding.Mesh` with one axis (any name): the particles are split
        along it over its devices (``num_particles`` a multiple of their number); the
        log-weights (one float per particle) are gathered on every device, so weights,
        evidence and resampling are global and computed in the single-device order: the same
        key gives the single-device result. ``None``: one device. See ``docs/scaling.md``.

    Returns
    -------
    Result with ``samples`` (particles at the last step), normalised ``log_weights``,
    ``log_evidence`` (estimate of ``log E[prod_t G_t]``) and ``info`` (:class:`SMCInfo`
    stacked over the steps taken: ``T``, or fewer for a model with ``done``).

    Raises ``ValueError`` naming the step when a potential is NaN or +inf, when every
    particle has zero weight (all potentials ``-inf``), and naming ``init`` or ``move``
    when they return particles of the wrong shape. Warns (``RuntimeWarning``) when the
    final ESS is below 1 % of the particles.

    Example
    -------
    >>> import jax, jax.numpy as jnp, probinfer as pi
    >>> fk = pi.smc.FeynmanKac(
    ...     init=lambda key, n: jax.random.normal(key, (n,)),
    ...     move=lambda key, x, t: x + jax.random.normal(key, x.shape),
    ...     log_potential=lambda x_prev, x, t: -0.5 * x ** 2,
    ...     num_steps=10)
    >>> res = pi.smc.run(jax.random.key(0), fk, 1000)
    >>> res.info.ess.shape
    (10,)
    """
    key = single_key(key)
    if not isinstance(fk, FeynmanKac):
        raise TypeError(f"fk must be a probinfer.smc.FeynmanKac, got {type(fk).__name__}")
    num_particles = check_positive_int(num_particles, "num_particles")
    resampler = get_resampler(resampling)
    policy = _policy_from(policy, ess_threshold, fk.num_steps)
    _checkpoint.check_options(checkpoint, resume_from)
    mesh = _sharding.check_mesh(mesh, num_particles)
    state, info = execute(key, fk, num_particles, resampler, policy, params, progress_bar,
                          keep_ancestors=keep_ancestors, checkpoint=checkpoint,
                          resume_from=resume_from, mesh=mesh)
    check_run(info)
    warn_on_collapse(state.ess, num_particles,
                     "Use more particles, resample more often (policy=), or potentials that "
                     "change less from step to step.")

    samples, log_weights = state.particles, state.log_weights
    if final_resample:
        final_key = jax.random.fold_in(fast_key(key), fk.num_steps)
        samples, _ = resample_particles(final_key, samples, log_weights, resampler)
        log_weights = weights.uniform(num_particles, log_weights.dtype)
    return Result(samples, log_weights, state.log_evidence, info)
