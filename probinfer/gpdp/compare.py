"""Fit several models to one data set, solve each, and score the policies on the truth.

:func:`compare` is the experiment of Boettiger, Mangel & Munch (2015): every candidate model
is fitted to the same observed transitions, its optimal policy is computed on the same grids,
and each policy manages the *true* stock for ``years`` years in ``num_replicates``
replicates. All policies see the same noise in a replicate (common random numbers), so the
per-replicate ratio ``NPV(policy) / NPV(true-model policy)`` isolates the policy's effect.
:func:`paper_setting` returns the paper's truth, data-generation settings and grids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import jax
import jax.numpy as jnp

from probinfer._types import PRNGKey
from probinfer._validation import as_float_array, check_positive_int
from probinfer.gpdp.models import (Allee, Dynamics, Myers, ParametricModel, Ricker,
                                   check_stock_data, simulate_with_noise)
from probinfer.gpdp.sdp import (check_covers, check_discount, check_grid, harvest_reward,
                                solve)


def _transitions(observations):
    """A 1-D stock series ``x_0 … x_T`` or a pair ``(x_t, x_next)``."""
    if isinstance(observations, (tuple, list)) and len(observations) == 2:
        return observations[0], observations[1]
    series = as_float_array(observations, "observations", ndim=1)
    return series[:-1], series[1:]


def _fit(spec, key, x_t, x_next) -> Dynamics:
    if isinstance(spec, Dynamics):
        return spec
    if isinstance(spec, type) and issubclass(spec, ParametricModel):
        return spec.fit(x_t, x_next)
    if callable(spec):
        model = spec(key, x_t, x_next)
        if not isinstance(model, Dynamics):
            raise TypeError(f"a model factory must return a probinfer.gpdp.Dynamics, got "
                            f"{type(model).__name__}")
        return model
    raise TypeError("each entry of models must be a fitted Dynamics, a ParametricModel class "
                    "(fitted by maximum likelihood) or a callable (key, x_t, x_next) -> "
                    f"Dynamics; got {type(spec).__name__}")


def compare(key: PRNGKey, truth: Dynamics, observations, models: dict, *,
            num_replicates: int = 100, years: int = 50, x0=10.0, states=None, actions=None,
            discount=0.99, reward: Callable = harvest_reward, extinction_threshold=None,
            return_details: bool = False):
    """Net present value and extinction of each model's policy, simulated on the truth.

    Parameters
    ----------
    key : PRNG key (model fitting and the replicate noise).
    truth : the true dynamics (must have ``growth`` and ``sigma``, e.g. a parametric model).
    observations : the data: a 1-D stock series, or a pair ``(x_t, x_next)``.
    models : ``{name: spec}``; a spec is a fitted :class:`Dynamics`, a
        :class:`ParametricModel` subclass (fitted by maximum likelihood), or a callable
        ``(key, x_t, x_next) -> Dynamics`` (e.g. a GP or posterior fit).
    num_replicates, years, x0 : replicates of ``years`` harvest decisions from stock ``x0``.
    states, actions : grids (default: 50 points on ``[0, 15]`` for both, the paper's).
    discount : discount factor γ in (0, 1) per year, used to solve and to discount catches.
    reward : ``reward(x, h)`` (default the catch ``min(x, h)``).
    extinction_threshold : a replicate counts as extinct when its final stock is below this
        (default: half the first positive grid spacing, a stock the grid cannot tell from 0).
    return_details : also return ``{"policies", "models", "stock", "harvest", "npv"}``.

    Returns
    -------
    pandas.DataFrame indexed by model name, with the row ``"true model"`` first, and columns
    ``npv_ratio`` (mean over replicates of NPV / NPV of the true-model policy),
    ``npv_ratio_se`` (its standard error), ``extinction_fraction``, ``npv`` (mean NPV) and
    ``escapement`` (the policy's median escapement where it harvests part of the stock).

    Example
    -------
    >>> import jax, probinfer as pi
    >>> setting = pi.gpdp.paper_setting()
    >>> data = setting.observations(jax.random.key(1))
    >>> table = pi.gpdp.compare(jax.random.key(2), setting.truth, data,
    ...                         {"Ricker (MLE)": pi.gpdp.Ricker}, num_replicates=10)
    >>> list(table.columns[:3])
    ['npv_ratio', 'npv_ratio_se', 'extinction_fraction']
    """
    import pandas as pd

    if not isinstance(truth, ParametricModel):
        raise TypeError(f"truth must be a parametric model (it is simulated), got "
                        f"{type(truth).__name__}")
    if not isinstance(models, dict) or not models:
        raise TypeError("models must be a non-empty dict {name: model or factory}")
    num_replicates = check_positive_int(num_replicates, "num_replicates", minimum=2)
    years = check_positive_int(years, "years")
    grid = jnp.linspace(0.0, 15.0, 50)
    states = check_grid(grid if states is None else states, "states")
    actions = check_grid(states if actions is None else actions, "actions")
    discount = check_discount(discount, finite_horizon=False)
    x0 = jnp.asarray(x0, states.dtype)
    if x0.ndim != 0 or not bool(jnp.isfinite(x0)) or float(x0) < 0:
        raise ValueError(f"x0 must be a non-negative finite scalar, got {x0}")
    x_t, x_next = _transitions(observations)
    x_t, x_next = check_stock_data(x_t, x_next, positive=False)
    check_covers(states, (float(jnp.minimum(x_t.min(), x_next.min())),
                          float(jnp.maximum(x_t.max(), x_next.max()))))
    if extinction_threshold is None:
        positive = np.asarray(states)[np.asarray(states) > 0]
        extinction_threshold = 0.5 * float(positive[0])

    fit_keys = jax.random.split(jax.random.fold_in(key, 0), len(models))
    fitted = {"true model": truth}
    for k, (name, spec) in zip(fit_keys, models.items()):
        if name == "true model":
            raise ValueError("'true model' is reserved for the truth's row")
        fitted[name] = _fit(spec, k, x_t, x_next)
    policies = {name: solve(model, states, actions, discount=discount, reward=reward)
                for name, model in fitted.items()}

    noise = jnp.exp(truth.sigma * jax.random.normal(jax.random.fold_in(key, 1),
                                                    (num_replicates, years), states.dtype))
    weights = discount ** jnp.arange(years, dtype=states.dtype)

    def run(policy):
        paths = jax.vmap(lambda z: simulate_with_noise(truth, z, x0, policy))(noise)
        rewards = jax.vmap(jax.vmap(reward))(paths.stock, paths.harvest)
        final = jax.vmap(lambda z, x, h: z * truth.growth(x - h))(
            noise[:, -1], paths.stock[:, -1], paths.harvest[:, -1])
        return paths, rewards @ weights, final

    results = {name: run(policy) for name, policy in policies.items()}
    reference = np.asarray(results["true model"][1], np.float64)
    rows = []
    for name, (paths, npv, final) in results.items():
        npv = np.asarray(npv, np.float64)
        ratio = npv / reference
        rows.append({"model": name, "npv_ratio": ratio.mean(),
                     "npv_ratio_se": ratio.std(ddof=1) / np.sqrt(num_replicates),
                     "extinction_fraction": float(np.mean(np.asarray(final)
                                                          < extinction_threshold)),
                     "npv": npv.mean(),
                     "escapement": policies[name].constant_escapement().escapement})
    table = pd.DataFrame(rows).set_index("model")
    if not return_details:
        return table
    details = {"policies": policies, "models": fitted,
               "stock": {n: np.asarray(r[0].stock) for n, r in results.items()},
               "harvest": {n: np.asarray(r[0].harvest) for n, r in results.items()},
               "npv": {n: np.asarray(r[1]) for n, r in results.items()}}
    return table, details


def _gp_factory(key, x_t, x_next):
    from probinfer.gpdp.gp import GPDynamics
    return GPDynamics.fit(x_t, x_next, key=key)


def _posterior_factory(model_class):
    def factory(key, x_t, x_next):
        return model_class.fit_posterior(key, x_t, x_next)
    factory.__name__ = f"{model_class.__name__}_posterior"
    return factory


@dataclass(frozen=True)
class PaperSetting:
    """The study of Boettiger, Mangel & Munch (2015) (see :func:`paper_setting`)."""

    truth: Allee
    observation_x0: float
    num_observations: int
    states: jnp.ndarray
    actions: jnp.ndarray
    discount: float
    x0: float
    years: int
    num_replicates: int
    models: dict = field(default_factory=dict)

    def observations(self, key: PRNGKey):
        """``num_observations`` unharvested stocks from ``observation_x0`` under the truth."""
        return self.truth.simulate(key, self.observation_x0, self.num_observations).stock

    def compare_kwargs(self) -> dict:
        """Keyword arguments of :func:`compare` for this setting."""
        return {"num_replicates": self.num_replicates, "years": self.years, "x0": self.x0,
                "states": self.states, "actions": self.actions, "discount": self.discount}


def paper_setting(sigma=0.05, C=5.0) -> PaperSetting:
    """The paper's experiment: truth, data settings, grids and the five candidate models.

    Truth: ``Allee(r=2, K=8, C=5, σ=0.05)``; 40 unharvested observations from ``x = 5.5``;
    states and harvests on 50 points in ``[0, 15]``; catch ``min(x, h)``; discount factor
    ``0.99`` per year (the paper's "discount 0.01", applied as ``1 − δ``; ``1/(1 + δ)`` =
    0.990099 gives the same policy on this grid); 100 replicates of 50 years from ``x = 10``.
    ``sigma`` and ``C`` vary the truth for the paper's sensitivity analysis.

    ``models`` holds the candidates: the GP (posterior over hyperparameters, ``(0, 0)`` as
    a known point), the Allee model integrated over its posterior ("Allee"), the Allee
    model at its maximum-likelihood estimate ("MLE"), and Ricker and Myers integrated over
    their posteriors, all with the paper's uniform priors.

    Example
    -------
    >>> import jax, probinfer as pi
    >>> s = pi.gpdp.paper_setting()
    >>> data = s.observations(jax.random.key(0))                       # doctest: +SKIP
    >>> table = pi.gpdp.compare(jax.random.key(1), s.truth, data, s.models,
    ...                         **s.compare_kwargs())                   # doctest: +SKIP
    """
    grid = jnp.linspace(0.0, 15.0, 50)
    models = {"GP": _gp_factory, "Allee": _posterior_factory(Allee), "MLE": Allee,
              "Ricker": _posterior_factory(Ricker), "Myers": _posterior_factory(Myers)}
    return PaperSetting(truth=Allee(2.0, 8.0, C, sigma), observation_x0=5.5,
                        num_observations=40, states=grid, actions=grid, discount=0.99,
                        x0=10.0, years=50, num_replicates=100, models=models)


__all__ = ["compare", "paper_setting", "PaperSetting"]
