"""pi.design.counterfactuals(..., executor=): the predictor runs in chunks on an executor,
retried once per chunk, and the result equals the in-process run's."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import operator
import threading

import numpy as np
import pandas as pd
import pytest

import probinfer as pi

pytest.importorskip("pymoo")

# Picklable by reference (the operator module's own class): spawned workers import pandas
# only to run it. DataFrame.eval adds the output column s to the designs.
PREDICT = operator.methodcaller("eval", "s = a + 2 * n")
QUERY = {"a": 1.0, "n": 0, "c": "x"}
TARGETS = {"s": (6.0, 8.0)}


def _data(num=200, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.uniform(0.0, 10.0, num), "n": rng.integers(0, 5, num),
                         "c": rng.choice(["x", "y", "z"], num)})


def _search(predict, **kwargs):
    return pi.design.counterfactuals(QUERY, _data(), predict, TARGETS, 4, key=1, budget=400,
                                     population_size=40, **kwargs)


@pytest.fixture(scope="module")
def in_process():
    return _search(PREDICT)


class FlakyPredict:
    """Fails the first call of every chunk size it sees once, then predicts."""

    def __init__(self):
        self.failed, self.lock = set(), threading.Lock()

    def __call__(self, designs):
        with self.lock:
            if len(designs) not in self.failed:
                self.failed.add(len(designs))
                raise ConnectionError("worker lost")
        return PREDICT(designs)


def test_thread_pool_with_retried_chunks_equals_in_process(in_process):
    flaky = FlakyPredict()
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        got = _search(flaky, executor=pool, chunk_size=7)
    assert len(in_process) == 4
    assert flaky.failed                       # chunks did fail once and were resubmitted
    pd.testing.assert_frame_equal(got, in_process)
    assert got.attrs["num_predictions"] == in_process.attrs["num_predictions"]


def test_a_chunk_failing_twice_raises_its_error():
    def broken(designs):
        raise ConnectionError("cluster down")

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        with pytest.raises(ConnectionError, match="cluster down"):
            _search(broken, executor=pool, chunk_size=16)


def test_executor_arguments_are_validated():
    with pytest.raises(TypeError, match="Executor"):
        _search(PREDICT, executor="dask")
    with pytest.raises(ValueError, match="chunk_size"):
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            _search(PREDICT, executor=pool, chunk_size=0)


@pytest.mark.slow
def test_process_pool_equals_in_process(in_process):
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        got = _search(PREDICT, executor=pool, chunk_size=16)
    pd.testing.assert_frame_equal(got, in_process)
