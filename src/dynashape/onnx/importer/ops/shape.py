"""Shape and layout ops. Integer shape values stay :class:`Sym` (symbolic ints) where they can."""

from __future__ import annotations

import math
import operator
from typing import Any, cast

import onnx
import torch

from ...._errors import UnsupportedOpError
from .. import runtime
from ..graph import Builder, Const, Sym, SymGrid, Value, as_grid, attrs, from_grid
from ..registry import register

_SYM_MAX = 64  # as graph._SYM_MAX: larger integer tensors are never shapes


@register("Constant")
def constant(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a = attrs(n)
    if "value" in a:
        return Const(a["value"], n.output[0])
    for key, dtype in (("value_float", torch.float32), ("value_int", torch.int64)):
        if key in a:
            return Const(torch.tensor(a[key], dtype=dtype), n.output[0])
    for key, dtype in (("value_floats", torch.float32), ("value_ints", torch.int64)):
        if key in a:
            return Const(torch.tensor(list(a[key]), dtype=dtype), n.output[0])
    raise UnsupportedOpError(f"Constant node '{n.name}' holds {sorted(a)}", "a tensor, float(s) or int(s)", "use a numeric tensor")


@register("Identity")
def identity(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    return ins[0]


@register("Shape")
def shape(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a = attrs(n)
    x = ins[0]
    if isinstance(x, (Const, Sym)):
        c = b.const(x)
        dims: list[Any] | None = list(c.shape) if c is not None else ([] if x.scalar else [len(x.elems)])  # type: ignore[union-attr]
    else:
        r = b.rank(n.input[0])
        dims = None if r is None else [b.size(x, i) for i in range(r)]
    if dims is None:
        return b.call(runtime.shape_tensor, b.t(x), a.get("start", 0), a.get("end"))
    return Sym(dims[slice(a.get("start", 0), a.get("end"))])


@register("Size")
def size(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    r = b.rank(n.input[0])
    if r is None or not isinstance(ins[0], torch.fx.Node):
        return b.call(runtime.numel_tensor, b.t(ins[0]))
    total: Any = 1
    for i in range(r):
        total = b.arith(operator.mul, total, b.size(ins[0], i))
    return Sym([total], scalar=True)


@register("Reshape", first=5)
def reshape(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    allowzero = int(attrs(n).get("allowzero", 0))
    target = b.sym(ins[1])
    grid = as_grid(ins[0])
    if grid is not None and target is not None and target.static and grid.size <= _SYM_MAX:
        shape = [int(cast(int, v)) for v in target.elems]  # static: every element is an int
        shape = [grid.shape[i] if v == 0 and not allowzero and i < grid.ndim else v for i, v in enumerate(shape)]
        known = math.prod(v for v in shape if v != -1)
        if shape.count(-1) <= 1 and known > 0 and grid.size % known == 0:
            shape = [grid.size // known if v == -1 else v for v in shape]
            if math.prod(shape) == grid.size:
                return from_grid(grid.reshape(shape), ins[0].dtype)
    return b.call(runtime.reshape, b.t(ins[0]), b.ints(ins[1]), allowzero)


@register("Flatten")
def flatten(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    return b.call(runtime.flatten, b.t(ins[0]), int(attrs(n).get("axis", 1)))


def _axes(b: Builder, n: onnx.NodeProto, ins: list[Value], attr_until: int) -> Any:
    version = b.version(n) or 0
    if version < attr_until:
        axes = attrs(n).get("axes")
        return None if axes is None else [int(v) for v in axes]
    return None if len(ins) < 2 or ins[1] is None else b.ints(ins[1])


@register("Squeeze")
def squeeze(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    axes = _axes(b, n, ins, 13)
    s = b.sym(ins[0])
    if s is not None and not s.scalar and len(s.elems) == 1 and axes in (None, [0], [-1]):
        return Sym(s.elems, scalar=True, dtype=s.dtype)
    return b.call(runtime.squeeze, b.t(ins[0]), axes)


@register("Unsqueeze")
def unsqueeze(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    axes = _axes(b, n, ins, 13)
    s = b.sym(ins[0])
    if s is not None and s.scalar and axes in ([0], [-1]):
        return Sym(s.elems, dtype=s.dtype)
    return b.call(runtime.unsqueeze, b.t(ins[0]), axes)


@register("Concat", first=4)
def concat(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    axis = int(attrs(n)["axis"])
    syms = [b.sym(v) for v in ins]
    if all(s is not None and not s.scalar for s in syms):
        return Sym([e for s in syms for e in s.elems], dtype=syms[0].dtype)  # type: ignore[union-attr]
    return b.call(torch.cat, [b.t(v) for v in ins], axis)


@register("Gather", first=1)
def gather(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    axis = int(attrs(n).get("axis", 0))
    s, idx = b.sym(ins[0]), b.const(ins[1])
    if s is not None and not s.scalar and idx is not None and idx.dim() <= 1:
        size = len(s.elems)
        picked = [s.elems[int(i) % size] for i in idx.reshape(-1).tolist()]
        return Sym(picked, scalar=idx.dim() == 0, dtype=s.dtype)
    return b.call(runtime.gather, b.t(ins[0]), b.t(ins[1]), axis)


@register("Slice", first=10)
def slice_(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    starts, ends = b.ints(ins[1]), b.ints(ins[2])
    axes = b.ints(ins[3]) if len(ins) > 3 and ins[3] is not None else None
    steps = b.ints(ins[4]) if len(ins) > 4 and ins[4] is not None else None
    return _slice(b, ins[0], starts, ends, axes, steps)


@register("Slice", first=1, last=9)
def slice_v1(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a = attrs(n)
    return _slice(b, ins[0], list(a["starts"]), list(a["ends"]), a.get("axes"), None)


def _slice(b: Builder, x: Value, starts: Any, ends: Any, axes: Any, steps: Any) -> Value:
    if any(isinstance(v, torch.fx.Node) for v in (starts, ends, axes, steps)):
        return b.call(runtime.slice_, b.t(x), starts, ends, axes, steps)  # run-time values: eager only
    count = len(starts)
    axes = list(range(count)) if axes is None else [int(v) for v in axes]
    steps = [1] * count if steps is None else [int(v) for v in steps]
    if isinstance(x, SymGrid) and all(isinstance(v, int) for v in starts + ends):
        index = [slice(None)] * x.grid.ndim
        for st, en, ax, sp in zip(starts, ends, axes, steps, strict=False):
            index[ax % x.grid.ndim] = slice(_pyclamp(st), _pyclamp(en), sp)
        return SymGrid(x.grid[tuple(index)], x.dtype)
    s = b.sym(x)
    if (s is not None and not s.scalar and axes in ([0], [-1])
            and all(isinstance(v, int) for v in starts + ends)):
        return Sym(s.elems[slice(_pyclamp(starts[0]), _pyclamp(ends[0]), steps[0])], dtype=s.dtype)
    return b.call(runtime.slice_, b.t(x), starts, ends, axes, steps)


def _pyclamp(v: int) -> int:
    return max(min(v, 2**62), -(2**62))


@register("Expand", first=8)
def expand(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    return b.call(runtime.expand, b.t(ins[0]), b.ints(ins[1]))


@register("Tile", first=6)
def tile(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    return b.call(runtime.tile, b.t(ins[0]), b.ints(ins[1]))


@register("ConstantOfShape", first=9)
def constant_of_shape(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    value = attrs(n).get("value", torch.zeros(1, dtype=torch.float32))
    shape = b.ints(ins[0])
    if isinstance(shape, list) and all(isinstance(v, int) for v in shape) and math.prod(shape) <= 64 and len(shape) == 1:
        if not value.dtype.is_floating_point and value.dtype != torch.bool:
            return Sym([int(value.reshape(-1)[0])] * shape[0], dtype=value.dtype)
    return b.call(torch.full, shape, value.reshape(-1)[0].item(), dtype=value.dtype)


@register("Range", first=11)
def range_(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    dtype = b.dtype(n.input[0]) or torch.int64
    # NOTE: Range 27's stash_type=1 (the default) accumulates float16/bfloat16 in float32.
    stash = dtype in (torch.float16, torch.bfloat16) and int(attrs(n).get("stash_type", 1)) == 1
    return b.call(runtime.arange, b.scalar(ins[0]), b.scalar(ins[1]), b.scalar(ins[2]), dtype, stash)


@register("Transpose")
def transpose(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    perm = attrs(n).get("perm")
    if isinstance(ins[0], SymGrid):
        return SymGrid(ins[0].grid.transpose(None if perm is None else [int(p) for p in perm]), ins[0].dtype)
    x = b.t(ins[0])
    if perm is None:
        return b.call(runtime.reverse_dims, x)
    return b.method("permute", x, [int(p) for p in perm])


@register("Split", first=2)
def split(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a = attrs(n)
    axis = int(a.get("axis", 0))
    version = b.version(n) or 0
    count = len(n.output)
    sizes: Any = None
    if version >= 13:
        if len(ins) > 1 and ins[1] is not None:
            sizes = b.ints(ins[1])
    elif "split" in a:
        sizes = [int(v) for v in a["split"]]
    x = b.t(ins[0])
    if sizes is None:
        parts = int(a.get("num_outputs", count))
        out = b.call(runtime.split_even, x, parts, axis)
    else:
        out = b.call(runtime.split, x, sizes, axis)
    return [b.call(operator.getitem, out, i) for i in range(count)]


@register("DepthToSpace", first=11)
def depth_to_space(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a = attrs(n)
    return b.call(runtime.depth_to_space, b.t(ins[0]), int(a["blocksize"]), a.get("mode", "DCR"))


@register("SpaceToDepth")
def space_to_depth(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a = attrs(n)
    return b.call(runtime.space_to_depth, b.t(ins[0]), int(a["blocksize"]), a.get("mode", "DCR"))


@register("Trilu", first=14)
def trilu(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    k = b.scalar(ins[1]) if len(ins) > 1 and ins[1] is not None else 0
    fn = torch.triu if int(attrs(n).get("upper", 1)) else torch.tril
    return b.call(fn, b.t(ins[0]), k)


@register("EyeLike", first=9)
def eye_like(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a = attrs(n)
    dtype = torch.float32
    if "dtype" in a:
        from ..graph import dtype_of

        dtype = dtype_of(int(a["dtype"]), f"EyeLike node '{n.name}'")
    else:
        dtype = b.dtype(n.input[0]) or torch.float32
    return b.call(runtime.eye_like, b.t(ins[0]), int(a.get("k", 0)), dtype)
