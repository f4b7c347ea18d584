"""Import an ONNX model as a ``torch.fx.GraphModule`` that ``torch.export`` traces with dynamic dims.

>>> import onnx, torch
>>> from onnx import helper, TensorProto
>>> g = helper.make_graph(
...     [helper.make_node("Relu", ["x"], ["y"])], "g",
...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])])
>>> gm = to_torch(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]))
>>> gm(torch.tensor([-1.0, 2.0]))
(tensor([0., 2.]),)

The module's ``forward`` takes the graph inputs positionally, in ONNX order (initializers excluded),
and returns a tuple of the graph outputs in ONNX order, even for one output. Initializers become
parameters (floating point) or buffers; shape arithmetic becomes ``SymInt`` arithmetic (see
:mod:`.graph`). Ops outside :func:`supported_ops` raise :class:`~dynashape._errors.UnsupportedOpError`
at import, never a wrong result at run time.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ..._errors import DynashapeError
from ..model import load_model
from . import ops  # noqa: F401 - registers the converters
from .errors import build_error, onnx_node_in
from .graph import Builder
from .registry import supported_ops

__all__ = ["build_error", "onnx_node_in", "supported_ops", "to_torch"]


def to_torch(model: Any, *, compute_dtype: torch.dtype | None = None) -> torch.fx.GraphModule:
    """Convert an ``onnx.ModelProto`` or a path to one into a ``torch.fx.GraphModule`` (eval mode).

    ``compute_dtype`` (``torch.float16`` or ``torch.bfloat16``; None: float32 as the graph says)
    makes the module compute in that dtype: float32 weights, constants and every float32 the graph
    names become ``compute_dtype``; float32 graph inputs are cast to it on entry and float32 graph
    outputs back to float32 on exit, so callers feed and receive what the ONNX file declares.
    ``Module.to(float16)`` alone is not enough for an imported graph (its ``Cast(to=FLOAT)`` nodes
    would still produce float32).
    """
    if compute_dtype is not None and compute_dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise DynashapeError(f"compute_dtype {compute_dtype}", "torch.float16, torch.bfloat16, torch.float32 or None",
                             "pass one of those (None keeps the graph's float32)")
    proto = load_model(os.fspath(model) if isinstance(model, os.PathLike) else model)
    gm = Builder(proto, compute_dtype=compute_dtype).build()
    return gm.eval()
