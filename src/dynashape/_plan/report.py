"""Explaining a plan: a text table, and a self-contained HTML page with an SVG plot.

NOTE: the plot is SVG written here rather than a matplotlib PNG: matplotlib is not a dependency
(and not installed on the machines this is developed on), and an HTML file opens anywhere.
"""

from __future__ import annotations

import html
import os

import numpy as np

from .record import Plan


def explain(plan: Plan) -> str:
    """The plan as text: profiles, ladder, predictions and what one more profile or bucket gains."""
    d = plan.details
    w = d.get("workload", {})
    unit = plan.predictions["latency_per_request"].unit if "latency_per_request" in plan.predictions else ""
    lines = [f"plan for {d.get('backend')} on {d.get('device')} ({d.get('precision')}): {w.get('requests')} "
             f"{'batches of ' + str(d['batch_size']) if d.get('batch_size') else 'requests'}, {w.get('distinct_shapes')} distinct shapes, "
             f"dims {', '.join(w.get('dims', []))}; planned along '{w.get('ladder_dim')}'"]
    lines.append("")
    lines.append("| profile | kind | min | opt | max |")
    lines.append("|---|---|---|---|---|")
    for k, p in enumerate(plan.profiles):
        kind = "static" if k >= len(plan.profiles) - plan.static_profiles else "dynamic"
        for n, r in p.items():
            lines.append(f"| {k} | {kind} | {n}:{'x'.join(map(str, r.min))} | {'x'.join(map(str, r.opt))} | {'x'.join(map(str, r.max))} |")
    split = split_lines(plan)
    if split:
        lines += ["", *split, "(each sub-range is compiled as a part of its profile, tuned at its own opt; build --plan applies it)"]
    if plan.ladder is not None:
        lines.append("")
        lines.append(f"bucket ladder on '{plan.ladder.dim}' ({len(plan.ladder.buckets)} buckets, {len(plan.ladder.shapes)} graphs): "
                     + ", ".join(map(str, plan.ladder.buckets)))
    else:
        lines.append("")
        lines.append("no bucket ladder (no CUDA graphs to amortize padding on this device)")
    lines.append("")
    lines.append("| prediction | value | derived from |")
    lines.append("|---|---|---|")
    for name, pr in plan.predictions.items():
        lines.append(f"| {name} | {pr.value:.4g} {pr.unit} | {pr.derivation} |")
    lines.append("")
    prof = d.get("profiles", {})
    lad = d.get("ladder", {})
    lines.append(f"one more dynamic profile would gain {prof.get('gain_of_one_more_profile', 0.0):.4g} {unit} a request"
                 + (f"; one more bucket {lad['gain_of_one_more_bucket']:.4g} {unit}" if lad else ""))
    if plan.padding is not None:
        lines.append(f"padding: {'safe' if plan.padding.safe else 'refused'}: {plan.padding.reason}")
    s = d.get("seconds", {})
    if s:
        lines.append(f"planned in {s.get('total', 0):.3f} s (read {s.get('read', 0):.3f} s, ladder DP {s.get('dp_ladder', 0):.4f} s, "
                     f"profile DP {s.get('dp_profiles', 0):.4f} s)")
    return "\n".join(lines)


def summary_lines(plan: Plan, indent: str = "  ") -> list[str]:
    """A few lines on a plan for ``dynashape inspect``: where it came from, the ladder and padding
    verdict, the predictions and what the build measured (``explain`` has the full tables)."""
    d = plan.details
    w = d.get("workload", {})
    i2 = indent * 2
    lines = [f"{indent}plan: for {d.get('backend')} on {d.get('device')} ({d.get('precision')}), from {w.get('requests')} "
             f"{'batches of ' + str(d['batch_size']) if d.get('batch_size') else 'requests'} ({w.get('distinct_shapes')} distinct shapes), "
             f"planned along '{w.get('ladder_dim')}'"]
    dynamic = len(plan.profiles) - plan.static_profiles
    lines.append(f"{i2}profiles: {dynamic} dynamic, {plan.static_profiles} static (the hottest shapes)")
    lines += split_lines(plan, indent=i2)
    if plan.ladder is None:
        lines.append(f"{i2}no bucket ladder")
    else:
        lines.append(f"{i2}ladder on '{plan.ladder.dim}': {len(plan.ladder.buckets)} buckets ({', '.join(map(str, plan.ladder.buckets))}), "
                     f"{len(plan.ladder.shapes)} graphs")
        if plan.padding is not None:
            lines.append(f"{i2}padding {'safe' if plan.padding.safe else 'refused'}: {plan.padding.reason}")
    p = plan.predictions
    parts = []
    if "latency_per_request" in p:
        lat = p["latency_per_request"]
        base = p.get("latency_without_plan")
        parts.append(f"{lat.value:.4g} {lat.unit} a request" + (f" (without the plan {base.value:.4g})" if base is not None else ""))
    if "padding_waste" in p:
        parts.append(f"padding waste {p['padding_waste'].value:.1%}")
    if "graph_memory" in p:
        parts.append(f"graph memory {p['graph_memory'].value:.4g} {p['graph_memory'].unit}")
    if "build_time" in p:
        parts.append(f"build {p['build_time'].value:.4g} {p['build_time'].unit}")
    if parts:
        lines.append(f"{i2}predicted: " + ", ".join(parts))
    return lines + measured_lines(plan, indent=i2)


def split_lines(plan: Plan, *, indent: str = "") -> list[str]:
    """The sub-ranges a plan made with ``split=True``, each with its opt."""
    split = plan.details.get("split")
    if not isinstance(split, dict):
        return []
    return [f"{indent}split along '{dim}' into sub-ranges of equal traffic (lo/opt/hi): "
            + ", ".join(f"{t[0]}/{t[1]}/{t[2]}" for t in triples if isinstance(t, list) and len(t) == 3)
            for dim, triples in split.items() if isinstance(triples, list)]


def measured_lines(plan: Plan, *, indent: str = "") -> list[str]:
    """What the build measured on the new engine (graph memory, latency against the prediction)."""
    i2 = indent
    lines: list[str] = []
    measured = plan.details.get("measured_at_build")
    if measured and "graphs" in measured:
        lines.append(f"{i2}measured at build: {measured.get('graphs')} graphs, graph pool {measured.get('graph_pool_mb')} MiB"
                     + (f", outputs held by the graphs {measured['graph_outputs_mb']} MiB" if "graph_outputs_mb" in measured else ""))
    timing = (measured or {}).get("latency")
    if timing:
        text = f"{i2}measured at build ({timing['kind']}s at {len(timing['shapes'])} shape(s)): "
        if "latency_per_request_ms" in timing:
            text += f"{timing['latency_per_request_ms']:.4g} ms a request"
            if "prediction_error" in timing:
                text += f" (predicted {timing['prediction_error']:+.0%})"
            text += "; "
        if "measured_over_predicted" in timing:
            text += f"measured / predicted per shape: {timing['measured_over_predicted']:.3g}" + ("" if timing["unit"] == "ms" else f" ms per {timing['unit']}")
        lines.append(text.rstrip("; "))
    return lines


def _svg(plan: Plan, width: int = 860, height: int = 320) -> str:
    w = plan.details.get("workload", {})
    values = np.asarray(w.get("values", []), dtype=np.float64)
    weights = np.asarray(w.get("weights", []), dtype=np.float64)
    if values.size == 0:
        return "<svg/>"
    pad = 50
    lo, hi = float(values.min()), float(values.max()) + 1.0
    sx = (width - 2 * pad) / (hi - lo)
    sy = (height - 2 * pad) / max(float(weights.max()), 1e-12)
    out: list[str] = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">']
    out.append(f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>')
    for v, c in zip(values, weights, strict=True):
        x = pad + (v - lo) * sx
        out.append(f'<rect x="{x:.1f}" y="{height - pad - c * sy:.1f}" width="{max(sx, 1.0):.1f}" height="{c * sy:.1f}" fill="#6a9fd4"/>')
    # predicted cost per request at its bucket (the calibrated or proxy curve), scaled to the plot
    cm = plan.details.get("cost_model")
    if cm and plan.ladder is not None:
        from .cost import CostModel

        model = CostModel.from_json(cm)
        b = np.asarray(plan.ladder.buckets, dtype=np.float64)
        idx = np.minimum(np.searchsorted(b, values), len(b) - 1)
        cost = model.graph_cost(b[idx])
        cy = (height - 2 * pad) / max(float(cost.max()), 1e-12)
        pts = " ".join(f"{pad + (v - lo) * sx:.1f},{height - pad - c * cy:.1f}" for v, c in zip(values, cost, strict=True))
        out.append(f'<polyline points="{pts}" fill="none" stroke="#d4572a" stroke-width="1.5"/>')
        out.append(f'<text x="{width - pad}" y="{pad - 20}" text-anchor="end" fill="#d4572a">predicted cost at the bucket (max {cost.max():.3g} {model.unit})</text>')
        for bk in plan.ladder.buckets:
            x = pad + (bk + 1 - lo) * sx
            out.append(f'<line x1="{x:.1f}" y1="{pad}" x2="{x:.1f}" y2="{height - pad}" stroke="#444" stroke-dasharray="3,3"/>')
    for k, p in enumerate(plan.profiles[:4]):
        out.append(f'<text x="{pad}" y="{14 + 12 * k}">profile {k}: {html.escape(p.describe())}</text>')
    out.append(f'<text x="{width / 2:.0f}" y="{height - 12}" text-anchor="middle">{html.escape(str(w.get("ladder_dim")))} '
               f'(bars: requests per value; dashed: buckets)</text>')
    out.append("</svg>")
    return "\n".join(out)


def write_report(plan: Plan, path: str | os.PathLike[str]) -> None:
    """A self-contained HTML page: the plot (histogram, buckets, predicted cost) and the table."""
    path = os.fspath(path)
    body = f"<!doctype html><meta charset='utf-8'><title>dynashape plan</title>\n{_svg(plan)}\n<pre>{html.escape(explain(plan))}</pre>\n"
    from .._io import write_atomic

    write_atomic(path, body, what="plan report")

