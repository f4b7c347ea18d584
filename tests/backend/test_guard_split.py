"""Guard-split profiles on the inductor backend: a model whose code guards its dims still builds as one profile.

The network guards H the way fcn_resnet50 did under torch 2.11 (``((H - 1) // 2) % 2 != 0``, there
made by max-pooling's output-size arithmetic, which a build now removes: test_torch_compat.py), here
by the model's own code: a stride-2 conv, then a pad that makes the map even
before a second stride-2 conv whose upsampled output is added back to it. Eager PyTorch runs at
every H; torch.export refuses a ``Dim`` for H. W goes through the same layers at stride 1, so it
stays free and unguarded: the split must restrict H alone.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _nets import BenignBatchGuardNet
from torch import nn

import dynashape
from dynashape import Profile
from dynashape._backend.guard_split import split_profile
from dynashape._engine.selection import PartTable
from dynashape._errors import BackendError, ShapeError
from dynashape._records import ProfilePart
from dynashape._specs import TensorSpec

pytestmark = pytest.mark.slow  # one AOTInductor build of two parts (~60 s on 2 CPU cores), shared by the module

LO, HI = 30, 41
PROFILE = Profile({"x": ((1, 3, LO, LO), (1, 3, 36, 36), (1, 3, HI, HI))})
SPEC = [TensorSpec("x", "float32", (1, 3, "H", "W"))]
TOL = {"atol": 1e-5, "rtol": 1e-4}


class ParityNet(nn.Module):
    """A two-level encoder-decoder whose skip connection needs an even map: it pads odd ones."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.down1 = nn.Conv2d(3, 4, 3, (2, 1), 1)
        self.down2 = nn.Conv2d(4, 4, 3, (2, 1), 1)
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.down1(x))
        if (y.shape[2] - 1) % 2 == 0:  # the guard: ((H - 1) // 2) % 2 == 0, i.e. an odd map
            y = F.pad(y, (0, 0, 0, 1))
        z = F.interpolate(self.down2(y), scale_factor=(2.0, 1.0), mode="nearest")
        z = self.head(z + y)
        return F.interpolate(z, size=x.shape[-2:], mode="bilinear", align_corners=False)


class EvenOnly(nn.Module):
    """Runs only at even H (even rows plus odd rows): odd H is a gap, not a part."""

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor]:
        x = xs[0]
        return (x[:, :, 0::2] + x[:, :, 1::2],)


class Related(nn.Module):
    """Branches on H > W: a guard that relates two dims, which no split by residues can serve."""

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor]:
        x = xs[0]
        if x.shape[2] > x.shape[3]:
            return (x.transpose(2, 3).contiguous(),)
        return (x * 2,)


class Args(nn.Module):
    """``forward(*inputs) -> tuple``, as the builder hands modules to the backend."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.inner(xs[0]),)


def _split(module: nn.Module, profile: Profile = PROFILE) -> list:
    return split_profile(torch, module.eval(), SPEC, profile, lambda i, shape: torch.rand(shape))


@pytest.fixture(scope="module")
def model() -> ParityNet:
    return ParityNet().eval()


@pytest.fixture(scope="module")
def engine(model: ParityNet) -> dynashape.Engine:
    return dynashape.build(model, PROFILE, backend="inductor", example_inputs={"x": torch.rand(1, 3, 36, 36)},
                           dynamic_axes={"x": {2: "H", 3: "W"}}, quiet=True)


def test_torch_export_refuses_the_profile(model: ParityNet) -> None:
    x = torch.rand(1, 3, 36, 36)
    dims = {2: torch.export.Dim("H", min=LO, max=HI), 3: torch.export.Dim("W", min=LO, max=HI)}
    with pytest.raises(Exception, match=r"satisfy the generated guard") as info:
        torch.export.export(model, (x,), dynamic_shapes=(dims,))
    assert "H" in str(info.value) and "W = " not in str(info.value)  # W is free of guards


def test_dynamic_export_keeps_the_guard_out_of_its_ranges(model: ParityNet) -> None:
    """Why the split is needed: Dim.DYNAMIC exports, but only the Python module checks the guard.

    The program's range constraints (all that an AOTInductor package checks at run time) admit
    every H of the profile; a package compiled from it computes garbage at the other parity
    (errors of 1e17 seen on this net), while ``ep.module()`` refuses with the guard.
    """
    x = torch.rand(1, 3, 36, 36)
    dims = {2: torch.export.Dim.DYNAMIC(min=LO, max=HI), 3: torch.export.Dim.DYNAMIC(min=LO, max=HI)}
    ep = torch.export.export(model, (x,), dynamic_shapes=(dims,))
    assert sorted((int(r.lower), int(r.upper)) for r in ep.range_constraints.values()) == [(LO, HI), (LO, HI)]
    program = ep.module()
    same, other = torch.rand(1, 3, 39, 33), torch.rand(1, 3, 37, 33)  # 39 = 4*9+3 takes 36's branch, 37 does not
    with torch.no_grad():
        np.testing.assert_allclose(program(same).numpy(), model(same).numpy(), **TOL)
        with pytest.raises(AssertionError, match="Guard failed"):
            program(other)


def test_parts_cover_every_height_once_per_class() -> None:
    parts = [p.part for p in _split(Args(ParityNet()))]
    assert len(parts) == 2 and all(p.dims for p in parts)
    classes = {(c.name, c.modulus, c.residues) for p in parts for c in p.dims}
    assert classes == {("H", 4, (0, 3)), ("H", 4, (1, 2))}  # H = 4k or 4k+3; H = 4k+1 or 4k+2
    for h in range(LO, HI + 1):
        assert sum(c.contains(h) for p in parts for c in p.dims) == 1, h
    assert any("% 2" in g for p in parts for g in p.guards)
    assert all(any("test_guard_split.py" in s and "if (y.shape[2] - 1) % 2 == 0" in s for s in p.sources) for p in parts)


def test_engine_is_one_profile_with_two_parts(engine: dynashape.Engine) -> None:
    assert len(engine.profiles) == 1
    assert engine.select_profile({"x": (1, 3, 37, 30)}) == 0
    parts = engine.manifest.parts
    assert [p.payload for p in parts] == ["profile0.pt2", "profile0.part1.pt2"]
    assert {"profile0.pt2", "profile0.part1.pt2", "weights.pt"} == set(engine._payloads)


def test_matches_eager_at_every_shape(engine: dynashape.Engine, model: ParityNet) -> None:
    rng = np.random.default_rng(0)
    for h, w in itertools.product(range(LO, HI + 1), range(LO, HI + 1)):
        x = rng.random((1, 3, h, w), dtype=np.float32)
        got = engine.run({"x": x})
        out = next(iter(got.values()))
        with torch.no_grad():
            want = model(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(out, want, **TOL, err_msg=f"H={h} W={w}")


def test_save_load_and_inspect(engine: dynashape.Engine, model: ParityNet, tmp_path) -> None:
    path = tmp_path / "parity.engine"
    engine.save(path)
    loaded = dynashape.load(path)
    assert loaded.manifest.parts == engine.manifest.parts
    x = np.random.default_rng(1).random((1, 3, HI, LO), dtype=np.float32)  # 41 = 4*10+1: the second part
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(next(iter(loaded.run({"x": x}).values())), want, **TOL)
    text = str(dynashape.inspect(path))
    assert "part 0 (profile0.pt2): H in 31..40 with H % 4 in {0, 3}" in text
    assert "part 1 (profile0.part1.pt2): H in 30..41 with H % 4 in {1, 2}" in text
    assert "guards:" in text and "if (y.shape[2] - 1) % 2 == 0" in text
    assert dynashape.inspect(path).to_json()["parts"][1]["dims"][0]["residues"] == [1, 2]


def test_gap_is_refused_with_the_guard() -> None:
    planned = _split(EvenOnly())
    packaged = [p.part for p in planned if p.program is not None]
    gaps = [p.part for p in planned if p.program is None]
    assert [c.describe() for p in packaged for c in p.dims] == ["H in 30..40 with H % 2 in {0}"]
    assert len(gaps) == 1 and gaps[0].dims[0].residues == (1,)
    table = PartTable(SPEC, [ProfilePart(0, p.dims, p.guards, p.sources, "profile0.pt2") for p in packaged]
                      + [ProfilePart(0, g.dims, g.guards, g.sources) for g in gaps])
    assert table.select(0, [(1, 3, 34, 31)]) == 0
    with pytest.raises(ShapeError) as info:
        table.select(0, [(1, 3, 35, 31)])
    text = str(info.value)
    assert "dim 2 (H) = 35 is inside profile 0" in text and "% 2" in text
    assert "return (x[:, :, 0::2] + x[:, :, 1::2],)" in text  # the model line that made the guard
    assert "H in 30..40 with H % 2 in {0}" in text


def test_guard_relating_two_dims_is_one_clear_error() -> None:
    with pytest.raises(BackendError) as info:
        _split(Related())
    text = str(info.value)
    assert "relates several dims" in text and "H" in text and "W" in text
    assert "if x.shape[2] > x.shape[3]:" in text
    # the point of the profile where it fails, so the user sees which branch the range crosses
    point = re.search(r"fails at (\w+) = (\d+), (\w+) = (\d+)", text)
    assert "parts (at most" in text  # a diagonal cuts every value: too many parts
    assert point, text
    dims = {point[1]: int(point[2]), point[3]: int(point[4])}
    assert dims["H"] > dims["W"]  # traced at opt (36x36, H <= W): a point of the other branch
    assert LO <= dims["H"] <= HI and LO <= dims["W"] <= HI


class RelatedButAlwaysTrue(nn.Module):
    """A guard over H and W that holds at every size of the profile (``(H // 4) % ((H // 4) * (W // 4)) != 0``
    holds whenever W >= 8), beside a parity guard on H that needs the split. Seen on the GPU (torch 2.11):
    HF ResNet, Swin, wav2vec2 record such guards, which interval analysis cannot prove."""

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor]:
        x = xs[0]
        h, w = x.shape[2] // 4, x.shape[3] // 4
        if h % (h * w) != 0:
            x = x * 2
        if x.shape[2] % 2:
            x = x + 1
        return (x.sum(1),)


def test_a_guard_over_several_dims_that_holds_on_the_whole_profile_restricts_nothing() -> None:
    prof = Profile({"x": ((1, 3, 8, 8), (1, 3, 12, 12), (1, 3, 16, 20))})
    planned = _split(RelatedButAlwaysTrue(), prof)
    assert sorted(p.part.describe() for p in planned if p.program is not None) == [
        "H in 8..16 with H % 2 in {0}", "H in 9..15 with H % 2 in {1}"]
    assert not [p for p in planned if p.program is None]  # no gap: the relation holds everywhere


class CornerBranch(nn.Module):
    """A branch on a 1x1 feature map (``(H // 8) * (W // 8) != 1``), as EfficientNet's and MobileNetV2's
    guards under torch.export: the trace at the opt is wrong where both H and W are below 16."""

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor]:
        x = xs[0]
        if (x.shape[2] // 8) * (x.shape[3] // 8) != 1:
            return (x.sum(1) * 2,)
        return (x.sum(1) + 1,)


class _First(nn.Module):
    """``forward(x) -> tensor`` around a module of the backend's calling convention."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)[0]


def test_a_guard_over_several_dims_that_picks_a_branch_in_a_corner_cuts_the_ranges() -> None:
    prof = Profile({"x": ((1, 3, 8, 8), (1, 3, 16, 16), (1, 3, 24, 24))})
    planned = _split(CornerBranch(), prof)
    parts = sorted((p.part.describe(), id(p.program)) for p in planned if p.program is not None)
    assert [d for d, _ in parts] == ["H in 16..24, W in 16..24", "H in 16..24, W in 8..15", "H in 8..15, W in 16..24",
                                     "H in 8..15, W in 8..15"], parts
    programs = {i for _, i in parts}
    assert len(programs) == 2  # the opt's trace serves the three cells where the guard holds: one compile for them
    e = dynashape.build(_First(CornerBranch()), prof, backend="inductor", example_inputs={"x": torch.rand(1, 3, 16, 16)},
                        dynamic_axes={"x": {2: "H", 3: "W"}}, quiet=True, align={})
    for h, w in ((8, 8), (15, 15), (8, 20), (20, 8), (16, 16), (24, 24), (15, 16)):
        x = torch.rand(1, 3, h, w)
        np.testing.assert_allclose(next(iter(e.run({"x": x}).values())), CornerBranch()(x)[0].numpy(), atol=1e-5)


def test_an_aligned_trace_whose_guards_fail_at_some_multiples_is_not_used() -> None:
    # (H // 8) * (W // 8) != 1 fails at H = W = 8, a multiple of the step: the aligned package (traced
    # at 16x16) would serve 8x8 with the other branch; the profile is built unaligned and split instead
    prof = Profile({"x": ((1, 3, 8, 8), (1, 3, 16, 16), (1, 3, 24, 24))})
    e = dynashape.build(_First(CornerBranch()), prof, backend="inductor", example_inputs={"x": torch.rand(1, 3, 16, 16)},
                        dynamic_axes={"x": {2: "H", 3: "W"}}, quiet=True, align={"H": 8, "W": 8})
    record = e.manifest.backend_data["alignment"][0]
    assert "holds only where" in record.get("skipped", ""), record
    for h, w in ((8, 8), (16, 16), (8, 24), (24, 8)):
        x = torch.rand(1, 3, h, w)
        np.testing.assert_allclose(next(iter(e.run({"x": x}).values())), CornerBranch()(x)[0].numpy(), atol=1e-5)


def test_a_guard_over_several_dims_is_checked_at_every_point() -> None:
    import sympy

    from dynashape._backend.guard_split import _holds_on_box

    h, w = sympy.symbols("h w", integer=True, positive=True)
    assert _holds_on_box(sympy.Lt(w // 8, (h // 8) * (w // 8)), {h: (32, 128), w: (32, 128)}) is True
    # fails only at one corner of the box: found, not sampled past
    assert _holds_on_box(sympy.Ne(h * w, 128 * 127), {h: (32, 128), w: (32, 128)}) == {h: 127, w: 128}
    assert _holds_on_box(sympy.Lt(h, w), {h: (1, 10**4), w: (1, 10**4)}) is None  # 10^8 points: not enumerated


class _BatchGuardNet(torch.nn.Module):
    """A guard that leaves one value of a dim (``batch != 1`` over 1..2: torch specializes batch to 2)
    beside a parity guard on H: seen on the GPU with torch 2.11, where channels-last stride logic guards
    ``batch != 1``, and the split's DYNAMIC traces refused the specialization."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != 1:
            x = x * 2
        if x.shape[2] % 2:
            x = x + 1
        return x.sum(1)


def _build_batch_1_to_16(m: torch.nn.Module) -> dynashape.Engine:
    """Batch 1..16 and H 8..16 dynamic, traced at 2x3x12x8."""
    prof = Profile({"x": ((1, 3, 8, 8), (2, 3, 12, 8), (16, 3, 16, 8))})
    return dynashape.build(m, prof, backend="inductor", example_inputs={"x": torch.rand(2, 3, 12, 8)},
                           dynamic_axes={"x": {0: "batch", 2: "H"}}, quiet=True)


def test_a_dim_that_torch_specializes_becomes_a_class_of_one_value() -> None:
    # NOTE: batch 1..16, as ResNet-50's 1..32 on the GPU: the trace at batch 1 is specialized, the
    # one at the opt covers 2..16 (the range is wider than the singletons allowed: still two classes)
    m = _BatchGuardNet()
    e = _build_batch_1_to_16(m)
    described = sorted(p.describe() for p in e.manifest.parts)
    assert described == ["batch in 1..1, H in 8..16 with H % 2 in {0}", "batch in 1..1, H in 9..15 with H % 2 in {1}",
                         "batch in 2..16, H in 8..16 with H % 2 in {0}", "batch in 2..16, H in 9..15 with H % 2 in {1}"], described
    for b, h in ((1, 8), (2, 9), (1, 13), (16, 16), (1, 9), (7, 8)):
        x = torch.rand(b, 3, h, 8)
        np.testing.assert_allclose(next(iter(e.run({"x": x}).values())), m(x).numpy(), atol=1e-6)


def test_the_lowest_value_traced_alone_runs_padded_when_padding_is_safe() -> None:
    m = BenignBatchGuardNet()
    e = _build_batch_1_to_16(m)
    described = sorted(p.describe() for p in e.manifest.parts)
    assert described == ["batch in 2..16, H in 8..16 with H % 2 in {0}", "batch in 2..16, H in 9..15 with H % 2 in {1}"], described
    edge = [d for d in e.manifest.backend_data["alignment"][0]["dims"] if d.get("edge")]
    assert [(d["name"], d["step"], d["aligned"]) for d in edge] == [("batch", 2, [2, 2])]
    for b, h in ((1, 8), (1, 9), (2, 9), (16, 16), (3, 13)):
        x = torch.rand(b, 3, h, 8)
        np.testing.assert_allclose(next(iter(e.run({"x": x}).values())), m(x).numpy(), atol=1e-6)
    # and it survives save/load (the record is schema-checked)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        e.save(f"{d}/e.engine")
        loaded = dynashape.load(f"{d}/e.engine")
        assert "batch = 1 runs padded to 2" in str(dynashape.inspect(f"{d}/e.engine"))
        x = torch.rand(1, 3, 11, 8)
        np.testing.assert_allclose(next(iter(loaded.run({"x": x}).values())), m(x).numpy(), atol=1e-6)


class _ReadsTheSize(torch.nn.Module):
    """Reads a dim as a Python int: torch.export specializes it at every value (a pin, not a guard)."""

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor]:
        x = xs[0]
        return (x * float(int(x.shape[2])),)


def test_a_dim_specialized_at_every_value_is_a_pin_refused_after_a_bounded_number_of_exports() -> None:
    from dynashape._backend.guard_split import MAX_SINGLETONS

    with pytest.raises(BackendError) as info:
        _split(_ReadsTheSize(), Profile({"x": ((1, 3, 8, 8), (1, 3, 20, 8), (1, 3, 60, 8))}))
    text = str(info.value)
    assert f"fixed H to the example's value at {MAX_SINGLETONS + 1} values" in text and "reads the size as a constant" in text


class ManyBranches(nn.Module):
    """Branches on H % 9 and W % 9: 81 parts, more than a split builds."""

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor]:
        x = xs[0]
        out = x
        for axis in (2, 3):
            r = x.shape[axis] % 9
            for k in range(9):
                if r == k:
                    out = out * (k + 1)
                    break
        return (out,)


def test_too_many_branches_are_refused_early_with_the_one_part_range() -> None:
    prof = Profile({"x": ((1, 3, 20, 20), (1, 3, 36, 36), (1, 3, 60, 60))})
    with pytest.raises(BackendError) as info:
        split_profile(torch, ManyBranches().eval(), SPEC, prof, lambda i, shape: torch.rand(shape))
    msg = str(info.value)
    assert "branches on the dims' values into at least" in msg
    assert "the opt shape's is H in 27..54 with H % 9 in {0}, W in 27..54 with W % 9 in {0}" in msg, msg
    assert "test_guard_split.py" in msg  # the model's line


def test_third_party_model_code_is_the_models_line_not_a_library() -> None:
    """A guard made in transformers names the transformers line: site-packages may lie inside the
    standard library's folder (pyenv, conda), which must not hide it."""
    import json
    import os

    from dynashape._backend.guard_split import _library

    assert _library(torch.__file__) and _library(os.__file__) and _library(json.__file__)
    assert _library(dynashape.__file__)
    assert not _library(__file__)
    transformers = pytest.importorskip("transformers")
    assert not _library(transformers.__file__)
