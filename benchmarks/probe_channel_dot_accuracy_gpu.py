"""Accuracy of the seed net's dynamic fp16 CUDA engine with and without the channel-dot head
(``dynashape._backend.conv_layout``), against eager PyTorch in fp16 (NCHW and channels-last) and fp32,
at aligned and odd sizes. Prints one line per (engine, shape): max |diff| and max |reference|.

  CXX=/usr/bin/g++ CC=/usr/bin/gcc PYTHONPATH=src python benchmarks/probe_channel_dot_accuracy_gpu.py
"""

from __future__ import annotations

import copy

import torch

import dynashape
import dynashape._backend.inductor as inductor_backend
from dynashape import Profile
from dynashape.zoo import REGISTRY

z = REGISTRY["segmentation"]
model = z.make()
prof = Profile({"input_1": ((1, 3, 128, 128), (1, 3, 256, 256), (1, 3, 320, 320))})
real = inductor_backend.channel_dots
engines = {}
for name, dots in (("dot", real), ("no_dot", lambda torch, module: [])):
    inductor_backend.channel_dots = dots
    engines[name] = dynashape.build(model, prof, backend="inductor", device="cuda", precision="fp16",
                                    example_inputs=z.example_inputs(image_height=256, image_width=256), quiet=True)
    print(name, "parts", [p.describe() for p in engines[name].manifest.parts], engines[name].manifest.backend_data.get("channel_dots"))
refs = {
    "fp16 nchw": copy.deepcopy(model).half().cuda(),
    "fp16 channels-last": copy.deepcopy(model).half().cuda().to(memory_format=torch.channels_last),
    "fp32": copy.deepcopy(model).float().cuda(),
}
for h, w in ((128, 128), (256, 320), (131, 257), (256, 256), (320, 320), (200, 300)):
    x = torch.rand(1, 3, h, w, device="cuda", generator=torch.Generator("cuda").manual_seed(h * 1000 + w))
    with torch.no_grad():
        want = {k: (m(x.half()) if "fp16" in k else m(x)).float() for k, m in refs.items()}
    for name, e in engines.items():
        got = next(iter(e.run({"input_1": x}).values())).float()
        diffs = ", ".join(f"vs {k} {float((got - v).abs().max()):.4f}" for k, v in want.items())
        print(f"{name:7s} {h}x{w}: max|ref| {float(want['fp32'].abs().max()):.3f}; {diffs}; contiguous {got.is_contiguous()}", flush=True)
    print(f"refs    {h}x{w}: fp16 nchw vs fp32 {float((want['fp16 nchw'] - want['fp32']).abs().max()):.4f}, "
          f"fp16 cl vs fp32 {float((want['fp16 channels-last'] - want['fp32']).abs().max()):.4f}", flush=True)
