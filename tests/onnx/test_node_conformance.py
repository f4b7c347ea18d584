"""ONNX backend node tests of the core ops (the ones the torch exporters emit), run through the importer.

The full survey, every op, is ``scripts/onnx_conformance.py`` (it writes docs/onnx_coverage.md).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from dynashape.onnx import to_torch  # noqa: E402
from dynashape.onnx.importer import conformance as conf  # noqa: E402

# NOTE: refusals that are deliberate (the importer says so at import): each has its reason in docs/onnx_coverage.md.
# "op Loop": Range's _expanded tests (rank-0 inputs, runnable since numpy scalars convert) decompose Range into
# a Loop, and control flow is refused by design (subgraph attributes raise UnsupportedOpError).
ALLOWED_REFUSALS = ("training_mode (random output)", "antialias=1", "opset 28", "op Loop ")


@pytest.fixture(scope="module")
def core_cases() -> dict[str, list[Any]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = conf.node_tests(conf.CORE_OPS)
    by_op: dict[str, list[Any]] = {}
    for c in cases:
        by_op.setdefault(conf.op_of(c), []).append(c)
    return by_op


@pytest.mark.parametrize("op", conf.CORE_OPS)
def test_core_op_node_tests(op: str, core_cases: dict[str, list[Any]]) -> None:
    cases = core_cases.get(op, [])
    if not cases:
        pytest.skip(f"onnx {conf.onnx.__version__} has no node test for {op}")
    bad = []
    for case in cases:
        r = conf.run_case(case)
        if r.status == "fail" or (r.status == "skip" and r.reason.startswith("refused")
                                  and not any(a in r.reason for a in ALLOWED_REFUSALS)):
            bad.append(f"{r.name}: {r.reason}")
    assert not bad, "\n".join(bad)


def test_export_sample(core_cases: dict[str, list[Any]]) -> None:
    """One passing test of each of a few core ops also runs through torch.export."""
    for op in ("Conv", "Resize", "Slice", "Reshape", "Split", "LayerNormalization"):
        case = next(c for c in core_cases[op] if conf.run_case(c).status == "pass")
        r = conf.run_case(case, export=True)
        assert r.status == "pass", f"{r.name}: {r.reason}"


@pytest.mark.slow
def test_aoti_sample(core_cases: dict[str, list[Any]], tmp_path: Any) -> None:
    """One AOTInductor compile of a node test (ConvTranspose with explicit output_shape)."""
    case = next(c for c in core_cases["ConvTranspose"] if c.name == "test_convtranspose_output_shape")
    inputs, expected = case.data_sets[0]
    args = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in inputs)
    program = torch.export.export(to_torch(case.model), args, strict=False)
    package = torch._inductor.aoti_compile_and_package(program, package_path=os.path.join(tmp_path, "m.pt2"))
    got = torch._inductor.aoti_load_package(package)(*args)
    np.testing.assert_allclose(got[0].numpy(), expected[0], rtol=1e-3, atol=1e-5)
