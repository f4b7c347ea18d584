"""Segmentation net, dynamic engine (512..1600 opt 1024) under Inductor options, vs static engines. Median ms (CUDA events).

Run on the GPU machine: PYTHONPATH=src CXX=/usr/bin/g++ CC=/usr/bin/gcc python benchmarks/probe_segmentation_inductor_options.py OUT.json
(result kept in benchmarks/results/gpu_segmentation_inductor_options_h100_2026-11-26.json).
"""
import json
import sys
import time

import torch
from gpu_bench import Timer  # this folder is on sys.path when the script runs

import dynashape
from dynashape import Profile
from dynashape.zoo import REGISTRY

_timer = Timer("cuda")

z = REGISTRY["segmentation"]
model = z.make()
ex = z.example_inputs(image_height=1024, image_width=1024)
pts = [(512, 512), (777, 1001), (1600, 1600)]

def med(fn, n=50):
    """Median ms of one call (CUDA events) after 10 warm-up calls: gpu_bench's Timer."""
    return _timer.many(fn, n, 10)["median_ms"]


def timeit(engine):
    out = {}
    nog = engine.with_options(cuda_graphs=False)
    for h, w in pts:
        x = {"input_1": torch.rand(1, 3, h, w, device="cuda")}
        try:
            out[f"{h}x{w}"] = (round(med(lambda x=x: nog.run(x)), 4), round(med(lambda x=x: engine.run(x)), 4))
        except Exception as e:
            out[f"{h}x{w}"] = str(e)[:80]
    return out

results = {}
variants = [("base", {}, None), ("force_layout_optimization", {"force_layout_optimization": True}, None),
            ("force_layout_optimization, contiguous module", {"force_layout_optimization": True}, False),
            ("prefer_nd_tiling", {"triton.prefer_nd_tiling": True}, None)]
for name, cfg, cl in variants:
    t = time.time()
    with torch._inductor.config.patch(cfg):
        e = dynashape.build(model, Profile({"input_1": ((1, 3, 512, 512), (1, 3, 1024, 1024), (1, 3, 1600, 1600))}), backend="inductor",
                            device="cuda", precision="fp16", example_inputs=ex, validate=False, channels_last=cl)
    results[name] = {"build_s": round(time.time() - t, 1), "ms (no graphs, graphs)": timeit(e)}
    print(name, json.dumps(results[name]), flush=True)
for h, w in pts:
    shape = (1, 3, h, w)
    e = dynashape.build(model, Profile({"input_1": (shape, shape, shape)}), backend="inductor", device="cuda", precision="fp16",
                        example_inputs={"input_1": torch.rand(shape)}, validate=False)
    x = {"input_1": torch.rand(shape, device="cuda")}
    nog = e.with_options(cuda_graphs=False)
    results[f"static {h}x{w}"] = (round(med(lambda x=x, f=nog.run: f(x)), 4), round(med(lambda x=x, f=e.run: f(x)), 4))
    print(f"static {h}x{w}", results[f"static {h}x{w}"], flush=True)
with open(sys.argv[1], "w") as f:
    json.dump({"card": torch.cuda.get_device_name(), "torch": torch.__version__, "results": results}, f, indent=1)
