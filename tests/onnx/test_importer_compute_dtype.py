"""``to_torch(model, compute_dtype=...)``: an imported float32 graph computing in float16/bfloat16.

The graph below has what made imported transformers fail in reduced precision: a ``Cast(to=FLOAT)``
of an integer input (positions), a float32 ``ConstantOfShape`` and a float ``Range``, all meeting a
weight in a MatMul.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from dynashape._errors import DynashapeError  # noqa: E402
from dynashape.onnx import to_torch  # noqa: E402


def _model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Cast", ["pos"], ["posf"], to=TensorProto.FLOAT),  # [n, 4] int64 -> float
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("ConstantOfShape", ["shape"], ["half"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.5])),
        helper.make_node("Mul", ["x", "half"], ["xh"]),
        helper.make_node("Add", ["xh", "posf"], ["s"]),
        helper.make_node("Constant", [], ["zero"], value=helper.make_tensor("z", TensorProto.FLOAT, [], [0.0])),
        helper.make_node("Constant", [], ["four"], value=helper.make_tensor("f", TensorProto.FLOAT, [], [4.0])),
        helper.make_node("Constant", [], ["one"], value=helper.make_tensor("o", TensorProto.FLOAT, [], [1.0])),
        helper.make_node("Range", ["zero", "four", "one"], ["r"]),  # float32 [0, 1, 2, 3]
        helper.make_node("Add", ["s", "r"], ["t"]),
        helper.make_node("MatMul", ["t", "w"], ["y"]),
        helper.make_node("Cast", ["pos"], ["pos_out"], to=TensorProto.INT64),
    ]
    g = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4]),
         helper.make_tensor_value_info("pos", TensorProto.INT64, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3]),
         helper.make_tensor_value_info("pos_out", TensorProto.INT64, ["n", 4])],
        [w],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return torch.randn(5, 4), torch.arange(20).reshape(5, 4) % 7


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_computes_in_the_dtype_with_float32_at_the_boundary(dtype) -> None:
    model = _model()
    x, pos = _inputs()
    want = to_torch(model)(x, pos)
    plain = to_torch(model).to(dtype)
    with pytest.raises(RuntimeError):  # Module.to alone leaves the graph's own float32 (the bug this guards)
        plain(x.to(dtype), pos)
    gm = to_torch(model, compute_dtype=dtype)
    assert all(p.dtype == dtype for p in gm.parameters())
    for args in ((x, pos), (x.to(dtype), pos)):  # float32 or compute-dtype inputs
        y, pos_out = gm(*args)
        assert y.dtype == torch.float32 and pos_out.dtype == torch.int64
        assert torch.equal(pos_out, pos)
        # the same graph computed by hand in the dtype (ONNX's semantics, rounded at each step)
        by_hand = ((args[0].to(dtype) * 0.5 + pos.to(dtype)) + torch.arange(4, dtype=dtype)) @ gm.w
        torch.testing.assert_close(y, by_hand.float(), rtol=0, atol=0)
        torch.testing.assert_close(y, want[0], rtol=2e-2, atol=5e-2)


def test_float32_import_is_unchanged() -> None:
    model = _model()
    x, pos = _inputs()
    a, b = to_torch(model), to_torch(model, compute_dtype=torch.float32)
    assert a.code == b.code
    for u, v in zip(a(x, pos), b(x, pos), strict=True):
        assert torch.equal(u, v)


def test_refuses_a_non_float_compute_dtype() -> None:
    with pytest.raises(DynashapeError, match=r"compute_dtype torch\.int32"):
        to_torch(_model(), compute_dtype=torch.int32)
