"""Build validation: ONNX Runtime builds from ONNX run at every profile's min, opt and max, a model
that breaks inside its declared range is refused naming the shape and the node, user data replaces
generated data, the child validates before the parent loads, and progress goes to stderr."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import dynashape
from dynashape import BackendError, Profile, ShapeError
from dynashape._builder.validate import cases, validate
from dynashape.cli.main import main


class PinnedViT(torch.nn.Module):
    """H and W declared dynamic, but the position embedding holds the 4x4 patches of a 16x16 image."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = torch.nn.Conv2d(3, 8, 4, stride=4)
        self.pos = torch.nn.Parameter(torch.randn(1, 16, 8))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.patch(pixel_values).flatten(2).transpose(1, 2) + self.pos


class ShortTableBert(torch.nn.Module):
    """A position table of 16 rows: sequences longer than 16 have no position embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.words = torch.nn.Embedding(100, 8)
        self.positions = torch.nn.Embedding(16, 8)
        self.register_buffer("position_ids", torch.arange(16)[None])

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        s = input_ids.shape[1]
        h = self.words(input_ids) + self.positions(self.position_ids[:, :s])
        return h * attention_mask[..., None]


@pytest.fixture(scope="module")
def vit_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vit") / "vit.onnx"
    dynashape.export(PinnedViT().eval(), {"pixel_values": torch.rand(1, 3, 16, 16)}, path,
                     dynamic_axes={"pixel_values": {2: "height", 3: "width"}, "output": {1: "patches"}}, verify=False, quiet=True)
    return path


@pytest.fixture(scope="module")
def bert_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bert") / "bert.onnx"
    ex = {"input_ids": torch.randint(0, 100, (2, 8)), "attention_mask": torch.ones(2, 8, dtype=torch.long)}
    dynashape.export(ShortTableBert().eval(), ex, path, dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                     "attention_mask": {0: "batch", 1: "seq"}, "output": {0: "batch", 1: "seq"}}, verify=False, quiet=True)
    return path


def test_onnxruntime_build_refuses_a_vit_pinned_by_its_position_embedding(vit_onnx: Path) -> None:
    with pytest.raises(BackendError) as e:
        dynashape.build(vit_onnx, dims={"height": (16, 16, 32), "width": (16, 16, 32)}, backend="onnxruntime", quiet=True)
    text = str(e.value)
    assert "fails at profile 0 max (pixel_values:1x3x32x32)" in text
    assert "(Add)" in text and "node '" in text  # ONNX Runtime's node, named
    assert "narrow the profile" in text
    assert text.count(" | ") == 2  # one message: received | expected | fix, not a wrapped one
    # inside the range the position table allows, the same file builds and validates
    dynashape.build(vit_onnx, dims={"height": (16, 16, 16), "width": (16, 16, 16)}, backend="onnxruntime", quiet=True)


def test_onnxruntime_build_refuses_a_seq_range_beyond_the_position_table(bert_onnx: Path) -> None:
    with pytest.raises(BackendError, match=r"fails at profile 0 max \(input_ids:4x32, attention_mask:4x32\): node '[^']+' \(\w+\)"):
        dynashape.build(bert_onnx, dims={"batch": (1, 2, 4), "seq": (4, 8, 32)}, backend="onnxruntime", quiet=True)
    engine = dynashape.build(bert_onnx, dims={"batch": (1, 2, 4), "seq": (4, 8, 16)}, backend="onnxruntime", quiet=True)
    assert engine.profiles[0]["input_ids"].max == (4, 16)


def test_user_data_replaces_generated_data(bert_onnx: Path, tmp_path: Path) -> None:
    data = tmp_path / "feeds.npz"
    np.savez(data, input_ids=np.full((2, 2, 12), 99, np.int64), attention_mask=np.ones((2, 2, 12), np.int64))
    dims = {"batch": (1, 2, 4), "seq": (4, 8, 16)}
    dynashape.build(bert_onnx, dims=dims, backend="onnxruntime", data=str(data), quiet=True)
    np.savez(data, input_ids=np.ones((1, 20), np.int64), attention_mask=np.ones((1, 20), np.int64))
    with pytest.raises(ShapeError, match="user data feed 0"):
        dynashape.build(bert_onnx, dims=dims, backend="onnxruntime", data=str(data), quiet=True)
    with pytest.raises(dynashape.DynashapeError, match=r"input 'input_ids' has dtype int32 \| int64"):
        dynashape.build(bert_onnx, dims=dims, backend="onnxruntime", quiet=True,
                        data={"input_ids": np.ones((1, 8), np.int32), "attention_mask": np.ones((1, 8), np.int64)})


def test_the_child_validates_before_the_parent_loads(vit_onnx: Path) -> None:
    """A failing engine is refused by the child process; the parent never loads it."""
    engine = dynashape.build(vit_onnx, dims={"height": (16, 16, 32), "width": (16, 16, 32)}, backend="onnxruntime",
                             validate=False, quiet=True)
    loads: list[int] = []

    def load() -> object:
        loads.append(1)
        return engine

    todo = cases(engine.inputs, engine.profiles)
    with pytest.raises(BackendError, match=r"fails at profile 0 max .*\(Add\)"):
        validate(engine.manifest, engine._payloads, load, todo, reference=None, in_child=True)
    assert loads == []
    ok = cases(engine.inputs, [Profile({"pixel_values": ((1, 3, 16, 16),) * 3})])
    assert validate(engine.manifest, engine._payloads, load, ok, reference=None, in_child=True) is engine
    assert loads == [1]


def test_module_build_validates_on_representative_ids_and_reports_progress(capfd: pytest.CaptureFixture[str]) -> None:
    """A module whose ids index a 100-row table; progress lines on stderr unless quiet."""
    model = ShortTableBert().eval()
    ex = {"input_ids": torch.randint(0, 100, (2, 8)), "attention_mask": torch.ones(2, 8, dtype=torch.long)}
    dynashape.build(model, example_inputs=ex, dims={"batch": (1, 2, 4), "seq": (4, 8, 16)}, backend="onnxruntime",
                    dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}})
    err = capfd.readouterr().err
    assert "export: ShortTableBert with the torchscript exporter ..." in err
    assert "build: onnxruntime engine (cpu, fp32), 1 profile(s) ..." in err
    assert "validate: the new onnxruntime engine at 3 shape set(s)" in err
    dynashape.build(model, example_inputs=ex, dims={"batch": (1, 2, 4), "seq": (4, 8, 16)}, backend="onnxruntime",
                    dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}, quiet=True)
    assert "[dynashape" not in capfd.readouterr().err


def test_cli_build_with_data_and_quiet(bert_onnx: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d.npz"
    np.savez(data, input_ids=np.full((1, 8), 7, np.int64), attention_mask=np.ones((1, 8), np.int64))
    assert main(["--quiet", "build", "--onnx", str(bert_onnx), "--dims", "batch=1:2:4,seq=4:8:16", "--data", str(data)]) == 0
    assert "[dynashape" not in capfd.readouterr().err
    assert main(["build", "--onnx", str(bert_onnx), "--dims", "batch=1:2:4,seq=4:8:32"]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert err[-1].startswith("dynashape build: error: the new onnxruntime engine fails at profile 0 max")
    assert any(line.startswith("[dynashape") and "build: onnxruntime engine" in line for line in err)


def test_every_package_of_a_split_profile_gets_a_validation_shape() -> None:
    """min, opt and max all multiples of 32 reach only the aligned package; the general package and
    each residue class of a guard split get a shape of their own, routed where the runtime routes it."""
    from dynashape import TensorSpec
    from dynashape._records import DimClass, ProfilePart

    spec = [TensorSpec("x", "float32", (1, 3, "H", "W"))]
    prof = Profile({"x": ((1, 3, 256, 256), (1, 3, 512, 512), (1, 3, 1024, 1024))})
    places = (("x", 2),)
    wplaces = (("x", 3),)
    aligned = ProfilePart(0, (DimClass("H", places, 256, 1024, 32, (0,)), DimClass("W", wplaces, 256, 1024, 32, (0,))), payload="a")
    even = ProfilePart(0, (DimClass("H", places, 256, 1024, 2, (0,)),), payload="b")
    odd = ProfilePart(0, (DimClass("H", places, 257, 1023, 2, (1,)),), payload="c")
    todo = cases(spec, [prof], parts=[aligned, even, odd])
    labels = [c.which for c in todo]
    assert labels == ["min", "opt", "max", "part 2", "part 3"], labels
    from dynashape._engine.selection import PartTable

    table = PartTable(spec, [aligned, even, odd])
    shapes = {c.which: tuple(c.feed["x"].shape) for c in todo}
    assert table.select(0, [shapes["part 2"]]) == 1 and table.select(0, [shapes["part 3"]]) == 2
    assert all(prof.contains({"x": s}) for s in shapes.values())
    # an unsplit profile: only min, opt and max
    assert [c.which for c in cases(spec, [prof])] == ["min", "opt", "max"]


def test_the_fp32_reference_runs_without_tf32_and_restores_the_switches() -> None:
    """``module_reference(no_tf32=True)``: the fp32 information reference of a reduced-precision CUDA
    build runs with TF32 off (true fp32) and leaves the process's switches as they were."""
    from dynashape._reference import module_reference

    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32))
            if x.shape[0] > 1:
                raise RuntimeError("boom")
            return x * 2

    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        ref = module_reference(Probe(), ["x"], no_tf32=True)
        (out,) = ref({"x": np.ones((1, 3), np.float32)})
        np.testing.assert_array_equal(out, np.full((1, 3), 2, np.float32))
        with pytest.raises(RuntimeError, match="boom"):  # restored on failure too
            ref({"x": np.ones((2, 3), np.float32)})
        assert seen == [(False, False), (False, False)]
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (True, True)
        module_reference(Probe(), ["x"])({"x": np.ones((1, 3), np.float32)})
        assert seen[-1] == (True, True)  # without it the switches are the process's
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


class _Tiny(torch.nn.Module):
    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.lin = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) * self.scale


def test_a_validation_that_compares_only_zeros_says_it_checked_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """All-zero reference outputs match any engine: the build warns (and says where fp16 underflowed)."""
    import logging

    prof = Profile({"x": ((1, 8), (2, 8), (4, 8))})
    ex = {"x": torch.rand(2, 8)}
    with caplog.at_level(logging.WARNING, logger="dynashape"):
        dynashape.build(_Tiny(0.0), prof, backend="onnxruntime", example_inputs=ex, dynamic_axes={"x": {0: "batch"}}, quiet=True)
    msgs = [r.getMessage() for r in caplog.records if "validation checked nothing" in r.getMessage()]
    assert len(msgs) == 1 and "gave all-zero outputs at every shape set (3)" in msgs[0] and "in fp32" not in msgs[0], msgs
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dynashape"):
        dynashape.build(_Tiny(1.0), prof, backend="onnxruntime", example_inputs=ex, dynamic_axes={"x": {0: "batch"}}, quiet=True)
    assert not [r for r in caplog.records if "validation checked nothing" in r.getMessage()]


@pytest.mark.slow
def test_fp16_underflow_is_named_when_validation_compares_only_zeros(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    prof = Profile({"x": ((2, 8), (2, 8), (2, 8))})
    with caplog.at_level(logging.WARNING, logger="dynashape"):
        dynashape.build(_Tiny(1e-10), prof, backend="inductor", precision="fp16", example_inputs={"x": torch.rand(2, 8)}, quiet=True)
    msgs = [r.getMessage() for r in caplog.records if "validation checked nothing" in r.getMessage()]
    assert len(msgs) == 1 and "below what fp16 can hold" in msgs[0], msgs


def test_a_wrong_engine_with_the_builds_own_nd_tiling_names_the_way_to_drop_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """ND tiling is added by the build itself (CUDA conv nets with free H/W): where an engine then differs
    from its source, the error names the flag that drops it. On the CPU the rule is replaced so that it
    adds the key, and the model computes something else while torch.export traces it."""
    from dynashape._backend import inductor

    monkeypatch.setattr(inductor, "default_configs", lambda *a, **k: {"triton.prefer_nd_tiling": True})

    class TracedWrong(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + 1 if torch.compiler.is_exporting() else x

    prof = Profile({"x": ((1, 3, 8, 8), (1, 3, 12, 12), (1, 3, 16, 16))})
    with pytest.raises(BackendError, match=r"--inductor-config triton.prefer_nd_tiling=false") as info:
        dynashape.build(TracedWrong(), prof, backend="inductor", example_inputs={"x": torch.rand(1, 3, 12, 12)},
                        dynamic_axes={"x": {2: "H", 3: "W"}}, quiet=True)
    assert "differs from" in str(info.value)
