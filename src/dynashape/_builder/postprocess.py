"""Ops appended to outputs at build time (the classic example: a Sigmoid on a segmentation output).

Each op is applied the same way to an ONNX graph (a new node) and to a torch module (a function
on the output), so both backends build the same engine from the same request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._errors import DynashapeError

# op name -> (ONNX op_type, ONNX attributes, torch function name on torch / torch.nn.functional)
OPS: dict[str, tuple[str, dict[str, int], str]] = {
    "Sigmoid": ("Sigmoid", {}, "sigmoid"),
    "Tanh": ("Tanh", {}, "tanh"),
    "Relu": ("Relu", {}, "relu"),
    "Exp": ("Exp", {}, "exp"),
    "Abs": ("Abs", {}, "abs"),
    "Softmax": ("Softmax", {"axis": -1}, "softmax"),
    "LogSoftmax": ("LogSoftmax", {"axis": -1}, "log_softmax"),
}


def parse_append_op(text: str) -> tuple[str, str]:
    """``"output_1:Sigmoid"`` -> ``("output_1", "Sigmoid")``; op names are case-insensitive."""
    name, colon, op = text.rpartition(":")
    canon = {k.lower(): k for k in OPS}.get(op.strip().lower())
    if not colon or not name or canon is None:
        raise DynashapeError(
            f"append-op '{text}'",
            "OUTPUT:OP with OP one of " + ", ".join(OPS),
            "e.g. --append-op output_1:Sigmoid",
        )
    return name.strip(), canon


def check_outputs(ops: Sequence[tuple[str, str]], outputs: Sequence[str]) -> None:
    for name, op in ops:
        if op not in OPS:
            raise DynashapeError(f"append op '{op}'", "one of " + ", ".join(OPS))
        if name not in outputs:
            raise DynashapeError(
                f"append op {op} names output '{name}', which the model does not have",
                "one of the outputs: " + ", ".join(outputs),
            )


def apply_onnx(model: Any, ops: Sequence[tuple[str, str]]) -> Any:
    """A copy of ``model`` with each op appended to its output; output names are kept."""
    import onnx
    from onnx import helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    for i, (name, op) in enumerate(ops):
        op_type, attrs, _ = OPS[op]
        inner = f"{name}__before_{op.lower()}_{i}"
        for node in out.graph.node:
            node.input[:] = [inner if x == name else x for x in node.input]
            node.output[:] = [inner if x == name else x for x in node.output]
        out.graph.node.append(helper.make_node(op_type, [inner], [name], name=f"dynashape_append_{op.lower()}_{i}", **attrs))  # type: ignore[arg-type]
    return out


def torch_fn(op: str) -> Any:
    import torch

    _, attrs, fn = OPS[op]
    f = getattr(torch, fn, None) or getattr(torch.nn.functional, fn)
    if "axis" in attrs:
        axis = attrs["axis"]
        return lambda x: f(x, dim=axis)
    return f
