"""Lazy imports of heavy optional dependencies with a message that says what to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from ._errors import MissingDependencyError

# NOTE: the extra names match pyproject.toml's optional-dependencies.
_EXTRAS = {
    "torch": ("torch", "pip install 'dynashape[torch]'  (on a CPU-only machine: pip install torch==2.13.* first)"),
    "cryptography": ("cryptography", "pip install 'dynashape[sign]'"),
    "onnx": ("onnx", "pip install 'dynashape[onnx]'"),
    "onnxruntime": ("onnxruntime", "pip install 'dynashape[onnxruntime]'"),
    "onnxscript": ("onnxscript", "pip install onnxscript  (needed by torch's dynamo ONNX exporter)"),
    "ray": ("ray", "pip install 'dynashape[serve]'"),
    "tensorrt": ("tensorrt", "pip install 'dynashape[tensorrt]' (TensorRT 10.x or 11.x) on a machine with an NVIDIA GPU"),
}


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming what needs it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        top = module.split(".")[0]
        _, how = _EXTRAS.get(top, (top, f"pip install {top}"))
        raise MissingDependencyError(
            f"{purpose} needs the Python package '{top}', which is not importable here ({e})",
            None,
            how,
        ) from e


def version_of(module: str) -> str | None:
    """The installed version of a distribution, without importing it."""
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return None
