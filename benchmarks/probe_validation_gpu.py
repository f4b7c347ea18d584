"""Does build validation catch a wrong engine? The dynamic-tax run of 2026-11-30 (validate=False) timed a
static ConvNeXt-T engine at 1x3x224x224 whose output was 1.49 (relative to the largest eager output) from
eager fp16, while the dynamic engine matched (5e-4). This builds that engine again with validation on
(the default) and reports what dynashape says, and compares the engine with eager if it was accepted.

    CXX=/usr/bin/g++ CC=/usr/bin/gcc PYTHONPATH=src python benchmarks/probe_validation_gpu.py --model convnext_tiny --shape 1x3x224x224 [--out F.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="convnext_tiny")
    ap.add_argument("--shape", default="1x3x224x224")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    import torch
    from dynamic_tax_gpu import make_model

    import dynashape
    from dynashape import Profile

    shape = tuple(int(x) for x in a.shape.split("x"))
    model = make_model(f"torchvision:{a.model}")
    result: dict[str, object] = {"model": a.model, "shape": a.shape, "torch": torch.__version__, "gpu": torch.cuda.get_device_name()}
    t = time.perf_counter()
    try:
        e = dynashape.build(model, Profile({"image": (shape, shape, shape)}), backend="inductor", device="cuda", precision="fp16",
                            example_inputs={"image": torch.rand(shape)}, quiet=True)
        result["build"] = "accepted"
        x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
        m16 = model.half().cuda().to(memory_format=torch.channels_last)
        with torch.inference_mode():
            ref = m16(x.half().cuda().contiguous(memory_format=torch.channels_last)).float()
        out = torch.as_tensor(next(iter(e.run({"image": x.cuda()}).values()))).float().cuda()
        result["max_abs_diff_vs_eager_fp16"] = float((out - ref).abs().max())
        result["max_abs_eager"] = float(ref.abs().max())
    except Exception as ex:
        result["build"] = "refused"
        result["error"] = " ".join(str(ex).split())[:1500]
    result["seconds"] = round(time.perf_counter() - t, 1)
    text = json.dumps(result, indent=1)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
