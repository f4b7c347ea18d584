"""``inductor_config`` / ``--inductor-config``: torch._inductor.config settings for every package's compile,
checked against the installed torch, passed to AOTInductor and recorded in the engine.

Why it exists: Inductor turns its channels-last layout optimization off for graphs whose convolutions
have symbolic sizes (``decide_layout_opt``), which is where the dynamic tax of conv nets' layout copies
comes from (BENCHMARKS.md, the dynamic tax, run 2); ``force_layout_optimization`` is the lever to try."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import dynashape
from dynashape import Profile
from dynashape._errors import BackendError, DynashapeError

PROFILE = Profile({"x": ((1, 3, 8, 8), (2, 3, 16, 16), (4, 3, 24, 24))})
AXES = {"x": {0: "batch", 2: "H", 3: "W"}}


class Conv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


def test_an_unknown_key_is_refused_before_anything_is_compiled() -> None:
    with pytest.raises(BackendError) as info:
        dynashape.build(Conv(), PROFILE, backend="inductor", example_inputs={"x": torch.rand(2, 3, 16, 16)},
                        dynamic_axes=AXES, inductor_config={"force_layout_optimisation": True}, quiet=True)
    text = str(info.value)
    assert "force_layout_optimisation" in text and "torch._inductor.config" in text


def test_a_value_of_another_type_is_refused() -> None:
    with pytest.raises(BackendError) as info:
        dynashape.build(Conv(), PROFILE, backend="inductor", example_inputs={"x": torch.rand(2, 3, 16, 16)},
                        dynamic_axes=AXES, inductor_config={"force_layout_optimization": "yes"}, quiet=True)
    assert "a bool" in str(info.value)


def test_other_backends_refuse_it() -> None:
    with pytest.raises(BackendError) as info:
        dynashape.build(Conv(), PROFILE, backend="onnxruntime", example_inputs={"x": torch.rand(2, 3, 16, 16)},
                        dynamic_axes=AXES, inductor_config={"force_layout_optimization": True}, quiet=True)
    assert "inductor backend" in str(info.value)


@pytest.mark.slow  # one AOTInductor compile (~15 s on 2 cores)
def test_the_settings_reach_the_compile_and_the_engine_file(tmp_path, monkeypatch) -> None:
    seen: list[dict] = []
    real = torch._inductor.aoti_compile_and_package

    def spy(*args, **kwargs):  # the real compile, its settings recorded
        seen.append(dict(kwargs.get("inductor_configs") or {}))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", spy)
    m = Conv().eval()
    e = dynashape.build(m, PROFILE, backend="inductor", example_inputs={"x": torch.rand(2, 3, 16, 16)}, dynamic_axes=AXES,
                        inductor_config={"force_layout_optimization": True}, tuning="coordinate-descent", quiet=True)
    assert seen and all(c.get("force_layout_optimization") is True and c.get("coordinate_descent_tuning") is True for c in seen)
    e.save(tmp_path / "e.engine")
    loaded = dynashape.load(tmp_path / "e.engine")
    assert dict(loaded.manifest.build_settings.inductor_config) == {"force_layout_optimization": True}
    x = torch.rand(3, 3, 13, 21)
    np.testing.assert_allclose(next(iter(loaded.run({"x": x}).values())), m(x).detach().numpy(), atol=1e-5)


def test_the_cli_parses_values_by_their_look() -> None:
    from dynashape.cli.commands import _inductor_config_from_args

    assert _inductor_config_from_args(["force_layout_optimization=true", "triton.max_tiles=3", "x=0.5", "y=name"]) == {
        "force_layout_optimization": True, "triton.max_tiles": 3, "x": 0.5, "y": "name"}
    with pytest.raises(DynashapeError) as info:
        _inductor_config_from_args(["force_layout_optimization"])
    assert "KEY=VALUE" in str(info.value)


# ND tiling by default for free H/W on CUDA (inductor.default_configs): which builds get it. The
# compile itself with these keys ran on the H200 (BENCHMARKS.md, run 7); here, the rule.
def _defaults(shapes: dict[str, tuple], profile: Profile, device: str = "cuda", channels_last: bool = True,
              user: tuple = ()) -> dict:
    from dynashape._backend.inductor import default_configs
    from dynashape._records import BuildSettings, Source
    from dynashape._specs import TensorSpec

    inputs = [TensorSpec(n, dt, s) for n, (dt, s) in shapes.items()]
    return default_configs(torch, Source("module", inputs, []), [profile], BuildSettings(device=device, inductor_config=user),
                           channels_last)


IMAGE = {"x": ("float32", ("batch", 3, "H", "W"))}


def test_nd_tiling_is_added_for_a_free_height_or_width_on_cuda_only() -> None:
    from dynashape._backend.inductor import ND_TILING

    assert _defaults(IMAGE, PROFILE) == ND_TILING
    assert _defaults(IMAGE, Profile({"x": ((1, 3, 224, 224), (8, 3, 224, 224), (32, 3, 224, 224))})) == {}  # batch only
    assert _defaults(IMAGE, PROFILE, device="cpu") == {}
    assert _defaults(IMAGE, PROFILE, channels_last=False) == {}  # not a conv net (or --no-channels-last)
    assert _defaults({"ids": ("int64", ("batch", 3, "H", "W"))}, Profile({"ids": PROFILE["x"]})) == {}  # not an image


def test_a_user_who_sets_either_key_gets_neither() -> None:
    """The two keys were measured together: setting one (to turn ND tiling off, say) drops both."""
    assert _defaults(IMAGE, PROFILE, user=(("triton.max_tiles", 2),)) == {}
    assert _defaults(IMAGE, PROFILE, user=(("triton.prefer_nd_tiling", False),)) == {}
    assert _defaults(IMAGE, PROFILE, user=(("max_autotune", True),)) != {}  # another key leaves them


def test_the_engine_records_what_was_added_and_inspect_shows_it(tmp_path) -> None:
    """A CPU build adds nothing (its record is absent); a manifest with the record passes the schema and
    `inspect` names it."""
    from dynashape._engine.file import read_engine

    e = dynashape.build(Conv().eval(), PROFILE, backend="inductor", example_inputs={"x": torch.rand(2, 3, 16, 16)},
                        dynamic_axes=AXES, quiet=True)
    assert "inductor_defaults" not in e.manifest.backend_data
    e.manifest.backend_data["inductor_defaults"] = [["triton.max_tiles", 3], ["triton.prefer_nd_tiling", True]]
    path = tmp_path / "nd.engine"
    e.save(path)
    read_engine(str(path))  # the schema accepts it
    assert "inductor defaults (for the profiles with a free H/W; inductor_config overrides): triton.max_tiles=3, " \
        "triton.prefer_nd_tiling=True" \
        in str(dynashape.inspect(path))
