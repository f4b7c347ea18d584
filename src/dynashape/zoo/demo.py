"""The demo networks: the seed's segmentation net and PyTorch's super-resolution tutorial net."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Segmentation(nn.Module):
    """Encoder-decoder: two stride-2 conv stages down, resize-and-conv up with a skip, 1-channel logits.

    The decoder resizes to the skip's and the input's size (not by a fixed factor), so any image size
    works, odd ones included (777x1001).
    """

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        w = width
        self.down1 = nn.Sequential(nn.Conv2d(3, w, 3, stride=2, padding=1), nn.BatchNorm2d(w), nn.ReLU())
        self.down2 = nn.Sequential(nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU())
        self.up1 = nn.Sequential(nn.Conv2d(2 * w, w, 3, padding=1), nn.ReLU())
        self.up2 = nn.Sequential(nn.Conv2d(2 * w, w, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(w, 1, 1)

    def forward(self, input_1: torch.Tensor) -> torch.Tensor:
        d1 = self.down1(input_1)
        d2 = self.down2(d1)
        u1 = self.up1(nn.functional.interpolate(d2, size=d1.shape[-2:], mode="nearest"))
        u1 = torch.cat([u1, d1], dim=1)  # skip connection
        return self.head(self.up2(nn.functional.interpolate(u1, size=input_1.shape[-2:], mode="nearest")))


class SuperResolution(nn.Module):
    """PyTorch's ONNX export tutorial net (upscale factor 3), on 1-channel (Y) images."""

    def __init__(self, upscale_factor: int = 3) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(1, 64, 5, padding=2)
        self.conv2 = nn.Conv2d(64, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 32, 3, padding=1)
        self.conv4 = nn.Conv2d(32, upscale_factor**2, 3, padding=1)
        self.pixel_shuffle = nn.PixelShuffle(upscale_factor)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv1(input))
        x = self.relu(self.conv2(x))
        x = self.relu(self.conv3(x))
        return self.pixel_shuffle(self.conv4(x))


def _seeded(module: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (1.0 / max(1, p[0].numel()) ** 0.5))
        for name, b in module.named_buffers():
            if name.endswith("running_var"):
                b.uniform_(0.5, 1.5, generator=g)
            elif name.endswith("running_mean"):
                b.normal_(0.0, 0.1, generator=g)
    return module.eval()


def make_segmentation() -> nn.Module:
    return _seeded(Segmentation(), 0)


def make_superres() -> nn.Module:
    return _seeded(SuperResolution(), 1)


def segmentation_inputs(batch: int = 1, image_height: int = 512, image_width: int = 512) -> dict[str, Any]:
    return {"input_1": torch.rand(batch, 3, image_height, image_width)}


def superres_inputs(batch: int = 2, height: int = 224, width: int = 224) -> dict[str, Any]:
    return {"input": torch.rand(batch, 1, height, width)}
