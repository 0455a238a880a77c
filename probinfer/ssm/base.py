"""State-space models and the Feynman–Kac models built from them.

An SSM here has batched methods over particles of shape ``(n, d)``: batched sampling
draws all particles' noise in one call, which matters on CPU (one key split per particle
would dominate a bootstrap filter's cost). Observations ``y_0 .. y_{T-1}``; ``x_0 ~ p_0``,
``x_t | x_{t-1} ~ f_t``, ``y_t | x_t ~ g_t``.
"""

from __future__ import annotations

from jax.tree_util import Partial

from probinfer._compile import numbers_as_leaves
from probinfer._types import Array, PRNGKey
from probinfer._validation import as_float_array, check_finite
from probinfer.particles.smc import FeynmanKac


class StateSpaceModel:
    """Interface of a state-space model (all methods batched over a leading particle axis).

    Every subclass is a JAX pytree whose array attributes are its numbers (traced) and
    whose other attributes are structure (static), so filters of models rebuilt with new
    parameter arrays of the same shapes share one compiled run.
    """

    state_dim: int

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        numbers_as_leaves(cls)

    def sample_initial(self, key: PRNGKey, num: int) -> Array:
        raise NotImplementedError

    def initial_log_density(self, x: Array) -> Array:
        raise NotImplementedError

    def sample_transition(self, key: PRNGKey, x_prev: Array, t) -> Array:
        raise NotImplementedError

    def transition_log_density(self, x_prev: Array, x: Array, t) -> Array:
        raise NotImplementedError

    def observation_log_density(self, x: Array, y: Array, t) -> Array:
        raise NotImplementedError


class Proposal:
    """A proposal ``q_0(x_0 | y_0)``, ``q_t(x_t | x_{t-1}, y_t)`` for a guided filter (batched).

    Subclasses are pytrees like :class:`StateSpaceModel` subclasses.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        numbers_as_leaves(cls)

    def sample_initial(self, key: PRNGKey, y: Array, num: int) -> Array:
        raise NotImplementedError

    def initial_log_density(self, x: Array, y: Array) -> Array:
        raise NotImplementedError

    def sample(self, key: PRNGKey, x_prev: Array, y: Array, t) -> Array:
        raise NotImplementedError

    def log_density(self, x_prev: Array, x: Array, y: Array, t) -> Array:
        raise NotImplementedError


def _check_observations(ssm, observations):
    if not isinstance(ssm, StateSpaceModel):
        raise TypeError(f"ssm must be a probinfer.ssm.StateSpaceModel, got {type(ssm).__name__}")
    observations = as_float_array(observations, "observations")
    if observations.ndim == 1:
        observations = observations[:, None]
    if observations.ndim != 2 or observations.shape[0] < 1:
        raise ValueError("observations must have shape (T,) or (T, obs_dim) with T >= 1, got "
                         f"{observations.shape}")
    check_finite(observations, "observations")
    return observations


def bootstrap(ssm: StateSpaceModel, observations, summary=None) -> FeynmanKac:
    """Bootstrap filter: ``M_t = f_t`` and ``G_t = g_t(y_t | x_t)``.

    ``log_evidence`` of the SMC run estimates ``log p(y_{0:T-1})``. ``summary``: optional
    ``(particles, log_weights, t) -> pytree`` recorded after every step into
    ``res.info.summary`` (filtering moments: :func:`probinfer.ssm.moments`).

    Example
    -------
    >>> import jax, probinfer as pi
    >>> ssm = pi.ssm.LinearGaussian.scalar(rho=0.9, sigma_x=1.0, sigma_y=0.5)
    >>> _, ys = ssm.simulate(jax.random.key(0), 30)
    >>> fk = pi.ssm.bootstrap(ssm, ys, summary=pi.ssm.moments())
    >>> res = pi.smc.run(jax.random.key(1), fk, 500)
    >>> res.info.summary.mean.shape          # E[x_t | y_{0:t}] for every t
    (30, 1)
    """
    ys = _check_observations(ssm, observations)
    return FeynmanKac(
        init=Partial(_initial, ssm), move=Partial(_transition, ssm),
        log_potential=Partial(_observation_log_density, ssm, ys),
        num_steps=ys.shape[0], summary=summary)


# The filters' functions are module-level and bound with Partial, so the model and the
# observations are traced numbers: a filter rebuilt on new data reuses the compiled run
# (pass the same summary function object too).
def _initial(ssm, key, num):
    return ssm.sample_initial(key, num)


def _transition(ssm, key, x_prev, t):
    return ssm.sample_transition(key, x_prev, t)


def _observation_log_density(ssm, ys, x_prev, x, t):
    return ssm.observation_log_density(x, ys[t], t)


def _guided_initial(ssm, proposal, ys, key, num):
    return proposal.sample_initial(key, ys[0], num)


def _guided_move(ssm, proposal, ys, key, x_prev, t):
    return proposal.sample(key, x_prev, ys[t], t)


def _guided_log_potential(ssm, proposal, ys, x_prev, x, t):
    if x_prev is None:
        return (ssm.initial_log_density(x) + ssm.observation_log_density(x, ys[0], 0)
                - proposal.initial_log_density(x, ys[0]))
    return (ssm.transition_log_density(x_prev, x, t)
            + ssm.observation_log_density(x, ys[t], t)
            - proposal.log_density(x_prev, x, ys[t], t))


def guided(ssm: StateSpaceModel, observations, proposal: Proposal,
           summary=None) -> FeynmanKac:
    """Guided filter: particles move by ``proposal``; potentials carry the ratio
    ``f_t(x_t | x_{t-1}) g_t(y_t | x_t) / q_t(x_t | x_{t-1}, y_t)``. ``summary`` as in
    :func:`bootstrap`."""
    ys = _check_observations(ssm, observations)
    if not isinstance(proposal, Proposal):
        raise TypeError(f"proposal must be a probinfer.ssm.Proposal, got "
                        f"{type(proposal).__name__}")
    parts = (ssm, proposal, ys)
    return FeynmanKac(
        init=Partial(_guided_initial, *parts), move=Partial(_guided_move, *parts),
        log_potential=Partial(_guided_log_potential, *parts),
        num_steps=ys.shape[0], summary=summary)


