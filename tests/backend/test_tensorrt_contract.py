"""CONTRACT TEST of the TensorRT backend against a recorded fake of the TensorRT 10/11 Python API.

This is NOT evidence of TensorRT support: TensorRT cannot be installed on any machine here, so the
backend has never built or run a real engine. These tests run ``dynashape._backend.tensorrt``
against ``fake_tensorrt`` (injected as ``sys.modules["tensorrt"]`` for each test only) and check
that it makes the documented calls in a valid order with valid arguments: profiles for every input
with min <= opt <= max, shape tensors through the shape-tensor calls, one execution context,
profile switches on the call's stream, an address (or an output allocator) for every I/O tensor,
the FP16 flag only on TensorRT 10, and refusal of unsupported versions.

The run path uses host memory in place of CUDA memory (``HostMemory``): it goes up to
``execute_async_v3`` and checks output shapes and buffers, never values (nothing is computed).
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from typing import Any

import fake_tensorrt
import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

import dynashape
from dynashape import BackendError, EngineFileError, Profile
from dynashape._backend import tensorrt as trt_backend
from dynashape._records import BuildSettings, Manifest, Source
from dynashape.onnx.model import io_specs

STREAM = 0x5EA


class HostMemory:
    """Host memory in place of CUDA memory (see ``trt_backend.CudaMemory``); records what it hands out."""

    recorder: fake_tensorrt.Recorder

    def __init__(self, index: int) -> None:
        self.index = index
        self.host_ptrs: set[int] = set()
        self.buffers: set[int] = set()

    @contextlib.contextmanager
    def device(self) -> Iterator[None]:
        self.recorder("device.enter", self.index)
        yield
        self.recorder("device.exit", self.index)

    def stream(self) -> str:
        return "stream"

    @staticmethod
    def handle(stream: Any) -> int:
        return STREAM

    def empty(self, shape: Any, dtype: Any) -> torch.Tensor:
        t = torch.empty(tuple(shape), dtype=dtype)
        self.buffers.add(t.data_ptr())
        return t

    def to_host(self, x: torch.Tensor) -> torch.Tensor:
        t = x.detach().clone()
        self.host_ptrs.add(t.data_ptr())
        return t

    def record(self, stream: Any) -> None:
        return None

    def wait(self, stream: Any, event: Any) -> None:
        pass

    def gpu(self) -> dict[str, Any]:
        return {"gpu": "none (contract test)", "compute_capability": [0, 0]}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The fake TensorRT 10 module, installed for this test only."""
    return _install(monkeypatch, "10.8.0.43")


@pytest.fixture
def no_graph_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """``dynashape.build`` wraps a CUDA engine in a CUDA graph cache, which needs a CUDA device at
    construction; these tests look at the build path only, so the cache is left out."""
    from dynashape._engine import cudagraphs

    class NoGraphs:
        def __init__(self, runner: Any, **kw: Any) -> None:
            self.runner = runner

    monkeypatch.setattr(cudagraphs, "CudaGraphRunner", NoGraphs)


def _install(monkeypatch: pytest.MonkeyPatch, version: str) -> Any:
    m = fake_tensorrt.make(version)
    monkeypatch.setitem(sys.modules, "tensorrt", m)
    monkeypatch.setattr(trt_backend.TensorRTBackend, "memory", HostMemory)
    monkeypatch.setattr(HostMemory, "recorder", m.calls, raising=False)
    return m


def _conv_model() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3, "h", "w"])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _reshape_model() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 6])
    s = helper.make_tensor_value_info("shape", TensorProto.INT64, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None])
    g = helper.make_graph([helper.make_node("Reshape", ["x", "shape"], ["y"])], "reshape", [x, s], [y])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _nonzero_model() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])
    y = helper.make_tensor_value_info("y", TensorProto.INT64, [1, None])
    g = helper.make_graph([helper.make_node("NonZero", ["x"], ["y"])], "nonzero", [x], [y])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


PROFILES = [
    Profile({"x": ((1, 3, 16, 16), (2, 3, 32, 32), (4, 3, 64, 64))}),
    Profile({"x": ((4, 3, 64, 64), (8, 3, 96, 96), (16, 3, 128, 128))}),
]


def _load(backend: trt_backend.TensorRTBackend, model: onnx.ModelProto, profiles: list[Profile],
          precision: str = "fp32", device: str = "cuda") -> tuple[trt_backend.TensorRTRunner, Manifest]:
    inputs, outputs = io_specs(model)
    settings = BuildSettings(device=device, precision=precision)
    built = backend.build(Source("onnx", inputs, outputs, onnx_model=model), profiles, settings)
    manifest = Manifest(backend="tensorrt", device=device, precision=precision, inputs=built.inputs, outputs=built.outputs,
                        profiles=profiles, build_settings=settings, backend_data=built.backend_data)
    runner = backend.load(manifest, built.payloads)
    assert isinstance(runner, trt_backend.TensorRTRunner)
    return runner, manifest


def test_build_path_through_dynashape_build(fake: Any, no_graph_cache: None) -> None:
    """dynashape.build -> TensorRT 10: profiles for every input, FP16 flag, on the device cuda:N names."""
    engine = dynashape.build(_conv_model(), PROFILES, backend="tensorrt", device="cuda:1", precision="fp16", validate=False)
    calls = fake.calls
    names = calls.names()
    assert engine.backend == "tensorrt" and engine.device == "cuda:1"
    assert calls.of("create_network") == [(0,)]  # weakly typed, as the FP16 flag needs on TensorRT 10
    assert calls.of("set_flag") == [(fake.BuilderFlag.FP16,)]
    assert calls.of("clear_flag") == [(fake.BuilderFlag.TF32,)]
    # One profile per dynashape profile, each with its ranges, min <= opt <= max (the fake checks it).
    assert names.count("create_optimization_profile") == names.count("add_optimization_profile") == 2
    assert calls.of("set_shape") == [("x", *r) for p in PROFILES for r in [(p["x"].min, p["x"].opt, p["x"].max)]]
    last_profile = max(i for i, n in enumerate(names) if n == "add_optimization_profile")
    assert last_profile < calls.index("build_serialized_network")
    # Built and deserialized inside the guard of device 1.
    enter = [i for i, (n, a) in enumerate(calls.calls) if n == "device.enter" and a == (1,)]
    exits = [i for i, (n, a) in enumerate(calls.calls) if n == "device.exit" and a == (1,)]
    assert enter[0] < calls.index("Builder") < calls.index("build_serialized_network") < exits[0]
    assert enter[1] < calls.index("deserialize_cuda_engine") < exits[1]
    assert names.count("create_execution_context") == 1


def test_run_path_one_context_profiles_switched_on_the_stream(fake: Any) -> None:
    runner, _ = _load(trt_backend.TensorRTBackend(), _conv_model(), PROFILES)
    calls = fake.calls
    x0 = torch.zeros(2, 3, 20, 24)
    (y,) = runner.run(0, [x0])
    assert tuple(y.shape) == (2, 3, 20, 24) and y.dtype == torch.float32
    first = calls.names()
    assert calls.of("set_optimization_profile_async") == [(0, STREAM)]
    assert first.index("set_optimization_profile_async") < first.index("set_input_shape") < first.index("execute_async_v3")
    assert calls.of("set_input_shape") == [("x", (2, 3, 20, 24))]
    addresses = dict(calls.of("set_tensor_address"))
    assert addresses == {"x": x0.data_ptr(), "y": y.data_ptr()}  # every I/O tensor, the output in our buffer
    assert calls.of("execute_async_v3") == [(STREAM,)]

    runner.run(1, [torch.zeros(8, 3, 100, 64)])
    runner.run(1, [torch.zeros(5, 3, 64, 64)])
    runner.run(0, [torch.zeros(1, 3, 16, 16)])
    assert calls.of("set_optimization_profile_async") == [(0, STREAM), (1, STREAM), (0, STREAM)]  # only on a change
    assert calls.names().count("create_execution_context") == 1
    assert calls.names().count("execute_async_v3") == 4
    assert calls.names().count("set_output_allocator") == 0  # output shapes follow from input shapes


def test_fake_refuses_a_shape_outside_the_active_profile(fake: Any) -> None:
    """The fake enforces what TensorRT does; the backend reports the refusal as a BackendError."""
    runner, _ = _load(trt_backend.TensorRTBackend(), _conv_model(), PROFILES)
    with pytest.raises(BackendError, match=r"refuses input 'x' with shape \(8, 3, 100, 64\) in profile 0"):
        runner.run(0, [torch.zeros(8, 3, 100, 64)])


def test_shape_tensor_inputs_use_the_shape_tensor_calls(fake: Any) -> None:
    profiles = [Profile({"x": ((1, 6), (4, 6), (8, 6)), "shape": ((2,), (2,), (2,))})]
    values = {"shape": [((1, 6), (4, 6), (8, 6))]}
    runner, _ = _load(trt_backend.TensorRTBackend(shape_values=values), _reshape_model(), profiles)
    calls = fake.calls
    assert calls.of("set_shape_input") == [("shape", (1, 6), (4, 6), (8, 6))]
    assert [a[0] for a in calls.of("set_shape")] == ["x"]  # the shape tensor's own shape is static
    assert runner.shape_inputs == {"shape"}

    x, shape = torch.zeros(3, 6), torch.tensor([2, 9])
    (y,) = runner.run(0, [x, shape])
    addresses = dict(calls.of("set_tensor_address"))
    assert addresses["shape"] in runner.memory.host_ptrs  # host memory, as TensorRT 10 requires
    assert addresses["x"] == x.data_ptr()
    assert ("shape", (2,)) in calls.of("set_input_shape")
    assert tuple(y.shape) == (2, 9)  # the fake read the values [2, 9] from that host address


def test_shape_tensor_without_values_is_refused(fake: Any) -> None:
    profiles = [Profile({"x": ((1, 6), (4, 6), (8, 6)), "shape": ((2,), (2,), (2,))})]
    with pytest.raises(BackendError, match=r"input 'shape' is a shape tensor for TensorRT .* carry shapes only"):
        _load(trt_backend.TensorRTBackend(), _reshape_model(), profiles)


def test_data_dependent_outputs_use_an_output_allocator(fake: Any) -> None:
    runner, _ = _load(trt_backend.TensorRTBackend(), _nonzero_model(), [Profile({"x": ((1,), (8,), (64,))})])
    calls = fake.calls
    (y,) = runner.run(0, [torch.zeros(8)])
    assert runner.data_dependent == {"y"}
    (name, allocator), = calls.of("set_output_allocator")
    assert name == "y" and isinstance(allocator, fake.IOutputAllocator)
    assert [a[0] for a in calls.of("set_tensor_address")] == ["x"]  # y's memory comes from the allocator
    (_, size, ptr), = calls.of("reallocate_output_async")
    assert tuple(y.shape) == (1, 2) and y.dtype == torch.int64 and y.data_ptr() == ptr and size == 16
    runner.run(0, [torch.zeros(9)])
    assert len(calls.of("set_output_allocator")) == 1  # set once, kept by the context
    # A CUDA graph would replay a stale shape: capture is refused, so the engine runs these without graphs.
    with pytest.raises(BackendError, match="data-dependent shapes"):
        runner.capture_runner().run(0, [torch.zeros(8)])


def test_bf16_and_fp8_outputs_get_their_torch_dtypes(fake: Any) -> None:
    """Output dtypes come from the dtype table (``trt.nptype`` has no bf16 or fp8)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])
    outs = [helper.make_tensor_value_info("b", TensorProto.BFLOAT16, ["n"]),
            helper.make_tensor_value_info("f", TensorProto.FLOAT8E4M3FN, ["n"])]
    nodes = [helper.make_node("Cast", ["x"], ["b"], to=TensorProto.BFLOAT16),
             helper.make_node("Cast", ["x"], ["f"], to=TensorProto.FLOAT8E4M3FN)]
    model = helper.make_model(helper.make_graph(nodes, "casts", [x], outs), opset_imports=[helper.make_opsetid("", 19)])
    runner, _ = _load(trt_backend.TensorRTBackend(), model, [Profile({"x": ((1,), (4,), (8,))})])
    b, f = runner.run(0, [torch.zeros(5)])
    assert (b.dtype, f.dtype, tuple(b.shape), tuple(f.shape)) == (torch.bfloat16, torch.float8_e4m3fn, (5,), (5,))


def test_tensorrt_11_strongly_typed_without_precision_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _install(monkeypatch, "11.1.0.5")
    _load(trt_backend.TensorRTBackend(), _conv_model(), PROFILES)
    assert fake.calls.of("create_network") == [(1 << int(fake.NetworkDefinitionCreationFlag.STRONGLY_TYPED),)]
    assert fake.calls.of("set_flag") == []
    assert not hasattr(fake.BuilderFlag, "FP16")
    with pytest.raises(BackendError, match=r"precision fp16 with TensorRT 11\.1\.0\.5 .* strongly typed"):
        _load(trt_backend.TensorRTBackend(), _conv_model(), PROFILES, precision="fp16")


@pytest.mark.parametrize("version", ["9.3.0.1", "12.0.0", "8.6.1"])
def test_unsupported_versions_are_refused_at_build(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    fake = _install(monkeypatch, version)
    with pytest.raises(BackendError, match=re.escape(f"TensorRT {version} at build") + ".*" + re.escape("TensorRT 10.x or 11.x")):
        _load(trt_backend.TensorRTBackend(), _conv_model(), PROFILES)
    assert "Builder" not in fake.calls.names()


def test_a_plan_from_another_version_is_refused_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    _install(monkeypatch, "10.8.0.43")
    _, manifest = _load(trt_backend.TensorRTBackend(), _conv_model(), PROFILES)
    fake = _install(monkeypatch, "10.9.0.34")
    with pytest.raises(EngineFileError, match=re.escape("built with TensorRT 10.8.0.43, loaded by TensorRT 10.9.0.34")):
        trt_backend.TensorRTBackend().load(manifest, {"engine.plan": b"{}"})
    assert "deserialize_cuda_engine" not in fake.calls.names()
    fake = _install(monkeypatch, "13.0.0")
    with pytest.raises(BackendError, match=re.escape("TensorRT 13.0.0 at load")):
        trt_backend.TensorRTBackend().load(manifest, {"engine.plan": b"{}"})


def test_validation_reference_applies_an_appended_op_once(fake: Any, no_graph_cache: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference a TensorRT build validates against is the ONNX model with the op appended once."""
    import onnxruntime as ort

    from dynashape._builder import validate as validate_mod

    seen: list[Any] = []
    monkeypatch.setattr(validate_mod, "validate", lambda *args, **kw: seen.append(kw["reference"]))
    model = _conv_model()
    dynashape.build(model, PROFILES[:1], backend="tensorrt", device="cuda", append_ops=["y:Exp"])
    (reference,) = seen
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    (got,) = reference({"x": x})
    (relu,) = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(got, np.exp(relu), rtol=1e-6)  # exp(exp(...)) before the fix
