"""``pi.gpdp``: Gaussian-process dynamic programming for decisions under model uncertainty.

Boettiger, Mangel & Munch (2015), "Avoiding tipping points in fisheries management through
Gaussian process dynamic programming", Proc. R. Soc. B 282: 20141631.

* models: :class:`Ricker`, :class:`Myers`, :class:`Allee` (lognormal noise; maximum
  likelihood with AIC/BIC, or a tempered-SMC posterior :class:`ParameterPosterior`);
  :class:`GPDynamics` (GP regression of the next stock on the escapement, hyperparameters
  integrated over their posterior);
* :func:`solve`: transition tensors from any model's predictive distribution, value
  iteration and backward induction, a :class:`Policy`;
* :func:`compare` and :func:`paper_setting`: the paper's experiment in three lines;
* :func:`plot_dynamics`, :func:`plot_policies`, :func:`plot_trajectories`.
"""

from probinfer.gpdp.compare import PaperSetting, compare, paper_setting
from probinfer.gpdp.gp import KERNELS, GPDynamics, GPPrior, Hyperparameters
from probinfer.gpdp.models import (Allee, Dynamics, Myers, ParameterPosterior, ParametricModel,
                                   Ricker, Trajectory)
from probinfer.gpdp.plots import plot_dynamics, plot_policies, plot_trajectories
from probinfer.gpdp.sdp import (EscapementSummary, Policy, ValueIterationInfo, backward_induction,
                                harvest_reward, reward_matrix, solve, transition_tensor,
                                value_iteration)

__all__ = ["Dynamics", "ParametricModel", "Ricker", "Myers", "Allee", "ParameterPosterior",
           "Trajectory", "GPDynamics", "GPPrior", "Hyperparameters", "KERNELS", "solve",
           "Policy", "EscapementSummary", "ValueIterationInfo", "value_iteration",
           "backward_induction", "transition_tensor", "reward_matrix", "harvest_reward",
           "compare", "paper_setting", "PaperSetting", "plot_dynamics", "plot_policies",
           "plot_trajectories"]
