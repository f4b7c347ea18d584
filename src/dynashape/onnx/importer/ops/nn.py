"""Neural-network ops: convolutions, pooling, normalizations, Softmax, Gemm/MatMul, Dropout, Einsum."""

from __future__ import annotations

from typing import Any

import onnx
import torch
import torch.nn.functional as F

from ...._errors import UnsupportedOpError
from .. import runtime
from ..graph import Builder, Value, attrs
from ..registry import register


def _unsupported(n: onnx.NodeProto, what: str, expected: str) -> UnsupportedOpError:
    return UnsupportedOpError(f"{n.op_type} node '{n.name}' uses {what}", expected, "re-export the model without it")


def _spatial(b: Builder, n: onnx.NodeProto, w: Value) -> int:
    """Number of spatial dims, from kernel_shape, the weight, or the input's rank."""
    a = attrs(n)
    if "kernel_shape" in a:
        return len(a["kernel_shape"])
    c = b.const(w) if w is not None else None
    if c is not None:
        return c.dim() - 2
    r = b.rank(n.input[1] if w is not None else n.input[0])
    if r is None:
        raise _unsupported(n, "an input of unknown rank", "inputs whose rank ONNX shape inference can tell")
    return r - 2


def _conv_args(a: dict[str, Any], k: int) -> dict[str, Any]:
    return {
        "strides": [int(v) for v in a.get("strides", [1] * k)],
        "dilations": [int(v) for v in a.get("dilations", [1] * k)],
        "pads": [int(v) for v in a.get("pads", [0] * (2 * k))],
        "auto_pad": a.get("auto_pad", "NOTSET"),
    }


@register("Conv")
def conv(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a = attrs(n)
    k = _spatial(b, n, ins[1])
    bias = b.t(ins[2]) if len(ins) > 2 else None
    kernel = [int(v) for v in a["kernel_shape"]] if "kernel_shape" in a else None
    return b.call(runtime.conv, b.t(ins[0]), b.t(ins[1]), bias, group=int(a.get("group", 1)), kernel=kernel,
                  **_conv_args(a, k))


@register("ConvTranspose")
def conv_transpose(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a = attrs(n)
    k = _spatial(b, n, ins[1])
    bias = b.t(ins[2]) if len(ins) > 2 else None
    out_pad = [int(v) for v in a.get("output_padding", [0] * k)]
    out_shape = [int(v) for v in a["output_shape"]] if "output_shape" in a else None
    return b.call(runtime.conv_transpose, b.t(ins[0]), b.t(ins[1]), bias, group=int(a.get("group", 1)),
                  output_padding=out_pad, output_shape=out_shape, **_conv_args(a, k))


@register("MaxPool", "AveragePool", "LpPool", first=11)
def pool(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a = attrs(n)
    kernel = [int(v) for v in a["kernel_shape"]]
    k = len(kernel)
    wants_indices = len(n.output) > 1 and bool(n.output[1])
    if wants_indices:
        pads = _conv_args(a, k)
        begins, ends = pads["pads"][:k], pads["pads"][k:]
        if pads["auto_pad"] not in ("NOTSET", "VALID") or begins != ends or any(p > kk // 2 for p, kk in zip(begins, kernel, strict=True)):
            raise _unsupported(n, "Indices with asymmetric, automatic or large pads", "symmetric pads of at most half the kernel")
        out = b.call(runtime.max_pool_with_indices, b.t(ins[0]), kernel, ceil_mode=int(a.get("ceil_mode", 0)),
                     storage_order=int(a.get("storage_order", 0)), **pads)
        return [b.call(_getitem, out, 0), b.call(_getitem, out, 1)]
    return b.call(runtime.pool, b.t(ins[0]), n.op_type, kernel, ceil_mode=int(a.get("ceil_mode", 0)),
                  count_include_pad=int(a.get("count_include_pad", 0)), p=int(a.get("p", 2)), **_conv_args(a, k))


@register("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", first=1)
def global_pool(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    return b.call(runtime.global_pool, b.t(ins[0]), n.op_type, int(attrs(n).get("p", 2)))


@register("BatchNormalization", first=9)
def batch_norm(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a = attrs(n)
    x, scale, bias, mean, var = (b.t(v) for v in ins[:5])
    if int(a.get("training_mode", 0)):
        # Deterministic (batch statistics), so it is imported rather than refused like training-mode Dropout.
        out = b.call(runtime.batch_norm_training, x, scale, bias, mean, var, float(a.get("epsilon", 1e-5)), float(a.get("momentum", 0.9)))
        return [b.call(_getitem, out, i) for i in range(3)]
    if len([o for o in n.output if o]) > 1:
        raise _unsupported(n, "running statistics as outputs without training_mode", "inference-mode BatchNormalization")
    return b.call(F.batch_norm, x, mean, var, scale, bias, False, 0.0, float(a.get("epsilon", 1e-5)))


@register("InstanceNormalization", first=6)
def instance_norm(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    eps = float(attrs(n).get("epsilon", 1e-5))
    return b.call(F.instance_norm, b.t(ins[0]), None, None, b.t(ins[1]), b.t(ins[2]), True, 0.0, eps)


@register("LayerNormalization", first=17)
def layer_norm(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a = attrs(n)
    axis, eps = int(a.get("axis", -1)), float(a.get("epsilon", 1e-5))
    scale = b.const(ins[1])
    bias = b.t(ins[2]) if len(ins) > 2 else None
    wanted = len([o for o in n.output if o])
    if wanted == 1 and axis < 0 and scale is not None and scale.dim() == -axis and int(a.get("stash_type", 1)) == 1:
        bias_c = b.const(ins[2]) if len(ins) > 2 and ins[2] is not None else None
        if ins[2] is None or (bias_c is not None and bias_c.shape == scale.shape):
            return b.call(F.layer_norm, b.t(ins[0]), list(scale.shape), b.t(ins[1]), bias, eps)
    out = b.call(runtime.layer_norm, b.t(ins[0]), b.t(ins[1]), bias, axis, eps)
    return [b.call(_getitem, out, i) for i in range(3)]


def _getitem(t: Any, i: int) -> Any:
    return t[i]


@register("GroupNormalization", first=18, last=20)
def group_norm_18(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a = attrs(n)
    return b.call(runtime.group_norm, b.t(ins[0]), b.t(ins[1]), b.t(ins[2]), int(a["num_groups"]),
                  float(a.get("epsilon", 1e-5)), True)


@register("GroupNormalization", first=21)
def group_norm_21(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a = attrs(n)
    return b.call(runtime.group_norm, b.t(ins[0]), b.t(ins[1]), b.t(ins[2]), int(a["num_groups"]),
                  float(a.get("epsilon", 1e-5)), False)


@register("LRN", first=1)
def lrn(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a = attrs(n)
    return b.call(F.local_response_norm, b.t(ins[0]), int(a["size"]), float(a.get("alpha", 1e-4)),
                  float(a.get("beta", 0.75)), float(a.get("bias", 1.0)))


@register("MeanVarianceNormalization", first=9)
def mvn(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    axes = [int(v) for v in attrs(n).get("axes", [0, 2, 3])]
    return b.call(runtime.mvn, b.t(ins[0]), axes)


@register("Softmax", "LogSoftmax", "Hardmax", first=13)
def softmax(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    axis = int(attrs(n).get("axis", -1))
    if n.op_type == "Hardmax":
        return b.call(runtime.hardmax, b.t(ins[0]), axis)
    return b.call(torch.softmax if n.op_type == "Softmax" else torch.log_softmax, b.t(ins[0]), axis)


@register("Softmax", "LogSoftmax", "Hardmax", first=1, last=12)
def softmax_v1(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    # NOTE: before opset 13 these ops flatten the input to 2-D at `axis` and normalize each row.
    axis = int(attrs(n).get("axis", 1))
    return b.call(runtime.softmax_2d, b.t(ins[0]), axis, n.op_type)


@register("MatMul", first=1)
def matmul(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    return b.call(torch.matmul, b.t(ins[0]), b.t(ins[1]))


@register("Gemm", first=7)
def gemm(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    a = attrs(n)
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    ta, tb = int(a.get("transA", 0)), int(a.get("transB", 0))
    c = ins[2] if len(ins) > 2 else None
    cc = b.const(c) if c is not None else None
    x, w = b.t(ins[0]), b.t(ins[1])
    if not ta and tb and alpha == 1.0 and beta == 1.0 and (c is None or (cc is not None and cc.dim() == 1)):
        return b.call(F.linear, x, w, b.t(c))  # NOTE: the Linear layer pattern; one fused addmm
    return b.call(runtime.gemm, x, w, b.t(c), alpha, beta, ta, tb)


@register("Dropout", first=7)
def dropout(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    if len(ins) > 2 and ins[2] is not None:
        mode = b.const(ins[2])
        if mode is None or bool(mode.reshape(-1)[0]):
            raise _unsupported(n, "training_mode (random output)", "inference-mode Dropout")
    x = b.t(ins[0])
    if len(n.output) > 1 and n.output[1]:
        return [x, b.call(torch.ones_like, x, dtype=torch.bool)]
    return x


@register("Einsum", first=12)
def einsum(b: Builder, n: onnx.NodeProto, ins: list[Value]) -> Value:
    return b.call(torch.einsum, attrs(n)["equation"].replace(" ", ""), *[b.t(v) for v in ins])
