"""Engines and exports shared by the whole suite, each built once per session.

NOTE: AOTInductor compiles take tens of seconds on the 2-core CPU machines, so the suite holds ONE
inductor engine (superres, two profiles) and every inductor test reuses it. ONNX Runtime builds take
well under a second, but the exports behind them take seconds, so they are shared too.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import torch

import dynashape
from dynashape import Profile
from dynashape.zoo import get as zoo_get

# The demo profile of the segmentation net, kept small so that parity runs stay fast.
SEG_PROFILE = Profile({"input_1": ((1, 3, 256, 256), (1, 3, 512, 512), (1, 3, 768, 768))})
# Two profiles for multi-profile tests: they touch at 256.
SEG_PROFILES_2 = [
    Profile({"input_1": ((1, 3, 64, 64), (1, 3, 128, 128), (1, 3, 256, 256))}),
    Profile({"input_1": ((1, 3, 256, 256), (1, 3, 512, 512), (1, 3, 768, 768))}),
]
# Superres: profile 0 has min = opt = batch 1 (torch.export's 0/1 specialization must not pin it).
SR_PROFILES = [
    Profile({"input": ((1, 1, 32, 32), (1, 1, 32, 32), (2, 1, 64, 64))}),
    Profile({"input": ((2, 1, 32, 32), (4, 1, 48, 48), (4, 1, 64, 64))}),
]
BERT_DIMS = {"batch": (1, 2, 4), "seq": (4, 16, 32)}


# NOTE: CI runs hypothesis derandomized (the same examples every run, so a red build is reproducible);
# locally each run draws new examples. HYPOTHESIS_PROFILE=ci reproduces CI's.
try:
    from hypothesis import settings as _hyp_settings
except ImportError:  # hypothesis is a test dependency; without it, only its tests are skipped
    pass
else:
    _hyp_settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
    _hyp_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default"))


def pytest_configure(config: pytest.Config) -> None:
    # NOTE: torch's exporters log warnings about their own internals at every export.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)


@pytest.fixture(scope="session")
def seg_model() -> torch.nn.Module:
    return zoo_get("segmentation").make()


@pytest.fixture(scope="session")
def seg_export(tmp_path_factory: pytest.TempPathFactory, seg_model: torch.nn.Module) -> dynashape.ExportResult:
    """The segmentation net exported with the TorchScript exporter (dynamic image_height/image_width)."""
    z = zoo_get("segmentation")
    path = tmp_path_factory.mktemp("seg") / "segmentation.onnx"
    return dynashape.export(seg_model, z.example_inputs(image_height=256, image_width=256), path,
                            dynamic_axes=z.dynamic_axes, output_names=list(z.output_names))


@pytest.fixture(scope="session")
def seg_onnx(seg_export: dynashape.ExportResult) -> str:
    return seg_export.path


@pytest.fixture(scope="session")
def seg_engine(seg_onnx: str) -> dynashape.Engine:
    """ONNX Runtime engine of the segmentation net, demo profile, Sigmoid appended to output_1."""
    return dynashape.build(seg_onnx, SEG_PROFILE, backend="onnxruntime", append_ops=["output_1:Sigmoid"])


@pytest.fixture(scope="session")
def seg_engine_2(seg_onnx: str) -> dynashape.Engine:
    """ONNX Runtime engine of the segmentation net with two profiles, no appended op."""
    return dynashape.build(seg_onnx, SEG_PROFILES_2, backend="onnxruntime")


@pytest.fixture(scope="session")
def seg_engine_file(tmp_path_factory: pytest.TempPathFactory, seg_engine: dynashape.Engine) -> Path:
    path = tmp_path_factory.mktemp("seg_engine") / "segmentation.engine"
    seg_engine.save(path)
    return path


@pytest.fixture(scope="session")
def bert_model() -> torch.nn.Module:
    return zoo_get("bert_like").make()


@pytest.fixture(scope="session")
def bert_onnx(tmp_path_factory: pytest.TempPathFactory, bert_model: torch.nn.Module) -> str:
    """bert_like: two inputs (input_ids, attention_mask) sharing the dims batch and seq."""
    z = zoo_get("bert_like")
    path = tmp_path_factory.mktemp("bert") / "bert_like.onnx"
    return dynashape.export(bert_model, z.example_inputs(), path, dynamic_axes=z.dynamic_axes,
                            output_names=list(z.output_names)).path


@pytest.fixture(scope="session")
def bert_engine(bert_onnx: str) -> dynashape.Engine:
    return dynashape.build(bert_onnx, dims=BERT_DIMS, backend="onnxruntime")


@pytest.fixture(scope="session")
def sr_model() -> torch.nn.Module:
    return zoo_get("superres").make()


@pytest.fixture(scope="session")
def sr_engine(sr_model: torch.nn.Module) -> dynashape.Engine:
    """THE AOTInductor engine of the suite: superres from the module, two profiles (one with batch 1..1..2)."""
    return dynashape.build(sr_model, SR_PROFILES, backend="inductor", example_inputs={"input": torch.rand(1, 1, 32, 32)},
                           dynamic_axes={"input": {0: "batch"}})


@pytest.fixture(scope="session")
def seg_reference(seg_model: torch.nn.Module):
    """Eager PyTorch for seg_engine: sigmoid(segmentation(x))."""

    def ref(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.sigmoid(seg_model(torch.from_numpy(x))).numpy()

    return ref
