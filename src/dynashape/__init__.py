"""dynashape: dynamic-shape inference engines, checked and fast.

The pipeline, one call per step::

    dynashape.export(module, example_inputs, "model.onnx", dynamic_axes=...)   # export + verify
    dynashape.check("model.onnx")                                              # what pins a dynamic dim
    plan = dynashape.plan("requests.log", "model.onnx")                         # profiles + graph ladder from traffic
    engine = dynashape.build("model.onnx", [profile], backend="auto")          # real engine
    engine.save("model.engine"); engine = dynashape.load("model.engine")
    outputs = engine.run({"input_1": x})                                       # picks the profile
    dynashape.bench(engine, shapes); dynashape.compare(engine, "model.onnx")

``import dynashape`` imports neither torch, onnx nor onnxruntime: each is imported inside the step
that needs it (tests/test_public_api.py holds this).
"""

__version__ = "0.1.0"

# NOTE: the implementation packages are private (_export, _check, _builder, _backend, _engine,
# _bench): the names below are the whole public surface, so no step function shares its name with a
# package and tests/test_public_api.py can hold the surface to an explicit list.
from ._bench import bench, compare
from ._builder import BuildSettings, build
from ._check import check
from ._engine import Engine, load
from ._errors import (
    BackendError,
    DynashapeError,
    EngineFileError,
    ExportError,
    MissingDependencyError,
    ModelError,
    ProfileError,
    ShapeError,
    UnsupportedOpError,
)
from ._export import ExportResult, export
from ._inspection import inspect
from ._plan import Plan, plan
from ._profiles import Profile, ShapeRange, parse_dim_ranges, parse_shapes
from ._specs import TensorSpec

__all__ = [
    "BackendError",
    "BuildSettings",
    "DynashapeError",
    "Engine",
    "EngineFileError",
    "ExportError",
    "ExportResult",
    "MissingDependencyError",
    "ModelError",
    "Plan",
    "Profile",
    "ProfileError",
    "ShapeError",
    "ShapeRange",
    "TensorSpec",
    "UnsupportedOpError",
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
    "plan",
]
