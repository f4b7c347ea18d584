"""dynashape: dynamic-shape inference engines, checked and fast.

The pipeline, one call per step::

    dynashape.export(module, example_inputs, "model.onnx", dynamic_axes=...)   # export + verify
    dynashape.check("model.onnx")                                              # what pins a dynamic dim
    engine = dynashape.build("model.onnx", [profile], backend="auto")          # real engine
    engine.save("model.engine"); engine = dynashape.load("model.engine")
    outputs = engine.run({"input_1": x})                                       # picks the profile

``import dynashape`` imports neither torch nor onnxruntime: each is imported when a step needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import DynashapeError, ShapeError
from .profiles import Profile, ShapeRange

__version__ = "0.1.0"

# NOTE: public name -> module that defines it; resolved on first access so that importing the
# package stays light. tests/test_public_api.py fails when a name appears here by accident.
_LAZY = {
    "export": ".export",
    "ExportResult": ".export",
    "inspect": ".inspection",
    "build": ".build",
    "BuildSettings": ".build",
    "Engine": ".engine",
    "load": ".engine",
    "check": ".check",
    "bench": ".bench",
    "compare": ".bench",
    "TensorSpec": ".specs",
    "parse_shapes": ".profiles",
    "parse_dim_ranges": ".profiles",
    "errors": ".errors",
}

__all__ = sorted(["DynashapeError", "Profile", "ShapeError", "ShapeRange", "__version__", *_LAZY])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dynashape' has no attribute '{name}'")
    mod = importlib.import_module(module, __name__)
    value = mod if name == "errors" else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from . import errors
    from .bench import bench, compare
    from .build import BuildSettings, build
    from .check import check
    from .engine import Engine, load
    from .export import ExportResult, export
    from .inspection import inspect
    from .profiles import parse_dim_ranges, parse_shapes
    from .specs import TensorSpec
