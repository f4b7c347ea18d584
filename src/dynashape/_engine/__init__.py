"""Engines: the file format (:mod:`.file`), profile selection (:mod:`.selection`), the runtime (:mod:`.engine`)."""

from __future__ import annotations

from .engine import Engine, load

__all__ = ["Engine", "load"]
