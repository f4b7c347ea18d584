"""Torch 2.11's pooling arithmetic, which guards the parity of a pool's input, does not split a build.

Torch 2.11's ``div_rtn`` (the meta functions' output-size division of every pool) evaluates
``x % y != 0`` on the symbolic size, so a ResNet stem (stride-2 conv, then a 3x3 stride-2 max pool)
records ``((H - 1) // 2) % 2 != 0`` and torch.export refuses a plain Dim for H and W: FCN-ResNet50 on an
H200 was built as four guard-split packages plus the aligned one. These tests put that definition back
(this machine's torch defines ``div_rtn`` as ``x // y``), show that torch.export refuses the stem with
it, and that a build and an ONNX export with dynashape do not.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch._meta_registrations as meta
from torch import nn

import dynashape
from dynashape import Profile
from dynashape._torch_compat import _floor_div, exact_shape_arithmetic

LO, OPT, HI = 29, 36, 38
PROFILE = Profile({"x": ((1, 3, LO, LO), (1, 3, OPT, OPT), (1, 3, HI, HI))})
AXES = {"x": {2: "H", 3: "W"}}


# torch 2.11's definition, as it was ported from C++
def _div_rtn_torch_2_11(x, y):
    q = x // y
    r = x % y
    if r != 0 and (bool(r < 0) != bool(y < 0)):
        q -= 1
    return q


@pytest.fixture
def torch_2_11_pooling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(meta, "div_rtn", _div_rtn_torch_2_11)


class Stem(nn.Module):
    """ResNet's stem and a head: a 7x7 stride-2 conv, a 3x3 stride-2 max pool, a 1x1 conv, upsampled back."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 7, 2, 3)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(self.pool(torch.relu(self.conv(x))))
        return nn.functional.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


def _dims() -> dict[int, object]:
    return {2: torch.export.Dim("H", min=LO, max=HI), 3: torch.export.Dim("W", min=LO, max=HI)}


def test_the_old_definition_makes_torch_export_refuse_the_stem(torch_2_11_pooling: None) -> None:
    with pytest.raises(Exception, match=r"satisfy the generated guard .*// 2\) % 2\) != 0"):
        torch.export.export(Stem().eval(), (torch.rand(1, 3, OPT, OPT),), dynamic_shapes=(_dims(),))


def test_held_the_stem_exports_with_plain_dims_and_the_definition_comes_back(torch_2_11_pooling: None) -> None:
    with exact_shape_arithmetic(torch):
        assert meta.div_rtn is _floor_div
        ep = torch.export.export(Stem().eval(), (torch.rand(1, 3, OPT, OPT),), dynamic_shapes=(_dims(),))
    assert meta.div_rtn is _div_rtn_torch_2_11
    assert sorted((int(r.lower), int(r.upper)) for r in ep.range_constraints.values()) == [(LO, HI), (LO, HI)]


def test_builds_that_overlap_share_the_fix_until_the_last_lets_go(torch_2_11_pooling: None) -> None:
    """Two builds in two threads of one process: the first to finish must not take the fix from the other."""
    first, second = exact_shape_arithmetic(torch), exact_shape_arithmetic(torch)
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert meta.div_rtn is _floor_div
    second.__exit__(None, None, None)
    assert meta.div_rtn is _div_rtn_torch_2_11


def test_the_definitions_agree_on_every_integer() -> None:
    for x, y in itertools.product(range(-40, 41), [-7, -3, -2, -1, 1, 2, 3, 5]):
        assert _floor_div(x, y) == _div_rtn_torch_2_11(x, y), (x, y)


def test_restored_after_an_error_and_a_no_op_without_the_function(torch_2_11_pooling: None,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RuntimeError, match="boom"), exact_shape_arithmetic(torch):
        raise RuntimeError("boom")
    assert meta.div_rtn is _div_rtn_torch_2_11
    monkeypatch.delattr(meta, "div_rtn")
    with exact_shape_arithmetic(torch):
        assert not hasattr(meta, "div_rtn")


@pytest.mark.slow
def test_a_build_is_one_package_for_every_parity(torch_2_11_pooling: None) -> None:
    """Without the fix this profile is four guard-split packages (two classes of H, two of W)."""
    model = Stem().eval()
    engine = dynashape.build(model, PROFILE, backend="inductor", example_inputs={"x": torch.rand(1, 3, OPT, OPT)},
                             dynamic_axes=AXES, align={}, quiet=True)
    assert [p.payload for p in engine.manifest.parts] == []  # one package, no parts
    rng = np.random.default_rng(0)
    for h, w in [(LO, LO), (HI, HI), (29, 30), (31, 37), (32, 33), (35, 38), (OPT, OPT)]:  # H % 4 in every class
        x = rng.random((1, 3, h, w), dtype=np.float32)
        out = next(iter(engine.run({"x": x}).values()))
        with torch.no_grad():
            want = model(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(out, want, atol=1e-5, rtol=1e-4, err_msg=f"H={h} W={w}")


def test_an_onnx_export_keeps_h_and_w_dynamic(torch_2_11_pooling: None, tmp_path) -> None:
    pytest.importorskip("onnxscript")
    path = tmp_path / "stem.onnx"
    dynashape.export(Stem().eval(), {"x": torch.rand(1, 3, OPT, OPT)}, path, dynamic_axes=AXES, dynamo=True)
    onnx = pytest.importorskip("onnx")
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == [1, 3, "H", "W"]
