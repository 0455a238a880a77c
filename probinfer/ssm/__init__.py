"""State-space models for testing and comparing SMC: exact linear-Gaussian (Kalman), SV."""

from probinfer.ssm.base import Proposal, StateSpaceModel, bootstrap, guided
from probinfer.ssm.linear_gaussian import (KalmanResult, LinearGaussian,
                                           LinearGaussianOptimalProposal)
from probinfer.ssm.stochastic_volatility import StochasticVolatility

__all__ = ["StateSpaceModel", "Proposal", "bootstrap", "guided", "LinearGaussian",
           "LinearGaussianOptimalProposal", "KalmanResult", "StochasticVolatility"]
