"""``pi.gpdp``: Gaussian-process dynamic programming for decisions under model uncertainty."""

from probinfer.gpdp.models import (Allee, Dynamics, Myers, ParameterPosterior, ParametricModel,
                                   Ricker, Trajectory)
from probinfer.gpdp.sdp import (EscapementSummary, Policy, ValueIterationInfo, backward_induction,
                                harvest_reward, reward_matrix, solve, transition_tensor,
                                value_iteration)
from probinfer.gpdp.gp import GPDynamics, GPPrior, Hyperparameters, KERNELS
