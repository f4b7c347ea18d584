"""The one dtype table: round trips between names, numpy, torch, ONNX and TensorRT member names."""

from __future__ import annotations

import enum

import numpy as np
import onnx
import pytest
import torch

from dynashape import DynashapeError
from dynashape._dtypes import (
    DTYPES,
    from_onnx,
    from_torch,
    from_trt,
    host_dtype,
    lookup,
    name_of,
    numpy_dtype,
    numpy_to_torch,
    to_onnx,
    to_torch,
    to_trt,
    torch_to_numpy,
)


@pytest.mark.parametrize("name", list(DTYPES))
def test_onnx_round_trip_and_itemsize(name: str) -> None:
    d = DTYPES[name]
    assert from_onnx(to_onnx(name)) == name
    # The ONNX code is the one onnx itself uses for this type, and the sizes agree with numpy/ml_dtypes.
    assert onnx.helper.tensor_dtype_to_np_dtype(d.onnx) == numpy_dtype(name)
    assert numpy_dtype(name).itemsize == d.itemsize


@pytest.mark.parametrize("name", list(DTYPES))
def test_torch_round_trip(name: str) -> None:
    t = to_torch(name)
    assert from_torch(t) == name
    assert torch.empty(0, dtype=t).element_size() == DTYPES[name].itemsize
    assert t.is_floating_point == DTYPES[name].is_float


@pytest.mark.parametrize("name", ["float32", "float16", "bfloat16", "float8_e4m3fn", "int64", "bool", "uint8"])
def test_numpy_torch_bits_round_trip(name: str) -> None:
    a = np.arange(-3, 5, dtype=np.float32).astype(numpy_dtype(name))
    t = numpy_to_torch(a)
    assert t.dtype == to_torch(name)
    back = torch_to_numpy(t)
    assert back.dtype == a.dtype
    np.testing.assert_array_equal(back.view(np.uint8), a.view(np.uint8))


class _FakeDataType(enum.Enum):
    """The member names of TensorRT 10's ``tensorrt.DataType`` (values are arbitrary here)."""

    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    FP8 = 6
    BF16 = 7
    INT64 = 8
    INT4 = 9


class _Trt:
    DataType = _FakeDataType


@pytest.mark.parametrize("name", [n for n, d in DTYPES.items() if d.trt_name])
def test_trt_round_trip(name: str) -> None:
    assert from_trt(to_trt(name, _Trt)) == name


def test_trt_types_without_an_entry_are_refused() -> None:
    with pytest.raises(DynashapeError, match="TensorRT data type INT4"):
        from_trt(_FakeDataType.INT4)
    with pytest.raises(DynashapeError, match="float64 for TensorRT"):
        to_trt("float64", _Trt)


def test_names_from_anything() -> None:
    assert name_of(torch.bfloat16) == "bfloat16"
    assert name_of("torch.float8_e4m3fn") == "float8_e4m3fn"
    assert name_of(np.dtype(">f4")) == "float32"  # byte order is not part of the name
    assert name_of(np.float16) == "float16"
    assert from_onnx(onnx.TensorProto.STRING) == "onnx_type_8"


def test_bf16_travels_as_float32_on_the_numpy_side() -> None:
    assert host_dtype("bfloat16") == np.float32
    assert host_dtype("float8_e5m2") == np.float32
    assert host_dtype("int32") == np.int32


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(DynashapeError, match="one of float32, uint8"):
        lookup("float33")
