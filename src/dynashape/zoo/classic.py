"""Small versions of the architectures users deploy: ResNet, BERT, GPT-2, ViT, UNet.

Sizes are tiny (a few hundred thousand parameters at most) so that tests export and build them in
seconds; the structure (ops, shape arithmetic, masks, skips) is what matters for dynamic shapes.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .demo import _seeded


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.short = nn.Sequential() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.b1(self.c1(x)))
        return F.relu(self.b2(self.c2(y)) + self.short(x))


class ResNetLike(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.layer1 = _Block(16, 16, 1)
        self.layer2 = _Block(16, 32, 2)
        self.fc = nn.Linear(32, classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.layer2(self.layer1(self.stem(image)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class _EncoderLayer(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.h = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln1 = nn.LayerNorm(d)
        self.ln2 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def attend(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.h) + bias
        return self.proj((scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d))

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = self.ln1(x + self.attend(x, bias))
        return self.ln2(x + self.ff(x))


class BertLike(nn.Module):
    def __init__(self, vocab: int = 100, d: int = 32, heads: int = 4, layers: int = 2, max_len: int = 512) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(max_len, d)
        self.layers = nn.ModuleList(_EncoderLayer(d, heads) for _ in range(layers))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.tok(input_ids) + self.pos(pos)[None]
        bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.layers:
            x = layer(x, bias)
        return x


class GPT2Like(nn.Module):
    def __init__(self, vocab: int = 100, d: int = 32, heads: int = 4, layers: int = 2, max_len: int = 512) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(max_len, d)
        self.layers = nn.ModuleList(_EncoderLayer(d, heads) for _ in range(layers))
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        t = input_ids.shape[1]
        x = self.tok(input_ids) + self.pos(torch.arange(t, device=input_ids.device))[None]
        causal = torch.triu(torch.full((t, t), -10000.0, device=x.device), diagonal=1)
        for layer in self.layers:
            x = layer(x, causal)
        return self.head(x)


class ViTLike(nn.Module):
    def __init__(self, image: int = 32, patch: int = 8, d: int = 32, classes: int = 10) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, d, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.zeros(1, (image // patch) ** 2 + 1, d))
        self.layers = nn.ModuleList(_EncoderLayer(d, 4) for _ in range(2))
        self.head = nn.Linear(d, classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.patch(image).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        for layer in self.layers:
            x = layer(x, zero)
        return self.head(x[:, 0])


class UNetLike(nn.Module):
    def __init__(self, w: int = 8) -> None:
        super().__init__()

        def conv(a: int, b: int) -> nn.Module:
            return nn.Sequential(nn.Conv2d(a, b, 3, padding=1), nn.ReLU())

        self.e1, self.e2, self.mid = conv(3, w), conv(w, 2 * w), conv(2 * w, 2 * w)
        self.d2, self.d1 = conv(4 * w, w), conv(2 * w, w)
        self.out = nn.Conv2d(w, 1, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        e1 = self.e1(image)
        e2 = self.e2(F.max_pool2d(e1, 2))
        m = self.mid(F.max_pool2d(e2, 2))
        d2 = self.d2(torch.cat([F.interpolate(m, scale_factor=2.0, mode="bilinear", align_corners=False), e2], 1))
        d1 = self.d1(torch.cat([F.interpolate(d2, scale_factor=2.0, mode="bilinear", align_corners=False), e1], 1))
        return self.out(d1)


def make_resnet_like() -> nn.Module:
    return _seeded(ResNetLike(), 10)


def make_bert_like() -> nn.Module:
    return _seeded(BertLike(), 11)


def make_gpt2_like() -> nn.Module:
    return _seeded(GPT2Like(), 12)


def make_vit_like() -> nn.Module:
    return _seeded(ViTLike(), 13)


def make_unet_like() -> nn.Module:
    return _seeded(UNetLike(), 14)


def image_inputs(batch: int = 2, height: int = 32, width: int = 32) -> dict[str, Any]:
    return {"image": torch.rand(batch, 3, height, width)}


def vit_inputs(batch: int = 2) -> dict[str, Any]:
    return {"image": torch.rand(batch, 3, 32, 32)}


def token_inputs(batch: int = 2, seq: int = 16) -> dict[str, Any]:
    g = torch.Generator().manual_seed(batch * 1000 + seq)
    mask = torch.ones(batch, seq, dtype=torch.int64)
    mask[0, seq // 2:] = 0  # one padded sequence so the mask matters
    return {"input_ids": torch.randint(0, 100, (batch, seq), generator=g), "attention_mask": mask}


def ids_inputs(batch: int = 2, seq: int = 16) -> dict[str, Any]:
    g = torch.Generator().manual_seed(batch * 1000 + seq)
    return {"input_ids": torch.randint(0, 100, (batch, seq), generator=g)}
