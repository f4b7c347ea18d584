"""Reductions (Reduce*, ArgMax/ArgMin), scans (CumSum) and TopK."""

from __future__ import annotations

import operator
from typing import Any

import onnx

from .. import runtime
from ..graph import Builder, Sym, Value, attrs
from ..registry import register

_REDUCE = ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
           "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")


@register(*_REDUCE, first=1)
def reduce(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a = attrs(n)
    keepdims = int(a.get("keepdims", 1))
    # NOTE: axes moved from an attribute to an input at version 13 for ReduceSum and 18 for the others.
    axes_input_from = 13 if n.op_type == "ReduceSum" else 18
    noop = False
    axes: Any
    if (b.version(n) or 0) >= axes_input_from:
        axes = b.ints(ins[1]) if len(ins) > 1 and ins[1] is not None else []
        noop = bool(int(a.get("noop_with_empty_axes", 0)))
        if axes == [] and noop:
            return ins[0]
    else:
        axes = [int(v) for v in a.get("axes", [])]
    s = b.sym(ins[0])
    if n.op_type in ("ReduceProd", "ReduceSum") and s is not None and not s.scalar and axes in ([], [0], [-1]):
        fn = operator.mul if n.op_type == "ReduceProd" else operator.add
        total: Any = 1 if n.op_type == "ReduceProd" else 0
        for e in s.elems:
            total = b.arith(fn, total, e)
        return Sym([total], scalar=not keepdims, dtype=s.dtype)
    return b.call(runtime.reduce, b.t(ins[0]), n.op_type, axes, bool(keepdims), noop)


@register("ArgMax", "ArgMin", first=1)
def arg_reduce(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a = attrs(n)
    return b.call(runtime.arg_reduce, b.t(ins[0]), n.op_type == "ArgMax", int(a.get("axis", 0)),
                  bool(int(a.get("keepdims", 1))), bool(int(a.get("select_last_index", 0))))


@register("CumSum", first=11)
def cumsum(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a = attrs(n)
    axis = b.scalar(ins[1])
    return b.call(runtime.cumsum, b.t(ins[0]), axis, bool(int(a.get("exclusive", 0))), bool(int(a.get("reverse", 0))))


@register("TopK", first=11)
def topk(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a = attrs(n)
    out = b.call(runtime.topk, b.t(ins[0]), b.scalar(ins[1]), int(a.get("axis", -1)), bool(int(a.get("largest", 1))))
    return [b.call(operator.getitem, out, 0), b.call(operator.getitem, out, 1)]
