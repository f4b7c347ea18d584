"""Probe (torch only, no dynashape): the strides of an AOTInductor package's 4-D output under symbolic sizes.

Found in the tenth session (H200, torch 2.11, 2026-12-01, ``benchmarks/results/output_copy_h200_2026-12-01_deeplabv3.json``):
both packages of DeepLabV3-ResNet50's dynamic engine write its 21-class output channels-last although the
exported program's output carries contiguous strides; its static engine writes it contiguous. The runtime then
copies it (``torch_runtime.dense``: 31.6 us a call at 512x512, 47.9 us at 517x611). This probe exports a small
conv -> bilinear upsample net (channels-last inside, as dynashape's CUDA builds make it), compiles it with
``aoti_compile_and_package`` in several forms, and prints each package's output strides and the output-buffer
allocation line of the generated wrapper:

- ``plain``: the upsample is the output; ``contiguous``: ``.contiguous()`` after it (dynashape's graph today);
- ``clone``: ``torch.clone(memory_format=torch.contiguous_format)`` (a node even where the trace sees contiguous strides);
- ``empty_copy``: copied into ``torch.empty`` of the output's shape; ``unsqueeze``: a 5-D output (the caller
  would index ``[0]``), which no 4-D layout rule applies to;
- ``static``: ``contiguous`` at fixed sizes, for comparison.

    CXX=/usr/bin/g++ CC=/usr/bin/gcc python benchmarks/probe_output_strides_gpu.py --out /tmp/probe
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import zipfile
from typing import Any

FORMS = ("plain", "contiguous", "clone", "empty_copy", "unsqueeze", "static")


def make(torch: Any, form: str, classes: int) -> Any:
    nn = torch.nn

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.body = nn.Sequential(nn.Conv2d(3, 64, 3, stride=4, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
                                      nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU())
            self.cls = nn.Conv2d(64, classes, 1)

        def forward(self, x: Any) -> Any:
            x = x.contiguous(memory_format=torch.channels_last)
            y = nn.functional.interpolate(self.cls(self.body(x)), size=x.shape[-2:], mode="bilinear", align_corners=False)
            y = y.float()
            if form in ("contiguous", "static"):
                return y.contiguous()
            if form == "clone":
                return torch.clone(y, memory_format=torch.contiguous_format)
            if form == "empty_copy":
                return torch.empty(y.shape, dtype=y.dtype, device=y.device).copy_(y)
            if form == "unsqueeze":
                return y.contiguous().unsqueeze(0)
            return y

    return Head().eval().to(memory_format=torch.channels_last)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--classes", type=int, default=21)
    ap.add_argument("--forms", default=",".join(FORMS))
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    import torch

    cuda = args.device.startswith("cuda")
    dtype = torch.float16 if cuda else torch.float32
    rows = []
    for form in args.forms.split(","):
        model = make(torch, form, args.classes).to(args.device, dtype)
        example = torch.rand(1, 3, 512, 512, device=args.device, dtype=dtype)
        row: dict[str, Any] = {"form": form}
        try:
            with torch.no_grad():
                if form == "static":
                    ep = torch.export.export(model, (example,))
                else:
                    h, w = torch.export.Dim("h", min=256, max=1024), torch.export.Dim("w", min=256, max=1024)
                    ep = torch.export.export(model, (example,), dynamic_shapes={"x": {2: h, 3: w}})
                out_node = next(n for n in ep.graph.nodes if n.op == "output")
                row["exported"] = [f"{a.name}: {tuple(a.meta['val'].stride())}" for a in torch.utils._pytree.tree_leaves(out_node.args)
                                   if hasattr(a, "meta") and "val" in a.meta]
                folder = tempfile.mkdtemp(prefix=f"strides_{form}_")
                t = time.perf_counter()
                path = torch._inductor.aoti_compile_and_package(ep, package_path=os.path.join(folder, "m.pt2"))
                row["compile_s"] = round(time.perf_counter() - t, 1)
                runner = torch._inductor.aoti_load_package(path)
                for hw in ((512, 512), (517, 611)) if form != "static" else ((512, 512),):
                    x = torch.rand(1, 3, *hw, device=args.device, dtype=dtype)
                    (o,) = runner(x) if isinstance(runner(x), (list, tuple)) else (runner(x),)
                    with torch.no_grad():
                        want = model(x)
                    row[f"{hw[0]}x{hw[1]}"] = {"shape": list(o.shape), "stride": list(o.stride()), "contiguous": o.is_contiguous(),
                                               "max_abs_diff": float((o.float() - want.float()).abs().max())}
            # the generated wrapper's allocation of the output buffer (the last empty_strided of the file)
            allocs: list[str] = []
            with zipfile.ZipFile(path) as z:
                for member in z.namelist():
                    if member.endswith((".cpp", ".py")):
                        text = z.read(member).decode(errors="replace")
                        allocs += [m.group(0)[:200] for m in re.finditer(r"empty_strided[^;\n]*", text)]
            row["allocations (last 3)"] = allocs[-3:]
        except Exception as exc:  # a probe records what failed and goes on
            row["error"] = f"{type(exc).__name__}: {exc}"[:1500]
        print(json.dumps(row), flush=True)
        rows.append(row)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"output_strides_{'cuda' if cuda else 'cpu'}.json"), "w") as f:
        json.dump({"torch": torch.__version__, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
