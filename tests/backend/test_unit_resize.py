"""Resizes of 1x1 maps computed as broadcasts (``_backend/resize.py``, ``broadcast_unit_resizes``): every
mode gives eager's values, only resizes of maps whose spatial sizes are all a fixed 1 are rewritten, a
resize that is a graph output is left, and a build with a free dim records the count (a static one
keeps Inductor's own graph)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
import dynashape  # noqa: E402
from dynashape import Profile  # noqa: E402
from dynashape._backend.resize import broadcast_unit_resizes  # noqa: E402

nn = torch.nn
F = torch.nn.functional


class PoolingHead(nn.Module):
    """An ASPP-like head: the image-pooling branch (1x1 map) resized to the feature map and concatenated,
    beside a resize of a map that is not 1x1 (kept) and, optionally, a 1x1 resize returned as an output
    (kept: the program's signature names it)."""

    def __init__(self, mode: str = "bilinear", align_corners: bool | None = False, scale: bool = False, pooled_out: bool = False,
                 antialias: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.mode, self.align_corners, self.scale, self.pooled_out, self.antialias = mode, align_corners, scale, pooled_out, antialias
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 8, 1), nn.ReLU())
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y = self.stem(x)
        kw = {} if self.mode in ("nearest", "nearest-exact") else {"align_corners": self.align_corners, "antialias": self.antialias}
        p = self.pool(y)
        if self.scale:
            wide = F.interpolate(p, scale_factor=4, mode=self.mode, **kw)
            out = self.head(torch.cat([F.adaptive_avg_pool2d(y, 4), wide], 1))
        else:
            out = self.head(torch.cat([y, F.interpolate(p, size=y.shape[-2:], mode=self.mode, **kw)], 1))
        half = F.interpolate(y, scale_factor=0.5, mode="nearest")  # not a 1x1 map: kept
        outs = (out, half.sum((2, 3)))
        if self.pooled_out:
            outs += (F.interpolate(p, size=(3, 5), mode="nearest"),)
        return outs


def _export(model: nn.Module) -> torch.export.ExportedProgram:
    h, w = torch.export.Dim("h", min=8, max=64), torch.export.Dim("w", min=8, max=64)
    return torch.export.export(model.eval(), (torch.randn(1, 3, 20, 24),), dynamic_shapes=({2: h, 3: w},))


def _resizes(ep: torch.export.ExportedProgram) -> list[str]:
    return [str(n.target) for n in ep.graph.nodes if n.op == "call_function" and "upsample" in str(n.target)]


@pytest.mark.parametrize("mode,align_corners,antialias", [("bilinear", False, False), ("bilinear", True, False), ("bicubic", False, False),
                                                          ("bilinear", False, True), ("bicubic", True, True),
                                                          ("nearest", None, False), ("nearest-exact", None, False)])
def test_every_mode_of_a_1x1_resize_becomes_a_broadcast_with_eagers_values(mode: str, align_corners: bool | None, antialias: bool) -> None:
    model = PoolingHead(mode, align_corners, antialias=antialias)
    ep = _export(model)
    before = _resizes(ep)
    done = broadcast_unit_resizes(torch, ep)
    assert len(done) == 1, done
    assert len(_resizes(ep)) == len(before) - 1  # the 0.5x resize of the feature map stays
    assert any("expand" in str(n.target) for n in ep.graph.nodes)
    with torch.no_grad():
        for shape in [(1, 3, 20, 24), (1, 3, 8, 64), (1, 3, 33, 17)]:
            x = torch.randn(shape)
            for got, want in zip(ep.module()(x), model(x), strict=True):
                torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_a_resize_by_scale_factor_is_rewritten_where_its_output_size_is_a_number() -> None:
    model = PoolingHead("bilinear", False, scale=True)
    ep = _export(model)
    assert len(broadcast_unit_resizes(torch, ep)) == 1
    x = torch.randn(1, 3, 30, 18)
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(x)[0], model(x)[0], rtol=1e-5, atol=1e-6)


def test_a_resize_that_is_an_output_is_left_and_a_second_pass_finds_nothing() -> None:
    ep = _export(PoolingHead("bilinear", False, pooled_out=True))
    assert len(broadcast_unit_resizes(torch, ep)) == 1  # the concatenated one, not the output
    assert sum("upsample_nearest" in t for t in _resizes(ep)) == 2  # the output and the 0.5x one
    assert broadcast_unit_resizes(torch, ep) == []


class UsedAfter(nn.Module):
    """The pooled branch's resize, then used by an op that writes it in place (``relu_``, as
    ``nn.ReLU(inplace=True)`` leaves in torch.export's graph), one that views it, or one that only reads
    it while writing another tensor (``add_``'s ``other``)."""

    def __init__(self, use: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.use = use
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(3, 4, 1))
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = F.interpolate(self.pool(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
        y = self.conv(x)
        if self.use == "relu_":
            return y + torch.relu_(p)
        if self.use == "view":
            return (y.view(x.shape[0], 4, -1) + p.view(x.shape[0], 4, -1)).sum(-1)
        return y.add_(p)


@pytest.mark.parametrize("use,rewritten", [("relu_", False), ("view", False), ("add_", True)])
def test_a_resize_is_rewritten_only_where_its_users_only_read_it(use: str, rewritten: bool) -> None:
    """An ``expand`` repeats one element: an in-place op on it fails ("more than one element of the
    written-to tensor refers to a single memory location"), so such resizes are left as they are."""
    model = UsedAfter(use).eval()
    ep = torch.export.export(model, (torch.randn(1, 3, 20, 24),), dynamic_shapes=({2: torch.export.Dim("h", min=8, max=64)},))
    assert bool(broadcast_unit_resizes(torch, ep)) is rewritten
    x = torch.randn(1, 3, 30, 24)
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(x), model(x), rtol=1e-5, atol=1e-6)


def test_a_build_with_free_dims_records_the_broadcast_and_matches_eager_and_a_static_one_keeps_the_resize(tmp_path) -> None:
    model = PoolingHead("bilinear", False).eval()
    x = torch.randn(1, 3, 24, 24)
    e = dynashape.build(model, Profile({"x": ((1, 3, 16, 16), (1, 3, 24, 24), (1, 3, 48, 48))}), backend="inductor",
                        example_inputs={"x": x})
    assert e.manifest.backend_data["unit_resizes"] == 1
    e.save(tmp_path / "head.engine")
    assert "1 resize(s) of a 1x1 map as a broadcast" in str(dynashape.inspect(tmp_path / "head.engine"))
    with torch.no_grad():
        for shape in [(1, 3, 16, 16), (1, 3, 31, 45), (1, 3, 48, 48)]:
            xi = torch.randn(shape)
            got = e.run({"x": xi})
            for spec, want in zip(e.outputs, model(xi), strict=True):
                torch.testing.assert_close(got[spec.name], want, rtol=1e-4, atol=1e-5)
    static = dynashape.build(model, Profile({"x": ((1, 3, 24, 24),) * 3}), backend="inductor", example_inputs={"x": x})
    assert "unit_resizes" not in static.manifest.backend_data


def test_a_model_imported_from_onnx_gets_the_broadcast_too(tmp_path) -> None:
    """The ONNX importer's Resize of the pooled branch reaches the graph as the same resize op."""
    model = PoolingHead("bilinear", False).eval()
    path = str(tmp_path / "head.onnx")
    dynashape.export(model, {"x": torch.randn(1, 3, 24, 24)}, path, dynamic_axes={"x": {2: "h", 3: "w"}}, output_names=["y", "s"])
    e = dynashape.build(path, Profile({"x": ((1, 3, 16, 16), (1, 3, 24, 24), (1, 3, 48, 48))}), backend="inductor", quiet=True)
    assert e.manifest.backend_data["unit_resizes"] == 1
    x = torch.randn(1, 3, 31, 45)
    with torch.no_grad():
        torch.testing.assert_close(torch.as_tensor(e.run({"x": x.numpy()})["y"]), model(x)[0], rtol=1e-4, atol=1e-5)
