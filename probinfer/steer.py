"""``pi.steer``: reward-guided generation (public namespace of :mod:`probinfer.steering`).

Every method targets ``pi(x_0) ∝ p(x_0) exp(reward(x_0) / temperature)`` for a diffusion
prior ``p`` and returns a :class:`~probinfer.Result`.
"""

from probinfer.steering import *  # noqa: F401,F403
from probinfer.steering import __all__  # noqa: F401
