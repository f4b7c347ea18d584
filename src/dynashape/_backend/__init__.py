"""Backends: one module each, each with the same two verbs (build an engine, run an engine).

| name          | devices   | builds from        | status here |
|---------------|-----------|--------------------|-------------|
| onnxruntime   | cpu       | ONNX               | tested      |
| inductor      | cpu, cuda | torch module, ONNX | tested (ONNX through dynashape.onnx.to_torch) |
| tensorrt      | cuda      | ONNX               | written against TensorRT 10/11; never run here (not installable); contract test only |
"""

from __future__ import annotations

import importlib

from .._errors import BackendError
from .._records import BuildSettings, Built, Source
from .base import Backend, Runner

_BACKENDS = {
    "onnxruntime": ("onnxruntime", "OnnxRuntimeBackend"),
    "inductor": ("inductor", "InductorBackend"),
    "tensorrt": ("tensorrt", "TensorRTBackend"),
}

NAMES = tuple(_BACKENDS)


def get_backend(name: str) -> Backend:
    try:
        module, cls = _BACKENDS[name]
    except KeyError:
        raise BackendError(f"backend '{name}'", "one of: auto, " + ", ".join(_BACKENDS)) from None
    return getattr(importlib.import_module(f".{module}", __name__), cls)()


def backend_class(name: str) -> type[Backend]:
    module, cls = _BACKENDS[name]
    return getattr(importlib.import_module(f".{module}", __name__), cls)


__all__ = ["NAMES", "Backend", "BuildSettings", "Built", "Runner", "Source", "backend_class", "get_backend"]
