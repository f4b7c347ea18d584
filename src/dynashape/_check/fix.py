"""``fix``: rewrite the pins whose repair is provably safe, verify with ONNX Runtime, then write.

Safe rewrites replace one number in a shape operand by the size it was copied from, read at run
time with ``Shape`` + ``Gather``. At the export shape the new operand holds the same numbers as
the old one, so the rewritten model computes the same thing there; the verification checks it,
and checks the new shapes too (see :func:`_verify`).

* Reshape whose target holds the input's own export-time size at that axis;
* Expand / ConstantOfShape / Tile (repeat of a size-1 axis) whose operand holds the size of the
  tensor it later meets;
* a constant filled with one value (``torch.zeros(int(b), ...)`` folded by the exporter) that
  meets a dynamic tensor: it becomes a ``ConstantOfShape`` of that tensor's size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._data import load_data
from .._errors import ModelError
from .._io import atomic_output
from .._profiles import Profile, ShapeRange
from ..onnx.model import io_specs, load_model
from ._graph import SHAPE_OPERAND, Feeder, Graph, node_id, run_plain
from .doctor import analyze
from .empirical import EmpiricalResult, shapes_for, symbols_of
from .report import Finding, FixResult
from .rules import Pin


@dataclass
class _Edit:
    """Entries of one node input to rebuild: position -> (tensor to read the size from, its axis)."""

    node: Any
    operand: int
    entries: dict[int, tuple[str, int]] = field(default_factory=dict)
    constant: str | None = None  # for a filled constant: the initializer/Constant name


def _operand_values(graph: Graph, emp: EmpiricalResult, name: str) -> list[int] | None:
    v = (emp.export_run.values if emp.export_run else {}).get(name)
    if v is None:
        v = graph.constant_values().get(name)
    return None if v is None else [int(x) for x in np.asarray(v).reshape(-1)]


def _constant_array(graph: Graph, name: str) -> np.ndarray | None:
    from onnx import numpy_helper

    if name in graph.initializers:
        return numpy_helper.to_array(graph.initializers[name])
    p = graph.producer.get(name)
    if p is not None and p.op_type == "Constant" and p.attribute and p.attribute[0].name == "value":
        return numpy_helper.to_array(p.attribute[0].t)
    return None


def _plan(graph: Graph, emp: EmpiricalResult, pin: Pin) -> tuple[_Edit | None, str]:
    """How to repair ``pin``, or why it cannot be repaired safely."""
    n = pin.node
    if pin.source is None or pin.axis is None:
        return None, "no tensor in the graph carries the size this number should follow"
    if pin.kind == "resize":
        return None, "a Resize to fixed sizes may be intended; rewriting it to follow the input changes the model's meaning"
    if pin.kind == "slice":
        return None, "a constant slice bound could mean a fixed length or 'all but k'; only the PyTorch code can say which"
    src, ax = pin.source
    if src in {o for k in graph.descendants([n]) for o in graph.nodes[k].output}:
        return None, f"the size to follow ('{src}') is computed after this node"
    s1 = emp.export_run.shapes.get(src) if emp.export_run else None
    if s1 is None or s1[ax] != pin.value:
        return None, f"the number {pin.value} is not the size of '{src}' at export, so replacing it could change the result"
    if pin.kind == "reshape":
        return _Edit(n, 1, {pin.axis: (src, ax)}), ""
    if pin.kind == "frozen" and n.op_type in ("Expand", "ConstantOfShape"):
        return _Edit(n, SHAPE_OPERAND[n.op_type], {pin.axis: (src, ax)}), ""
    if pin.kind == "frozen" and n.op_type == "Tile":
        base = emp.export_run.shapes.get(n.input[0], ()) if emp.export_run else ()
        if pin.axis < len(base) and base[pin.axis] == 1:
            return _Edit(n, 1, {pin.axis: (src, ax)}), ""
        return None, "the repeated axis is not of size 1, so the repeat count is not a tensor size"
    if pin.kind == "constant" and pin.constant:
        arr = _constant_array(graph, pin.constant)
        if arr is None or arr.size == 0 or not np.all(arr == arr.reshape(-1)[0]):
            return None, f"'{pin.constant}' holds varying values (e.g. positions or weights); only a filled tensor can be rebuilt from a size"
        k = list(pin.consumer.input).index(pin.constant)
        return _Edit(pin.consumer, k, {pin.axis: (src, ax)}, constant=pin.constant), ""
    return None, "no safe rewrite is known for this pattern"


def _apply(model: Any, graph: Graph, emp: EmpiricalResult, edits: list[_Edit]) -> Any:
    import onnx
    from onnx import helper, numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    nodes = list(out.graph.node)
    orig_index = {node_id(n): k for k, n in enumerate(graph.nodes)}
    new_before: dict[int, list[Any]] = {}
    taken = {i.name for i in out.graph.initializer} | {o for n in nodes for o in n.output}
    start = 0
    while any(t.startswith(f"dynashape_fix_{start}_") for t in taken):
        start += 1
    for e_i, e in enumerate(edits, start):
        k = orig_index[node_id(e.node)]
        target = nodes[k]
        old = target.input[e.operand]
        if e.constant is not None:
            arr = _constant_array(graph, e.constant)
            assert arr is not None
            vals = list(arr.shape)
        else:
            vals = _operand_values(graph, emp, old) or []
        tag = f"dynashape_fix_{e_i}"
        parts, made = [], []
        for i, v in enumerate(vals):
            if i in e.entries:
                src, ax = e.entries[i]
                made.append(helper.make_node("Shape", [src], [f"{tag}_shape{i}"], name=f"{tag}/Shape{i}"))
                made.append(helper.make_node("Gather", [f"{tag}_shape{i}", f"{tag}_axis{i}"], [f"{tag}_dim{i}"], name=f"{tag}/Gather{i}", axis=0))
                out.graph.initializer.append(numpy_helper.from_array(np.array([ax], dtype=np.int64), f"{tag}_axis{i}"))
                parts.append(f"{tag}_dim{i}")
            else:
                out.graph.initializer.append(numpy_helper.from_array(np.array([v], dtype=np.int64), f"{tag}_c{i}"))
                parts.append(f"{tag}_c{i}")
        made.append(helper.make_node("Concat", parts, [f"{tag}_target"], name=f"{tag}/Concat", axis=0))
        new_input = f"{tag}_target"
        if e.constant is not None:
            assert arr is not None  # set above whenever e.constant is
            scalar = arr.reshape(-1)[:1]
            made.append(helper.make_node("ConstantOfShape", [f"{tag}_target"], [f"{tag}_filled"], name=f"{tag}/ConstantOfShape",
                                         value=numpy_helper.from_array(scalar.copy())))
            new_input = f"{tag}_filled"
        target.input[e.operand] = new_input
        new_before.setdefault(k, []).extend(made)
    del out.graph.node[:]
    for k, n in enumerate(nodes):
        out.graph.node.extend(new_before.get(k, []))
        out.graph.node.append(n)
    del out.graph.value_info[:]
    onnx.checker.check_model(out)
    return out


def _verify(original: Any, fixed: Any, feeder: Feeder, export: dict[str, tuple[int, ...]], fixed_symbols: set[str],
            values: dict[str, int]) -> tuple[list[dict[str, tuple[int, ...]]], str | None]:
    """Same outputs as the original at the export shape; at new shapes, runs, matches the original
    wherever the original runs with the same output shapes, and for a batch dim gives each copy of
    a repeated input the export-shape answer."""
    o_bytes, f_bytes = original.SerializeToString(), fixed.SerializeToString()
    inputs = feeder.inputs
    feeds1 = feeder(export)
    try:
        ref = run_plain(o_bytes, feeds1)
    except Exception as e:  # ONNX Runtime's error types
        return [], (f"the original model fails at the shapes taken as its export shape ({_fmt(export)}: "
                    f"{str(e).splitlines()[0][:160]}); give the export shape with --optShapes")
    try:
        got = run_plain(f_bytes, feeds1)
    except Exception as e:  # ONNX Runtime's error types
        return [], f"the rewritten model fails at the export shape: {str(e).splitlines()[0][:200]}"
    if not all(a.shape == b.shape and np.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(ref, got, strict=True)):
        return [], "the rewritten model differs from the original at the export shape"
    shapes_ok = [export]
    symbols = [s for s in symbols_of(inputs) if s.name in fixed_symbols]
    for s in symbols:
        batch_like = all(a == 0 for _, a in s.where)
        for k in (2, 3):
            shapes = shapes_for(inputs, symbols_of(inputs), {**values, s.name: k * values[s.name]})
            feeds = {n: (np.concatenate([v] * k, axis=0) if batch_like and (n, 0) in s.where else v) for n, v in feeds1.items()}
            if not batch_like:
                feeds = feeder(shapes, seed=k)
            try:
                out = run_plain(f_bytes, feeds)
            except Exception as e:  # ONNX Runtime's error types
                return shapes_ok, f"the rewritten model fails at {_fmt(shapes)}: {str(e).splitlines()[0][:200]}"
            try:
                orig = run_plain(o_bytes, feeds)
            except Exception:  # NOTE: the original failing here is the bug being fixed
                orig = None
            if orig is not None and all(a.shape == b.shape for a, b in zip(orig, out, strict=True)):
                if not all(np.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(orig, out, strict=True)):
                    return shapes_ok, f"the rewritten model differs from the original at {_fmt(shapes)}"
            if batch_like:
                for r, o in zip(ref, out, strict=True):
                    if o.ndim and o.shape[0] == k * r.shape[0] and r.shape[0] == values[s.name]:
                        if not all(np.allclose(c, r, rtol=1e-4, atol=1e-5) for c in np.split(o, k, axis=0)):
                            return shapes_ok, f"at {_fmt(shapes)} the copies of a repeated batch give different outputs"
            shapes_ok.append(shapes)
    return shapes_ok, None


def _fmt(shapes: dict[str, tuple[int, ...]]) -> str:
    return ", ".join(f"{n}:{'x'.join(map(str, s))}" for n, s in shapes.items())


def fix(model: Any, output_path: str | os.PathLike[str], *, profiles: Any = None, max_rounds: int = 4,
        data: Any = None) -> FixResult:
    """Rewrite the safely fixable findings of :func:`check` and write the verified model.

    Rounds repeat because a repaired node can reveal the next one (a second frozen Reshape that
    never ran while the first one failed). Nothing is written unless ONNX Runtime verifies the
    result (see :func:`_verify`); the file appears atomically (:mod:`dynashape._io`). ``data``:
    the user's feeds for every run, as for :func:`~dynashape._check.check`.
    """
    original = load_model(model)
    # NOTE: loaded once (a file.py:function may be slow or yield once); every round gets the same feeds.
    data = load_data(data, io_specs(original)[0]) if data is not None else None
    current = original
    fixed: list[Finding] = []
    unfixed: dict[tuple[str, str], tuple[Finding, str]] = {}
    export: dict[str, tuple[int, ...]] = {}
    values: dict[str, int] = {}
    inputs: list[Any] = []
    for _ in range(max_rounds):
        _report, graph, emp, pins = analyze(current, profiles, data=data)
        if emp is None or emp.export_run is None:
            break
        if not export:
            export = dict(emp.export_shapes)
            values = {sr.symbol.name: sr.export_value for sr in emp.runs}
            inputs = graph.inputs
            # NOTE: later rounds must compare from the same export shape, whatever the graph now suggests.
            profiles = Profile({n: ShapeRange(s, s, shapes_for(inputs, symbols_of(inputs), {k: 2 * v for k, v in values.items()})[n])
                                for n, s in export.items()})
        edits: dict[tuple[str, int], _Edit] = {}
        round_fixed = []
        for pin, _sym, finding in pins:
            edit, why = _plan(graph, emp, pin)
            if edit is None:
                unfixed.setdefault((finding.node, finding.symbol), (finding, why))
                continue
            key = (node_id(edit.node), edit.operand)
            edits.setdefault(key, edit).entries.update(edit.entries)
            round_fixed.append(finding)
        if not edits:
            break
        current = _apply(current, graph, emp, list(edits.values()))
        fixed += round_fixed
    if not fixed:
        return FixResult(None, [], list(unfixed.values()))
    shapes_ok, problem = _verify(original, current, Feeder(original, inputs, data), export, {f.symbol for f in fixed}, values)
    if problem:
        return FixResult(None, [], [*((f, f"verification failed: {problem}") for f in fixed), *unfixed.values()])
    still = {(f.node, f.symbol) for f in analyze(current, profiles, data=data)[0].findings}
    remaining = [(f, why) for key, (f, why) in unfixed.items() if key in still]
    _write(current, os.fspath(output_path))
    return FixResult(os.fspath(output_path), fixed, remaining, shapes_ok)


def _write(model: Any, path: str) -> None:
    import onnx

    with atomic_output(path, what="fixed ONNX file (-o)", error=ModelError) as tmp:
        onnx.save(model, tmp)
