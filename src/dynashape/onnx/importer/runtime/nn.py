"""Run-time helpers: convolution, pooling, normalization, softmax, Gemm, reductions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from .core import _is_int, flatten

# ---- convolution and pooling ---------------------------------------------------------------------


def _torch_pads(begins: Sequence[Any], ends: Sequence[Any]) -> list[Any]:
    """ONNX [b1, b2, ..., e1, e2, ...] as F.pad's (last_b, last_e, ..., first_b, first_e)."""
    out: list[Any] = []
    for b, e in zip(reversed(begins), reversed(ends), strict=False):
        out += [b, e]
    return out


def _resolve_pads(
    x: torch.Tensor, kernel: Sequence[int], strides: Sequence[int], dilations: Sequence[int],
    pads: Sequence[int], auto_pad: str,
) -> tuple[list[Any], list[Any]]:
    k = len(kernel)
    if auto_pad == "VALID":
        return [0] * k, [0] * k
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        return list(pads[:k]), list(pads[k:])
    begins, ends = [], []
    for i in range(k):
        size, s = x.shape[2 + i], strides[i]
        out = (size + s - 1) // s
        total = torch.sym_max((out - 1) * s + (kernel[i] - 1) * dilations[i] + 1 - size, 0)
        small = total // 2
        big = total - small
        begins.append(small if auto_pad == "SAME_UPPER" else big)
        ends.append(big if auto_pad == "SAME_UPPER" else small)
    return begins, ends


def _symmetric(begins: Sequence[Any], ends: Sequence[Any]) -> bool:
    return all(_is_int(b) and _is_int(e) and b == e for b, e in zip(begins, ends, strict=False))


def conv(
    x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, *, group: int, kernel: Sequence[int] | None,
    strides: Sequence[int], dilations: Sequence[int], pads: Sequence[int], auto_pad: str,
) -> torch.Tensor:
    k = w.dim() - 2
    kernel = list(kernel) if kernel else list(w.shape[2:])
    begins, ends = _resolve_pads(x, kernel, strides, dilations, pads, auto_pad)
    padding: Any = list(begins)
    if not _symmetric(begins, ends):
        x = F.pad(x, _torch_pads(begins, ends))
        padding = 0
    fn = (F.conv1d, F.conv2d, F.conv3d)[k - 1]
    return fn(x, w, bias, list(strides), padding, list(dilations), group)


def conv_transpose(
    x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, *, group: int, output_padding: Sequence[int],
    output_shape: Sequence[int] | None, strides: Sequence[int], dilations: Sequence[int], pads: Sequence[int],
    auto_pad: str,
) -> torch.Tensor:
    k = w.dim() - 2
    fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[k - 1]
    plain = output_shape is None and auto_pad in ("NOTSET", "VALID")
    begins = list(pads[:k]) if auto_pad == "NOTSET" else [0] * k
    ends = list(pads[k:]) if auto_pad == "NOTSET" else [0] * k
    if plain and begins == ends and all(p < max(s, d) for p, s, d in zip(output_padding, strides, dilations, strict=False)):
        return fn(x, w, bias, list(strides), begins, list(output_padding), group, list(dilations))
    y = fn(x, w, None, list(strides), 0, 0, group, list(dilations))
    if not plain:
        begins, ends = [], []
        for i in range(k):
            full = (x.shape[2 + i] - 1) * strides[i] + (w.shape[2 + i] - 1) * dilations[i] + 1
            target = output_shape[i] if output_shape is not None else x.shape[2 + i] * strides[i]
            if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
                total = full + output_padding[i] - target
                small, big = total // 2, total - total // 2
                begins.append(big if auto_pad == "SAME_LOWER" else small)
                ends.append(small if auto_pad == "SAME_LOWER" else big)
            else:  # NOTE: explicit output_shape without auto_pad keeps the leading pads, crops/extends the end
                begin = pads[i] if auto_pad == "NOTSET" else 0
                begins.append(begin)
                ends.append(full + output_padding[i] - begin - target)
    crop = _torch_pads([-b for b in begins], [op - e for e, op in zip(ends, output_padding, strict=False)])
    y = F.pad(y, crop)
    if bias is not None:
        y = y + bias.reshape([1, -1] + [1] * k)
    return y


def _window_sums(x: torch.Tensor, kernel: Sequence[int], strides: Sequence[int], dilations: Sequence[int]) -> torch.Tensor:
    """Sum over each (dilated) window: a convolution of each channel with a kernel of ones."""
    k = len(kernel)
    n, c = x.shape[0], x.shape[1]
    ones = torch.ones([1, 1, *kernel], dtype=x.dtype, device=x.device)
    fn = (F.conv1d, F.conv2d, F.conv3d)[k - 1]
    y = fn(x.reshape([n * c, 1, *x.shape[2:]]), ones, None, list(strides), 0, list(dilations))
    return y.reshape([n, c, *y.shape[2:]])


def _ceil_extra(x: torch.Tensor, kernel: Sequence[int], strides: Sequence[int], dilations: Sequence[int],
                begins: Sequence[Any], ends: Sequence[Any]) -> list[Any]:
    """Zeros to add at each axis' end so that a VALID pooling yields ONNX's ceil_mode output size."""
    extra = []
    for i, (kk, s, d) in enumerate(zip(kernel, strides, dilations, strict=False)):
        span = x.shape[2 + i] + begins[i] + ends[i]
        window = (kk - 1) * d + 1
        out = -(-(span - window) // s) + 1
        if (out - 1) * s >= x.shape[2 + i] + begins[i]:
            out = out - 1  # NOTE: a last window that starts in the end padding is dropped (ONNX 19+, torch)
        extra.append(torch.sym_max((out - 1) * s + window - span, 0))
    return extra


def pool(
    x: torch.Tensor, op: str, kernel: Sequence[int], *, ceil_mode: int, count_include_pad: int, p: int,
    strides: Sequence[int], dilations: Sequence[int], pads: Sequence[int], auto_pad: str,
) -> torch.Tensor:
    k = len(kernel)
    begins, ends = _resolve_pads(x, kernel, strides, dilations, pads, auto_pad)
    small = _symmetric(begins, ends) and all(b <= kk // 2 for b, kk in zip(begins, kernel, strict=False))
    if op == "MaxPool":
        fn = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[k - 1]
        if small:
            return fn(x, list(kernel), list(strides), list(begins), list(dilations), bool(ceil_mode))
        x = F.pad(x, _torch_pads(begins, ends), value=float("-inf"))
        return fn(x, list(kernel), list(strides), 0, list(dilations), bool(ceil_mode))
    plain = all(d == 1 for d in dilations) and k > 1 and not (ceil_mode and count_include_pad)
    if op == "AveragePool" and small and plain:
        avg = F.avg_pool2d if k == 2 else F.avg_pool3d
        return avg(x, list(kernel), list(strides), list(begins), bool(ceil_mode), bool(count_include_pad))
    # General case: window sums over the padded input divided by the count of counted cells.
    extra = _ceil_extra(x, kernel, strides, dilations, begins, ends) if ceil_mode else [0] * k
    ends2 = [e + x2 for e, x2 in zip(ends, extra, strict=False)]
    data = x.abs().pow(p) if op == "LpPool" else x
    sums = _window_sums(F.pad(data, _torch_pads(begins, ends2)), kernel, strides, dilations)
    if op == "LpPool":
        return sums.pow(1.0 / p)
    ones = torch.ones([1, 1, *x.shape[2:]], dtype=x.dtype, device=x.device)
    if count_include_pad:
        ones = F.pad(ones, _torch_pads(begins, ends), value=1.0)
        mask = F.pad(ones, _torch_pads([0] * k, extra))
    else:
        mask = F.pad(ones, _torch_pads(begins, ends2))
    return sums / _window_sums(mask, kernel, strides, dilations)


def max_pool_with_indices(
    x: torch.Tensor, kernel: Sequence[int], *, ceil_mode: int, strides: Sequence[int], dilations: Sequence[int],
    pads: Sequence[int], auto_pad: str, storage_order: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MaxPool with its Indices output: ONNX flattens indices over the whole input (N x C x spatial,
    padding not counted; spatial dims row-major, or column-major with storage_order=1); torch counts
    row-major within each (n, c) plane, so re-order the spatial part and add the plane offset."""
    k = len(kernel)
    # pads are symmetric and at most half the kernel (checked at import), so torch pads the same way
    begins, _ = _resolve_pads(x, kernel, strides, dilations, pads, auto_pad)
    fn = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[k - 1]
    values, idx = fn(x, list(kernel), list(strides), list(begins), list(dilations), bool(ceil_mode), return_indices=True)
    sizes = list(x.shape[2:])
    if storage_order:
        coords, rest = [], idx
        for d in reversed(sizes):  # unravel the row-major index, last dim first
            coords.append(rest % d)
            rest = rest // d
        coords.reverse()
        idx, stride = torch.zeros_like(idx), 1
        for c_, d in zip(coords, sizes, strict=True):  # column-major: the first spatial dim varies fastest
            idx = idx + c_ * stride
            stride = stride * d
    plane = 1
    for d in sizes:
        plane = plane * d
    n, c = x.shape[0], x.shape[1]
    offsets = torch.arange(n * c, device=x.device, dtype=torch.int64).reshape([n, c] + [1] * k) * plane
    return values, idx + offsets


def batch_norm_training(
    x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, mean: torch.Tensor, var: torch.Tensor,
    epsilon: float, momentum: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """BatchNormalization with training_mode=1: normalize with the batch's statistics (population
    variance) and return the updated running mean and variance, as the ONNX spec writes them."""
    dims = [0, *range(2, x.dim())]
    cur_mean = x.mean(dims)
    cur_var = x.var(dims, unbiased=False)
    shape = [1, -1] + [1] * (x.dim() - 2)
    y = (x - cur_mean.reshape(shape)) / torch.sqrt(cur_var.reshape(shape) + epsilon) * scale.reshape(shape) + bias.reshape(shape)
    return y, mean * momentum + cur_mean * (1 - momentum), var * momentum + cur_var * (1 - momentum)


def global_pool(x: torch.Tensor, op: str, p: int) -> torch.Tensor:
    dims = list(range(2, x.dim()))
    if op == "GlobalAveragePool":
        return x.mean(dims, keepdim=True)
    if op == "GlobalMaxPool":
        return x.amax(dims, keepdim=True)
    return x.abs().pow(p).sum(dims, keepdim=True).pow(1.0 / p)


# ---- normalization, softmax, gemm ----------------------------------------------------------------


def layer_norm(
    x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None, axis: int, eps: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    dims = list(range(axis % x.dim(), x.dim()))
    xf = x.float()
    mean = xf.mean(dims, keepdim=True)
    inv = torch.rsqrt((xf - mean).pow(2).mean(dims, keepdim=True) + eps)
    y = ((xf - mean) * inv).to(x.dtype) * scale
    if bias is not None:
        y = y + bias
    return y, mean, inv


def group_norm(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, groups: int, eps: float,
               per_group: bool) -> torch.Tensor:
    if per_group:
        c = x.shape[1]
        scale = scale.repeat_interleave(c // groups)
        bias = bias.repeat_interleave(c // groups)
    return F.group_norm(x, groups, scale, bias, eps)


def mvn(x: torch.Tensor, axes: Sequence[int]) -> torch.Tensor:
    mean = x.mean(list(axes), keepdim=True)
    var = (x - mean).pow(2).mean(list(axes), keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-9)


def hardmax(x: torch.Tensor, axis: int) -> torch.Tensor:
    idx = x.argmax(axis, keepdim=True)
    return torch.zeros_like(x).scatter(axis, idx, 1.0)


def softmax_2d(x: torch.Tensor, axis: int, op: str) -> torch.Tensor:
    y = flatten(x, axis)
    if op == "Softmax":
        y = torch.softmax(y, 1)
    elif op == "LogSoftmax":
        y = torch.log_softmax(y, 1)
    else:
        y = hardmax(y, 1)
    return y.reshape(x.shape)


def gemm(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None, alpha: float, beta: float, ta: int,
         tb: int) -> torch.Tensor:
    y = (a.t() if ta else a) @ (b.t() if tb else b)
    if alpha != 1.0:
        y = y * alpha
    if c is not None:
        y = y + (c * beta if beta != 1.0 else c)
    return y


# ---- reductions -----------------------------------------------------------------------------------


def reduce(x: torch.Tensor, op: str, axes: Sequence[int] | None, keepdim: bool, noop: bool = False) -> torch.Tensor:
    if not axes and noop:
        return x
    dims = [a % x.dim() for a in axes] if axes else list(range(x.dim()))
    if op == "ReduceProd":
        y = x
        for d in sorted(dims, reverse=True):
            y = torch.prod(y, d, keepdim=keepdim)
        return y.to(x.dtype)
    if op == "ReduceMax":
        return torch.amax(x, dims, keepdim) if x.numel() else _empty_reduce(x, dims, keepdim, float("-inf"))
    if op == "ReduceMin":
        return torch.amin(x, dims, keepdim) if x.numel() else _empty_reduce(x, dims, keepdim, float("inf"))
    if op == "ReduceMean":
        return torch.mean(x, dims, keepdim)
    if op == "ReduceLogSumExp":
        return torch.logsumexp(x, dims, keepdim)
    base = {"ReduceL1": x.abs(), "ReduceL2": x * x, "ReduceSumSquare": x * x}.get(op, x)
    y = torch.sum(base, dims, keepdim)
    if op == "ReduceL2":
        y = torch.sqrt(y)
    elif op == "ReduceLogSum":
        y = torch.log(y)
    return y.to(x.dtype)


def _empty_reduce(x: torch.Tensor, dims: list[int], keepdim: bool, fill: float) -> torch.Tensor:
    shape = [1 if i in dims else s for i, s in enumerate(x.shape)] if keepdim else [
        s for i, s in enumerate(x.shape) if i not in dims]
    if x.dtype == torch.bool:
        return torch.full(shape, (fill < 0 and False) or fill > 0, dtype=x.dtype)
    if not x.dtype.is_floating_point:
        info = torch.iinfo(x.dtype)
        fill = info.min if fill < 0 else info.max
    return torch.full(shape, fill, dtype=x.dtype)


def arg_reduce(x: torch.Tensor, is_max: bool, axis: int, keepdim: bool, last: bool) -> torch.Tensor:
    fn = torch.argmax if is_max else torch.argmin
    if not last:
        return fn(x, axis, keepdim)
    n = x.shape[axis]
    return n - 1 - fn(torch.flip(x, [axis]), axis, keepdim)


def cumsum(x: torch.Tensor, axis: int, exclusive: bool, reverse: bool) -> torch.Tensor:
    if reverse:
        x = torch.flip(x, [axis])
    y = torch.cumsum(x, axis).to(x.dtype)
    if exclusive:
        y = y - x
    return torch.flip(y, [axis]) if reverse else y
