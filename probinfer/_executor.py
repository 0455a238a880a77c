"""User host code on an executor: a batch split into chunks, submitted together, put back in
order.

Wherever the library calls a user's host function on a batch (host rewards of steering,
design predictors, Sobol' integrands), an ``executor=`` option takes any
:class:`concurrent.futures.Executor` (a process pool, ``dask.distributed``'s
``client.get_executor()``, Ray's executor): we use the standard interface rather than a
scheduler of our own so that any of them plugs in without code changes. Each chunk that
fails (an exception, a lost worker, an output the caller's check rejects) is submitted once
more; a chunk that fails twice is either re-raised or handed to the caller's ``fail`` (e.g.
NaN rewards for that chunk only), so one bad chunk never loses the rest of the batch.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any, Callable, Sequence

import numpy as np

CHUNK_ERROR_POLICIES = ("raise", "nan")


def check_executor(executor, chunk_size, on_chunk_error: str = "raise"):
    """Validate ``executor=`` / ``chunk_size=`` / ``on_chunk_error=``; returns the chunk size."""
    if executor is not None and not isinstance(executor, concurrent.futures.Executor):
        raise TypeError(f"executor must be a concurrent.futures.Executor (a process pool, "
                        f"dask's client.get_executor(), ...), got {type(executor).__name__}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) \
            or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if on_chunk_error not in CHUNK_ERROR_POLICIES:
        raise ValueError(f"on_chunk_error must be one of {CHUNK_ERROR_POLICIES}, got "
                         f"{on_chunk_error!r}")
    return int(chunk_size)


class ChunkCounts:
    """Counters of :func:`map_chunks`: chunks resubmitted and chunks given up on."""

    def __init__(self):
        self.num_retries = 0
        self.num_failed_chunks = 0


def map_chunks(fn: Callable, chunks: Sequence, executor: concurrent.futures.Executor,
               check: Callable[[Any, Any], Any], fail: Callable[[Any], Any] | None = None,
               counts: ChunkCounts | None = None) -> list:
    """``[check(fn(chunk), chunk) for chunk in chunks]``, computed on ``executor``.

    All chunks are submitted before any result is awaited. ``check(output, chunk)`` returns
    the accepted output or raises (a wrong shape counts as a failure, like an exception in
    ``fn``). A chunk failing twice raises its exception, or, with ``fail``, is replaced by
    ``fail(chunk)``. ``fn`` and the chunks travel to the workers: with a process pool or a
    cluster, ``fn`` must be picklable (a module-level function).
    """
    counts = ChunkCounts() if counts is None else counts
    futures = [executor.submit(fn, chunk) for chunk in chunks]
    outputs = []
    for chunk, future in zip(chunks, futures):
        try:
            outputs.append(check(future.result(), chunk))
            continue
        except Exception:
            counts.num_retries += 1
        try:
            outputs.append(check(executor.submit(fn, chunk).result(), chunk))
        except Exception:
            if fail is None:
                raise
            counts.num_failed_chunks += 1
            outputs.append(fail(chunk))
    return outputs


def split(size: int, chunk_size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of consecutive chunks of at most ``chunk_size`` covering ``size``."""
    return [(i, min(i + chunk_size, size)) for i in range(0, size, chunk_size)]
