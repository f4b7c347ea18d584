"""Every broken model gives its finding with both exporters; every clean model gives none."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CLEAN, EXPORTERS
from corpus import CORPUS, BrokenCase, call, make

from dynashape._check import check


def _really_broken(case: BrokenCase, path: str) -> bool:
    """Ground truth, independent of the doctor: does the export misbehave at a new shape?

    For a batch dim, doubling the batch must give each half the export-shape answer; for other
    dims, the answer must match PyTorch eager, which reads real sizes.
    """
    import onnxruntime as ort
    import torch

    inputs = case.inputs()
    name, axes = next(iter(case.dynamic_axes.items()))
    axis = next(a for a, s in axes.items() if s == case.symbol)
    x = inputs[name]
    big = {**inputs, name: torch.cat([x, x], dim=axis)}
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    try:
        got = sess.run(None, {k: v.numpy() for k, v in big.items()})[0]
    except Exception:  # ONNX Runtime's error types: failing at a new shape is broken
        return True
    if axis == 0:
        ref = sess.run(None, {k: v.numpy() for k, v in inputs.items()})[0]
        return got.shape != (2 * ref.shape[0], *ref.shape[1:]) or not all(
            np.allclose(h, ref, rtol=1e-3, atol=1e-4) for h in np.split(got, 2))
    want = call(make(case), big).numpy()
    return got.shape != want.shape or not np.allclose(got, want, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_broken_model_gives_its_finding(case: BrokenCase, exporter: str, exports) -> None:
    path = exports.broken(case, exporter)
    expected_op = case.torchscript if exporter == "torchscript" else case.dynamo
    assert _really_broken(case, path) == (expected_op is not None), "the corpus expectation disagrees with ONNX Runtime"
    report = check(path)
    found = [(f.op, f.symbol, f.value) for f in report.findings]
    if expected_op is None:
        assert found == [], f"the {exporter} export keeps '{case.symbol}' dynamic, yet: {report}"
        return
    assert (expected_op, case.symbol, case.value) in found, str(report)
    f = next(f for f in report.findings if (f.op, f.symbol) == (expected_op, case.symbol))
    assert f.input in case.dynamic_axes and f.dim in case.dynamic_axes[f.input]
    assert f.message and f.fix and f.source
    if exporter == "dynamo":
        assert "corpus.py:" in f.source  # the dynamo exporter's stack trace points at the user's line


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", CLEAN)
def test_clean_models_give_no_finding(name: str, exporter: str, exports) -> None:
    report = check(exports.clean(name, exporter))
    assert report.findings == [], str(report)
    assert "no dynamic dim is pinned" in str(report)
