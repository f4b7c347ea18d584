"""Run-time helpers: symbolic shape values, layout and elementwise ops.

They run eagerly with ints and under ``torch.export`` with ``SymInt``s, so they avoid Python branches
on sizes except where the branch is on a value known when the graph is built (an ``int``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def sym_tensor(elems: Sequence[Any], dtype: torch.dtype, scalar: bool) -> torch.Tensor:
    """A tensor from ints and SymInts (``torch.tensor`` of SymInts is not traceable on every torch)."""
    if not elems:
        return torch.zeros(0, dtype=dtype)
    t = torch.stack([torch.full((), e, dtype=dtype) for e in elems])
    return t.reshape(()) if scalar else t


def trunc_div(p: Any, q: int) -> Any:
    """ONNX integer Div (truncation) of a SymInt by a positive int, without a branch on the SymInt."""
    if _is_int(p):
        return p // q if p >= 0 else -((-p) // q)
    return torch.sym_ite(p >= 0, p // q, -((-p) // q))


def reshape(x: torch.Tensor, shape: Sequence[Any], allowzero: int) -> torch.Tensor:
    """ONNX Reshape: a 0 copies the input dim unless ``allowzero``; -1 is inferred."""
    if not allowzero:
        shape = [x.shape[i] if _is_int(s) and s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(list(shape))


def expand(x: torch.Tensor, shape: Sequence[Any]) -> torch.Tensor:
    """ONNX Expand: numpy-style broadcast of ``x`` with ``shape`` (either side may be 1)."""
    nd = max(x.dim(), len(shape))
    full = [1] * (nd - len(shape)) + list(shape)
    x = x.reshape([1] * (nd - x.dim()) + list(x.shape))
    out: list[Any] = []
    for s, d in zip(full, x.shape, strict=False):
        if _is_int(s) and s == 1:
            out.append(-1)
        elif _is_int(d) and d == 1:
            out.append(s)
        else:
            out.append(torch.sym_max(s, d))  # both > 1 means equal; max is right either way
    return x.expand(out)


def tile(x: torch.Tensor, repeats: Sequence[Any]) -> torch.Tensor:
    return x.repeat(list(repeats))


def constant_of_shape(shape: Sequence[Any], value: torch.Tensor) -> torch.Tensor:
    return torch.full(list(shape), value.reshape(-1)[0].item(), dtype=value.dtype, device=value.device)


def arange(start: Any, limit: Any, delta: Any, dtype: torch.dtype, stash: bool = False) -> torch.Tensor:
    if stash or dtype.is_floating_point:
        # NOTE: ONNX defines Range as start + i * delta with ceil((limit - start) / delta) elements
        wide = torch.float64 if dtype == torch.float64 else torch.float32
        count = max(math.ceil((limit - start) / delta), 0) if isinstance(limit - start, (int, float)) else torch.sym_max(
            torch.sym_int(math.ceil((limit - start) / delta)), 0)
        return (start + torch.arange(count, dtype=wide) * delta).to(dtype)
    return torch.arange(start, limit, delta, dtype=dtype)


def topk(x: torch.Tensor, k: Any, axis: int, largest: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """ONNX TopK: among equal values the lower index comes first (a stable sort; torch.topk is not stable)."""
    values, indices = torch.sort(x, dim=axis, descending=largest, stable=True)
    return values.narrow(axis, 0, k), indices.narrow(axis, 0, k)


def gather(x: torch.Tensor, indices: torch.Tensor, axis: int) -> torch.Tensor:
    """ONNX Gather: ``take`` along ``axis`` with an index tensor of any rank; negative indices wrap."""
    axis = axis % x.dim()
    n = x.shape[axis]
    idx = torch.where(indices < 0, indices + n, indices)
    flat = torch.index_select(x, axis, idx.reshape(-1))
    return flat.reshape(list(x.shape[:axis]) + list(indices.shape) + list(x.shape[axis + 1 :]))


def slice_(x: torch.Tensor, starts: Sequence[Any], ends: Sequence[Any], axes: Sequence[int] | None,
           steps: Sequence[int] | None) -> torch.Tensor:
    """ONNX Slice; starts/ends may be SymInts (clamped like Python), axes and steps are ints."""
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    index: list[Any] = [slice(None)] * x.dim()
    flips: list[int] = []
    for s, e, a, st in zip(starts, ends, axes, steps, strict=False):
        a = a % x.dim()
        if st > 0:
            index[a] = slice(_clamp_bound(s), _clamp_bound(e), st)
        else:
            n = x.shape[a]
            # NOTE: negative steps: slice the reversed axis. Element i of x is element n-1-i of flip(x).
            s2 = _neg_start(s, n)
            e2 = _neg_end(e, n)
            index[a] = slice(s2, e2, -st)
            flips.append(a)
    if flips:
        x = torch.flip(x, flips)
    return x[tuple(index)]


_BIG = 2**62


def _clamp_bound(v: Any) -> Any:
    if _is_int(v):
        return max(min(v, _BIG), -_BIG)
    return v


def _neg_start(s: Any, n: Any) -> Any:
    # start index in the reversed axis: n-1-s (s clamped to [-n, n-1] like ONNX)
    if _is_int(s):
        if s >= _BIG:
            return 0
        s = s + n if s < 0 else s
        s = min(max(s, -1), n - 1)
        return max(n - 1 - s, 0)
    return n - 1 - s


def _neg_end(e: Any, n: Any) -> Any:
    if _is_int(e):
        if e <= -_BIG:
            return None
        e = e + n if e < 0 else e
        e = min(max(e, -1), n - 1)
        return n - 1 - e
    return n - 1 - e


def split(x: torch.Tensor, sizes: Sequence[Any], axis: int) -> tuple[torch.Tensor, ...]:
    return tuple(torch.split(x, list(sizes), dim=axis))


def split_even(x: torch.Tensor, parts: int, axis: int) -> tuple[torch.Tensor, ...]:
    """ONNX Split into ``parts`` (ceil-sized chunks, the last one smaller)."""
    n = x.shape[axis]
    chunk = (n + parts - 1) // parts
    sizes = [chunk] * (parts - 1) + [n - chunk * (parts - 1)]
    return tuple(torch.split(x, sizes, dim=axis))


def shape_tensor(x: torch.Tensor, start: int, end: int | None) -> torch.Tensor:
    return sym_tensor(list(x.shape)[slice(start, end)], torch.int64, False)


def numel_tensor(x: torch.Tensor) -> torch.Tensor:
    return torch.full((), x.numel(), dtype=torch.int64)


def flatten(x: torch.Tensor, axis: int) -> torch.Tensor:
    # NOTE: ONNX allows axis in [-r, r]; axis == r flattens every dim into the rows (shape (N, 1)),
    # which a modulo would wrongly turn into 0 (shape (1, N)). TorchScript exports of transformers'
    # attention masks use exactly that.
    axis = axis + x.dim() if axis < 0 else axis
    if axis == 0:
        return x.reshape(1, -1)
    return x.flatten(axis).flatten(0, axis - 1) if x.dim() > axis else x.flatten(0, axis - 1).reshape(-1, 1)


def squeeze(x: torch.Tensor, axes: Sequence[int] | None) -> torch.Tensor:
    return x.squeeze() if axes is None else torch.squeeze(x, tuple(axes))


def unsqueeze(x: torch.Tensor, axes: Sequence[int]) -> torch.Tensor:
    rank = x.dim() + len(axes)
    for a in sorted(a % rank for a in axes):
        x = x.unsqueeze(a)
    return x


def reverse_dims(x: torch.Tensor) -> torch.Tensor:
    return x.permute(list(range(x.dim() - 1, -1, -1)))


def depth_to_space(x: torch.Tensor, bs: int, mode: str) -> torch.Tensor:
    n, c, h, w = x.shape
    if mode == "CRD":
        y = x.reshape(n, c // (bs * bs), bs, bs, h, w).permute(0, 1, 4, 2, 5, 3)
    else:
        y = x.reshape(n, bs, bs, c // (bs * bs), h, w).permute(0, 3, 4, 1, 5, 2)
    return y.reshape(n, c // (bs * bs), h * bs, w * bs)


def space_to_depth(x: torch.Tensor, bs: int, mode: str = "DCR") -> torch.Tensor:
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // bs, bs, w // bs, bs)
    y = y.permute(0, 1, 3, 5, 2, 4) if mode == "CRD" else y.permute(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * bs * bs, h // bs, w // bs)


def eye_like(x: torch.Tensor, k: int, dtype: torch.dtype) -> torch.Tensor:
    rows, cols = x.shape
    i = torch.arange(rows).unsqueeze(1)
    j = torch.arange(cols).unsqueeze(0)
    return (j - i == k).to(dtype)


# NOTE: torch's CPU kernels lack arithmetic and comparisons on uint16/32/64, which ONNX allows; those
# run in int64 and cast back (exact except for uint64 values above 2**63).
_WIDE_UNSIGNED = (torch.uint16, torch.uint32, torch.uint64)


def _widened(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], name: str, keep_type: bool) -> Callable[..., torch.Tensor]:
    def run(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.dtype in _WIDE_UNSIGNED:
            out = fn(a.to(torch.int64), b.to(torch.int64))
            return out.to(a.dtype) if keep_type else out
        return fn(a, b)

    run.__name__ = run.__qualname__ = name  # FX generated code imports it by this name
    return run


def _div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """ONNX Div: true division for floats, truncation for integers."""
    if a.dtype.is_floating_point:
        return a / b
    return torch.div(a, b, rounding_mode="trunc")


add = _widened(torch.add, "add", True)
sub = _widened(torch.sub, "sub", True)
mul = _widened(torch.mul, "mul", True)
div = _widened(_div, "div", True)
maximum = _widened(torch.maximum, "maximum", True)
minimum = _widened(torch.minimum, "minimum", True)
eq = _widened(torch.eq, "eq", False)
lt = _widened(torch.lt, "lt", False)
gt = _widened(torch.gt, "gt", False)
le = _widened(torch.le, "le", False)
ge = _widened(torch.ge, "ge", False)
fmod = _widened(torch.fmod, "fmod", True)
remainder = _widened(torch.remainder, "remainder", True)
lshift = _widened(torch.bitwise_left_shift, "lshift", True)
rshift = _widened(torch.bitwise_right_shift, "rshift", True)


def pow_(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """ONNX Pow keeps the base's type."""
    return torch.pow(a, b).to(a.dtype)


def _float8_info(dtype: torch.dtype) -> tuple[float, float, bool, bool] | None:
    """(largest finite, largest value that rounds to it, has inf, is a float8 type) of a float8 dtype."""
    name = str(dtype).removeprefix("torch.")
    if not name.startswith("float8_") or name == "float8_e8m0fnu":
        return None
    top = float(torch.finfo(dtype).max)
    mantissa_bits = 3 if name.startswith("float8_e4m3") else 2
    # half an ulp above max; a tie rounds to even, which is max only when max's last mantissa bit is 0
    # (e4m3fn: 448 = 1.110b * 2^8); for the others (max mantissa all ones) the tie overflows.
    half_ulp = 2.0 ** (math.floor(math.log2(top)) - mantissa_bits) / 2
    even = name == "float8_e4m3fn"
    return top, top + half_ulp, name == "float8_e5m2", even


def cast(x: torch.Tensor, dtype: torch.dtype, saturate: int = 1) -> torch.Tensor:
    info = _float8_info(dtype)
    if info is None or not x.dtype.is_floating_point:
        # NOTE: float -> int truncates toward zero in ONNX and in torch; NaN/inf are undefined in both.
        return x.to(dtype)
    # NOTE: ONNX defines float8 overflow itself (Cast 19 `saturate`); torch versions differ (2.13 saturates
    # e4m3fn, not the others), so clamp first and write the unsaturated overflow values explicitly.
    top, limit, has_inf, even = info
    wide = x.float() if x.dtype != torch.float64 else x
    y = torch.clamp(wide, -top, top).to(dtype)
    if saturate:
        return y
    mag = wide.abs()
    over = (mag > limit) | ((mag == limit) & (not even))
    if has_inf:
        bad = torch.where(wide > 0, float("inf"), float("-inf"))
    else:
        bad = torch.copysign(torch.full_like(wide, float("nan")), wide)  # the reference keeps the sign
    return torch.where(over, bad.to(dtype).to(wide.dtype), y.to(wide.dtype)).to(dtype)


def narrow(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A float tensor in a narrower float dtype, finite values beyond its range saturated.

    NOTE: a float32 graph writes "minus infinity" as ``torch.finfo(torch.float32).min`` (masks); the
    model run in float16 writes ``torch.finfo(torch.float16).min``. Saturating gives that value
    where a plain cast gives -inf (and NaN where a mask multiplies it by 0); real infinities stay.
    """
    if not x.is_floating_point() or x.dtype == dtype:
        return x
    info = torch.finfo(dtype)
    return torch.where(torch.isinf(x), x, x.clamp(info.min, info.max)).to(dtype)


def cast_like(x: torch.Tensor, like: torch.Tensor, saturate: int = 1) -> torch.Tensor:
    return cast(x, like.dtype, saturate)


def clip(x: torch.Tensor, lo: torch.Tensor | None, hi: torch.Tensor | None) -> torch.Tensor:
    if lo is not None:
        x = torch.maximum(x, lo.to(x.dtype))
    if hi is not None:
        x = torch.minimum(x, hi.to(x.dtype))
    return x


def selu(x: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    return gamma * torch.where(x > 0, x, alpha * (torch.exp(x) - 1))


def hard_sigmoid(x: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    return torch.clamp(alpha * x + beta, 0.0, 1.0)


def thresholded_relu(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return torch.where(x > alpha, x, torch.zeros_like(x))


def shrink(x: torch.Tensor, bias: float, lambd: float) -> torch.Tensor:
    zero = torch.zeros_like(x)
    return torch.where(x < -lambd, x + bias, torch.where(x > lambd, x - bias, zero)).to(x.dtype)


def is_inf(x: torch.Tensor, positive: int, negative: int) -> torch.Tensor:
    if positive and negative:
        return torch.isinf(x)
    if positive:
        return torch.isposinf(x)
    if negative:
        return torch.isneginf(x)
    return torch.zeros_like(x, dtype=torch.bool)


def bitwise_not(x: torch.Tensor) -> torch.Tensor:
    """~x; torch has no CPU kernel for uint16/uint32/uint64, so those flip bits with an XOR on a wider int."""
    if x.dtype == torch.uint16:
        return (x.to(torch.int32) ^ 0xFFFF).to(torch.uint16)
    if x.dtype == torch.uint32:
        return (x.to(torch.int64) ^ 0xFFFFFFFF).to(torch.uint32)
    return torch.bitwise_not(x)
