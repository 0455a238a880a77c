"""SMC over designs: tempered SMC from the plausibility model to the counterfactual target.

The target over the latent embedding ``z`` of the free features is

    π_λ(z) ∝ p(z | frozen) · exp(−λ · [f(x(z)) + ρ · v(x(z))]) · 1[z inside the bounds],

where ``p`` is the plausibility mixture conditioned on the frozen features, ``x(z)`` the
design ``z`` decodes to, ``f`` the weighted objective (proximity + sparsity + manifold
distance + minimised outputs, :meth:`DesignProblem.scalar_objective`), and ``v`` the
constraint penalty (number of violated targets plus their scaled excess, 0 for a valid
design). Tempering runs ``λ = β · max_lambda`` from 0 (plausible designs, drawn exactly
from the mixture) to ``max_lambda``, with ``β`` chosen adaptively to keep half the ESS:
the library's tempered SMC model (:func:`probinfer.smc.tempering_model`) on the one SMC
engine (:func:`probinfer.smc.run`), random-walk moves tuned from the particles. As ``λ``
grows the constraint weight ``λ · ρ`` grows with it, so the particles end restricted to
valid designs (the returned designs are also filtered on validity).

Decoding: real and integer features are ``low + z · range`` (integers rounded), and a
free numeric feature whose ``z`` lies within ``snap`` of the query's is decoded as the
query's value, so that "unchanged" has positive probability and sparsity can be rewarded
(MCD's revert-to-query repair plays this role in NSGA-II); categorical features are the
arg-max of their one-hot block; binary features are ``z > 0.5``.

The predictor is a host function: the log-likelihood calls it through
``jax.pure_callback`` (batched over the particles), so the compiled SMC loop runs
unchanged. The budget fixes the number of particles, the moves per step and the largest
number of tempering steps; when the budget ends before ``λ = max_lambda`` the particles
target the ``λ`` reached, which the results report; when tempering reaches ``max_lambda``
first the run stops there, with the rest of the budget unspent.
"""

from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp

from probinfer.design._problem import DesignProblem
from probinfer.design._space import Binary, Categorical, Integer
from probinfer.kernels import population_adaptation, repeat, rwm
from probinfer.particles.tempered import tempering_model, tempering_params
from probinfer.particles.smc import run as smc_run
from probinfer.targets import GeometricPath

_SNAP = 0.01
#: ρ: a violated target costs 100 times a unit of the score, so the particles are pushed
#: towards validity while the proximity term is still weak (with ρ = 1 on the bicycle study
#: the particles contracted around the query, invalid, before finding the valid region).
_CONSTRAINT_WEIGHT = 100.0


class _Latent:
    """The latent embedding of the free features and its decoding (module docstring)."""

    def __init__(self, problem: DesignProblem):
        space = problem.space
        self.problem = problem
        blocks = space.embedding_blocks()
        self.free_features = np.flatnonzero(problem.free)
        self.embedding_free = np.zeros(blocks[-1].stop, bool)
        for j in self.free_features:
            self.embedding_free[blocks[j]] = True
        self.blocks, start = [], 0
        for j in self.free_features:
            width = blocks[j].stop - blocks[j].start
            self.blocks.append(slice(start, start + width))
            start += width
        self.dim = start
        self.query_embedded = space.embed(problem.query[None, :], 1.0)[0]
        self.numeric_latent = np.array([space.numeric[j] for j in self.free_features])

    def decode(self, z: np.ndarray):
        """``(codes, inside)``: full codes of the designs and whether ``z`` is in bounds."""
        space, problem = self.problem.space, self.problem
        codes = np.tile(problem.query, (len(z), 1))
        inside = np.ones(len(z), bool)
        for j, block in zip(self.free_features, self.blocks):
            v = space.variables[j]
            zj = z[:, block]
            if isinstance(v, Categorical):
                codes[:, j] = np.argmax(zj, axis=1)
            elif isinstance(v, Binary):
                codes[:, j] = (zj[:, 0] > 0.5).astype(float)
            else:
                u = zj[:, 0]
                inside &= (u >= 0.0) & (u <= 1.0)
                value = space.low[j] + np.clip(u, 0.0, 1.0) * (space.high[j] - space.low[j])
                if isinstance(v, Integer):
                    value = np.round(value)
                query_u = self.query_embedded[space.embedding_blocks()[j]][0]
                codes[:, j] = np.where(np.abs(u - query_u) < _SNAP, problem.query[j], value)
        return codes, inside


def run_smc(problem: DesignProblem, key, budget: int, num_particles: int, moves_per_step: int,
            max_lambda: float, target_ess: float):
    """Run the tempered SMC; returns ``(archive indices of the final particles, normalised
    weights, λ reached)``."""
    latent = _Latent(problem)
    prior = problem.plausibility.conditional(latent.embedding_free,
                                             latent.query_embedded[~latent.embedding_free])

    def host_log_likelihood(z):
        z = np.asarray(z, float)
        batch_shape = z.shape[:-1]
        z = z.reshape(-1, latent.dim)
        codes, inside = latent.decode(z)
        out = np.full(len(z), -np.inf)
        if inside.any():
            index = problem.evaluate(codes[inside])
            cost = (problem.scalar_objective(codes[inside], index)
                    + _CONSTRAINT_WEIGHT * problem.constraint_penalty(index))
            out[inside] = -max_lambda * cost
        return out.reshape(batch_shape).astype(np.float32)

    def log_likelihood(z):
        return jax.pure_callback(host_log_likelihood, jax.ShapeDtypeStruct((), jnp.float32),
                                 z, vmap_method="expand_dims")

    kernel = repeat(rwm(), moves_per_step)
    # Predictions per step, at most: the proposals of each move, plus the move's evaluation
    # of its starting points and the engine's of the moved points (the archive answers these
    # unless the kernel's whitening round trip changed a point's last bits). The initial
    # draws cost one prediction per particle.
    max_steps = max(2, 1 + (budget - num_particles) // (num_particles * (moves_per_step + 2)))
    fk = tempering_model(GeometricPath(prior, log_likelihood), kernel, population_adaptation(),
                         max_steps=max_steps)
    params = tempering_params(kernel, jax.ShapeDtypeStruct((latent.dim,), jnp.float32),
                              target_ess)
    result = smc_run(key, fk, num_particles, policy="always", params=params,
                     progress_bar=False)
    z = np.asarray(result.samples.position, float)
    weights = np.exp(np.asarray(result.log_weights, float))
    codes, inside = latent.decode(z)
    keep = inside & (weights > 0)
    index = problem.evaluate(codes[keep])
    beta = float(np.asarray(result.info.params.beta)[-1])
    return index, weights[keep] / weights[keep].sum(), beta * max_lambda
