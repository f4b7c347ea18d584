"""Predicted against measured: the built engine timed at the plan's shapes, right after the build.

The planner predicts with a cost model calibrated on the *source* model (eager, with CUDA graphs on
CUDA), because the engine does not exist yet when the plan is made. The engine that the plan builds
is usually faster than eager (fused kernels), so the prediction is an upper bound whose error the
user must see: measured on an H200 (BENCHMARKS.md), GPT-2 fp16 at batch 1 was predicted at 1.02 ms a
request and measured at 0.77 ms; in batches of 8, 4.55 against 2.53 ms. This module times the new
engine at the ladder's shapes (graph replays) or, without a ladder, at a few workload values (plain
calls), and reports each shape's predicted and measured cost and the mean latency per request over
the workload, measured, beside the prediction.

NOTE (bounded): at most ``MAX_SHAPES`` shapes (spread over the ladder), ``CALLS`` timed calls each
after ``WARM`` untimed ones, and no new shape is started after ``MAX_SECONDS``: a build pays seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .cost import CostModel
from .padding import make_real_inputs, shape_for
from .record import Plan

log = logging.getLogger("dynashape")

MAX_SHAPES = 16
CALLS = 7
WARM = 3
MAX_SECONDS = 20.0


def _spread(items: Sequence[Any], k: int) -> list[Any]:
    """``k`` items spread evenly over ``items`` (both ends kept)."""
    if len(items) <= k:
        return list(items)
    idx = np.unique(np.round(np.linspace(0, len(items) - 1, k)).astype(int))
    return [items[i] for i in idx]


def _base_dims(engine: Any, plan: Plan) -> dict[str, int]:
    """Values for every named dim at the first profile's opt (the dims the workload does not vary)."""
    out: dict[str, int] = {}
    prof = plan.profiles[0] if plan.profiles else engine.profiles[0]
    for spec in engine.inputs:
        if spec.name not in dict(prof.items()):
            continue
        opt = prof[spec.name].opt
        for axis, d in enumerate(spec.shape):
            if isinstance(d, str):
                out.setdefault(d, int(opt[axis]))
    return out


def _time(engine: Any, dims: dict[str, int], sync: Callable[[], None]) -> float:
    feed = make_real_inputs(engine.inputs, {s.name: shape_for(s, dims) for s in engine.inputs}, hints=engine.manifest.input_hints)
    for _ in range(WARM):
        engine.run(feed)
    sync()
    times = []
    for _ in range(CALLS):
        t = time.perf_counter()
        engine.run(feed)
        sync()
        times.append((time.perf_counter() - t) * 1000.0)
    return float(np.median(times))


def measure(engine: Any, plan: Plan) -> dict[str, Any] | None:
    """Time ``engine`` at the plan's shapes; None when the plan holds no cost model to compare with."""
    details = plan.details
    if "cost_model" not in details or "workload" not in details:
        return None
    cost = CostModel.from_json(details["cost_model"])
    work = details["workload"]
    ldim = work.get("ladder_dim")
    values = np.asarray(work.get("values", []), dtype=np.int64)
    weights = np.asarray(work.get("weights", []), dtype=np.float64)
    cuda = str(engine.device).startswith("cuda")
    sync: Callable[[], None] = lambda: None  # noqa: E731
    if cuda:
        import torch

        sync = torch.cuda.synchronize
    base = _base_dims(engine, plan)
    graphs = cuda and plan.ladder is not None and engine.graph_stats().get("graphs", 0) > 0
    if plan.ladder is not None:
        shapes = [dict(s) for s in plan.ladder.shapes]
        kind = "graph replay" if graphs else "plain call"
    elif ldim is not None and values.size:
        # weighted quantiles of the workload along the planned dim
        cdf = np.cumsum(weights) / max(float(weights.sum()), 1e-12)
        picks = sorted({int(values[min(int(np.searchsorted(cdf, q)), len(values) - 1)]) for q in (0.0, 0.25, 0.5, 0.75, 0.95, 1.0)})
        shapes = [{**base, ldim: v} for v in picks]
        kind = "plain call"
    else:
        return None
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    for dims in _spread(shapes, MAX_SHAPES):
        if time.perf_counter() - start > MAX_SECONDS:
            break
        full = {**base, **dims}
        try:
            ms = _time(engine, full, sync)
        except Exception as e:  # a shape the engine refuses is reported, not fatal
            log.warning("plan check: could not time %s: %s", full, " ".join(str(e).split())[:200])
            continue
        elements = float(np.prod([float(full[d]) for d in work.get("dims", list(dims)) if d in full]))
        predicted = float((cost.graph_cost if graphs else cost.plain_cost)(np.array([elements]))[0])
        rows.append({"shape": {d: int(v) for d, v in dims.items()}, "elements": elements, "predicted": round(predicted, 6),
                     "measured_ms": round(ms, 4)})
    if not rows:
        return None
    out: dict[str, Any] = {"kind": kind, "unit": cost.unit, "shapes": rows}
    ratios = [r["measured_ms"] / r["predicted"] for r in rows if r["predicted"] > 0]
    if ratios:
        out["measured_over_predicted"] = round(float(np.median(ratios)), 4)
    # the mean over the workload, where every request's cost can be read off the measured shapes:
    # each value runs at its bucket (or itself), priced by interpolating the measured times by elements
    groups = details.get("ladder", {}).get("groups")
    if ldim is not None and values.size and (plan.ladder is None or (groups is not None and len(groups) == 1)):
        xs = np.array([r["elements"] for r in rows])
        ys = np.array([r["measured_ms"] for r in rows])
        order = np.argsort(xs)
        xs, ys = xs[order], ys[order]
        other = float(np.prod([float(v) for d, v in {**base, **(groups[0] if groups else {})}.items()
                               if d != ldim and d in work.get("dims", [])]))
        run_at = values.astype(np.float64)
        if plan.ladder is not None:
            buckets = np.asarray(plan.ladder.buckets, dtype=np.float64)
            idx = np.searchsorted(buckets, run_at)
            run_at = np.where(idx < len(buckets), buckets[np.minimum(idx, len(buckets) - 1)], run_at)
        per_value = np.interp(run_at * other, xs, ys)
        out["latency_per_request_ms"] = round(float((weights * per_value).sum() / max(float(weights.sum()), 1e-12)), 4)
        pred = plan.predictions.get("latency_per_request")
        if pred is not None and pred.unit == "ms" and out["latency_per_request_ms"] > 0:
            out["prediction_error"] = round(pred.value / out["latency_per_request_ms"] - 1.0, 4)
    return out
