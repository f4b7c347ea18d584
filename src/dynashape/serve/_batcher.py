"""The asyncio batcher: a bounded queue per shape group, flushed when full or when its oldest request's delay ends.

It is a plain asyncio class (no Ray in it): the Ray Serve replica holds one, and tests drive it
directly. Engine calls run in a thread pool so the event loop keeps accepting requests meanwhile.
"""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._errors import DynashapeError
from ._batching import BatchPolicy, Key, Prepared, run_isolated


def default_workers(device: str) -> int:
    """Engine calls at once per batcher when ``workers`` is None: 1 on CUDA, 2 on the CPU.

    NOTE: on the CPU two calls at once overlap one call's Python work (concatenation, splitting,
    the session's own bookkeeping) with the other's compute: about twice the throughput of one at
    16 clients on a 2-core machine, and four no better than two (BENCHMARKS.md, serving). On CUDA
    an engine's calls serialize on its stream anyway, so a second worker only holds a batch that
    could still have grown.
    """
    return 1 if device.startswith("cuda") else 2


class Overloaded(DynashapeError):
    """The server's queue is full, or it is shutting down (HTTP 503): retry later."""


@dataclass
class _Waiting:
    request: Prepared
    future: asyncio.Future[dict[str, np.ndarray]]
    t0: float


@dataclass
class BatcherStats:
    """Counters since start: requests answered, engine calls made, requests refused (503), rows per call."""

    requests: int = 0
    batches: int = 0
    rejected: int = 0
    batch_sizes: collections.Counter[int] = field(default_factory=collections.Counter)


class Batcher:
    """Shape-aware dynamic batching in front of one engine.

    ``await batcher.infer({"input_ids": x, ...})`` returns that request's outputs. Requests whose
    non-batch shapes match (see :mod:`._batching`) are concatenated on the batch dim, up to
    ``max_batch`` rows (and the largest batch a profile allows), and run as one call.

    NOTE (waiting): a group is flushed as soon as it is full, or when its oldest request has waited
    ``max_delay_ms``; no request waits for batch-mates longer than that. It may still wait for a
    free worker (``workers`` engine calls run at once; default :func:`default_workers`: 2 on the
    CPU, 1 on CUDA), which is when batches grow.
    ``max_queue`` bounds the requests waiting (not yet running): one more raises :class:`Overloaded`.
    ``max_batch=1`` turns batching off (every request runs alone, in arrival order).
    """

    def __init__(self, engine: Any, *, max_batch: int | None = None, max_delay_ms: float | None = None,
                 max_queue: int | None = None, workers: int | None = None,
                 ladder: Mapping[str, Sequence[int]] | None = None, pad_values: Mapping[str, float] | None = None,
                 crops: Mapping[str, Sequence[tuple[int, int, int]]] | None = None) -> None:
        self.policy = BatchPolicy(engine, ladder=ladder, pad_values=pad_values, crops=crops)
        self.max_batch = 8 if max_batch is None else int(max_batch)
        self.max_delay = (2.0 if max_delay_ms is None else float(max_delay_ms)) / 1000.0
        self.max_queue = 256 if max_queue is None else int(max_queue)
        self.workers = default_workers(engine.device) if workers is None else int(workers)
        for what, v, lo in (("max_batch", self.max_batch, 1), ("max_queue", self.max_queue, 1), ("workers", self.workers, 1)):
            if v < lo:
                raise DynashapeError(f"{what}={v}", f"an integer >= {lo}")
        if self.max_delay < 0 or not math.isfinite(self.max_delay):
            raise DynashapeError(f"max_delay_ms={max_delay_ms}", "a finite number of milliseconds >= 0")
        self.stats = BatcherStats()
        self._groups: dict[Any, collections.deque[_Waiting]] = {}
        self._caps: dict[Any, int] = {}
        self._waiting = 0
        self._running: set[asyncio.Task[None]] = set()
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="dynashape-batch")
        self._wake: asyncio.Event | None = None
        self._slots: asyncio.Semaphore | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._closing = False
        self._alone = 0

    # -- the request side ------------------------------------------------------------------------

    async def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """This request's outputs. Raises the engine's user errors (bad shape, dtype) at once, Overloaded when full."""
        if self._closing:
            self.stats.rejected += 1
            raise Overloaded("a request while the server shuts down", None, "retry on another replica")
        request = self.policy.prepare(inputs)
        if self._waiting >= self.max_queue:
            self.stats.rejected += 1
            raise Overloaded(f"a request while {self._waiting} are queued", f"at most {self.max_queue} queued (max_queue)",
                             "retry later, add replicas, or raise --max-queue")
        self._start()
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        key: Any = request.key
        if key is None or self.max_batch == 1:
            # NOTE: a unique key per request: it never shares a group, and groups flush oldest first.
            self._alone += 1
            key = ("alone", self._alone)
            self._caps[key] = 1
        elif key not in self._caps:
            self._caps[key] = max(1, min(self.max_batch, self.policy.cap(key)))
        waiting = _Waiting(request, loop.create_future(), loop.time())
        self._groups.setdefault(key, collections.deque()).append(waiting)
        self._waiting += 1
        self._wake.set()
        return await waiting.future

    # -- the dispatch side -----------------------------------------------------------------------

    def _start(self) -> None:
        if self._loop_task is None:
            self._wake = asyncio.Event()
            self._slots = asyncio.Semaphore(self.workers)
            self._loop_task = asyncio.get_running_loop().create_task(self._dispatch())

    async def _dispatch(self) -> None:
        assert self._slots is not None
        while True:
            await self._slots.acquire()
            batch = await self._next_batch()
            if batch is None:
                self._slots.release()
                return
            task = asyncio.get_running_loop().create_task(self._execute(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _next_batch(self) -> list[_Waiting] | None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            best, best_t0, next_deadline = None, math.inf, math.inf
            for key, queue in self._groups.items():
                t0 = queue[0].t0
                rows = sum(w.request.rows for w in queue)
                if self._closing or rows >= self._caps[key] or now >= t0 + self.max_delay:
                    if t0 < best_t0:
                        best, best_t0 = key, t0
                else:
                    next_deadline = min(next_deadline, t0 + self.max_delay)
            if best is not None:
                return self._take(best)
            if self._closing and not self._groups:
                return None
            self._wake.clear()
            timeout = None if next_deadline == math.inf else max(0.0, next_deadline - now)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    def _take(self, key: Key) -> list[_Waiting]:
        queue, cap = self._groups[key], self._caps[key]
        batch = [queue.popleft()]
        rows = batch[0].request.rows
        while queue and rows + queue[0].request.rows <= cap:
            rows += queue[0].request.rows
            batch.append(queue.popleft())
        if not queue:
            del self._groups[key]
            del self._caps[key]
        self._waiting -= len(batch)
        return batch

    async def _execute(self, batch: list[_Waiting]) -> None:
        assert self._slots is not None
        try:
            loop = asyncio.get_running_loop()
            try:
                results: list[Any] = await loop.run_in_executor(self._pool, run_isolated, self.policy,
                                                                [w.request for w in batch])
            except Exception as e:  # a bug or a backend crash: every request of the batch learns it
                results = [e] * len(batch)
            self.stats.batches += 1
            self.stats.requests += len(batch)
            self.stats.batch_sizes[sum(w.request.rows for w in batch)] += 1
            for w, r in zip(batch, results, strict=True):
                if w.future.done():  # the client went away
                    continue
                if isinstance(r, BaseException):
                    w.future.set_exception(r)
                else:
                    w.future.set_result(r)
        finally:
            self._slots.release()

    # -- shutdown --------------------------------------------------------------------------------

    async def close(self) -> None:
        """Refuse new requests (Overloaded), run every queued one without waiting for batch-mates, then return."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        if self._loop_task is not None:
            await self._loop_task
        if self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)
        self._pool.shutdown(wait=True)
