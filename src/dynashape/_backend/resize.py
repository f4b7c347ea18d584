"""Nearest resizes to a symbolic size, with exact integer source indices.

``F.interpolate(x, size=..., mode="nearest")`` takes output pixel ``i`` from input pixel
``floor(i * (in / out))``. With symbolic sizes Inductor computes ``in / out`` inside the Triton kernel,
where an integer true division is a float32 division that Triton lowers to ``div.full.f32``, an
*approximate* division (its printer for ``IntTrueDiv`` writes ``a / b``; ``eager_numerics.division_rounding``
does not reach it). ``33 / 66`` then comes out just below 0.5, ``2 * scale`` just below 1, and output
row 2 takes input row 0 instead of 1. Found on an H200 (2026-11-30, torch 2.11): the seed segmentation
net's general package (the sizes that are not multiples of 32) was wrong by 0.10-0.41 of its largest
output at 131x257, 257x131, 200x300, 150x150 and 600x800 (sizes where ``out`` is a multiple of ``in``, so that
``i * in / out`` hits integers) and right at 777x1001; eager PyTorch, the CPU engines and the static
engines were right (``benchmarks/probe_nearest_index_gpu.py``, ``probe_general_package_gpu.py``). The
aligned package was right because its sizes are multiples of a common symbol, so the ratio simplifies.

:func:`exact_nearest` is a torch function mode that a build holds while ``torch.export`` traces the
model: each ``F.interpolate`` to a given ``size`` in mode ``nearest`` (or ``nearest-exact``) is traced
as a gather whose indices are eager's formula, ``floor(i * scale)``, with ``scale`` computed as a
float64 *tensor* division rounded to float32: a float64 division is IEEE-rounded in Triton (there is
no approximate one), so the scale is eager's ``(float)in / out`` and every index is eager's. (An
integer formula, ``(i * in) // out``, is exact but not eager: eager's float scale puts some outputs of
``nearest-exact`` one pixel lower, 80 -> 301 at output 150, so it would not match eager.)
Resizes by ``scale_factor`` are left as they are (their scale is a constant, not a symbolic ratio).

The gather costs time where it is not needed: in the seed net's aligned package (sizes ``32*k``, so
every ratio is ``1/2``) its resize kernels took 52 us a call at 1600x1600 against 17.6 us for the
static engine's (H200, 2026-11-30; 18 us before the gather). A build therefore exports the aligned
parts without the mode and checks them with :func:`symbolic_nearest_ratios`: only where one of their
nearest resizes has a ratio that is not a number after torch.export's simplification is the whole
profile exported under the mode again (``_backend/inductor.py``). A constant ratio is computed the
way a static engine computes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def _gather_nearest(torch: Any, x: Any, size: Any, exact_half: bool) -> Any:
    """Eager PyTorch's nearest source index, ``min(floor(i * scale), in - 1)`` (``floor((i + 0.5) *
    scale)`` for ``nearest-exact``) with ``scale = float32(in / out)``, where the division is a float64
    tensor division (IEEE in every Triton and C++ kernel) rounded to float32, not an integer true division."""
    spatial = x.dim() - 2
    sizes = [size] * spatial if isinstance(size, int) or not hasattr(size, "__len__") else list(size)
    for d, out in enumerate(sizes):
        axis = 2 + d
        size_in = x.shape[axis]
        scale = (torch.full((), size_in, dtype=torch.float64, device=x.device) / out).to(torch.float32)
        pos = torch.arange(out, device=x.device, dtype=torch.float32)
        if exact_half:
            pos = pos + 0.5
        idx = torch.clamp((pos * scale).floor().to(torch.int64), max=size_in - 1)
        x = x.index_select(axis, idx)
    return x


@contextlib.contextmanager
def exact_nearest(torch: Any) -> Iterator[None]:
    """While held, ``F.interpolate(x, size=..., mode="nearest" | "nearest-exact")`` is computed (and
    traced) with integer source indices; every other call is unchanged."""
    interpolate = torch.nn.functional.interpolate

    class ExactNearest(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            if func is interpolate:
                bound = _interpolate_args(args, kwargs)
                if (bound is not None and bound["mode"] in ("nearest", "nearest-exact") and bound["size"] is not None
                        and bound["scale_factor"] is None and 3 <= bound["input"].dim() <= 5):
                    return _gather_nearest(torch, bound["input"], bound["size"], bound["mode"] == "nearest-exact")
            return func(*args, **kwargs)

    with ExactNearest():
        yield


_NAMES = ("input", "size", "scale_factor", "mode", "align_corners", "recompute_scale_factor", "antialias")
_DEFAULTS = {"size": None, "scale_factor": None, "mode": "nearest", "align_corners": None, "recompute_scale_factor": None, "antialias": False}


def _interpolate_args(args: Any, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """``F.interpolate``'s arguments by name, or None where they are not the ones it takes."""
    if len(args) > len(_NAMES) or any(k not in _NAMES for k in kwargs):
        return None
    bound = {**_DEFAULTS, **dict(zip(_NAMES, args, strict=False)), **kwargs}
    return bound if "input" in bound else None


_NEAREST_OPS = ("upsample_nearest", "_upsample_nearest_exact")


def symbolic_nearest_ratios(ep: Any) -> list[str]:
    """The nearest resizes of an exported program whose size ratio (input over output, per spatial
    axis) is not a number: ``"node: in -> out"`` for each. Empty where every ratio is a constant
    (static sizes, or sizes that are multiples of a common symbol, as in an aligned part)."""
    import sympy

    found = []
    for n in ep.graph.nodes:
        if n.op != "call_function" or not any(k in str(n.target) for k in _NEAREST_OPS):
            continue
        src = n.args[0].meta.get("val") if n.args and hasattr(n.args[0], "meta") else None
        dst = n.meta.get("val")
        if src is None or dst is None or not hasattr(src, "shape") or not hasattr(dst, "shape"):
            found.append(f"{n.name}: shapes unknown")
            continue
        for a, b in zip(src.shape[2:], dst.shape[2:], strict=False):
            ea, eb = _expr(sympy, a), _expr(sympy, b)
            ratio = ea / eb
            if not ratio.is_number and not sympy.simplify(ratio).is_number:
                found.append(f"{n.name}: {ea} -> {eb}")
    return found


def _expr(sympy: Any, size: Any) -> Any:
    node = getattr(size, "node", None)
    return node.expr if node is not None else sympy.Integer(int(size))


#: ATen's resize ops (``F.interpolate``'s every mode), as they appear in an exported graph
_RESIZE_OPS = ("upsample_nearest", "_upsample_nearest_exact", "upsample_linear1d", "upsample_bilinear2d", "upsample_trilinear3d",
               "upsample_bicubic2d", "_upsample_bilinear2d_aa", "_upsample_bicubic2d_aa")


def broadcast_unit_resizes(torch: Any, ep: Any) -> list[str]:
    """Rewrite, in ``ep``'s graph, every resize of a map whose spatial sizes are all 1 (fixed, not
    symbolic) into an ``expand`` to the same size; returns the rewritten nodes' names.

    Such a resize copies one value per (batch, channel) to every output pixel, in every mode
    (nearest, linear, bilinear, bicubic, trilinear; with or without antialiasing; any ``align_corners``):
    the source indices all clamp to 0 and the weights sum to 1 (eager's weighted sum can differ from the
    value by a rounding, 1e-6 for bicubic in fp32; the broadcast is the value itself). It is the
    image-pooling branch of ASPP heads (torchvision's DeepLabV3: ``AdaptiveAvgPool2d(1)`` -> 1x1 conv
    -> bilinear resize to the feature map's size -> concatenation).

    NOTE (why): under symbolic output sizes Inductor keeps the resize's index arithmetic (the scale
    ``in / out``, ``arange``, ``clamp``, the weights) inside the kernel that consumes it. On an H200
    (run 8, torch 2.11, fp16) DeepLabV3-ResNet50's dynamic engine at 640x640 spent 101.9 us a call in
    the one kernel that concatenates the ASPP branches and holds that arithmetic (``..._add_arange_cat_clamp_
    ..._mul_relu_sub_view``), about ten times the time its 16 MB of traffic needs; a broadcast is read
    with no index arithmetic at all. Measured with and without it (H200, 2026-12-01,
    ``benchmarks/results/dynamic_tax_h200_2026-12-01_run9_*``): at 512x512 that kernel took 32.5 us a call
    against 67.6 us (the static engine's: 31.7 us), the engine's GPU time 1318 against 1381 us (static: 1328),
    and its tax against the static engine went from 0.966 to 1.002; built one at a time, 1.41 against 1.47 ms
    a call at 512x512 and 1.75 against 1.81 ms at 517x611.

    The ``expand`` is a view that repeats one element: an op that writes its input in place
    (``relu_``, which torch.export's graph keeps from ``nn.ReLU(inplace=True)``) fails on it, and a
    ``view`` may not fit its strides. So a resize is rewritten only where every op that uses its result
    only reads it (:func:`_reads_only`); a resize whose result is a graph output is left as it is too
    (the program's signature names that node).
    """
    graph = ep.graph_module.graph
    outputs = {a for n in graph.nodes if n.op == "output" for a in torch.utils._pytree.tree_leaves(n.args)}
    done = []
    for n in list(graph.nodes):
        if (n.op != "call_function" or not any(op in str(n.target) for op in _RESIZE_OPS) or n in outputs
                or not all(_reads_only(u, n) for u in n.users)):
            continue
        src = n.args[0] if n.args else None
        src_val, val = getattr(src, "meta", {}).get("val"), n.meta.get("val")
        if src_val is None or val is None or src_val.dim() != val.dim() or src_val.dim() < 3:
            continue
        if not all(type(d) is int and d == 1 for d in src_val.shape[2:]):
            continue
        size = n.args[1] if len(n.args) > 1 else n.kwargs.get("output_size")
        if size is None:  # resized by scale factors: the output's sizes are numbers, or it is not rewritten
            if not all(type(d) is int for d in val.shape[2:]):
                continue
            size = list(val.shape[2:])
        with graph.inserting_before(n):
            new = graph.call_function(torch.ops.aten.expand.default, (src, [-1, -1, *size]))
        new.meta = {**n.meta, "val": src_val.expand(val.shape)}
        n.replace_all_uses_with(new)
        graph.erase_node(n)
        done.append(n.name)
    if done:
        graph.lint()
        ep.graph_module.recompile()
    return done


def _reads_only(user: Any, node: Any) -> bool:
    """Whether the ATen op ``user`` only reads ``node``: every argument that ``node`` is passed in (or
    in a list passed in) has no alias annotation, so the op neither writes to it nor returns a view of
    it (``cat``, ``conv2d``, ``add_``'s ``other``; not ``relu_``'s ``self``, ``view`` or ``permute``).
    An op without a schema counts as not."""
    schema = getattr(user.target, "_schema", None) if user.op == "call_function" else None
    if schema is None:
        return False
    by_name = {a.name: a for a in schema.arguments}
    passed = [*zip(schema.arguments, user.args, strict=False), *((by_name.get(k), v) for k, v in user.kwargs.items())]
    for arg, value in passed:
        holds = value is node or (isinstance(value, (list, tuple)) and any(v is node for v in value))
        if holds and (arg is None or arg.alias_info is not None):
            return False
    return True
