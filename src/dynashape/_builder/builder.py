"""Build: resolve the source and the backend, validate profiles, build, validate the engine (unless ``validate=False``).

Public methods check, backends work: everything a backend receives here is already valid.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .. import __version__, _progress
from .._backend import NAMES, backend_class, get_backend
from .._backend.base import Backend
from .._data import DataArg, Hints, hints_from_onnx, load_data, watch_embeddings
from .._deps import version_of
from .._dtypes import to_torch
from .._engine.engine import Engine
from .._errors import BackendError, DynashapeError, ModelError, ProfileError
from .._limits import check_threads
from .._profiles import Profile, validate_profile
from .._records import BuildSettings, Manifest, Source
from .._specs import TensorSpec, dtype_name
from . import postprocess

log = logging.getLogger("dynashape")

PRECISIONS = ("fp32", "fp16", "bf16")

# NOTE: measured on the 2-core CPU machines here (shared/GPU.md): ONNX Runtime ran the demo's
# super-resolution net 1.9-2.4x faster than AOTInductor (1x1x224x224: 12.8 vs 24.6 ms; 1x1x512x512:
# 68.9 vs 164.3 ms), so "auto" prefers it on the CPU. On CUDA, TensorRT when installed, else
# AOTInductor (onnxruntime-gpu is not part of the supported set).
_AUTO_ORDER = {"cpu": ("onnxruntime", "inductor"), "cuda": ("tensorrt", "inductor")}


def choose_backend(device: str, source_kind: str) -> str:
    """The backend ``"auto"`` resolves to for this device (first available in the measured order)."""
    order = _AUTO_ORDER[device.split(":")[0]]
    reasons = []
    for name in order:
        why = backend_class(name).available()
        if why is None:
            return name
        reasons.append(f"{name}: {why}")
    raise BackendError(f"no backend for device '{device}' is available ({'; '.join(reasons)})", "one of " + ", ".join(order), "install one")


def _library_versions() -> dict[str, str | None]:
    return {
        "python": platform.python_version(), "numpy": version_of("numpy"), "onnx": version_of("onnx"),
        "onnxruntime": version_of("onnxruntime"), "torch": version_of("torch"), "tensorrt": version_of("tensorrt"),
        "platform": f"{sys.platform}-{platform.machine()}",
    }


def _as_profiles(profiles: Profile | Mapping[str, Any] | Sequence[Profile] | None) -> list[Profile]:
    if profiles is None:
        return []
    if isinstance(profiles, Profile):
        return [profiles]
    if isinstance(profiles, Mapping):
        return [Profile(profiles)]
    out = []
    for p in profiles:
        out.append(p if isinstance(p, Profile) else Profile(p))
    return out


def _onnx_source(model: Any) -> Source:
    from ..onnx.model import io_specs, load_model

    proto = load_model(model)
    inputs, outputs = io_specs(proto)
    desc = os.fspath(model) if isinstance(model, (str, os.PathLike)) else "ONNX model"
    _check_graph_io(proto, desc)
    return Source("onnx", inputs, outputs, onnx_model=proto, description=desc)


def _check_graph_io(proto: Any, desc: str) -> None:
    """Refuse graphs an engine cannot describe: no outputs, or an input without a declared shape."""
    if not proto.graph.output:
        raise ModelError(f"'{desc}' has no graph outputs", "a graph with at least one output",
                         "re-export the model; check that the function returns its results")
    inits = {i.name for i in proto.graph.initializer}
    for v in proto.graph.input:
        if v.name in inits:
            continue
        # NOTE: an input with no shape field has an unknown rank (not a scalar, which has an empty
        # shape); building it as a scalar made every real input fail the rank check at run time.
        if not v.type.HasField("tensor_type") or not v.type.tensor_type.HasField("shape"):
            raise ModelError(
                f"'{desc}' input '{v.name}' has no declared shape (unknown rank)",
                "a tensor input with a shape, dims as numbers or names such as 'batch'",
                "re-export with input shapes, or set them with onnx.tools.update_model_dims",
            )


def _module_specs(names: Sequence[str], tensors: Sequence[Any], profiles: Sequence[Profile],
                  dynamic_axes: Mapping[str, Mapping[int, str]] | None) -> list[TensorSpec]:
    """Input specs of a module: a dim is static where every profile fixes it to one value."""
    specs = []
    for n, t in zip(names, tensors, strict=True):
        dims: list[int | str | None] = []
        for a in range(t.dim()):
            named = (dynamic_axes or {}).get(n, {}).get(a)
            vals = {v for p in profiles if n in p for v in (p[n].min[a], p[n].max[a])}
            if named is not None:
                dims.append(named)
            elif len(vals) == 1:
                dims.append(vals.pop())
            elif vals:
                dims.append(f"{n}_dim{a}")
            else:
                dims.append(int(t.shape[a]))
        specs.append(TensorSpec(n, dtype_name(t.dtype), tuple(dims)))
    return specs


def _module_source(module: Any, example_inputs: Any, input_names: Sequence[str] | None,
                   output_names: Sequence[str] | None, profiles: Sequence[Profile],
                   dynamic_axes: Mapping[str, Any] | None, append_ops: Sequence[tuple[str, str]]) -> tuple[Source, Hints]:
    import torch

    from .._torchio import IOAdapter, flatten_outputs, normalize_inputs, output_names_for

    if example_inputs is None:
        raise ModelError("a torch module without example_inputs", "example inputs (a tensor, a tuple, or a dict name -> tensor)",
                         "pass example_inputs=...; their dtypes and ranks define the engine's inputs")
    names, tensors, by_kw = normalize_inputs(module, example_inputs, input_names)
    axes = {n: {int(a): str(s) for a, s in v.items()} if isinstance(v, Mapping) else {int(a): f"{n}_dim{a}" for a in v}
            for n, v in (dynamic_axes or {}).items() if n in names}
    inputs = _module_specs(names, tensors, profiles, axes)
    adapter = IOAdapter(module, names, by_kw).eval()
    with torch.no_grad(), watch_embeddings(module, dict(zip(names, tensors, strict=True))) as watch:
        outs = flatten_outputs(adapter(*tensors))
    onames = output_names_for(len(outs), output_names)
    postprocess.check_outputs(append_ops, onames)
    adapter.post_ops = {onames.index(o): postprocess.torch_fn(op) for o, op in append_ops}
    outputs = [TensorSpec(o, dtype_name(t.dtype), tuple(t.shape)) for o, t in zip(onames, outs, strict=True)]
    src = Source("module", inputs, outputs, module=adapter, example_inputs=list(tensors), description=type(module).__name__)
    return src, watch.hints


def _module_to_onnx(source: Source, profiles: Sequence[Profile], tmp: str, data: DataArg | None) -> Source:
    """For ONNX-only backends: export the module (TorchScript exporter) and verify it at profile 0."""
    from .._export import export
    from ..onnx.model import io_specs, load_model

    axes = {s.name: {a: d for a, d in enumerate(s.shape) if isinstance(d, str)} for s in source.inputs}
    axes = {n: a for n, a in axes.items() if a}
    path = os.path.join(tmp, "model.onnx")
    # NOTE: source.module is an IOAdapter (forward(*inputs)), so the examples go in by position,
    # named with input_names; a dict would call the adapter with keywords it does not take.
    names = [s.name for s in source.inputs]
    export(source.module, tuple(source.example_inputs), path, input_names=names, output_names=[o.name for o in source.outputs], dynamic_axes=axes,
           profile=profiles[0] if profiles else None, data=data)
    proto = load_model(path)
    # NOTE: the module's output specs hold the example's static shapes; the export derived which
    # output dims follow the inputs, so the engine describes its outputs from the ONNX file.
    outputs = io_specs(proto)[1]
    return Source("onnx", source.inputs, outputs, onnx_model=proto, description=source.description)


def _onnx_to_module(source: Source, precision: str) -> Source:
    try:
        from ..onnx.importer import to_torch
    except ModuleNotFoundError as e:
        if "importer" not in str(e):
            raise
        raise BackendError(
            "the inductor backend cannot build from an ONNX file in this version (the ONNX importer is missing)",
            "a torch.nn.Module source for --backend inductor",
            "use --backend onnxruntime, or build from the module with dynashape.build(module, profiles, example_inputs=...)",
        ) from e
    import torch

    from .._torchio import IOAdapter

    # NOTE: the module is imported in the engine's compute dtype: Module.to(float16), which the
    # backend and the reference apply, would leave the graph's Cast(to=FLOAT) nodes and the
    # tensors it creates in float32 (see the importer's compute_dtype).
    compute = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    gm = to_torch(source.onnx_model, compute_dtype=compute)

    examples = [_zeros(torch, s) for s in source.inputs]
    adapter = IOAdapter(gm, [s.name for s in source.inputs], by_keyword=False).eval()
    return Source("module", source.inputs, source.outputs, module=adapter, example_inputs=examples,
                  onnx_model=source.onnx_model, description=source.description)


def _zeros(torch: Any, spec: TensorSpec) -> Any:
    return torch.zeros([d if isinstance(d, int) else 1 for d in spec.shape], dtype=to_torch(spec.dtype))


@_progress.honours_quiet
def build(
    source: Any,
    profiles: Profile | Mapping[str, Any] | Sequence[Profile] | None = None,
    *,
    backend: str = "auto",
    example_inputs: Any = None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_axes: Mapping[str, Any] | None = None,
    dims: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    device: str | None = None,
    precision: str | None = None,
    append_ops: Sequence[str | tuple[str, str]] | None = None,
    optimization_level: str | None = None,
    tuning: str | None = None,
    threads: int | None = None,
    validate: bool = True,
    tf32: bool = False,
    channels_last: bool | None = None,
    share_weights: bool = True,
    data: DataArg | None = None,
    quiet: bool | None = None,
    plan: Any = None,
    align: Mapping[str, int] | None = None,
    align_pad: bool = False,
    attention: str | None = None,
    inductor_config: Mapping[str, Any] | None = None,
    jobs: int | str | None = None,
    split: Any = None,
) -> Engine:
    """Build an engine from an ONNX file (path or ``onnx.ModelProto``) or a ``torch.nn.Module``.

    Args:
        source: the model. A module also needs ``example_inputs`` (their dtypes and ranks define the
            inputs; their names come from a dict, ``input_names`` or the forward's parameters).
        profiles: one :class:`Profile` or a list (profile k is the k-th). None: ranges from ``dims``,
            or, for a model without dynamic dims, its one static shape.
        backend: ``"onnxruntime"``, ``"inductor"``, ``"tensorrt"`` or ``"auto"`` (see :func:`choose_backend`).
        dims: ranges per symbolic dim name, ``{"batch": (1, 8, 32)}``, expanded over the inputs; a list
            of such dicts adds one profile each.
        dynamic_axes: for a module, names for its dynamic dims (``{"x": {0: "batch"}}``), so that
            inputs sharing a dim are checked together at run time.
        append_ops: ``"output_1:Sigmoid"`` strings or ``(output, op)`` pairs.
        validate: run the new engine at every profile's min, opt and max and compare with the source
            (in the engine's precision on its device; see ``dynashape._builder.validate``), on
            representative generated data or on ``data``.
        tf32, channels_last, share_weights: see :class:`BuildSettings`.
        align: inductor: a step per dim name, ``{"image_height": 32, "batch": 8}``: each profile gets
            a part compiled for the multiples of the step (see ``dynashape._backend.alignment``).
            None (the default): on CUDA, the spatial dims of a conv net by 32
            (:func:`dynashape._backend.alignment.auto_align`); ``{}``: none.
        align_pad: with ``align``: pad other values to the next multiple (and crop the outputs)
            where the model is padding-safe along the dim, instead of a second, general part.
        attention: inductor: ``"auto"`` (the default) exports each ``nn.MultiheadAttention``
            self-attention as one batch-first SDPA call where the build finds its output unchanged
            (see ``dynashape._backend.attention``); ``"sdpa"`` requires it (the build fails where it
            differs); ``"default"`` keeps the model's modules.
        inductor_config: inductor: ``torch._inductor.config`` keys for every package's compile, e.g.
            ``{"force_layout_optimization": True}`` (Inductor turns its channels-last layout pass off
            when convolutions have symbolic sizes) or ``{"max_autotune": True}``; checked against the
            installed torch and recorded in the engine. Applied after ``tuning``'s keys.
        jobs: inductor: packages compiled at once, in child processes. None or 1 (the default): one
            after the other, in this process; ``"auto"``: one per 4 CPU cores, at most 8, and 1 for models
            over 1 GiB of weights (see ``dynashape._backend.aoti_jobs`` for why this is not the default).
        split: inductor: compile a dim's range as sub-ranges, each tuned at its own opt (the user still
            sees one profile): ``"auto"`` (every free dim whose max/min passes 4, cut geometrically), or
            per dim name ``"auto"``, a count, or cut points (``{"batch": [4, 16]}``: 1..4, 5..16,
            17..max), or ``[[lo, opt, hi], ...]`` sub-ranges. Aligned dims are not split. See
            ``dynashape._backend.range_split``. With ``plan`` and no ``split``: the plan's own sub-ranges
            (``dynashape.plan(split=True)``).
        data: the user's feeds for validation instead of generated ones: an ``.npz`` path,
            ``"file.py:function"``, a dict name -> array, or an iterable of such dicts.
        quiet: no progress lines on stderr (None: the process default, on).
        plan: a plan from :func:`dynashape.plan` (or its JSON file): its profiles are built, padding
            along its bucket ladder is checked on the new engine, and the plan is stored in the
            manifest (see ``dynashape._plan.attach``).
    """
    device = device or "cpu"
    if device.split(":")[0] not in ("cpu", "cuda"):
        raise DynashapeError(f"device '{device}'", "cpu, cuda or cuda:N")
    precision = precision or "fp32"
    if precision not in PRECISIONS:
        raise DynashapeError(f"precision '{precision}'", "one of " + ", ".join(PRECISIONS))
    threads = check_threads(threads)
    if jobs is not None and jobs != "auto" and (type(jobs) is not int or not 1 <= jobs <= 1024):
        raise DynashapeError(f"jobs={jobs!r}", "None (one by one), 'auto' or a count of parallel compiles from 1 to 1024",
                             "e.g. jobs=4, or jobs=1 to compile in this process")
    ops = tuple(postprocess.parse_append_op(o) if isinstance(o, str) else (o[0], o[1]) for o in (append_ops or ()))
    plist = _as_profiles(profiles)
    plan_obj = None
    if plan is not None:
        from .._plan.attach import plan_profiles

        plan_obj, plist = plan_profiles(plan, plist, dims)

    t0 = time.perf_counter()
    is_module = type(source).__module__.startswith("torch") or hasattr(source, "forward")
    if is_module:
        src, hints = _module_source(source, example_inputs, input_names, output_names, plist, dynamic_axes, ops)
    else:
        if example_inputs is not None:
            raise DynashapeError("example_inputs for an ONNX source", "example_inputs only with a torch module source")
        src = _onnx_source(source)
        hints = hints_from_onnx(src.onnx_model)
        postprocess.check_outputs(ops, [o.name for o in src.outputs])
    if dims is not None:
        dim_list = [dims] if isinstance(dims, Mapping) else list(dims)
        plist += [Profile.from_dims(d, src.inputs) for d in dim_list]
    if not plist:
        if any(s.dynamic_axes for s in src.inputs):
            dyn = "; ".join(f"{s.name}: {s.shape_text()}" for s in src.inputs if s.dynamic_axes)
            raise ProfileError(
                f"no profile for a model with dynamic dims ({dyn})",
                "at least one profile: min/opt/max shapes per input, or ranges per dim name",
                "pass profiles=Profile(...) or dims={'batch': (1, 8, 32)}; on the CLI --minShapes/--optShapes/--maxShapes or --dims",
            )
        plist = [Profile({s.name: (s.shape, s.shape, s.shape) for s in src.inputs})]  # type: ignore[misc]
    plist = [validate_profile(p, src.inputs, k) for k, p in enumerate(plist)]
    feeds = load_data(data, src.inputs) if data is not None else None  # checked before anything is built

    name = choose_backend(device, src.kind) if backend == "auto" else backend
    if name not in NAMES:
        raise BackendError(f"backend '{backend}'", "one of: auto, " + ", ".join(NAMES))
    impl: Backend = get_backend(name)
    why = impl.available()
    if why:
        raise BackendError(f"backend '{name}' is not available: {why}", None, "install it, or choose another --backend")
    if device.split(":")[0] not in impl.devices:
        raise BackendError(f"backend '{name}' on device '{device}'", f"devices {', '.join(impl.devices)} for {name}",
                           "choose another backend (--backend auto picks one for the device)")
    if precision not in impl.precisions:
        raise BackendError(f"precision {precision} with backend '{name}'", f"one of {', '.join(impl.precisions)}",
                           "use another backend or precision")
    if split is None and plan_obj is not None and name == "inductor":
        # the sub-ranges a plan chose from the traffic (dynashape.plan(split=True)); an explicit split wins
        split = plan_obj.details.get("split")
    if (align or split or attention not in (None, "auto", "default")) and name != "inductor":
        raise BackendError(f"align/split/attention with backend '{name}'", "the inductor backend for these options",
                           "build with backend='inductor' (--backend inductor), or drop them")
    if inductor_config and name != "inductor":
        raise BackendError(f"inductor_config with backend '{name}'", "the inductor backend for Inductor's config",
                           "build with backend='inductor' (--backend inductor), or drop it")
    if attention not in (None, "auto", "default", "sdpa"):
        raise DynashapeError(f"attention '{attention}'", "'auto' (the default), 'default' (keep the model's attention modules) or 'sdpa'")
    # NOTE: "auto" only means something to inductor, the one backend that traces the module itself;
    # the others build from ONNX, where the exporter has already decided the attention's form.
    attention_mode = None if attention == "default" or name != "inductor" else (attention or "auto")
    from .._backend.alignment import check_align
    from .._backend.inductor import check_inductor_config
    from .._backend.range_split import check_split

    settings = BuildSettings(device=device, precision=precision, append_ops=ops, optimization_level=optimization_level,
                             tuning=tuning, threads=threads, validate=validate, tf32=tf32,
                             channels_last=channels_last, share_weights=share_weights,
                             align=check_align(align, src.inputs), align_pad=bool(align_pad),
                             attention=attention_mode, inductor_config=check_inductor_config(inductor_config), jobs=jobs,
                             split=check_split(split, src.inputs))
    reference = src
    with tempfile.TemporaryDirectory(prefix="dynashape-build-") as tmp:
        if src.kind not in impl.sources:
            src = _module_to_onnx(src, plist, tmp, data) if src.kind == "module" else _onnx_to_module(src, precision)
        # NOTE: an ONNX file exported from a module already holds the appended ops (the module's
        # adapter applies them), so they are added to the graph only for an ONNX source. The
        # reference stays the graph without them: _references appends them once.
        if src.kind == "onnx" and ops and reference.kind == "onnx":
            from .postprocess import apply_onnx

            src = Source("onnx", src.inputs, src.outputs, onnx_model=apply_onnx(src.onnx_model, ops), description=src.description)
        elif src.kind == "module" and ops and reference.kind == "onnx":
            src.module.post_ops = {[o.name for o in src.outputs].index(o): postprocess.torch_fn(op) for o, op in ops}
        if align is None and name == "inductor" and device.startswith("cuda") and src.kind == "module":
            # the default on CUDA: an aligned package for the spatial dims of conv nets (measured
            # there; on the CPU not measured, so not the default); align={} turns it off
            import torch

            from .._backend.alignment import auto_align

            auto = auto_align(torch, src, plist)
            if auto:
                settings = dataclasses.replace(settings, align=check_align(auto, src.inputs))
                _progress.say("build: aligned packages for " + ", ".join(f"{d} by {k}" for d, k in auto.items())
                              + " (align={} turns this off)")
        with _progress.stage(f"build: {name} engine ({device}, {precision}), {len(plist)} profile(s)"):
            try:
                built = impl.build(src, plist, settings)
            except DynashapeError:
                raise
            except Exception as e:
                # NOTE: a module imported from ONNX is ours, not the user's code: its failures
                # (torch.export, a CppCompileError) are named by the ONNX node they come from.
                if reference.kind != "onnx" or src.kind != "module":
                    raise
                from ..onnx.importer import build_error

                raise build_error(e, src.module, name) from e
    manifest = Manifest(
        backend=name, device=device, precision=precision, inputs=built.inputs, outputs=built.outputs, profiles=plist,
        build_settings=settings, library_versions=_library_versions(), backend_data=built.backend_data,
        dynashape_version=__version__, build_seconds=round(time.perf_counter() - t0, 3), parts=built.parts,
        input_hints={n: h for n, h in (hints or {}).items() if n in {s.name for s in built.inputs}},
    )

    def load() -> Engine:
        return Engine(manifest, impl.load(manifest, built.payloads), built.payloads)

    if not validate:
        return _attach_plan(load(), plan_obj)
    from .validate import cases
    from .validate import validate as _validate

    todo = cases(manifest.inputs, plist, hints=hints, feeds=feeds, parts=manifest.parts)
    judge, info = _references(reference, src, name, settings, hints)
    # NOTE: _validate loads the engine in this process only after it passed (in a child first
    # where the backend compiled native code).
    engine = _validate(manifest, built.payloads, load, todo, reference=judge, info=info,
                       in_child=impl.compiles_native_code, hints=hints)
    _progress.say(f"build: done, validated at {len(todo)} shape set(s)")
    return _attach_plan(engine, plan_obj)


def _attach_plan(engine: Engine, plan: Any) -> Engine:
    if plan is None:
        return engine
    from .._plan.attach import attach_plan

    return attach_plan(engine, plan)


#: the fp32 information reference of a reduced-precision CUDA build runs on the card up to this many
#: bytes of fp32 parameters (see _references)
INFO_ON_DEVICE_BYTES = 2 << 30


def _param_bytes(module: Any) -> int:
    return sum(4 * p.numel() for p in module.parameters()) + sum(4 * b.numel() for b in module.buffers())


def _references(reference: Source, built_from: Source, backend: str, settings: BuildSettings,
                hints: Hints) -> tuple[Any, Any]:
    """(the reference validation judges by, an fp32 reference reported as information or None).

    NOTE: a reduced-precision engine is judged against the source run in the same precision on the
    same device (eager PyTorch with the module in fp16/bf16 on the engine's device), so that the
    comparison measures the engine and not fp16 itself; the fp32 CPU source is still run and its
    difference logged. An ONNX Runtime engine built from an ONNX file would be compared with itself:
    it is only run at every case (None).
    """
    from .._dtypes import to_torch
    from .._reference import module_reference, onnx_reference
    from .postprocess import apply_onnx

    ops = settings.append_ops
    names = [s.name for s in reference.inputs]
    reduced = settings.precision != "fp32"
    if reference.kind == "module":
        dtypes = [t.dtype for t in reference.example_inputs]
        fp32 = module_reference(reference.module, names, input_dtypes=dtypes, hints=hints,
                                label=f"eager PyTorch ({reference.description}, cpu, fp32)")
        # NOTE: an fp32 engine is judged against fp32 on the CPU even when it runs on CUDA: eager
        # CUDA convolutions use TF32 by default (cuDNN's switch), the CPU computes true fp32.
        if not reduced:
            return fp32, None
        if settings.device.startswith("cuda") and _param_bytes(reference.module) <= INFO_ON_DEVICE_BYTES:
            # NOTE: the fp32 source of a reduced-precision CUDA engine is information only, and on the
            # CPU it was the slowest step of validation: FCN-ResNet50's 7 shape sets took 10-16 s of a
            # 184 s build on the H200 machine (run 6). It runs on the engine's card in fp32, TF32 off
            # (true fp32, as on the CPU); a model above the bound stays on the CPU, where memory is
            # larger. Not timed on the GPU yet.
            fp32 = module_reference(reference.module, names, input_dtypes=dtypes, hints=hints, device=settings.device,
                                    no_tf32=True, label=f"eager PyTorch ({reference.description}, {settings.device}, fp32, TF32 off)")
        same = module_reference(reference.module, names, input_dtypes=dtypes, hints=hints, device=settings.device,
                                precision=settings.precision,
                                label=f"eager PyTorch ({reference.description}, {settings.device}, {settings.precision})")
        return same, fp32
    if backend == "onnxruntime":
        return None, None
    model = apply_onnx(reference.onnx_model, ops) if ops else reference.onnx_model
    ort_ref = onnx_reference(model, [o.name for o in reference.outputs], label=f"ONNX Runtime ({reference.description}, cpu, fp32)")
    if not reduced or built_from.kind != "module":
        return ort_ref, None
    # The imported module is what the engine compiled: run it in the engine's precision.
    same = module_reference(built_from.module, names, input_dtypes=[to_torch(s.dtype) for s in reference.inputs], hints=hints,
                            device=settings.device, precision=settings.precision,
                            label=f"the imported model in eager PyTorch ({settings.device}, {settings.precision})")
    return same, ort_ref
