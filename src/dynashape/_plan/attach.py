"""Building from a plan: the plan's profiles, then the padding check, then the plan in the manifest."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from .._errors import DynashapeError
from .._profiles import Profile
from .padding import check_padding
from .record import Plan

log = logging.getLogger("dynashape")

# NOTE: padding changes the length of reductions (attention's softmax sums, matmuls), so the
# outputs at the real positions agree to rounding, not bit for bit: fp32 1e-4, fp16/bf16 1e-2.
TOLERANCE = {"fp32": (1e-4, 1e-4), "fp16": (1e-2, 1e-2), "bf16": (2e-2, 2e-2)}


def plan_profiles(plan: Plan | str | os.PathLike[str], profiles: Sequence[Profile], dims: Any) -> tuple[Plan, list[Profile]]:
    """The plan (loaded when a path) and its profiles; refuses a second source of profiles."""
    obj = plan if isinstance(plan, Plan) else Plan.load(plan)
    if profiles or dims is not None:
        raise DynashapeError("a plan and profiles (or --dims) together", "one source of profiles",
                             "drop --minShapes/--optShapes/--maxShapes/--dims: the plan holds the profiles")
    return obj, list(obj.profiles)


def attach_plan(engine: Any, plan: Plan | None) -> Any:
    """Check padding on the built engine, store the plan with the verdict, and arm the ladder."""
    if plan is None:
        return engine
    padding = None
    if plan.ladder is not None:
        atol, rtol = TOLERANCE.get(engine.precision, (1e-4, 1e-4))

        def run(feed: Mapping[str, Any]) -> list[Any]:
            return list(engine.run(dict(feed)).values())

        low = min((r.min[a] for p in engine.profiles for s in engine.inputs if s.name in p
                   for a, d in enumerate(s.shape) if d == plan.ladder.dim for r in (p[s.name],)), default=1)
        padding = check_padding(run, engine.inputs, [o.name for o in engine.outputs], plan.ladder, low=low, atol=atol, rtol=rtol)
        if padding.safe:
            log.info("plan: padding along '%s' is safe: %s", plan.ladder.dim, padding.reason)
        else:
            log.warning("plan: padding along '%s' refused: %s; requests run at their exact shapes (graphs only at the buckets)",
                        plan.ladder.dim, padding.reason)
    engine._set_plan(dataclasses.replace(plan, padding=padding))
    measured: dict[str, Any] = {}
    if engine.device.startswith("cuda") and plan.ladder is not None:
        stats = engine.warmup()
        measured = {"graphs": stats["graphs"], "graph_pool_mb": round(stats["pool_bytes"] / 2**20, 3),
                    "graph_outputs_mb": round(stats["graph_bytes"] / 2**20, 3)}
    # predicted against measured: the new engine timed at the plan's shapes (seconds; see verify)
    from .verify import measure

    try:
        timing = measure(engine, engine.manifest.plan)
    except Exception as e:  # the report is information: a failure to time must not fail the build
        log.warning("plan: could not time the new engine against the prediction: %s", " ".join(str(e).split())[:200])
        timing = None
    if timing is not None:
        measured["latency"] = timing
        if "prediction_error" in timing:
            log.info("plan: predicted %.3g ms a request, measured %.3g ms", plan.predictions["latency_per_request"].value,
                     timing["latency_per_request_ms"])
    if measured:
        engine.manifest.plan = dataclasses.replace(engine.manifest.plan, details={**plan.details, "measured_at_build": measured})
    return engine
