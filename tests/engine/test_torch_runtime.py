"""The execution side of the engine (dynashape._engine.torch_runtime): the TF32 policy, the public
calls that benchmarks use (with_options, backend_call, payload_sizes, graph_stats), and the strict
graph switch. The CUDA behaviour is in tests/gpu/test_torch_runtime_gpu.py."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator

import numpy as np
import pytest
import torch

import dynashape
from dynashape._engine import torch_runtime as rt
from dynashape._errors import DynashapeError, ShapeError


@pytest.fixture
def switches() -> Iterator[None]:
    """Restore torch's TF32 switches (process-wide) after a test that sets them."""
    before = rt.tf32_state(torch)
    yield
    rt.set_tf32(torch, *before)


# -- the TF32 policy as plain functions ------------------------------------------------------------


def test_resolve_tf32() -> None:
    assert rt.resolve_tf32(False, None) is False
    assert rt.resolve_tf32(True, None) is True
    assert rt.resolve_tf32(False, True) is True
    assert rt.resolve_tf32(True, False) is False
    assert rt.resolve_tf32(True, "process") is None
    with pytest.raises(DynashapeError) as e:
        rt.resolve_tf32(False, "on")
    assert "tf32='on'" in str(e.value) and "'process'" in str(e.value)


def test_state_and_set_round_trip(switches: None) -> None:
    for pair in ((True, False), (False, True), (False, False), (True, True)):
        rt.set_tf32(torch, *pair)
        assert rt.tf32_state(torch) == pair
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == pair
    assert rt.tf32_changes((True, True), False) == list(rt.TF32_SWITCHES)
    assert rt.tf32_changes((False, False), False) == []


def test_apply_policy_once_with_a_warning_naming_the_switch(switches: None, caplog: pytest.LogCaptureFixture) -> None:
    rt.set_tf32(torch, False, True)  # torch's defaults
    with caplog.at_level(logging.WARNING, logger="dynashape"):
        assert rt.apply_tf32_policy(torch, False, "this engine") == ["torch.backends.cudnn.allow_tf32"]
    (record,) = caplog.records
    assert "torch.backends.cudnn.allow_tf32 = False" in record.getMessage() and "tf32='process'" in record.getMessage()
    assert rt.tf32_state(torch) == (False, False)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dynashape"):
        assert rt.apply_tf32_policy(torch, False, "this engine") == []  # already so: nothing written, no warning
        assert rt.apply_tf32_policy(torch, None, "this engine") == []  # the opt-out never writes
    assert not caplog.records


def test_capture_context_sets_the_policy_and_restores(switches: None) -> None:
    rt.set_tf32(torch, True, False)
    with rt.tf32_for_capture(torch, False) as switched:
        assert switched and rt.tf32_state(torch) == (False, False)
    assert rt.tf32_state(torch) == (True, False)
    with rt.tf32_for_capture(torch, True) as switched:
        assert switched and rt.tf32_state(torch) == (True, True)
    assert rt.tf32_state(torch) == (True, False)
    with rt.tf32_for_capture(torch, None) as switched:
        assert not switched and rt.tf32_state(torch) == (True, False)
    rt.set_tf32(torch, False, False)
    with rt.tf32_for_capture(torch, False) as switched:
        assert not switched


def test_policy_with_torchs_new_precision_api() -> None:
    """A process that set ``fp32_precision`` (torch >= 2.9) cannot read ``allow_tf32`` any more:
    the policy reads and writes the new API there (a fresh process: the state cannot be undone)."""
    if not hasattr(torch.backends.cudnn, "conv"):
        pytest.skip("this torch has no fp32_precision API")
    code = (
        "import torch\n"
        "from dynashape._engine import torch_runtime as rt\n"
        "torch.backends.cuda.matmul.fp32_precision = 'tf32'\n"
        "torch.backends.cudnn.conv.fp32_precision = 'ieee'\n"
        "assert rt.tf32_state(torch) == (True, False), rt.tf32_state(torch)\n"
        "assert rt.apply_tf32_policy(torch, False, 'e') == ['torch.backends.cuda.matmul.allow_tf32']\n"
        "assert rt.tf32_state(torch) == (False, False)\n"
        "assert torch.backends.cuda.matmul.fp32_precision == 'ieee'\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


def test_strict_graphs_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(rt.STRICT_GRAPHS_ENV, raising=False)
    assert rt.strict_graphs_default(None) is False
    monkeypatch.setenv(rt.STRICT_GRAPHS_ENV, "1")
    assert rt.strict_graphs_default(None) is True
    assert rt.strict_graphs_default(False) is False
    monkeypatch.setenv(rt.STRICT_GRAPHS_ENV, "0")
    assert rt.strict_graphs_default(None) is False


# -- the policy on a real engine -------------------------------------------------------------------


@pytest.mark.slow
def test_cuda_engine_applies_its_policy_at_load_only(sr_engine: dynashape.Engine, switches: None,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """The inductor runner with a CUDA manifest (no graphs, never run here: no CUDA device): the
    engine writes the recorded setting once when it is made, and tf32='process' writes nothing."""
    manifest = dataclasses.replace(sr_engine.manifest, device="cuda",
                                   build_settings=dataclasses.replace(sr_engine.manifest.build_settings, tf32=False))
    runner, payloads = sr_engine._runner, sr_engine._payloads
    rt.set_tf32(torch, True, True)
    with caplog.at_level(logging.WARNING, logger="dynashape"):
        dynashape.Engine(manifest, runner, payloads, cuda_graphs=False, tf32="process")
    assert rt.tf32_state(torch) == (True, True) and not caplog.records
    with caplog.at_level(logging.WARNING, logger="dynashape"):
        engine = dynashape.Engine(manifest, runner, payloads, cuda_graphs=False)
    assert rt.tf32_state(torch) == (False, False)
    assert [r for r in caplog.records if "allow_tf32 = False" in r.getMessage()] and len(caplog.records) == 2
    assert "built with tf32=False" in caplog.records[0].getMessage()
    engine.with_options(tf32=True)  # an override
    assert rt.tf32_state(torch) == (True, True)
    with pytest.raises(DynashapeError, match="tf32='yes'"):
        engine.with_options(tf32="yes")
    cpu = dynashape.Engine(sr_engine.manifest, runner, payloads)  # the CPU: no policy at all
    rt.set_tf32(torch, True, False)
    cpu.with_options(tf32=False)
    assert rt.tf32_state(torch) == (True, False)


@pytest.mark.slow
def test_no_switch_flips_while_engines_run(sr_engine: dynashape.Engine, seg_engine_2: dynashape.Engine, switches: None) -> None:
    """A thread reading the switches while others run inductor and ONNX Runtime engines sees no change."""
    rt.set_tf32(torch, True, False)  # not torch's defaults, so a reset would show too
    seen: set[tuple[bool, bool]] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.add(rt.tf32_state(torch))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        x = np.random.default_rng(0).random((2, 1, 48, 48), dtype=np.float32)
        for engine in (sr_engine, sr_engine.with_options(tf32=False)):
            for _ in range(4):
                engine.run({"input": x})
                engine.run({"input": torch.from_numpy(x)})
        for _ in range(5):
            seg_engine_2.run({"input_1": np.zeros((1, 3, 64, 64), np.float32)})
    finally:
        stop.set()
        watcher.join()
    assert seen == {(True, False)}


# -- public calls for benchmarks -------------------------------------------------------------------


def test_with_options_shares_the_loaded_backend(seg_engine_2: dynashape.Engine) -> None:
    other = seg_engine_2.with_options(cuda_graphs=False, graph_cache_size=4, strict_graphs=True)
    assert other is not seg_engine_2 and other._runner is seg_engine_2._runner and other.manifest is seg_engine_2.manifest
    x = np.random.default_rng(1).random((1, 3, 96, 80), dtype=np.float32)
    np.testing.assert_array_equal(other.run({"input_1": x})["output_1"], seg_engine_2.run({"input_1": x})["output_1"])
    stats = other.graph_stats()
    assert stats["graphs"] == 0 and stats["failures"] == {"capture": 0, "replay": 0, "mismatch": 0}
    assert other.with_options(graph_cache_mb=8)._options["strict_graphs"] is True  # kept unless given
    with pytest.raises(DynashapeError) as e:
        seg_engine_2.with_options(precision="fp16")
    assert "with_options(precision=...)" in str(e.value) and "cuda_graphs" in str(e.value) and "rebuild" in str(e.value)


def test_backend_call_runs_the_backend_alone(seg_engine_2: dynashape.Engine) -> None:
    x = np.random.default_rng(2).random((1, 3, 64, 72), dtype=np.float32)
    call = seg_engine_2.backend_call({"input_1": x})
    (got, *_) = call()
    np.testing.assert_array_equal(got, seg_engine_2.run({"input_1": x})["output_1"])
    with pytest.raises(ShapeError):
        seg_engine_2.backend_call({"image": x})
    with pytest.raises(ShapeError):  # profile 1 starts at 256
        seg_engine_2.backend_call({"input_1": x}, profile=1)


def test_payload_sizes(seg_engine_2: dynashape.Engine) -> None:
    sizes = seg_engine_2.payload_sizes()
    assert sizes and all(isinstance(n, int) and n > 0 for n in sizes.values())
    assert sizes == {n: len(b) for n, b in seg_engine_2._payloads.items()}


# -- outputs are contiguous ------------------------------------------------------------------------


class _Permuted(torch.nn.Module):
    """Its eager output is a permuted view; AOTInductor keeps those strides (``keep_output_stride``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * 2).permute(0, 2, 3, 1)


def test_outputs_are_contiguous_whatever_the_compiled_strides() -> None:
    """An engine hands out contiguous outputs, as TensorRT and ONNX Runtime do (``torch_runtime.dense``):
    torch tensors and numpy arrays alike, with eager's values."""
    engine = dynashape.build(_Permuted().eval(), dynashape.Profile({"x": ((1, 3, 8, 8), (1, 3, 16, 16), (2, 3, 32, 32))}),
                             backend="inductor", device="cpu", example_inputs={"x": torch.rand(1, 3, 16, 16)}, quiet=True)
    x = torch.rand(2, 3, 9, 17)
    want = (x * 2).permute(0, 2, 3, 1)
    assert not want.is_contiguous()
    (got,) = engine.run({"x": x}).values()
    assert got.is_contiguous() and torch.equal(got, want)
    (arr,) = engine.run({"x": x.numpy()}).values()
    assert arr.flags["C_CONTIGUOUS"] and np.array_equal(arr, want.numpy())
    # the backend alone keeps Inductor's strides: what the runtime makes contiguous is really strided
    (raw,) = engine.backend_call({"x": x})()
    assert tuple(raw.shape) == tuple(want.shape) and not raw.is_contiguous()


def test_dense_copies_only_what_is_strided() -> None:
    a, b, c = torch.rand(2, 3), torch.rand(3, 2).t(), np.zeros((4, 6))
    out = rt.dense([a, b, c, c[:, :3], 7])
    assert out[0] is a and out[1].is_contiguous() and torch.equal(out[1], b)
    assert out[2] is c and out[3].flags["C_CONTIGUOUS"] and out[3].shape == (4, 3) and out[4] == 7
