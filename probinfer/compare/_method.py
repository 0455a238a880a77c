"""Methods as values: a runner plus its settings, with a declared cost.

``Method("FK max, k=64", runner, settings)`` is one entry of a comparison. The runner is
``runner(key, problem, **settings) -> Result``; the cost of a run is read from what the
runner reports in ``info`` (``info.traces()`` counters: ``nfe``, ``num_reward_evaluations``,
``num_gradient_evaluations``) or is the wall time, so budgets are matched on numbers the
runners themselves report. ``at_budget(budget, problem) -> settings`` turns a cost budget
into settings (e.g. a particle count), so one method runs at several budgets.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from probinfer.result import Result

COSTS = ("nfe", "num_reward_evaluations", "num_gradient_evaluations", "num_moves",
         "wall_time")
_ALIASES = {"denoiser_evaluations": "nfe", "reward_calls": "num_reward_evaluations",
            "gradient_evaluations": "num_gradient_evaluations"}


class Method:
    """A named configuration of a runner.

    Parameters
    ----------
    name : label in tables and plots, e.g. ``"FK max, k=64"``.
    runner : ``runner(key, problem, **settings) -> Result``.
    settings : keyword arguments for the runner (numbers, strings); recorded with the
        comparison.
    cost : what one run costs: ``"nfe"`` (denoiser evaluations), ``"num_reward_evaluations"``,
        ``"num_gradient_evaluations"``, ``"num_moves"`` (read from ``info.traces()``),
        ``"wall_time"`` (seconds, measured by :func:`~probinfer.compare.run`), or a function
        ``Result -> number`` for runners whose ``info`` does not report it.
    at_budget : ``at_budget(budget, problem) -> dict`` of settings that make one run cost
        about ``budget``; needed to run the method at ``budgets``.
    vmap : ``"auto"`` (default: replicates in one compiled program over keys when the
        runner traces, else a loop), ``True`` (vmap or fail) or ``False`` (loop).

    Example
    -------
    >>> import probinfer as pi
    >>> m = pi.compare.fk("FK max", potential="max")
    >>> m.name, m.cost
    ('FK max', 'nfe')
    """

    def __init__(self, name: str, runner: Callable, settings: Mapping | None = None, *,
                 cost: str | Callable = "nfe", at_budget: Callable | None = None,
                 vmap="auto"):
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty string, got {name!r}")
        if not callable(runner):
            raise TypeError(f"runner must be a function (key, problem, **settings) -> Result, "
                            f"got {type(runner).__name__}")
        if settings is not None and not isinstance(settings, Mapping):
            raise TypeError(f"settings must be a mapping, got {type(settings).__name__}")
        if isinstance(cost, str):
            cost = _ALIASES.get(cost, cost)
            if cost not in COSTS:
                raise ValueError(f"cost must be one of {COSTS} or a function Result -> number, "
                                 f"got {cost!r}")
        elif not callable(cost):
            raise TypeError(f"cost must be a string or a function, got {type(cost).__name__}")
        if at_budget is not None and not callable(at_budget):
            raise TypeError("at_budget must be a function (budget, problem) -> settings")
        if vmap not in ("auto", True, False):
            raise ValueError(f"vmap must be 'auto', True or False, got {vmap!r}")
        self.name = name
        self.runner = runner
        self.settings = dict(settings or {})
        self.cost = cost
        self.at_budget = at_budget
        self.vmap = vmap

    @property
    def cost_name(self) -> str:
        return self.cost if isinstance(self.cost, str) else getattr(self.cost, "__name__",
                                                                    "custom")

    def settings_at(self, budget, problem) -> dict:
        """The runner's settings at ``budget`` (``None``: the method's own settings)."""
        if budget is None:
            return dict(self.settings)
        if self.at_budget is None:
            raise ValueError(f"method {self.name!r} has no at_budget, so it cannot be run at "
                             f"budget {budget!r}; give at_budget=(budget, problem) -> settings")
        extra = self.at_budget(budget, problem)
        if not isinstance(extra, Mapping):
            raise TypeError(f"method {self.name!r}: at_budget must return a dict of settings, "
                            f"got {type(extra).__name__}")
        return {**self.settings, **extra}

    def with_settings(self, name: str | None = None, **settings) -> "Method":
        """A copy with some settings replaced (and a new name)."""
        return Method(name or self.name, self.runner, {**self.settings, **settings},
                      cost=self.cost, at_budget=self.at_budget, vmap=self.vmap)

    def __repr__(self):
        return f"Method({self.name!r}, settings={self.settings}, cost={self.cost_name!r})"


def reported_cost(method: Method, res: Result, wall_time: float) -> float:
    """The cost of one run as ``method`` declares it (NaN when the runner reports none)."""
    if callable(method.cost):
        return float(method.cost(res))
    if method.cost == "wall_time":
        return float(wall_time)
    counters = {}
    traces = getattr(res.info, "traces", None)
    if callable(traces):
        counters = traces()[1]
    if method.cost in counters:
        return float(np.asarray(counters[method.cost]))
    value = getattr(res.info, method.cost, None)
    return float(np.sum(np.asarray(value))) if value is not None else float("nan")


# ----------------------------------------------------------------- ready-made methods
def _steps_nfe(problem) -> int:
    return int(np.sum(problem.prior.nfe_per_step))


def _check_budget(budget, per_unit, what):
    count = int(round(budget / per_unit))
    if count < 1:
        raise ValueError(f"budget {budget} is below the cost of one {what} ({per_unit})")
    return count


def fk(name: str = "FK steering", **settings) -> Method:
    """:func:`probinfer.steer.fk` on ``problem.prior``, ``problem.reward`` at
    ``problem.temperature``; budgets in denoiser evaluations set ``num_particles``."""
    from probinfer.steering._fk import fk as run_fk

    def runner(key, problem, **s):
        return run_fk(key, problem.prior, problem.reward, temperature=problem.temperature, **s)

    def at_budget(budget, problem):
        return {"num_particles": _check_budget(budget, _steps_nfe(problem), "particle")}

    return Method(name, runner, settings, cost="nfe", at_budget=at_budget)


def svdd(name: str = "SVDD", num_particles: int = 1, **settings) -> Method:
    """:func:`probinfer.steer.svdd` at ``problem.temperature`` (unless ``temperature`` is
    given); budgets in denoiser evaluations per run set ``num_candidates``."""
    from probinfer.steering._svdd import svdd as run_svdd

    def runner(key, problem, **s):
        s.setdefault("temperature", problem.temperature)
        return run_svdd(key, problem.prior, problem.reward, **s)

    def at_budget(budget, problem):
        # nfe = N (1 + M (S - 1)) for S denoiser calls per unguided sample.
        per_candidate = num_particles * max(_steps_nfe(problem) - 1, 1)
        return {"num_candidates": _check_budget(budget - num_particles, per_candidate,
                                                "candidate")}

    return Method(name, runner, {"num_particles": num_particles, **settings}, cost="nfe",
                  at_budget=at_budget)


def best_of_n(name: str = "best-of-N", num_samples: int = 1, **settings) -> Method:
    """:func:`probinfer.steer.best_of_n`; budgets in denoiser evaluations set ``n``."""
    from probinfer.steering._search import best_of_n as run_best_of_n

    def runner(key, problem, **s):
        return run_best_of_n(key, problem.prior, problem.reward, **s)

    def at_budget(budget, problem):
        return {"n": _check_budget(budget, num_samples * _steps_nfe(problem), "sample")}

    return Method(name, runner, {"num_samples": num_samples, **settings}, cost="nfe",
                  at_budget=at_budget)


def tempered_smc(name: str = "tempered SMC", **settings) -> Method:
    """:func:`probinfer.smc.tempered` on ``problem.pm`` (a NumPyro problem) or on
    ``problem.target_prior`` and ``problem.log_likelihood``; cost: gradient evaluations.
    Run at fixed settings (its number of steps and moves is adaptive)."""
    from probinfer.particles.tempered import tempered

    def runner(key, problem, **s):
        s.setdefault("progress_bar", False)
        if "pm" in problem.inputs:
            return tempered(key, problem.pm, **s)
        return tempered(key, problem.target_prior, problem.log_likelihood, **s)

    # No at_budget: tempered SMC chooses its own number of steps and moves, so its cost is
    # known only after the run; compare it at fixed settings and read the cost column.
    return Method(name, runner, settings, cost="num_gradient_evaluations", vmap=False)


def particle_filter(name: str = "bootstrap filter", **settings) -> Method:
    """:func:`probinfer.smc.run` on :func:`probinfer.ssm.bootstrap` of ``problem.ssm``.
    Cost: transitions simulated (particles x time steps); ``SMCInfo`` reports no counter, so
    it is computed from the result's shape. Budgets set ``num_particles``. ``pi.smc.run``
    checks its run on the host, so replicates run in a loop."""
    from probinfer.particles.smc import run as run_smc
    from probinfer.ssm.base import bootstrap

    def runner(key, problem, **s):
        s.setdefault("progress_bar", False)
        model = problem.inputs.get("bootstrap_model")
        return run_smc(key, model if model is not None else
                       bootstrap(problem.ssm, problem.observations), **s)

    def transitions(res):
        return res.num_particles * int(np.asarray(res.info.ess).shape[-1])

    def at_budget(budget, problem):
        return {"num_particles": _check_budget(budget, len(problem.observations), "particle")}

    return Method(name, runner, settings, cost=transitions, at_budget=at_budget, vmap=False)
