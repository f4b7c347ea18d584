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


def test_a_channels_last_output_is_a_clone_node_whatever_export_sees() -> None:
    """``inductor.contiguous_output`` leaves a clone node in the exported graph even where the trace already sees
    contiguous strides (``.contiguous()`` is then no node at all, and the compiled kernels were free to write the
    output channels-last: DeepLabV3's dynamic packages on the H200, run 9)."""
    from dynashape._backend.inductor import contiguous_output

    class Net(torch.nn.Module):
        def __init__(self, pin: bool) -> None:
            super().__init__()
            self.pin = pin

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = x * 2  # contiguous in the trace
            return contiguous_output(torch, y) if self.pin else y.contiguous()

    h = torch.export.Dim("h", min=4, max=64)
    ops = {}
    for pin in (True, False):
        ep = torch.export.export(Net(pin), (torch.rand(1, 3, 8, 8),), dynamic_shapes={"x": {2: h}})
        ops[pin] = [str(n.target) for n in ep.graph.nodes if n.op == "call_function"]
    assert ops[True][-1] == "aten.clone.default" and "aten.clone.default" not in ops[False], ops


def test_a_forced_channels_last_cpu_build_returns_contiguous_outputs_from_the_package() -> None:
    """A channels-last build of a stride-2 net compiles with the clone-node output and its package writes
    contiguous 4-D outputs on the CPU. A regression guard: pinning the strides with an ``as_strided`` view
    instead broke this compile (a ValueRangeError in Inductor's symbolic strides of the derived sizes)."""

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
