"""The cost model: latency of one call as a function of its size, with and without a CUDA graph.

A call's size is its number of *elements*: the product of its dynamic dims (tokens = batch x seq
for a transformer). Latency is piecewise-linear in elements between measured points (linear
beyond them, non-decreasing), one curve for plain calls and one for graph replays.

:func:`calibrate` measures the curves on this machine by timing the model itself at a few sizes
(a few seconds; cached per model, device, precision and sizes under the user cache dir).
:func:`proxy_model` is the analytic stand-in when calibration is not allowed; its numbers are in
proxy units, not milliseconds, and say so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._dtypes import module_to
from .._io import private_cache_dir, write_atomic

log = logging.getLogger("dynashape")

# NOTE: the proxy's two constants. A plain CUDA call pays a fixed launch overhead (1 unit); a
# graph replay a quarter of it: the GPT-2 stream on an H200 ran 1.86 ms a request without
# graphs and 0.50 ms replaying graphs, mostly launch overhead at ~100 tokens. Work grows by one
# unit per 4096 elements, where a small transformer stops being launch-bound. On the CPU there
# are no graphs, and the call overhead is small beside the work (0.05 units).
PROXY_ELEMENTS_PER_UNIT = 4096.0
PROXY_GRAPH_OVERHEAD = 0.25
PROXY_CPU_OVERHEAD = 0.05


@dataclass(frozen=True)
class CostModel:
    """Latency curves in ``unit`` ("ms" when calibrated, "proxy units" otherwise)."""

    elements: tuple[float, ...]  # knots, ascending
    plain: tuple[float, ...]  # latency of a plain call at each knot
    graph: tuple[float, ...] | None  # latency of a graph replay at each knot (None: no CUDA graphs)
    unit: str
    derivation: str
    graph_bytes_per_element: float = 0.0  # activation memory of a capture, per element of the largest shape
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def calibrated(self) -> bool:
        return self.unit == "ms"

    def _curve(self, ys: Sequence[float], e: np.ndarray) -> np.ndarray:
        x = np.asarray(self.elements, dtype=np.float64)
        y = np.maximum.accumulate(np.asarray(ys, dtype=np.float64))
        e = np.asarray(e, dtype=np.float64)
        out = np.interp(e, x, y)
        if len(x) >= 2:
            hi = (y[-1] - y[-2]) / max(x[-1] - x[-2], 1e-12)
            lo = (y[1] - y[0]) / max(x[1] - x[0], 1e-12)
            out = np.where(e > x[-1], y[-1] + max(hi, 0.0) * (e - x[-1]), out)
            out = np.where(e < x[0], np.maximum(y[0] - max(lo, 0.0) * (x[0] - e), 0.0), out)
        return out

    def plain_cost(self, elements: np.ndarray) -> np.ndarray:
        return self._curve(self.plain, elements)

    def graph_cost(self, elements: np.ndarray) -> np.ndarray:
        return self._curve(self.graph if self.graph is not None else self.plain, elements)

    def to_json(self) -> dict[str, Any]:
        return {"elements": list(self.elements), "plain": list(self.plain), "graph": None if self.graph is None else list(self.graph),
                "unit": self.unit, "derivation": self.derivation, "graph_bytes_per_element": self.graph_bytes_per_element,
                "extras": self.extras}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CostModel:
        return cls(tuple(d["elements"]), tuple(d["plain"]), None if d["graph"] is None else tuple(d["graph"]), d["unit"],
                   d["derivation"], float(d.get("graph_bytes_per_element", 0.0)), dict(d.get("extras", {})))


def proxy_model(*, cuda: bool) -> CostModel:
    e = (0.0, PROXY_ELEMENTS_PER_UNIT)
    if cuda:
        return CostModel(e, (1.0, 2.0), (PROXY_GRAPH_OVERHEAD, 1.0 + PROXY_GRAPH_OVERHEAD), "proxy units",
                         "proxy (no calibration): a plain call costs 1 unit + 1 unit per 4096 elements, a graph replay 0.25 "
                         "units + the same work (ratio from the issue's GPT-2 H200 stream: 0.50 ms replay vs 1.86 ms plain)")
    return CostModel(e, (PROXY_CPU_OVERHEAD, 1.0 + PROXY_CPU_OVERHEAD), None, "proxy units",
                     "proxy (no calibration): 0.05 units a call + 1 unit per 4096 elements; no CUDA graphs on the CPU")


def _cache_path(key: str) -> str:
    return os.path.join(private_cache_dir("calibration"), hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")


def calibration_sizes(values: np.ndarray, *, points: int = 6) -> list[int]:
    """Up to ``points`` values of the planned dim, geometrically spaced over the workload's range."""
    lo, hi = int(values.min()), int(values.max())
    if lo == hi:
        return [lo]
    geo = np.unique(np.round(np.geomspace(max(lo, 1), hi, points)).astype(np.int64))
    return sorted({int(np.clip(g, lo, hi)) for g in geo} | {lo, hi})


Timer = Callable[[dict[str, tuple[int, ...]]], tuple[float, float | None, float, float]]


#: bumped whenever what the timer measures changes
CALIBRATION_VERSION = 2


def calibrate(key: str, shapes: Sequence[dict[str, tuple[int, ...]]], elements: Sequence[int], timer: Timer, *,
              device: str, use_cache: bool = True) -> CostModel:
    """Time the model at ``shapes`` (one per size in ``elements``) with ``timer`` and fit the curves.

    ``timer(shapes) -> (plain ms, graph ms or None, graph capture bytes, output bytes)``. ``key`` names the
    model, device and precision; a cached result for the same key and sizes is reused.
    """
    # the format's version is part of the key: a calibration measured by an older timer (fp16 output
    # bytes, before 2026-11-30) is not reused
    full_key = json.dumps([CALIBRATION_VERSION, key, device, list(map(int, elements))])
    path = _cache_path(full_key)
    if use_cache and os.path.isfile(path):
        try:
            with open(path) as f:
                model = CostModel.from_json(json.load(f))
            log.info("calibration: reused %s", path)
            return CostModel(model.elements, model.plain, model.graph, model.unit, model.derivation, model.graph_bytes_per_element,
                             {**model.extras, "cache": path, "cached": True})
        except (OSError, KeyError, TypeError, ValueError, json.JSONDecodeError):
            pass
    t0 = time.perf_counter()
    plain, graph, mem, outb = [], [], [], []
    for s in shapes:
        p, g, m, o = timer(s)
        plain.append(p)
        graph.append(g)
        mem.append(m)
        outb.append(o)
    has_graph = all(g is not None for g in graph)
    biggest = int(np.argmax(elements))
    model = CostModel(
        tuple(float(e) for e in elements), tuple(plain), tuple(float(g) for g in graph if g is not None) if has_graph else None, "ms",
        f"calibrated on {device}: median latency at {len(elements)} sizes ({', '.join(str(int(e)) for e in elements)} elements), "
        "piecewise-linear between them" + ("; graph replays timed the same way" if has_graph else ""),
        graph_bytes_per_element=float(mem[biggest]) / max(float(elements[biggest]), 1.0),
        extras={"seconds": round(time.perf_counter() - t0, 2), "cache": path, "cached": False,
                "output_bytes_per_element": float(outb[biggest]) / max(float(elements[biggest]), 1.0)},
    )
    if use_cache:
        try:
            write_atomic(path, json.dumps(model.to_json()), what="calibration cache")
        except OSError as e:  # a read-only home is no reason to fail the plan
            log.warning("calibration cache not written (%s)", e)
    return model


def _median_ms(fn: Callable[[], Any], sync: Callable[[], None], *, budget_s: float = 0.4, max_iters: int = 50) -> float:
    fn()
    sync()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 3 or (len(times) < max_iters and time.perf_counter() - start < budget_s):
        t = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t) * 1000.0)
    return float(np.median(times))


def engine_timer(engine: Any, specs: Sequence[Any]) -> Timer:
    """Plain calls of a built engine; on CUDA also its graph replays and their memory."""
    from .padding import make_real_inputs

    cuda = str(engine.device).startswith("cuda")
    plain = engine.with_options(cuda_graphs=False)
    # room for every calibration size: an eviction would make the memory delta below wrong
    graphed = engine.with_options(cuda_graphs=True, capture_on_demand=True, graph_cache_size=64) if cuda else None
    sync: Callable[[], None] = lambda: None  # noqa: E731
    if cuda:
        import torch

        sync = torch.cuda.synchronize

    def timer(shapes: dict[str, tuple[int, ...]]) -> tuple[float, float | None, float, float]:
        arrays = make_real_inputs(engine.inputs, shapes, hints=engine.manifest.input_hints)
        feed: dict[str, Any] = dict(arrays)
        if cuda:  # on the device already, as a server's requests are
            import torch

            feed = {n: torch.from_numpy(np.ascontiguousarray(v)).cuda() for n, v in arrays.items()}
        outs = plain.run(feed)
        out_bytes = float(sum(o.nbytes for o in outs.values()))  # numpy arrays and torch tensors alike
        p = _median_ms(lambda: plain.run(feed), sync)
        if graphed is None:
            return p, None, 0.0, out_bytes
        before = graphed.graph_stats()["graph_bytes"]
        for _ in range(3):  # the cache's admission rule captures a shape once it has been seen
            graphed.run(feed)
        sync()
        stats = graphed.graph_stats()
        g = _median_ms(lambda: graphed.run(feed), sync) if stats["graphs"] else None
        # the capture's own memory: what the new graph holds beyond its outputs
        mem = max(float(stats["graph_bytes"] - before) - out_bytes, 0.0) if stats["graphs"] else 0.0
        return p, g, mem, out_bytes

    return timer


def onnxruntime_timer(model_bytes: bytes, specs: Sequence[Any]) -> Timer:
    """Plain calls in an ONNX Runtime CPU session (no CUDA graphs)."""
    import onnxruntime as ort

    from .padding import make_real_inputs

    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])

    def timer(shapes: dict[str, tuple[int, ...]]) -> tuple[float, float | None, float, float]:
        feed = make_real_inputs(specs, shapes)
        out_bytes = float(sum(o.nbytes for o in sess.run(None, feed)))
        return _median_ms(lambda: sess.run(None, feed), lambda: None), None, 0.0, out_bytes

    return timer


def torch_timer(module: Any, specs: Sequence[Any], device: str, precision: str) -> Timer:
    """Eager calls of the module; on CUDA also graph replays and the capture's memory (one pool)."""
    import torch

    from .padding import make_real_inputs

    dt = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
    module = module.to(device).eval()
    if dt is not None:
        module = module_to(module, dt)
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def timer(shapes: dict[str, tuple[int, ...]]) -> tuple[float, float | None, float, float]:
        feed = make_real_inputs(specs, shapes)
        args = [torch.from_numpy(feed[s.name]).to(device) for s in specs]
        if dt is not None:
            args = [a.to(dt) if a.is_floating_point() else a for a in args]
        with torch.no_grad():
            outs = module(*args)
            outs = outs if isinstance(outs, (tuple, list)) else [outs]
            # NOTE: an engine keeps the model's output dtypes (float32) and casts its fp16/bf16 results
            # back in the last kernel, so the buffers a graph holds are float32 even though this module
            # computes in ``dt``: counting fp16 bytes predicted half of GPT-2's graph memory on the H200
            # (929 MiB predicted; the 4 graphs' fp32 logits alone took 1.95 GB)
            out_bytes = float(sum(o.numel() * (4 if dt is not None and o.is_floating_point() else o.element_size())
                                  for o in outs if hasattr(o, "numel")))
            plain = _median_ms(lambda: module(*args), sync)
            if not cuda:
                return plain, None, 0.0, out_bytes
            graph = torch.cuda.CUDAGraph()
            module(*args)
            torch.cuda.synchronize()
            before = torch.cuda.memory_allocated()
            with torch.cuda.graph(graph, capture_error_mode="relaxed"):
                module(*args)
            torch.cuda.synchronize()
            mem = float(max(torch.cuda.memory_allocated() - before, 0))
            g = _median_ms(graph.replay, sync)
            del graph
            return plain, g, mem, out_bytes

    return timer
