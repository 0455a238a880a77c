"""The unrolled Threefry implementation reproduces JAX's default key bit for bit, so the
samplers can use it without changing any result."""

import numpy as np
import pytest
import jax

import probinfer as pi
from probinfer._random import THREEFRY_UNROLLED, fast_key


@pytest.mark.parametrize("use_x64", [False, True])
def test_same_bits_as_default_threefry(use_x64, request):
    if use_x64:
        request.getfixturevalue("x64")
    for seed in (0, 12345):
        a = jax.random.key(seed)
        b = jax.random.key(seed, impl=THREEFRY_UNROLLED)
        for shape in ((1,), (7, 3), (10_001,)):
            for draw in (jax.random.bits, jax.random.normal, jax.random.uniform):
                np.testing.assert_array_equal(draw(a, shape), draw(b, shape))
        np.testing.assert_array_equal(jax.random.categorical(a, np.zeros(5), shape=(100,)),
                                      jax.random.categorical(b, np.zeros(5), shape=(100,)))
        for shape in ((2,), (3, 4)):
            np.testing.assert_array_equal(jax.random.key_data(jax.random.split(a, shape)),
                                          jax.random.key_data(jax.random.split(b, shape)))
        np.testing.assert_array_equal(jax.random.key_data(jax.random.fold_in(a, 9)),
                                      jax.random.key_data(jax.random.fold_in(b, 9)))


def test_fast_key_changes_nothing_observable():
    key = jax.random.key(3)
    assert jax.random.key_impl(fast_key(key)) == jax.random.key_impl(jax.random.key(0, impl=THREEFRY_UNROLLED))
    legacy = jax.random.PRNGKey(3)
    assert fast_key(legacy) is legacy
    ssm = pi.ssm.LinearGaussian.scalar()
    _, ys = ssm.simulate(key, 15)
    fk = pi.ssm.bootstrap(ssm, ys)
    via_run = pi.smc.run(key, fk, 300)          # re-wraps the key internally
    # The same compiled program with the caller's own key (eager execution could differ
    # from it by float rounding, the key implementation must not).
    scan = jax.jit(pi.smc.scan, static_argnames=("fk", "num_particles", "resampler"))
    state, _ = scan(key, fk, 300, pi.particles.systematic, pi.smc.ess_below(0.5))
    np.testing.assert_array_equal(np.asarray(via_run.samples), np.asarray(state.particles))
