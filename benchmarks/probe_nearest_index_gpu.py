"""The nearest resize of a dynamic CUDA engine, position by position (see probe_general_package_gpu.py:
the seed net's first resize is where its general package goes wrong). The input encodes its position
(value = 1000 * row + col), the net halves it twice by striding (the sizes the seed net's stride-2
convolutions give) and resizes the quarter back to the half's size, so every output value names the
input pixel it was taken from. Prints, per size, how many outputs differ from eager on the GPU and on
the CPU, and the first that differ.

  CXX=/usr/bin/g++ CC=/usr/bin/gcc PYTHONPATH=src python benchmarks/probe_nearest_index_gpu.py
"""

from __future__ import annotations

import torch
from torch import nn

import dynashape
from dynashape import Profile


class Net(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d1 = x[:, :, ::2, ::2]
        d2 = d1[:, :, ::2, ::2] + 0.0
        return nn.functional.interpolate(d2, size=d1.shape[-2:], mode="nearest")


net = Net().eval()
prof = Profile({"x": ((1, 1, 128, 128), (1, 1, 256, 256), (1, 1, 320, 320))})
for device in ("cuda", "cpu"):
    e = dynashape.build(net, prof, backend="inductor", device=device, example_inputs={"x": torch.rand(1, 1, 256, 256)},
                        dynamic_axes={"x": {2: "H", 3: "W"}}, align={}, validate=False, quiet=True)
    for h, w in ((131, 257), (200, 300), (257, 131), (150, 150), (160, 224), (201, 301)):
        rows = torch.arange(h, dtype=torch.float32).view(h, 1) * 1000
        x = (rows + torch.arange(w, dtype=torch.float32).view(1, w)).view(1, 1, h, w)
        got = next(iter(e.run({"x": x.to(device)}).values())).cpu()
        ref_cpu = net(x)
        ref_gpu = net(x.cuda()).cpu()
        bad = (got != ref_gpu).nonzero()
        line = f"{device} engine {h}x{w}: out {tuple(got.shape)}, differs from eager cuda at {len(bad)}, from eager cpu at {int((got != ref_cpu).sum())}; eager cuda vs cpu {int((ref_gpu != ref_cpu).sum())}"
        if len(bad):
            i = tuple(bad[0].tolist())
            line += f"; first at {i[2:]}: engine {got[i]:.0f}, eager {ref_gpu[i]:.0f}"
        print(line, flush=True)
