"""Which stage of the seed segmentation net goes wrong in a dynamic CUDA engine at some sizes.

Found on the H200 (2026-11-30): the general package (no alignment) of the seed net's dynamic fp16 CUDA
engine gives outputs off by 0.11-0.38 (relative to the largest) at 600x800, 200x300 and 131x257, and is
right at 777x1001 and at multiples of 32; the same builds on the CPU are right everywhere. This probe
builds every prefix of the net (down1, down2, the first resize, ..., the whole net) as its own engine
(one child process each, side by side), with the variants below, and compares each with eager fp32 on
the GPU at a sweep of sizes, so the first stage that differs is the one to read.

  CXX=/usr/bin/g++ CC=/usr/bin/gcc PYTHONPATH=src python benchmarks/probe_general_package_gpu.py --out "$OUT"
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
from typing import Any

import torch
from torch import nn

STAGES = ["d1", "d2", "resize1", "u1", "cat", "resize2", "up2", "full"]
VARIANTS = {"fp16": {"precision": "fp16"}, "fp32": {"precision": "fp32"}, "fp16_nchw": {"precision": "fp16", "channels_last": False}}
SHAPES = [(128, 128), (129, 129), (131, 257), (200, 300), (160, 224), (150, 150), (201, 301), (257, 131), (320, 320)]


class Prefix(nn.Module):
    def __init__(self, net: Any, stage: str) -> None:
        super().__init__()
        self.net, self.stage = net, stage

    def forward(self, input_1: torch.Tensor) -> torch.Tensor:
        n, f = self.net, nn.functional
        d1 = n.down1(input_1)
        if self.stage == "d1":
            return d1
        d2 = n.down2(d1)
        if self.stage == "d2":
            return d2
        r1 = f.interpolate(d2, size=d1.shape[-2:], mode="nearest")
        if self.stage == "resize1":
            return r1
        u1 = n.up1(r1)
        if self.stage == "u1":
            return u1
        c = torch.cat([u1, d1], dim=1)
        if self.stage == "cat":
            return c
        r2 = f.interpolate(c, size=input_1.shape[-2:], mode="nearest")
        if self.stage == "resize2":
            return r2
        u2 = n.up2(r2)
        if self.stage == "up2":
            return u2
        return n.head(u2)


def model(stage: str) -> nn.Module:
    from dynashape.zoo import REGISTRY

    return Prefix(REGISTRY["segmentation"].make(), stage).eval()


def child(stage: str, variant: str, path: str) -> None:
    import dynashape
    from dynashape import Profile

    prof = Profile({"input_1": ((1, 3, 128, 128), (1, 3, 256, 256), (1, 3, 320, 320))})
    e = dynashape.build(model(stage), prof, backend="inductor", device="cuda", example_inputs={"input_1": torch.rand(1, 3, 256, 256)},
                        dynamic_axes={"input_1": {2: "H", 3: "W"}}, align={}, validate=False, quiet=True, **VARIANTS[variant])
    e.save(path)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--child", nargs=3)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return 0
    os.makedirs(args.out, exist_ok=True)
    # every stage in fp16 (the failing engine's precision); the other variants for the whole net only
    todo = [(s, "fp16") for s in args.stages.split(",")] + [("full", v) for v in args.variants.split(",") if v != "fp16"]

    def build(item: tuple[str, str]) -> tuple[tuple[str, str], str | None]:
        path = os.path.join(args.out, f"{item[0]}.{item[1]}.engine")
        p = subprocess.run([sys.executable, __file__, "--out", args.out, "--child", item[0], item[1], path], capture_output=True, text=True, timeout=500)
        return item, (path if p.returncode == 0 else (p.stderr or p.stdout)[-600:])

    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        built = dict(pool.map(build, todo))
    import dynashape

    report: dict[str, Any] = {}
    for (stage, variant), path in built.items():
        key = f"{stage} {variant}"
        if path is None or not os.path.exists(path):
            report[key] = {"error": path}
            print(key, "build failed:", path, flush=True)
            continue
        e = dynashape.load(path)
        ref = model(stage).cuda()
        row = {}
        for h, w in SHAPES:
            x = torch.rand(1, 3, h, w, device="cuda", generator=torch.Generator("cuda").manual_seed(h * 1000 + w))
            with torch.no_grad():
                want = ref(x).float()
            got = next(iter(e.run({"input_1": x}).values())).float()
            rel = float((got - want).abs().max()) / max(float(want.abs().max()), 1e-6)
            row[f"{h}x{w}"] = round(rel, 5)
        report[key] = row
        print(key, " ".join(f"{k}:{v:.4f}" for k, v in row.items()), flush=True)
        os.remove(path)
    with open(os.path.join(args.out, "general_package.json"), "w") as f:
        json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
