"""ONNX helpers: reading models (:mod:`.model`); the importer to PyTorch lives in :mod:`.importer`."""

from __future__ import annotations

from typing import Any

from .model import io_specs, load_model, op_counts, opsets

__all__ = ["io_specs", "load_model", "op_counts", "opsets", "to_torch"]


def to_torch(model: Any, *, compute_dtype: Any = None) -> Any:
    """Import an ONNX model as a ``torch.fx.GraphModule`` (see :mod:`dynashape.onnx.importer`);
    ``compute_dtype`` (``torch.float16``/``torch.bfloat16``) makes it compute in that dtype."""
    from .importer import to_torch as _to_torch

    return _to_torch(model, compute_dtype=compute_dtype)
