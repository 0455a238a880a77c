"""pi.importance.sobol(..., executor=): a batched host function evaluated in chunks on an
executor; the indices equal the in-process run's."""

from __future__ import annotations

import concurrent.futures
import functools
import multiprocessing

import jax
import numpy as np
import numpyro.distributions as dist
import pytest

import probinfer as pi

# Picklable by reference (numpy's own function), so spawned workers import only numpy.
SUM_OF_SQUARES = functools.partial(np.linalg.norm, axis=-1)
INPUTS = [dist.Uniform(0.0, 1.0), dist.Uniform(0.0, 2.0), dist.Normal(0.0, 1.0)]


def _same(a, b):
    for name in ("first_order", "total", "first_order_ci", "total_ci"):
        np.testing.assert_array_equal(np.asarray(getattr(a, name)),
                                      np.asarray(getattr(b, name)))
    assert a.num_evaluations == b.num_evaluations


@pytest.fixture(scope="module")
def in_process():
    return pi.importance.sobol(jax.random.key(0), pi.steer.host_reward(SUM_OF_SQUARES), INPUTS,
                               1000, method="pick-freeze")


def test_thread_pool_equals_in_process(in_process):
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        got = pi.importance.sobol(jax.random.key(0), SUM_OF_SQUARES, INPUTS, 1000,
                                  method="pick-freeze", executor=pool, chunk_size=64)
    _same(got, in_process)


def test_host_error_and_arguments():
    def broken(x):
        raise ConnectionError("cluster down")

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        with pytest.raises(ConnectionError, match="cluster down"):
            pi.importance.sobol(jax.random.key(0), broken, INPUTS, 500, method="pick-freeze", executor=pool)
        with pytest.raises(TypeError, match="already"):
            pi.importance.sobol(jax.random.key(0), pi.steer.host_reward(SUM_OF_SQUARES), INPUTS, 500,
                                method="pick-freeze", executor=pool)
        with pytest.raises(ValueError, match="chunk_size"):
            pi.importance.sobol(jax.random.key(0), SUM_OF_SQUARES, INPUTS, 500, executor=pool, chunk_size=0)
    with pytest.raises(TypeError, match="Executor"):
        pi.importance.sobol(jax.random.key(0), SUM_OF_SQUARES, INPUTS, 500, executor=4)


@pytest.mark.slow
def test_process_pool_equals_in_process(in_process):
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        got = pi.importance.sobol(jax.random.key(0), SUM_OF_SQUARES, INPUTS, 1000,
                                  method="pick-freeze", executor=pool, chunk_size=64)
    _same(got, in_process)
