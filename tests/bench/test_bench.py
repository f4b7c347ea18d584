"""trtexec-style timing and parity comparisons against ONNX Runtime and eager PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import dynashape
from dynashape._bench import runtime_overhead
from dynashape._errors import DynashapeError, ShapeError


def perturbed_onnx(src: str, dst: Path) -> str:
    """The same graph and IO with different weights (every float initializer scaled): a wrong model."""
    model = onnx.load(src)
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.size > 1:
            init.CopyFrom(numpy_helper.from_array(arr * np.float32(1.5) + np.float32(0.01), init.name))
    onnx.save(model, dst)
    return str(dst)


# -- bench --------------------------------------------------------------------------------------

def test_bench_per_shape(seg_engine_2: dynashape.Engine) -> None:
    shapes = [{"input_1": (1, 3, 64, 64)}, {"input_1": (1, 3, 300, 500)}]
    results = dynashape.bench(seg_engine_2, shapes, iterations=4, warmup_ms=0, duration_s=0)
    assert [r.shapes for r in results] == shapes
    assert [r.profile for r in results] == [0, 1]
    for r in results:
        s = r.summary
        assert s["iterations"] == 4 and len(r.latencies_ms) == 4
        assert 0 < s["min_ms"] <= s["median_ms"] <= s["p90_ms"] <= s["p99_ms"] <= s["max_ms"]
        assert s["throughput_qps"] == pytest.approx(1000 / s["mean_ms"])
        assert set(r.to_json()) == {"shapes", "profile", *s}
    assert results[0].HEADER.split()[:3] == ["shapes", "profile", "iters"]
    assert results[1].row().startswith("input_1:1x3x300x500")


def test_bench_defaults_to_each_profile_opt(seg_engine_2: dynashape.Engine) -> None:
    results = dynashape.bench(seg_engine_2, iterations=1, warmup_ms=0, duration_s=0)
    assert [r.shapes["input_1"] for r in results] == [(1, 3, 128, 128), (1, 3, 512, 512)]
    assert [r.profile for r in results] == [0, 1]


def test_bench_with_real_inputs(seg_engine: dynashape.Engine) -> None:
    x = np.zeros((1, 3, 256, 300), np.float32)
    (r,) = dynashape.bench(seg_engine, inputs={"input_1": x}, iterations=2, warmup_ms=0, duration_s=0)
    assert r.shapes == {"input_1": (1, 3, 256, 300)} and r.summary["iterations"] == 2


def test_bench_errors(seg_engine: dynashape.Engine) -> None:
    with pytest.raises(DynashapeError, match=r"iterations=0 \| an integer >= 1"):
        dynashape.bench(seg_engine, iterations=0)
    with pytest.raises(ShapeError, match="outside every profile"):
        dynashape.bench(seg_engine, {"input_1": (1, 3, 1024, 1024)}, iterations=1, warmup_ms=0, duration_s=0)


def test_runtime_overhead(seg_engine_2: dynashape.Engine) -> None:
    o = runtime_overhead(seg_engine_2, {"input_1": (1, 3, 64, 64)}, iterations=20)
    assert set(o) == {"engine_us", "bare_us", "overhead_us"}
    assert o["engine_us"] > 0 and o["bare_us"] > 0


# -- compare ------------------------------------------------------------------------------------

def test_compare_with_the_onnx_it_was_built_from(seg_engine: dynashape.Engine, seg_onnx: str) -> None:
    result = dynashape.compare(seg_engine, seg_onnx)
    assert result.passed
    # Default shapes: every profile's min, opt and max; the appended Sigmoid is applied to the reference.
    assert [r.shapes["input_1"] for r in result.rows] == [(1, 3, 256, 256), (1, 3, 512, 512), (1, 3, 768, 768)]
    assert all(d.max_abs < 1e-5 for r in result.rows for d in r.diffs)
    text = str(result)
    assert text.startswith("engine vs ONNX Runtime") and text.rstrip().endswith("PASSED")
    assert result.to_json()["passed"] is True


def test_compare_with_pytorch(seg_engine: dynashape.Engine, seg_model) -> None:
    result = dynashape.compare(seg_engine, seg_model, [{"input_1": (1, 3, 300, 500)}, {"input_1": (1, 3, 257, 263)}])
    assert result.passed, str(result)
    assert result.reference == "PyTorch eager (Segmentation)"


def test_compare_fails_against_another_model(tmp_path: Path, seg_engine: dynashape.Engine, seg_onnx: str) -> None:
    other = perturbed_onnx(seg_onnx, tmp_path / "other.onnx")
    result = dynashape.compare(seg_engine, other, [{"input_1": (1, 3, 256, 256)}])
    assert not result.passed
    assert str(result).rstrip().endswith("FAILED") and "FAIL" in str(result).splitlines()[2]


def test_compare_reference_without_the_outputs(seg_engine: dynashape.Engine, bert_onnx: str) -> None:
    with pytest.raises(DynashapeError, match=r"the reference model has no output\(s\) \['output_1'\]"):
        dynashape.compare(seg_engine, bert_onnx)
    with pytest.raises(DynashapeError, match=r"an ONNX path, an onnx\.ModelProto or a torch\.nn\.Module"):
        dynashape.compare(seg_engine, 42)


@pytest.mark.slow
def test_compare_inductor_with_pytorch(sr_engine: dynashape.Engine, sr_model) -> None:
    result = dynashape.compare(sr_engine, sr_model)  # every profile's min/opt/max
    assert result.passed, str(result)
    assert len(result.rows) == 6 and {r.profile for r in result.rows} == {0, 1}


# -- user data ------------------------------------------------------------------------------------

def test_bench_and_compare_with_user_data(tmp_path: Path, seg_engine_2: dynashape.Engine, seg_onnx: str,
                                          capfd: pytest.CaptureFixture[str]) -> None:
    """An .npz with a leading index: one timed set and one compared row per feed."""
    rng = np.random.default_rng(0)
    x = rng.random((2, 1, 3, 64, 96), dtype=np.float32)
    path = tmp_path / "feeds.npz"
    np.savez(path, input_1=x)
    results = dynashape.bench(seg_engine_2, data=str(path), iterations=2, warmup_ms=0, duration_s=0)
    assert [r.shapes for r in results] == [{"input_1": (1, 3, 64, 96)}] * 2
    assert "bench: input_1:1x3x64x96 (2 of 2)" in capfd.readouterr().err
    result = dynashape.compare(seg_engine_2, seg_onnx, data=str(path), atol=1e-3, rtol=1e-3, quiet=True)
    assert result.passed and len(result.rows) == 2
    assert "[dynashape" not in capfd.readouterr().err
    with pytest.raises(DynashapeError, match=r"names \['image'\] that are not inputs \| one array per input: input_1"):
        dynashape.compare(seg_engine_2, seg_onnx, data={"image": x[0]})
