"""Chunked evaluation in tempered SMC: the same run, without N × n_data intermediates."""

from __future__ import annotations

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

import probinfer as pi
from probinfer.particles.tempered import tempered_scan

NUM_DATA = 37


def _regression():
    k1, k2 = jax.random.split(jax.random.key(3))
    features = jax.random.normal(k1, (NUM_DATA, 2))
    targets = features @ jnp.array([1.0, -0.5]) + 0.3 * jax.random.normal(k2, (NUM_DATA,))

    def log_likelihood(w):
        return -0.5 * jnp.sum((targets - features @ w) ** 2) / 0.09

    return pi.Gaussian(jnp.zeros(2), jnp.eye(2)), log_likelihood


# Cheap moves that still take every chunked path: adaptive_repeat's own loop (with
# gradients), the base kernel's move (a chain) and waste-free chains (trajectories).
@pytest.mark.parametrize("options", [
    {"kernel": pi.kernels.adaptive_repeat(pi.kernels.mala(), 3)},
    {"kernel": pi.kernels.chain(pi.kernels.rwm(), pi.kernels.mala())},
    {"kernel": pi.kernels.rwm(), "waste_free": True, "chain_length": 10},
], ids=["adaptive_repeat", "chain", "waste_free"])
def test_chunked_tempered_run_equals_the_unchunked_run(options, x64):
    # float64: XLA may fuse a block's arithmetic differently from the whole batch's, and in
    # float32 that rounding, amplified by the exponent bisection, reaches 3e-5 in beta.
    prior, log_l = _regression()
    # 250 is not a multiple of 64: the last block is padded.
    whole = pi.smc.tempered(1, prior, log_l, 250, progress_bar=False, **options)
    blocks = pi.smc.tempered(1, prior, log_l, 250, progress_bar=False, chunk_size=64,
                             **options)
    np.testing.assert_array_equal(np.asarray(whole.info.num_moves),
                                  np.asarray(blocks.info.num_moves))
    np.testing.assert_allclose(np.asarray(whole.info.beta), np.asarray(blocks.info.beta),
                               rtol=1e-10)
    np.testing.assert_allclose(np.asarray(whole.samples), np.asarray(blocks.samples),
                               atol=1e-9)
    assert abs(float(whole.log_evidence) - float(blocks.log_evidence)) < 1e-9


def _largest_intermediates(jaxpr, num_particles):
    """Sizes of the per-datum intermediates (shapes holding a NUM_DATA axis) of a jaxpr,
    sub-jaxprs included, as the product of their other axes."""
    sizes = []

    def visit(j):
        for eqn in j.eqns:
            for var in eqn.outvars:
                shape = getattr(var.aval, "shape", ())
                if NUM_DATA in shape:
                    sizes.append(int(np.prod(shape)) // NUM_DATA)
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                visit(sub)

    visit(jaxpr.jaxpr)
    return max(sizes)


def test_chunking_bounds_the_per_datum_intermediates():
    """The memory claim itself: unchunked, the likelihood's per-datum terms exist for all N
    particles at once; chunked, for at most chunk_size."""
    prior, log_l = _regression()
    kernel = pi.kernels.adaptive_repeat(pi.kernels.hmc(3), 4)

    def program(chunk_size):
        return jax.make_jaxpr(lambda k: tempered_scan(
            k, prior, log_l, 256, kernel, max_steps=5, chunk_size=chunk_size))(
                jax.random.key(0))

    assert _largest_intermediates(program(None), 256) == 256
    assert _largest_intermediates(program(32), 256) == 32


def test_chunk_size_is_validated():
    prior, log_l = _regression()
    with pytest.raises(ValueError, match="chunk_size"):
        pi.smc.tempered(0, prior, log_l, 64, chunk_size=0)
    with pytest.raises(TypeError, match="chunk_size"):
        pi.smc.tempered(0, prior, log_l, 64, chunk_size=2.5)
