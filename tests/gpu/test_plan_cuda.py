"""A planned engine on CUDA: the bucket ladder is captured at load, never in the request path.

bert_like (zoo, a masked encoder) in fp16 on AOTInductor, a seq ladder of 4 buckets planned from a
length list. Skipped without a CUDA device. Run on the GPU machine:
CXX=/usr/bin/g++ CC=/usr/bin/gcc PYTHONPATH=src python -m pytest -q tests/gpu/test_plan_cuda.py -m gpu
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
import dynashape  # noqa: E402
from dynashape import zoo  # noqa: E402

pytestmark = [pytest.mark.gpu, pytest.mark.slow, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

BERT = zoo.get("bert_like")
# every length once or twice: no shape carries 20% of the requests, so no static profile. The plan
# uses the proxy cost model (calibrated, a model this small costs the same at every length, and
# one bucket would do): the ladder is (13, 21, 33, 48), the same on every machine.
LENGTHS = [5, 6, 7, 9, 11, 12, 13, 17, 20, 21, 24, 29, 31, 33, 40, 47, 48, 12, 20, 33]
TOP = 64  # the profile reaches past the top bucket (48): 49..64 run off the ladder
ATOL = RTOL = 2e-2  # fp16; padding changes the length of attention's reductions


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    plan = dynashape.plan(dims={"seq": LENGTHS, "batch": [1]}, model=BERT.make(), example_inputs=BERT.example_inputs(),
                          dynamic_axes=BERT.dynamic_axes, device="cuda", precision="fp16", max_graphs=4,
                          ranges={"seq": (4, TOP), "batch": (1, 2)}, calibrate_cost=False)
    assert plan.ladder is not None and plan.ladder.dim == "seq" and len(plan.ladder.buckets) == 4
    assert plan.ladder.buckets[-1] == max(LENGTHS)
    engine = dynashape.build(BERT.make(), plan=plan, backend="inductor", device="cuda", precision="fp16",
                             example_inputs=BERT.example_inputs(), dynamic_axes=BERT.dynamic_axes, output_names=["hidden"])
    path = tmp_path_factory.mktemp("plan_cuda") / "bert_fp16.engine"
    engine.save(path)
    return {"plan": plan, "built": engine, "path": str(path)}


def _feed(n: int, *, batch: int = 1, seed: int = 0) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed * 1000 + n)
    return {"input_ids": torch.randint(1, 100, (batch, n), generator=g).cuda(),
            "attention_mask": torch.ones(batch, n, dtype=torch.int64, device="cuda")}


def test_the_build_checks_padding_and_measures_graph_memory(planned: dict[str, Any]) -> None:
    plan = planned["built"].manifest.plan
    assert plan.padding is not None and plan.padding.safe, plan.padding
    assert plan.padding.crop == {"hidden": ((1, 1, 0),)}
    measured = plan.details["measured_at_build"]
    print(f"graph memory at build: {measured}, predicted {plan.predictions['graph_memory'].value} MB")
    assert measured["graphs"] == len(plan.ladder.shapes) and measured["graph_pool_mb"] > 0


def test_ladder_is_captured_at_load_and_never_in_the_request_path(planned: dict[str, Any]) -> None:
    plan = planned["plan"]
    engine = dynashape.load(planned["path"])
    stats = engine.graph_stats()
    n_graphs = len(plan.ladder.shapes)
    assert stats["graphs"] == stats["captures"] == n_graphs and stats["replays"] == 0
    assert stats["capture_on_demand"] is False and sum(stats["failures"].values()) == 0
    assert stats["graph_bytes"] > 0 and stats["pool_bytes"] > 0  # graph memory is reported
    buckets = set(plan.ladder.buckets)
    for rep in range(2):
        for n in LENGTHS:
            feed = _feed(n, seed=rep)
            got = engine.run(feed)["hidden"]
            assert got.is_cuda and tuple(got.shape) == (1, n, 32)
            exact = engine.run(feed, profile=0)["hidden"]  # profile= bypasses the ladder: the exact shape, plain call
            torch.testing.assert_close(got.float(), exact.float(), atol=ATOL, rtol=RTOL)
    after = engine.graph_stats()
    assert after["captures"] == n_graphs and after["graphs"] == n_graphs  # nothing captured in the request path
    # every ladder request replayed a pre-captured graph (and so did the exact runs at a bucket)
    assert after["replays"] == 2 * len(LENGTHS) + 2 * sum(n in buckets for n in LENGTHS)
    lad = after["ladder"]
    assert lad["padded"] == 2 * sum(n not in buckets for n in LENGTHS)
    assert lad["on_ladder"] == 2 * sum(n in buckets for n in LENGTHS)


def test_padded_outputs_equal_eager_at_the_real_positions(planned: dict[str, Any]) -> None:
    engine = dynashape.load(planned["path"])
    model = BERT.make().cuda().half().eval()
    for n in (5, 10, 30, 41):  # all padded (none is a bucket of this plan unless the DP chose it)
        feed = _feed(n, seed=7)
        with torch.no_grad():
            want = model(feed["input_ids"], feed["attention_mask"])
        torch.testing.assert_close(engine.run(feed)["hidden"].float(), want.float(), atol=ATOL, rtol=RTOL)


def test_off_ladder_shapes_run_without_capture(planned: dict[str, Any]) -> None:
    engine = dynashape.load(planned["path"])
    before = engine.graph_stats()
    model = BERT.make().cuda().half().eval()
    for feed in (_feed(TOP), _feed(55), _feed(9, batch=2)):  # above the top bucket; a batch the ladder has no graph for
        with torch.no_grad():
            want = model(feed["input_ids"], feed["attention_mask"])
        for _ in range(3):  # repeated: on-demand capture would have captured by now
            torch.testing.assert_close(engine.run(feed)["hidden"].float(), want.float(), atol=ATOL, rtol=RTOL)
    after = engine.graph_stats()
    assert after["captures"] == before["captures"] and after["graphs"] == before["graphs"]
    assert after["ladder"]["off_ladder"] - before["ladder"]["off_ladder"] == 9
    assert after["replays"] == before["replays"]


def test_warmup_captures_the_ladder_when_load_does_not(planned: dict[str, Any], tmp_path: Path) -> None:
    engine = dynashape.load(planned["path"], warmup=False)
    assert engine.graph_stats()["graphs"] == 0
    stats = engine.warmup()
    assert stats["graphs"] == stats["captures"] == len(planned["plan"].ladder.shapes)
    assert engine.warmup()["captures"] == stats["captures"]  # a second warm-up captures nothing new
    engine.run(_feed(7))
    assert engine.graph_stats()["captures"] == stats["captures"]
    # with on-demand capture asked for, an off-ladder shape is captured after all
    eager = dynashape.load(planned["path"], capture_on_demand=True)
    base = eager.graph_stats()["captures"]
    for _ in range(3):
        eager.run(_feed(9, batch=2))
    assert eager.graph_stats()["captures"] > base


def test_calibrated_plan_predicts_in_ms_and_graph_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DYNASHAPE_CACHE_DIR", str(tmp_path))
    plan = dynashape.plan(dims={"seq": LENGTHS, "batch": [1]}, model=BERT.make(), example_inputs=BERT.example_inputs(),
                          dynamic_axes=BERT.dynamic_axes, device="cuda", precision="fp16", max_graphs=4)
    lat = plan.predictions["latency_per_request"]
    assert lat.unit == "ms" and "calibrated on cuda" in lat.derivation and lat.value > 0
    assert plan.predictions["graph_memory"].value > 0
    assert plan.ladder is not None and 1 <= len(plan.ladder.shapes) <= 4
    again = dynashape.plan(dims={"seq": LENGTHS, "batch": [1]}, model=BERT.make(), example_inputs=BERT.example_inputs(),
                           dynamic_axes=BERT.dynamic_axes, device="cuda", precision="fp16", max_graphs=4)
    assert again.details["cost_model"]["extras"]["cached"] is True  # calibration is cached per model and device
