"""The manifest's schema, continued: guard-split parts, alignment records, the plan and backend data.

Each field is checked for its type, its range and its consistency with the inputs, outputs,
profiles and payloads, so that a damaged or hand-edited manifest is refused with one
:class:`EngineFileError` naming the field (``parts[2].dims[0].residues``) instead of an IndexError
or a wrong result at run time: the runtime trusts these records (:class:`~dynashape._engine.selection.PartTable`
picks a package by them, :class:`~dynashape._backend.alignment.Aligner` and the ladder pad and crop
by them). Fields this dynashape does not know are ignored, as in the rest of the manifest.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .._plan.record import PLAN_FORMAT_VERSION
from .schema import MAX_DIM, Checker, int_in, is_name, range_shapes

if TYPE_CHECKING:
    from .._backend.base import Backend

#: entries of any list in these records (parts, graph shapes, buckets, guards): far above what a build writes
MAX_ITEMS = 4096
#: a guard's or a reason's text (torch's guards are sympy expressions, longer than a name)
MAX_TEXT = 1 << 16
#: part counts per profile (the guard splitter's own limit is far lower)
MAX_PARTS = 256
_STEP = (2, 1024)  # an alignment step, as dynashape._backend.alignment.check_align allows
_OPT_LEVELS = ("disable", "basic", "extended", "all")


def _list(limit: int = MAX_ITEMS, *, item: Callable[[Any], bool] | None = None, empty: bool = True) -> Callable[[Any], bool]:
    return lambda v: (isinstance(v, list) and len(v) <= limit and (empty or len(v) > 0)
                      and (item is None or all(item(x) for x in v)))


def _text(v: Any) -> bool:
    return isinstance(v, str) and len(v) <= MAX_TEXT


def _number(v: Any) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def _equals(x: int) -> Callable[[Any], bool]:
    return lambda v: type(v) is int and v == x


def _multiples(step: int, lo: int, hi: int) -> Callable[[Any], bool]:
    """[first, last]: multiples of ``step`` with lo <= first <= last <= hi."""
    return lambda v: (isinstance(v, list) and len(v) == 2 and all(type(x) is int and x % step == 0 for x in v)
                      and lo <= v[0] <= v[1] <= hi)


def _crop_rule(rank: int) -> Callable[[Any], bool]:
    """[axis, a, b]: the output's ``axis`` has size ``a * dim + b`` (dynashape._plan.padding.crop_array)."""
    return lambda r: (isinstance(r, list) and len(r) == 3 and all(type(x) is int for x in r)
                      and 0 <= r[0] < rank and 0 <= r[1] <= MAX_DIM and -MAX_DIM <= r[2] <= MAX_DIM)


def _named_dims(inputs: Sequence[dict[str, Any]]) -> list[str]:
    return sorted({d for s in inputs for d in s["shape"] if isinstance(d, str)})


def _first_places(inputs: list[dict[str, Any]]) -> dict[str, tuple[str, int]]:
    """A named dim's first place, (input name, axis): every place of a dim has the same range."""
    where: dict[str, tuple[str, int]] = {}
    for s in inputs:
        for a, dim in enumerate(s["shape"]):
            if isinstance(dim, str):
                where.setdefault(dim, (s["name"], a))
    return where


def _named_range(c: Checker, d: dict[str, Any], g: str, where: dict[str, tuple[str, int]],
                 profile: dict[str, Any]) -> tuple[str, int, int]:
    """A record's ``name`` (one of the inputs' named dims) and the profile's min and max of that dim."""
    name = c.get(d, "name", g + ".name", lambda v: isinstance(v, str) and v in where,
                 "one of the inputs' named dims: " + (", ".join(sorted(where)) or "(none)"))
    return (name, *_range_of(profile, *where[name]))


def _range_of(profile: dict[str, Any], name: str, axis: int) -> tuple[int, int]:
    r = profile[name]
    return r["min"][axis], r["max"][axis]


# -- guard-split parts ---------------------------------------------------------------------------

def check_parts(c: Checker, parts: Any, cls: type[Backend], inputs: list[dict[str, Any]], profiles: list[dict[str, Any]],
                payloads: set[str]) -> None:
    """``parts``: each part's profile, dim classes (places, range, residues) and payload, against the
    profiles and the payload table; every profile's packages named as the backend loads them."""
    if parts is None:
        parts = []
    c.get({"parts": parts}, "parts", "parts", _list(), f"a list of at most {MAX_ITEMS} profile parts")
    if cls.part_payloads(0, 1) is None:
        if parts:
            raise c.fail("parts", f"{len(parts)} parts", f"no parts: the {cls.name} backend does not split profiles")
        return
    by_name = {s["name"]: s for s in inputs}
    packaged: dict[int, list[str]] = {}
    for j, p in enumerate(parts):
        f = f"parts[{j}]"
        if not isinstance(p, dict):
            raise c.fail(f, p, "an object with profile, dims, guards, sources and payload")
        k = c.get(p, "profile", f + ".profile", int_in(0, len(profiles) - 1), f"a profile index from 0 to {len(profiles) - 1}")
        payload = c.get(p, "payload", f + ".payload", lambda v: v is None or is_name(v), "null (a gap) or a payload name",
                        optional=True, default=None)
        dims = c.get(p, "dims", f + ".dims", _list(64, empty=payload is not None),
                     "a list of dim classes" + ("" if payload is not None else " (at least one: a gap names the values it refuses)"))
        seen: set[str] = set()
        for i, d in enumerate(dims):
            name = _dim_class(c, d, f"{f}.dims[{i}]", by_name, profiles[k])
            if name in seen:
                raise c.fail(f"{f}.dims[{i}].name", name, "each dim once in a part")
            seen.add(name)
        for key in ("guards", "sources"):
            c.get(p, key, f"{f}.{key}", _list(item=_text), f"a list of texts (at most {MAX_TEXT} characters each)", optional=True)
        if payload is not None:
            if payload not in payloads:
                raise c.fail(f + ".payload", payload, "one of the manifest's payloads: " + ", ".join(sorted(payloads)))
            packaged.setdefault(k, []).append(payload)
    for k in range(len(profiles)):
        names = packaged.get(k, [])
        want = cls.part_payloads(k, max(len(names), 1) + 1) or []
        if names and names != want[:len(names)]:
            raise c.fail(f"parts of profile {k}", names, f"payloads {want[:len(names)]}, in the order the {cls.name} backend loads them")
        if want[-1] in payloads:
            raise c.fail(f"parts of profile {k}", names or "none",
                         f"a part for each of profile {k}'s packages (payload '{want[-1]}' is not served by any part)")


def _dim_class(c: Checker, d: Any, f: str, by_name: dict[str, dict[str, Any]], profile: dict[str, Any]) -> str:
    if not isinstance(d, dict):
        raise c.fail(f, d, "an object with name, places, lo, hi, modulus and residues")
    name = c.get(d, "name", f + ".name", is_name, "a dim name")
    places = c.get(d, "places", f + ".places", _list(64, empty=False), "a non-empty list of [input name, axis] pairs")
    for i, pl in enumerate(places):
        ok = (isinstance(pl, list) and len(pl) == 2 and isinstance(pl[0], str) and pl[0] in by_name and type(pl[1]) is int
              and 0 <= pl[1] < len(by_name[pl[0]]["shape"]))
        # NOTE: a dim without a symbol is named <input>_dim<axis>, as the guard splitter names it
        if not ok or (by_name[pl[0]]["shape"][pl[1]] if isinstance(by_name[pl[0]]["shape"][pl[1]], str)
                      else f"{pl[0]}_dim{pl[1]}") != name:
            raise c.fail(f"{f}.places[{i}]", pl, f"[input name, axis] of an axis that carries the dim '{name}'")
    lo_p, hi_p = _range_of(profile, places[0][0], places[0][1])
    lo = c.get(d, "lo", f + ".lo", int_in(lo_p, hi_p), f"an int from {lo_p} to {hi_p} (the profile's range of '{name}')")
    c.get(d, "hi", f + ".hi", int_in(lo, MAX_DIM), f"an int from {lo} (lo) to {MAX_DIM}")
    m = c.get(d, "modulus", f + ".modulus", int_in(1, MAX_DIM), f"an int from 1 to {MAX_DIM}")
    c.get(d, "residues", f + ".residues", lambda v: isinstance(v, list) and 0 < len(v) <= min(m, MAX_ITEMS)
          and all(type(r) is int and 0 <= r < m for r in v) and len(set(v)) == len(v),
          f"distinct ints from 0 to {m - 1} (below the modulus), at least one")
    return name


# -- padding records (the plan's, and the alignment's) --------------------------------------------

def _padding(c: Checker, p: Any, f: str, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> None:
    if not isinstance(p, dict):
        raise c.fail(f, p, "null or an object with safe, reason, pad_values and crop")
    c.get(p, "safe", f + ".safe", lambda v: isinstance(v, bool), "true or false")
    c.get(p, "reason", f + ".reason", _text, "a text")
    names = {s["name"] for s in inputs}
    c.get(p, "pad_values", f + ".pad_values", lambda v: isinstance(v, dict) and all(k in names and _number(x) for k, x in v.items()),
          "an object of input name -> finite number", optional=True)
    ranks = {s["name"]: len(s["shape"]) for s in outputs}
    crop = c.get(p, "crop", f + ".crop", lambda v: isinstance(v, dict) and set(v) <= set(ranks),
                 "an object of output name -> [[axis, a, b], ...]", optional=True, default={})
    for name in crop:
        c.get(crop, name, f"{f}.crop.{name}", _list(64, item=_crop_rule(ranks[name])),
              f"[axis, a, b] triples (size = a * dim + b) with 0 <= axis < {ranks[name]}")


# -- the plan ----------------------------------------------------------------------------------

def check_plan(c: Checker, plan: Any, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> None:
    """``plan``: null, or what :meth:`dynashape._plan.record.Plan.to_json` writes, checked against the inputs."""
    if plan is None:
        return
    if not isinstance(plan, dict):
        raise c.fail("plan", plan, "null or a plan object")
    f = "plan."
    c.get(plan, "format_version", f + "format_version", int_in(1, PLAN_FORMAT_VERSION), f"an int from 1 to {PLAN_FORMAT_VERSION}")
    profiles = c.get(plan, "profiles", f + "profiles", _list(1024), "a list of at most 1024 profiles")
    by_name = {s["name"]: s for s in inputs}
    for k, p in enumerate(profiles):
        pf = f"{f}profiles[{k}]"
        if not isinstance(p, dict) or not p or not set(p) <= set(by_name):
            raise c.fail(pf, sorted(p) if isinstance(p, dict) else p, "ranges for some of the inputs: " + ", ".join(by_name))
        for name, r in p.items():
            shapes = range_shapes(c, f"{pf}.{name}", r, len(by_name[name]["shape"]))
            if not all(a <= b <= d for a, b, d in zip(*shapes, strict=True)):
                raise c.fail(f"{pf}.{name}", shapes, "min <= opt <= max")
    c.get(plan, "static_profiles", f + "static_profiles", int_in(0, len(profiles)), f"an int from 0 to {len(profiles)}", optional=True)
    ladder = c.get(plan, "ladder", f + "ladder", lambda v: v is None or isinstance(v, dict), "null or a ladder object", optional=True, default=None)
    if ladder is not None:
        _ladder(c, ladder, f + "ladder", _named_dims(inputs))
    c.get(plan, "predictions", f + "predictions", lambda v: isinstance(v, dict) and len(v) <= MAX_ITEMS and all(
        isinstance(x, dict) and _number(x.get("value")) and _text(x.get("unit")) and _text(x.get("derivation")) for x in v.values()),
        "an object of name -> {value: a finite number, unit, derivation}", optional=True)
    details = c.get(plan, "details", f + "details", lambda v: isinstance(v, dict), "an object", optional=True, default={})
    for key in ("workload", "measured_at_build"):
        c.get(details, key, f"{f}details.{key}", lambda v: isinstance(v, dict), "an object", optional=True)
    if plan.get("padding") is not None:
        _padding(c, plan["padding"], f + "padding", inputs, outputs)


def _ladder(c: Checker, ladder: dict[str, Any], f: str, named: list[str]) -> None:
    dim = c.get(ladder, "dim", f + ".dim", lambda v: v in named, "one of the inputs' named dims: " + (", ".join(named) or "(none)"))
    c.get(ladder, "buckets", f + ".buckets", lambda v: _list(item=int_in(1, MAX_DIM))(v) and all(a < b for a, b in itertools.pairwise(v)),
          f"at most {MAX_ITEMS} increasing ints from 1 to {MAX_DIM}")
    shapes = c.get(ladder, "shapes", f + ".shapes", _list(), f"a list of at most {MAX_ITEMS} dim assignments")
    keys = set(shapes[0]) if shapes and isinstance(shapes[0], dict) else set()
    for i, s in enumerate(shapes):
        # NOTE: the runtime reads every graph shape by the keys of the first one
        if not (isinstance(s, dict) and dim in s and set(s) == keys and all(int_in(0, MAX_DIM)(v) for v in s.values())):
            raise c.fail(f"{f}.shapes[{i}]", s, f"an object of dim name -> int that assigns '{dim}' and the same dims as shapes[0]")


# -- backend data ------------------------------------------------------------------------------

def check_backend_data(c: Checker, backend: str, data: dict[str, Any], inputs: list[dict[str, Any]], outputs: list[dict[str, Any]],
                       profiles: list[dict[str, Any]]) -> None:
    """``backend_data``: the fields each backend writes and reads back (see its ``build`` and ``load``)."""
    n = len(profiles)
    f = "backend_data."
    if backend == "onnxruntime":
        c.get(data, "optimization_level", f + "optimization_level", lambda v: v in _OPT_LEVELS, f"one of {_OPT_LEVELS}", optional=True)
    elif backend == "tensorrt":
        for key in ("tensorrt", "gpu"):
            c.get(data, key, f + key, is_name, "a version or name", optional=True)
        c.get(data, "compute_capability", f + "compute_capability", lambda v: v is None or (
            isinstance(v, list) and len(v) == 2 and all(int_in(0, 999)(x) for x in v)), "null or [major, minor]", optional=True)
    elif backend == "inductor":
        for key in ("tuning", "torch"):
            c.get(data, key, f + key, lambda v: v is None or is_name(v), "null or a name", optional=True)
        c.get(data, "channels_last", f + "channels_last", lambda v: v is None or isinstance(v, bool), "null, true or false", optional=True)
        c.get(data, "shared_weights", f + "shared_weights", lambda v: isinstance(v, bool), "true or false", optional=True)
        c.get(data, "profile_build_seconds", f + "profile_build_seconds", lambda v: isinstance(v, list) and len(v) == n and all(
            _number(x) and x >= 0 for x in v), f"{n} durations in seconds (one per profile)", optional=True)
        c.get(data, "compile_jobs", f + "compile_jobs", int_in(2, 1024), "a count of parallel compiles from 2 to 1024", optional=True)
        c.get(data, "profile_parts", f + "profile_parts", lambda v: isinstance(v, list) and len(v) == n and all(
            int_in(1, MAX_PARTS)(x) for x in v), f"{n} part counts from 1 to {MAX_PARTS} (one per profile)", optional=True)
        c.get(data, "attention", f + "attention", lambda v: isinstance(v, dict) and v.get("mode") == "sdpa"
              and int_in(0, 1 << 20)(v.get("modules_swapped")), "{mode: 'sdpa', modules_swapped: a count}", optional=True)
        c.get(data, "inductor_defaults", f + "inductor_defaults", lambda v: isinstance(v, list) and len(v) <= 16 and all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and re.fullmatch(r"[a-z_][a-z0-9_.]{0,99}", p[0])
            and type(p[1]) in (bool, int, float) for p in v), "a list of at most 16 [Inductor config key, bool/int/float] pairs",
            optional=True)
        c.get(data, "channel_dots", f + "channel_dots", lambda v: isinstance(v, list) and len(v) <= 1 << 16
              and all(isinstance(x, str) and 0 < len(x) <= 1024 for x in v), "a list of module names", optional=True)
        c.get(data, "unit_resizes", f + "unit_resizes", int_in(1, 1 << 20), "a count of resizes from 1 to 2**20", optional=True)
        splits = c.get(data, "split", f + "split", lambda v: isinstance(v, list) and len(v) == n,
                       f"{n} range-split records (one per profile, null where none)", optional=True, default=[])
        for k, rec in enumerate(splits):
            if rec is not None:
                _range_split(c, rec, f"{f}split[{k}]", inputs, profiles[k])
        records = c.get(data, "alignment", f + "alignment", lambda v: isinstance(v, list) and len(v) == n,
                        f"{n} alignment records (one per profile, null where none)", optional=True, default=[])
        for k, rec in enumerate(records):
            if rec is not None:
                _alignment(c, rec, f"{f}alignment[{k}]", inputs, outputs, profiles[k])


def _range_split(c: Checker, rec: Any, f: str, inputs: list[dict[str, Any]], profile: dict[str, Any]) -> None:
    """A profile built as sub-ranges (dynashape._backend.range_split): per sub-profile, its pieces, each
    ``lo <= opt <= hi`` inside the profile's range of the dim."""
    if not (isinstance(rec, list) and 2 <= len(rec) <= MAX_PARTS):
        raise c.fail(f, rec, f"null or a list of 2 to {MAX_PARTS} sub-profiles")
    where = _first_places(inputs)
    for i, pieces in enumerate(rec):
        if not (isinstance(pieces, list) and 1 <= len(pieces) <= 16):
            raise c.fail(f"{f}[{i}]", pieces, "a list of 1 to 16 sub-ranges")
        for j, d in enumerate(pieces):
            g = f"{f}[{i}][{j}]"
            if not isinstance(d, dict):
                raise c.fail(g, d, "an object with name, lo, hi and opt")
            _name, lo_p, hi_p = _named_range(c, d, g, where, profile)
            lo = c.get(d, "lo", g + ".lo", int_in(lo_p, hi_p), f"an int in the profile's range {lo_p}..{hi_p}")
            hi = c.get(d, "hi", g + ".hi", int_in(lo, hi_p), f"an int from lo ({lo}) to the profile's max ({hi_p})")
            c.get(d, "opt", g + ".opt", int_in(lo, hi), f"an int from lo ({lo}) to hi ({hi})")


def _alignment(c: Checker, rec: Any, f: str, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]], profile: dict[str, Any]) -> None:
    if not isinstance(rec, dict):
        raise c.fail(f, rec, "null or an object with dims")
    c.get(rec, "skipped", f + ".skipped", _text, "a text (why torch.export refused the aligned dims)", optional=True)
    c.get(rec, "general_part", f + ".general_part", lambda v: isinstance(v, bool), "true or false", optional=True)
    dims = c.get(rec, "dims", f + ".dims", _list(64, empty=False), "a non-empty list of aligned dims")
    where = _first_places(inputs)
    for i, d in enumerate(dims):
        g = f"{f}.dims[{i}]"
        if not isinstance(d, dict):
            raise c.fail(g, d, "an object with name, step, lo, hi, aligned and padding")
        name, lo_p, hi_p = _named_range(c, d, g, where, profile)
        step = c.get(d, "step", g + ".step", int_in(*_STEP), f"an int from {_STEP[0]} to {_STEP[1]}")
        c.get(d, "lo", g + ".lo", _equals(lo_p), f"{lo_p}, the profile's min of '{name}'")
        c.get(d, "hi", g + ".hi", _equals(hi_p), f"{hi_p}, the profile's max of '{name}'")
        top = -(-hi_p // step) * step  # the first multiple at or above the max: where padding ends
        if c.get(d, "edge", g + ".edge", lambda v: isinstance(v, bool), "true or false", optional=True, default=False):
            # a padded edge value: the profile's min runs padded to min + 1, and nothing else is padded
            if step != lo_p + 1:
                raise c.fail(g + ".step", step, f"{lo_p + 1} (the profile's min of '{name}' plus one) for a padded edge value")
            c.get(d, "aligned", g + ".aligned", functools.partial(operator.eq, [step, step]), f"[{step}, {step}]")
            if not isinstance(d.get("padding"), dict) or d["padding"].get("safe") is not True:
                raise c.fail(g + ".padding", d.get("padding"), "a safe padding verdict (an edge value is padded only when safe)")
        c.get(d, "aligned", g + ".aligned", _multiples(step, lo_p, top),
              f"[first, last] multiples of {step} from {lo_p} up to the first multiple at or above {hi_p}")
        if d.get("padding") is not None:
            _padding(c, d["padding"], g + ".padding", inputs, outputs)
