"""``attention="sdpa"``: export ``nn.MultiheadAttention`` self-attention as one fused SDPA call, batch first.

Eager ``nn.MultiheadAttention`` takes a fused fast path (``torch._native_multi_head_attention``) in
inference, but not under ``torch.export`` (the fast path is off while tracing). The traced path,
``F.multi_head_attention_forward``, turns batch-first input into sequence-first, projects q, k and v
with one packed matmul, splits it with an ``unflatten``/``transpose``/``contiguous`` (a copy), and
views the heads for ``scaled_dot_product_attention``. Inductor keeps the SDPA call fused under a
symbolic batch (the export keeps ``aten.scaled_dot_product_attention`` and Inductor's decompositions
lower it to the fused kernel, checked in ``tests/build/test_attention.py``); what remains are the
layout copies around it.

The replacement computes the same function in the batch-first layout timm and HF use: one packed
projection, a view to ``(B, L, 3, heads, head_dim)``, a permute, SDPA on strided views, one reshape
and the output projection. It holds the original module (same parameters) and hands every call it
does not cover (attention weights asked for, masks, cross-attention, training) back to it.

It is the default for inductor builds (``attention="auto"``): measured on an H200 (fp16, CUDA graphs,
BENCHMARKS.md "the dynamic tax"), torchvision's ViT-B/16 with a dynamic batch ran 3.10 ms at batch 32
with it against 4.38 ms without (a static engine without it: 3.43 ms), and 1.50 against 2.07 ms at
batch 13. The swap is checked module by module at build; where it differs, ``auto`` keeps the model's
own attention and ``"sdpa"`` refuses the build.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from .._errors import BackendError

#: the largest difference from the original, relative to its largest output, that the build accepts
_TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2, "bf16": 4e-2}


def _eligible(torch: Any, m: Any) -> bool:
    return (isinstance(m, torch.nn.MultiheadAttention) and m._qkv_same_embed_dim and m.in_proj_weight is not None
            and m.bias_k is None and m.bias_v is None and not m.add_zero_attn)


def _sdpa_class(torch: Any) -> Any:
    F = torch.nn.functional

    class SDPAMultiheadAttention(torch.nn.Module):
        """Self-attention of an ``nn.MultiheadAttention`` through one ``scaled_dot_product_attention``."""

        def __init__(self, mha: Any) -> None:
            super().__init__()
            self.mha = mha

        def forward(self, query: Any, key: Any, value: Any, key_padding_mask: Any = None, need_weights: bool = True,
                    attn_mask: Any = None, average_attn_weights: bool = True, is_causal: bool = False) -> Any:
            m = self.mha
            if (need_weights or key_padding_mask is not None or attn_mask is not None or is_causal or m.training
                    or query is not key or key is not value or query.dim() != 3):
                return m(query, key, value, key_padding_mask=key_padding_mask, need_weights=need_weights,
                         attn_mask=attn_mask, average_attn_weights=average_attn_weights, is_causal=is_causal)
            x = query if m.batch_first else query.transpose(0, 1)
            b, n, e = x.shape
            h = m.num_heads
            qkv = F.linear(x, m.in_proj_weight, m.in_proj_bias).view(b, n, 3, h, e // h).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)
            o = F.scaled_dot_product_attention(q, k, v)
            o = F.linear(o.transpose(1, 2).reshape(b, n, e), m.out_proj.weight, m.out_proj.bias)
            return (o if m.batch_first else o.transpose(0, 1)), None

    return SDPAMultiheadAttention


def swap_attention(torch: Any, module: Any) -> tuple[Any, int]:
    """A copy of ``module`` with every eligible ``nn.MultiheadAttention`` wrapped (``module`` itself when none is)."""
    if not any(_eligible(torch, m) for m in module.modules()):
        return module, 0
    new = copy.deepcopy(module)
    cls = _sdpa_class(torch)
    count = 0
    for parent in list(new.modules()):
        if isinstance(parent, cls):
            continue
        for name, child in list(parent.named_children()):
            if _eligible(torch, child):
                setattr(parent, name, cls(child))
                count += 1
    return new, count


def use_sdpa(torch: Any, module: Any, examples: Sequence[Any], device: str, precision: str,
             strict: bool = True) -> tuple[Any, int, str | None]:
    """``module`` with its self-attention swapped, each swapped module checked against the original.

    Returns ``(module, modules swapped, why not)``. Every swapped module's output is compared with the
    original module's on the call the example inputs make (forward hooks on both models): the model's
    final output alone can hide a wrong attention (a zero-initialized head, a saturated softmax
    downstream). ``strict`` (``attention="sdpa"``): a difference raises; otherwise (``"auto"``, the
    default) the original module is kept and the reason returned.
    """
    new, count = swap_attention(torch, module)
    if not count:
        return module, 0, None
    cls = _sdpa_class(torch)
    wrappers = [m for m in new.modules() if type(m).__name__ == cls.__name__]
    originals = [m for m in module.modules() if _eligible(torch, m)]
    seen: dict[str, list[Any]] = {"want": [], "got": []}

    def hook(key: str) -> Any:
        def record(_m: Any, _args: Any, out: Any) -> None:
            seen[key].append(out[0] if isinstance(out, tuple) else out)
        return record

    handles = [m.register_forward_hook(hook("want")) for m in originals]
    handles += [m.register_forward_hook(hook("got")) for m in wrappers]
    args = [x.to(device) for x in examples]
    try:
        with torch.no_grad():
            want_out = module(*args)
            got_out = new(*args)
    finally:
        for h in handles:
            h.remove()
    pairs = list(zip(seen["want"], seen["got"], strict=False))
    if len(seen["want"]) != len(seen["got"]):
        pairs = []  # calls differ (control flow): only the final outputs can be compared
    outs = [want_out, got_out]
    flat = [list(o) if isinstance(o, (tuple, list)) else [o] for o in outs]
    pairs += list(zip(*flat, strict=True))
    tol = _TOLERANCE.get(precision, 1e-4)
    for i, (w, g) in enumerate(pairs):
        if not hasattr(w, "is_floating_point"):
            continue
        if not w.is_floating_point():
            ok, diff = bool(torch.equal(w, g)), 0.0
        else:
            scale = float(w.float().abs().max()) or 1.0
            diff = float((w.float() - g.float()).abs().max()) / scale
            ok = diff <= tol
        if not ok:
            where = f"attention module {i}" if i < len(pairs) - len(flat[0]) else "an output of the model"
            if strict:
                raise BackendError(f"attention='sdpa' changes {where} (largest relative difference {diff:.3g})",
                                   "the same outputs as the model's own nn.MultiheadAttention",
                                   "build without attention='sdpa' (--attention default)")
            return module, 0, f"the SDPA form changes {where} (largest relative difference {diff:.3g}); kept the model's own attention"
    return new, count, None
