"""Run-time helpers: Pad, Resize, the gather/scatter family, OneHot."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from .core import _is_int
from .nn import _torch_pads

# ---- pad, resize, gather/scatter -----------------------------------------------------------------

_PAD_MODES = {"reflect": "reflect", "edge": "replicate", "wrap": "circular"}


def pad(x: torch.Tensor, pads: Sequence[Any], mode: str, value: Any, axes: Sequence[int] | None) -> torch.Tensor:
    r = x.dim()
    axes = list(range(r)) if axes is None else [a % r for a in axes]
    k = len(axes)
    begins: list[Any] = [0] * r
    ends: list[Any] = [0] * r
    for i, a in enumerate(axes):
        begins[a], ends[a] = pads[i], pads[k + i]
    first = 0
    while first < r and all(_is_int(v) and v == 0 for v in (begins[first], ends[first])):
        first += 1
    if first == r:
        return x
    tp = _torch_pads(begins[first:], ends[first:])
    if mode == "constant":
        return F.pad(x, tp, value=value)
    # NOTE: torch pads only the trailing 1-3 dims in these modes and wants (N, C, spatial...).
    lead = list(x.shape[:first])
    y = x.reshape([1, -1, *x.shape[first:]]) if first else x.reshape([1, 1, *x.shape])
    y = F.pad(y, tp, mode=_PAD_MODES[mode])
    return y.reshape(lead + list(y.shape[2:]))


def _axis_coords(
    in_size: Any, out_size: Any, scale: Any, coord: str, roi: tuple[float, float] | None
) -> torch.Tensor:
    i = torch.arange(out_size, dtype=torch.float64)
    if coord == "half_pixel":
        return (i + 0.5) / scale - 0.5
    if coord == "pytorch_half_pixel":
        return (i + 0.5) / scale - 0.5 if out_size > 1 else torch.zeros_like(i)
    if coord == "half_pixel_symmetric":
        adjustment = out_size / (scale * in_size)
        offset = in_size / 2 * (1 - adjustment)
        return offset + (i + 0.5) / scale - 0.5
    if coord == "align_corners":
        # NOTE: ONNX divides by (in * scale - 1), not (out - 1): they differ when in * scale is fractional
        return i * (in_size - 1) / (in_size * scale - 1) if out_size > 1 else torch.zeros_like(i)
    if coord == "asymmetric":
        return i / scale
    if coord == "tf_crop_and_resize":
        lo, hi = roi if roi is not None else (0.0, 1.0)
        if out_size > 1:
            return lo * (in_size - 1) + i * (hi - lo) * (in_size - 1) / (out_size - 1)
        return torch.full_like(i, 0.5 * (lo + hi) * (in_size - 1))
    raise ValueError(f"unknown coordinate_transformation_mode {coord}")


def _cubic_weights(t: torch.Tensor, a: float) -> list[torch.Tensor]:
    def w(d: torch.Tensor) -> torch.Tensor:
        d = d.abs()
        near = ((a + 2) * d - (a + 3)) * d * d + 1
        far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
        return torch.where(d <= 1, near, torch.where(d < 2, far, torch.zeros_like(d)))

    return [w(t + 1), w(t), w(1 - t), w(2 - t)]


def _resize_axis(y: torch.Tensor, axis: int, out_size: Any, scale: Any, o: dict[str, Any],
                 roi: tuple[float, float] | None) -> torch.Tensor:
    n = y.shape[axis]
    x = _axis_coords(n, out_size, scale, o["coord"], roi)
    taps: list[tuple[torch.Tensor, torch.Tensor]] = []
    if o["mode"] == "nearest":
        nm = o["nearest_mode"]
        idx = {"round_prefer_floor": torch.ceil(x - 0.5), "round_prefer_ceil": torch.floor(x + 0.5),
               "floor": torch.floor(x), "ceil": torch.ceil(x)}[nm]
        taps.append((idx, torch.ones_like(x)))
    elif o["mode"] == "linear":
        x0 = torch.floor(x)
        taps += [(x0, 1 - (x - x0)), (x0 + 1, x - x0)]
    else:
        x0 = torch.floor(x)
        ws = _cubic_weights(x - x0, o["cubic_a"])
        taps += [(x0 + k - 1, ws[k]) for k in range(4)]
    if o["exclude_outside"]:
        taps = [(i, torch.where((i >= 0) & (i <= n - 1), w, torch.zeros_like(w))) for i, w in taps]
        total = sum(w for _, w in taps)
        taps = [(i, w / total) for i, w in taps]
    shape = [1] * y.dim()
    shape[axis] = -1
    out: torch.Tensor | None = None
    for i, w in taps:
        picked = torch.index_select(y, axis, i.clamp(0, n - 1).long())
        term = picked * w.to(y.dtype).reshape(shape)
        out = term if out is None else out + term
    assert out is not None
    if o["coord"] == "tf_crop_and_resize":
        inside = ((x >= 0) & (x <= n - 1)).reshape(shape)
        out = torch.where(inside, out, torch.full_like(out, o["extrapolation"]))
    return out


def resize(x: torch.Tensor, scales: Sequence[float] | None, sizes: Sequence[Any] | None, **o: Any) -> torch.Tensor:
    """ONNX Resize: F.interpolate where it is exactly the same computation, else a separable gather."""
    r = x.dim()
    axes = list(range(r)) if o["axes"] is None else [a % r for a in o["axes"]]
    k = len(axes)
    roi = o["roi"]
    if scales is not None and len(scales) == 0:
        scales = None
    roi = roi if roi else None
    if sizes is not None:
        outs = list(sizes)
        if o["policy"] != "stretch":
            ratios = [outs[j] / x.shape[a] for j, a in enumerate(axes)]
            s = min(ratios) if o["policy"] == "not_larger" else max(ratios)
            outs = [int(s * x.shape[a] + 0.5) for a in axes]
            sc = [s] * k
        else:
            sc = []  # computed below, only where the gather path needs them
    else:
        assert scales is not None
        sc = list(scales)
        crop = [roi[j + k] - roi[j] for j in range(k)] if roi is not None and o["coord"] == "tf_crop_and_resize" else [1.0] * k
        # NOTE: integral scales give integer sizes (in * 2), so torch.export sees no SymFloat and no extra guards.
        outs = [x.shape[a] * int(sc[j]) if crop[j] == 1.0 and float(sc[j]).is_integer()
                else _floor_size(x.shape[a] * crop[j] * sc[j]) for j, a in enumerate(axes)]
    fast = _interpolate_mode(o, axes, r, sc, sizes is not None)
    if fast is not None and fast[1] and sizes is None and not all(float(v).is_integer() for v in sc):
        fast = None  # NOTE: align_corners from fractional scales: torch and ONNX round the size differently
    if sizes is not None:
        keeps_nc = all(_same(outs[i], x.shape[i]) for i in range(2)) if fast is not None else False
    else:
        keeps_nc = all(s == 1.0 for s in sc[:2])
    if fast is not None and keeps_nc:
        mode, align = fast
        if all(float(s).is_integer() for s in sc[2:]) or sizes is not None:
            return F.interpolate(x, size=list(outs[2:]), mode=mode, align_corners=align)
        return F.interpolate(x, scale_factor=sc[2:], mode=mode, align_corners=align)
    if not sc:
        sc = [_ratio(outs[j], x.shape[a]) for j, a in enumerate(axes)]
    y = x
    for j, a in enumerate(axes):
        if _is_int(outs[j]) and _is_int(y.shape[a]) and outs[j] == y.shape[a] and sc[j] == 1.0 and roi is None:
            continue
        pair = (roi[j], roi[j + k]) if roi is not None else None
        y = _resize_axis(y, a, outs[j], sc[j], o, pair)
    return y


def _ratio(out_size: Any, in_size: Any) -> Any:
    """``out / in``: a float for static sizes; for symbolic ones, a float64 *tensor* division.

    NOTE: a division of two symbolic sizes is computed inside the kernel, and on CUDA Triton lowers an
    integer true division to an approximate float32 division (see ``dynashape._backend.resize``, where
    this was found: wrong source pixels in nearest resizes, 2026-11-30). A float64 tensor division is
    IEEE-rounded in every kernel; on the CPU it is the same double as Python's ``/``. Not yet run on
    the GPU for this path.
    """
    if _is_int(out_size) and _is_int(in_size):
        return out_size / in_size
    return torch.full((), out_size, dtype=torch.float64) / in_size


def _same(a: Any, b: Any) -> bool:
    # NOTE: under torch.export both are SymInts of the same symbol (N and C pass through), so this
    # comparison is decided statically, adding no guard.
    return bool(a == b)


def _floor_size(v: Any) -> Any:
    return int(v) if isinstance(v, float) else torch.sym_int(v)


def _interpolate_mode(o: dict[str, Any], axes: list[int], r: int, sc: list[Any], by_size: bool) -> tuple[str, bool | None] | None:
    if axes != list(range(r)) or not 3 <= r <= 5:
        return None
    mode, coord = o["mode"], o["coord"]
    if mode == "nearest" and coord == "asymmetric" and o["nearest_mode"] == "floor":
        return "nearest", None
    if mode == "linear" and coord in ("half_pixel", "align_corners"):
        return ("linear", "bilinear", "trilinear")[r - 3], coord == "align_corners"
    if mode == "cubic" and r == 4 and coord in ("half_pixel", "align_corners") and o["cubic_a"] == -0.75 and not o["exclude_outside"]:
        return "bicubic", coord == "align_corners"
    return None


def gather_elements(x: torch.Tensor, idx: torch.Tensor, axis: int) -> torch.Tensor:
    n = x.shape[axis]
    return torch.gather(x, axis, torch.where(idx < 0, idx + n, idx))


def gather_nd(x: torch.Tensor, idx: torch.Tensor, batch_dims: int) -> torch.Tensor:
    m = idx.shape[-1]
    batch = list(x.shape[:batch_dims])
    xb = x.reshape([-1, *x.shape[batch_dims:]])
    ib = idx.reshape([xb.shape[0], -1, m])
    dims = x.shape[batch_dims : batch_dims + m]
    ib = torch.where(ib < 0, ib + torch.tensor(list(dims), dtype=ib.dtype), ib)
    parts = [torch.arange(xb.shape[0]).reshape(-1, 1).expand(ib.shape[0], ib.shape[1])]
    parts += [ib[..., j] for j in range(m)]
    out = xb[tuple(parts)]
    return out.reshape(batch + list(idx.shape[batch_dims:-1]) + list(x.shape[batch_dims + m :]))


_REDUCE_SCATTER = {"add": "sum", "mul": "prod", "max": "amax", "min": "amin"}


def scatter_elements(x: torch.Tensor, idx: torch.Tensor, upd: torch.Tensor, axis: int, reduction: str) -> torch.Tensor:
    idx = torch.where(idx < 0, idx + x.shape[axis], idx)
    if reduction == "none":
        return torch.scatter(x, axis, idx, upd)
    return torch.scatter_reduce(x, axis, idx, upd, _REDUCE_SCATTER[reduction], include_self=True)


def scatter_nd(x: torch.Tensor, idx: torch.Tensor, upd: torch.Tensor, reduction: str) -> torch.Tensor:
    m = idx.shape[-1]
    flat_idx = idx.reshape(-1, m)
    keys = tuple(flat_idx[:, j] for j in range(m))
    vals = upd.reshape([-1, *x.shape[m:]])
    out = x.clone()
    if reduction == "none":
        out[keys] = vals
        return out
    lin = torch.zeros(flat_idx.shape[0], dtype=torch.int64)
    for j in range(m):
        lin = lin * x.shape[j] + keys[j]
    view = out.reshape([-1, *x.shape[m:]])
    view = view.index_reduce(0, lin, vals, _REDUCE_SCATTER[reduction], include_self=True) if reduction != "add" else view.index_add(0, lin, vals)
    return view.reshape(x.shape)


def one_hot(indices: torch.Tensor, depth: Any, values: torch.Tensor, axis: int) -> torch.Tensor:
    depth = int(depth)
    idx = indices.long()
    idx = torch.where(idx < 0, idx + depth, idx)
    hot = (idx.unsqueeze(-1) == torch.arange(depth))
    out = torch.where(hot, values[1], values[0])
    rank = out.dim()
    return out.movedim(-1, axis % rank)
