"""ONNX Runtime (CPU) backend.

Build: run ONNX Runtime's graph optimizations once and store the optimized model, so loading does
not redo them. Run: one ``InferenceSession``; ``session.run`` is thread-safe. ONNX Runtime accepts
any shape, so the profiles are enforced by dynashape's runtime before each call, as TensorRT would.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from typing import Any, ClassVar

from .._deps import require
from .._errors import BackendError, EngineFileError
from .._limits import HARD_MAX_THREADS, check_threads, is_integer, max_threads
from .._profiles import Profile
from .._records import BuildSettings, Built, Manifest, Source
from .base import Backend, Runner

log = logging.getLogger("dynashape")

_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


def _session_options(ort: Any, level: str, threads: int | None) -> Any:
    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[level])
    if threads:
        so.intra_op_num_threads = threads
    return so


def _load_threads(manifest: Manifest) -> int | None:
    """The manifest's thread count, bounded: refused when absurd, lowered to this machine's bound.

    NOTE: the count comes from a file, and ONNX Runtime crashes on huge counts (see
    :mod:`dynashape._limits`); an engine built with --threads 64 on a bigger host still loads here,
    with at most 4 threads per local core.
    """
    threads = manifest.build_settings.threads
    if threads is None:
        return None
    if not is_integer(threads) or not 1 <= threads <= HARD_MAX_THREADS:
        raise EngineFileError(
            f"the engine's manifest sets threads={threads!r}",
            f"null or an integer from 1 to {HARD_MAX_THREADS}",
            "rebuild the engine (the file was edited or is corrupt)",
        )
    top = max_threads()
    if threads > top:
        log.warning("the engine asks for %d threads; using %d (4 per core on this machine)", threads, top)
        return top
    return int(threads)


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    requires = ("onnxruntime", "pip install 'dynashape[onnxruntime]'")
    sources: ClassVar[tuple[str, ...]] = ("onnx",)

    def build(self, source: Source, profiles: Sequence[Profile], settings: BuildSettings) -> Built:
        ort = require("onnxruntime", "the onnxruntime backend")
        level = settings.optimization_level or "all"
        if level not in _LEVELS:
            raise BackendError(f"optimization level '{level}'", "one of: " + ", ".join(_LEVELS))
        # NOTE: ORT writes the optimized graph to a file as a side effect of creating a session; with
        # "all", the graph holds layout transforms for this CPU, which is what an engine is (TensorRT
        # plans are device-specific too). The ORT version is recorded and checked at load.
        with tempfile.TemporaryDirectory(prefix="dynashape-ort-") as tmp:
            path = os.path.join(tmp, "optimized.onnx")
            so = _session_options(ort, level, check_threads(settings.threads))
            so.optimized_model_filepath = path
            so.log_severity_level = 3  # the NCHWc warning restates the NOTE above on every build
            try:
                ort.InferenceSession(source.onnx_model.SerializeToString(), so, providers=["CPUExecutionProvider"])
            except Exception as e:
                raise BackendError(
                    f"ONNX Runtime cannot load the model: {str(e).strip().splitlines()[0][:800]}",
                    "a model that ONNX Runtime's CPU provider supports",
                    "check the opset and ops with `dynashape inspect`, or try --backend inductor",
                ) from e
            with open(path, "rb") as f:
                payload = f.read()
            if os.path.exists(path + ".data"):
                raise BackendError("the optimized model needs external data (over 2 GB)", "a model under 2 GB", "use --backend inductor")
        return Built({"model.onnx": payload}, source.inputs, source.outputs, {"optimization_level": level})

    @classmethod
    def payload_names(cls, profiles: int, backend_data: dict[str, Any]) -> tuple[set[str], set[str]]:
        return {"model.onnx"}, {"model.onnx"}

    def load(self, manifest: Manifest, payloads: dict[str, bytes]) -> Runner:
        ort = require("onnxruntime", "the onnxruntime backend")
        so = _session_options(ort, "disable", _load_threads(manifest))  # already optimized at build time
        try:
            sess = ort.InferenceSession(payloads["model.onnx"], so, providers=["CPUExecutionProvider"])
        except Exception as e:
            built = manifest.library_versions.get("onnxruntime")
            raise BackendError(
                f"ONNX Runtime {ort.__version__} cannot load this engine (built with onnxruntime {built}): {str(e).splitlines()[0][:500]}",
                "an engine built by the same ONNX Runtime version on the same kind of CPU",
                "rebuild the engine on this machine",
            ) from e
        return OnnxRuntimeRunner(sess, [i.name for i in manifest.inputs], [o.name for o in manifest.outputs])


class OnnxRuntimeRunner(Runner):
    native = "numpy"

    def __init__(self, session: Any, input_names: list[str], output_names: list[str]) -> None:
        self.session = session
        self.input_names = input_names
        self.output_names = output_names

    def run(self, profile: int, inputs: Sequence[Any]) -> list[Any]:
        return self.session.run(self.output_names, dict(zip(self.input_names, inputs, strict=True)))

