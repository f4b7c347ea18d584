"""The backend interface: every backend has the same two verbs, build an engine and run an engine.

A backend receives *validated* profiles and *checked* inputs; it never re-implements the checks
(those live in :mod:`dynashape._builder` and :class:`dynashape._engine.Engine`). This is what lets a
TensorRT backend (one serialized engine holding all profiles, ``set_input_shape`` +
``execute_async_v3``) sit beside ONNX Runtime and AOTInductor (one package per profile, or per part of a
guard-split profile) with no change to the runtime.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar

from .._profiles import Profile
from .._records import BuildSettings, Built, Manifest, Source


class Runner(abc.ABC):
    """A loaded engine. ``run`` receives inputs in the engine's input order, already checked."""

    #: "numpy" or "torch": the array type ``run`` takes and returns; the engine converts.
    native: ClassVar[str] = "numpy"
    #: True where the runner's kernels read torch's process-wide TF32 switches at run time
    #: (AOTInductor's cuBLAS/cuDNN calls): the engine's runtime then applies the engine's TF32
    #: policy at load and at CUDA graph capture (dynashape._engine.torch_runtime).
    uses_torch_tf32: ClassVar[bool] = False

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
    #: engine is then validated in a child process (see dynashape._builder.validate).
    compiles_native_code: ClassVar[bool] = False

    @abc.abstractmethod
    def build(self, source: Source, profiles: Sequence[Profile], settings: BuildSettings) -> Built:
        """Build one engine holding every profile."""

    @abc.abstractmethod
    def load(self, manifest: Manifest, payloads: dict[str, bytes]) -> Runner:
        """Load the payloads that :meth:`build` returned (the manifest says how they were built)."""

    @classmethod
    def payload_names(cls, profiles: int, backend_data: dict[str, Any]) -> tuple[set[str], set[str]] | None:
        """(required, allowed) payload names of an engine with ``profiles`` profiles, for the manifest
        check that runs before :meth:`load`; None: not checked."""
        return None

    @classmethod
    def part_payloads(cls, profile: int, count: int) -> list[str] | None:
        """The payload names of a guard-split profile's first ``count`` parts, in the order the runner
        loads them (the manifest's ``parts`` must name them so); None: the backend does not split
        profiles, and its engines have no parts."""
        return None

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
