"""TensorRT backend (CUDA), written against the TensorRT 10 Python API, with TensorRT 11's changes.

NOT TESTED: TensorRT cannot be installed on any machine this project is developed or tested on
(the registry's tensorrt packages download the libraries from NVIDIA at install time, which these
machines cannot reach). What is tested is the *call contract*: ``tests/backend`` runs this module
against a recorded fake of the documented TensorRT 10/11 Python API and checks the order and the
arguments of the calls. That is not evidence that an engine builds or computes correct results;
treat the backend as unverified until a test on a machine with TensorRT passes.

Build: ``OnnxParser`` -> network, one ``IOptimizationProfile`` per dynashape profile (``set_shape``
for data inputs, ``set_shape_input`` for shape-tensor inputs), ``build_serialized_network``, on the
device that ``cuda:N`` names. Run: one execution context for every profile (its activation memory
is sized once, for the largest profile), the profile switched with
``set_optimization_profile_async`` on the caller's stream, ``set_input_shape`` +
``set_tensor_address`` per tensor (host memory for shape tensors), an ``IOutputAllocator`` for
outputs whose shape depends on the data, and ``execute_async_v3``.

Supported versions: TensorRT 10.x and 11.x (the ``tensorrt`` extra pins ``tensorrt>=10,<12``); the
version is checked at build and at load, and a plan loads only into the TensorRT version that
built it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from .._deps import require
from .._dtypes import DTYPES, from_trt, to_torch
from .._errors import BackendError, EngineFileError
from .._profiles import Profile
from .._records import BuildSettings, Built, Manifest, Source
from .base import Backend, Runner

#: TensorRT major versions this backend is written for.
SUPPORTED_MAJOR = (10, 11)
_EXTRA = "pip install 'dynashape[tensorrt]' (tensorrt>=10,<12) on a machine with an NVIDIA GPU"

#: min, opt and max values of one shape-tensor input, each a sequence of ints.
ShapeValues = tuple[Sequence[int], Sequence[int], Sequence[int]]


def check_version(trt: Any, when: str) -> int:
    """The major version of the imported TensorRT, or a :class:`BackendError` outside 10.x-11.x."""
    version = str(getattr(trt, "__version__", "unknown"))
    try:
        major = int(version.split(".")[0])
    except ValueError:
        major = -1
    if major not in SUPPORTED_MAJOR:
        raise BackendError(
            f"TensorRT {version} {when}",
            "TensorRT " + " or ".join(f"{m}.x" for m in SUPPORTED_MAJOR),
            _EXTRA,
        )
    return major


def device_index(device: str) -> int:
    """``"cuda"`` -> 0, ``"cuda:N"`` -> N."""
    _, colon, index = device.partition(":")
    if not colon:
        return 0
    if not index.isdigit():
        raise BackendError(f"device '{device}'", "cuda or cuda:N with N a device index", "e.g. --device cuda:1")
    return int(index)


class CudaMemory:
    """The CUDA side of the backend, through torch: the device guard, streams, buffers, host copies.

    It is one class so that the contract test (``tests/backend``) can run the backend's TensorRT
    call sequence with host memory in its place; nothing else replaces it.
    """

    def __init__(self, index: int) -> None:
        torch = require("torch", "the tensorrt backend's buffers")
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise BackendError(
                f"device cuda:{index}, and this machine has {torch.cuda.device_count() if torch.cuda.is_available() else 0} CUDA device(s)",
                "an existing CUDA device", "pick another --device cuda:N",
            )
        self.torch = torch
        self.index = index

    def device(self) -> contextlib.AbstractContextManager[Any]:
        return self.torch.cuda.device(self.index)

    def stream(self) -> Any:
        return self.torch.cuda.current_stream(self.index)

    @staticmethod
    def handle(stream: Any) -> int:
        return int(stream.cuda_stream)

    def empty(self, shape: Sequence[int], dtype: Any) -> Any:
        return self.torch.empty(tuple(shape), dtype=dtype, device=f"cuda:{self.index}")

    def to_host(self, x: Any) -> Any:
        # Synchronous: a shape tensor holds a few integers, and TensorRT reads them at enqueue.
        return x.detach().to("cpu").contiguous()

    def record(self, stream: Any) -> Any:
        event = self.torch.cuda.Event()
        event.record(stream)
        return event

    def wait(self, stream: Any, event: Any) -> None:
        stream.wait_event(event)

    def gpu(self) -> dict[str, Any]:
        major, minor = self.torch.cuda.get_device_capability(self.index)
        return {"gpu": self.torch.cuda.get_device_name(self.index), "compute_capability": [major, minor]}


class TensorRTBackend(Backend):
    name = "tensorrt"
    devices: ClassVar[tuple[str, ...]] = ("cuda",)
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "bf16")
    requires = ("tensorrt", _EXTRA)
    sources: ClassVar[tuple[str, ...]] = ("onnx",)
    compiles_native_code = True
    #: the CUDA side (see :class:`CudaMemory`)
    memory: ClassVar[type[CudaMemory]] = CudaMemory

    def __init__(self, *, shape_values: Mapping[str, Sequence[ShapeValues]] | None = None) -> None:
        # NOTE: TensorRT needs min/opt/max *values* for an input that is a shape tensor (one whose
        # values set other tensors' shapes). dynashape profiles carry shapes only, so build() has no
        # way to pass them yet: ``shape_values`` (input name -> one (min, opt, max) per profile) is
        # reachable only by constructing the backend directly, and without it such a model is refused.
        self.shape_values = dict(shape_values or {})

    @classmethod
    def payload_names(cls, profiles: int, backend_data: dict[str, Any]) -> tuple[set[str], set[str]]:
        return {"engine.plan"}, {"engine.plan"}

    def build(self, source: Source, profiles: Sequence[Profile], settings: BuildSettings) -> Built:
        trt = require("tensorrt", "the tensorrt backend")
        major = check_version(trt, "at build")
        if major >= 11 and settings.precision != "fp32":
            raise BackendError(
                f"precision {settings.precision} with TensorRT {trt.__version__}",
                "fp32: TensorRT 11 networks are strongly typed (the ONNX graph's own types decide, "
                "and the FP16/BF16 builder flags are gone)",
                "export the model in fp16/bf16 and build with precision fp32, or use TensorRT 10",
            )
        memory = self.memory(device_index(settings.device))
        with memory.device():
            logger = trt.Logger(trt.Logger.WARNING)
            builder = trt.Builder(logger)
            # NOTE: TensorRT 10 networks are always explicit-batch; flags 0 keeps them weakly typed,
            # which the FP16/BF16 builder flags need. TensorRT 11 accepts only strongly typed ones.
            flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if major >= 11 else 0
            network = builder.create_network(flags)
            parser = trt.OnnxParser(network, logger)
            if not parser.parse(source.onnx_model.SerializeToString()):
                errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
                raise BackendError(f"TensorRT's ONNX parser rejects the model: {errors[:1500]}",
                                   "a model TensorRT supports", "run `dynashape check` on it, or build with --backend inductor")
            shape_inputs = {network.get_input(i).name for i in range(network.num_inputs) if network.get_input(i).is_shape_tensor}
            config = builder.create_builder_config()
            if settings.precision == "fp16":
                config.set_flag(trt.BuilderFlag.FP16)
            elif settings.precision == "bf16":
                config.set_flag(trt.BuilderFlag.BF16)
            if not settings.tf32:
                config.clear_flag(trt.BuilderFlag.TF32)  # TensorRT enables TF32 by default; dynashape does not
            for k, p in enumerate(profiles):
                op = builder.create_optimization_profile()
                for name, r in p.items():
                    if name in shape_inputs:
                        lo, opt, hi = self._values(name, k, len(profiles))
                        op.set_shape_input(name, lo, opt, hi)
                        if r.min != r.max:  # a shape tensor whose own length varies
                            op.set_shape(name, r.min, r.opt, r.max)
                    else:
                        op.set_shape(name, r.min, r.opt, r.max)
                config.add_optimization_profile(op)
            plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise BackendError("TensorRT failed to build the engine (see its log above)", None, "rebuild with -v")
        data = {"tensorrt": trt.__version__, **memory.gpu()}
        return Built({"engine.plan": bytes(plan)}, source.inputs, source.outputs, data)

    def _values(self, name: str, k: int, n_profiles: int) -> tuple[list[int], list[int], list[int]]:
        given = self.shape_values.get(name)
        if given is None or len(given) != n_profiles:
            raise BackendError(
                f"input '{name}' is a shape tensor for TensorRT (its values set other tensors' shapes)",
                "min/opt/max values for it in every profile; dynashape profiles carry shapes only",
                "compute the shape inside the model (e.g. from Shape of a data input), or build with "
                "--backend inductor",
            )
        lo, opt, hi = ([int(v) for v in vals] for vals in given[k])
        if not (len(lo) == len(opt) == len(hi)) or any(not a <= b <= c for a, b, c in zip(lo, opt, hi, strict=True)):
            raise BackendError(f"shape-tensor values for '{name}' in profile {k}: {lo}, {opt}, {hi}",
                               "three sequences of one length with min <= opt <= max element-wise")
        return lo, opt, hi

    def load(self, manifest: Manifest, payloads: dict[str, bytes]) -> Runner:
        trt = require("tensorrt", "the tensorrt backend")
        check_version(trt, "at load")
        built_with = manifest.backend_data.get("tensorrt")
        if built_with != trt.__version__:
            raise EngineFileError(
                f"a TensorRT plan built with TensorRT {built_with}, loaded by TensorRT {trt.__version__}",
                "the TensorRT version that built the plan (plans are specific to one version)",
                "rebuild the engine with this TensorRT",
            )
        memory = self.memory(device_index(manifest.device))
        here, there = memory.gpu(), manifest.backend_data.get("compute_capability")
        if there is not None and list(there) != list(here["compute_capability"]):
            raise EngineFileError(
                f"a TensorRT plan built for compute capability {there} ({manifest.backend_data.get('gpu')}), "
                f"loaded on {here['gpu']} ({here['compute_capability']})",
                "a GPU of the compute capability that built the plan", "rebuild the engine on this GPU",
            )
        with memory.device():
            runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            engine = runtime.deserialize_cuda_engine(payloads["engine.plan"])
        if engine is None:
            raise BackendError(f"TensorRT {trt.__version__} cannot load this plan (see its log above)",
                               "a plan built by the same TensorRT version on the same GPU model", "rebuild the engine here")
        return TensorRTRunner(trt, runtime, engine, manifest, memory)


def _output_allocator(trt: Any, memory: CudaMemory) -> Any:
    """An ``IOutputAllocator`` that gives each data-dependent output a fresh buffer per call."""

    class OutputAllocator(trt.IOutputAllocator):
        def __init__(self) -> None:
            trt.IOutputAllocator.__init__(self)
            self.buffers: dict[str, Any] = {}
            self.shapes: dict[str, tuple[int, ...]] = {}

        def reallocate_output(self, tensor_name: str, memory_ptr: Any, size: int, alignment: int) -> int:
            return self.reallocate_output_async(tensor_name, memory_ptr, size, alignment, None)

        def reallocate_output_async(self, tensor_name: str, memory_ptr: Any, size: int, alignment: int, stream: Any) -> int:
            # NOTE: a fresh buffer every call, never the last one: outputs that run() returned belong
            # to the caller. torch's CUDA allocations are 512-byte aligned, more than TensorRT asks.
            import torch

            buf = memory.empty((max(int(size), 1),), torch.uint8)
            self.buffers[tensor_name] = buf
            return int(buf.data_ptr())

        def notify_shape(self, tensor_name: str, shape: Any) -> None:
            self.shapes[tensor_name] = tuple(int(d) for d in shape)

    return OutputAllocator()


class TensorRTRunner(Runner):
    """One execution context for every profile; calls are serialized by a lock.

    NOTE: one context per profile would hold activation memory once per profile; one context holds
    it once (TensorRT sizes it for the largest profile) and switches profiles on the stream of the
    call. A context is not thread-safe and its activation memory is shared across calls, so calls
    are serialized, and a call on another stream first waits for the last call's work.
    """

    native = "torch"

    def __init__(self, trt: Any, runtime: Any, engine: Any, manifest: Manifest, memory: CudaMemory) -> None:
        self._trt = trt
        self._runtime = runtime  # the engine must not outlive its runtime
        self.engine = engine
        self.memory = memory
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        ins = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.inputs = [s.name for s in manifest.inputs]
        self.outputs = [s.name for s in manifest.outputs]
        if sorted(ins) != sorted(self.inputs) or sorted(outs) != sorted(self.outputs):
            raise EngineFileError(f"a TensorRT plan with inputs {ins} and outputs {outs}",
                                  f"the manifest's inputs {self.inputs} and outputs {self.outputs}", "rebuild the engine")
        if engine.num_optimization_profiles != len(manifest.profiles):
            raise EngineFileError(f"a TensorRT plan with {engine.num_optimization_profiles} optimization profiles",
                                  f"{len(manifest.profiles)}, as the manifest says", "rebuild the engine")
        self.shape_inputs = {n for n in self.inputs if engine.is_shape_inference_io(n)}
        kinds = {n: from_trt(engine.get_tensor_dtype(n)) for n in names}
        self.dtypes = {n: to_torch(k) for n, k in kinds.items()}
        self.itemsizes = {n: DTYPES[k].itemsize for n, k in kinds.items()}
        with memory.device():
            self.context = engine.create_execution_context()
        self.allocator = _output_allocator(trt, memory)
        self.data_dependent: set[str] | None = None  # outputs whose shape depends on the data; known after the first call
        self._profile: int | None = None
        self._last: tuple[int, Any] | None = None  # (stream handle, event) of the last call
        self._lock = threading.Lock()

    def run(self, profile: int, inputs: Sequence[Any]) -> list[Any]:
        with self._lock, self.memory.device():
            return self._run(profile, inputs)

    def _run(self, profile: int, inputs: Sequence[Any]) -> list[Any]:
        ctx, memory = self.context, self.memory
        stream = memory.stream()
        handle = memory.handle(stream)
        if self._last is not None and self._last[0] != handle:
            memory.wait(stream, self._last[1])
        if self._profile != profile:
            if not ctx.set_optimization_profile_async(profile, handle):
                raise BackendError(f"TensorRT refuses optimization profile {profile}", None, "rebuild the engine")
            self._profile = profile
        keep = []  # host copies and casts stay alive until the call is enqueued
        for name, x in zip(self.inputs, inputs, strict=True):
            if x.dtype != self.dtypes[name]:
                x = x.to(self.dtypes[name])
            if name in self.shape_inputs:
                x = memory.to_host(x)
            keep.append(x)
            if not ctx.set_input_shape(name, tuple(x.shape)) or not ctx.set_tensor_address(name, x.data_ptr()):
                raise BackendError(f"TensorRT refuses input '{name}' with shape {tuple(x.shape)} in profile {profile}", None, None)
        if self.data_dependent is None:
            self.data_dependent = {n for n in self.outputs if any(d < 0 for d in ctx.get_tensor_shape(n))}
            for n in self.data_dependent:
                ctx.set_output_allocator(n, self.allocator)
        outs: dict[str, Any] = {}
        for name in self.outputs:
            if name in self.data_dependent:
                continue
            out = memory.empty(tuple(ctx.get_tensor_shape(name)), self.dtypes[name])
            ctx.set_tensor_address(name, out.data_ptr())
            outs[name] = out
        self.allocator.buffers.clear()
        self.allocator.shapes.clear()
        if not ctx.execute_async_v3(handle):
            raise BackendError("TensorRT's execute_async_v3 failed (see its log)", None, None)
        self._last = (handle, memory.record(stream))
        for name in self.data_dependent:
            shape = self.allocator.shapes[name]
            nbytes = self.itemsizes[name]
            for d in shape:
                nbytes *= d
            outs[name] = self.allocator.buffers[name][:nbytes].view(self.dtypes[name]).view(shape)
        return [outs[n] for n in self.outputs]

    def capture_runner(self) -> Runner:
        return _CaptureRunner(self)


class _CaptureRunner(Runner):
    """The runner CUDA graph capture uses: it refuses what a replay would get wrong."""

    native = "torch"

    def __init__(self, inner: TensorRTRunner) -> None:
        self.inner = inner

    def run(self, profile: int, inputs: Sequence[Any]) -> list[Any]:
        # NOTE: a replay repeats the captured kernels: an output whose shape depends on the data,
        # or a shape tensor's values (read from host memory at enqueue), would keep the captured
        # ones. Raising here makes the graph cache run these shapes without graphs.
        if self.inner.shape_inputs:
            raise BackendError("a CUDA graph of an engine with shape-tensor inputs", "data inputs only", None)
        outs = self.inner.run(profile, inputs)
        if self.inner.data_dependent:
            raise BackendError(f"a CUDA graph of outputs with data-dependent shapes {sorted(self.inner.data_dependent)}",
                               "outputs whose shapes follow from the input shapes", None)
        return outs
