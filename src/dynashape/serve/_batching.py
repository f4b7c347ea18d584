"""Shape-aware dynamic batching: which requests may share one engine call, and how to split the answer.

NOTE (the rule): two requests share a batch only when every input's dims other than the batch dim
are equal after bucketing (the bucket is the exact shape unless a padding ladder is given, and a
ladder is given only for a model whose padding is known to be safe), and only when dim 0 is one
dynamic batch dim shared by every input and every output. The engine then picks the profile for the
concatenated shape, so grouping by the non-batch shape groups by profile too; the batch size is
capped by the largest batch any profile allows at that non-batch shape.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import DynashapeError, ShapeError
from .._plan.padding import crop_array, pad_array
from .._specs import format_shape

Shape = tuple[int, ...]
# A group key: per input, the dims after the batch dim (after bucketing), in the engine's input order.
Key = tuple[Shape, ...]


@dataclass(frozen=True)
class Prepared:
    """One request made ready for batching: inputs in engine order, padded to its bucket."""

    arrays: tuple[np.ndarray, ...]
    rows: int  # its size on the batch dim (1 when the engine cannot batch)
    key: Key | None  # None: runs alone
    crop: dict[str, Any] | None  # {"dim", "value"}: the real size of the padded dim, to crop outputs back


class BatchPolicy:
    """Facts about one engine that decide grouping, padding and splitting.

    ``ladder`` maps one dim name (a named dim of the inputs other than the batch dim, e.g.
    ``"seq"``) to the sizes a request may be padded up to; ``pad_values`` gives the fill per input
    (default 0) and ``crops`` the output axes to crop back (as in the plan's padding verdict).
    NOTE: a ladder must only be given for a model that is padding-safe along that dim (outputs at
    the real positions equal with and without padding: a masked encoder whose mask pads with 0 is,
    a conv net with global pooling is not). :func:`~dynashape.serve.read_plan` passes one only when
    the engine's build found padding safe; without it requests share a batch only at equal shapes.
    """

    def __init__(self, engine: Any, *, ladder: Mapping[str, Sequence[int]] | None = None,
                 pad_values: Mapping[str, float] | None = None,
                 crops: Mapping[str, Sequence[tuple[int, int, int]]] | None = None) -> None:
        self.engine = engine
        self.inputs = list(engine.inputs)
        self.outputs = list(engine.outputs)
        self.names = [s.name for s in self.inputs]
        self.dtypes = [s.dtype for s in self.inputs]
        self.profiles = list(engine.profiles)
        sym = self.inputs[0].shape[0] if self.inputs and self.inputs[0].rank else None
        # NOTE: concatenating on dim 0 is correct only when dim 0 means "independent samples" for
        # every tensor: one named dynamic dim that is dim 0 of every input and every output.
        self.batch_dim: str | None = sym if (
            isinstance(sym, str)
            and all(s.rank and s.shape[0] == sym for s in self.inputs)
            and all(s.rank and s.shape[0] == sym for s in self.outputs)
            and all(sym not in s.shape[1:] for s in [*self.inputs, *self.outputs])
        ) else None
        self.pad_values = {k: float(v) for k, v in (pad_values or {}).items()}
        self.ladder = {k: sorted({int(v) for v in vs}) for k, vs in (ladder or {}).items() if vs}
        dims = sorted({d for s in self.inputs for d in s.shape[1:] if isinstance(d, str)} - {self.batch_dim})
        if len(self.ladder) > 1 or any(k not in dims for k in self.ladder):
            raise DynashapeError(f"padding ladder for dim(s) {list(self.ladder)}", f"one dim of the engine's inputs: {dims}",
                                 "name one dynamic dim of the inputs other than the batch dim")
        self.ladder_dim = next(iter(self.ladder), None)
        self.pad_axes = [[a for a, d in enumerate(s.shape) if d == self.ladder_dim] for s in self.inputs]
        # Per output, (axis, a, b): that axis has size a * dim + b and is cropped back. The build's
        # padding verdict measures these; without it, an output axis named like the dim follows it.
        self.crops = {s.name: tuple((crops or {}).get(s.name, [(a, 1, 0) for a, d in enumerate(s.shape)
                                                              if d == self.ladder_dim])) for s in self.outputs}

    # -- per request -------------------------------------------------------------------------------

    def prepare(self, inputs: Mapping[str, np.ndarray]) -> Prepared:
        """Check one request (names, dtypes, shapes: ShapeError as engine.run would raise) and bucket it."""
        for name, x in inputs.items():
            if not isinstance(x, np.ndarray):
                raise DynashapeError(f"input '{name}' is a {type(x).__name__}", "a numpy array")
        shapes = {n: tuple(int(d) for d in x.shape) for n, x in inputs.items()}
        self.engine.select_profile(shapes)  # names, ranks, static and shared dims, profile ranges
        arrays = []
        for name, dtype in zip(self.names, self.dtypes, strict=True):
            x = inputs[name]
            if x.dtype.name != dtype:
                raise DynashapeError(f"input '{name}' has dtype {x.dtype.name}", f"{dtype}, the model's dtype for this input")
            arrays.append(x)
        if self.batch_dim is None:
            return Prepared(tuple(arrays), 1, None, None)
        crop = None
        if self.ladder:
            arrays, crop = self._pad(arrays)
        key = tuple(tuple(int(d) for d in x.shape[1:]) for x in arrays)
        return Prepared(tuple(arrays), int(arrays[0].shape[0]), key, crop)

    def _pad(self, arrays: list[np.ndarray]) -> tuple[list[np.ndarray], dict[str, Any] | None]:
        dim = self.ladder_dim
        assert dim is not None
        steps = self.ladder[dim]
        values = {int(x.shape[a]) for x, axes in zip(arrays, self.pad_axes, strict=True) for a in axes}
        if len(values) != 1:
            return arrays, None  # the engine's shared-dim check already refused a mismatch
        (value,) = values
        i = bisect.bisect_left(steps, value)
        if i == len(steps) or steps[i] == value:
            return arrays, None  # above the ladder, or on a bucket already: its own shape
        bucket = steps[i]
        padded = [pad_array(x, axes, bucket, self.pad_values.get(n, 0.0))
                  for x, axes, n in zip(arrays, self.pad_axes, self.names, strict=True)]
        try:
            self.engine.select_profile({n: x.shape for n, x in zip(self.names, padded, strict=True)})
        except ShapeError:
            return arrays, None  # the bucket leaves every profile: run at its own shape
        return padded, {"value": value, "dim": dim}

    def cap(self, key: Key) -> int:
        """The largest batch that some profile allows at this non-batch shape."""
        best = 0
        for p in self.profiles:
            ranges = [p[n] for n in self.names]
            if all(r.min[a + 1] <= v <= r.max[a + 1] for r, shape in zip(ranges, key, strict=True)
                   for a, v in enumerate(shape)):
                best = max(best, min(r.max[0] for r in ranges))
        return best

    # -- per batch ---------------------------------------------------------------------------------

    def run(self, batch: Sequence[Prepared]) -> list[dict[str, np.ndarray]]:
        """Run requests that share a key as one engine call (or one request alone); split and crop."""
        if len(batch) == 1:
            return [self._finish(self.engine.run(dict(zip(self.names, batch[0].arrays, strict=True))), batch[0])]
        cat = {n: np.concatenate([r.arrays[i] for r in batch]) for i, n in enumerate(self.names)}
        outs = self.engine.run(cat)
        bounds = np.cumsum([r.rows for r in batch])[:-1]
        pieces = {n: np.split(np.asarray(o), bounds) for n, o in outs.items()}
        return [self._finish({n: p[j] for n, p in pieces.items()}, r) for j, r in enumerate(batch)]

    def _finish(self, outs: dict[str, Any], r: Prepared) -> dict[str, np.ndarray]:
        outs = {n: np.asarray(o) for n, o in outs.items()}
        if r.crop:
            outs = {n: np.ascontiguousarray(crop_array(o, self.crops[n], r.crop["value"])) for n, o in outs.items()}
        return outs


def run_grouped(policy: BatchPolicy, requests: Sequence[Mapping[str, np.ndarray]], *, max_batch: int | None = None
                ) -> list[dict[str, np.ndarray] | DynashapeError]:
    """Run a list of requests synchronously, batching those that may share a call (Triton's Python backend).

    Returns one dict of outputs per request, in order, or the user error that request caused.
    """
    results: list[dict[str, np.ndarray] | DynashapeError] = [DynashapeError("not run")] * len(requests)
    groups: dict[Any, list[tuple[int, Prepared]]] = {}
    for i, req in enumerate(requests):
        try:
            p = policy.prepare(req)
        except DynashapeError as e:
            results[i] = e
            continue
        groups.setdefault(p.key if p.key is not None else ("alone", i), []).append((i, p))
    for key, members in groups.items():
        cap = max(1, min(policy.cap(key), max_batch or 1 << 30)) if key[0] != "alone" else 1
        chunk: list[tuple[int, Prepared]] = []
        for item in [*members, None]:
            if item is not None and (not chunk or sum(p.rows for _, p in chunk) + item[1].rows <= cap):
                chunk.append(item)
                continue
            for (i, _), out in zip(chunk, run_isolated(policy, [p for _, p in chunk]), strict=True):
                results[i] = out
            chunk = [item] if item is not None else []
    return results


def run_isolated(policy: BatchPolicy, batch: Sequence[Prepared]) -> list[dict[str, np.ndarray] | DynashapeError]:
    """:meth:`BatchPolicy.run`, but a failing batch is retried one request at a time.

    NOTE: every request passed the engine's checks alone, so a batch should not fail; if it does
    (a model that breaks at the concatenated shape), retrying alone keeps one request's fault
    from failing its batch-mates.
    """
    try:
        return list(policy.run(batch))
    except DynashapeError as e:
        if len(batch) == 1:
            return [e]
    out: list[dict[str, np.ndarray] | DynashapeError] = []
    for r in batch:
        try:
            out.append(policy.run([r])[0])
        except DynashapeError as e:
            out.append(e)
    return out


def describe(key: Key) -> str:
    return ", ".join(format_shape(s) for s in key)
