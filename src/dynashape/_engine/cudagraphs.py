"""CUDA graphs per exact input shapes, around any torch-native runner.

The first call at a new set of shapes runs normally and captures a graph; later calls at the same
shapes copy the inputs into the graph's buffers and replay it. The cache is bounded by a count and
by the memory the graphs hold, and evicts the least recently used graph; once it is full, a new
shape is captured only if it has been seen more often than the graph it would evict
(:class:`FrequencyAdmission`).

NOTE: AOTInductor's runner synchronizes inside a call, which the default capture mode forbids
("operation not permitted when stream is capturing"); "relaxed" mode captures it (measured on an
H200 here: ResNet-50 fp16 batch 1, 0.95 ms a plain call, 0.40 ms a replay, same outputs). Capture
uses a runner the backend provides for it (AOTInductor: a single-threaded container of the same
package, since an event recorded by the default container during capture breaks its later calls
with "invalid argument", seen on the H200 here). Every new
graph is replayed once and compared with the plain call before it is used; a graph that disagrees
is dropped and its shapes run without graphs from then on.

NOTE: a failure is never silent. A capture that raises, a graph that disagrees with the plain call
and a replay that raises are each logged once per shape with the reason and counted in
:meth:`CudaGraphRunner.stats` (``failures``); the shape then runs plain calls. With ``strict``
(``load(strict_graphs=True)`` or ``$DYNASHAPE_STRICT_GRAPHS=1``) each raises a ``BackendError``
instead, for benchmarks and tests that must not measure a silent fallback.

An engine built from a plan (``dynashape plan``) captures the plan's bucket ladder up front
(:meth:`CudaGraphRunner.capture`, largest shape first) and turns capture on demand off: a shape
off the ladder runs the plain call, never a capture in the request path. All graphs share one
memory pool (``torch.cuda.graph_pool_handle()``): a capture's intermediates are freed when it ends
and the next capture reuses them, so the pool holds the largest capture's workspace plus every
graph's inputs and outputs.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .._backend.base import Runner
from .._errors import BackendError

log = logging.getLogger("dynashape")


class BoundedLRU:
    """An LRU map bounded by a count and a byte total; ``None`` values (known-bad keys) cost nothing.

    >>> c = BoundedLRU(max_items=2)
    >>> for k in "abc": c.put(k, k, nbytes=1)
    >>> list(c.keys()), c.get("a")
    (['b', 'c'], None)
    """

    def __init__(self, *, max_items: int, max_bytes: int | None = None) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self.evictions = 0

    def __contains__(self, key: Any) -> bool:
        return key in self._items

    def keys(self) -> list[Any]:
        return list(self._items)

    def get(self, key: Any) -> Any:
        if key not in self._items:
            return None
        self._items.move_to_end(key)
        return self._items[key][0]

    @property
    def nbytes(self) -> int:
        return sum(n for _, n in self._items.values())

    def __len__(self) -> int:
        return sum(1 for v, _ in self._items.values() if v is not None)

    def put(self, key: Any, value: Any, *, nbytes: int = 0) -> None:
        self._items[key] = (value, nbytes if value is not None else 0)
        self._items.move_to_end(key)
        while len(self) > self.max_items or (self.max_bytes is not None and self.nbytes > self.max_bytes and len(self) > 1):
            victim = next(k for k, (v, _) in self._items.items() if v is not None)
            del self._items[victim]
            self.evictions += 1

    def peek(self, key: Any) -> Any:
        """The value without touching the order."""
        item = self._items.get(key)
        return None if item is None else item[0]

    def lru_key(self) -> Any:
        """The key that the next eviction would remove (None when nothing is cached)."""
        return next((k for k, (v, _) in self._items.items() if v is not None), None)

    def clear(self) -> None:
        self._items.clear()


class FrequencyAdmission:
    """Whether a new shape earns a graph: always while the cache has room; once it is full, only if
    the shape has been seen at least twice as often as the graph it would evict.

    NOTE: measured with BERT-base over the SQuAD v2 length stream (500 requests, 204 distinct
    lengths) and 16 graphs. Capturing every new shape and evicting by LRU alone made the mean
    request 8.9 ms on the H200, slower than no graphs at all (1.8 ms): almost every request paid a
    capture (~6.5 ms). TinyLFU's rule (admit when seen more often than the victim) brought it to
    1.89 ms on the H100, still above no graphs (1.65 ms): with near-uniform counts, shapes kept
    displacing each other (67 captures in the second pass). Asking for twice the victim's count is
    a hysteresis that stops that churn: replaying the stream through this class with those costs
    (tests/engine/test_graph_cache_policy.py) gives 1.47 ms in the second pass, and the H100
    measured 1.67 ms with no capture in the second pass (39 captures in the first). With 16 graphs
    for 204 lengths few requests can replay; a larger ``graph_cache_size`` is what pays on such a
    stream (512 graphs: 0.75 ms).

    >>> cache, admit = BoundedLRU(max_items=1), FrequencyAdmission(max_keys=8)
    >>> admit.admit("a", cache)  # room: capture
    True
    >>> cache.put("a", object())
    >>> admit.admit("b", cache), admit.admit("b", cache)  # "b" must be seen twice as often as "a"
    (False, True)
    """

    def __init__(self, *, max_keys: int) -> None:
        self._counts = BoundedLRU(max_items=max_keys)

    def admit(self, key: Any, cache: BoundedLRU) -> bool:
        n = (self._counts.peek(key) or 0) + 1
        self._counts.put(key, n)
        if len(cache) < cache.max_items:
            return True
        victim = cache.lru_key()
        return victim is None or n >= 2 * (self._counts.peek(victim) or 0)

    def seen(self, key: Any) -> None:
        """Count a sighting of a key that is already cached (a replay)."""
        self._counts.put(key, (self._counts.peek(key) or 0) + 1)


@dataclass
class _Graph:
    graph: Any
    inputs: list[Any]
    outputs: list[Any]
    nbytes: int


class CudaGraphRunner:
    """Wraps a runner; ``run`` returns graph-owned output buffers, so callers copy before the next call."""

    def __init__(self, runner: Runner, *, max_graphs: int = 16, max_bytes: int | None = None,
                 capture_on_demand: bool = True, strict: bool = False,
                 capture_context: Callable[[], contextlib.AbstractContextManager[Any]] | None = None) -> None:
        import torch

        self._torch = torch
        self.capture_on_demand = capture_on_demand
        self.strict = strict
        # Entered around each capture (the runtime's capture lock and TF32 policy); it yields True
        # when it changed the math switches, and the check's reference is then computed under it.
        self._capture_context = capture_context or contextlib.nullcontext
        self.failures = {"capture": 0, "replay": 0, "mismatch": 0}
        # NOTE: the shared pool is taken from the first graph that captures (``graph.pool()``), not
        # from ``graph_pool_handle()`` up front: on the H200 (torch 2.11) capturing a planned ladder
        # into a fresh handle failed at every shape with CUDACachingAllocator's
        # ``use_count > 0`` assert. A pool whose graphs were all evicted is given up the same way
        # (see _capture): the next capture starts a private pool again.
        self._pool: Any = None
        self._pools: set[tuple[int, ...]] = set()  # every pool a graph was captured into (a replaced pool too)
        self._delta_bytes = 0  # growth of reserved memory around the captures: the fallback measure
        self.runner = runner
        # Backends whose plain runner cannot be captured offer a separate one for capture.
        self.capture_with = runner.capture_runner() if hasattr(runner, "capture_runner") else runner
        self._graphs = BoundedLRU(max_items=max_graphs, max_bytes=max_bytes)
        self._admission = FrequencyAdmission(max_keys=max(4096, 64 * max_graphs))  # counts are cheap; forgetting them restarts the churn
        self.skipped = 0  # new shapes run plainly because the admission rule said no
        self.lock = threading.Lock()  # held by the caller across copy-in, replay and copy-out
        self.captures = 0
        self.replays = 0

    @property
    def nbytes(self) -> int:
        return self._graphs.nbytes

    def reserve(self, max_graphs: int) -> None:
        """Room for at least ``max_graphs`` graphs (a plan's ladder is never evicted by its own size)."""
        self._graphs.max_items = max(self._graphs.max_items, max_graphs)

    def __len__(self) -> int:
        return len(self._graphs)

    def run(self, profile: int, inputs: Sequence[Any], *, plain: Callable[[], list[Any]] | None = None) -> tuple[list[Any], bool]:
        """-> (outputs, owned_by_graph). Call with ``self.lock`` held. ``plain``: the plain call on
        ``inputs`` (default: the runner's), used for shapes without a graph."""
        plain = plain or (lambda: self.runner.run(profile, inputs))
        key = (profile, *((tuple(x.shape), x.dtype) for x in inputs))
        if key in self._graphs:
            entry = self._graphs.get(key)
            if entry is None:  # this shape failed its capture check: plain calls only
                return plain(), False
            self._admission.seen(key)
            try:
                for dst, src in zip(entry.inputs, inputs, strict=True):
                    dst.copy_(src, non_blocking=True)
                entry.graph.replay()
            except Exception as e:
                self._failed("replay", inputs, e)  # raises when strict
                self._graphs.put(key, None)  # plain calls only from now on: logged once per shape
                return plain(), False
            self.replays += 1
            return entry.outputs, True
        outs = plain()
        if not self.capture_on_demand:
            self.skipped += 1
            return outs, False
        if not self._admission.admit(key, self._graphs):
            self.skipped += 1
            return outs, False
        entry = self._capture(profile, inputs, outs)
        self._graphs.put(key, entry, nbytes=entry.nbytes if entry else 0)
        return outs, False

    def capture(self, profile: int, inputs: Sequence[Any]) -> bool:
        """Capture a graph for these inputs' shapes now (warm-up); True when it is cached and checked."""
        key = (profile, *((tuple(x.shape), x.dtype) for x in inputs))
        with self.lock:
            if key in self._graphs:
                return self._graphs.peek(key) is not None
            reference = self.runner.run(profile, inputs)
            entry = self._capture(profile, inputs, reference)
            self._graphs.put(key, entry, nbytes=entry.nbytes if entry else 0)
            return entry is not None

    @property
    def pool_bytes(self) -> int:
        """Bytes the caching allocator holds in the graphs' pools.

        NOTE: read from the allocator's segments that belong to the pools (``memory_snapshot``'s
        ``segment_pool_id``), not from the growth of reserved memory around each capture: that
        growth is 0 where earlier runs at the same shapes had already reserved the memory (the
        build's validation, before the ladder is captured), and it counts the eager warm-up run's
        activations, which live in the ordinary pool. The growth is the fallback where the
        snapshot has no pool ids.
        """
        if not self._pools:
            return 0
        try:
            total, seen = 0, False
            for seg in self._torch.cuda.memory_snapshot():
                pid = seg.get("segment_pool_id")
                if pid is None:
                    continue
                seen = True
                if tuple(pid) in self._pools:
                    total += int(seg.get("total_size", 0))
            return total if seen else self._delta_bytes
        except Exception:
            return self._delta_bytes

    def stats(self) -> dict[str, Any]:
        return {"graphs": len(self._graphs), "captures": self.captures, "replays": self.replays, "skipped": self.skipped,
                "graph_bytes": self.nbytes, "pool_bytes": self.pool_bytes, "evictions": self._graphs.evictions,
                "capture_on_demand": self.capture_on_demand, "failures": dict(self.failures), "strict": self.strict}

    def _failed(self, kind: str, inputs: Sequence[Any], reason: Any) -> None:
        """Count and log a graph failure (the caller marks the shape plain-only); raise when strict."""
        self.failures[kind] += 1
        shapes = [tuple(x.shape) for x in inputs]
        what = {"capture": "CUDA graph capture failed", "replay": "CUDA graph replay failed",
                "mismatch": "CUDA graph replay disagrees with the plain call"}[kind]
        detail = " ".join(str(reason).split())[:400]
        if self.strict:
            raise BackendError(f"{what} at input shapes {shapes}: {detail}",
                               "graphs that capture and replay like the plain call (strict_graphs is on)",
                               "load with strict_graphs=False to run these shapes without graphs, or cuda_graphs=False")
        log.warning("%s at input shapes %s (%s); running these shapes without graphs (strict_graphs=True makes this an error)",
                    what, shapes, detail)

    def _capture(self, profile: int, inputs: Sequence[Any], reference: Sequence[Any]) -> _Graph | None:
        torch = self._torch
        static_in = [x.clone() for x in inputs]
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        reserved = torch.cuda.memory_reserved()
        graph = torch.cuda.CUDAGraph()
        try:
            with self._capture_context() as switched:
                if switched:
                    reference = self.runner.run(profile, static_in)
                self.capture_with.run(profile, static_in)  # warm the capture container outside capture
                torch.cuda.synchronize()
                try:
                    with torch.cuda.graph(graph, pool=self._pool, capture_error_mode="relaxed"):
                        static_out = self.capture_with.run(profile, static_in)
                except RuntimeError as e:
                    if self._pool is None or "CUDACachingAllocator" not in str(e):
                        raise
                    # The shared pool is gone (its graphs were evicted) or refused: start a new one.
                    log.info("CUDA graph pool not reusable (%s); capturing into a new pool", " ".join(str(e).split())[:200])
                    self._pool = None
                    torch.cuda.synchronize()
                    graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(graph, capture_error_mode="relaxed"):
                        static_out = self.capture_with.run(profile, static_in)
                graph.replay()
                torch.cuda.synchronize()
                if self._pool is None:
                    self._pool = graph.pool()
                self._pools.add(tuple(graph.pool()))
        except Exception as e:
            self._failed("capture", inputs, e)
            return None
        ok = all(torch.allclose(a.float(), b.float(), rtol=1e-3, atol=1e-4, equal_nan=True) for a, b in zip(static_out, reference, strict=True))
        if not ok:
            diffs = [(a.float() - b.float()).abs().max().item() if a.numel() else 0.0 for a, b in zip(static_out, reference, strict=True)]
            self._failed("mismatch", inputs, f"largest absolute difference per output {diffs}")
            return None
        self.captures += 1
        self._delta_bytes += max(0, torch.cuda.memory_reserved() - reserved)
        return _Graph(graph, static_in, list(static_out), max(0, torch.cuda.memory_allocated() - before))

    def clear(self) -> None:
        self._graphs.clear()
