"""Run the same inputs through an engine and a reference (ONNX Runtime or PyTorch) and compare."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _progress
from .._data import DataArg, feed_shapes, load_data, make_inputs, masked_rows
from .._deps import require
from .._errors import DynashapeError
from .._limits import check_number
from .._reference import OutputDiff, Reference, Tolerance, compare_outputs, module_reference, onnx_reference
from .._specs import format_shape


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
                if d.excluded:
                    res += f" ({d.excluded} undefined values left out: {d.excluded_why})"
                lines.append(f"{shp:<36} {r.profile:>7} {d.output:<16} {d.max_abs:>10.3g} {d.max_rel:>10.3g}  {res}")
        lines.append("PASSED" if self.passed else "FAILED")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"reference": self.reference, "atol": self.atol, "rtol": self.rtol, "passed": self.passed,
                "rows": [{"shapes": {n: list(s) for n, s in r.shapes.items()}, "profile": r.profile,
                          "outputs": [d.__dict__ for d in r.diffs]} for r in self.rows]}


def reference_for(engine: Any, reference: Any) -> Reference:
    """The reference runner for ``reference`` (an ONNX path or proto, or a torch module), outputs in
    the engine's order, with the engine's appended ops applied."""
    from .._builder import postprocess

    ops = engine.manifest.build_settings.append_ops
    out_names = [o.name for o in engine.outputs]
    in_names = [s.name for s in engine.inputs]
    if isinstance(reference, (str, os.PathLike)) or type(reference).__name__ == "ModelProto":
        from ..onnx.model import io_specs, load_model

        model = load_model(reference)
        ins, outs = io_specs(model)
        names = [o.name for o in outs]
        missing = [o for o in out_names if o not in names]
        if missing:
            raise DynashapeError(f"the reference model has no output(s) {missing}", f"the engine's outputs {out_names}", "compare against the ONNX file the engine was built from")
        ref_in = {s.name: s for s in ins}
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
        label = f"ONNX Runtime ({os.fspath(reference) if not hasattr(reference, 'graph') else 'model'})"
        return onnx_reference(model, out_names, label=label)
    torch = require("torch", "comparing with a PyTorch reference")
    if not isinstance(reference, torch.nn.Module):
        raise DynashapeError(f"reference of type {type(reference).__name__}", "an ONNX path, an onnx.ModelProto or a torch.nn.Module")
    from .._torchio import forward_params

    params = forward_params(reference)
    by_kw = all(n in params for n in in_names)
    post = {i: postprocess.torch_fn(op) for i, o in enumerate(out_names) for name, op in ops if name == o}
    return module_reference(reference, in_names, by_keyword=by_kw, post_ops=post,
                            label=f"PyTorch eager ({type(reference).__name__})")


def compare(
    engine: Any,
    reference: Any,
    shapes: Sequence[Mapping[str, Sequence[int]]] | None = None,
    *,
    atol: float = 1e-4,
    rtol: float = 1e-4,
    inputs: Mapping[str, Any] | None = None,
    data: DataArg | None = None,
    seed: int = 0,
    quiet: bool | None = None,
) -> CompareResult:
    """Compare ``engine`` with ``reference`` (an ONNX path/proto, run in ONNX Runtime, or a torch module).

    ``shapes`` None means every profile's min, opt and max, with representative generated data
    (ids within the reference's vocabulary, masks without fully masked rows). ``inputs`` (one feed)
    or ``data`` (an ``.npz`` path, ``"file.py:function"``, or an iterable of feeds) replace the
    generated data. The engine's appended ops are applied to the reference too. Values the
    reference leaves undefined (non-finite, fully masked rows) are left out and counted.
    """
    check_number(atol, "atol")
    check_number(rtol, "rtol")
    with _progress.scope(quiet):
        ref = reference_for(engine, reference)
        if inputs is not None or data is not None:
            sets = load_data(inputs if inputs is not None else data, engine.inputs)  # type: ignore[arg-type]
        else:
            if shapes is None:
                shapes = [{n: getattr(r, w) for n, r in p.items()} for p in engine.profiles for w in ("min", "opt", "max")]
            for s in shapes:
                engine.select_profile(s)  # names and ranges checked before anything is allocated
            hints = ref.hints or engine.manifest.input_hints
            sets = [make_inputs(engine.inputs, s, seed=seed + i, hints=hints) for i, s in enumerate(shapes)]
        tol = Tolerance(atol, rtol)
        out_names = [o.name for o in engine.outputs]
        rows = []
        with _progress.stage(f"compare: engine vs {ref.label} at {len(sets)} shape set(s)"):
            for feed in sets:
                shp = feed_shapes(feed)
                k = engine.select_profile(shp)
                got = engine.run(feed)
                expected = ref(feed)
                diffs = compare_outputs(out_names, [np.asarray(got[o]) for o in out_names], expected, tol,
                                        undefined_rows=masked_rows(feed, engine.inputs, ref.hints or engine.manifest.input_hints))
                rows.append(CompareRow(shp, k, diffs))
        return CompareResult(ref.label, atol, rtol, rows)
