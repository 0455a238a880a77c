"""MCMC move kernels for particle methods (BlackJAX-backed), combinators and adaptation.

A kernel moves a whole population, each particle independently, leaving the given log
density invariant; ``repeat`` and ``chain`` compose kernels; ``population_adaptation``
tunes them between SMC steps from the particles.
"""

from probinfer.kernels.adaptation import (PopulationAdaptation, population_adaptation,
                                          weighted_covariance)
from probinfer.kernels.base import Kernel, KernelParams, MoveInfo
from probinfer.kernels.combinators import (AdaptiveRepeat, Chain, Repeat, adaptive_repeat,
                                           chain, repeat)
from probinfer.kernels.moves import HMC, MALA, NUTS, RandomWalk, hmc, mala, nuts, rwm

__all__ = ["Kernel", "KernelParams", "MoveInfo", "rwm", "mala", "hmc", "nuts", "RandomWalk",
           "MALA", "HMC", "NUTS", "repeat", "chain", "Repeat", "Chain", "adaptive_repeat", "AdaptiveRepeat",
           "population_adaptation", "PopulationAdaptation", "weighted_covariance"]
