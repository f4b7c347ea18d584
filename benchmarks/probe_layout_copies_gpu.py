"""Which graph nodes launch the copy kernels that a dynamic engine pays and a static one does not.

For one model of ``dynamic_tax_gpu.py`` (``--model``): build the dynamic engine and a static engine at
``--shape``, each with channels-last on (the default for CUDA conv nets) and off, every build in its own
child process with its own Inductor cache (``$OUT/cache_<variant>``). Then, in this process:

- time each engine at ``--shape`` (CUDA graphs on and off, median of 30 calls after 10);
- profile each one without graphs, and attribute every kernel to the chain of ATen ops that launched it
  (``aten::copy_ < aten::contiguous < aten::cudnn_convolution < aten::convolution``, with the inputs'
  shapes), so a copy is traced to the operation that asked for it;
- keep the generated wrapper code (``*.cpp``) of each build for reading (``$OUT/wrappers/<variant>/``).

Run on the GPU machine:
  CXX=/usr/bin/g++ CC=/usr/bin/gcc PYTHONPATH=src python benchmarks/probe_layout_copies_gpu.py --out "$OUT" \
      --model segmentation --shape 1x3x1600x1600
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import glob
import json
import os
import shutil
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import dynamic_tax_gpu as tax  # noqa: E402
from _common import build_in_child  # noqa: E402

VARIANTS = {
    "dynamic": {"static": False, "kwargs": {}},
    "dynamic_nchw": {"static": False, "kwargs": {"channels_last": False}},
    "static": {"static": True, "kwargs": {}},
    "static_nchw": {"static": True, "kwargs": {"channels_last": False}},
}


def child(model_key: str, variant: str, shape: tuple[int, ...], path: str, extra: dict[str, Any]) -> None:
    import torch

    import dynashape
    from dynashape import Profile

    cfg = next(c for c in tax.configs() if c.key == model_key)
    model = tax.make_model(cfg.make)
    spec = {**VARIANTS[variant]["kwargs"], **extra} if variant in VARIANTS else dict(extra)
    if VARIANTS.get(variant, {}).get("static"):
        prof, axes, example = Profile({cfg.input_name: (shape, shape, shape)}), None, torch.rand(shape)
    else:
        prof, axes, example = Profile({cfg.input_name: cfg.profile}), {cfg.input_name: cfg.axes}, torch.rand(cfg.profile[1])
    t = time.perf_counter()
    # PROBE_DEVICE=cpu: a dry run of the build on a machine without a GPU (fp32)
    device = os.environ.get("PROBE_DEVICE", "cuda")
    e = dynashape.build(model, prof, backend="inductor", device=device, precision="fp16" if device == "cuda" else "fp32", example_inputs={cfg.input_name: example},
                        dynamic_axes=axes, validate=False, quiet=True, **spec)
    e.save(path)
    print(json.dumps({"build_s": round(time.perf_counter() - t, 1), "parts": [p.describe() for p in e.manifest.parts],
                      "backend_data": {k: v for k, v in e.manifest.backend_data.items() if k in ("alignment", "channels_last", "attention")}}))


def chains(torch: Any, fn: Any, calls: int = 10) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every kernel's GPU time per call, grouped by the chain of CPU ops that launched it (ATen's
    kernels; AOTInductor launches its Triton kernels without an ATen op), and every kernel by name."""
    from torch.profiler import ProfilerActivity, profile

    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], record_shapes=True) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    acc: dict[tuple[str, str], list[float]] = collections.defaultdict(lambda: [0.0, 0])
    for e in prof.events():
        kernels = getattr(e, "kernels", None) or []
        if not kernels:
            continue
        chain, p = [], e
        while p is not None and len(chain) < 6:
            shapes = getattr(p, "input_shapes", None) or []
            chain.append(f"{p.name}{[list(s) for s in shapes if s][:3]}" if p is e else p.name)
            p = p.cpu_parent
        for k in kernels:
            slot = acc[(k.name[:100], " < ".join(chain))]
            slot[0] += k.duration
            slot[1] += 1
    rows = [{"kernel": k, "launched_by": c, "us_per_call": round(v[0] / calls, 1), "count_per_call": round(v[1] / calls, 2)}
            for (k, c), v in acc.items()]
    rows.sort(key=lambda r: -r["us_per_call"])
    by_name: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0])
    for e in prof.events():
        if str(getattr(e, "device_type", "")).endswith("CUDA"):
            slot = by_name[e.name[:100]]
            slot[0] += e.time_range.end - e.time_range.start
            slot[1] += 1
    kernels = [{"kernel": k, "us_per_call": round(v[0] / calls, 1), "count_per_call": round(v[1] / calls, 2)} for k, v in by_name.items()]
    kernels.sort(key=lambda r: -r["us_per_call"])
    return rows, kernels


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="segmentation")
    ap.add_argument("--shape", default="1x3x1600x1600")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, of " + ", ".join(VARIANTS))
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        key, variant, path, extra = args.child
        child(key, variant, tuple(int(x) for x in args.shape.split("x")), path, json.loads(extra))
        return 0
    shape = tuple(int(x) for x in args.shape.split("x"))
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    variants = [v for v in args.variants.split(",") if v]

    def build(v: str) -> tuple[str, dict[str, Any]]:
        # NOTE: Inductor's cache goes where TORCHINDUCTOR_CACHE_DIR says (dynashape only sets it when unset):
        # without it the sources were not under cache_<v>/inductor and no wrapper was kept (2026-12-01)
        env = {**os.environ, "DYNASHAPE_CACHE_DIR": os.path.join(out, f"cache_{v}"),
               "TORCHINDUCTOR_CACHE_DIR": os.path.join(out, f"cache_{v}", "inductor")}
        path = os.path.join(out, f"{args.model}.{v}.engine")
        info = build_in_child([__file__, "--out", out, "--model", args.model, "--shape", args.shape,
                               "--child", args.model, v, path, "{}"], env, path, 480)
        print(f"[build] {v}: {info}", flush=True)
        return v, info

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(variants)) as pool:
        built = dict(pool.map(build, variants))

    import torch
    from gpu_bench import Timer

    import dynashape

    cfg = next(c for c in tax.configs() if c.key == args.model)
    timer = Timer("cuda")
    x = {cfg.input_name: torch.rand(shape, device="cuda", generator=torch.Generator("cuda").manual_seed(0))}
    report: dict[str, Any] = {"model": args.model, "shape": list(shape), "machine": tax.machine_info(), "engines": {}}
    for v, info in built.items():
        row: dict[str, Any] = {"build": {k: val for k, val in info.items() if k != "path"}}
        if "path" in info:
            e = dynashape.load(info["path"])
            plain, graphed = e.with_options(cuda_graphs=False), e.with_options(cuda_graphs=True)
            row["ms"] = round(timer.many(lambda p=plain: p.run(x), 30, 10)["median_ms"], 4)
            row["ms_graphs"] = round(timer.many(lambda g=graphed: g.run(x), 30, 10)["median_ms"], 4)
            row["kernels"], row["by_kernel"] = chains(torch, lambda p=plain: p.run(x))
            row["total_us_per_call"] = round(sum(r["us_per_call"] for r in row["by_kernel"]), 1)
            row["triton_us_per_call"] = round(sum(r["us_per_call"] for r in row["by_kernel"] if r["kernel"].startswith("triton")), 1)
            print(f"[time] {v}: {row['ms']} ms, graphs {row['ms_graphs']} ms, GPU {row['total_us_per_call']} us", flush=True)
        report["engines"][v] = row
        dest = os.path.join(out, "wrappers", v)
        os.makedirs(dest, exist_ok=True)
        # the AOTInductor wrapper (the calls and the buffers' strides) and the Triton kernels' sources
        for pattern in ("*wrapper.cpp", "*.py"):
            for f in glob.glob(os.path.join(out, f"cache_{v}", "inductor", "**", pattern), recursive=True):
                shutil.copy(f, os.path.join(dest, os.path.basename(f)))
    with open(os.path.join(out, f"layout_copies_{args.model}.json"), "w") as f:
        json.dump(report, f, indent=1)
    lines = [f"# {args.model} at {args.shape}", ""]
    for v, row in report["engines"].items():
        lines.append(f"## {v}: {row.get('ms')} ms, graphs {row.get('ms_graphs')} ms, GPU {row.get('total_us_per_call')} us/call "
                     f"(Triton {row.get('triton_us_per_call')}); build {row['build']}")
        lines.append("### by launching ATen op")
        for r in row.get("kernels", [])[:30]:
            lines.append(f"- {r['us_per_call']:8.1f} us x{r['count_per_call']:<5} {r['kernel']}  <=  {r['launched_by'][:400]}")
        lines.append("### by kernel")
        for r in row.get("by_kernel", [])[:40]:
            lines.append(f"- {r['us_per_call']:8.1f} us x{r['count_per_call']:<5} {r['kernel']}")
        lines.append("")
    with open(os.path.join(out, f"layout_copies_{args.model}.md"), "w") as f:
        f.write("\n".join(lines))
    for v in variants:
        shutil.rmtree(os.path.join(out, f"cache_{v}"), ignore_errors=True)
        with_engine = os.path.join(out, f"{args.model}.{v}.engine")
        if os.path.exists(with_engine):
            os.remove(with_engine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
