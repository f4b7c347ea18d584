"""dynashape: dynamic-shape inference engines, checked and fast.

The pipeline, one call per step::

    dynashape.export(module, example_inputs, "model.onnx", dynamic_axes=...)   # export + verify
    dynashape.check("model.onnx")                                              # what pins a dynamic dim
    engine = dynashape.build("model.onnx", [profile], backend="auto")          # real engine
    engine.save("model.engine"); engine = dynashape.load("model.engine")
    outputs = engine.run({"input_1": x})                                       # picks the profile
    dynashape.bench(engine, shapes); dynashape.compare(engine, "model.onnx")

``import dynashape`` imports neither torch, onnx nor onnxruntime: each is imported inside the step
that needs it (tests/test_public_api.py holds this).
"""

from __future__ import annotations

__version__ = "0.1.0"

# NOTE: the step functions share their names with the step folders (dynashape.build is both the
# folder build/ and the function). Importing each folder here, then binding the function, keeps the
# function in place for good: Python binds a subpackage onto its parent only on its first import.
from .bench import bench, compare
from .build import BuildSettings, build
from .check import check
from .engine import Engine, load
from .errors import DynashapeError, ShapeError
from .export import ExportResult, export
from .inspection import inspect
from .profiles import Profile, ShapeRange, parse_dim_ranges, parse_shapes
from .specs import TensorSpec

__all__ = [
    "BuildSettings",
    "DynashapeError",
    "Engine",
    "ExportResult",
    "Profile",
    "ShapeError",
    "ShapeRange",
    "TensorSpec",
    "__version__",
    "bench",
    "build",
    "check",
    "compare",
    "export",
    "inspect",
    "load",
    "parse_dim_ranges",
    "parse_shapes",
]
