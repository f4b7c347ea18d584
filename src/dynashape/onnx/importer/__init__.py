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

from ..model import load_model
from . import ops  # noqa: F401 - registers the converters
from .errors import build_error, onnx_node_in
from .graph import Builder
from .registry import supported_ops

__all__ = ["build_error", "onnx_node_in", "supported_ops", "to_torch"]


def to_torch(model: Any) -> torch.fx.GraphModule:
    """Convert an ``onnx.ModelProto`` or a path to one into a ``torch.fx.GraphModule`` (eval mode)."""
    proto = load_model(os.fspath(model) if isinstance(model, os.PathLike) else model)
    gm = Builder(proto).build()
    return gm.eval()
