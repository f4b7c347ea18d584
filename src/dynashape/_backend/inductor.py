"""PyTorch AOTInductor backend (CPU and CUDA): ``torch.export`` with each profile's dims, one package per profile
(or per part, where the model's guards split a profile: :mod:`.guard_split`, :mod:`.alignment`).

Build: for profile k, export the module with ``Dim(min, max)`` for every dim the profile leaves
free and the opt shape as the example (so Inductor tunes for opt), then compile it ahead of time
into ``profile{k}.pt2``. With ``share_weights`` (the default) the packages carry no weights
(``aot_inductor.package_constants_in_so=False``); the engine stores them once in ``weights.pt``
and every loaded package points at the same tensors (``load_constants(..., user_managed=True)``),
as TensorRT shares weights across the profiles of one engine.
Run: the loaded package of the chosen profile, called with torch tensors.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import io
import logging
import os
import re
import stat
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

from .. import _progress
from .._deps import require
from .._dtypes import DTYPES, module_to, to_torch
from .._engine.schema_parts import MAX_PARTS as MAX_PROFILE_PARTS
from .._engine.selection import PartTable
from .._errors import BackendError, EngineFileError
from .._io import private_cache_dir, write_atomic
from .._profiles import Profile
from .._records import BuildSettings, Built, Manifest, ProfilePart, Source
from .._specs import TensorSpec, dtype_name, identifier
from .._torch_compat import exact_shape_arithmetic
from . import aoti_jobs, range_split
from .alignment import Aligner, edge_record, is_conv_net, plan_parts
from .attention import use_sdpa
from .base import Backend, Runner
from .conv_layout import channel_dots
from .guard_split import FreeDim, PlannedPart, free_dims, restricting_guards, split_profile
from .guard_split import dim_symbol as _symbol
from .range_split import sub_profiles
from .resize import broadcast_unit_resizes, exact_nearest, symbolic_nearest_ratios

log = logging.getLogger("dynashape")

# NOTE: every tuning benchmarks its candidates at each profile's opt shape: AOTInductor takes the
# size hint of a symbolic dim from the example torch.export traced with (export_profile traces at
# opt). The choices land in Inductor's cache (cache_dir()), so a rebuild does not tune again.
_TUNING: dict[str, dict[str, Any]] = {
    "default": {},
    "max-autotune": {"max_autotune": True},
    "coordinate-descent": {"coordinate_descent_tuning": True},
    "max-autotune-cd": {"max_autotune": True, "coordinate_descent_tuning": True},
}
_COMPUTE = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}



#: Inductor settings that a dynamic CUDA build of a conv net with free spatial dims gets, as one unit:
#: none of them where ``inductor_config`` sets any (see :func:`default_configs`)
ND_TILING: dict[str, bool | int] = {"triton.prefer_nd_tiling": True, "triton.max_tiles": 3}


def default_configs(torch: Any, source: Source, profiles: Sequence[Profile], settings: BuildSettings,
                    channels_last: bool) -> dict[str, Any]:
    """The Inductor settings a build adds to the user's for the packages of ``profiles``: :data:`ND_TILING`
    for a channels-last CUDA build whose 4-D float inputs have a free H or W (axes 2, 3) in one of
    them; else none. The builder asks per profile, so a static profile keeps Inductor's own choices.

    NOTE (why): Inductor skips its tiling analysis for symbolic sizes
    (``triton.coalesce_tiling_analysis``: "does not yet apply to dynamic shapes"). A pointwise kernel
    over ``(C, H, W)`` is then one flat index divided by the symbolic sizes in 64-bit arithmetic in
    every thread, or a 2-D tile over (channel, pixel). Measured on an H200 (2026-12-01, torch 2.11,
    fp16, CUDA graphs): FCN-ResNet50's last kernel, the bilinear upsample of 21 classes to the input's
    size, took 94 us a call at 640x640 with the defaults and 53 us with a program axis per dim (3 tiles);
    the engine's tax against static engines went from 0.939/0.903 to 0.976/0.975 at 512x512/517x611
    (``benchmarks/results/dynamic_tax_h200_2026-12-01_run7_fcn_contiguous_nd.md``), and the seed
    segmentation net's from 0.881 to 0.973 at 777x1001 (1.218 to 1.243 at 1600x1600). ``prefer_nd_tiling``
    alone keeps 2 tiles and made the same kernel 2.4x slower at 768x768 (``probe_tiling_gpu.py``).
    Batch-only conv nets are left alone: measured there (run 8), ND tiling cost EfficientNet-B0 and
    MobileNetV3-L 6-12% at batch 1 and changed nothing beyond noise at 13 and 32. On ResNet-50 with a free
    batch and H/W it kept its place: GPU time 593 against 615 us a call without it at 8x224x224 (static:
    586). CPU builds are left alone: not measured.
    """
    if not (channels_last and settings.device.startswith("cuda")):
        return {}
    images = [s.name for s in source.inputs if len(s.shape) == 4 and s.dtype.startswith(("float", "bfloat"))]
    ranges = [dict(p.items()) for p in profiles]
    if not any(r[n].min[a] != r[n].max[a] for r in ranges for n in images if n in r for a in (2, 3)):
        return {}
    # NOTE: one unit: the two keys were measured together, and max_tiles=3 without prefer_nd_tiling
    # was not measured, so a user who sets either one gets neither from here
    if any(k in ND_TILING for k, _ in settings.inductor_config):
        return {}
    known = torch._inductor.config.get_config_copy()
    return {k: v for k, v in ND_TILING.items() if k in known}


def check_inductor_config(config: Any) -> tuple[tuple[str, bool | int | float | str], ...]:
    """``inductor_config`` as sorted ``(key, value)`` pairs, each key one of the installed torch's
    ``torch._inductor.config`` keys and each value a bool, int, float or string of that key's type."""
    if not config:
        return ()
    if not isinstance(config, Mapping):
        raise BackendError(f"inductor_config {config!r}", "a dict of torch._inductor.config keys to values",
                           "e.g. inductor_config={'force_layout_optimization': True}")
    torch = require("torch", "the inductor backend")
    known = torch._inductor.config.get_config_copy()
    out = []
    for key, value in config.items():
        if not isinstance(key, str) or key not in known:
            close = sorted(k for k in known if isinstance(key, str) and key.split(".")[-1] in k)[:5]
            raise BackendError(f"inductor_config key {key!r}", f"a key of torch {torch.__version__}'s torch._inductor.config"
                               + (f" (close: {', '.join(close)})" if close else ""),
                               "check the name in torch/_inductor/config.py of the installed torch")
        if type(value) not in (bool, int, float, str):
            raise BackendError(f"inductor_config['{key}'] = {value!r}", "a bool, int, float or string",
                               "settings that need other types are not supported here")
        default = known[key]
        if default is not None and isinstance(default, (bool, int, float, str)) and type(value) is not type(default) \
                and not (type(default) is float and type(value) is int):
            raise BackendError(f"inductor_config['{key}'] = {value!r} ({type(value).__name__})",
                               f"a {type(default).__name__}, as torch's default {default!r}")
        out.append((key, value))
    return tuple(sorted(out))


def cache_dir() -> str:
    """Inductor's compile cache for dynashape builds: persistent, so rebuilds and added profiles reuse work.

    NOTE: a private per-user folder (:func:`dynashape._io.private_cache_dir`), since Inductor loads the
    compiled code it finds there.
    """
    return private_cache_dir("inductor")


@contextlib.contextmanager
def _tf32(torch: Any, enabled: bool) -> Iterator[None]:
    """TF32 switches for the duration of a build (compile-time choices; never around engine calls)."""
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def _make_compute_module(torch: Any, source: Source, settings: BuildSettings, dynamic: bool = False) -> tuple[Any, bool, list[str]]:
    """The module as it will be compiled: on the device, in the compute precision and layout, and
    whether it is channels-last and which one-channel 1x1 convolutions became channel dot products.

    Inputs and outputs keep the model's dtypes: float inputs are cast to the compute dtype inside
    the graph and float outputs back, so the cast is fused into the first and last kernels.
    """
    compute = getattr(torch, _COMPUTE[settings.precision])
    has_conv = is_conv_net(torch, source.module)
    dots: list[str] = []
    channels_last = settings.channels_last if settings.channels_last is not None else (settings.device.startswith("cuda") and has_conv)
    module = source.module.eval()
    if settings.device != "cpu" or compute != torch.float32 or channels_last:
        # NOTE: Module.to() converts in place; the caller's model (and the fp32 reference that
        # validation compares with) must stay as it was.
        module = copy.deepcopy(module).to(settings.device)
        if compute != torch.float32:
            module = module_to(module, compute)
        if channels_last:
            if dynamic:
                # NOTE: only where some dim is free: that is when Inductor's own layout pass is off
                # and a one-channel convolution's input layout goes wrong (see conv_layout)
                dots = channel_dots(torch, module)
            module = module.to(memory_format=torch.channels_last)
    device = settings.device
    in_dtypes = [to_torch(s.dtype) for s in source.inputs]
    out_dtypes = [to_torch(s.dtype) if s.dtype in DTYPES and DTYPES[s.dtype].is_float else None for s in source.outputs]

    class Compute(torch.nn.Module):
        #: TorchDynamo (a strict export) cannot enter a device context: off for that export
        device_context = True

        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, *args: Any) -> tuple[Any, ...]:
            cast = []
            for a, dt in zip(args, in_dtypes, strict=True):
                if dt.is_floating_point and dt != compute:
                    a = a.to(compute)
                if channels_last and a.dim() == 4 and dt.is_floating_point:
                    a = a.contiguous(memory_format=torch.channels_last)
                cast.append(a)
            # NOTE: tensors a graph creates without a device (torch.arange for ONNX Range in an
            # imported model, say) must land on the engine's device, or the trace mixes devices
            # ("found two different devices cuda:0, cpu", seen on the H200 for imported BERT/GPT-2).
            with torch.device(device) if self.device_context else contextlib.nullcontext():
                outs = self.inner(*cast)
            outs = tuple(o.to(dt) if dt is not None and o.dtype != dt else o for o, dt in zip(outs, out_dtypes, strict=True))
            if channels_last:
                # NOTE: channels-last is the engine's inside; its 4-D outputs are contiguous, as eager's
                # are for contiguous inputs. Left channels-last (what a resize or a convolution of a
                # channels-last map gives), Inductor wrote FCN-ResNet50's last kernel (the bilinear
                # upsample of 21 classes to the input's size) in that layout under symbolic sizes: a
                # 2-D tile over (class, pixel) with 21 of its 32 rows used and strided stores, 61.5 us a
                # call at 512x512 on an H200 against 11.0 us for the static engine, which wrote NCHW
                # (benchmarks/probe_tiling_gpu.py, 2026-12-01).
                # NOTE: what Inductor makes of it under symbolic sizes on CUDA: see contiguous_output.
                outs = tuple(contiguous_output(torch, o) if isinstance(o, torch.Tensor) and o.dim() == 4 else o for o in outs)
            return outs

    return Compute().eval(), channels_last, dots


def contiguous_output(torch: Any, o: Any) -> Any:
    """A 4-D output of a channels-last engine, asked for contiguous (``o.contiguous()``).

    NOTE: under symbolic sizes on CUDA this does not reach the kernels. On the H200 (torch 2.11,
    2026-12-01) both dynamic packages of DeepLabV3-ResNet50 wrote the 21-class output channels-last, and
    so did a net whose last op is a 4-channel convolution; the static engines wrote them contiguous
    (benchmarks/results/output_copy_h200_2026-12-01_deeplabv3.json, output_layout_h200_2026-12-01.json).
    The runtime copies such an output (torch_runtime.dense: 31.6 us a call at 512x512, 47.9 us at
    517x611 for DeepLabV3). Found since, on the CPU with torch 2.11 and fake CUDA tensors: torch.export's
    meta for a CUDA convolution of a channels-last input gives contiguous strides under symbolic sizes,
    so ``.contiguous()`` leaves no node and the graph's output is the fp32 cast, with contiguous strides.
    The kernels still wrote channels-last, so Inductor did not enforce those strides on the output
    either; a clone node with ``memory_format=contiguous_format`` (the tax script's ``clone_output``
    variant) may not change that, and is NOT MEASURED: benchmarks/probe_output_strides_gpu.py and the
    variant are next (benchmarks/shards/next_gpu_call1*.txt). An ``as_strided`` view to pin the strides
    broke the compile of a stride-2 net on the CPU (ValueRangeError in Inductor's symbolic strides, torch
    2.13), so it is not used. This function is where a measured fix goes.
    """
    return o.contiguous()


def export_profile(torch: Any, module: Any, inputs: Sequence[TensorSpec], profile: Profile, device: str,
                   example_like: Sequence[Any], edge_padding: Callable[[FreeDim], bool] | None = None) -> list[PlannedPart]:
    """``torch.export`` ``module`` for one profile: dims free where min < max, example at opt.

    One part (``dims`` empty) where torch.export keeps every dim free over the whole profile; else
    the parts of the guard split (:mod:`.guard_split`), packages first, then gaps.
    """
    Dim = torch.export.Dim
    named: dict[str, Any] = {}
    shapes, args = [], []
    for spec, like in zip(inputs, example_like, strict=True):
        r = profile[spec.name]
        axes = {}
        example = list(r.opt)
        for axis in r.dynamic_axes:
            lo, opt, hi = r.dim(axis)
            sym = _symbol(spec, axis)
            if sym not in named:
                named[sym] = Dim(identifier(sym), min=lo, max=hi)
            axes[axis] = named[sym]
            # NOTE: torch.export specializes a dim whose example is 0 or 1 (the 0/1 specialization),
            # so trace with 2 where the range allows it; the Dim's min keeps 1 valid at run time.
            if opt < 2:
                example[axis] = min(2, hi)
        shapes.append(axes or None)
        args.append(_example_tensor(torch, like, tuple(example), device))

    def split() -> list[PlannedPart]:
        return split_profile(torch, module, inputs, profile,
                             lambda i, shape: _example_tensor(torch, example_like[i], shape, device), edge_padding)

    try:
        program = torch.export.export(module, tuple(args), dynamic_shapes=(tuple(shapes),))
    except Exception as first:
        if _data_dependent(first):
            program = _export_strict(torch, module, args, shapes, profile, first)
            restricting = restricting_guards(program, inputs, profile)
            if restricting:  # the split's traces are non-strict: they cannot take this model's branch on data
                raise BackendError(
                    f"the model branches on input data (exported through TorchDynamo for {profile.describe()}), and its "
                    f"trace holds only where {'; '.join(restricting)[:300]}",
                    "a trace valid over the whole profile", "narrow the profile to values where those guards hold") from first
            return [PlannedPart(ProfilePart(-1, ()), program)]
        # NOTE: named Dims fail when the model's code guards a dim (a parity test, a multiple of
        # 4, a branch on a comparison) or relates dims. Dim.DYNAMIC would export anyway, but torch
        # then drops the guards it cannot express and the package computes garbage where they fail
        # (seen: errors of 1e17 at the other parity), so the guards are read and the profile split.
        try:
            return split()
        except BackendError:
            raise
        except Exception as second:
            text = " ".join(str(first).split())[:1500]
            # the split's own failure is named too: without it a split that broke (a torch version
            # whose guards it cannot read) looks like a model that cannot be split
            why = " ".join(f"{type(second).__name__}: {second}".split())[:400]
            log.debug("guard split failed", exc_info=True)
            raise BackendError(
                f"torch.export cannot keep the profile's dims dynamic ({profile.describe()}): {text} "
                f"[splitting the profile by these guards failed too: {why}]",
                "a model whose dynamic dims stay symbolic under torch.export",
                "apply the fix torch suggests above (a reshape or a size read as a Python int pins a dim); "
                "`dynashape check` on an ONNX export shows where",
            ) from first
    restricting = restricting_guards(program, inputs, profile)
    if restricting:
        log.info("torch.export kept the dims free, but its trace holds only where %s: splitting the profile",
                 "; ".join(restricting)[:300])
        return split()
    return [PlannedPart(ProfilePart(-1, ()), program)]


def _data_dependent(e: BaseException) -> bool:
    """torch.export's failure on a branch that depends on an input's values (``if mask.all():``)."""
    return type(e).__name__ in ("GuardOnDataDependentSymNode", "UserError") and "data-dependent" in str(e)


def _export_strict(torch: Any, module: Any, args: list[Any], shapes: list[Any], profile: Profile, first: BaseException) -> Any:
    """Export again through TorchDynamo (``strict=True``) after a data-dependent failure, or one error
    that names the model's line.

    NOTE: the default (non-strict) export runs the model's Python as it is, so a branch on data
    (``if (mask == 1).all():``, common in attention-mask fast paths) needs a value it does not have.
    Dynamo traces the same code with its own rules (and libraries check ``is_torchdynamo_compiling()``
    to skip such fast paths), so it sometimes succeeds where the default fails; where it fails too,
    no split by shapes can help: the branch is on values, not on dims.
    """
    from .guard_split import _user_frame

    had = getattr(module, "device_context", None)
    try:
        if had is not None:
            module.device_context = False
        ep = torch.export.export(module, tuple(args), dynamic_shapes=(tuple(shapes),), strict=True)
        log.info("torch.export: the model branches on input data; exported through TorchDynamo (strict=True)")
        return ep
    except Exception as second:
        import traceback

        where = _user_frame(traceback.extract_tb(first.__traceback__))
        text = " ".join(str(first).split("consider using")[0].split())[:300]
        raise BackendError(
            f"torch.export cannot trace the model for profile {profile.describe()}: the model's code decides on a value "
            f"known only at run time, such as a branch on an input's values or a size computed through tensors ({text})"
            + (f", at {where}" if where else "")
            + f"; TorchDynamo's export failed too ({type(second).__name__}: {' '.join(str(second).split())[:200]})",
            "a model whose control flow depends on shapes only",
            "build from the model's ONNX file (`dynashape export`, then build the file: the exporter fixes the branch "
            "for the example's data, so check that branch is the one every input takes), or rewrite the branch "
            "with torch.cond or without reading values (a mask fast path can test `torch.compiler.is_compiling()`)",
        ) from first
    finally:
        if had is not None:
            module.device_context = had


def _example_tensor(torch: Any, like: Any, shape: tuple[int, ...], device: str) -> Any:
    g = torch.Generator().manual_seed(0)
    if like.dtype == torch.bool:
        t = torch.randint(0, 2, shape, generator=g).bool()
    elif like.dtype.is_floating_point:
        t = torch.rand(shape, generator=g).to(like.dtype)
    else:
        t = torch.randint(0, 2, shape, generator=g).to(like.dtype)
    return t.to(device)


def output_specs(ep: Any, inputs: Sequence[TensorSpec], names: Sequence[str]) -> list[TensorSpec]:
    """Output shapes from the exported program, with torch's symbols renamed to the model's dim names."""
    placeholders = [n for n in ep.graph.nodes if n.op == "placeholder" and n.name in ep.graph_signature.user_inputs]
    rename: dict[str, str] = {}
    for spec, node in zip(inputs, placeholders, strict=False):
        for axis, d in enumerate(node.meta["val"].shape):
            if not isinstance(d, int):
                rename.setdefault(str(d), _symbol(spec, axis))
                coeff, root = d.node.expr.as_coeff_Mul()
                if coeff != 1 and len(root.free_symbols) == 1:  # an aligned dim: step * root
                    rename.setdefault(str(root), f"({_symbol(spec, axis)}//{coeff})")
    out_node = next(n for n in ep.graph.nodes if n.op == "output")
    vals = [a.meta["val"] for a in out_node.args[0]]
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, rename)) + r")\b") if rename else None
    specs = []
    for name, v in zip(names, vals, strict=True):
        dims: list[int | str | None] = []
        for d in v.shape:
            if isinstance(d, int):
                dims.append(d)
            else:
                text = str(d)
                dims.append(pattern.sub(lambda m: rename[m.group(0)], text) if pattern else text)
        specs.append(TensorSpec(name, dtype_name(v.dtype), tuple(dims)))
    return specs


def merge_specs(per_profile: Sequence[Sequence[TensorSpec]]) -> list[TensorSpec]:
    """One spec per output over all profiles: a dim is static only if every profile fixes it alike."""
    merged = []
    for specs in zip(*per_profile, strict=True):
        dims: list[int | str | None] = []
        for ds in zip(*(s.shape for s in specs), strict=True):
            sym = next((d for d in ds if not isinstance(d, int)), None)
            dims.append(ds[0] if len(set(ds)) == 1 else sym)
        merged.append(TensorSpec(specs[0].name, specs[0].dtype, tuple(dims)))
    return merged


def _weights(ep: Any) -> dict[str, Any]:
    """Every tensor an exported program may ask for by FQN (parameters, buffers, lifted constants)."""
    out = {}
    for k, v in {**ep.state_dict, **ep.constants}.items():
        if hasattr(v, "detach"):
            out[k] = v.detach()
    return out


def _plan_profile(torch: Any, module: Any, source: Source, profile: Profile, settings: BuildSettings, align: Mapping[str, int],
                  exact: bool, k: int) -> tuple[list[PlannedPart], dict[str, Any] | None]:
    """One profile (or one sub-profile of a range split) exported as its parts: the aligned part, the
    general parts of its guard split, the gaps; and its alignment record for the manifest."""
    edges: list[dict[str, Any]] = []

    def edge_padding(d: FreeDim) -> bool:
        rec = edge_record(torch, source, profile, d)
        (log.info if rec["padding"]["safe"] else log.warning)(
            "profile: %s = %d is a trace of its own; padding it to %d %s: %s", d.name, d.lo, d.lo + 1,
            "instead" if rec["padding"]["safe"] else "is refused, so it gets its own packages", rec["padding"]["reason"])
        if rec["padding"]["safe"]:
            edges.append(rec)
        return bool(rec["padding"]["safe"])

    exported: list[list[PlannedPart]] = []  # the general parts, exported once

    def general() -> list[PlannedPart]:
        # NOTE: nearest resizes to symbolic sizes are traced as exact gathers on CUDA, where Triton's
        # approximate float division picked wrong source pixels (see resize) (the TorchDynamo
        # fallback export of data-dependent models runs under it too: not tried on the GPU with
        # such a model yet)
        if not exported:
            with exact_nearest(torch) if exact else contextlib.nullcontext():
                exported.append(export_profile(torch, module, source.inputs, profile, settings.device,
                                               source.example_inputs, edge_padding))
        return exported[0]

    def plan(everything_exact: bool) -> tuple[list[PlannedPart], dict[str, Any] | None]:
        with exact_nearest(torch) if everything_exact else contextlib.nullcontext():
            return plan_parts(torch, module, source, profile, align, settings.align_pad, general,
                              lambda i, shape: _example_tensor(torch, source.example_inputs[i], shape, settings.device))

    # the aligned parts are exported without the exact gathers where their resize ratios are
    # constants (see resize: the gathers cost time); else again under them (the general parts
    # already have them and are not exported twice)
    planned, record = plan(False)
    if exact:
        symbolic = [r for p in planned if p.program is not None for r in symbolic_nearest_ratios(p.program)]
        if symbolic:
            log.info("profile %d: nearest resizes with symbolic ratios in an aligned part (%s): exported again "
                     "with exact gathers", k, "; ".join(symbolic[:3]))
            planned, record = plan(True)
    if edges:  # the padded edge values ride in the profile's alignment record (the Aligner pads them)
        record = {**(record or {}), "dims": [*(record or {}).get("dims", []), *edges]}
    return planned, record


def _merge_records(records: Sequence[dict[str, Any] | None], inputs: Sequence[TensorSpec], whole: Profile) -> dict[str, Any] | None:
    """One alignment record for a profile built as sub-ranges (:mod:`.range_split`).

    NOTE: a split never cuts an aligned dim, so every sub-profile's aligned dims are the same; the
    record of the first sub-profile that built its aligned part stands for all (where another one's
    aligned trace was refused, its values run in its general parts, which serve padded values too).
    A padded edge value (a dim's lowest value, padded to the next) exists only in the sub-range that
    starts there, and is kept from that record (with the whole profile's max, as the manifest states it).
    """
    present = [r for r in records if r]
    if len(records) <= 1 or not present:
        return records[0] if records else None
    base = next((r for r in present if not r.get("skipped")), present[0])
    dims = [d for d in base.get("dims", []) if not d.get("edge")]
    his = {d.name: d.hi for d in free_dims(inputs, whole)}
    edges = [{**d, "hi": his.get(d["name"], d["hi"])} for r in present for d in r.get("dims", []) if d.get("edge")]
    return {**base, "dims": dims + list({(e["name"], e["lo"]): e for e in edges}.values())}


class InductorBackend(Backend):
    name = "inductor"
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "bf16")
    requires = ("torch", "pip install 'dynashape[torch]'")
    sources: ClassVar[tuple[str, ...]] = ("module",)
    compiles_native_code = True

    def build(self, source: Source, profiles: Sequence[Profile], settings: BuildSettings) -> Built:
        torch = require("torch", "the inductor backend")
        tuning = settings.tuning or "default"
        if tuning not in _TUNING:
            raise BackendError(f"tuning '{tuning}'", "one of: " + ", ".join(_TUNING))
        if settings.device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError(f"device '{settings.device}', but torch {torch.__version__} sees no CUDA device", "a machine with an NVIDIA GPU", "build with --device cpu")
        if settings.precision == "fp16" and settings.device == "cpu":
            log.warning("fp16 on the CPU is slow in most PyTorch CPU kernels; bf16 or fp32 are usually faster there")
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", cache_dir())
        dynamic = any(p[name].dynamic_axes for p in profiles for name in p)
        module, channels_last, dots = _make_compute_module(torch, source, settings, dynamic)
        exact = dynamic and settings.device.startswith("cuda")
        swapped = None
        if settings.attention in ("sdpa", "auto"):
            module, count, why_not = use_sdpa(torch, module, source.example_inputs, settings.device, settings.precision,
                                              strict=settings.attention == "sdpa")
            if why_not:
                log.warning("attention: %s", why_not)
            swapped = count if (count or settings.attention == "sdpa") else None
        align = dict(settings.align)
        kept = sorted(n for n, _ in settings.split if n in align)
        if kept:
            # NOTE: an aligned part pads by a rule per profile (see range_split); a user who names an
            # aligned dim in split is told, not silently ignored
            log.warning("split: %s %s aligned (align=%s), and aligned dims are not split; build with align={} to split them",
                        ", ".join(kept), "is" if len(kept) == 1 else "are", dict(settings.align))
        aligned: list[dict[str, Any] | None] = []
        splits: list[list[list[dict[str, Any]]] | None] = []
        # NOTE: per profile: a static profile beside a dynamic one (the remedy for a hot shape) keeps
        # Inductor's own choices, which is what its static engine was measured with
        added_to = [default_configs(torch, source, [p], settings, channels_last) for p in profiles]
        added = next((a for a in added_to if a), {})
        if added:
            log.info("inductor: %s for the free H/W of this conv net (setting either in inductor_config drops both)",
                     ", ".join(f"{k}={v}" for k, v in added.items()))
        configs = [{**_TUNING[tuning], **a, **dict(settings.inductor_config)} for a in added_to]  # one per profile
        if settings.share_weights:
            for c in configs:
                c["aot_inductor.package_constants_in_so"] = False
        payloads: dict[str, bytes] = {}
        unit_resizes = 0  # resizes of 1x1 maps rewritten as broadcasts, over all programs
        programs: list[Any] = []  # the exported programs to compile, each once
        owner: list[int] = []  # the profile each program belongs to
        unique: dict[int, int] = {}  # id(program) -> its index in programs
        package_of: dict[str, int] = {}  # payload name -> its program's index
        compiled: list[bytes] = []
        per_part: list[list[TensorSpec]] = []
        weights: dict[str, Any] = {}
        seconds: list[float] = []
        parts: list[ProfilePart] = []
        part_counts = []
        with tempfile.TemporaryDirectory(prefix="dynashape-aoti-") as tmp, torch.no_grad(), _tf32(torch, settings.tf32):
            for k, whole in enumerate(profiles):
                t = time.perf_counter()
                _progress.say(f"build: profile {k + 1} of {len(profiles)}: torch.export ({whole.describe()})")
                subs = sub_profiles(source.inputs, whole, settings.split, keep=list(align))
                if len(subs) > 1:
                    log.info("profile %d: split into %d sub-ranges, each compiled for its own opt: %s", k, len(subs),
                             "; ".join(range_split.describe(r) for _, r in subs))
                    splits.append(range_split.record([r for _, r in subs]))
                else:
                    splits.append(None)
                places = range_split.places_of(source.inputs, whole)
                records: list[dict[str, Any] | None] = []
                planned_all: list[PlannedPart] = []
                for profile, ranges in subs:
                    with exact_shape_arithmetic(torch):
                        planned, record = _plan_profile(torch, module, source, profile, settings, align, exact, k)
                    records.append(record)
                    if ranges:
                        planned = [dataclasses.replace(p, part=dataclasses.replace(p.part, dims=range_split.restrict(p.part.dims, ranges, places)))
                                   for p in planned]
                    planned_all += planned
                aligned.append(_merge_records(records, source.inputs, whole))
                packaged = [p for p in planned_all if p.program is not None]
                if len(packaged) > MAX_PROFILE_PARTS:
                    raise BackendError(f"profile {k} ({whole.describe()}) would be {len(packaged)} packages "
                                       f"({len(subs)} sub-ranges x the model's guard-split and aligned parts)",
                                       f"at most {MAX_PROFILE_PARTS} packages per profile (what an engine file holds)",
                                       "split into fewer sub-ranges, or narrow the profile")
                if any(r.dynamic_axes for _, r in whole.items()):
                    # NOTE: only where a dim is free: a static engine keeps Inductor's own graph (what it
                    # was measured with); each program once (parts may share a trace), before anything
                    # reads it; see resize.broadcast_unit_resizes
                    for ep in {id(p.program): p.program for p in packaged}.values():
                        unit_resizes += len(broadcast_unit_resizes(torch, ep))
                split = len(planned_all) > 1 or bool(planned_all[0].part.dims)
                if split:
                    log.info("profile %d: built as %d parts", k, len(packaged))
                for j, p in enumerate(packaged):
                    ep = p.program
                    per_part.append(output_specs(ep, source.inputs, [o.name for o in source.outputs]))
                    if settings.share_weights:
                        weights.update(_weights(ep))
                    name = part_payload(k, j)
                    if id(ep) not in unique:  # one compile per program: parts may share a trace
                        unique[id(ep)] = len(programs)
                        programs.append(ep)
                        owner.append(k)
                    package_of[name] = unique[id(ep)]
                    if split:
                        parts.append(dataclasses.replace(p.part, profile=k, payload=name))
                parts += [dataclasses.replace(p.part, profile=k) for p in planned_all if p.program is None]
                part_counts.append(len(packaged))
                seconds.append(time.perf_counter() - t)
            # NOTE: every profile is exported before anything is compiled, so that the compiles (the
            # larger share of a build) can run side by side (aoti_jobs)
            jobs = (aoti_jobs.auto_jobs(len(programs), max(map(aoti_jobs.program_bytes, programs), default=0))
                    if settings.jobs == "auto" else int(settings.jobs or 1))
            jobs = aoti_jobs.side_by_side(jobs, len(programs))
            paths = [os.path.join(tmp, f"package{i}.pt2") for i in range(len(programs))]
            program_configs = [configs[owner[i]] for i in range(len(programs))]
            try:
                compile_seconds = aoti_jobs.compile_all(torch, programs, paths, program_configs, tf32=settings.tf32, jobs=jobs, tmp=tmp)
            except Exception as e:
                if not added:
                    raise
                # NOTE: Inductor calls 3 tiles experimental ("may have bugs"): a compile that the build's
                # own settings break is done again without them, not failed for a setting nobody asked for
                log.warning("inductor: the compile failed with %s (%s: %s); compiling again without them",
                            ", ".join(f"{k}={v}" for k, v in added.items()), type(e).__name__, aoti_jobs.first_line(e))
                program_configs = [{k: v for k, v in c.items() if k not in added} for c in program_configs]
                added = {}
                compile_seconds = aoti_jobs.compile_all(torch, programs, paths, program_configs, tf32=settings.tf32, jobs=jobs, tmp=tmp)
            for i, path in enumerate(paths):
                seconds[owner[i]] += compile_seconds[i]
                with open(path, "rb") as f:
                    compiled.append(f.read())
            payloads.update({name: compiled[i] for name, i in package_of.items()})
            seconds = [round(x, 2) for x in seconds]
            log.info("profiles built in %s s (export and compile, per profile)", seconds)
        if settings.share_weights:
            buf = io.BytesIO()
            # NOTE: each tensor keeps its strides (a copy, compacted, in its own layout). The compiled
            # code was traced with these strides: channels-last convolution weights saved contiguous
            # made every convolution copy its weight back to channels-last on every call (seen on the
            # H200 as an ATen copy under each cudnn_convolution, in static and dynamic engines alike),
            # and a Triton kernel that reads a weight would read it with the wrong strides.
            torch.save({k: v.detach().to("cpu", copy=True) for k, v in weights.items()}, buf)
            payloads["weights.pt"] = buf.getvalue()
        data = {"tuning": tuning, "channels_last": channels_last, "shared_weights": settings.share_weights,
                "profile_build_seconds": seconds, "torch": torch.__version__}
        if jobs > 1:
            data["compile_jobs"] = jobs
        if any(n > 1 for n in part_counts):
            data["profile_parts"] = part_counts
        if any(aligned):
            data["alignment"] = aligned
        if any(splits):
            data["split"] = splits
        if dots:
            data["channel_dots"] = dots
        if unit_resizes:
            log.info("inductor: %d resize(s) of a 1x1 map computed as a broadcast", unit_resizes)
            data["unit_resizes"] = unit_resizes
        if added:
            data["inductor_defaults"] = [[k, v] for k, v in sorted(added.items())]
        if swapped is not None:
            data["attention"] = {"mode": "sdpa", "modules_swapped": swapped}
        return Built(payloads, source.inputs, merge_specs(per_part), data, parts)

    @classmethod
    def payload_names(cls, profiles: int, backend_data: dict[str, Any]) -> tuple[set[str], set[str]]:
        counts = backend_data.get("profile_parts") or [1] * profiles
        if not isinstance(counts, list) or len(counts) != profiles or not all(type(c) is int and 1 <= c <= 256 for c in counts):
            raise ValueError(f"backend_data.profile_parts = {str(counts)[:80]}, not {profiles} part counts from 1 to 256")
        names = {part_payload(k, j) for k in range(profiles) for j in range(counts[k] if k < len(counts) else 1)}
        if backend_data.get("shared_weights"):
            names.add("weights.pt")
        return names, names

    @classmethod
    def part_payloads(cls, profile: int, count: int) -> list[str]:
        return [part_payload(profile, j) for j in range(count)]

    def load(self, manifest: Manifest, payloads: dict[str, bytes]) -> Runner:
        torch = require("torch", "the inductor backend")
        device = manifest.device
        weights = None
        if "weights.pt" in payloads:
            weights = torch.load(io.BytesIO(payloads["weights.pt"]), map_location=device, weights_only=True)
        table = PartTable(manifest.inputs, manifest.parts)
        paths = [[_cached_file(payloads[part_payload(k, j)], part_payload(k, j)) for j in range(table.count(k))]
                 for k in range(len(manifest.profiles))]
        models = [[_load_package(torch, manifest, k, p, weights, single_threaded=False) for p in ps] for k, ps in enumerate(paths)]
        aligner = Aligner(manifest.inputs, manifest.outputs, manifest.backend_data.get("alignment") or [])
        return InductorRunner(models, device, weights, lambda k, j: _load_package(torch, manifest, k, paths[k][j], weights, single_threaded=True),
                              table, aligner or None)


def part_payload(profile: int, part: int) -> str:
    """The payload name of a profile's part: ``profile{k}.pt2`` for the first (the only one when not split)."""
    return f"profile{profile}.pt2" if part == 0 else f"profile{profile}.part{part}.pt2"


def _device_index(device: str) -> int:
    """AOTInductor's loader wants -1 for the current CUDA device, else the index of ``cuda:N``."""
    _, _, index = device.partition(":")
    return int(index) if index.isdigit() else -1


def _load_package(torch: Any, manifest: Manifest, k: int, path: str, weights: dict[str, Any] | None, *, single_threaded: bool) -> Any:
    """One profile's package, as torch's C++ loader (``run(list of tensors) -> list of tensors``).

    NOTE: we call ``torch._C._aoti.AOTIModelPackageLoader`` directly instead of
    ``torch._inductor.aoti_load_package``. The Python wrapper imports ``torch._inductor`` (and with
    it dynamo, sympy and, on a GPU machine, triton: 1.5 s here, several seconds there), and torch
    2.11's wrapper also validated the CPU's vector ISAs by compiling probe libraries and dlopen-ing
    each in a fresh Python process (10 processes, 36-48 s per load on the GPU machine). Neither is
    needed to run a package that holds its compiled ``.so``. The wrapper's ``__call__`` also parses
    the pytree call spec on every call; our packages take and return flat tensor lists, so
    ``run`` is called directly and the per-call cost goes with it.

    NOTE: the default (thread-safe) container synchronizes on a CUDA event after each run, and an
    event recorded during graph capture breaks every later call ("invalid argument"). Graph
    capture therefore uses a separate single-threaded container of the same package.
    """
    try:
        loader_cls = getattr(getattr(torch._C, "_aoti", None), "AOTIModelPackageLoader", None)
        if loader_cls is None:  # a torch build without the C++ loader binding
            model = torch._inductor.aoti_load_package(path, run_single_threaded=single_threaded).loader
        else:
            model = loader_cls(path, "model", single_threaded, 1, _device_index(manifest.device))
        if weights is not None:
            fqns = model.get_constant_fqns()
            missing = [f for f in fqns if f not in weights]
            if missing:
                raise BackendError(f"profile {k} needs weights {missing[:5]} that the engine's weights.pt lacks", "a complete engine", "rebuild the engine")
            # positional: (constants, use_inactive, check_full_update, user_managed), the same in torch 2.11 and 2.13
            model.load_constants({f: weights[f] for f in fqns}, False, True, True)
        return model
    except BackendError:
        raise
    except Exception as e:
        raise BackendError(
            f"torch {torch.__version__} cannot load profile {k} of this engine (built with torch "
            f"{manifest.library_versions.get('torch')}): {str(e).splitlines()[0][:500] if str(e) else type(e).__name__}",
            "an engine built by the same torch version on the same kind of machine",
            "rebuild the engine on this machine",
        ) from e


def _check_members(payload: bytes, name: str) -> None:
    """Refuse a package whose zip members could land outside the folder torch extracts it to.

    NOTE: torch's package loader writes each member to ``<folder>/<member name>``, so a name with
    ``..``, an absolute path or a drive letter writes elsewhere, and a symlink member points
    anywhere; none of that is in a package AOTInductor writes, so any of it is refused.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise EngineFileError(f"payload '{name}' is not a valid package ({e})", "an AOTInductor .pt2 (zip) package", "rebuild the engine") from e
    for info in infos:
        member = info.filename
        parts = re.split(r"[\\/]", member)
        why = ("an absolute path" if member.startswith(("/", "\\")) else
               "a drive letter" if re.match(r"[A-Za-z]:", member) else
               "a '..' component" if ".." in parts else
               "a symbolic link" if stat.S_ISLNK(info.external_attr >> 16) else None)
        if why:
            raise EngineFileError(f"payload '{name}' has the member {member!r}, {why}",
                                  "package members with relative names inside the package folder",
                                  "do not load this engine: it was not written by dynashape; rebuild it from the model")


def _cached_file(payload: bytes, name: str) -> str:
    """AOTInductor loads packages from paths: one file per payload in the private per-user cache.

    NOTE: the file is the one torch loads as native code, so it is never trusted for being there:
    its bytes are hashed on every load and a file that differs is replaced (atomically) by the
    payload, which the engine file's checks have already verified. The folder is this user's alone
    (:func:`dynashape._io.private_cache_dir`).
    """
    _check_members(payload, name)
    digest = hashlib.sha256(payload).hexdigest()
    path = os.path.join(private_cache_dir("aoti"), f"{digest}.pt2")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISREG(st.st_mode) and _file_sha256(path) == digest:
            return path
        log.warning("the cached package '%s' does not match its payload; replacing it", path)
        os.unlink(path)
    write_atomic(path, payload, what="package cache file", error=EngineFileError)
    return path


def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class InductorRunner(Runner):
    native = "torch"
    # NOTE: AOTInductor calls cuBLAS/cuDNN for matmuls and convolutions, which read PyTorch's
    # process-wide TF32 switches at run time (cuDNN's is on by default). The runner never writes
    # them: the engine's runtime applies the engine's policy at load and at graph capture
    # (dynashape._engine.torch_runtime), since a switch flipped around each call is seen by every
    # other thread's calls meanwhile.
    uses_torch_tf32: ClassVar[bool] = True

    def __init__(self, models: list[list[Any]], device: str, weights: dict[str, Any] | None,
                 load_single_threaded: Any = None, parts: PartTable | None = None, aligner: Aligner | None = None) -> None:
        self.models = models  # per profile, its parts' packages (one for a profile that is not split)
        self.device = device
        self.weights = weights  # kept alive: the packages use these tensors in place
        self._load_single_threaded = load_single_threaded
        self._capture_models: dict[tuple[int, int], Any] = {}
        self.parts = parts
        self.aligner = aligner  # pads dims of aligned, padding-safe profiles to their step

    def part(self, profile: int, inputs: Sequence[Any]) -> int:
        """The part of ``profile`` that serves these inputs (0 for a profile that is not split)."""
        if self.parts is None or (len(self.models[profile]) == 1 and not self.parts.gaps.get(profile)):
            return 0
        return self.parts.select(profile, [tuple(x.shape) for x in inputs])

    def run(self, profile: int, inputs: Sequence[Any]) -> list[Any]:
        if self.aligner is not None:
            xs, crop = self.aligner.pad(profile, inputs)
            if crop is not None:
                return crop(self.models[profile][self.part(profile, xs)].run(xs))
        return self.models[profile][self.part(profile, inputs)].run(list(inputs))

    def capture_runner(self) -> Runner:
        """A runner for CUDA graph capture: single-threaded containers, loaded on first use."""
        return _CaptureRunner(self)


class _CaptureRunner(Runner):
    native = "torch"

    def __init__(self, parent: InductorRunner) -> None:
        self.parent = parent

    def run(self, profile: int, inputs: Sequence[Any]) -> list[Any]:
        p = self.parent
        crop = None
        if p.aligner is not None:
            inputs, crop = p.aligner.pad(profile, inputs)
        key = (profile, p.part(profile, inputs))
        if key not in p._capture_models:
            p._capture_models[key] = p._load_single_threaded(*key)
        outs = p._capture_models[key].run(list(inputs))
        return outs if crop is None else crop(outs)
