"""Host rewards on an executor: chunked, retried once, equal to the in-process run."""

from __future__ import annotations

import concurrent.futures
import functools
import multiprocessing
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probinfer as pi

MIX = pi.GaussianMixture(jnp.array([0.3, 0.7]), jnp.array([[-2.0, 0.0], [2.0, 1.0]]),
                         jnp.stack([0.5 * jnp.eye(2), 0.3 * jnp.eye(2)]))
# Picklable by reference (numpy's own function), so spawned workers import only numpy.
SCORE = functools.partial(np.sum, axis=-1)


@pytest.fixture(scope="module")
def prior():
    return pi.diffusion.GaussianMixturePrior(MIX, num_steps=8)


def _fk(prior, reward):
    return pi.steer.fk(0, prior, reward, 40, temperature=0.5)


@pytest.mark.slow
def test_process_pool_equals_in_process(prior):
    local = pi.steer.host_reward(SCORE)
    expected = _fk(prior, local)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        remote = pi.steer.host_reward(SCORE, executor=pool, chunk_size=7)
        got = _fk(prior, remote)
    np.testing.assert_array_equal(got.samples, expected.samples)
    assert float(got.log_evidence) == float(expected.log_evidence)
    assert remote.num_calls == local.num_calls and remote.num_evaluations == local.num_evaluations
    assert remote.num_retries == 0


@pytest.mark.slow
def test_dask_distributed_executor_equals_in_process(prior):
    distributed = pytest.importorskip("dask.distributed")
    expected = pi.steer.best_of_n(1, prior, pi.steer.host_reward(SCORE), 16, 3)
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2,
                            dashboard_address=None) as client:
        reward = pi.steer.host_reward(SCORE, executor=client.get_executor(), chunk_size=5)
        got = pi.steer.best_of_n(1, prior, reward, 16, 3)
    np.testing.assert_array_equal(got.samples, expected.samples)


class _Flaky:
    """Fails the first attempt at every chunk (a lost worker), or every attempt at chunks
    holding a sample whose first coordinate exceeds ``poison`` (a failing simulator)."""

    def __init__(self, poison=np.inf):
        self.seen, self.poison, self.lock = set(), poison, threading.Lock()

    def __call__(self, xs):
        if np.any(xs[:, 0] > self.poison):
            raise RuntimeError("simulator failed")
        with self.lock:
            first = xs.tobytes() not in self.seen
            self.seen.add(xs.tobytes())
        if first:
            raise ConnectionError("worker lost")
        return np.sum(xs, axis=-1)


def test_failed_chunks_are_retried_once_then_reported():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(20, 2)), jnp.float32)
    expected = np.sum(np.asarray(x), axis=-1)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        flaky = pi.steer.host_reward(_Flaky(), executor=pool, chunk_size=6)
        np.testing.assert_array_equal(jax.vmap(flaky)(x), expected)
        flaky.raise_pending()
        assert flaky.num_retries == 4          # every one of the 4 chunks, once

        poison = float(np.sort(np.asarray(x[:, 0]))[-1]) - 1e-3     # one sample fails
        bad_chunk = int(np.argmax(np.asarray(x[:, 0]))) // 6
        marked = pi.steer.host_reward(_Flaky(poison), executor=pool, chunk_size=6,
                                      on_chunk_error="nan")
        out = np.asarray(jax.vmap(marked)(x))
        marked.raise_pending()
        in_bad = np.arange(20) // 6 == bad_chunk
        assert np.isnan(out[in_bad]).all()
        np.testing.assert_array_equal(out[~in_bad], expected[~in_bad])
        assert marked.num_failed_chunks == 1

        raising = pi.steer.host_reward(_Flaky(poison), executor=pool, chunk_size=6)
        assert np.isnan(np.asarray(jax.vmap(raising)(x))).all()
        with pytest.raises(RuntimeError, match="simulator failed"):
            raising.raise_pending()


def test_nan_chunks_follow_the_runners_invalid_reward_policy(prior):
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        reward = pi.steer.host_reward(_Flaky(poison=2.5), executor=pool, chunk_size=4,
                                      on_chunk_error="nan")
        res = pi.steer.best_of_n(2, prior, reward, 32, 2, invalid_reward="reject")
        assert reward.num_failed_chunks > 0
        # Every sample of a failed chunk is rejected, so none above the poison is chosen
        # (the reward sum(x) would otherwise favour them).
        assert np.all(np.asarray(res.samples)[:, 0] <= 2.5)
        with pytest.raises(ValueError, match="NaN"):
            pi.steer.best_of_n(2, prior, reward, 32, 2)


def test_executor_arguments_are_validated():
    with pytest.raises(TypeError, match="Executor"):
        pi.steer.host_reward(SCORE, executor=object())
    with pytest.raises(ValueError, match="chunk_size"):
        pi.steer.host_reward(SCORE, executor=None, chunk_size=0)
    with pytest.raises(ValueError, match="on_chunk_error"):
        pi.steer.host_reward(SCORE, on_chunk_error="ignore")
