"""Validate a new engine against its source before anyone can save it.

The engine runs at every profile's min, opt and max; the source (eager PyTorch, or ONNX Runtime on
the ONNX model) runs on the same inputs; outputs must agree within a precision-aware tolerance.

NOTE: for backends that compile native code (AOTInductor, TensorRT) the engine is loaded and run in
a *child process*. A broken toolchain can produce a package that segfaults when loaded (seen on the
GPU machine here: an AOTInductor package built with one g++ crashes in std::regex at load); in a
child, that becomes a clear error naming the signal instead of killing the user's process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._data import allclose, make_inputs, max_diffs
from .._errors import BackendError
from .._specs import format_shape

# (atol, rtol). fp32 engines reorder reductions (fused convs, other GEMM blocking), hence 1e-3
# elementwise. Reduced precisions are judged against the output's scale: |diff| <= atol + rtol * max|ref|,
# since fp16/bf16 rounding error scales with the largest activations, not with each element.
TOLERANCE = {"fp32": (1e-3, 1e-3), "fp16": (1e-2, 2e-2), "bf16": (2e-2, 6e-2)}


def cases(engine: Any) -> list[tuple[int, str, dict[str, np.ndarray]]]:
    out = []
    for k, p in enumerate(engine.profiles):
        seen = []
        for which in ("min", "opt", "max"):
            shapes = {n: getattr(r, which) for n, r in p.items()}
            if shapes in seen:
                continue
            seen.append(shapes)
            out.append((k, which, make_inputs(engine.inputs, shapes, seed=k)))
    return out


def check_outputs(engine: Any, k: int, which: str, feed: dict[str, np.ndarray], got: Sequence[np.ndarray], expected: Sequence[np.ndarray]) -> None:
    atol, rtol = TOLERANCE[engine.precision]
    for o, g, e in zip(engine.outputs, got, expected, strict=True):
        g = np.asarray(g)
        e = np.asarray(e)
        shape_text = ", ".join(f"{n}:{format_shape(np.shape(x))}" for n, x in feed.items())
        if g.shape != e.shape:
            raise BackendError(
                f"the new {engine.backend} engine gives output '{o.name}' shape {format_shape(g.shape)} at profile {k} {which} ({shape_text}); the source gives {format_shape(e.shape)}",
                "equal shapes", "the engine was not saved; report this with the model, or build with another backend",
            )
        a, r = max_diffs(g, e)
        if engine.precision == "fp32":
            ok = allclose(g, e, atol=atol, rtol=rtol)
            bound = f"|engine - source| <= {atol} + {rtol} * |source|"
        else:
            scale = float(np.abs(e.astype(np.float64)).max()) if e.size else 0.0
            ok = a <= atol + rtol * scale
            bound = f"max |engine - source| <= {atol} + {rtol} * max|source| = {atol + rtol * scale:.3g}"
        if not ok:
            raise BackendError(
                f"the new {engine.backend} engine differs from the source at profile {k} {which} ({shape_text}): "
                f"output '{o.name}' max abs diff {a:.3g}, max rel diff {r:.3g}",
                f"{bound} ({engine.precision})",
                "the engine was not saved; try fp32, --tf32 off, or another backend, and report it with the model",
            )


def validate(engine: Any, reference: Callable[[dict[str, np.ndarray]], list[np.ndarray]], *, in_child: bool) -> None:
    todo = cases(engine)
    if not in_child:
        for k, which, feed in todo:
            got = engine.run(feed, profile=k)
            check_outputs(engine, k, which, feed, [got[o.name] for o in engine.outputs], reference(feed))
        return
    with tempfile.TemporaryDirectory(prefix="dynashape-validate-") as tmp:
        path = os.path.join(tmp, "candidate.engine")
        engine.save(path)
        inputs = os.path.join(tmp, "inputs.npz")
        outputs = os.path.join(tmp, "outputs.npz")
        np.savez(inputs, **{f"{i}__{n}": x for i, (_, _, feed) in enumerate(todo) for n, x in feed.items()},  # type: ignore[arg-type]
                 __profiles=np.array([k for k, _, _ in todo]))
        proc = subprocess.run([sys.executable, "-m", "dynashape._builder._child", path, inputs, outputs],
                              capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            tail = " ".join(proc.stderr.strip().splitlines()[-6:])[-1500:]
            if proc.returncode < 0:
                sig = signal.Signals(-proc.returncode).name
                raise BackendError(
                    f"the new {engine.backend} engine crashed the process that loaded it ({sig}) {tail}",
                    "an engine that loads and runs",
                    "this points at the C++ toolchain used to compile it: set CXX=/usr/bin/g++ CC=/usr/bin/gcc "
                    "(or your system compiler) and rebuild; the engine was not saved",
                )
            raise BackendError(f"the new {engine.backend} engine failed in a fresh process: {tail}", "an engine that loads and runs",
                               "the engine was not saved; rebuild with -v for details")
        with np.load(outputs) as got_all:
            for i, (k, which, feed) in enumerate(todo):
                got = [got_all[f"{i}__{o.name}"] for o in engine.outputs]
                check_outputs(engine, k, which, feed, got, reference(feed))
