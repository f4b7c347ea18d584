"""Execution under :class:`~dynashape._engine.engine.Engine`: device I/O, streams, CUDA graphs, TF32.

``Engine.run`` checks the inputs and picks the profile; a runtime from :func:`make_runtime` then
converts the inputs to what the backend's runner takes, runs it (on a stream, through a CUDA graph
where one is held), and hands the outputs back in the caller's array type (or into ``out=``).

- :class:`HostRuntime`: numpy-native runners (ONNX Runtime). numpy in and out, torch CPU tensors
  viewed as numpy and back; no streams, no graphs.
- :class:`TorchRuntime`: torch-native runners (AOTInductor, TensorRT), on the CPU or one CUDA
  device. Host data reaches a CUDA engine through pinned memory; CUDA outputs go back to the host
  when the inputs came from it; the CUDA graph cache (:mod:`.cudagraphs`) serves repeated shapes.

The TF32 policy (:func:`apply_tf32_policy`, :func:`tf32_for_capture`)
---------------------------------------------------------------------
AOTInductor hands matmuls and convolutions to cuBLAS and cuDNN, which read PyTorch's TF32 switches
(``torch.backends.cuda.matmul.allow_tf32``, ``torch.backends.cudnn.allow_tf32``) at every call.
The switches are process-wide: there is no per-thread or per-call setting, so flipping them around
each call (as the runner once did) changes the math of every other thread's calls while it runs.

NOTE: the policy is therefore applied at two points only, never per call:

1. When an engine loads (or ``dynashape.build`` returns one), the engine's recorded setting
   (``BuildSettings.tf32``; the ``tf32=`` load option overrides it) is written to the switches
   that differ, once, with a logged warning that names each switch and the opt-out. Plain calls
   then compute as the build validated, and nothing flips afterwards.
2. At CUDA graph capture, under the process's TF32 lock: a graph keeps the kernels chosen while it
   was captured (TF32 tensor-core kernels or full fp32), so replays keep the engine's policy
   whatever the switches say later. The switches are set only if they differ from the policy
   (another engine or the application changed them since), for the capture's duration.

``tf32="process"`` opts out of both: dynashape never writes the switches and the engine computes as
the process's settings say (with CUDA graphs too). CPU engines, ONNX Runtime and TensorRT (whose
plan fixes its math at build) have no policy to apply.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .._backend.base import Runner
from .._deps import require
from .._errors import DynashapeError, ShapeError
from .._specs import format_shape

log = logging.getLogger("dynashape")

#: The switches the policy writes, by the names users know them by (the messages quote them).
TF32_SWITCHES = ("torch.backends.cuda.matmul.allow_tf32", "torch.backends.cudnn.allow_tf32")
STRICT_GRAPHS_ENV = "DYNASHAPE_STRICT_GRAPHS"

# Held while dynashape writes the TF32 switches, so two engines' captures never interleave their
# set-and-restore.
_TF32_LOCK = threading.RLock()
# One capture lock per backend runner: engines made by Engine.with_options share their runner, and a
# runner's capture containers (AOTInductor's single-threaded ones) take one capture at a time.
_CAPTURE_LOCKS: weakref.WeakKeyDictionary[Runner, threading.Lock] = weakref.WeakKeyDictionary()
_CAPTURE_LOCKS_GUARD = threading.Lock()

Call = Callable[[list[Any]], list[Any]]


def is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


# -- the TF32 policy ---------------------------------------------------------------------------------


def resolve_tf32(recorded: bool, option: bool | str | None) -> bool | None:
    """The TF32 setting an engine applies: True/False, or None to leave the process's switches alone.

    ``option`` is the ``tf32=`` load option: None (default) applies the engine's recorded setting,
    True/False override it, ``"process"`` opts out.

    >>> resolve_tf32(False, None), resolve_tf32(False, True), resolve_tf32(True, "process")
    (False, True, None)
    """
    if option is None:
        return bool(recorded)
    if isinstance(option, bool):
        return option
    if option == "process":
        return None
    raise DynashapeError(f"tf32={option!r}", "None (the engine's recorded setting), True, False, or 'process'",
                         "tf32='process' leaves torch's TF32 switches as the application set them")


def _switches(torch: Any) -> list[tuple[Any, Any]]:
    """(legacy API, new API) objects of the matmul and the cuDNN convolution switch."""
    return [(torch.backends.cuda.matmul, torch.backends.cuda.matmul), (torch.backends.cudnn, getattr(torch.backends.cudnn, "conv", None))]


def tf32_state(torch: Any) -> tuple[bool, bool]:
    """(matmul, cuDNN) TF32 switches as the process has them.

    NOTE: torch >= 2.9 also has ``fp32_precision`` settings; once a process has used both APIs for
    one switch, reading ``allow_tf32`` raises. The new API's value is read then.
    """
    out = []
    for legacy, new in _switches(torch):
        try:
            out.append(bool(legacy.allow_tf32))
        except RuntimeError:
            value = getattr(new, "fp32_precision", "ieee")
            if value == "none":  # inherits the process-wide fp32 precision
                value = getattr(torch.backends, "fp32_precision", "ieee")
            out.append(value == "tf32")
    return out[0], out[1]


def set_tf32(torch: Any, matmul: bool, cudnn: bool) -> None:
    """Write the two switches through the API the process reads them with (see :func:`tf32_state`)."""
    for (legacy, new), enabled in zip(_switches(torch), (matmul, cudnn), strict=True):
        try:
            legacy.allow_tf32  # noqa: B018 (raises when the process uses the new API)
        except RuntimeError:
            new.fp32_precision = "tf32" if enabled else "ieee"
        else:
            legacy.allow_tf32 = enabled


def tf32_changes(state: tuple[bool, bool], wanted: bool) -> list[str]:
    """The switches (by name) that differ from ``wanted``.

    >>> tf32_changes((False, True), False)
    ['torch.backends.cudnn.allow_tf32']
    """
    return [name for name, v in zip(TF32_SWITCHES, state, strict=True) if v != wanted]


def apply_tf32_policy(torch: Any, wanted: bool | None, what: str) -> list[str]:
    """Set the process's TF32 switches to ``wanted`` once (engine load); returns the switches changed.

    A change is logged as a warning naming the switch, the old value and the opt-out.
    """
    if wanted is None:
        return []
    with _TF32_LOCK:
        state = tf32_state(torch)
        changed = tf32_changes(state, wanted)
        if changed:
            set_tf32(torch, wanted, wanted)
    for name in changed:
        log.warning("%s %s TF32 in fp32 matmuls and convolutions: dynashape sets %s = %s for this process (it was %s), "
                    "which every CUDA call in the process sees; load with tf32='process' to keep the process's setting",
                    what, "allows" if wanted else "does not allow", name, wanted, not wanted)
    return changed


@contextlib.contextmanager
def tf32_for_capture(torch: Any, wanted: bool | None) -> Iterator[bool]:
    """The engine's TF32 policy for the duration of one CUDA graph capture (see the module's notes);
    yields whether it changed the switches."""
    if wanted is None:
        yield False
        return
    with _TF32_LOCK:
        state = tf32_state(torch)
        if not tf32_changes(state, wanted):
            yield False
            return
        set_tf32(torch, wanted, wanted)
        try:
            yield True
        finally:
            set_tf32(torch, *state)


def strict_graphs_default(option: bool | None) -> bool:
    """``strict_graphs`` as given, or ``$DYNASHAPE_STRICT_GRAPHS`` (``1``/``true``/``yes``) when None."""
    if option is not None:
        return bool(option)
    return os.environ.get(STRICT_GRAPHS_ENV, "").strip().lower() in ("1", "true", "yes")


def _capture_lock(runner: Runner) -> threading.Lock:
    with _CAPTURE_LOCKS_GUARD:
        lock = _CAPTURE_LOCKS.get(runner)
        if lock is None:
            lock = _CAPTURE_LOCKS[runner] = threading.Lock()
        return lock


# -- delivery ----------------------------------------------------------------------------------------


def dense(outs: list[Any]) -> list[Any]:
    """The outputs, each a contiguous tensor or array: the ones that are not are copied (one kernel each).

    NOTE (why): an engine's outputs are contiguous whatever its inside does, as TensorRT's and ONNX
    Runtime's are. Two things give strided ones: the crop of a padded, aligned package (a view), and
    Inductor itself. On an H200 (torch 2.11, 2026-12-01) the dynamic packages of channels-last builds wrote
    4-D outputs channels-last although the exported program's output carries contiguous strides: a net
    whose last op is a 4-channel convolution (strides ``(16384, 1, 256, 4)``,
    ``benchmarks/probe_output_layout_gpu.py``) and DeepLabV3-ResNet50's 21 classes, where the copy costs
    31.6 us a call at 512x512 and 47.9 us at 517x611 (``benchmarks/probe_output_copy_gpu.py``). A
    caller's ``.view``, a reshape of ``.numpy()`` or a raw-pointer hand-off would otherwise break or read
    the wrong order.
    """
    return [(o if o.is_contiguous() else o.contiguous()) if is_torch(o)
            else np.ascontiguousarray(o) if isinstance(o, np.ndarray) else o for o in outs]


def deliver(names: Sequence[str], outs: list[Any], out: Mapping[str, Any] | None) -> dict[str, Any]:
    """name -> output, or the outputs copied into ``out=`` (checked by the engine before the run)."""
    if out is None:
        return dict(zip(names, outs, strict=True))
    missing = [n for n in names if n not in out]
    if missing:
        raise DynashapeError(f"out= lacks output(s) {missing}", f"a tensor for every output: {list(names)}")
    for n, o in zip(names, outs, strict=True):
        dst = out[n]
        if tuple(dst.shape) != tuple(o.shape):
            raise ShapeError(f"out['{n}'] has shape {format_shape(dst.shape)}", f"{format_shape(o.shape)}, the output's shape for these inputs")
        if hasattr(dst, "copy_"):
            dst.copy_(o if is_torch(o) else require("torch", "out=").from_numpy(o))
        else:
            np.copyto(dst, o.detach().cpu().numpy() if is_torch(o) else o)
    return dict(out)


# -- runtimes ----------------------------------------------------------------------------------------


class HostRuntime:
    """numpy-native runners: inputs as contiguous numpy arrays, outputs back as the caller's type."""

    graphs = None
    tf32: bool | None = None

    def __init__(self, out_names: Sequence[str]) -> None:
        self.out_names = list(out_names)

    def to_native(self, arrays: list[Any]) -> list[Any]:
        return [np.ascontiguousarray(x.detach().numpy()) if is_torch(x) else np.ascontiguousarray(x) for x in arrays]

    def execute(self, k: int, arrays: list[Any], call: Call, *, torch_in: bool, stream: Any = None,
                out: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run profile ``k`` (``call`` runs the backend on native inputs) and deliver the outputs."""
        outs = call(self.to_native(arrays))
        if torch_in:
            torch = require("torch", "torch outputs")
            outs = [torch.from_numpy(o) for o in outs]
        return deliver(self.out_names, outs, out)

    def capture(self, k: int, native: list[Any]) -> bool:
        return False

    def stats(self) -> dict[str, Any]:
        return empty_stats()


def empty_stats() -> dict[str, Any]:
    return {"graphs": 0, "captures": 0, "replays": 0, "skipped": 0, "graph_bytes": 0, "pool_bytes": 0, "evictions": 0,
            "failures": {"capture": 0, "replay": 0, "mismatch": 0}, "strict": False}


class TorchRuntime:
    """torch-native runners on the CPU or one CUDA device (see the module's docstring)."""

    def __init__(self, runner: Runner, device: str, out_names: Sequence[str], *, cuda_graphs: bool | None = None,
                 graph_cache_size: int | None = None, graph_cache_mb: float | None = None, strict_graphs: bool | None = None,
                 tf32: bool | None = None, what: str = "this engine") -> None:
        self.torch = require("torch", "this engine")
        self.runner = runner
        self.device = device
        self.cuda = device.startswith("cuda")
        self.out_names = list(out_names)
        self.strict = strict_graphs_default(strict_graphs)
        # NOTE: only runners whose kernels read torch's switches at run time (AOTInductor) get a
        # policy; see the module's docstring for why it is applied at load and at capture only.
        self.tf32 = tf32 if self.cuda and getattr(runner, "uses_torch_tf32", False) else None
        self.tf32_changed = apply_tf32_policy(self.torch, self.tf32, what)
        self.graphs: Any = None
        if self.cuda and (cuda_graphs is None or cuda_graphs):
            from . import cudagraphs  # looked up at construction: tests replace CudaGraphRunner

            self.graphs = cudagraphs.CudaGraphRunner(
                runner, max_graphs=16 if graph_cache_size is None else graph_cache_size,
                max_bytes=None if graph_cache_mb is None else int(graph_cache_mb * 2**20),
                strict=self.strict, capture_context=self._capture_context,
            )

    @contextlib.contextmanager
    def _capture_context(self) -> Iterator[bool]:
        with _capture_lock(self.runner), tf32_for_capture(self.torch, self.tf32) as switched:
            yield switched

    def to_native(self, arrays: list[Any]) -> list[Any]:
        torch = self.torch
        if not self.cuda:
            return [x.contiguous() if is_torch(x) else torch.from_numpy(np.ascontiguousarray(x)) for x in arrays]
        # Host data goes through pinned memory so the copy to the GPU is asynchronous.
        native = []
        for x in arrays:
            t = x if is_torch(x) else torch.from_numpy(np.ascontiguousarray(x))
            if not t.is_cuda:
                t = t.pin_memory().to(self.device, non_blocking=True)
            native.append(t.contiguous())
        return native

    def execute(self, k: int, arrays: list[Any], call: Call, *, torch_in: bool, stream: Any = None,
                out: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run profile ``k`` (``call`` runs the backend on native inputs) and deliver the outputs."""
        if not self.cuda:
            outs = dense(call(self.to_native(arrays)))  # CPU engine: outputs are CPU tensors
            return deliver(self.out_names, outs if torch_in else [o.numpy() for o in outs], out)
        cuda_in = torch_in and any(getattr(x, "is_cuda", False) for x in arrays)
        ctx = self.torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext()
        with ctx:
            native = self.to_native(arrays)
            if self.graphs is None:
                outs = dense(call(native))
            else:
                with self.graphs.lock:
                    # A capture or replay that fails is logged, counted and (strict) raised by the
                    # graph runner; the plain call's own failure reaches the caller as it is.
                    outs, owned = self.graphs.run(k, native, plain=lambda: call(native))
                    if owned or out is not None:
                        # Copy out while holding the lock: the next replay reuses these buffers.
                        if out is not None:
                            return deliver(self.out_names, outs, out)
                        contiguous = self.torch.contiguous_format
                        outs = [o.clone(memory_format=contiguous) if cuda_in else o.contiguous().cpu() for o in outs]
                    else:
                        outs = dense(outs)
            if not cuda_in:
                outs = [o.cpu() for o in outs]
            return deliver(self.out_names, outs if torch_in else [o.numpy() for o in outs], out)

    def capture(self, k: int, native: list[Any]) -> bool:
        """Capture a graph for these inputs' shapes now (warm-up); False without graphs."""
        return bool(self.graphs.capture(k, native)) if self.graphs is not None else False

    def stats(self) -> dict[str, Any]:
        if self.graphs is None:
            return {**empty_stats(), "strict": self.strict}
        return self.graphs.stats()


def make_runtime(runner: Runner, device: str, out_names: Sequence[str], **options: Any) -> HostRuntime | TorchRuntime:
    """The runtime for ``runner``: torch-native runners get a :class:`TorchRuntime`."""
    if runner.native == "torch":
        return TorchRuntime(runner, device, out_names, **options)
    return HostRuntime(out_names)
