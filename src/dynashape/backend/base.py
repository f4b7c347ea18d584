"""The backend interface: every backend has the same two verbs, build an engine and run an engine.

A backend receives *validated* profiles and *checked* inputs; it never re-implements the checks
(those live in :mod:`dynashape.build` and :class:`dynashape.engine.Engine`). This is what lets a
TensorRT backend (one serialized engine holding all profiles, ``set_input_shape`` +
``execute_async_v3``) sit beside ONNX Runtime and AOTInductor (one package per profile) with no
change to the runtime.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..profiles import Profile
from ..specs import TensorSpec


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
        tuning: inductor: ``"default"`` (fast build) or ``"max-autotune"``.
        threads: CPU threads per inference (None: the backend's default, all cores).
        validate: run the new engine at every profile's min, opt and max and compare with the source.
        tf32: allow TF32 for fp32 matmuls and convolutions on CUDA. Default False: an fp32 engine
            computes in fp32, as eager PyTorch does by default (TensorRT's default is the opposite;
            trtexec users pass --noTF32 to get this). Recorded in the engine; applied at load.
        channels_last: run 4-d convolutional models in channels-last layout. None (default): on
            for CUDA models with Conv2d layers, off on the CPU.
            NOTE: Inductor picks channels-last for convolutions by itself, but only when every
            shape is static (``decide_layout_opt`` in torch/_inductor/graph.py turns it off for
            symbolic shapes, pytorch issue 102670); with dynamic dims it keeps the model's layout.
            On an H100 (fp16, CUDA graphs, BENCHMARKS.md), dynamic engines in the contiguous layout
            ran ResNet-50 at batch 64 in 4.38 ms against 2.98 ms in channels-last, and the
            segmentation net at 1600x1600 in 1.76 ms against 0.79 ms; static engines ran the same
            in both layouts.
        share_weights: keep one copy of the weights for all profiles, in the file and in memory.
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

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device, "precision": self.precision, "append_ops": [list(p) for p in self.append_ops],
            "optimization_level": self.optimization_level, "tuning": self.tuning, "threads": self.threads,
            "validate": self.validate, "tf32": self.tf32, "channels_last": self.channels_last,
            "share_weights": self.share_weights,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BuildSettings:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["append_ops"] = tuple(tuple(p) for p in known.get("append_ops", ()))
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


@dataclass
class Built:
    """What a backend's build returns: payloads to store, and what the engine's I/O looks like."""

    payloads: dict[str, bytes]
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    backend_data: dict[str, Any] = field(default_factory=dict)


class Runner(abc.ABC):
    """A loaded engine. ``run`` receives inputs in the engine's input order, already checked."""

    #: "numpy" or "torch": the array type ``run`` takes and returns; the engine converts.
    native: ClassVar[str] = "numpy"

    @abc.abstractmethod
    def run(self, profile: int, inputs: Sequence[Any]) -> list[Any]:
        """Run profile ``profile`` on ``inputs``; return outputs in the engine's output order."""


class Backend(abc.ABC):
    name: ClassVar[str]
    devices: ClassVar[tuple[str, ...]]
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    #: source kinds the backend builds from directly; build() converts the others when it can.
    sources: ClassVar[tuple[str, ...]]
    #: True where building compiles native code that could crash the process that loads it; the new
    #: engine is then validated in a child process (see dynashape.build.validate).
    compiles_native_code: ClassVar[bool] = False

    @abc.abstractmethod
    def build(self, source: Source, profiles: Sequence[Profile], settings: BuildSettings) -> Built:
        """Build one engine holding every profile."""

    @abc.abstractmethod
    def load(self, manifest: Any, payloads: dict[str, bytes]) -> Runner:
        """Load the payloads that :meth:`build` returned (the manifest says how they were built)."""

    #: (importable module, how to install it) that the backend needs.
    requires: ClassVar[tuple[str, str] | None] = None

    @classmethod
    def available(cls) -> str | None:
        """None when the backend can run here, else why not (what to install)."""
        if cls.requires is None:
            return None
        module, how = cls.requires
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed ({how})"
        return None
