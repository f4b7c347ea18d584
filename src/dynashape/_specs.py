"""Typed descriptions of a model's inputs and outputs.

A dim is an ``int`` (static), a ``str`` (a symbolic name such as ``"batch"``; dims that share a
name must agree at run time) or ``None`` (dynamic, unnamed).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from . import _dtypes

Dim = int | str | None

# NOTE: dtypes travel as numpy names ("float32", "int64", "bool") in manifests and messages:
# every backend and every user of this library knows them, and they survive JSON. The names and
# their conversions live in one table, dynashape._dtypes.


def onnx_elem_type_to_dtype(elem_type: int) -> str:
    return _dtypes.from_onnx(elem_type)


def dtype_name(dtype: object) -> str:
    """Normalize a numpy or torch dtype (or a name) to a numpy-style name."""
    return _dtypes.name_of(dtype)


@dataclass(frozen=True)
class TensorSpec:
    """Name, dtype and shape of one model input or output."""

    name: str
    dtype: str
    shape: tuple[Dim, ...]

    @property
    def rank(self) -> int:
        return len(self.shape)

    def is_dynamic(self, axis: int) -> bool:
        return not isinstance(self.shape[axis], int)

    @property
    def dynamic_axes(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.rank) if self.is_dynamic(i))

    def dim_label(self, axis: int) -> str:
        """``dim 2 (image_height)`` for messages."""
        d = self.shape[axis]
        return f"dim {axis} ({d})" if isinstance(d, str) else f"dim {axis}"

    def shape_text(self) -> str:
        """trtexec's ``1x3x224x224`` for a static shape; Polygraphy's tuple for one with named or
        unknown dims, ``(1, 3, image_height, image_width)``: joined by ``x``, a dim name (``x_dim0``) or
        a derived size (``((H - 1)//2) + 1``) ran into its neighbours."""
        if all(isinstance(d, int) for d in self.shape):
            return "x".join(str(d) for d in self.shape) or "scalar"
        return "(" + ", ".join("?" if d is None else str(d) for d in self.shape) + ")"

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> TensorSpec:
        shape = data["shape"]
        assert isinstance(shape, list)
        return cls(str(data["name"]), str(data["dtype"]), tuple(shape))


def identifier(name: str) -> str:
    """A dim name as a Python identifier, as ``torch.export.Dim`` requires (``image-height`` -> ``image_height``)."""
    s = re.sub(r"\W", "_", name)
    return s if s and not s[0].isdigit() else f"d_{s}"


def format_shape(shape: Sequence[int]) -> str:
    """trtexec's notation: ``1x3x224x224``; a scalar is ``scalar``."""
    return "x".join(str(int(d)) for d in shape) or "scalar"


def find_spec(specs: Sequence[TensorSpec], name: str) -> TensorSpec | None:
    for s in specs:
        if s.name == name:
            return s
    return None
