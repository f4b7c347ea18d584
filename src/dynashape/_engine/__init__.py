"""Engines: the file format (:mod:`.file`) with its schema (:mod:`.schema`, :mod:`.schema_parts`) and signatures
(:mod:`.signing`), profile selection (:mod:`.selection`), the runtime (:mod:`.engine`; execution in
:mod:`.torch_runtime` and :mod:`.cudagraphs`, the planned bucket ladder in :mod:`.ladder`)."""

from __future__ import annotations

from .engine import Engine, load

__all__ = ["Engine", "load"]
