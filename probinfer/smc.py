"""``pi.smc``: Sequential Monte Carlo over Feynman–Kac models (public namespace).

The engine lives in :mod:`probinfer.particles`; this module is the name users type.
"""

from probinfer.particles.policies import (ResamplingPolicy, always, at_steps, ess_below, every,
                                          never)
from probinfer.particles.smc import FeynmanKac, SMCInfo, SMCState, init, run, scan, step

__all__ = ["FeynmanKac", "SMCState", "SMCInfo", "init", "step", "scan", "run",
           "ResamplingPolicy", "always", "never", "ess_below", "every", "at_steps"]
