"""``dynashape.build``: an engine from an ONNX file or a torch module, with one or more profiles."""

from __future__ import annotations

from .builder import BuildSettings, build, choose_backend

__all__ = ["BuildSettings", "build", "choose_backend"]
