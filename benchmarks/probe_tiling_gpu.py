"""Pointwise kernels under symbolic sizes: FCN's head in small, dynamic against static, Inductor's tiling options.

On an H200 (2026-12-01, torch 2.11, ``probe_layout_copies_gpu.py``) FCN-ResNet50's dynamic engine at
1x3x512x512 (its aligned package) spent 84 us a call more GPU time than the static engine, all in Triton
kernels: the final bilinear upsample to the input's size (62.1 us against 11.6) and the BatchNorm/ReLU
kernels (e.g. 50.2 against 32.1 us for five launches). The convolutions took the same time. Inductor
skips its tiling analysis for dynamic shapes (``torch._inductor.config.triton.coalesce_tiling_analysis``:
"does not yet apply to dynamic shapes"), so a pointwise kernel over ``(C, H, W)`` runs as one flat index
that is divided by the symbolic sizes in every thread.

This probe builds a small net with the same pattern (a stride-8 stem, BatchNorm/ReLU blocks on
channels-last maps, a 21-channel 1x1 classifier, a bilinear upsample back to the input's size) in fp16
on CUDA, as a static engine per shape and as dynamic engines with Inductor's tiling options:

- ``dynamic``: dynashape's defaults;
- ``nd``: ``triton.prefer_nd_tiling`` (a program axis per dim: "simplifies indexing expressions");
- ``nd3``: ``nd`` and ``triton.max_tiles = 3``.

For each engine and shape: ms per call (CUDA graphs on and off), GPU time per kernel (profiler), and the
Triton source of every kernel (``$OUT/src/<variant>/``) to read how it indexes.

    CXX=/usr/bin/g++ CC=/usr/bin/gcc PYTHONPATH=src python benchmarks/probe_tiling_gpu.py --out "$OUT/tiling"
"""

from __future__ import annotations

import argparse
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

from _common import build_in_child  # noqa: E402

VARIANTS: dict[str, dict[str, Any]] = {
    "dynamic": {},
    "nd": {"triton.prefer_nd_tiling": True},
    "nd3": {"triton.prefer_nd_tiling": True, "triton.max_tiles": 3},
}
PROFILE = ((1, 3, 384, 384), (1, 3, 512, 512), (1, 3, 768, 768))


def make_model() -> Any:
    import torch
    from torch import nn

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.stem = nn.Conv2d(3, 256, 8, stride=8, bias=False)
            self.bn1 = nn.BatchNorm2d(256)
            self.conv = nn.Conv2d(256, 256, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(256)
            self.cls = nn.Conv2d(256, 21, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.bn1(self.stem(x)))
            y = torch.relu(self.bn2(self.conv(y)) + y)
            y = self.cls(y)
            return nn.functional.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)

    from _common import calibrate_batchnorm

    return calibrate_batchnorm(Head().eval(), (2, 3, 512, 512))


def child(variant: str, shape: tuple[int, ...] | None, path: str) -> None:
    import torch

    import dynashape
    from dynashape import Profile

    model = make_model()
    if shape:
        prof, axes, example = Profile({"x": (shape, shape, shape)}), None, torch.rand(shape)
        config: dict[str, Any] = {}
    else:
        prof, axes, example = Profile({"x": PROFILE}), {"x": {2: "H", 3: "W"}}, torch.rand(PROFILE[1])
        config = VARIANTS[variant]
    t = time.perf_counter()
    device = os.environ.get("PROBE_DEVICE", "cuda")  # PROBE_DEVICE=cpu: a dry run of the build without a GPU (fp32)
    e = dynashape.build(model, prof, backend="inductor", device=device, precision="fp16" if device == "cuda" else "fp32", example_inputs={"x": example},
                        dynamic_axes=axes, quiet=True, inductor_config=config or None)
    e.save(path)
    print(json.dumps({"build_s": round(time.perf_counter() - t, 1), "parts": [p.describe() for p in e.manifest.parts]}))


def kernels(torch: Any, fn: Any) -> list[dict[str, Any]]:
    """Every kernel's GPU time a call, largest first (probe_layout_copies_gpu's profile, by kernel name)."""
    from probe_layout_copies_gpu import chains

    return chains(torch, fn, calls=20)[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--shapes", default="1x3x512x512,1x3x517x611,1x3x768x768")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        variant, shape, path = args.child
        child(variant, tuple(int(x) for x in shape.split("x")) if shape != "-" else None, path)
        return 0
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",") if s]
    jobs = [(v, "-") for v in args.variants.split(",") if v] + [("static", "x".join(map(str, s))) for s in shapes]

    def build(job: tuple[str, str]) -> tuple[str, dict[str, Any]]:
        v, shape = job
        name = v if shape == "-" else f"static_{shape}"
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": os.path.join(out, f"cache_{name}")}
        path = os.path.join(out, f"{name}.engine")
        info = build_in_child([__file__, "--out", out, "--child", v, shape, path], env, path, 400)
        print(f"[build] {name}: {info}", flush=True)
        return name, info

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        built = dict(pool.map(build, jobs))

    import torch
    from gpu_bench import Timer

    import dynashape

    timer = Timer("cuda")
    report: dict[str, Any] = {"shapes": [list(s) for s in shapes], "torch": torch.__version__,
                              "device": torch.cuda.get_device_name(), "engines": {}}
    for name, info in built.items():
        row: dict[str, Any] = {"build": {k: v for k, v in info.items() if k != "path"}, "at": {}}
        if "path" in info:
            e = dynashape.load(info["path"])
            plain, graphed = e.with_options(cuda_graphs=False), e.with_options(cuda_graphs=True)
            for s in shapes:
                key = "x".join(map(str, s))
                if name.startswith("static_") and not name.endswith(key):
                    continue
                x = {"x": torch.rand(s, device="cuda", generator=torch.Generator("cuda").manual_seed(0))}
                ks = kernels(torch, lambda p=plain, x=x: p.run(x))
                row["at"][key] = {"ms": round(timer.many(lambda p=plain, x=x: p.run(x), 30, 10)["median_ms"], 4),
                                  "ms_graphs": round(timer.many(lambda g=graphed, x=x: g.run(x), 30, 10)["median_ms"], 4),
                                  "gpu_us": round(sum(k["us_per_call"] for k in ks), 1), "kernels": ks[:15]}
                print(f"[time] {name} at {key}: {row['at'][key]['ms_graphs']} ms with graphs, GPU {row['at'][key]['gpu_us']} us", flush=True)
        report["engines"][name] = row
        dest = os.path.join(out, "src", name)
        os.makedirs(dest, exist_ok=True)
        for f in glob.glob(os.path.join(out, f"cache_{name}", "**", "*.py"), recursive=True):
            with open(f, errors="replace") as fh:
                text = fh.read()
            if "@triton.jit" in text and "def triton_" in text:
                shutil.copy(f, os.path.join(dest, os.path.basename(f)))
        shutil.rmtree(os.path.join(out, f"cache_{name}"), ignore_errors=True)
        if "path" in info and os.path.exists(info["path"]):
            os.remove(info["path"])
    with open(os.path.join(out, "tiling.json"), "w") as f:
        json.dump(report, f, indent=1)
    lines = [f"# FCN-like head, fp16, {report['device']}, torch {report['torch']}", ""]
    for name, row in report["engines"].items():
        lines.append(f"## {name}: build {row['build']}")
        for key, r in row["at"].items():
            lines.append(f"### at {key}: {r['ms']} ms, graphs {r['ms_graphs']} ms, GPU {r['gpu_us']} us")
            lines += [f"- {k['us_per_call']:8.2f} us x{k['count_per_call']:<5} {k['kernel']}" for k in r["kernels"][:10]]
        lines.append("")
    with open(os.path.join(out, "tiling.md"), "w") as f:
        f.write("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
