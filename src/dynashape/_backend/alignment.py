"""Aligned profile parts: dims that step by a multiple, so Inductor knows their divisibility.

With ``align={"image_height": 32}`` a profile whose ``image_height`` is free gets an **aligned part**:
a package exported with the derived dim ``Dim("image_height_over_32") * 32``, so every size the
compiled kernels see is a known multiple of 32 (Inductor can then prove alignment for vectorized
loads and pick tilings that divide the size). It is a guard-split part like the others
(:class:`~dynashape._records.ProfilePart`, ``image_height % 32 in {0}``) and the runtime picks it by
the input shape (:class:`~dynashape._engine.selection.PartTable`, first matching part wins).

What serves the other sizes depends on whether the model is **padding-safe** along that dim (its
outputs at the real positions are equal with and without zero padding at the end of the dim),
decided before anything is compiled by the planner's check (:func:`dynashape._plan.padding.check_padding`)
on the fp32 source model at the profile's small sizes:

- safe (a batch dim nearly always; a masked sequence dim) and ``align_pad=True``: one package only.
  The aligned part covers the multiples up to the first multiple at or above the profile's max; a
  request whose dim is not a multiple is padded to the next multiple at run time and its outputs
  cropped back (:class:`Aligner`, the planner's ``pad_array``/``crop_array``);
- otherwise (conv nets along H/W: zero padding at the bottom/right border changes the border
  outputs, and global pooling averages the zeros in): the aligned part serves the multiples and a
  **general part** (the profile exported as without alignment, guard-split if the model needs it)
  serves the rest. Two compiles instead of one.

NOTE: the padding verdict is taken in fp32 on the source model, where the engine may run fp16 on a
GPU: padding safety is a property of the model's structure (which positions reach which outputs),
not of the precision. The engine's own validation still compares every profile's min/opt/max.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import BackendError
from .._plan.padding import check_padding, crop_array, pad_array
from .._plan.record import Ladder, Padding
from .._profiles import Profile
from .._records import DimClass, ProfilePart, Source
from .._specs import TensorSpec, identifier
from .conv_layout import attr_tensor
from .guard_split import FreeDim, PlannedPart, dim_symbol, failing_guards, free_dims

log = logging.getLogger("dynashape")

#: fp32 eager on the source model (see dynashape._plan.attach.TOLERANCE)
_ATOL, _RTOL = 1e-4, 1e-4


@dataclass
class AlignedDim:
    """One aligned dim of one profile: its step, the range of the aligned part, and the padding verdict."""

    name: str
    step: int
    places: list[tuple[int, int]]  # (input index, axis)
    lo: int  # the profile's range
    hi: int
    padding: Padding | None = None  # None: padding was not asked for

    @property
    def pads(self) -> bool:
        return self.padding is not None and self.padding.safe

    @property
    def k_range(self) -> tuple[int, int]:
        """The multipliers the aligned part serves: multiples inside the range, or, when padding is
        safe, up to the first multiple at or above the max (every value pads up to one)."""
        klo = max(1, math.ceil(self.lo / self.step))
        khi = math.ceil(self.hi / self.step) if self.pads else self.hi // self.step
        return klo, khi

    def to_json(self) -> dict[str, Any]:
        klo, khi = self.k_range
        return {"name": self.name, "step": self.step, "lo": self.lo, "hi": self.hi, "aligned": [klo * self.step, khi * self.step],
                "padding": None if self.padding is None else self.padding.to_json()}


def aligned_dims(inputs: Sequence[TensorSpec], profile: Profile, align: Mapping[str, int]) -> list[AlignedDim]:
    """The profile's free dims that ``align`` names and whose range holds at least one multiple of the step."""
    out = []
    for d in free_dims(inputs, profile):
        step = align.get(d.name)
        if step is None or step < 2:
            continue
        a = AlignedDim(d.name, int(step), d.places, d.lo, d.hi)
        if a.hi // a.step >= max(1, math.ceil(a.lo / a.step)):
            out.append(a)
        else:
            log.info("align: %s has no multiple of %d in %d..%d; not aligned", d.name, step, d.lo, d.hi)
    return out


def padding_verdict(torch: Any, source: Source, profile: Profile, dim: AlignedDim) -> Padding:
    """Whether zero padding along ``dim`` keeps the source model's outputs at the real positions.

    Runs the fp32 source model (eager, on its own device) at the profile's min for every other dim,
    through the planner's check with two buckets: ``lo -> first multiple`` and
    ``first multiple + 1 -> next multiple``.
    """
    step = dim.step
    m1 = max(1, math.ceil(dim.lo / step)) * step
    top = math.ceil(dim.hi / step) * step
    buckets = (m1, m1 + step) if m1 + step <= top else (m1,)
    base: dict[str, int] = {}
    for spec in source.inputs:
        r = profile[spec.name]
        for axis, d in enumerate(spec.shape):
            if isinstance(d, str):
                base.setdefault(d, r.min[axis])
    ladder = Ladder(dim.name, buckets, tuple(tuple(sorted({**base, dim.name: b}.items())) for b in buckets))
    module = source.module
    device = next((p.device for p in module.parameters()), torch.device("cpu"))

    def run(feed: Mapping[str, Any]) -> list[Any]:
        args = [torch.from_numpy(feed[s.name]).to(device) for s in source.inputs]
        with torch.no_grad():
            outs = module(*args)
        return [o.detach().float().cpu().numpy() if o.is_floating_point() else o.cpu().numpy() for o in outs]

    return check_padding(run, source.inputs, [o.name for o in source.outputs], ladder, low=dim.lo, atol=_ATOL, rtol=_RTOL)


def edge_record(torch: Any, source: Source, profile: Profile, d: FreeDim) -> dict[str, Any]:
    """The alignment record that pads dim ``d``'s lowest value to the next one (and only that value),
    with the padding verdict of the source model: step ``lo + 1``, served multiples ``[lo + 1, lo + 1]``.

    For the guard split's edge classes (:func:`dynashape._backend.guard_split.split_profile`); the
    :class:`Aligner` pads a value up to the next multiple of the step when that multiple is at most the
    top of ``aligned``, so ``lo`` pads to ``lo + 1`` and no other value is touched.
    """
    step = d.lo + 1
    verdict = padding_verdict(torch, source, profile, AlignedDim(d.name, step, d.places, d.lo, d.hi))
    return {"name": d.name, "step": step, "lo": d.lo, "hi": d.hi, "aligned": [step, step], "padding": verdict.to_json(),
            "edge": True}


def export_aligned(torch: Any, module: Any, inputs: Sequence[TensorSpec], profile: Profile, dims: Sequence[AlignedDim],
                   make_example: Callable[[int, tuple[int, ...]], Any]) -> PlannedPart:
    """``torch.export`` the aligned part: ``Dim(k) * step`` for aligned dims, ``Dim(min, max)`` for the rest."""
    Dim = torch.export.Dim
    by_name = {d.name: d for d in dims}
    named: dict[str, Any] = {}
    shapes, args = [], []
    for i, spec in enumerate(inputs):
        r = profile[spec.name]
        axes: dict[int, Any] = {}
        example = list(r.opt)
        for axis in r.dynamic_axes:
            lo, opt, hi = r.dim(axis)
            sym = dim_symbol(spec, axis)
            a = by_name.get(sym)
            if a is None:
                if sym not in named:
                    named[sym] = Dim(identifier(sym), min=lo, max=hi)
                axes[axis] = named[sym]
                example[axis] = opt if opt >= 2 else min(2, hi)
                continue
            klo, khi = a.k_range
            # NOTE: the example's multiplier avoids 1 (torch.export specializes a root dim traced at 0 or 1)
            k = min(max(round(opt / a.step), klo, 2 if khi >= 2 else klo), khi)
            example[axis] = k * a.step
            if klo < khi:
                if sym not in named:
                    named[sym] = Dim(identifier(f"{sym}_over_{a.step}"), min=klo, max=khi) * a.step
                axes[axis] = named[sym]
        shapes.append(axes or None)
        args.append(make_example(i, tuple(example)))
    program = torch.export.export(module, tuple(args), dynamic_shapes=(tuple(shapes),))
    classes = []
    for a in dims:
        klo, khi = a.k_range
        places = tuple((inputs[i].name, axis) for i, axis in a.places)
        classes.append(DimClass(a.name, places, klo * a.step, khi * a.step, a.step, (0,)))
    return PlannedPart(ProfilePart(-1, tuple(classes)), program)


def _root_ranges(inputs: Sequence[TensorSpec], profile: Profile, dims: Sequence[AlignedDim]) -> dict[tuple[int, int], tuple[int, int]]:
    """(input index, axis) -> the range of torch's root symbol there: ``k`` for an aligned dim, the dim's own range else."""
    by_name = {d.name: d for d in dims}
    out: dict[tuple[int, int], tuple[int, int]] = {}
    for i, spec in enumerate(inputs):
        r = profile[spec.name]
        for axis in r.dynamic_axes:
            a = by_name.get(dim_symbol(spec, axis))
            lo, _, hi = r.dim(axis)
            out[(i, axis)] = a.k_range if a is not None else (lo, hi)
    return out


def plan_parts(torch: Any, module: Any, source: Source, profile: Profile, align: Mapping[str, int], pad: bool,
               export_general: Callable[[], list[PlannedPart]],
               make_example: Callable[[int, tuple[int, ...]], Any]) -> tuple[list[PlannedPart], dict[str, Any] | None]:
    """The profile's parts with alignment: the aligned part first (the runtime takes the first part
    that contains a shape), then the general parts unless padding covers every value.

    Returns the parts and the record for the manifest (None when no dim of the profile is aligned).
    """
    dims = aligned_dims(source.inputs, profile, align)
    if not dims:
        return export_general(), None
    if pad:
        for a in dims:
            a.padding = padding_verdict(torch, source, profile, a)
            (log.info if a.pads else log.warning)("align: padding along '%s' %s: %s", a.name,
                                                  "is safe" if a.pads else "refused", a.padding.reason)
    record: dict[str, Any] = {"dims": [a.to_json() for a in dims]}
    try:
        aligned = export_aligned(torch, module, source.inputs, profile, dims, make_example)
        # NOTE: torch.export accepts a guard over several dims (torch 2.13) and keeps it only as a
        # check in ep.module(), which the package does not run: an aligned trace whose guards fail at
        # some multiples would serve them with the other branch's result. Such a profile is built
        # unaligned (the general part splits by those guards).
        failing = failing_guards(aligned.program, _root_ranges(source.inputs, profile, dims))
        if failing:
            raise BackendError(f"the aligned trace holds only where {'; '.join(failing)[:300]}",
                               "a trace of the aligned dims valid at every multiple")
    except Exception as e:
        # NOTE: a model that guards the dim (a parity test, say) may refuse the derived dim; the
        # profile is then built as without alignment, and the manifest says why.
        why = " ".join(str(e).split())[:400]
        log.warning("align: torch.export refuses the aligned dims (%s); building the profile unaligned", why)
        record["skipped"] = why
        return export_general(), record
    general = [] if all(a.pads for a in dims) else export_general()
    record["general_part"] = bool(general)
    return [aligned, *general], record


def part_lines(record: dict[str, Any]) -> list[str]:
    """What ``inspect`` prints for one profile's alignment record."""
    lines = []
    for d in record.get("dims", ()):
        pad = d.get("padding")
        if d.get("edge"):
            lines.append(f"    {d['name']} = {d['lo']} runs padded to {d['step']} (torch's trace at {d['lo']} is valid there "
                         f"alone; padding is safe: {pad['reason'] if pad else '?'})")
            continue
        how = ("not padded" if pad is None else
               f"padded to the next multiple ({pad['reason']})" if pad["safe"] else f"padding refused ({pad['reason']})")
        lines.append(f"    aligned: {d['name']} by {d['step']} (package for {d['aligned'][0]}..{d['aligned'][1]}), other values "
                     f"{'pad up' if pad and pad['safe'] else 'run in the general part'}; {how}")
    if record.get("skipped"):
        lines.append(f"    alignment skipped: torch.export refused the derived dims ({record['skipped'][:200]})")
    return lines


class Aligner:
    """Run-time padding for profiles whose aligned dims are padding-safe: pad to the next multiple, crop back."""

    def __init__(self, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec], records: Sequence[dict[str, Any] | None]) -> None:
        self.out_names = [o.name for o in outputs]
        #: per profile: [(step, cap, places, pad values per input, crops per output)]
        self.rules: list[list[tuple[int, int, list[tuple[int, int]], list[float], list[tuple[tuple[int, int, int], ...]]]]] = []
        for rec in records:
            rules = []
            for d in (rec or {}).get("dims", ()):
                if (rec or {}).get("skipped") and not d.get("edge"):
                    continue  # the aligned package was not built; a padded edge value still pads
                pad = d.get("padding")
                if not pad or not pad["safe"]:
                    continue
                padding = Padding.from_json(pad)
                places = [(i, a) for i, s in enumerate(inputs) for a, n in enumerate(s.shape) if n == d["name"]]
                values = [float(padding.pad_values.get(s.name, 0.0)) for s in inputs]
                crops = [tuple(padding.crop.get(n, ())) for n in self.out_names]
                rules.append((int(d["step"]), int(d["aligned"][1]), places, values, crops))
            self.rules.append(rules)

    def __bool__(self) -> bool:
        return any(self.rules)

    def pad(self, profile: int, inputs: Sequence[Any]) -> tuple[list[Any], Callable[[list[Any]], list[Any]] | None]:
        """The inputs padded to the next multiple where needed, and the crop for the outputs (None: nothing padded)."""
        rules = self.rules[profile] if profile < len(self.rules) else ()
        xs = list(inputs)
        done = []
        for step, cap, places, values, crops in rules:
            i0, a0 = places[0]
            v = int(xs[i0].shape[a0])
            t = -(-v // step) * step
            if t == v or t > cap:
                continue
            for i in {i for i, _ in places}:
                axes = [a for j, a in places if j == i]
                xs[i] = pad_array(xs[i], axes, t, values[i])
            done.append((crops, v))
        if not done:
            return xs, None

        def crop(outs: list[Any]) -> list[Any]:
            for crops, v in done:
                outs = [crop_array(o, c, v) for o, c in zip(outs, crops, strict=True)]
            return outs

        return xs, crop


#: the step of the automatic alignment (``align="auto"``, the default for inductor on CUDA)
AUTO_STEP = 32


def is_conv_net(torch: Any, module: Any) -> bool:
    """A module with a 2-D convolution: what the CUDA defaults (channels-last, aligned H and W) apply to.

    That is an ``nn.Conv2d``, or, in a model imported from ONNX (``dynashape.onnx.importer``, an FX
    graph whose nodes name their ONNX node), a ``Conv`` node with a 4-D weight.
    NOTE: imported models were left out until 2026-11-30 (their convolutions are functional calls),
    so an ONNX conv net built with inductor on CUDA ran in the contiguous layout, which on an H100
    ran a dynamic ResNet-50 at batch 64 in 4.38 ms against 2.98 ms channels-last (BENCHMARKS.md).
    """
    if any(isinstance(m, torch.nn.Conv2d) for m in module.modules()):
        return True
    for m in module.modules():
        if not isinstance(m, torch.fx.GraphModule):
            continue
        for n in m.graph.nodes:
            origin = n.meta.get("onnx_node")
            if n.op == "call_function" and isinstance(origin, tuple) and origin[1] == "Conv" and len(n.args) > 1:
                w = attr_tensor(m, n.args[1])
                if w is not None and w.dim() == 4:
                    return True
    return False


def auto_align(torch: Any, source: Source, profiles: Sequence[Profile]) -> dict[str, int]:
    """The alignment that ``align="auto"`` gives a CUDA inductor build: the spatial dims of a conv net.

    The spatial dims are axes 2 and 3 of the 4-D floating inputs (NCHW, PyTorch's convention) of a
    module that holds a ``Conv2d``, when they are named dynamic dims and some profile's range of
    them holds two or more multiples of :data:`AUTO_STEP`. Batch and sequence dims are left alone.

    NOTE (why this default): measured on an H200 (fp16, CUDA graphs; BENCHMARKS.md, "the dynamic
    tax"), the aligned package ran the seed segmentation net at 1600x1600 in 0.589 ms against 0.766 ms
    (a static engine: 0.502 ms) and at 1024x1024 in 0.296 against 0.385 ms; odd sizes, served by the
    general package, ran as before (777x1001: 0.305 against 0.311 ms); ResNet-50 (batch and H/W
    dynamic) was unchanged within 1%. The aligned package is one more compile per profile (build
    108 s against 102 s for the segmentation net, 209 against 201 s for ResNet-50, built side by side).
    """
    if source.module is None or not is_conv_net(torch, source.module):
        return {}
    spatial = {d for spec in source.inputs if len(spec.shape) == 4 and spec.dtype.startswith(("float", "bfloat"))
               for d in spec.shape[2:] if isinstance(d, str)}
    out: dict[str, int] = {}
    for d in sorted(spatial):
        for p in profiles:
            ranges = dict(p.items())
            spans = [(ranges[s.name].min[a], ranges[s.name].max[a]) for s in source.inputs if s.name in ranges
                     for a, x in enumerate(s.shape) if x == d]
            if not spans:
                continue
            lo, hi = max(lo for lo, _ in spans), min(hi for _, hi in spans)
            if hi // AUTO_STEP - max(1, math.ceil(lo / AUTO_STEP)) + 1 >= 2:
                out[d] = AUTO_STEP
    return out


def check_align(align: Mapping[str, Any] | None, inputs: Sequence[TensorSpec]) -> tuple[tuple[str, int], ...]:
    """``align`` as sorted ``(dim name, step)`` pairs, checked against the model's named dims."""
    if not align:
        return ()
    names = sorted({d for s in inputs for d in s.shape if isinstance(d, str)})
    out = []
    for name, step in align.items():
        if name not in names:
            raise BackendError(f"align names the dim '{name}', which no input has",
                               "one of the model's named dims: " + (", ".join(names) or "(none: the model has no named dims)"),
                               "use the dim names that `dynashape inspect` shows, e.g. align={'batch': 8}")
        if isinstance(step, bool) or not isinstance(step, int) or not 2 <= step <= 1024:
            raise BackendError(f"align step {step!r} for '{name}'", "an integer from 2 to 1024 (8, 16 or 32 are typical)")
        out.append((str(name), int(step)))
    return tuple(sorted(out))
