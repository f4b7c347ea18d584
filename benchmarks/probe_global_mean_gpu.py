"""Probe: a global average pool (the mean over H and W) under symbolic sizes, on the GPU.

DeepLabV3-ResNet50's ASPP pools its 2048-channel feature map to 1x1. In the tenth session's run (H200,
torch 2.11, fp16, ``dynamic_tax_h200_2026-12-01_run9_deeplab_517_jobs1.md``) that reduction took 34.7 us a
call at 517x611 (feature map 65x77) in the dynamic engine and 5.8 us in the static one.

The first version of this probe (run 9) pooled the engine's input itself: Inductor fused the channels-last
conversion into the mean, which so read the NCHW input, and it measured 1.1x static, not DeepLabV3's 6x. The
mean's input is now a channels-last intermediate, as in the model: a 1x1 convolution (``--in-channels`` ->
``--channels``) and a ReLU before it. Each variant is an engine of its own (fp16, channels-last, H/W free over
the profile); the table gives the GPU time a call of the kernels whose name holds ``mean`` (profiler):

- ``mean``: ``y.mean((2, 3), keepdim=True)`` (what Inductor makes of ``AdaptiveAvgPool2d(1)``);
- ``two_stage``: the mean over W, then over H, in fp32 (each reduction has more rows to spread);
- ``flat``: ``y.flatten(2).mean(2)`` (one reduction axis of a symbolic length);
- ``no_split``: ``mean`` with Inductor's ``split_reductions`` off;
- a static engine of ``mean`` at each measured size.

    CXX=/usr/bin/g++ CC=/usr/bin/gcc PYTHONPATH=src python benchmarks/probe_global_mean_gpu.py --out /tmp/probe
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _common import machine_info, md_table, today, write_atomic, write_json  # noqa: E402
from dynamic_tax_gpu import kernel_table  # noqa: E402


def make(torch: Any, kind: str, cin: int, c: int) -> Any:
    class Pool(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.proj = torch.nn.Conv2d(cin, c, 1)

        def forward(self, x: Any) -> Any:
            y = torch.relu(self.proj(x))  # channels-last, as DeepLabV3's feature map
            if kind == "two_stage":
                return y.float().mean(3, keepdim=True).mean(2, keepdim=True).to(y.dtype)
            if kind == "flat":
                return y.flatten(2).mean(2)[..., None, None]
            return y.mean((2, 3), keepdim=True)

    return Pool().eval()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--channels", type=int, default=2048, help="channels of the pooled map (DeepLabV3: 2048)")
    ap.add_argument("--in-channels", type=int, default=64, help="channels of the input, before the 1x1 convolution")
    ap.add_argument("--profile", default="48x48,64x64,96x96", help="min,opt,max of H x W (DeepLabV3's 384..768 images)")
    ap.add_argument("--shapes", default="64x64,65x77,96x96")
    ap.add_argument("--variants", default="mean,two_stage,flat,no_split")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import torch

    import dynashape
    from dynashape import Profile

    cuda = args.device.startswith("cuda")
    precision = "fp16" if cuda else "fp32"
    c, cin = args.channels, args.in_channels
    hw = [tuple(int(v) for v in s.split("x")) for s in args.profile.split(",")]
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    prof = Profile({"x": tuple((1, cin, h, w) for h, w in hw)})
    engines: dict[str, Any] = {}
    builds: dict[str, float] = {}
    for v in args.variants.split(","):
        kind = "mean" if v == "no_split" else v
        config = {"split_reductions": False} if v == "no_split" else None
        t = time.perf_counter()
        engines[v] = dynashape.build(make(torch, kind, cin, c), prof, backend="inductor", device=args.device, precision=precision,
                                     example_inputs={"x": torch.randn(1, cin, *hw[1])}, inductor_config=config, channels_last=True, quiet=True)
        builds[v] = round(time.perf_counter() - t, 1)
    rows = []
    for h, w in shapes:
        x = torch.randn(1, cin, h, w, device=args.device)
        t = time.perf_counter()
        static = dynashape.build(make(torch, "mean", cin, c), Profile({"x": ((1, cin, h, w),) * 3}), backend="inductor", device=args.device,
                                 precision=precision, example_inputs={"x": x.cpu()}, channels_last=True, quiet=True)
        builds[f"static {h}x{w}"] = round(time.perf_counter() - t, 1)
        model = make(torch, "mean", cin, c).to(args.device)
        with torch.no_grad():
            want = model(x).double()
        row: dict[str, Any] = {"shape": f"{h}x{w}"}
        for label, e in {"static": static, **engines}.items():
            got = next(iter(e.run({"x": x}).values())).double()
            row[f"{label} max diff"] = float((got - want).abs().max())
            if cuda:
                table = kernel_table(torch, lambda e=e, x=x: e.run({"x": x}), calls=50, rows=8)
                row[f"{label} us"] = round(sum(k["us_per_call"] for k in table["top"] if "mean" in k["kernel"]), 1)
                row[f"{label} all us"] = table["total_us_per_call"]
                row[f"{label} kernels"] = [(k["kernel"][:60], k["us_per_call"]) for k in table["top"]]
        rows.append(row)
        print(json.dumps(row), flush=True)
    data = {"machine": machine_info(), "args": vars(args), "builds_s": builds, "rows": rows}
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"global_mean_{'cuda' if cuda else 'cpu'}_{today()}")
    write_json(stem + ".json", data)
    labels = ["static", *engines]
    cols = ["shape", *(f"{k} us" for k in labels)] if cuda else ["shape", *(f"{k} max diff" for k in labels)]
    write_atomic(stem + ".md", "\n".join([
        f"# A global mean under symbolic sizes ({data['machine'].get('gpu') or data['machine'].get('cpu_model')}, "
        f"torch {data['machine'].get('torch')}, {today()})", "",
        f"[1, {cin}, H, W] -> 1x1 conv to {c} channels, ReLU, mean; {precision}, channels-last inside; profile "
        f"{args.profile}; GPU time a call of the kernels named mean (profiler, us).", "",
        md_table(cols, [[r.get(k) for k in cols] for r in rows]), "",
        "- build seconds: " + ", ".join(f"{k} {v}" for k, v in builds.items()), ""]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
