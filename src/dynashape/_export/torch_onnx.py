"""``dynashape.export``: torch.nn.Module -> ONNX with dynamic axes, verified in ONNX Runtime."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _progress
from .._data import DataArg, Feed, Hints, feed_shapes, load_data, make_inputs, masked_rows, watch_embeddings
from .._deps import require
from .._errors import ExportError, ModelError
from .._io import PendingFile
from .._profiles import Profile, validate_profile
from .._reference import Tolerance, compare_outputs, module_reference, runtime_error_text
from .._specs import TensorSpec, dtype_name, format_shape, identifier
from .._torch_compat import exact_shape_arithmetic

Axes = dict[str, dict[int, str]]


@dataclass(frozen=True)
class VerifiedShape:
    shapes: dict[str, tuple[int, ...]]
    max_abs_diff: dict[str, float]


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export` wrote and how it was verified."""

    path: str
    exporter: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    verified: list[VerifiedShape] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"exported {self.path} ({self.exporter} exporter)"]
        lines += [f"  input  {s.name}: {s.dtype} {s.shape_text()}" for s in self.inputs]
        lines += [f"  output {s.name}: {s.dtype} {s.shape_text()}" for s in self.outputs]
        for v in self.verified:
            shp = ", ".join(f"{n}={format_shape(s)}" for n, s in v.shapes.items())
            diff = ", ".join(f"{n} {d:.2e}" for n, d in v.max_abs_diff.items())
            lines.append(f"  verified at {shp}: max |onnx - torch| {diff}")
        return "\n".join(lines)


def _normalize_axes(dynamic_axes: Mapping[str, Any] | None, names: Sequence[str], ranks: Mapping[str, int]) -> Axes:
    """``{"x": {0: "batch"}}`` or ``{"x": [0, 2]}`` -> ``{"x": {0: "batch"}, ...}`` for inputs only."""
    out: Axes = {}
    for name, spec in (dynamic_axes or {}).items():
        if name not in ranks:
            continue  # an output's axes: handled by the exporter or derived
        if isinstance(spec, Mapping):
            axes = {int(a): str(s) for a, s in spec.items()}
        else:
            axes = {int(a): f"{name}_dim{int(a)}" for a in spec}
        for a in axes:
            if not -ranks[name] <= a < ranks[name]:
                raise ModelError(
                    f"dynamic_axes gives input '{name}' axis {a}",
                    f"an axis of its rank-{ranks[name]} example input (0..{ranks[name] - 1})",
                )
        out[name] = {a % ranks[name]: s for a, s in axes.items()}
    return out  # names that are not inputs are checked against the outputs once those are known


def _symbol_values(axes: Axes, shapes: Mapping[str, Sequence[int]]) -> dict[str, int]:
    vals: dict[str, int] = {}
    for name, a in axes.items():
        for axis, sym in a.items():
            v = int(shapes[name][axis])
            if vals.setdefault(sym, v) != v:
                raise ModelError(
                    f"dim '{sym}' is {vals[sym]} in one example input and {v} in input '{name}' dim {axis}",
                    "inputs that share a dim name to have equal sizes in the example",
                )
    return vals


def _with_symbols(shapes: Mapping[str, Sequence[int]], axes: Axes, values: Mapping[str, int]) -> dict[str, tuple[int, ...]]:
    out = {}
    for name, shape in shapes.items():
        s = list(shape)
        for axis, sym in axes.get(name, {}).items():
            s[axis] = values[sym]
        out[name] = tuple(s)
    return out


def _changed(v: int) -> int:
    # NOTE: halve large dims (cheaper, keeps divisibility by 4 for strided nets) and double small ones
    # (1 -> 2, 3 -> 6 keep any divisibility the example had).
    return v // 2 if v > 64 and v % 4 == 0 else v * 2


def _verification_shapes(example: Mapping[str, tuple[int, ...]], axes: Axes, profile: Profile | None) -> list[dict[str, tuple[int, ...]]]:
    if profile is not None:
        seen: list[dict[str, tuple[int, ...]]] = []
        for which in ("min", "opt", "max"):
            s = {n: getattr(profile[n], which) for n in example}
            if s not in seen:
                seen.append(s)
        return seen
    base = _symbol_values(axes, example)
    shapes = [dict(example)]
    for sym in base:
        shapes.append(_with_symbols(example, axes, {**base, sym: _changed(base[sym])}))
    if len(base) > 1:
        shapes.append(_with_symbols(example, axes, {k: _changed(v) for k, v in base.items()}))
    return shapes


def _to_torch_inputs(torch: Any, arrays: Mapping[str, np.ndarray], examples: Sequence[Any], names: Sequence[str]) -> list[Any]:
    return [torch.from_numpy(np.ascontiguousarray(arrays[n])).to(ex.dtype) for n, ex in zip(names, examples, strict=True)]


def _derive_output_axes(torch: Any, adapter: Any, ref: Sequence[Any], specs: list[TensorSpec], names: list[str],
                        tensors: list[Any], example_shapes: dict[str, tuple[int, ...]], axes: Axes,
                        sym_example: Mapping[str, int], hints: Hints) -> list[dict[int, str]]:
    """Which output dims follow which input dim: change one dim name at a time and watch the outputs."""
    from .._torchio import flatten_outputs

    found: list[dict[int, str]] = [{} for _ in ref]
    for sym, v in sym_example.items():
        w = _changed(v)
        shapes = _with_symbols(example_shapes, axes, {**sym_example, sym: w})
        try:
            outs = flatten_outputs(adapter(*_to_torch_inputs(torch, make_inputs(specs, shapes, hints=hints), tensors, names)))
        except Exception as e:
            shape_text = ", ".join(f"{n}:{format_shape(x)}" for n, x in shapes.items())
            raise ExportError(
                f"the model itself raised {type(e).__name__} at {shape_text} ({_first_lines(e, 2)}), while export ran it "
                f"with dim '{sym}' = {w} instead of {v} to find which output dims follow it",
                f"a model that runs with '{sym}' changed, as its dynamic axes declare",
                f"fix the model for that size, pass dynamic_axes for the outputs too, or keep '{sym}' static",
            ) from e
        for i, (a, b) in enumerate(zip(ref, outs, strict=True)):
            for k, (x, y) in enumerate(zip(a.shape, b.shape, strict=True)):
                if x == y:
                    continue
                if (x, y) == (v, w):
                    name = sym
                elif v and x % v == 0 and y == w * (x // v):
                    name = f"{x // v}*{sym}"
                else:
                    name = f"output_{i}_dim{k}"
                # A dim that follows two input dims gets a name of its own.
                found[i][k] = name if k not in found[i] else f"output_{i}_dim{k}"
    return found



def _rename_dim_params(model: Any, mapping: Mapping[str, str]) -> None:
    if not mapping or all(k == v for k, v in mapping.items()):
        return
    pattern = re.compile(r"\b(" + "|".join(re.escape(k) for k in sorted(mapping, key=len, reverse=True)) + r")\b")
    for vi in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param"):
                d.dim_param = pattern.sub(lambda m: mapping[m.group(0)], d.dim_param)


def _export_torchscript(torch: Any, adapter: Any, args: tuple[Any, ...], tmp: str, names: list[str], out_names: list[str], axes: Mapping[str, Mapping[int, str]], opset: int | None) -> None:
    kwargs: dict[str, Any] = {"dynamo": False} if _has_dynamo_flag(torch) else {}
    try:
        with _native_stdout_to_log():
            torch.onnx.export(
                adapter, args, tmp, input_names=names, output_names=out_names,
                dynamic_axes={n: dict(a) for n, a in axes.items()}, opset_version=opset, **kwargs,
            )
    except Exception as e:
        text = _first_lines(e, 3)
        op = re.search(r"operator '?([\w:.]+)'? to ONNX opset version (\d+)", str(e))
        what = f"cannot export {op.group(1)} at opset {op.group(2)}" if op else f"failed ({type(e).__name__}: {text[:300]})"
        raise ExportError(
            f"the TorchScript exporter {what}",
            "a model that the TorchScript exporter can trace",
            "use the dynamo exporter (dynamo=True; on the CLI --exporter dynamo)",
        ) from e


@contextlib.contextmanager
def _native_stdout_to_log() -> Iterator[None]:
    """Send what C++ code prints to stdout (the TorchScript exporter prints its whole IR graph, some
    300 lines, when a symbolic fails) to the debug log instead of the user's terminal."""
    import sys
    import tempfile

    sys.stdout.flush()
    fd = 1  # C++ writes to the process's fd 1, whatever sys.stdout is now
    try:
        saved = os.dup(fd)
    except OSError:  # no fd 1 (a daemon): nothing reaches a terminal anyway
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, fd)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode(errors="replace")
            if text.strip():
                logging.getLogger("dynashape").debug("the TorchScript exporter printed:\n%s", text)


def _pin_static_output_dims(onnx: Any, path: str, out_names: list[str], ref: Sequence[Any], axes: Mapping[str, Mapping[int, str]]) -> None:
    """The TorchScript exporter names output dims it cannot infer (``Convoutput_1_dim_0``) even when
    they never change; write the value for every output dim that no input dim moved."""
    model = onnx.load(path)
    changed = False
    for vi in model.graph.output:
        if vi.name not in out_names:
            continue
        i = out_names.index(vi.name)
        for k, d in enumerate(vi.type.tensor_type.shape.dim):
            if k not in axes.get(vi.name, {}) and not d.HasField("dim_value") and k < ref[i].dim():
                d.dim_value = int(ref[i].shape[k])
                changed = True
    if changed:
        onnx.save(model, path)


def _has_dynamo_flag(torch: Any) -> bool:
    import inspect as _inspect

    return "dynamo" in _inspect.signature(torch.onnx.export).parameters


def _export_dynamo(torch: Any, adapter: Any, args: tuple[Any, ...], tmp: str, names: list[str], out_names: list[str], axes: Axes, profile: Profile | None, opset: int | None) -> None:
    require("onnxscript", "the dynamo ONNX exporter")
    Dim = torch.export.Dim
    dims: dict[str, Any] = {}
    for name, a in axes.items():
        for axis, sym in a.items():
            if sym in dims:
                continue
            lo, hi = 1, None
            if profile is not None:
                lo, _, hi = profile[name].dim(axis)
            # NOTE: torch.export rejects Dim(min=0/1) ranges only as *examples*; min 1 is a valid bound.
            dims[sym] = Dim(identifier(sym), min=max(lo, 1), max=hi) if hi is not None else Dim(identifier(sym), min=max(lo, 1))
    # NOTE: the dynamo exporter prints progress to stdout and logs warnings about optional
    # torchvision ops; neither concerns the user's model.
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            with exact_shape_arithmetic(torch):  # torch 2.11's pooling guards refuse H/W Dims (see _torch_compat)
                prog = _dynamo_export(torch, adapter, args, names, out_names, axes, dims, opset)
    finally:
        quiet.setLevel(level)
    model = prog.model_proto
    # The exporter names dims after our Dims, or s0, s1... after Dim.DYNAMIC: map both back.
    mapping = {}
    for vi in model.graph.input:
        for axis, sym in axes.get(vi.name, {}).items():
            d = vi.type.tensor_type.shape.dim[axis]
            if d.HasField("dim_param") and d.dim_param != sym:
                mapping[d.dim_param] = sym
    _rename_dim_params(model, mapping)
    onnx = require("onnx", "writing ONNX files")
    onnx.save(model, tmp)


def _dynamo_export(torch: Any, adapter: Any, args: tuple[Any, ...], names: list[str], out_names: list[str],
                   axes: Axes, dims: Mapping[str, Any], opset: int | None) -> Any:
    Dim = torch.export.Dim
    # NOTE: the adapter's forward takes *args, which torch.export packs into one tuple argument.
    shapes = tuple({axis: dims[sym] for axis, sym in axes.get(n, {}).items()} or None for n in names)
    try:
        return torch.onnx.export(adapter, args, None, input_names=names, output_names=out_names,
                                 dynamic_shapes=(shapes,), opset_version=opset, dynamo=True)
    except Exception as first:
        # NOTE: named Dims fail when the model constrains a dim (a multiple of 4, say); Dim.DYNAMIC
        # lets torch.export derive the relation, and the names are restored in the ONNX file below.
        try:
            auto = tuple({axis: Dim.DYNAMIC for axis in axes.get(n, {})} or None for n in names)
            return torch.onnx.export(adapter, args, None, input_names=names, output_names=out_names,
                                     dynamic_shapes=(auto,), opset_version=opset, dynamo=True)
        except Exception:
            raise ExportError(
                f"torch.export could not trace the model with dims {', '.join(sorted(dims))} dynamic: {_first_lines(first)}",
                "a model whose declared dynamic dims stay dynamic under torch.export",
                "apply the fix torch suggests, or use the TorchScript exporter (dynamo=False; on the CLI --exporter torchscript)",
            ) from first


def _first_lines(e: BaseException, n: int = 6) -> str:
    lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
    return " ".join(lines[:n])[:1500]


def _check_declared_dims(model: Any, axes: Axes, path: str) -> None:
    for vi in model.graph.input:
        for axis, sym in axes.get(vi.name, {}).items():
            d = vi.type.tensor_type.shape.dim[axis]
            if d.HasField("dim_value"):
                raise ExportError(
                    f"input '{vi.name}' dim {axis} ({sym}) was declared dynamic, but the exported graph fixes it to {d.dim_value}",
                    "the dim to stay symbolic in the ONNX graph",
                    f"the model specializes this dim (a reshape or size read as a constant); run `dynashape check {path}` on a dynamo=False export to find where",
                )


def _check_opset(torch: Any, opset: int | None, dynamo: bool) -> None:
    if opset is None:
        return
    try:
        from torch.onnx import _constants as c

        lo, hi = (18, int(c.ONNX_MAX_OPSET)) if dynamo else (int(c.ONNX_MIN_OPSET), int(c.ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET))
    except (ImportError, AttributeError):  # a torch without these constants: let the exporter judge
        return
    if isinstance(opset, bool) or not isinstance(opset, int) or not lo <= opset <= hi:
        other = "dynamo" if not dynamo else "TorchScript"
        raise ExportError(
            f"opset {opset!r} for the {'dynamo' if dynamo else 'TorchScript'} exporter",
            f"an opset in {lo}..{hi} (torch {torch.__version__})",
            f"pass --opset between {lo} and {hi}, leave it out for the exporter's default, or try the {other} exporter",
        )


def export(
    model: Any,
    example_inputs: Any,
    path: str | os.PathLike[str],
    *,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_axes: Mapping[str, Any] | None = None,
    profile: Profile | Mapping[str, Any] | None = None,
    dynamo: bool = False,
    opset: int | None = None,
    verify: bool = True,
    atol: float = 1e-4,
    rtol: float = 1e-4,
    data: DataArg | None = None,
    quiet: bool | None = None,
) -> ExportResult:
    """Export ``model`` to ONNX at ``path`` with dynamic axes, then verify it in ONNX Runtime.

    Args:
        model: a ``torch.nn.Module``; exported (and verified) in eval mode, its mode restored after.
        example_inputs: a tensor, a tuple of tensors, or a dict of input name -> tensor.
        input_names, output_names: None means the forward's parameter names / ``output`` or ``output_i``.
        dynamic_axes: per input, ``{axis: dim name}`` (or a list of axes). Output axes are derived when
            not given: dims that change with the inputs become dynamic, named after the input dim they follow.
        profile: a :class:`Profile`; when given, verification runs at its min, opt and max shapes.
        dynamo: use torch's dynamo exporter (``torch.export``) instead of the TorchScript-based one.
        verify: run ONNX Runtime at several shapes and compare with PyTorch (``atol``, ``rtol``) on
            representative data (see ``dynashape._data``), or on ``data``.
        data: the user's feeds for verification instead of generated ones: an ``.npz`` path,
            ``"file.py:function"``, a dict name -> array, or an iterable of such dicts.
        quiet: no progress lines on stderr (None: the process default, on).

    Raises:
        ExportError: the export failed, pinned a declared dynamic dim, or differs from PyTorch.
    """
    with _progress.scope(quiet):
        return _export(model, example_inputs, path, input_names=input_names, output_names=output_names,
                       dynamic_axes=dynamic_axes, profile=profile, dynamo=dynamo, opset=opset, verify=verify,
                       atol=atol, rtol=rtol, data=data)


def _export(model: Any, example_inputs: Any, path: str | os.PathLike[str], *, input_names: Sequence[str] | None,
            output_names: Sequence[str] | None, dynamic_axes: Mapping[str, Any] | None,
            profile: Profile | Mapping[str, Any] | None, dynamo: bool, opset: int | None, verify: bool,
            atol: float, rtol: float, data: DataArg | None) -> ExportResult:
    torch = require("torch", "exporting a PyTorch model")
    onnx = require("onnx", "exporting to ONNX")
    from .._torchio import IOAdapter, flatten_outputs, normalize_inputs, output_names_for

    if not isinstance(model, torch.nn.Module):
        raise ModelError(f"model of type {type(model).__name__}", "a torch.nn.Module")
    _check_opset(torch, opset, dynamo)
    names, tensors, by_kw = normalize_inputs(model, example_inputs, input_names)
    ranks = {n: t.dim() for n, t in zip(names, tensors, strict=True)}
    axes = _normalize_axes(dynamic_axes, names, ranks)
    example_shapes = {n: tuple(t.shape) for n, t in zip(names, tensors, strict=True)}
    specs = [
        TensorSpec(n, dtype_name(t.dtype), tuple(axes.get(n, {}).get(i, int(d)) for i, d in enumerate(t.shape)))
        for n, t in zip(names, tensors, strict=True)
    ]
    sym_example = _symbol_values(axes, example_shapes)
    if profile is not None:
        profile = validate_profile(profile if isinstance(profile, Profile) else Profile(profile), specs)
    feeds = load_data(data, specs) if data is not None else None
    adapter = IOAdapter(model, names, by_kw).eval()
    path = os.fspath(path)
    pending = PendingFile(path, what="ONNX file", error=ExportError)  # checks the path before any work
    tmp = pending.tmp
    was_training = model.training
    model.eval()
    exporter = "dynamo" if dynamo else "torchscript"
    try:
        with torch.no_grad(), _progress.warnings_summary("export"):
            with watch_embeddings(model, dict(zip(names, tensors, strict=True))) as watch:
                ref = flatten_outputs(adapter(*tensors))
            hints = watch.hints
            out_names = output_names_for(len(ref), output_names)
            bad = [n for n in (dynamic_axes or {}) if n not in ranks and n not in out_names]
            if bad:
                raise ModelError(
                    f"dynamic_axes names {bad}, which are neither inputs nor outputs",
                    f"inputs {names} or outputs {out_names}",
                )
            args = tuple(tensors)
            shown = type(getattr(model, "inner", model) if isinstance(model, IOAdapter) else model).__name__
            with _progress.stage(f"export: {shown} with the {exporter} exporter"):
                if dynamo:
                    # NOTE: torch.export specializes a dynamic dim whose example is 0 or 1; trace with 2 there.
                    grown = {s: max(v, 2) for s, v in sym_example.items()}
                    if grown != sym_example:
                        gshapes = _with_symbols(example_shapes, axes, grown)
                        args = tuple(_to_torch_inputs(torch, make_inputs(specs, gshapes, seed=1, hints=hints), tensors, names))
                    _export_dynamo(torch, adapter, args, tmp, names, out_names, axes, profile, opset)
                else:
                    all_axes: dict[str, dict[int, str]] = {n: dict(a) for n, a in axes.items()}
                    for o in out_names:
                        if o in (dynamic_axes or {}):
                            spec = dynamic_axes[o]  # type: ignore[index]
                            all_axes[o] = dict(spec) if isinstance(spec, Mapping) else {int(a): f"{o}_dim{a}" for a in spec}
                    derive = [i for i, o in enumerate(out_names) if o not in all_axes]
                    if derive and sym_example:
                        derived = _derive_output_axes(torch, adapter, ref, specs, names, tensors, example_shapes, axes, sym_example, hints)
                        for i in derive:
                            if derived[i]:
                                all_axes[out_names[i]] = {k: n.replace(f"output_{i}_", f"{out_names[i]}_") for k, n in derived[i].items()}
                    _export_torchscript(torch, adapter, args, tmp, names, out_names, all_axes, opset)
                    _pin_static_output_dims(onnx, tmp, out_names, ref, all_axes)
            proto = onnx.load(tmp)
            _check_declared_dims(proto, axes, path)
            verified: list[VerifiedShape] = []
            if verify:
                if feeds is None:
                    shape_sets = _verification_shapes(example_shapes, axes, profile)
                    feeds = [make_inputs(specs, s, seed=100 + i, hints=hints) for i, s in enumerate(shape_sets)]
                with _progress.stage(f"export: verifying in ONNX Runtime at {len(feeds)} shape set(s)"):
                    verified = _verify(adapter, tmp, specs, [t.dtype for t in tensors], out_names, feeds, hints, atol, rtol)
            inputs, outputs = _io(proto)
        pending.commit()
    finally:
        model.train(was_training)
        pending.discard()
    return ExportResult(path, exporter, inputs, outputs, verified)


def _io(proto: Any) -> tuple[list[TensorSpec], list[TensorSpec]]:
    from ..onnx.model import io_specs

    return io_specs(proto)


def _verify(adapter: Any, onnx_path: str, specs: list[TensorSpec], dtypes: list[Any], out_names: list[str],
            feeds: Sequence[Feed], hints: Hints, atol: float, rtol: float) -> list[VerifiedShape]:
    ort = require("onnxruntime", "verifying the ONNX export")
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    names = [s.name for s in specs]
    reference = module_reference(adapter, names, input_dtypes=dtypes, hints=hints)
    tol = Tolerance(atol, rtol)
    results = []
    for arrays in feeds:
        shapes = feed_shapes(arrays)
        shape_text = ", ".join(f"{n}:{format_shape(s)}" for n, s in shapes.items())
        try:
            expected = reference(arrays)
        except Exception as e:
            raise ExportError(
                f"the model itself raised {type(e).__name__} in PyTorch at {shape_text}: {_first_lines(e, 2)}",
                "a model that runs at every shape it is verified at",
                "fix the model for these shapes, or verify within the sizes it supports (profile=... / --minShapes ...)",
            ) from e
        try:
            got = sess.run(out_names, {n: arrays[n] for n in names})
        except Exception as e:
            raise ExportError(
                f"the exported model fails in ONNX Runtime at {shape_text}: {runtime_error_text(e)}",
                "the ONNX model to run at every shape its dynamic axes allow",
                f"a layer keeps a shape from the export; run `dynashape check {onnx_path}` to find it "
                "(look for view(1, -1), sizes read as Python ints, interpolate(size=...))",
            ) from e
        diffs = {}
        undefined = masked_rows(arrays, specs, hints)
        for d in compare_outputs(out_names, got, expected, tol, undefined_rows=undefined):
            if d.shape_mismatch:
                raise ExportError(
                    f"at {shape_text} output '{d.output}' has {d.shape_mismatch} (ONNX Runtime vs PyTorch)",
                    "equal shapes",
                    "the graph pinned a dim; run `dynashape check` on the exported file to find where",
                )
            if not d.passed:
                left = f" ({d.excluded} undefined values left out: {d.excluded_why})" if d.excluded else ""
                raise ExportError(
                    f"at {shape_text} output '{d.output}' differs from PyTorch: max abs diff {d.max_abs:.3g}, max rel diff {d.max_rel:.3g}{left}",
                    f"|onnx - torch| <= {atol} + {rtol} * |torch|",
                    "a dim pinned at export silently changes results at other shapes; run `dynashape check` on the file",
                )
            diffs[d.output] = d.max_abs
        results.append(VerifiedShape(dict(shapes), diffs))
    return results


__all__ = ["ExportResult", "VerifiedShape", "export"]
