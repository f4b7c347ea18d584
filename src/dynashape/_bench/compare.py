"""Run the same inputs through an engine and a reference (ONNX Runtime or PyTorch) and compare."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._data import allclose, make_inputs, max_diffs
from .._deps import require
from .._errors import DynashapeError
from .._limits import check_number
from .._specs import format_shape


@dataclass(frozen=True)
class OutputDiff:
    output: str
    max_abs: float
    max_rel: float
    passed: bool
    shape_mismatch: str | None = None


@dataclass(frozen=True)
class CompareRow:
    shapes: dict[str, tuple[int, ...]]
    profile: int
    diffs: list[OutputDiff]


@dataclass(frozen=True)
class CompareResult:
    reference: str
    atol: float
    rtol: float
    rows: list[CompareRow] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(d.passed for r in self.rows for d in r.diffs)

    def __str__(self) -> str:
        lines = [f"engine vs {self.reference} (pass: |engine - ref| <= {self.atol} + {self.rtol} * |ref| everywhere)"]
        lines.append(f"{'shapes':<36} {'profile':>7} {'output':<16} {'max abs':>10} {'max rel':>10}  result")
        for r in self.rows:
            shp = ",".join(f"{n}:{format_shape(s)}" for n, s in r.shapes.items())
            for d in r.diffs:
                res = "PASS" if d.passed else ("FAIL " + (d.shape_mismatch or ""))
                lines.append(f"{shp:<36} {r.profile:>7} {d.output:<16} {d.max_abs:>10.3g} {d.max_rel:>10.3g}  {res}")
        lines.append("PASSED" if self.passed else "FAILED")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"reference": self.reference, "atol": self.atol, "rtol": self.rtol, "passed": self.passed,
                "rows": [{"shapes": {n: list(s) for n, s in r.shapes.items()}, "profile": r.profile,
                          "outputs": [d.__dict__ for d in r.diffs]} for r in self.rows]}


def _reference_fn(engine: Any, reference: Any) -> tuple[str, Any]:
    """A function numpy inputs -> list of numpy outputs in the engine's output order."""
    from .._builder import postprocess

    ops = engine.manifest.build_settings.append_ops
    out_names = [o.name for o in engine.outputs]
    if isinstance(reference, (str, os.PathLike)) or type(reference).__name__ == "ModelProto":
        ort = require("onnxruntime", "comparing with an ONNX reference")
        from ..onnx.model import io_specs, load_model

        model = load_model(reference)
        names = [o.name for o in io_specs(model)[1]]
        missing = [o for o in out_names if o not in names]
        if missing:
            raise DynashapeError(f"the reference model has no output(s) {missing}", f"the engine's outputs {out_names}", "compare against the ONNX file the engine was built from")
        ref_in = {s.name: s for s in io_specs(model)[0]}
        eng_in = {s.name: s for s in engine.inputs}
        if set(ref_in) != set(eng_in) or any(ref_in[n].dtype != eng_in[n].dtype for n in eng_in):
            text = ", ".join(f"{s.name} ({s.dtype})" for s in ref_in.values())
            raise DynashapeError(
                f"the reference model's inputs are {text or 'none'}",
                "the engine's inputs: " + ", ".join(f"{s.name} ({s.dtype})" for s in eng_in.values()),
                "compare against the ONNX file the engine was built from",
            )
        if ops:
            model = postprocess.apply_onnx(model, ops)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        label = f"ONNX Runtime ({os.fspath(reference) if not hasattr(reference, 'graph') else 'model'})"
        return label, lambda feed: sess.run(out_names, feed)
    torch = require("torch", "comparing with a PyTorch reference")
    if not isinstance(reference, torch.nn.Module):
        raise DynashapeError(f"reference of type {type(reference).__name__}", "an ONNX path, an onnx.ModelProto or a torch.nn.Module")
    from .._torchio import flatten_outputs, forward_params

    params = forward_params(reference)
    in_names = [s.name for s in engine.inputs]
    by_kw = all(n in params for n in in_names)
    post = {i: postprocess.torch_fn(op) for i, o in enumerate(out_names) for name, op in ops if name == o}

    def run(feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        args = [torch.from_numpy(np.ascontiguousarray(feed[n])) for n in in_names]
        with torch.no_grad():
            outs = flatten_outputs(reference.eval()(**dict(zip(in_names, args, strict=True))) if by_kw else reference.eval()(*args))
        return [(post[i](o) if i in post else o).detach().cpu().numpy() for i, o in enumerate(outs)]

    return f"PyTorch eager ({type(reference).__name__})", run


def compare(
    engine: Any,
    reference: Any,
    shapes: Sequence[Mapping[str, Sequence[int]]] | None = None,
    *,
    atol: float = 1e-4,
    rtol: float = 1e-4,
    inputs: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> CompareResult:
    """Compare ``engine`` with ``reference`` (an ONNX path/proto, run in ONNX Runtime, or a torch module).

    ``shapes`` None means every profile's min, opt and max. The engine's appended ops are applied to
    the reference too.
    """
    check_number(atol, "atol")
    check_number(rtol, "rtol")
    label, ref = _reference_fn(engine, reference)
    if inputs is not None:
        sets: list[dict[str, Any]] = [dict(inputs)]
    else:
        if shapes is None:
            shapes = [{n: getattr(r, w) for n, r in p.items()} for p in engine.profiles for w in ("min", "opt", "max")]
        for s in shapes:
            engine.select_profile(s)  # names and ranges checked before anything is allocated
        sets = [make_inputs(engine.inputs, s, seed=seed + i) for i, s in enumerate(shapes)]
    rows = []
    for feed in sets:
        shp = {n: tuple(np.shape(x)) for n, x in feed.items()}
        k = engine.select_profile(shp)
        got = engine.run(feed)
        expected = ref(feed)
        diffs = []
        for o, e in zip(engine.outputs, expected, strict=True):
            g = np.asarray(got[o.name])
            if g.shape != e.shape:
                diffs.append(OutputDiff(o.name, float("inf"), float("inf"), False, f"shape {format_shape(g.shape)} vs {format_shape(e.shape)}"))
                continue
            a, r = max_diffs(g, e)
            ok = allclose(g, e, atol=atol, rtol=rtol)
            diffs.append(OutputDiff(o.name, a, r, ok))
        rows.append(CompareRow(shp, k, diffs))
    return CompareResult(label, atol, rtol, rows)
