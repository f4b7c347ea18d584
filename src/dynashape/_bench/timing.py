"""trtexec-style timing: warm up for a time, then run until both an iteration count and a duration are met."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _progress
from .._data import DataArg, feed_shapes, load_data, make_inputs
from .._limits import check_number
from .._specs import format_shape


@dataclass(frozen=True)
class BenchResult:
    shapes: dict[str, tuple[int, ...]]
    profile: int
    latencies_ms: list[float]

    def stat(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q))

    @property
    def summary(self) -> dict[str, float]:
        a = np.asarray(self.latencies_ms)
        return {
            "min_ms": float(a.min()), "mean_ms": float(a.mean()), "median_ms": float(np.median(a)),
            "p90_ms": self.stat(90), "p99_ms": self.stat(99), "max_ms": float(a.max()),
            "throughput_qps": 1000.0 / float(a.mean()), "iterations": len(a),
        }

    def to_json(self) -> dict[str, Any]:
        return {"shapes": {n: list(s) for n, s in self.shapes.items()}, "profile": self.profile, **self.summary}

    def row(self) -> str:
        s = self.summary
        shp = ",".join(f"{n}:{format_shape(v)}" for n, v in self.shapes.items())
        return (f"{shp:<32} {self.profile:>7} {s['iterations']:>6} {s['min_ms']:>9.3f} {s['median_ms']:>9.3f} "
                f"{s['p90_ms']:>9.3f} {s['p99_ms']:>9.3f} {s['max_ms']:>9.3f} {s['throughput_qps']:>10.1f}")

    HEADER = (f"{'shapes':<32} {'profile':>7} {'iters':>6} {'min ms':>9} {'median':>9} {'p90':>9} {'p99':>9} "
              f"{'max ms':>9} {'qps':>10}")


def _time_calls(fn: Any, *, iterations: int, warmup_ms: float, duration_s: float) -> list[float]:
    end = time.perf_counter() + warmup_ms / 1000.0
    fn()
    while time.perf_counter() < end:
        fn()
    lat: list[float] = []
    stop = time.perf_counter() + duration_s
    while len(lat) < iterations or time.perf_counter() < stop:
        t = time.perf_counter()
        fn()
        lat.append((time.perf_counter() - t) * 1000.0)
    return lat


@_progress.honours_quiet
def bench(
    engine: Any,
    shapes: Mapping[str, Sequence[int]] | Sequence[Mapping[str, Sequence[int]]] | None = None,
    *,
    iterations: int | None = None,
    warmup_ms: float | None = None,
    duration_s: float | None = None,
    inputs: Mapping[str, Any] | None = None,
    data: DataArg | None = None,
    quiet: bool | None = None,
) -> list[BenchResult]:
    """Time ``engine.run`` per shape set, as trtexec does (defaults: 10 iterations, 200 ms warm-up, 3 s).

    ``shapes``: one dict or a list of dicts; None means each profile's opt shapes, fed with
    representative generated data (``dynashape._data``). ``inputs`` (one feed) or ``data`` (an
    ``.npz`` path, ``"file.py:function"``, or an iterable of feeds): the user's data instead, one
    timed set per feed. ``quiet``: no progress lines on stderr.
    """
    iterations = 10 if iterations is None else iterations
    warmup_ms = 200.0 if warmup_ms is None else warmup_ms
    duration_s = 3.0 if duration_s is None else duration_s
    # NOTE: NaN compares false with everything, so `x < 0` let NaN through; inf never ends the loop.
    check_number(iterations, "iterations", minimum=1, integer=True)
    check_number(warmup_ms, "warmup_ms")
    check_number(duration_s, "duration_s")
    feeds = load_data(inputs if inputs is not None else data, engine.inputs) if inputs is not None or data is not None else None  # type: ignore[arg-type]
    if feeds is not None:
        sets: list[dict[str, Sequence[int]]] = [dict(feed_shapes(f)) for f in feeds]
    elif shapes is None:
        sets = [{n: r.opt for n, r in p.items()} for p in engine.profiles]
    elif isinstance(shapes, Mapping):
        sets = [dict(shapes)]
    else:
        sets = [dict(s) for s in shapes]
    results = []
    for i, s in enumerate(sets):
        k = engine.select_profile(s)
        feed = feeds[i] if feeds is not None else make_inputs(engine.inputs, s, seed=i, hints=engine.manifest.input_hints)
        with _progress.stage("bench: " + ",".join(f"{n}:{'x'.join(map(str, v))}" for n, v in s.items()), k=i + 1, n=len(sets)):
            lat = _time_calls(lambda feed=feed: engine.run(feed), iterations=iterations, warmup_ms=warmup_ms, duration_s=duration_s)
        results.append(BenchResult({n: tuple(int(d) for d in v) for n, v in s.items()}, k, lat))
    return results


def runtime_overhead(engine: Any, shapes: Mapping[str, Sequence[int]], *, iterations: int = 3000) -> dict[str, float]:
    """Per-call time of ``engine.run`` and of the bare backend call on the same native inputs.

    The two calls alternate, one of each per iteration, and the overhead is the median of the
    per-iteration differences: drift in the machine's load then hits both sides alike (blocks of
    calls measured one after the other did not, on the shared CPUs here). The overhead covers the
    checks, profile selection and numpy <-> native conversions.
    """
    data = make_inputs(engine.inputs, shapes, hints=engine.manifest.input_hints)
    bare_call = engine.backend_call(data)
    for _ in range(50):  # warm-up
        engine.run(data)
        bare_call()
    full, bare, diff = [], [], []
    clock = time.perf_counter
    for _ in range(iterations):
        t0 = clock()
        engine.run(data)
        t1 = clock()
        bare_call()
        t2 = clock()
        full.append(t1 - t0)
        bare.append(t2 - t1)
        diff.append((t1 - t0) - (t2 - t1))
    us = 1e6
    return {"engine_us": float(np.median(full)) * us, "bare_us": float(np.median(bare)) * us, "overhead_us": float(np.median(diff)) * us}
