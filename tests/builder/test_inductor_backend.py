"""The AOTInductor engine of the suite (superres, two profiles): build facts and parity with eager PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dynashape
from dynashape._errors import ShapeError

pytestmark = pytest.mark.slow  # one AOTInductor build (~50 s on 2 CPU cores), shared by every test here

TOL = {"atol": 1e-4, "rtol": 1e-4}

# (shape, profile the engine should choose)
SHAPES = [
    ((1, 1, 32, 32), 0),  # profile 0's min = opt: batch 1, where torch.export specializes an example of 1
    ((1, 1, 64, 64), 0),
    ((1, 1, 40, 57), 0),
    ((2, 1, 33, 64), 0),  # batch 2 is in both; 33x64 is closer to profile 0's opt 32x32 (log distance)
    ((3, 1, 48, 48), 1),
    ((3, 1, 37, 61), 1),
    ((4, 1, 48, 48), 1),  # profile 1's opt
    ((4, 1, 64, 64), 1),
    ((4, 1, 32, 64), 1),
]


def _eager(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def test_engine_facts(sr_engine: dynashape.Engine) -> None:
    assert sr_engine.backend == "inductor" and sr_engine.device == "cpu"
    assert [s.shape for s in sr_engine.inputs] == [("batch", 1, "input_dim2", "input_dim3")]
    # Output dims from the exported programs, torch's symbols renamed after the input dims.
    assert [s.shape for s in sr_engine.outputs] == [("batch", 1, "3*input_dim2", "3*input_dim3")]
    assert {"profile0.pt2", "profile1.pt2"} <= set(sr_engine._payloads)  # one package per profile
    assert sr_engine.profiles[0]["input"].opt == (1, 1, 32, 32)


@pytest.mark.parametrize(("shape", "profile"), SHAPES, ids=["x".join(map(str, s)) for s, _ in SHAPES])
def test_parity_with_pytorch(sr_engine: dynashape.Engine, sr_model: torch.nn.Module, shape, profile: int) -> None:
    x = np.random.default_rng(sum(shape)).random(shape, dtype=np.float32)
    assert sr_engine.select_profile({"input": shape}) == profile
    got = sr_engine.run({"input": x})["output"]
    b, _, h, w = shape
    assert got.shape == (b, 1, 3 * h, 3 * w) and isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, _eager(sr_model, x), **TOL)


def test_both_profiles_compute_the_same(sr_engine: dynashape.Engine, sr_model: torch.nn.Module) -> None:
    x = np.random.default_rng(2).random((2, 1, 40, 40), dtype=np.float32)  # inside both profiles
    a = sr_engine.run({"input": x}, profile=0)["output"]
    b = sr_engine.run({"input": x}, profile=1)["output"]
    np.testing.assert_allclose(a, b, **TOL)
    np.testing.assert_allclose(a, _eager(sr_model, x), **TOL)


def test_torch_in_torch_out(sr_engine: dynashape.Engine, sr_model: torch.nn.Module) -> None:
    x = torch.rand(3, 1, 50, 40)
    out = sr_engine.run({"input": x})["output"]
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), _eager(sr_model, x.numpy()), **TOL)


def test_outside_both_profiles(sr_engine: dynashape.Engine) -> None:
    with pytest.raises(ShapeError) as e:
        sr_engine.run({"input": np.zeros((5, 1, 32, 32), np.float32)})
    msg = str(e.value)
    assert "input 'input' dim 0 (batch) = 5 is outside every profile" in msg
    assert "profile 0 allows 1..2, profile 1 allows 2..4" in msg
    assert "--maxShapes=input:5x1x64x64" in msg
    with pytest.raises(ShapeError, match=r"input 'input' dim 0 \(batch\) = 3 is outside profile 0, which allows 1..2"):
        sr_engine.run({"input": np.zeros((3, 1, 32, 32), np.float32)}, profile=0)


def test_save_load_round_trip(tmp_path, sr_engine: dynashape.Engine) -> None:
    path = tmp_path / "superres.engine"
    sr_engine.save(path)
    loaded = dynashape.load(path)
    assert loaded.backend == "inductor" and loaded.profiles == sr_engine.profiles and loaded.outputs == sr_engine.outputs
    for shape in [(1, 1, 32, 32), (4, 1, 64, 48)]:
        x = np.random.default_rng(0).random(shape, dtype=np.float32)
        np.testing.assert_array_equal(loaded.run({"input": x})["output"], sr_engine.run({"input": x})["output"])


_FRESH_LOAD = r"""
import json, sys
spawned = []
sys.addaudithook(lambda event, args: spawned.append(str(args[:2])) if event in ("subprocess.Popen", "os.posix_spawn", "os.exec", "os.system") else None)
import numpy as np
import dynashape
engine = dynashape.load(sys.argv[1])
out = engine.run({"input": np.ones((2, 1, 32, 32), np.float32)})["output"]
print(json.dumps({"spawned": spawned, "inductor": "torch._inductor" in sys.modules, "dynamo": "torch._dynamo" in sys.modules,
                  "shape": list(out.shape)}))
"""


def test_load_compiles_nothing(tmp_path, sr_engine: dynashape.Engine) -> None:
    """Load + first run in a fresh process start no process and never import the compiler stack.

    torch 2.11's package loader spawned 10 Python processes per load (CPU vector-ISA probes) and
    importing torch._inductor costs seconds on a GPU machine: the engine loads with torch's C++
    loader alone (see _load_package).
    """
    import json
    import subprocess
    import sys

    path = tmp_path / "superres.engine"
    sr_engine.save(path)
    proc = subprocess.run([sys.executable, "-c", _FRESH_LOAD, str(path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    facts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert facts == {"spawned": [], "inductor": False, "dynamo": False, "shape": [2, 1, 96, 96]}, facts


@pytest.mark.skipif(torch.version.cuda is None, reason="needs a CUDA build of torch (fake CUDA tensors; no GPU needed)")
def test_export_sees_a_cuda_convolution_of_channels_last_input_as_contiguous() -> None:
    """Why a dynamic CUDA package's output could come back channels-last (run 9): under symbolic sizes,
    torch.export's meta for a CUDA convolution of a channels-last input has contiguous strides (checked
    with fake CUDA tensors: torch 2.11's CUDA build, on a machine without a GPU), so the graph's
    ``.contiguous()`` (``inductor.contiguous_output``) is no node and the output is the fp32 cast. Where
    torch changes that, this test says so, and the runtime's copy (``torch_runtime.dense``) may no longer
    be needed."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    from dynashape._backend.inductor import contiguous_output

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1, device="cuda", dtype=torch.float16)
            self.conv.weight = torch.nn.Parameter(self.conv.weight.detach().contiguous(memory_format=torch.channels_last))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x.to(torch.float16).contiguous(memory_format=torch.channels_last)).to(torch.float32)
            return contiguous_output(torch, y)

    with FakeTensorMode(shape_env=ShapeEnv()):
        model, x = Net(), torch.rand(1, 3, 64, 64, device="cuda")
    h, w = torch.export.Dim("h", min=32, max=128), torch.export.Dim("w", min=32, max=128)
    ep = torch.export.export(model, (x,), dynamic_shapes={"x": {2: h, 3: w}})
    (out,) = next(n for n in ep.graph.nodes if n.op == "output").args[0]
    conv = next(n for n in ep.graph.nodes if n.op == "call_function" and "conv" in str(n.target))
    assert conv.meta["val"].is_contiguous() and not conv.meta["val"].is_contiguous(memory_format=torch.channels_last)
    assert "clone" not in str(out.target) and "contiguous" not in str(out.target), out.target


def test_a_forced_channels_last_cpu_build_returns_contiguous_outputs_from_the_package() -> None:
    """A channels-last build of a stride-2 net compiles and its package writes contiguous 4-D outputs on the
    CPU. A regression guard for ``inductor.contiguous_output``: pinning the strides with an ``as_strided``
    view there broke this compile (a ValueRangeError in Inductor's symbolic strides of the derived sizes)."""

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.a = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
            self.b = torch.nn.Conv2d(8, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(torch.relu(self.a(x)))

    model = Net().eval()
    e = dynashape.build(model, dynashape.Profile({"x": ((1, 3, 32, 32), (1, 3, 64, 64), (2, 3, 96, 96))}), backend="inductor",
                        device="cpu", channels_last=True, example_inputs={"x": torch.rand(1, 3, 64, 64)}, quiet=True)
    assert e.manifest.backend_data["channels_last"]
    x = torch.rand(2, 3, 33, 45)
    (raw,) = e.backend_call({"x": x})()
    with torch.no_grad():
        want = model(x)
    assert raw.is_contiguous() and torch.allclose(raw, want, atol=1e-5)
