"""Plans: valid, deterministic, covering every workload shape, within their budgets."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

import dynashape
from dynashape import DynashapeError, TensorSpec
from dynashape._plan.workload import Workload, batch_stream, read_shape_log

SPECS = [TensorSpec("input_ids", "int64", ("batch", "seq")), TensorSpec("attention_mask", "int64", ("batch", "seq"))]


@pytest.fixture(scope="module")
def lengths(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # a skewed length distribution, as real text is (log-normal around 60 tokens, 8..384)
    rng = np.random.default_rng(0)
    vals = np.clip(np.round(rng.lognormal(4.1, 0.5, 4000)), 8, 384).astype(int)
    path = tmp_path_factory.mktemp("w") / "lengths.txt"
    path.write_text("\n".join(map(str, vals)) + "\n")
    return path


def _plan(lengths: Path, **kw: object) -> dynashape.Plan:
    return dynashape.plan(dims={"seq": str(lengths), "batch": "1"}, inputs=SPECS, calibrate_cost=False, **kw)  # type: ignore[arg-type]


def test_plan_covers_every_shape_and_pads_up(lengths: Path) -> None:
    plan = _plan(lengths, device="cuda", max_graphs=12)
    vals = np.loadtxt(lengths, dtype=int)
    for v in np.unique(vals):
        shapes = {"input_ids": (1, int(v)), "attention_mask": (1, int(v))}
        assert any(p.contains(shapes) for p in plan.profiles), v
    assert plan.ladder is not None and plan.ladder.dim == "seq"
    assert list(plan.ladder.buckets) == sorted(set(plan.ladder.buckets))
    assert plan.ladder.buckets[-1] == vals.max() and set(plan.ladder.buckets) <= set(vals.tolist())
    assert 1 <= len(plan.ladder.shapes) <= 12
    # opt comes from the workload: the cost-weighted median, not the midpoint of the range
    r = plan.profiles[0]["input_ids"]
    assert r.opt[1] != (r.min[1] + r.max[1]) // 2 and r.min[1] <= r.opt[1] <= r.max[1]
    assert plan.predictions["latency_per_request"].value < plan.predictions["latency_without_plan"].value
    assert "proxy" in plan.predictions["latency_per_request"].derivation


def test_plan_is_deterministic(lengths: Path) -> None:
    a, b = _plan(lengths, device="cuda").to_json(), _plan(lengths, device="cuda").to_json()
    a["details"].pop("seconds")
    b["details"].pop("seconds")
    assert a == b


def test_budgets_are_obeyed(lengths: Path) -> None:
    for graphs in (1, 3, 7):
        plan = _plan(lengths, device="cuda", max_graphs=graphs)
        assert plan.ladder is not None and len(plan.ladder.shapes) <= graphs
    # more buckets never predict a slower stream
    costs = _plan(lengths, device="cuda", max_graphs=32).details["ladder"]["cost_per_bucket_count"]
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(costs))
    plan = _plan(lengths, backend="tensorrt", max_profiles=2, min_static_share=0.0)
    assert len(plan.profiles) <= 2
    plan = _plan(lengths, backend="tensorrt", max_profiles=4, build_time_s=70)
    assert plan.predictions["build_time"].value <= 70 and len(plan.profiles) == 1
    assert _plan(lengths).ladder is None  # CPU: no graphs to amortize padding


def test_static_profile_for_a_hot_shape(tmp_path: Path) -> None:
    log = tmp_path / "hot.log"
    log.write_text("input_ids:1x128,attention_mask:1x128 * 70\n" + "".join(f"input_ids:1x{n},attention_mask:1x{n}\n" for n in range(20, 50)))
    plan = dynashape.plan(log, inputs=SPECS, calibrate_cost=False, max_profiles=3)
    assert plan.static_profiles == 1
    hot = plan.profiles[-1]["input_ids"]
    assert hot.min == hot.opt == hot.max == (1, 128)


def test_batched_workload_plans_on_the_padded_batch() -> None:
    w = Workload(("seq",), np.array([[5], [9], [3], [7], [2]]), np.ones(5))
    b = batch_stream(w, 2, batch_dim="batch", pad_dims=["seq"])
    assert b.dims == ("batch", "seq")
    assert b.rows.tolist() == [[2, 9], [2, 7], [1, 2]]


def test_shape_log_formats_and_errors(tmp_path: Path) -> None:
    log = tmp_path / "r.log"
    log.write_text('input_ids:1x7,attention_mask:1x7\n{"input_ids": [1, 9], "attention_mask": [1, 9]}\n'
                   '{"shapes": {"input_ids": [1, 7], "attention_mask": [1, 7]}, "weight": 3}\n')
    w = read_shape_log(log, SPECS)
    assert w.dims == ("batch", "seq") and w.rows.tolist() == [[1, 7], [1, 9], [1, 7]] and w.weights.tolist() == [1, 1, 3]
    log.write_text("input_ids:1x7,attention_mask:1x8\n")
    with pytest.raises(DynashapeError, match="dim 'seq' is 7 in one input and 8"):
        read_shape_log(log, SPECS)
    with pytest.raises(DynashapeError, match=r"no values for the model's dim\(s\) \['batch'\]"):
        dynashape.plan(dims={"seq": "12"}, inputs=SPECS, calibrate_cost=False)


def test_plan_file_round_trip(tmp_path: Path, lengths: Path) -> None:
    plan = _plan(lengths, device="cuda")
    plan.save(tmp_path / "p.json")
    again = dynashape.Plan.load(tmp_path / "p.json")
    assert again.to_json() == plan.to_json()
    (tmp_path / "bad.json").write_text('{"format_version": 99}')
    with pytest.raises(DynashapeError, match="plan format version 99"):
        dynashape.Plan.load(tmp_path / "bad.json")


def test_bare_shape_log_merges_axes_that_are_always_equal(tmp_path: Path) -> None:
    # without the model, input_ids' and attention_mask's lengths are one dim: one opt, one ladder
    rng = np.random.default_rng(5)
    log = tmp_path / "bare.log"
    log.write_text("".join(f"input_ids:1x{n},attention_mask:1x{n}\n" for n in rng.integers(8, 200, 300)))
    plan = dynashape.plan(log, device="cuda", calibrate_cost=False, max_graphs=8)
    assert plan.details["workload"]["dims"] == ["input_ids_dim0", "input_ids_dim1"]
    assert plan.details["workload"]["merged_dims"] == {"input_ids_dim0": ["input_ids_dim0", "attention_mask_dim0"],
                                                       "input_ids_dim1": ["input_ids_dim1", "attention_mask_dim1"]}
    p = plan.profiles[0]
    assert p["input_ids"] == p["attention_mask"]
    assert plan.ladder is not None and len(plan.ladder.buckets) == 8  # not split into groups by a duplicate dim


def test_many_distinct_values_plan_in_seconds() -> None:
    # 8192 distinct lengths: the DP runs by divide and conquer (the plain O(k n^2) DP took minutes)
    w = Workload(("seq",), np.arange(1, 8193).reshape(-1, 1), np.random.default_rng(0).random(8192) + 0.1)
    plan = dynashape.plan(w, inputs=[TensorSpec("x", "float32", (1, "seq"))], device="cuda", calibrate_cost=False, max_graphs=64)
    assert plan.details["ladder"]["dp"] == "divide-and-conquer" and plan.details["profiles"]["dp"] == "divide-and-conquer"
    assert plan.ladder is not None and plan.ladder.buckets[-1] == 8192
    assert plan.details["seconds"]["dp_ladder"] < 30  # generous on a shared 2-core machine; ~0.3 s alone


def test_split_cuts_wide_profiles_at_equal_traffic(lengths: Path, tmp_path: Path) -> None:
    """``plan(split=True)``: each dynamic profile wider than 4x along the ladder dim becomes contiguous
    ``[lo, opt, hi]`` sub-ranges carrying about equal shares of the requests, each opt inside its own."""
    from dynashape._backend.range_split import check_split
    from dynashape._plan import explain

    plan = _plan(lengths, device="cuda", max_profiles=1, split=True)
    (dyn,) = plan.profiles
    r = dyn["input_ids"]
    triples = plan.details["split"]["seq"]
    assert len(triples) == 3  # 8..384 is 48x wide: as many pieces as split="auto" (each at most 4x) would cut
    assert triples[0][0] == r.min[1] and triples[-1][2] == r.max[1]
    assert all(a[2] + 1 == b[0] for a, b in itertools.pairwise(triples))  # contiguous
    assert all(lo <= opt <= hi for lo, opt, hi in triples)
    vals = np.loadtxt(lengths, dtype=int)
    shares = [float(((vals >= lo) & (vals <= hi)).mean()) for lo, _, hi in triples]
    assert all(0.2 < s < 0.5 for s in shares), shares  # equal thirds, up to ties at the cut values
    assert plan.predictions["build_time"].value == 3 * 30.0  # one compile per sub-range
    assert check_split(plan.details["split"], SPECS) == (("seq", tuple(tuple(t) for t in triples)),)
    assert "split along 'seq' into sub-ranges of equal traffic" in explain(plan)
    path = tmp_path / "p.json"
    plan.save(str(path))
    assert dynashape.Plan.load(str(path)).details["split"] == plan.details["split"]
    # without split=True, or for another backend, nothing is cut
    assert "split" not in _plan(lengths, device="cuda", max_profiles=1).details
    assert "split" not in _plan(lengths, device="cpu", max_profiles=1, split=True).details  # onnxruntime on the CPU
