"""Reading ONNX models: load with clear errors, and describe inputs, outputs, opsets and ops."""

from __future__ import annotations

import os
from collections import Counter
from typing import TYPE_CHECKING, Any

from .._deps import require
from .._errors import ModelError
from .._specs import TensorSpec, onnx_elem_type_to_dtype

if TYPE_CHECKING:
    import onnx

ModelLike = "str | os.PathLike[str] | onnx.ModelProto"


def load_model(model: Any, *, load_weights: bool = True) -> onnx.ModelProto:
    """An ``onnx.ModelProto`` from a path or a proto, with a clear error for a missing or broken file."""
    onnx = require("onnx", "reading ONNX models")
    if isinstance(model, onnx.ModelProto):
        return model
    path = os.fspath(model)
    if not os.path.isfile(path):
        raise ModelError(f"ONNX file '{path}' does not exist", "a path to an .onnx file", "check the path")
    try:
        model = onnx.load(path, load_external_data=load_weights)
    except Exception as e:  # onnx raises DecodeError, ValueError, OSError depending on the damage
        raise ModelError(
            f"'{path}' could not be read as an ONNX model ({type(e).__name__}: {e})",
            "a valid ONNX protobuf file",
            "re-export the model; if it uses external data, keep the .data file beside it",
        ) from e
    # NOTE: protobuf parses an empty file, and many short byte strings, as an empty ModelProto.
    if not model.HasField("graph") or model.ir_version <= 0:
        raise ModelError(
            f"'{path}' is not an ONNX model ({os.path.getsize(path)} bytes, no graph or IR version)",
            "a valid ONNX protobuf file", "re-export the model, or check that this is the right file",
        )
    return model


def _value_spec(value: Any) -> TensorSpec:
    tt = value.type.tensor_type
    shape: list[int | str | None] = []
    if tt.HasField("shape"):
        for d in tt.shape.dim:
            if d.HasField("dim_value"):
                shape.append(int(d.dim_value))
            elif d.HasField("dim_param"):
                shape.append(d.dim_param)
            else:
                shape.append(None)
    return TensorSpec(value.name, onnx_elem_type_to_dtype(tt.elem_type), tuple(shape))


def io_specs(model: onnx.ModelProto) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The graph's real inputs (initializers excluded) and outputs."""
    inits = {i.name for i in model.graph.initializer}
    inputs = [_value_spec(v) for v in model.graph.input if v.name not in inits]
    outputs = [_value_spec(v) for v in model.graph.output]
    return inputs, outputs


def opsets(model: onnx.ModelProto) -> dict[str, int]:
    return {(o.domain or "ai.onnx"): int(o.version) for o in model.opset_import}


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    """Op types in the main graph, most frequent first (``domain::Op`` outside the default domain)."""
    c = Counter((f"{n.domain}::{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type) for n in model.graph.node)
    return dict(c.most_common())
