"""Deliberately broken PyTorch models: each declares a dim dynamic and pins it inside the graph.

Every case names the finding ``dynashape.check`` must produce (op, symbol, value at export). The
models are tiny and seeded; the shapes they are exported with are part of the case, because the
pinned value is the export-time value of the dim.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class BrokenCase:
    name: str
    make: Callable[[], nn.Module]
    inputs: Callable[[], dict[str, torch.Tensor]]
    dynamic_axes: dict[str, dict[int, str]]
    symbol: str  # the dynamic dim that gets pinned
    value: int  # the number the graph carries instead of it
    torchscript: str | None  # op of the reported node in the TorchScript export (None: export is clean)
    dynamo: str | None  # the same for the dynamo export
    fixable: bool = False  # whether `fix` must repair the TorchScript export


def _seed(m: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for p in m.parameters():
        nn.init.normal_(p, std=0.2)
    return m.eval()


class ViewOne(nn.Module):
    """The classic: ``x.view(1, -1)`` before the classifier, exported with batch 1."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).view(1, -1))


class ViewIntBatch(nn.Module):
    """A batch size read from the tensor and turned into a Python int, which tracing freezes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.fc(y.view(int(y.shape[0]), -1))


class ReshapeAllInts(nn.Module):
    """Every dim read as an int: ``reshape(b, c, h * w)`` with frozen b, h, w."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        b, c, h, w = (int(v) for v in y.shape)
        return y.reshape(b, c, h * w).softmax(-1)


class SplitHeads(nn.Module):
    """Attention heads split with a frozen batch and sequence length."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(16, 48)
        self.proj = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = int(x.shape[0]), int(x.shape[1])
        q, k, v = self.qkv(x).view(b, t, 3, 4, 4).permute(2, 0, 3, 1, 4)
        a = (q @ k.transpose(-1, -2)).softmax(-1) @ v
        return self.proj(a.transpose(1, 2).reshape(b, t, 16))


class ExpandClassToken(nn.Module):
    """A class token expanded to a frozen batch size."""

    def __init__(self) -> None:
        super().__init__()
        self.cls = nn.Parameter(torch.zeros(1, 1, 16))
        self.fc = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tok = self.cls.expand(int(x.shape[0]), -1, -1)
        return self.fc(torch.cat([tok, x], dim=1))


class ArangePositions(nn.Module):
    """Position ids from a frozen sequence length."""

    def __init__(self) -> None:
        super().__init__()
        self.tok = nn.Embedding(50, 16)
        self.pos = nn.Embedding(64, 16)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(int(ids.shape[1]), device=ids.device)
        return self.tok(ids) + self.pos(pos)[None]


class InterpolateFixed(nn.Module):
    """Upsampling to the skip connection's size, read as ints: a Resize with constant sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.skip = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.skip(x)
        d = self.down(x)
        up = F.interpolate(d, size=(int(s.shape[2]), int(s.shape[3])), mode="nearest")
        return up + s


class ZerosPadding(nn.Module):
    """A padding tensor made with ``torch.zeros`` of a frozen batch."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = torch.zeros(int(x.shape[0]), 2, 8, dtype=x.dtype)
        return self.fc(torch.cat([x, pad], dim=1))


class RepeatMask(nn.Module):
    """A learned mask repeated over a frozen batch."""

    def __init__(self) -> None:
        super().__init__()
        self.mask = nn.Parameter(torch.ones(1, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask.repeat(int(x.shape[0]), 1)


class SliceFrozen(nn.Module):
    """Dropping the last step with a frozen length: ``x[:, :T - 1]``."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        return y[:, : int(y.shape[1]) - 1] - y[:, 1:]


class HardcodedBatch(nn.Module):
    """A batch size stored on the module when it was written for one deployment."""

    def __init__(self, batch: int = 4) -> None:
        super().__init__()
        self.batch = batch
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).reshape(self.batch, -1).sum(-1)


def _img(b: int = 2, h: int = 8, w: int = 8) -> Callable[[], dict[str, torch.Tensor]]:
    return lambda: {"x": torch.rand(b, 3, h, w)}


def _seq(b: int = 2, t: int = 6, d: int = 16) -> Callable[[], dict[str, torch.Tensor]]:
    return lambda: {"x": torch.rand(b, t, d)}


_BATCH = {"x": {0: "batch"}}
_IMG = {"x": {0: "batch", 2: "height", 3: "width"}}
_BT = {"x": {0: "batch", 1: "seq"}}

CORPUS: tuple[BrokenCase, ...] = (
    BrokenCase("view_one", ViewOne, _img(1), _BATCH, "batch", 1, "Reshape", "Reshape", fixable=True),
    BrokenCase("view_int_batch", ViewIntBatch, _img(2), _BATCH, "batch", 2, "Reshape", None, fixable=True),
    BrokenCase("reshape_all_ints", ReshapeAllInts, _img(2, 8, 12), _IMG, "batch", 2, "Reshape", None),
    BrokenCase("split_heads", SplitHeads, _seq(2, 6), _BT, "seq", 6, "Reshape", None, fixable=True),
    BrokenCase("expand_cls", ExpandClassToken, _seq(3, 5), _BT, "batch", 3, "Expand", None, fixable=True),
    # NOTE: TorchScript folds the frozen arange into a constant, so the pin surfaces where it meets x.
    BrokenCase("arange_positions", ArangePositions, lambda: {"x": torch.randint(0, 50, (2, 7))}, _BT, "seq", 7, "Add", None),
    BrokenCase("interpolate_fixed", InterpolateFixed, _img(1, 8, 12), _IMG, "height", 8, "Resize", None),
    BrokenCase("zeros_padding", ZerosPadding, lambda: {"x": torch.rand(3, 4, 8)}, _BT, "batch", 3, "Concat", None, fixable=True),
    BrokenCase("repeat_mask", RepeatMask, lambda: {"x": torch.rand(3, 8)}, _BATCH, "batch", 3, "Tile", None, fixable=True),
    BrokenCase("slice_frozen", SliceFrozen, lambda: {"x": torch.rand(2, 9, 8)}, _BT, "seq", 8, "Slice", None),
    BrokenCase("hardcoded_batch", HardcodedBatch, _img(4), _BATCH, "batch", 4, "Reshape", "Reshape", fixable=True),
)


def make(case: BrokenCase) -> nn.Module:
    return _seed(case.make())


def export(module: nn.Module, inputs: dict[str, torch.Tensor], dynamic_axes: dict[str, dict[int, str]],
           path: str, *, dynamo: bool, output_names: list[str] | None = None) -> None:
    """Export with one of torch's two exporters, both driven by ``dynamic_axes`` as users write them."""
    import contextlib
    import io
    import warnings

    names = list(inputs)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, tuple(inputs.values()), path, input_names=names, output_names=output_names or ["out"],
            dynamic_axes=dynamic_axes, dynamo=dynamo, **({"verbose": False} if dynamo else {}),
        )


def call(module: nn.Module, inputs: dict[str, Any]) -> Any:
    with torch.no_grad():
        return module(*inputs.values())
