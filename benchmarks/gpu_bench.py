"""GPU benchmark (issue 3): dynashape's engine against eager PyTorch, torch.compile and static engines.

One model per invocation (each must finish in about 9 minutes, AOTInductor compiles included):

    PYTHONPATH=src CXX=/usr/bin/g++ CC=/usr/bin/gcc python benchmarks/gpu_bench.py --model resnet50 --out $OUT/resnet50.json
    PYTHONPATH=src CXX=/usr/bin/g++ CC=/usr/bin/gcc python benchmarks/gpu_bench.py --model bert --out $OUT/bert.json
    PYTHONPATH=src CXX=/usr/bin/g++ CC=/usr/bin/gcc python benchmarks/gpu_bench.py --model segmentation --out $OUT/segmentation.json
    PYTHONPATH=src CXX=/usr/bin/g++ CC=/usr/bin/gcc python benchmarks/gpu_bench.py --model resnet50 --only sharing --out $OUT/sharing.json

Every baseline runs in the same process as the engine, on the same inputs already on the GPU:
  eager      ``model.half().cuda().eval()`` under ``torch.inference_mode()``
  compile    ``torch.compile(model_fp16, dynamic=True)``, warmed at every shape before timing (the first
             call per shape, compiles included, is reported separately)
  static     ``dynashape.build`` with min = opt = max = the shape (the limit a dynamic engine can reach);
             built for a subset of the shapes (--static-shapes, --static-limit)
  engine     dynashape's dynamic engine without CUDA graphs (``cuda_graphs=False``) and with them (the
             default; the first call at a shape captures, later calls replay)
All fp16 (``precision="fp16"``). The engines take the model's own input dtypes (float32 images, int64
token ids) and cast inside the compiled graph; eager and torch.compile take fp16 images.

Timing: per call, ``torch.cuda.synchronize()``, CUDA event, the call, CUDA event; median of --iters
calls after --warmup calls. Also: the card's fp16 matmul throughput (8192^3, median), FLOPs per shape
(torch.utils.flop_counter on the eager model) as a fraction of it, build times, load time and first
inference in a fresh subprocess, peak GPU memory per method, and for BERT the SQuAD v2 length stream.

``--quick --device cpu`` runs the same logic at tiny sizes on the CPU (zoo models stand in when
torchvision or transformers is missing), to check the script without a GPU.

Results: JSON at --out (written atomically) and a markdown table beside it (.md) and on stdout.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _common import fmt_ms, geomean, machine_info, md_table, summarize, write_atomic, write_json  # noqa: E402

PARTS = ("matmul", "latency", "squad", "startup", "sharing", "layout")
SQUAD_FILE = os.path.join(HERE, "workloads", "squadv2_train_lengths.txt")
SQUAD_FALLBACK = "/work/shared/workloads/squadv2_train_lengths.txt"


# ------------------------------------------------------------------------------------------------
# Models: what to build, at which shapes, with which profiles
# ------------------------------------------------------------------------------------------------


@dataclass
class Spec:
    """One benchmarked model: how to make it and its inputs, its profiles and its shapes.

    A "point" is the model's own shape key: (batch,) for images of a fixed size, (batch, seq) for
    token models, (H, W) for the segmentation net. ``inputs(point)`` -> {name: fp32/int64 CPU tensor}.
    """

    name: str
    label: str
    make: Callable[[], Any]  # -> fp32 eval module on the CPU
    inputs: Callable[[tuple[int, ...]], dict[str, Any]]
    dynamic_axes: dict[str, dict[int, str]]
    output_names: list[str]
    profiles: list[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]  # per profile (min, opt, max) points
    points: list[tuple[int, ...]]
    static_points: list[tuple[int, ...]]
    startup_point: tuple[int, ...]
    point_names: tuple[str, ...]
    notes: list[str] = field(default_factory=list)
    flops_formula: Callable[[tuple[int, ...]], float] | None = None
    flops_formula_text: str = ""


def _image_inputs(name: str, channels: int, hw: tuple[int, int]) -> Callable[[tuple[int, ...]], dict[str, Any]]:
    def make(point: tuple[int, ...]) -> dict[str, Any]:
        import torch

        g = torch.Generator().manual_seed(sum(point))
        return {name: torch.rand((point[0], channels, *hw), generator=g)}

    return make


def _token_inputs(vocab: int) -> Callable[[tuple[int, ...]], dict[str, Any]]:
    def make(point: tuple[int, ...]) -> dict[str, Any]:
        import torch

        b, s = point
        g = torch.Generator().manual_seed(b * 1000 + s)
        # NOTE: all-ones masks, as for unpadded requests; the mask still flows through the graph.
        return {"input_ids": torch.randint(0, vocab, (b, s), generator=g), "attention_mask": torch.ones(b, s, dtype=torch.int64)}

    return make


def _bert_flops(hidden: int, layers: int, ffn: int) -> Callable[[tuple[int, ...]], float]:
    def flops(point: tuple[int, ...]) -> float:
        b, s = point
        d = hidden
        per_layer = 2 * b * s * d * (3 * d) + 2 * b * s * d * d + 2 * 2 * b * s * d * ffn + 2 * 2 * b * s * s * d
        return float(layers * per_layer + 2 * b * d * d)

    return flops


BERT_FLOPS_TEXT = ("matmul FLOPs = L * (24*B*S*d^2 + 4*B*S^2*d) + 2*B*d^2 with d = hidden size, ffn = 4d "
                   "(QKV 6BSd^2, attention output 2BSd^2, FFN 16BSd^2, QK^T and AV 4BS^2d, pooler 2Bd^2); "
                   "BERT-base: L = 12, d = 768: 6.18 TFLOP at 64x512")


def _seg_inputs(point: tuple[int, ...]) -> dict[str, Any]:
    import torch

    h, w = point
    return {"input_1": torch.rand((1, 3, h, w), generator=torch.Generator().manual_seed(h * 7 + w))}


def make_spec(model: str, quick: bool) -> Spec:
    if model == "resnet50":
        if not quick:
            def make() -> Any:
                import torchvision

                return torchvision.models.resnet50(weights=None).eval()

            pts = [(b,) for b in (1, 2, 4, 8, 16, 32, 64)]
            return Spec("resnet50", "ResNet-50 (torchvision, random weights), 224x224", make, _image_inputs("image", 3, (224, 224)),
                        {"image": {0: "batch"}}, ["logits"], [((1,), (4,), (8,)), ((8,), (32,), (64,))], pts, list(pts), (1,), ("batch",))
        try:
            import torchvision

            def make() -> Any:
                return torchvision.models.resnet18(weights=None).eval()

            label, note = "ResNet-18 (torchvision) at 64x64, quick", "quick mode: resnet18 at 64x64 stands in for ResNet-50"
        except Exception:  # torchvision may fail to import beside another torch version
            from dynashape import zoo

            make = zoo.get("resnet_like").make
            label, note = "zoo resnet_like at 64x64, quick", "quick mode: torchvision missing, zoo resnet_like stands in for ResNet-50"
        pts = [(1,), (2,), (4,), (8,)]
        return Spec("resnet50", label, make, _image_inputs("image", 3, (64, 64)), {"image": {0: "batch"}}, ["logits"],
                    [((1,), (2,), (4,)), ((4,), (8,), (8,))], pts, [(1,), (8,)], (1,), ("batch",), [note])
    if model == "bert":
        attn = os.environ.get("GPU_BENCH_ATTN") or None
        try:
            import transformers

            if quick:
                cfg = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256)
                label, note = "BERT (transformers, 2 layers, d=64), quick", "quick mode: a 2-layer d=64 BertConfig stands in for BERT-base"
            else:
                cfg, label, note = {}, "BERT-base (transformers BertConfig(), random weights)", ""

            def make() -> Any:
                config = transformers.BertConfig(**cfg)
                if attn:
                    config._attn_implementation = attn
                return transformers.BertModel(config, add_pooling_layer=True).eval()

            c = transformers.BertConfig(**cfg)
            vocab, formula = c.vocab_size, _bert_flops(c.hidden_size, c.num_hidden_layers, c.intermediate_size)
            outs = ["last_hidden_state", "pooler_output"]
        except ImportError:
            if not quick:
                raise SystemExit("--model bert needs transformers (pip install transformers), or --quick for the zoo bert_like") from None
            from dynashape import zoo

            make, vocab, formula = zoo.get("bert_like").make, 100, _bert_flops(32, 2, 128)
            label, note, outs = "zoo bert_like, quick", "quick mode: transformers missing, zoo bert_like stands in for BERT-base", ["hidden"]
        if quick:
            batches, seqs = (1, 2, 4), (8, 16, 32)
            profiles = [((1, 8), (2, 16), (4, 32))]
            static = [(1, 16), (4, 32)]
        else:
            batches, seqs = (1, 8, 32, 64), (8, 32, 128, 384, 512)
            profiles = [((1, 8), (8, 128), (64, 512))]
            static = [(1, 128), (8, 128), (32, 384), (64, 512), (1, 8)]
        pts = [(b, s) for b in batches for s in seqs]
        spec = Spec("bert", label, make, _token_inputs(min(vocab, 30000)),
                    {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}, outs, profiles, pts, static,
                    (1, 128) if not quick else (1, 16), ("batch", "seq"), [note] if note else [], formula, BERT_FLOPS_TEXT)
        if attn:
            spec.notes.append(f"attention implementation forced to '{attn}' (GPU_BENCH_ATTN)")
        return spec
    if model == "segmentation":
        from dynashape import zoo

        if quick:
            pts = [(64, 64), (77, 101), (128, 128), (160, 160)]
            prof = [((64, 64), (128, 128), (160, 160))]
        else:
            pts = [(512, 512), (777, 1001), (1024, 1024), (1600, 1600)]
            prof = [((512, 512), (1024, 1024), (1600, 1600))]
        return Spec("segmentation", "the demo's segmentation net (zoo segmentation), 1x3xHxW", zoo.get("segmentation").make, _seg_inputs,
                    {"input_1": {2: "image_height", 3: "image_width"}}, ["output_1"], prof, pts, list(pts), pts[2], ("H", "W"))
    raise SystemExit(f"--model: unknown model '{model}'; valid: resnet50, bert, segmentation")


def point_shapes(spec: Spec, point: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    return {n: tuple(t.shape) for n, t in spec.inputs(point).items()}


def make_profile(spec: Spec, lo: tuple[int, ...], opt: tuple[int, ...], hi: tuple[int, ...]) -> Any:
    from dynashape import Profile, ShapeRange

    a, b, c = point_shapes(spec, lo), point_shapes(spec, opt), point_shapes(spec, hi)
    return Profile({n: ShapeRange(a[n], b[n], c[n]) for n in a})


def point_text(point: tuple[int, ...]) -> str:
    return "x".join(map(str, point))


def parse_points(text: str) -> list[tuple[int, ...]]:
    """'1,8,64' (batches) or '1x128,8x128' (batch x seq, or H x W)."""
    out = []
    for item in text.split(","):
        item = item.strip()
        if item:
            out.append(tuple(int(v) for v in item.split("x")))
    return out


# ------------------------------------------------------------------------------------------------
# Timing
# ------------------------------------------------------------------------------------------------


class Timer:
    def __init__(self, device: str) -> None:
        import torch

        self.torch = torch
        self.cuda = device.startswith("cuda")

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def one(self, fn: Callable[[], Any]) -> tuple[float, float]:
        """(device ms, host wall ms) of one call, starting from an idle device."""
        torch = self.torch
        if self.cuda:
            torch.cuda.synchronize()
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            t = time.perf_counter()
            s.record()
            fn()
            e.record()
            torch.cuda.synchronize()
            wall = (time.perf_counter() - t) * 1000
            return s.elapsed_time(e), wall
        t = time.perf_counter()
        fn()
        wall = (time.perf_counter() - t) * 1000
        return wall, wall

    def interleaved(self, fns: dict[str, Callable[[], Any]], iters: int, warmup: int, rounds: int = 3) -> dict[str, float]:
        """Median device ms of one call of each of ``fns``, timed in ``rounds`` alternating rounds (forward,
        then backward order) so that a drift of the machine (clocks, the host's load) reaches every one
        alike; timed one after the other, the whole drift fell between a static engine and its dynamic one."""
        for fn in fns.values():
            for _ in range(warmup):
                fn()
        self.sync()
        samples: dict[str, list[float]] = {k: [] for k in fns}
        per = max(1, iters // rounds)
        for r in range(rounds):
            for k in (list(fns) if r % 2 == 0 else list(reversed(fns))):
                samples[k] += [self.one(fns[k])[0] for _ in range(per)]
        return {k: statistics.median(v) for k, v in samples.items()}

    def many(self, fn: Callable[[], Any], iters: int, warmup: int) -> dict[str, Any]:
        for _ in range(warmup):
            fn()
        self.sync()
        dev, wall = [], []
        for _ in range(iters):
            d, w = self.one(fn)
            dev.append(d)
            wall.append(w)
        out = summarize(dev)
        out["wall_median_ms"] = statistics.median(wall)
        return out


class Memory:
    def __init__(self, device: str) -> None:
        import torch

        self.torch = torch
        self.cuda = device.startswith("cuda")

    def allocated(self) -> int:
        return self.torch.cuda.memory_allocated() if self.cuda else 0

    def reset_peak(self) -> int:
        if not self.cuda:
            return 0
        self.torch.cuda.synchronize()
        self.torch.cuda.reset_peak_memory_stats()
        return self.torch.cuda.memory_allocated()

    def peak(self) -> int:
        return self.torch.cuda.max_memory_allocated() if self.cuda else 0

    def free(self) -> None:
        gc.collect()
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.empty_cache()


MB = 2**20


def measure_method(timer: Timer, mem: Memory, fn: Callable[[], Any], iters: int, warmup: int) -> dict[str, Any]:
    before = mem.reset_peak()
    r = timer.many(fn, iters, warmup)
    if mem.cuda:
        r["peak_mb"] = round(mem.peak() / MB, 1)
        r["peak_over_resident_mb"] = round((mem.peak() - before) / MB, 1)
    return r


# ------------------------------------------------------------------------------------------------
# The parts
# ------------------------------------------------------------------------------------------------


def matmul_peak(timer: Timer, device: str, quick: bool) -> dict[str, Any]:
    import torch

    n = 1024 if quick or not device.startswith("cuda") else 8192
    dt = torch.float16 if device.startswith("cuda") else torch.float32
    a = torch.randn(n, n, dtype=dt, device=device)
    b = torch.randn(n, n, dtype=dt, device=device)
    r = timer.many(lambda: torch.mm(a, b), 10 if quick else 50, 5 if quick else 10)
    flop = 2.0 * n**3
    return {"n": n, "dtype": str(dt).replace("torch.", ""), "median_ms": r["median_ms"], "tflops_median": flop / (r["median_ms"] * 1e-3) / 1e12,
            "tflops_best": flop / (r["min_ms"] * 1e-3) / 1e12, "note": "torch.mm, one call timed with CUDA events, median of the calls"}


def flops_per_point(spec: Spec, eager: Any, inputs_of: Callable[[tuple[int, ...]], dict[str, Any]]) -> dict[str, float]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    out = {}
    for p in spec.points:
        try:
            with FlopCounterMode(display=False) as fc, torch.inference_mode():
                eager(inputs_of(p))
            out[point_text(p)] = float(fc.get_total_flops())
        except Exception as e:  # recorded in the result; the other parts still run
            out[point_text(p)] = float("nan")
            print(f"  flop counter failed at {point_text(p)}: {e}", flush=True)
    return out


def build_engine(spec: Spec, model: Any, profiles: list[Any], device: str, example_point: tuple[int, ...], validate: bool,
                 channels_last: bool | None = None) -> tuple[Any, float]:
    import dynashape

    t = time.perf_counter()
    engine = dynashape.build(model, profiles, backend="inductor", example_inputs=spec.inputs(example_point), dynamic_axes=spec.dynamic_axes,
                             output_names=spec.output_names, device=device, precision="fp16" if device.startswith("cuda") else "fp32",
                             validate=validate, channels_last=channels_last)
    return engine, time.perf_counter() - t


def _first(out: Any) -> Any:
    import torch

    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        return next(iter(out.values()))
    if hasattr(out, "to_tuple"):
        return out.to_tuple()[0]
    return out[0]


def _diff(a: Any, ref: Any) -> dict[str, float]:
    a, ref = a.float(), ref.float()
    d = (a - ref).abs().max().item()
    scale = ref.abs().max().item()
    return {"max_abs": d, "max_abs_over_max_ref": d / scale if scale else float("nan")}


class Budget:
    """Wall-clock budget of one invocation: optional work is skipped, and said so, when it would not fit."""

    def __init__(self, seconds: float) -> None:
        self.t0 = time.perf_counter()
        self.seconds = seconds

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def left(self) -> float:
        return self.seconds - self.elapsed()


def _bound(fn: Callable[[Any], Any], x: Any) -> Callable[[], Any]:
    """``fn`` with its input bound now (inputs are made once, before timing)."""
    return lambda: fn(x)


def run_latency(spec: Spec, args: argparse.Namespace, timer: Timer, mem: Memory, budget: Budget, result: dict[str, Any],
                workdir: str) -> None:
    import torch

    import dynashape

    device = args.device
    cuda = device.startswith("cuda")
    fp = torch.float16 if cuda else torch.float32
    methods: dict[str, dict[str, Any]] = {}
    result["methods"] = methods
    shapes_out: dict[str, dict[str, Any]] = {point_text(p): {"point": list(p), "shapes": {n: list(s) for n, s in point_shapes(spec, p).items()}}
                                             for p in spec.points}
    result["shapes"] = shapes_out

    def dev_inputs(p: tuple[int, ...], for_engine: bool) -> dict[str, Any]:
        return {n: (t.to(device) if (for_engine or not t.is_floating_point()) else t.to(device=device, dtype=fp)) for n, t in spec.inputs(p).items()}

    # 1. The dynamic engine ---------------------------------------------------------------------
    base_mem = mem.allocated()
    model = spec.make()
    profiles = [make_profile(spec, *p) for p in spec.profiles]
    print(f"[{spec.name}] building the dynamic engine ({len(profiles)} profile(s): "
          + "; ".join(p.describe() for p in profiles) + ") ...", flush=True)
    engine, secs = build_engine(spec, model, profiles, device, spec.profiles[0][1], args.validate)
    path = os.path.join(workdir, f"{spec.name}_dynamic.engine")
    engine.save(path)
    result["dynamic_engine"] = {
        "profiles": [p.describe() for p in profiles], "build_seconds": round(secs, 2),
        "profile_build_seconds": engine.manifest.backend_data.get("profile_build_seconds"),
        "file_mb": round(os.path.getsize(path) / MB, 2), "channels_last": engine.manifest.backend_data.get("channels_last"),
        "shared_weights": engine.manifest.backend_data.get("shared_weights"), "validated_at_build": args.validate,
        "path": path,
    }
    print(f"[{spec.name}]   built in {secs:.1f} s (per profile {result['dynamic_engine']['profile_build_seconds']})", flush=True)
    engine_nog = engine.with_options(cuda_graphs=False)
    del engine
    mem.free()
    engine_graphs = dynashape.load(path, graph_cache_size=max(64, len(spec.points) + 8)) if cuda else None
    result["dynamic_engine"]["resident_mb_both_loaded"] = round((mem.allocated() - base_mem) / MB, 1) if cuda else None

    # 2. Eager ----------------------------------------------------------------------------------
    eager_model = spec.make()
    if cuda:
        eager_model = eager_model.half().cuda().eval()

    def eager(x: dict[str, Any]) -> Any:
        with torch.inference_mode():
            return eager_model(**x) if len(x) > 1 or spec.name == "bert" else eager_model(*x.values())

    result["flops_source"] = "torch.utils.flop_counter.FlopCounterMode on the eager model"
    fl = flops_per_point(spec, eager, lambda p: dev_inputs(p, False))
    for k, v in fl.items():
        shapes_out[k]["flops"] = v
        if spec.flops_formula is not None:
            shapes_out[k]["flops_formula"] = spec.flops_formula(tuple(int(x) for x in k.split("x")))
    if spec.flops_formula_text:
        result["flops_formula"] = spec.flops_formula_text

    refs: dict[str, Any] = {}
    runs: list[tuple[str, Callable[[tuple[int, ...]], Callable[[], Any]]]] = [
        ("eager", lambda p: _bound(eager, dev_inputs(p, False))),
        ("engine", lambda p: _bound(engine_nog.run, dev_inputs(p, True))),
    ]
    if engine_graphs is not None:
        runs.append(("engine_graphs", lambda p: _bound(engine_graphs.run, dev_inputs(p, True))))
    for name, _ in runs:
        methods[name] = {}
    for p in spec.points:
        k = point_text(p)
        shapes_out[k]["profile_selected"] = engine_nog.select_profile(point_shapes(spec, p))
        for name, make_fn in runs:
            fn = make_fn(p)
            out = _first(fn())
            if name == "eager":
                refs[k] = out.float().clone()
            else:
                shapes_out[k].setdefault("diff_vs_eager", {})[name] = _diff(out, refs[k])
            methods[name][k] = measure_method(timer, mem, fn, args.iters, args.warmup)
            del fn
        print(f"[{spec.name}] {k:>9}: " + ", ".join(f"{n} {fmt_ms(methods[n][k]['median_ms'])} ms" for n, _ in runs), flush=True)
    if engine_graphs is not None:
        g = engine_graphs.graph_stats()
        result["dynamic_engine"]["graphs"] = {"captured": g["captures"], "replays": g["replays"], "held": g["graphs"],
                                              "graph_mb": round(g["graph_bytes"] / MB, 1), "failures": g["failures"]}
        if g["captures"] < len(spec.points):
            result.setdefault("notes", []).append(
                f"CUDA graphs: {g['captures']} captured for {len(spec.points)} shapes; shapes without a graph ran plain calls "
                f"(failures {g['failures']}, see the log)")

    # 3. Static engines -------------------------------------------------------------------------
    static_pts = args.static_points if args.static_points is not None else spec.static_points
    static_pts = [p for p in static_pts if p in spec.points][: args.static_limit]
    methods["static"], methods["static_graphs"] = {}, {}
    result["static_engines"] = {}
    reserve = args.reserve_seconds
    per_static: list[float] = []
    for p in static_pts:
        k = point_text(p)
        est = max(per_static) if per_static else args.static_estimate
        if budget.left() - est < reserve:
            result["static_engines"][k] = {"skipped": f"time budget: {budget.left():.0f} s left, a build takes ~{est:.0f} s, "
                                                      f"{reserve:.0f} s kept for torch.compile and the start-up measurement"}
            print(f"[{spec.name}] static {k}: skipped (time budget)", flush=True)
            continue
        print(f"[{spec.name}] building the static engine at {k} ...", flush=True)
        try:
            st, secs = build_engine(spec, model, [make_profile(spec, p, p, p)], device, p, args.validate)
        except Exception as e:  # recorded in the result; the other parts still run
            result["static_engines"][k] = {"error": f"{type(e).__name__}: {str(e)[:800]}"}
            print(f"[{spec.name}]   static build failed: {e}", flush=True)
            continue
        per_static.append(secs)
        result["static_engines"][k] = {"build_seconds": round(secs, 2)}
        x = dev_inputs(p, True)
        st_nog = st.with_options(cuda_graphs=False)
        shapes_out[k].setdefault("diff_vs_eager", {})["static"] = _diff(_first(st_nog.run(x)), refs[k])
        methods["static"][k] = measure_method(timer, mem, _bound(st_nog.run, x), args.iters, args.warmup)
        if cuda:
            methods["static_graphs"][k] = measure_method(timer, mem, _bound(st.run, x), args.iters, args.warmup)
        print(f"[{spec.name}]   static {k}: built in {secs:.1f} s, {fmt_ms(methods['static'][k]['median_ms'])} ms"
              + (f", with graphs {fmt_ms(methods['static_graphs'][k]['median_ms'])} ms" if cuda else ""), flush=True)
        del st, st_nog, x
        mem.free()
    if not methods["static_graphs"]:
        del methods["static_graphs"]

    # 4. torch.compile(dynamic=True) -------------------------------------------------------------
    if args.skip_compile:
        result["torch_compile"] = {"skipped": "--skip-compile"}
    elif budget.left() < args.compile_estimate:
        result["torch_compile"] = {"skipped": f"time budget: {budget.left():.0f} s left"}
    else:
        print(f"[{spec.name}] torch.compile(dynamic=True) ...", flush=True)
        torch._dynamo.reset()
        compiled = torch.compile(eager_model, dynamic=True)

        def comp(x: dict[str, Any]) -> Any:
            with torch.inference_mode():
                return compiled(**x) if len(x) > 1 or spec.name == "bert" else compiled(*x.values())

        first: dict[str, float] = {}
        t_all = time.perf_counter()
        tc: dict[str, Any] = {"first_call_seconds": first}
        result["torch_compile"] = tc
        try:
            for p in spec.points:
                x = dev_inputs(p, False)
                t = time.perf_counter()
                comp(x)
                timer.sync()
                first[point_text(p)] = round(time.perf_counter() - t, 3)
                comp(x)
            tc["warm_all_shapes_seconds"] = round(time.perf_counter() - t_all, 2)
            methods["compile"] = {}
            for p in spec.points:
                k = point_text(p)
                x = dev_inputs(p, False)
                shapes_out[k].setdefault("diff_vs_eager", {})["compile"] = _diff(_first(comp(x)), refs[k])
                methods["compile"][k] = measure_method(timer, mem, lambda x=x: comp(x), args.iters, args.warmup)
            print(f"[{spec.name}]   compiled and warmed in {tc['warm_all_shapes_seconds']} s: "
                  + ", ".join(f"{k} {fmt_ms(v['median_ms'])}" for k, v in methods["compile"].items()), flush=True)
        except Exception as e:  # recorded in the result; the other parts still run
            tc["error"] = f"{type(e).__name__}: {str(e)[:800]}"
            print(f"[{spec.name}]   torch.compile failed: {e}", flush=True)
        try:
            import torch._dynamo.utils as du

            tc["dynamo_counters"] = {k: dict(v) for k, v in du.counters.items() if k in ("stats", "recompiles", "frames")}
        except Exception:  # informative only
            pass

    result["_live"] = {"engine_graphs": engine_graphs, "engine_nog": engine_nog, "eager": eager, "eager_model": eager_model,
                       "dev_inputs": dev_inputs, "engine_path": path, "compile": comp if "compile" in methods else None}


def run_squad(spec: Spec, args: argparse.Namespace, timer: Timer, mem: Memory, result: dict[str, Any], live: dict[str, Any]) -> None:
    import dynashape

    src = SQUAD_FILE if os.path.exists(SQUAD_FILE) else SQUAD_FALLBACK
    with open(src) as f:
        lengths = [int(line) for line in f if line.strip()][: args.squad_n]
    prof = spec.profiles[0]
    lo, hi = prof[0][1], prof[2][1]
    clipped = [min(max(n, lo), hi) for n in lengths]
    out: dict[str, Any] = {"source": os.path.relpath(src, os.path.dirname(HERE)) if src == SQUAD_FILE else src,
                           "requests": len(lengths), "batch": 1, "distinct_lengths": len(set(clipped)),
                           "clipped_to_profile": sum(1 for a, b in zip(lengths, clipped, strict=True) if a != b),
                           "min": min(clipped), "max": max(clipped), "mean": statistics.fmean(clipped), "methods": {}}
    result["squad"] = out
    dev_inputs = live["dev_inputs"]
    reqs = [dev_inputs((1, n), True) for n in clipped]
    reqs_eager = [dev_inputs((1, n), False) for n in clipped]

    def stream(name: str, fn: Callable[[dict[str, Any]], Any], data: list[dict[str, Any]], passes: int = 1) -> None:
        for pss in range(passes):
            lat = [timer.one(lambda x=x: fn(x))[0] for x in data]
            key = name if passes == 1 else f"{name} (pass {pss + 1})"
            out["methods"][key] = {"total_ms": sum(lat), "mean_ms": statistics.fmean(lat), "median_ms": statistics.median(lat),
                                   "p99_ms": sorted(lat)[int(0.99 * (len(lat) - 1))], "max_ms": max(lat)}
            print(f"[squad] {key}: total {sum(lat):.1f} ms, mean {statistics.fmean(lat):.3f} ms", flush=True)

    print(f"[squad] {len(lengths)} requests at batch 1, {out['distinct_lengths']} distinct lengths {out['min']}..{out['max']}", flush=True)
    stream("eager", live["eager"], reqs_eager)
    if live.get("compile") is not None:
        # NOTE: the same compiled model as in the latency part, already warmed at batch 1 and
        # several lengths, so the stream sees the dynamic graph; a recompile would show in max_ms.
        stream("compile", live["compile"], reqs_eager)
    stream("engine", live["engine_nog"].run, reqs)
    if timer.cuda:
        path = live["engine_path"]
        for size in (args.squad_graph_cache, 16):
            eng = dynashape.load(path, graph_cache_size=size)
            stream(f"engine_graphs cache={size}", eng.run, reqs, passes=2)
            g = eng.graph_stats()
            out["methods"][f"engine_graphs cache={size} (pass 2)"]["graphs"] = {"captures": g["captures"], "replays": g["replays"],
                                                                                  "held": g["graphs"], "graph_mb": round(g["graph_bytes"] / MB, 1),
                                                                                  "failures": g["failures"]}
            del eng
            mem.free()


_CHILD = r"""
import json, sys, time
spawned = []  # processes started during import + load + runs (a load must compile nothing)
sys.addaudithook(lambda ev, a: spawned.append(ev) if ev in ("subprocess.Popen", "os.posix_spawn", "os.exec", "os.system") else None)
t0 = time.perf_counter()
import torch
import dynashape
t1 = time.perf_counter()
path, shapes, graphs, cuda = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3] == "1", sys.argv[4] == "1"
if cuda:
    torch.zeros(1, device="cuda"); torch.cuda.synchronize()
t2 = time.perf_counter()
engine = dynashape.load(path, cuda_graphs=graphs)
if cuda: torch.cuda.synchronize()
t3 = time.perf_counter()
mem_load = torch.cuda.memory_allocated() if cuda else 0
dev = "cuda" if cuda else "cpu"
inputs = {}
for s in engine.inputs:
    shp = shapes[s.name]
    dt = getattr(torch, s.dtype)
    if dt.is_floating_point:
        inputs[s.name] = torch.rand(shp, device=dev).to(dt)
    elif "mask" in s.name:
        inputs[s.name] = torch.ones(shp, dtype=dt, device=dev)
    else:
        inputs[s.name] = torch.randint(0, 1000, shp, device=dev).to(dt)
if cuda: torch.cuda.synchronize()
t4 = time.perf_counter()
engine.run(inputs)
if cuda: torch.cuda.synchronize()
t5 = time.perf_counter()
engine.run(inputs)
if cuda: torch.cuda.synchronize()
t6 = time.perf_counter()
per_profile = []
if cuda and len(sys.argv) > 5:
    for k, opt in enumerate(json.loads(sys.argv[5])):
        x = {}
        for s in engine.inputs:
            dt = getattr(torch, s.dtype)
            x[s.name] = torch.rand(opt[s.name], device=dev).to(dt) if dt.is_floating_point else torch.ones(opt[s.name], dtype=dt, device=dev)
        engine.run(x, profile=k)
    torch.cuda.synchronize()
print("CHILD_JSON " + json.dumps({
    "import_s": t1 - t0, "cuda_init_s": t2 - t1, "load_s": t3 - t2, "first_run_s": t5 - t4, "second_run_s": t6 - t5,
    "memory_allocated_after_load_mb": mem_load / 2**20,
    "memory_allocated_after_runs_mb": (torch.cuda.memory_allocated() / 2**20) if cuda else 0,
    "max_memory_allocated_mb": (torch.cuda.max_memory_allocated() / 2**20) if cuda else 0,
    "processes_spawned": len(spawned), "torch_inductor_imported": int("torch._inductor" in sys.modules),
}))
"""


def child_startup(path: str, shapes: dict[str, tuple[int, ...]], graphs: bool, cuda: bool,
                  opt_shapes: list[dict[str, list[int]]] | None = None) -> dict[str, Any]:
    argv = [sys.executable, "-c", _CHILD, path, json.dumps({n: list(s) for n, s in shapes.items()}), "1" if graphs else "0", "1" if cuda else "0"]
    if opt_shapes is not None:
        argv.append(json.dumps(opt_shapes))
    t = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("CHILD_JSON ")), None)
    if p.returncode != 0 or line is None:
        return {"error": f"child exited {p.returncode}: {(p.stderr or p.stdout)[-1500:]}"}
    r = {k: round(v, 4) for k, v in json.loads(line[len("CHILD_JSON "):]).items()}
    r["process_wall_s"] = round(wall, 2)
    return r


def run_startup(spec: Spec, args: argparse.Namespace, result: dict[str, Any], path: str) -> None:
    cuda = args.device.startswith("cuda")
    shapes = point_shapes(spec, spec.startup_point)
    out: dict[str, Any] = {"shape": {n: list(s) for n, s in shapes.items()},
                           "note": "fresh `python -c` process: import, CUDA init, dynashape.load, first run + synchronize, second run"}
    for graphs in ((True, False) if cuda else (False,)):
        key = "cuda_graphs" if graphs else "no_graphs"
        out[key] = child_startup(path, shapes, graphs, cuda)
        print(f"[startup] {key}: {out[key]}", flush=True)
    result["startup"] = out


def run_sharing(spec: Spec, args: argparse.Namespace, result: dict[str, Any], workdir: str) -> None:
    """One-profile vs three-profile engine: file size and GPU memory after load (fresh processes)."""
    cuda = args.device.startswith("cuda")
    model = spec.make()
    if spec.name == "resnet50" and not args.quick:
        three = [((1,), (2,), (4,)), ((4,), (8,), (16,)), ((16,), (32,), (64,))]
        if args.sharing_static:
            three = [((1,), (1,), (1,)), ((8,), (8,), (8,)), ((32,), (32,), (32,))]
    else:
        three = [spec.profiles[0]] * 3 if len(spec.profiles) == 1 else (spec.profiles * 3)[:3]
        three = [tuple(tuple(v) for v in p) for p in three]  # type: ignore[misc]
    out: dict[str, Any] = {"target": "3 profiles cost at most 1.15x the file size and the GPU memory of 1 profile", "engines": {}}
    result["sharing"] = out
    for n in (3, 1):
        profs = [make_profile(spec, *p) for p in three[:n]]
        print(f"[sharing] building a {n}-profile engine: " + "; ".join(p.describe() for p in profs), flush=True)
        e, secs = build_engine(spec, model, profs, args.device, three[0][1], args.validate)
        path = os.path.join(workdir, f"{spec.name}_{n}profiles.engine")
        e.save(path)
        opt = [{k: list(r.opt) for k, r in p.items()} for p in profs]
        del e
        gc.collect()
        child = child_startup(path, point_shapes(spec, three[0][1]), False, cuda, opt)
        out["engines"][f"{n}_profiles"] = {"profiles": [p.describe() for p in profs], "build_seconds": round(secs, 2),
                                           "file_mb": round(os.path.getsize(path) / MB, 2), "child": child}
        print(f"[sharing]   {n} profile(s): built in {secs:.1f} s, file {os.path.getsize(path) / MB:.1f} MB, child {child}", flush=True)
    one, three_e = out["engines"]["1_profiles"], out["engines"]["3_profiles"]
    out["file_ratio"] = three_e["file_mb"] / one["file_mb"]
    if cuda and "error" not in one["child"] and "error" not in three_e["child"]:
        out["memory_after_load_ratio"] = three_e["child"]["memory_allocated_after_load_mb"] / max(one["child"]["memory_allocated_after_load_mb"], 1e-9)
        out["memory_after_runs_ratio"] = three_e["child"]["memory_allocated_after_runs_mb"] / max(one["child"]["memory_allocated_after_runs_mb"], 1e-9)
    out["meets_target"] = out["file_ratio"] <= 1.15 and out.get("memory_after_load_ratio", 0) <= 1.15


def run_layout(spec: Spec, args: argparse.Namespace, timer: Timer, result: dict[str, Any]) -> None:
    """Channels-last on and off, side by side: one dynamic engine per layout (one profile over the
    model's whole range), timed at the smallest and the largest shape, without and with CUDA graphs.

    NOTE: static engines would hide the difference: Inductor converts convolutions to channels-last
    by itself when every shape is static, and not with dynamic dims.
    """
    if spec.name == "bert":
        result["notes"].append("layout: only for convolutional models (resnet50, segmentation)")
        return
    lo, hi = spec.points[0], spec.points[-1]
    opt = spec.profiles[-1][1]
    profile = make_profile(spec, lo, opt, hi)
    model = spec.make()
    out: dict[str, Any] = {"note": f"dynamic engine, one profile {profile.describe()}; median ms of one call", "points": {}}
    result["layout"] = out
    rows: dict[tuple[int, ...], dict[str, Any]] = {p: {} for p in (lo, hi)}
    for cl in (False, True):
        e, secs = build_engine(spec, model, [profile], args.device, opt, args.validate, channels_last=cl)
        key = "channels_last" if cl else "contiguous"
        nog = e.with_options(cuda_graphs=False)
        for p, row in rows.items():
            x = {n: t.to(args.device) for n, t in spec.inputs(p).items()}
            row[f"{key}_build_s"] = round(secs, 2)
            row[f"{key}_ms"] = timer.many(lambda x=x, f=nog.run: f(x), args.iters, args.warmup)["median_ms"]
            if timer.cuda:
                row[f"{key}_graphs_ms"] = timer.many(lambda x=x, f=e.run: f(x), args.iters, args.warmup)["median_ms"]
        del e, nog
        gc.collect()
    for p, row in rows.items():
        row["channels_last_over_contiguous"] = row["channels_last_ms"] / row["contiguous_ms"]
        if timer.cuda:
            row["graphs_channels_last_over_contiguous"] = row["channels_last_graphs_ms"] / row["contiguous_graphs_ms"]
        out["points"][point_text(p)] = row
        print(f"[layout] {point_text(p)}: {row}", flush=True)


# ------------------------------------------------------------------------------------------------
# Summary and markdown
# ------------------------------------------------------------------------------------------------


def summarize_result(spec: Spec, result: dict[str, Any]) -> None:
    m = result.get("methods", {})
    peak = result.get("matmul", {}).get("tflops_median")
    summary: dict[str, Any] = {}
    for k, row in result.get("shapes", {}).items():
        lat = {name: m[name][k]["median_ms"] for name in m if k in m[name]}
        row["median_ms"] = lat
        ratios = {}
        for eng, st in (("engine", "static"), ("engine_graphs", "static_graphs")):
            if eng in lat and st in lat:
                ratios[f"{eng}/{st}"] = lat[eng] / lat[st]
        for eng in ("engine", "engine_graphs"):
            for base in ("eager", "compile"):
                if eng in lat and base in lat:
                    ratios[f"{eng}/{base}"] = lat[eng] / lat[base]
        row["latency_ratios"] = ratios
        fl = row.get("flops_formula") or row.get("flops")
        if fl and peak and fl == fl:
            row["tflops"] = {name: fl / (v * 1e-3) / 1e12 for name, v in lat.items()}
            row["fraction_of_matmul_peak"] = {name: t / peak for name, t in row["tflops"].items()}
    for eng, st in (("engine", "static"), ("engine_graphs", "static_graphs")):
        speeds = {k: 1.0 / r["latency_ratios"][f"{eng}/{st}"] for k, r in result.get("shapes", {}).items() if f"{eng}/{st}" in r.get("latency_ratios", {})}
        if speeds:
            worst = min(speeds, key=lambda k: speeds[k])
            summary[f"{eng}_speed_vs_{st}"] = {"geomean": geomean(speeds.values()), "worst": speeds[worst], "worst_shape": worst,
                                               "shapes": sorted(speeds), "target": 0.97,
                                               "meets_target": speeds[worst] >= 0.97}
    if spec.name == "resnet50" and "1" in result.get("shapes", {}):
        v = result["shapes"]["1"]["median_ms"].get("engine_graphs")
        summary["resnet50_b1_engine_graphs_ms"] = {"value": v, "target_ms_on_h100": 0.6, "meets_target": v is not None and v < 0.6,
                                                   "gpu": result["machine"].get("gpu")}
    if spec.name == "bert" and "64x512" in result.get("shapes", {}):
        row = result["shapes"]["64x512"]
        summary["bert_64x512_fraction_of_peak"] = {
            name: {"tflops": row["tflops"][name], "fraction": row["fraction_of_matmul_peak"][name]}
            for name in row.get("tflops", {})} | {"target": 0.6, "flops": row.get("flops_formula"), "flops_counted": row.get("flops")}
    result["summary"] = summary


ORDER = ("eager", "compile", "static", "static_graphs", "engine", "engine_graphs")
LABEL = {"eager": "eager", "compile": "torch.compile", "static": "static", "static_graphs": "static+graphs",
         "engine": "engine", "engine_graphs": "engine+graphs"}


def markdown(spec: Spec, result: dict[str, Any]) -> str:
    mi = result["machine"]
    lines = [f"### {spec.label}", "",
             f"{mi.get('gpu', 'CPU ' + mi['cpu_model'])}; torch {mi['torch']}, CUDA {mi.get('torch_cuda')}, driver {mi.get('cuda_driver')}; "
             f"{'transformers ' + str(mi['transformers']) + '; ' if spec.name == 'bert' else ''}"
             f"{'torchvision ' + str(mi['torchvision']) + '; ' if spec.name == 'resnet50' else ''}{mi['date']}; "
             f"{result['settings']['precision']}; median of {result['settings']['iters']} calls after {result['settings']['warmup']} warm-up, "
             f"{'CUDA events' if result['settings']['device'].startswith('cuda') else 'perf_counter'}.", ""]
    if "matmul" in result:
        mm = result["matmul"]
        lines.append(f"Matmul peak ({mm['dtype']} {mm['n']}^3): {mm['tflops_median']:.1f} TFLOP/s median ({mm['tflops_best']:.1f} best).")
        lines.append("")
    m = result.get("methods", {})
    if m:
        cols = [c for c in ORDER if m.get(c)]
        header = [" x ".join(spec.point_names), *[f"{LABEL[c]} ms" for c in cols], "engine/static", "engine+g/static+g",
                  "engine+g/eager", "engine+g/compile", "% of matmul peak (best)"]
        rows = []
        for k, r in result["shapes"].items():
            lat = r.get("median_ms", {})
            rt = r.get("latency_ratios", {})
            frac = r.get("fraction_of_matmul_peak", {})
            best = max(frac.values()) if frac else None
            rows.append([k, *[fmt_ms(lat.get(c)) for c in cols],
                         *[f"{rt[x]:.3f}" if x in rt else "—" for x in ("engine/static", "engine_graphs/static_graphs", "engine_graphs/eager", "engine_graphs/compile")],
                         f"{100 * best:.1f}%" if best is not None else "—"])
        lines.append(md_table(header, rows))
        lines.append("")
        lines.append("Ratios are latency ratios (below 1: the engine is faster). The static baseline exists only at "
                     + (", ".join(k for k, v in result.get("static_engines", {}).items() if "build_seconds" in v) or "no shape") + ".")
    s = result.get("summary", {})
    for key in ("engine_speed_vs_static", "engine_graphs_speed_vs_static_graphs"):
        if key in s:
            v = s[key]
            lines.append(f"- {key}: geomean {v['geomean']:.3f}, worst {v['worst']:.3f} at {v['worst_shape']} "
                         f"(target >= 0.97: {'met' if v['meets_target'] else 'MISSED by ' + format(0.97 - v['worst'], '.3f')})")
    if "resnet50_b1_engine_graphs_ms" in s:
        v = s["resnet50_b1_engine_graphs_ms"]
        lines.append(f"- ResNet-50 batch 1 with CUDA graphs: {fmt_ms(v['value'])} ms on {v['gpu']} (target < 0.6 ms on an H100: "
                     f"{'met' if v['meets_target'] else 'MISSED'})")
    if "bert_64x512_fraction_of_peak" in s:
        v = s["bert_64x512_fraction_of_peak"]
        parts = [f"{LABEL.get(n, n)} {d['tflops']:.0f} TFLOP/s = {100 * d['fraction']:.0f}%" for n, d in v.items() if isinstance(d, dict)]
        lines.append("- BERT 64x512 vs the matmul peak (target 60%): " + ", ".join(parts))
    de = result.get("dynamic_engine")
    if de:
        lines.append(f"- dynamic engine: {' | '.join(de['profiles'])}; build {de['build_seconds']} s (per profile {de['profile_build_seconds']}), "
                     f"file {de['file_mb']} MB, channels_last {de['channels_last']}")
    st = result.get("static_engines", {})
    if st:
        lines.append("- static engines: " + ", ".join(f"{k} " + (f"{v['build_seconds']} s" if "build_seconds" in v else ("skipped" if "skipped" in v else "FAILED"))
                                                     for k, v in st.items()))
    tc = result.get("torch_compile")
    if tc:
        if "first_call_seconds" in tc:
            lines.append(f"- torch.compile(dynamic=True): warm-up over all shapes {tc.get('warm_all_shapes_seconds')} s; first call per shape (s): "
                         + ", ".join(f"{k} {v}" for k, v in tc["first_call_seconds"].items()))
        if "error" in tc or "skipped" in tc:
            lines.append(f"- torch.compile: {tc.get('error') or tc.get('skipped')}")
    su = result.get("startup")
    if su:
        for key in ("cuda_graphs", "no_graphs"):
            if key in su:
                v = su[key]
                lines.append(f"- start-up, fresh process ({key}): " + (v["error"][:300] if "error" in v else
                             f"import {v['import_s']:.2f} s, load {v['load_s']:.2f} s, first run {v['first_run_s'] * 1000:.1f} ms, "
                             f"second {v['second_run_s'] * 1000:.2f} ms, memory after load {v['memory_allocated_after_load_mb']:.0f} MB, "
                             f"processes spawned {v.get('processes_spawned', '?')}, torch._inductor imported "
                             f"{ {1: 'yes', 0: 'no'}.get(v.get('torch_inductor_imported', -1), '?') }"))
    if m and any("peak_over_resident_mb" in v for d in m.values() for v in d.values()):
        pk = {c: max((v.get("peak_over_resident_mb", 0) for v in m[c].values()), default=0) for c in m if m[c]}
        lines.append("- peak GPU memory over what was resident before the method ran (max over shapes, MB): "
                     + ", ".join(f"{LABEL.get(c, c)} {v:.0f}" for c, v in pk.items()))
    sq = result.get("squad")
    if sq:
        lines.append("")
        lines.append(f"SQuAD v2 stream: first {sq['requests']} lengths in file order, batch 1, {sq['distinct_lengths']} distinct lengths "
                     f"({sq['min']}..{sq['max']}, mean {sq['mean']:.0f}).")
        lines.append("")
        lines.append(md_table(["method", "total ms", "mean ms", "median ms", "p99 ms", "graphs captured / replayed, both passes together"],
                              [[k, f"{v['total_ms']:.1f}", fmt_ms(v["mean_ms"]), fmt_ms(v["median_ms"]), fmt_ms(v["p99_ms"]),
                                f"{v['graphs']['captures']} / {v['graphs']['replays']}" if "graphs" in v else "—"] for k, v in sq["methods"].items()]))
    sh = result.get("sharing")
    if sh:
        lines.append("")
        lines.append("Weight sharing (target: 3 profiles <= 1.15x the file size and GPU memory of 1 profile):")
        lines.append("")
        rows = []
        for k, v in sh["engines"].items():
            c = v["child"]
            rows.append([k, "; ".join(v["profiles"]), v["build_seconds"], v["file_mb"],
                         f"{c['memory_allocated_after_load_mb']:.1f}" if "error" not in c else "error",
                         f"{c['memory_allocated_after_runs_mb']:.1f}" if "error" not in c else "error"])
        lines.append(md_table(["engine", "profiles", "build s", "file MB", "GPU MB after load", "GPU MB after a run per profile"], rows))
        lines.append("")
        lines.append(f"File ratio {sh['file_ratio']:.3f}; memory ratio after load {sh.get('memory_after_load_ratio', float('nan')):.3f}, "
                     f"after runs {sh.get('memory_after_runs_ratio', float('nan')):.3f}.")
    lay = result.get("layout")
    if lay:
        lines.append("")
        lines.append(f"Channels-last on and off ({lay['note']}; ratio below 1: channels-last is faster):")
        lines.append("")
        g = any("contiguous_graphs_ms" in v for v in lay["points"].values())
        head = ["shape", "contiguous ms", "channels-last ms", "ratio"] + (["contiguous+graphs ms", "channels-last+graphs ms", "ratio (graphs)"] if g else [])
        rows = [[k, fmt_ms(v["contiguous_ms"]), fmt_ms(v["channels_last_ms"]), f"{v['channels_last_over_contiguous']:.3f}"]
                + ([fmt_ms(v["contiguous_graphs_ms"]), fmt_ms(v["channels_last_graphs_ms"]), f"{v['graphs_channels_last_over_contiguous']:.3f}"] if g else [])
                for k, v in lay["points"].items()]
        lines.append(md_table(head, rows))
    for n in result.get("notes", []):
        lines.append(f"- note: {n}")
    if result.get("skipped"):
        lines.append(f"- skipped: {result['skipped']}")
    if result.get("errors"):
        lines.append(f"- ERRORS: {result['errors']}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, choices=["resnet50", "bert", "segmentation"], help="one model per invocation")
    ap.add_argument("--out", required=True, help="JSON result path; the markdown table goes beside it (.md)")
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (with --quick, to check the script)")
    ap.add_argument("--only", default=None, help=f"comma-separated parts: {', '.join(PARTS)}. Default: matmul, latency, startup "
                                                 "(+ squad for bert); sharing runs only when named")
    ap.add_argument("--quick", action="store_true", help="tiny models and shapes: checks the logic, measures nothing useful")
    ap.add_argument("--iters", type=int, default=None, help="timed calls per method and shape (default 50; --quick 5)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed calls before timing (default 10; --quick 2)")
    ap.add_argument("--static-shapes", default=None, help="shapes with a static baseline: '1,8,64' (ResNet batch), '1x128,64x512' "
                                                          "(BERT batch x seq), '512x512,1024x1024' (segmentation H x W); default: all for "
                                                          "ResNet and segmentation; 1x128, 8x128, 32x384, 64x512, 1x8 for BERT")
    ap.add_argument("--static-limit", type=int, default=None, help="build at most this many static engines (default: all chosen)")
    ap.add_argument("--resnet-profiles", choices=["1", "2"], default="2", help="ResNet-50 dynamic engine: 2 = batch 1..8 opt 4 + 8..64 opt 32 "
                                                                               "(default), 1 = batch 1..64 opt 32")
    ap.add_argument("--bert-profiles", choices=["1", "2"], default="1", help="BERT dynamic engine: 1 = (1..64)x(8..512) opt 8x128 (default), "
                                                                             "2 = seq 8..128 opt 8x64 + seq 128..512 opt 8x384")
    ap.add_argument("--skip-compile", action="store_true", help="no torch.compile baseline")
    ap.add_argument("--validate", action="store_true", help="let dynashape.build validate every engine in a child process (slower; the "
                                                           "script compares every method with eager anyway)")
    ap.add_argument("--time-budget", type=float, default=None, help="seconds this invocation may take (default 510); optional work that "
                                                                    "would not fit is skipped and reported")
    ap.add_argument("--reserve-seconds", type=float, default=None, help="seconds kept for torch.compile, SQuAD and start-up when deciding "
                                                                       "whether to build one more static engine (default 150; bert 200)")
    ap.add_argument("--static-estimate", type=float, default=30.0, help="assumed seconds per static build before the first is timed")
    ap.add_argument("--compile-estimate", type=float, default=60.0, help="torch.compile is skipped when less than this is left")
    ap.add_argument("--squad-n", type=int, default=500, help="SQuAD v2 requests (first N lengths in file order)")
    ap.add_argument("--squad-graph-cache", type=int, default=512, help="graph_cache_size for the large-cache SQuAD run (the other uses 16)")
    ap.add_argument("--sharing-static", action="store_true", help="sharing check with 3 static profiles (batch 1, 8, 32): faster builds")
    ap.add_argument("--workdir", default=None, help="where engine files go (default: a temporary folder, removed at the end)")
    ap.add_argument("--warm-cache", action="store_true", help="reuse the Inductor compile cache (default: a fresh one, so build times are cold)")
    args = ap.parse_args(argv)

    cuda = args.device.startswith("cuda")
    if cuda and "/opt/gcc" in os.environ.get("CXX", ""):
        ap.error(f"CXX={os.environ['CXX']}: AOTInductor packages compiled with it segfault when loaded on the GPU machine "
                 "(shared/GPU.md) | expected the system compiler | run with CXX=/usr/bin/g++ CC=/usr/bin/gcc")
    if not args.warm_cache:
        import atexit
        import shutil

        cache = tempfile.mkdtemp(prefix="dynashape-gpubench-cache-")
        atexit.register(shutil.rmtree, cache, ignore_errors=True)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
        os.environ["DYNASHAPE_CACHE_DIR"] = cache
    args.iters = args.iters or (5 if args.quick else 50)
    args.warmup = args.warmup if args.warmup is not None else (2 if args.quick else 10)
    args.time_budget = args.time_budget or 510.0
    if args.reserve_seconds is None:
        args.reserve_seconds = 200.0 if args.model == "bert" else 150.0
    parts = [p.strip() for p in args.only.split(",")] if args.only else ["matmul", "latency", "startup"] + (["squad"] if args.model == "bert" else [])
    bad = [p for p in parts if p not in PARTS]
    if bad:
        ap.error(f"--only: unknown part(s) {bad}; valid: {', '.join(PARTS)}")
    args.static_points = parse_points(args.static_shapes) if args.static_shapes else None

    import torch

    if cuda and not torch.cuda.is_available():
        ap.error(f"--device {args.device}, but torch {torch.__version__} sees no CUDA device | use --device cpu --quick to check the script here")
    torch.manual_seed(0)
    budget = Budget(args.time_budget)
    spec = make_spec(args.model, args.quick)
    if args.model == "resnet50" and args.resnet_profiles == "1" and not args.quick:
        spec.profiles = [((1,), (32,), (64,))]
    if args.model == "bert" and args.bert_profiles == "2" and not args.quick:
        spec.profiles = [((1, 8), (8, 64), (64, 128)), ((1, 129), (8, 384), (64, 512))]
    result: dict[str, Any] = {
        "benchmark": "gpu_bench", "model": spec.name, "label": spec.label, "machine": machine_info(), "parts": parts,
        "settings": {"device": args.device, "precision": "fp16" if cuda else "fp32", "iters": args.iters, "warmup": args.warmup,
                     "quick": args.quick, "inductor_cache": "warm" if args.warm_cache else "cold (fresh dir)",
                     "validate_at_build": args.validate, "time_budget_s": args.time_budget,
                     "timing": "per call: synchronize, CUDA event, call, CUDA event; median" if cuda else "per call: perf_counter; median"},
        "points": [point_text(p) for p in spec.points], "point_names": spec.point_names,
        "profiles": [[point_text(x) for x in p] for p in spec.profiles], "notes": list(spec.notes), "errors": [],
    }
    own_workdir = args.workdir is None
    workdir = args.workdir or tempfile.mkdtemp(prefix="dynashape-gpubench-")
    os.makedirs(workdir, exist_ok=True)
    timer, mem = Timer(args.device), Memory(args.device)
    md_path = os.path.splitext(args.out)[0] + ".md"

    def save() -> None:
        clean = {k: v for k, v in result.items() if not k.startswith("_")}
        clean["wall_seconds"] = round(budget.elapsed(), 1)
        write_json(args.out, clean)
        write_atomic(md_path, markdown(spec, result) + "\n")

    try:
        if "matmul" in parts:
            result["matmul"] = matmul_peak(timer, args.device, args.quick)
            print(f"[matmul] {result['matmul']['tflops_median']:.1f} TFLOP/s ({result['matmul']['dtype']} {result['matmul']['n']}^3)", flush=True)
        if "latency" in parts:
            try:
                run_latency(spec, args, timer, mem, budget, result, workdir)
            except Exception as e:  # recorded in the result; the other parts still run
                result["errors"].append(f"latency: {type(e).__name__}: {str(e)[:1500]}")
                traceback.print_exc()
            save()
        live = result.pop("_live", None)
        if "squad" in parts:
            if spec.name != "bert":
                result["notes"].append("squad: only for --model bert")
            elif live is None:
                result["errors"].append("squad: needs the latency part (the engine and baselines it builds)")
            elif budget.left() < 30:
                result["skipped"] = f"squad (time budget: {budget.left():.0f} s left)"
            else:
                try:
                    run_squad(spec, args, timer, mem, result, live)
                except Exception as e:  # recorded in the result; the other parts still run
                    result["errors"].append(f"squad: {type(e).__name__}: {str(e)[:1500]}")
                    traceback.print_exc()
            save()
        if "startup" in parts:
            path = live["engine_path"] if live else None
            if path is None:
                result["errors"].append("startup: needs the latency part (the engine file it saves)")
            else:
                live = None
                mem.free()
                run_startup(spec, args, result, path)
            save()
        if "layout" in parts:
            try:
                run_layout(spec, args, timer, result)
            except Exception as e:  # recorded in the result; the other parts still run
                result["errors"].append(f"layout: {type(e).__name__}: {str(e)[:1500]}")
                traceback.print_exc()
            save()
        if "sharing" in parts:
            try:
                run_sharing(spec, args, result, workdir)
            except Exception as e:  # recorded in the result; the other parts still run
                result["errors"].append(f"sharing: {type(e).__name__}: {str(e)[:1500]}")
                traceback.print_exc()
        summarize_result(spec, result)
        save()
    finally:
        if own_workdir:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(markdown(spec, result))
    print(f"\nwrote {args.out} and {md_path} ({budget.elapsed():.0f} s)")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
