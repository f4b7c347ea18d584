"""Imported ONNX files in reduced precision: transformers and a conv net in bfloat16 on the CPU.

A model imported from its ONNX file and converted with ``Module.to(bfloat16)`` alone fails (its
``Cast(to=FLOAT)`` nodes and created tensors stay float32: "expected mat1 and mat2 to have the
same dtype" for LLaMA, "mixed dtype" for GPT-2); fp16 on CUDA fails the same way. bfloat16 is what
Inductor compiles on the CPU, so these tests stand for the GPU's fp16 path.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from models import BY_NAME
from pipeline import build, save_load

from dynashape._builder.validate import tolerance
from dynashape._reference import compare_outputs
from dynashape.onnx import to_torch

EAGER = [("bert", "torchscript"), ("bert", "dynamo"), ("llama", "torchscript"), ("llama", "dynamo"),
         ("gpt2", "torchscript"), ("resnet", "torchscript"), ("resnet", "dynamo")]
# NOTE: GPT-2's dynamo export (15-20 s here) is made by no other CI test of the gauntlet.
EAGER_SLOW = [("gpt2", "dynamo")]


def _eager_bf16(model: torch.nn.Module, feeds: dict[str, torch.Tensor]) -> list[np.ndarray]:
    ref = copy.deepcopy(model).to(torch.bfloat16)
    with torch.no_grad():
        out = ref(**{k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in feeds.items()})
    return [o.float().numpy() for o in ([out] if isinstance(out, torch.Tensor) else out)]


def _assert_matches(name: str, got: list[np.ndarray], want: list[np.ndarray]) -> None:
    diffs = compare_outputs([f"out{i}" for i in range(len(want))], got, want, tolerance("bf16"))
    bad = [d for d in diffs if not d.passed]
    assert not bad, f"{name}: {bad} (bf16 validation tolerance {tolerance('bf16')})"


@pytest.mark.parametrize(("name", "exporter"), EAGER + [pytest.param(*p, marks=pytest.mark.slow) for p in EAGER_SLOW],
                         ids=lambda v: str(v))
def test_imported_in_bf16_matches_eager_bf16(name: str, exporter: str, gauntlet) -> None:
    case = BY_NAME[name]
    model = gauntlet.model(name)
    gm = to_torch(gauntlet.export(name, exporter), compute_dtype=torch.bfloat16)
    for which in ("min", "mid", "max"):
        feeds = case.example(which, seed=3)
        with torch.no_grad():
            out = gm(*feeds.values())
        assert all(o.dtype == torch.float32 for o in out), "float32 outputs, as the file declares"
        _assert_matches(f"{name} {exporter} at {which}", [o.numpy() for o in out], _eager_bf16(model, feeds))


@pytest.mark.slow
@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_llama_from_its_file_on_inductor_bf16(exporter: str, gauntlet, tmp_path) -> None:
    """The H200's failing case (fp16 LLaMA from either file), in bf16 on the CPU: one compile each."""
    case = BY_NAME["llama"]
    model = gauntlet.model("llama")
    engine = build(case, gauntlet.export("llama", exporter), "inductor", precision="bf16")
    for which in ("min", "mid", "max"):
        feeds = case.example(which, seed=3)
        got = list(engine.run({k: v.numpy() for k, v in feeds.items()}).values())
        _assert_matches(f"llama {exporter} at {which}", [np.asarray(g, dtype=np.float32) for g in got], _eager_bf16(model, feeds))
    save_load(engine, case, str(tmp_path), f"inductor_bf16_{exporter}")
