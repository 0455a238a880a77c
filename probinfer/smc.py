"""``pi.smc``: Sequential Monte Carlo over Feynman–Kac models (public namespace).

The engine lives in :mod:`probinfer.particles`; this module is the name users type.
"""

from probinfer.particles.policies import (ResamplingPolicy, always, at_steps, ess_below, every,
                                          never)
from probinfer.particles.smc import FeynmanKac, SMCInfo, SMCState, init, run, scan, step
from probinfer.particles.tempered import TemperedInfo, TemperedState, tempered
from probinfer.particles.tempered import init as tempered_init
from probinfer.particles.tempered import loop as tempered_loop
from probinfer.particles.tempered import step as tempered_step
from probinfer.particles.replicate import replicate

__all__ = ["replicate", "FeynmanKac", "SMCState", "SMCInfo", "init", "step", "scan", "run",
           "ResamplingPolicy", "always", "never", "ess_below", "every", "at_steps",
           "tempered", "tempered_init", "tempered_step", "tempered_loop", "TemperedState",
           "TemperedInfo"]
