"""Tensors that a graph creates without a device land on the engine's device.

Seen on the H200: an imported BERT (ONNX Range -> torch.arange on the CPU, then an embedding gather
with CUDA weights) failed torch.export with "found two different devices cuda:0, cpu". The meta
device reproduces the same mix on a CPU-only machine, so the backend's fix is tested here.
"""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import dynashape  # noqa: E402
from dynashape import Profile, zoo  # noqa: E402
from dynashape._backend.inductor import _make_compute_module, export_profile  # noqa: E402
from dynashape._builder.builder import _onnx_source, _onnx_to_module  # noqa: E402
from dynashape._records import BuildSettings  # noqa: E402


def test_imported_bert_traces_on_another_device(tmp_path) -> None:
    z = zoo.get("bert_like")
    path = tmp_path / "bert.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dynashape.export(z.make(), z.example_inputs(), path, dynamic_axes=z.dynamic_axes, output_names=["hidden"])
    source = _onnx_to_module(_onnx_source(str(path)), "fp32")
    profile = Profile({n: ((1, 4), (2, 16), (8, 64)) for n in ("input_ids", "attention_mask")})
    module, _, _ = _make_compute_module(torch, source, BuildSettings(device="meta"), dynamic=True)
    (part,) = export_profile(torch, module, source.inputs, profile, "meta", source.example_inputs)
    ep = part.program
    devices = {str(n.meta["val"].device) for n in ep.graph.nodes if "val" in n.meta and hasattr(n.meta["val"], "device")}
    assert devices == {"meta"}, devices
