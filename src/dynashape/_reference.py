"""The reference runner and the comparator: what export verification, build validation and compare
hold an engine (or an exported file) against.

A :class:`Reference` runs the source model on numpy feeds and returns its outputs in order: an ONNX
model in ONNX Runtime on the CPU, or a torch module in eager PyTorch, on a chosen device and in a
chosen precision (so that a reduced-precision engine is judged against the source in the same
precision). :func:`compare_outputs` is the one comparison rule; it leaves out values the reference
leaves undefined (non-finite values, rows whose mask masks every position) and says how many.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._data import Hints
from ._deps import require
from ._dtypes import module_to

_ORT_NODE = re.compile(r"running (\w+) node\. Name:'([^']*)'")


def runtime_error_text(e: BaseException) -> str:
    """One line from a runtime's exception, naming the node where ONNX Runtime names one:
    ``node '/embeddings/Add' (Add): <message>``."""
    from ._errors import DynashapeError

    # NOTE: Engine.run words a runtime's failure as a DynashapeError for its callers; the runtime's
    # own message (with the node) is its cause.
    while isinstance(e, DynashapeError) and e.__cause__ is not None:
        e = e.__cause__
    text = " ".join(str(e).split())
    m = _ORT_NODE.search(text)
    if m is not None:
        op, node = m.group(1), m.group(2)
        msg = text.split("Status Message:", 1)[-1].strip() if "Status Message:" in text else text
        return f"node '{node}' ({op}): {msg[:400]}"
    return f"{type(e).__name__}: {text[:500]}"


class Reference:
    """The source model as a function: numpy feed -> list of numpy outputs in the engine's output order."""

    def __init__(self, label: str, fn: Callable[[Mapping[str, np.ndarray]], list[np.ndarray]], *, hints: Hints | None = None) -> None:
        self.label = label
        self._fn = fn
        self.hints: Hints = dict(hints or {})

    def __call__(self, feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return self._fn(feed)


def onnx_reference(model: Any, out_names: Sequence[str], *, label: str | None = None) -> Reference:
    """``model`` (an ``onnx.ModelProto``) in ONNX Runtime on the CPU, in fp32 as the file says."""
    ort = require("onnxruntime", "running the ONNX reference")
    from ._data import hints_from_onnx

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = list(out_names)
    in_names = [i.name for i in sess.get_inputs()]

    def run(feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return list(sess.run(names, {n: feed[n] for n in in_names}))

    return Reference(label or "ONNX Runtime (CPU, fp32)", run, hints=hints_from_onnx(model))


_COMPUTE = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def module_reference(
    module: Any,
    in_names: Sequence[str],
    *,
    by_keyword: bool = False,
    post_ops: Mapping[int, Callable[[Any], Any]] | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    label: str | None = None,
    hints: Hints | None = None,
    input_dtypes: Sequence[Any] | None = None,
    no_tf32: bool = False,
) -> Reference:
    """``module`` in eager PyTorch on ``device`` in ``precision``: float inputs are cast to the
    compute dtype, float outputs come back as float32 (numpy has no bfloat16).

    NOTE: a module moved to another device or dtype is a copy (``Module.to`` converts in place and
    the caller's model must stay as it was).

    ``no_tf32``: on CUDA, each call runs with TF32 off for matmuls and convolutions (true fp32, as the
    CPU computes), and the process's switches are restored after it.
    """
    torch = require("torch", "running the PyTorch reference")
    from ._torchio import flatten_outputs

    compute = getattr(torch, _COMPUTE[precision])
    mod = module.eval()
    if device != "cpu" or compute != torch.float32:
        mod = module_to(copy.deepcopy(mod).to(device), compute)
    names = list(in_names)
    post = dict(post_ops or {})
    # The dtypes the module takes (torch dtypes; None: as fed): bfloat16 inputs travel as float32.
    dtypes = list(input_dtypes) if input_dtypes is not None else [None] * len(names)

    def run(feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        args = []
        for n, dt in zip(names, dtypes, strict=True):
            t = torch.from_numpy(np.ascontiguousarray(feed[n]))
            if dt is not None and t.dtype != dt:
                t = t.to(dt)
            if t.is_floating_point() and compute != torch.float32 and t.dtype != compute:
                t = t.to(compute)
            args.append(t.to(device))
        saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        if no_tf32:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        try:
            with torch.no_grad(), torch.device(device):
                out = mod(**dict(zip(names, args, strict=True))) if by_keyword else mod(*args)
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
        flat = flatten_outputs(out)
        res = []
        for i, o in enumerate(flat):
            if i in post:
                o = post[i](o)
            o = o.detach().cpu()
            res.append((o.float() if o.is_floating_point() else o).numpy())
        return res

    text = label or f"PyTorch eager ({type(module).__name__}, {device}, {precision})"
    return Reference(text, run, hints=hints)


# -- comparison --------------------------------------------------------------------------------------

def max_diffs(actual: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    """(largest absolute difference, largest relative difference) in float64."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.size == 0:
        return 0.0, 0.0
    diff = np.abs(a - e)
    rel = diff / np.maximum(np.abs(e), 1e-12)
    return float(np.nanmax(diff)) if np.isfinite(diff).any() else float("inf"), float(np.nanmax(rel)) if np.isfinite(rel).any() else float("inf")


@dataclass(frozen=True)
class OutputDiff:
    """How one output compared: its largest differences over the defined values, and the verdict."""

    output: str
    max_abs: float
    max_rel: float
    passed: bool
    shape_mismatch: str | None = None
    #: values left out because the reference leaves them undefined, and why.
    excluded: int = 0
    excluded_why: str = ""
    bound: str = ""


@dataclass(frozen=True)
class Tolerance:
    """``elementwise``: |got - ref| <= atol + rtol * |ref| per value; else judged against the
    output's scale: |got - ref| <= atol + rtol * max|ref| (see validate.TOLERANCE for why)."""

    atol: float
    rtol: float
    elementwise: bool = True


def compare_outputs(
    names: Sequence[str],
    got: Sequence[Any],
    expected: Sequence[Any],
    tol: Tolerance,
    *,
    undefined_rows: set[int] | None = None,
) -> list[OutputDiff]:
    """Compare output by output. Values the reference leaves undefined are left out and counted:
    non-finite reference values, and the rows (axis 0) in ``undefined_rows`` (fully masked rows)."""
    out = []
    for name, g, e in zip(names, got, expected, strict=True):
        g = np.asarray(g)
        e = np.asarray(e)
        if g.shape != e.shape:
            out.append(OutputDiff(name, float("inf"), float("inf"), False, f"shape {_fmt(g.shape)} vs {_fmt(e.shape)}"))
            continue
        if not (np.issubdtype(e.dtype, np.number) or e.dtype == bool):
            out.append(OutputDiff(name, 0.0, 0.0, bool(np.array_equal(g, e))))
            continue
        g64 = g.astype(np.float64)
        e64 = e.astype(np.float64)
        keep = np.isfinite(e64)
        whys = []
        if not keep.all():
            whys.append(f"{int((~keep).sum())} non-finite in the reference")
        if undefined_rows and e64.ndim >= 1:
            rows = [r for r in undefined_rows if r < e64.shape[0]]
            if rows:
                before = int(keep.sum())
                keep[rows] = False
                whys.append(f"rows {sorted(rows)} fully masked ({before - int(keep.sum())} values)")
        excluded = int(keep.size - keep.sum())
        gk, ek = g64[keep], e64[keep]
        if gk.size == 0:
            out.append(OutputDiff(name, 0.0, 0.0, True, None, excluded, "; ".join(whys)))
            continue
        diff = np.abs(gk - ek)
        a = float(diff.max()) if np.isfinite(diff).all() else float("inf")
        r = float((diff / np.maximum(np.abs(ek), 1e-12)).max()) if np.isfinite(diff).all() else float("inf")
        if tol.elementwise:
            ok = bool(np.all(diff <= tol.atol + tol.rtol * np.abs(ek)))
            bound = f"|got - ref| <= {tol.atol} + {tol.rtol} * |ref|"
        else:
            limit = tol.atol + tol.rtol * float(np.abs(ek).max())
            ok = bool(np.all(diff <= limit))
            bound = f"max |got - ref| <= {tol.atol} + {tol.rtol} * max|ref| = {limit:.3g}"
        out.append(OutputDiff(name, a, r, ok, None, excluded, "; ".join(whys), bound))
    return out


def allclose(actual: np.ndarray, expected: np.ndarray, *, atol: float, rtol: float) -> bool:
    """True where every defined value agrees elementwise (the rule of :func:`compare_outputs`)."""
    return compare_outputs(["x"], [actual], [expected], Tolerance(atol, rtol))[0].passed


def _fmt(shape: Sequence[int]) -> str:
    from ._specs import format_shape

    return format_shape(shape)


__all__ = ["OutputDiff", "Reference", "Tolerance", "compare_outputs", "max_diffs", "module_reference", "onnx_reference", "runtime_error_text"]
