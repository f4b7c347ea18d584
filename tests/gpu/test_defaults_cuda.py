"""The defaults measured on the GPU (BENCHMARKS.md, "the dynamic tax"): an aligned package for a conv
net's H and W, and self-attention as one SDPA call. Skipped without a CUDA device.

Run on the GPU machine: PYTHONPATH=src CXX=/usr/bin/g++ CC=/usr/bin/gcc python -m pytest tests/gpu -m gpu
"""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
import dynashape  # noqa: E402
from dynashape import Profile  # noqa: E402

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
nn = torch.nn


class Seg(nn.Module):
    """Conv, downsample, resize back: the shape of the seed's segmentation net, small."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.c = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.c(torch.relu(self.b(torch.relu(self.a(x)))))
        return nn.functional.interpolate(y, size=x.shape[2:], mode="bilinear", align_corners=False)


class Enc(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.att = nn.MultiheadAttention(64, 4, batch_first=True)
        self.head = nn.Linear(64, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.att(x, x, x, need_weights=False)[0])


def test_conv_net_gets_an_aligned_package_by_default_and_both_packages_are_right() -> None:
    model = Seg().eval()
    prof = Profile({"x": ((1, 3, 64, 64), (1, 3, 128, 128), (1, 3, 256, 256))})
    e = dynashape.build(model, prof, backend="inductor", device="cuda", precision="fp16", example_inputs={"x": torch.rand(1, 3, 128, 128)},
                        dynamic_axes={"x": {2: "H", 3: "W"}}, quiet=True)
    assert e.manifest.build_settings.align == (("H", 32), ("W", 32))
    described = [p.describe() for p in e.manifest.parts]
    assert described[0] == "H in 64..256 with H % 32 in {0}, W in 64..256 with W % 32 in {0}", described
    assert len(described) >= 2  # the general package serves the other sizes
    m16 = model.half().cuda()
    for h, w in ((64, 64), (96, 224), (256, 256), (65, 77), (255, 130), (128, 101)):
        x = torch.rand(1, 3, h, w, device="cuda")
        with torch.no_grad():
            want = m16(x.half()).float()
        got = next(iter(e.run({"x": x}).values()))
        assert got.shape == want.shape
        assert float((got.float() - want).abs().max()) <= 2e-2 * float(want.abs().max()) + 1e-3, (h, w)
    off = dynashape.build(model.float().cpu(), prof, backend="inductor", device="cuda", precision="fp16",
                          example_inputs={"x": torch.rand(1, 3, 128, 128)}, dynamic_axes={"x": {2: "H", 3: "W"}}, quiet=True, align={})
    assert off.manifest.build_settings.align == () and not off.manifest.parts


class Stem(nn.Module):
    """ResNet's stem (7x7 stride-2 conv, 3x3 stride-2 max pool) and a head, upsampled back."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 7, 2, 3, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(self.pool(torch.relu(self.bn(self.conv(x)))))
        return nn.functional.interpolate(y, size=x.shape[2:], mode="bilinear", align_corners=False)


def test_a_resnet_stem_is_one_general_package_for_every_parity() -> None:
    """Torch 2.11 (the GPU machine's) guards ``((H - 1) // 2) % 2 != 0`` in its pooling arithmetic; the
    build traces without that guard (``_torch_compat``), so the profile is the aligned package and ONE
    general package, not four guard-split classes of H and W."""
    model = Stem().eval()
    prof = Profile({"x": ((1, 3, 64, 64), (1, 3, 128, 128), (1, 3, 256, 256))})
    e = dynashape.build(model, prof, backend="inductor", device="cuda", precision="fp16", example_inputs={"x": torch.rand(1, 3, 128, 128)},
                        dynamic_axes={"x": {2: "H", 3: "W"}}, quiet=True)
    described = [p.describe() for p in e.manifest.parts]
    assert len(described) == 2, described  # four guard-split classes made it 5
    assert described[0] == "H in 64..256 with H % 32 in {0}, W in 64..256 with W % 32 in {0}", described
    assert "%" not in described[1], described  # the general package has no residue class
    # free H/W of a conv net on CUDA: ND tiling by default (inductor.default_configs), recorded
    assert e.manifest.backend_data.get("inductor_defaults") == [["triton.max_tiles", 3], ["triton.prefer_nd_tiling", True]]
    m16 = copy.deepcopy(model).half().cuda()
    for h, w in ((64, 64), (65, 66), (67, 68), (129, 255), (130, 131), (256, 256), (250, 97)):  # every H, W % 4
        x = torch.rand(1, 3, h, w, device="cuda")
        with torch.no_grad():
            want = m16(x.half()).float()
        got = next(iter(e.run({"x": x}).values())).float()
        assert got.shape == want.shape
        assert float((got - want).abs().max()) <= 2e-2 * float(want.abs().max()) + 1e-3, (h, w)


def test_self_attention_is_one_sdpa_call_by_default() -> None:
    model = Enc().eval()
    prof = Profile({"x": ((1, 16, 64), (8, 16, 64), (32, 16, 64))})
    e = dynashape.build(model, prof, backend="inductor", device="cuda", precision="fp16", example_inputs={"x": torch.rand(8, 16, 64)},
                        dynamic_axes={"x": {0: "batch"}}, quiet=True)
    assert e.manifest.build_settings.attention == "auto"
    assert e.manifest.backend_data["attention"] == {"mode": "sdpa", "modules_swapped": 1}
    m16 = model.half().cuda()
    for b in (1, 5, 32):
        x = torch.rand(b, 16, 64, device="cuda")
        with torch.no_grad():
            want = m16(x.half()).float()
        got = next(iter(e.run({"x": x}).values())).float()
        assert float((got - want).abs().max()) <= 2e-2 * float(want.abs().max()) + 1e-3, b


def _matches_fp16_eager(engine: dynashape.Engine, model: nn.Module, name: str) -> None:
    """The engine's contiguous output against the model in fp16 on CUDA, at an aligned size (the aligned
    package) and two that are not (the general one), within 2% of the largest output."""
    m16 = copy.deepcopy(model).half().cuda()
    for h, w in ((128, 128), (256, 320), (131, 257)):
        x = torch.rand(1, 3, h, w, device="cuda")
        with torch.no_grad():
            want = m16(x.half()).float()
        got = next(iter(engine.run({name: x}).values()))
        assert got.shape == want.shape and got.is_contiguous()
        assert float((got - want).abs().max()) <= 2e-2 * max(1.0, float(want.abs().max()))


def test_seed_net_head_is_a_channel_dot_on_cuda_and_outputs_match_eager() -> None:
    """The one-channel 1x1 head of the seed's segmentation net is computed as a dot product over the
    channels in a dynamic CUDA build (``_backend/conv_layout.py``); both packages stay right."""
    from dynashape.zoo import REGISTRY

    z = REGISTRY["segmentation"]
    model = z.make()
    prof = Profile({"input_1": ((1, 3, 128, 128), (1, 3, 256, 256), (1, 3, 320, 320))})
    e = dynashape.build(model, prof, backend="inductor", device="cuda", precision="fp16",
                        example_inputs=z.example_inputs(image_height=256, image_width=256), quiet=True)
    assert [n.rsplit(".", 1)[-1] for n in e.manifest.backend_data["channel_dots"]] == ["head"]
    _matches_fp16_eager(e, model, "input_1")


def test_channels_last_engine_runs_its_convolutions_without_copying_weights() -> None:
    """A CUDA conv engine (channels-last by default, weights shared across profiles) hands cuDNN
    weights that are already channels-last: no ATen copy under any convolution, static or dynamic."""
    model = Seg().eval()
    for prof, axes in ((Profile({"x": ((1, 3, 64, 64), (1, 3, 128, 128), (1, 3, 256, 256))}), {"x": {2: "H", 3: "W"}}),
                       (Profile({"x": ((1, 3, 128, 128),) * 3}), None)):
        e = dynashape.build(model, prof, backend="inductor", device="cuda", precision="fp16",
                            example_inputs={"x": torch.rand(1, 3, 128, 128)}, dynamic_axes=axes, quiet=True).with_options(cuda_graphs=False)
        assert e.manifest.backend_data["channels_last"] and e.manifest.backend_data["shared_weights"]
        x = torch.rand(1, 3, 128, 128, device="cuda")
        e.run({"x": x})
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as p:
            e.run({"x": x})
            torch.cuda.synchronize()
        ops = [ev.name for ev in p.events()]
        assert "aten::cudnn_convolution" in ops, sorted(set(ops))
        assert "aten::copy_" not in ops and "aten::clone" not in ops, (axes, sorted(set(ops)))


class PooledBranch(nn.Module):
    """An ASPP-like head, small: the image-pooling branch (a 1x1 map) resized to the feature map and
    concatenated (torchvision's DeepLabV3)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(16, 16, 1), nn.ReLU())
        self.head = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        p = nn.functional.interpolate(self.pool(y), size=y.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(torch.cat([y, p], 1))


def test_a_pooled_branchs_resize_is_a_broadcast_on_cuda_and_outputs_match_eager() -> None:
    """The 1x1 map's resize is an ``expand`` in a dynamic CUDA fp16 build (``resize.broadcast_unit_resizes``),
    with ND tiling and channels-last on; the aligned and the general package stay right."""
    model = PooledBranch().eval()
    prof = Profile({"x": ((1, 3, 128, 128), (1, 3, 256, 256), (1, 3, 320, 320))})
    e = dynashape.build(model, prof, backend="inductor", device="cuda", precision="fp16",
                        example_inputs={"x": torch.rand(1, 3, 256, 256)}, quiet=True)
    assert e.manifest.backend_data.get("unit_resizes", 0) >= 1
    _matches_fp16_eager(e, model, "x")
    # its last op is a 4-channel convolution, which the packages write channels-last (run 9,
    # probe_output_layout_gpu.py): the runtime hands it out contiguous from a graph replay too, on the GPU and
    # copied to the host
    g = e.with_options(capture_on_demand=True)
    x = torch.rand(1, 3, 160, 192, device="cuda")
    plain = next(iter(e.with_options(cuda_graphs=False).run({"x": x}).values()))
    for _ in range(3):
        got = next(iter(g.run({"x": x}).values()))
        host = next(iter(g.run({"x": x.cpu().numpy()}).values()))
        assert got.is_contiguous() and host.flags["C_CONTIGUOUS"]
        torch.testing.assert_close(got, plain, rtol=0, atol=1e-3)
    assert g.graph_stats()["replays"] >= 2
