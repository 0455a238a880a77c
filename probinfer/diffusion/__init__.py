"""``pi.diffusion``: noise schedules, the diffusion-prior interface, samplers, exact priors.

Step convention: step 0 is pure noise, step ``num_steps`` is data; ``transition(key, x,
step)`` moves particles from ``step`` to ``step + 1``. See :mod:`probinfer.diffusion.base`
and ``docs/diffusion.md``.
"""

from probinfer.diffusion.base import (ContinuousDiffusionPrior, DiffusionPrior, eps_from_x0,
                                      score_from_x0, v_from_x0, x0_from_eps, x0_from_v)
from probinfer.diffusion.categorical import categorical, uniform64
from probinfer.diffusion.gaussian_mixture import GaussianMixturePrior
from probinfer.diffusion.markov_chain import MarkovChainPrior
from probinfer.diffusion.masked import (MASKED_SAMPLERS, Ancestral, FirstHitting,
                                       MaskedDiffusionPrior, MaskedSampler, get_masked_sampler,
                                       unmasked_fraction)
from probinfer.diffusion.samplers import (DDIM, DDPM, SAMPLERS, DPMSolver2S, DPMSolverMultistep,
                                          DPMSolverSDE, EulerMaruyama, Heun, MultistepMemory,
                                          Sampler, Thresholding, get_sampler)
from probinfer.diffusion.schedules import (DiscreteVPSchedule, Schedule, VESchedule, VPSchedule,
                                           discrete_timesteps, edm, karras_sigmas, timesteps)
from probinfer.diffusion.torch_bridge import TorchDenoiser, TorchMaskedDenoiser, from_diffusers

__all__ = ["MaskedSampler", "Ancestral", "FirstHitting", "MASKED_SAMPLERS", "get_masked_sampler",
           "DiffusionPrior", "ContinuousDiffusionPrior", "MaskedDiffusionPrior",
           "GaussianMixturePrior", "MarkovChainPrior", "Schedule", "VPSchedule",
           "DiscreteVPSchedule", "VESchedule", "edm", "karras_sigmas", "timesteps",
           "discrete_timesteps", "Sampler", "DDPM", "DDIM", "EulerMaruyama", "Heun",
           "DPMSolver2S", "DPMSolverMultistep", "DPMSolverSDE", "MultistepMemory",
           "Thresholding", "SAMPLERS", "get_sampler", "categorical", "uniform64",
           "unmasked_fraction", "x0_from_eps", "eps_from_x0", "x0_from_v", "v_from_x0",
           "score_from_x0", "TorchDenoiser", "TorchMaskedDenoiser", "from_diffusers"]
