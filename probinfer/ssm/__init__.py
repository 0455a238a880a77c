"""State-space models for testing and comparing SMC: exact linear-Gaussian (Kalman filter and
Rauch–Tung–Striebel smoother), stochastic volatility; filtering moments, ancestral lineages
and a backward-sampling particle smoother."""

from probinfer.ssm.base import Proposal, StateSpaceModel, bootstrap, guided
from probinfer.ssm.linear_gaussian import (KalmanResult, KalmanSmootherResult, LinearGaussian,
                                           LinearGaussianOptimalProposal)
from probinfer.ssm.smoothing import (Moments, backward_sample, history, lineages, moments,
                                     smooth, trajectories)
from probinfer.ssm.stochastic_volatility import StochasticVolatility

__all__ = ["StateSpaceModel", "Proposal", "bootstrap", "guided", "LinearGaussian",
           "LinearGaussianOptimalProposal", "KalmanResult", "KalmanSmootherResult",
           "StochasticVolatility", "moments", "Moments", "history", "lineages", "trajectories",
           "backward_sample", "smooth"]
