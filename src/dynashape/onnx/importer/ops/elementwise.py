"""Elementwise ops: unary math, activations, binary arithmetic (folded on :class:`Sym`), logic, Cast."""

from __future__ import annotations

import functools
import operator
import typing
from collections.abc import Callable
from typing import Any

import onnx
import torch
import torch.nn.functional as F
from torch import fx

from .. import runtime
from ..graph import Builder, Sym, Value, attrs, dtype_of
from ..registry import register

_UNARY: dict[str, Callable[..., Any]] = {
    "Abs": torch.abs, "Neg": torch.neg, "Reciprocal": torch.reciprocal, "Sqrt": torch.sqrt, "Exp": torch.exp,
    "Log": torch.log, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh, "Relu": torch.relu, "Floor": torch.floor,
    "Ceil": torch.ceil, "Round": torch.round, "Sign": torch.sign, "Erf": torch.erf, "Sin": torch.sin,
    "Cos": torch.cos, "Tan": torch.tan, "Asin": torch.asin, "Acos": torch.acos, "Atan": torch.atan,
    "Sinh": torch.sinh, "Cosh": torch.cosh, "Asinh": torch.asinh, "Acosh": torch.acosh, "Atanh": torch.atanh,
    "Not": torch.logical_not, "IsNaN": torch.isnan, "Softplus": F.softplus, "Softsign": F.softsign,
    "BitwiseNot": runtime.bitwise_not, "Mish": F.mish, "HardSwish": F.hardswish,
}

for _op, _fn in _UNARY.items():

    def _unary(b: Builder, n: onnx.NodeProto, ins: list[Value], fn: Callable[..., Any] = _fn) -> Value:
        return b.call(fn, b.t(ins[0]))

    register(_op, first=1)(_unary)


@register("LeakyRelu", "Elu", "Celu", "Selu", "HardSigmoid", "ThresholdedRelu", "Shrink", "Gelu")
def activation(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a, x, op = attrs(n), b.t(ins[0]), n.op_type
    if op == "LeakyRelu":
        return b.call(F.leaky_relu, x, float(a.get("alpha", 0.01)))
    if op in ("Elu", "Celu"):
        return b.call(F.elu if op == "Elu" else F.celu, x, float(a.get("alpha", 1.0)))
    if op == "Selu":
        alpha, gamma = float(a.get("alpha", 1.67326319217681884765625)), float(a.get("gamma", 1.05070102214813232421875))
        return b.call(runtime.selu, x, alpha, gamma)
    if op == "HardSigmoid":
        return b.call(runtime.hard_sigmoid, x, float(a.get("alpha", 0.2)), float(a.get("beta", 0.5)))
    if op == "ThresholdedRelu":
        return b.call(runtime.thresholded_relu, x, float(a.get("alpha", 1.0)))
    if op == "Shrink":
        return b.call(runtime.shrink, x, float(a.get("bias", 0.0)), float(a.get("lambd", 0.5)))
    return b.call(F.gelu, x, approximate=a.get("approximate", "none"))


@register("PRelu", first=7)
def prelu(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    x = b.t(ins[0])
    return b.call(torch.where, b.call(operator.lt, x, 0), b.call(operator.mul, x, b.t(ins[1])), x)


# ---- binary ops, with Sym folding ---------------------------------------------------------------


def _trunc_div(a: int, c: int) -> int:
    q = abs(a) // abs(c)
    return q if (a >= 0) == (c >= 0) else -q


def _sym_binary(b: Builder, op: str, x: Value, y: Value) -> Sym | None:
    sx, sy = b.sym(x), b.sym(y)
    if sx is None or sy is None or sx.dtype == torch.bool or sy.dtype == torch.bool:
        return None
    lx, ly = len(sx.elems), len(sy.elems)
    if lx != ly and 1 not in (lx, ly):
        return None
    size = max(lx, ly)
    ex = sx.elems * size if lx == 1 else sx.elems
    ey = sy.elems * size if ly == 1 else sy.elems
    out: list[Any] = []
    for p, q in zip(ex, ey, strict=False):
        symbolic = isinstance(p, fx.Node) or isinstance(q, fx.Node)
        if op == "Add":
            out.append(b.arith(operator.add, p, q))
        elif op == "Sub":
            out.append(b.arith(operator.sub, p, q))
        elif op == "Mul":
            out.append(b.arith(operator.mul, p, q))
        elif op == "Div":
            if not symbolic:
                out.append(_trunc_div(typing.cast(int, p), typing.cast(int, q)))  # not symbolic: both are ints
            elif b.is_nonneg(p) and b.is_nonneg(q):  # NOTE: trunc == floor for sizes
                out.append(b.arith(operator.floordiv, p, q))
            elif isinstance(q, int) and q > 0:  # e.g. (size - 1) / 2 in conv output-size arithmetic
                out.append(b.call(runtime.trunc_div, p, q))
            else:
                return None
        elif op == "Mod":
            if not symbolic:
                out.append(typing.cast(int, p) % typing.cast(int, q))
            elif isinstance(q, int) and q > 0:  # NOTE: Python's % on a SymInt is ONNX's fmod=0 (sign of the divisor)
                out.append(b.arith(operator.mod, p, q))
            else:
                return None
        elif op in ("Max", "Min") and symbolic:
            out.append(b.arith(torch.sym_max if op == "Max" else torch.sym_min, p, q))
        elif op in ("Max", "Min"):
            out.append(max(p, q) if op == "Max" else min(p, q))
        elif op == "Equal":
            if not symbolic:
                out.append(p == q)
            elif (isinstance(q, int) and q < 0 and b.is_nonneg(p)) or (isinstance(p, int) and p < 0 and b.is_nonneg(q)):
                out.append(False)  # a size is never negative (the `-1` in Expand/Reshape patterns)
            else:
                return None
        else:
            return None
    dtype = torch.bool if op == "Equal" else sx.dtype
    return Sym(out, scalar=sx.scalar and sy.scalar, dtype=dtype)


_BINARY: dict[str, Callable[..., Any]] = {
    "Add": runtime.add, "Sub": runtime.sub, "Mul": runtime.mul, "Div": runtime.div, "Pow": runtime.pow_,
    "Equal": runtime.eq, "Less": runtime.lt, "Greater": runtime.gt, "LessOrEqual": runtime.le,
    "GreaterOrEqual": runtime.ge,
    "And": torch.logical_and, "Or": torch.logical_or, "Xor": torch.logical_xor,
    "BitwiseAnd": torch.bitwise_and, "BitwiseOr": torch.bitwise_or, "BitwiseXor": torch.bitwise_xor,
}

for _op, _fn in _BINARY.items():

    def _binary(b: Builder, n: onnx.NodeProto, ins: list[Value], fn: Callable[..., Any] = _fn) -> Value:
        if n.op_type in ("Add", "Sub", "Mul", "Div", "Equal"):
            folded = _sym_binary(b, n.op_type, ins[0], ins[1])
            if folded is not None:
                return folded
        return b.call(fn, b.t(ins[0]), b.t(ins[1]))

    register(_op, first=7)(_binary)


@register("Mod", first=10)
def mod(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    fmod = int(attrs(n).get("fmod", 0))
    if not fmod:
        folded = _sym_binary(b, "Mod", ins[0], ins[1])
        if folded is not None:
            return folded
    fn = runtime.fmod if fmod else runtime.remainder
    return b.call(fn, b.t(ins[0]), b.t(ins[1]))


@register("BitShift", first=11)
def bit_shift(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    fn = runtime.lshift if attrs(n)["direction"] == "LEFT" else runtime.rshift
    return b.call(fn, b.t(ins[0]), b.t(ins[1]))


@register("Max", "Min", "Sum", "Mean", first=8)
def variadic(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    if n.op_type in ("Max", "Min") and len(ins) == 2:
        folded = _sym_binary(b, n.op_type, ins[0], ins[1])
        if folded is not None:
            return folded
    fn = {"Max": runtime.maximum, "Min": runtime.minimum, "Sum": runtime.add, "Mean": runtime.add}[n.op_type]
    xs = [b.t(v) for v in ins]
    out = functools.reduce(lambda p, q: b.call(fn, p, q), xs[1:], xs[0])
    if n.op_type == "Mean":
        out = b.call(operator.truediv, out, len(xs))
    return out


@register("Where", first=9)
def where(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    c, x, y = (b.sym(v) for v in ins)
    if c is not None and c.static and x is not None and y is not None:
        size = max(len(c.elems), len(x.elems), len(y.elems))
        if all(len(s.elems) in (1, size) for s in (c, x, y)):
            pick = [
                (x.elems[i if len(x.elems) > 1 else 0] if c.elems[i if len(c.elems) > 1 else 0] else y.elems[i if len(y.elems) > 1 else 0])
                for i in range(size)
            ]
            return Sym(pick, scalar=c.scalar and x.scalar and y.scalar, dtype=x.dtype)
    return b.call(torch.where, b.t(ins[0]), b.t(ins[1]), b.t(ins[2]))


@register("Cast", first=6)
def cast(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    dtype = dtype_of(int(attrs(n)["to"]), f"Cast node '{n.name}'")
    s = b.sym(ins[0])
    if s is not None and not dtype.is_floating_point and dtype != torch.bool and s.dtype != torch.bool:
        return Sym(s.elems, scalar=s.scalar, dtype=dtype)
    return b.call(runtime.cast, b.t(ins[0]), dtype, int(attrs(n).get("saturate", 1)))


@register("CastLike", first=15)
def cast_like(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    return b.call(runtime.cast_like, b.t(ins[0]), b.t(ins[1]), int(attrs(n).get("saturate", 1)))


@register("Clip", first=11)
def clip(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    lo = b.t(ins[1]) if len(ins) > 1 else None
    hi = b.t(ins[2]) if len(ins) > 2 else None
    return b.call(runtime.clip, b.t(ins[0]), lo, hi)


@register("Clip", first=6, last=10)
def clip_v6(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a = attrs(n)
    return b.call(torch.clamp, b.t(ins[0]), float(a.get("min", -3.4028234663852886e38)), float(a.get("max", 3.4028234663852886e38)))


@register("IsInf", first=10)
def is_inf(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a = attrs(n)
    return b.call(runtime.is_inf, b.t(ins[0]), int(a.get("detect_positive", 1)), int(a.get("detect_negative", 1)))
