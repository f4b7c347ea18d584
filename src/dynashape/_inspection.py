"""``dynashape.inspect``: what an ONNX model or an engine file holds."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ._engine.file import MAGIC, read_engine
from ._errors import DynashapeError
from ._records import ProfilePart
from ._specs import TensorSpec


@dataclass(frozen=True)
class Inspection:
    """A model's or an engine's description; ``str()`` is the human view, ``to_json()`` the machine one."""

    path: str
    kind: str  # "onnx" | "engine"
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "inputs": [s.to_json() for s in self.inputs],
                "outputs": [s.to_json() for s in self.outputs], **self.details}

    def __str__(self) -> str:
        d = self.details
        lines = [f"{self.path}: {'ONNX model' if self.kind == 'onnx' else 'dynashape engine'}"]
        if self.kind == "onnx":
            lines.append(f"  opsets: {', '.join(f'{k} {v}' for k, v in d['opsets'].items())}; ir_version {d['ir_version']}; producer {d['producer']}")
        else:
            lines.append(f"  backend {d['backend']}, device {d['device']}, precision {d['precision']}, "
                         f"format v{d['format_version']}, built by dynashape {d['dynashape_version']} on {d['created']}"
                         + (f" in {d['build_seconds']:.1f} s" if d.get("build_seconds") is not None else ""))
        lines.append("  inputs:")
        lines += [f"    {s.name}: {s.dtype} {s.shape_text()}" for s in self.inputs]
        lines.append("  outputs:")
        lines += [f"    {s.name}: {s.dtype} {s.shape_text()}" for s in self.outputs]
        if self.kind == "onnx":
            ops = ", ".join(f"{k} x{v}" for k, v in d["op_counts"].items())
            lines.append(f"  ops ({sum(d['op_counts'].values())} nodes): {ops}")
            lines.append(f"  initializers: {d['initializers']} ({d['parameters']:,} values)")
        else:
            for k, p in enumerate(d["profiles"]):
                lines.append(f"  profile {k}:")
                lines += [f"    {n}: min {'x'.join(map(str, r['min']))}, opt {'x'.join(map(str, r['opt']))}, max {'x'.join(map(str, r['max']))}" for n, r in p.items()]
                lines += _split_text(k, (d.get("backend_data") or {}).get("split") or [])
                lines += _parts_text(k, d.get("parts") or [])
                lines += _alignment_text(k, (d.get("backend_data") or {}).get("alignment") or [])
            s = d["build_settings"]
            extra = ", ".join(f"{k}={v}" for k, v in s.items() if v not in (None, [], ()))
            lines.append(f"  build settings: {extra}")
            bd = d.get("backend_data") or {}
            if bd.get("inductor_defaults"):
                lines.append("  inductor defaults (for the profiles with a free H/W; inductor_config overrides): "
                             + ", ".join(f"{k}={v}" for k, v in bd["inductor_defaults"]))
            rewrites = []
            if bd.get("channel_dots"):
                rewrites.append(f"{len(bd['channel_dots'])} one-channel 1x1 convolution(s) as channel dot products")
            if bd.get("unit_resizes"):
                rewrites.append(f"{bd['unit_resizes']} resize(s) of a 1x1 map as a broadcast")
            if rewrites:
                lines.append("  graph rewrites (profiles with a free dim): " + "; ".join(rewrites))
            if bd.get("profile_build_seconds"):
                lines.append("  build time per profile (s): " + ", ".join(str(x) for x in bd["profile_build_seconds"])
                             + (f" (export and compile; {bd['compile_jobs']} packages compiled at a time, so they overlap)"
                                if bd.get("compile_jobs") else ""))
            lines.append("  payloads: " + ", ".join(f"{p['name']} ({p['size']:,} bytes)" for p in d["payloads"]))
            lines.append("  built with: " + ", ".join(f"{k} {v}" for k, v in d["library_versions"].items() if v))
            if d.get("plan"):
                from ._plan.record import Plan
                from ._plan.report import summary_lines

                lines += summary_lines(Plan.from_json(d["plan"], where="the engine's plan"))
        return "\n".join(lines)


def _parts_text(profile: int, parts: list[dict[str, Any]]) -> list[str]:
    """A guard-split profile's parts (one package each) and gaps (refused values), with their guards."""
    records = [ProfilePart.from_json(p) for p in parts]
    records = [p for p in records if p.profile == profile]
    if not records:
        return []
    lines = [f"    built as {sum(p.payload is not None for p in records)} parts (split by range, by the model's guards or by alignment):"]
    for j, p in enumerate(r for r in records if r.payload is not None):
        lines.append(f"      part {j} ({p.payload}): {p.describe()}")
        lines.append(f"        guards: {'; '.join(p.guards) or 'none'}")
        lines += [f"        made by {s}" for s in p.sources]
    for p in records:
        if p.payload is None:
            lines.append(f"      refused: {p.describe()}, failing {'; '.join(p.guards)}")
            lines += [f"        made by {s}" for s in p.sources]
    return lines


def _split_text(profile: int, records: list[Any]) -> list[str]:
    """A profile built as sub-ranges, each compiled for its own opt (``build(split=...)``)."""
    if profile >= len(records) or not records[profile]:
        return []
    subs = ["; ".join(f"{s['name']} {s['lo']}..{s['hi']} (opt {s['opt']})" for s in pieces) for pieces in records[profile]]
    return [f"    split into {len(subs)} sub-ranges, each compiled for its own opt: " + " | ".join(subs)]


def _alignment_text(profile: int, records: list[Any]) -> list[str]:
    """A profile's aligned dims: the step, the aligned part's range, and the padding verdict."""
    if profile >= len(records) or not records[profile]:
        return []
    from ._backend.alignment import part_lines

    return part_lines(records[profile])


def inspect(path: str | os.PathLike[str], *, verify_key: Any = None, require_signature: bool | None = None) -> Inspection:
    """Describe an ONNX file or an engine file (told apart by content, not by extension).

    An engine file is checked as :func:`dynashape.load` checks it (``verify_key``, ``require_signature``),
    and nothing in it is run.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise DynashapeError(f"'{path}' is a folder", "an ONNX file or an engine file", "name the file inside it")
    if not os.path.isfile(path):
        raise DynashapeError(f"'{path}' does not exist", "an ONNX file or an engine file", "check the path")
    with open(path, "rb") as f:
        head = f.read(len(MAGIC))
    if head == MAGIC:
        manifest, payloads = read_engine(path, verify_key=verify_key, require_signature=require_signature)  # checks the checksums too
        raw = manifest.to_json([{"name": n, "size": len(b)} for n, b in payloads.items()])
        details = {k: v for k, v in raw.items() if k not in ("inputs", "outputs")}
        return Inspection(path, "engine", manifest.inputs, manifest.outputs, details)
    from .onnx.model import io_specs, load_model, op_counts, opsets

    model = load_model(path)
    inputs, outputs = io_specs(model)
    params = sum(int(_numel(i.dims)) for i in model.graph.initializer)
    details = {"opsets": opsets(model), "ir_version": model.ir_version, "producer": f"{model.producer_name} {model.producer_version}".strip(),
               "op_counts": op_counts(model), "initializers": len(model.graph.initializer), "parameters": params}
    return Inspection(path, "onnx", inputs, outputs, details)


def _numel(dims: Any) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n
