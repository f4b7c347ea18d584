"""Element types beyond numpy's: bfloat16 and the four float8 formats torch represents exactly."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ml_dtypes = pytest.importorskip("ml_dtypes")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from dynashape._errors import ModelError  # noqa: E402
from dynashape.onnx import to_torch  # noqa: E402
from dynashape.onnx.importer import conformance as conf  # noqa: E402
from dynashape.onnx.importer.graph import numpy_to_torch, torch_to_numpy  # noqa: E402

FLOAT8 = [
    (TensorProto.FLOAT8E4M3FN, torch.float8_e4m3fn),
    (TensorProto.FLOAT8E4M3FNUZ, torch.float8_e4m3fnuz),
    (TensorProto.FLOAT8E5M2, torch.float8_e5m2),
    (TensorProto.FLOAT8E5M2FNUZ, torch.float8_e5m2fnuz),
]

# around each format's largest finite value and its rounding midpoint, plus inf/nan/zeros/tiny values
EDGES = np.array(
    [0.0, -0.0, 0.3, -0.3, 1e-9, 1e-3, 239.0, 240.0, 247.0, 248.0, 249.0, 447.0, 448.0, 463.0, 464.0, 465.0, 500.0,
     57343.0, 57344.0, 59392.0, 61439.0, 61440.0, 61441.0, 1e6, -1e6, np.inf, -np.inf, np.nan],
    dtype=np.float32,
)


def _cast_model(to: int, saturate: int, src: int = TensorProto.FLOAT) -> onnx.ModelProto:
    node = helper.make_node("Cast", ["x"], ["y"], to=to, saturate=saturate)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", src, [None])],
                          [helper.make_tensor_value_info("y", to, [None])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])


@pytest.mark.parametrize("saturate", [1, 0])
@pytest.mark.parametrize(("onnx_type", "torch_type"), FLOAT8)
def test_cast_to_float8_matches_onnx_reference(onnx_type: int, torch_type: torch.dtype, saturate: int) -> None:
    m = _cast_model(onnx_type, saturate)
    want = ReferenceEvaluator(m).run(None, {"x": EDGES})[0]
    (got,) = to_torch(m)(torch.from_numpy(EDGES))
    assert got.dtype == torch_type
    # NaN where the reference has NaN (its payload is not specified), bit-exact elsewhere (signed zeros included)
    nan = np.isnan(want.astype(np.float32))
    np.testing.assert_array_equal(torch.isnan(got.float()).numpy(), nan)
    np.testing.assert_array_equal(got.view(torch.uint8).numpy()[~nan], want.view(np.uint8)[~nan])


@pytest.mark.parametrize(("onnx_type", "torch_type"), FLOAT8)
def test_cast_from_float8(onnx_type: int, torch_type: torch.dtype) -> None:
    m = _cast_model(TensorProto.FLOAT, 1, src=onnx_type)
    bits = np.arange(256, dtype=np.uint8)
    x = numpy_to_torch(bits.view(torch_to_numpy(torch.zeros(0, dtype=torch_type)).dtype))
    want = ReferenceEvaluator(m).run(None, {"x": torch_to_numpy(x)})[0]
    (got,) = to_torch(m)(x)
    np.testing.assert_array_equal(got.numpy(), want)


def test_bfloat16_initializer_and_math() -> None:
    w = np.array([1.0078125, -3.5, 1e-30, np.inf], dtype=ml_dtypes.bfloat16)
    g = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.BFLOAT16, [4])],
        [helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [4])],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    gm = to_torch(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]))
    assert gm.w.dtype == torch.bfloat16
    np.testing.assert_array_equal(torch_to_numpy(gm.w).view(np.int16), w.view(np.int16))  # bit for bit
    x = np.array([1.0, 1.0, 0.0, 1.0], dtype=ml_dtypes.bfloat16)
    (y,) = gm(numpy_to_torch(x))
    np.testing.assert_array_equal(torch_to_numpy(y).astype(np.float32), (x.astype(np.float32) + w.astype(np.float32)).astype(ml_dtypes.bfloat16).astype(np.float32))


def test_numpy_conversions_keep_rank_and_bits() -> None:
    for a in (np.float32(2.5), np.array(1.5, dtype=ml_dtypes.bfloat16), np.zeros((2, 0, 3), dtype=ml_dtypes.float8_e5m2)):
        t = numpy_to_torch(a)
        assert tuple(t.shape) == np.shape(a)
        back = torch_to_numpy(t)
        assert back.dtype == np.asarray(a).dtype and back.shape == np.shape(a)


def test_types_torch_lacks_stay_refused() -> None:
    int4 = helper.make_tensor("w", TensorProto.INT4, [2], [1, -2])
    g = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "g", [],
                          [helper.make_tensor_value_info("y", TensorProto.INT4, [2])], initializer=[int4])
    with pytest.raises(ModelError):
        to_torch(helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)]))
    assert conf._as_array(int4) is None
    assert conf._as_array(helper.make_tensor("f", TensorProto.FLOAT4E2M1, [2], [0.5, 1.0])) is None
    assert conf._as_array(np.float32(1.0)).shape == ()  # a numpy scalar is a rank-0 tensor
