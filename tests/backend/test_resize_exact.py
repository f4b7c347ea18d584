"""Nearest resizes traced with integer source indices (``_backend/resize.py``): the same values as
eager PyTorch, and an exported graph with integer index arithmetic instead of a float scale."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from dynashape._backend.resize import exact_nearest  # noqa: E402

F = torch.nn.functional


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
@pytest.mark.parametrize("shape,size", [((1, 3, 33, 65), (66, 129)), ((2, 4, 50, 75), (100, 150)), ((1, 2, 195, 251), (389, 501)),
                                        ((1, 2, 80, 80), (17, 301)), ((1, 2, 9), (31,)), ((1, 1, 3, 5, 7), (6, 11, 13))])
def test_same_values_as_eager_upsampling_and_downsampling(mode: str, shape: tuple[int, ...], size: tuple[int, ...]) -> None:
    x = torch.rand(shape)
    want = F.interpolate(x, size=size, mode=mode)
    with exact_nearest(torch):
        got = F.interpolate(x, size=size, mode=mode)
    assert torch.equal(got, want)


def test_other_modes_and_scale_factors_are_left_alone() -> None:
    x = torch.rand(1, 2, 10, 12)
    with exact_nearest(torch):
        bilinear = F.interpolate(x, size=(20, 24), mode="bilinear", align_corners=False)
        scaled = F.interpolate(x, scale_factor=2.0, mode="nearest")
    assert torch.equal(bilinear, F.interpolate(x, size=(20, 24), mode="bilinear", align_corners=False))
    assert torch.equal(scaled, F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Skip(torch.nn.Module):
    """The seed net's pattern: resize a quarter-size map back to the half-size skip's symbolic size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d1 = x[:, :, ::2, ::2]
        d2 = d1[:, :, ::2, ::2] * 2.0
        return F.interpolate(d2, size=d1.shape[-2:], mode="nearest")


def test_export_under_the_mode_has_integer_indices_and_the_same_values() -> None:
    net = Skip()
    dims = {2: torch.export.Dim("H", min=32, max=512), 3: torch.export.Dim("W", min=32, max=512)}
    with exact_nearest(torch):
        ep = torch.export.export(net, (torch.rand(1, 3, 256, 256),), dynamic_shapes=({**dims},))
    targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert "aten.index_select.default" in targets and not any("upsample" in t for t in targets), targets
    for h, w in ((131, 257), (200, 300), (97, 33)):
        x = torch.rand(1, 3, h, w)
        assert torch.equal(ep.module()(x), net(x)), (h, w)


def test_symbolic_ratios_are_found_where_sizes_are_free_and_not_where_they_are_multiples_of_one_symbol() -> None:
    """An aligned part (``Dim(k) * 32``) resizes by constant ratios, computed as a static engine does:
    a build exports it without the exact gathers. Free sizes give symbolic ratios, which need them."""
    from dynashape._backend.resize import symbolic_nearest_ratios

    net, x = Skip(), torch.rand(1, 3, 256, 256)
    Dim = torch.export.Dim
    free = torch.export.export(net, (x,), dynamic_shapes=({2: Dim("H", min=32, max=512), 3: Dim("W", min=32, max=512)},))
    found = symbolic_nearest_ratios(free)
    assert len(found) == 2 and all("->" in f for f in found), found  # both spatial axes of the one resize
    aligned = torch.export.export(net, (x,), dynamic_shapes=({2: Dim("kh", min=1, max=16) * 32, 3: Dim("kw", min=1, max=16) * 32},))
    assert symbolic_nearest_ratios(aligned) == []
    assert symbolic_nearest_ratios(torch.export.export(net, (x,))) == []
    with exact_nearest(torch):  # traced as a gather: no resize left to check
        gathered = torch.export.export(net, (x,), dynamic_shapes=({2: Dim("H", min=32, max=512), 3: Dim("W", min=32, max=512)},))
    assert symbolic_nearest_ratios(gathered) == []


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
def test_a_ratio_between_two_free_dims_is_symbolic(mode: str) -> None:
    """A resize of one free dim to another (H to W) has no constant ratio even when both are aligned."""
    from dynashape._backend.resize import symbolic_nearest_ratios

    class ToSquare(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.interpolate(x, size=(x.shape[3], x.shape[3]), mode=mode)

    Dim = torch.export.Dim
    ep = torch.export.export(ToSquare(), (torch.rand(1, 2, 64, 96),),
                             dynamic_shapes=({2: Dim("kh", min=1, max=8) * 32, 3: Dim("kw", min=1, max=8) * 32},))
    assert len(symbolic_nearest_ratios(ep)) == 1, symbolic_nearest_ratios(ep)  # H -> W; W -> W is 1
