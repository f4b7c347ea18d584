"""The manifest's schema: every field's type, range and consistency, checked before any of it is used.

An engine file may be damaged, hand-edited or hostile. :func:`check_manifest` raises one
:class:`EngineFileError` that names the field (``inputs[0].shape[2]``) instead of a KeyError or
TypeError deep inside the runtime, and it runs before any backend is imported or any payload is
extracted. The payload table is checked against the file's size from ``os.stat``, before any
payload is read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from .._dtypes import DTYPES as _DTYPES
from .._errors import EngineFileError
from .._limits import HARD_MAX_THREADS, MAX_ELEMENTS

#: the formats this dynashape reads (see :mod:`dynashape._engine.file` for what each one protects)
FORMAT_VERSIONS = (1, 2)
#: CPU threads per inference that an engine may ask for (see dynashape._limits)
MAX_THREADS = HARD_MAX_THREADS
#: the largest dim a manifest may hold (int32: what every backend indexes with)
MAX_DIM = 2**31 - 1
MAX_MANIFEST_BYTES = 16 << 20
DTYPES = frozenset(_DTYPES)
COMPRESSIONS = ("none", "zlib")
_OPT_LEVELS = (None, "disable", "basic", "extended", "all")
_DEVICE = re.compile(r"(cpu|cuda)(:\d{1,4})?")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class Checker:
    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, field: str, value: Any, expected: str) -> EngineFileError:
        text = repr(value)
        if len(text) > 120:
            text = text[:117] + "..."
        return EngineFileError(f"{self.where}: manifest field '{field}' = {text}", expected,
                               "rebuild the engine; an engine file edited by hand or damaged cannot be loaded")

    def get(self, d: dict[str, Any], key: str, field: str, test: Callable[[Any], bool], expected: str, *,
            default: Any = ..., optional: bool = False) -> Any:
        if key not in d:
            if optional:
                return default
            raise EngineFileError(f"{self.where}: the manifest lacks the field '{field}'", f"{expected} in '{field}'",
                                  "rebuild the engine with this dynashape; the file is damaged or from another program")
        v = d[key]
        if not test(v):
            raise self.fail(field, v, expected)
        return v


def int_in(lo: int, hi: int) -> Callable[[Any], bool]:
    return lambda v: type(v) is int and lo <= v <= hi


def is_name(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v) <= 1024


def _dim(v: Any) -> bool:
    return v is None or is_name(v) or (type(v) is int and 0 <= v <= MAX_DIM)


def shape_of_rank(rank: int) -> Callable[[Any], bool]:
    """``rank`` dims from 0 to MAX_DIM, with at most MAX_ELEMENTS elements (as a profile allows)."""
    return lambda v: (isinstance(v, list) and len(v) == rank and all(type(d) is int and 0 <= d <= MAX_DIM for d in v)
                      and math.prod(v) <= MAX_ELEMENTS)


def _specs(c: Checker, data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    specs = c.get(data, key, key, lambda v: isinstance(v, list) and 0 < len(v) <= 4096, "a non-empty list of tensors")
    names = set()
    for i, s in enumerate(specs):
        f = f"{key}[{i}]"
        if not isinstance(s, dict):
            raise c.fail(f, s, "an object with name, dtype and shape")
        name = c.get(s, "name", f + ".name", is_name, "a non-empty name")
        if name in names:
            raise c.fail(f + ".name", name, f"a name unique among the {key}")
        names.add(name)
        c.get(s, "dtype", f + ".dtype", lambda v: isinstance(v, str) and v in DTYPES, "one of: " + ", ".join(sorted(DTYPES)))
        shape = c.get(s, "shape", f + ".shape", lambda v: isinstance(v, list) and len(v) <= 64, "a list of at most 64 dims")
        for a, d in enumerate(shape):
            if not _dim(d):
                raise c.fail(f"{f}.shape[{a}]", d, f"an int from 0 to {MAX_DIM}, a dim name, or null")
    return specs


def range_shapes(c: Checker, field: str, r: Any, rank: int) -> list[tuple[int, ...]]:
    """A profile's range for one input (``{min, opt, max}``) as its three shapes, each of ``rank`` dims."""
    if not isinstance(r, dict):
        raise c.fail(field, r, "an object with min, opt and max")
    return [c.get(r, key, f"{field}.{key}", shape_of_rank(rank),
                  f"{rank} ints from 0 to {MAX_DIM} (the input's rank), at most 2**63 - 1 elements") for key in ("min", "opt", "max")]


def _profiles(c: Checker, data: dict[str, Any], inputs: list[dict[str, Any]]) -> None:
    profiles = c.get(data, "profiles", "profiles", lambda v: isinstance(v, list) and 0 < len(v) <= 1024, "a non-empty list of profiles")
    by_name = {s["name"]: s for s in inputs}
    for k, p in enumerate(profiles):
        f = f"profiles[{k}]"
        if not isinstance(p, dict) or set(p) != set(by_name):
            raise c.fail(f, sorted(p) if isinstance(p, dict) else p, "a range for each input: " + ", ".join(by_name))
        for name, r in p.items():
            shapes = range_shapes(c, f"{f}.{name}", r, len(by_name[name]["shape"]))
            for a, (lo, op, hi) in enumerate(zip(*shapes, strict=True)):
                if not lo <= op <= hi:
                    raise c.fail(f"{f}.{name} dim {a}", (lo, op, hi), "min <= opt <= max")
                static = by_name[name]["shape"][a]
                if type(static) is int and not lo == hi == static:
                    raise c.fail(f"{f}.{name} dim {a}", (lo, op, hi), f"{static}, the input's static dim")


def _split_how(v: Any) -> bool:
    """A range split's ``how`` (see dynashape._backend.range_split.check_split)."""
    if isinstance(v, list) and v and all(isinstance(t, list) for t in v):  # [lo, opt, hi] sub-ranges
        return len(v) <= 64 and all(len(t) == 3 and all(int_in(1, MAX_DIM)(x) for x in t) and t[0] <= t[1] <= t[2] for t in v)
    return v == "auto" or int_in(1, 8)(v) or (isinstance(v, list) and 1 <= len(v) <= 7 and all(int_in(1, MAX_DIM)(x) for x in v))


def _build_settings(c: Checker, data: dict[str, Any]) -> None:
    b = c.get(data, "build_settings", "build_settings", lambda v: isinstance(v, dict), "an object")
    f = "build_settings."
    c.get(b, "device", f + "device", lambda v: v == data["device"], f"'{data['device']}', the engine's device", optional=True)
    c.get(b, "precision", f + "precision", lambda v: v == data["precision"], f"'{data['precision']}', the engine's precision", optional=True)
    c.get(b, "threads", f + "threads", lambda v: v is None or int_in(1, MAX_THREADS)(v), f"null or an int from 1 to {MAX_THREADS}", optional=True)
    c.get(b, "optimization_level", f + "optimization_level", lambda v: v in _OPT_LEVELS, f"one of {_OPT_LEVELS}", optional=True)
    c.get(b, "tuning", f + "tuning", lambda v: v is None or is_name(v), "null or a name", optional=True)
    named = sorted({d for s in data["inputs"] for d in s["shape"] if isinstance(d, str)})
    c.get(b, "align", f + "align", lambda v: isinstance(v, list) and all(
        isinstance(p, list) and len(p) == 2 and p[0] in named and int_in(2, 1024)(p[1]) for p in v),
        "a list of [dim name, step 2..1024] pairs naming the inputs' dims: " + (", ".join(named) or "(none)"), optional=True)
    c.get(b, "split", f + "split", lambda v: isinstance(v, list) and len(v) <= 64 and all(
        isinstance(p, list) and len(p) == 2 and (p[0] in named or p[0] == "*") and _split_how(p[1]) for p in v),
        "a list of [dim name or '*', 'auto' | a count 1..8 | a list of cut points | a list of [lo, opt, hi]] pairs naming the inputs' dims: "
        + (", ".join(named) or "(none)"), optional=True)
    c.get(b, "attention", f + "attention", lambda v: v in (None, "sdpa", "auto"), "null, 'sdpa' or 'auto'", optional=True)
    c.get(b, "inductor_config", f + "inductor_config", lambda v: isinstance(v, list) and len(v) <= 64 and all(
        isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and re.fullmatch(r"[a-z_][a-z0-9_.]{0,99}", p[0])
        and type(p[1]) in (bool, int, float, str) and (not isinstance(p[1], str) or len(p[1]) <= 200) for p in v),
        "a list of at most 64 [Inductor config key, bool/int/float/short string] pairs", optional=True)
    for key in ("validate", "tf32", "share_weights", "align_pad"):
        c.get(b, key, f + key, lambda v: isinstance(v, bool), "true or false", optional=True)
    c.get(b, "channels_last", f + "channels_last", lambda v: v is None or isinstance(v, bool), "null, true or false", optional=True)
    outs = [s["name"] for s in data["outputs"]]
    c.get(b, "append_ops", f + "append_ops", lambda v: isinstance(v, list) and all(
        isinstance(p, list) and len(p) == 2 and p[0] in outs and is_name(p[1]) for p in v),
        "a list of [output name, op] pairs naming the outputs: " + ", ".join(outs), optional=True)


def check_manifest(data: Any, where: str, *, payload_region: int) -> list[dict[str, Any]]:
    """Check a parsed manifest; return its payload entries sorted by offset.

    ``payload_region`` is the number of bytes after the header (from ``os.stat``): the payloads must
    tile it exactly, so a truncated file, a declared size beyond the file and overlapping payloads
    are all refused here, before a byte of them is read.
    """
    from .._backend import NAMES, backend_class
    from .schema_parts import check_backend_data, check_parts, check_plan

    c = Checker(where)
    if not isinstance(data, dict):
        raise c.fail("(top level)", type(data).__name__, "a JSON object")
    c.get(data, "format_version", "format_version", lambda v: v in FORMAT_VERSIONS and type(v) is int, f"one of {FORMAT_VERSIONS}")
    for key in ("dynashape_version", "created"):
        c.get(data, key, key, lambda v: isinstance(v, str) and len(v) <= 256, "a string", optional=True)
    c.get(data, "build_seconds", "build_seconds", lambda v: v is None or (type(v) in (int, float) and math.isfinite(v) and v >= 0),
          "null or a duration in seconds", optional=True)
    name = c.get(data, "backend", "backend", lambda v: v in NAMES, "one of: " + ", ".join(NAMES))
    cls = backend_class(name)  # a pure-Python module: no native library is imported here
    c.get(data, "device", "device", lambda v: isinstance(v, str) and _DEVICE.fullmatch(v) is not None
                   and v.split(":")[0] in cls.devices, f"one of the {name} backend's devices: " + ", ".join(cls.devices) + " (cuda:N for a card)")
    c.get(data, "precision", "precision", lambda v: v in cls.precisions, f"one of the {name} backend's precisions: " + ", ".join(cls.precisions))
    inputs = _specs(c, data, "inputs")
    _specs(c, data, "outputs")
    _profiles(c, data, inputs)
    _build_settings(c, data)
    c.get(data, "library_versions", "library_versions", lambda v: isinstance(v, dict) and all(
        isinstance(k, str) and (x is None or isinstance(x, str)) for k, x in v.items()), "an object of name -> version", optional=True)
    c.get(data, "backend_data", "backend_data", lambda v: isinstance(v, dict), "an object", optional=True)
    outputs = data["outputs"]
    check_backend_data(c, name, data.get("backend_data") or {}, inputs, outputs, data["profiles"])
    check_plan(c, data.get("plan"), inputs, outputs)
    try:
        expected = cls.payload_names(len(data["profiles"]), data.get("backend_data") or {})
    except (ValueError, TypeError, KeyError, IndexError) as e:
        raise c.fail("backend_data", str(e), f"what the {name} backend writes") from e
    entries = _payloads(c, data, payload_region, expected)
    check_parts(c, data.get("parts", []), cls, inputs, data["profiles"], {e["name"] for e in entries})
    _input_hints(c, data, inputs)
    return entries


def _input_hints(c: Checker, data: dict[str, Any], inputs: list[dict[str, Any]]) -> None:
    from .._data import ROLES

    names = {s["name"] for s in inputs}
    hints = c.get(data, "input_hints", "input_hints", lambda v: isinstance(v, dict) and set(v) <= names,
                  "an object keyed by the inputs' names: " + ", ".join(sorted(names)), optional=True, default={})
    for n, h in hints.items():
        f = f"input_hints.{n}"
        c.get({"h": h}, "h", f, lambda v: isinstance(v, dict), "an object {role, vocab, why}")
        c.get(h, "role", f + ".role", lambda v: v in ROLES, "one of: " + ", ".join(ROLES))
        c.get(h, "vocab", f + ".vocab", lambda v: v is None or int_in(1, 1 << 40)(v), "null or a table size from 1 to 2**40", optional=True)
        c.get(h, "why", f + ".why", lambda v: isinstance(v, str) and len(v) <= 1000, "a string of at most 1000 characters", optional=True)


def _payloads(c: Checker, data: dict[str, Any], region: int, expected: tuple[set[str], set[str]] | None) -> list[dict[str, Any]]:
    entries = c.get(data, "payloads", "payloads", lambda v: isinstance(v, list) and len(v) <= 4096, "a list of payload entries")
    v2 = data["format_version"] >= 2
    for i, e in enumerate(entries):
        f = f"payloads[{i}]"
        if not isinstance(e, dict):
            raise c.fail(f, e, "an object with name, offset, size and sha256")
        c.get(e, "name", f + ".name", lambda v: is_name(v) and "/" not in v and "\\" not in v, "a file name")
        # NOTE: sizes beyond the file are a truncation, named as one by the tiling check below.
        c.get(e, "offset", f + ".offset", int_in(0, 2**62), "an offset in bytes")
        c.get(e, "size", f + ".size", int_in(0, 2**62), "a size in bytes")
        c.get(e, "sha256", f + ".sha256", lambda v: isinstance(v, str) and _SHA256.fullmatch(v) is not None, "64 lowercase hex digits")
        if v2:
            kind = c.get(e, "compression", f + ".compression", lambda v: v in COMPRESSIONS, f"one of {COMPRESSIONS}")
            # NOTE: zlib cannot expand data more than about 1032 times, so a larger raw_size is a
            # lie; the bound keeps a hostile manifest from making the reader allocate without limit.
            limit = e["size"] if kind == "none" else e["size"] * 1032 + 1024
            lo = 0 if kind != "none" else e["size"]
            c.get(e, "raw_size", f + ".raw_size", int_in(lo, limit),
                  f"the payload's size before compression (at most {limit} for {e['size']} stored bytes, {kind})")
    names = [e["name"] for e in entries]
    if len(set(names)) != len(names):
        raise c.fail("payloads", names, "unique payload names")
    ordered = sorted(entries, key=lambda e: e["offset"])
    at = 0
    for e in ordered:
        if e["offset"] != at:
            raise c.fail(f"payloads '{e['name']}'.offset", e["offset"], f"{at}: payloads follow each other without gaps or overlaps")
        at += e["size"]
    if at != region:
        if at > region:
            raise EngineFileError(f"{c.where} is truncated: its payloads need {at} bytes after the manifest, the file has {region}",
                                  "a complete engine file", "rebuild or copy the file again")
        raise c.fail("payloads", f"{at} bytes declared", f"{region} bytes: the payloads fill the file to its end")
    if expected is not None:
        required, allowed = expected
        missing, extra = sorted(required - set(names)), sorted(set(names) - allowed)
        if missing or extra:
            raise c.fail("payloads", names, f"the {data['backend']} backend's payloads: " + ", ".join(sorted(required))
                         + (f" (missing {missing})" if missing else "") + (f" (unknown {extra})" if extra else ""))
    return ordered
