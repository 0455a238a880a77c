"""Particles: log-weights, resamplers, resampling policies and the Feynman–Kac SMC engine."""

from probinfer.particles.policies import (ResamplingPolicy, always, at_steps, ess_below, every,
                                          never)
from probinfer.particles.resampling import (RESAMPLERS, get_resampler, multinomial, resample,
                                            residual, stratified, systematic)
from probinfer.particles.smc import (FeynmanKac, SMCInfo, SMCState, init, resample_particles,
                                     run, scan, step)
from probinfer.particles.weights import ess, log_mean_exp, normalize, weighted_mean

__all__ = ["ResamplingPolicy", "always", "never", "ess_below", "every", "at_steps",
           "RESAMPLERS", "get_resampler", "resample", "systematic", "stratified", "multinomial", "residual",
           "FeynmanKac", "SMCState", "SMCInfo", "init", "step", "scan", "run",
           "resample_particles", "ess", "normalize", "log_mean_exp", "weighted_mean"]
