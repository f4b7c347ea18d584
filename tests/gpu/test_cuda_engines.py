"""CUDA engines: precisions, shared weights, CUDA graphs, streams. Skipped without a CUDA device.

Run on the GPU machine: PYTHONPATH=src CXX=/usr/bin/g++ CC=/usr/bin/gcc python -m pytest tests/gpu -m gpu
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import dynashape  # noqa: E402
from dynashape import Profile, zoo  # noqa: E402

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

SR = zoo.get("superres")


def _profiles() -> list[Profile]:
    return [
        Profile({"input": ((1, 1, 32, 32), (1, 1, 32, 32), (4, 1, 64, 64))}),
        Profile({"input": ((4, 1, 32, 32), (8, 1, 64, 64), (16, 1, 64, 64))}),
    ]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One CUDA engine per precision, two profiles each (the first with min = opt = batch 1)."""
    model = SR.make()
    out = {}
    for precision in ("fp32", "fp16", "bf16"):
        e = dynashape.build(model, _profiles(), backend="inductor", device="cuda", precision=precision,
                            example_inputs={"input": torch.rand(2, 1, 32, 32)}, dynamic_axes={"input": {0: "batch", 2: "h", 3: "w"}})
        path = str(tmp_path_factory.mktemp("cuda") / f"sr_{precision}.engine")
        e.save(path)
        out[precision] = path
    return out


@pytest.mark.parametrize("precision,tol", [("fp32", 1e-4), ("fp16", 2e-2), ("bf16", 8e-2)])
def test_parity_with_eager_at_many_shapes(built: dict[str, str], precision: str, tol: float) -> None:
    model = SR.make().cuda()
    engine = dynashape.load(built[precision])
    for shape in [(1, 1, 32, 32), (3, 1, 40, 56), (4, 1, 64, 64), (5, 1, 32, 64), (16, 1, 64, 64), (9, 1, 48, 48)]:
        x = torch.rand(shape, device="cuda")
        # The reference computes in true fp32: PyTorch's default lets cuDNN use TF32 for convolutions.
        with torch.no_grad(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            ref = model(x)
        for _ in range(3):  # plain call, capture, replay
            y = engine.run({"input": x})["output"]
            assert y.is_cuda and y.dtype == torch.float32
            err = (y - ref).abs().max().item() / max(1.0, ref.abs().max().item())
            assert err < tol, (shape, precision, err)


def test_numpy_in_numpy_out_and_cpu_tensors(built: dict[str, str]) -> None:
    engine = dynashape.load(built["fp32"])
    x = np.random.default_rng(0).random((2, 1, 32, 32), dtype=np.float32)
    y = engine.run({"input": x})["output"]
    assert isinstance(y, np.ndarray)
    yt = engine.run({"input": torch.from_numpy(x)})["output"]
    assert yt.device.type == "cpu"
    np.testing.assert_allclose(y, yt.numpy(), rtol=0, atol=0)


def test_graph_outputs_are_never_overwritten(built: dict[str, str]) -> None:
    engine = dynashape.load(built["fp32"])
    a, b = torch.rand(2, 1, 32, 32, device="cuda"), torch.rand(2, 1, 32, 32, device="cuda")
    first = [engine.run({"input": a})["output"] for _ in range(3)]  # plain, capture, replay
    kept = first[-1].clone()
    engine.run({"input": b})  # replays the same graph with other data
    assert torch.equal(first[-1], kept)
    assert engine._graphs.captures == 1 and engine._graphs.replays >= 2


def test_preallocated_outputs_and_streams(built: dict[str, str]) -> None:
    engine = dynashape.load(built["fp32"])
    x = torch.rand(3, 1, 32, 32, device="cuda")
    ref = engine.run({"input": x})["output"]
    out = {"output": torch.empty_like(ref)}
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        x2 = x.clone()
    got = engine.run({"input": x2}, out=out, stream=s)
    s.synchronize()
    assert got["output"] is out["output"]
    assert torch.equal(out["output"], ref)


def test_graph_cache_is_bounded_lru(built: dict[str, str]) -> None:
    engine = dynashape.load(built["fp32"], graph_cache_size=2)
    for b in (1, 2, 3, 1, 2, 3):
        engine.run({"input": torch.rand(b, 1, 32, 32, device="cuda")})
    assert len(engine._graphs) == 2
    off = dynashape.load(built["fp32"], cuda_graphs=False)
    assert off._graphs is None


def test_weights_shared_across_profiles_in_file_and_gpu_memory(tmp_path) -> None:
    """3 profiles cost at most 1.15x the file size and GPU memory of 1 (the issue's target)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2048, 2048), torch.nn.ReLU(), torch.nn.Linear(2048, 2048), torch.nn.ReLU(), torch.nn.Linear(2048, 2048)).eval()
    ex = {"x": torch.rand(4, 2048)}
    one = [Profile({"x": ((1, 2048), (4, 2048), (8, 2048))})]
    three = [*one, Profile({"x": ((8, 2048), (16, 2048), (32, 2048))}), Profile({"x": ((32, 2048), (64, 2048), (128, 2048))})]
    sizes, mem = {}, {}
    for name, ps in (("one", one), ("three", three)):
        e = dynashape.build(model, ps, backend="inductor", device="cuda", precision="fp16", example_inputs=ex)
        path = tmp_path / f"{name}.engine"
        e.save(path)
        sizes[name] = os.path.getsize(path)
        code = ("import json, torch, dynashape; b = torch.cuda.memory_allocated(); "
                f"e = dynashape.load({str(path)!r}); torch.cuda.synchronize(); "
                "print(json.dumps(torch.cuda.memory_allocated() - b))")
        mem[name] = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
    print("file sizes", sizes, "gpu bytes after load", mem)
    assert sizes["three"] <= 1.15 * sizes["one"]
    assert mem["three"] <= 1.15 * mem["one"]
