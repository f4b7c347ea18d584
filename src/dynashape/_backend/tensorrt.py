"""TensorRT backend (CUDA), written against the TensorRT 10 Python API.

NOT TESTED: TensorRT cannot be installed on any machine this project is developed or tested on
(the registry's tensorrt packages download the libraries from NVIDIA at install time, which these
machines cannot reach). The code follows the documented API: ``OnnxParser`` -> network, one
``IOptimizationProfile`` per dynashape profile, ``build_serialized_network``; at run time one
execution context per profile, ``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``.
It is here to show that the backend interface carries TensorRT without changes to the runtime;
treat it as unverified until a test on a machine with TensorRT passes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, ClassVar

from .._deps import require
from .._errors import BackendError
from .._profiles import Profile
from .._records import BuildSettings, Built, Manifest, Source
from .base import Backend, Runner


class TensorRTBackend(Backend):
    name = "tensorrt"
    devices: ClassVar[tuple[str, ...]] = ("cuda",)
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "bf16")
    requires = ("tensorrt", "pip install tensorrt, on a machine with an NVIDIA GPU")
    sources: ClassVar[tuple[str, ...]] = ("onnx",)
    compiles_native_code = True

    def build(self, source: Source, profiles: Sequence[Profile], settings: BuildSettings) -> Built:
        trt = require("tensorrt", "the tensorrt backend")
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(source.onnx_model.SerializeToString()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise BackendError(f"TensorRT's ONNX parser rejects the model: {errors[:1500]}",
                               "a model TensorRT supports", "run `dynashape check` on it, or build with --backend inductor")
        config = builder.create_builder_config()
        if settings.precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        elif settings.precision == "bf16":
            config.set_flag(trt.BuilderFlag.BF16)
        if not settings.tf32:
            config.clear_flag(trt.BuilderFlag.TF32)  # TensorRT enables TF32 by default; dynashape does not
        for p in profiles:
            op = builder.create_optimization_profile()
            for name, r in p.items():
                op.set_shape(name, r.min, r.opt, r.max)
            config.add_optimization_profile(op)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise BackendError("TensorRT failed to build the engine (see its log above)", None, "rebuild with -v")
        return Built({"engine.plan": bytes(plan)}, source.inputs, source.outputs, {"tensorrt": trt.__version__})

    def load(self, manifest: Manifest, payloads: dict[str, bytes]) -> Runner:
        trt = require("tensorrt", "the tensorrt backend")
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        engine = runtime.deserialize_cuda_engine(payloads["engine.plan"])
        if engine is None:
            raise BackendError(f"TensorRT {trt.__version__} cannot load this plan (built with {manifest.backend_data.get('tensorrt')})",
                               "a plan built by the same TensorRT version on the same GPU model", "rebuild the engine here")
        return TensorRTRunner(trt, engine, [s.name for s in manifest.inputs], [s.name for s in manifest.outputs], len(manifest.profiles))


class TensorRTRunner(Runner):
    native = "torch"

    def __init__(self, trt: Any, engine: Any, inputs: list[str], outputs: list[str], n_profiles: int) -> None:
        import torch

        self._torch = torch
        self._trt = trt
        self.engine = engine
        self.inputs = inputs
        self.outputs = outputs
        # One execution context per profile; a context is not thread-safe, so each has a lock.
        self.contexts = []
        stream = torch.cuda.current_stream().cuda_stream
        for k in range(n_profiles):
            ctx = engine.create_execution_context()
            ctx.set_optimization_profile_async(k, stream)
            self.contexts.append((ctx, threading.Lock()))
        torch.cuda.current_stream().synchronize()

    def run(self, profile: int, inputs: Sequence[Any]) -> list[Any]:
        torch, trt = self._torch, self._trt
        ctx, lock = self.contexts[profile]
        stream = torch.cuda.current_stream()
        with lock:
            for name, x in zip(self.inputs, inputs, strict=True):
                ctx.set_input_shape(name, tuple(x.shape))
                ctx.set_tensor_address(name, x.data_ptr())
            outs = []
            for name in self.outputs:
                dtype = torch.from_numpy(trt.nptype(self.engine.get_tensor_dtype(name))(0).reshape(1)).dtype if hasattr(trt, "nptype") else torch.float32
                out = torch.empty(tuple(ctx.get_tensor_shape(name)), dtype=dtype, device=inputs[0].device)
                ctx.set_tensor_address(name, out.data_ptr())
                outs.append(out)
            if not ctx.execute_async_v3(stream.cuda_stream):
                raise BackendError("TensorRT's execute_async_v3 failed (see its log)", None, None)
        return outs
