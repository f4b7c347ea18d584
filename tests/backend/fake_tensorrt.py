"""A recorded fake of the TensorRT 10/11 Python API, for the backend's contract test.

It implements only the calls NVIDIA documents that ``dynashape._backend.tensorrt`` uses, records
every call with its arguments in ``module.calls``, checks the arguments the way the documentation
states them (profiles: min <= opt <= max; shapes within the active profile; an address for every
I/O tensor before ``execute_async_v3``), and returns plausible objects: the parser reads the ONNX
graph's inputs and outputs, the "plan" is JSON describing them, and a context infers output shapes
with ONNX shape inference. It computes nothing: outputs are never written.

This is NOT TensorRT, and a test that passes against it is not evidence that the backend works
with TensorRT; it shows that the backend calls the documented API in a valid order with valid
arguments.
"""

from __future__ import annotations

import base64
import ctypes
import enum
import json
import types
from typing import Any

import onnx

# Inputs consumed as a shape by these ops (op type -> input index) are shape tensors for TensorRT.
_SHAPE_USES = {"Reshape": 1, "Expand": 1, "Tile": 1, "ConstantOfShape": 0}


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __call__(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]

    def of(self, name: str) -> list[tuple[Any, ...]]:
        return [a for n, a in self.calls if n == name]

    def index(self, name: str) -> int:
        return self.names().index(name)


class _DataType(enum.Enum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    FP8 = 6
    BF16 = 7
    INT64 = 8
    INT4 = 9


_ONNX_TO_TRT = {1: "FLOAT", 10: "HALF", 3: "INT8", 6: "INT32", 9: "BOOL", 2: "UINT8", 17: "FP8", 16: "BF16", 7: "INT64"}


class _TensorIOMode(enum.Enum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


def make(version: str = "10.8.0.43") -> types.ModuleType:
    """A fresh fake ``tensorrt`` module of ``version`` with its own call record in ``.calls``."""
    rec = Recorder()
    major = int(version.split(".")[0])
    m = types.ModuleType("tensorrt")
    m.__version__ = version  # type: ignore[attr-defined]
    m.calls = rec  # type: ignore[attr-defined]
    m.DataType = _DataType  # type: ignore[attr-defined]
    m.TensorIOMode = _TensorIOMode  # type: ignore[attr-defined]

    flags = {"STRONGLY_TYPED": 1} if major >= 11 else {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1}
    m.NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", flags)  # type: ignore[attr-defined]
    # TensorRT 11 removed the precision flags (strongly typed networks only).
    bflags = {"TF32": 6, "DEBUG": 2} if major >= 11 else {"FP16": 0, "INT8": 1, "DEBUG": 2, "TF32": 6, "BF16": 17}
    m.BuilderFlag = enum.Enum("BuilderFlag", bflags)  # type: ignore[attr-defined]

    class Logger:
        WARNING = "WARNING"

        def __init__(self, severity: str) -> None:
            rec("Logger", severity)

    class ITensor:
        def __init__(self, name: str, shape: tuple[int, ...], dtype: Any, is_shape_tensor: bool) -> None:
            self.name, self.shape, self.dtype, self.is_shape_tensor = name, shape, dtype, is_shape_tensor

    class INetworkDefinition:
        def __init__(self, flags: int) -> None:
            self.flags = flags
            self.inputs: list[ITensor] = []
            self.outputs: list[ITensor] = []
            self.model: bytes = b""

        @property
        def num_inputs(self) -> int:
            return len(self.inputs)

        def get_input(self, i: int) -> ITensor:
            return self.inputs[i]

    def _tensor(vi: Any, shape_tensor: bool) -> ITensor:
        tt = vi.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim)
        return ITensor(vi.name, dims, _DataType[_ONNX_TO_TRT[tt.elem_type]], shape_tensor)

    class OnnxParser:
        def __init__(self, network: INetworkDefinition, logger: Logger) -> None:
            rec("OnnxParser", network, logger)
            self.network = network
            self.num_errors = 0

        def parse(self, model: bytes) -> bool:
            rec("parse", len(model))
            proto = onnx.load_from_string(model)
            shape_uses = {n.input[i] for n in proto.graph.node if n.op_type in _SHAPE_USES and len(n.input) > _SHAPE_USES[n.op_type]
                          for i in [_SHAPE_USES[n.op_type]]}
            inits = {i.name for i in proto.graph.initializer}
            self.network.inputs = [_tensor(v, v.name in shape_uses) for v in proto.graph.input if v.name not in inits]
            self.network.outputs = [_tensor(v, False) for v in proto.graph.output]
            self.network.model = model
            return True

        def get_error(self, i: int) -> str:
            return ""

    class IOptimizationProfile:
        def __init__(self) -> None:
            self.shapes: dict[str, tuple[tuple[int, ...], ...]] = {}
            self.values: dict[str, tuple[tuple[int, ...], ...]] = {}

        def set_shape(self, name: str, lo: Any, opt: Any, hi: Any) -> None:
            rec("set_shape", name, tuple(lo), tuple(opt), tuple(hi))
            _check_range(name, lo, opt, hi)
            self.shapes[name] = (tuple(lo), tuple(opt), tuple(hi))

        def set_shape_input(self, name: str, lo: Any, opt: Any, hi: Any) -> None:
            rec("set_shape_input", name, tuple(lo), tuple(opt), tuple(hi))
            _check_range(name, lo, opt, hi)
            self.values[name] = (tuple(lo), tuple(opt), tuple(hi))

    class IBuilderConfig:
        def __init__(self) -> None:
            self.flags = {m.BuilderFlag.TF32}  # type: ignore[attr-defined]
            self.profiles: list[IOptimizationProfile] = []

        def set_flag(self, flag: Any) -> None:
            rec("set_flag", flag)
            self.flags.add(flag)

        def clear_flag(self, flag: Any) -> None:
            rec("clear_flag", flag)
            self.flags.discard(flag)

        def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
            rec("add_optimization_profile", profile)
            self.profiles.append(profile)
            return len(self.profiles) - 1

    class Builder:
        def __init__(self, logger: Logger) -> None:
            rec("Builder", logger)

        def create_network(self, flags: int) -> INetworkDefinition:
            rec("create_network", flags)
            return INetworkDefinition(flags)

        def create_builder_config(self) -> IBuilderConfig:
            rec("create_builder_config")
            return IBuilderConfig()

        def create_optimization_profile(self) -> IOptimizationProfile:
            rec("create_optimization_profile")
            return IOptimizationProfile()

        def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig) -> bytes | None:
            rec("build_serialized_network", network, config)
            if not config.profiles:
                raise ValueError("a network with dynamic inputs needs at least one optimization profile")
            for k, p in enumerate(config.profiles):
                for t in network.inputs:
                    if t.is_shape_tensor and t.name not in p.values:
                        raise ValueError(f"profile {k}: shape tensor '{t.name}' has no set_shape_input values")
                    if not t.is_shape_tensor and -1 in t.shape and t.name not in p.shapes:
                        raise ValueError(f"profile {k}: dynamic input '{t.name}' has no set_shape")
            plan = {
                "version": version,
                "io": [(t.name, "INPUT", t.dtype.name, t.is_shape_tensor) for t in network.inputs]
                + [(t.name, "OUTPUT", t.dtype.name, False) for t in network.outputs],
                "profiles": [{n: list(map(list, s)) for n, s in p.shapes.items()} for p in config.profiles],
                "model": base64.b64encode(network.model).decode(),
            }
            return json.dumps(plan).encode()

    class IOutputAllocator:
        def __init__(self) -> None:
            rec("IOutputAllocator.__init__")

    class IExecutionContext:
        def __init__(self, engine: ICudaEngine) -> None:
            self.engine = engine
            self.profile = 0
            self.shapes: dict[str, tuple[int, ...]] = {}
            self.addresses: dict[str, int] = {}
            self.allocators: dict[str, Any] = {}

        def set_optimization_profile_async(self, k: int, stream: int) -> bool:
            rec("set_optimization_profile_async", k, stream)
            if not 0 <= k < len(self.engine.plan["profiles"]):
                return False
            self.profile = k
            self.shapes.clear()  # switching invalidates the input shapes
            return True

        def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
            rec("set_input_shape", name, tuple(shape))
            ranges = self.engine.plan["profiles"][self.profile].get(name)
            if ranges is not None and not all(a <= d <= b for a, d, b in zip(ranges[0], shape, ranges[2], strict=True)):
                return False
            self.shapes[name] = tuple(shape)
            return True

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            if name in self.shapes:
                return self.shapes[name]
            # Shape tensors are read from host memory at their address, as TensorRT does.
            values = {n: _read_host(self.addresses[n], dt, self.shapes[n]) for n, mode, dt, shape_io in self.engine.plan["io"]
                      if shape_io and n in self.addresses and n in self.shapes}
            return _infer(self.engine.model, self.shapes, values, name)

        def set_tensor_address(self, name: str, ptr: int) -> bool:
            rec("set_tensor_address", name, ptr)
            if not isinstance(ptr, int) or ptr == 0:
                return False
            self.addresses[name] = ptr
            return True

        def set_output_allocator(self, name: str, allocator: Any) -> bool:
            rec("set_output_allocator", name, allocator)
            if not isinstance(allocator, IOutputAllocator):
                raise TypeError("the output allocator must derive from tensorrt.IOutputAllocator")
            self.allocators[name] = allocator
            return True

        def execute_async_v3(self, stream: int) -> bool:
            rec("execute_async_v3", stream)
            for name, mode, _, _ in self.engine.plan["io"]:
                if mode == "INPUT" and (name not in self.shapes or name not in self.addresses):
                    raise RuntimeError(f"input '{name}' has no shape or address")
                if mode == "OUTPUT" and name not in self.addresses and name not in self.allocators:
                    raise RuntimeError(f"output '{name}' has no address and no output allocator")
            for name, alloc in self.allocators.items():
                # A data-dependent size TensorRT would learn while running: 2 for every unknown dim.
                shape = tuple(d if d >= 0 else 2 for d in self.get_tensor_shape(name))
                size = 8
                for d in shape:
                    size *= d
                ptr = alloc.reallocate_output_async(name, 0, size, 256, stream)
                rec("reallocate_output_async", name, size, ptr)
                alloc.notify_shape(name, shape)
            return True

    class ICudaEngine:
        def __init__(self, plan: dict[str, Any]) -> None:
            self.plan = plan
            self.model = onnx.load_from_string(base64.b64decode(plan["model"]))
            self.num_io_tensors = len(plan["io"])
            self.num_optimization_profiles = len(plan["profiles"])

        def _io(self, name: str) -> list[Any]:
            return next(t for t in self.plan["io"] if t[0] == name)

        def get_tensor_name(self, i: int) -> str:
            rec("get_tensor_name", i)
            return str(self.plan["io"][i][0])

        def get_tensor_mode(self, name: str) -> Any:
            rec("get_tensor_mode", name)
            return _TensorIOMode[self._io(name)[1]]

        def get_tensor_dtype(self, name: str) -> Any:
            rec("get_tensor_dtype", name)
            return _DataType[self._io(name)[2]]

        def is_shape_inference_io(self, name: str) -> bool:
            rec("is_shape_inference_io", name)
            return bool(self._io(name)[3])

        def get_tensor_profile_shape(self, name: str, k: int) -> list[tuple[int, ...]]:
            rec("get_tensor_profile_shape", name, k)
            return [tuple(s) for s in self.plan["profiles"][k][name]]

        def create_execution_context(self) -> IExecutionContext:
            rec("create_execution_context")
            return IExecutionContext(self)

    class Runtime:
        def __init__(self, logger: Logger) -> None:
            rec("Runtime", logger)

        def deserialize_cuda_engine(self, data: bytes) -> ICudaEngine | None:
            rec("deserialize_cuda_engine", len(data))
            plan = json.loads(bytes(data))
            if plan["version"] != version:
                return None  # TensorRT refuses plans of another version
            return ICudaEngine(plan)

    for cls in (Logger, OnnxParser, Builder, Runtime, IOutputAllocator):
        setattr(m, cls.__name__, cls)
    return m


def _check_range(name: str, lo: Any, opt: Any, hi: Any) -> None:
    if not len(lo) == len(opt) == len(hi) or any(not a <= b <= c for a, b, c in zip(lo, opt, hi, strict=True)):
        raise ValueError(f"'{name}': min <= opt <= max does not hold for {lo}, {opt}, {hi}")


def _read_host(ptr: int, dtype: str, shape: tuple[int, ...]) -> list[int]:
    n = 1
    for d in shape:
        n *= d
    ctype = {"INT64": ctypes.c_int64, "INT32": ctypes.c_int32}[dtype]
    return list((ctype * n).from_address(ptr))


def _infer(model: Any, shapes: dict[str, tuple[int, ...]], values: dict[str, list[int]], name: str) -> tuple[int, ...]:
    """An output's shape by ONNX shape inference at the set input shapes and shape-tensor values;
    -1 where it depends on data."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for n, v in values.items():
        m.graph.node.insert(0, onnx.helper.make_node("Constant", [], [n], value=onnx.helper.make_tensor(
            n, onnx.TensorProto.INT64, [len(v)], v)))
        kept = [vi for vi in m.graph.input if vi.name != n]
        del m.graph.input[:]
        m.graph.input.extend(kept)
    for vi in m.graph.input:
        if vi.name in shapes:
            for d, v in zip(vi.type.tensor_type.shape.dim, shapes[vi.name], strict=True):
                d.Clear()
                d.dim_value = v
    for vi in m.graph.output:
        vi.type.tensor_type.ClearField("shape")
    inferred = onnx.shape_inference.infer_shapes(m, strict_mode=False, data_prop=True)
    for vi in inferred.graph.output:
        if vi.name == name:
            return tuple(d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim)
    raise KeyError(name)
