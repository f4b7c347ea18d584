"""The dynamic tax on real vision networks, lever by lever, in one run on one GPU.

Per model, in one timing process on one GPU (fp16, inputs already on the GPU, CUDA events, median):
  eager                 ``model.half().cuda().eval()`` (channels-last for conv nets) under ``torch.inference_mode()``
  static                an engine with min = opt = max at each measured shape, built with dynashape's defaults
  dynamic               the plain dynamic engine without any lever (``align={}``, ``attention="default"``)
  dynamic+defaults      the dynamic engine a user gets: conv nets' H/W aligned by 32 on CUDA (an aligned
                        package beside the general one), ``nn.MultiheadAttention`` as one SDPA call
  dynamic+<lever>       the defaults plus one more lever: Inductor's ``pad_dynamic_shapes``,
                        ``assume_32bit_indexing``, ``force_layout_optimization`` (Inductor turns its
                        channels-last layout pass off when convolutions have symbolic sizes),
                        coordinate-descent tuning (the seed segmentation net; ResNet-50: layout),
                        the range split (``split="auto"``: each sub-range of the batch compiled at
                        its own opt; the batch-dynamic models and ViT-B/16)
each without and with CUDA graphs, over a sweep of shapes (odd ones included); plus a torch.profiler
table of the top kernels by CUDA time at one shape per model, with the time in copy/clone kernels.

The engines are built first, in parallel child processes (``--jobs``; each saves an engine file),
then loaded and timed in this process (public API only: ``load``, ``with_options``, ``run``).

On the GPU machine (about 6-7 minutes on an H200 with the default models):

    PYTHONPATH=src CXX=/usr/bin/g++ CC=/usr/bin/gcc python benchmarks/dynamic_tax_gpu.py --out "${OUT:-benchmarks/results}"

``--models all`` adds ConvNeXt-T, EfficientNet-B0, MobileNetV3-L, Swin-T (dynamic batch) and FCN/DeepLabV3-ResNet50
(dynamic H/W); ``--budget-s`` (default 400) stops starting builds and timings when it runs out and reports
what was skipped. Writes ``dynamic_tax_<date>.json`` and ``.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _common import calibrate_batchnorm, geomean, machine_info, md_table, today, write_atomic, write_json  # noqa: E402

ALIGN_HW = {"image_height": 32, "image_width": 32}


@dataclass
class Config:
    """One model: its input, the dynamic profile, the shapes to time, the static shapes and the engine variants."""

    key: str
    label: str
    make: str  # "torchvision:<name>" or "zoo:<name>"
    input_name: str
    axes: dict[int, str]
    profile: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]
    shapes: list[tuple[int, ...]]
    static: list[tuple[int, ...]]
    variants: dict[str, dict[str, Any]]  # name -> build kwargs; "base" is the plain dynamic engine
    profile_shape: tuple[int, ...] = ()
    extra: bool = False
    conv: bool = True
    onnx: bool = False  # built from the model exported to ONNX (dynashape's importer), not from the module
    notes: list[str] = field(default_factory=list)


def configs() -> list[Config]:
    """The models. Variants: ``base`` is the engine without any lever (``align={}``,
    ``attention="default"``); every other variant starts from dynashape's build defaults (alignment of
    conv nets' H/W by 32 on CUDA, ``attention="auto"``; since 2026-11-30; ND tiling for conv nets with free
    H/W on CUDA, since 2026-12-01) and adds its own keys
    (``inductor``: ``inductor_config`` for the build). The static engines are built with the
    defaults too, so the tax of ``defaults`` is what a user of the defaults pays."""
    hw = {2: "image_height", 3: "image_width"}
    seg_shapes = [(1, 3, 512, 512), (1, 3, 600, 800), (1, 3, 777, 1001), (1, 3, 1024, 1024), (1, 3, 1600, 1600)]
    # Inductor turns off its channels-last layout optimization for graphs whose convolutions have
    # symbolic sizes (torch/_inductor/graph.py, decide_layout_opt: "perf regression with dynamic
    # shape", pytorch issue 102670); static engines keep it
    force_layout = {"inductor": {"force_layout_optimization": True}}
    # Inductor skips its tiling analysis for symbolic sizes (triton.coalesce_tiling_analysis "does not
    # yet apply to dynamic shapes"): a pointwise kernel then divides one flat index by the symbolic
    # sizes; ND tiling gives each dim its own program axis (benchmarks/probe_tiling_gpu.py)
    # (prefer_nd_tiling alone kept 2 tiles and made FCN's upsample 319 us at 768x768 against 135: with 3).
    # Since run 7 (2026-12-01) the default for conv nets with free H/W (dynashape._backend.inductor.
    # default_configs): for them this variant is the defaults again; it differs for the batch-only nets
    nd_tiling = {"inductor": {"triton.prefer_nd_tiling": True, "triton.max_tiles": 3}}
    # the defaults before run 7: a user key drops the ND-tiling default as a unit, so this is Inductor's own tiling
    no_nd_tiling = {"inductor": {"triton.prefer_nd_tiling": False}}
    out = [
        Config("segmentation", "seed segmentation net (dynashape.zoo), dynamic H/W", "zoo:segmentation", "input_1", hw,
               ((1, 3, 512, 512), (1, 3, 1024, 1024), (1, 3, 1600, 1600)), seg_shapes, seg_shapes,
               {"base": {}, "defaults": {},
                # index arithmetic and strides under symbolic sizes: the resize kernels are where the tax is
                "pad_dynamic_shapes": {"inductor": {"pad_dynamic_shapes": True}},
                "int32_indexing": {"inductor": {"assume_32bit_indexing": True}},
                "cd": {"tuning": "coordinate-descent"},
                "force_layout": force_layout,
                "nd_tiling": nd_tiling,
                # the defaults without the one-channel 1x1 head as a channel dot (dynashape._backend.conv_layout)
                "no_dot": {"no_dot": True}},
               (1, 3, 1600, 1600)),
        # the same net through ONNX: the importer's functional convolutions (since run 5 a conv net for
        # the CUDA defaults: channels-last, aligned H/W, the channel-dot head)
        Config("segmentation_onnx", "seed segmentation net exported to ONNX and imported, dynamic H/W", "zoo:segmentation", "input_1", hw,
               ((1, 3, 512, 512), (1, 3, 1024, 1024), (1, 3, 1600, 1600)), seg_shapes, seg_shapes, {"defaults": {}},
               (1, 3, 1600, 1600), extra=True, onnx=True),
        Config("resnet50", "ResNet-50 (torchvision, random weights), dynamic batch + H/W", "torchvision:resnet50", "image",
               {0: "batch", **hw}, ((1, 3, 160, 160), (8, 3, 224, 224), (32, 3, 384, 384)),
               [(1, 3, 160, 160), (8, 3, 224, 224), (8, 3, 257, 301), (32, 3, 224, 224)],
               [(1, 3, 160, 160), (8, 3, 224, 224), (8, 3, 257, 301), (32, 3, 224, 224)],
               # without a lever: measured in the run of 2026-11-30 (alignment changed nothing within 1%)
               {"defaults": {}, "force_layout": force_layout, "no_nd_tiling": no_nd_tiling}, (8, 3, 224, 224)),
        Config("vit_b_16", "ViT-B/16 (torchvision, random weights), dynamic batch", "torchvision:vit_b_16", "image", {0: "batch"},
               ((1, 3, 224, 224), (16, 3, 224, 224), (64, 3, 224, 224)),
               [(1, 3, 224, 224), (13, 3, 224, 224), (32, 3, 224, 224), (64, 3, 224, 224)],
               [(1, 3, 224, 224), (13, 3, 224, 224), (32, 3, 224, 224)],
               {"base": {}, "defaults": {}, "split": {"split": "auto"}}, (32, 3, 224, 224), conv=False),
    ]
    batch = ((1, 3, 224, 224), (16, 3, 224, 224), (64, 3, 224, 224))
    # the range split (build(split="auto")): batch 1..64 as 1..4 (opt 2), 5..16 (opt 16), 17..64 (opt 33),
    # each package tuned at its own opt; batch 1 and 32 fall in the sub-ranges that the user's opt (16) is not in
    split = {"split": "auto"}
    for name, label in (("convnext_tiny", "ConvNeXt-T"), ("efficientnet_b0", "EfficientNet-B0"),
                        ("mobilenet_v3_large", "MobileNetV3-L"), ("swin_t", "Swin-T")):
        # with a dynamic batch only, alignment and attention do not apply (no free H/W, no
        # nn.MultiheadAttention): the defaults are the plain dynamic engine; a symbolic batch alone
        # already turns Inductor's layout pass off, hence the layout lever
        out.append(Config(name, f"{label} (torchvision), dynamic batch", f"torchvision:{name}", "image", {0: "batch"}, batch,
                          [(1, 3, 224, 224), (13, 3, 224, 224), (32, 3, 224, 224)],
                          [(1, 3, 224, 224), (13, 3, 224, 224), (32, 3, 224, 224)],
                          {"defaults": {}, "force_layout": force_layout, "split": split, "nd_tiling": nd_tiling}, (32, 3, 224, 224), extra=True))
    for name, label in (("fcn_resnet50", "FCN-ResNet50"), ("deeplabv3_resnet50", "DeepLabV3-ResNet50")):
        out.append(Config(name, f"{label} (torchvision), dynamic H/W", f"torchvision:segmentation.{name}", "image", hw,
                          ((1, 3, 384, 384), (1, 3, 512, 512), (1, 3, 768, 768)),
                          [(1, 3, 512, 512), (1, 3, 640, 640), (1, 3, 517, 611)], [(1, 3, 512, 512), (1, 3, 517, 611)],
                          # int32_indexing: with ND tiling (the default since run 7) FCN's upsample was still 3x
                          # the static one's (34 against 11 us at 512x512), its index math in 64 bits
                          {"defaults": {}, "force_layout": force_layout, "no_nd_tiling": no_nd_tiling,
                           "int32_indexing": {"inductor": {"assume_32bit_indexing": True}},
                           # DeepLabV3's ASPP resizes its image-pooling branch (a 1x1 map) to the feature map:
                           # the defaults compute it as a broadcast since the ninth session; FCN has no such resize
                           **({"no_unit_resize": {"no_unit_resize": True}} if name == "deeplabv3_resnet50" else {}),
                           # the graph's 4-D output as a clone node: ``.contiguous()`` leaves none where torch 2.11's
                           # export sees contiguous strides, and the packages wrote the 21 classes channels-last,
                           # which the runtime then copies (run 9); the clone is not measured yet
                           "clone_output": {"clone_output": True}},
                          (1, 3, 512, 512), extra=True))
    return out


def make_model(spec: str) -> Any:
    kind, _, name = spec.partition(":")
    if kind == "zoo":
        from dynashape import zoo

        return zoo.get(name).make().eval()
    import torchvision

    mod: Any = torchvision.models
    for part in name.split("."):
        mod = getattr(mod, part)
    kwargs = {"weights": None}
    if "segmentation" in name:
        kwargs["weights_backbone"] = None
    import torch

    torch.manual_seed(0)
    model = mod(**kwargs).eval()
    # NOTE: torchvision zero-initializes some heads (ViT's classifier): the outputs are then all zero
    # and every comparison with eager passes vacuously. Random weights there keep the check honest.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2 and not bool(p.any()):
                p.normal_(0.0, 0.02)
    # NOTE: since run 7: BatchNorm statistics from data, or EfficientNet-B0's and MobileNetV3's outputs are
    # 0 in fp16 and the comparison with eager checks nothing (see calibrate_batchnorm). Runs 2-6 timed the
    # models without it (the same kernels).
    return calibrate_batchnorm(model, (4, 3, 224, 224) if "segmentation" not in name else (2, 3, 256, 256))


# ------------------------------------------------------------------------------------------------
# Building (child processes)
# ------------------------------------------------------------------------------------------------


def build_child(key: str, variant: str, path: str) -> None:
    """Build one engine and save it; prints one JSON line (build seconds)."""
    import torch

    import dynashape
    from dynashape import Profile

    # NOTE: builds run beside the timing process of another model (or another GPU's run): lower
    # priority, so that they take the CPU the timing does not need
    os.nice(10)
    cfg = next(c for c in configs() if c.key == key)
    model = make_model(cfg.make)
    # NOTE: "base" is the engine without a lever (align={}, attention="default"); every other engine,
    # the static ones included, starts from dynashape's defaults and adds its own keys
    no_lever: dict[str, Any] = {"align": {}, "attention": "default"}
    spec = dict(cfg.variants.get(variant, {}))
    patches = spec.pop("inductor", {})
    if spec.pop("no_unit_resize", False):
        # NOTE: the same for the resizes of 1x1 maps computed as broadcasts (resize.broadcast_unit_resizes)
        import dynashape._backend.inductor as inductor_backend

        inductor_backend.broadcast_unit_resizes = lambda torch, ep: []
    if spec.pop("clone_output", False):
        import dynashape._backend.inductor as inductor_backend

        inductor_backend.contiguous_output = lambda torch, o: torch.clone(o, memory_format=torch.contiguous_format)
    if spec.pop("no_dot", False):
        # NOTE: a lever that has no switch of its own (it is always on where it applies): turned off
        # here, in this child process only, to measure it against the defaults in the same run
        import dynashape._backend.inductor as inductor_backend

        inductor_backend.channel_dots = lambda torch, module: []
    if variant.startswith("static:"):
        shape = tuple(int(x) for x in variant.split(":", 1)[1].split("x"))
        prof, kwargs = Profile({cfg.input_name: (shape, shape, shape)}), {}
        example = torch.rand(shape)
        axes = None
    else:
        prof, kwargs = Profile({cfg.input_name: cfg.profile}), {**(no_lever if variant == "base" else {}), **spec}
        example = torch.rand(cfg.profile[1])
        axes = {cfg.input_name: cfg.axes}
    source: Any = model
    inputs: dict[str, Any] = {"example_inputs": {cfg.input_name: example}, "dynamic_axes": axes}
    if cfg.onnx:
        source, inputs = path + ".onnx", {}
        dynashape.export(model, {cfg.input_name: torch.rand(cfg.profile[1])}, source, dynamic_axes={cfg.input_name: cfg.axes}, quiet=True)
    t = time.perf_counter()
    # TAX_BUILD_DEVICE=cpu: a dry run of one build on a machine without a GPU (fp32)
    device = os.environ.get("TAX_BUILD_DEVICE", "cuda")
    # the Inductor levers go through dynashape's own inductor_config (checked, recorded in the engine)
    e = dynashape.build(source, prof, backend="inductor", device=device, precision="fp16" if device == "cuda" else "fp32",
                        validate=False, quiet=True, inductor_config=patches or None, **inputs, **kwargs)
    seconds = time.perf_counter() - t
    e.save(path)
    bd = e.manifest.backend_data
    print(json.dumps({"build_s": round(seconds, 2), "parts": [p.describe() for p in e.manifest.parts],
                      "alignment": bd.get("alignment"), "attention": bd.get("attention"), "inductor": patches,
                      "channels_last": bd.get("channels_last"), "channel_dots": bd.get("channel_dots"),
                      "compile_jobs": bd.get("compile_jobs", 1)}))


def build_all(todo: list[tuple[str, str]], folder: str, jobs: int, deadline: float) -> dict[tuple[str, str], dict[str, Any]]:
    """Build every (model, variant) in child processes, ``jobs`` at a time; skip what cannot start before ``deadline``."""
    results: dict[tuple[str, str], dict[str, Any]] = {}

    def one(item: tuple[str, str]) -> tuple[tuple[str, str], dict[str, Any]]:
        key, variant = item
        left = deadline - time.time()
        if left < 30:
            return item, {"skipped": "time budget"}
        path = os.path.join(folder, f"{key}.{variant.replace(':', '_')}.engine")
        print(f"[build] {key} {variant} ...", flush=True)
        try:
            p = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", key, variant, path],
                               capture_output=True, text=True, timeout=left)
        except subprocess.TimeoutExpired:
            return item, {"skipped": "time budget (build cut off)"}
        if p.returncode != 0:
            return item, {"error": (p.stderr or p.stdout).strip().splitlines()[-1][:400] if (p.stderr or p.stdout).strip() else f"rc {p.returncode}"}
        line = [x for x in p.stdout.strip().splitlines() if x.startswith("{")][-1]
        info = json.loads(line)
        info["path"] = path
        print(f"[build] {key} {variant}: {info['build_s']} s {info['parts']}", flush=True)
        return item, info

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for item, info in pool.map(one, todo):
            results[item] = info
    return results


# ------------------------------------------------------------------------------------------------
# Timing and profiling (this process)
# ------------------------------------------------------------------------------------------------


def with_graphs(engine: Any, graphs: bool) -> Any:
    return engine.with_options(cuda_graphs=graphs)


def kernel_table(torch: Any, fn: Any, calls: int = 10, rows: int = 12) -> dict[str, Any]:
    """Top kernels by CUDA time over ``calls`` calls, and the time in copy/clone kernels."""
    from torch.profiler import ProfilerActivity, profile

    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if getattr(e, "device_time_total", getattr(e, "cuda_time_total", 0)) > 0]

    def us(e: Any) -> float:
        return float(getattr(e, "device_time_total", getattr(e, "cuda_time_total", 0.0)))

    events.sort(key=us, reverse=True)
    total = sum(us(e) for e in events)
    copy_words = ("copy", "clone", "contiguous", "elementwise_kernel", "Memcpy")
    copies = sum(us(e) for e in events if any(w in e.key for w in copy_words))
    return {"calls": calls, "total_us_per_call": round(total / calls, 1), "copy_us_per_call": round(copies / calls, 1),
            "top": [{"kernel": e.key[:110], "us_per_call": round(us(e) / calls, 1), "count_per_call": round(e.count / calls, 2)}
                    for e in events[:rows]],
            # every kernel's family and time, for kernel_diff
            "families": {f: round(t / calls, 2) for f, t in _sum_by((kernel_family(e.key), us(e)) for e in events).items()}}


#: tokens of Triton kernel names that the same computation carries or not between a static and a dynamic
#: build (Inductor names a fused kernel after the ATen ops in it, and a layout copy or a convolution's
#: epilogue joins some of them)
_NAME_NOISE = {"", "convolution", "clone", "to", "copy", "view", "unsqueeze", "squeeze", "permute", "expand", "fused", "poi", "per", "red"}


def kernel_family(name: str) -> str:
    """A kernel's name without what differs between two builds of the same computation: a Triton
    kernel's trailing number and layout tokens (``triton_poi_fused__native_batch_norm_..._convolution_relu_11``
    -> ``poi: batch,legit,native,norm,no,relu,training``); other kernels (cuDNN, cuBLAS) keep their name."""
    if not name.startswith("triton_"):
        return name[:110]
    kind = name.split("_")[1]
    ops = sorted({t for t in name.split("_")[2:] if not t.isdigit() and t not in _NAME_NOISE})
    return f"{kind}: {','.join(ops)}"


def _sum_by(pairs: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in pairs:
        out[k] = out.get(k, 0.0) + v
    return out


def kernel_diff(static: dict[str, Any], dynamic: dict[str, Any], rows: int = 8) -> list[list[Any]]:
    """The kernel families where a dynamic engine spends the most more (or less) GPU time than the
    static one at the same shape: [family, static us, dynamic us, difference], largest difference first."""
    a, b = static.get("families") or {}, dynamic.get("families") or {}
    diffs = [[f, round(a.get(f, 0.0), 1), round(b.get(f, 0.0), 1), round(b.get(f, 0.0) - a.get(f, 0.0), 1)] for f in {*a, *b}]
    return sorted(diffs, key=lambda r: -abs(r[3]))[:rows]


def run_model(cfg: Config, built: dict[tuple[str, str], dict[str, Any]], args: argparse.Namespace, deadline: float) -> dict[str, Any]:
    import torch
    from gpu_bench import Timer

    import dynashape

    timer = Timer("cuda")
    res: dict[str, Any] = {"label": cfg.label, "profile": [list(s) for s in cfg.profile], "rows": {}, "builds": {}, "kernels": {}}
    for (key, variant), info in built.items():
        if key == cfg.key:
            res["builds"][variant] = {k: v for k, v in info.items() if k != "path"}
    model = make_model(cfg.make).half().cuda()
    if cfg.conv:
        model = model.to(memory_format=torch.channels_last)
    res["notes"] = ["eager: fp16" + (", channels-last" if cfg.conv else "")]

    def eager_fn(x16: Any) -> Any:
        def f() -> Any:
            with torch.inference_mode():
                return model(x16)
        return f

    engines: dict[str, Any] = {}
    for (key, variant), info in built.items():
        if key == cfg.key and "path" in info:
            engines[variant] = dynashape.load(info["path"])
    methods: dict[str, Any] = {}  # row name -> (engine without graphs, with graphs) or None
    for v in cfg.variants:
        if v in engines:
            methods["dynamic" if v == "base" else f"dynamic+{v}"] = (with_graphs(engines[v], False), with_graphs(engines[v], True))
    for shape in cfg.shapes:
        if time.time() > deadline:
            res["rows"]["x".join(map(str, shape))] = {"skipped": "time budget"}
            continue
        name = "x".join(map(str, shape))
        x = torch.rand(shape, device="cuda", generator=torch.Generator("cuda").manual_seed(0))
        x16 = x.half().contiguous(memory_format=torch.channels_last) if cfg.conv else x.half()
        row: dict[str, Any] = {}
        with torch.inference_mode():
            ref = model(x16)
        ref_t = ref["out"] if isinstance(ref, dict) else ref
        # NOTE: EfficientNet-B0's differences read 0.0 in every run (2, 3 and 6) for every engine: the check
        # is vacuous where eager's output is all zero (or not finite); the row says so
        row["max|eager|"] = float(ref_t.float().abs().max())
        if not row["max|eager|"] > 0 or row["max|eager|"] == float("inf"):
            row["VACUOUS CHECK"] = True
            print(f"[VACUOUS] {cfg.key} {name}: max|eager| = {row['max|eager|']}: the comparison with eager checks nothing", flush=True)
        row["eager"] = round(timer.many(eager_fn(x16), args.iters, args.warmup)["median_ms"], 4)
        feed = {cfg.input_name: x}
        st = engines.get(f"static:{name}")
        candidates = dict(methods)
        if st is not None:
            candidates["static"] = (with_graphs(st, False), with_graphs(st, True))
        timed: dict[str, Any] = {}  # row label -> the call to time
        for label, pair in candidates.items():
            if pair is None or pair[0] is None:
                continue
            plain, graphed = pair
            try:
                out = plain.run(feed)
                # relative to the largest eager output: random-weight logits reach hundreds in fp16
                diff = float((next(iter(out.values())).float() - ref_t.float()).abs().max()) / (float(ref_t.float().abs().max()) or 1.0)
                row[label + " max|diff|/max|eager|"] = round(diff, 5)
                if diff > 0.05:
                    # NOTE: run 3 timed a wrong general package (0.378 at 600x800) and the table only
                    # showed the number; a wrong engine's speed means nothing, so it is called out
                    row[label + " WRONG"] = True
                    print(f"[WRONG] {cfg.key} {name} {label}: max|diff|/max|eager| {diff:.3f}", flush=True)
                timed[label] = lambda p=plain, feed=feed: p.run(feed)
                timed[label + "+graphs"] = lambda g=graphed, feed=feed: g.run(feed)
            except Exception as ex:  # a lever that fails at one shape is reported, not fatal
                row[label] = f"error: {' '.join(str(ex).split())[:200]}"
        for group in ([k for k in timed if not k.endswith("+graphs")], [k for k in timed if k.endswith("+graphs")]):
            try:
                row.update({k: round(v, 4) for k, v in timer.interleaved({k: timed[k] for k in group}, args.iters, args.warmup).items()})
            except Exception as ex:
                row.update({k: f"error: {' '.join(str(ex).split())[:200]}" for k in group})
        for label in list(row):
            if label.endswith("+graphs") and "static+graphs" in row and isinstance(row[label], float) and not label.startswith("static"):
                row[f"tax {label} (static/dyn)"] = round(row["static+graphs"] / row[label], 3)
        # NOTE: one call's latency from an idle GPU includes the host's launch path, which moved a static
        # engine's ResNet-50 time from 0.654 to 0.782 ms between two runs at the same 586 us of GPU time
        # (run 8); the kernels' own time is the steadier measure of what symbolic sizes cost
        if "static" in timed and args.gpu_time and time.time() < deadline:
            gpu_us: dict[str, float] = {}
            for label in [k for k in timed if not k.endswith("+graphs")]:
                try:
                    # the top kernels too: where a shape's tax is, engine against engine
                    res["kernels"][f"{name} {label}"] = table = kernel_table(torch, timed[label])
                    gpu_us[label] = table["total_us_per_call"]
                except Exception as ex:
                    print(f"[kernels] {cfg.key} {name} {label}: {ex}", flush=True)
            row["gpu_us"] = gpu_us
            for label, us in gpu_us.items():
                if label != "static" and "static" in gpu_us and us > 0:
                    row[f"gpu-time tax {label} (static/dyn)"] = round(gpu_us["static"] / us, 3)
        res["rows"][name] = row
        print(f"[time] {cfg.key} {name}: " + ", ".join(f"{k} {v}" for k, v in row.items() if isinstance(v, float) and "diff" not in k and "eager|" not in k), flush=True)
        if shape == cfg.profile_shape and time.time() < deadline:
            for label, eng in (("dynamic", candidates.get("dynamic")), ("static", candidates.get("static")),
                               *[(k, v) for k, v in candidates.items() if k.startswith("dynamic+")]):
                if eng is None or eng[0] is None or f"{name} {label}" in res["kernels"]:
                    continue
                try:
                    res["kernels"][f"{name} {label}"] = kernel_table(torch, lambda p=eng[0], feed=feed: p.run(feed))
                except Exception as ex:
                    res["kernels"][f"{name} {label}"] = {"error": str(ex)[:200]}
    del engines, methods
    torch.cuda.empty_cache()
    return res


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------


def markdown(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [f"# Dynamic tax, lever by lever ({m.get('gpu')}, torch {m.get('torch')}, torchvision {m.get('torchvision')}, {m.get('date')})", "",
             "fp16; median ms of one call from an idle GPU (CUDA events) after warm-up, the engines of a shape timed in "
             "alternating rounds; `+graphs`: CUDA graphs; tax = static+graphs / dynamic+graphs (1.0: no tax; target >= 0.97); "
             "gpu-time tax = the same ratio of the kernels' GPU time a call (profiler, without graphs).", ""]
    for key, r in data["models"].items():
        if "error" in r:
            lines += [f"## {key}", "", f"failed: {r['error']}", ""]
            continue
        lines += [f"## {r['label']}", "", "profile: " + " / ".join("x".join(map(str, s)) for s in r["profile"]), ""]
        cols = sorted({k for row in r["rows"].values() for k in row if not k.startswith(("tax", "gpu")) and "diff" not in k
                       and "eager|" not in k and "VACUOUS" not in k},
                      key=lambda k: (k.replace("+graphs", ""), k))
        rows = [[shape, *[row.get(c) for c in cols]] for shape, row in r["rows"].items()]
        lines += [md_table(["shape", *cols], rows), ""]
        taxes = {k: [row[k] for row in r["rows"].values() if isinstance(row.get(k), float)]
                 for k in sorted({k for row in r["rows"].values() for k in row if k.startswith(("tax", "gpu-time tax"))})}
        for k, v in taxes.items():
            lines.append(f"- {k}: " + ", ".join(f"{x:.3f}" for x in v) + (f" (geomean {geomean(v):.3f})" if v else ""))
        for shape, row in r["rows"].items():
            if row.get("gpu_us"):
                lines.append(f"- GPU time a call at {shape} (us, profiler): " + ", ".join(f"{k} {v}" for k, v in row["gpu_us"].items()))
        vacuous = [shape for shape, row in r["rows"].items() if row.get("VACUOUS CHECK")]
        if vacuous:
            lines.append(f"- **the comparison with eager checks nothing** at {', '.join(vacuous)}: eager's largest output is 0 or not finite")
        if r.get("load_at_timing"):
            lines.append(f"- load while timed (before, after): {json.dumps(r['load_at_timing'])}")
        for v, b in r["builds"].items():
            lines.append(f"- build {v}: " + (f"{b['build_s']} s, parts {b.get('parts')}" if "build_s" in b else json.dumps(b)[:300]))
        for name, k in r["kernels"].items():
            if "top" not in k:
                continue
            lines += ["", f"Kernels at {name}: {k['total_us_per_call']} us of GPU time a call, {k['copy_us_per_call']} us in copy/clone kernels", "",
                      md_table(["kernel", "us/call", "launches/call"], [[t["kernel"], t["us_per_call"], t["count_per_call"]] for t in k["top"]])]
            shape, _, label = name.partition(" ")
            static = r["kernels"].get(f"{shape} static", {})
            if label != "static" and static.get("families") and k.get("families"):
                lines += ["", f"Where {label} differs from the static engine at {shape} (kernel families, us a call):", "",
                          md_table(["family", "static", label, "difference"], kernel_diff(static, k))]
        lines.append("")
    if data.get("skipped"):
        lines += ["Skipped (time budget or errors): " + "; ".join(data["skipped"]), ""]
    return "\n".join(lines)


def _load() -> dict[str, Any]:
    """The machine's 1-minute load average and the processes on this process's GPU(s) (other timing or
    validation runs make the ratios noisy)."""
    out: dict[str, Any] = {"loadavg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    try:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        query = ["nvidia-smi", "--query-compute-apps=gpu_uuid,pid", "--format=csv,noheader"]
        uuids = ["nvidia-smi", "--query-gpu=index,uuid", "--format=csv,noheader"]
        mine = {line.split(",")[1].strip() for line in subprocess.run(uuids, capture_output=True, text=True, timeout=10).stdout.splitlines()
                if not visible or line.split(",")[0].strip() in visible.split(",")}
        apps = [line for line in subprocess.run(query, capture_output=True, text=True, timeout=10).stdout.splitlines()
                if line.split(",")[0].strip() in mine]
        out["gpu_processes"] = len(apps)
    except (OSError, subprocess.SubprocessError, IndexError):
        out["gpu_processes"] = None
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child", nargs=3, metavar=("MODEL", "VARIANT", "PATH"), help=argparse.SUPPRESS)
    ap.add_argument("--out", default=os.environ.get("OUT") or os.path.join(HERE, "results"), help="results folder (default $OUT, else benchmarks/results)")
    ap.add_argument("--models", default="default", help="default (segmentation, resnet50, vit_b_16), all, or a comma list of keys")
    ap.add_argument("--budget-s", type=float, default=400.0, help="stop starting work after this many seconds (default 400)")
    # NOTE: builds side by side share the GPU on which Inductor benchmarks its Triton configs: in run 8 one
    # dynamic ResNet-50 build got a residual add+ReLU kernel of 49 us (19 us or less in its other builds);
    # --jobs 1 gives cleaner engines at the price of the budget
    ap.add_argument("--jobs", type=int, default=4, help="parallel engine builds (child processes, default 4; 1 for the cleanest engines)")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--no-cd", action="store_true", help="skip the coordinate-descent engines")
    ap.add_argument("--variants", default=None, help="comma list: build only these variants (static engines always)")
    ap.add_argument("--shapes", default=None, help="comma list of NxCxHxW: time (and build static engines for) only these of each model's shapes")
    ap.add_argument("--no-gpu-time", dest="gpu_time", action="store_false",
                    help="skip the profiler at each shape with a static engine (the gpu-time tax and the kernel tables there)")
    ap.add_argument("--warm-cache", action="store_true", help="reuse the Inductor cache (default: a fresh one, cold build times)")
    args = ap.parse_args()
    if args.child:
        build_child(*args.child)
        return 0
    start = time.time()
    deadline = start + args.budget_s
    if os.environ.get("CXX", "").startswith("/opt/gcc"):
        raise SystemExit("CXX=/opt/gcc/... builds AOTInductor packages that crash at load on the GPU machine: set CXX=/usr/bin/g++ CC=/usr/bin/gcc")
    if not args.warm_cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="dynamic-tax-inductor-")
    os.environ.setdefault("PYTHONPATH", os.path.join(os.path.dirname(HERE), "src"))
    chosen = [c for c in configs() if (args.models == "all" or (args.models == "default" and not c.extra)
                                        or c.key in args.models.split(","))]
    todo: list[tuple[str, str]] = []
    # NOTE: the order is the priority under the budget: per model the lever engines, then statics;
    # coordinate descent last. Models with more dynamic dims first: their builds (guard-split parts,
    # aligned packages) are the longest, and started last they would be cut off.
    if args.variants:
        keep = set(args.variants.split(","))
        for c in chosen:
            c.variants = {k: v for k, v in c.variants.items() if k in keep}
    if args.shapes:
        wanted = {tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",") if s}
        for c in chosen:
            c.shapes = [s for s in c.shapes if s in wanted]
            c.static = [s for s in c.static if s in wanted]
    for c in sorted(chosen, key=lambda c: -len(c.axes)):
        todo += [(c.key, v) for v in c.variants if v != "cd"]
        todo += [(c.key, f"static:{'x'.join(map(str, s))}") for s in c.static]
    if not args.no_cd:
        todo += [(c.key, "cd") for c in chosen if "cd" in c.variants]
    # timing needs about 25 s a model: builds must leave that much
    build_deadline = deadline - 25 * len(chosen)
    data: dict[str, Any] = {"machine": machine_info(), "args": vars(args), "models": {}, "skipped": []}
    with tempfile.TemporaryDirectory(prefix="dynamic-tax-") as folder:
        built = build_all(todo, folder, args.jobs, build_deadline)
        data["build_wall_s"] = round(time.time() - start, 1)
        for (key, variant), info in built.items():
            if "path" not in info:
                data["skipped"].append(f"build {key} {variant}: {info}")
        for c in chosen:
            # NOTE: ratios from a shared machine move by up to 0.12 between runs (BENCHMARKS.md, run 3):
            # what else ran while this model was timed is recorded beside its numbers
            load = _load()
            try:
                data["models"][c.key] = run_model(c, built, args, deadline)
            except Exception as ex:
                traceback.print_exc()
                data["models"][c.key] = {"error": " ".join(str(ex).split())[:400]}
            data["models"][c.key]["load_at_timing"] = {"before": load, "after": _load()}
    data["wall_s"] = round(time.time() - start, 1)
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"dynamic_tax_{today()}")
    write_json(stem + ".json", data)
    text = markdown(data)
    write_atomic(stem + ".md", text + "\n")
    print(text)
    print(f"results: {stem}.json, {stem}.md ({data['wall_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
