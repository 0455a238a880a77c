"""``pi.compare``: method comparisons on problems with reference answers.

A :class:`Problem` holds the runners' inputs and quantities with exact or reference
values; a :class:`Method` is a runner with its settings and a declared cost;
:func:`run` runs every method (at matched budgets) over independent replicates and
returns a tidy pandas DataFrame; :func:`summarize` turns it into bias, RMSE, coverage and
ESS per cost with Monte Carlo standard errors; the plots and table writers present it.

Example
-------
>>> import jax.numpy as jnp, probinfer as pi
>>> mix = pi.GaussianMixture(jnp.array([0.7, 0.3]), jnp.array([[-1.0], [2.0]]),
...                          0.5 * jnp.ones((2, 1, 1)))
>>> problem = pi.compare.Problem.mixture_tilt(mix, a=jnp.array([1.0]), num_steps=20)
>>> methods = [pi.compare.fk("FK"), pi.compare.best_of_n("best-of-N")]
>>> df = pi.compare.run(0, problem, methods, 8, budgets=[320, 1280], progress_bar=False)
>>> table = pi.compare.summarize(df)
>>> sorted(table["method"].unique())
['FK', 'best-of-N']
"""

from probinfer.compare._method import (COSTS, Method, best_of_n, fk, particle_filter,
                                       reported_cost, svdd, tempered_smc)
from probinfer.compare._plots import plot_error_vs_cost, plot_estimates, to_latex, to_markdown
from probinfer.compare._problem import Problem, log_evidence
from probinfer.compare._run import COLUMNS, load, run, save, summarize

__all__ = ["Problem", "Method", "run", "summarize", "save", "load", "fk", "svdd", "best_of_n",
           "tempered_smc", "particle_filter", "reported_cost", "log_evidence", "COSTS",
           "COLUMNS", "plot_error_vs_cost", "plot_estimates", "to_markdown", "to_latex"]
