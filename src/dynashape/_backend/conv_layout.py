"""Channels-last convolutions that Inductor lays out well under symbolic sizes.

Inductor turns its layout pass off for any graph whose convolutions have symbolic sizes
(``torch/_inductor/graph.py``, ``decide_layout_opt``). Each convolution's input is then asked for the
stride order of the convolution's *output* (``torch/_inductor/kernel/conv.py``: ``req_stride_order``
from the output layout). A convolution with **one output channel** has an output whose channel and
width strides are both 1 in channels-last, so that order is ambiguous, and Inductor picks one that is
neither NCHW nor NHWC (``N, H, C, W``: C's stride is W). Seen in the generated code of the seed
segmentation net's 1-channel 1x1 head on an H200 (``benchmarks/probe_layout_copies_gpu.py``):

- a Triton kernel transposes the head's channels-last input into that order, and
- ATen's convolution (whose weight is channels-last) copies it back to channels-last
  (``aten::copy_ < aten::contiguous < aten::_convolution``, 51 us a call at 1600x1600: as much as the
  whole difference in GPU time between the dynamic and the static engine).

What is done here: a **1x1 convolution with one output channel** (stride 1, no padding, one group) is
a dot product over the channels at each pixel, and is computed as one: ``(x * w).sum(1) + b``, a
reduction over the innermost (channels-last) dim that Inductor fuses with whatever produced ``x``.
No convolution is left to ask for a layout, so neither copy is made, and the cuBLAS kernel that
served the 1x1 convolution (62 us a call at 1600x1600 for 8 channels) goes too.

NOTE (what was tried first, and why not): giving such a convolution a second, all-zero output channel
makes its layout unambiguous and removes both copies, but cuDNN then picks a 2-channel GEMM kernel
that took 167 us against 62 (same run): slower overall. Convolutions with one output channel and a
larger kernel (3x3) keep the copies; not measured, not changed.
"""

from __future__ import annotations

from typing import Any


def is_channel_dot(torch: Any, m: Any) -> bool:
    """A plain ``nn.Conv2d`` that is a per-pixel dot product over its input channels: 1x1, one output
    channel, stride 1, no padding, one group."""
    return (type(m) is torch.nn.Conv2d and m.out_channels == 1 and m.groups == 1 and tuple(m.kernel_size) == (1, 1)
            and tuple(m.stride) == (1, 1) and m.padding in ((0, 0), "valid"))


def channel_dots(torch: Any, module: Any) -> list[str]:
    """Replace, in place, every 1x1 one-output-channel ``nn.Conv2d`` of ``module`` (see
    :func:`is_channel_dot`) by the same dot product written as a reduction over the channels.

    Returns the qualified names of the convolutions replaced. The outputs are the same values up
    to the order of summation.
    """
    nn = torch.nn

    class ChannelDot(torch.nn.Module):
        """``Conv2d(C, 1, 1)`` as ``(x * weight).sum(1, keepdim=True) + bias``.

        NOTE (why): see :mod:`dynashape._backend.conv_layout`: Inductor's input layout for a
        convolution with a single output channel is ambiguous under symbolic sizes.
        """

        def __init__(self, conv: Any) -> None:
            super().__init__()
            self.weight = nn.Parameter(conv.weight.detach().clone(), requires_grad=False)  # [1, C, 1, 1]
            self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone(), requires_grad=False)

        def forward(self, x: Any) -> Any:
            y = (x * self.weight).sum(1, keepdim=True)
            return y if self.bias is None else y + self.bias.view(1, 1, 1, 1)

    found = [(name, m) for name, m in module.named_modules() if name and is_channel_dot(torch, m)]
    for name, conv in found:
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, child, ChannelDot(conv))
    return [name for name, _ in found]
