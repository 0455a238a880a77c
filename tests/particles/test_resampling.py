"""Resamplers: unbiased offspring counts, lower variance than multinomial, edge cases."""

import numpy as np
import pytest
import jax
import jax.numpy as jnp
from hypothesis import given, settings, strategies as st

import probinfer as pi
from probinfer.particles import RESAMPLERS

SCHEMES = sorted(RESAMPLERS)


def _offspring_counts(scheme, key, log_weights, num, replicates):
    resampler = RESAMPLERS[scheme]
    keys = jax.random.split(key, replicates)
    ancestors = jax.jit(jax.vmap(lambda k: resampler(k, log_weights, num)))(keys)
    n = log_weights.shape[0]
    return np.asarray(jax.vmap(lambda a: jnp.bincount(a, length=n))(ancestors))


def _test_weights(rng, n=25):
    w = rng.gamma(0.4, size=n)
    w[rng.choice(n, 4, replace=False)] = 0.0          # some particles with zero weight
    w /= w.sum()
    return jnp.log(jnp.asarray(w, jnp.float32)), w


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("num", [25, 40])
def test_expected_offspring_equals_num_times_weight(scheme, num, key, rng):
    log_w, w = _test_weights(rng)
    replicates = 4000
    counts = _offspring_counts(scheme, key, log_w, num, replicates)
    assert (counts.sum(axis=1) == num).all()
    expected = num * w
    mean = counts.mean(axis=0)
    se = counts.std(axis=0, ddof=1) / np.sqrt(replicates)
    deterministic = se == 0
    # Where a scheme gives the same count every time, that count must be exactly N·w.
    np.testing.assert_allclose(mean[deterministic], expected[deterministic], atol=1e-4)
    z = np.abs(mean[~deterministic] - expected[~deterministic]) / se[~deterministic]
    # Bonferroni over the particles: two-sided per-entry level 1e-4 / 25.
    assert z.max() < 4.9, (scheme, z.max())
    # Zero-weight particles never have offspring.
    assert counts[:, w == 0].sum() == 0


@pytest.mark.parametrize("scheme", ["systematic", "stratified", "residual"])
def test_lower_variance_than_multinomial(scheme, key, rng):
    log_w, w = _test_weights(rng)
    num = 25
    counts = _offspring_counts(scheme, key, log_w, num, 4000)
    multinomial_variance = (num * w * (1 - w)).sum()
    multinomial_counts = _offspring_counts("multinomial", key, log_w, num, 4000)
    # The empirical multinomial variance checks the reference itself.
    assert abs(multinomial_counts.var(axis=0).sum() / multinomial_variance - 1) < 0.1
    assert counts.var(axis=0).sum() < 0.8 * multinomial_variance


def test_systematic_counts_are_floor_or_ceil(key, rng):
    log_w, w = _test_weights(rng)
    counts = _offspring_counts("systematic", key, log_w, 25, 500)
    nw = 25 * w
    assert (counts >= np.floor(nw - 1e-4)).all() and (counts <= np.ceil(nw + 1e-4)).all()


log_weight_lists = st.lists(
    st.one_of(st.floats(-30, 5), st.just(-np.inf)), min_size=1, max_size=12
).filter(lambda lw: any(np.isfinite(lw)))


@settings(max_examples=40, deadline=None)
@given(log_weights=log_weight_lists, num=st.integers(1, 12), seed=st.integers(0, 2 ** 31 - 1),
       scheme=st.sampled_from(SCHEMES))
def test_resampler_properties(log_weights, num, seed, scheme):
    lw = jnp.asarray(log_weights, jnp.float32)
    ancestors = np.asarray(pi.particles.resample(jax.random.key(seed), lw, num, scheme))
    assert ancestors.shape == (num,)
    assert np.issubdtype(ancestors.dtype, np.integer)
    assert ((ancestors >= 0) & (ancestors < lw.shape[0])).all()
    w = np.exp(np.asarray(lw, np.float64) - np.max(lw))
    w /= w.sum()
    assert (w[ancestors] > 0).all(), "an ancestor with zero weight was selected"
    if scheme != "multinomial":
        counts = np.bincount(ancestors, minlength=lw.shape[0])
        assert (counts >= np.floor(num * w - 1e-3)).all()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_degenerate_weight_and_single_particle(scheme, key):
    lw = jnp.array([-jnp.inf, 0.0, -jnp.inf, -1e4])
    assert (np.asarray(RESAMPLERS[scheme](key, lw, 7)) == 1).all()
    assert np.asarray(RESAMPLERS[scheme](key, jnp.zeros(1), 3)).tolist() == [0, 0, 0]


def test_resample_validates_input(key):
    with pytest.raises(ValueError, match="shape"):
        pi.particles.resample(key, jnp.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        pi.particles.resample(key, jnp.array([0.0, jnp.nan]))
    with pytest.raises(ValueError, match="zero weight"):
        pi.particles.resample(key, jnp.full(3, -jnp.inf))
    with pytest.raises(ValueError, match="num"):
        pi.particles.resample(key, jnp.zeros(3), 0)
    with pytest.raises(ValueError, match="resampling must be one of"):
        pi.particles.resample(key, jnp.zeros(3), 3, "bogus")
    with pytest.raises(TypeError, match="floating"):
        pi.particles.resample(key, jnp.zeros(3, jnp.int32))
