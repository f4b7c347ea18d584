"""Manifests with damaged parts, alignment records, plans and backend data: refused in one line.

The runtime trusts these records (the part table picks a package by them, the aligner and the
ladder pad and crop by them), so each damaged entry must be refused by the manifest's schema, before
anything is extracted or run, with one :class:`dynashape.EngineFileError` naming the field; never a
KeyError, TypeError, ValueError or IndexError, and never a load that serves wrong shapes.

The files are crafted as a careless editor or an attacker can (the digest recomputed, see
``tests/engine/_craft.py``) from a guard-split, aligned, planned inductor manifest grafted onto the
corpus' ONNX Runtime engine. Its payloads are not real packages: an undamaged manifest passes the
schema and is then refused by the package check, so every case below that names its field was
refused by the schema.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# NOTE: tests/engine has no __init__.py; the fuzz package's base folder (tests/) is on sys.path, so
# the crafting helpers import as a namespace package instead of being copied here.
from engine._craft import craft, split  # type: ignore[import-not-found]
from hypothesis import given
from hypothesis import strategies as st

import dynashape
from dynashape import EngineFileError

from .conftest import fuzz_settings, raises_user_error

Doc = dict[str, Any]

_PAD = {"safe": True, "reason": "outputs equal at the real positions", "pad_values": {"x": 0.0}, "crop": {"y": [[0, 1, 0]]}}


def _part(profile: int, lo: int, hi: int, modulus: int, residues: list[int], payload: str | None, **extra: Any) -> Doc:
    dims = [{"name": "batch", "places": [["x", 0]], "lo": lo, "hi": hi, "modulus": modulus, "residues": residues}]
    return {"profile": profile, "dims": dims, "guards": extra.get("guards", []), "sources": extra.get("sources", []), "payload": payload}


def inductor_doc(ort_doc: Doc) -> tuple[Doc, dict[str, bytes]]:
    """The relu engine's manifest (x: [batch, 3]; profile 0 batch 1..4, profile 1 batch 4..16) as
    an inductor engine with every optional record: profile 0 split by a guard (a package for
    1..3, a gap at 4), profile 1 aligned by 4 with a general part, and a plan with a ladder."""
    doc = copy.deepcopy(ort_doc)
    doc["backend"] = "inductor"
    doc["build_settings"]["align"] = [["batch", 4]]
    doc["backend_data"] = {
        "tuning": "default", "channels_last": False, "shared_weights": False, "profile_build_seconds": [1.5, 3.0],
        "torch": "2.11.0", "profile_parts": [1, 2],
        "alignment": [None, {"dims": [{"name": "batch", "step": 4, "lo": 4, "hi": 16, "aligned": [4, 16], "padding": dict(_PAD)},
                                      # the guard split's padded edge value: batch 4 runs padded to 5
                                      {"name": "batch", "step": 5, "lo": 4, "hi": 16, "aligned": [5, 5], "padding": dict(_PAD),
                                       "edge": True}],
                             "general_part": True}],
        # profile 0 built as two sub-ranges of the batch (build(split=...)), each with its opt
        "split": [[[{"name": "batch", "lo": 1, "hi": 2, "opt": 1}], [{"name": "batch", "lo": 3, "hi": 4, "opt": 3}]], None],
        "inductor_defaults": [["triton.max_tiles", 3], ["triton.prefer_nd_tiling", True]],
        "unit_resizes": 2,
    }
    doc["build_settings"]["split"] = [["batch", [2]], ["*", "auto"]]
    doc["parts"] = [
        _part(0, 1, 3, 1, [0], "profile0.pt2", guards=["batch < 4"], sources=["model.py:12 (if x.shape[0] < 4)"]),
        _part(0, 4, 4, 1, [0], None, guards=["batch < 4"], sources=["model.py:12 (if x.shape[0] < 4)"]),
        _part(1, 4, 16, 4, [0], "profile1.pt2"),
        {"profile": 1, "dims": [], "guards": [], "sources": [], "payload": "profile1.part1.pt2"},
    ]
    doc["plan"] = {
        "format_version": 1, "profiles": [p for p in doc["profiles"]], "static_profiles": 0,
        "ladder": {"dim": "batch", "buckets": [1, 2, 4, 8, 16], "shapes": [{"batch": 16}, {"batch": 8}, {"batch": 4}]},
        "predictions": {"latency_per_request": {"value": 0.5, "unit": "ms", "derivation": "proxy: a test"}},
        "details": {"workload": {"requests": 100}, "measured_at_build": {"graphs": 3, "graph_pool_mb": 1.0}},
        "padding": dict(_PAD),
    }
    raw = {"profile0.pt2": b"not a package (0)", "profile1.pt2": b"not a package (1)", "profile1.part1.pt2": b"not a package (1.1)"}
    return doc, raw


@pytest.fixture(scope="module")
def ort_parts(fuzz_dir: Path, relu_engine_bytes: bytes) -> tuple[Doc, dict[str, bytes]]:
    path = fuzz_dir / "relu-for-manifests.engine"
    path.write_bytes(relu_engine_bytes)
    doc, _seal, raw = split(path)
    return doc, raw


@pytest.fixture(scope="module")
def inductor_parts(ort_parts: tuple[Doc, dict[str, bytes]]) -> tuple[Doc, dict[str, bytes]]:
    return inductor_doc(ort_parts[0])


def _check(doc: Doc, raw: dict[str, bytes]) -> None:
    """The schema alone, on ``doc`` with ``raw``'s payload table (what read_engine runs first)."""
    from dynashape._engine.schema import check_manifest

    doc = copy.deepcopy(doc)
    at, entries = 0, []
    for name, data in raw.items():
        entries.append({"name": name, "offset": at, "size": len(data), "compression": "none", "raw_size": len(data), "sha256": "0" * 64})
        at += len(data)
    doc["payloads"] = entries
    check_manifest(doc, "'crafted'", payload_region=at)


def test_the_undamaged_manifest_passes_the_schema(tmp_path: Path, inductor_parts: tuple[Doc, dict[str, bytes]]) -> None:
    doc, raw = inductor_parts
    _check(doc, raw)
    p = tmp_path / "crafted.engine"
    craft(p, doc, raw)
    e = raises_user_error(lambda: dynashape.load(p), EngineFileError)
    assert "not a valid package" in str(e), e  # past the schema, refused by the package check


def _set(path: str, value: Any) -> Callable[[Doc], None]:
    """An edit that sets ``path`` (dots and [i]: ``parts[0].dims[0].lo``) to ``value``; a value of
    ``DELETE`` removes the key."""
    def edit(doc: Doc) -> None:
        keys: list[Any] = []
        for token in path.replace("]", "").replace("[", ".").split("."):
            keys.append(int(token) if token.isdigit() else token)
        node: Any = doc
        for k in keys[:-1]:
            node = node[k]
        if value is DELETE:
            del node[keys[-1]]
        else:
            node[keys[-1]] = copy.deepcopy(value)
    return edit


DELETE = object()
BIG_TEXT = "g" * 70000

# (case id, manifest path, new value, the field the error must name)
PARTS = [
    ("parts not a list", "parts", {"0": 1}, "'parts'"),
    ("part not an object", "parts[0]", 5, "parts[0]"),
    ("profile out of range", "parts[0].profile", 7, "parts[0].profile"),
    ("profile negative", "parts[0].profile", -1, "parts[0].profile"),
    ("profile a bool", "parts[0].profile", False, "parts[0].profile"),
    ("profile a string", "parts[0].profile", "0", "parts[0].profile"),
    ("profile missing", "parts[0].profile", DELETE, "parts[0].profile"),
    ("dims not a list", "parts[0].dims", "batch", "parts[0].dims"),
    ("gap without dims", "parts[1].dims", [], "parts[1].dims"),
    ("dim class not an object", "parts[0].dims[0]", ["batch"], "parts[0].dims[0]"),
    ("dim name missing", "parts[0].dims[0].name", DELETE, "parts[0].dims[0].name"),
    ("dim name of no input", "parts[0].dims[0].name", "height", "parts[0].dims[0].places[0]"),
    ("places empty", "parts[0].dims[0].places", [], "parts[0].dims[0].places"),
    ("place of no input", "parts[0].dims[0].places[0]", ["z", 0], "parts[0].dims[0].places[0]"),
    ("place axis beyond the rank", "parts[0].dims[0].places[0]", ["x", 5], "parts[0].dims[0].places[0]"),
    ("place on a static axis", "parts[0].dims[0].places[0]", ["x", 1], "parts[0].dims[0].places[0]"),
    ("place axis a string", "parts[0].dims[0].places[0]", ["x", "0"], "parts[0].dims[0].places[0]"),
    ("place a string", "parts[0].dims[0].places[0]", "x:0", "parts[0].dims[0].places[0]"),
    ("lo below the profile", "parts[0].dims[0].lo", 0, "parts[0].dims[0].lo"),
    ("lo above the profile", "parts[0].dims[0].lo", 99, "parts[0].dims[0].lo"),
    ("lo a float", "parts[0].dims[0].lo", 1.0, "parts[0].dims[0].lo"),
    ("hi below lo", "parts[2].dims[0].hi", 3, "parts[2].dims[0].hi"),
    ("hi beyond int32", "parts[0].dims[0].hi", 2**40, "parts[0].dims[0].hi"),
    ("hi null", "parts[0].dims[0].hi", None, "parts[0].dims[0].hi"),
    ("modulus zero", "parts[0].dims[0].modulus", 0, "parts[0].dims[0].modulus"),
    ("modulus negative", "parts[0].dims[0].modulus", -4, "parts[0].dims[0].modulus"),
    ("modulus a float", "parts[0].dims[0].modulus", 2.0, "parts[0].dims[0].modulus"),
    ("residues empty", "parts[2].dims[0].residues", [], "parts[2].dims[0].residues"),
    ("residue not below the modulus", "parts[2].dims[0].residues", [4], "parts[2].dims[0].residues"),
    ("residues repeated", "parts[2].dims[0].residues", [0, 0], "parts[2].dims[0].residues"),
    ("residue negative", "parts[2].dims[0].residues", [-1], "parts[2].dims[0].residues"),
    ("residues not a list", "parts[2].dims[0].residues", 0, "parts[2].dims[0].residues"),
    ("guards a string", "parts[0].guards", "batch < 4", "parts[0].guards"),
    ("guards hold a number", "parts[0].guards", [4], "parts[0].guards"),
    ("sources too long", "parts[0].sources", [BIG_TEXT], "parts[0].sources"),
    ("payload unknown", "parts[0].payload", "profile9.pt2", "parts[0].payload"),
    ("payload a number", "parts[0].payload", 3, "parts[0].payload"),
    ("payload with a path", "parts[0].payload", "../profile0.pt2", "parts[0].payload"),
    ("payload of another profile", "parts[0].payload", "profile1.pt2", "parts of profile"),
    ("packages out of load order", "parts[2].payload", "profile1.part1.pt2", "parts of profile 1"),
    ("a package without its part", "parts[3]", DELETE, "parts of profile 1"),
    ("a dim twice in a part", "parts[2].dims", [_part(1, 4, 16, 4, [0], None)["dims"][0]] * 2, "parts[2].dims[1].name"),
]

ALIGNMENT = [
    ("alignment not a list", "backend_data.alignment", {"1": None}, "backend_data.alignment"),
    ("alignment for one profile of two", "backend_data.alignment", [None], "backend_data.alignment"),
    ("record not an object", "backend_data.alignment[1]", 4, "backend_data.alignment[1]"),
    ("record without dims", "backend_data.alignment[1].dims", [], "backend_data.alignment[1].dims"),
    ("dims missing", "backend_data.alignment[1].dims", DELETE, "backend_data.alignment[1].dims"),
    ("aligned dim of no input", "backend_data.alignment[1].dims[0].name", "height", "alignment[1].dims[0].name"),
    ("step 1", "backend_data.alignment[1].dims[0].step", 1, "alignment[1].dims[0].step"),
    ("step 4096", "backend_data.alignment[1].dims[0].step", 4096, "alignment[1].dims[0].step"),
    ("step a string", "backend_data.alignment[1].dims[0].step", "4", "alignment[1].dims[0].step"),
    ("lo not the profile's", "backend_data.alignment[1].dims[0].lo", 3, "alignment[1].dims[0].lo"),
    ("hi not the profile's", "backend_data.alignment[1].dims[0].hi", 15, "alignment[1].dims[0].hi"),
    ("aligned not multiples", "backend_data.alignment[1].dims[0].aligned", [5, 16], "alignment[1].dims[0].aligned"),
    ("aligned past the padded top", "backend_data.alignment[1].dims[0].aligned", [4, 20], "alignment[1].dims[0].aligned"),
    ("aligned reversed", "backend_data.alignment[1].dims[0].aligned", [16, 4], "alignment[1].dims[0].aligned"),
    ("aligned one number", "backend_data.alignment[1].dims[0].aligned", 16, "alignment[1].dims[0].aligned"),
    ("padding a string", "backend_data.alignment[1].dims[0].padding", "safe", "alignment[1].dims[0].padding"),
    ("padding safe a string", "backend_data.alignment[1].dims[0].padding.safe", "true", "dims[0].padding.safe"),
    ("padding reason missing", "backend_data.alignment[1].dims[0].padding.reason", DELETE, "dims[0].padding.reason"),
    ("crop of no output", "backend_data.alignment[1].dims[0].padding.crop", {"q": [[0, 1, 0]]}, "dims[0].padding.crop"),
    ("crop axis beyond the rank", "backend_data.alignment[1].dims[0].padding.crop.y", [[5, 1, 0]], "padding.crop.y"),
    ("crop rule of floats", "backend_data.alignment[1].dims[0].padding.crop.y", [[0.0, 1.0, 0.0]], "padding.crop.y"),
    ("edge not a bool", "backend_data.alignment[1].dims[1].edge", "yes", "alignment[1].dims[1].edge"),
    ("edge step not min + 1", "backend_data.alignment[1].dims[1].step", 6, "alignment[1].dims[1].step"),
    ("edge padding more than one value", "backend_data.alignment[1].dims[1].aligned", [5, 10], "alignment[1].dims[1].aligned"),
    ("edge padded though unsafe", "backend_data.alignment[1].dims[1].padding.safe", False, "alignment[1].dims[1].padding"),
    ("crop rule of two", "backend_data.alignment[1].dims[0].padding.crop.y", [[0, 1]], "padding.crop.y"),
    ("pad value NaN", "backend_data.alignment[1].dims[0].padding.pad_values", {"x": math.nan}, "padding.pad_values"),
    ("pad value of no input", "backend_data.alignment[1].dims[0].padding.pad_values", {"z": 0.0}, "padding.pad_values"),
    ("skipped not a text", "backend_data.alignment[1].skipped", 5, "alignment[1].skipped"),
    ("general_part a string", "backend_data.alignment[1].general_part", "yes", "alignment[1].general_part"),
]

PLAN = [
    ("plan not an object", "plan", [1], "'plan'"),
    ("plan format version 2", "plan.format_version", 2, "plan.format_version"),
    ("plan format version a string", "plan.format_version", "1", "plan.format_version"),
    ("plan profiles not a list", "plan.profiles", {}, "plan.profiles"),
    ("plan profile of no input", "plan.profiles[0]", {"z": {"min": [1], "opt": [1], "max": [1]}}, "plan.profiles[0]"),
    ("plan profile empty", "plan.profiles[0]", {}, "plan.profiles[0]"),
    ("plan profile of another rank", "plan.profiles[0].x.min", [1], "plan.profiles[0].x.min"),
    ("plan profile min above max", "plan.profiles[0].x", {"min": [9, 3], "opt": [9, 3], "max": [4, 3]}, "plan.profiles[0].x"),
    ("static profiles beyond the profiles", "plan.static_profiles", 5, "plan.static_profiles"),
    ("ladder not an object", "plan.ladder", "batch", "plan.ladder"),
    ("ladder dim of no input", "plan.ladder.dim", "seq", "plan.ladder.dim"),
    ("buckets not increasing", "plan.ladder.buckets", [4, 2, 8], "plan.ladder.buckets"),
    ("bucket zero", "plan.ladder.buckets", [0, 4], "plan.ladder.buckets"),
    ("bucket a float", "plan.ladder.buckets", [1.5], "plan.ladder.buckets"),
    ("buckets too many", "plan.ladder.buckets", list(range(1, 5000)), "plan.ladder.buckets"),
    ("graph shapes not a list", "plan.ladder.shapes", {"batch": 4}, "plan.ladder.shapes"),
    ("graph shape without the ladder dim", "plan.ladder.shapes[0]", {"seq": 4}, "plan.ladder.shapes[0]"),
    ("graph shapes with other dims", "plan.ladder.shapes[1]", {"batch": 8, "seq": 2}, "plan.ladder.shapes[1]"),
    ("graph shape negative", "plan.ladder.shapes[2]", {"batch": -4}, "plan.ladder.shapes[2]"),
    ("graph shape a list", "plan.ladder.shapes[2]", [4], "plan.ladder.shapes[2]"),
    ("prediction NaN", "plan.predictions.latency_per_request.value", math.nan, "plan.predictions"),
    ("prediction a string", "plan.predictions.latency_per_request", "fast", "plan.predictions"),
    ("details not an object", "plan.details", [], "plan.details"),
    ("details.workload a list", "plan.details.workload", [1], "plan.details.workload"),
    ("details.measured_at_build a number", "plan.details.measured_at_build", 3, "plan.details.measured_at_build"),
    ("plan padding crop of no output", "plan.padding.crop", {"q": []}, "plan.padding.crop"),
    ("plan padding not an object", "plan.padding", True, "plan.padding"),
]

BACKEND_DATA = [
    ("unit_resizes zero", "backend_data.unit_resizes", 0, "backend_data.unit_resizes"),
    ("unit_resizes a string", "backend_data.unit_resizes", "2", "backend_data.unit_resizes"),
    ("unit_resizes a bool", "backend_data.unit_resizes", True, "backend_data.unit_resizes"),
    ("inductor_defaults an object", "backend_data.inductor_defaults", {"triton.max_tiles": 3}, "backend_data.inductor_defaults"),
    ("inductor_defaults key with a space", "backend_data.inductor_defaults", [["triton max", 3]], "backend_data.inductor_defaults"),
    ("inductor_defaults value a list", "backend_data.inductor_defaults", [["triton.max_tiles", [3]]], "backend_data.inductor_defaults"),
    ("profile_parts for one profile", "backend_data.profile_parts", [1], "backend_data.profile_parts"),
    ("profile_parts zero", "backend_data.profile_parts", [0, 2], "backend_data.profile_parts"),
    ("profile_parts too many", "backend_data.profile_parts", [1, 9999], "backend_data.profile_parts"),
    ("profile_parts fewer than the payloads", "backend_data.profile_parts", [1, 1], "payloads"),
    ("profile_parts more than the payloads", "backend_data.profile_parts", [1, 3], "payloads"),
    ("shared_weights a string", "backend_data.shared_weights", "yes", "backend_data.shared_weights"),
    ("shared weights without weights.pt", "backend_data.shared_weights", True, "payloads"),
    ("build seconds a string", "backend_data.profile_build_seconds", "fast", "backend_data.profile_build_seconds"),
    ("build seconds negative", "backend_data.profile_build_seconds", [-1, 2], "backend_data.profile_build_seconds"),
    ("build seconds for one profile", "backend_data.profile_build_seconds", [1], "backend_data.profile_build_seconds"),
    ("attention another mode", "backend_data.attention", {"mode": "flash", "modules_swapped": 1}, "backend_data.attention"),
    ("tuning a number", "backend_data.tuning", 5, "backend_data.tuning"),
    ("channels_last a string", "backend_data.channels_last", "auto", "backend_data.channels_last"),
    ("backend_data a list", "backend_data", [], "'backend_data'"),
    ("align names no dim", "build_settings.align", [["height", 8]], "build_settings.align"),
    ("split for one profile of two", "backend_data.split", [None], "backend_data.split"),
    ("split not a list", "backend_data.split", {"0": None}, "backend_data.split"),
    ("split of one sub-range", "backend_data.split[0]", [[{"name": "batch", "lo": 1, "hi": 4, "opt": 2}]], "backend_data.split[0]"),
    ("split sub-profile empty", "backend_data.split[0][0]", [], "backend_data.split[0][0]"),
    ("split sub-range not an object", "backend_data.split[0][0][0]", [1, 1, 2], "backend_data.split[0][0][0]"),
    ("split dim of no input", "backend_data.split[0][0][0].name", "height", "split[0][0][0].name"),
    ("split lo below the profile", "backend_data.split[0][0][0].lo", 0, "split[0][0][0].lo"),
    ("split hi above the profile", "backend_data.split[0][1][0].hi", 9, "split[0][1][0].hi"),
    ("split hi below lo", "backend_data.split[0][1][0].hi", 2, "split[0][1][0].hi"),
    ("split opt outside its sub-range", "backend_data.split[0][0][0].opt", 4, "split[0][0][0].opt"),
    ("split opt a float", "backend_data.split[0][0][0].opt", 1.0, "split[0][0][0].opt"),
    ("split setting of no dim", "build_settings.split", [["height", "auto"]], "build_settings.split"),
    ("split setting count 99", "build_settings.split", [["batch", 99]], "build_settings.split"),
    ("split setting a bool", "build_settings.split", [["batch", True]], "build_settings.split"),
    ("split setting sub-range reversed", "build_settings.split", [["batch", [[4, 2, 1]]]], "build_settings.split"),
    ("split setting not pairs", "build_settings.split", ["batch"], "build_settings.split"),
    ("append op on no output", "build_settings.append_ops", [["z", "Sigmoid"]], "build_settings.append_ops"),
]

CASES = PARTS + ALIGNMENT + PLAN + BACKEND_DATA


@pytest.mark.parametrize(("label", "path", "value", "field"), CASES, ids=[c[0] for c in CASES])
def test_damaged_record(tmp_path: Path, inductor_parts: tuple[Doc, dict[str, bytes]], label: str, path: str, value: Any, field: str) -> None:
    doc, raw = inductor_parts
    p = tmp_path / "bad.engine"
    craft(p, doc, raw, edit=_set(path, value))
    e = raises_user_error(lambda: dynashape.load(p), EngineFileError)
    assert field in str(e).split(" | ")[0], (label, str(e))


# Records that only one kind of engine may hold.
OTHER_BACKENDS = [
    ("onnxruntime engine with parts", "onnxruntime", {"parts": [_part(0, 1, 4, 2, [0], "model.onnx")]}, "'parts'"),
    ("onnxruntime optimization level unknown", "onnxruntime", {"backend_data": {"optimization_level": "max"}}, "backend_data.optimization_level"),
    ("onnxruntime payload of tensorrt", "onnxruntime", {"payload_name": "engine.plan"}, "payloads"),
    ("tensorrt payload of onnxruntime", "tensorrt", {}, "payloads"),
    ("tensorrt compute capability a string", "tensorrt", {"backend_data": {"compute_capability": "8.6"}, "payload_name": "engine.plan"},
     "backend_data.compute_capability"),
    ("tensorrt compute capability of one number", "tensorrt", {"backend_data": {"compute_capability": [8]}, "payload_name": "engine.plan"},
     "backend_data.compute_capability"),
    ("tensorrt version a number", "tensorrt", {"backend_data": {"tensorrt": 10}, "payload_name": "engine.plan"}, "backend_data.tensorrt"),
    ("tensorrt engine with parts", "tensorrt", {"parts": [_part(0, 1, 4, 2, [0], "engine.plan")], "payload_name": "engine.plan"}, "'parts'"),
]


@pytest.mark.parametrize(("label", "backend", "change", "field"), OTHER_BACKENDS, ids=[c[0] for c in OTHER_BACKENDS])
def test_records_of_other_backends(tmp_path: Path, ort_parts: tuple[Doc, dict[str, bytes]], label: str, backend: str,
                                   change: Doc, field: str) -> None:
    doc, raw = copy.deepcopy(ort_parts[0]), dict(ort_parts[1])
    doc["backend"] = backend
    if backend == "tensorrt":
        doc["device"] = doc["build_settings"]["device"] = "cuda"
        doc["backend_data"] = {"tensorrt": "10.9.0", "gpu": "NVIDIA H200", "compute_capability": [9, 0]}
    change = dict(change)
    if "payload_name" in change:
        raw = {change.pop("payload_name"): raw["model.onnx"]}
    doc.update(change)
    p = tmp_path / "bad.engine"
    craft(p, doc, raw)
    e = raises_user_error(lambda: dynashape.load(p), EngineFileError)
    assert field in str(e).split(" | ")[0], (label, str(e))


# -- property: any one change is refused by the schema, or the runtime's records build and work --

_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.integers(-3, 20),
                  st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12), st.sampled_from(["batch", "x", "y", "profile0.pt2"]))
_JSON = st.recursive(_LEAF, lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(st.text(max_size=6), kids, max_size=3)),
                     max_leaves=6)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _use_records(doc: Doc) -> None:
    """What the runtime builds from an accepted manifest, exercised at each profile's min, opt and max."""
    from dynashape._backend.alignment import Aligner
    from dynashape._engine.ladder import LadderRuntime
    from dynashape._engine.selection import PartTable
    from dynashape._errors import DynashapeError
    from dynashape._inspection import Inspection
    from dynashape._records import Manifest

    m = Manifest.from_json(doc)
    table = PartTable(m.inputs, m.parts)
    aligner = Aligner(m.inputs, m.outputs, m.backend_data.get("alignment") or [])
    ladder = LadderRuntime.from_manifest(m)
    for k, prof in enumerate(m.profiles):
        table.count(k)
        for key in ("min", "opt", "max"):
            shapes = [tuple(getattr(prof[s.name], key)) for s in m.inputs]
            if sum(math.prod(s) for s in shapes) > 1 << 16:
                continue
            try:
                table.select(k, shapes)
            except DynashapeError:
                pass  # a gap: refused in one line
            arrays = [np.zeros(s, np.float32) for s in shapes]
            _padded, crop = aligner.pad(k, arrays)
            if crop is not None and all(len(o.shape) <= 8 for o in m.outputs):
                crop([np.zeros((4,) * len(o.shape), np.float32) for o in m.outputs])
            if ladder is not None:
                ladder.target(shapes)
    details = {k: v for k, v in m.to_json([]).items() if k not in ("inputs", "outputs")}
    str(Inspection("crafted", "engine", m.inputs, m.outputs, details))


@fuzz_settings(150)
@given(data=st.data())
def test_any_one_change_is_refused_or_served(inductor_parts: tuple[Doc, dict[str, bytes]], data: st.DataObject) -> None:
    doc, raw = copy.deepcopy(inductor_parts[0]), inductor_parts[1]
    doc.pop("payloads", None)
    path = data.draw(st.sampled_from(_paths(doc)))
    node: Any = doc
    for k in path[:-1]:
        node = node[k]
    if data.draw(st.booleans()) and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = data.draw(_JSON)
    doc = json.loads(json.dumps(doc))  # what a file can hold
    try:
        _check(doc, raw)
    except EngineFileError as e:
        assert "\n" not in str(e) and " | " in str(e)
        return
    _use_records(doc)
