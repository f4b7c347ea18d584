"""``dynashape.export``: both exporters, derived output axes, verification, and pinned dims."""

from __future__ import annotations

import onnx
import onnxruntime as ort
import pytest
import torch

import dynashape
from dynashape import Profile
from dynashape._errors import ExportError, ModelError
from dynashape.zoo import get as zoo_get

SEG_OUT = ("output_1", "float32", (1, 1, "image_height", "image_width"))


def _io(result: dynashape.ExportResult) -> tuple[list[tuple], list[tuple]]:
    return ([(s.name, s.dtype, s.shape) for s in result.inputs], [(s.name, s.dtype, s.shape) for s in result.outputs])


def test_segmentation_torchscript(seg_export: dynashape.ExportResult) -> None:
    assert seg_export.exporter == "torchscript"
    ins, outs = _io(seg_export)
    assert ins == [("input_1", "float32", (1, 3, "image_height", "image_width"))]
    # The output axes were not given: they are derived from how the output follows the input.
    assert outs == [SEG_OUT]
    # Verified at the example and with each dim changed (both halved, then each one alone).
    verified = [v.shapes["input_1"] for v in seg_export.verified]
    assert (1, 3, 256, 256) in verified and (1, 3, 128, 256) in verified and (1, 3, 256, 128) in verified
    assert all(d < 1e-4 for v in seg_export.verified for d in v.max_abs_diff.values())
    assert "verified at input_1=1x3x128x256" in str(seg_export)


def test_segmentation_dynamo(tmp_path, seg_model) -> None:
    z = zoo_get("segmentation")
    r = dynashape.export(seg_model, z.example_inputs(image_height=64, image_width=96), tmp_path / "seg.onnx",
                         dynamic_axes=z.dynamic_axes, output_names=["output_1"], dynamo=True)
    assert r.exporter == "dynamo"
    assert _io(r)[1] == [SEG_OUT]
    # The file on disk carries the same names (restored from torch.export's symbols).
    model = onnx.load(r.path)
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, "image_height", "image_width"]


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_bert_like_two_inputs_share_dims(tmp_path, bert_model, dynamo: bool) -> None:
    z = zoo_get("bert_like")
    r = dynashape.export(bert_model, z.example_inputs(), tmp_path / "bert.onnx", dynamic_axes=z.dynamic_axes,
                         output_names=["hidden"], dynamo=dynamo)
    ins, outs = _io(r)
    assert ins == [("input_ids", "int64", ("batch", "seq")), ("attention_mask", "int64", ("batch", "seq"))]
    assert outs == [("hidden", "float32", ("batch", "seq", 32))]
    # Verified with batch and seq changed one at a time and together.
    verified = {(v.shapes["input_ids"], v.shapes["attention_mask"]) for v in r.verified}
    assert {((2, 16), (2, 16)), ((4, 16), (4, 16)), ((2, 32), (2, 32)), ((4, 32), (4, 32))} <= verified


def test_verification_at_profile(tmp_path, seg_model) -> None:
    z = zoo_get("segmentation")
    p = Profile({"input_1": ((1, 3, 32, 48), (1, 3, 64, 64), (1, 3, 100, 130))})
    r = dynashape.export(seg_model, z.example_inputs(image_height=64, image_width=64), tmp_path / "seg.onnx",
                         dynamic_axes=z.dynamic_axes, output_names=["output_1"], profile=p)
    assert [v.shapes for v in r.verified] == [{"input_1": s} for s in (p["input_1"].min, p["input_1"].opt, p["input_1"].max)]


def test_verify_false_skips_verification(tmp_path, seg_model) -> None:
    z = zoo_get("segmentation")
    r = dynashape.export(seg_model, z.example_inputs(image_height=32, image_width=32), tmp_path / "seg.onnx",
                         dynamic_axes=z.dynamic_axes, verify=False)
    assert r.verified == []
    assert [s.name for s in r.outputs] == ["output"]  # None means the default output name


class PinnedBatch(torch.nn.Module):
    """Reads the batch size as a Python int: the TorchScript trace freezes it to the example's 2."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.ones(int(x.shape[0]), 1)


def test_pinned_dim_torchscript_names_the_shape(tmp_path) -> None:
    path = tmp_path / "pinned.onnx"
    with pytest.raises(ExportError) as e:
        dynashape.export(PinnedBatch(), torch.rand(2, 3), path, dynamic_axes={"x": {0: "batch"}})
    msg = str(e.value)
    assert "x:4x3" in msg  # the verification shape that broke: batch doubled
    assert "dynashape check" in msg
    assert not path.exists() and not list(tmp_path.iterdir()), "a failed export leaves no file behind"


def test_pinned_dim_dynamo(tmp_path) -> None:
    with pytest.raises(ExportError) as e:
        dynashape.export(PinnedBatch(), torch.rand(2, 3), tmp_path / "pinned.onnx", dynamic_axes={"x": {0: "batch"}}, dynamo=True)
    # torch.export specializes the dim to the example's 2; the ONNX graph is checked for it.
    assert "input 'x' dim 0 (batch) was declared dynamic, but the exported graph fixes it to 2" in str(e.value)


class SilentlyWrong(torch.nn.Module):
    """The traced graph runs at any batch but computes a different result: a constant from the example."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / float(x.shape[0])


def test_pinned_dim_that_changes_values(tmp_path) -> None:
    with pytest.raises(ExportError) as e:
        dynashape.export(SilentlyWrong(), torch.rand(2, 3), tmp_path / "m.onnx", dynamic_axes={"x": {0: "batch"}})
    msg = str(e.value)
    assert "at x:4x3 output 'output' differs from PyTorch" in msg and "max abs diff" in msg


def test_reshape_with_minus_one_is_not_pinned(tmp_path) -> None:
    # x.reshape(2, -1) keeps every batch valid: the -1 absorbs it, in PyTorch and in ONNX alike.
    class Reshape(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.reshape(2, -1)

    r = dynashape.export(Reshape(), torch.rand(2, 3), tmp_path / "m.onnx", dynamic_axes={"x": {0: "batch"}})
    sess = ort.InferenceSession(r.path, providers=["CPUExecutionProvider"])
    assert sess.run(None, {"x": torch.rand(6, 3).numpy()})[0].shape == (2, 9)


def test_argument_errors(tmp_path, seg_model) -> None:
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(ModelError, match="dynamic_axes gives input 'input_1' axis 4"):
        dynashape.export(seg_model, {"input_1": x}, tmp_path / "m.onnx", dynamic_axes={"input_1": {4: "w"}})
    with pytest.raises(ModelError, match="neither inputs nor outputs"):
        dynashape.export(seg_model, {"input_1": x}, tmp_path / "m.onnx", dynamic_axes={"image": {2: "h"}})
    with pytest.raises(ModelError, match=r"a torch\.nn\.Module"):
        dynashape.export(lambda t: t, x, tmp_path / "m.onnx")
    with pytest.raises(ModelError, match="input_names"):
        dynashape.export(seg_model, {"input_1": x}, tmp_path / "m.onnx", input_names=["image"])
