"""Reward-guided generation: FK steering, SVDD, best-of-N and noise search."""

from probinfer.steering.fk import (POTENTIALS, SteeringInfo, evaluation_steps, feynman_kac_model,
                                   fk)
from probinfer.steering.rewards import HostReward, host_reward
from probinfer.steering.search import SearchInfo, best_of_n, noise_search
from probinfer.steering.svdd import SVDDInfo, SVDDState, svdd
from probinfer.steering.values import (ValueModel, exact_soft_value, fit_value_model,
                                       posterior_mean_value)

__all__ = ["fk", "feynman_kac_model", "evaluation_steps", "POTENTIALS", "SteeringInfo",
           "svdd", "SVDDState", "SVDDInfo", "best_of_n", "noise_search", "SearchInfo",
           "host_reward", "HostReward", "ValueModel", "fit_value_model", "exact_soft_value",
           "posterior_mean_value"]
