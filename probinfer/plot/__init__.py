"""``pi.plot``: figures for every capability (matplotlib).

Each function returns a matplotlib ``Figure`` (drawing into ``ax`` when one is given) and
never calls ``plt.show()``; save it with ``fig.savefig(...)`` or let a notebook display it.

* Particle methods: :func:`plot_ess` (ESS and resampling over steps), :func:`plot_weights`
  (weight degeneracy), :func:`plot_genealogy` (particle lineages), read from any Result
  whose info follows the ``traces()`` protocol or carries the engine's fields.
* Steering: :func:`plot_rewards` (reward traces; best-of-N reward histogram),
  :func:`plot_image_grid` (image samples).
* Exact targets: :func:`plot_particles_2d` (particles over the target's density contours).
* Sensitivity: :func:`plot_sobol` (Sobol' indices with intervals, from
  :mod:`probinfer.importance`).
* GP dynamic programming: :func:`plot_dynamics`, :func:`plot_policies`,
  :func:`plot_trajectories` (from :mod:`probinfer.gpdp`).
* Bridges: :func:`plot_bridge` (trajectories over snapshots).
* Design: :func:`plot_pareto` (Pareto fronts, from :mod:`probinfer.design`).
* Method comparisons: :func:`plot_error_vs_cost`, :func:`plot_estimates` (from
  :mod:`probinfer.compare`).
"""

from probinfer.compare._plots import plot_error_vs_cost, plot_estimates
from probinfer.design._plots import plot_pareto
from probinfer.gpdp.plots import plot_dynamics, plot_policies, plot_trajectories
from probinfer.importance.sobol import plot_sobol
from probinfer.plot._bridges import plot_bridge
from probinfer.plot._samples import plot_image_grid, plot_particles_2d
from probinfer.plot._traces import (plot_ess, plot_genealogy, plot_rewards,
                                    plot_weights)

__all__ = ["plot_ess", "plot_weights", "plot_rewards", "plot_genealogy", "plot_image_grid",
           "plot_particles_2d", "plot_sobol", "plot_dynamics", "plot_policies",
           "plot_trajectories", "plot_bridge", "plot_pareto", "plot_error_vs_cost",
           "plot_estimates"]
