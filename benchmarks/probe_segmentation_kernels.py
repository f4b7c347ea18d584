"""Per-kernel GPU time of the segmentation net at 1600x1600: dynamic engine (512..1600) vs static engine.

Run on the GPU machine: PYTHONPATH=src CXX=/usr/bin/g++ CC=/usr/bin/gcc python benchmarks/probe_segmentation_kernels.py
(prints torch.profiler tables; result kept in benchmarks/results/gpu_segmentation_kernels_h100_2026-11-26.txt).
"""
import sys

import torch
from torch.profiler import ProfilerActivity, profile

import dynashape
from dynashape import Profile
from dynashape.zoo import REGISTRY

z = REGISTRY["segmentation"]
model = z.make()
ex = z.example_inputs(image_height=1024, image_width=1024)
shape = (1, 3, 1600, 1600)
engines = {
    "dynamic": dynashape.build(model, Profile({"input_1": ((1, 3, 512, 512), (1, 3, 1024, 1024), (1, 3, 1600, 1600))}), backend="inductor",
                               device="cuda", precision="fp16", example_inputs=ex, validate=False),
    "static": dynashape.build(model, Profile({"input_1": (shape, shape, shape)}), backend="inductor", device="cuda", precision="fp16",
                              example_inputs={"input_1": torch.rand(shape)}, validate=False),
}
x = {"input_1": torch.rand(shape, device="cuda")}
for name, e in engines.items():
    e = e.with_options(cuda_graphs=False)
    for _ in range(20):
        e.run(x)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(20):
            e.run(x)
        torch.cuda.synchronize()
    print(f"===== {name}")
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=14, max_name_column_width=90))
    sys.stdout.flush()
