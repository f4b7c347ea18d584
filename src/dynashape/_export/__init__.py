"""Export a ``torch.nn.Module`` to ONNX with dynamic axes, and verify the export right away.

The verification runs the ONNX model in ONNX Runtime at several shapes and compares with PyTorch:
a dim that the graph pinned (a hard-coded reshape, say) fails here, naming the shape that broke
and the output that differed, instead of later inside a build or in production.
"""

from __future__ import annotations

from .torch_onnx import ExportResult, export

__all__ = ["ExportResult", "export"]
