"""``pi.steer``: reward-guided generation.

Every method targets ``pi(x_0) ∝ p(x_0) exp(reward(x_0) / temperature)`` for a diffusion
prior ``p`` and returns a :class:`~probinfer.Result`: FK steering (:func:`fk`), soft
value-based decoding (:func:`svdd`), best-of-N and noise search. Rewards are JAX functions
of one sample, batched host functions (:func:`host_reward`) or torch modules
(:func:`torch_reward`). The implementation lives in the private modules of
:mod:`probinfer.steering`.
"""

from probinfer.steering._fk import (SteeringInfo, SteeringParticles, SteeringSettings,
                                    evaluation_steps, feynman_kac_model, fk)
from probinfer.steering._potentials import (POTENTIALS, Difference, Immediate, Max, Potential,
                                            Sum)
from probinfer.steering._rewards import HostReward, host_reward
from probinfer.steering._search import SearchInfo, best_of_n, noise_search
from probinfer.steering._svdd import SVDDInfo, SVDDState, svdd
from probinfer.steering._torch_reward import TorchReward, torch_reward
from probinfer.steering._values import (ValueModel, exact_soft_value, fit_value_model,
                                        posterior_mean_value)

__all__ = ["fk", "feynman_kac_model", "evaluation_steps", "SteeringInfo", "SteeringParticles",
           "SteeringSettings", "Potential", "Difference", "Max", "Sum", "Immediate",
           "POTENTIALS", "svdd", "SVDDState", "SVDDInfo", "best_of_n", "noise_search",
           "SearchInfo", "host_reward", "HostReward", "torch_reward", "TorchReward", "ValueModel", "fit_value_model",
           "exact_soft_value", "posterior_mean_value"]
