"""Engines built from a plan: padding checked at build, requests padded to the ladder and cropped back.

On the CPU there are no CUDA graphs, but the bucket path (pad, run at the bucket, crop) is the one
CUDA engines take around their graph replays.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import dynashape
from dynashape.cli.main import main
from dynashape.zoo import get as zoo_get

LENGTHS = [4, 5, 6, 9, 11, 12, 17, 20, 24, 31, 32]


def _log(path: Path, lengths: list[int]) -> Path:
    path.write_text("".join(f"input_ids:1x{n},attention_mask:1x{n}\n" for n in lengths))
    return path


@pytest.fixture(scope="module")
def bert_plan(tmp_path_factory: pytest.TempPathFactory, bert_onnx: str) -> dynashape.Plan:
    log = _log(tmp_path_factory.mktemp("plan") / "r.log", LENGTHS * 3 + [12] * 5)
    return dynashape.plan(log, bert_onnx, ladder=True, max_graphs=4, calibrate_cost=False, ranges={"batch": (1, 2)})


@pytest.fixture(scope="module")
def planned(bert_onnx: str, bert_plan: dynashape.Plan) -> dynashape.Engine:
    return dynashape.build(bert_onnx, backend="onnxruntime", plan=bert_plan)


def test_masked_encoder_is_padded_and_cropped(planned: dynashape.Engine, bert_model: torch.nn.Module, bert_plan: dynashape.Plan) -> None:
    plan = planned.manifest.plan
    assert plan is not None and plan.padding is not None and plan.padding.safe, plan.padding
    assert plan.padding.crop == {"hidden": ((1, 1, 0),)}
    assert bert_plan.ladder is not None and len(bert_plan.ladder.buckets) == 4
    rng = np.random.default_rng(3)
    before = dict(planned.graph_stats()["ladder"])
    for n in LENGTHS:
        ids = rng.integers(1, 90, (1, n)).astype(np.int64)
        mask = np.ones((1, n), np.int64)
        got = planned.run({"input_ids": ids, "attention_mask": mask})["hidden"]
        with torch.no_grad():
            want = bert_model(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-4)
    # torch in, torch out through the same path
    t = planned.run({"input_ids": torch.ones(1, 7, dtype=torch.int64), "attention_mask": torch.ones(1, 7, dtype=torch.int64)})["hidden"]
    assert isinstance(t, torch.Tensor) and tuple(t.shape) == (1, 7, 32)
    after = planned.graph_stats()["ladder"]
    on = set(bert_plan.ladder.buckets)
    assert after["padded"] - before["padded"] == sum(n not in on for n in LENGTHS) + (7 not in on)
    assert after["on_ladder"] - before["on_ladder"] == sum(n in on for n in LENGTHS) + (7 in on)
    # batch 2 is not a planned graph shape: off the ladder, exact shape
    planned.run({"input_ids": np.ones((2, 5), np.int64), "attention_mask": np.ones((2, 5), np.int64)})
    assert planned.graph_stats()["ladder"]["off_ladder"] == after["off_ladder"] + 1


def test_plan_survives_save_and_load(tmp_path: Path, planned: dynashape.Engine) -> None:
    planned.save(tmp_path / "b.engine")
    engine = dynashape.load(tmp_path / "b.engine")
    assert engine.manifest.plan == planned.manifest.plan
    stats = engine.warmup()  # CPU: runs each ladder shape once, captures nothing
    assert stats["graphs"] == 0 and stats["ladder"]["padding"] == "safe"
    # inspect's text view shows the plan briefly: ladder, padding verdict, profiles, predictions
    text = str(dynashape.inspect(tmp_path / "b.engine"))
    plan = planned.manifest.plan
    assert plan is not None and plan.ladder is not None
    assert f"ladder on 'seq': 4 buckets ({', '.join(map(str, plan.ladder.buckets))}), 4 graphs" in text
    assert "padding safe: outputs at the real positions equal" in text
    assert f"profiles: {len(plan.profiles) - plan.static_profiles} dynamic, {plan.static_profiles} static" in text
    lat = plan.predictions["latency_per_request"]
    assert f"predicted: {lat.value:.4g} proxy units a request" in text and "padding waste" in text


def test_global_pooling_conv_net_is_refused(tmp_path: Path) -> None:
    z = zoo_get("resnet_like")
    model = z.make()
    onnx_path = dynashape.export(model, z.example_inputs(), tmp_path / "r.onnx", dynamic_axes=z.dynamic_axes,
                                 output_names=list(z.output_names)).path
    log = tmp_path / "img.log"
    log.write_text("".join(f"image:1x3x{h}x32\n" for h in (24, 26, 28, 30, 32, 40)))
    plan = dynashape.plan(log, onnx_path, ladder=True, max_graphs=2, calibrate_cost=False)
    assert plan.ladder is not None and plan.ladder.dim == "height"
    engine = dynashape.build(onnx_path, backend="onnxruntime", plan=plan)
    padding = engine.manifest.plan.padding  # type: ignore[union-attr]
    assert padding is not None and not padding.safe
    assert "changes when height=" in padding.reason and "global pooling" in padding.reason
    x = np.random.default_rng(0).random((1, 3, 26, 32)).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(engine.run({"image": x})["logits"], want, atol=1e-4, rtol=1e-4)
    assert engine.graph_stats()["ladder"]["off_ladder"] == 1  # refused padding: run at the exact shape


def test_plan_and_build_from_the_command_line(tmp_path: Path, bert_onnx: str, capsys: pytest.CaptureFixture[str]) -> None:
    log = _log(tmp_path / "r.log", LENGTHS)
    plan_path, report, engine_path = tmp_path / "p.json", tmp_path / "p.html", tmp_path / "e.engine"
    assert main(["plan", "--workload", str(log), "--onnx", bert_onnx, "--ladder", "--max-graphs", "3", "--no-calibrate",
                 "-o", str(plan_path), "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "bucket ladder on 'seq' (3 buckets, 3 graphs)" in out and "latency_per_request" in out
    assert "<svg" in report.read_text()
    assert main(["build", "--onnx", bert_onnx, "--plan", str(plan_path), "--backend", "onnxruntime", "--saveEngine", str(engine_path)]) == 0
    assert "padding safe" in capsys.readouterr().out
    assert dynashape.load(engine_path).manifest.plan is not None
    assert main(["plan", "--dim", "seq", "--onnx", bert_onnx, "-o", str(plan_path)]) == 2
    assert "--dim 'seq'" in capsys.readouterr().err
    # calibrated on the engine just built, and the build of that plan says what it measured
    assert main(["plan", "--workload", str(log), "--loadEngine", str(engine_path), "--ladder", "--max-graphs", "3",
                 "-o", str(plan_path)]) == 0
    assert "calibrated on cpu" in capsys.readouterr().out
    assert main(["build", "--onnx", bert_onnx, "--plan", str(plan_path), "--backend", "onnxruntime", "--saveEngine", str(engine_path)]) == 0
    assert "measured at build (plain calls at 3 shape(s)): " in capsys.readouterr().out
    assert main(["plan", "--workload", str(log), "--loadEngine", str(engine_path), "--onnx", bert_onnx, "-o", str(plan_path)]) == 2
    assert "both --onnx and --loadEngine" in capsys.readouterr().err


def test_the_build_times_the_engine_against_the_prediction(tmp_path: Path, planned: dynashape.Engine) -> None:
    """Predicted against measured, right after the build: every ladder shape timed (plain calls on the
    CPU), the mean latency per request over the workload, and the ratio to the prediction's unit."""
    plan = planned.manifest.plan
    assert plan is not None and plan.ladder is not None
    timing = plan.details["measured_at_build"]["latency"]
    assert timing["kind"] == "plain call" and timing["unit"] == "proxy units"
    assert sorted(r["shape"]["seq"] for r in timing["shapes"]) == list(plan.ladder.buckets)
    assert all(r["measured_ms"] > 0 and r["predicted"] > 0 for r in timing["shapes"])
    assert timing["latency_per_request_ms"] > 0 and timing["measured_over_predicted"] > 0
    assert "prediction_error" not in timing  # proxy units cannot be compared with milliseconds
    planned.save(tmp_path / "t.engine")
    text = str(dynashape.inspect(tmp_path / "t.engine"))
    assert f"measured at build (plain calls at {len(plan.ladder.buckets)} shape(s)): " in text
    assert "ms per proxy units" in text


def test_plan_calibrated_on_an_engine_predicts_in_ms_and_the_build_checks_it(tmp_path: Path, bert_onnx: str) -> None:
    """The engine is what calibration times: plain calls of a one-profile engine, in milliseconds,
    and the planned engine's build reports its measured latency against that prediction."""
    one = dynashape.build(bert_onnx, dims={"batch": (1, 1, 2), "seq": (4, 16, 32)}, backend="onnxruntime", quiet=True)
    path = tmp_path / "one.engine"
    one.save(path)
    log = _log(tmp_path / "r.log", LENGTHS * 2)
    plan = dynashape.plan(log, str(path), ladder=True, max_graphs=3, ranges={"batch": (1, 2)}, use_cache=False)
    cost = plan.details["cost_model"]
    assert cost["unit"] == "ms" and cost["derivation"].startswith("calibrated on cpu")
    assert plan.predictions["latency_per_request"].unit == "ms"
    built = dynashape.build(bert_onnx, backend="onnxruntime", plan=plan, quiet=True)
    timing = built.manifest.plan.details["measured_at_build"]["latency"]
    assert timing["unit"] == "ms" and "prediction_error" in timing and timing["latency_per_request_ms"] > 0
    with pytest.raises(dynashape.DynashapeError, match="an engine built for the device and precision being planned"):
        dynashape.plan(log, one, device="cpu", precision="fp16", use_cache=False)


def test_plan_split_from_the_command_line(tmp_path: Path, bert_onnx: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``plan --split`` prints and stores the sub-ranges; an ONNX Runtime build of that plan leaves them
    (they are inductor parts) and builds the plan's profiles."""
    log = _log(tmp_path / "r.log", [4, 4, 5, 5, 6, 9, 12, 17, 24, 31, 32, 40, 64])
    plan_path, engine_path = tmp_path / "p.json", tmp_path / "e.engine"
    assert main(["plan", "--workload", str(log), "--onnx", bert_onnx, "--device", "cuda", "--no-calibrate", "--max-profiles", "1",
                 "--split", "-o", str(plan_path)]) == 0
    out = capsys.readouterr().out
    assert "split along 'seq' into sub-ranges of equal traffic (lo/opt/hi): 4/" in out, out
    triples = dynashape.Plan.load(str(plan_path)).details["split"]["seq"]
    assert triples[0][0] == 4 and triples[-1][2] == 64 and len(triples) >= 2
    assert main(["build", "--onnx", bert_onnx, "--plan", str(plan_path), "--backend", "onnxruntime", "--saveEngine", str(engine_path)]) == 0
    assert dynashape.load(engine_path).manifest.build_settings.split == ()


def test_cropped_outputs_are_contiguous(tmp_path: Path, bert_onnx: str, bert_model: torch.nn.Module) -> None:
    """At batch 2 the crop of the padded sequence is a strided view; the engine hands it out contiguous, as
    every output (``torch_runtime.dense``), numpy and torch alike."""
    log = tmp_path / "b2.log"
    log.write_text("".join(f"input_ids:2x{n},attention_mask:2x{n}\n" for n in LENGTHS * 3))
    plan = dynashape.plan(log, bert_onnx, ladder=True, max_graphs=3, calibrate_cost=False, ranges={"batch": (2, 2)})
    engine = dynashape.build(bert_onnx, backend="onnxruntime", plan=plan)
    assert engine.manifest.plan is not None and engine.manifest.plan.padding is not None and engine.manifest.plan.padding.safe
    on = set(plan.ladder.buckets) if plan.ladder is not None else set()
    n = next(v for v in LENGTHS if v not in on)
    ids = np.random.default_rng(5).integers(1, 90, (2, n)).astype(np.int64)
    mask = np.ones((2, n), np.int64)
    before = engine.graph_stats()["ladder"]["padded"]
    got = engine.run({"input_ids": ids, "attention_mask": mask})["hidden"]
    assert engine.graph_stats()["ladder"]["padded"] == before + 1
    assert got.shape == (2, n, 32) and got.flags["C_CONTIGUOUS"]
    with torch.no_grad():
        np.testing.assert_allclose(got, bert_model(torch.from_numpy(ids), torch.from_numpy(mask)).numpy(), atol=2e-5, rtol=1e-4)
    t = engine.run({"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)})["hidden"]
    assert t.is_contiguous() and np.array_equal(t.numpy(), got)
