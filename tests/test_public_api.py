"""The public surface: what ``import dynashape`` exposes and what it must not import."""

from __future__ import annotations

import json
import subprocess
import sys

import dynashape

# NOTE: an explicit list, so that a name made public by accident (or dropped) fails here.
EXPECTED_ALL = {
    "BuildSettings", "DynashapeError", "Engine", "ExportResult", "Profile", "ShapeError", "ShapeRange",
    "TensorSpec", "__version__", "bench", "build", "check", "compare", "export", "inspect", "load",
    "parse_dim_ranges", "parse_shapes",
}
HEAVY = ("torch", "onnx", "onnxruntime", "onnxscript", "tensorrt")


def test_all_is_the_expected_set() -> None:
    assert set(dynashape.__all__) == EXPECTED_ALL
    assert len(dynashape.__all__) == len(EXPECTED_ALL), "a name appears twice in __all__"


def test_every_public_name_resolves() -> None:
    for name in dynashape.__all__:
        assert getattr(dynashape, name) is not None, name


def test_step_functions_are_functions_not_subpackages() -> None:
    # dynashape.build is both a folder and a function; the function must win, for good.
    import dynashape.build.builder

    for name in ("build", "export", "bench", "compare", "check", "inspect", "load"):
        assert callable(getattr(dynashape, name)), name


def test_import_is_light() -> None:
    code = (
        "import sys, json, dynashape; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_user_errors_share_one_base() -> None:
    from dynashape import errors

    for cls in (errors.ShapeError, errors.ProfileError, errors.ModelError, errors.ExportError,
                errors.EngineFileError, errors.BackendError, errors.MissingDependencyError):
        assert issubclass(cls, dynashape.DynashapeError)
    e = errors.ProfileError("got this", "wanted that", "do this")
    assert str(e) == "got this | wanted that | do this"
    assert str(errors.ShapeError("only received")) == "only received"


def test_version() -> None:
    assert dynashape.__version__ == "0.1.0"
