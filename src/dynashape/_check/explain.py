"""Turn a pin into words: what happens in the graph, and what to change in the PyTorch code."""

from __future__ import annotations

from ._graph import node_id
from .rules import Pin

_INT_HINT = "a size read with int(), .item(), .tolist() or numpy, or a number stored on the module, is frozen by tracing"


def message(pin: Pin, symbol: str, export_value: int, new_value: int, out_shape: tuple[int, ...] | None) -> str:
    n = pin.node
    at = f"at {symbol}={new_value}"
    fails = f"; {at} ONNX Runtime fails: {pin.error}" if pin.error else ""
    if pin.kind == "reshape":
        after = f"; {at} the output is {_shape(out_shape)} instead of following it" if out_shape and not pin.error else ""
        return (f"the Reshape target holds the constant {pin.value} at axis {pin.axis}, where its input carries the dynamic "
                f"dim '{symbol}' ({export_value} at export){after}{fails}")
    if pin.kind == "resize":
        return (f"Resize to constant sizes: axis {pin.axis} is always {pin.value}, the size it had at export with "
                f"{symbol}={export_value}, instead of following '{symbol}'{fails}")
    if pin.kind == "slice":
        return (f"Slice with constant bounds: axis {pin.axis} is always {pin.value} (computed at export from "
                f"{symbol}={export_value}) instead of following '{symbol}'{fails}")
    if pin.kind == "frozen":
        c = pin.consumer
        return (f"{n.op_type} builds a tensor whose axis {pin.axis} is the constant {pin.value} ({symbol} at export); "
                f"it meets the dynamic dim '{symbol}' at {c.op_type} node '{node_id(c)}'{fails}")
    if pin.kind == "constant":
        return (f"its input '{pin.constant}' is a constant folded at export with {symbol}={export_value}; it meets "
                f"the dynamic dim '{symbol}' here{fails}")
    return f"the node's output does not follow '{symbol}' ({export_value} at export){fails}"


def _shape(s: tuple[int, ...] | None) -> str:
    return "x".join(map(str, s)) if s else "?"


def fix_text(pin: Pin, symbol: str, tensor_axis: int | None) -> str:
    """The change in PyTorch terms. ``tensor_axis`` is the axis of the tensor whose size should be used."""
    v, ax = pin.value, tensor_axis if tensor_axis is not None else 0
    size = f"x.shape[{ax}]"
    op = pin.node.op_type
    if pin.kind == "reshape":
        if ax == 0 and v == 1:
            return f"use `x.flatten(1)` or `x.reshape(x.shape[0], -1)` instead of `x.view(1, -1)`: keep the batch as {size}"
        return (f"build the target from the tensor's own sizes, e.g. `x.reshape({size}, ...)` or `-1`, instead of the "
                f"number {v}; {_INT_HINT}")
    if pin.kind == "resize":
        return ("use `F.interpolate(x, size=skip.shape[-2:])` without int(), or `scale_factor=`, instead of a fixed "
                f"size {v}")
    if pin.kind == "slice":
        return f"slice with negative or open bounds, e.g. `x[:, :-1]`, instead of `x[:, :{v}]` with a Python int"
    if op == "Expand" or (pin.kind == "frozen" and op == "Expand"):
        return f"use `t.expand({size}, -1, -1)` with the tensor size itself, never int({size}) or a stored number ({v})"
    if op == "Tile":
        return f"use `t.repeat({size}, 1)` with the tensor size itself, or rely on broadcasting, instead of repeating {v} times"
    if op == "ConstantOfShape" or (pin.kind == "constant" and pin.consumer is not None and pin.consumer.op_type == "Concat"):
        return (f"create it from the input, e.g. `x.new_zeros({size}, ...)`, instead of `torch.zeros({v}, ...)` with a "
                "Python int; the exporter folds the latter into a constant")
    if op == "Range" or pin.kind == "constant":
        return (f"compute it from the tensor size, e.g. `torch.arange({size}, device=x.device)` or `x.new_*(...)`, "
                f"without int(): the exporter folds it into a constant of the export size {v}")
    return f"find where this size becomes a Python number ({_INT_HINT}) and keep it a tensor size such as {size}"
