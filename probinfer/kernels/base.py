"""The move-kernel interface: Markov kernels applied to a whole particle population.

A :class:`Kernel` is a Markov kernel that leaves ``exp(log_density_fn)`` invariant. It is
written for ONE particle as three pure functions (``init_state``, ``step``, ``position``)
and applied to a population by :meth:`Kernel.move` (one run per particle, ``vmap``-ed) or
:meth:`Kernel.trajectories` (every state of each chain is kept, as waste-free SMC needs).
The log density is an argument of every call, not part of the kernel, because inside
tempered SMC the target changes at every step.

Points are pytrees; kernels work on the flat vector ``ravel_pytree(x)`` and map back.
Tunable values (step size, scale) are a params pytree passed in, never baked in, so one
compiled sampler serves every value an adaptation strategy picks.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from probinfer._chunks import blocked_vmap
from probinfer._types import Array, PRNGKey, PyTree
from probinfer.particles.weights import particles_as_rows

#: Largest dimension at which population covariances are used dense (mass matrix of the
#: default adaptation, whitening of the adaptive-repeat jump distance); diagonal above.
MAX_DENSE_DIM = 200


class KernelParams(NamedTuple):
    """Tunable parameters of one base kernel.

    ``step_size``: scalar, in the standardised coordinates ``y = scale⁻¹ x``.
    ``scale``: ``(d,)`` (diagonal) or ``(d, d)`` lower-triangular; the kernel runs on
    ``y`` with ``x = scale @ y``, which is the same as preconditioning the proposal (RWM,
    MALA) or using the mass matrix ``(scale scaleᵀ)⁻¹`` (HMC, NUTS).
    """

    step_size: Array
    scale: Array


class MoveInfo(NamedTuple):
    """Per-particle diagnostics of one move.

    ``acceptance_rate``: ``(N,)`` mean acceptance probability over the kernel's inner
    steps; for :func:`~probinfer.kernels.chain` a tuple with one entry per component.
    ``num_steps``: number of inner kernel steps this move took (a scalar); set by kernels
    that choose it at run time (:func:`~probinfer.kernels.adaptive_repeat`), else ``None``
    and given by :attr:`Kernel.steps_per_move`.
    """

    acceptance_rate: PyTree
    num_steps: Array | None = None


class Kernel:
    """Base class of particle move kernels (subclasses are frozen dataclasses).

    Subclasses implement, for one particle given as a flat vector ``x`` and a flat log
    density ``log_density_fn``:

    * ``init_state(x, log_density_fn, params) -> state``
    * ``step(key, state, log_density_fn, params) -> (state, acceptance_rate)``
    * ``position(state, params) -> x``
    * ``default_params(dim, dtype) -> params`` and ``target_acceptance`` (a pytree of
      floats with the structure of the acceptance rates).
    """

    target_acceptance: PyTree = None
    #: log-density gradient evaluations per step (0 for gradient-free kernels; ``None``
    #: when it varies, as for NUTS).
    gradients_per_step: int | None = 0
    #: inner steps per :meth:`move` (``None`` when chosen at run time).
    steps_per_move: int | None = 1

    def default_params(self, dim: int, dtype=None) -> PyTree:
        raise NotImplementedError

    def gradient_evaluations(self, params):
        """Gradient evaluations per step with these ``params`` (``None`` when unknown).

        Equal to :attr:`gradients_per_step` unless the count depends on the params (HMC
        with a ``trajectory_length``); works on params stacked along leading axes.
        """
        return self.gradients_per_step

    def init_state(self, x: Array, log_density_fn, params):
        raise NotImplementedError

    def step(self, key: PRNGKey, state, log_density_fn, params):
        raise NotImplementedError

    def position(self, state, params) -> Array:
        raise NotImplementedError

    def _run_one(self, key, x, log_density_fn, params):
        state = self.init_state(x, log_density_fn, params)
        state, acceptance = self.step(key, state, log_density_fn, params)
        return self.position(state, params), acceptance

    def move(self, key: PRNGKey, particles: PyTree, log_density_fn: Callable, params,
             chunk_size: int | None = None) -> tuple[PyTree, MoveInfo]:
        """Move every particle once (independently, ``vmap``-ed).

        Parameters
        ----------
        key : PRNG key.
        particles : pytree with a leading particle axis ``N``.
        log_density_fn : ONE point -> scalar log density (positive sense) to leave invariant.
        params : the kernel's params (see :meth:`default_params`).
        chunk_size : move blocks of at most this many particles one after the other
            (``jax.lax.map``), so the log density's intermediates take memory for
            ``chunk_size`` particles, not ``N``; same keys, same moves. ``None``: all at once.

        Returns
        -------
        ``(particles, MoveInfo)`` with per-particle acceptance rates.
        """
        rows, unravel = particles_as_rows(particles)
        flat_log_density = lambda z: log_density_fn(unravel(z))  # noqa: E731
        keys = jax.random.split(key, rows.shape[0])
        new_rows, acceptance = blocked_vmap(
            lambda k, x: self._run_one(k, x, flat_log_density, params), chunk_size)(keys, rows)
        return jax.vmap(unravel)(new_rows), MoveInfo(acceptance)

    def trajectories(self, key: PRNGKey, particles: PyTree, log_density_fn: Callable, params,
                     length: int, chunk_size: int | None = None) -> tuple[PyTree, MoveInfo]:
        """Run a chain of ``length - 1`` moves from each of the ``M`` particles, keep all states.

        Returns ``M * length`` particles (each start followed by its chain) and the
        acceptance rates averaged along each chain, shape ``(M,)``. ``chunk_size`` runs
        blocks of at most that many chains one after the other (as in :meth:`move`).
        """
        rows, unravel = particles_as_rows(particles)
        flat_log_density = lambda z: log_density_fn(unravel(z))  # noqa: E731

        def one_chain(k, x):
            state = self.init_state(x, flat_log_density, params)

            def body(state, step_key):
                state, acceptance = self.step(step_key, state, flat_log_density, params)
                return state, (self.position(state, params), acceptance)

            _, (xs, acceptance) = jax.lax.scan(body, state, jax.random.split(k, length - 1))
            mean_acceptance = jax.tree_util.tree_map(lambda a: jnp.mean(a, axis=0), acceptance)
            return jnp.concatenate([x[None], xs]), mean_acceptance

        keys = jax.random.split(key, rows.shape[0])
        chains, acceptance = blocked_vmap(one_chain, chunk_size)(keys, rows)
        flat = chains.reshape((-1, chains.shape[-1]))
        return jax.vmap(unravel)(flat), MoveInfo(acceptance)
