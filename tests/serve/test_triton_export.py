"""export-triton: the config parses with Triton's own protobuf definitions; model.py runs the engine.

Triton itself cannot run here, so model.py is driven through a stand-in for the three names it
uses from ``triton_python_backend_utils`` (the module Triton injects into the Python backend); the
engine, the grouping and the outputs are real.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dynashape
from dynashape.cli.main import main
from dynashape.serve import export_triton

text_format = pytest.importorskip("google.protobuf.text_format")
model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")


def _parse(folder: Path) -> Any:
    config = model_config_pb2.ModelConfig()
    text_format.Parse((folder / "config.pbtxt").read_text(), config)
    return config


def test_config_parses_with_dynamic_dims_and_batching(tmp_path: Path, serve_engine_file: Path) -> None:
    folder = Path(export_triton(serve_engine_file, tmp_path / "repo", max_delay_ms=3))
    assert folder == tmp_path / "repo" / "bert_like"
    config = _parse(folder)
    assert config.name == "bert_like" and config.backend == "python"
    assert config.max_batch_size == 16  # the profile's largest batch
    assert [(i.name, i.data_type, list(i.dims)) for i in config.input] == [
        ("input_ids", model_config_pb2.TYPE_INT64, [-1]), ("attention_mask", model_config_pb2.TYPE_INT64, [-1])]
    assert [(o.name, o.data_type, list(o.dims)) for o in config.output] == [("hidden", model_config_pb2.TYPE_FP32, [-1, 32])]
    assert config.dynamic_batching.max_queue_delay_microseconds == 3000
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
    assert config.parameters["engine_file"].string_value == "bert_like.engine"
    assert (folder / "1" / "bert_like.engine").read_bytes() == serve_engine_file.read_bytes()
    assert not [p for p in (tmp_path / "repo").iterdir() if p.name.startswith(".")], "no temporary folder left"


def test_plan_batch_ladder_becomes_preferred_sizes(tmp_path: Path, serve_engine_file: Path,
                                                   serve_engine: dynashape.Engine) -> None:
    from dynashape._plan.record import Ladder, Plan

    plan = Plan(profiles=tuple(serve_engine.profiles), ladder=Ladder("batch", (2, 4, 8, 32), ((("batch", 2),),)))
    plan.save(tmp_path / "plan.json")
    folder = Path(export_triton(serve_engine_file, tmp_path / "repo", plan=tmp_path / "plan.json", max_batch=8))
    config = _parse(folder)
    assert config.max_batch_size == 8
    assert list(config.dynamic_batching.preferred_batch_size) == [2, 4, 8]


def test_model_py_runs_the_engine(tmp_path: Path, serve_engine_file: Path, serve_engine: dynashape.Engine,
                                  make_tokens: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["export-triton", "--loadEngine", str(serve_engine_file), "-o", str(tmp_path), "--name", "bert"]) == 0
    folder = tmp_path / "bert"

    class Tensor:
        def __init__(self, name: str, array: np.ndarray) -> None:
            self.name, self.array = name, array

        def as_numpy(self) -> np.ndarray:
            return self.array

    class InferenceResponse:
        def __init__(self, output_tensors: list[Tensor], error: Any = None) -> None:
            self.output_tensors, self.error = output_tensors, error

    pb = types.ModuleType("triton_python_backend_utils")
    pb.Tensor = Tensor  # type: ignore[attr-defined]
    pb.InferenceResponse = InferenceResponse  # type: ignore[attr-defined]
    pb.TritonError = str  # type: ignore[attr-defined]
    pb.get_input_tensor_by_name = lambda request, name: request.get(name)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", pb)
    spec = importlib.util.spec_from_file_location("triton_model", folder / "1" / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.TritonPythonModel()
    config = model_config_pb2.ModelConfig()
    text_format.Parse((folder / "config.pbtxt").read_text(), config)
    from google.protobuf import json_format

    model.initialize({"model_config": json.dumps(json_format.MessageToDict(config, preserving_proto_field_name=True)),
                      "model_repository": str(folder), "model_version": "1"})
    feeds = [make_tokens(1, 8, 0), make_tokens(2, 8, 1), make_tokens(1, 99, 2), make_tokens(1, 12, 3)]
    requests = [{n: Tensor(n, x) for n, x in f.items()} for f in feeds]
    requests.append({"input_ids": Tensor("input_ids", feeds[0]["input_ids"])})  # no mask
    responses = model.execute(requests)
    assert len(responses) == 5
    assert "outside every profile" in responses[2].error and "missing input(s) ['attention_mask']" in responses[4].error
    for i in (0, 1, 3):
        assert responses[i].error is None
        (out,) = responses[i].output_tensors
        np.testing.assert_allclose(out.as_numpy(), serve_engine.run(feeds[i])["hidden"], rtol=1e-4, atol=1e-5)


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export-triton", "--loadEngine", str(tmp_path / "missing.engine"), "-o", str(tmp_path)]) == 2
    assert main(["serve", "--loadEngine", str(tmp_path / "missing.engine")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("missing.engine' does not exist" in line for line in err)
