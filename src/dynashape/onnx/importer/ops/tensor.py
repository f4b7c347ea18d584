"""Data movement ops: Pad, Resize, the gather/scatter family, OneHot, NonZero."""

from __future__ import annotations

from typing import Any

import onnx
import torch

from ...._errors import UnsupportedOpError
from .. import runtime
from ..graph import Builder, Value, attrs
from ..registry import register


@register("Pad", first=11)
def pad(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    mode = attrs(n).get("mode", "constant")
    value: Any = 0
    if len(ins) > 2 and ins[2] is not None:
        value = b.scalar(ins[2])
    axes = b.ints(ins[3]) if len(ins) > 3 and ins[3] is not None else None
    return b.call(runtime.pad, b.t(ins[0]), b.ints(ins[1]), mode, value, axes)


@register("Pad", first=2, last=10)
def pad_v2(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a = attrs(n)
    return b.call(runtime.pad, b.t(ins[0]), [int(v) for v in a["pads"]], a.get("mode", "constant"),
                  float(a.get("value", 0.0)), None)


@register("Resize", first=11)
def resize(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a = attrs(n)
    if int(a.get("antialias", 0)):
        raise UnsupportedOpError(f"Resize node '{n.name}' uses antialias=1", "antialias=0",
                                 "re-export with antialias off")
    scales = b.const(ins[2]) if len(ins) > 2 and ins[2] is not None else None
    sc: Any = None
    if scales is not None and scales.numel():
        sc = [float(v) for v in scales.tolist()]
    elif len(ins) > 2 and ins[2] is not None and scales is None:
        sc = b.method("tolist", b.t(ins[2]))  # run-time scales: eager only
    sizes = b.ints(ins[3]) if len(ins) > 3 and ins[3] is not None else None
    roi_c = b.const(ins[1]) if len(ins) > 1 and ins[1] is not None else None
    roi: Any = None
    if roi_c is not None and roi_c.numel():
        roi = [float(v) for v in roi_c.tolist()]
    elif roi_c is None and len(ins) > 1 and ins[1] is not None and opts_coord(n) == "tf_crop_and_resize":
        roi = b.method("tolist", b.t(ins[1]))  # run-time roi: eager only
    opts = {
        "mode": a.get("mode", "nearest"),
        "coord": a.get("coordinate_transformation_mode", "half_pixel"),
        "nearest_mode": a.get("nearest_mode", "round_prefer_floor"),
        "cubic_a": float(a.get("cubic_coeff_a", -0.75)),
        "exclude_outside": int(a.get("exclude_outside", 0)),
        "extrapolation": float(a.get("extrapolation_value", 0.0)),
        "axes": [int(v) for v in a["axes"]] if "axes" in a else None,
        "policy": a.get("keep_aspect_ratio_policy", "stretch"),
        "roi": roi,
    }
    return b.call(runtime.resize, b.t(ins[0]), sc, sizes, **opts)


def opts_coord(n: onnx.NodeProto) -> str:
    return str(attrs(n).get("coordinate_transformation_mode", "half_pixel"))


@register("GatherElements", first=11)
def gather_elements(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    return b.call(runtime.gather_elements, b.t(ins[0]), b.t(ins[1]), int(attrs(n).get("axis", 0)))


@register("GatherND", first=12)
def gather_nd(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    return b.call(runtime.gather_nd, b.t(ins[0]), b.t(ins[1]), int(attrs(n).get("batch_dims", 0)))


@register("ScatterElements", first=11)
def scatter_elements(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a = attrs(n)
    return b.call(runtime.scatter_elements, b.t(ins[0]), b.t(ins[1]), b.t(ins[2]), int(a.get("axis", 0)),
                  a.get("reduction", "none"))


@register("ScatterND", first=11)
def scatter_nd(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    return b.call(runtime.scatter_nd, b.t(ins[0]), b.t(ins[1]), b.t(ins[2]), attrs(n).get("reduction", "none"))


@register("OneHot", first=9)
def one_hot(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    return b.call(runtime.one_hot, b.t(ins[0]), b.scalar(ins[1]), b.t(ins[2]), int(attrs(n).get("axis", -1)))


@register("NonZero", first=9)
def non_zero(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    return b.method("t", b.call(torch.nonzero, b.t(ins[0])))
