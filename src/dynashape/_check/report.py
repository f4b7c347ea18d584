"""What the doctor found: typed findings, a report with a human view and a JSON view."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Finding:
    """One place where a dim that the model's inputs declare dynamic becomes fixed.

    Attributes:
        node: the ONNX node's name (or its first output when the node has no name).
        op: the node's op type.
        input: the model input whose dim got pinned.
        dim: the axis of that input.
        symbol: the dim's symbolic name (``batch``, ``seq``, ``s0``).
        value: the number the graph carries instead of the dim (``None`` when unknown).
        message: what happens, in terms of the graph and the PyTorch code.
        fix: what to change in the PyTorch code.
        source: ``file:line`` (dynamo exporter) or the module path (TorchScript exporter), if recorded.
        evidence: how it was found: ``"empirical"``, ``"symbolic"`` or both joined by ``+``.
    """

    node: str
    op: str
    input: str
    dim: int
    symbol: str
    value: int | None
    message: str
    fix: str
    source: str | None = None
    evidence: str = "empirical"

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class Report:
    """The result of :func:`dynashape._check.check`; empty ``findings`` means the model is clean."""

    model: str
    findings: list[Finding] = field(default_factory=list)
    export_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:  # NOTE: truthy means "something to fix", like a non-zero exit status
        return bool(self.findings)

    def to_json(self) -> dict[str, object]:
        return {
            "findings": [f.to_json() for f in self.findings],
            "export_shapes": {k: list(v) for k, v in self.export_shapes.items()},
            "notes": list(self.notes),
        }

    def to_json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2)

    def __str__(self) -> str:
        shapes = ", ".join(f"{n}:{'x'.join(map(str, s))}" for n, s in self.export_shapes.items())
        if not self.findings:
            lines = [f"{self.model}: no dynamic dim is pinned inside the graph (checked from {shapes or 'the declared shapes'})"]
        else:
            n = len(self.findings)
            lines = [f"{self.model}: {n} place{'s' if n > 1 else ''} where a dynamic dim becomes fixed (export shapes {shapes}):"]
            for i, f in enumerate(self.findings, 1):
                where = f" at {f.source}" if f.source else ""
                lines.append(f"  {i}. {f.op} node '{f.node}'{where}: input '{f.input}' dim {f.dim} ({f.symbol}) pinned to {f.value}")
                lines.append(f"     {f.message}")
                lines.append(f"     fix: {f.fix}")
        lines += [f"  note: {t}" for t in self.notes]
        return "\n".join(lines)


@dataclass
class FixResult:
    """The result of :func:`dynashape._check.fix`."""

    output_path: str | None  # None when nothing was written
    fixed: list[Finding] = field(default_factory=list)
    unfixed: list[tuple[Finding, str]] = field(default_factory=list)  # (finding, why it was not fixed)
    verified_shapes: list[dict[str, tuple[int, ...]]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = []
        if self.output_path:
            shapes = "; ".join(", ".join(f"{n}:{'x'.join(map(str, s))}" for n, s in d.items()) for d in self.verified_shapes)
            lines.append(f"wrote {self.output_path}: fixed {len(self.fixed)} finding(s), verified with ONNX Runtime at {shapes}")
        else:
            lines.append("wrote nothing: no finding could be fixed safely")
        for f in self.fixed:
            lines.append(f"  fixed: {f.op} node '{f.node}' ({f.symbol} pinned to {f.value})")
        for f, why in self.unfixed:
            lines.append(f"  not fixed: {f.op} node '{f.node}' ({f.symbol} pinned to {f.value}): {why}")
        return "\n".join(lines)
