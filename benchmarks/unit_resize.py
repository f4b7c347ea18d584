"""The resize of a 1x1 map as a broadcast (``dynashape._backend.resize.broadcast_unit_resizes``), on and off,
on an ASPP head as torchvision's DeepLabV3 builds it (five branches: a 1x1 convolution, three dilated 3x3
ones and the image-pooling branch, resized back to the feature map and concatenated, then a projection).

Builds a dynamic engine (H/W of the feature map free) with the rewrite and one without it, and a static
engine at each measured shape; times them in alternating rounds. CPU by default (``--device cuda`` for
the GPU machine, fp16). Writes ``unit_resize_<device>_<date>.{json,md}`` to ``--out``.

    PYTHONPATH=src python benchmarks/unit_resize.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _common import machine_info, md_table, today, write_atomic, write_json  # noqa: E402
from gpu_bench import Timer  # noqa: E402


def make_head(torch: Any, cin: int, cout: int) -> Any:
    nn = torch.nn

    def branch(k: int, dilation: int) -> Any:
        return nn.Sequential(nn.Conv2d(cin, cout, k, padding=0 if k == 1 else dilation, dilation=dilation, bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU())

    class ASPP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.branches = nn.ModuleList([branch(1, 1), branch(3, 12), branch(3, 24), branch(3, 36)])
            self.pooling = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())
            self.project = nn.Sequential(nn.Conv2d(5 * cout, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

        def forward(self, x: Any) -> Any:
            pooled = nn.functional.interpolate(self.pooling(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
            return self.project(torch.cat([*(b(x) for b in self.branches), pooled], 1))

    torch.manual_seed(0)
    return ASPP().eval()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cin", type=int, default=128, help="input channels (torchvision: 2048)")
    ap.add_argument("--cout", type=int, default=64, help="channels per branch (torchvision: 256)")
    ap.add_argument("--shapes", default="48x48,64x80,65x77", help="feature-map H x W to time (a 512x512 image is 64x64)")
    ap.add_argument("--profile", default="32x32,64x64,96x96", help="min,opt,max of the feature map's H x W")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()

    import torch

    import dynashape
    import dynashape._backend.inductor as inductor_backend
    from dynashape import Profile

    cuda = args.device.startswith("cuda")
    precision = "fp16" if cuda else "fp32"
    model = make_head(torch, args.cin, args.cout)
    hw = [tuple(int(v) for v in s.split("x")) for s in args.profile.split(",")]
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    prof = Profile({"x": tuple((1, args.cin, h, w) for h, w in hw)})
    example = {"x": torch.randn(1, args.cin, *hw[1])}
    engines: dict[str, Any] = {}
    builds: dict[str, float] = {}
    rewrite = inductor_backend.broadcast_unit_resizes
    for label, fn in (("dynamic, broadcast (default)", rewrite), ("dynamic, resize kept", lambda torch, ep: [])):
        inductor_backend.broadcast_unit_resizes = fn
        t = time.perf_counter()
        engines[label] = dynashape.build(model, prof, backend="inductor", device=args.device, precision=precision,
                                         example_inputs=example, quiet=True)
        builds[label] = round(time.perf_counter() - t, 1)
    inductor_backend.broadcast_unit_resizes = rewrite
    recorded = engines["dynamic, broadcast (default)"].manifest.backend_data.get("unit_resizes", 0)

    timer = Timer(args.device)
    rows = []
    for h, w in shapes:
        x = torch.randn(1, args.cin, h, w, device=args.device)
        static_label = f"static {h}x{w}"
        t = time.perf_counter()
        static = dynashape.build(model, Profile({"x": ((1, args.cin, h, w),) * 3}), backend="inductor", device=args.device,
                                 precision=precision, example_inputs={"x": x.cpu()}, quiet=True)
        builds[static_label] = round(time.perf_counter() - t, 1)
        calls = {"static": static, **engines}
        want = None
        if not cuda:  # fp32 against eager (a CUDA fp16 build is validated against its fp32 reference at build)
            with torch.no_grad():
                want = model(x)
        med = timer.interleaved({k: (lambda e=e, x=x: e.run({"x": x})) for k, e in calls.items()}, args.iters, 5)
        row: dict[str, Any] = {"shape": f"{h}x{w}", **{k: round(v, 3) for k, v in med.items()}}
        for k in engines:
            row[f"tax {k}"] = round(med["static"] / med[k], 3)
        if want is not None:
            got = engines["dynamic, broadcast (default)"].run({"x": x})
            row["max abs diff, broadcast vs eager"] = float((next(iter(got.values())) - want).abs().max())
        rows.append(row)
        print(row, flush=True)
    data = {"machine": machine_info(), "args": vars(args), "unit_resizes_recorded": recorded, "builds_s": builds, "rows": rows}
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"unit_resize_{'cuda' if cuda else 'cpu'}_{today()}")
    write_json(stem + ".json", data)
    cols = list(rows[0]) if rows else []
    text = "\n".join([
        f"# The 1x1 resize as a broadcast, on and off ({data['machine'].get('gpu') or data['machine'].get('cpu_model')}, torch {data['machine'].get('torch')}, {today()})", "",
        f"ASPP head, {args.cin} -> 5 x {args.cout} channels, {precision}; profile {args.profile} (feature map); median ms of one call,"
        " engines timed in alternating rounds; tax = static / dynamic.", "",
        md_table(cols, [[r.get(c) for c in cols] for r in rows]), "",
        f"- resizes rewritten in the default build: {recorded}",
        "- build seconds: " + ", ".join(f"{k} {v}" for k, v in builds.items()), ""])
    write_atomic(stem + ".md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
