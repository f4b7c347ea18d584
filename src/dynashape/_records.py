"""The records that travel between the pipeline's steps, typed, with no heavy import.

:class:`BuildSettings` (how to build), :class:`Source` (what to build from), :class:`Built` (what a
backend's build returns) and :class:`Manifest` (what an engine file says about its engine). They
live here, apart from the builder, the backends and the file format, so that each of those depends
on this module and none on another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._plan.record import Plan
from ._profiles import Profile
from ._specs import TensorSpec

FORMAT_VERSION = 2  # the engine file's layout: see dynashape._engine.file


@dataclass(frozen=True)
class BuildSettings:
    """How to build. None means the backend's default.

    Attributes:
        device: ``"cpu"`` or ``"cuda"`` (``"cuda:N"`` picks a card).
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``: the precision of the computation; inputs and
            outputs keep the model's dtypes.
        append_ops: ``(output name, op)`` pairs, e.g. ``("output_1", "Sigmoid")``, applied at build time.
        optimization_level: ONNX Runtime graph optimizations: ``"all"`` (default), ``"extended"``,
            ``"basic"``, ``"disable"``.
        tuning: inductor: ``"default"`` (fast build), ``"max-autotune"`` (GEMM/convolution choices
            benchmarked), ``"coordinate-descent"`` (Triton tiling tuned) or ``"max-autotune-cd"``
            (both); each tunes at every profile's opt shape.
        threads: CPU threads per inference (None: the backend's default, all cores).
        validate: run the new engine at every profile's min, opt and max and compare with the source.
        tf32: allow TF32 for fp32 matmuls and convolutions on CUDA. Default False: an fp32 engine
            computes in fp32, as eager PyTorch does by default (TensorRT's default is the opposite;
            trtexec users pass --noTF32 to get this). Recorded in the engine; applied at load.
        channels_last: run 4-d convolutional models in channels-last layout. None (default): on
            for CUDA models with Conv2d layers (or 2-D Conv nodes, imported from ONNX), off on the CPU.
            NOTE: Inductor picks channels-last for convolutions by itself, but only when every
            shape is static (``decide_layout_opt`` in torch/_inductor/graph.py turns it off for
            symbolic shapes, pytorch issue 102670); with dynamic dims it keeps the model's layout.
            On an H100 (fp16, CUDA graphs, BENCHMARKS.md), dynamic engines in the contiguous layout
            ran ResNet-50 at batch 64 in 4.38 ms against 2.98 ms in channels-last, and the
            segmentation net at 1600x1600 in 1.76 ms against 0.79 ms; static engines ran the same
            in both layouts.
        share_weights: keep one copy of the weights for all profiles, in the file and in memory.
        align: inductor: ``(dim name, step)`` pairs. Each profile where the dim is free gets an
            aligned part for the multiples of the step (see ``dynashape._backend.alignment``).
        align_pad: with ``align``: pad other values up to the next multiple and crop the outputs,
            where the build finds the model padding-safe along the dim (else they run in a
            general part).
        attention: inductor: ``"sdpa"`` exports ``nn.MultiheadAttention`` self-attention as one
            batch-first SDPA call (see ``dynashape._backend.attention``), and refuses the build
            where that changes a module's output; ``"auto"`` (what ``build`` passes for inductor by
            default) does the same but keeps a module that the check refuses; None keeps the modules.
        inductor_config: inductor: ``(key, value)`` pairs of ``torch._inductor.config`` applied to
            every package's compile (``force_layout_optimization``, ``max_autotune``, ...), as
            ``torch.compile(options=...)`` takes them; recorded in the engine.
        split: inductor: ``(dim name or "*", how)`` pairs: each profile's range of the dim is compiled as
            sub-ranges, each tuned at its own opt (``how``: ``"auto"``, a count, or cut points; see
            ``dynashape._backend.range_split``). Recorded in the engine.
        jobs: inductor: how many packages to compile at once, in child processes (see
            ``dynashape._backend.aoti_jobs``). None or 1: one after the other, in this process;
            ``"auto"``: one per 4 CPU cores, at most 8, and 1 for models over 1 GiB of weights. Not
            recorded in the engine: it changes the build's time, not the engine.
    """

    device: str = "cpu"
    precision: str = "fp32"
    append_ops: tuple[tuple[str, str], ...] = ()
    optimization_level: str | None = None
    tuning: str | None = None
    threads: int | None = None
    validate: bool = True
    tf32: bool = False
    channels_last: bool | None = None
    share_weights: bool = True
    align: tuple[tuple[str, int], ...] = ()
    align_pad: bool = False
    attention: str | None = None
    inductor_config: tuple[tuple[str, bool | int | float | str], ...] = ()
    split: tuple[tuple[str, Any], ...] = ()
    jobs: int | str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device, "precision": self.precision, "append_ops": [list(p) for p in self.append_ops],
            "optimization_level": self.optimization_level, "tuning": self.tuning, "threads": self.threads,
            "validate": self.validate, "tf32": self.tf32, "channels_last": self.channels_last,
            "share_weights": self.share_weights, "align": [list(p) for p in self.align], "align_pad": self.align_pad,
            "attention": self.attention, "inductor_config": [list(p) for p in self.inductor_config],
            "split": [[n, [list(x) if isinstance(x, tuple) else x for x in h] if isinstance(h, tuple) else h] for n, h in self.split],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BuildSettings:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["append_ops"] = tuple(tuple(p) for p in known.get("append_ops", ()))
        known["align"] = tuple((str(n), int(v)) for n, v in known.get("align", ()))
        known["inductor_config"] = tuple((str(k), v) for k, v in known.get("inductor_config", ()))
        known["split"] = tuple((str(n), tuple(tuple(x) if isinstance(x, list) else x for x in h) if isinstance(h, list) else h)
                               for n, h in known.get("split", ()))
        return cls(**known)


@dataclass
class Source:
    """What an engine is built from: an ONNX model, or a torch module with example inputs.

    ``inputs`` carry the symbolic dim names that profiles are validated against.
    """

    kind: str  # "onnx" | "module"
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    onnx_model: Any = None  # onnx.ModelProto
    module: Any = None  # torch.nn.Module wrapped in an IOAdapter: forward(*inputs) -> tuple
    example_inputs: list[Any] = field(default_factory=list)
    description: str = ""


@dataclass(frozen=True)
class DimClass:
    """The values of one dynamic dim that a profile part serves: ``lo <= v <= hi`` and ``v % modulus in residues``.

    ``name`` is the dim's symbol (``image_height``), shared by every input that has it; ``places``
    lists each (input name, axis) where it appears.
    """

    name: str
    places: tuple[tuple[str, int], ...]
    lo: int
    hi: int
    modulus: int = 1
    residues: tuple[int, ...] = (0,)

    def contains(self, v: int) -> bool:
        return self.lo <= v <= self.hi and v % self.modulus in self.residues

    def describe(self) -> str:
        text = f"{self.name} in {self.lo}..{self.hi}"
        if self.modulus > 1:
            res = ", ".join(map(str, self.residues))
            text += f" with {self.name} % {self.modulus} in {{{res}}}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "places": [list(p) for p in self.places], "lo": self.lo, "hi": self.hi,
                "modulus": self.modulus, "residues": list(self.residues)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DimClass:
        return cls(str(d["name"]), tuple((str(n), int(a)) for n, a in d["places"]), int(d["lo"]), int(d["hi"]),
                   int(d["modulus"]), tuple(int(r) for r in d["residues"]))


@dataclass(frozen=True)
class ProfilePart:
    """One package of a guard-split profile, or a gap that no package serves.

    A profile whose model puts guards on its dims (parity, divisibility, comparisons) is built as
    several parts; the user still sees one profile and the runtime picks the part from the input
    shapes. ``dims`` holds a :class:`DimClass` for every dim the part restricts (dims not listed take
    the profile's whole range). ``guards`` are torch's guards that hold in the part, in the dims'
    names; ``sources`` the model code lines that made them. ``payload`` is None for a gap: shapes
    there are refused with ``guards`` (the guards they fail) as the reason.
    """

    profile: int
    dims: tuple[DimClass, ...]
    guards: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    payload: str | None = None

    def contains(self, shapes: dict[str, tuple[int, ...]]) -> bool:
        return all(c.contains(shapes[n][a]) for c in self.dims for n, a in c.places[:1])

    def describe(self) -> str:
        return ", ".join(c.describe() for c in self.dims) or "the whole profile"

    def to_json(self) -> dict[str, Any]:
        return {"profile": self.profile, "dims": [c.to_json() for c in self.dims], "guards": list(self.guards),
                "sources": list(self.sources), "payload": self.payload}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ProfilePart:
        return cls(int(d["profile"]), tuple(DimClass.from_json(c) for c in d["dims"]), tuple(map(str, d.get("guards", ()))),
                   tuple(map(str, d.get("sources", ()))), None if d.get("payload") is None else str(d["payload"]))


@dataclass
class Built:
    """What a backend's build returns: payloads to store, and what the engine's I/O looks like.

    ``parts``: the parts and gaps of guard-split profiles (empty when every profile is one package).
    """

    payloads: dict[str, bytes]
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    backend_data: dict[str, Any] = field(default_factory=dict)
    parts: list[ProfilePart] = field(default_factory=list)



@dataclass
class Manifest:
    backend: str
    device: str
    precision: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    profiles: list[Profile]
    build_settings: BuildSettings
    library_versions: dict[str, str | None] = field(default_factory=dict)
    backend_data: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    dynashape_version: str = ""
    created: str = ""
    build_seconds: float | None = None
    #: the plan the engine was built from, with the build's padding verdict (see dynashape._plan)
    plan: Plan | None = None
    #: parts and gaps of guard-split profiles (see :class:`ProfilePart`); empty when none is split
    parts: list[ProfilePart] = field(default_factory=list)
    #: what the build learned about each input's data (role, the size of the table an id indexes;
    #: see ``dynashape._data.InputHint``), so that generated data for a *saved* engine (bench, run
    #: without data, the plan's timing) stays valid for the model: ids below the vocabulary size
    input_hints: dict[str, Any] = field(default_factory=dict)

    def to_json(self, payloads: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format_version": self.format_version,
            "dynashape_version": self.dynashape_version,
            "created": self.created,
            "backend": self.backend,
            "device": self.device,
            "precision": self.precision,
            "inputs": [s.to_json() for s in self.inputs],
            "outputs": [s.to_json() for s in self.outputs],
            "profiles": [p.to_json() for p in self.profiles],
            "build_settings": self.build_settings.to_json(),
            "build_seconds": self.build_seconds,
            "library_versions": self.library_versions,
            "backend_data": self.backend_data,
            "plan": None if self.plan is None else self.plan.to_json(),
            "payloads": payloads,
        }
        if self.parts:
            out["parts"] = [p.to_json() for p in self.parts]
        if self.input_hints:
            out["input_hints"] = {n: {"role": h.role, "vocab": h.vocab, "why": h.why} for n, h in self.input_hints.items()}
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Manifest:
        return cls(
            backend=d["backend"], device=d["device"], precision=d["precision"],
            inputs=[TensorSpec.from_json(s) for s in d["inputs"]],
            outputs=[TensorSpec.from_json(s) for s in d["outputs"]],
            profiles=[Profile.from_json(p) for p in d["profiles"]],
            build_settings=BuildSettings.from_json(d.get("build_settings", {})),
            library_versions=d.get("library_versions", {}), backend_data=d.get("backend_data", {}),
            format_version=d["format_version"], dynashape_version=d.get("dynashape_version", ""),
            created=d.get("created", ""), build_seconds=d.get("build_seconds"),
            plan=None if d.get("plan") is None else Plan.from_json(d["plan"], where="the engine's plan"),
            parts=[ProfilePart.from_json(p) for p in d.get("parts", ())],
            input_hints=_hints_from_json(d.get("input_hints") or {}),
        )


def _hints_from_json(d: dict[str, Any]) -> dict[str, Any]:
    from ._data import InputHint

    return {str(n): InputHint(str(h["role"]), None if h.get("vocab") is None else int(h["vocab"]), str(h.get("why", "")))
            for n, h in d.items()}
