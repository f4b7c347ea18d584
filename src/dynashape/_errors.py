"""User-facing errors.

Every error a user can cause derives from :class:`DynashapeError` and reads the same way:
what was received | what was expected | what to do. The CLI prints these without a traceback
and exits non-zero; anything else is a bug in dynashape and keeps its traceback.
"""

from __future__ import annotations


class DynashapeError(Exception):
    """A user error: bad input, a bad file, a missing dependency, a shape outside every profile.

    Args:
        received: what was given (the offending value, name or file).
        expected: what would have been valid.
        fix: what the user can do about it.
    """

    def __init__(self, received: str, expected: str | None = None, fix: str | None = None) -> None:
        self.received = received
        self.expected = expected
        self.fix = fix
        super().__init__(" | ".join(p for p in (received, expected, fix) if p))


class ShapeError(DynashapeError):
    """An input shape is out of range, has the wrong rank, or disagrees with another input."""


class ProfileError(DynashapeError):
    """An optimization profile is malformed or does not match the model."""


class ModelError(DynashapeError):
    """A model (ONNX file, torch module) cannot be read, exported or verified."""


class ExportError(ModelError):
    """The ONNX export failed, or its verification against PyTorch failed."""


class EngineFileError(DynashapeError):
    """An engine file is truncated, corrupt, of a newer format, or for a device this machine lacks."""


class BackendError(DynashapeError):
    """A backend is missing, cannot build this model, or failed to load an engine."""


class MissingDependencyError(BackendError):
    """An optional dependency (torch, onnxruntime, tensorrt) is not installed."""


class UnsupportedOpError(ModelError):
    """An ONNX op that the importer does not support."""
