"""``check``: symbolic propagation + shape-op rules + two real runs -> findings."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .._errors import ModelError
from .._profiles import Profile, validate_profile
from ..onnx.model import io_specs, load_model
from ._graph import Feeder, Graph, node_id, source_of
from .empirical import EmpiricalResult, Symbol, run_empirical, symbols_of
from .explain import fix_text, message
from .report import Finding, Report
from .rules import Pin
from .symbolic import SymbolicResult, infer


def _profile(profiles: Profile | Sequence[Profile] | None, inputs: Any) -> Profile | None:
    if profiles is None:
        return None
    ps = [profiles] if isinstance(profiles, Profile) else list(profiles)
    if not ps:
        return None
    # NOTE: profile 0's opt is taken as the export shape; the other profiles' ranges are checked by
    # the engine builder, not here: one export shape is enough to find what it froze.
    return validate_profile(ps[0], inputs, 0)


def _name(model: Any) -> str:
    return os.fspath(model) if isinstance(model, (str, os.PathLike)) else (model.graph.name or "model")


def analyze(model: Any, profiles: Any = None, *, empirical: bool = True,
            data: Any = None) -> tuple[Report, Graph, EmpiricalResult | None, list[tuple[Pin, Symbol, Finding]]]:
    """The work behind :func:`check`; also returns the pins, which :func:`fix` rewrites."""
    proto = load_model(model)
    inputs, _ = io_specs(proto)
    if not proto.graph.node:
        raise ModelError(f"{_name(model)} has an empty graph", "an ONNX model with at least one node")
    profile = _profile(profiles, inputs)
    feeder = Feeder(proto, inputs, data)  # the user's data is checked even where no run needs it
    graph = Graph(proto, inputs)
    symbols = symbols_of(inputs)
    report = Report(_name(model))
    if not symbols:
        report.notes.append("the model's inputs declare no dynamic dim: nothing can be pinned")
        return report, graph, None, []
    sym = infer(proto, {s.name for s in symbols})
    if sym.error and not sym.dims:
        report.notes.append(f"symbolic shape propagation failed ({sym.error})")
    emp = run_empirical(graph, inputs, profile=profile, candidates=sym.candidates(), feeder=feeder) if empirical else None
    pins: list[tuple[Pin, Symbol, Finding]] = []
    if emp is not None:
        report.export_shapes = emp.export_shapes
        report.notes += emp.notes
        for sr in emp.runs:
            for pin in sr.pins:
                pins.append((pin, sr.symbol, _finding(pin, sr.symbol, sr.export_value, sr.new_value, graph, sr.run.shapes, sym)))
    else:
        pins = _symbolic_only(sym, symbols, graph)
    report.findings = [f for _, _, f in pins]
    return report, graph, emp, pins


def _finding(pin: Pin, s: Symbol, v1: int, v2: int, graph: Graph, shapes2: dict[str, tuple[int, ...]], sym: SymbolicResult) -> Finding:
    inp, dim = s.where[0]
    n = pin.node
    nid = node_id(n)
    evidence = "empirical"
    where = {nid} | ({node_id(pin.consumer)} if pin.consumer is not None else set())
    if any(p.symbol == s.name and p.node in where for p in sym.pins):
        evidence += "+symbolic"
    out = shapes2.get(n.output[0]) if n.output else None
    tensor_axis = pin.source[1] if pin.source else dim
    source = source_of(n) or (source_of(pin.consumer) if pin.consumer is not None else None)
    return Finding(
        node=nid, op=n.op_type, input=inp, dim=dim, symbol=s.name, value=pin.value,
        message=message(pin, s.name, v1, v2, out), fix=fix_text(pin, s.name, tensor_axis),
        source=source, evidence=evidence,
    )


def _symbolic_only(sym: SymbolicResult, symbols: list[Symbol], graph: Graph) -> list[tuple[Pin, Symbol, Finding]]:
    by_name = {s.name: s for s in symbols}
    out: list[tuple[Pin, Symbol, Finding]] = []
    seen = set()
    for p in sym.pins:
        node = graph.by_id.get(p.node)
        if node is None or (p.node, p.symbol) in seen or p.symbol not in by_name:
            continue
        seen.add((p.node, p.symbol))
        s = by_name[p.symbol]
        inp, dim = s.where[0]
        pin = Pin(node, "reshape" if p.op == "Reshape" else "failed", p.value)
        msg = (f"symbolic shape propagation had to set '{p.symbol}' to {p.value} here, so the node only works "
               f"when {p.symbol}={p.value}")
        out.append((pin, s, Finding(p.node, p.op, inp, dim, p.symbol, p.value, msg, fix_text(pin, p.symbol, dim),
                                    source_of(node), "symbolic")))
    return out


def check(model: Any, profiles: Profile | Sequence[Profile] | None = None, *, empirical: bool = True,
          data: Any = None) -> Report:
    """Find every place where a dim that the model's inputs declare dynamic becomes fixed in the graph.

    Args:
        model: a path to an ``.onnx`` file or an ``onnx.ModelProto``.
        profiles: optimization profile(s); profile 0's ``opt`` is taken as the export shape and
            its ``max`` (or ``min``) as the shape to compare with. None: the export shape is
            inferred from the graph and each dynamic dim is doubled.
        empirical: run the model with ONNX Runtime (the reliable pass). False: symbolic propagation
            only, which needs no runtime but may miss pins.
        data: the user's feeds for the runs (as for ``build``: an ``.npz`` path, ``"file.py:function"``,
            a feed or an iterable of feeds), cut or repeated to each probe's shapes; without a
            profile, the first feed's shapes are the first export shape tried. None: representative
            generated data (ids within the table they index, masks without a fully masked row).

    Returns:
        A :class:`Report`; ``report.findings`` is empty for a clean model.
    """
    return analyze(model, profiles, empirical=empirical, data=data)[0]
