"""``pi.smc``: Sequential Monte Carlo over Feynman–Kac models (public namespace).

The engine lives in :mod:`probinfer.particles`; this module is the name users type.
"""

from probinfer.particles.policies import (ResamplingPolicy, always, at_steps, ess_below, every,
                                          never)
from probinfer.particles.smc import FeynmanKac, SMCInfo, SMCState, init, run, scan, step
from probinfer.particles.tempered import (TemperedInfo, TemperedParticles, TemperedState,
                                          tempered, tempered_scan, tempering_model,
                                          tempering_params)
from probinfer.particles.replicate import replicate
from probinfer._checkpoint import Checkpoint

__all__ = ["replicate", "Checkpoint", "FeynmanKac", "SMCState", "SMCInfo", "init", "step",
           "scan", "run",
           "ResamplingPolicy", "always", "never", "ess_below", "every", "at_steps",
           "tempered", "tempered_scan", "tempering_model", "tempering_params",
           "TemperedState", "TemperedParticles", "TemperedInfo"]
