"""``fix`` repairs the safe cases, verifies them, and writes nothing it could not verify."""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import pytest
from corpus import CORPUS, BrokenCase

from dynashape._check import check, fix

FIXABLE = [c for c in CORPUS if c.fixable]


@pytest.mark.parametrize("case", FIXABLE, ids=lambda c: c.name)
def test_fix_repairs_and_verifies(case: BrokenCase, exports, tmp_path) -> None:
    src = exports.broken(case, "torchscript")
    out = tmp_path / "fixed.onnx"
    result = fix(src, out)
    assert result.output_path == str(out) and out.exists(), str(result)
    assert any((f.op, f.symbol, f.value) == (case.torchscript, case.symbol, case.value) for f in result.fixed)
    assert len(result.verified_shapes) >= 3  # the export shape and two new ones
    assert check(str(out)).findings == []
    assert os.listdir(tmp_path) == ["fixed.onnx"]  # no temporary file left behind
    # The repaired model follows a doubled batch / seq where the original could not.
    inputs = {k: v.numpy() for k, v in case.inputs().items()}
    name, axes = next(iter(case.dynamic_axes.items()))
    axis = next(a for a, s in axes.items() if s == case.symbol)
    big = {name: np.concatenate([inputs[name]] * 2, axis=axis)}
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, big)[0]
    ref = ort.InferenceSession(src, providers=["CPUExecutionProvider"]).run(None, inputs)[0]
    if axis == 0:
        assert got.shape[0] == 2 * ref.shape[0]
        assert all(np.allclose(h, ref, rtol=1e-4, atol=1e-5) for h in np.split(got, 2))


def test_fix_refuses_what_it_cannot_prove_and_writes_nothing(exports, tmp_path) -> None:
    case = next(c for c in CORPUS if c.name == "interpolate_fixed")
    out = tmp_path / "fixed.onnx"
    out.write_bytes(b"previous")
    result = fix(exports.broken(case, "torchscript"), out)
    assert result.output_path is None and result.fixed == []
    assert out.read_bytes() == b"previous"
    reasons = [why for f, why in result.unfixed if f.op == "Resize"]
    assert reasons and "Resize to fixed sizes may be intended" in reasons[0]
    assert "wrote nothing" in str(result) and "not fixed: Resize" in str(result)


def test_fix_says_which_findings_stay(exports, tmp_path) -> None:
    case = next(c for c in CORPUS if c.name == "arange_positions")
    result = fix(exports.broken(case, "torchscript"), tmp_path / "f.onnx")
    assert result.output_path is None
    (f, why), = result.unfixed
    assert f.op == "Add" and "holds varying values" in why
