"""chunk_size on SVDD and best-of-N: bounded memory, the same run (SVDD) or law (best-of-N)."""

import numpy as np
import pytest
import scipy.stats
import jax
import jax.numpy as jnp

import probinfer as pi

MIX = pi.GaussianMixture(jnp.array([0.7, 0.3]), jnp.array([[-1.0, 0.0], [1.5, 0.5]]),
                         0.4 * jnp.stack([jnp.eye(2)] * 2))
CENTER = jnp.array([1.5, 0.5])


def quadratic(x):
    return -0.5 * jnp.sum((x - CENTER) ** 2)


@pytest.mark.parametrize("kind", ["posterior_mean", "value_fn", "masked", "host"])
def test_chunked_svdd_equals_whole_batches(kind, key):
    """50 particles x 4 candidates = 200 children in blocks of 64 (the last one padded)."""
    prior, reward, kwargs = pi.diffusion.GaussianMixturePrior(MIX, num_steps=15), quadratic, {}
    if kind == "value_fn":
        kwargs["value"] = lambda x, step: quadratic(x) * (step + 1.0) / 15.0
    if kind == "masked":
        # Exact masked-diffusion prior: the value is the soft value over draws of x_0 | x_t.
        rng = np.random.default_rng(3)
        prior = pi.diffusion.MarkovChainPrior(rng.dirichlet(np.ones(4)),
                                              rng.dirichlet(np.ones(4), size=4), 6)
        gc = jnp.array([0.0, 1.0, 1.0, 0.0])
        reward = lambda seq: jnp.sum(gc[seq])      # noqa: E731
        kwargs["num_reward_draws"] = 4
    if kind == "host":
        reward = pi.steer.host_reward(
            lambda xs: -0.5 * np.sum((np.asarray(xs) - np.asarray(CENTER)) ** 2, axis=-1))
    kwargs.update(temperature=0.5, progress_bar=False)
    whole = pi.steer.svdd(key, prior, reward, 50, 4, **kwargs)
    chunked = pi.steer.svdd(key, prior, reward, 50, 4, chunk_size=64, **kwargs)
    np.testing.assert_allclose(np.asarray(chunked.samples), np.asarray(whole.samples),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(chunked.info.value_mean),
                               np.asarray(whole.info.value_mean), rtol=1e-5, atol=1e-6)
    if kind == "host":
        # One host call per block of 64 (4 blocks of 200) at every evaluation.
        assert chunked.info.num_host_reward_calls == 4 * whole.info.num_host_reward_calls
    with pytest.raises(ValueError, match="chunk_size"):
        pi.steer.svdd(key, prior, reward, 50, 4, chunk_size=0)


def test_chunked_best_of_n_keeps_the_order_statistic_law(key):
    """Blocks are drawn from their own keys, so the draws differ from the unchunked run's;
    the winner's reward must still have CDF F(r)^n."""
    mix = pi.GaussianMixture(jnp.array([1.0]), jnp.zeros((1, 2)), jnp.eye(2)[None])
    prior = pi.diffusion.GaussianMixturePrior(mix, num_steps=200)
    n, num_samples = 5, 3000
    calls = []
    reward = pi.steer.host_reward(lambda xs: (calls.append(len(xs)), np.asarray(xs)[:, 0])[1])
    res = pi.steer.best_of_n(key, prior, reward, n, num_samples=num_samples, chunk_size=4096)
    winners = np.asarray(res.info.best_reward)
    np.testing.assert_allclose(winners, np.asarray(res.samples[:, 0]), rtol=1e-6)
    ks = scipy.stats.kstest(winners, lambda r: scipy.stats.norm.cdf(r) ** n)
    assert ks.pvalue > 1e-3, ks
    # 15 000 draws in 4 blocks: the last padded, every host call one block.
    assert calls == [4096] * 4 and res.info.num_host_reward_calls == 4
    assert res.info.rewards.shape == (num_samples, n)
    # Blocks have their own keys (not copies of one block).
    blocks = np.asarray(res.info.rewards).reshape(-1)[:3 * 4096].reshape(3, 4096)
    assert not np.any(blocks[0] == blocks[1]) and not np.any(blocks[1] == blocks[2])
    with pytest.raises(TypeError, match="chunk_size"):
        pi.steer.best_of_n(key, prior, reward, n, chunk_size=1.5)
