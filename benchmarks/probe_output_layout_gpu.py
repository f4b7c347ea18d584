"""Probe: the memory layout of a dynamic CUDA engine's 4-D outputs, package by package.

The engine's contract is eager's: a contiguous input gives contiguous 4-D outputs (the channels-last inside
ends in ``.contiguous()``, ``inductor._make_compute_module``). The tenth session's GPU run of
``tests/gpu/test_defaults_cuda.py::test_a_pooled_branchs_resize_is_a_broadcast_on_cuda_and_outputs_match_eager``
got a non-contiguous output from the aligned package of a net whose last op is a convolution (4 channels).
This probe builds small nets (fp16, H/W free) with and without the 1x1-resize rewrite and channels-last, and
prints each output's strides at an aligned size and at one that is not, with the strides the exported program's
output node carries.

    CXX=/usr/bin/g++ CC=/usr/bin/gcc PYTHONPATH=src python benchmarks/probe_output_layout_gpu.py --out /tmp/probe
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "gpu"))


def models() -> dict[str, Any]:
    import torch
    from test_defaults_cuda import PooledBranch  # type: ignore[import-not-found]
    from torch import nn

    class ConvLast(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.a = nn.Conv2d(3, 16, 3, stride=2, padding=1)
            self.b = nn.Conv2d(16, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(torch.relu(self.a(x)))

    return {"pooled_branch": PooledBranch, "conv_last": ConvLast}


VARIANTS = {"defaults": {}, "no_unit_resize": {"no_unit_resize": True}, "no_channels_last": {"channels_last": False}}
RUNS = (("pooled_branch", "defaults"), ("pooled_branch", "no_unit_resize"), ("conv_last", "defaults"),
        ("pooled_branch", "no_channels_last"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda", help="cpu: a smoke run of the probe itself (fp32)")
    ap.add_argument("--runs", type=int, default=len(RUNS), help="the first N of the probe's (model, variant) runs")
    args = ap.parse_args()
    import torch
    from torch.utils._pytree import tree_leaves

    import dynashape
    import dynashape._backend.inductor as ib
    from dynashape import Profile

    os.makedirs(args.out, exist_ok=True)
    results = []
    original = ib.broadcast_unit_resizes
    for model_name, variant in RUNS[:args.runs]:
        spec = VARIANTS[variant]
        seen: list[list[str]] = []

        def probe(torch_: Any, ep: Any, skip: bool = bool(spec.get("no_unit_resize")), seen: list[list[str]] = seen) -> list[str]:
            done = [] if skip else original(torch_, ep)
            out = next(n for n in ep.graph_module.graph.nodes if n.op == "output")
            leaves = tree_leaves(out.args)
            seen.append([f"{a.name}: {tuple(a.meta['val'].stride())}" if "val" in getattr(a, "meta", {}) else str(a)
                         for a in leaves])
            return done

        ib.broadcast_unit_resizes = probe
        model = models()[model_name]().eval()
        prof = Profile({"x": ((1, 3, 128, 128), (1, 3, 256, 256), (1, 3, 320, 320))})
        row: dict[str, Any] = {"model": model_name, "variant": variant}
        try:
            kw = {"channels_last": spec["channels_last"]} if "channels_last" in spec else {}
            e = dynashape.build(model, prof, backend="inductor", device=args.device, precision="fp16" if args.device == "cuda" else "fp32",
                                example_inputs={"x": torch.rand(1, 3, 256, 256)}, quiet=True, **kw)
            row["backend_data"] = {k: e.manifest.backend_data.get(k) for k in ("channels_last", "unit_resizes", "alignment")}
            row["exported_output_strides"] = seen
            m16 = model.half().cuda() if args.device == "cuda" else model
            for h, w in ((128, 128), (256, 320), (131, 257)):
                x = torch.rand(1, 3, h, w, device=args.device)
                got = next(iter(e.run({"x": x}).values()))
                with torch.no_grad():
                    want = m16(x.half() if args.device == "cuda" else x)
                (raw, *_) = e.backend_call({"x": x})()  # the compiled package's own strides (run() makes them contiguous)
                row[f"{h}x{w}"] = {"shape": list(got.shape), "stride": list(got.stride()), "contiguous": got.is_contiguous(),
                                   "backend_stride": list(raw.stride()), "backend_contiguous": raw.is_contiguous(),
                                   "eager_stride": list(want.stride()),
                                   "max_abs_diff": float((got.float() - want.float()).abs().max())}
        except Exception as exc:  # a probe records what failed and goes on
            row["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        finally:
            ib.broadcast_unit_resizes = original
        print(json.dumps(row), flush=True)
        results.append(row)
    with open(os.path.join(args.out, "output_layout.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
