"""Multi-marginal Schrödinger bridges with iterative reference refinement (SBIRR).

Shen, Berlinghieri & Broderick (AISTATS 2025), "Multi-marginal Schrödinger bridges with
iterative reference refinement". Snapshots ``mu_0, ..., mu_K`` of a population at times
``t_0 < ... < t_K``, and a reference ``dX = f(X; theta) dt + sigma dW`` known up to
``theta``. Coordinate descent on ``KL(P | R_theta)`` over path measures ``P`` with the
snapshot marginals and over ``theta``:

1. bridge step: with ``theta`` fixed the problem splits into one two-marginal bridge per
   interval ``[t_k, t_{k+1}]``, each solved by IPF (:mod:`probinfer.bridges.dynamic`);
2. refinement step: with the bridges fixed, ``KL(P | R_theta) = E_P int |u - f_theta|^2 /
   (2 sigma^2) dt + const`` (Girsanov), where ``u`` is the bridges' forward drift, so
   ``theta`` is the least-squares fit of ``f(., theta)`` to unbiased estimates of ``u`` (the
   mean-matching targets) along the last half-bridge's paths, by L-BFGS from the current
   ``theta`` (exact for drifts linear in ``theta`` such as Lotka–Volterra).

Every interval shares one number of Euler steps, so both steps are ``vmap``-ed over the
intervals and compiled once.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

import numpy as np
import jax
import jax.numpy as jnp

from probinfer._progress import PROGRESS_THRESHOLD
from probinfer._types import Array, PRNGKey
from probinfer._validation import check_positive_int, check_positive_scalar
from probinfer.bridges.dynamic import (Basis, HalfBridge, Interval, LinearDrift, RandomFeatures,
                                       drift_value, ipf_iteration, reverse_targets, simulate)
from probinfer.bridges.references import Reference, as_reference


def _check_snapshots(snapshots, times):
    if isinstance(snapshots, (np.ndarray, jax.Array)) and np.ndim(snapshots) == 3:
        snapshots = list(snapshots)
    if not isinstance(snapshots, (list, tuple)):
        raise TypeError("snapshots must be a list of (n_i, d) arrays, got "
                        f"{type(snapshots).__name__}")
    if len(snapshots) < 2:
        raise ValueError(f"snapshots must hold at least two times, got {len(snapshots)}")
    arrays = []
    for i, snap in enumerate(snapshots):
        arr = np.asarray(snap, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[0] < 1:
            raise ValueError(f"snapshots[{i}] must have shape (n_i, d) with n_i >= 1, got "
                             f"{arr.shape}")
        if arr.shape[1] != np.asarray(snapshots[0]).shape[-1]:
            raise ValueError(f"snapshots must share one dimension d: snapshots[0] has "
                             f"d={np.asarray(snapshots[0]).shape[-1]}, snapshots[{i}] has "
                             f"d={arr.shape[1]}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"snapshots[{i}] must be finite, got NaN or inf entries")
        arrays.append(arr)
    t = np.asarray(times, dtype=np.float64)
    if t.ndim != 1 or t.shape[0] != len(arrays):
        raise ValueError(f"times must have shape ({len(arrays)},) (one per snapshot), got "
                         f"{t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError("times must be finite")
    if np.any(np.diff(t) <= 0):
        raise ValueError(f"times must be strictly increasing, got {t.tolist()}")
    return arrays, t


@partial(jax.jit, static_argnames=("model", "reference", "num_steps", "num_iterations"))
def _fit_bridges(key, intervals, basis, params, sigma, ridge, *, model, reference, num_steps,
                 num_iterations):
    """IPF on every interval at once (vmap), from the reference (zero corrections).

    Every round restarts from the reference: IPF started from another path measure converges
    to the projection of that measure, not to the Schrödinger bridge of the reference.
    """
    m = model.features(basis, intervals.start[0, :1], jnp.zeros(())).shape[-1]
    num_intervals, _, d = intervals.start.shape
    zeros = jnp.zeros((num_intervals, m, d), intervals.start.dtype)
    coefs = HalfBridge(zeros, zeros)
    one = jax.vmap(ipf_iteration, in_axes=(0, 0, 0, None, None, None, None, None, None, None))

    def body(coefs, k):
        keys = jax.random.split(k, num_intervals)
        return one(keys, intervals, coefs, model, basis, reference, params, sigma, num_steps,
                   ridge), None

    coefs, _ = jax.lax.scan(body, coefs, jax.random.split(key, num_iterations))
    return coefs


@partial(jax.jit, static_argnames=("model", "reference", "num_steps", "num_lbfgs"))
def _refine(key, intervals, coefs, basis, params, sigma, *, model, reference, num_steps,
            num_lbfgs):
    """Least-squares fit of the reference drift to the bridges' paths (the M-step).

    The paths are those the last IPF half-step fitted the forward drift on: the backward
    half-bridge simulated from each interval's right snapshot. Their mean-matching targets
    are unbiased for the forward drift of that path measure, so regressing ``f(., theta)`` on
    them minimises ``KL(P | R_theta)`` (Girsanov) for it. The fitted forward drift itself
    would not do: its ridge penalty pulls it toward the current reference, and every round
    would then move ``theta`` only part of the way the bridge asks for.
    """
    import optax

    num_intervals = intervals.start.shape[0]
    s_bwd = jnp.linspace(1.0, 0.0, num_steps + 1, dtype=intervals.start.dtype)

    def targets(k, interval, coef):
        step = interval.duration / num_steps
        path = simulate(k, interval.end, model, basis, reference, params, coef, -1.0, s_bwd,
                        step, sigma)
        return reverse_targets(path, s_bwd, model, basis, reference, params, coef, -1.0, step)

    xs, us = jax.vmap(targets)(jax.random.split(key, num_intervals), intervals, coefs.backward)
    d = xs.shape[-1]
    xs, us = xs.reshape(-1, d), us.reshape(-1, d)

    def loss(p):
        return jnp.mean(jnp.sum((us - reference.batched_drift(xs, p)) ** 2, -1))

    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    def body(carry, _):
        p, state = carry
        value, grad = value_and_grad(p, state=state)
        updates, state = opt.update(grad, state, p, value=value, grad=grad, value_fn=loss)
        return (optax.apply_updates(p, updates), state), value

    (new, _), values = jax.lax.scan(body, (params, opt.init(params)), None, length=num_lbfgs)
    return new, values[-1]


@partial(jax.jit, static_argnames=("model", "reference", "num_steps"))
def _chain(key, start, coefs, durations, basis, params, sigma, *, model, reference, num_steps):
    """Forward paths through all intervals: (num_intervals, num_steps + 1, N, d)."""
    s_grid = jnp.linspace(0.0, 1.0, num_steps + 1, dtype=start.dtype)

    def body(x, inp):
        k, coef, duration = inp
        path = simulate(k, x, model, basis, reference, params, coef, 1.0, s_grid,
                        duration / num_steps, sigma)
        return path[-1], path

    keys = jax.random.split(key, durations.shape[0])
    _, paths = jax.lax.scan(body, start, (keys, coefs.forward, durations))
    return paths


@partial(jax.jit, static_argnames=("model", "reference", "num_steps"))
def _restart(key, starts, coefs, durations, basis, params, sigma, *, model, reference, num_steps):
    """Each interval's bridge from its own left snapshot: (num_intervals, num_steps + 1, N, d)."""
    s_grid = jnp.linspace(0.0, 1.0, num_steps + 1, dtype=starts.dtype)

    def one(k, x, coef, duration):
        return simulate(k, x, model, basis, reference, params, coef, 1.0, s_grid,
                        duration / num_steps, sigma)

    keys = jax.random.split(key, durations.shape[0])
    return jax.vmap(one)(keys, starts, coefs.forward, durations)


@dataclasses.dataclass(frozen=True, eq=False)
class MultimarginalBridge:
    """A fitted multi-marginal Schrödinger bridge (from :func:`multimarginal`).

    Attributes
    ----------
    times : (K+1,) snapshot times. snapshots : the data (list of (n_i, d) arrays).
    reference : the :class:`Reference` with the refined parameters.
    reference_parameters : the refined ``params`` pytree (empty for Brownian motion).
    parameter_history : one ``params`` per refinement round, starting with the initial ones.
    loss_history : the drift-matching loss after each refinement round.
    sigma : the reference diffusion coefficient.
    """

    times: np.ndarray
    snapshots: list
    reference: Reference
    parameter_history: list
    loss_history: list
    sigma: Array
    coefs: HalfBridge
    basis: Basis
    model: Any
    num_steps: int

    @property
    def reference_parameters(self):
        return self.reference.params

    def _grid(self):
        return np.concatenate(
            [self.times[:-1, None] + np.diff(self.times)[:, None]
             * np.linspace(0.0, 1.0, self.num_steps + 1)[None, :-1], self.times[-1:, None]],
            axis=None)

    def sample(self, key: PRNGKey, times, num_samples: int, *, trajectories: bool = True):
        """Samples at ``times`` (within ``[t_0, t_K]``): shape ``(num_samples, len(times), d)``.

        ``trajectories=True``: paths start from the first snapshot (resampled) and follow the
        fitted forward drift through every interval, so ``out[j]`` is one trajectory.
        ``trajectories=False``: marginals; the draws at a time in ``[t_k, t_{k+1})`` come from
        the bridge of that interval started from snapshot ``k`` (resampled), which is the
        bridge's marginal by definition and does not accumulate the fitting error of earlier
        intervals (draws at different times are then not one path). Off the Euler grid the
        state is advanced from the last grid point by one partial Euler step.
        """
        num_samples = check_positive_int(num_samples, "num_samples")
        t = np.atleast_1d(np.asarray(times, dtype=np.float64))
        if t.ndim != 1 or not np.all(np.isfinite(t)):
            raise ValueError(f"times must be a finite 1-D array, got {times!r}")
        if t.min() < self.times[0] - 1e-9 or t.max() > self.times[-1] + 1e-9:
            raise ValueError(f"times must lie in [{self.times[0]}, {self.times[-1]}], got "
                             f"{t.min()}..{t.max()}")
        key_start, key_path, key_last = jax.random.split(key, 3)
        durations = jnp.asarray(np.diff(self.times), self.sigma.dtype)
        dtype = self.sigma.dtype
        if trajectories:
            data0 = jnp.asarray(self.snapshots[0], dtype)
            start = data0[jax.random.choice(key_start, data0.shape[0], (num_samples,))]
            paths = _chain(key_path, start, self.coefs, durations, self.basis,
                           self.reference.params, self.sigma, model=self.model,
                           reference=self.reference, num_steps=self.num_steps)
        else:
            keys = jax.random.split(key_start, len(self.snapshots) - 1)
            starts = jnp.stack([jnp.asarray(s, dtype)[jax.random.choice(
                k, len(s), (num_samples,))] for k, s in zip(keys, self.snapshots[:-1])])
            paths = _restart(key_path, starts, self.coefs, durations, self.basis,
                             self.reference.params, self.sigma, model=self.model,
                             reference=self.reference, num_steps=self.num_steps)
        k = self.num_steps
        interval = np.clip(np.searchsorted(self.times, t, side="right") - 1, 0,
                           len(self.times) - 2)
        local = (t - self.times[interval]) / np.diff(self.times)[interval] * k
        step_idx = np.clip(np.floor(local + 1e-9).astype(int), 0, k)
        frac = np.clip(local - step_idx, 0.0, None)
        x = paths[interval, step_idx]                              # (len(t), N, d)
        h = jnp.asarray(frac * np.diff(self.times)[interval] / k, self.sigma.dtype)
        s = jnp.asarray(step_idx / k, self.sigma.dtype)
        coef = self.coefs.forward[interval]
        drift = jax.vmap(lambda xi, si, ci: drift_value(self.model, self.basis, self.reference,
                                                        self.reference.params, ci, xi, si, 1.0))(
            x, s, coef)
        noise = jax.random.normal(key_last, x.shape, x.dtype)
        x = x + h[:, None, None] * drift + self.sigma * jnp.sqrt(h)[:, None, None] * noise
        return jnp.swapaxes(x, 0, 1)


def multimarginal(snapshots, times, *, reference, sigma, params=None, key=None,
                  num_refinements=10, num_ipf_iterations=10, num_steps=50, num_paths=512,
                  drift_model=None, ridge=1e-2, num_lbfgs=100, progress_bar=None
                  ) -> MultimarginalBridge:
    """Fit a multi-marginal Schrödinger bridge, refining the reference drift's parameters.

    Parameters
    ----------
    snapshots : list of ``(n_i, d)`` arrays, the population at each time.
    times : ``(K+1,)`` strictly increasing snapshot times.
    reference : ``pi.bridges.LotkaVolterra()``, ``Repressilator()``, ``Brownian()``, ``OU()``,
        a :class:`Reference`, or a drift ``f(x, params)`` for ONE point (then give ``params``).
    sigma : diffusion coefficient of the reference ``dX = f dt + sigma dW`` (> 0).
    params : initial parameters (override the reference's own).
    key : PRNG key (default ``jax.random.key(0)``).
    num_refinements : rounds of (bridges, refinement); 0 fits bridges for the given
        reference only. References without parameters (Brownian) are never refined.
    num_ipf_iterations : IPF iterations per bridge per round.
    num_steps : Euler–Maruyama steps per interval.
    num_paths : simulated paths per interval (snapshots are resampled to this size).
    drift_model : :class:`RandomFeatures` (default) or :class:`LinearDrift`.
    ridge : ridge penalty of the drift regressions (relative to the mean squared feature).
    num_lbfgs : L-BFGS iterations per refinement.
    progress_bar : True/False, or None to show one for long fits.

    Returns
    -------
    MultimarginalBridge
        ``.sample(key, times, num_samples)``, ``.reference_parameters``,
        ``.parameter_history``, ``.loss_history``.

    Notes
    -----
    Shen, Berlinghieri & Broderick (2025), "Multi-marginal Schrödinger bridges with iterative
    reference refinement" (AISTATS); IPF with regression as in Vargas et al. (2021).

    Examples
    --------
    >>> import jax, probinfer as pi
    >>> snaps = pi.bridges.simulate_snapshots(jax.random.key(0), pi.bridges.LotkaVolterra(),
    ...     jax.numpy.array([5.0, 4.0]), [0.0, 1.0, 2.0], 64, sigma=0.1)
    >>> fit = pi.bridges.multimarginal(snaps, [0.0, 1.0, 2.0], sigma=0.1, num_refinements=1,
    ...     num_ipf_iterations=2, num_steps=10, reference=pi.bridges.LotkaVolterra(0.5, 0.5, 0.5, 0.5))
    >>> fit.sample(jax.random.key(1), [0.5, 1.5], 8).shape
    (8, 2, 2)
    """
    from probinfer._progress import tqdm

    arrays, t = _check_snapshots(snapshots, times)
    ref = as_reference(reference, params)
    sigma = check_positive_scalar(sigma, "sigma")
    ridge = check_positive_scalar(ridge, "ridge")
    num_refinements = check_positive_int(num_refinements, "num_refinements", minimum=0)
    num_ipf_iterations = check_positive_int(num_ipf_iterations, "num_ipf_iterations")
    num_steps = check_positive_int(num_steps, "num_steps")
    num_lbfgs = check_positive_int(num_lbfgs, "num_lbfgs")
    if key is None:
        key = jax.random.key(0)
    model = RandomFeatures() if drift_model is None else drift_model
    if not isinstance(model, (RandomFeatures, LinearDrift)):
        raise TypeError("drift_model must be pi.bridges.RandomFeatures(...) or LinearDrift(...)")
    dtype = sigma.dtype
    n_paths = check_positive_int(num_paths, "num_paths")
    pooled = np.concatenate(arrays)
    basis = model.basis(jnp.asarray(pooled.mean(0), dtype),
                        jnp.asarray(np.maximum(pooled.std(0), 1e-8), dtype))
    d = pooled.shape[1]
    try:
        probe = ref.drift(jnp.asarray(pooled[0], dtype), ref.params)
    except Exception as err:
        raise ValueError(f"reference drift could not be evaluated at a {d}-dimensional point: "
                         f"{err}") from err
    if jnp.shape(probe) != (d,):
        raise ValueError(f"reference drift must return shape ({d},), got {jnp.shape(probe)}")

    def resampled(k, arr):
        arr = jnp.asarray(arr, dtype)
        return arr[jax.random.choice(k, arr.shape[0], (n_paths,))]

    key, key_data = jax.random.split(key)
    data_keys = jax.random.split(key_data, len(arrays))
    stacked = [resampled(k, a) for k, a in zip(data_keys, arrays)]
    intervals = Interval(jnp.stack(stacked[:-1]), jnp.stack(stacked[1:]),
                         jnp.asarray(np.diff(t), dtype))

    refine = bool(jax.tree_util.tree_leaves(ref.params)) and num_refinements > 0
    rounds = num_refinements if refine else 0
    history = [ref.params]
    losses = []
    show = (rounds * num_ipf_iterations * num_steps > PROGRESS_THRESHOLD
            if progress_bar is None else bool(progress_bar))
    params_now = ref.params
    with tqdm(total=rounds + 1, disable=not show, desc="multimarginal", unit="round") as bar:
        for r in range(rounds + 1):
            key, k_ipf, k_ref = jax.random.split(key, 3)
            coefs = _fit_bridges(k_ipf, intervals, basis, params_now, sigma, ridge, model=model,
                                 reference=ref, num_steps=num_steps,
                                 num_iterations=num_ipf_iterations)
            if r < rounds:
                params_now, value = _refine(k_ref, intervals, coefs, basis, params_now, sigma,
                                            model=model, reference=ref, num_steps=num_steps,
                                            num_lbfgs=num_lbfgs)
                if ref.constrain is not None:
                    params_now = ref.constrain(params_now)
                if not all(bool(jnp.all(jnp.isfinite(p)))
                           for p in jax.tree_util.tree_leaves(params_now)):
                    raise ValueError(f"reference refinement produced non-finite parameters in "
                                     f"round {r}: {params_now}; try a smaller sigma-scale "
                                     "problem, more num_steps or a better initial params")
                history.append(params_now)
                losses.append(float(value))
            bar.update(1)
    fitted_ref = ref.with_params(params_now)
    return MultimarginalBridge(t, arrays, fitted_ref, history, losses, sigma, coefs, basis, model,
                               num_steps)


def schrodinger_bridge(x0, x1, *, reference=None, sigma, t1=1.0, params=None, key=None,
                       num_ipf_iterations=10, num_steps=50, num_paths=512, drift_model=None,
                       ridge=1e-2) -> MultimarginalBridge:
    """The dynamic Schrödinger bridge between two samples, by IPF (no refinement).

    ``x0`` (n0, d) at time 0 and ``x1`` (n1, d) at time ``t1``; ``reference`` defaults to
    Brownian motion. Returns a :class:`MultimarginalBridge` over ``[0, t1]``.

    Examples
    --------
    >>> import jax, probinfer as pi
    >>> x0 = jax.random.normal(jax.random.key(0), (256, 1))
    >>> sb = pi.bridges.schrodinger_bridge(x0, x0 + 3.0, sigma=1.0, num_ipf_iterations=3)
    >>> sb.sample(jax.random.key(1), [0.0, 0.5, 1.0], 100).shape
    (100, 3, 1)
    """
    from probinfer.bridges.references import Brownian

    ref = Brownian() if reference is None else reference
    return multimarginal([x0, x1], [0.0, t1], reference=ref, sigma=sigma, params=params, key=key,
                         num_refinements=0, num_ipf_iterations=num_ipf_iterations,
                         num_steps=num_steps, num_paths=num_paths, drift_model=drift_model,
                         ridge=ridge, progress_bar=False)
