"""The one dtype table: every element type dynashape knows, by its canonical name.

A dtype travels through dynashape by its numpy-style name (``"float32"``, ``"int64"``, ``"bool"``,
``"bfloat16"``): manifests, messages and :class:`~dynashape.TensorSpec` use it. This table gives,
per name, the ONNX element type, the torch dtype, the TensorRT ``DataType`` member, the item size
and the kind, and the conversions between them. torch, ml_dtypes and TensorRT are imported only
when a conversion needs them.

NOTE: numpy has no bfloat16 or float8. On the numpy side those values travel in one of two ways,
and this module is the one place that decides which:

* exactly, as ml_dtypes arrays (``ml_dtypes.bfloat16``), where ml_dtypes is installed (it comes
  with onnx): :func:`numpy_dtype` and :func:`torch_to_numpy` use it;
* widened to float32 (:func:`host_dtype`), for generated input data and reference runs, which
  compute in float32 anyway; a backend casts them to the engine's dtype.

>>> DTYPES["float16"].onnx, DTYPES["float16"].itemsize, from_onnx(16)
(10, 2, 'bfloat16')
>>> name_of("torch.bfloat16"), name_of(np.dtype(">f4")), host_dtype("bfloat16")
('bfloat16', 'float32', dtype('float32'))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._errors import DynashapeError


@dataclass(frozen=True)
class DType:
    """One element type. ``kind``: ``"f"`` float, ``"i"`` signed int, ``"u"`` unsigned int, ``"b"`` bool."""

    name: str
    onnx: int
    itemsize: int
    kind: str
    torch_name: str | None  # attribute of the torch module; None: torch has no such dtype
    trt_name: str | None  # member of tensorrt.DataType; None: TensorRT has no such I/O type
    numpy_native: bool = True  # False: numpy lacks it (ml_dtypes has it)

    @property
    def is_float(self) -> bool:
        return self.kind == "f"


_TABLE = (
    # name, onnx, itemsize, kind, torch, tensorrt, numpy has it
    DType("float32", 1, 4, "f", "float32", "FLOAT"),
    DType("uint8", 2, 1, "u", "uint8", "UINT8"),
    DType("int8", 3, 1, "i", "int8", "INT8"),
    DType("uint16", 4, 2, "u", "uint16", None),
    DType("int16", 5, 2, "i", "int16", None),
    DType("int32", 6, 4, "i", "int32", "INT32"),
    DType("int64", 7, 8, "i", "int64", "INT64"),
    DType("bool", 9, 1, "b", "bool", "BOOL"),
    DType("float16", 10, 2, "f", "float16", "HALF"),
    DType("float64", 11, 8, "f", "float64", None),
    DType("uint32", 12, 4, "u", "uint32", None),
    DType("uint64", 13, 8, "u", "uint64", None),
    DType("bfloat16", 16, 2, "f", "bfloat16", "BF16", numpy_native=False),
    # NOTE: TensorRT's FP8 is the e4m3 "fn" encoding (no infinities), the same bits as ONNX's and torch's.
    DType("float8_e4m3fn", 17, 1, "f", "float8_e4m3fn", "FP8", numpy_native=False),
    DType("float8_e4m3fnuz", 18, 1, "f", "float8_e4m3fnuz", None, numpy_native=False),
    DType("float8_e5m2", 19, 1, "f", "float8_e5m2", None, numpy_native=False),
    DType("float8_e5m2fnuz", 20, 1, "f", "float8_e5m2fnuz", None, numpy_native=False),
)

#: canonical name -> DType
DTYPES: dict[str, DType] = {d.name: d for d in _TABLE}
_BY_ONNX = {d.onnx: d for d in _TABLE}
_BY_TRT = {d.trt_name: d for d in _TABLE if d.trt_name is not None}


def lookup(name: str) -> DType:
    """The table entry for a canonical name, or a :class:`DynashapeError` listing the known names."""
    try:
        return DTYPES[name]
    except KeyError:
        raise DynashapeError(f"dtype '{name}'", "one of " + ", ".join(DTYPES), "use a numpy-style dtype name") from None


def name_of(dtype: Any) -> str:
    """The canonical name of a numpy, ml_dtypes or torch dtype, or of a name (``"torch.float16"``).

    Byte order is not part of the name: ``name_of(np.dtype(">f4")) == "float32"``; callers that
    hand memory to a backend check ``dtype.isnative`` themselves.
    """
    if isinstance(dtype, np.dtype):
        return dtype.name
    if isinstance(dtype, type) and issubclass(dtype, np.generic):  # np.float16, ml_dtypes.bfloat16
        return np.dtype(dtype).name
    text = str(dtype)
    if text.startswith("torch."):
        text = text[len("torch."):]
    if text in DTYPES:
        return text
    try:
        return np.dtype(text).name
    except TypeError:
        return text


def from_onnx(elem_type: int) -> str:
    """ONNX ``TensorProto`` element type -> canonical name (``onnx_type_N`` for types not in the table)."""
    d = _BY_ONNX.get(int(elem_type))
    return d.name if d is not None else f"onnx_type_{int(elem_type)}"


def to_onnx(name: str) -> int:
    return lookup(name).onnx


def host_dtype(name: str) -> np.dtype:
    """The numpy dtype that carries values of ``name`` in generated data and references:
    the dtype itself where numpy has it, float32 for bfloat16 and float8 (see the module's NOTE)."""
    d = lookup(name)
    return np.dtype(d.name) if d.numpy_native else np.dtype(np.float32)


def numpy_dtype(name: str) -> np.dtype:
    """The exact numpy dtype of ``name``; bfloat16 and float8 need ml_dtypes."""
    d = lookup(name)
    if d.numpy_native:
        return np.dtype(d.name)
    try:
        import ml_dtypes
    except ImportError:
        raise DynashapeError(f"dtype {name} as a numpy array", "ml_dtypes installed (numpy has no " + name + ")",
                             "pip install ml_dtypes") from None
    return np.dtype(getattr(ml_dtypes, name))


def to_torch(name: str) -> Any:
    """Canonical name -> ``torch.dtype`` (imports torch)."""
    import torch

    d = lookup(name)
    dt = getattr(torch, d.torch_name, None) if d.torch_name else None
    if not isinstance(dt, torch.dtype):
        raise DynashapeError(f"dtype {name} with torch {torch.__version__}", "a dtype this torch version has",
                             "use another dtype or a newer torch")
    return dt


def from_torch(dtype: Any) -> str:
    """``torch.dtype`` -> canonical name."""
    return name_of(dtype)


def to_trt(name: str, trt: Any) -> Any:
    """Canonical name -> ``trt.DataType`` member (``trt`` is the imported tensorrt module)."""
    d = lookup(name)
    if d.trt_name is None or not hasattr(trt.DataType, d.trt_name):
        raise DynashapeError(f"dtype {name} for TensorRT", "one of " + ", ".join(x.name for x in _BY_TRT.values()),
                             "cast the model's input or output to a type TensorRT supports")
    return getattr(trt.DataType, d.trt_name)


def from_trt(dtype: Any) -> str:
    """``trt.DataType`` member -> canonical name (replaces ``trt.nptype``, which lacks bf16 and fp8)."""
    member = getattr(dtype, "name", None) or str(dtype).rsplit(".", 1)[-1]
    d = _BY_TRT.get(member)
    if d is None:
        raise DynashapeError(f"TensorRT data type {member}", "one of " + ", ".join(_BY_TRT),
                             "cast this tensor to a supported type in the model")
    return d.name


# numpy <-> torch, bit for bit ----------------------------------------------------------------------

def _view_type(d: DType) -> str:
    return {1: "uint8", 2: "int16"}[d.itemsize]


def numpy_to_torch(a: Any) -> Any:
    """A numpy array or scalar (ml_dtypes bfloat16/float8 included) as a torch tensor, bit for bit."""
    import torch

    a = np.asarray(a)
    d = DTYPES.get(a.dtype.name)
    if d is not None and not d.numpy_native and a.dtype.type.__module__.startswith("ml_dtypes"):
        return torch.from_numpy(a.copy(order="C").view(_view_type(d))).view(to_torch(d.name))
    return torch.from_numpy(np.array(a))


def torch_to_numpy(t: Any) -> Any:
    """The inverse of :func:`numpy_to_torch` (bfloat16/float8 become ml_dtypes arrays)."""
    import torch

    d = DTYPES.get(name_of(t.dtype))
    if d is not None and not d.numpy_native:
        bits = torch.int16 if d.itemsize == 2 else torch.uint8
        return t.detach().contiguous().view(bits).numpy().view(numpy_dtype(d.name))
    return t.detach().numpy()


def onnx_to_torch_map() -> dict[int, Any]:
    """ONNX element type -> torch dtype, for every entry this torch version has."""
    import torch

    out = {}
    for d in _TABLE:
        dt = getattr(torch, d.torch_name, None) if d.torch_name else None
        if isinstance(dt, torch.dtype):
            out[d.onnx] = dt
    return out


# NOTE: the ONNX importer keeps the float32 constants of index arithmetic (T5's position buckets, a
# rotary embedding's inv_freq) under names with this prefix; see onnx/importer/precision.py.
FP32_KEPT_PREFIX = "fp32_kept_"


def module_to(module: Any, dtype: Any) -> Any:
    """``module.to(dtype)`` for a float dtype, except the float32 constants an imported graph keeps on
    purpose (named ``fp32_kept_*``): converting them would put back the rounding the importer avoids."""
    import itertools

    kept = {id(t) for name, t in itertools.chain(module.named_parameters(), module.named_buffers())
            if name.rsplit(".", 1)[-1].startswith(FP32_KEPT_PREFIX)}
    if not kept:
        return module.to(dtype)
    return module._apply(lambda t: t.to(dtype) if t.is_floating_point() and id(t) not in kept else t)
