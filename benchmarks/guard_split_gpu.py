"""Guard-split profiles on CUDA: torchvision segmentation nets with dynamic H and W, built on inductor.

torch.export refuses a ``Dim`` for H and W of ``fcn_resnet50``/``deeplabv3_resnet50`` under torch 2.11
(the guard ``((H - 1) // 2) % 2 != 0`` from max-pooling's output-size arithmetic); dynashape split the
profile into parts until session 8, and now removes that guard before it traces (``_torch_compat``):
the build is then one package (and the aligned one), which this script reports. This script builds the split engine (fp16, H, W in 256..1024), reports its parts,
guards and build time, checks it against eager fp16 at odd and even sizes including both ends, and
measures the dynamic tax against static engines (min = opt = max) at a few shapes. One model per
invocation (random weights: no download):

    CXX=/usr/bin/g++ CC=/usr/bin/gcc PYTHONPATH=src python benchmarks/guard_split_gpu.py --model fcn_resnet50 --out $OUT/fcn.json
    CXX=/usr/bin/g++ CC=/usr/bin/gcc PYTHONPATH=src python benchmarks/guard_split_gpu.py --model deeplabv3_resnet50 --out $OUT/deeplab.json

``--static-shapes ''`` skips the static engines (each is one more compile); ``--lo/--hi/--opt`` change the range.
Timing: ``torch.cuda.synchronize()``, CUDA events around one call, median of --iters after --warmup.
Correctness: max abs difference against the same module in fp16 on the same GPU (eager), and the
relative error of the logits (max |diff| / max |eager|).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import write_json

# odd and even sizes, both ends of 256..1024, and mixed parities of H and W
CHECK = [(256, 256), (1024, 1024), (256, 1024), (1023, 257), (257, 258), (511, 512), (777, 1001), (640, 959), (1022, 1021), (300, 301)]


def _median_ms(torch: Any, fn: Any, iters: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        torch.cuda.synchronize()
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e))
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="fcn_resnet50", choices=["fcn_resnet50", "deeplabv3_resnet50"])
    ap.add_argument("--lo", type=int, default=256)
    ap.add_argument("--opt", type=int, default=512)
    ap.add_argument("--hi", type=int, default=1024)
    ap.add_argument("--static-shapes", default="512x512,777x1001,1024x1024", help="HxW,... for static engines ('' for none)")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import torch
    import torchvision

    import dynashape
    from dynashape import Profile

    class Seg(torch.nn.Module):
        """The model's ``out`` logits as a plain tensor (torchvision returns a dict)."""

        def __init__(self) -> None:
            super().__init__()
            self.net = getattr(torchvision.models.segmentation, args.model)(weights=None, weights_backbone=None, num_classes=21)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)["out"]

    torch.manual_seed(0)
    model = Seg().eval()
    eager = Seg().eval()
    eager.load_state_dict(model.state_dict())
    eager = eager.half().cuda()
    result: dict[str, Any] = {"model": args.model, "torch": torch.__version__, "torchvision": torchvision.__version__,
                              "device": torch.cuda.get_device_name(), "range": [args.lo, args.opt, args.hi]}
    lo, opt, hi = args.lo, args.opt, args.hi
    profile = Profile({"x": ((1, 3, lo, lo), (1, 3, opt, opt), (1, 3, hi, hi))})
    t = time.perf_counter()
    engine = dynashape.build(model, profile, backend="inductor", device="cuda", precision="fp16",
                             example_inputs={"x": torch.rand(1, 3, opt, opt)}, dynamic_axes={"x": {2: "H", 3: "W"}})
    result["build_s"] = round(time.perf_counter() - t, 1)
    result["profiles"] = len(engine.profiles)
    result["parts"] = [p.to_json() for p in engine.manifest.parts]
    result["payload_bytes"] = engine.payload_sizes()
    print(f"{args.model}: built in {result['build_s']} s, {len(engine.profiles)} profile, "
          f"{sum(p.payload is not None for p in engine.manifest.parts) or 1} parts", flush=True)
    for p in engine.manifest.parts:
        print(f"  {p.payload or 'refused'}: {p.describe()} | {'; '.join(p.guards)} | {'; '.join(p.sources)}", flush=True)

    checks = []
    for h, w in CHECK:
        x = torch.rand(1, 3, h, w, device="cuda")
        with torch.inference_mode():
            want = eager(x.half()).float()
            got = engine.run({"x": x})
            out = next(iter(got.values())).float()
        diff = (out - want).abs().max().item()
        rel = diff / max(want.abs().max().item(), 1e-6)
        checks.append({"shape": [h, w], "max_abs": diff, "rel": rel, "ok": bool(rel < 2e-2)})
        print(f"  {h}x{w}: max abs diff {diff:.4g}, relative {rel:.3g} {'ok' if rel < 2e-2 else 'MISMATCH'}", flush=True)
    result["checks"] = checks

    timing = []
    for text in [s for s in args.static_shapes.split(",") if s]:
        h, w = map(int, text.split("x"))
        x = torch.rand(1, 3, h, w, device="cuda")
        t = time.perf_counter()
        static = dynashape.build(model, Profile({"x": ((1, 3, h, w),) * 3}), backend="inductor", device="cuda", precision="fp16",
                                 example_inputs={"x": x.cpu()}, dynamic_axes={"x": {2: "H", 3: "W"}})
        static_build = round(time.perf_counter() - t, 1)
        with torch.inference_mode():
            dyn_ms = _median_ms(torch, lambda x=x: engine.run({"x": x}), args.iters, args.warmup)
            st_ms = _median_ms(torch, lambda x=x, static=static: static.run({"x": x}), args.iters, args.warmup)
            eager_ms = _median_ms(torch, lambda x=x: eager(x.half()), args.iters, args.warmup)
        row = {"shape": [h, w], "split_ms": dyn_ms, "static_ms": st_ms, "eager_ms": eager_ms,
               "tax": dyn_ms / st_ms, "static_build_s": static_build}
        timing.append(row)
        print(f"  {h}x{w}: split engine {dyn_ms:.3f} ms, static engine {st_ms:.3f} ms (x{dyn_ms / st_ms:.2f}), "
              f"eager {eager_ms:.3f} ms; static build {static_build} s", flush=True)
        del static
    result["timing"] = timing
    if args.out:
        write_json(args.out, result)
    print(json.dumps({"build_s": result["build_s"], "all_ok": all(c["ok"] for c in checks)}))


if __name__ == "__main__":
    main()
