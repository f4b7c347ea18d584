"""Symbolic shape propagation: which dynamic input dims reach which node, and where they meet a number.

We use onnxruntime's maintained ``SymbolicShapeInference`` (sympy expressions over the input dims,
partial evaluation of shape subgraphs) and fall back to ``onnx.shape_inference`` with data
propagation when it gives up. Two signals come out of it:

* merges: inference had to equate an input symbol with a literal (``batch == 3`` at a Concat with a
  constant of batch 3). The node is where the dim got pinned; the literal is its export value.
* aligned constants: a Reshape whose target, after folding, holds a number at an axis where its
  input holds an input symbol that does not survive into the output.

Both also seed the empirical pass with the likely export value of each dim.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass, field
from typing import Any

from .._deps import require
from ._graph import node_id

Dim = int | str


@dataclass
class Pin:
    node: str
    op: str
    symbol: str
    value: int


@dataclass
class SymbolicResult:
    dims: dict[str, tuple[Dim, ...]] = field(default_factory=dict)
    pins: list[Pin] = field(default_factory=list)
    hints: list[tuple[str, int]] = field(default_factory=list)  # (symbol, a value it may have had at export)
    engine: str = "none"
    error: str | None = None

    def candidates(self) -> dict[str, list[int]]:
        """Likely export values per symbol: pinned values first, then weaker hints."""
        out: dict[str, list[int]] = {}
        for sym, v in [*((p.symbol, p.value) for p in self.pins), *self.hints]:
            if v > 0 and v not in out.setdefault(sym, []):
                out[sym].append(v)
        return out


def _shape_of(vi: Any) -> tuple[Dim, ...] | None:
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return None
    return tuple(int(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim)


def _solve_for_symbol(expr: str, literal: int, symbols: set[str]) -> tuple[str, int] | None:
    """``seq - 1`` == 8 -> (``seq``, 9) when the expression holds one input symbol."""
    if expr in symbols:
        return expr, literal
    try:
        import sympy

        e = sympy.sympify(expr)
        free = [str(s) for s in e.free_symbols]
        if len(free) != 1 or free[0] not in symbols:
            return None
        sols = sympy.solve(sympy.Eq(e, literal), sympy.Symbol(free[0], integer=True, positive=True))
        ints = [int(s) for s in sols if getattr(s, "is_integer", False) and int(s) > 0]
        return (free[0], ints[0]) if len(ints) == 1 else None
    except Exception:  # sympy raises many types on odd expressions; an unsolvable merge is no signal
        return None


def _ort_symbolic(model: Any, symbols: set[str]) -> SymbolicResult:
    ssi = require("onnxruntime.tools.symbolic_shape_infer", "symbolic shape propagation")
    base = ssi.SymbolicShapeInference

    class Recording(base):  # type: ignore[misc, valid-type]
        """Remembers which node asked for each merge of a symbol with a literal."""

        def _onnx_infer_single_node(self, node: Any) -> None:
            self._dynashape_node = node
            super()._onnx_infer_single_node(node)

        def _add_suggested_merge(self, syms: Any, apply: bool = False) -> None:
            node = getattr(self, "_dynashape_node", None)
            literals = [int(s) for s in syms if ssi.is_literal(s)]
            if node is not None and literals:
                for s in syms:
                    if isinstance(s, str) and not ssi.is_literal(s):
                        hit = _solve_for_symbol(s, literals[0], symbols)
                        if hit:
                            self._dynashape_pins.append(Pin(node_id(node), node.op_type, hit[0], hit[1]))
            super()._add_suggested_merge(syms, apply)

    inf = Recording(2**31 - 1, True, True, 0)
    inf._dynashape_pins = []
    # NOTE: the inference logs and prints about every merge it makes; those are our signal, not the user's.
    logging.getLogger("onnxruntime.tools.symbolic_shape_infer").setLevel(logging.CRITICAL)
    with contextlib.redirect_stdout(io.StringIO()):
        inf._preprocess(model)
        while inf.run_:
            inf._infer_impl()
        inf._update_output_from_vi()
    out = SymbolicResult(engine="onnxruntime.SymbolicShapeInference", pins=list(inf._dynashape_pins))
    for name, vi in inf.known_vi_.items():
        s = _shape_of(vi)
        if s is not None:
            out.dims[name] = s
    out.pins += _aligned_reshapes(model, out.dims, getattr(inf, "sympy_data_", {}), symbols)
    out.hints += _slice_hints(model, out.dims, symbols)
    return out


def _slice_hints(model: Any, dims: dict[str, tuple[Dim, ...]], symbols: set[str]) -> list[tuple[str, int]]:
    """A Slice with a constant end ``e`` on a symbolic axis was often ``x[:, :T - k]`` with T = e + k."""
    from onnx import numpy_helper

    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer if i.data_type == 7}
    for n in model.graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value" and n.attribute[0].t.data_type == 7:
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    hints = []
    for n in model.graph.node:
        if n.op_type != "Slice" or len(n.input) < 3 or n.input[2] not in consts:
            continue
        src = dims.get(n.input[0])
        ends = [int(v) for v in consts[n.input[2]].reshape(-1)]
        axes = [int(v) for v in consts[n.input[3]].reshape(-1)] if len(n.input) > 3 and n.input[3] in consts else list(range(len(ends)))
        if src is None or len(axes) != len(ends):
            continue
        for ax, e in zip(axes, ends, strict=True):
            d = src[ax % len(src)] if src else None
            if isinstance(d, str) and d in symbols and 0 < e < 2**20:
                hints += [(d, e + 1), (d, e), (d, e + 2)]
    return hints


def _aligned_reshapes(model: Any, dims: dict[str, tuple[Dim, ...]], data: dict[str, Any], symbols: set[str]) -> list[Pin]:
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    pins = []
    for n in model.graph.node:
        if n.op_type != "Reshape" or len(n.input) < 2:
            continue
        if n.input[1] in inits:
            target = [int(v) for v in numpy_helper.to_array(inits[n.input[1]]).reshape(-1)]
        elif n.input[1] in data:
            try:
                target = [int(v) for v in data[n.input[1]]]
            except (TypeError, ValueError):
                continue  # a symbolic entry: this axis follows the input
        else:
            continue
        src, dst = dims.get(n.input[0]), dims.get(n.output[0])
        if src is None or dst is None:
            continue
        for a in range(min(len(src), len(target))):
            if a == len(target) - 1 and len(src) > len(target):
                break  # the last target axis absorbs several input axes: no alignment left
            s = src[a]
            if isinstance(s, str) and s in symbols and target[a] > 0 and s not in dst:
                pins.append(Pin(node_id(n), n.op_type, s, target[a]))
    return pins


def _onnx_symbolic(model: Any) -> SymbolicResult:
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    out = SymbolicResult(engine="onnx.shape_inference(data_prop=True)")
    for vi in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        s = _shape_of(vi)
        if s is not None:
            out.dims[vi.name] = s
    return out


def infer(model: Any, symbols: set[str]) -> SymbolicResult:
    """Propagate the input symbols through ``model``; never raises for a model ORT cannot infer."""
    try:
        return _ort_symbolic(model, symbols)
    except Exception as e:  # the ORT tool raises bare Exception for unsupported ops
        first = f"{type(e).__name__}: {e}"
    try:
        res = _onnx_symbolic(model)
    except Exception as e:  # onnx raises InferenceError/ValidationError on broken graphs
        return SymbolicResult(error=f"{first}; onnx: {type(e).__name__}: {e}")
    res.error = first
    return res
