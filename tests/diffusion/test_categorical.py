"""The tail-preserving categorical sampler against float32 Gumbel-max."""

import numpy as np
import pytest
import scipy.stats
import jax
import jax.numpy as jnp

import probinfer as pi

D = pi.diffusion


def test_batched_draws_match_probabilities(key):
    probs = jnp.array([[0.5, 0.0, 0.3, 0.2], [0.05, 0.15, 0.0, 0.8]])
    n = 20000
    draws = np.asarray(D.categorical(key, jnp.broadcast_to(probs, (n, 2, 4))))
    for row in range(2):
        counts = np.bincount(draws[:, row], minlength=4)
        p = np.asarray(probs[row])
        assert counts[p == 0].sum() == 0
        chi2 = ((counts[p > 0] - n * p[p > 0]) ** 2 / (n * p[p > 0])).sum()
        assert scipy.stats.chi2.sf(chi2, (p > 0).sum() - 1) > 0.001


def float32_gumbel_span():
    """Largest minus smallest value jax.random.gumbel can return in float32 (mode "low").

    JAX draws u in [tiny, 1) on a grid of step 2^-23 and returns -log(-log(u)).
    """
    u = jnp.array([jnp.finfo(jnp.float32).tiny, 1.0 - 2.0 ** -23], jnp.float32)
    g = -jnp.log(-jnp.log(u))
    return float(g[1] - g[0])


@pytest.mark.parametrize("use_x64", [False, True], ids=["float32", "float64"])
def test_tail_of_one_in_a_million_is_kept_where_float32_gumbel_max_cannot_reach_it(use_x64, request, key):
    if use_x64:
        request.getfixturevalue("x64")
    # One head category and 2000 tail categories of 5e-10 each: tail mass 1e-6.
    num_tail, tail_mass = 2000, 1e-6
    q = tail_mass / num_tail
    probs = np.concatenate([[1.0 - tail_mass], np.full(num_tail, q)])
    # Proof that float32 Gumbel-max never draws the tail: a tail category beats the head
    # only if g_tail - g_head > log(p_head / q), more than the span of float32 Gumbels.
    assert np.log(probs[0] / q) > float32_gumbel_span()
    # The tail-preserving sampler: Poisson count of tail draws with mean n * 1e-6.
    n_chunk, num_chunks = 2 ** 22, 4
    draw = jax.jit(lambda k: jnp.sum(D.categorical(k, jnp.asarray(probs), (n_chunk,)) > 0))
    hits = sum(int(draw(k)) for k in jax.random.split(key, num_chunks))
    expected = n_chunk * num_chunks * tail_mass
    p_value = 2 * min(scipy.stats.poisson.cdf(hits, expected),
                      scipy.stats.poisson.sf(hits - 1, expected))
    assert p_value > 0.001, (hits, expected)
