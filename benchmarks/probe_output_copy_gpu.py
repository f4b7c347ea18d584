"""Probe: which packages of a dynamic CUDA engine write their outputs strided, and what the runtime's copy to
contiguous costs (``torch_runtime.dense``).

Builds one model of ``dynamic_tax_gpu.py`` with the defaults (fp16, its dynamic profile), then at each shape:
the strides of the compiled package's own outputs (``Engine.backend_call``), and the GPU time a call of
``Engine.run`` (which hands out contiguous outputs) and of the package alone (profiler, without graphs).

    CXX=/usr/bin/g++ CC=/usr/bin/gcc PYTHONPATH=src python benchmarks/probe_output_copy_gpu.py --out /tmp/probe
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

from _common import machine_info, write_json  # noqa: E402
from dynamic_tax_gpu import configs, kernel_table, make_model  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="deeplabv3_resnet50", help="a key of dynamic_tax_gpu.py's models")
    ap.add_argument("--shapes", default="1x3x512x512,1x3x517x611")
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda", help="cpu: a dry run of the probe itself (fp32, no kernel times)")
    args = ap.parse_args()
    import torch

    import dynashape
    from dynashape import Profile

    cfg = next(c for c in configs() if c.key == args.model)
    model = make_model(cfg.make)
    t = time.perf_counter()
    e = dynashape.build(model, Profile({cfg.input_name: cfg.profile}), backend="inductor", device=args.device,
                        precision="fp16" if args.device == "cuda" else "fp32",
                        validate=False, quiet=True, example_inputs={cfg.input_name: torch.rand(cfg.profile[1])},
                        dynamic_axes={cfg.input_name: cfg.axes})
    rows: dict[str, Any] = {"build_s": round(time.perf_counter() - t, 1), "parts": [p.describe() for p in e.manifest.parts]}
    plain = e.with_options(cuda_graphs=False)
    for text in args.shapes.split(","):
        x = torch.rand(*(int(v) for v in text.split("x")), device=args.device)
        raw = plain.backend_call({cfg.input_name: x})
        outs = raw()
        run = plain.run({cfg.input_name: x})
        row = {"backend_strides": [list(o.stride()) for o in outs], "backend_contiguous": [o.is_contiguous() for o in outs],
               "run_contiguous": [o.is_contiguous() for o in run.values()]}
        for label, fn in () if args.device != "cuda" else (("run", lambda x=x: plain.run({cfg.input_name: x})), ("package alone", raw)):
            table = kernel_table(torch, fn, calls=20, rows=3)
            row[f"{label} us"] = table["total_us_per_call"]
            row[f"{label} copy us"] = table["copy_us_per_call"]
        rows[text] = row
        print(text, json.dumps(row), flush=True)
    os.makedirs(args.out, exist_ok=True)
    write_json(os.path.join(args.out, f"output_copy_{args.model}.json"), {"machine": machine_info(), "args": vars(args), **rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
