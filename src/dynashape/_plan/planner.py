"""``dynashape.plan``: profiles and a CUDA-graph bucket ladder chosen from a workload.

Steps: read the workload (optionally through a simple batcher: a batch is padded to its longest
member, so the plan is made on what the engine really sees), fit or assume a cost model
(:mod:`.cost`), choose the bucket ladder and the profile boundaries by exact dynamic programming
(:mod:`.dp`), add static profiles for the hottest shapes, and predict latency, padding waste,
graph memory and build time, each with how it was derived.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._errors import DynashapeError
from .._profiles import Profile, ShapeRange
from .._specs import TensorSpec, dtype_name
from . import dp
from .cost import (
    CostModel,
    calibrate,
    calibration_sizes,
    engine_timer,
    onnxruntime_timer,
    proxy_model,
    torch_timer,
)
from .padding import shape_for
from .record import Ladder, Plan, Prediction
from .workload import Workload, batch_stream, from_dim_values, merge_equal_dims, read_shape_log

log = logging.getLogger("dynashape")

# NOTE: build seconds per profile, from shared/GPU.md (H200): BERT-base dynamic 20 s, ResNet-50
# dynamic 64 s, static 17 s; 30 s is the planner's round figure for a dynamic AOTInductor profile.
# ONNX Runtime optimizes a graph in well under a second per session.
BUILD_SECONDS = {"inductor": (30.0, 17.0), "onnxruntime": (1.0, 1.0), "tensorrt": (60.0, 30.0)}
# NOTE: a static profile's kernels beat the dynamic ones by 5% at ResNet-50 batch 8 on the H200
# (1.42 vs 1.50 ms, shared/GPU.md), but BERT-base at 8x128 ran slower static (2.23 vs 1.65 ms):
# the gain is a proxy, and a shape gets a static profile only when it carries a large share.
STATIC_GAIN = 0.05
# NOTE: a profile's kernels lose efficiency away from opt only where the backend tunes for opt
# (TensorRT tactics); AOTInductor's symbolic kernels and ONNX Runtime do not.
OPT_PENALTY = {"tensorrt": 0.05}
GROUP_MIN_SHARE = 0.01  # combinations of the other dims rarer than this get no graphs


def _module_specs(module: Any, example_inputs: Any, dynamic_axes: Mapping[str, Mapping[int, str]] | None) -> list[TensorSpec]:
    if example_inputs is None:
        raise DynashapeError("a torch module without example_inputs", "example inputs (a dict name -> tensor)",
                             "pass example_inputs=... (their dtypes define the inputs), or plan from the ONNX file")
    items = example_inputs.items() if isinstance(example_inputs, Mapping) else enumerate(example_inputs)
    specs = []
    for n, t in items:
        name = str(n)
        axes = (dynamic_axes or {}).get(name, {})
        specs.append(TensorSpec(name, dtype_name(t.dtype), tuple(axes.get(a, int(d)) for a, d in enumerate(t.shape))))
    return specs


def _resolve_model(model: Any, inputs: Sequence[TensorSpec] | None, example_inputs: Any,
                   dynamic_axes: Mapping[str, Mapping[int, str]] | None) -> tuple[list[TensorSpec] | None, Any, str]:
    """-> (input specs, a handle to time the model with, an identity for the calibration cache)."""
    if model is None:
        return (list(inputs) if inputs is not None else None), None, ""
    if type(model).__name__ == "Engine" or (isinstance(model, (str, os.PathLike)) and str(model).endswith(".engine")):
        # NOTE: an engine is timed as it will run (its fused kernels, its graph replays): a cost model
        # calibrated on the eager source over-predicted GPT-2's planned engine by 33-80% on an H200
        from .._engine.engine import Engine, load

        engine = model if isinstance(model, Engine) else load(model, cuda_graphs=False)
        # the calibration cache is keyed by what the engine computes: its payloads' bytes
        import hashlib

        h = hashlib.sha256()
        for name, data in sorted(engine._payloads.items()):
            h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
        ident = "engine:" + h.hexdigest()
        return list(inputs or engine.inputs), ("engine", engine), ident
    if isinstance(model, str) and model.startswith("zoo:"):
        from .. import zoo

        z = zoo.get(model[4:])
        module = z.make()
        return list(inputs or _module_specs(module, z.example_inputs(), z.dynamic_axes)), ("module", module), model
    if isinstance(model, (str, os.PathLike)) or type(model).__name__ == "ModelProto":
        from ..onnx.model import io_specs, load_model

        proto = load_model(model)
        data = proto.SerializeToString()
        import hashlib

        return list(inputs or io_specs(proto)[0]), ("onnx", data), "onnx:" + hashlib.sha256(data).hexdigest()
    if hasattr(model, "forward"):
        ident = f"module:{type(model).__name__}:{sum(int(p.numel()) for p in model.parameters())}:{hash(repr(model))}"
        return list(inputs or _module_specs(model, example_inputs, dynamic_axes)), ("module", model), ident
    raise DynashapeError(f"model of type {type(model).__name__}",
                         "an ONNX path, an onnx.ModelProto, a torch.nn.Module, 'zoo:NAME', or an engine (a loaded one or a .engine file)")


def _load_workload(workload: Any, dims: Mapping[str, Any] | None, specs: Sequence[TensorSpec] | None) -> Workload:
    if isinstance(workload, Workload):
        return workload
    if workload is not None and dims:
        raise DynashapeError("both a shape log and --dim value lists", "one workload: a shape log, or value lists per dim")
    if workload is not None:
        return read_shape_log(workload, specs)
    if dims:
        return from_dim_values(dims, specs)
    raise DynashapeError("no workload", "a shape log (--workload FILE) or value lists per dim (--dim seq=lengths.txt)")


def _static_dims(specs: Sequence[TensorSpec] | None, work: Workload) -> list[str]:
    if specs is None:
        return list(work.dims)
    return [d for d in dict.fromkeys(d for s in specs for d in s.shape if isinstance(d, str))]


def plan(
    workload: Any = None,
    model: Any = None,
    *,
    dims: Mapping[str, Any] | None = None,
    inputs: Sequence[TensorSpec] | None = None,
    example_inputs: Any = None,
    dynamic_axes: Mapping[str, Mapping[int, str]] | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    precision: str | None = None,
    backend: str | None = None,
    max_profiles: int | None = None,
    max_graphs: int | None = None,
    graph_memory_mb: float | None = None,
    build_time_s: float | None = None,
    calibrate_cost: bool = True,
    ladder: bool | None = None,
    ranges: Mapping[str, tuple[int, int]] | None = None,
    min_static_share: float | None = None,
    use_cache: bool = True,
    split: bool = False,
) -> Plan:
    """Plan profiles and a CUDA-graph ladder from a workload.

    Args:
        workload: a shape log path (trtexec syntax or JSONL, one request a line) or a
            :class:`~dynashape._plan.workload.Workload`; or None with ``dims``.
        model: an ONNX path or ``onnx.ModelProto``, a ``torch.nn.Module`` (with ``example_inputs``
            and ``dynamic_axes``) or ``"zoo:NAME"``: input specs (which inputs share a dim) and the
            thing calibration times. None: the workload alone (no calibration). An engine (loaded, or
            a ``.engine`` path; one min..max profile is enough) is timed as it runs, plain calls and
            graph replays, which predicts the planned engine's latency far better than the eager source.
        dims: value lists per dim name, ``{"seq": "lengths.txt", "batch": "1"}``.
        batch_size: plan for batches of this many consecutive requests (each padded to its longest).
        device, precision, backend: the engine to plan for (default cpu, fp32, inductor on CUDA and
            onnxruntime on the CPU).
        max_profiles (default 4), max_graphs (default 64), graph_memory_mb, build_time_s: budgets.
        calibrate_cost: time the model here (cached); False: the analytic proxy (:func:`proxy_model`).
        ladder: plan a bucket ladder (default: on CUDA only, where graphs pay for padding).
        ranges: ``{dim: (lo, hi)}`` that the profiles must cover beyond the workload.
        min_static_share: a shape carrying this share of the requests gets a static profile (default 0.2).
        split: inductor: cut each dynamic profile whose range along the ladder dim spans more than 4x
            into sub-ranges that carry equal shares of the traffic, each with its own opt (the traffic's
            weighted median there); ``build(plan=...)`` compiles them as parts of the profile (see
            ``dynashape._backend.range_split``). Stored in ``details["split"]``.
    """
    t_start = time.perf_counter()
    device = device or "cpu"
    cuda = device.startswith("cuda")
    precision = precision or "fp32"
    backend = backend or ("inductor" if cuda else "onnxruntime")
    max_profiles = 4 if max_profiles is None else max_profiles
    max_graphs = 64 if max_graphs is None else max_graphs
    min_static_share = 0.2 if min_static_share is None else min_static_share
    for name, val in (("max_profiles", max_profiles), ("max_graphs", max_graphs)):
        if val < (1 if name == "max_profiles" else 0):
            raise DynashapeError(f"{name} = {val}", "max_profiles >= 1, max_graphs >= 0")
    specs, handle, ident = _resolve_model(model, inputs, example_inputs, dynamic_axes)
    work = _load_workload(workload, dims, specs)
    if work.requests == 0:
        raise DynashapeError("an empty workload", "at least one request")
    aliases: dict[str, list[str]] = {}
    if specs is None:
        work, aliases = merge_equal_dims(work)
    model_dims = _static_dims(specs, work)
    missing = [d for d in model_dims if d not in work.dims and (batch_size is None or d != model_dims[0])]
    if missing:
        raise DynashapeError(f"the workload gives no value for dim(s) {missing}", "a value for every dynamic dim of the model",
                             " ".join(f"--dim {m}=VALUE" for m in missing))
    if batch_size is not None:
        batch_dim = next((s.shape[0] for s in specs or () if s.rank and isinstance(s.shape[0], str)), "batch")
        assert isinstance(batch_dim, str)
        work = batch_stream(work, batch_size, batch_dim=batch_dim, pad_dims=[d for d in work.dims if d != batch_dim])
    t_read = time.perf_counter()

    rows, weights = work.distinct()
    total_w = float(weights.sum())
    elements = np.prod(rows.astype(np.float64), axis=1)
    spread = [len(np.unique(rows[:, j])) for j in range(len(work.dims))]
    lj = int(np.argmax(spread))
    ldim = work.dims[lj]
    others = [j for j in range(len(work.dims)) if j != lj]
    values, vidx = np.unique(rows[:, lj], return_inverse=True)
    vidx = vidx.reshape(-1)

    # -- the cost model -----------------------------------------------------------------------------
    cost = _cost_model(handle, ident, specs, work, rows, weights, lj, device, precision, cuda, calibrate_cost, use_cache)
    plain_exact = cost.plain_cost(elements)

    # -- groups: combinations of the other dims ---------------------------------------------------------
    if others:
        combos, gidx = np.unique(rows[:, others], axis=0, return_inverse=True)
        gidx = gidx.reshape(-1)
    else:
        combos, gidx = np.zeros((1, 0), dtype=np.int64), np.zeros(len(rows), dtype=np.int64)
    gw = np.bincount(gidx, weights=weights, minlength=len(combos))
    order = np.argsort(-gw, kind="stable")
    kept = [int(g) for g in order if gw[g] >= GROUP_MIN_SHARE * total_w][: max(1, max_graphs)] or [int(order[0])]
    W = np.zeros((len(kept), len(values)))
    for r, g in enumerate(kept):
        sel = gidx == g
        np.add.at(W[r], vidx[sel], weights[sel])
    other_elems = np.array([float(np.prod(combos[g].astype(np.float64))) for g in kept])
    unkept = ~np.isin(gidx, kept)
    rare_cost = float((weights[unkept] * plain_exact[unkept]).sum())

    # -- the bucket ladder --------------------------------------------------------------------------
    want_ladder = cuda if ladder is None else ladder
    t_dp = time.perf_counter()
    lad: Ladder | None = None
    ladder_info: dict[str, Any] = {}
    graph_mem = 0.0
    if want_ladder and max_graphs >= len(kept):
        C = cost.graph_cost(other_elems[:, None] * values[None, :].astype(np.float64))
        kmax = max(1, max_graphs // len(kept))
        seg = dp.segment_ladder(W, C, kmax)
        best_k = len(seg.ends)
        k = next(i for i in range(1, best_k + 1) if seg.costs[i - 1] <= seg.costs[best_k - 1] * (1 + 1e-3) + 1e-12)
        mem_of = _graph_memory(cost, specs, work.dims, ldim, combos, kept, others, values)
        while k > 1 and graph_memory_mb is not None and mem_of(seg.ends[k - 1]) > graph_memory_mb * 2**20:
            k -= 1
        ends = seg.ends[k - 1]
        graph_mem = mem_of(ends)
        buckets = tuple(int(values[e]) for e in ends)
        shapes = []
        for g in sorted(kept, key=lambda g: -other_elems[kept.index(g)]):
            for b in reversed(buckets):  # largest first: later captures reuse the shared pool
                d = {work.dims[j]: int(combos[g][i]) for i, j in enumerate(others)}
                d[ldim] = b
                shapes.append(tuple((n, d[n]) for n in work.dims))
        lad = Ladder(ldim, buckets, tuple(shapes))
        served = float(seg.costs[k - 1])
        ladder_info = {
            "buckets": len(buckets), "graphs": len(shapes), "groups": [{work.dims[j]: int(combos[g][i]) for i, j in enumerate(others)} for g in kept],
            "cost_per_bucket_count": [float(c + rare_cost) / total_w for c in seg.costs],
            "gain_of_one_more_bucket": _gain(seg.costs, k, total_w), "dp": seg.method,
        }
        bidx = np.searchsorted(np.array(buckets), rows[:, lj])
        padded_elems = np.where(unkept, elements, elements / rows[:, lj] * np.array(buckets)[np.minimum(bidx, len(buckets) - 1)])
        latency = (served + rare_cost) / total_w
    else:
        served = float((weights * plain_exact).sum())
        padded_elems = elements
        latency = served / total_w
    t_dp_ladder = time.perf_counter() - t_dp

    # -- profiles -----------------------------------------------------------------------------------
    alpha = OPT_PENALTY.get(backend, 0.0)
    u = np.bincount(vidx, weights=weights * plain_exact, minlength=len(values))
    per_dyn, per_static = BUILD_SECONDS.get(backend, (30.0, 17.0))
    t_p = time.perf_counter()
    pseg = dp.segment_profiles(values, u, alpha, max_profiles)
    kp = next(i for i in range(1, len(pseg.ends) + 1) if pseg.costs[i - 1] <= pseg.costs[len(pseg.ends) - 1] * (1 + 1e-3) + 1e-12)
    while kp > 1 and build_time_s is not None and kp * per_dyn > build_time_s:
        kp -= 1
    t_dp_prof = time.perf_counter() - t_p
    ends = pseg.ends[kp - 1]
    ranges = dict(ranges or {})
    lo_all = {d: int(rows[:, j].min()) for j, d in enumerate(work.dims)}
    hi_all = {d: int(rows[:, j].max()) for j, d in enumerate(work.dims)}
    for dname, (r_lo, r_hi) in ranges.items():
        lo_all[dname], hi_all[dname] = min(lo_all.get(dname, r_lo), r_lo), max(hi_all.get(dname, r_hi), r_hi)
    profiles: list[Profile] = []
    spans: list[tuple[int, int, int, int]] = []  # per dynamic profile: (lo, hi, first value index, last value index) along ldim
    start = 0
    for n_seg, e in enumerate(ends):
        seg_rows = (vidx >= start) & (vidx <= e)
        lo = {d: lo_all[d] for d in lo_all}
        hi = {d: hi_all[d] for d in hi_all}
        lo[ldim] = int(values[start]) if n_seg else lo_all[ldim]
        hi[ldim] = int(values[e]) if n_seg < len(ends) - 1 else hi_all[ldim]
        opt = {d: _weighted_mode(rows[seg_rows, j], weights[seg_rows]) for j, d in enumerate(work.dims)}
        opt[ldim] = int(values[dp.profile_opt(values, u, start, e)])
        profiles.append(_profile(specs, work.dims, lo, opt, hi, aliases))
        spans.append((lo[ldim], hi[ldim], start, e))
        start = e + 1
    # the range split (see dynashape._backend.range_split): sub-ranges of equal traffic, each with its opt
    sub_ranges = _split_ranges(values, np.bincount(vidx, weights=weights, minlength=len(values)), u, spans) \
        if split and backend == "inductor" else []
    # static profiles for the hottest shapes
    statics: list[tuple[dict[str, int], float]] = []
    share = weights / total_w
    for r in np.argsort(-share, kind="stable"):
        if share[r] < min_static_share or len(profiles) + len(statics) >= max_profiles:
            break
        if build_time_s is not None and kp * per_dyn + (len(statics) + 1) * per_static > build_time_s:
            break
        d = {n: int(rows[r, j]) for j, n in enumerate(work.dims)}
        statics.append((d, float(share[r])))
    for d, _ in statics:
        profiles.append(_profile(specs, work.dims, d, d, d, aliases))
    static_gain = sum(STATIC_GAIN * s * float(plain_exact[np.flatnonzero((rows == [d[n] for n in work.dims]).all(axis=1))[0]])
                      for d, s in statics)
    latency_static = latency - static_gain
    # each sub-range is one more compile (the spans' sub-ranges number kp where nothing is cut)
    build_s = (len(sub_ranges) or kp) * per_dyn + len(statics) * per_static
    waste = 1.0 - float((weights * elements).sum()) / float((weights * padded_elems).sum())

    unit = cost.unit
    preds = {
        "latency_per_request": Prediction(round(latency_static, 6), unit,
                                          f"{cost.derivation}; mean over the workload's {work.requests} "
                                          f"{'batches' if batch_size else 'requests'} of the cost at the padded shape "
                                          f"({'graph replay' if lad else 'plain call'})" + (f"; static profiles save {STATIC_GAIN:.0%} of their shapes' cost (proxy)" if statics else "")),
        "latency_without_plan": Prediction(round(float((weights * plain_exact).sum()) / total_w, 6), unit,
                                           "the same cost model, every request a plain call at its exact shape (one min..max profile, no graphs)"),
        "padding_waste": Prediction(round(waste, 6), "fraction", "1 - real elements / padded elements, weighted by requests"),
        "graph_memory": Prediction(round(graph_mem / 2**20, 3), "MiB",
                                   "outputs held by every graph (calibrated output bytes per element x its shape) + the largest capture's memory "
                                   f"({cost.graph_bytes_per_element:.1f} bytes per element, {'calibrated' if cost.calibrated and cost.graph else 'none measured'}); "
                                   "graphs share one memory pool"),
        "build_time": Prediction(build_s, "s", f"{backend}: {per_dyn:g} s per dynamic profile"
                                 + (" or sub-range of a split one" if sub_ranges else "") + f", {per_static:g} s per static one "
                                 "(shared/GPU.md build times on an H200; proxy)"),
    }
    details: dict[str, Any] = {
        "device": device, "precision": precision, "backend": backend, "batch_size": batch_size,
        "workload": {"requests": work.requests, "dims": list(work.dims), "distinct_shapes": len(rows), "ladder_dim": ldim,
                     "merged_dims": {d: a for d, a in aliases.items() if len(a) > 1},
                     "values": values.tolist(), "weights": np.bincount(vidx, weights=weights, minlength=len(values)).tolist()},
        "cost_model": cost.to_json(),
        "profiles": {"dynamic": kp, "static": [{"shape": d, "share": round(s, 4)} for d, s in statics],
                     "cost_per_profile_count": [float(c) / total_w for c in pseg.costs], "opt_penalty": alpha,
                     "gain_of_one_more_profile": _gain(pseg.costs, kp, total_w), "dp": pseg.method},
        "ladder": ladder_info,
        **({"split": {ldim: [list(t) for t in sub_ranges]}} if sub_ranges else {}),
        "budgets": {"max_profiles": max_profiles, "max_graphs": max_graphs, "graph_memory_mb": graph_memory_mb, "build_time_s": build_time_s},
        "seconds": {"read": round(t_read - t_start, 3), "dp_ladder": round(t_dp_ladder, 4), "dp_profiles": round(t_dp_prof, 4),
                    "total": round(time.perf_counter() - t_start, 3)},
    }
    return Plan(tuple(profiles), len(statics), lad, preds, details)


def _split_ranges(values: np.ndarray, requests: np.ndarray, u: np.ndarray, spans: Sequence[tuple[int, int, int, int]]) -> list[tuple[int, int, int]]:
    """``[lo, opt, hi]`` sub-ranges of the dynamic profiles along the ladder dim: a profile wider than
    :data:`~dynashape._backend.range_split.AUTO_RATIO` is cut into as many pieces as ``split="auto"``
    would cut it, but at the traffic's quantiles (equal request shares), each piece's opt the weighted
    median of its cost (:func:`dp.profile_opt`, the profile's own rule). Profiles that are not cut give
    one sub-range each, so that the list covers every dynamic profile."""
    from .._backend.range_split import AUTO_RATIO, MAX_PIECES

    out: list[tuple[int, int, int]] = []
    for lo, hi, i, j in spans:
        ratio = hi / max(lo, 1)
        pieces = min(MAX_PIECES, j - i + 1, math.ceil(math.log(ratio) / math.log(AUTO_RATIO) - 1e-9)) if ratio > AUTO_RATIO else 1
        share = np.cumsum(requests[i:j + 1]) / max(float(requests[i:j + 1].sum()), 1e-12)
        # the last value index of each piece but the last: where the cumulative share passes k / pieces
        cuts = sorted({i + int(np.searchsorted(share, k / pieces)) for k in range(1, pieces)} - {j})
        bounds = [i - 1, *cuts, j]
        p_hi = lo - 1
        for a, b in itertools.pairwise(bounds):
            p_lo = p_hi + 1  # contiguous: values between two pieces that the traffic lacks go to the first
            p_hi = hi if b == j else int(values[b])
            opt = min(p_hi, max(p_lo, int(values[dp.profile_opt(values, u, a + 1, b)])))
            out.append((p_lo, opt, p_hi))
    return out


def _gain(costs: np.ndarray, k: int, total: float) -> float:
    """Predicted saving per request of segment k+1 (0 below rounding: equal costs differ in the last bits)."""
    if k >= len(costs):
        return 0.0
    gain = float(costs[k - 1] - costs[k]) / total
    return gain if gain > 1e-9 * abs(float(costs[k - 1]) / total) else 0.0


def _weighted_mode(col: np.ndarray, w: np.ndarray) -> int:
    u, inv = np.unique(col, return_inverse=True)
    return int(u[int(np.argmax(np.bincount(inv.reshape(-1), weights=w)))])


def _profile(specs: Sequence[TensorSpec] | None, dims: Sequence[str], lo: Mapping[str, int], opt: Mapping[str, int],
             hi: Mapping[str, int], aliases: Mapping[str, Sequence[str]] | None = None) -> Profile:
    if specs is None:
        if aliases:  # merged dims give every axis they stand for the same range
            lo, opt, hi = ({a: m[d] for d in dims for a in aliases.get(d, [d])} for m in (lo, opt, hi))
            dims = [a for d in dims for a in aliases.get(d, [d])]
        # dims named <input>_dim<axis> from a bare shape log
        by_input: dict[str, dict[int, str]] = {}
        for d in dims:
            name, sep, axis = d.rpartition("_dim")
            if not sep or not axis.isdigit():
                raise DynashapeError(f"dims {list(dims)} without a model", "the model's inputs, to turn dim values into profiles",
                                     "pass --onnx FILE or --model FILE.py:FUNC (API: model=... or inputs=[TensorSpec...])")
            by_input.setdefault(name, {})[int(axis)] = d
        return Profile({n: ShapeRange(tuple(lo[ax[a]] for a in sorted(ax)), tuple(opt[ax[a]] for a in sorted(ax)),
                                      tuple(hi[ax[a]] for a in sorted(ax))) for n, ax in by_input.items()})
    return Profile({s.name: ShapeRange(tuple(shape_for(s, lo)), tuple(shape_for(s, opt)), tuple(shape_for(s, hi))) for s in specs})


def _graph_memory(cost: CostModel, specs: Sequence[TensorSpec] | None, dims: Sequence[str], ldim: str, combos: np.ndarray,
                  kept: Sequence[int], others: Sequence[int], values: np.ndarray) -> Any:
    """-> ladder ends -> predicted bytes: every graph keeps its outputs; activations are shared."""
    def mem(ends: Sequence[int]) -> float:
        total, peak = 0.0, 0.0
        for g in kept:
            for e in ends:
                d = {dims[j]: int(combos[g][i]) for i, j in enumerate(others)}
                d[ldim] = int(values[e])
                elems = float(np.prod([float(x) for x in d.values()]))
                peak = max(peak, cost.graph_bytes_per_element * elems)
                total += float(cost.extras.get("output_bytes_per_element", 0.0)) * elems
        return total + peak
    return mem


def _cost_model(handle: Any, ident: str, specs: Sequence[TensorSpec] | None, work: Workload, rows: np.ndarray, weights: np.ndarray,
                lj: int, device: str, precision: str, cuda: bool, allowed: bool, use_cache: bool) -> CostModel:
    if not allowed or handle is None or specs is None:
        return proxy_model(cuda=cuda)
    sizes = calibration_sizes(rows[:, lj])
    base = {d: _weighted_mode(rows[:, j], weights) for j, d in enumerate(work.dims)}
    shapes, elems = [], []
    for v in sizes:
        d = {**base, work.dims[lj]: v}
        shapes.append({s.name: tuple(shape_for(s, d)) for s in specs})
        elems.append(int(np.prod([d[n] for n in work.dims])))
    kind, obj = handle
    if kind == "engine":
        if str(obj.device).split(":")[0] != device.split(":")[0] or obj.precision != precision:
            raise DynashapeError(f"an engine for {obj.device} {obj.precision} to plan for {device} {precision}",
                                 "an engine built for the device and precision being planned",
                                 f"pass device='{obj.device}', precision='{obj.precision}' (--device, --precision), or another engine")
        timer = engine_timer(obj, specs)
    elif kind == "onnx" and not cuda:
        timer = onnxruntime_timer(obj, specs)
    elif kind == "onnx":
        import torch

        from ..onnx.importer import to_torch
        from ..onnx.model import load_model

        compute = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
        timer = torch_timer(to_torch(load_model(obj), compute_dtype=compute), specs, device, precision)
    else:
        timer = torch_timer(obj, specs, device, precision)
    log.info("calibrating the cost model on %s at %d sizes", device, len(sizes))
    model = calibrate(f"{ident}|{precision}", shapes, elems, timer, device=device, use_cache=use_cache)
    return model
