"""Reference dynamics for Schrödinger bridges: ``dX = f(X; params) dt + sigma dW``.

A reference is a drift written for ONE point, ``drift(x, params) -> (d,)``, plus initial
parameters; bridges and simulators vectorise it. Parameters are pytrees of arrays, so
reference refinement can fit them by gradient steps.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

from probinfer._types import Array, PyTree


@dataclasses.dataclass(frozen=True, eq=False)
class Reference:
    """A parametric reference drift ``f(x, params)`` with initial parameters.

    Parameters
    ----------
    drift : ``(x, params) -> (d,)`` for ONE point ``x`` of shape ``(d,)``.
    params : initial parameters (a pytree of arrays); ``None`` for a drift without any.
    name : shown in reports.
    constrain : optional ``params -> params`` applied after every refinement step, mapping
        parameters to the canonical form of an equivalent drift (e.g. ``abs`` where the
        drift uses only ``|p|``).

    Examples
    --------
    >>> import jax.numpy as jnp, probinfer as pi
    >>> ref = pi.bridges.Reference(lambda x, p: -p["k"] * x, {"k": jnp.asarray(0.5)})
    >>> ref.drift(jnp.ones(2), ref.params)
    Array([-0.5, -0.5], dtype=float32)
    """

    drift: Callable[[Array, PyTree], Array]
    params: Any = None
    name: str = "user"
    constrain: Callable[[PyTree], PyTree] | None = None

    def __post_init__(self):
        if not callable(self.drift):
            raise TypeError(f"Reference.drift must be callable f(x, params), got "
                            f"{type(self.drift).__name__}")
        object.__setattr__(self, "params",
                           jax.tree_util.tree_map(lambda p: jnp.asarray(p, jnp.result_type(float)),
                                                  self.params))

    # Compiled code depends on the drift, never on the parameter values (they are traced), so
    # references that differ only in params compare equal and share compilations.
    def _identity(self):
        return (self.drift, self.name, self.constrain)

    def __eq__(self, other):
        return isinstance(other, Reference) and self._identity() == other._identity()

    def __hash__(self):
        return hash(self._identity())

    def with_params(self, params) -> "Reference":
        """The same drift with other parameters."""
        return dataclasses.replace(self, params=params)

    def batched_drift(self, x, params=None):
        """``drift`` over a batch ``(n, d)``."""
        params = self.params if params is None else params
        return jax.vmap(self.drift, in_axes=(0, None))(x, params)


def _zero_drift(x, params):
    del params
    return jnp.zeros_like(x)


def Brownian() -> Reference:
    """Brownian motion: ``f = 0`` (no parameters to refine)."""
    return Reference(_zero_drift, {}, "Brownian")


def _ou_drift(x, params):
    return params["theta"] * (params["mean"] - x)


def OU(theta=1.0, mean=0.0) -> Reference:
    """Ornstein–Uhlenbeck: ``f(x) = theta (mean - x)`` with scalar ``theta >= 0``.

    ``mean`` is a scalar or a ``(d,)`` vector; refinement fits both.
    """
    return Reference(_ou_drift, {"theta": theta, "mean": mean}, "OU")


def _lv_drift(x, params):
    prey, pred = x[0], x[1]
    return jnp.stack([params["alpha"] * prey - params["beta"] * prey * pred,
                      params["delta"] * prey * pred - params["gamma"] * pred])


def LotkaVolterra(alpha=1.0, beta=0.4, gamma=0.4, delta=0.1) -> Reference:
    """Lotka–Volterra predator–prey drift (2-D): prey ``x``, predators ``y``,

    ``dx = (alpha x - beta x y) dt``, ``dy = (delta x y - gamma y) dt``.

    The defaults are the paper's true values (Shen et al. 2025, §5.1).
    """
    return Reference(_lv_drift, {"alpha": alpha, "beta": beta, "gamma": gamma, "delta": delta},
                     "LotkaVolterra")


def _repressilator_drift(x, params):
    # Gene i is repressed by gene i-1 (cyclically). Rates enter through |p| so that an
    # unconstrained optimiser cannot leave the valid region (fractional powers of negatives);
    # concentrations are floored at a tiny positive value for the same reason.
    p = jax.tree_util.tree_map(jnp.abs, params)
    repressor = jnp.maximum(jnp.roll(x, 1), 1e-8)
    hill = p["beta"] / (1.0 + (repressor / p["k"]) ** p["n"])
    return hill - p["gamma"] * x


def _abs_params(params):
    return jax.tree_util.tree_map(jnp.abs, params)


def Repressilator(beta=10.0, n=3.0, k=1.0, gamma=1.0) -> Reference:
    """The three-gene repressilator (Elowitz & Leibler 2000), protein-only form:

    ``dx_i = (beta / (1 + (x_{i-1} / k)^n) - gamma x_i) dt`` with ``x_0 := x_3``,

    the reference family of Shen et al. (2025, §5.2). The drift uses ``|beta|, |n|, |k|,
    |gamma|``; refinement reports them non-negative.
    """
    return Reference(_repressilator_drift, {"beta": beta, "n": n, "k": k, "gamma": gamma},
                     "Repressilator", _abs_params)


def as_reference(reference, params=None) -> Reference:
    """A :class:`Reference` from one, or from a user drift ``f(x, params)`` and ``params``."""
    if isinstance(reference, Reference):
        return reference if params is None else reference.with_params(params)
    if callable(reference):
        return Reference(reference, params)
    raise TypeError("reference must be a pi.bridges reference (LotkaVolterra(), Repressilator(), "
                    "Brownian(), OU()) or a drift function f(x, params), got "
                    f"{type(reference).__name__}")
