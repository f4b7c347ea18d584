"""Validate a new engine against its source before anyone can load or save it (``build(validate=True)``, the default).

The engine runs at every profile's min, opt and max on representative data (``dynashape._data``),
or on the user's data; the source runs on the same feeds (see :func:`references`); the outputs must
agree within a precision-aware tolerance. An engine that fails to run at a shape inside its profiles
is refused too, naming the shape and, for ONNX Runtime, the node.

NOTE: for backends that compile native code (AOTInductor, TensorRT) the new engine is written to a
temporary file and first loaded and run in a *child process*; the parent loads it only after the
child succeeded. A broken toolchain can produce a package that segfaults when loaded (seen on the
GPU machine here: an AOTInductor package built with one g++ crashes in std::regex at load); in a
child, that becomes a clear error naming the signal instead of killing the user's process.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _progress
from .._data import Feed, Hints, feed_shapes, make_inputs, masked_rows
from .._errors import BackendError, ShapeError
from .._profiles import Profile
from .._records import Manifest, ProfilePart
from .._reference import OutputDiff, Reference, Tolerance, compare_outputs, runtime_error_text
from .._specs import TensorSpec, format_shape

log = logging.getLogger("dynashape")

# (atol, rtol) per engine precision.
# NOTE: fp32: the engine and the source both compute in fp32 but reorder reductions (fused convs,
# other GEMM blocking); with K-term sums the reordering error grows like sqrt(K) * 6e-8 * |terms|,
# which stays below 1e-3 for the activations of real models, so 1e-3 elementwise.
# fp16/bf16: the engine is compared with the source run in the *same* precision on the same device,
# so the difference is rounding in kernels that block differently, not the precision itself. Those
# roundings scale with the largest activations, not with each element (a value near zero inherits
# the absolute error of the sums that produced it), so the bound is relative to max|source|:
# fp16 has a unit roundoff of 4.9e-4, and 2e-2 * max|ref| leaves ~40 roundings of the output's
# scale; bf16's unit roundoff is 8x larger (3.9e-3), and 6e-2 leaves ~15.
TOLERANCE = {"fp32": (1e-3, 1e-3), "fp16": (1e-2, 2e-2), "bf16": (2e-2, 6e-2)}


def tolerance(precision: str) -> Tolerance:
    atol, rtol = TOLERANCE[precision]
    return Tolerance(atol, rtol, elementwise=precision == "fp32")


@dataclass(frozen=True)
class Case:
    profile: int
    which: str  # "min", "opt", "max" or "data i"
    feed: Feed

    def describe(self) -> str:
        shapes = ", ".join(f"{n}:{format_shape(s)}" for n, s in feed_shapes(self.feed).items())
        return f"profile {self.profile} {self.which} ({shapes})"


def cases(inputs: Sequence[TensorSpec], profiles: Sequence[Profile], *, hints: Hints | None = None,
          feeds: Sequence[Feed] | None = None, parts: Sequence[ProfilePart] = ()) -> list[Case]:
    """Every profile's min, opt and max with generated data, plus one shape in every package of a
    split profile that those three miss; or the user's feeds, each under the profile that will run it."""
    from .._engine.selection import ProfileTable

    if feeds is not None:
        table = ProfileTable(inputs, profiles)
        out = []
        for i, feed in enumerate(feeds):
            listed = [feed_shapes(feed)[s.name] for s in inputs]
            k = table.select(listed)
            if k is None:
                err = table.outside_all(listed)
                raise ShapeError(f"user data feed {i}: {err.received}", err.expected, "give data within the profiles, or widen them")
            out.append(Case(k, f"data {i}", feed))
        return out
    out = []
    for k, p in enumerate(profiles):
        seen = []
        for which in ("min", "opt", "max"):
            shapes = {n: getattr(r, which) for n, r in p.items()}
            if shapes in seen:
                continue
            seen.append(shapes)
            out.append(Case(k, which, make_inputs(inputs, shapes, seed=k, hints=hints)))
        # NOTE: a profile split into packages (guard-split parts, an aligned part beside the general
        # one) is served by whichever package the runtime picks for a shape: min, opt and max may all
        # fall into one of them (three multiples of 32 all go to the aligned part), leaving another
        # package that no validation ran. Each such package gets a shape of its own.
        for j, shapes in _part_shapes(inputs, p, k, parts, seen):
            out.append(Case(k, f"part {j + 1}", make_inputs(inputs, shapes, seed=k, hints=hints)))
    return out


def _part_shapes(inputs: Sequence[TensorSpec], profile: Profile, k: int, parts: Sequence[ProfilePart],
                 seen: list[dict[str, tuple[int, ...]]]) -> list[tuple[int, dict[str, tuple[int, ...]]]]:
    """(package position, shapes) for every package of profile ``k`` that none of ``seen`` reaches."""
    from .._engine.selection import PartTable

    mine = [p for p in parts if p.profile == k and p.payload is not None]
    if len(mine) < 2:
        return []
    table = PartTable(inputs, parts)

    def route(shapes: dict[str, tuple[int, ...]]) -> int | None:
        try:
            return table.select(k, [shapes[s.name] for s in inputs])
        except ShapeError:
            return None

    reached = {route(sh) for sh in seen}
    out = []
    for j, part in enumerate(mine):
        if j in reached:
            continue
        for base in ("opt", "min", "max"):
            shapes = {n: getattr(r, base) for n, r in profile.items()}
            # per restricted dim, its allowed values nearest to the base shape's (a few): the
            # nearest may belong to a package listed earlier (512 is even, but the aligned package
            # takes it first), so the combinations are tried in order until one routes here
            options = []
            for c in part.dims:
                want = shapes[c.places[0][0]][c.places[0][1]]
                near = range(max(c.lo, want - 4 * c.modulus), min(c.hi, want + 4 * c.modulus) + 1)
                allowed = sorted((abs(v - want), v) for v in near if c.contains(v))
                options.append([v for _, v in allowed[:6]] or [v for v in (c.lo, c.hi) if c.contains(v)])
            found = None
            for values in itertools.islice(itertools.product(*options), 256):
                cand = {n: list(v) for n, v in shapes.items()}
                for c, v in zip(part.dims, values, strict=True):
                    for name, axis in c.places:
                        cand[name][axis] = v
                shaped = {n: tuple(v) for n, v in cand.items()}
                if profile.contains(shaped) and route(shaped) == j:
                    found = shaped
                    break
            if found is not None:
                out.append((j, found))
                reached.add(j)
                break
    return out


def _model_fails(case: Case, who: str, e: BaseException) -> BackendError:
    return BackendError(
        f"the model itself fails at {case.describe()} in {who}: {runtime_error_text(e)}",
        "a model that runs at every shape inside its profiles",
        "the model breaks inside the declared range (a position table, an embedding or a reshape sized for "
        "other shapes): narrow the profile below the failing shape, or fix the model; `dynashape check` names pinned dims",
    )


def _engine_fails(backend: str, case: Case, text: str) -> BackendError:
    return BackendError(
        f"the new {backend} engine fails at {case.describe()}: {text}",
        "an engine that runs at every shape inside its profiles",
        "the engine was not saved; narrow the profile below the failing shape, or fix the model there "
        "(a position table, an embedding or a reshape sized for other shapes); `dynashape check` names pinned dims",
    )


def check_outputs(manifest: Manifest, case: Case, got: Sequence[np.ndarray], expected: Sequence[np.ndarray],
                  reference: Reference, info: Sequence[np.ndarray] | None, hints: Hints | None) -> None:
    tol = tolerance(manifest.precision)
    names = [o.name for o in manifest.outputs]
    undefined = masked_rows(case.feed, manifest.inputs, hints)
    diffs = compare_outputs(names, got, expected, tol, undefined_rows=undefined)
    fp32 = compare_outputs(names, got, info, tolerance("fp32"), undefined_rows=undefined) if info is not None else None
    fp32_text = ""
    if fp32 is not None:
        fp32_text = "; against the fp32 source (information): " + ", ".join(
            f"'{d.output}' max abs diff {d.max_abs:.3g}" for d in fp32)
        log.info("validation %s: %s%s", case.describe(), ", ".join(f"'{d.output}' {d.max_abs:.3g}" for d in diffs), fp32_text)
    for d in diffs:
        if d.excluded:
            log.info("validation %s: output '%s': %d values undefined in the source left out (%s)",
                     case.describe(), d.output, d.excluded, d.excluded_why)
    for d in diffs:
        if d.shape_mismatch:
            raise BackendError(
                f"the new {manifest.backend} engine gives output '{d.output}' {d.shape_mismatch} (engine vs source) at {case.describe()}",
                "equal shapes", "the engine was not saved; report this with the model, or build with another backend",
            )
        if not d.passed:
            # NOTE: settings the build added by itself are the first suspects: name the way to drop them
            # (setting one of ND tiling's keys drops both: _backend.inductor.default_configs)
            added = [k for k, _ in (manifest.backend_data or {}).get("inductor_defaults") or []]
            drop = (" or --inductor-config triton.prefer_nd_tiling=false (drops the ND tiling the build added)"
                    if "triton.prefer_nd_tiling" in added else "")
            raise BackendError(
                f"the new {manifest.backend} engine differs from {reference.label} at {case.describe()}: "
                f"output '{d.output}' max abs diff {d.max_abs:.3g}, max rel diff {d.max_rel:.3g}" + _excluded(d) + fp32_text,
                f"{d.bound} ({manifest.precision})",
                f"the engine was not saved; try fp32, --tf32 off{drop}, or another backend, and report it with the model",
            )


def _excluded(d: OutputDiff) -> str:
    return f" ({d.excluded} values undefined in the source left out: {d.excluded_why})" if d.excluded else ""


def validate(
    manifest: Manifest,
    payloads: dict[str, bytes],
    load: Callable[[], Any],
    todo: Sequence[Case],
    *,
    reference: Reference | None,
    info: Reference | None = None,
    in_child: bool,
    hints: Hints | None = None,
) -> Any:
    """Run ``todo`` through the new engine and ``reference``; return the loaded engine (``load()``),
    loaded in this process only once the engine passed (in a child first when ``in_child``).

    ``reference`` None: only that the engine runs at every case (an ONNX Runtime engine built from
    the ONNX file that would be its own reference). ``info``: the fp32 source, for reduced-precision
    engines, reported but not judged.
    """
    expected: list[list[np.ndarray] | None] = []
    extra: list[list[np.ndarray] | None] = []
    if reference is not None:
        with _progress.stage(f"validate: the source ({reference.label}) at {len(todo)} shape set(s)"):
            for c in todo:
                try:
                    expected.append(reference(c.feed))
                except Exception as e:
                    raise _model_fails(c, reference.label, e) from e
                extra.append(_try(info, c.feed))
    if in_child:
        with _progress.stage(f"validate: the new {manifest.backend} engine in a child process at {len(todo)} shape set(s)"):
            got_all = _run_in_child(manifest, payloads, todo)
        engine = load()
    else:
        engine = load()
        got_all = []
        with _progress.stage(f"validate: the new {manifest.backend} engine at {len(todo)} shape set(s)"):
            for c in todo:
                try:
                    out = engine.run(c.feed, profile=c.profile)
                except Exception as e:
                    raise _engine_fails(manifest.backend, c, runtime_error_text(e)) from e
                got_all.append([np.asarray(out[o.name]) for o in manifest.outputs])
    if reference is not None:
        for c, got, exp, inf in zip(todo, got_all, expected, extra, strict=True):
            assert exp is not None
            check_outputs(manifest, c, got, exp, reference, inf, hints)
        _warn_if_vacuous(manifest, todo, expected, extra, reference)
    return engine


def _float_max(arrays: Sequence[np.ndarray] | None) -> float | None:
    """The largest finite magnitude over the float outputs (None: no float output with values)."""
    vals = [np.asarray(a, dtype=np.float64) for a in arrays or () if np.asarray(a).dtype.kind == "f" and np.asarray(a).size]
    if not vals:
        return None
    finite = [np.abs(v[np.isfinite(v)]) for v in vals]
    return max((float(f.max()) for f in finite if f.size), default=0.0)


def _warn_if_vacuous(manifest: Manifest, todo: Sequence[Case], expected: Sequence[Sequence[np.ndarray] | None],
                     extra: Sequence[Sequence[np.ndarray] | None], reference: Reference) -> None:
    """Warn where every case compared all-zero float outputs: such a validation passes any engine.

    NOTE: seen with torchvision's EfficientNet-B0 and MobileNetV3-L built with random weights in fp16: their
    logits are about 1e-14 and 4e-10 in fp32, 0 in fp16, and every engine matched eager exactly. A model
    may output zeros on purpose, so this is a warning, not a refusal.
    """
    tops = [_float_max(e) for e in expected]
    if not tops or any(t is None or t > 0 for t in tops):
        return
    fp32 = [t for t in (_float_max(x) for x in extra) if t is not None]
    why = (f"; in fp32 they reach {max(fp32):.3g}, below what {manifest.precision} can hold" if fp32 and max(fp32) > 0 else "")
    log.warning("validation checked nothing: %s gave all-zero outputs at every shape set (%d)%s. Any engine matches "
                "zeros; validate on real inputs (--data) or with trained weights", reference.label, len(todo), why)


def _try(info: Reference | None, feed: Feed) -> list[np.ndarray] | None:
    if info is None:
        return None
    try:
        return info(feed)
    except Exception as e:  # information only: a failing fp32 run must not refuse the engine
        log.info("the fp32 reference failed (%s); validation goes on without it", runtime_error_text(e))
        return None


def _run_in_child(manifest: Manifest, payloads: dict[str, bytes], todo: Sequence[Case]) -> list[list[np.ndarray]]:
    from .._engine.file import write_engine

    with tempfile.TemporaryDirectory(prefix="dynashape-validate-") as tmp:
        path = os.path.join(tmp, "candidate.engine")
        write_engine(path, manifest, payloads)
        inputs = os.path.join(tmp, "inputs.npz")
        outputs = os.path.join(tmp, "outputs.npz")
        failure = os.path.join(tmp, "failure.json")
        np.savez(inputs, **{f"{i}__{n}": x for i, c in enumerate(todo) for n, x in c.feed.items()},  # type: ignore[arg-type]
                 __profiles=np.array([c.profile for c in todo]))
        proc = subprocess.run([sys.executable, "-m", "dynashape._builder._child", path, inputs, outputs, failure],
                              capture_output=True, text=True, timeout=3600)
        if os.path.exists(failure):
            with open(failure) as f:
                info = json.load(f)
            raise _engine_fails(manifest.backend, todo[int(info["case"])], str(info["error"]))
        if proc.returncode != 0:
            tail = " ".join(proc.stderr.strip().splitlines()[-6:])[-1500:]
            if proc.returncode < 0:
                sig = signal.Signals(-proc.returncode).name
                raise BackendError(
                    f"the new {manifest.backend} engine crashed the process that loaded it ({sig}) {tail}",
                    "an engine that loads and runs",
                    "this points at the C++ toolchain used to compile it: set CXX=/usr/bin/g++ CC=/usr/bin/gcc "
                    "(or your system compiler) and rebuild; the engine was not saved",
                )
            raise BackendError(f"the new {manifest.backend} engine failed in a fresh process: {tail}", "an engine that loads and runs",
                               "the engine was not saved; rebuild with -v for details")
        with np.load(outputs) as got_all:
            return [[np.asarray(got_all[f"{i}__{o.name}"]) for o in manifest.outputs] for i in range(len(todo))]
