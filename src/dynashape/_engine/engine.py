"""The runtime: :class:`Engine` checks inputs, picks the profile, and calls the backend's runner."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._backend import get_backend
from .._backend.base import Runner
from .._deps import require
from .._dtypes import name_of
from .._errors import BackendError, DynashapeError, EngineFileError, ShapeError
from .._profiles import Profile
from .._records import Manifest
from .._specs import TensorSpec, format_shape
from .file import read_engine, write_engine
from .selection import ProfileTable


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


class Engine:
    """A built engine: its inputs, outputs and profiles, and :meth:`run`.

    ``run`` is safe to call from several threads at once: it keeps no state between calls, and the
    backends' run calls are thread-safe (ONNX Runtime sessions, AOTInductor model containers).
    """

    def __init__(self, manifest: Manifest, runner: Runner, payloads: dict[str, bytes], *,
                 cuda_graphs: bool | None = None, graph_cache_size: int | None = None,
                 graph_cache_mb: float | None = None) -> None:
        self.manifest = manifest
        self._runner = runner
        self._payloads = payloads
        self._names = [s.name for s in manifest.inputs]
        self._out_names = [s.name for s in manifest.outputs]
        self._index = {n: i for i, n in enumerate(self._names)}
        self._table = ProfileTable(manifest.inputs, manifest.profiles)
        # Per input: (rank, [(axis, static value)], dtype)
        self._static = [
            (s.rank, [(a, d) for a, d in enumerate(s.shape) if isinstance(d, int)], s.dtype) for s in manifest.inputs
        ]
        by_sym: dict[str, list[tuple[int, int]]] = {}
        for i, s in enumerate(manifest.inputs):
            for a, d in enumerate(s.shape):
                if isinstance(d, str):
                    by_sym.setdefault(d, []).append((i, a))
        self._shared = [(sym, places) for sym, places in by_sym.items() if len(places) > 1]
        self._torch_native = runner.native == "torch"
        self._device = manifest.device
        self._cuda = manifest.device.startswith("cuda")
        self._graphs = None
        if self._cuda and self._torch_native and (cuda_graphs is None or cuda_graphs):
            from .cudagraphs import CudaGraphRunner

            self._graphs = CudaGraphRunner(
                runner, max_graphs=16 if graph_cache_size is None else graph_cache_size,
                max_bytes=None if graph_cache_mb is None else int(graph_cache_mb * 2**20),
            )

    # -- description -----------------------------------------------------------------------------

    @property
    def inputs(self) -> list[TensorSpec]:
        return list(self.manifest.inputs)

    @property
    def outputs(self) -> list[TensorSpec]:
        return list(self.manifest.outputs)

    @property
    def profiles(self) -> list[Profile]:
        return list(self.manifest.profiles)

    @property
    def backend(self) -> str:
        return self.manifest.backend

    @property
    def device(self) -> str:
        return self.manifest.device

    @property
    def precision(self) -> str:
        return self.manifest.precision

    def __repr__(self) -> str:
        return f"Engine(backend={self.backend!r}, device={self.device!r}, precision={self.precision!r}, profiles={len(self.profiles)})"

    # -- checks ----------------------------------------------------------------------------------

    def _shapes(self, shapes: Mapping[str, Sequence[int]]) -> list[tuple[int, ...]]:
        """Check names, ranks, static dims and shared dims; shapes in input order."""
        if len(shapes) != len(self._names) or any(n not in self._index for n in shapes):
            unknown = [n for n in shapes if n not in self._index]
            missing = [n for n in self._names if n not in shapes]
            what = (f"unknown input(s) {unknown}" if unknown else "") + ("; " if unknown and missing else "") + (f"missing input(s) {missing}" if missing else "")
            raise ShapeError(
                what,
                "the engine's inputs: " + ", ".join(f"{s.name} ({s.dtype}, {s.shape_text()})" for s in self.manifest.inputs),
                "pass every input by its name",
            )
        ordered = [tuple(int(d) for d in shapes[n]) for n in self._names]
        for i, (shape, (rank, static, _)) in enumerate(zip(ordered, self._static, strict=True)):
            spec = self.manifest.inputs[i]
            if len(shape) != rank:
                raise ShapeError(
                    f"input '{spec.name}' has shape {format_shape(shape)} (rank {len(shape)})",
                    f"rank {rank}: {spec.shape_text()}",
                    "reshape the input (a missing batch dim? use x[None])" if len(shape) + 1 == rank else None,
                )
            for a, d in static:
                if shape[a] != d:
                    raise ShapeError(
                        f"input '{spec.name}' dim {a} = {shape[a]} (shape {format_shape(shape)})",
                        f"{d}: the model fixes this dim ({spec.shape_text()})",
                        "resize the input, or re-export the model with this dim dynamic",
                    )
        for sym, places in self._shared:
            vals = {ordered[i][a] for i, a in places}
            if len(vals) > 1:
                detail = ", ".join(f"'{self._names[i]}' dim {a} = {ordered[i][a]}" for i, a in places)
                raise ShapeError(f"dim '{sym}' differs between inputs: {detail}", f"one value for '{sym}' in every input that has it")
        return ordered

    def select_profile(self, shapes: Mapping[str, Sequence[int]]) -> int:
        """The profile that :meth:`run` would use for these input shapes (see :mod:`.selection`)."""
        ordered = self._shapes(shapes)
        k = self._table.select(ordered)
        if k is None:
            raise self._table.outside_all(ordered)
        return k

    # -- running ---------------------------------------------------------------------------------

    def run(self, inputs: Mapping[str, Any], *, profile: int | None = None, stream: Any = None,
            out: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run on ``inputs`` (name -> numpy array or torch tensor); return name -> output.

        numpy in, numpy out; torch in, torch out, on the inputs' device (a CUDA engine takes CPU
        arrays too and copies them through pinned memory). ``profile=None`` chooses the profile
        closest to the shapes (see :mod:`dynashape._engine.selection`); ``profile=k`` forces one.
        ``stream``: a ``torch.cuda.Stream`` to run on (CUDA engines). ``out``: preallocated torch
        tensors to write the outputs into. Outputs returned without ``out`` are the caller's:
        no later call overwrites them.
        """
        if not isinstance(inputs, Mapping):
            raise DynashapeError(
                f"inputs of type {type(inputs).__name__}",
                "a dict of input name -> array, e.g. engine.run({'input_1': x}) or engine(input_1=x)",
            )
        shapes = {}
        for name, x in inputs.items():
            if not hasattr(x, "shape") or not hasattr(x, "dtype"):
                raise DynashapeError(f"input '{name}' is a {type(x).__name__}", "a numpy array or a torch tensor", "wrap it: np.asarray(x)")
            shapes[name] = x.shape
        ordered = self._shapes(shapes)  # checks names, so the lookup below cannot fail
        arrays = [inputs[n] for n in self._names]
        torch_in = False
        for i, x in enumerate(arrays):
            t = _is_torch(x)
            torch_in = torch_in or t
            dt = name_of(x.dtype)
            if dt != self._static[i][2]:
                raise DynashapeError(
                    f"input '{self._names[i]}' has dtype {dt}",
                    f"{self._static[i][2]}, the model's dtype for this input",
                    f"convert it: x.astype(np.{self._static[i][2]})" if not t else f"convert it: x.to(torch.{self._static[i][2]})",
                )
            if t and x.device.type == "cuda" and not self._cuda:
                raise DynashapeError(
                    f"input '{self._names[i]}' is on {x.device}", "a CPU tensor or numpy array for this CPU engine", "move it: x.cpu()"
                )
        if profile is None:
            k = self._table.select(ordered)
            if k is None:
                raise self._table.outside_all(ordered)
        else:
            if not isinstance(profile, int) or not 0 <= profile < len(self.manifest.profiles):
                raise DynashapeError(f"profile={profile!r}", f"an index from 0 to {len(self.manifest.profiles) - 1}, or None to choose")
            if not self._table.contains(profile, ordered):
                raise self._table.outside_one(profile, ordered)
            k = profile
        cuda_in = torch_in and any(getattr(x, "is_cuda", False) for x in arrays)
        if self._cuda:
            return self._run_cuda(k, arrays, ordered, torch_in, cuda_in, stream, out)
        outs = self._call(k, self._to_native(arrays), ordered)
        return self._deliver(self._from_native(outs, torch_in), out)

    def _call(self, k: int, native: list[Any], ordered: list[tuple[int, ...]]) -> list[Any]:
        try:
            return self._runner.run(k, native)
        except Exception as e:
            # NOTE: the inputs passed every check, so this is the model failing at a shape its
            # profile allows (a dim the graph pinned); say so instead of surfacing a backend trace.
            shape_text = ", ".join(f"{n}:{format_shape(s)}" for n, s in zip(self._names, ordered, strict=True))
            raise BackendError(
                f"the {self.backend} engine failed at {shape_text} (profile {k}): {' '.join(str(e).split())[:600]}",
                "a model that runs at every shape its profiles allow",
                "the model may pin a dim that the profile lets vary: run `dynashape check` on the ONNX file, "
                "or narrow the profile",
            ) from e

    def _run_cuda(self, k: int, arrays: list[Any], ordered: list[tuple[int, ...]], torch_in: bool, cuda_in: bool,
                  stream: Any, out: Mapping[str, Any] | None) -> dict[str, Any]:
        torch = require("torch", "CUDA engines")
        ctx = torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext()
        with ctx:
            native = self._to_native(arrays)
            if self._graphs is None:
                outs, owned = self._call(k, native, ordered), False
            else:
                with self._graphs.lock:
                    try:
                        outs, owned = self._graphs.run(k, native)
                    except DynashapeError:
                        raise
                    except Exception:
                        outs, owned = self._call(k, native, ordered), False
                    if owned or out is not None:
                        # Copy out while holding the lock: the next replay reuses these buffers.
                        if out is not None:
                            return self._deliver(outs, out)
                        outs = [o.clone() if cuda_in else o.cpu() for o in outs]
            if not cuda_in:
                outs = [o.cpu() for o in outs]
            return self._deliver(outs if torch_in else [o.numpy() for o in outs], out)

    def _deliver(self, outs: list[Any], out: Mapping[str, Any] | None) -> dict[str, Any]:
        if out is None:
            return dict(zip(self._out_names, outs, strict=True))
        missing = [n for n in self._out_names if n not in out]
        if missing:
            raise DynashapeError(f"out= lacks output(s) {missing}", f"a tensor for every output: {self._out_names}")
        for n, o in zip(self._out_names, outs, strict=True):
            dst = out[n]
            if tuple(dst.shape) != tuple(o.shape):
                raise ShapeError(f"out['{n}'] has shape {format_shape(dst.shape)}", f"{format_shape(o.shape)}, the output's shape for these inputs")
            if hasattr(dst, "copy_"):
                dst.copy_(o if _is_torch(o) else require("torch", "out=").from_numpy(o))
            else:
                np.copyto(dst, o.detach().cpu().numpy() if _is_torch(o) else o)
        return dict(out)

    def __call__(self, **inputs: Any) -> dict[str, Any]:
        return self.run(inputs)

    def _to_native(self, arrays: list[Any]) -> list[Any]:
        if self._torch_native:
            torch = require("torch", "this engine")
            dev = self._device
            if not self._cuda:
                return [x.contiguous() if _is_torch(x) else torch.from_numpy(np.ascontiguousarray(x)) for x in arrays]
            # Host data goes through pinned memory so the copy to the GPU is asynchronous.
            out = []
            for x in arrays:
                t = x if _is_torch(x) else torch.from_numpy(np.ascontiguousarray(x))
                if not t.is_cuda:
                    t = t.pin_memory().to(dev, non_blocking=True)
                out.append(t.contiguous())
            return out
        return [np.ascontiguousarray(x.detach().numpy()) if _is_torch(x) else x for x in arrays]

    def _from_native(self, outs: list[Any], torch_in: bool) -> list[Any]:
        if self._torch_native:
            return outs if torch_in else [o.numpy() for o in outs]  # CPU engine: outputs are CPU tensors
        if torch_in:
            torch = require("torch", "torch outputs")
            return [torch.from_numpy(o) for o in outs]
        return outs

    # -- files -----------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the engine to one file (atomically: a temporary name, then a rename)."""
        write_engine(path, self.manifest, self._payloads)


def load(path: str | os.PathLike[str], *, cuda_graphs: bool | None = None, graph_cache_size: int | None = None,
         graph_cache_mb: float | None = None) -> Engine:
    """Load an engine file written by :meth:`Engine.save` (or ``dynashape build --saveEngine``).

    CUDA engines replay CUDA graphs per exact input shapes (``cuda_graphs``, on by default), keeping
    at most ``graph_cache_size`` graphs (default 16) and ``graph_cache_mb`` of graph memory (default
    unbounded), least recently used evicted first. Loading compiles nothing.
    """
    manifest, payloads = read_engine(path)
    if manifest.device.startswith("cuda"):
        torch = require("torch", f"the CUDA engine '{os.fspath(path)}'")
        if not torch.cuda.is_available():
            raise EngineFileError(
                f"'{os.fspath(path)}' is an engine for {manifest.device}, and this machine has no CUDA device",
                "a machine with an NVIDIA GPU for this engine",
                "load it there, or rebuild the engine here with --device cpu",
            )
    backend = get_backend(manifest.backend)
    why = backend.available()
    if why:
        raise EngineFileError(f"'{os.fspath(path)}' is a {manifest.backend} engine, and {why}", None, None)
    return Engine(manifest, backend.load(manifest, payloads), payloads, cuda_graphs=cuda_graphs,
                  graph_cache_size=graph_cache_size, graph_cache_mb=graph_cache_mb)
