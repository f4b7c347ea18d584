"""The public surface: what ``import dynashape`` exposes and what it must not import."""

from __future__ import annotations

import json
import subprocess
import sys

import dynashape

# NOTE: an explicit list, so that a name made public by accident (or dropped) fails here.
EXPECTED_ALL = {
    "BackendError", "BuildSettings", "DynashapeError", "Engine", "EngineFileError", "ExportError",
    "ExportResult", "MissingDependencyError", "ModelError", "Plan", "Profile", "ProfileError", "ShapeError",
    "ShapeRange", "TensorSpec", "UnsupportedOpError", "__version__", "bench", "build", "check", "compare",
    "export", "inspect", "load", "parse_dim_ranges", "plan", "parse_shapes",
}
# Public subpackages: namespaces of their own, imported on demand (``import dynashape.zoo``).
PUBLIC_SUBPACKAGES = {"cli", "onnx", "serve", "zoo"}
HEAVY = ("torch", "onnx", "onnxruntime", "onnxscript", "tensorrt")


def test_all_is_the_expected_set() -> None:
    assert set(dynashape.__all__) == EXPECTED_ALL
    assert len(dynashape.__all__) == len(EXPECTED_ALL), "a name appears twice in __all__"


def test_every_public_name_resolves() -> None:
    for name in dynashape.__all__:
        assert getattr(dynashape, name) is not None, name


def test_dir_holds_only_the_public_surface() -> None:
    # NOTE: dir(), not __all__: a module imported at the top level (``from . import data``) or a
    # stray helper shows up here even when __all__ forgets it.
    code = "import json, dynashape; print(json.dumps(sorted(n for n in dir(dynashape) if not n.startswith('_'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    public = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert public - PUBLIC_SUBPACKAGES == EXPECTED_ALL - {"__version__"}


def test_step_functions_are_functions_not_subpackages() -> None:
    import importlib

    for name in ("build", "export", "bench", "compare", "check", "inspect", "load", "plan"):
        assert callable(getattr(dynashape, name)), name
        try:
            importlib.import_module(f"dynashape.{name}")
        except ModuleNotFoundError:
            pass
        else:
            raise AssertionError(f"dynashape.{name} is both a function and a package")
        assert callable(getattr(dynashape, name)), name


def test_every_error_class_is_exported() -> None:
    from dynashape import _errors

    classes = {n for n, v in vars(_errors).items() if isinstance(v, type) and issubclass(v, Exception)}
    assert classes <= set(dynashape.__all__), classes - set(dynashape.__all__)


def test_import_is_light() -> None:
    code = (
        "import sys, json, dynashape; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_user_errors_share_one_base() -> None:
    from dynashape import _errors as errors

    for cls in (errors.ShapeError, errors.ProfileError, errors.ModelError, errors.ExportError,
                errors.EngineFileError, errors.BackendError, errors.MissingDependencyError):
        assert issubclass(cls, dynashape.DynashapeError)
    e = errors.ProfileError("got this", "wanted that", "do this")
    assert str(e) == "got this | wanted that | do this"
    assert str(errors.ShapeError("only received")) == "only received"


def test_version() -> None:
    assert dynashape.__version__ == "0.1.0"
