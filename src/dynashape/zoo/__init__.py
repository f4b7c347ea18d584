"""Tiny real models, built from code with random weights (nothing is downloaded).

Each entry says what it is for. The demo, the tests and the benchmarks all draw from here, so a
model means the same thing everywhere. ``torch`` is imported only when a model is made.

>>> sorted(REGISTRY)[:3]
['bert_like', 'gpt2_like', 'resnet_like']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ZooModel:
    """A model factory with the facts needed to export it with dynamic dims."""

    name: str
    purpose: str
    make: Callable[[], Any]  # -> torch.nn.Module in eval mode, seeded
    example_inputs: Callable[..., dict[str, Any]]  # (**dims) -> {input name: tensor}
    dynamic_axes: dict[str, dict[int, str]]
    output_names: tuple[str, ...]


def _lazy(module: str, attr: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)(*args, **kwargs)

    return call


REGISTRY: dict[str, ZooModel] = {
    "segmentation": ZooModel(
        "segmentation",
        "the seed's example: a small encoder-decoder segmentation net, input_1 -> output_1 (logits), "
        "dynamic image_height/image_width (any size, odd ones too); the demo appends a Sigmoid",
        _lazy("demo", "make_segmentation"),
        _lazy("demo", "segmentation_inputs"),
        {"input_1": {2: "image_height", 3: "image_width"}},
        ("output_1",),
    ),
    "superres": ZooModel(
        "superres",
        "PyTorch's ONNX tutorial super-resolution net (4 convs + PixelShuffle x3), dynamic batch",
        _lazy("demo", "make_superres"),
        _lazy("demo", "superres_inputs"),
        {"input": {0: "batch"}},
        ("output",),
    ),
    "resnet_like": ZooModel(
        "resnet_like",
        "a small ResNet (conv-bn-relu stem, 2 residual stages, global pool, fc), dynamic batch and image size",
        _lazy("classic", "make_resnet_like"),
        _lazy("classic", "image_inputs"),
        {"image": {0: "batch", 2: "height", 3: "width"}},
        ("logits",),
    ),
    "bert_like": ZooModel(
        "bert_like",
        "a 2-layer BERT-like encoder with token ids and an attention mask, dynamic batch and seq",
        _lazy("classic", "make_bert_like"),
        _lazy("classic", "token_inputs"),
        {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}},
        ("hidden",),
    ),
    "gpt2_like": ZooModel(
        "gpt2_like",
        "a 2-layer GPT-2-like causal decoder (causal mask built from the sequence length), dynamic batch and seq",
        _lazy("classic", "make_gpt2_like"),
        _lazy("classic", "ids_inputs"),
        {"input_ids": {0: "batch", 1: "seq"}},
        ("logits",),
    ),
    "vit_like": ZooModel(
        "vit_like",
        "a small ViT (patch conv, class token, 2 encoder layers), dynamic batch; image 32x32 is fixed by "
        "the position embedding",
        _lazy("classic", "make_vit_like"),
        _lazy("classic", "vit_inputs"),
        {"image": {0: "batch"}},
        ("logits",),
    ),
    "unet_like": ZooModel(
        "unet_like",
        "a 2-level UNet with max-pool down and bilinear Resize up plus skip connections, dynamic batch and "
        "image size (multiples of 4)",
        _lazy("classic", "make_unet_like"),
        _lazy("classic", "image_inputs"),
        {"image": {0: "batch", 2: "height", 3: "width"}},
        ("mask",),
    ),
}


def get(name: str) -> ZooModel:
    from .._errors import DynashapeError

    try:
        return REGISTRY[name]
    except KeyError:
        raise DynashapeError(f"no zoo model named '{name}'", "one of: " + ", ".join(sorted(REGISTRY))) from None
