"""The range split on CUDA (``build(split=...)``): a conv net with a dynamic batch and dynamic H/W, the
batch cut into sub-ranges beside the default alignment of H/W, every package right against eager.
Skipped without a CUDA device."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
import dynashape  # noqa: E402
from dynashape import Profile  # noqa: E402

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
nn = torch.nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(3, 16, 3, padding=1)
        self.b = nn.Conv2d(16, 16, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.c = nn.Conv2d(16, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.c(torch.nn.functional.silu(self.bn(self.b(torch.relu(self.a(x))))))
        return nn.functional.interpolate(y, size=x.shape[2:], mode="nearest")


def test_batch_split_beside_the_aligned_spatial_dims_is_right_in_every_package() -> None:
    model = Net().eval()
    prof = Profile({"x": ((1, 3, 64, 64), (8, 3, 96, 96), (32, 3, 128, 128))})
    e = dynashape.build(model, prof, backend="inductor", device="cuda", precision="fp16", example_inputs={"x": torch.rand(8, 3, 96, 96)},
                        dynamic_axes={"x": {0: "batch", 2: "H", 3: "W"}}, split="auto", quiet=True)
    # H and W are aligned by default on CUDA, and not split; the batch (1..32) is cut geometrically
    assert e.manifest.build_settings.align == (("H", 32), ("W", 32))
    assert [[(s["name"], s["lo"], s["hi"]) for s in sub] for sub in e.manifest.backend_data["split"][0]] == [
        [("batch", 1, 3)], [("batch", 4, 10)], [("batch", 11, 32)]]
    m16 = model.half().cuda().to(memory_format=torch.channels_last)
    for b, h, w in ((1, 64, 64), (2, 96, 128), (6, 77, 65), (7, 128, 96), (32, 101, 128), (13, 64, 100)):
        x = torch.rand(b, 3, h, w, device="cuda")
        with torch.no_grad():
            want = m16(x.half().contiguous(memory_format=torch.channels_last)).float()
        got = next(iter(e.run({"x": x}).values()))
        assert got.shape == want.shape
        assert float((got.float() - want).abs().max()) <= 2e-2 * float(want.abs().max()) + 1e-3, (b, h, w)
