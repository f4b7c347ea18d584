"""Where torch's guards on a model's dynamic dims come from: the torch frames that evaluated each one.

The guard split (``dynashape._backend.guard_split``) names the model line behind a guard; a guard that
torch makes inside its own meta functions (torch 2.11's pooling parity guard, ``_torch_compat``) needs
the framework frames instead. This probe exports a ``dynamic_tax_gpu.py`` model the way a CUDA build
does (fp16, channels-last, ``Dim.AUTO`` on the chosen dims at one example) while it records the Python
stack of every guard torch adds (``ShapeEnv._log_guard``), and prints, per guard, the innermost torch
frames and the model frame.

    CXX=/usr/bin/g++ CC=/usr/bin/gcc PYTHONPATH=src python benchmarks/probe_guard_origin_gpu.py --model resnet50 \
        --shape 1x3x224x224 --dims 0,2,3 --out $OUT/guards_resnet50.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import dynamic_tax_gpu as tax  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--shape", default="1x3x224x224", help="the example (a value of 1 in a dynamic dim is what torch specializes)")
    ap.add_argument("--dims", default="0,2,3", help="the input's dynamic axes")
    ap.add_argument("--lo", type=int, default=1)
    ap.add_argument("--hi", type=int, default=1024)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import torch
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    cfg = next(c for c in tax.configs() if c.key == args.model)
    model = tax.make_model(cfg.make)
    dtype = torch.float16 if args.device == "cuda" else torch.float32
    model = model.to(args.device, dtype).to(memory_format=torch.channels_last)
    shape = tuple(int(x) for x in args.shape.split("x"))
    x = torch.rand(shape, device=args.device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    axes = {int(a): torch.export.Dim.AUTO(min=args.lo, max=args.hi) for a in args.dims.split(",")}

    seen: list[dict[str, Any]] = []
    original = ShapeEnv._log_guard

    def record(self: Any, prefix: str, g: Any, *a: Any, **k: Any) -> Any:
        frames = traceback.extract_stack()[:-1]
        torch_frames = [f"{os.path.relpath(f.filename, os.path.dirname(torch.__file__))}:{f.lineno} in {f.name}: {f.line}"
                        for f in frames if f"{os.sep}torch{os.sep}" in f.filename
                        and "symbolic_shapes" not in f.filename and "sym_node" not in f.filename
                        and "_dynamo" not in f.filename and "export" not in f.filename and "fx/" not in f.filename]
        user = [f"{f.filename}:{f.lineno} in {f.name}: {f.line}" for f in frames
                if "site-packages" in f.filename and f"{os.sep}torch{os.sep}" not in f.filename]
        seen.append({"kind": prefix, "guard": str(g), "torch_frames": torch_frames[-6:], "model_frames": user[-2:]})
        return original(self, prefix, g, *a, **k)

    ShapeEnv._log_guard = record
    error = None
    try:
        with torch.no_grad():
            torch.export.export(model, (x,), dynamic_shapes=({**axes},))
    except Exception as e:  # the guards recorded up to the failure are what we want
        error = f"{type(e).__name__}: {str(e)[:800]}"
    finally:
        ShapeEnv._log_guard = original
    report = {"model": args.model, "shape": list(shape), "dims": args.dims, "torch": torch.__version__, "device": args.device,
              "error": error, "guards": seen}
    for g in seen:
        print(f"[{g['kind']}] {g['guard']}")
        for f in g["torch_frames"]:
            print(f"    torch/{f}")
        for f in g["model_frames"]:
            print(f"    model {f}")
    if error:
        print("export error:", error)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
