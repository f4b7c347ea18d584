"""The torch runtime on CUDA: the TF32 policy (at load and at capture, never per call), CUDA graph
failures that are counted, logged once and strict on demand, and with_options. Skipped without CUDA.

Run on the GPU machine:
CXX=/usr/bin/g++ CC=/usr/bin/gcc PYTHONPATH=src python -m pytest -q tests/gpu/test_torch_runtime_gpu.py -m gpu
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

torch = pytest.importorskip("torch")
import dynashape  # noqa: E402
from dynashape import Profile  # noqa: E402
from dynashape._backend.base import Runner  # noqa: E402
from dynashape._engine import torch_runtime as rt  # noqa: E402

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

WIDTH = 1024


@pytest.fixture(scope="module")
def mlp_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An fp32 MLP (cuBLAS matmuls, which read the TF32 switch at run time), batch 2..64, tf32=False."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(WIDTH, WIDTH), torch.nn.ReLU(), torch.nn.Linear(WIDTH, WIDTH)).eval()
    engine = dynashape.build(model, Profile({"x": ((2, WIDTH), (8, WIDTH), (64, WIDTH))}), backend="inductor", device="cuda",
                             precision="fp32", example_inputs={"x": torch.rand(8, WIDTH)}, dynamic_axes={"x": {0: "batch"}})
    path = str(tmp_path_factory.mktemp("rt") / "mlp.engine")
    engine.save(path)
    torch.save(model.state_dict(), path + ".state")
    return path


@pytest.fixture
def switches() -> Iterator[None]:
    before = rt.tf32_state(torch)
    yield
    rt.set_tf32(torch, *before)


def _reference(path: str, x: Any) -> Any:
    model = torch.nn.Sequential(torch.nn.Linear(WIDTH, WIDTH), torch.nn.ReLU(), torch.nn.Linear(WIDTH, WIDTH))
    model.load_state_dict(torch.load(path + ".state"))
    with torch.no_grad():
        return model.double().cuda()(x.double())


def _err(y: Any, ref: Any) -> float:
    return float((y.double() - ref).abs().max() / ref.abs().max())


def test_policy_applied_at_load_and_nothing_flips_per_call(mlp_path: str, switches: None, caplog: pytest.LogCaptureFixture) -> None:
    rt.set_tf32(torch, True, True)
    with caplog.at_level(logging.WARNING, logger="dynashape"):
        engine = dynashape.load(mlp_path)
    assert rt.tf32_state(torch) == (False, False)
    named = [r.getMessage().split(" sets ")[1].split(" = ")[0] for r in caplog.records if "tf32='process'" in r.getMessage()]
    assert sorted(named) == sorted(rt.TF32_SWITCHES)
    seen: set[tuple[bool, bool]] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.add(rt.tf32_state(torch))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for b in (2, 8, 8, 8, 16, 16, 16, 33):  # plain calls, captures and replays
            engine.run({"x": torch.rand(b, WIDTH, device="cuda")})
        torch.cuda.synchronize()
    finally:
        stop.set()
        watcher.join()
    assert seen == {(False, False)}
    stats = engine.graph_stats()
    assert stats["captures"] >= 2 and stats["replays"] >= 2 and stats["failures"] == {"capture": 0, "replay": 0, "mismatch": 0}


def test_tf32_process_leaves_the_switches(mlp_path: str, switches: None, caplog: pytest.LogCaptureFixture) -> None:
    rt.set_tf32(torch, True, True)
    with caplog.at_level(logging.WARNING, logger="dynashape"):
        engine = dynashape.load(mlp_path, tf32="process")
        engine.run({"x": torch.rand(4, WIDTH, device="cuda")})
    assert rt.tf32_state(torch) == (True, True)
    assert not [r for r in caplog.records if "tf32" in r.getMessage()]


def test_graphs_are_captured_under_the_engine_policy(mlp_path: str, switches: None) -> None:
    """The application turns TF32 on after loading an fp32 engine: plain calls follow the switches,
    and a graph captured now still computes in fp32 (its kernels were chosen under the policy)."""
    engine = dynashape.load(mlp_path)
    rt.set_tf32(torch, True, True)
    x = torch.rand(48, WIDTH, device="cuda")
    ref = _reference(mlp_path, x)
    plain = engine.run({"x": x})[engine.outputs[0].name]  # the first call runs plainly, then captures
    replay = [engine.run({"x": x})[engine.outputs[0].name] for _ in range(2)][-1]
    assert rt.tf32_state(torch) == (True, True)  # restored after the capture
    stats = engine.graph_stats()
    assert stats["replays"] >= 1 and stats["failures"]["mismatch"] == 0, stats
    plain_err, graph_err = _err(plain, ref), _err(replay, ref)
    print(f"relative error: plain call under TF32 {plain_err:.2e}, graph captured under the fp32 policy {graph_err:.2e}")
    assert graph_err < 1e-5
    assert plain_err > 10 * graph_err  # the switch matters on this card, so the check above means something


class _Faulty(Runner):
    """The real runner, with a capture runner that raises or returns wrong values (fault injection)."""

    native = "torch"
    uses_torch_tf32 = True

    def __init__(self, inner: Any, mode: str) -> None:
        self.inner, self.mode = inner, mode

    def run(self, profile: int, inputs: Sequence[Any]) -> list[Any]:
        return self.inner.run(profile, inputs)

    def capture_runner(self) -> Runner:
        outer, capture = self, self.inner.capture_runner()

        class Capture(Runner):
            native = "torch"

            def run(self, profile: int, inputs: Sequence[Any]) -> list[Any]:
                if outer.mode == "raise":
                    raise RuntimeError("injected capture fault")
                return [o + 1 for o in capture.run(profile, inputs)]

        return Capture()


@pytest.mark.parametrize("mode,kind,text", [("raise", "capture", "capture failed"), ("wrong", "mismatch", "disagrees")])
def test_graph_failures_are_counted_logged_once_and_strict(mlp_path: str, mode: str, kind: str, text: str,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    base = dynashape.load(mlp_path, cuda_graphs=False)
    engine = dynashape.Engine(base.manifest, _Faulty(base._runner, mode), {})
    x = torch.rand(4, WIDTH, device="cuda")
    want = base.run({"x": x})[base.outputs[0].name]
    with caplog.at_level(logging.WARNING, logger="dynashape"):
        for _ in range(4):
            torch.testing.assert_close(engine.run({"x": x})[base.outputs[0].name], want)
    stats = engine.graph_stats()
    assert stats["failures"][kind] == 1 and stats["captures"] == 0, stats
    assert len([r for r in caplog.records if text in r.getMessage()]) == 1
    strict = dynashape.Engine(base.manifest, _Faulty(base._runner, mode), {}, strict_graphs=True)
    with pytest.raises(dynashape.BackendError, match=text):
        strict.run({"x": x})
    assert strict.graph_stats()["failures"][kind] == 1


def test_replay_failure_is_counted_and_strict(mlp_path: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    engine, strict = dynashape.load(mlp_path), dynashape.load(mlp_path, strict_graphs=True)
    x = torch.rand(6, WIDTH, device="cuda")
    want = engine.run({"x": x})[engine.outputs[0].name]  # plain call + capture
    strict.run({"x": x})
    assert engine.graph_stats()["captures"] == 1

    def broken(self: Any) -> None:
        raise RuntimeError("injected replay fault")

    monkeypatch.setattr(torch.cuda.CUDAGraph, "replay", broken)
    with caplog.at_level(logging.WARNING, logger="dynashape"):
        for _ in range(3):
            torch.testing.assert_close(engine.run({"x": x})[engine.outputs[0].name], want)
    assert engine.graph_stats()["failures"]["replay"] == 1
    assert len([r for r in caplog.records if "injected replay fault" in r.getMessage()]) == 1
    with pytest.raises(dynashape.BackendError, match="replay failed"):
        strict.run({"x": x})


def test_with_options_on_cuda(mlp_path: str) -> None:
    engine = dynashape.load(mlp_path)
    plain = engine.with_options(cuda_graphs=False)
    assert plain._runner is engine._runner
    x = torch.rand(12, WIDTH, device="cuda")
    name = engine.outputs[0].name
    for _ in range(3):
        a, b = engine.run({"x": x})[name], plain.run({"x": x})[name]
    torch.testing.assert_close(a, b)
    assert plain.graph_stats()["graphs"] == 0 and engine.graph_stats()["replays"] >= 1
    small = engine.with_options(graph_cache_size=1)
    for n in (2, 3, 2, 3):
        small.run({"x": torch.rand(n, WIDTH, device="cuda")})
    assert small.graph_stats()["graphs"] == 1
