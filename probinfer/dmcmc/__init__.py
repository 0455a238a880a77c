"""``pi.dmcmc``: denoising MCMC (Kim & Ye 2022) over data × noise level.

:func:`dlg` is the Denoising Langevin Gibbs kernel as an ``(init, step)`` pair;
:func:`sample` runs persistent DLG chains and hands every state to a reverse solver from
its own noise level (:func:`handoff`), with NFE accounting in :class:`DMCMCInfo`. Level
conditionals come from :func:`exact_levels` (analytic priors) or a trained noise-level
classifier (:func:`fit_level_estimator`). See ``docs/dmcmc.md``.
"""

from probinfer.dmcmc.dlg import (DLGInfo, DLGParams, DLGState, denoise_at_levels, dlg,
                                 dlg_params, score_at_levels)
from probinfer.dmcmc.levels import (ExactLevels, LevelEstimator, LevelModel, exact_levels,
                                    fit_level_estimator)
from probinfer.dmcmc.runner import (DMCMCInfo, handoff, handoff_nfe, run_chains, sample,
                                    with_sampler)

__all__ = ["dlg", "dlg_params", "DLGState", "DLGInfo", "DLGParams", "denoise_at_levels",
           "score_at_levels", "LevelModel", "ExactLevels", "LevelEstimator", "exact_levels",
           "fit_level_estimator", "sample", "handoff", "handoff_nfe", "with_sampler",
           "run_chains", "DMCMCInfo"]
