"""The runtime: :class:`Engine` checks inputs, picks the profile, and hands execution to its runtime.

Execution (device I/O, streams, CUDA graphs, the TF32 policy) lives in :mod:`.torch_runtime`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .._backend import get_backend
from .._backend.base import Runner
from .._deps import require
from .._dtypes import name_of
from .._errors import BackendError, DynashapeError, EngineFileError, ShapeError
from .._limits import is_integer
from .._profiles import Profile
from .._records import Manifest
from .._specs import TensorSpec, format_shape
from .file import read_engine, write_engine
from .ladder import LadderRuntime
from .selection import ProfileTable
from .torch_runtime import dense, make_runtime, resolve_tf32
from .torch_runtime import is_torch as _is_torch

#: The runtime options of an engine (``load``'s keywords), which :meth:`Engine.with_options` changes.
RUNTIME_OPTIONS = ("cuda_graphs", "graph_cache_size", "graph_cache_mb", "capture_on_demand", "strict_graphs", "tf32", "warmup")


def _as_array(name: Any, x: Any) -> Any:
    """A numpy array or a torch tensor; numpy scalars become 0-d arrays; anything else is refused."""
    if isinstance(x, np.ndarray) or (_is_torch(x) and hasattr(x, "device") and hasattr(x, "layout")):
        return x
    if isinstance(x, np.generic):
        return np.asarray(x)
    raise DynashapeError(f"input '{name}' is a {type(x).__name__}", "a numpy array or a torch tensor", "wrap it: np.asarray(x)")


def _shape_of(name: str, shape: Any) -> tuple[int, ...]:
    try:
        dims = tuple(shape)
    except TypeError:
        dims = None
    if dims is None or isinstance(shape, (str, bytes)) or not all(is_integer(d) and int(d) >= 0 for d in dims):
        raise ShapeError(f"shape of input '{name}' = {shape!r}", "a sequence of non-negative integers, e.g. (1, 3, 224, 224)")
    return tuple(int(d) for d in dims)


def _same_cuda(dev: Any, engine_device: str) -> bool:
    want = int(engine_device.split(":")[1]) if ":" in engine_device else None
    if want is None:
        torch = require("torch", "CUDA engines")
        want = torch.cuda.current_device()
    return (dev.index if dev.index is not None else want) == want


class Engine:
    """A built engine: its inputs, outputs and profiles, and :meth:`run`.

    ``run`` is safe to call from several threads at once: it keeps no state between calls, and the
    backends' run calls are thread-safe (ONNX Runtime sessions, AOTInductor model containers).
    ``run`` checks; execution (device I/O, streams, CUDA graphs, TF32) is the runtime's
    (:mod:`.torch_runtime`). :meth:`with_options` gives the same loaded engine with other runtime
    options, :meth:`graph_stats` its CUDA graph counters.
    """

    def __init__(self, manifest: Manifest, runner: Runner, payloads: dict[str, bytes], *,
                 cuda_graphs: bool | None = None, graph_cache_size: int | None = None,
                 graph_cache_mb: float | None = None, capture_on_demand: bool | None = None,
                 strict_graphs: bool | None = None, tf32: bool | str | None = None) -> None:
        self._options: dict[str, Any] = {"cuda_graphs": cuda_graphs, "graph_cache_size": graph_cache_size,
                                         "graph_cache_mb": graph_cache_mb, "capture_on_demand": capture_on_demand,
                                         "strict_graphs": strict_graphs, "tf32": tf32}
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
        self._device = manifest.device
        self._cuda = manifest.device.startswith("cuda")
        recorded = bool(manifest.build_settings.tf32)
        self._runtime = make_runtime(
            runner, manifest.device, self._out_names, cuda_graphs=cuda_graphs, graph_cache_size=graph_cache_size,
            graph_cache_mb=graph_cache_mb, strict_graphs=strict_graphs, tf32=resolve_tf32(recorded, tf32),
            what=f"this {manifest.backend} {manifest.precision} engine (built with tf32={recorded}{'' if tf32 is None else f', loaded with tf32={tf32!r}'})",
        )
        # The planned bucket ladder (dynashape plan): its graphs are captured by warmup(), and no
        # other shape is captured in the request path unless capture_on_demand=True.
        self._ladder = LadderRuntime.from_manifest(manifest)
        if self._ladder is not None and self._graphs is not None:
            self._graphs.capture_on_demand = bool(capture_on_demand)
            self._graphs.reserve(len(self._ladder.ladder.shapes) + (graph_cache_size or 0))

    @property
    def _graphs(self) -> Any:
        """The CUDA graph cache (:class:`.cudagraphs.CudaGraphRunner`), or None."""
        return self._runtime.graphs

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
        ordered = [_shape_of(n, shapes[n]) for n in self._names]
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
                        f"{d}: the model fixes this dim (shape {spec.shape_text()})",
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
        arrays_in = {name: _as_array(name, x) for name, x in inputs.items()}
        ordered = self._shapes({n: x.shape for n, x in arrays_in.items()})  # checks names first
        arrays = [self._check_array(i, arrays_in[n]) for i, n in enumerate(self._names)]
        torch_in = any(_is_torch(x) for x in arrays)
        if out is not None:
            self._check_out(out)
        if self._ladder is not None and profile is None and out is None:
            padded = self._run_bucket(arrays, ordered, torch_in, stream)
            if padded is not None:
                return padded
        k = self._pick(ordered, profile)
        return self._runtime.execute(k, arrays, lambda native: self._call(k, native, ordered), torch_in=torch_in, stream=stream, out=out)

    def _pick(self, ordered: list[tuple[int, ...]], profile: Any) -> int:
        """The profile for these shapes: the closest one, or ``profile`` checked."""
        if profile is None:
            k = self._table.select(ordered)
            if k is None:
                raise self._table.outside_all(ordered)
            return k
        if not is_integer(profile) or not 0 <= profile < len(self.manifest.profiles):
            raise DynashapeError(f"profile={profile!r}", f"an index from 0 to {len(self.manifest.profiles) - 1}, or None to choose")
        if not self._table.contains(int(profile), ordered):
            raise self._table.outside_one(int(profile), ordered)
        return int(profile)

    def _check_array(self, i: int, x: Any) -> Any:
        """Check one input's dtype, byte order, layout and device; numpy input in native byte order."""
        name, want = self._names[i], self._static[i][2]
        if _is_torch(x):
            dt = name_of(x.dtype)
            fix = f"convert it: x.to(torch.{want})"
        else:
            dt = x.dtype.name
            fix = f"convert it: x.astype(np.{want})"
        if dt != want:
            kind = "" if _is_torch(x) or x.dtype.kind in "biufc" else f" (numpy kind '{x.dtype.kind}')"
            raise DynashapeError(f"input '{name}' has dtype {dt}{kind}", f"{want}, the model's dtype for this input", fix)
        if not _is_torch(x):
            # NOTE: a big-endian array has the right dtype name but the wrong bytes for every
            # runtime here (ONNX Runtime read >f4 data as 1e37-off values); converting keeps the
            # values, at the cost of one copy, as for non-contiguous input.
            if not x.dtype.isnative:
                x = x.astype(x.dtype.newbyteorder("="))
            return x
        dev = x.device
        # NOTE: only the engine's own device, or the CPU (copied through pinned memory) for a CUDA
        # engine; a meta tensor has no data and crashed the backends, another card is a silent copy.
        ok = dev.type == "cpu" or (self._cuda and dev.type == "cuda" and _same_cuda(dev, self._device))
        if not ok:
            where = f"the engine's device ({self._device}) or the CPU" if self._cuda else "the CPU (a numpy array or a CPU tensor)"
            raise DynashapeError(f"input '{name}' is on {dev}", where, f"move it: x.to('{self._device}')")
        if x.layout is not require("torch", "torch inputs").strided:
            raise DynashapeError(f"input '{name}' has layout {x.layout}", "a dense (strided) tensor", "convert it: x.to_dense()")
        return x

    def _check_out(self, out: Mapping[str, Any]) -> None:
        """Check ``out=`` before running: every output by name, arrays of the output's dtype."""
        if not isinstance(out, Mapping):
            raise DynashapeError(f"out= of type {type(out).__name__}", f"a dict of output name -> tensor for {self._out_names}")
        unknown = [n for n in out if n not in self._out_names]
        if unknown:
            raise DynashapeError(f"out= names unknown output(s) {unknown}", f"the engine's outputs: {self._out_names}")
        for spec in self.manifest.outputs:
            dst = out.get(spec.name)
            if dst is None:
                continue  # deliver() names the missing ones
            if not (_is_torch(dst) or isinstance(dst, np.ndarray)):
                raise DynashapeError(f"out['{spec.name}'] is a {type(dst).__name__}", "a numpy array or a torch tensor")
            dt = name_of(dst.dtype)
            # NOTE: a copy into a narrower type (fp32 -> fp16) would round silently; refused.
            if dt != spec.dtype:
                raise DynashapeError(f"out['{spec.name}'] has dtype {dt}", f"{spec.dtype}, the output's dtype",
                                     f"allocate it with dtype {spec.dtype}")
            if _is_torch(dst) and dst.device.type not in ("cpu", "cuda"):
                raise DynashapeError(f"out['{spec.name}'] is on {dst.device}", "a CPU or CUDA tensor")

    def _call(self, k: int, native: list[Any], ordered: list[tuple[int, ...]]) -> list[Any]:
        try:
            return self._runner.run(k, native)
        except DynashapeError:
            raise  # a runner's own refusal (a shape in a guard-split profile's gap) is already worded
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

    def __call__(self, **inputs: Any) -> dict[str, Any]:
        return self.run(inputs)

    # -- the planned bucket ladder ---------------------------------------------------------------

    def _run_bucket(self, arrays: list[Any], ordered: list[tuple[int, ...]], torch_in: bool, stream: Any) -> dict[str, Any] | None:
        """Run padded to the ladder's next bucket and crop back; None when the request is off the ladder."""
        assert self._ladder is not None
        hit = self._ladder.target(ordered)
        if hit is None:
            return None
        value, bucket = hit
        padded = self._ladder.pad(arrays, bucket) if bucket != value else list(arrays)
        shapes = [tuple(int(d) for d in x.shape) for x in padded]
        k = self._table.select(shapes)
        if k is None:  # a plan built with other profiles: run at the exact shape
            return None
        outs = list(self._runtime.execute(k, padded, lambda native: self._call(k, native, shapes), torch_in=torch_in, stream=stream).values())
        # the crop is a view: contiguous again, as every output an engine hands out (torch_runtime.dense)
        return dict(zip(self._out_names, dense(self._ladder.crop(outs, value)), strict=True))

    def _set_plan(self, plan: Any) -> None:
        """Store a plan (with the build's padding verdict) and arm its ladder (used by build)."""
        self.manifest.plan = plan
        self._ladder = LadderRuntime.from_manifest(self.manifest)
        if self._graphs is not None:
            self._graphs.clear()
            if self._ladder is not None:
                self._graphs.capture_on_demand = False
                self._graphs.reserve(len(self._ladder.ladder.shapes))

    def warmup(self) -> dict[str, Any]:
        """Capture the planned ladder's CUDA graphs now, largest shape first (on the CPU: run each
        ladder shape once); returns :meth:`graph_stats`. ``load`` calls it for CUDA engines built
        from a plan, so no capture happens in the request path."""
        if self._ladder is None:
            return self.graph_stats()
        from .._plan.padding import make_real_inputs, shape_for

        for dims in self._ladder.graph_shapes():
            try:
                shapes = {s.name: shape_for(s, dims) for s in self.manifest.inputs}
            except KeyError:
                continue  # the plan lacks a dim of this engine: nothing to capture
            ordered = [tuple(shapes[n]) for n in self._names]
            k = self._table.select(ordered)
            if k is None:
                continue
            feed = make_real_inputs(self.manifest.inputs, shapes, hints=self.manifest.input_hints)
            native = self._runtime.to_native([feed[n] for n in self._names])
            if self._graphs is not None:
                self._runtime.capture(k, native)
            else:
                self._call(k, native, ordered)
        return self.graph_stats()

    def graph_stats(self) -> dict[str, Any]:
        """CUDA graphs held (``graphs``, ``graph_bytes``, ``pool_bytes``), ``captures``, ``replays``,
        ``skipped`` (new shapes run plainly by the admission rule or a plan), ``evictions``,
        ``failures`` (``capture``, ``replay``, ``mismatch``: each logged once per shape, and an error
        with ``strict_graphs``), ``strict``, and the ladder's counters (requests on the ladder,
        padded, off the ladder). Engines without CUDA graphs report zeros."""
        return {**self._runtime.stats(), "ladder": None if self._ladder is None else self._ladder.stats()}

    # -- the same engine, other options ----------------------------------------------------------

    def with_options(self, **options: Any) -> Engine:
        """This engine with other runtime options: the same loaded backend (no reload, no second copy
        of the weights), its own CUDA graph cache and counters.

        ``options``: any of :func:`load`'s runtime keywords (``cuda_graphs``, ``graph_cache_size``,
        ``graph_cache_mb``, ``capture_on_demand``, ``strict_graphs``, ``tf32``, ``warmup``); the
        ones not given keep this engine's values, and None means the default, as in ``load``.
        E.g. ``engine.with_options(cuda_graphs=False)`` for plain calls beside the graph replays.
        """
        unknown = sorted(set(options) - set(RUNTIME_OPTIONS))
        if unknown:
            raise DynashapeError(f"with_options({', '.join(unknown)}=...)", "runtime options: " + ", ".join(RUNTIME_OPTIONS),
                                 "file, backend and precision options need a rebuild (dynashape.build)")
        warmup = options.pop("warmup", None)
        engine = Engine(self.manifest, self._runner, self._payloads, **{**self._options, **options})
        engine._autowarm(warmup)
        return engine

    def _autowarm(self, warmup: bool | None) -> None:
        """Capture the plan's ladder when asked, or by default for CUDA engines built from a plan."""
        if warmup or (warmup is None and self.manifest.plan is not None and self._cuda):
            self.warmup()

    def backend_call(self, inputs: Mapping[str, Any], *, profile: int | None = None) -> Callable[[], list[Any]]:
        """A call of the backend alone on ``inputs``: checked, converted and its profile chosen once,
        then each call runs only the backend (no checks, conversions or CUDA graphs) and returns
        its native outputs. For measuring what :meth:`run` adds (``dynashape bench``'s overhead)."""
        arrays_in = {name: _as_array(name, x) for name, x in inputs.items()}
        ordered = self._shapes({n: x.shape for n, x in arrays_in.items()})
        k = self._pick(ordered, profile)
        native = self._runtime.to_native([self._check_array(i, arrays_in[n]) for i, n in enumerate(self._names)])
        runner = self._runner
        return lambda: runner.run(k, native)

    def payload_sizes(self) -> dict[str, int]:
        """Bytes of each payload the engine file holds (name -> size), as written by :meth:`save`
        before compression."""
        return {n: len(b) for n, b in self._payloads.items()}

    # -- files -----------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str], *, signing_key: Any = None) -> None:
        """Write the engine to one file, atomically (see :mod:`dynashape._io`).

        ``signing_key``: an Ed25519 private key (a PEM file path, or a ``cryptography`` key) to sign
        the file with; None: ``$DYNASHAPE_SIGNING_KEY`` if set, else unsigned.
        """
        write_engine(path, self.manifest, self._payloads, signing_key=signing_key)


def load(path: str | os.PathLike[str], *, cuda_graphs: bool | None = None, graph_cache_size: int | None = None,
         graph_cache_mb: float | None = None, warmup: bool | None = None, capture_on_demand: bool | None = None,
         strict_graphs: bool | None = None, tf32: bool | str | None = None, verify_key: Any = None,
         require_signature: bool | None = None) -> Engine:
    """Load an engine file written by :meth:`Engine.save` (or ``dynashape build --saveEngine``).

    Loading runs native code from the file (see "Engine files run native code" in the README): load
    only engines you trust. The file's digest, manifest and (with a key) signature are checked
    before any of it is loaded. ``verify_key``: the Ed25519 public key (PEM path or key) a signed
    engine must be signed with (None: ``$DYNASHAPE_VERIFY_KEY``). ``require_signature``: refuse
    unsigned engines (None: ``$DYNASHAPE_REQUIRE_SIGNED=1``).

    CUDA engines replay CUDA graphs per exact input shapes (``cuda_graphs``, on by default), keeping
    at most ``graph_cache_size`` graphs (default 16) and ``graph_cache_mb`` of graph memory (default
    unbounded), least recently used evicted first. Loading compiles nothing.

    An engine built from a plan (``build --plan``) captures the plan's bucket ladder here
    (``warmup``: default on for CUDA engines) and captures no other shape unless
    ``capture_on_demand=True``; see :meth:`Engine.warmup` and :meth:`Engine.graph_stats`.

    A CUDA graph capture or replay that fails, or a graph that disagrees with the plain call, is
    logged once per shape and counted in :meth:`Engine.graph_stats`; ``strict_graphs=True`` (None:
    ``$DYNASHAPE_STRICT_GRAPHS=1``) makes it a ``BackendError`` instead.

    ``tf32``: None applies the engine's recorded TF32 setting (``build(tf32=...)``) to torch's
    process-wide switches once, here, with a logged warning for each switch it changes; True/False
    override it; ``"process"`` leaves the switches alone. CUDA graphs are captured under the
    engine's setting. See "TF32" in the README; nothing is switched per call.
    """
    manifest, payloads = read_engine(path, verify_key=verify_key, require_signature=require_signature)
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
    resolve_tf32(False, tf32)  # a bad value is refused before anything native loads
    engine = Engine(manifest, backend.load(manifest, payloads), payloads, cuda_graphs=cuda_graphs,
                    graph_cache_size=graph_cache_size, graph_cache_mb=graph_cache_mb, capture_on_demand=capture_on_demand,
                    strict_graphs=strict_graphs, tf32=tf32)
    engine._autowarm(warmup)
    return engine
