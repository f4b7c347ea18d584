"""Exporter failures as one line with the next step; user data for verification; progress and the
warnings summary."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import dynashape
from dynashape import ExportError


class Diff(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.diff(x, dim=-1)  # no TorchScript symbolic (as transformers 5 GPT-2 and Mistral hit)


class OnlyBatchTwo(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != 2:
            raise ValueError("this model serves batch 2 only")
        return x * 2


class Chatty(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        warnings.warn("a deprecated path", FutureWarning, stacklevel=1)
        warnings.warn("another", UserWarning, stacklevel=1)
        return x + 1


def test_torchscript_exporter_failure_is_one_line_naming_the_dynamo_exporter(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ExportError) as e:
        dynashape.export(Diff(), (torch.randn(2, 8),), tmp_path / "d.onnx", input_names=["x"], dynamic_axes={"x": {0: "b"}})
    assert str(e.value) == ("the TorchScript exporter cannot export aten::diff at opset 20 | a model that the TorchScript "
                            "exporter can trace | use the dynamo exporter (dynamo=True; on the CLI --exporter dynamo)")
    out = capfd.readouterr()
    assert "Torch IR graph" not in out.out + out.err  # the exporter's 300-line graph dump stays out of the terminal
    assert not (tmp_path / "d.onnx").exists()


def test_bad_opset_names_the_valid_range(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"opset 99 for the TorchScript exporter \| an opset in 7\.\.\d+"):
        dynashape.export(Diff(), (torch.randn(2, 8),), tmp_path / "d.onnx", opset=99)


def test_the_models_own_error_at_a_changed_shape_is_named_as_such(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"the model itself raised ValueError at x:4x3 \(this model serves batch 2 only\), "
                                          r"while export ran it with dim 'b' = 4 instead of 2"):
        dynashape.export(OnlyBatchTwo(), (torch.randn(2, 3),), tmp_path / "m.onnx", input_names=["x"], dynamic_axes={"x": {0: "b"}})


def test_warnings_are_summarized_and_progress_is_shown(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    dynashape.export(Chatty(), (torch.randn(2, 3),), tmp_path / "c.onnx", input_names=["x"], dynamic_axes={"x": {0: "b"}})
    err = capfd.readouterr().err
    assert "export: Chatty with the torchscript exporter ..." in err
    assert "export: verifying in ONNX Runtime at 2 shape set(s) ..." in err
    summary = [line for line in err.splitlines() if "warning(s)" in line]
    assert len(summary) == 1 and "FutureWarning" in summary[0] and "UserWarning" in summary[0]
    assert "a deprecated path" not in err
    dynashape.export(Chatty(), (torch.randn(2, 3),), tmp_path / "c.onnx", input_names=["x"], dynamic_axes={"x": {0: "b"}}, quiet=True)
    assert capfd.readouterr().err == ""


def test_verification_on_user_data(tmp_path: Path) -> None:
    data = tmp_path / "x.npz"
    np.savez(data, x=np.ones((3, 5, 3), np.float32))  # three feeds of 5x3
    result = dynashape.export(Chatty(), (torch.randn(2, 3),), tmp_path / "c.onnx", input_names=["x"],
                              dynamic_axes={"x": {0: "b"}}, data=str(data), quiet=True)
    assert [v.shapes for v in result.verified] == [{"x": (5, 3)}] * 3
    with pytest.raises(dynashape.DynashapeError, match=r"input 'x' has shape 5x4 \| dim 1 = 3"):
        dynashape.export(Chatty(), (torch.randn(2, 3),), tmp_path / "c.onnx", input_names=["x"],
                         dynamic_axes={"x": {0: "b"}}, data={"x": np.ones((5, 4), np.float32)}, quiet=True)
