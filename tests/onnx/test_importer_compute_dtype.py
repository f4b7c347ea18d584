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

from dynashape._dtypes import module_to  # noqa: E402
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


# ---- index arithmetic keeps float32 (importer/precision.py) ----------------------------------------


def _graph(nodes, inputs, outputs, inits=()) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def _const(name: str, value: float) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(name + "_v", TensorProto.FLOAT, [], [value]))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_float_math_on_integers_cast_back_is_exact(dtype) -> None:
    """T5's relative-position buckets in miniature: positions cast to float, scaled by a constant that
    the compute dtype cannot hold (0.1), floored and cast back to integers. In float16 10 * 0.1 is
    0.99976 and the bucket drops by one; eager PyTorch computes this in float32 in a float16 model."""
    model = _graph(
        [helper.make_node("Cast", ["pos"], ["f"], to=TensorProto.FLOAT), _const("tenth", 0.1),
         helper.make_node("Mul", ["f", "tenth"], ["s"]), _const("sixteen", 16.0), helper.make_node("Div", ["s", "sixteen"], ["d"]),
         helper.make_node("Log", ["s"], ["l"]), helper.make_node("Add", ["d", "l"], ["m"]),
         helper.make_node("Floor", ["m"], ["fl"]), helper.make_node("Cast", ["fl"], ["bucket"], to=TensorProto.INT64)],
        [helper.make_tensor_value_info("pos", TensorProto.INT64, ["n"])],
        [helper.make_tensor_value_info("bucket", TensorProto.INT64, ["n"])],
    )
    pos = torch.arange(1, 5000)
    (want,) = to_torch(model)(pos)
    (got,) = to_torch(model, compute_dtype=dtype)(pos)
    assert torch.equal(got, want), f"{int((got != want).sum())} buckets differ, first at {pos[got != want][:5].tolist()}"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_rotary_angles_computed_in_float32_then_narrowed(dtype) -> None:
    """A rotary embedding: positions up to 4999 times inv_freq, cos, then meeting a float activation.
    float16 holds integers exactly only up to 2048, so cos(4001 * 1.0) would be cos(4000); the angles
    stay float32 and only cos(...) is narrowed where it meets x (the rest of the graph stays in dtype)."""
    inv_freq = numpy_helper.from_array(np.array([1.0, 0.1, 0.01, 0.001], dtype=np.float32), "inv_freq")
    model = _graph(
        [helper.make_node("Cast", ["pos"], ["f"], to=TensorProto.FLOAT), helper.make_node("Unsqueeze", ["f", "one"], ["fu"]),
         helper.make_node("Mul", ["fu", "inv_freq"], ["ang"]), helper.make_node("Cos", ["ang"], ["c"]),
         helper.make_node("Mul", ["x", "c"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4]), helper.make_tensor_value_info("pos", TensorProto.INT64, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])],
        [inv_freq, numpy_helper.from_array(np.array([1], dtype=np.int64), "one")],
    )
    x, pos = torch.ones(2000, 4), torch.arange(3000, 5000)
    (want,) = to_torch(model)(x, pos)
    gm = to_torch(model, compute_dtype=dtype)
    (got,) = gm(x, pos)
    assert got.dtype == torch.float32
    # only the narrowing of cos(...) to the dtype remains (half an ulp of values in [-1, 1])
    torch.testing.assert_close(got, want, rtol=0, atol=torch.finfo(dtype).eps)
    assert gm.fp32_kept_inv_freq.dtype == torch.float32  # read by index arithmetic only
    # Module.to(dtype) in the backend and the reference: module_to leaves the kept constants
    again = module_to(gm, dtype)
    assert again.fp32_kept_inv_freq.dtype == torch.float32
    (got,) = again(x, pos)
    torch.testing.assert_close(got, want, rtol=0, atol=torch.finfo(dtype).eps)


def test_mask_sentinel_saturates_instead_of_nan() -> None:
    """An additive mask written with float32's most negative value: (1 - mask) * -3.4e38. In float16
    that constant was -inf and an unmasked position computed 0 * -inf = NaN; computed in float32 and
    saturated where it meets the scores it is float16's most negative value, as the model writes it."""
    model = _graph(
        [helper.make_node("Cast", ["mask"], ["mf"], to=TensorProto.FLOAT), _const("one", 1.0), _const("lowest", float(np.finfo(np.float32).min)),
         helper.make_node("Sub", ["one", "mf"], ["inv"]), helper.make_node("Mul", ["inv", "lowest"], ["bias"]),
         helper.make_node("Add", ["scores", "bias"], ["z"]), helper.make_node("Softmax", ["z"], ["p"], axis=-1)],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", 6]), helper.make_tensor_value_info("mask", TensorProto.INT64, ["n", 6])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["n", 6])],
    )
    scores = torch.randn(3, 6)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0]])
    (want,) = to_torch(model)(scores, mask)
    (got,) = to_torch(model, compute_dtype=torch.float16)(scores, mask)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, want, rtol=0, atol=2e-3)


def test_weights_and_activations_still_compute_in_the_dtype() -> None:
    """The island rule leaves the compute to the dtype: a MatMul with a weight is never an island, even
    when its other input comes from integers (one-hot features)."""
    model = _model()
    gm = to_torch(model, compute_dtype=torch.float16)
    assert gm.w.dtype == torch.float16
    assert "narrow" in gm.code  # posf (an island) is narrowed where it meets x * 0.5
