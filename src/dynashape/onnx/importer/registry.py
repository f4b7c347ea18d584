"""The table of op converters, keyed by (domain, op_type), each valid for a range of op versions.

An op's *version* here is the ``since_version`` of the ONNX schema that a model's opset selects
(``onnx.defs.get_schema(op, opset, domain).since_version``). A converter declares the first and last
schema versions whose semantics it implements, so a future version that changes the meaning of an
op is refused at import instead of silently converted with the old meaning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx

    from .graph import Builder

# NOTE: 28 is the newest op version whose changes we have read (onnx 1.23). For the ops registered
# without an explicit `last`, versions 19-28 only add element types (bfloat16, float8, int4, float4,
# int2, float6), which convert the same way or are refused as unsupported types; Cast 24's
# round_mode only acts on float8 targets. The two semantic changes are handled where they occur
# (SpaceToDepth 28 `mode`, Range 27 `stash_type`). Newer versions are refused until read.
MAX_VERSION = 28

Converter = Callable[["Builder", "onnx.NodeProto", list[Any]], Any]


@dataclass(frozen=True)
class Entry:
    domain: str
    op_type: str
    first: int
    last: int
    convert: Converter


_TABLE: dict[tuple[str, str], list[Entry]] = {}


def register(
    *op_types: str, first: int = 1, last: int = MAX_VERSION, domain: str = ""
) -> Callable[[Converter], Converter]:
    """Register ``fn(builder, node, inputs) -> output value(s)`` for ``op_types`` at versions first..last."""

    def wrap(fn: Converter) -> Converter:
        for op_type in op_types:
            _TABLE.setdefault((domain, op_type), []).append(Entry(domain, op_type, first, last, fn))
        return fn

    return wrap


def lookup(domain: str, op_type: str, version: int) -> Entry | None:
    for entry in _TABLE.get((_norm(domain), op_type), ()):
        if entry.first <= version <= entry.last:
            return entry
    return None


def known(domain: str, op_type: str) -> list[Entry]:
    return list(_TABLE.get((_norm(domain), op_type), ()))


def supported_ops() -> list[str]:
    """``op_type`` names (with ``domain:`` prefix outside the default domain), sorted."""
    return sorted(op if not dom else f"{dom}:{op}" for dom, op in _TABLE)


def _norm(domain: str) -> str:
    return "" if domain in ("", "ai.onnx") else domain
