"""Importer behaviour on hand-built graphs: the ops onnx2torch misses, symbolic shapes, errors."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from torch.export import Dim  # noqa: E402

from dynashape._errors import UnsupportedOpError  # noqa: E402
from dynashape.onnx import to_torch  # noqa: E402


def _model(nodes: list, inputs: list, outputs: list, inits: list | None = None, opset: int = 18) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits or [])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    return m


def _ort(m: onnx.ModelProto, *args: np.ndarray) -> list[np.ndarray]:
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {i.name: a for i, a in zip(sess.get_inputs(), args, strict=False)})


def _attention_block(layers: int = 4, d: int = 16, heads: int = 2) -> onnx.ModelProto:
    """An attention stack at opset 18 with Split-18 (sizes as an input) and Reshape allowzero=1."""
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    inits.append(numpy_helper.from_array(np.array([d, d, d], dtype=np.int64), "split_sizes"))
    inits.append(numpy_helper.from_array(np.array([0, 0, heads, d // heads], dtype=np.int64), "heads_shape_tail"))
    inits.append(numpy_helper.from_array(np.array([0, 1], dtype=np.int64), "idx01"))
    inits.append(numpy_helper.from_array(np.array([d], dtype=np.int64), "d_vec"))
    nodes.append(helper.make_node("Shape", ["x"], ["xs"]))
    nodes.append(helper.make_node("Gather", ["xs", "idx01"], ["bt"]))  # [batch, seq] as symbolic ints
    nodes.append(helper.make_node("Slice", ["heads_shape_tail", "idx_2", "idx_4"], ["hd"]))
    inits.append(numpy_helper.from_array(np.array([2], dtype=np.int64), "idx_2"))
    inits.append(numpy_helper.from_array(np.array([4], dtype=np.int64), "idx_4"))
    nodes.append(helper.make_node("Concat", ["bt", "hd"], ["split_heads"], axis=0))
    nodes.append(helper.make_node("Concat", ["bt", "d_vec"], ["merge_heads"], axis=0))
    h = "x"
    for i in range(layers):
        w = rng.standard_normal((d, 3 * d)).astype(np.float32) / d**0.5
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes += [
            helper.make_node("MatMul", [h, f"w{i}"], [f"qkv{i}"]),
            helper.make_node("Split", [f"qkv{i}", "split_sizes"], [f"q{i}", f"k{i}", f"v{i}"], axis=2),
        ]
        for t in ("q", "k", "v"):
            nodes += [
                helper.make_node("Reshape", [f"{t}{i}", "split_heads"], [f"{t}r{i}"], allowzero=1),
                helper.make_node("Transpose", [f"{t}r{i}"], [f"{t}t{i}"], perm=[0, 2, 1, 3]),
            ]
        nodes += [
            helper.make_node("Transpose", [f"kt{i}"], [f"kT{i}"], perm=[0, 1, 3, 2]),
            helper.make_node("MatMul", [f"qt{i}", f"kT{i}"], [f"s{i}"]),
            helper.make_node("Softmax", [f"s{i}"], [f"p{i}"], axis=-1),
            helper.make_node("MatMul", [f"p{i}", f"vt{i}"], [f"o{i}"]),
            helper.make_node("Transpose", [f"o{i}"], [f"ot{i}"], perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", [f"ot{i}", "merge_heads"], [f"m{i}"], allowzero=1),
            helper.make_node("Add", [h, f"m{i}"], [f"h{i}"]),
        ]
        h = f"h{i}"
    nodes.append(helper.make_node("Identity", [h], ["y"]))
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "t", d])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "t", d])], inits)


def test_attention_block_opset18_split_and_allowzero() -> None:
    m = _attention_block()
    gm = to_torch(m)
    b, t = Dim("b", min=2, max=32), Dim("t", min=2, max=256)
    program = torch.export.export(gm, (torch.rand(2, 8, 16),), dynamic_shapes=({0: b, 1: t},))
    for shape in ((2, 8, 16), (3, 5, 16), (7, 64, 16), (2, 2, 16), (5, 17, 16)):
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        ref = _ort(m, x)[0]
        np.testing.assert_allclose(gm(torch.from_numpy(x))[0].numpy(), ref, atol=1e-4)
        np.testing.assert_allclose(program.module()(torch.from_numpy(x))[0].numpy(), ref, atol=1e-4)


def test_reshape_allowzero_keeps_zero_dims() -> None:
    shape = numpy_helper.from_array(np.array([0, 3], dtype=np.int64), "shape")
    vi = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [0, 3])]
    out = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    for allowzero in (0, 1):
        m = _model([helper.make_node("Reshape", ["x", "shape"], ["y"], allowzero=allowzero)], vi, out, [shape])
        x = np.zeros((0, 3), dtype=np.float32)
        assert tuple(to_torch(m)(torch.from_numpy(x))[0].shape) == _ort(m, x)[0].shape


def test_split_18_num_outputs_uneven() -> None:
    vi = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [7])]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("a", "b", "c")]
    m = _model([helper.make_node("Split", ["x"], ["a", "b", "c"], num_outputs=3)], vi, outs)
    x = np.arange(7, dtype=np.float32)
    got = to_torch(m)(torch.from_numpy(x))
    for g, r in zip(got, _ort(m, x), strict=False):
        np.testing.assert_array_equal(g.numpy(), r)


def test_forward_signature_and_weights() -> None:
    w = numpy_helper.from_array(np.ones((3, 2), dtype=np.float32), "w")
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3]) for n in ("a", "b")]
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    m = _model([helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("MatMul", ["s", "w"], ["y"])], vi, outs, [w])
    gm = to_torch(m)
    out = gm(torch.ones(2, 3), torch.ones(2, 3))
    assert isinstance(out, tuple) and len(out) == 1 and out[0].shape == (2, 2)
    assert [n for n, _ in gm.named_parameters()] == ["w"]


def test_unsupported_op_message_names_op_domain_opset_node_and_supported_list() -> None:
    vi = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])]
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    node = helper.make_node("Frobnicate", ["x"], ["y"], name="frob_1", domain="com.example")
    g = helper.make_graph([node], "g", vi, outs)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.example", 1)])
    with pytest.raises(UnsupportedOpError) as info:
        to_torch(m)
    text = str(info.value)
    assert "op Frobnicate (domain com.example, opset 1) at node 'frob_1' is not supported" in text
    assert "Conv" in info.value.expected and "Resize" in info.value.expected  # the supported list
    assert text.count(" | ") == 2


def test_unsupported_version_is_refused() -> None:
    vi = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])]
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    m = _model([helper.make_node("Softmax", ["x"], ["y"], name="sm")], vi, outs, opset=18)
    m.opset_import[0].version = 99  # a future opset: refuse, never guess
    with pytest.raises(UnsupportedOpError, match="opset 99"):
        to_torch(m)


def test_path_input(tmp_path) -> None:  # type: ignore[no-untyped-def]
    vi = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])]
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    m = _model([helper.make_node("Relu", ["x"], ["y"])], vi, outs)
    onnx.save(m, tmp_path / "m.onnx")
    assert to_torch(tmp_path / "m.onnx")(torch.tensor([-1.0, 1.0]))[0].tolist() == [0.0, 1.0]
    assert to_torch(str(tmp_path / "m.onnx"))(torch.tensor([-1.0]))[0].tolist() == [0.0]


@pytest.mark.parametrize("storage_order", [0, 1])
def test_maxpool_indices_match_ort_under_dynamic_dims(storage_order: int) -> None:
    """ONNX flattens MaxPool indices over N x C x H x W (torch: per plane); checked against ONNX Runtime
    at shapes other than the traced one, through torch.export with dynamic batch, height and width."""
    vi = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])]
    out = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None), helper.make_tensor_value_info("i", TensorProto.INT64, None)]
    node = helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                            storage_order=storage_order)
    m = _model([node], vi, out, opset=12)
    gm = to_torch(m)
    program = torch.export.export(gm, (torch.rand(2, 3, 16, 20),),
                                  dynamic_shapes=({0: Dim("n", min=2, max=8), 2: Dim("h", min=4, max=64), 3: Dim("w", min=4, max=64)},))
    for shape in ((2, 3, 16, 20), (3, 3, 9, 31), (5, 3, 64, 4)):
        x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
        y, i = _ort(m, x)
        for got in (gm(torch.from_numpy(x)), program.module()(torch.from_numpy(x))):
            np.testing.assert_array_equal(got[0].numpy(), y)
            np.testing.assert_array_equal(got[1].numpy(), i)


def test_batchnorm_training_mode_outputs_running_statistics() -> None:
    rng = np.random.default_rng(3)
    c = 4
    inits = [numpy_helper.from_array(rng.standard_normal(c).astype(np.float32), n) for n in ("scale", "bias", "mean")]
    inits.append(numpy_helper.from_array(rng.random(c).astype(np.float32) + 0.5, "var"))
    vi = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", c, "h", "w"])]
    out = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "rm", "rv")]
    node = helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y", "rm", "rv"], training_mode=1, momentum=0.8)
    m = _model([node], vi, out, inits, opset=15)
    x = rng.standard_normal((3, c, 5, 7)).astype(np.float32)
    # ONNX's own formula (onnx/backend/test/case/node/batch_normalization.py): batch statistics, population variance
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    s, b_, m0, v0 = (numpy_helper.to_array(t) for t in inits)
    y = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5) * s[:, None, None] + b_[:, None, None]
    got = [t.numpy() for t in to_torch(m)(torch.from_numpy(x))]
    np.testing.assert_allclose(got[0], y, atol=1e-5)
    np.testing.assert_allclose(got[1], m0 * 0.8 + mean * 0.2, atol=1e-6)
    np.testing.assert_allclose(got[2], v0 * 0.8 + var * 0.2, atol=1e-6)


def test_bitwise_not_on_unsigned_ints_torch_lacks() -> None:
    for dtype, np_dtype in ((TensorProto.UINT16, np.uint16), (TensorProto.UINT32, np.uint32), (TensorProto.UINT8, np.uint8)):
        vi = [helper.make_tensor_value_info("x", dtype, [5])]
        m = _model([helper.make_node("BitwiseNot", ["x"], ["y"])], vi, [helper.make_tensor_value_info("y", dtype, None)])
        x = np.array([0, 1, 7, 128, np.iinfo(np_dtype).max], dtype=np_dtype)
        got = to_torch(m)(torch.from_numpy(x))[0].numpy()
        np.testing.assert_array_equal(got, ~x)
        assert got.dtype == np_dtype


@pytest.mark.parametrize("coord,nearest_mode", [("half_pixel", "round_prefer_floor"), ("align_corners", "round_prefer_ceil"),
                                                ("pytorch_half_pixel", "floor")])
def test_resize_to_a_symbolic_size_divides_sizes_exactly_and_matches_onnxruntime(coord: str, nearest_mode: str) -> None:
    """ONNX Resize to the size of another input (Shape -> Slice -> Resize ``sizes``), exported with free
    dims: the scale ``out / in`` of two symbolic sizes is a float64 tensor division in the graph (an
    integer true division is an approximate float32 division in Triton kernels), and the values are
    ONNX Runtime's at ratios that put source coordinates on rounding boundaries (2 -> 3: 1.5)."""
    inits = [numpy_helper.from_array(np.array([2], dtype=np.int64), "two"), numpy_helper.from_array(np.array([4], dtype=np.int64), "four")]
    nodes = [helper.make_node("Shape", ["ref"], ["rs"]), helper.make_node("Slice", ["rs", "two", "four"], ["hw"]),
             helper.make_node("Shape", ["x"], ["xs"]), helper.make_node("Slice", ["xs", "zero", "two"], ["nc"]),
             helper.make_node("Concat", ["nc", "hw"], ["sizes"], axis=0),
             helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="nearest", coordinate_transformation_mode=coord,
                              nearest_mode=nearest_mode)]
    inits.append(numpy_helper.from_array(np.array([0], dtype=np.int64), "zero"))
    m = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, "h", "w"]),
                       helper.make_tensor_value_info("ref", TensorProto.FLOAT, [1, 1, "H", "W"])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    gm = to_torch(m)
    dims = {2: Dim("h", min=2, max=64), 3: Dim("w", min=2, max=64)}
    ep = torch.export.export(gm, (torch.rand(1, 2, 8, 12), torch.rand(1, 1, 12, 18)),
                             dynamic_shapes=(dims, {2: Dim("H", min=2, max=96), 3: Dim("W", min=2, max=96)}))
    ops = [str(n.target) for n in ep.graph.nodes if n.op == "call_function"]
    assert "aten.div.Tensor" in ops and not any("truediv" in t for t in ops), ops
    run = ep.module()
    for (h, w), (oh, ow) in (((2, 2), (3, 3)), ((4, 6), (6, 9)), ((8, 12), (12, 18)), ((5, 7), (11, 3)), ((33, 20), (2, 61))):
        x, ref = np.random.rand(1, 2, h, w).astype(np.float32), np.zeros((1, 1, oh, ow), np.float32)
        got = run(torch.from_numpy(x), torch.from_numpy(ref))
        got = got[0] if isinstance(got, (tuple, list)) else got
        np.testing.assert_array_equal(got.numpy(), _ort(m, x, ref)[0], err_msg=f"{(h, w)} -> {(oh, ow)}")
