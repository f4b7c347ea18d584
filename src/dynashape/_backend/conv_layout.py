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

The same rewrite applies to a model imported from ONNX, whose convolutions are calls of the
importer's runtime ``conv`` in an FX graph (``Conv`` nodes with a ``[1, C, 1, 1]`` weight); tested on the
CPU, not yet timed on the GPU.

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
    names = [name for name, _ in found]
    for name, m in module.named_modules():
        if isinstance(m, torch.fx.GraphModule) and any("onnx_node" in n.meta for n in m.graph.nodes):
            names += [f"{name}:{n}" if name else n for n in _graph_channel_dots(torch, m)]
    return names


def _graph_channel_dots(torch: Any, gm: Any) -> list[str]:
    """The same rewrite in a model imported from ONNX (``dynashape.onnx.importer``), whose convolutions
    are calls of its runtime's ``conv`` in an FX graph; the ONNX node names of the ones replaced."""
    from ..onnx.importer import runtime

    graph = gm.graph
    done = []
    for n in list(graph.nodes):
        if n.op != "call_function" or n.target is not runtime.conv or len(n.args) < 2:
            continue
        x, w = n.args[0], n.args[1]
        bias = n.args[2] if len(n.args) > 2 else n.kwargs.get("bias")
        weight = attr_tensor(gm, w)
        kw = n.kwargs
        if (weight is None or tuple(weight.shape[:1]) != (1,) or weight.dim() != 4 or tuple(weight.shape[2:]) != (1, 1)
                or kw.get("group") != 1 or any(int(v) != 1 for v in kw.get("strides", ()))
                or any(int(v) != 0 for v in kw.get("pads", ())) or kw.get("auto_pad") not in ("NOTSET", "VALID")
                or (bias is not None and attr_tensor(gm, bias) is None)):
            continue
        with graph.inserting_before(n):
            prod = graph.call_function(torch.mul, (x, w))
            dot = graph.call_function(torch.sum, (prod, 1), {"keepdim": True})
            made = [prod, dot]
            if bias is not None:
                b = graph.call_method("view", (bias, 1, 1, 1, 1))
                made += [b, graph.call_function(torch.add, (dot, b))]
        for new in made:  # they keep the ONNX node they come from (build errors name it)
            if "onnx_node" in n.meta:
                new.meta["onnx_node"] = n.meta["onnx_node"]
        n.replace_all_uses_with(made[-1])
        graph.erase_node(n)
        done.append(str(n.meta.get("onnx_node", (n.name,))[0]))
    if done:
        gm.recompile()
    return done


def attr_tensor(gm: Any, node: Any) -> Any:
    """The tensor that a ``get_attr`` node of ``gm``'s graph names, else None."""
    if getattr(node, "op", None) != "get_attr":
        return None
    value = gm
    for part in str(node.target).split("."):
        value = getattr(value, part, None)
    return value if hasattr(value, "dim") else None
