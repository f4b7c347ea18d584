"""Run ONNX's backend node tests against the importer (used by ``scripts/onnx_conformance.py`` and tests).

The ``onnx`` wheel ships the node test *generators* (``onnx.backend.test.case.node``), not always the
``data/node`` protobuf files; :func:`node_tests` builds the same cases in memory (about 10 s).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import onnx
import torch

from ..._errors import UnsupportedOpError
from . import registry, to_torch
from .graph import DTYPES, numpy_to_torch, torch_to_numpy

# The ops the issue names as core: what the torch exporters emit for common CNNs and transformers.
CORE_OPS: tuple[str, ...] = (
    "Conv", "ConvTranspose", "MatMul", "Gemm",
    "Add", "Sub", "Mul", "Div", "Pow", "Neg", "Abs", "Sqrt", "Exp", "Log", "Reciprocal", "Relu", "Sigmoid",
    "Tanh", "LeakyRelu", "Clip", "Floor", "Ceil", "Equal", "Less", "Greater", "Not", "And", "Or", "Min",
    "Max", "Sum", "Mean",
    "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2",
    "Softmax", "LogSoftmax", "LayerNormalization", "BatchNormalization",
    "Reshape", "Transpose", "Split", "Slice", "Gather", "Concat", "Shape", "Expand", "Resize", "Pad", "Where",
    "Cast", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Erf", "Gelu", "Range",
    "ConstantOfShape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Constant", "Tile", "Trilu",
)

# NOTE: onnx's runner uses rtol=1e-3, atol=1e-7; an absolute floor of 1e-6 keeps float32 results that
# differ only by accumulation order (values near zero) from failing, without hiding real errors.
ATOL_FLOOR = 1e-6


@dataclass
class Result:
    name: str
    op: str
    status: str  # "pass" | "fail" | "skip"
    reason: str = ""


@dataclass
class OpRow:
    op: str
    tests: int = 0
    passed: int = 0
    failed: list[str] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)


def node_tests(ops: Iterable[str] | None = None) -> list[Any]:
    """ONNX node test cases (``onnx.backend.test.case.TestCase``), optionally for some ops only."""
    from onnx.backend.test.case import node

    cases = list(node.collect_testcases(None))
    if ops is None:
        return cases
    wanted = set(ops)
    return [c for c in cases if op_of(c) in wanted]


def _snake(op: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", op).lower()


def op_of(case: Any) -> str:
    """The op a test exercises: its single op, or the op its name starts with (``_expanded`` tests)."""
    types = {n.op_type for n in case.model.graph.node}
    if len(types) == 1:
        return next(iter(types))
    name = case.name[len("test_") :]
    best = ""
    for op in onnx.defs.get_all_schemas():
        s = _snake(op.name)
        if (name == s or name.startswith(s + "_")) and len(s) > len(best):
            best, found = s, op.name
    return found if best else "(composite)"


def _as_array(v: Any) -> np.ndarray | None:
    """A test input/output as a numpy array, or ``None`` when the importer has no torch dtype for it."""
    if isinstance(v, onnx.TensorProto):
        if v.data_type not in DTYPES:
            return None
        v = onnx.numpy_helper.to_array(v)
    if isinstance(v, np.generic):  # a rank-0 tensor given as a numpy scalar
        v = np.asarray(v)
    if not isinstance(v, np.ndarray):
        return None
    if v.dtype.kind in "biuf" and v.dtype.type.__module__ == "numpy":
        return v
    try:  # bfloat16 and float8 (ml_dtypes) where torch has the same type
        numpy_to_torch(v.reshape(-1)[:0])
    except TypeError:
        return None
    return v


def run_case(case: Any, *, export: bool = False) -> Result:
    """Import and run one node test eagerly (or through ``torch.export`` with static shapes)."""
    op = op_of(case)
    inputs, expected = case.data_sets[0]
    arrays = [_as_array(v) for v in inputs]
    wants = [_as_array(v) for v in expected]
    if any(a is None for a in arrays) or any(w is None for w in wants):
        return Result(case.name, op, "skip", "non-tensor data or a dtype torch lacks (sequence, optional, string, int4/int2, float4, float8e8m0)")
    if not registry.known("", op) and op != "(composite)":
        return Result(case.name, op, "skip", "op not implemented by the importer")
    present = cast(list[np.ndarray], arrays)  # None entries were skipped above
    model = case.model
    if export:
        # NOTE: in a real model, weights, scales, shapes, axes and indices are initializers or shape
        # arithmetic, not graph inputs; freezing all inputs but the first makes the sample test what models do.
        model, present = _freeze_inputs(model, present)
    try:
        gm = to_torch(model)
    except UnsupportedOpError as e:
        return Result(case.name, op, "skip", f"refused at import: {e.received}")
    args = tuple(numpy_to_torch(a) for a in present)
    try:
        with torch.no_grad():
            if export:
                gm = torch.export.export(gm, args, strict=False).module()
            got = gm(*args)
    except Exception as e:  # any failure of the converted graph is a test failure, reported with its type
        return Result(case.name, op, "fail", f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}")
    return _compare(case, op, got, wants)  # type: ignore[arg-type]


def _freeze_inputs(model: onnx.ModelProto, arrays: list[np.ndarray]) -> tuple[onnx.ModelProto, list[np.ndarray]]:
    frozen = onnx.ModelProto()
    frozen.CopyFrom(model)
    keep_inputs: list[Any] = []
    keep_arrays: list[np.ndarray] = []
    for vi, a in zip(model.graph.input, arrays, strict=False):
        if keep_inputs:
            frozen.graph.initializer.append(onnx.numpy_helper.from_array(a, vi.name))
        else:
            keep_inputs.append(vi)
            keep_arrays.append(a)
    del frozen.graph.input[:]
    frozen.graph.input.extend(keep_inputs)
    return frozen, keep_arrays


def _compare(case: Any, op: str, got: tuple[torch.Tensor, ...], wants: list[np.ndarray]) -> Result:
    if len(got) != len(wants):
        return Result(case.name, op, "fail", f"{len(got)} outputs, expected {len(wants)}")
    for i, (g, w) in enumerate(zip(got, wants, strict=False)):
        want_dtype = numpy_to_torch(np.empty(0, dtype=w.dtype)).dtype
        if g.dtype != want_dtype:
            return Result(case.name, op, "fail", f"output {i} dtype {g.dtype}, expected {want_dtype}")
        if tuple(g.shape) != w.shape:
            return Result(case.name, op, "fail", f"output {i} shape {tuple(g.shape)}, expected {w.shape}")
        got_np = torch_to_numpy(g)
        if w.dtype.type.__module__ != "numpy":
            # bfloat16/float8: compared as float32, which holds their values exactly
            got_np, w = got_np.astype(np.float32), w.astype(np.float32)
        try:
            np.testing.assert_allclose(got_np, w, rtol=case.rtol, atol=max(case.atol, ATOL_FLOOR), equal_nan=True)
        except AssertionError:
            diff = np.abs(got_np.astype(np.float64) - w.astype(np.float64))
            return Result(case.name, op, "fail", f"output {i} differs (max abs diff {np.nanmax(diff):.3g})")
    return Result(case.name, op, "pass")


def run_all(cases: list[Any]) -> list[Result]:
    return [run_case(c) for c in cases]


def table(results: list[Result]) -> dict[str, OpRow]:
    rows: dict[str, OpRow] = {}
    for r in results:
        row = rows.setdefault(r.op, OpRow(r.op))
        row.tests += 1
        if r.status == "pass":
            row.passed += 1
        elif r.status == "fail":
            row.failed.append(f"{r.name}: {r.reason}")
        else:
            row.skipped.setdefault(r.reason, []).append(r.name)
    return rows


def render(rows: dict[str, OpRow], *, samples: list[Result], seconds: float) -> str:
    """The markdown of docs/onnx_coverage.md."""
    claimed = {op for op in rows if registry.known("", op)}
    core = [rows[op] for op in CORE_OPS if op in rows]

    def rate(rs: list[OpRow]) -> str:
        tests = sum(r.tests for r in rs)
        passed = sum(r.passed for r in rs)
        runnable = tests - sum(len(v) for r in rs for k, v in r.skipped.items() if k.startswith("non-tensor"))
        return f"{passed}/{tests} ({100 * passed / max(tests, 1):.1f}%; {100 * passed / max(runnable, 1):.1f}% of the {runnable} with numeric tensor data)"

    lines = [
        "# ONNX node-test coverage of the ONNX -> PyTorch importer",
        "",
        f"Generated by `python scripts/onnx_conformance.py` (onnx {onnx.__version__}, torch {torch.__version__}, "
        f"{seconds:.0f} s). Each test of `onnx.backend.test.case.node` (the cases behind "
        "`onnx/backend/test/data/node`) is imported with `dynashape.onnx.to_torch` and run eagerly; outputs must "
        f"match in dtype, shape and value (rtol 1e-3, atol max(test atol, {ATOL_FLOOR:g})).",
        "",
        f"- core ops ({len(core)} ops the torch exporters emit): **{rate(core)}**",
        f"- all ops the importer claims ({len(claimed)}): **{rate([rows[o] for o in sorted(claimed)])}**",
        f"- all node tests: {rate(list(rows.values()))}",
        "",
    ]
    if samples:
        ok = sum(s.status == "pass" for s in samples)
        lines += [f"Sample through `torch.export` (static shapes): {ok}/{len(samples)} pass."]
        lines += [f"- {s.name}: {s.reason}" for s in samples if s.status != "pass"]
        lines += [""]
    lines += ["## Per op", "", "| op | core | tests | passed | skipped | failed |", "|---|---|---|---|---|---|"]
    for op in sorted(rows, key=lambda o: (o not in CORE_OPS, o not in claimed, o)):
        r = rows[op]
        nskip = sum(len(v) for v in r.skipped.values())
        lines.append(f"| {op} | {'yes' if op in CORE_OPS else ''} | {r.tests} | {r.passed} | {nskip} | {len(r.failed)} |")
    lines += ["", "## Skip list (one reason per line)", ""]
    for op in sorted(rows):
        for reason, names in sorted(rows[op].skipped.items()):
            lines.append(f"- {op} ({len(names)}: {', '.join(names[:4])}{', ...' if len(names) > 4 else ''}): {reason}")
    lines += ["", "## Failures", ""]
    for op in sorted(rows):
        lines += [f"- {op}: {f}" for f in rows[op].failed]
    return "\n".join(lines) + "\n"


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t
