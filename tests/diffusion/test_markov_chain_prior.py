"""MarkovChainPrior: exact conditionals by enumeration, sampler marginals, transition law."""

import itertools

import numpy as np
import pytest
import scipy.stats
import jax
import jax.numpy as jnp

import probinfer as pi

D = pi.diffusion


def chain(length=5, num_steps=None, sampler="ancestral", schedule="linear"):
    rng = np.random.default_rng(3)
    k = 3
    trans = rng.dirichlet(np.ones(k), size=(length - 1, k))
    trans[1, 0] = [0.0, 0.4, 0.6]        # a forbidden move: exact zeros must be respected
    initial = np.array([0.2, 0.5, 0.3])
    return D.MarkovChainPrior(initial, trans, length, num_steps=num_steps, sampler=sampler,
                              schedule=schedule)


def enumerate_sequences(prior):
    seqs = np.array(list(itertools.product(range(prior.vocab_size), repeat=prior.length)))
    return seqs, np.exp(np.asarray(prior.log_prob(jnp.asarray(seqs)), np.float64))


def test_log_prob_and_marginals_match_enumeration(x64):
    prior = chain()
    seqs, probs = enumerate_sequences(prior)
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-12)
    for l in range(prior.length):
        single = np.array([probs[seqs[:, l] == a].sum() for a in range(3)])
        np.testing.assert_allclose(prior.marginals()[l], single, rtol=1e-10, atol=1e-15)
    for l in range(prior.length - 1):
        pair = np.array([[probs[(seqs[:, l] == a) & (seqs[:, l + 1] == b)].sum()
                          for b in range(3)] for a in range(3)])
        np.testing.assert_allclose(prior.pair_marginals()[l], pair, rtol=1e-10, atol=1e-15)


def test_denoiser_conditionals_match_enumeration(x64, rng):
    prior = chain()
    seqs, probs = enumerate_sequences(prior)
    masked_inputs = []
    for _ in range(12):
        x = seqs[rng.choice(len(seqs), p=probs)].copy()
        x[rng.random(prior.length) < 0.6] = prior.mask_id
        masked_inputs.append(x)
    masked_inputs.append(np.full(prior.length, prior.mask_id))
    got = np.asarray(prior.denoise(jnp.asarray(np.stack(masked_inputs))))
    for x, cond in zip(masked_inputs, got):
        keep = x != prior.mask_id
        consistent = np.all(seqs[:, keep] == x[keep], axis=1)
        weights = probs * consistent
        for l in range(prior.length):
            expected = np.array([weights[seqs[:, l] == a].sum() for a in range(3)])
            np.testing.assert_allclose(cond[l], expected / weights.sum(), rtol=1e-9, atol=1e-14)


def marginal_p_values(prior, x):
    """Chi-square p-values of every single-site and adjacent-pair marginal of samples x."""
    n = len(x)
    tables = ([(np.bincount(x[:, l], minlength=3), prior.marginals()[l])
               for l in range(prior.length)]
              + [(np.bincount(3 * x[:, l] + x[:, l + 1], minlength=9),
                  prior.pair_marginals()[l].ravel()) for l in range(prior.length - 1)])
    p_values, forbidden = [], 0
    for counts, p in tables:
        forbidden += counts[p == 0].sum()
        e = n * p[p > 0]
        chi2 = ((counts[p > 0] - e) ** 2 / e).sum()
        p_values.append(scipy.stats.chi2.sf(chi2, (p > 0).sum() - 1))
    return np.array(p_values), forbidden


def reverse_run(prior, key, n):
    """The masked reverse process of the prior's sampler (``sample`` itself is exact)."""
    return np.asarray(D.DiffusionPrior.sample(prior, key, n))


def pair_z_scores(prior, x):
    """z-scores (MCSE) of every adjacent-pair cell frequency against the exact pair law."""
    k, n = prior.vocab_size, len(x)
    pairs = prior.pair_marginals()
    counts = np.stack([np.bincount(k * x[:, l] + x[:, l + 1], minlength=k * k)
                       for l in range(prior.length - 1)]).reshape(pairs.shape) / n
    se = np.sqrt(np.maximum(pairs * (1 - pairs), 1e-300) / n)
    return (counts - pairs) / se, counts[pairs == 0].sum()


@pytest.mark.slow
def test_sample_is_exact_by_default_and_ancestral_is_not(key):
    # The set-up: 4 letters, length 10, a random chain, n = 20 000.
    rng = np.random.default_rng(11)
    prior = D.MarkovChainPrior(rng.dirichlet(np.ones(4)), rng.dirichlet(np.ones(4), size=4), 10,
                               sampler="ancestral")
    n = 20000
    crit = scipy.stats.norm.isf(0.001 / (2 * 9 * 16))
    x = np.asarray(prior.sample(key, n))
    assert x.shape == (n, 10) and x.dtype == np.int32
    z, forbidden = pair_z_scores(prior, x)
    assert forbidden == 0 and np.abs(z).max() < crit, np.abs(z).max()
    # the ancestral reverse process with num_steps = length fails the same test
    z_ancestral, _ = pair_z_scores(prior, reverse_run(prior, key, n))
    assert np.abs(z_ancestral).max() > 2 * crit, np.abs(z_ancestral).max()


def test_default_masked_sampler_is_exact_where_it_can_be():
    initial, trans = np.array([0.3, 0.7]), np.array([[0.9, 0.1], [0.4, 0.6]])
    assert D.MarkovChainPrior(initial, trans, 4).sampler == D.FirstHitting()
    assert D.MarkovChainPrior(initial, trans, 4, num_steps=4).sampler == D.FirstHitting()
    assert D.MarkovChainPrior(initial, trans, 4, num_steps=2).sampler == D.Ancestral()


def test_exact_trajectory_reveals_independently(key):
    prior = chain(num_steps=4)
    path = np.asarray(prior.sample(key, 4000, return_trajectory=True))
    assert path.shape == (5, 4000, prior.length)
    assert np.all(path[0] == prior.mask_id)
    final = path[-1]
    assert np.all(final < prior.vocab_size)
    # revealed tokens never change; each step reveals with the schedule's probability
    revealed = path != prior.mask_id
    assert np.all(np.where(revealed[:-1], path[:-1] == final[None], True))
    assert np.all(revealed[1:] >= revealed[:-1])
    frac = revealed.mean(axis=(1, 2))
    expected = np.asarray(prior.unmasked, np.float64)
    se = np.sqrt(expected * (1 - expected) / revealed[0].size) + 1e-12
    assert np.all(np.abs(frac - expected) < 5 * se + 1e-12), (frac, expected)
    p_values, forbidden = marginal_p_values(prior, final)
    assert forbidden == 0 and p_values.min() > 0.001 / len(p_values)


def test_first_hitting_samples_have_the_exact_marginals(key):
    prior = chain(sampler="first_hitting")
    x = reverse_run(prior, key, 4000)
    assert np.all((x >= 0) & (x < prior.vocab_size))
    p_values, forbidden = marginal_p_values(prior, x)
    assert forbidden == 0
    assert p_values.min() > 0.001 / len(p_values), p_values


def test_ancestral_sampler_converges_as_steps_grow(key):
    # Several positions revealed in one step are drawn independently from their own
    # conditionals, so the ancestral sampler is exact only as num_steps grows: one step
    # gives the product of the marginals (wrong pairs); with 400 linear steps an adjacent
    # pair is revealed together in about 1% of sequences, below this test's resolution.
    one = chain(num_steps=1, sampler="ancestral")
    p_one, forbidden_one = marginal_p_values(one, reverse_run(one, key, 4000))
    assert forbidden_one > 0 and p_one.min() < 0.001 / len(p_one)
    many = chain(num_steps=400, sampler="ancestral")
    p_many, _ = marginal_p_values(many, reverse_run(many, key, 3000))
    assert p_many.min() > 0.001 / len(p_many), p_many


@pytest.mark.parametrize("sampler,num_steps", [("ancestral", 2), ("first_hitting", None)])
def test_transition_log_density_is_a_normalised_law(sampler, num_steps, key, x64):
    prior = D.MarkovChainPrior(np.array([0.3, 0.7]), np.array([[0.9, 0.1], [0.4, 0.6]]), 3,
                               num_steps=num_steps, sampler=sampler)
    m = prior.mask_id
    x = jnp.array([[m, 1, m]])
    step = 0 if sampler == "ancestral" else 1
    nexts = jnp.array(list(itertools.product([0, 1, m], repeat=3)))
    log_q = jax.jit(prior.transition_log_density)(jnp.broadcast_to(x, nexts.shape), nexts, step)
    np.testing.assert_allclose(float(jnp.sum(jnp.exp(log_q))), 1.0, rtol=1e-12)
    # and the sampler draws from that law
    n = 20000
    draws = np.asarray(jax.jit(prior.transition)(key, jnp.broadcast_to(x, (n, 3)), step))
    # tokens are 0, 1 and the mask 2, so base-3 codes index `nexts` in product order
    counts = np.bincount(draws @ np.array([9, 3, 1]), minlength=27)
    p = np.exp(np.asarray(log_q))
    e = n * p[p > 0]
    assert counts[p == 0].sum() == 0
    assert scipy.stats.chi2.sf(((counts[p > 0] - e) ** 2 / e).sum(), (p > 0).sum() - 1) > 0.001


def test_tilt_additive_is_exact(x64, rng):
    prior = chain()
    rewards = rng.normal(size=(prior.length, 3))
    tilted, log_z = prior.tilt_additive(rewards, temperature=0.5)
    seqs, probs = enumerate_sequences(prior)
    r = rewards[np.arange(prior.length), seqs].sum(1)
    with np.errstate(divide="ignore"):
        expected = np.log(probs) + r / 0.5
    np.testing.assert_allclose(log_z, np.logaddexp.reduce(expected[probs > 0]), rtol=1e-10)
    ok = probs > 0
    np.testing.assert_allclose(np.asarray(tilted.log_prob(jnp.asarray(seqs[ok]))),
                               expected[ok] - log_z, rtol=1e-9, atol=1e-10)


def test_bad_inputs_raise(key):
    good = np.array([[0.9, 0.1], [0.4, 0.6]])
    with pytest.raises(ValueError, match="non-negative"):
        D.MarkovChainPrior(np.array([0.5, 0.5]), np.array([[1.1, -0.1], [0.4, 0.6]]), 4)
    with pytest.raises(ValueError, match="sum to one"):
        D.MarkovChainPrior(np.array([0.5, 0.5]), np.array([[0.8, 0.1], [0.4, 0.6]]), 4)
    with pytest.raises(ValueError, match="initial must sum to one"):
        D.MarkovChainPrior(np.array([0.6, 0.5]), good, 4)
    with pytest.raises(ValueError, match="transition must have shape"):
        D.MarkovChainPrior(np.array([0.5, 0.5]), np.stack([good] * 2), 4)
    with pytest.raises(ValueError, match="num_steps must equal length"):
        D.MarkovChainPrior(np.array([0.5, 0.5]), good, 4, num_steps=2, sampler="first_hitting")
    with pytest.raises(ValueError, match="schedule"):
        D.MarkovChainPrior(np.array([0.5, 0.5]), good, 4, schedule="sqrt")
    prior = D.MarkovChainPrior(np.array([0.5, 0.5]), good, 4)
    with pytest.raises(ValueError, match="particles must have shape"):
        prior.transition(key, jnp.full((3, 5), prior.mask_id), 0)
    with pytest.raises(TypeError, match="integer tokens"):
        prior.denoise(jnp.zeros((3, 4)), 0)
    with pytest.raises(ValueError, match="no masks"):
        prior.log_prob(jnp.full((4,), prior.mask_id))
