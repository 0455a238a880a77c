"""Differentiable torch rewards: gradients against finite differences, one host call per
batch, errors, and gradient-guided FK steering of the shipped digits prior."""

import numpy as np
import jax
import jax.numpy as jnp
import pytest

import probinfer as pi

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from probinfer.steering._torch_reward import TorchReward, torch_reward  # noqa: E402


def test_exported_as_pi_steer_torch_reward():
    assert pi.steer.torch_reward is torch_reward
    assert pi.steer.TorchReward is TorchReward


class _Reduce(torch.nn.Module):
    """A smooth non-linear reward (B, 3) -> (B,) with float64 parameters."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return torch.tanh(self.layer(x)).sum(dim=1) + torch.sin(x[:, 0]) * x[:, 1]


def test_gradient_equals_finite_differences(x64, rng):
    torch.manual_seed(0)
    reward = torch_reward(_Reduce(torch.nn.Linear(3, 4).double()))
    xs = jnp.asarray(rng.normal(size=(5, 3)))
    grads = jax.vmap(jax.grad(reward))(xs)
    eps = 1e-6
    for i in range(3):
        step = jnp.zeros(3).at[i].set(eps)
        fd = (jax.vmap(reward)(xs + step) - jax.vmap(reward)(xs - step)) / (2 * eps)
        np.testing.assert_allclose(grads[:, i], fd, rtol=1e-6, atol=1e-8)


def test_one_host_call_per_batch_and_counters(rng):
    reward = torch_reward(lambda x: -(x ** 2).sum(dim=(1, 2)))
    xs = jnp.asarray(rng.normal(size=(16, 2, 3)), jnp.float32)
    values = jax.jit(jax.vmap(reward))(xs)
    np.testing.assert_allclose(values, -np.sum(np.asarray(xs) ** 2, axis=(1, 2)), rtol=1e-5)
    assert (reward.num_calls, reward.num_evaluations) == (1, 16)
    grads = jax.jit(jax.vmap(jax.grad(reward)))(xs)
    np.testing.assert_allclose(grads, -2 * np.asarray(xs), rtol=1e-5)
    assert reward.num_gradient_calls == 1
    # Chunked host calls give the same values.
    chunked = torch_reward(lambda x: -(x ** 2).sum(dim=(1, 2)), max_batch_size=5)
    np.testing.assert_allclose(jax.vmap(jax.grad(chunked))(xs), grads, rtol=1e-6)


def test_errors_name_the_mistake(rng):
    xs = jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)
    frozen = torch_reward(lambda x: x.sum(dim=1), differentiable=False)
    assert jax.vmap(frozen)(xs).shape == (4,)
    with pytest.raises(ValueError, match="differentiable=False"):
        jax.grad(frozen)(xs[0])

    def broken(x):
        raise KeyError("my reward failed")

    reward = torch_reward(broken)
    assert np.isnan(np.asarray(jax.vmap(reward)(xs))).all()
    with pytest.raises(KeyError, match="my reward failed"):
        reward.raise_pending()
    wrong_shape = torch_reward(lambda x: x)          # (B, 3) instead of (B,)
    jax.vmap(wrong_shape)(xs).block_until_ready()
    with pytest.raises(ValueError, match="expected"):
        wrong_shape.raise_pending()
    with pytest.raises(TypeError, match="module_or_fn"):
        torch_reward(3)
    with pytest.raises(ValueError, match="max_batch_size"):
        torch_reward(lambda x: x.sum(1), max_batch_size=0)


def test_zoo_classifier_reward_gradient_matches_finite_differences(rng):
    reward = pi.zoo.load_reward("digits-classifier", target=7)
    images, labels = pi.zoo.digits("test")
    x = jnp.asarray(images[:4])
    values = jax.vmap(reward)(x)
    model = pi.zoo.load("digits-classifier").module
    with torch.no_grad():
        expected = torch.log_softmax(model(torch.from_numpy(images[:4])), -1)[:, 7].numpy()
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-5)
    grads = jax.vmap(jax.grad(reward))(x)
    # Directional derivatives along random directions (float32 network: step 1e-2).
    direction = jnp.asarray(rng.normal(size=x.shape), jnp.float32)
    direction = direction / jnp.sqrt(jnp.sum(direction ** 2, axis=(1, 2, 3), keepdims=True))
    h = 1e-2
    fd = (jax.vmap(reward)(x + h * direction) - jax.vmap(reward)(x - h * direction)) / (2 * h)
    analytic = jnp.sum(grads * direction, axis=(1, 2, 3))
    np.testing.assert_allclose(analytic, fd, rtol=0.05, atol=2e-3)
    with pytest.raises(ValueError, match="target"):
        pi.zoo.load_reward("digits-classifier", target=10)
    with pytest.raises(ValueError, match="not a classifier"):
        pi.zoo.load_reward("digits-ddpm")


@pytest.mark.slow
def test_gradient_guided_fk_on_the_digits_prior(key):
    prior = pi.zoo.load_prior("digits-ddpm", num_steps=4, differentiable=True)
    reward = pi.zoo.load_reward("digits-classifier", target=7)
    res = pi.steer.fk(key, prior, reward, 4, proposal="gradient")
    assert res.samples.shape == (4, 1, 8, 8)
    assert np.isfinite(float(res.log_evidence))
    assert np.all(np.isfinite(np.asarray(res.samples)))
    assert reward.num_gradient_calls >= 1
