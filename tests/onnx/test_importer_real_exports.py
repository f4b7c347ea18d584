"""What real exports need from the importer: Flatten to (N, 1), pads computed from sizes kept
symbolic, and every failure named by its ONNX node."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper

from dynashape import UnsupportedOpError
from dynashape._dtypes import module_to
from dynashape.onnx.importer import build_error, onnx_node_in, to_torch

ort = pytest.importorskip("onnxruntime")


def _model(nodes, inputs, outputs, opset: int = 18) -> onnx.ModelProto:
    return helper.make_model(helper.make_graph(nodes, "g", inputs, outputs), opset_imports=[helper.make_opsetid("", opset)])


def _ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


@pytest.mark.parametrize("axis", [-3, -1, 0, 1, 3])
def test_flatten_every_axis_matches_onnxruntime(axis: int) -> None:
    # axis == rank (3) flattens everything into rows: TorchScript exports of attention masks use it
    m = _model([helper.make_node("Flatten", ["x"], ["y"], axis=axis)],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["a", 3, 4])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    x = np.random.default_rng(0).random((2, 3, 4), dtype=np.float32)
    (want,) = _ort(m, {"x": x})
    (got,) = to_torch(m)(torch.from_numpy(x))
    assert tuple(got.shape) == want.shape
    np.testing.assert_array_equal(got.numpy(), want)


class PadToMultiple(torch.nn.Module):
    """Swin's window padding: pad W up to a multiple of 4, the amount computed from the size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = (4 - x.shape[-1] % 4) % 4
        return F.pad(x, (0, pad)) * 2


def test_pads_from_sizes_stay_symbolic(tmp_path) -> None:
    path = str(tmp_path / "pad.onnx")
    torch.onnx.export(PadToMultiple(), (torch.rand(1, 3, 10),), path, input_names=["x"],
                      dynamic_axes={"x": {2: "w"}}, dynamo=False)
    gm = to_torch(path)
    data_dependent = [n for n in gm.graph.nodes if n.op == "call_method" and n.target in ("tolist", "item")]
    assert data_dependent == [], [n.meta.get("onnx_node") for n in data_dependent]
    w = torch.export.Dim("w", min=5, max=40)
    ep = torch.export.export(gm, (torch.rand(1, 3, 10),), dynamic_shapes=({2: w},))
    for width in (5, 8, 13, 40):
        x = torch.rand(1, 3, width)
        (want,) = _ort(onnx.load(path), {"x": x.numpy()})
        (got,) = ep.module()(x)
        assert tuple(got.shape) == want.shape == (1, 3, width + (4 - width % 4) % 4)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)


def test_converter_failure_names_the_node() -> None:
    m = _model([helper.make_node("Gather", ["x", "i"], ["y"], name="bad_gather", axis="zero")],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3]),
                helper.make_tensor_value_info("i", TensorProto.INT64, [1])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    with pytest.raises(UnsupportedOpError, match=r"node 'bad_gather' \(Gather\) could not be imported: ValueError"):
        to_torch(m)


def test_build_failures_map_back_to_the_onnx_node() -> None:
    m = _model([helper.make_node("Relu", ["x"], ["r"], name="first_relu"),
                helper.make_node("Neg", ["r"], ["y"], name="the_neg")],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])])
    gm = to_torch(m)
    fx_neg = next(n for n in gm.graph.nodes if n.meta.get("onnx_node", ("",))[0] == "the_neg")
    try:
        raise RuntimeError("C++ compile error") from RuntimeError(f"While executing %{fx_neg.name} : ...")
    except RuntimeError as e:
        assert onnx_node_in(e, torch.nn.Sequential(gm)) == ("the_neg", "Neg")
        err = build_error(e, gm, "inductor")
    assert "at ONNX node 'the_neg' (Neg)" in str(err) and "RuntimeError: C++ compile error" in str(err)
    assert "--backend onnxruntime" in str(err)


class T5Buckets(torch.nn.Module):
    """transformers' T5 relative-position buckets over a dynamic length (the model's own function)."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        from transformers.models.t5.modeling_t5 import T5Attention

        pos = torch.arange(ids.shape[1], dtype=torch.long)
        return T5Attention._relative_position_bucket(pos[None, :] - pos[:, None], bidirectional=True, num_buckets=32, max_distance=128)


@pytest.mark.slow
def test_t5_buckets_exact_in_float16_under_inductor(tmp_path) -> None:
    """The GPU gauntlet's T5 failure, on the CPU: imported in float16, the bucket math (float log of
    integer distances, cast back) rounded its constants to float16 and Inductor's fused kernel, which
    computes in float32 from them, put distances 16, 32 and 64 in the bucket below. It keeps float32 now."""
    pytest.importorskip("transformers")
    path = str(tmp_path / "t5b.onnx")
    torch.onnx.export(T5Buckets(), (torch.zeros(1, 300, dtype=torch.long),), path, input_names=["ids"],
                      dynamic_axes={"ids": {1: "s"}}, dynamo=False)
    ids = torch.zeros(1, 300, dtype=torch.long)
    (want,) = to_torch(path)(ids)
    # as the backend and the reference prepare it (Module.to(float16) would round the kept constants)
    gm = module_to(to_torch(path, compute_dtype=torch.float16), torch.float16)
    (got,) = torch.compile(gm, backend="inductor", dynamic=False)(ids)
    assert torch.equal(got, want), f"{int((got != want).sum())} of {want.numel()} buckets differ"
